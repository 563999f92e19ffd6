// Heap: the public face of the allocator. It creates the mheap (address space reservation,
// page allocator, page map, metadata allocators), the 136 mcentrals and the empty span, and
// hands out ThreadCaches (mcaches). See README.md's architecture section for the picture:
//
//   ThreadCache (mcache, per thread, no locks)
//      │ span exhausted: refill
//      ▼
//   MCentral (per span class, one lock each)
//      │ no partial span: grow
//      ▼
//   MHeap (page allocator + page map, one heap lock) ◀── large objects (> 32 KiB)
//      │ no free pages: map a 64 MiB arena       │ free pages: Scavenger → madvise
//      ▼                                         ▼
//   OS (mmap reservation, mprotect, madvise)
//
// Manual mode (the only mode until the collector lands): objects are freed explicitly with
// ThreadCache.free, from any thread. The policy is in MCache.swift (in-place sweep of a
// cached span) and MCentral.swift (pending cross-thread frees; empty spans return to the page
// heap). Faults (bad frees, exhausted limits) go to a FaultSink: trap with a message naming
// the pointer and its span (default), or record them (tests, and callers that report them).

#if canImport(Glibc)
import Glibc
#endif

/// How a heap is set up.
public struct HeapConfiguration: Sendable {
    /// Address space reserved up front (never committed until used). Default 64 GiB.
    public var addressSpace: Int = 64 << 30
    /// Hard limit on heap memory mapped from the OS (arenas), in bytes; 0 means none.
    /// Allocations that would need more return nil and set `Heap.lastError`.
    public var memoryLimit: Int = 0
    /// What a bad free or failed allocation does.
    public var onFault: FaultPolicy = .trap
    /// Run a background scavenger thread that returns idle pages to the OS.
    public var backgroundScavenger: Bool = false
    /// Idle memory the scavenger leaves resident, as a fraction of heap in use
    /// (Go's retainExtraPercent is 10%).
    public var scavengerRetainFraction: Double = 0.10

    public init() {}
    public init(memoryLimit: Int = 0, onFault: FaultPolicy = .trap, backgroundScavenger: Bool = false) {
        self.memoryLimit = memoryLimit
        self.onFault = onFault
        self.backgroundScavenger = backgroundScavenger
    }
}

public enum FaultPolicy: Sendable {
    /// Print the fault and stop the process (bad frees are program bugs).
    case trap
    /// Keep the fault in `Heap.faults` and leave the heap unchanged.
    case record
}

/// Why an allocation could not be served.
public enum HeapError: Error, Equatable, CustomStringConvertible, Sendable {
    case limitExceeded(limit: Int, mapped: Int)
    case outOfAddressSpace(reserved: Int)
    case tooLarge(size: Int)
    case metadataExhausted
    case os(OSError)

    public static func == (a: HeapError, b: HeapError) -> Bool { a.description == b.description }

    public var description: String {
        switch self {
        case .limitExceeded(let limit, let mapped):
            return "heap memory limit of \(limit) bytes reached (\(mapped) bytes mapped)"
        case .outOfAddressSpace(let reserved):
            return "out of address space: the heap's \(reserved)-byte reservation is full"
        case .tooLarge(let size):
            return "allocation of \(size) bytes is larger than the heap's address space"
        case .metadataExhausted:
            return "the OS refused memory for heap metadata"
        case .os(let e):
            return e.description
        }
    }
}

/// A bad free, with the pointer and (when there is one) the span it falls in.
public struct HeapFault: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case notHeapPointer = "pointer is not from this heap"
        case doubleFree = "double free"
        case interiorPointer = "pointer into the middle of an object"
        case wrongSize = "size or kind given does not match the object's size class"
    }
    public var kind: Kind
    public var address: UInt
    /// The span's first address, class and object size, if the pointer is in one.
    public var spanStart: UInt?
    public var spanPages: Int?
    public var sizeClass: Int?
    public var elemSize: Int?

    public var description: String {
        var s = "free(0x\(String(address, radix: 16))): \(kind.rawValue)"
        if let start = spanStart, let pages = spanPages, let cls = sizeClass {
            let end = start + UInt(pages * AllocatorConstants.pageSize)
            s += " (span 0x\(String(start, radix: 16))-0x\(String(end, radix: 16)), size class \(cls)"
            if let e = elemSize, cls != 0 { s += ", \(e)-byte objects" }
            s += ")"
        }
        return s
    }
}

/// Where faults go. A reference to a lock-protected recorder; slow paths only.
@usableFromInline
struct FaultSink {
    let recorder: Unmanaged<FaultRecorder>

    func report(_ kind: HeapFault.Kind, address: UInt, span: UnsafeMutablePointer<MSpan>?) {
        var fault = HeapFault(kind: kind, address: address)
        if let span {
            fault.spanStart = span.pointee.startAddr
            fault.spanPages = Int(span.pointee.npages)
            fault.sizeClass = span.pointee.sizeClass
            fault.elemSize = Int(span.pointee.elemSize)
        }
        recorder.takeUnretainedValue().record(fault)
    }

    func allocationFailed(_ error: HeapError) {
        recorder.takeUnretainedValue().recordError(error)
    }
}

final class FaultRecorder: @unchecked Sendable {
    let policy: FaultPolicy
    private let lock = HeapLock()
    private(set) var faults: [HeapFault] = []
    private(set) var lastError: HeapError?

    init(policy: FaultPolicy) { self.policy = policy }

    func record(_ fault: HeapFault) {
        if policy == .trap {
            fatalError("heaplab allocator: \(fault)")
        }
        lock.withLock { faults.append(fault) }
    }

    func recordError(_ error: HeapError) {
        lock.withLock { lastError = error }
    }

    var snapshot: ([HeapFault], HeapError?) { lock.withLock { (faults, lastError) } }
}

/// A Go-style heap over real memory. Thread-safe; allocate through per-thread ThreadCaches.
public final class Heap: @unchecked Sendable {
    @usableFromInline let state: UnsafeMutablePointer<MHeapState>
    let configuration: HeapConfiguration
    private let recorder: FaultRecorder
    private var scavenger: BackgroundScavenger?

    /// Reserves the heap's address space. Throws if the OS refuses the reservation.
    public init(configuration: HeapConfiguration = HeapConfiguration()) throws(HeapError) {
        self.configuration = configuration
        recorder = FaultRecorder(policy: configuration.onFault)
        let arena = UnsafeMutablePointer<MHeapState>.arenaBytes
        // Reserve the configured address space; where the OS (or a tool such as valgrind)
        // caps address space, halve the request down to one arena.
        var reserved = max(arena, (configuration.addressSpace + arena - 1) / arena * arena)
        var base: UnsafeMutableRawPointer
        while true {
            switch OSMemory.reserve(reserved) {
            case .success(let p): base = p
            case .failure(let e):
                if reserved > arena { reserved = max(arena, reserved / 2 / arena * arena); continue }
                throw .os(e)
            }
            break
        }
        let pagesTotal = reserved >> AllocatorConstants.pageShift
        let pageMapBytes = pagesTotal * MemoryLayout<UnsafeMutablePointer<MSpan>?>.stride
        guard case .success(let mapRaw) = OSMemory.mapFresh(pageMapBytes),
              let pages = PageAllocator(maxChunks: pagesTotal / PageAllocator.pagesPerChunk) else {
            OSMemory.free(base, reserved)
            throw .metadataExhausted
        }
        let bitmaps = UnsafeMutablePointer<FixAlloc>.allocate(capacity: 17)
        func lineRounded(_ bytes: Int) -> Int { (bytes + 63) & ~63 }
        for words in 0...16 {
            (bitmaps + words).initialize(to: FixAlloc(recordSize: lineRounded(MemoryLayout<MSpan>.stride + 16 * words)))
        }
        let centrals = UnsafeMutablePointer<MCentral>.allocate(capacity: AllocatorConstants.numSpanClasses)
        for spc in 0..<AllocatorConstants.numSpanClasses {
            (centrals + spc).initialize(to: MCentral(lock: HeapLock(), spanClass: UInt8(spc), partial: nil, full: nil, pending: 0))
        }
        let emptySpan = UnsafeMutablePointer<MSpan>.allocate(capacity: 1)
        let emptyBits = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
        emptyBits.initialize(repeating: ~0, count: 2)
        emptySpan.initialize(to: MSpan(
            startAddr: 0, gcmarkBits: emptyBits + 1, owner: 0, allocCache: 0, elemSize: 0, divMul: 0,
            nelems: 0, freeindex: 0, allocCount: 0, spanClass: 0, list: 0, state: SpanState.inUse.rawValue,
            needzero: 0, allocBits: emptyBits, next: nil, prev: nil, npages: 0, sweepgen: 0,
            pendingFlag: 0, remoteFree: 0, pendingNext: nil))
        let spanCounts = UnsafeMutablePointer<Int>.allocate(capacity: AllocatorConstants.numSizeClasses)
        spanCounts.initialize(repeating: 0, count: AllocatorConstants.numSizeClasses)
        let flushed = UnsafeMutablePointer<CacheStats>.allocate(capacity: 1)
        let flushedCounts = UnsafeMutablePointer<Int>.allocate(capacity: AllocatorConstants.numSizeClasses)
        flushedCounts.initialize(repeating: 0, count: AllocatorConstants.numSizeClasses)
        flushed.initialize(to: CacheStats(smallAllocCount: flushedCounts, tinyAllocs: 0, tinyBlocks: 0))

        state = .allocate(capacity: 1)
        state.initialize(to: MHeapState(
            lock: HeapLock(),
            arenaBase: UInt(bitPattern: base), reservedBytes: UInt(reserved),
            arenaLimit: configuration.memoryLimit,
            pageMap: mapRaw.bindMemory(to: UnsafeMutablePointer<MSpan>?.self, capacity: pagesTotal),
            pageMapBytes: pageMapBytes,
            pages: pages,
            bitmaps: bitmaps,
            tinyBitmaps: FixAlloc(recordSize: lineRounded(MemoryLayout<MSpan>.stride + 2 * 8 * 8
                + Int(SizeClassLookup.shared.objects[Int(AllocatorConstants.tinySizeClass)]))),
            cacheHeaders: FixAlloc(recordSize: MemoryLayout<MCache>.stride
                + 2 * AllocatorConstants.numSpanClasses * 8 + AllocatorConstants.numSizeClasses * 8
                + AllocatorConstants.numSpanClasses * (MCache.stackDepth * 8 + 16)),
            centrals: centrals, emptySpan: emptySpan,
            spanCountByClass: spanCounts, flushedStats: flushed,
            fault: FaultSink(recorder: Unmanaged.passUnretained(recorder))))
        if configuration.backgroundScavenger {
            scavenger = BackgroundScavenger(heap: self)
        }
    }

    deinit {
        scavenger?.stop()
        let s = state.pointee
        OSMemory.free(UnsafeMutableRawPointer(bitPattern: s.arenaBase)!, Int(s.reservedBytes))
        OSMemory.free(UnsafeMutableRawPointer(s.pageMap), s.pageMapBytes)
        // Metadata chunks are process-lifetime mappings owned by FixAlloc; a heap is expected
        // to live as long as its replay. (Tests create many small heaps; the chunks are
        // NORESERVE mappings and cost only what was touched.)
    }

    /// A new mcache for the calling thread.
    public func makeThreadCache() -> ThreadCache {
        state.pointee.lock.lock()
        var c: UnsafeMutablePointer<MCache>
        if let reused = state.pointee.releasedCaches {
            state.pointee.releasedCaches = reused.pointee.nextReleased
            c = reused
        } else {
            let raw = state.address(of: \.cacheHeaders).pointee.alloc()!
            c = raw.bindMemory(to: MCache.self, capacity: 1)
            let alloc = (raw + MemoryLayout<MCache>.stride).bindMemory(
                to: UnsafeMutablePointer<MSpan>.self, capacity: AllocatorConstants.numSpanClasses)
            let counts = (raw + MemoryLayout<MCache>.stride + AllocatorConstants.numSpanClasses * 8)
                .bindMemory(to: Int.self, capacity: AllocatorConstants.numSizeClasses)
            let partial = (raw + MemoryLayout<MCache>.stride + AllocatorConstants.numSpanClasses * 8
                + AllocatorConstants.numSizeClasses * 8)
                .bindMemory(to: UnsafeMutablePointer<MSpan>?.self, capacity: AllocatorConstants.numSpanClasses)
            let stacks = (raw + MemoryLayout<MCache>.stride + 2 * AllocatorConstants.numSpanClasses * 8
                + AllocatorConstants.numSizeClasses * 8)
                .bindMemory(to: UInt.self, capacity: AllocatorConstants.numSpanClasses * MCache.stackDepth)
            let stackCounts = (UnsafeMutableRawPointer(stacks) + AllocatorConstants.numSpanClasses * MCache.stackDepth * 8)
                .bindMemory(to: UInt64.self, capacity: 2 * AllocatorConstants.numSpanClasses)
            c.initialize(to: MCache(heap: state, alloc: alloc, tiny: 0, tinyOffset: 0,
                                    stats: CacheStats(smallAllocCount: counts, tinyAllocs: 0, tinyBlocks: 0),
                                    localPartial: partial, localFull: nil, pending: 0, nextReleased: nil,
                                    class8: SizeClassLookup.shared.class8,
                                    class128: SizeClassLookup.shared.class128,
                                    stacks: stacks, stackCounts: stackCounts,
                                    allocMark: MCache.allocMarkPlain, gcMode: false, gcAllocatedBytes: 0))
        }
        state.pointee.lock.unlock()
        // A reused record may still carry late remote-free notices: pass them on first.
        c.forwardPending()
        c.pointee.alloc.initialize(repeating: state.pointee.emptySpan, count: AllocatorConstants.numSpanClasses)
        c.pointee.stats.smallAllocCount.initialize(repeating: 0, count: AllocatorConstants.numSizeClasses)
        c.pointee.localPartial.initialize(repeating: nil, count: AllocatorConstants.numSpanClasses)
        c.pointee.stackCounts.initialize(repeating: 0, count: 2 * AllocatorConstants.numSpanClasses)
        c.pointee.stats.tinyAllocs = 0
        c.pointee.stats.tinyBlocks = 0
        c.pointee.tiny = 0
        c.pointee.tinyOffset = 0
        c.pointee.localFull = nil
        c.pointee.nextReleased = nil
        return ThreadCache(c)
    }

    /// Gives a cache's spans back and folds its counters into the heap. The cache must not
    /// be used again. (Its record is kept for the next makeThreadCache: remote frees racing
    /// with the release may still queue spans on it, and are passed on from there.)
    public func releaseThreadCache(_ cache: ThreadCache) {
        cache.flush()
        let c = cache.c
        state.pointee.lock.lock()
        let flushed = state.pointee.flushedStats
        for cls in 0..<AllocatorConstants.numSizeClasses {
            flushed.pointee.smallAllocCount[cls] += c.pointee.stats.smallAllocCount[cls]
        }
        flushed.pointee.tinyAllocs += c.pointee.stats.tinyAllocs
        flushed.pointee.tinyBlocks += c.pointee.stats.tinyBlocks
        c.pointee.nextReleased = state.pointee.releasedCaches
        state.pointee.releasedCaches = c
        state.pointee.lock.unlock()
    }

    /// Applies pending cross-thread frees to spans no cache holds and returns the spans that
    /// became empty to the page heap.
    public func releaseEmptySpans() {
        // Under the heap lock, so no released record is reused while we drain it.
        state.pointee.lock.lock()
        var released = state.pointee.releasedCaches
        while let c = released {
            c.forwardPending()
            released = c.pointee.nextReleased
        }
        state.pointee.lock.unlock()
        for spc in 0..<AllocatorConstants.numSpanClasses {
            (state.pointee.centrals + spc).releaseEmpty(heap: state)
        }
    }

    /// Returns up to `bytes` of idle heap memory to the OS (all of it by default), highest
    /// addresses first, like Go's debug.FreeOSMemory. Returns the bytes released.
    @discardableResult
    public func scavenge(bytes: Int = .max) -> Int {
        releaseEmptySpans()
        return state.scavenge(maxBytes: bytes)
    }

    /// Faults recorded under `FaultPolicy.record`.
    public var faults: [HeapFault] { state.pointee.fault.recorder.takeUnretainedValue().snapshot.0 }

    /// Why the last failed allocation failed.
    public var lastError: HeapError? { state.pointee.fault.recorder.takeUnretainedValue().snapshot.1 }

    /// The address range reserved for the heap.
    public var reservedRange: Range<UInt> {
        state.pointee.arenaBase..<(state.pointee.arenaBase + state.pointee.reservedBytes)
    }

    /// Whether `p` is the start of an object this heap has allocated and not freed.
    /// (Tiny objects: whether their block is live.) Exact when no thread is mutating.
    public func isLive(_ p: UnsafeRawPointer) -> Bool {
        let addr = UInt(bitPattern: p)
        guard let span = state.spanOf(addr), span.pointee.state == SpanState.inUse.rawValue else { return false }
        if span.pointee.divMul == 0 { return addr == span.pointee.startAddr }
        let index = Int(span.objectIndex(ofOffset: addr - span.pointee.startAddr))
        return span.isMarked(index)
    }

    /// The size class and span of the object containing `p`, if any (interior pointers too).
    public func objectInfo(_ p: UnsafeRawPointer) -> (base: UInt, size: Int, sizeClass: Int, noscan: Bool)? {
        let addr = UInt(bitPattern: p)
        guard let span = state.spanOf(addr) else { return nil }
        if span.pointee.divMul == 0 {
            return (span.pointee.startAddr, Int(span.pointee.npages) << AllocatorConstants.pageShift, 0, span.pointee.noscan)
        }
        let index = span.objectIndex(ofOffset: addr - span.pointee.startAddr)
        let size = Int(span.pointee.elemSize)
        return (span.pointee.startAddr + index * UInt(size), size, span.pointee.sizeClass, span.pointee.noscan)
    }
}
