#!/usr/bin/env bash
# Installs the system packages HeapLab needs (Debian/Ubuntu): the rival allocators it
# compares against and the compression libraries its importers link. Idempotent: packages
# already present are left alone. Run as root, or with sudo available.
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
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
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
