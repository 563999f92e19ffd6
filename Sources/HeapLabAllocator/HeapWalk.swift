// Walking the heap: spans and objects as they are, for snapshots, verification and tests.
//
// The walk reads the page map over mapped arenas and each span's record. It must run with the
// mutators stopped (or quiescent): it reads span state that owners change without locks.
// Objects still on an mcache's free stack count as allocated here (their spans say so); a
// caller that knows better (the replay, which knows which objects the program holds) filters.

/// One in-use span, as seen by `Heap.forEachSpan`.
public struct SpanInfo: Sendable, Equatable {
    /// First byte and page count.
    public var start: UInt
    public var pages: Int
    /// Size class (0: a large object) and whether the span holds pointer-free objects.
    public var sizeClass: Int
    public var noscan: Bool
    /// Object size (for a large span, its bytes) and slots per span.
    public var elemSize: Int
    public var slots: Int
    /// Allocated slots (gcmarkBits), as a bitmap of `slots` bits.
    public var allocated: [UInt64]
    /// Whether an mcache owns the span (manual mode) and whether its memory needs clearing.
    public var cached: Bool
    public var needzero: Bool
    public var allocatedCount: Int { allocated.reduce(0) { $0 + $1.nonzeroBitCount } }
    public var bytes: Int { pages * AllocatorConstants.pageSize }

    public func isAllocated(_ slot: Int) -> Bool { allocated[slot >> 6] & (1 << UInt64(slot & 63)) != 0 }
    public func address(ofSlot slot: Int) -> UInt { start + UInt(slot * elemSize) }
}

extension Heap {
    /// Calls `body` for every in-use span, in address order. Mutators must be stopped.
    public func forEachSpan(_ body: (SpanInfo) throws -> Void) rethrows {
        try forEachSpanRecord { span in
            let words = span.pointee.bitmapWords
            let large = span.pointee.divMul == 0
            try body(SpanInfo(
                start: span.pointee.startAddr, pages: Int(span.pointee.npages),
                sizeClass: span.pointee.sizeClass, noscan: span.pointee.noscan,
                elemSize: large ? Int(span.pointee.npages) << AllocatorConstants.pageShift : Int(span.pointee.elemSize),
                slots: Int(span.pointee.nelems),
                allocated: Array(UnsafeBufferPointer(start: span.pointee.gcmarkBits, count: words)),
                cached: span.pointee.owner != 0, needzero: span.pointee.needzero != 0))
        }
    }

    /// Calls `body` with every span record the page map holds, in address order, each once.
    /// Mutators must be stopped.
    func forEachSpanRecord(_ body: (UnsafeMutablePointer<MSpan>) throws -> Void) rethrows {
        let s = state
        s.pointee.lock.lock()
        let mappedPages = s.pointee.mappedBytes >> AllocatorConstants.pageShift
        s.pointee.lock.unlock()
        var page = 0
        while page < mappedPages {
            guard let span = s.pointee.pageMap[page] else { page += 1; continue }
            page += Int(span.pointee.npages)
            try body(span)
        }
    }

    /// Calls `body` with the base address, size, size class and noscan flag of every
    /// allocated object (tiny blocks count as one 16-byte object). Mutators must be stopped.
    public func forEachObject(_ body: (_ base: UInt, _ size: Int, _ sizeClass: Int, _ noscan: Bool) throws -> Void) rethrows {
        try forEachSpan { span in
            for slot in 0..<span.slots where span.isAllocated(slot) {
                try body(span.address(ofSlot: slot), span.elemSize, span.sizeClass, span.noscan)
            }
        }
    }
}
