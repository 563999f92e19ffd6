// mcache: one mutator thread's cache of spans (Go's per-P mcache), and the allocation and
// free fast paths.
//
// It owns one span per span class (136 slots; an empty slot points at the heap's emptySpan,
// whose nelems is 0, so the fast path needs no nil check), the tiny block, and this thread's
// allocation counters. Only its own thread touches it, so the fast paths take no lock and
// execute no atomic read-modify-write:
//
//   allocate: size -> size class (one table load) -> the cached span -> count trailing zeros
//             of allocCache -> bump freeindex, set the object's bit in gcmarkBits. When the
//             64-slot window empties or the span is full: the slow path (`refill`).
//   free:     page map -> span -> object index by magic multiply -> if this mcache owns the
//             span, clear the bit (a double free is the bit already clear); otherwise push the
//             object on the span's remote-free stack (`freeRemote`, one CAS).
//
// Manual-mode ownership (where HeapLab departs from Go, which never frees explicitly): a span
// stays owned by the mcache that took it from its mcentral until that mcache is released, as
// mimalloc's pages stay with their thread. Go's mcache gives a span back to mcentral as soon
// as it is full, which is right when only the sweeper frees; with explicit frees it would
// make almost every free land in an unowned span and pay for atomics. Owned spans that are not
// current sit on this mcache's lists:
//   localPartial[spanClass]  at least 1/8 of the slots free: the next refill sweeps one;
//   localFull                fewer free; a local free that reaches 1/8 moves it to partial,
//                            the last free returns it to the page heap.
// Frees by other threads go to the span's remote-free stack; the first one queues the span on
// its owner's `pending` stack (or its mcentral's, when unowned), and the owner drains it on
// its next refill. Released mcaches hand every span to the mcentrals.
//
// Slow path (`refill`), never inlined: drain pending spans; if the exhausted current span has
// 1/8 of its slots free again, sweep it in place (a tight malloc/free loop stays on one span);
// otherwise file it under localFull and take a local partial span, or one from the mcentral
// (which grows from the page heap).
//
// Free stacks (manual mode only; Go has no explicit free): per span class, the last 64 objects
// this thread freed, handed out again last-in first-out. A free then writes one word, and the
// next allocation of the class gets memory that is still in the cache, as with tcmalloc's
// per-thread free lists and jemalloc's tcache. Objects on a stack are still allocated as far
// as their span is concerned; when a stack fills, its older half is freed into the spans
// (the exact path below), and all of it when the mcache is flushed or released. Tiny
// objects, 16-byte noscan objects (tiny spans) and large objects are never stacked.
//
// Statistics follow Go's mcache accounting: when a span becomes current, all its free slots
// are counted as allocated; when it stops being current, the slots never handed out are
// subtracted. The fast path updates no counter.
//
// Tiny allocator (Go's mallocgc tiny path): pointer-free objects under 16 bytes are packed
// into the current 16-byte block, aligned to 8, 4 or 2 bytes when the size is a multiple of
// 8, 4 or 2. In manual mode a block can only be freed when every object in it is, so tiny
// spans carry a reference count per block (the objects in it, plus one while it is the
// mcache's current block). Tiny double frees are caught only as a count going below zero.

#if canImport(Glibc)
public import Glibc
#endif
public import Synchronization

@usableFromInline
struct MCache {
    @usableFromInline var heap: UnsafeMutablePointer<MHeapState>
    /// 136 span pointers, indexed by span class.
    @usableFromInline var alloc: UnsafeMutablePointer<UnsafeMutablePointer<MSpan>>
    /// Current tiny block (address) and the next free offset in it.
    @usableFromInline var tiny: UInt
    @usableFromInline var tinyOffset: UInt
    @usableFromInline var stats: CacheStats
    /// Owned spans with free slots, one list per span class (heads).
    @usableFromInline var localPartial: UnsafeMutablePointer<UnsafeMutablePointer<MSpan>?>
    /// Owned spans with few or no free slots, all classes.
    @usableFromInline var localFull: UnsafeMutablePointer<MSpan>?
    /// Lock-free stack of owned spans that received remote frees (linked by pendingNext).
    /// Kept across release and reuse of the record: late remote frees may still queue here.
    @usableFromInline var pending: UInt
    /// Link on the heap's list of released mcache records.
    @usableFromInline var nextReleased: UnsafeMutablePointer<MCache>?
    /// The size-to-class tables (SizeClassLookup), copied here so the fast path reads them
    /// with no lazy-global check.
    @usableFromInline var class8: UnsafeMutablePointer<UInt8>
    @usableFromInline var class128: UnsafeMutablePointer<UInt8>
    /// Free stacks: `stackDepth` object addresses per span class.
    @usableFromInline var stacks: UnsafeMutablePointer<UInt>
    /// Per span class, two words on one line: how many objects the stack holds (2*spc), and
    /// how many allocations it has served (2*spc+1, for statistics).
    @usableFromInline var stackCounts: UnsafeMutablePointer<UInt64>

    /// How allocation records a new object in gcmarkBits: manual mode sets the bit (the
    /// live set); GC mode sets it only while marking ("allocate black"), atomically because
    /// mark workers set bits in the same words.
    @usableFromInline var allocMark: UInt8
    /// GC mode: spans go back to their mcentral when full (Go's policy), no free stacks.
    @usableFromInline var gcMode: Bool
    /// GC mode: bytes this cache counted as allocated (heapLive) and as allocated black.
    @usableFromInline var gcAllocatedBytes: Int

    /// Values of `allocMark`.
    @usableFromInline static let allocMarkPlain: UInt8 = 0
    @usableFromInline static let allocMarkNone: UInt8 = 1
    @usableFromInline static let allocMarkAtomic: UInt8 = 2

    /// Objects each free stack holds at most.
    @usableFromInline static let stackDepth = 64

    /// Size class for a small `size` (<= maxSmallSize).
    @inlinable @inline(__always)
    func sizeClassOf(_ size: Int) -> UInt8 {
        if size <= AllocatorConstants.smallSizeMax - 8 { return class8[(size &+ 7) &>> 3] }
        return class128[(size &- AllocatorConstants.smallSizeMax &+ 127) &>> 7]
    }
}

/// Allocation counters of one mcache (flushed into the heap when the cache is released).
@usableFromInline
struct CacheStats {
    /// Objects counted as allocated, per size class (Go's smallAllocCount).
    @usableFromInline var smallAllocCount: UnsafeMutablePointer<Int>
    @usableFromInline var tinyAllocs: Int
    @usableFromInline var tinyBlocks: Int
}

/// A mutator thread's handle on the heap: its mcache. Use one per thread; it is not
/// thread-safe, but objects it allocates may be freed by any thread's cache.
///
/// ```swift
/// let heap = try Heap()
/// let cache = heap.makeThreadCache()
/// let p = cache.allocate(size: 48, noscan: true)!
/// cache.free(p)
/// heap.releaseThreadCache(cache)
/// ```
public struct ThreadCache: @unchecked Sendable {
    @usableFromInline let c: UnsafeMutablePointer<MCache>

    @usableFromInline init(_ c: UnsafeMutablePointer<MCache>) { self.c = c }

    /// Allocates `size` bytes; `noscan` objects hold no pointers (Go's noscan span classes
    /// and the tiny allocator). With `zeroed`, the memory reads as zero (as Go promises for
    /// every allocation); without it, a reused slot may hold old bytes (as malloc).
    /// Returns nil when a configured limit or the address space is exhausted
    /// (`Heap.lastError` says which). O(1); no lock or atomic on the fast path.
    @inlinable @inline(__always)
    public func allocate(size: Int, noscan: Bool, zeroed: Bool = false) -> UnsafeMutableRawPointer? {
        if size > AllocatorConstants.maxSmallSize {
            return c.pointee.heap.allocLarge(size, noscan: noscan, zeroed: zeroed)
        }
        if noscan && size < AllocatorConstants.tinySize {
            return allocateTiny(size, zeroed: zeroed)
        }
        let sizeClass = Int(c.pointee.sizeClassOf(size))
        let spanClass = sizeClass &<< 1 | (noscan ? 1 : 0)
        let depth = c.pointee.stackCounts[spanClass &* 2]
        if depth != 0 {
            // Most recently freed object of the class first.
            let top = depth &- 1
            c.pointee.stackCounts[spanClass &* 2] = top
            c.pointee.stackCounts[spanClass &* 2 &+ 1] &+= 1
            let p = UnsafeMutableRawPointer(bitPattern: c.pointee.stacks[spanClass &* MCache.stackDepth &+ Int(top)])!
            if zeroed { memset(p, 0, size) }
            return p
        }
        let span = c.pointee.alloc[spanClass]
        if let p = nextFreeFast(span) {
            if zeroed && span.pointee.needzero != 0 { memset(p, 0, Int(span.pointee.elemSize)) }
            return p
        }
        return allocateSlow(spanClass: spanClass, zeroed: zeroed)
    }

    /// Go's nextFreeFast: takes the next free slot of `span` from its 64-slot allocCache
    /// window, or returns nil (slow path). The slot must be in the window (bit < 64), inside
    /// the span (the empty span has nelems 0), and not the window's last slot unless it is
    /// the span's last (the window must then be refilled).
    @inlinable @inline(__always)
    func nextFreeFast(_ span: UnsafeMutablePointer<MSpan>) -> UnsafeMutableRawPointer? {
        let cache = span.pointee.allocCache
        let bit = UInt32(truncatingIfNeeded: cache.trailingZeroBitCount)
        let index = span.pointee.freeindex &+ bit
        let next = index &+ 1
        guard bit < 64 && index < span.pointee.nelems && (next & 63 != 0 || next == span.pointee.nelems) else { return nil }
        span.pointee.allocCache = (cache &>> UInt64(bit)) &>> 1
        span.freeindexAtomic.pointee.store(next, ordering: .relaxed)
        span.pointee.allocCount = span.pointee.allocCount &+ 1
        markAllocated(span, index)
        return UnsafeMutableRawPointer(bitPattern: span.pointee.startAddr &+ UInt(index) &* UInt(span.pointee.elemSize))!
    }

    /// The collector's small-object fast path (GC mode: no free stacks, no tiny objects):
    /// a slot of size class `sizeClass` and its slot size. Clears the slot's first
    /// `clearWords` words (Int.max: all of it) if it was used before (fresh spans read as
    /// zero). The caller knows the class, so nothing is looked up twice.
    @inline(__always)
    func allocateSmallGC(sizeClass: Int, noscan: Bool, clearWords: Int) -> (UnsafeMutableRawPointer, Int)? {
        let spanClass = sizeClass &<< 1 | (noscan ? 1 : 0)
        let span = c.pointee.alloc[spanClass]
        if let p = nextFreeFast(span) {
            let elemSize = Int(span.pointee.elemSize)
            if span.pointee.needzero != 0 { Self.clear(p, words: min(clearWords, elemSize &>> 3)) }
            return (p, elemSize)
        }
        return allocateSmallGCSlow(spanClass: spanClass, clearWords: clearWords)
    }

    @inline(never)
    func allocateSmallGCSlow(spanClass: Int, clearWords: Int) -> (UnsafeMutableRawPointer, Int)? {
        guard let p = allocateSlow(spanClass: spanClass, zeroed: false) else { return nil }
        let span = c.pointee.alloc[spanClass]
        let elemSize = Int(span.pointee.elemSize)
        if span.pointee.needzero != 0 { Self.clear(p, words: min(clearWords, elemSize &>> 3)) }
        return (p, elemSize)
    }

    /// Zeroes `words` words at `p`: a few stores inline (most objects have a few pointer
    /// slots), memset beyond.
    @inline(__always)
    static func clear(_ p: UnsafeMutableRawPointer, words: Int) {
        if words > 4 { memset(p, 0, words &* 8); return }
        // Relaxed atomic stores: plain moves that the optimiser does not turn back into a
        // memset call.
        var w = 0
        while w < words {
            (p + w &* 8).assumingMemoryBound(to: Atomic<UInt>.self).pointee.store(0, ordering: .relaxed)
            w &+= 1
        }
    }

    /// Frees an object allocated by any ThreadCache of the same heap (manual mode).
    /// A pointer not from the heap, into the middle of an object, or already freed is
    /// reported (`HeapConfiguration.onFault`), never applied. (A second free of an object
    /// still on this cache's free stack is caught in debug builds; release builds catch it
    /// when it is the last object freed of its class.)
    @inlinable @inline(__always)
    public func free(_ p: UnsafeMutableRawPointer) {
        let addr = UInt(bitPattern: p)
        guard let span = c.pointee.heap.spanOf(addr) else {
            return freeFault(addr, .notHeapPointer)
        }
        let offset = addr &- span.pointee.startAddr
        let index = span.objectIndex(ofOffset: offset)
        if index &* UInt(span.pointee.elemSize) != offset || span.pointee.divMul == 0
            || span.pointee.spanClass == MSpan.tinySpanClass {
            return freeSpecial(span, addr)
        }
        if !span.isMarked(Int(index)) { return freeFault(addr, .doubleFree) }
        let spanClass = Int(span.pointee.spanClass)
        #if HEAPLAB_DEBUG_CHECKS
        if isStacked(addr, spanClass: spanClass) { return freeFault(addr, .doubleFree) }
        #else
        // Release builds catch the common case, a second free of the last object freed.
        let depth = Int(truncatingIfNeeded: c.pointee.stackCounts[spanClass &* 2])
        if depth != 0 && c.pointee.stacks[spanClass &* MCache.stackDepth &+ depth &- 1] == addr {
            return freeFault(addr, .doubleFree)
        }
        #endif
        push(spanClass, addr)
    }

    /// Frees an object whose size and kind the caller knows (like jemalloc's sdallocx): the
    /// object goes on this cache's free stack without a look at its span. Release builds check
    /// only that the pointer is inside the heap; debug builds check everything `free(_:)`
    /// does, and that `size` and `noscan` match the object.
    @inlinable @inline(__always)
    public func free(_ p: UnsafeMutableRawPointer, size: Int, noscan: Bool) {
        let addr = UInt(bitPattern: p)
        let heap = c.pointee.heap
        if size > AllocatorConstants.maxSmallSize || (noscan && size <= AllocatorConstants.tinySize) {
            return free(p)
        }
        if addr &- heap.pointee.arenaBase >= heap.pointee.reservedBytes {
            return freeFault(addr, .notHeapPointer)
        }
        let spanClass = Int(c.pointee.sizeClassOf(size)) &<< 1 | (noscan ? 1 : 0)
        #if HEAPLAB_DEBUG_CHECKS
        if !checkSizedFree(addr, spanClass: spanClass) { return }
        #endif
        push(spanClass, addr)
    }

    /// Puts a freed object on its class's free stack, making room first if it is full.
    @inlinable @inline(__always)
    func push(_ spanClass: Int, _ addr: UInt) {
        var depth = Int(truncatingIfNeeded: c.pointee.stackCounts[spanClass &* 2])
        if depth == MCache.stackDepth { depth = releaseStack(spanClass, keep: MCache.stackDepth / 2) }
        c.pointee.stacks[spanClass &* MCache.stackDepth &+ depth] = addr
        c.pointee.stackCounts[spanClass &* 2] = UInt64(truncatingIfNeeded: depth &+ 1)
    }

    /// Frees all but the newest `keep` objects of a free stack into their spans. Returns the
    /// new depth.
    @usableFromInline @inline(never)
    func releaseStack(_ spanClass: Int, keep: Int) -> Int {
        let base = c.pointee.stacks + spanClass * MCache.stackDepth
        let depth = Int(c.pointee.stackCounts[spanClass * 2])
        let release = depth - min(keep, depth)
        for i in 0..<release { freeToSpan(base[i]) }
        for i in 0..<(depth - release) { base[i] = base[release + i] }
        c.pointee.stackCounts[spanClass * 2] = UInt64(depth - release)
        return depth - release
    }

    /// Debug check of a sized free: the pointer starts a live object of that class that is
    /// not already on the stack.
    @usableFromInline @inline(never)
    func checkSizedFree(_ addr: UInt, spanClass: Int) -> Bool {
        guard let span = c.pointee.heap.spanOf(addr) else { freeFault(addr, .notHeapPointer); return false }
        let offset = addr &- span.pointee.startAddr
        let index = span.objectIndex(ofOffset: offset)
        if span.pointee.divMul == 0 || index &* UInt(span.pointee.elemSize) != offset {
            freeFault(addr, .interiorPointer); return false
        }
        if Int(span.pointee.spanClass) != spanClass {
            freeFault(addr, .wrongSize); return false
        }
        if !span.isMarked(Int(index)) || isStacked(addr, spanClass: spanClass) {
            freeFault(addr, .doubleFree); return false
        }
        return true
    }

    /// Whether `addr` is on the free stack of `spanClass` (debug checks and tests).
    @usableFromInline @inline(never)
    func isStacked(_ addr: UInt, spanClass: Int) -> Bool {
        let base = c.pointee.stacks + spanClass * MCache.stackDepth
        for i in 0..<Int(c.pointee.stackCounts[spanClass * 2]) where base[i] == addr { return true }
        return false
    }

    /// The exact free of a small object into its span: the owner clears its bit, any other
    /// thread pushes it on the span's remote-free stack.
    @usableFromInline
    func freeToSpan(_ addr: UInt) {
        guard let span = c.pointee.heap.spanOf(addr) else { return freeFault(addr, .notHeapPointer) }
        let offset = addr &- span.pointee.startAddr
        let index = span.objectIndex(ofOffset: offset)
        if span.ownerAtomic.pointee.load(ordering: .relaxed) == UInt(bitPattern: c) {
            let markWord = span.markWord(Int(index &>> 6))
            let word = markWord.pointee.load(ordering: .relaxed)
            let bit = UInt64(1) &<< UInt64(index & 63)
            if word & bit == 0 { return freeFault(addr, .doubleFree) }
            markWord.pointee.store(word ^ bit, ordering: .relaxed)
            span.pointee.allocCount = span.pointee.allocCount &- 1
            // Off the fast path only when the span should move: a localFull span that may
            // have become worth sweeping, or an emptied span that is not current.
            if span.pointee.list == SpanList.localFull.rawValue
                || (span.pointee.allocCount == 0 && span.pointee.list == SpanList.localPartial.rawValue) {
                freedInOwnedSpan(span)
            }
            return
        }
        freeRemote(span, addr)
    }

    /// Records a newly allocated slot in gcmarkBits, as `allocMark` says.
    @inlinable @inline(__always)
    func markAllocated(_ span: UnsafeMutablePointer<MSpan>, _ index: UInt32) {
        let mode = c.pointee.allocMark
        let bit = UInt64(1) &<< UInt64(index & 63)
        if mode == MCache.allocMarkPlain {
            let word = span.markWord(Int(index &>> 6))
            word.pointee.store(word.pointee.load(ordering: .relaxed) | bit, ordering: .relaxed)
        } else if mode == MCache.allocMarkAtomic {
            UnsafeMutableRawPointer(span.pointee.gcmarkBits + Int(index &>> 6))
                .assumingMemoryBound(to: Atomic<UInt64>.self).pointee
                .bitwiseOr(bit, ordering: .relaxed)
        }
    }

    // MARK: Slow paths

    @usableFromInline @inline(never)
    func allocateSlow(spanClass: Int, zeroed: Bool) -> UnsafeMutableRawPointer? {
        var span = c.pointee.alloc[spanClass]
        let index = span.nextFreeIndex()
        if index == span.pointee.nelems {
            guard let fresh = refill(spanClass: spanClass) else { return nil }
            span = fresh
        } else {
            span.pointee.allocCount = span.pointee.allocCount &+ 1
            markAllocated(span, index)
            let p = UnsafeMutableRawPointer(bitPattern: span.pointee.startAddr &+ UInt(index) &* UInt(span.pointee.elemSize))!
            if zeroed && span.pointee.needzero != 0 { memset(p, 0, Int(span.pointee.elemSize)) }
            return p
        }
        return allocate(spanClass: spanClass, from: span, zeroed: zeroed)
    }

    /// Takes the next free slot of a freshly swept span (which has one).
    func allocate(spanClass: Int, from span: UnsafeMutablePointer<MSpan>, zeroed: Bool) -> UnsafeMutableRawPointer? {
        let index = span.nextFreeIndex()
        precondition(index < span.pointee.nelems, "refill returned a span with no free slot")
        span.pointee.allocCount = span.pointee.allocCount &+ 1
        markAllocated(span, index)
        let p = UnsafeMutableRawPointer(bitPattern: span.pointee.startAddr &+ UInt(index) &* UInt(span.pointee.elemSize))!
        if zeroed && span.pointee.needzero != 0 { memset(p, 0, Int(span.pointee.elemSize)) }
        return p
    }

    /// Replaces the exhausted span of `spanClass` with one that has free slots.
    @usableFromInline
    func refill(spanClass: Int) -> UnsafeMutablePointer<MSpan>? {
        if c.pointee.gcMode { return refillGC(spanClass: spanClass) }
        let heap = c.pointee.heap
        processPending()
        let current = c.pointee.alloc[spanClass]
        let sizeClass = spanClass >> 1
        if current != heap.pointee.emptySpan {
            current.drainRemoteFrees(fault: heap.pointee.fault)
            if current.worthSweeping {
                // Sweep in place: enough of this span was freed to keep allocating from it.
                current.sweepManual(fault: heap.pointee.fault)
                c.pointee.stats.smallAllocCount[sizeClass] += Int(current.pointee.nelems &- current.pointee.allocCount)
                return current
            }
            c.pointee.stats.smallAllocCount[sizeClass] -= current.unallocatedSlots()
            c.pointee.alloc[spanClass] = heap.pointee.emptySpan
            pushLocal(current, .localFull)
        }
        var next = c.pointee.localPartial[spanClass]
        if let span = next {
            removeLocal(span)
            span.sweepManual(fault: heap.pointee.fault)
        } else {
            next = (heap.pointee.centrals + spanClass).cacheSpan(owner: UnsafeMutableRawPointer(c), heap: heap)
        }
        guard let span = next else { return nil }
        span.pointee.list = SpanList.current.rawValue
        c.pointee.alloc[spanClass] = span
        c.pointee.stats.smallAllocCount[sizeClass] += Int(span.pointee.nelems &- span.pointee.allocCount)
        return span
    }

    /// A local free left an owned span either empty or on localFull: move it along.
    @usableFromInline @inline(never)
    func freedInOwnedSpan(_ span: UnsafeMutablePointer<MSpan>) {
        let list = span.pointee.list
        if list == SpanList.current.rawValue { return }
        if span.pointee.allocCount == 0
            && span.pendingFlagAtomic.pointee.load(ordering: .sequentiallyConsistent) == 0 {
            // Empty, and no pending stack links through it: back to the page heap, through
            // the mcentral so that a racing remote free is settled under its lock.
            removeLocal(span)
            let heap = c.pointee.heap
            (heap.pointee.centrals + Int(span.pointee.spanClass)).uncacheSpan(span, heap: heap)
            return
        }
        if list == SpanList.localFull.rawValue && span.worthSweeping {
            removeLocal(span)
            pushLocal(span, .localPartial)
        }
    }

    /// Drains this cache's pending stack: owned spans that received frees from other threads.
    @usableFromInline
    func processPending() {
        let stack = c.pendingAtomic
        if stack.pointee.load(ordering: .relaxed) == 0 { return }
        var head = stack.pointee.exchange(0, ordering: .acquiringAndReleasing)
        let heap = c.pointee.heap
        while let span = UnsafeMutablePointer<MSpan>(bitPattern: head) {
            head = UInt(bitPattern: span.pointee.pendingNext)
            span.pointee.pendingNext = nil
            span.pendingFlagAtomic.pointee.store(0, ordering: .sequentiallyConsistent)
            if span.ownerAtomic.pointee.load(ordering: .sequentiallyConsistent) != UInt(bitPattern: c) {
                // No longer ours (this record was released, perhaps reused): the mcentral
                // takes over, always. Even with nothing left to drain it may have to free the
                // span: whoever gave the span back found it queued here and so left it, empty,
                // on a central list for this queue's processing to free. (Handing it over only
                // when frees remained leaked such spans: the cross-thread stress test saw
                // 8-220 KiB still in use at the end in about 1 run of 20 under load.)
                (heap.pointee.centrals + Int(span.pointee.spanClass)).notePending(span)
                continue
            }
            span.drainRemoteFrees(fault: heap.pointee.fault)
            if span.pointee.allocCount == 0 || span.pointee.list == SpanList.localFull.rawValue {
                freedInOwnedSpan(span)
            }
        }
    }

    func pushLocal(_ span: UnsafeMutablePointer<MSpan>, _ list: SpanList) {
        let headSlot: UnsafeMutablePointer<UnsafeMutablePointer<MSpan>?>
        if list == .localPartial {
            headSlot = c.pointee.localPartial + Int(span.pointee.spanClass)
        } else {
            span.pointee.prev = nil
            span.pointee.next = c.pointee.localFull
            c.pointee.localFull?.pointee.prev = span
            c.pointee.localFull = span
            span.pointee.list = list.rawValue
            return
        }
        span.pointee.prev = nil
        span.pointee.next = headSlot.pointee
        headSlot.pointee?.pointee.prev = span
        headSlot.pointee = span
        span.pointee.list = list.rawValue
    }

    func removeLocal(_ span: UnsafeMutablePointer<MSpan>) {
        if let prev = span.pointee.prev {
            prev.pointee.next = span.pointee.next
        } else if span.pointee.list == SpanList.localPartial.rawValue {
            c.pointee.localPartial[Int(span.pointee.spanClass)] = span.pointee.next
        } else {
            c.pointee.localFull = span.pointee.next
        }
        span.pointee.next?.pointee.prev = span.pointee.prev
        span.pointee.next = nil
        span.pointee.prev = nil
        span.pointee.list = SpanList.none.rawValue
    }

    @usableFromInline @inline(never)
    func freeRemote(_ span: UnsafeMutablePointer<MSpan>, _ addr: UInt) {
        #if HEAPLAB_DEBUG_CHECKS
        // Racy but useful: a double free of an object whose span nobody is changing.
        let index = Int(span.objectIndex(ofOffset: addr &- span.pointee.startAddr))
        if !span.isMarked(index) { return freeFault(addr, .doubleFree) }
        #endif
        let stack = span.remoteFreeAtomic
        var head = stack.pointee.load(ordering: .relaxed)
        while true {
            UnsafeMutableRawPointer(bitPattern: addr)!.storeBytes(of: head, as: UInt.self)
            let (done, seen) = stack.pointee.weakCompareExchange(
                expected: head, desired: addr, ordering: .sequentiallyConsistent)
            if done { break }
            head = seen
        }
        let owner = span.ownerAtomic.pointee.load(ordering: .sequentiallyConsistent)
        if owner == 0 {
            (c.pointee.heap.pointee.centrals + Int(span.pointee.spanClass)).notePending(span)
        } else {
            // mcache records are never unmapped, so even a stale owner is safe to queue on;
            // its processPending hands spans it no longer owns to their mcentral.
            UnsafeMutablePointer<MCache>(bitPattern: owner)!.notePending(span)
        }
    }

    /// Frees of large objects, tiny blocks, and pointers that are not an object's start.
    @usableFromInline @inline(never)
    func freeSpecial(_ span: UnsafeMutablePointer<MSpan>, _ addr: UInt) {
        let heap = c.pointee.heap
        if span.pointee.divMul == 0 {
            if addr != span.pointee.startAddr { return freeFault(addr, .interiorPointer) }
            heap.freeLarge(span, addr)
            return
        }
        let offset = addr &- span.pointee.startAddr
        let index = span.objectIndex(ofOffset: offset)
        guard let refs = span.pointee.tinyRefs else { return freeFault(addr, .interiorPointer) }
        let count = UnsafeMutableRawPointer(refs + Int(index)).assumingMemoryBound(to: Atomic<UInt8>.self)
        let blockStart = span.pointee.startAddr &+ index &* UInt(span.pointee.elemSize)
        if count.pointee.load(ordering: .relaxed) == 0 {
            // A plain 16-byte object in a tiny span: free it as any other object.
            if blockStart != addr { return freeFault(addr, .interiorPointer) }
            return freeSlot(span, index: index, addr: addr)
        }
        let old = count.pointee.subtract(1, ordering: .acquiringAndReleasing).oldValue
        if old == 0 { return freeFault(addr, .doubleFree) }
        if old == 1 { freeSlot(span, index: index, addr: blockStart) }
    }

    /// Frees slot `index` of a small-object span (owner: clear the bit; else remote push).
    func freeSlot(_ span: UnsafeMutablePointer<MSpan>, index: UInt, addr: UInt) {
        if span.ownerAtomic.pointee.load(ordering: .relaxed) == UInt(bitPattern: c) {
            if !span.isMarked(Int(index)) { return freeFault(addr, .doubleFree) }
            let word = span.markWord(Int(index &>> 6))
            word.pointee.store(word.pointee.load(ordering: .relaxed) & ~(UInt64(1) &<< UInt64(index & 63)), ordering: .relaxed)
            span.pointee.allocCount = span.pointee.allocCount &- 1
            if span.pointee.list == SpanList.localFull.rawValue || span.pointee.allocCount == 0 {
                freedInOwnedSpan(span)
            }
        } else {
            freeRemote(span, addr)
        }
    }

    @usableFromInline @inline(never)
    func freeFault(_ addr: UInt, _ kind: HeapFault.Kind) {
        c.pointee.heap.pointee.fault.report(kind, address: addr, span: c.pointee.heap.spanOf(addr))
    }

    // MARK: Tiny allocator

    @inlinable @inline(__always)
    func allocateTiny(_ size: Int, zeroed: Bool) -> UnsafeMutableRawPointer? {
        var offset = c.pointee.tinyOffset
        // Go's alignment rule for tiny objects.
        if size & 7 == 0 { offset = (offset &+ 7) & ~7 }
        else if size & 3 == 0 { offset = (offset &+ 3) & ~3 }
        else if size & 1 == 0 { offset = (offset &+ 1) & ~1 }
        if offset &+ UInt(size) <= UInt(AllocatorConstants.tinySize) && c.pointee.tiny != 0 {
            let block = c.pointee.tiny
            c.pointee.tinyOffset = offset &+ UInt(size)
            c.pointee.stats.tinyAllocs &+= 1
            tinyRetain(block)
            return UnsafeMutableRawPointer(bitPattern: block &+ offset)
        }
        return allocateTinyBlock(size, zeroed: zeroed)
    }

    @usableFromInline @inline(never)
    func allocateTinyBlock(_ size: Int, zeroed: Bool) -> UnsafeMutableRawPointer? {
        let spanClass = Int(AllocatorConstants.tinySizeClass) << 1 | 1
        let span = c.pointee.alloc[spanClass]
        var p: UnsafeMutableRawPointer?
        let index = span.nextFreeIndex()
        if index < span.pointee.nelems {
            span.pointee.allocCount = span.pointee.allocCount &+ 1
            markAllocated(span, index)
            p = UnsafeMutableRawPointer(bitPattern: span.pointee.startAddr &+ UInt(index) &* 16)
        } else {
            guard let fresh = refill(spanClass: spanClass) else { return nil }
            p = allocate(spanClass: spanClass, from: fresh, zeroed: false)
        }
        guard let block = p else { return nil }
        // Tiny blocks are always cleared: later objects packed in must read as zero.
        block.storeBytes(of: (UInt64(0), UInt64(0)), as: (UInt64, UInt64).self)
        let addr = UInt(bitPattern: block)
        c.pointee.stats.tinyAllocs &+= 1
        c.pointee.stats.tinyBlocks &+= 1
        tinyRetain(addr)  // the object
        // Keep whichever block has more room left, as Go does.
        if UInt(size) < c.pointee.tinyOffset || c.pointee.tiny == 0 {
            let old = c.pointee.tiny
            tinyRetain(addr)  // the cache's reference
            c.pointee.tiny = addr
            c.pointee.tinyOffset = UInt(size)
            if old != 0 { tinyRelease(old) }
        }
        return block
    }

    @inlinable @inline(__always)
    func tinyRetain(_ block: UInt) {
        let span = c.pointee.heap.spanOf(block).unsafelyUnwrapped
        let index = span.objectIndex(ofOffset: block &- span.pointee.startAddr)
        let count = UnsafeMutableRawPointer(span.pointee.tinyRefs.unsafelyUnwrapped + Int(index))
            .assumingMemoryBound(to: Atomic<UInt8>.self)
        count.pointee.add(1, ordering: .relaxed)
    }

    func tinyRelease(_ block: UInt) {
        let span = c.pointee.heap.spanOf(block)!
        let index = span.objectIndex(ofOffset: block &- span.pointee.startAddr)
        let count = UnsafeMutableRawPointer(span.pointee.tinyRefs! + Int(index)).assumingMemoryBound(to: Atomic<UInt8>.self)
        if count.pointee.subtract(1, ordering: .acquiringAndReleasing).oldValue == 1 {
            freeSlot(span, index: index, addr: block)
        }
    }

    /// Gives every owned span back to the mcentrals (thread exit, or before reading exact
    /// statistics).
    func flush() {
        let heap = c.pointee.heap
        if c.pointee.tiny != 0 {
            let block = c.pointee.tiny
            c.pointee.tiny = 0
            c.pointee.tinyOffset = 0
            tinyRelease(block)
        }
        for spanClass in 0..<AllocatorConstants.numSpanClasses where c.pointee.stackCounts[spanClass * 2] != 0 {
            _ = releaseStack(spanClass, keep: 0)
        }
        // Allocations served by the stacks join the per-class counts.
        for spanClass in 0..<AllocatorConstants.numSpanClasses {
            c.pointee.stats.smallAllocCount[spanClass >> 1] += Int(c.pointee.stackCounts[spanClass * 2 + 1])
            c.pointee.stackCounts[spanClass * 2 + 1] = 0
        }
        processPending()
        for spanClass in 0..<AllocatorConstants.numSpanClasses {
            let span = c.pointee.alloc[spanClass]
            if span != heap.pointee.emptySpan {
                c.pointee.stats.smallAllocCount[spanClass >> 1] -= span.unallocatedSlots()
                c.pointee.alloc[spanClass] = heap.pointee.emptySpan
                span.pointee.list = SpanList.none.rawValue
                (heap.pointee.centrals + spanClass).uncacheSpan(span, heap: heap)
            }
            while let span = c.pointee.localPartial[spanClass] {
                removeLocal(span)
                (heap.pointee.centrals + spanClass).uncacheSpan(span, heap: heap)
            }
        }
        while let span = c.pointee.localFull {
            removeLocal(span)
            (heap.pointee.centrals + Int(span.pointee.spanClass)).uncacheSpan(span, heap: heap)
        }
        // Frees queued while the spans were given back now belong to the mcentrals.
        processPending()
    }
}

extension UnsafeMutablePointer where Pointee == MCache {
    var pendingAtomic: UnsafeMutablePointer<AtomicWord> { atomicView(address(of: \.pending)) }

    /// Hands every span on a released record's pending stack to its mcentral.
    func forwardPending() {
        var head = pendingAtomic.pointee.exchange(0, ordering: .acquiringAndReleasing)
        while let span = UnsafeMutablePointer<MSpan>(bitPattern: head) {
            head = UInt(bitPattern: span.pointee.pendingNext)
            span.pointee.pendingNext = nil
            span.pendingFlagAtomic.pointee.store(0, ordering: .sequentiallyConsistent)
            (pointee.heap.pointee.centrals + Int(span.pointee.spanClass)).notePending(span)
        }
    }

    /// Queues an owned span that received a remote free (once, guarded by its pendingFlag).
    func notePending(_ span: UnsafeMutablePointer<MSpan>) {
        span.queuePending(on: pendingAtomic)
    }
}

extension UnsafeMutablePointer where Pointee == MSpan {
    /// Whether at least 1/8 of the slots (and at least one) are free: worth a sweep.
    var worthSweeping: Bool {
        let free = pointee.nelems &- pointee.allocCount
        return free > 0 && free >= pointee.nelems / 8
    }

    /// Free slots the cursor has not reached: zeros of allocBits from freeindex on.
    func unallocatedSlots() -> Int {
        let nelems = Int(pointee.nelems)
        var index = Int(pointee.freeindex)
        var count = 0
        while index < nelems {
            let word = pointee.allocBits[index >> 6] >> UInt64(index & 63)
            let bitsHere = Swift.min(64 - (index & 63), nelems - index)
            let mask: UInt64 = bitsHere == 64 ? ~0 : (UInt64(1) << UInt64(bitsHere)) - 1
            count += (~word & mask).nonzeroBitCount
            index += bitsHere
        }
        return count
    }
}

