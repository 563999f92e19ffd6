// Metadata memory: fixed-size allocators (Go's fixalloc), the lock type, atomic views.
//
// Everything that describes the heap (span headers, bitmaps, mcaches, tiny-block reference
// counts) lives in memory mapped for the purpose, never in the heap's own pages and never
// in Swift-managed storage, so the fast paths read it through plain pointers. FixAlloc hands
// out records of one size from 256 KiB chunks and keeps freed records on a free list; it is
// used under the heap lock. Bytes mapped for metadata are counted in `mappedBytes`, which the
// heap reports as metadata (Go's MSpanSys/MCacheSys/GCSys split is kept per allocator).

#if canImport(Glibc)
public import Glibc
#endif
public import Synchronization

@usableFromInline typealias AtomicWord = Atomic<UInt>
@usableFromInline typealias AtomicFlag32 = Atomic<UInt32>

/// A fixed-size record allocator over mmap'd chunks. Not thread-safe: callers hold a lock.
@usableFromInline
struct FixAlloc {
    @usableFromInline var recordSize: Int
    var freeList: UnsafeMutableRawPointer?
    var chunk: UnsafeMutableRawPointer?
    var chunkRemaining: Int = 0
    /// Bytes mapped from the OS for these records.
    @usableFromInline var mappedBytes: Int = 0
    /// Records handed out and not yet returned.
    @usableFromInline var inUse: Int = 0
    static let chunkBytes = 64 << 10

    init(recordSize: Int) {
        // Records are 8-byte aligned, enough for the atomics and bitmap words inside them.
        self.recordSize = (max(recordSize, 8) + 7) & ~7
    }

    /// A zeroed record, or nil if the OS refuses memory.
    mutating func alloc() -> UnsafeMutableRawPointer? {
        inUse += 1
        if let p = freeList {
            freeList = p.load(as: UnsafeMutableRawPointer?.self)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: recordSize)
            return p
        }
        if chunkRemaining < recordSize {
            let bytes = max(Self.chunkBytes, recordSize)
            guard case .success(let p) = OSMemory.mapFresh(bytes) else { inUse -= 1; return nil }
            chunk = p
            chunkRemaining = bytes
            mappedBytes += bytes
        }
        let p = chunk!
        chunk = p + recordSize
        chunkRemaining -= recordSize
        return p  // fresh mmap memory is zero
    }

    mutating func free(_ p: UnsafeMutableRawPointer) {
        inUse -= 1
        p.storeBytes(of: freeList, as: UnsafeMutableRawPointer?.self)
        freeList = p
    }
}

/// A mutex in metadata memory (pthread_mutex_t: spins briefly, then sleeps).
@usableFromInline
struct HeapLock {
    @usableFromInline let raw: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        raw = .allocate(capacity: 1)
        // Adaptive (glibc): a waiter spins a little before it sleeps. Critical sections here
        // are short, and a waiter put to sleep on the futex may wait a whole scheduler slice
        // for its CPU when the machine has more runnable threads than CPUs.
        var attr = pthread_mutexattr_t()
        pthread_mutexattr_init(&attr)
        pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(raw, &attr)
        pthread_mutexattr_destroy(&attr)
    }

    @inlinable func lock() { pthread_mutex_lock(raw) }
    @inlinable func unlock() { pthread_mutex_unlock(raw) }

    @inlinable func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(raw)
        defer { pthread_mutex_unlock(raw) }
        return try body()
    }

    func destroy() {
        pthread_mutex_destroy(raw)
        raw.deallocate()
    }
}
