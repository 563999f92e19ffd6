// The load phase: which ops a trace lowers to, slot reuse, peak-live point, profile, and
// errors at the right line.
import Testing
import HeapLabTrace
@testable import HeapLabReplay

@Suite struct LoweringTests {
    @Test func opLayoutIsFixed() {
        #expect(MemoryLayout<ReplayOp>.size == 16)
        #expect(MemoryLayout<ReplayOp>.stride == 16)
    }

    @Test func storeEncodesWideWordIndexes() {
        let op = ReplayOp.store(source: 7, wordIndex: (1 << 36) + 5, destination: 9)
        #expect(op.wordIndex == (1 << 36) + 5)
        #expect(op.destinationSlot == 9)
        #expect(op.slot == 7)
        let nilStore = ReplayOp.store(source: 3, wordIndex: 2, destination: nil)
        #expect(nilStore.kind == ReplayOp.storeNil)
        #expect(nilStore.wordIndex == 2)
    }

    @Test func mallocTraceLowersToAllocFreeRealloc() throws {
        let trace = TempTrace("""
            heaplab-trace 1
            s 1 thing
            a 1 32
            a 2 100 2 1
            f 1
            a 3 100
            r 3 400
            h 3
            f 3
            f 3
            """)
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let ops = Array(program.ops(worker: 0))
        #expect(ops == [
            .alloc(slot: 0, size: 32, noscan: true),
            .alloc(slot: 1, size: 100, noscan: false),
            .free(slot: 0, size: 32, noscan: true),
            .alloc(slot: 0, size: 100, noscan: true),       // slot 0 reused
            ReplayOp.realloc(slot: 0, oldSize: 100, newSize: 400).0,
            ReplayOp.realloc(slot: 0, oldSize: 100, newSize: 400).1,
            .free(slot: 0, size: 400, noscan: true),                       // at the second f, not the first
        ])
        let info = program.info
        #expect(info.records == 10)
        #expect(info.workers == 1)
        #expect(info.slotCount == 2)
        #expect(info.allocations == 3)
        #expect(info.frees == 2)
        #expect(info.reallocs == 1)
        #expect(info.peakLiveBytes == 500)
        #expect(info.peakWorker == 0)
        #expect(info.peakOpEnd == 6)          // right after the realloc pair
        #expect(info.finalLiveBytes == 100)   // object 2 is never freed
        #expect(info.totalAllocatedBytes == 32 + 100 + 100 + 400)
        #expect(info.streams[0].nullBytes == 32 + 112 + 112 + 400)
        #expect(info.waits == 0)
        #expect(info.liveProfile.last == LiveSample(record: 9, liveBytes: 100))
    }

    @Test func liveProfileIsEvenlySpaced() throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 5000, seed: 3))
        let program = try TraceLowering.lower(path: trace.path, workers: 1, profileSamples: 100)
        let profile = program.info.liveProfile
        #expect(profile.count == 100)
        #expect(profile.last?.record == program.info.records - 1)
        #expect(profile.allSatisfy { $0.liveBytes <= program.info.peakLiveBytes })
        for (a, b) in zip(profile, profile.dropFirst()) { #expect(b.record > a.record) }
    }

    @Test func errorsNameTheLine() throws {
        let trace = TempTrace("""
            heaplab-trace 1
            a 1 16
            f 1
            f 1
            """)
        #expect {
            _ = try TraceLowering.lower(path: trace.path, workers: nil)
        } throws: { error in
            guard let e = error as? InputError else { return false }
            return e.file == trace.path && e.location == .line(4)
        }
    }

    @Test func binaryAndTextLowerTheSame() throws {
        let text = TraceBuilder.mallocTrace(records: 3000, threads: 2, seed: 11)
        let trace = TempTrace(text)
        let binaryPath = trace.path + ".bin"
        var reader = try TraceReader.open(path: trace.path)
        let writer = try TraceWriter(path: binaryPath, encoding: .binary)
        while let r = try reader.next() { try writer.write(r) }
        try writer.finish()
        defer { _ = binaryPath.withCString { unlink($0) } }
        let a = try TraceLowering.lower(path: trace.path, workers: nil)
        let b = try TraceLowering.lower(path: binaryPath, workers: nil)
        #expect(a.info == b.info)
        for w in 0..<a.info.workers { #expect(Array(a.ops(worker: w)) == Array(b.ops(worker: w))) }
    }

    @Test func threadsAreClampedAndOneThreadKeepsFileOrder() throws {
        let trace = TempTrace(TraceBuilder.mallocTrace(records: 2000, threads: 3, seed: 5))
        let many = try TraceLowering.lower(path: trace.path, workers: 64)
        #expect(many.info.workers == 3)
        #expect(many.info.traceThreads == 3)
        let one = try TraceLowering.lower(path: trace.path, workers: 1)
        #expect(one.info.workers == 1)
        #expect(one.info.waits == 0)
        // The same work, whatever the split.
        #expect(one.info.allocations == many.info.allocations)
        #expect(one.info.frees == many.info.frees)
        #expect(one.info.peakLiveBytes == many.info.peakLiveBytes)
        #expect(many.info.totalOps == one.info.totalOps + many.info.waits)
    }
}

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SlotMapTests {
    @Test func agreesWithDictionaryUnderChurn() {
        var map = SlotMap(capacity: 4)
        defer { map.deallocate() }
        var reference: [UInt64: UInt32] = [:]
        var rng = TestRandom(seed: 99)
        for step in 0..<200_000 {
            // Keys from a small range collide and cluster, which exercises backward shift.
            let key = rng.next() % 5000 &* (step % 3 == 0 ? 1 : 1 << 32)
            switch rng.below(3) {
            case 0:
                let v = UInt32(step)
                map.set(key, v)
                reference[key] = v
            case 1:
                map.remove(key)
                reference[key] = nil
            default:
                #expect(map.get(key) == reference[key])
            }
        }
        #expect(map.count == reference.count)
        for (k, v) in reference { #expect(map.get(k) == v) }
    }
}
