// Multi-threaded replay: the wait scheme keeps every cross-thread dependency, checked in
// many random interleavings symbolically and then on real threads; an allocator that runs
// out stops the replay with its reason, and releases the threads waiting on it.
import Testing
import HeapLabAllocator
@testable import HeapLabReplay

@Suite struct ThreadedReplayTests {
    /// Runs the program in `schedules` random interleavings that respect only the waits.
    func checkInterleavings(_ program: ReplayProgram, schedules: Int, seed: UInt64) throws {
        let info = program.info
        var rng = TestRandom(seed: seed)
        let streams = (0..<info.workers).map { program.ops(worker: $0) }
        for _ in 0..<schedules {
            var sim = SymbolicReplay(slots: info.slotCount, workers: info.workers)
            while true {
                let runnable = (0..<info.workers).filter { sim.runnable(streams[$0], worker: $0) }
                if runnable.isEmpty { break }
                // Run a random worker for a random burst, to get both fine and coarse interleavings.
                let w = runnable[rng.below(runnable.count)]
                for _ in 0..<(1 + rng.below(4)) where sim.runnable(streams[w], worker: w) {
                    try sim.step(streams[w], worker: w)
                }
            }
            for w in 0..<info.workers {
                #expect(sim.progress[w] == streams[w].count, "worker \(w) stuck: deadlock")
            }
        }
    }

    @Test func waitsKeepEveryDependency() throws {
        for seed in [UInt64(1), 2, 3] {
            let trace = TempTrace(TraceBuilder.mallocTrace(records: 3000, threads: 4, seed: seed))
            let program = try TraceLowering.lower(path: trace.path, workers: nil)
            #expect(program.info.workers == 4)
            #expect(program.info.waits > 0)
            try checkInterleavings(program, schedules: 30, seed: seed)
        }
    }

    @Test func waitsKeepEveryDependencyWithPointerStores() throws {
        let trace = TempTrace(TraceBuilder.gcTrace(records: 4000, threads: 3, seed: 6))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        #expect(program.info.workers == 3)
        #expect(program.info.stores > 0)
        try checkInterleavings(program, schedules: 30, seed: 6)
        let m = try ReplayRunner.measure(program: program, allocator: .heaplab, verify: true)
        #expect(m.verified)
    }

    @Test func withoutWaitsTheCheckerFindsViolations() throws {
        // The same trace, with the waits taken out, must fail in some interleaving: this
        // shows the symbolic checker can fail.
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 3000, threads: 4, seed: 9))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let info = program.info
        let stripped = (0..<info.workers).map { Array(program.ops(worker: $0)).filter { $0.kind != ReplayOp.wait } }
        var rng = TestRandom(seed: 4)
        var failures = 0
        for _ in 0..<20 {
            var sim = SymbolicReplay(slots: info.slotCount, workers: info.workers)
            do {
                var done = false
                while !done {
                    let runnable = (0..<info.workers).filter { sim.progress[$0] < stripped[$0].count }
                    if runnable.isEmpty { done = true; break }
                    let w = runnable[rng.below(runnable.count)]
                    try stripped[w].withUnsafeBufferPointer { try sim.step($0, worker: w) }
                }
            } catch {
                failures += 1
            }
        }
        #expect(failures > 0)
    }

    @Test func crossThreadFreeWaitsForTheAllocation() throws {
        let trace = TempTrace("""
            heaplab-trace 1
            @ 0
            a 1 64
            @ 1
            f 1
            """)
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        #expect(Array(program.ops(worker: 0)) == [.alloc(slot: 0, size: 64, noscan: true)])
        #expect(Array(program.ops(worker: 1)) == [.wait(worker: 0, count: 1), .free(slot: 0, size: 64, noscan: true)])
    }

    @Test(arguments: [AllocatorKind.glibc, .heaplab, .null])
    func realThreadsReplayVerified(_ allocator: AllocatorKind) throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 20000, threads: 4, seed: 21))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let m = try ReplayRunner.measure(program: program, allocator: allocator, verify: true)
        #expect(m.workers == 4)
        #expect(m.verified)
    }
}

@Suite struct ReplayFailureTests {
    /// HeapLab with a memory limit below one arena: the first allocation fails.
    func limitedHeap() throws(ReplayError) -> HeapLabBackend {
        try HeapLabBackend(configuration: HeapConfiguration(memoryLimit: 4096, onFault: .record))
    }

    @Test func exhaustedAllocatorStopsTheReplayWithTheReason() throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 1000, seed: 5))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        #expect {
            _ = try ReplayRunner.run(program, makeBackend: limitedHeap)
        } throws: { error in
            guard let e = error as? ReplayError else { return false }
            return e.message.contains("replay stopped at op 0 of worker 0") && e.message.contains("limit")
        }
    }

    @Test func aFailingThreadReleasesThoseWaitingForIt() throws {
        // Every thread waits on objects of the others; the first allocation anywhere fails.
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 5000, threads: 4, seed: 8))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        #expect(program.info.waits > 0)
        #expect(throws: ReplayError.self) {
            _ = try ReplayRunner.run(program, makeBackend: limitedHeap)
        }
    }
}

