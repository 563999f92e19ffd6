// mheap: the page heap. It owns the address space, the arenas mapped in it, the page
// allocator, the page-to-span map, the span headers and bitmaps, and the heap lock.
//
// Address space: one contiguous reservation (`HeapConfiguration.addressSpace`, 64 GiB by
// default) made PROT_NONE and MAP_NORESERVE, so it costs neither memory nor commit charge.
// Arenas of 64 MiB (Go's heapArenaBytes on 64-bit Linux) are mapped read-write from the
// bottom up as the heap grows; the heap never unmaps them, it returns their free pages to the
// OS with madvise (see Scavenger.swift), exactly as Go does.
//
// Page map: one span pointer per page of the reservation (Go keeps the same map split per
// arena in heapArena.spans). The map is itself a NORESERVE mapping, so only the part that
// covers mapped arenas is ever touched: 8 bytes per 8 KiB page, 0.1% of the heap. Every page
// of an in-use span maps to the span, so any interior pointer finds its span in one load and
// its object with one multiply (the collector depends on this).
//
// What the heap lock protects: the page allocator, the span header and bitmap allocators, the
// arena list, the page map entries of spans being created or freed, and the heap counters.
// Spans leave the heap to an mcentral (small objects) or straight to the caller (large
// objects: more than 32 KiB, whole pages, zeroed when the caller asks).
//
// Accounting (Go's names, runtime/mstats.go): heapSys = bytes of mapped arenas;
// heapInUse = bytes in in-use spans; heapIdle = heapSys - heapInUse; heapReleased = idle
// bytes returned to the OS; metadata = span headers + bitmaps + page map + page allocator
// bitmaps + mcaches.

#if canImport(Glibc)
import Glibc
#endif

@usableFromInline
struct MHeapState {
    @usableFromInline var lock: HeapLock
    @usableFromInline var arenaBase: UInt
    @usableFromInline var reservedBytes: UInt
    @usableFromInline var mappedBytes: Int = 0
    /// Hard limit on mapped arena bytes (0: none).
    var arenaLimit: Int
    /// Page-to-span map, one entry per page of the reservation.
    @usableFromInline var pageMap: UnsafeMutablePointer<UnsafeMutablePointer<MSpan>?>
    var pageMapBytes: Int
    var pages: PageAllocator
    /// Pages at or above this index have never been allocated (still zero from the OS).
    var zeroedBasePage = 0
    /// Span records by bitmap size: index w holds a span header followed by 2*w bitmap
    /// words (allocBits, gcmarkBits), rounded up to 64 bytes so headers are line-aligned.
    var bitmaps: UnsafeMutablePointer<FixAlloc>
    /// Span records of tiny spans: header, bitmaps, and one reference count per block.
    var tinyBitmaps: FixAlloc
    var cacheHeaders: FixAlloc
    /// Released mcache records, reused by makeThreadCache (never unmapped).
    var releasedCaches: UnsafeMutablePointer<MCache>? = nil
    /// Central free lists, one per span class.
    @usableFromInline var centrals: UnsafeMutablePointer<MCentral>
    /// The span every empty mcache slot points to: nelems = 0, so the fast path's single
    /// check fails and the slow path refills (Go's emptymspan).
    @usableFromInline var emptySpan: UnsafeMutablePointer<MSpan>
    /// Sweep generation, +2 per GC cycle (see MSpan.sweepgen).
    @usableFromInline var sweepgen: UInt32 = 0

    // Counters, under the lock.
    var inUsePages = 0
    var largeAllocs = 0
    var largeFrees = 0
    var largeLiveBytes = 0
    var spanCountByClass: UnsafeMutablePointer<Int>
    /// Statistics flushed from released mcaches.
    var flushedStats: UnsafeMutablePointer<CacheStats>

    @usableFromInline var fault: FaultSink
    /// GC mode: the collector (nil in manual mode).
    var collector: Unmanaged<Collector>? = nil
}

extension UnsafeMutablePointer where Pointee == MHeapState {
    /// The page allocator (lock held), addressed on its own: see `address(of:)`.
    var pageAllocator: UnsafeMutablePointer<PageAllocator> { address(of: \.pages) }

    /// Atomic view of `sweepgen`: advanced at mark termination (lock held, world stopped),
    /// read without the lock by sweepers and allocators.
    @inlinable var sweepgenAtomic: UnsafeMutablePointer<AtomicFlag32> { atomicView(address(of: \.sweepgen)) }

    static let arenaBytes = 64 << 20

    /// Page index (relative to the reservation) of an address known to be inside it.
    @inlinable func pageIndex(_ addr: UInt) -> Int {
        Int((addr &- pointee.arenaBase) &>> UInt(AllocatorConstants.pageShift))
    }

    /// The in-use span containing `addr`, or nil. Any thread, no lock: entries of a span are
    /// written before the span is published and cleared only when it is freed.
    @inlinable @inline(__always)
    func spanOf(_ addr: UInt) -> UnsafeMutablePointer<MSpan>? {
        let offset = addr &- pointee.arenaBase
        if offset >= pointee.reservedBytes { return nil }
        return pointee.pageMap[Int(offset &>> UInt(AllocatorConstants.pageShift))]
    }

    /// Maps one more arena. Lock held.
    func growArena() -> HeapError? {
        let arena = Self.arenaBytes
        if pointee.arenaLimit > 0 && pointee.mappedBytes + arena > pointee.arenaLimit {
            return .limitExceeded(limit: pointee.arenaLimit, mapped: pointee.mappedBytes)
        }
        if UInt(pointee.mappedBytes + arena) > pointee.reservedBytes {
            return .outOfAddressSpace(reserved: Int(pointee.reservedBytes))
        }
        let base = UnsafeMutableRawPointer(bitPattern: pointee.arenaBase + UInt(pointee.mappedBytes))!
        if case .failure(let e) = OSMemory.map(base, arena) { return .os(e) }
        pointee.mappedBytes = pointee.mappedBytes + arena
        pageAllocator.pointee.grow(chunks: arena / (PageAllocator.pagesPerChunk * AllocatorConstants.pageSize))
        return nil
    }

    /// Allocates a span of `npages` pages for `spanClass` (0 or 1 for large). Lock held.
    /// The span is in use and mapped in the page map; its bitmaps are empty.
    func allocSpanLocked(npages: Int, spanClass: UInt8) -> Result<UnsafeMutablePointer<MSpan>, HeapError> {
        var found = pageAllocator.pointee.alloc(npages)
        while found == nil {
            if let error = growArena() { return .failure(error) }
            found = pageAllocator.pointee.alloc(npages)
        }
        let (firstPage, scavengedPages) = found!
        let sizeClass = Int(spanClass >> 1)
        let lookup = SizeClassLookup.shared
        let elemSize = sizeClass == 0 ? npages * AllocatorConstants.pageSize : Int(lookup.sizes[sizeClass])
        let nelems = sizeClass == 0 ? 1 : Int(lookup.objects[sizeClass])
        let words = (nelems + 63) >> 6
        // One metadata record holds the header and, right behind it, both bitmaps (and a
        // tiny span's reference counts), so a free touches as few cache lines as possible.
        let record = spanClass == MSpan.tinySpanClass ? address(of: \.tinyBitmaps).pointee.alloc() : pointee.bitmaps[words].alloc()
        guard let raw = record else {
            pageAllocator.pointee.free(firstPage, npages)
            return .failure(.metadataExhausted)
        }
        let span = raw.bindMemory(to: MSpan.self, capacity: 1)
        let allocBits = (raw + MemoryLayout<MSpan>.stride).bindMemory(to: UInt64.self, capacity: 2 * words)
        // Fresh pages (never used, or returned to the OS) are zero: no clearing needed.
        let fresh = firstPage >= pointee.zeroedBasePage || scavengedPages == npages
        pointee.zeroedBasePage = Swift.max(pointee.zeroedBasePage, firstPage + npages)
        span.initialize(to: MSpan(
            startAddr: pointee.arenaBase + UInt(firstPage << AllocatorConstants.pageShift),
            gcmarkBits: allocBits + words, owner: 0, allocCache: 0,
            elemSize: UInt32(truncatingIfNeeded: elemSize),
            divMul: sizeClass == 0 ? 0 : lookup.divMul[sizeClass],
            nelems: UInt32(nelems), freeindex: 0, allocCount: 0,
            spanClass: spanClass, list: SpanList.none.rawValue, state: SpanState.inUse.rawValue,
            needzero: fresh ? 0 : 1, allocBits: allocBits,
            next: nil, prev: nil, npages: UInt32(npages), sweepgen: sweepgenAtomic.pointee.load(ordering: .relaxed),
            pendingFlag: 0, remoteFree: 0, pendingNext: nil))
        // Slots past nelems read as taken.
        let tail = nelems & 63
        if tail != 0 { allocBits[words - 1] = ~UInt64(0) << UInt64(tail) }
        span.refillAllocCache(0)
        for p in firstPage..<(firstPage + npages) { pointee.pageMap[p] = span }
        pointee.inUsePages = pointee.inUsePages + npages
        pointee.spanCountByClass[sizeClass] += 1
        return .success(span)
    }

    /// Returns a span's pages to the page allocator and recycles its header. Lock held.
    func freeSpanLocked(_ span: UnsafeMutablePointer<MSpan>) {
        let firstPage = pageIndex(span.pointee.startAddr)
        let npages = Int(span.pointee.npages)
        for p in firstPage..<(firstPage + npages) { pointee.pageMap[p] = nil }
        pageAllocator.pointee.free(firstPage, npages)
        pointee.inUsePages = pointee.inUsePages - npages
        pointee.spanCountByClass[span.pointee.sizeClass] -= 1
        let words = span.pointee.bitmapWords
        span.pointee.state = SpanState.dead.rawValue
        if span.pointee.spanClass == MSpan.tinySpanClass {
            address(of: \.tinyBitmaps).pointee.free(UnsafeMutableRawPointer(span))
        } else {
            pointee.bitmaps[words].free(UnsafeMutableRawPointer(span))
        }
    }

    // MARK: Large objects (> 32 KiB)

    /// Allocates a large object: whole pages straight from the page heap. If the pages were
    /// used before (fresh pages read as zero anyway), `zeroed` clears them all; otherwise the
    /// first `clearPrefix` bytes are cleared (the collector's pointer slots).
    @usableFromInline @inline(never)
    func allocLarge(_ size: Int, noscan: Bool, markBlack: Bool = true, zeroed: Bool = true, clearPrefix: Int = 0) -> UnsafeMutableRawPointer? {
        if size > Int(pointee.reservedBytes) {
            pointee.fault.allocationFailed(.tooLarge(size: size))
            return nil
        }
        let npages = (size + AllocatorConstants.pageSize - 1) >> AllocatorConstants.pageShift
        pointee.lock.lock()
        let result = allocSpanLocked(npages: npages, spanClass: noscan ? 1 : 0)
        guard case .success(let span) = result else {
            pointee.lock.unlock()
            if case .failure(let e) = result { pointee.fault.allocationFailed(e) }
            return nil
        }
        span.pointee.allocCount = 1
        span.pointee.freeindex = 1
        // Manual mode: the object is live. GC mode: marked only while marking (allocate black).
        span.pointee.gcmarkBits[0] = markBlack ? 1 : 0
        pointee.largeAllocs = pointee.largeAllocs + 1
        pointee.largeLiveBytes = pointee.largeLiveBytes + npages << AllocatorConstants.pageShift
        let needzero = span.pointee.needzero != 0
        pointee.lock.unlock()
        let p = UnsafeMutableRawPointer(bitPattern: span.pointee.startAddr)!
        if needzero { memset(p, 0, zeroed ? npages << AllocatorConstants.pageShift : clearPrefix) }
        return p
    }

    /// Frees a large object. Any thread.
    @usableFromInline @inline(never)
    func freeLarge(_ span: UnsafeMutablePointer<MSpan>, _ addr: UInt) {
        pointee.lock.lock()
        defer { pointee.lock.unlock() }
        // Re-check under the lock: a racing double free must not free the pages twice.
        guard spanOf(addr) == span, span.pointee.state == SpanState.inUse.rawValue,
              span.pointee.startAddr == addr, span.pointee.sizeClass == 0 else {
            pointee.fault.report(.doubleFree, address: addr, span: nil)
            return
        }
        pointee.largeFrees = pointee.largeFrees + 1
        pointee.largeLiveBytes = pointee.largeLiveBytes - Int(span.pointee.npages) << AllocatorConstants.pageShift
        freeSpanLocked(span)
    }
}
