// mcentral: the central free list of one span class (136 of them: 68 size classes, scan and
// noscan). See malloc.go's overview: an mcache that runs out of a class comes here, and
// taking a whole span under one lock amortises the lock over every object in the span.
//
// It owns the spans of its class that no mcache holds, on two lists:
//   partial  spans with at least one free slot (after sweeping);
//   full     spans with none.
// (Go 1.19 keeps each list twice, swept and unswept, indexed by sweepgen; the collector will
// add the unswept half. In manual mode every span is swept when it comes back here.)
//
// Cross-thread frees into spans that no mcache owns are pushed on the span's remote-free
// stack; the freeing thread then puts the span on this mcentral's `pending` stack (once: the
// span's pendingFlag guards it). Whoever next takes the lock drains pending spans: their
// frees land in gcmarkBits, a span that became empty goes back to the page heap, a full span
// that gained a free slot moves to partial. That is how manual mode returns memory: "a span
// whose objects are all free returns to mheap" as soon as the lock is next taken (any refill
// of that class, or Heap.releaseEmptySpans()).
//
// Invariants: a span is on at most one list, and `span.list` says which; spans on the lists
// have owner == nil; allocCount of a partial span < nelems.

#if canImport(Glibc)
import Glibc
#endif

@usableFromInline
struct MCentral {
    var lock: HeapLock
    var spanClass: UInt8
    var partial: UnsafeMutablePointer<MSpan>?
    var full: UnsafeMutablePointer<MSpan>?
    /// Lock-free stack of spans with pending remote frees (linked by pendingNext).
    var pending: UInt
    var partialCount = 0
    var fullCount = 0
    /// GC mode: Go 1.19's partial and full span sets, each twice (swept and unswept),
    /// indexed by sweepgen/2 % 2 so that advancing sweepgen by 2 turns this cycle's swept
    /// sets into the next cycle's unswept ones without moving a span. Index 2*set + kind
    /// (kind 0 partial, 1 full). See Collector/Sweeping.swift.
    var gcSets: (UnsafeMutablePointer<MSpan>?, UnsafeMutablePointer<MSpan>?,
                 UnsafeMutablePointer<MSpan>?, UnsafeMutablePointer<MSpan>?) = (nil, nil, nil, nil)
}

extension UnsafeMutablePointer where Pointee == MCentral {
    var pendingAtomic: UnsafeMutablePointer<AtomicWord> { atomicView(address(of: \.pending)) }

    private func push(_ span: UnsafeMutablePointer<MSpan>, _ list: SpanList) {
        let head = list == .partial ? pointee.partial : pointee.full
        span.pointee.next = head
        span.pointee.prev = nil
        head?.pointee.prev = span
        if list == .partial { pointee.partial = span; pointee.partialCount = pointee.partialCount + 1 }
        else { pointee.full = span; pointee.fullCount = pointee.fullCount + 1 }
        span.pointee.list = list.rawValue
    }

    private func remove(_ span: UnsafeMutablePointer<MSpan>) {
        let list = SpanList(rawValue: span.pointee.list)!
        if let prev = span.pointee.prev { prev.pointee.next = span.pointee.next }
        else if list == .partial { pointee.partial = span.pointee.next }
        else { pointee.full = span.pointee.next }
        span.pointee.next?.pointee.prev = span.pointee.prev
        span.pointee.next = nil
        span.pointee.prev = nil
        if list == .partial { pointee.partialCount = pointee.partialCount - 1 } else { pointee.fullCount = pointee.fullCount - 1 }
        span.pointee.list = SpanList.none.rawValue
    }

    /// Called by a thread that freed an object into a span it does not own, after pushing
    /// the object on the span's remote-free stack.
    func notePending(_ span: UnsafeMutablePointer<MSpan>) {
        span.queuePending(on: pendingAtomic)
    }

    /// Drains the pending stack. Lock held. Empty spans go back to the heap.
    func processPending(heap: UnsafeMutablePointer<MHeapState>) {
        var head = pendingAtomic.pointee.exchange(0, ordering: .acquiringAndReleasing)
        while let span = UnsafeMutablePointer<MSpan>(bitPattern: head) {
            head = UInt(bitPattern: span.pointee.pendingNext)
            span.pointee.pendingNext = nil
            // Clear the flag before draining, so a free that lands after the drain queues again.
            span.pendingFlagAtomic.pointee.store(0, ordering: .sequentiallyConsistent)
            // An owned span is drained by its owner when it gives the span back.
            if span.ownerAtomic.pointee.load(ordering: .sequentiallyConsistent) != 0 { continue }
            if span.pointee.list == SpanList.none.rawValue { continue }
            span.drainRemoteFrees(fault: heap.pointee.fault)
            settle(span, heap: heap)
        }
    }

    /// Puts an unowned span on the list its occupancy calls for, or frees it. Lock held.
    private func settle(_ span: UnsafeMutablePointer<MSpan>, heap: UnsafeMutablePointer<MHeapState>) {
        if span.pointee.list != SpanList.none.rawValue { remove(span) }
        // A span still queued on the pending stack must not be recycled: the stack links
        // through its header. It is freed when the stack is processed.
        let queued = span.pendingFlagAtomic.pointee.load(ordering: .sequentiallyConsistent) != 0
        if span.pointee.allocCount == 0 && !queued {
            heap.pointee.lock.withLock { heap.freeSpanLocked(span) }
        } else if span.pointee.allocCount < span.pointee.nelems {
            push(span, .partial)
        } else {
            push(span, .full)
        }
    }

    /// Takes a span with at least one free slot for `cache`, sweeping it first.
    /// Returns nil when the heap cannot grow (the error is reported to the fault sink).
    func cacheSpan(owner: UnsafeMutableRawPointer, heap: UnsafeMutablePointer<MHeapState>) -> UnsafeMutablePointer<MSpan>? {
        pointee.lock.lock()
        processPending(heap: heap)
        var span = pointee.partial
        if let s = span {
            remove(s)
        }
        pointee.lock.unlock()
        if span == nil {
            span = grow(heap: heap)
            guard span != nil else { return nil }
        }
        let s = span!
        s.ownerAtomic.pointee.store(UInt(bitPattern: owner), ordering: .sequentiallyConsistent)
        // Frees pushed while the span sat here are now ours to apply.
        s.sweepManual(fault: heap.pointee.fault)
        return s
    }

    /// Gives back a span an mcache no longer uses.
    func uncacheSpan(_ span: UnsafeMutablePointer<MSpan>, heap: UnsafeMutablePointer<MHeapState>) {
        pointee.lock.lock()
        // Release ownership first, then drain: a racing remote free either sees owner == nil
        // (and queues the span as pending) or lands before the drain below (Dekker order).
        span.ownerAtomic.pointee.store(0, ordering: .sequentiallyConsistent)
        span.drainRemoteFrees(fault: heap.pointee.fault)
        settle(span, heap: heap)
        pointee.lock.unlock()
    }

    /// Allocates a fresh span for this class from the page heap.
    private func grow(heap: UnsafeMutablePointer<MHeapState>) -> UnsafeMutablePointer<MSpan>? {
        let sizeClass = Int(pointee.spanClass >> 1)
        let npages = Int(SizeClassLookup.shared.pages[sizeClass])
        heap.pointee.lock.lock()
        let result = heap.allocSpanLocked(npages: npages, spanClass: pointee.spanClass)
        var span: UnsafeMutablePointer<MSpan>? = nil
        switch result {
        case .success(let s):
            span = s
        case .failure(let e):
            heap.pointee.lock.unlock()
            heap.pointee.fault.allocationFailed(e)
            return nil
        }
        heap.pointee.lock.unlock()
        return span
    }

    /// Releases every unowned span that has become empty (after draining pending frees).
    func releaseEmpty(heap: UnsafeMutablePointer<MHeapState>) {
        pointee.lock.lock()
        processPending(heap: heap)
        pointee.lock.unlock()
    }
}
