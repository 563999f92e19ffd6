#!/usr/bin/env bash
# HeapLab's main job: replay every bundled trace (traces/) on HeapLab's allocator, jemalloc,
# glibc, mimalloc, tcmalloc and the null allocator, each run in its own process, interleaved,
# and report time, memory and ratios to jemalloc: a table on the terminal and an HTML report.
#
#   scripts/compare.sh [extra heaplab bench options...]
#
# Writes out/report.html, out/report.json and out/report.csv. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product heaplab >&2
mkdir -p out
exec .build/release/heaplab bench --html out/report.html --json out/report.json --csv out/report.csv "$@"
