// Grey objects waiting to be scanned: Go's gcWork (per-worker buffers) over a shared pool.
//
// Every marking thread (background worker, assisting mutator, barrier) owns a `GCWork`: a
// small stack of object addresses it pushes to and pops from without synchronisation. When
// it fills, half of it goes to the shared `WorkPool` as one block; when it empties, it takes
// a block back. The pool is a mutex-protected list of blocks; blocks are the unit of balance,
// so the lock is taken once per `blockSize` objects at most.
//
// Invariant: an object is pushed (grey) exactly once per cycle, by whoever set its mark bit.
// Mark termination requires every GCWork to be flushed and the pool empty.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

final class WorkPool: @unchecked Sendable {
    static let blockSize = 256
    private let lock = HeapLock()
    private var blocks: [UnsafeMutablePointer<UInt>] = []   // each: count, then entries
    private var free: [UnsafeMutablePointer<UInt>] = []
    /// Blocks in the pool (read without the lock as a hint).
    let available = Atomic<Int>(0)

    func put(_ entries: UnsafePointer<UInt>, count: Int) {
        lock.lock()
        let block = free.popLast() ?? UnsafeMutablePointer<UInt>.allocate(capacity: Self.blockSize + 1)
        block[0] = UInt(count)
        (block + 1).update(from: entries, count: count)
        blocks.append(block)
        available.store(blocks.count, ordering: .releasing)
        lock.unlock()
    }

    /// Copies one block into `into`, returns its count (0: the pool is empty).
    func take(into: UnsafeMutablePointer<UInt>) -> Int {
        if available.load(ordering: .acquiring) == 0 { return 0 }
        lock.lock()
        guard let block = blocks.popLast() else { lock.unlock(); return 0 }
        available.store(blocks.count, ordering: .releasing)
        let count = Int(block[0])
        into.update(from: block + 1, count: count)
        free.append(block)
        lock.unlock()
        return count
    }

    var isEmpty: Bool { available.load(ordering: .acquiring) == 0 }
}

/// One thread's grey-object buffer.
final class GCWork: @unchecked Sendable {
    static let capacity = 2 * WorkPool.blockSize
    let stack = UnsafeMutablePointer<UInt>.allocate(capacity: capacity)
    var count = 0
    /// Bytes of objects this buffer's owner marked (summed at mark termination).
    var bytesMarked = 0
    /// Scan work done (bytes scanned), for the pacer and assists.
    var scanWork = 0
    let pool: WorkPool

    init(pool: WorkPool) { self.pool = pool }
    deinit { stack.deallocate() }

    @inline(__always)
    func push(_ object: UInt) {
        if count == Self.capacity {
            // Give the older half to the pool.
            pool.put(stack, count: WorkPool.blockSize)
            (stack).update(from: stack + WorkPool.blockSize, count: count - WorkPool.blockSize)
            count -= WorkPool.blockSize
        }
        stack[count] = object
        count += 1
    }

    /// Next grey object, from this buffer or the pool; nil when both are empty.
    @inline(__always)
    func pop() -> UInt? {
        if count == 0 {
            count = pool.take(into: stack)
            if count == 0 { return nil }
        }
        count -= 1
        return stack[count]
    }

    /// Moves everything to the pool (so other threads can see and finish it).
    func flush() {
        var start = 0
        while start < count {
            let n = min(WorkPool.blockSize, count - start)
            pool.put(stack + start, count: n)
            start += n
        }
        count = 0
    }
}
