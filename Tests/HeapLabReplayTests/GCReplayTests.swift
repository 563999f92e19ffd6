// The collector back end (`--allocator gc`): MMU and the pause histogram on given numbers,
// the collector lowering op for op, in-process replays of generated and random GC traces
// (several seeds, threads and GOGC values, GOGC=1 for constant collection) under --verify,
// the use-after-free check of --verify on a hand-made program, and the timeline file.
import Testing
import HeapLabTrace
import HeapLabGen
@testable import HeapLabReplay
#if canImport(Glibc)
import Glibc
#endif

@Suite struct MMUTests {
    typealias P = (start: Double, end: Double)

    @Test func onePauseInTenMilliseconds() {
        let p: [P] = [(0.002, 0.003)]
        #expect(MMU.utilization(pauses: p, start: 0, end: 0.010, window: 0.001) == 0)
        #expect(abs(MMU.utilization(pauses: p, start: 0, end: 0.010, window: 0.002)! - 0.5) < 1e-12)
        #expect(abs(MMU.utilization(pauses: p, start: 0, end: 0.010, window: 0.005)! - 0.8) < 1e-12)
        #expect(abs(MMU.utilization(pauses: p, start: 0, end: 0.010, window: 0.010)! - 0.9) < 1e-12)
        #expect(MMU.utilization(pauses: p, start: 0, end: 0.010, window: 0.011) == nil)
        #expect(MMU.utilization(pauses: [], start: 0, end: 1, window: 0.1) == 1)
    }

    @Test func twoPausesAndTheEdgesOfTheRun() {
        // 1 ms pauses at [1, 2) and [3, 4) ms in a 10 ms run: a 3 ms window can hold both.
        let p: [P] = [(0.001, 0.002), (0.003, 0.004)]
        #expect(abs(MMU.utilization(pauses: p, start: 0, end: 0.010, window: 0.003)! - 1.0 / 3) < 1e-12)
        #expect(abs(MMU.utilization(pauses: p, start: 0, end: 0.010, window: 0.004)! - 0.5) < 1e-12)
        #expect(abs(MMU.utilization(pauses: p, start: 0, end: 0.010, window: 0.0015)! - 1.0 / 3) < 1e-12)
        // A pause at the very start, and one cut off by the end of the run.
        let q: [P] = [(0, 0.001), (0.0095, 0.012)]
        #expect(abs(MMU.utilization(pauses: q, start: 0, end: 0.010, window: 0.002)! - 0.5) < 1e-12)
        #expect(abs(MMU.utilization(pauses: q, start: 0, end: 0.010, window: 0.0005)! - 0) < 1e-12)
    }

    /// Against a brute-force scan of window starts on a fine grid: the exact minimum is never
    /// above the grid's, and at most two grid steps of pause below it.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func agreesWithAFineGrid(seed: UInt64) {
        var rng = TestRandom(seed: seed)
        var pauses: [P] = []
        var t = 0.0
        for _ in 0..<20 {
            t += Double(1 + rng.below(400)) * 1e-5
            let d = Double(1 + rng.below(200)) * 1e-6
            pauses.append((t, t + d))
            t += d
        }
        let end = t + 0.001
        for window in [0.0005, 0.001, 0.004, 0.01] where window <= end {
            let exact = MMU.utilization(pauses: pauses, start: 0, end: end, window: window)!
            let step = 1e-6
            var gridWorst = 1.0
            var s = 0.0
            while s <= end - window {
                var paused = 0.0
                for p in pauses { paused += max(0, min(p.end, s + window) - max(p.start, s)) }
                gridWorst = min(gridWorst, 1 - paused / window)
                s += step
            }
            #expect(exact <= gridWorst + 1e-9)
            #expect(exact >= gridWorst - 2 * step / window - 1e-9)
        }
    }

    @Test func unionMergesOverlappingAndTouchingPauses() {
        let u = MMU.union([(5, 6), (1, 2), (2, 3), (2.5, 4), (7, 7)])
        #expect(u.map(\.start) == [1, 5])
        #expect(u.map(\.end) == [4, 6])
    }
}

@Suite struct DurationHistogramTests {
    @Test func exactBelow2048AndThreeDigitsAbove() {
        var h = DurationHistogram()
        for v in [5, 5, 2047, 2048, 2049, 1_000_000, 123_456_789] { h.record(nanoseconds: v) }
        #expect(h.total == 7)
        let b = h.buckets
        #expect(b[0] == (5, 5, 2))
        #expect(b[1] == (2047, 2047, 1))
        #expect(b[2] == (2048, 2049, 2))   // above 2048 a bucket is 2 ns wide
        for bucket in b.dropFirst(2) {
            #expect(Double(bucket.highest - bucket.lowest + 1) / Double(bucket.lowest) <= 1.0 / 1024)
        }
        #expect(b.contains { $0.lowest <= 1_000_000 && 1_000_000 <= $0.highest })
    }

    @Test func percentilesFollowHdrHistogram() {
        var h = DurationHistogram()
        for v in 1...100 { h.record(nanoseconds: v * 1000) }   // 1 µs ... 100 µs
        // The 50th value is 50 µs; its bucket's highest equivalent value is returned.
        let p50 = h.value(atPercentile: 50)!
        #expect(p50 >= 50_000 && Double(p50 - 50_000) / 50_000 < 1.0 / 1024)
        let p99 = h.value(atPercentile: 99)!
        #expect(p99 >= 99_000 && Double(p99 - 99_000) / 99_000 < 1.0 / 1024)
        #expect(h.value(atPercentile: 100)! >= 100_000)
        #expect(DurationHistogram().value(atPercentile: 50) == nil)
    }
}

@Suite struct GCReportTests {
    func sample() -> GCReport {
        let cycle = GCCycleSummary(cycle: 1, startSeconds: 0.001, markSetupSeconds: 2e-5, concurrentMarkSeconds: 0.003,
                                   markTerminationSeconds: 3e-5, heapAtStartBytes: 4 << 20, heapAtMarkEndBytes: 5 << 20,
                                   heapMarkedBytes: 1 << 20, goalBytes: 4 << 20, assistSeconds: 1e-4, assists: 3,
                                   backgroundCPUSeconds: 0.002, gctrace: "gc 1 @0.001s 0%: ...")
        return GCReport(gogc: 100, memoryLimitBytes: nil, heapMinimumBytes: nil, stopTheWorld: false, verified: true, procs: 2,
                        replaySeconds: 0.2, cycles: [cycle], pauses: [(0.0011, 0.00112), (0.0041, 0.00413)],
                        backgroundCPUSeconds: 0.002, assistSeconds: 1e-4, assists: 3, peakHeapBytes: 5 << 20,
                        finalHeapBytes: 3 << 20)
    }

    @Test func jsonRoundTripsAndHasTheDocumentedKeys() throws {
        let r = sample()
        let json = r.json()
        #expect(GCReport(json: json) == r)
        let text = json.serialized(pretty: false)
        #expect(GCReport(json: try JSONValue.parse(text)) == r)
        for key in ["gogc", "memory_limit_bytes", "heap_minimum_bytes", "mode", "verified", "procs", "replay_seconds",
                    "cycles", "pauses", "mmu", "cpu", "assists", "heap_goal_bytes", "peak_heap_bytes", "final_heap_bytes",
                    "per_cycle"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["pauses"]?["count"]?.intValue == 2)
        #expect(abs((json["pauses"]?["max_seconds"]?.doubleValue ?? 0) - 3e-5) < 1e-12)
        #expect(abs((json["pauses"]?["total_seconds"]?.doubleValue ?? 0) - 5e-5) < 1e-12)
        #expect(json["mmu"]?["1ms"]?.doubleValue.map { abs($0 - (1 - 3e-5 / 1e-3)) < 1e-9 } == true)
        #expect(abs((json["cpu"]?["pause_seconds"]?.doubleValue ?? 0) - 1e-4) < 1e-12)   // 50 µs × 2 P
        #expect(json["heap_goal_bytes"]?.arrayValue == [.int(4 << 20)])
        #expect(json["gogc"] == .int(100))
        var off = r
        off.gogc = nil
        #expect(off.json()["gogc"] == .string("off"))
        #expect(GCReport(json: off.json())?.gogc == nil)
    }

    @Test func textNamesTheFigures() {
        let text = sample().textLines().joined(separator: "\n")
        for word in ["GOGC=100", "cycles", "max pause", "p99", "MMU", "GC CPU", "peak heap"] {
            #expect(text.contains(word), "\(word)")
        }
    }
}

@Suite struct GCLoweringTests {
    @Test func formatExampleLowersToRootOpsAndNoFrees() throws {
        let trace = TempTrace("""
            heaplab-trace 1
            s 1 Node
            s 2 []byte
            a 1 32 2 1
            a 2 32 2 1
            w 1 0 2
            f 2
            a 3 100 0 2
            r 3 400
            f 3
            w 1 0 -
            f 1
            """)
        let program = try TraceLowering.lower(path: trace.path, workers: nil, forCollector: true)
        #expect(program.info.collected)
        #expect(program.info.frees == 0)
        let realloc = ReplayOp.gcRealloc(slot: 2, oldSize: 100, newSize: 400, holds: 1)
        #expect(Array(program.ops(worker: 0)) == [
            .gcAlloc(slot: 0, size: 32, ptrs: 2),
            .gcAlloc(slot: 1, size: 32, ptrs: 2),
            .store(source: 0, wordIndex: 0, destination: 1),
            ReplayOp(kind: ReplayOp.drop, slot: 1),
            .gcAlloc(slot: 2, size: 100, ptrs: 0),
            realloc.0, realloc.1,
            ReplayOp(kind: ReplayOp.drop, slot: 2),   // the realloc's temporary hold
            ReplayOp(kind: ReplayOp.drop, slot: 2),   // f 3
            .store(source: 0, wordIndex: 0, destination: nil),
            ReplayOp(kind: ReplayOp.drop, slot: 0),
        ])
        // The same trace lowered for explicit frees is unchanged (no collector ops).
        let explicit = try TraceLowering.lower(path: trace.path, workers: nil)
        #expect(!explicit.info.collected)
        #expect(explicit.ops(worker: 0).allSatisfy { $0.kind <= ReplayOp.reallocOldSize })
    }

    @Test func pointerSlotsArePointedAtTheResizedCopy() throws {
        let trace = TempTrace("""
            heaplab-trace 1
            a 1 24 3
            a 2 8
            w 1 0 2
            w 1 2 2
            f 2
            r 2 64
            w 1 0 -
            r 2 128
            """)
        let program = try TraceLowering.lower(path: trace.path, workers: nil, forCollector: true, origins: true)
        let first = ReplayOp.gcRealloc(slot: 1, oldSize: 8, newSize: 64, holds: 0)
        let second = ReplayOp.gcRealloc(slot: 1, oldSize: 64, newSize: 128, holds: 0)
        #expect(Array(program.ops(worker: 0)) == [
            .gcAlloc(slot: 0, size: 24, ptrs: 3),
            .gcAlloc(slot: 1, size: 8, ptrs: 0),
            .store(source: 0, wordIndex: 0, destination: 1),
            .store(source: 0, wordIndex: 2, destination: 1),
            ReplayOp(kind: ReplayOp.drop, slot: 1),
            first.0, first.1,
            .store(source: 0, wordIndex: 0, destination: 1),
            .store(source: 0, wordIndex: 2, destination: 1),
            ReplayOp(kind: ReplayOp.drop, slot: 1),
            .store(source: 0, wordIndex: 0, destination: nil),
            second.0, second.1,
            .store(source: 0, wordIndex: 2, destination: 1),   // slot 0 was cut
            ReplayOp(kind: ReplayOp.drop, slot: 1),
        ])
        // Origins: every op knows its record and line; the re-stores name their source.
        let origins = try #require(program.origins?.first)
        #expect(origins.count == program.info.streams[0].opCount)
        #expect(origins[7] == OpOrigin(record: 6, location: .line(7), object: 1, destination: 2))
        #expect(origins[0].location == .line(2))
        let u = GCUseAfterFree(worker: 0, op: 7, role: 1)
        #expect(u.inputError(trace: "t.htrace", origins: program.origins)?.description
                == "t.htrace:7: object 2 was used after the collector freed it")
        #expect(GCUseAfterFree(worker: 0, op: 99, role: 0).inputError(trace: "t", origins: program.origins) == nil)
    }

    /// A resized object that dies on another thread: the allocation that reuses its slot
    /// there must wait for every op of the resize, including the dropped extra hold (else
    /// that drop could take the new object's hold: a bug the stress tests found). The store
    /// that kills it already waits for all of them (an op at which objects die waits for the
    /// last op on each), which covers the allocation too.
    @Test func slotReuseWaitsForTheWholeResize() throws {
        let trace = TempTrace("""
            heaplab-trace 1
            @ 0
            a 1 8
            a 2 16 1
            w 2 0 1
            f 1
            r 1 32
            @ 1
            w 2 0 -
            a 3 8
            """)
        let program = try TraceLowering.lower(path: trace.path, workers: nil, forCollector: true)
        let realloc = ReplayOp.gcRealloc(slot: 0, oldSize: 8, newSize: 32, holds: 0)
        #expect(Array(program.ops(worker: 0)) == [
            .gcAlloc(slot: 0, size: 8, ptrs: 0), .gcAlloc(slot: 1, size: 16, ptrs: 1),
            .store(source: 1, wordIndex: 0, destination: 0), ReplayOp(kind: ReplayOp.drop, slot: 0),
            realloc.0, realloc.1, .store(source: 1, wordIndex: 0, destination: 0), ReplayOp(kind: ReplayOp.drop, slot: 0),
        ])
        #expect(Array(program.ops(worker: 1)) == [
            .wait(worker: 0, count: 8), .store(source: 1, wordIndex: 0, destination: nil),
            .gcAlloc(slot: 0, size: 8, ptrs: 0),
        ])
    }

    /// A store that cuts the last path to an object waits for the last op on that object, even
    /// when the store names only its source: here thread 1 must not clear object 1's slot
    /// before thread 0 has held and dropped object 2 again.
    @Test func aStoreThatKillsAnObjectWaitsForItsLastOp() throws {
        let trace = TempTrace("""
            heaplab-trace 1
            @ 0
            a 1 8 1
            a 2 8
            w 1 0 2
            f 2
            h 2
            f 2
            @ 1
            w 1 0 -
            """)
        let program = try TraceLowering.lower(path: trace.path, workers: nil, forCollector: true)
        #expect(Array(program.ops(worker: 0)) == [
            .gcAlloc(slot: 0, size: 8, ptrs: 1), .gcAlloc(slot: 1, size: 8, ptrs: 0),
            .store(source: 0, wordIndex: 0, destination: 1), ReplayOp(kind: ReplayOp.drop, slot: 1),
            ReplayOp(kind: ReplayOp.hold, slot: 1), ReplayOp(kind: ReplayOp.drop, slot: 1),
        ])
        // Object 1 alone would need only the store (3 ops); object 2 dies here: all 6.
        #expect(Array(program.ops(worker: 1)) == [
            .wait(worker: 0, count: 6), .store(source: 0, wordIndex: 0, destination: nil),
        ])
    }

    @Test func gcAllocKeepsLargePointerCounts() {
        let op = ReplayOp.gcAlloc(slot: 7, size: 1 << 40, ptrs: (1 << 37) - 1)
        #expect(op.arg & ReplayOp.gcSizeMask == 1 << 40)
        #expect(op.gcPointerSlots == (1 << 37) - 1)
        #expect(ReplayOp.gcAlloc(slot: 0, size: 16, ptrs: 2).gcPointerSlots == 2)
    }
}

/// Writes a generator's trace to a temporary text file.
func generatedTrace(_ generator: some TraceGenerator, seed: UInt64) throws -> TempTrace {
    var lines: [String] = []
    _ = try generator.run(seed: seed) { record throws(InputError) in lines.append(TraceWriterText.line(record)) }
    return TempTrace(lines.joined(separator: "\n") + "\n")
}

/// The text form of a record (enough for the tests' traces).
enum TraceWriterText {
    static func line(_ r: TraceRecord) -> String {
        switch r {
        case .header(let v): return "heaplab-trace \(v)"
        case .site(let id, let name): return "s \(id) \(name)"
        case .thread(let t): return "@ \(t)"
        case .alloc(let id, let size, let ptrs, let site): return "a \(id) \(size) \(ptrs)" + (site.map { " \($0)" } ?? "")
        case .free(let id): return "f \(id)"
        case .hold(let id): return "h \(id)"
        case .write(let s, let slot, let d): return "w \(s) \(slot) \(d.map(String.init) ?? "-")"
        case .realloc(let id, let size): return "r \(id) \(size)"
        }
    }
}

@Suite(.serialized) struct GCReplayTests {
    func replay(_ path: String, threads: Int?, options: GCReplayOptions, verify: Bool = true) throws -> ReplayMeasurement {
        let program = try TraceLowering.lower(path: path, workers: threads, forCollector: true, origins: verify)
        do {
            return try ReplayRunner.measure(program: program, allocator: .gc, verify: verify, gc: options)
        } catch {
            // Name the trace's line, as `heaplab replay` does.
            if let u = error.useAfterFree, let named = u.inputError(trace: path, origins: program.origins) { throw named }
            throw error
        }
    }

    /// Random GC traces (cycles, resizes of pointed-at objects, holds handed between
    /// threads) replayed under --verify while the collector runs constantly.
    @Test(arguments: [(UInt64(1), 1, 1), (2, 2, 1), (3, 3, 10), (4, 2, 100), (5, 4, 1)])
    func randomTracesPassVerify(seed: UInt64, threads: Int, gogc: Int) throws {
        let trace = TempTrace(TraceBuilder.gcTrace(records: 30_000, threads: threads, seed: seed))
        // A small minimum heap, so that even GOGC=100 collects on a trace this size.
        let m = try replay(trace.path, threads: nil, options: GCReplayOptions(gogc: gogc, heapMinimum: 64 << 10))
        let gc = try #require(m.gc)
        #expect(m.verified && gc.verified)
        #expect(gc.cycles.count >= 1)
        #expect(gc.pauses.count >= gc.cycles.count)
        #expect(gc.peakHeapBytes > 0)
        #expect(gc.pauses.allSatisfy { $0.start >= 0 && $0.start <= gc.replaySeconds && $0.end >= $0.start })
    }

    @Test(arguments: [("gcbench", 1), ("binary-trees", 3), ("lru", 2), ("random-graph", 2)], [1, 10, 100])
    func generatedTracesPassVerify(workload: (String, Int), gogc: Int) throws {
        let (name, threads) = workload
        let trace: TempTrace
        switch name {
        case "gcbench":
            var g = GCBench()
            g.stretchDepth = 12; g.longLivedDepth = 10; g.maxDepth = 10
            trace = try generatedTrace(g, seed: 7)
        case "binary-trees":
            var g = BinaryTrees()
            g.depth = 12; g.threads = threads
            trace = try generatedTrace(g, seed: 7)
        case "lru":
            var g = LRUCache()
            g.threads = threads; g.ops = 20_000
            trace = try generatedTrace(g, seed: 7)
        default:
            var g = RandomGraph()
            g.threads = threads; g.ops = 60_000
            trace = try generatedTrace(g, seed: 7)
        }
        let m = try replay(trace.path, threads: nil, options: GCReplayOptions(gogc: gogc, heapMinimum: 256 << 10))
        let gc = try #require(m.gc)
        #expect(gc.cycles.count >= 1, "\(name) at GOGC=\(gogc) never collected")
        #expect(m.workers == threads)
    }

    @Test func stopTheWorldModeHasOnePausePerCycle() throws {
        let trace = TempTrace(TraceBuilder.gcTrace(records: 30_000, threads: 2, seed: 9))
        let m = try replay(trace.path, threads: nil, options: GCReplayOptions(gogc: 1, stopTheWorld: true))
        let gc = try #require(m.gc)
        #expect(gc.stopTheWorld)
        #expect(gc.cycles.count >= 1)
        #expect(gc.cycles.allSatisfy { $0.concurrentMarkSeconds == 0 })
        // The world stays stopped from mark setup to termination: one pause per cycle (a
        // cycle cut short by the end of the replay may add one).
        #expect(gc.pauses.count >= gc.cycles.count && gc.pauses.count <= gc.cycles.count + 1)
    }

    @Test func explicitProgramsAreRefused() throws {
        let trace = TempTrace(TraceBuilder.gcTrace(records: 100, seed: 1))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        #expect(throws: ReplayError.self) {
            try ReplayRunner.measure(program: program, allocator: .gc, verify: false)
        }
    }

    /// A program (made by hand: no valid trace does this) that names an object after
    /// dropping its only hold, with enough garbage in between for several collections.
    @Test func verifyStopsAtAnOpWhoseObjectWasSwept() throws {
        // Slot 2 keeps a neighbour in the same span alive, so the span stays a span of
        // 64-byte objects and slot 0's object reads as freed once it is swept.
        var ops: [ReplayOp] = [.gcAlloc(slot: 0, size: 64, ptrs: 0), .gcAlloc(slot: 2, size: 64, ptrs: 0),
                               ReplayOp(kind: ReplayOp.drop, slot: 0)]
        for _ in 0..<20_000 {
            ops.append(.gcAlloc(slot: 1, size: 1024, ptrs: 0))
            ops.append(ReplayOp(kind: ReplayOp.drop, slot: 1))
        }
        let culprit = ops.count
        ops.append(ReplayOp(kind: ReplayOp.hold, slot: 0))
        let program = try handMadeProgram(ops, slots: 3)
        do {
            _ = try ReplayRunner.measure(program: program, allocator: .gc, verify: true,
                                         gc: GCReplayOptions(gogc: 1, heapMinimum: 64 << 10))
            Issue.record("the replay did not notice the use after free")
        } catch {
            #expect(error.useAfterFree == GCUseAfterFree(worker: 0, op: culprit, role: 0), "\(error)")
        }
        // Without --verify the op is not checked (and the hold is harmless here).
        let quiet = try ReplayRunner.measure(program: program, allocator: .gc, verify: false,
                                             gc: GCReplayOptions(gogc: 1, heapMinimum: 64 << 10))
        #expect((quiet.gc?.cycles.count ?? 0) >= 1)
    }

    @Test func timelineIsChromeTraceEventJSON() throws {
        let trace = TempTrace(TraceBuilder.gcTrace(records: 40_000, threads: 2, seed: 3))
        let path = "/tmp/heaplab-gc-timeline-\(getpid()).json"
        defer { unlink(path) }
        let m = try replay(trace.path, threads: nil, options: GCReplayOptions(gogc: 1, timeline: path), verify: false)
        let text = try String(contentsOfFileBytes: path)
        let json = try JSONValue.parse(text)
        let events = try #require(json["traceEvents"]?.arrayValue)
        let names = Set(events.compactMap { $0["name"]?.stringValue })
        for expected in ["process_name", "thread_name", "replay", "mark setup (STW)", "mark termination (STW)", "concurrent mark", "heap"] {
            #expect(names.contains(expected), "no \(expected) event")
        }
        #expect(names.contains("assist") || names.contains("mark"), "neither assists nor worker slices")
        #expect(names.contains { $0.hasPrefix("GC ") })
        for e in events where e["ph"] == .string("X") {
            #expect((e["ts"]?.doubleValue ?? -1) >= -1, "event before the replay: \(e)")
            #expect((e["dur"]?.doubleValue ?? -1) >= 0)
            #expect(e["tid"]?.intValue != nil && e["pid"]?.intValue == 1)
        }
        let pauses = events.filter { $0["cat"] == .string("pause") }
        #expect(pauses.count >= (m.gc?.cycles.count ?? 0) * 2)
    }
}

extension String {
    /// The whole file at `path` as UTF-8 (tests).
    init(contentsOfFileBytes path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ReplayError("cannot open \(path)") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}

/// A collector program from raw ops, in one worker's stream.
func handMadeProgram(_ ops: [ReplayOp], slots: Int) throws -> ReplayProgram {
    let fd = try ReplaySystem.makeSharedFile(name: "test-program").get()
    let headerBytes = ReplayProgram.headerBytes(workers: 1, profileSamples: 0)
    let info = ReplayProgramInfo(workers: 1, slotCount: slots, records: ops.count, traceThreads: 1, peakLiveBytes: 0,
                                 peakWorker: -1, peakOpEnd: 0, finalLiveBytes: 0, totalAllocatedBytes: 0,
                                 allocations: 0, frees: 0, reallocs: 0, stores: 0, waits: 0,
                                 streams: [ReplayStreamInfo(offset: headerBytes, opCount: ops.count, nullBytes: 0)],
                                 liveProfile: [], collected: true)
    let header = ReplayProgram.encodeHeader(info)
    _ = try header.withUnsafeBytes { ReplaySystem.writeAll(fd, $0.baseAddress!, count: $0.count, offset: 0) }.get()
    _ = try ops.withUnsafeBytes { ReplaySystem.writeAll(fd, $0.baseAddress!, count: $0.count, offset: headerBytes) }.get()
    _ = ftruncate(fd, off_t(ReplaySystem.roundUpToPage(headerBytes + ops.count * 16)))
    return try ReplayProgram(fd: fd)
}

/// The collector replay touches a large object's pages in 64 KiB chunks with a safepoint
/// between them: the bytes written must be exactly those of one touchPages over the range.
@Suite struct ChunkedTouchTests {
    @Test(arguments: [(0, 300_000), (1, 262_144), (4095, 200_001), (100, 65_536), (5, 70_000), (0, 65_537)])
    func chunkedTouchWritesTheSameBytesAsOneTouch(from: Int, to: Int) {
        let size = 320 << 10
        // Page-aligned, as a large object is.
        let whole = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        let chunked = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { whole.deallocate(); chunked.deallocate() }
        whole.initializeMemory(as: UInt8.self, repeating: 0xFF, count: size)
        chunked.initializeMemory(as: UInt8.self, repeating: 0xFF, count: size)
        touchPages(whole, from: from, to: to)
        var polls = 0
        touchPagesInChunks(chunked, from: from, to: to) { polls += 1 }
        #expect(memcmp(whole, chunked, size) == 0)
        #expect(polls == (to - from + (64 << 10) - 1) / (64 << 10))
        // And they are the page boundaries after `from`, up to `to`.
        var touched = 0
        for i in 0..<size where whole.load(fromByteOffset: i, as: UInt8.self) == 0 { touched += 1 }
        #expect(touched == (to - 1) / 4096 - from / 4096)
    }
}
