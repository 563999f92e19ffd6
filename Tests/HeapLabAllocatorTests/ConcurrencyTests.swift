import Testing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import HeapLabAllocator

/// Several mutator threads, each with its own mcache, allocate objects, fill them, and hand
/// half of them to other threads to free (cross-thread frees), the rest they free themselves.
@Suite struct ConcurrencyTests {
    /// A locked mailbox. A pthread mutex (HeapLock), not Synchronization.Mutex: the latter
    /// waits on a raw futex that ThreadSanitizer cannot see, so it would report the boxes.
    final class Box: @unchecked Sendable {
        private let lock = HeapLock()
        private var items: [UInt] = []
        func withLock<T>(_ body: (inout [UInt]) -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body(&items)
        }
    }
    final class Mailboxes: Sendable {
        let boxes: [Box]
        init(_ n: Int) { boxes = (0..<n).map { _ in Box() } }
    }

    @Test(arguments: [2, 4])
    func crossThreadFreesStress(threads: Int) throws {
        let heap = try recordingHeap()
        let mail = Mailboxes(threads)
        let corrupted = Atomic<Int>(0)
        let rounds = 20_000
        var workers: [pthread_t] = []
        final class Context: @unchecked Sendable {
            let body: () -> Void
            init(_ body: @escaping () -> Void) { self.body = body }
        }
        for t in 0..<threads {
            let ctx = Context {
                let cache = heap.makeThreadCache()
                var rng = SplitMix64(state: UInt64(t + 1))
                var mine: [(UInt, Int, UInt8)] = []
                for round in 0..<rounds {
                    let size = Int(rng.next() % 600) + 1
                    let p = cache.allocate(size: size, noscan: rng.next() % 3 != 0)!
                    let fill = UInt8(truncatingIfNeeded: (t * 31 + round) % 250 + 1)
                    memset(p, Int32(fill), size)
                    mine.append((UInt(bitPattern: p), size, fill))
                    if mine.count > 64 {
                        let (addr, size, fill) = mine.removeFirst()
                        let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: addr), count: size)
                        if bytes.contains(where: { $0 != fill }) { corrupted.add(1, ordering: .relaxed) }
                        if round % 2 == 0 {
                            // Encode size and fill with the address so the receiver can check.
                            mail.boxes[(t + 1) % threads].withLock { $0.append(addr); $0.append(UInt(size) << 8 | UInt(fill)) }
                        } else {
                            cache.free(UnsafeMutableRawPointer(bitPattern: addr)!)
                        }
                    }
                    if round % 16 == 0 {
                        let inbox = mail.boxes[t].withLock { box -> [UInt] in let b = box; box.removeAll(); return b }
                        var i = 0
                        while i < inbox.count {
                            let addr = inbox[i], meta = inbox[i + 1]
                            let size = Int(meta >> 8), fill = UInt8(meta & 0xFF)
                            let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: addr), count: size)
                            if bytes.contains(where: { $0 != fill }) { corrupted.add(1, ordering: .relaxed) }
                            cache.free(UnsafeMutableRawPointer(bitPattern: addr)!)
                            i += 2
                        }
                    }
                }
                for (addr, _, _) in mine { cache.free(UnsafeMutableRawPointer(bitPattern: addr)!) }
                heap.releaseThreadCache(cache)
            }
            var thread = pthread_t()
            let arg = Unmanaged.passRetained(ctx).toOpaque()
            pthread_create(&thread, nil, { arg in
                Unmanaged<Context>.fromOpaque(arg!).takeRetainedValue().body()
                return nil
            }, arg)
            workers.append(thread)
        }
        for w in workers { pthread_join(w, nil) }
        // Free what is left in the mailboxes from the main thread.
        let cache = heap.makeThreadCache()
        for box in mail.boxes {
            let left = box.withLock { $0 }
            var i = 0
            while i < left.count { cache.free(UnsafeMutableRawPointer(bitPattern: left[i])!); i += 2 }
        }
        heap.releaseThreadCache(cache)
        heap.releaseEmptySpans()
        #expect(corrupted.load(ordering: .relaxed) == 0)
        #expect(heap.faults.isEmpty, "\(heap.faults.prefix(3))")
        let stats = heap.statistics()
        #expect(stats.liveObjects == 0)
        #expect(stats.totalAllocs == threads * rounds - stats.tinyAllocs + stats.tinyBlocks)
        #expect(stats.heapInUse == 0, "every span went back to the page heap")
    }
}
