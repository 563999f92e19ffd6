// Capture from a real HeapLab heap driven by the test: objects allocated through a
// ThreadCache, pointers written into their memory, some objects freed (still on the mcache's
// free stack, so their spans count them as allocated): the snapshot holds exactly the live
// objects, their edges read back from memory, the right size classes (tiny = class 2), mark
// bits for live slots only, and it survives the file round trip.
import Testing
import HeapLabAllocator
import HeapLabReplay
@testable import HeapLabSnapshot

@Suite struct HeapCaptureTests {
    @Test func captureFromARealHeap() throws {
        let heap = try Heap(configuration: HeapConfiguration(onFault: .record))
        let cache = heap.makeThreadCache()
        // A list of 100 nodes (48 bytes, 2 pointer slots: next, payload), each with a 5-byte
        // tiny payload; then 50 extra nodes that are freed again.
        var nodes: [UnsafeMutableRawPointer] = []
        var payloads: [UnsafeMutableRawPointer] = []
        for _ in 0..<100 {
            let n = try #require(cache.allocate(size: 48, noscan: false, zeroed: true))
            let p = try #require(cache.allocate(size: 5, noscan: true))
            nodes.append(n)
            payloads.append(p)
        }
        for k in 0..<100 {
            nodes[k].storeBytes(of: k + 1 < 100 ? nodes[k + 1] : nil, toByteOffset: 0, as: UnsafeMutableRawPointer?.self)
            nodes[k].storeBytes(of: payloads[k], toByteOffset: 8, as: UnsafeMutableRawPointer?.self)
        }
        var dead: [UnsafeMutableRawPointer] = []
        for _ in 0..<50 { dead.append(try #require(cache.allocate(size: 48, noscan: false, zeroed: true))) }
        for d in dead { cache.free(d) }
        let big = try #require(cache.allocate(size: 100_000, noscan: true))

        var objects: [(UnsafeRawPointer, UInt64, UInt64, UInt64, UInt64?)] = []
        for k in 0..<100 { objects.append((UnsafeRawPointer(nodes[k]), UInt64(k + 1), 48, 2, 1)) }
        for k in 0..<100 { objects.append((UnsafeRawPointer(payloads[k]), UInt64(1000 + k), 5, 0, 2)) }
        objects.append((UnsafeRawPointer(big), 5000, 100_000, 0, nil))
        var info = SnapshotInfo()
        info.trigger = .api
        let s = HeapCapture.capture(heap: heap, info: info, sites: [(1, "Node"), (2, "Payload")], objects: objects,
                                    roots: [(0, 0, 1), (200, 3, 2)])
        #expect(s.validate() == nil)
        #expect(s.objectCount == 201)
        #expect(s.edgeCount == 99 + 100)    // next links and payloads
        #expect(s.info.unresolvedPointers == 0)
        let head = try #require(s.object(withTraceID: 1))
        let t = Dominators.compute(s)
        #expect(t.retained[head] == 100 * 48 + 100 * 5)
        #expect(t.retained[try #require(s.object(withTraceID: 5000))] == 100_000)
        #expect(ShortestPaths(s).depth(of: try #require(s.object(withTraceID: 100))) == 99)
        let m = s.summary()
        #expect(m.tiny.objects == 100 && m.tiny.bytes == 500)
        #expect(m.tinyBlocks <= 100 && m.tinyBlocks >= 34)       // 5-byte objects pack 1 to 3 per block
        #expect(m.small.objects == 100 && m.small.allocatedBytes == 4800)
        #expect(m.large.objects == 1 && m.large.allocatedBytes == 13 * 8192)
        for i in 0..<s.objectCount where s.isTiny(i) { #expect(s.sizeClass[i] == 2) }
        // The 50 freed nodes sit on the free stack: allocated in the span, but not marked.
        let nodeClass = try #require(s.classes().first { $0.sizeClass == 5 })
        #expect(nodeClass.objectSize == 48)
        #expect(nodeClass.liveObjects == 100 && nodeClass.markedSlots == 100)
        #expect(nodeClass.allocatedSlots == 150)
        #expect(s.statistic("heap_in_use") == Int64(heap.statistics().heapInUse))
        #expect(!s.arenas.isEmpty)
        #expect(s.roots == [SnapshotRoot(object: Int32(head), thread: 0, holds: 1),
                            SnapshotRoot(object: Int32(try #require(s.object(withTraceID: 5000))), thread: 3, holds: 2)])

        let dir = TempDir()
        defer { dir.remove() }
        try s.write(to: dir.path("real.hsnap"))
        let back = try SnapshotReader.read(path: dir.path("real.hsnap"))
        FormatTests.expectSame(s, back)
        heap.releaseThreadCache(cache)
    }
}
