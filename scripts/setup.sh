#!/usr/bin/env bash
# Installs the system packages HeapLab needs (Debian/Ubuntu): the rival allocators it
# compares against, the compression libraries its importers link, and Go (golang-go) for
# `--allocator go`, whose replayer tools/goreplay it then builds into .build/goreplay (where
# heaplab looks; heaplab rebuilds it itself when the sources change). Idempotent: packages
# already present are left alone, an up-to-date goreplay is not rebuilt. Run as root, or
# with sudo available.
set -euo pipefail

packages=(
    libjemalloc-dev          # jemalloc 5.3: the baseline rival
    libmimalloc-dev          # mimalloc
    libgoogle-perftools-dev  # tcmalloc (gperftools)
    libzstd-dev zlib1g-dev   # compressed traces (.zst, .gz) and heaptrack recordings
    zstd                     # tests compress traces and samples; remaking traces/*.zst
    xz-utils                 # tests decompress the shared samples
    python3                  # recorder tests record a Python program
    sqlite3                  # recorder tests record sqlite3
    golang-go                # Go 1.19's runtime: heaplab replay --allocator go (tools/goreplay)
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
build_goreplay() {
    local root source binary
    root="$(cd "$(dirname "$0")/.." && pwd)"
    source="$root/tools/goreplay"
    binary="$root/.build/goreplay/goreplay"
    [ -f "$source/go.mod" ] || return 0
    if [ -x "$binary" ] && [ -z "$(find "$source" -maxdepth 1 \( -name '*.go' -o -name '*.s' -o -name go.mod \) -newer "$binary")" ]; then
        return 0
    fi
    mkdir -p "$root/.build/goreplay"
    if [ -z "${HOME:-}" ] && [ -z "${GOCACHE:-}" ]; then export GOCACHE="$root/.build/goreplay/gocache"; fi
    (cd "$source" && CGO_ENABLED=0 go build -trimpath -o "$binary.$$.tmp" .)
    mv -f "$binary.$$.tmp" "$binary"
    echo "Built $binary" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
    build_goreplay
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "HeapLab needs these packages: ${missing[*]}" >&2
    echo "Install them as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "Installing: ${missing[*]}" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
build_goreplay
