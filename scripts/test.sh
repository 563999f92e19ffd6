#!/usr/bin/env bash
# Runs every HeapLab test (Swift Testing): unit tests of the allocator and the trace library,
# importer tests on the real samples, and end-to-end tests of the heaplab command on small
# traces. Installs what it needs.
#
#   scripts/test.sh [extra swift test options...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec swift test "$@"
