// Sweeping (Go's mgcsweep.go) and the GC-mode span traffic between mcache and mcentral.
//
// After mark termination every span is unswept: heap.sweepgen advanced by 2, and a span's
// sweepgen tells its state (see MSpan.sweepgen). A span is swept exactly once per cycle by
// whoever wins the CAS of its sweepgen from h-2 to h-1: the background sweeper, an mcache
// refilling that class (lazy, proportional sweeping: allocation pays for the sweeping it
// needs), or sweep termination at the start of the next cycle (finishSweep).
//
// Sweeping a small span: the marked objects are the live ones, so allocBits := gcmarkBits
// (Go swaps the two bitmaps; we copy, as a tiny span's reference counts sit right behind its
// gcmarkBits), gcmarkBits := 0, allocCount := live objects, freeindex := 0. A span with no
// live object goes back to the page heap. With `verify`, freed objects are poisoned (0xde)
// first, so a use after free shows. A large span is freed if unmarked.
//
// mcentral sets (GC mode): partial/full × swept/unswept, indexed by sweepgen/2 % 2 as Go
// 1.19's mcentral.partial[2]/full[2]. An mcache gives a span back when it is full (or at mark
// termination) and takes a swept partial span, else sweeps unswept ones, else grows.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

extension UnsafeMutablePointer where Pointee == MCentral {
    private func setHead(_ index: Int) -> UnsafeMutablePointer<UnsafeMutablePointer<MSpan>?> {
        UnsafeMutableRawPointer(address(of: \.gcSets)).assumingMemoryBound(to: UnsafeMutablePointer<MSpan>?.self) + index
    }

    /// Index into gcSets: 2 * set + kind, set = swept or unswept for sweepgen `sg`.
    private func setIndex(swept: Bool, full: Bool, sweepgen sg: UInt32) -> Int {
        let sweptSet = Int((sg >> 1) & 1)
        return 2 * (swept ? sweptSet : 1 - sweptSet) + (full ? 1 : 0)
    }

    func gcPush(_ span: UnsafeMutablePointer<MSpan>, swept: Bool, full: Bool, sweepgen sg: UInt32) {
        let index = setIndex(swept: swept, full: full, sweepgen: sg)
        let head = setHead(index)
        span.pointee.prev = nil
        span.pointee.next = head.pointee
        head.pointee?.pointee.prev = span
        head.pointee = span
        span.pointee.list = UInt8(SpanList.gcSet0Partial.rawValue) + UInt8(index)
    }

    func gcRemove(_ span: UnsafeMutablePointer<MSpan>) {
        let index = Int(span.pointee.list) - Int(SpanList.gcSet0Partial.rawValue)
        if let prev = span.pointee.prev { prev.pointee.next = span.pointee.next } else { setHead(index).pointee = span.pointee.next }
        span.pointee.next?.pointee.prev = span.pointee.prev
        span.pointee.next = nil
        span.pointee.prev = nil
        span.pointee.list = SpanList.none.rawValue
    }

    func gcHead(swept: Bool, full: Bool, sweepgen sg: UInt32) -> UnsafeMutablePointer<MSpan>? {
        setHead(setIndex(swept: swept, full: full, sweepgen: sg)).pointee
    }

    /// GC mode: a swept span with a free slot for an mcache. Lock taken here.
    func cacheSpanGC(owner: UInt, heap: UnsafeMutablePointer<MHeapState>, collector: Collector) -> UnsafeMutablePointer<MSpan>? {
        pointee.lock.lock()
        let sg = heap.sweepgenAtomic.pointee.load(ordering: .acquiring)
        var found: UnsafeMutablePointer<MSpan>? = nil
        if let span = gcHead(swept: true, full: false, sweepgen: sg) {
            gcRemove(span)
            found = span
        } else {
            // Sweep unswept spans of this class until one has room (bounded, as Go's
            // spanBudget of 100).
            var budget = 100
            while found == nil && budget > 0 {
                guard let span = gcHead(swept: false, full: false, sweepgen: sg) ?? gcHead(swept: false, full: true, sweepgen: sg) else { break }
                budget -= 1
                gcRemove(span)
                guard collector.claimForSweep(span, sweepgen: sg) else { continue }
                if !collector.sweepSmall(span, sweepgen: sg) {
                    heap.pointee.lock.withLock { heap.freeSpanLocked(span) }
                } else if span.pointee.allocCount < span.pointee.nelems {
                    found = span
                } else {
                    gcPush(span, swept: true, full: true, sweepgen: sg)
                }
            }
        }
        pointee.lock.unlock()
        if found == nil {
            heap.pointee.lock.lock()
            let result = heap.allocSpanLocked(npages: Int(SizeClassLookup.shared.pages[Int(pointee.spanClass >> 1)]), spanClass: pointee.spanClass)
            heap.pointee.lock.unlock()
            switch result {
            case .success(let s): found = s
            case .failure(let e): heap.pointee.fault.allocationFailed(e); return nil
            }
        }
        found!.ownerAtomic.pointee.store(owner, ordering: .releasing)
        return found
    }

    /// GC mode: an mcache gives a span back (full, or at mark termination).
    func uncacheSpanGC(_ span: UnsafeMutablePointer<MSpan>, heap: UnsafeMutablePointer<MHeapState>) {
        pointee.lock.lock()
        span.ownerAtomic.pointee.store(0, ordering: .releasing)
        gcPush(span, swept: true, full: span.pointee.allocCount >= span.pointee.nelems, sweepgen: heap.sweepgenAtomic.pointee.load(ordering: .acquiring))
        pointee.lock.unlock()
    }

    /// Pops one unswept span (for the sweeper), or nil.
    func popUnswept(sweepgen sg: UInt32) -> UnsafeMutablePointer<MSpan>? {
        pointee.lock.lock()
        defer { pointee.lock.unlock() }
        guard let span = gcHead(swept: false, full: false, sweepgen: sg) ?? gcHead(swept: false, full: true, sweepgen: sg) else { return nil }
        gcRemove(span)
        return span
    }
}

extension ThreadCache {
    /// GC mode refill: the full span goes back to its mcentral, a swept one with room comes.
    func refillGC(spanClass: Int) -> UnsafeMutablePointer<MSpan>? {
        let heap = c.pointee.heap
        let collector = heap.pointee.collector!.takeUnretainedValue()
        let central = heap.pointee.centrals + spanClass
        collector.paySweepDebt()
        let current = c.pointee.alloc[spanClass]
        if current != heap.pointee.emptySpan {
            uncacheGC(current, spanClass: spanClass, collector: collector)
        }
        guard let span = central.cacheSpanGC(owner: UInt(bitPattern: c), heap: heap, collector: collector) else { return nil }
        span.pointee.list = SpanList.current.rawValue
        c.pointee.alloc[spanClass] = span
        let freeSlots = Int(span.pointee.nelems &- span.pointee.allocCount)
        c.pointee.stats.smallAllocCount[spanClass >> 1] += freeSlots
        let bytes = freeSlots * Int(span.pointee.elemSize)
        if c.pointee.allocMark == MCache.allocMarkAtomic { c.pointee.gcAllocatedBytes = c.pointee.gcAllocatedBytes + bytes }
        let live = collector.heapLive.add(bytes, ordering: .relaxed).newValue
        if live >= collector.triggerBytes.load(ordering: .relaxed) { collector.noteTrigger() }
        return span
    }

    /// Gives a span back, uncounting the slots never handed out (Go's mcache.releaseAll).
    func uncacheGC(_ span: UnsafeMutablePointer<MSpan>, spanClass: Int, collector: Collector) {
        let unallocated = span.unallocatedSlots()
        let bytes = unallocated * Int(span.pointee.elemSize)
        c.pointee.stats.smallAllocCount[spanClass >> 1] -= unallocated
        collector.heapLive.subtract(bytes, ordering: .relaxed)
        if c.pointee.allocMark == MCache.allocMarkAtomic { c.pointee.gcAllocatedBytes = c.pointee.gcAllocatedBytes - bytes }
        c.pointee.alloc[spanClass] = c.pointee.heap.pointee.emptySpan
        span.pointee.list = SpanList.none.rawValue
        (c.pointee.heap.pointee.centrals + spanClass).uncacheSpanGC(span, heap: c.pointee.heap)
    }

    /// GC mode flush (mark termination, thread exit): every span back, tiny block dropped.
    func flushGC() {
        let heap = c.pointee.heap
        guard let collector = heap.pointee.collector?.takeUnretainedValue() else { return }
        c.pointee.tiny = 0
        c.pointee.tinyOffset = 0
        for spanClass in 0..<AllocatorConstants.numSpanClasses where c.pointee.alloc[spanClass] != heap.pointee.emptySpan {
            uncacheGC(c.pointee.alloc[spanClass], spanClass: spanClass, collector: collector)
        }
    }
}

extension Collector {
    var sweepgen: UInt32 { heap.state.sweepgenAtomic.pointee.load(ordering: .acquiring) }

    /// Wins the right to sweep `span` this cycle (Go: CAS sweepgen h-2 -> h-1).
    func claimForSweep(_ span: UnsafeMutablePointer<MSpan>, sweepgen sg: UInt32) -> Bool {
        let word = span.sweepgenAtomic
        return word.pointee.compareExchange(expected: sg &- 2, desired: sg &- 1, ordering: .acquiringAndReleasing).exchanged
    }

    /// Sweeps a claimed small span. Returns false if it holds no live object (the caller
    /// frees it).
    func sweepSmall(_ span: UnsafeMutablePointer<MSpan>, sweepgen sg: UInt32) -> Bool {
        pagesSwept.add(Int(span.pointee.npages), ordering: .relaxed)
        let words = span.pointee.bitmapWords
        let nelems = Int(span.pointee.nelems)
        var live = 0
        for w in 0..<words {
            var bits = span.pointee.gcmarkBits[w]
            if w == words - 1 && nelems & 63 != 0 { bits &= (UInt64(1) << UInt64(nelems & 63)) - 1 }
            live += bits.nonzeroBitCount
        }
        if configuration.verify {
            // Poison what dies, so that a later use of a freed object shows.
            for index in 0..<nelems {
                if !span.isFree(index) && !span.isMarked(index) {
                    memset(UnsafeMutableRawPointer(bitPattern: span.pointee.startAddr + UInt(index * Int(span.pointee.elemSize)))!,
                           0xde, Int(span.pointee.elemSize))
                }
            }
        }
        let freedObjects = Int(span.pointee.allocCount) - live
        if freedObjects > 0 { sweptFrees.add(freedObjects, ordering: .relaxed) }
        // allocBits := gcmarkBits (slots past nelems read as taken), word by word as atomics:
        // under verify, replay threads read allocBits (isAllocatedBit) while this runs.
        let allocWords = UnsafeMutableRawPointer(span.pointee.allocBits).assumingMemoryBound(to: Atomic<UInt64>.self)
        for w in 0..<words {
            var bits = span.pointee.gcmarkBits[w]
            if w == words - 1 && nelems & 63 != 0 { bits |= ~UInt64(0) << UInt64(nelems & 63) }
            allocWords[w].store(bits, ordering: .relaxed)
        }
        span.pointee.gcmarkBits.update(repeating: 0, count: words)
        span.pointee.allocCount = UInt32(live)
        span.freeindexAtomic.pointee.store(0, ordering: .relaxed)
        span.refillAllocCache(0)
        span.pointee.needzero = 1
        span.sweepgenAtomic.pointee.store(sg, ordering: .releasing)
        return live > 0
    }

    /// Sweeps every unswept span of every class and every large span (sweep termination, or
    /// the background sweeper draining).
    func finishSweep() {
        if !sweepDone {
            let sg = sweepgen
            while sweepOne() {}
            sweepLarge()
            sweptGeneration.store(sg, ordering: .releasing)
        }
        // A span the background sweeper (or a refill paying its sweep debt) took before we
        // emptied the lists may still be being swept: marking must not start until it is done
        // (Go waits for mheap_.sweepers). After a few yields, sleep: this thread's raised
        // priority could otherwise keep that sweeper off its CPU.
        var spins = 0
        while sweepersActive.load(ordering: .acquiring) != 0 {
            spins += 1
            if spins < 16 { sched_yield() } else { usleep(20) }
        }
    }

    /// Go's gcPaceSweeper, at the start of a sweep (every span unswept, the heap at
    /// `heapLiveBasis`): the pages in use are to be swept by the time the heap reaches the
    /// next trigger, less Go's 1 MiB margin (sweepMinHeapDistance), so that sweep termination
    /// finds little left. Allocation pays its share as it refills (ThreadCache.refillGC).
    /// (The class cursor and pagesSwept were reset with the sweepgen flip.)
    func paceSweeper(heapLiveBasis: Int) {
        sweepHeapLiveBasis.store(heapLiveBasis, ordering: .relaxed)
        let pagesInUse = heap.state.pointee.lock.withLock { heap.state.pointee.inUsePages }
        let distance = max(triggerBytes.load(ordering: .relaxed) - heapLiveBasis - (1 << 20), AllocatorConstants.pageSize)
        sweepPagesPerByteBits.store((Double(pagesInUse) / Double(distance)).bitPattern, ordering: .releasing)
    }

    /// Go's deductSweepCredit: before a refill, sweeps until the pages swept this cycle keep
    /// pace with the bytes allocated since the sweep began.
    @inline(__always)
    func paySweepDebt() {
        let perByte = Double(bitPattern: sweepPagesPerByteBits.load(ordering: .relaxed))
        if perByte == 0 || sweepDone { return }
        let target = Int(Double(heapLive.load(ordering: .relaxed) - sweepHeapLiveBasis.load(ordering: .relaxed)) * perByte)
        while pagesSwept.load(ordering: .relaxed) < target {
            if !sweepOne() {
                sweepPagesPerByteBits.store(0, ordering: .relaxed)
                return
            }
        }
    }

    /// Sweeps one unswept small span. False when there are none left.
    func sweepOne() -> Bool {
        sweepersActive.add(1, ordering: .acquiringAndReleasing)
        defer { sweepersActive.subtract(1, ordering: .acquiringAndReleasing) }
        let heap = self.heap.state
        let sg = sweepgen
        // No unswept span appears during a sweep (the flip made them all at once), so the
        // classes found empty stay empty: start past them.
        var spc = sweepClassCursor.load(ordering: .relaxed)
        while spc < AllocatorConstants.numSpanClasses {
            let central = heap.pointee.centrals + spc
            guard let span = central.popUnswept(sweepgen: sg) else {
                spc += 1
                sweepClassCursor.store(spc, ordering: .relaxed)
                continue
            }
            if !claimForSweep(span, sweepgen: sg) {
                central.pointee.lock.withLock { central.gcPush(span, swept: true, full: span.pointee.allocCount >= span.pointee.nelems, sweepgen: sg) }
                return true
            }
            let keep = sweepSmall(span, sweepgen: sg)
            if keep {
                central.pointee.lock.withLock {
                    central.gcPush(span, swept: true, full: span.pointee.allocCount >= span.pointee.nelems, sweepgen: sg)
                }
            } else {
                heap.pointee.lock.withLock { heap.freeSpanLocked(span) }
            }
            return true
        }
        return false
    }

    /// Sweeps large spans: unmarked ones are freed.
    func sweepLarge() {
        sweepersActive.add(1, ordering: .acquiringAndReleasing)
        defer { sweepersActive.subtract(1, ordering: .acquiringAndReleasing) }
        let heap = self.heap.state
        let sg = sweepgen
        heap.pointee.lock.lock()
        let mappedPages = heap.pointee.mappedBytes >> AllocatorConstants.pageShift
        var page = 0
        var dead: [UnsafeMutablePointer<MSpan>] = []
        while page < mappedPages {
            guard let span = heap.pointee.pageMap[page] else { page += 1; continue }
            page += Int(span.pointee.npages)
            guard span.pointee.divMul == 0, claimForSweep(span, sweepgen: sg) else { continue }
            if span.pointee.gcmarkBits[0] & 1 == 0 {
                if configuration.verify {
                    memset(UnsafeMutableRawPointer(bitPattern: span.pointee.startAddr)!, 0xde, Int(span.pointee.npages) << AllocatorConstants.pageShift)
                }
                dead.append(span)
            } else {
                span.pointee.gcmarkBits[0] = 0
                span.sweepgenAtomic.pointee.store(sg, ordering: .releasing)
            }
        }
        for span in dead {
            heap.pointee.largeFrees = heap.pointee.largeFrees + 1
            heap.pointee.largeLiveBytes = heap.pointee.largeLiveBytes - Int(span.pointee.npages) << AllocatorConstants.pageShift
            sweptFrees.add(1, ordering: .relaxed)
            heap.freeSpanLocked(span)
        }
        heap.pointee.lock.unlock()
    }

    /// The background sweeper (Go's bgsweep): sweeps while there is sweeping to do.
    func sweeperLoop() {
        while !shuttingDown.load(ordering: .acquiring) {
            if sweepDone || phase != .off {
                wake.wait(timeoutNanoseconds: 1_000_000)
                continue
            }
            let sg = sweepgen
            var n = 0
            while n < 16 && phase == .off && sweepOne() { n += 1 }
            if n < 16 && phase == .off {
                sweepLarge()
                if !sweepOne() { sweptGeneration.store(sg, ordering: .releasing) }
            }
            sched_yield()
        }
    }
}

extension UnsafeMutablePointer where Pointee == MSpan {
    /// Go's isFree: slot `index` holds no object (the allocation cursor has not passed it and
    /// its allocBits bit is clear). Markers and verify ask from other threads than the owner.
    @inline(__always)
    func isFree(_ index: Int) -> Bool {
        index >= Int(freeindexAtomic.pointee.load(ordering: .relaxed)) && !isAllocatedBit(index)
    }

    /// Whether slot `index` is set in allocBits. Atomic: under verify, replay threads ask
    /// (Collector.isAllocated) while a sweeper rewrites the span's allocBits.
    @inline(__always)
    func isAllocatedBit(_ index: Int) -> Bool {
        UnsafeMutableRawPointer(pointee.allocBits + (index >> 6)).assumingMemoryBound(to: Atomic<UInt64>.self)
            .pointee.load(ordering: .relaxed) & (UInt64(1) << UInt64(index & 63)) != 0
    }
}
