import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import HeapLabAllocator

/// Deterministic PRNG for reproducible randomized tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func recordingHeap(limit: Int = 0) throws -> Heap {
    var config = HeapConfiguration()
    config.onFault = .record
    config.memoryLimit = limit
    config.addressSpace = 4 << 30
    return try Heap(configuration: config)
}

/// A live object in the reference model.
struct ModelObject {
    var address: UInt
    var size: Int
    var fill: UInt8
}

@Suite struct AllocatorTests {
    @Test func headersStaySmall() {
        // Pinned so a header never grows by accident (see docs/allocator.md for the budget).
        #expect(MemoryLayout<MSpan>.size == 112)
        #expect(MemoryLayout<MCache>.size == 136)
        #expect(MemoryLayout<ThreadCache>.size == 8)
    }

    @Test(arguments: [1 as UInt64, 2, 3])
    func randomizedAgainstReferenceModel(seed: UInt64) throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        var rng = SplitMix64(state: seed)
        var live: [ModelObject] = []
        var freedAddresses = Set<UInt>()
        var reused = 0
        for step in 0..<40_000 {
            if live.isEmpty || rng.next() % 100 < 55 {
                let roll = rng.next() % 100
                let size: Int
                if roll < 30 { size = Int(rng.next() % 15) + 1 }          // tiny candidates
                else if roll < 95 { size = Int(rng.next() % 2048) + 1 }
                else if roll < 99 { size = Int(rng.next() % 32768) + 1 }
                else { size = Int(rng.next() % 200_000) + 32769 }         // large
                let noscan = rng.next() % 2 == 0
                guard let p = cache.allocate(size: size, noscan: noscan, zeroed: true) else {
                    Issue.record("allocation of \(size) failed: \(String(describing: heap.lastError))")
                    return
                }
                let addr = UInt(bitPattern: p)
                // Alignment: Go aligns small objects to 8 (16 from 16 bytes up); tiny objects
                // by their size; large objects to a page.
                if size > AllocatorConstants.maxSmallSize {
                    #expect(addr % UInt(AllocatorConstants.pageSize) == 0)
                } else if noscan && size < 16 {
                    let align: UInt = size % 8 == 0 ? 8 : size % 4 == 0 ? 4 : size % 2 == 0 ? 2 : 1
                    #expect(addr % align == 0)
                } else {
                    // Each class is aligned to its size's lowest set bit (Go's "min align").
                    let classSize = UInt(heap.objectInfo(p)!.size)
                    #expect(addr % min(classSize & (~classSize &+ 1), UInt(AllocatorConstants.pageSize)) == 0)
                    #expect(addr % 8 == 0)
                }
                #expect(heap.reservedRange.contains(addr))
                // Zeroed allocations read as zero.
                let bytes = UnsafeMutableRawBufferPointer(start: p, count: size)
                if bytes.contains(where: { $0 != 0 }) {
                    Issue.record("step \(step): zeroed allocation of \(size) bytes at \(addr) is not zero")
                }
                if freedAddresses.remove(addr) != nil { reused += 1 }
                let fill = UInt8(truncatingIfNeeded: step % 251 + 1)
                memset(p, Int32(fill), size)
                live.append(ModelObject(address: addr, size: size, fill: fill))
            } else {
                let i = Int(rng.next() % UInt64(live.count))
                live.swapAt(i, live.count - 1)
                let object = live.removeLast()
                // Its bytes are intact: no other live object overlapped it.
                let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: object.address), count: object.size)
                if bytes.contains(where: { $0 != object.fill }) {
                    Issue.record("object at \(object.address) (\(object.size) bytes) was overwritten")
                    return
                }
                cache.free(UnsafeMutableRawPointer(bitPattern: object.address)!)
                freedAddresses.insert(object.address)
            }
        }
        // No two live objects overlap.
        let sorted = live.sorted { $0.address < $1.address }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(a.address + UInt(a.size) <= b.address, "objects at \(a.address) and \(b.address) overlap")
        }
        #expect(reused > 1000, "freed memory is reused")
        #expect(heap.faults.isEmpty)
        heap.releaseThreadCache(cache)
        let stats = heap.statistics()
        let nonTinyLive = live.count
        #expect(stats.liveObjects <= nonTinyLive)
        #expect(stats.totalAllocs - stats.totalFrees == stats.liveObjects)
    }

    @Test func tinyObjectsShareBlocksAndAreCountedApart() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        let a = cache.allocate(size: 4, noscan: true)!
        let b = cache.allocate(size: 4, noscan: true)!
        let c = cache.allocate(size: 8, noscan: true)!
        #expect(UInt(bitPattern: b) == UInt(bitPattern: a) + 4)
        #expect(UInt(bitPattern: c) == UInt(bitPattern: a) + 8)  // aligned to 8
        let d = cache.allocate(size: 4, noscan: true)!             // block full: a new one
        #expect(UInt(bitPattern: d) / 16 != UInt(bitPattern: a) / 16)
        // Pointerful small objects never go to the tiny allocator.
        let e = cache.allocate(size: 4, noscan: false)!
        #expect(heap.objectInfo(e)?.size == 8)
        heap.releaseThreadCache(cache)
        let stats = heap.statistics()
        #expect(stats.tinyAllocs == 4)
        #expect(stats.tinyBlocks == 2)
    }

    @Test func tinyBlockIsFreedWhenAllItsObjectsAre() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        let a = cache.allocate(size: 8, noscan: true)!
        let b = cache.allocate(size: 8, noscan: true)!
        _ = cache.allocate(size: 8, noscan: true)!  // a second block becomes current
        cache.free(a)
        #expect(heap.isLive(a))        // b still uses the block
        cache.free(b)
        #expect(!heap.isLive(a))       // last object gone and the cache moved on: block freed
        #expect(heap.faults.isEmpty)
    }

    @Test func freshPagesAreNotClearedButReusedSlotsAre() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        var ptrs: [UnsafeMutableRawPointer] = []
        for _ in 0..<1000 {
            let p = cache.allocate(size: 64, noscan: false, zeroed: true)!
            #expect(p.load(as: UInt64.self) == 0)
            #expect(heap.state.spanOf(UInt(bitPattern: p))!.pointee.needzero == 0)
            memset(p, 0xAB, 64)
            ptrs.append(p)
        }
        for p in ptrs { cache.free(p) }
        for _ in 0..<1000 {
            let p = cache.allocate(size: 64, noscan: false, zeroed: true)!
            let bytes = UnsafeRawBufferPointer(start: p, count: 64)
            #expect(!bytes.contains(where: { $0 != 0 }))
        }
        // A large object asked for zeroed is cleared on reused pages; one that is not keeps
        // the old bytes, as malloc's do (no clearing its rivals skip).
        let big = cache.allocate(size: 100_000, noscan: true)!
        memset(big, 0xCD, 100_000)
        cache.free(big)
        let big2 = cache.allocate(size: 100_000, noscan: true, zeroed: true)!
        #expect(big2 == big)
        #expect(!UnsafeRawBufferPointer(start: big2, count: 100_000).contains(where: { $0 != 0 }))
        memset(big2, 0xCD, 100_000)
        cache.free(big2)
        let big3 = cache.allocate(size: 100_000, noscan: true)!
        #expect(big3 == big)
        #expect(!UnsafeRawBufferPointer(start: big3, count: 100_000).contains(where: { $0 != 0xCD }))
    }

    @Test func badFreesAreReportedNamingPointerAndSpan() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        let p = cache.allocate(size: 48, noscan: false)!
        var local = 0
        withUnsafeMutablePointer(to: &local) { cache.free(UnsafeMutableRawPointer($0)) }
        cache.free(p + 8)
        cache.free(p)
        cache.free(p)
        let big = cache.allocate(size: 40_000, noscan: true)!
        cache.free(big + 4096)
        cache.free(big)
        cache.free(big)
        let faults = heap.faults
        #expect(faults.map(\.kind) == [.notHeapPointer, .interiorPointer, .doubleFree, .interiorPointer, .notHeapPointer])
        #expect(faults[1].description.contains("0x\(String(UInt(bitPattern: p + 8), radix: 16))"))
        #expect(faults[1].description.contains("size class 5, 48-byte objects"))
        #expect(faults[2].spanStart != nil)
        // The heap was left unchanged by the bad frees: p's slot was freed exactly once.
        cache.flushSpans()
        #expect(!heap.isLive(p))
        #expect(heap.faults.count == 5)
    }

    @Test func memoryLimitGivesAClearError() throws {
        let heap = try recordingHeap(limit: 64 << 20)
        let cache = heap.makeThreadCache()
        var count = 0
        while cache.allocate(size: 1 << 20, noscan: true) != nil { count += 1 }
        #expect(count >= 60 && count <= 64)
        #expect(heap.lastError?.description.contains("limit of 67108864 bytes") == true)
    }

    @Test func outOfAddressSpaceGivesAClearError() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        #expect(cache.allocate(size: 8 << 30, noscan: true) == nil)
        #expect(heap.lastError != nil)
    }

    @Test func emptySpansReturnToTheHeapAndStatisticsAddUp() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        var ptrs: [UnsafeMutableRawPointer] = []
        for _ in 0..<10_000 { ptrs.append(cache.allocate(size: 100, noscan: false)!) }
        var stats = heap.statistics(including: [cache])
        let cls = SizeClasses.classIndex(forSize: 100)
        #expect(stats.perClass[cls - 1].allocations == 10_000)
        #expect(stats.perClass[cls - 1].liveObjects == 10_000)
        let inUseBefore = stats.heapInUse
        for p in ptrs { cache.free(p) }
        cache.flushSpans()
        heap.releaseEmptySpans()
        stats = heap.statistics(including: [cache])
        #expect(stats.perClass[cls - 1].frees == 10_000)
        #expect(stats.perClass[cls - 1].liveObjects == 0)
        #expect(stats.perClass[cls - 1].spans == 0)
        #expect(stats.heapInUse < inUseBefore)
        #expect(stats.heapIdle == stats.heapSys - stats.heapInUse)
    }

    @Test func metadataStaysUnderTwoPercentForSmallObjects() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        var rng = SplitMix64(state: 42)
        var total = 0
        while total < 256 << 20 {
            let size = Int(rng.next() % 2000) + 16
            _ = cache.allocate(size: size, noscan: rng.next() % 2 == 0)!
            total += size
        }
        let stats = heap.statistics(including: [cache])
        let ratio = Double(stats.metadataBytes) / Double(stats.heapInUse)
        #expect(ratio < 0.02, "metadata \(stats.metadataBytes) for \(stats.heapInUse) in use: \(ratio)")
    }
}

/// Resident bytes of [base, base+bytes), page by page from /proc/self/pagemap (bit 63 of
/// each page's entry: present in RAM).
func residentBytes(from base: UInt, bytes: Int) -> Int? {
    let fd = open("/proc/self/pagemap", O_RDONLY)
    if fd < 0 { return nil }
    defer { close(fd) }
    let osPage = Int(sysconf(Int32(_SC_PAGESIZE)))
    let pages = bytes / osPage
    var entries = [UInt64](repeating: 0, count: pages)
    let offset = off_t(Int(base) / osPage * 8)
    let n = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
    if n != pages * 8 { return nil }
    return entries.reduce(0) { $0 + ($1 >> 63 == 1 ? osPage : 0) }
}

@Suite struct ScavengerTests {
    @Test func scavengingDropsResidentMemory() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        var ptrs: [UnsafeMutableRawPointer] = []
        for _ in 0..<64 {
            let p = cache.allocate(size: 1 << 20, noscan: true)!
            memset(p, 1, 1 << 20)
            ptrs.append(p)
        }
        for _ in 0..<100_000 {
            let p = cache.allocate(size: 256, noscan: true)!
            memset(p, 1, 256)
            ptrs.append(p)
        }
        let base = heap.reservedRange.lowerBound
        let before = try #require(residentBytes(from: base, bytes: 128 << 20))
        #expect(before >= 80 << 20)
        for p in ptrs { cache.free(p) }
        heap.releaseThreadCache(cache)
        let released = heap.scavenge()
        let after = try #require(residentBytes(from: base, bytes: 128 << 20))
        #expect(released >= 80 << 20)
        #expect(after < before - (80 << 20), "RSS of the heap mapping: \(before) -> \(after)")
        let stats = heap.statistics()
        #expect(stats.heapReleased >= 80 << 20)
        #expect(stats.heapInUse == 0)
        // Released pages come back zero and are reused without clearing.
        let again = heap.makeThreadCache()
        let p = again.allocate(size: 1 << 20, noscan: true)!
        #expect(heap.state.spanOf(UInt(bitPattern: p))!.pointee.needzero == 0)
        #expect(heap.statistics().heapReleased < stats.heapReleased)
    }

    @Test func backgroundScavengerReturnsIdleMemory() throws {
        var config = HeapConfiguration()
        config.onFault = .record
        config.addressSpace = 4 << 30
        config.backgroundScavenger = true
        let heap = try Heap(configuration: config)
        let cache = heap.makeThreadCache()
        var ptrs: [UnsafeMutableRawPointer] = []
        for _ in 0..<32 {
            let p = cache.allocate(size: 1 << 20, noscan: true)!
            memset(p, 1, 1 << 20)
            ptrs.append(p)
        }
        for p in ptrs { cache.free(p) }
        // 32 MiB idle at 512 KiB per 10 ms wake: gone within about 0.7 s; allow 10 s.
        var waited = 0
        while heap.statistics().heapReleased < 32 << 20 && waited < 1000 {
            usleep(10_000)
            waited += 1
        }
        #expect(heap.statistics().heapReleased >= 32 << 20)
    }
}

@Suite struct HeapWalkTests {
    @Test func walkSeesEveryAllocatedObjectOnce() throws {
        let heap = try recordingHeap()
        let cache = heap.makeThreadCache()
        var expected: [UInt: Int] = [:]
        var rng = SplitMix64(state: 9)
        for _ in 0..<5_000 {
            let size = Int(rng.next() % 3000) + 16
            let p = cache.allocate(size: size, noscan: false)!
            expected[UInt(bitPattern: p)] = heap.objectInfo(p)!.size
        }
        let big = cache.allocate(size: 100_000, noscan: true)!
        expected[UInt(bitPattern: big)] = 106_496  // 13 pages
        // Free a third of them; flush so the free stacks are applied to the spans.
        for (addr, _) in expected.filter({ $0.key % 3 == 0 }) {
            cache.free(UnsafeMutableRawPointer(bitPattern: addr)!)
            expected[addr] = nil
        }
        cache.flushSpans()
        var seen: [UInt: Int] = [:]
        var lastSpan: UInt = 0
        heap.forEachSpan { span in
            #expect(span.start > lastSpan || lastSpan == 0)
            lastSpan = span.start
            #expect(span.allocatedCount <= span.slots)
        }
        heap.forEachObject { base, size, _, _ in
            #expect(seen[base] == nil)
            seen[base] = size
        }
        #expect(seen == expected)
    }
}
