// mspan: a run of pages holding objects of one span class, or one large object.
//
// A span's header lives in metadata memory (FixAlloc), never in the pages it describes, and
// is reached from any address in its pages through the heap's page map. It owns:
//
//   - where it is: `startAddr`, `npages`; what it holds: `spanClass` (size class << 1 |
//     noscan), `elemSize`, `nelems`, `divMul` (magic division, see SizeClasses.swift);
//   - the allocation cursor, as in Go: `freeindex` is the slot from which to look for free
//     objects; `allocCache` is a 64-bit window of the complement of `allocBits` starting at
//     `freeindex`, searched with count-trailing-zeros; slots below `freeindex` are taken;
//   - two bitmaps of `nelems` bits: `allocBits` (the free/used state the cursor walks, fixed
//     between sweeps) and `gcmarkBits`. In GC mode the marker sets gcmarkBits and the sweep
//     swaps them (live objects become the new allocBits). In manual mode gcmarkBits is the
//     exact live set: allocation sets a bit, free clears it, and a "sweep" copies it into
//     allocBits and rewinds freeindex, so freed slots become allocatable again;
//   - `allocCount`, the number of objects in gcmarkBits (live objects in manual mode);
//   - cross-thread frees: a lock-free stack of freed objects (`remoteFree`, linked through
//     each object's first word) that only the span's owner or its mcentral, under its lock,
//     drains into gcmarkBits. `owner` names the mcache caching the span, or nil.
//
// Invariants (manual mode), with R = objects on the remote-free stack:
//     allocCount == popcount(gcmarkBits[0..<nelems])
//     allocCount - |R| == objects the program holds
//     freeindex <= nelems; every slot below freeindex is set in allocBits or was allocated
//     since the last sweep (and so is set in gcmarkBits).
//   Only the owner (or, when owner == nil, the mcentral lock holder) writes allocBits,
//   gcmarkBits, freeindex, allocCache and allocCount.

/// States of a span (Go's mSpanState).
public import Synchronization

@usableFromInline
enum SpanState: UInt8 {
    /// On the page heap's free pages; the header is about to be recycled.
    case dead = 0
    /// Holds heap objects (small or large).
    case inUse = 1
}

/// Which list a span is on (`MSpan.list`): an mcentral's (unowned spans) or its owning
/// mcache's (manual mode; see MCache.swift).
@usableFromInline
enum SpanList: UInt8 {
    case none = 0
    /// mcentral lists: unowned spans.
    case partial = 1
    case full = 2
    /// The owning mcache's list of spans with enough free slots to be worth sweeping.
    case localPartial = 3
    /// Owned spans with (almost) no free slot; the first free moves them along.
    case localFull = 4
    /// The mcache's current span of its class (alloc[spanClass]).
    case current = 5
    /// GC mode: an mcentral's span sets, `gcSetBase + 2*set + kind` (kind 0: partial,
    /// 1: full); see MCentral.gcSets.
    case gcSet0Partial = 6
    case gcSet0Full = 7
    case gcSet1Partial = 8
    case gcSet1Full = 9
}

@usableFromInline
struct MSpan {
    // First cache line: everything the allocation and free fast paths read. Span records are
    // 64-byte aligned (see MHeap), so these share one line.
    @usableFromInline var startAddr: UInt
    @usableFromInline var gcmarkBits: UnsafeMutablePointer<UInt64>
    /// The mcache that owns the span (its address), or 0. Written by the owner or under the
    /// mcentral lock; read atomically by freeing threads.
    @usableFromInline var owner: UInt
    /// Complement of allocBits from freeindex on: 1 bits are free slots.
    @usableFromInline var allocCache: UInt64
    @usableFromInline var elemSize: UInt32
    @usableFromInline var divMul: UInt32
    @usableFromInline var nelems: UInt32
    @usableFromInline var freeindex: UInt32
    @usableFromInline var allocCount: UInt32
    @usableFromInline var spanClass: UInt8
    @usableFromInline var list: UInt8
    @usableFromInline var state: UInt8
    /// Whether the span's memory may hold garbage and must be cleared before a zeroed
    /// allocation. Pages fresh from the OS (or released to it) are already zero.
    @usableFromInline var needzero: UInt8
    @usableFromInline var allocBits: UnsafeMutablePointer<UInt64>

    // Second line: list links and the slow paths' state.
    @usableFromInline var next: UnsafeMutablePointer<MSpan>?
    @usableFromInline var prev: UnsafeMutablePointer<MSpan>?
    @usableFromInline var npages: UInt32
    /// Sweep generation, as in Go's mspan.sweepgen. With h = heap.sweepgen (+2 per GC cycle):
    ///   sweepgen == h - 2: the span needs sweeping
    ///   sweepgen == h - 1: the span is being swept
    ///   sweepgen == h:     the span is swept and ready to use
    ///   sweepgen == h + 1: the span was cached before sweep began and still needs sweeping
    ///   sweepgen == h + 3: the span was swept and then cached and is still cached
    /// Manual mode never advances h, so every span stays at h ("swept").
    @usableFromInline var sweepgen: UInt32
    /// 1 while the span sits on a pending stack (an mcache's or mcentral's; atomic).
    @usableFromInline var pendingFlag: UInt32
    /// Head of the cross-thread free stack (atomic; an object address or 0).
    @usableFromInline var remoteFree: UInt
    /// Link on a pending stack.
    @usableFromInline var pendingNext: UnsafeMutablePointer<MSpan>?

    @inlinable var sizeClass: Int { Int(spanClass >> 1) }
    @inlinable var noscan: Bool { spanClass & 1 != 0 }
    @inlinable var limit: UInt { startAddr &+ UInt(npages) &<< UInt(AllocatorConstants.pageShift) }
    @inlinable var bitmapWords: Int { (Int(nelems) + 63) >> 6 }

    /// Span class of tiny blocks (size class 2, noscan); such spans carry reference counts.
    @usableFromInline static let tinySpanClass = AllocatorConstants.tinySizeClass << 1 | 1

    /// Per-object reference counts of a tiny span: one byte per 16-byte block, stored right
    /// after its bitmaps in the same metadata record. Nil for other spans.
    @inlinable var tinyRefs: UnsafeMutablePointer<UInt8>? {
        spanClass == MSpan.tinySpanClass
            ? UnsafeMutableRawPointer(gcmarkBits + 8).assumingMemoryBound(to: UInt8.self) : nil
    }
}

extension UnsafeMutablePointer where Pointee == MSpan {
    /// Atomic view of `remoteFree`.
    @inlinable var remoteFreeAtomic: UnsafeMutablePointer<AtomicWord> {
        atomicView(address(of: \.remoteFree))
    }

    /// Atomic view of `owner`.
    @inlinable var ownerAtomic: UnsafeMutablePointer<AtomicWord> {
        atomicView(address(of: \.owner))
    }

    @inlinable var pendingFlagAtomic: UnsafeMutablePointer<AtomicFlag32> {
        atomicView(address(of: \.pendingFlag))
    }

    /// Atomic view of `sweepgen` (claimed by CAS; read by sweepers and allocators).
    @inlinable var sweepgenAtomic: UnsafeMutablePointer<AtomicFlag32> {
        atomicView(address(of: \.sweepgen))
    }

    /// Atomic view of `freeindex`: the owner advances it while markers on other threads
    /// read it to tell a free slot from an object (Go's isFree).
    @inlinable var freeindexAtomic: UnsafeMutablePointer<AtomicFlag32> {
        atomicView(address(of: \.freeindex))
    }

    /// Object index of `offset` bytes into the span (exact within a span).
    @inlinable @inline(__always)
    func objectIndex(ofOffset offset: UInt) -> UInt {
        (offset &* UInt(pointee.divMul)) &>> 32
    }

    /// Refills `allocCache` with the 64 slots starting at `freeindex` (a multiple of 64).
    @inlinable
    func refillAllocCache(_ whichByte: UInt32) {
        let word = pointee.allocBits[Int(whichByte >> 6)]
        pointee.allocCache = ~word
    }

    /// The slow half of Go's nextFreeIndex: walks allocBits from freeindex for a free slot.
    /// Returns nelems when the span is full. Updates freeindex and allocCache.
    @usableFromInline @inline(never)
    func nextFreeIndex() -> UInt32 {
        let nelems = pointee.nelems
        var sfreeindex = pointee.freeindex
        if sfreeindex >= nelems { return nelems }
        var cache = pointee.allocCache
        var bit = UInt32(cache.trailingZeroBitCount)
        while bit == 64 {
            // Move to the next 64-slot word.
            sfreeindex = (sfreeindex &+ 64) & ~63
            if sfreeindex >= nelems {
                freeindexAtomic.pointee.store(nelems, ordering: .relaxed)
                return nelems
            }
            refillAllocCache(sfreeindex)
            cache = pointee.allocCache
            bit = UInt32(cache.trailingZeroBitCount)
        }
        let result = sfreeindex &+ bit
        if result >= nelems {
            freeindexAtomic.pointee.store(nelems, ordering: .relaxed)
            return nelems
        }
        pointee.allocCache = (cache &>> UInt64(bit)) &>> 1
        sfreeindex = result &+ 1
        if sfreeindex & 63 == 0 && sfreeindex != nelems {
            refillAllocCache(sfreeindex)
        }
        freeindexAtomic.pointee.store(sfreeindex, ordering: .relaxed)
        return result
    }

    /// Manual-mode sweep: frees become allocatable. allocBits := gcmarkBits, cursor rewound.
    /// Precondition: the caller owns the span (its mcache, or its mcentral under the lock).
    @usableFromInline
    func sweepManual(fault: FaultSink) {
        // A span that has handed out objects before may hold old bytes from now on.
        if pointee.freeindex > 0 || pointee.allocCount > 0 { pointee.needzero = 1 }
        drainRemoteFrees(fault: fault)
        let words = pointee.bitmapWords
        pointee.allocBits.update(from: pointee.gcmarkBits, count: words)
        // Slots past nelems read as taken.
        let tail = Int(pointee.nelems) & 63
        if tail != 0 { pointee.allocBits[words - 1] |= ~UInt64(0) << UInt64(tail) }
        freeindexAtomic.pointee.store(0, ordering: .relaxed)
        refillAllocCache(0)
    }

    /// Moves objects on the remote-free stack into gcmarkBits. Returns how many.
    /// Precondition: the caller owns the span. Double frees found here are fatal errors.
    @usableFromInline @discardableResult
    func drainRemoteFrees(fault: FaultSink) -> Int {
        var head = remoteFreeAtomic.pointee.exchange(0, ordering: .acquiring)
        var count = 0
        while head != 0 {
            let object = UnsafeMutableRawPointer(bitPattern: head)!
            let next = object.load(as: UInt.self)
            let index = Int(objectIndex(ofOffset: head &- pointee.startAddr))
            let bit = UInt64(1) << UInt64(index & 63)
            let word = markWord(index >> 6)
            let bits = word.pointee.load(ordering: .relaxed)
            if bits & bit == 0 {
                fault.report(.doubleFree, address: head, span: self)
            } else {
                word.pointee.store(bits & ~bit, ordering: .relaxed)
                pointee.allocCount = pointee.allocCount &- 1
                count &+= 1
            }
            head = next
        }
        return count
    }

    /// Pushes the span on a pending stack (an mcache's or mcentral's), once: its pendingFlag
    /// stays set until whoever drains the stack clears it. A Treiber stack linked through
    /// pendingNext; draining takes the whole stack with one exchange, so pops never race.
    func queuePending(on stack: UnsafeMutablePointer<AtomicWord>) {
        if pendingFlagAtomic.pointee.exchange(1, ordering: .acquiringAndReleasing) != 0 { return }
        var head = stack.pointee.load(ordering: .relaxed)
        while true {
            pointee.pendingNext = UnsafeMutablePointer<MSpan>(bitPattern: head)
            let (done, seen) = stack.pointee.weakCompareExchange(
                expected: head, desired: UInt(bitPattern: self), ordering: .acquiringAndReleasing)
            if done { return }
            head = seen
        }
    }

    /// Whether slot `index` is live (in gcmarkBits). Other threads may read it (a remote
    /// free's double-free check, a marker) while the owner changes other bits of the word.
    @inlinable func isMarked(_ index: Int) -> Bool {
        markWord(index >> 6).pointee.load(ordering: .relaxed) & (UInt64(1) << UInt64(index & 63)) != 0
    }

    /// Word `w` of gcmarkBits as an atomic. Its single writer (the owner, in manual mode)
    /// stores with relaxed load/store pairs, plain moves on x86; markers use atomic ORs.
    @inlinable @inline(__always)
    func markWord(_ w: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        UnsafeMutableRawPointer(pointee.gcmarkBits + w).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
}

extension UnsafeMutablePointer {
    /// The address of a stored field of the pointee (a constant offset once compiled).
    /// Metadata fields are reached this way, never as `&p.pointee.x` or through a mutating
    /// call or `+=` on `p.pointee.x`: those are accesses to the whole record, which other
    /// threads read field by field without its lock (ThreadSanitizer rightly reports them).
    @inlinable @inline(__always)
    func address<T>(of field: WritableKeyPath<Pointee, T>) -> UnsafeMutablePointer<T> {
        (UnsafeMutableRawPointer(self) + MemoryLayout<Pointee>.offset(of: field)!).assumingMemoryBound(to: T.self)
    }
}

/// The address of a word in metadata memory, viewed as an atomic.
@inlinable @inline(__always)
func atomicView(_ p: UnsafeMutablePointer<UInt>) -> UnsafeMutablePointer<AtomicWord> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: AtomicWord.self)
}

@inlinable @inline(__always)
func atomicView(_ p: UnsafeMutablePointer<UInt32>) -> UnsafeMutablePointer<AtomicFlag32> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: AtomicFlag32.self)
}
