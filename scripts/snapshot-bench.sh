#!/usr/bin/env bash
# Snapshot figures (docs/inspect.md): capture pause and write speed of a replay snapshot, and
# time and peak memory of `heaplab inspect top` on it.
#
#   scripts/snapshot-bench.sh [OBJECTS]     (default 10000000; HEAPLAB_BIN=path skips the build)
#
# The trace: OBJECTS nodes of 32 bytes with 3 pointer slots; slots 0 and 1 make a binary tree
# (node i points to 2i and 2i+1), every third node's slot 2 points to a random earlier node,
# node 1 is held throughout and every other node's hold is dropped after the linking, so all
# OBJECTS are live and reachable at the last record. Needs python3 and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000000}"
work="$(mktemp -d "${TMPDIR:-/tmp}/heaplab-snapbench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [ -n "${HEAPLAB_BIN:-}" ]; then
    bin="$HEAPLAB_BIN"          # a heaplab built elsewhere (release, for meaningful figures)
else
    swift build -c release --product heaplab >/dev/null
    bin="$(swift build -c release --show-bin-path)/heaplab"
fi

python3 - "$n" > "$work/tree.htrace" <<'PY'
import random, sys
n = int(sys.argv[1]); random.seed(7)
w = sys.stdout.write
w("heaplab-trace 1\ns 1 Node\ns 2 Leaf\n")
def chunks(lines):
    buf = []
    for line in lines:
        buf.append(line)
        if len(buf) > 100000:
            w("".join(buf)); buf = []
    w("".join(buf))
# Allocate everything, link while all are held, then drop the holds from the last node back
# (each dropped node is still held through its parent), so validation stays cheap.
chunks("a %d 32 3 %d\n" % (i, 1 if 2 * i <= n else 2) for i in range(1, n + 1))
chunks("w %d %d %d\n" % (i // 2, i % 2, i) for i in range(2, n + 1))
chunks("w %d 2 %d\n" % (i, random.randint(1, i - 1)) for i in range(3, n + 1, 3))
chunks("f %d\n" % i for i in range(n, 1, -1))
PY
records=$(grep -c . "$work/tree.htrace")
last=$((records - 1))
echo "trace: $n objects, $records records"
"$bin" convert "$work/tree.htrace" -o "$work/tree.hbtrace" --binary >/dev/null
/usr/bin/time -v "$bin" replay "$work/tree.hbtrace" --snapshot-at "$last" --snapshot-dir "$work" --json \
    > "$work/replay.json" 2> "$work/replay.time"
python3 - "$work/replay.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["snapshots"][0]
print("snapshot: %d objects, %d edges, %.1f MB file" % (s["objects"], s["edges"], s["bytes"] / 1e6))
print("capture pause: %.3f s" % (s["pause_ns"] / 1e9))
print("write: %.3f s, %.0f MB/s of file" % (s["write_ns"] / 1e9, s["bytes"] / 1e6 / (s["write_ns"] / 1e9)))
# The model written: per object address, size, pointer slots, trace ID (8 bytes each), site (4),
# class (1); per edge slot and target (4 + 4); edge offsets (8 per object).
model = s["objects"] * (8 * 4 + 4 + 1 + 8) + s["edges"] * 8
print("heap metadata written: %.1f MB in memory, %.0f MB/s" % (model / 1e6, model / 1e6 / (s["write_ns"] / 1e9)))
PY
grep -E "Maximum resident|Elapsed" "$work/replay.time" | sed 's/^/replay (load, run, capture, write): /'
snap=$(ls "$work"/*.hsnap)
/usr/bin/time -v "$bin" inspect "$snap" top -n 5 > "$work/top.txt" 2> "$work/top.time"
cat "$work/top.txt"
grep -E "Maximum resident|Elapsed" "$work/top.time" | sed 's/^/inspect top: /'
