// Snapshots of the collector's heap, in process, against a reference model of the trace.
//
// The test generates a random object-graph trace (allocations, pointer stores, holds and
// drops, objects of 16 bytes or more so no tiny block can keep a dead neighbour alive), keeps
// for every record the trace's own state (holds, pointer slots, which objects are reachable),
// replays it on the collector at GOGC 1 with `--snapshot-every-gc`, and checks each snapshot
// against the state after its record:
//   - world-stopped marking (`--stw`): the snapshot's objects are exactly the reachable ones,
//     each with its trace ID, size and site, its edges exactly the non-nil slots, its roots
//     exactly the holds; nothing is unresolved and every marked slot holds an object;
//   - concurrent marking: the objects the roots reach are exactly the reachable ones (the rest
//     is floating garbage, which the summary counts as unreachable);
//   - `--snapshot-at R` on the collector gives the same objects, edges and roots as
//     `--allocator heaplab` at R, in a cycle started for it.
import Foundation
import Testing
import HeapLabReplay
@testable import HeapLabSnapshot

/// A trace and the reference state after each of its records.
struct GraphTrace {
    struct Object {
        var size: UInt64
        var ptrs: Int
        var site: UInt64
        var slots: [UInt64?]
        var holds: Int
    }
    struct State {
        var objects: [UInt64: Object]
        var reachable: Set<UInt64>
    }
    var text = "heaplab-trace 1\ns 1 Node\ns 2 Buf\n"
    var records = 3
    /// State after record r (only from record 2 on).
    var states: [Int: State] = [:]

    init(steps: Int, seed: UInt64) {
        var x = seed
        func next() -> Int {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: (x >> 33) & 0x7fff_ffff)
        }
        var objects: [UInt64: Object] = [:]
        var nextID: UInt64 = 1
        var reachable = Set<UInt64>()
        func recompute() {
            var seen = Set(objects.filter { $0.value.holds > 0 }.map(\.key))
            var queue = Array(seen)
            while let v = queue.popLast() {
                for case let t? in objects[v]!.slots where !seen.contains(t) {
                    seen.insert(t)
                    queue.append(t)
                }
            }
            // Dead objects can never be named again: forget them.
            for id in objects.keys where !seen.contains(id) { objects[id] = nil }
            reachable = seen
        }
        states[2] = State(objects: [:], reachable: [])
        for _ in 0..<steps {
            let live = reachable.sorted()
            let r = next() % 100
            var line = ""
            if r < 30 || live.isEmpty {
                let noscan = next() % 5 == 0
                let size = UInt64(16 + 8 * (next() % 30))
                let ptrs = noscan ? 0 : 1 + next() % min(4, Int(size / 8))
                let id = nextID
                nextID += 1
                objects[id] = Object(size: size, ptrs: ptrs, site: noscan ? 2 : 1, slots: Array(repeating: nil, count: ptrs), holds: 1)
                line = "a \(id) \(size) \(ptrs) \(noscan ? 2 : 1)"
            } else if r < 65 {
                let sources = live.filter { objects[$0]!.ptrs > 0 }
                guard !sources.isEmpty else { continue }
                let src = sources[next() % sources.count]
                let slot = next() % objects[src]!.ptrs
                let dst: UInt64? = next() % 5 == 0 ? nil : live[next() % live.count]
                objects[src]!.slots[slot] = dst
                line = "w \(src) \(slot) \(dst.map(String.init) ?? "-")"
            } else if r < 88 {
                let held = live.filter { objects[$0]!.holds > 0 }
                guard !held.isEmpty else { continue }
                let id = held[next() % held.count]
                objects[id]!.holds -= 1
                line = "f \(id)"
            } else {
                let id = live[next() % live.count]
                objects[id]!.holds += 1
                line = "h \(id)"
            }
            recompute()
            text += line + "\n"
            states[records] = State(objects: objects, reachable: reachable)
            records += 1
        }
    }
}

@Suite(.serialized) struct GCCaptureTests {
    static let trace = GraphTrace(steps: 4000, seed: 7)

    func write(_ dir: TempDir) throws -> String {
        for sub in ["gc", "manual"] { try FileManager.default.createDirectory(atPath: dir.path(sub), withIntermediateDirectories: true) }
        let path = dir.path("graph.htrace")
        try Self.trace.text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Records whose snapshots start a collection each (so every-gc has at least these).
    static let forced = [800, 1600, 2400, 3200]

    static func forcedAndEvery(_ directory: String) -> SnapshotRequest {
        SnapshotRequest(records: forced, everyGC: true, directory: directory)
    }

    func options(stw: Bool) -> GCReplayOptions {
        var o = GCReplayOptions(gogc: 1, stopTheWorld: stw)
        o.heapMinimum = 16 << 10
        return o
    }

    /// Trace ID -> object index.
    func index(_ s: HeapSnapshot) -> [UInt64: Int] {
        var m: [UInt64: Int] = [:]
        for i in 0..<s.objectCount { m[s.traceID[i]] = i }
        return m
    }

    /// Checks objects, edges and roots of `s` against the state after its record, for the
    /// objects in `ids` (all of them, or those the roots reach).
    func expectMatches(_ s: HeapSnapshot, _ state: GraphTrace.State, _ ids: Set<UInt64>, _ label: String) {
        let at = index(s)
        #expect(ids == state.reachable, "\(label): objects \(ids.symmetricDifference(state.reachable).sorted().prefix(10))")
        for id in state.reachable {
            guard let i = at[id], let o = state.objects[id] else { continue }
            #expect(s.size[i] == o.size && s.pointerSlots[i] == UInt64(o.ptrs), "\(label): object \(id)")
            #expect(s.siteName(ofObject: i) == (o.site == 1 ? "Node" : "Buf"))
            var expected: [UInt32: UInt64] = [:]
            for (k, t) in o.slots.enumerated() { if let t { expected[UInt32(k)] = t } }
            var got: [UInt32: UInt64] = [:]
            for e in s.edgeStart[i]..<s.edgeStart[i + 1] { got[s.edgeSlot[e]] = s.traceID[Int(s.edgeTarget[e])] }
            #expect(got == expected, "\(label): edges of \(id)")
        }
        var holds: [UInt64: Int] = [:]
        for r in s.roots { holds[s.traceID[Int(r.object)], default: 0] += Int(r.holds) }
        var expectedHolds: [UInt64: Int] = [:]
        for (id, o) in state.objects where o.holds > 0 { expectedHolds[id] = o.holds }
        #expect(holds == expectedHolds, "\(label): roots")
    }

    func statistic(_ s: HeapSnapshot, _ name: String) -> Int64? { s.statistic(name) }

    @Test func everyCollectionWithTheWorldStoppedHoldsExactlyTheReachableObjects() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let trace = try write(dir)
        // How many collections the pacer starts depends on timing; the records asked for
        // start four more, which every-gc captures too.
        let (_, all) = try SnapshotReplay.replay(trace: trace, threads: 1, request: Self.forcedAndEvery(dir.path("")),
                                                 allocator: .gc, gc: options(stw: true))
        let written = all.filter { $0.trigger == .gc }
        #expect(written.count >= 4, "only \(written.count) collections")
        #expect(Set(Self.forced).isSubset(of: Set(written.map(\.record))))
        var lastCycle = 0
        for w in written {
            #expect(w.trigger == .gc && w.gcCycle > lastCycle)
            lastCycle = w.gcCycle
            let s = try SnapshotReader.read(path: w.path)
            #expect(s.validate() == nil)
            let label = "cycle \(w.gcCycle) at record \(s.info.record)"
            let state = try #require(Self.trace.states[s.info.record], "\(label)")
            expectMatches(s, state, Set(s.traceID), label)
            #expect(s.info.unresolvedPointers == 0)
            #expect(s.info.allocator == "gc" && s.info.trigger == .gc && s.info.pauseNanos > 0)
            #expect(s.gc.phase == .markTermination && s.gc.currentCycle == UInt64(w.gcCycle))
            #expect(s.gc.hasCollector && s.gc.stopTheWorld && !s.gc.forcedCycle && s.gc.gcPercent == 1)
            // Every marked slot is an object of the snapshot, and the marked bytes are theirs.
            #expect(statistic(s, "gc_marked_slots_without_object") == 0)
            #expect(statistic(s, "gc_objects_without_trace_identity") == 0)
            #expect(statistic(s, "gc_roots_not_marked") == 0)
            let m = s.summary()
            #expect(s.gc.heapMarked == m.live.allocatedBytes)
            #expect(m.unreachable.objects == 0)
        }
    }

    @Test func everyConcurrentCollectionReachesExactlyTheReachableObjects() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let trace = try write(dir)
        let (_, all) = try SnapshotReplay.replay(trace: trace, threads: 1, request: Self.forcedAndEvery(dir.path("")),
                                                 allocator: .gc, gc: options(stw: false))
        let written = all.filter { $0.trigger == .gc }
        #expect(written.count >= 4)
        for w in written {
            let s = try SnapshotReader.read(path: w.path)
            let label = "cycle \(w.gcCycle) at record \(s.info.record)"
            let state = try #require(Self.trace.states[s.info.record], "\(label)")
            let reached = s.reachableFromRoots()
            let ids = Set((0..<s.objectCount).filter { reached[$0] }.map { s.traceID[$0] })
            expectMatches(s, state, ids, label)
            // What the roots do not reach is floating garbage: marked, so in the snapshot.
            #expect(s.summary().unreachable.objects == s.objectCount - ids.count)
            #expect(statistic(s, "gc_marked_slots_without_object") == 0)
            #expect(statistic(s, "gc_objects_without_trace_identity") == 0)
        }
    }

    @Test func snapshotAtARecordMatchesTheManualHeapsAndIsMarked() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let trace = try write(dir)
        let records = [1000, 2500, 3999]
        let (gcReport, gcWritten) = try SnapshotReplay.replay(
            trace: trace, threads: 1, request: SnapshotRequest(records: records, atPeak: true, directory: dir.path("gc")),
            allocator: .gc, gc: options(stw: false))
        let (_, manual) = try SnapshotReplay.replay(trace: trace, threads: 1,
                                                    request: SnapshotRequest(records: records, atPeak: true, directory: dir.path("manual")))
        #expect(gcWritten.count == 4 && manual.count == 4)
        // One collection started per snapshot record. (Not the report's cycle count: that
        // leaves out a collection whose mark began after the last worker's end, which the one
        // for a snapshot at the final record may, depending on scheduling.)
        #expect(Set(gcWritten.map(\.gcCycle)).count == Set(gcWritten.map(\.record)).count)
        #expect((gcReport.measurement.gc?.cycles.count ?? 0) >= Set(gcWritten.map(\.record)).count - 1)
        for (g, h) in zip(gcWritten.sorted { $0.record < $1.record }, manual.sorted { $0.record < $1.record }) {
            #expect(g.record == h.record && g.trigger == h.trigger)
            let a = try SnapshotReader.read(path: g.path), b = try SnapshotReader.read(path: h.path)
            let state = try #require(Self.trace.states[g.record])
            expectMatches(a, state, Set(a.traceID), "gc at \(g.record)")
            expectMatches(b, state, Set(b.traceID), "heaplab at \(g.record)")
            #expect(a.gc.forcedCycle && a.gc.phase == .markTermination && a.gc.currentCycle == UInt64(g.gcCycle))
            #expect(b.gc == SnapshotGCState())
            // In a mark that began with every worker stopped, marks = the live set.
            #expect(statistic(a, "gc_live_objects_not_marked") == 0)
            #expect(statistic(a, "gc_marked_slots_without_object") == 0)
            #expect(a.summary().live == b.summary().live)
        }
    }

    @Test func twoThreadsEveryCollectionNamesEveryObject() throws {
        let dir = TempDir()
        defer { dir.remove() }
        // Two trace threads, each building and dropping its own lists.
        var text = "heaplab-trace 1\ns 1 Cell\n"
        var id = 1
        for round in 0..<2000 {
            for t in 0..<2 {
                text += "@ \(t)\n"
                let head = id
                text += "a \(head) 48 2 1\n"
                for k in 1..<8 {
                    text += "a \(id + k) 32 1 1\nw \(id + k - 1) 0 \(id + k)\nf \(id + k)\n"
                }
                if round % 3 != 0 { text += "f \(head)\n" }
                id += 8
            }
        }
        let path = dir.path("two.htrace")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let (_, all) = try SnapshotReplay.replay(trace: path, threads: 2,
                                                 request: SnapshotRequest(records: [20000, 40000], everyGC: true, directory: dir.path("")),
                                                 allocator: .gc, gc: options(stw: false))
        let written = all.filter { $0.trigger == .gc }
        #expect(written.count >= 2)
        for w in written {
            let s = try SnapshotReader.read(path: w.path)
            #expect(s.validate() == nil && s.info.threads == 2)
            #expect(statistic(s, "gc_objects_without_trace_identity") == 0)
            #expect(statistic(s, "gc_marked_slots_without_object") == 0)
            #expect(statistic(s, "gc_roots_not_marked") == 0)
            // Every hold is the allocating thread's: roots are named by the trace thread.
            for r in s.roots {
                let id = Int(s.traceID[Int(r.object)])
                #expect(r.thread == UInt16(((id - 1) / 8) % 2), "root \(id) on thread \(r.thread)")
            }
        }
    }
}
