#!/usr/bin/env bash
# Runs the allocator's and collector's multi-thread stress tests under ThreadSanitizer
# (debug build, own scratch directory). Any report fails the run: TSan exits with status 66
# when it found something. Extra arguments go to `swift test` (e.g. --filter CollectorTests).
#
#   scripts/tsan.sh                 # the allocator's and collector's stress tests, and the gc
#                                   # replays under --verify with 1-4 threads (about 10 minutes)
#   scripts/tsan.sh --filter CollectorTests
set -euo pipefail
cd "$(dirname "$0")/.."
filter=(--filter 'HeapLabAllocatorTests|GCReplayTests')
[ $# -gt 0 ] && filter=("$@")
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 history_size=3}"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan
swift test --skip-build --sanitize=thread --scratch-path .build-tsan "${filter[@]}"
