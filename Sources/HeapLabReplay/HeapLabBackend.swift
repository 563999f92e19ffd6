// HeapLab's own allocator (HeapLabAllocator, manual mode) as a replay back end.
//
// One Heap per replay, one ThreadCache (mcache) per worker thread, made on that thread
// before timing starts and released (flushed to the central lists) after the worker's
// timed loop ends. `noscan` from the trace selects Go's noscan span classes and the tiny
// allocator for pointer-free objects under 16 bytes. The allocator has no realloc, so a
// resize is what Go's append does: allocate the new size (pointer-free), copy the kept
// bytes, free the old block. With `sizedFree`, frees pass the size and kind the trace
// knows (the allocator's sdallocx-like fast path).
//
// Statistics are the heap's own HeapStatistics after the replay (with every cache flushed).
// As in Go, pointer-free objects under 16 bytes are counted in tiny_allocs and share 16-byte
// blocks (tiny_blocks), which are what total_allocs / live_objects count.

public import HeapLabAllocator

public final class HeapLabBackend: ReplayBackend {
    public struct Allocator: ReplayAllocator {
        let cache: ThreadCache
        let sized: Bool

        @inline(__always)
        public mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
            cache.allocate(size: size, noscan: noscan)
        }

        @inline(__always)
        public mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool) {
            if sized { cache.free(pointer, size: size, noscan: noscan) } else { cache.free(pointer) }
        }

        @inline(__always)
        public mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
            guard let p = cache.allocate(size: newSize, noscan: true) else { return nil }
            p.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
            if sized { cache.free(pointer, size: oldSize, noscan: true) } else { cache.free(pointer) }
            return p
        }
    }

    public let heap: Heap
    /// Free with the object's size and kind (ThreadCache.free(_:size:noscan:)).
    public let sizedFree: Bool

    /// Faults (bad frees, failed allocations) are recorded rather than trapped, so that the
    /// replay can report them: see `problemAfterReplay()`.
    public init(configuration: HeapConfiguration = HeapConfiguration(onFault: .record), sizedFree: Bool = false) throws(ReplayError) {
        self.sizedFree = sizedFree
        do {
            heap = try Heap(configuration: configuration)
        } catch {
            throw ReplayError("cannot create the HeapLab heap: \(error)")
        }
    }

    public func makeAllocator(worker: Int) throws(ReplayError) -> Allocator {
        Allocator(cache: heap.makeThreadCache(), sized: sizedFree)
    }

    public func releaseAllocator(_ allocator: inout Allocator, worker: Int) {
        heap.releaseThreadCache(allocator.cache)
    }

    public func statistics() -> [(String, Int)] {
        let s = heap.statistics()
        return [
            ("heap_in_use", s.heapInUse), ("heap_idle", s.heapIdle), ("heap_released", s.heapReleased),
            ("heap_sys", s.heapSys), ("metadata_bytes", s.metadataBytes), ("live_objects", s.liveObjects),
            ("live_bytes", s.liveBytes), ("total_allocs", s.totalAllocs), ("total_frees", s.totalFrees),
            ("tiny_allocs", s.tinyAllocs), ("tiny_blocks", s.tinyBlocks), ("large_allocs", s.largeAllocs),
        ]
    }

    public func failureReason() -> String? { heap.lastError.map { "\($0)" } }

    public func problemAfterReplay() -> String? {
        let faults = heap.faults
        guard let first = faults.first else { return nil }
        return "the HeapLab heap reported \(faults.count) fault(s), the first: \(first)"
    }
}
