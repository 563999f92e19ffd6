// The replay loop on each in-process back end: every allocation gets a distinct,
// non-overlapping, writable block (VerifyingAllocator), first words are written, the
// measurement is filled in. (jemalloc, mimalloc and tcmalloc run in a child process and are
// covered by the CLI tests.)
import Testing
@testable import HeapLabReplay

@Suite struct ReplayLoopTests {
    @Test(arguments: [AllocatorKind.glibc, .heaplab, .null])
    func verifiedReplay(_ allocator: AllocatorKind) throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 20000, seed: 7))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let m = try ReplayRunner.measure(program: program, allocator: allocator, verify: true)
        #expect(m.verified)
        #expect(m.workers == 1)
        #expect(m.wallSeconds > 0)
        #expect(m.peakRSSBytes >= m.baselineRSSBytes)
        #expect(m.rssAtPeakLiveBytes > 0)
    }

    @Test(arguments: [AllocatorKind.glibc, .heaplab])
    func sizedFreeReplayVerified(_ allocator: AllocatorKind) throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 20000, threads: 2, seed: 31))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let m = try ReplayRunner.measure(program: program, allocator: allocator, verify: true, sizedFree: true)
        #expect(m.verified)
        #expect(m.sizedFree == (allocator == .heaplab))   // glibc has no sized free
    }

    @Test func verificationCountsEveryBlock() throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 5000, seed: 8))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let log = VerificationLog()
        _ = try ReplayRunner.run(program, makeBackend: { () throws(ReplayError) in
            VerifyingBackend(MallocBackend(), log: log)
        })
        #expect(log.failure == nil)
        #expect(log.allocations == program.info.allocations + program.info.reallocs)
        #expect(log.frees == program.info.frees + program.info.reallocs)
    }

    @Test func verifierCatchesOverlappingBlocks() {
        // A deliberately broken allocator that hands out the same block twice.
        struct Broken: ReplayAllocator {
            let block: UnsafeMutableRawPointer
            mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer? { block }
            mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool) {}
            mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? { block }
        }
        let block = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { block.deallocate() }
        let log = VerificationLog()
        var a = VerifyingAllocator(base: Broken(block: block), log: log)
        _ = a.allocate(size: 32, noscan: true)
        #expect(log.failure == nil)
        _ = a.allocate(size: 32, noscan: true)
        #expect(log.failure?.contains("overlaps") == true)
    }

    @Test func firstWordsAreWritten() throws {
        let trace = TempTrace("""
            heaplab-trace 1
            a 1 64
            a 2 64 2
            a 3 3
            """)
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        _ = try ReplayRunner.run(program, makeBackend: { () throws(ReplayError) in try NullBackend(program: program.info) },
                                 inspect: { table in
            let p0 = table.pointer(slot: 0)!
            let p1 = table.pointer(slot: 1)!
            let p2 = table.pointer(slot: 2)!
            #expect(p0.load(as: UInt64.self) == 0)        // noscan: its slot number
            #expect(p1.load(as: UInt64.self) == 0)        // scan: a nil pointer
            #expect(p2.load(as: UInt8.self) == 2)         // 3 bytes: only the first byte
            #expect(p1 - p0 == 64)                         // null allocator: bump pointer
            #expect(UInt(bitPattern: p2) % 16 == 0)
        })
    }

    @Test func nullAllocatorRegionIsExactlyTheTraceTotal() throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 3000, seed: 2))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let (m, backend) = try ReplayRunner.run(program, makeBackend: { () throws(ReplayError) in
            try NullBackend(program: program.info)
        })
        #expect(backend.statistics().first?.1 == program.info.totalNullBytes)
        #expect(m.allocatorStatistics.first?.value == program.info.totalNullBytes)
    }

    @Test func heapLabStatisticsAfterReplay() throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 10000, seed: 12))
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let m = try ReplayRunner.measure(program: program, allocator: .heaplab, verify: false)
        let stats = Dictionary(uniqueKeysWithValues: m.allocatorStatistics.map { ($0.name, $0.value) })
        // Every alloc and every realloc (allocate + free) reached the heap; tiny objects are
        // counted by the 16-byte blocks they share, as in Go.
        let total = stats["total_allocs"]! - stats["tiny_blocks"]! + stats["tiny_allocs"]!
        #expect(total == program.info.allocations + program.info.reallocs)
        #expect(stats["live_objects"]! <= program.info.allocations - program.info.frees)
        #expect(stats["live_objects"]! > 0)
    }
}
