// Marking: greying objects, scanning them, the background mark workers, and the cycle's
// two stop-the-world phases (Go's mgcmark.go, mgc.go gcStart/gcMarkDone/gcMarkTermination).
//
// Colours: white = mark bit clear; grey = mark bit set and the object on some GCWork or in
// the pool; black = mark bit set and scanned (or noscan, or allocated during mark).
// Invariant during mark (with the barrier): no black object points to a white object that is
// not also reachable from a grey object or an unscanned root set.

#if canImport(Glibc)
import Glibc
#endif
public import Synchronization

extension Collector {
    /// Greys the object containing `addr` (any interior pointer): sets its mark bit and, if
    /// it has pointers and was white, queues it on `work`.
    @inline(__always)
    func greyObject(_ addr: UInt, _ work: GCWork) {
        guard let span = heap.state.spanOf(addr), span.pointee.state == SpanState.inUse.rawValue else { return }
        let large = span.pointee.divMul == 0
        let index = large ? 0 : Int(span.objectIndex(ofOffset: addr &- span.pointee.startAddr))
        if index >= Int(span.pointee.nelems) { return }
        // A free slot is not an object (Go's isFree): nothing valid points at it.
        if span.isFree(index) { return }
        let bit = UInt64(1) << UInt64(index & 63)
        let word = UnsafeMutableRawPointer(span.pointee.gcmarkBits + (index >> 6)).assumingMemoryBound(to: Atomic<UInt64>.self)
        if word.pointee.load(ordering: .relaxed) & bit != 0 { return }
        if word.pointee.bitwiseOr(bit, ordering: .relaxed).oldValue & bit != 0 { return }
        let size = large ? Int(span.pointee.npages) << AllocatorConstants.pageShift : Int(span.pointee.elemSize)
        work.bytesMarked += size
        if !span.pointee.noscan {
            work.push(span.pointee.startAddr &+ UInt(index) &* UInt(large ? 0 : Int(span.pointee.elemSize)))
        }
    }

    /// Scans a grey object: greys everything its pointer slots point to. Returns the bytes
    /// scanned (Go's scan work).
    @inline(__always)
    func scanObject(_ base: UInt, _ work: GCWork) -> Int {
        guard let span = heap.state.spanOf(base) else { return 0 }
        let size = span.pointee.divMul == 0 ? Int(span.pointee.npages) << AllocatorConstants.pageShift : Int(span.pointee.elemSize)
        let heapBase = heap.state.pointee.arenaBase
        let reserved = heap.state.pointee.reservedBytes
        bits.forEachPointerWord(base, sizeWords: size >> 3) { wordAddress in
            // Acquiring pairs with writePointer's releasing store (see there).
            let value = UnsafeRawPointer(bitPattern: wordAddress)!.assumingMemoryBound(to: Atomic<UInt>.self)
                .pointee.load(ordering: .acquiring)
            if value &- heapBase < reserved { greyObject(value, work) }
        }
        return size
    }

    /// Scans grey objects from `work` (and the pool) until `budget` bytes are scanned or no
    /// work is left. Returns the scan work done.
    func drain(_ work: GCWork, budget: Int) -> Int {
        var done = 0
        while done < budget, let object = work.pop() {
            done += scanObject(object, work)
        }
        work.scanWork += done
        scanWorkDone.add(done, ordering: .relaxed)
        return done
    }

    // MARK: Holds dropped on another thread

    /// Posts a drop of a hold that the dropping thread (`poster`) does not have (the hold was
    /// taken on another thread). Only a table's owner changes it while the world runs, so the
    /// drop waits in the orphan log until the holder takes it at a safepoint, or until the
    /// next stop, where the coordinator applies every posted drop. Until then the object stays
    /// a root: the collector may keep it one cycle longer, never frees it early.
    ///
    /// The log is append-only between stops; each mutator has a cursor (`orphanCursors`) and
    /// looks only at entries posted since its last look, zeroing those it applied. (A queue
    /// that every mutator scanned whole at each look was quadratic: on a random-graph replay
    /// with thousands of cross-thread drops per cycle, a third of the mutators' time.)
    @usableFromInline @inline(never)
    func postOrphanDrop(_ object: UInt, slot: Int, from poster: Mutator) {
        orphanLock.lock()
        let index = orphanDrops.count
        orphanDrops.append(OrphanDrop(object: object, slot: slot))
        let generation = orphanGeneration.add(1, ordering: .releasing).newValue
        // The poster does not hold what it posts: if it had seen everything before, it has
        // seen this too, and has nothing to look at at its next poll. (Under this lock a
        // mutator's cursor is at the log's end exactly when it has seen the latest generation.)
        if orphanCursors[poster.orphanSlot] == index {
            orphanCursors[poster.orphanSlot] = index + 1
            poster.hot.pointee.orphanGenerationSeen = generation
        }
        if orphanDrops.count >= orphanCompactAt { compactOrphanLog() }
        orphanLock.unlock()
    }

    /// A mutator at a safepoint takes the posted drops of holds it has, among the entries it
    /// has not looked at yet.
    func takeOrphanDrops(for m: Mutator) {
        orphanLock.lock()
        m.hot.pointee.orphanGenerationSeen = orphanGeneration.load(ordering: .relaxed)
        var i = orphanCursors[m.orphanSlot]
        let count = orphanDrops.count
        while i < count {
            let drop = orphanDrops[i]
            if drop.object != 0 && m.removeRoot(drop.object, slot: drop.slot) { orphanDrops[i].object = 0 }
            i += 1
        }
        orphanCursors[m.orphanSlot] = count
        orphanLock.unlock()
    }

    /// Drops the log's prefix that every mutator has looked at, keeping its entries nobody
    /// applied (their holder had left, or was blocked: the next stop applies them). Under
    /// orphanLock. The next compaction waits until the log has doubled, so a mutator that
    /// never looks (blocked) costs amortised constant time per post.
    func compactOrphanLog() {
        var seenByAll = orphanDrops.count
        for c in orphanCursors where c != Int.max { seenByAll = min(seenByAll, c) }
        var kept = 0
        for i in 0..<seenByAll where orphanDrops[i].object != 0 {
            orphanDrops[kept] = orphanDrops[i]
            kept += 1
        }
        let removed = seenByAll - kept
        if removed > 0 {
            orphanDrops.removeSubrange(kept..<seenByAll)
            for j in orphanCursors.indices where orphanCursors[j] != Int.max { orphanCursors[j] -= removed }
        }
        orphanCompactAt = max(Self.orphanCompactMinimum, 2 * orphanDrops.count)
    }

    static let orphanCompactMinimum = 4096

    /// With the world stopped: applies every posted drop to whichever mutator holds the object
    /// (drops whose holder has left are discarded: its roots went with it).
    func applyOrphanDrops(_ ms: [Mutator]) {
        orphanLock.lock()
        for drop in orphanDrops where drop.object != 0 {
            for m in ms where m.removeRoot(drop.object, slot: drop.slot) { break }
        }
        orphanDrops.removeAll(keepingCapacity: true)
        for j in orphanCursors.indices where orphanCursors[j] != Int.max { orphanCursors[j] = 0 }
        orphanCompactAt = Self.orphanCompactMinimum
        let generation = orphanGeneration.load(ordering: .relaxed)
        for m in ms { m.hot.pointee.orphanGenerationSeen = generation }
        orphanLock.unlock()
    }

    // MARK: The cycle

    func runCycle() {
        let cycle = cycleNumber.load(ordering: .relaxed) + 1
        var record = GCCycleRecord(cycle: cycle)
        record.start = monotonicSeconds() - startTime
        let cpuStart = processCPUSeconds()
        record.heapAtStart = heapLive.load(ordering: .relaxed)
        record.goal = pacer.goal
        triggeredAt = heapLive.load(ordering: .relaxed)

        // 1. Sweep termination: finish the previous cycle's sweeping.
        finishSweep()

        // 2. Mark setup, world stopped.
        let stw1Start = monotonicSeconds()
        let stw1CPU = threadCPUSeconds()
        record.stw1Stopping = stopTheWorld()
        scanWorkDone.store(0, ordering: .relaxed)
        bgScanCredit.store(0, ordering: .relaxed)
        mutatorLock.lock()
        let ms = mutators
        mutatorLock.unlock()
        let coordinatorWork = GCWork(pool: pool)
        applyOrphanDrops(ms)
        var stackBytes = 0
        for m in ms {
            let c = m.cache.c
            c.pointee.allocMark = MCache.allocMarkAtomic
            // Slots of the currently cached spans will be allocated black.
            c.pointee.gcAllocatedBytes = 0
            for spc in 0..<AllocatorConstants.numSpanClasses where c.pointee.alloc[spc] != heap.state.pointee.emptySpan {
                let span = c.pointee.alloc[spc]
                c.pointee.gcAllocatedBytes += span.unallocatedSlots() * Int(span.pointee.elemSize)
            }
            // The current tiny block may receive new objects: grey it (Go's gcMarkTinyAllocs).
            if c.pointee.tiny != 0 { greyObject(c.pointee.tiny, coordinatorWork) }
            m.hot.pointee.stackGrey = true
            m.hot.pointee.assistBalance = 0
            m.scanRequested.store(true, ordering: .releasing)
            stackBytes += m.rootCount * 8
        }
        pacer.stackScan = stackBytes
        assistWorkPerByteBits.store(pacer.assistWorkPerByte(heapLive: heapLive.load(ordering: .relaxed),
                                                            scanWorkDone: 0, heapScanNow: heapLive.load(ordering: .relaxed),
                                                            triggeredAt: triggeredAt).bitPattern,
                                    ordering: .relaxed)
        phaseWord.store(GCPhase.mark.rawValue, ordering: .sequentiallyConsistent)
        if !configuration.disableWriteBarrierForTesting {
            writeBarrier.store(1, ordering: .sequentiallyConsistent)
        }
        coordinatorWork.flush()
        orphanBytesMarked += coordinatorWork.bytesMarked
        coordinatorWork.bytesMarked = 0
        if configuration.stopTheWorld {
            // gcstoptheworld=1: mark everything with the world stopped.
            for m in ms { m.scanRoots() }
            _ = drain(coordinatorWork, budget: Int.max)
            let markEnd = monotonicSeconds()
            record.stw1 = markEnd - stw1Start
            record.concurrent = 0
            configuration.onEvent?(GCEvent(kind: .markSetup, cycle: cycle, start: stw1Start, end: markEnd))
            markTermination(record: &record, cpuStart: cpuStart, stw1CPU: threadCPUSeconds() - stw1CPU, stopped: true)
            return
        }
        let stw1End = startTheWorld()
        record.stw1 = stw1End - stw1Start
        configuration.onEvent?(GCEvent(kind: .markSetup, cycle: cycle, start: stw1Start, end: stw1End))
        let stw1CPUTime = threadCPUSeconds() - stw1CPU
        let markStart = monotonicSeconds()
        markStartBits.store(markStart.bitPattern, ordering: .releasing)
        for w in workers { w.wake.broadcast() }

        // 3. Concurrent mark, until no work is left anywhere.
        var attempts = 0
        while !shuttingDown.load(ordering: .acquiring) {
            if markLooksDone(ms) && raggedFlush(ms) {
                attempts += 1
                record.concurrent = monotonicSeconds() - markStart
                // 4. Mark termination, world stopped.
                if markTermination(record: &record, cpuStart: cpuStart, stw1CPU: stw1CPUTime, stopped: false, attempt: attempts) {
                    configuration.onEvent?(GCEvent(kind: .concurrentMark, cycle: cycle, start: markStart,
                                                   end: markStart + record.concurrent))
                    return
                }
                continue
            }
            serviceBlockedMutators(ms)
            // Refresh the assist ratio as the cycle progresses (Go's revise).
            let ratio = pacer.assistWorkPerByte(heapLive: heapLive.load(ordering: .relaxed),
                                                scanWorkDone: scanWorkDone.load(ordering: .relaxed),
                                                heapScanNow: heapLive.load(ordering: .relaxed), triggeredAt: triggeredAt)
            assistWorkPerByteBits.store(ratio.bitPattern, ordering: .relaxed)
            let ticket = markDoneWake.ticket()
            if markLooksDone(ms) { continue }
            markDoneWake.wait(timeoutNanoseconds: 100_000, ticket: ticket)
        }
    }

    /// Go's gcMarkDone ragged barrier: without stopping the world, has every mutator flush
    /// its grey buffer at its next safepoint, then says whether marking still looks done. Only
    /// then is the world stopped for termination, so the pause rarely finds work to restart
    /// for (before, nearly every termination did: the barrier greys what mutators touch).
    private func raggedFlush(_ ms: [Mutator]) -> Bool {
        for m in ms { m.scanRequested.store(true, ordering: .releasing) }
        func pending() -> Bool {
            ms.contains(where: { $0.scanRequested.load(ordering: .acquiring) && !$0.retired.load(ordering: .acquiring) })
        }
        var spins = 0
        while pending() {
            if shuttingDown.load(ordering: .acquiring) { return false }
            serviceBlockedMutators(ms)
            spins += 1
            if spins < 64 { continue }
            // Then sleep until a mutator answers (it signals markDoneWake). Yielding instead
            // kept this thread, at its raised priority, on the CPU of the very mutator it
            // waited for: flushes of 1,000 yields and more, marks of several milliseconds
            // while the heap grew past its goal.
            let ticket = markDoneWake.ticket()
            if !pending() { break }
            markDoneWake.wait(timeoutNanoseconds: 50_000, ticket: ticket)
        }
        if markLooksDone(ms) { return true }
        for w in workers { w.wake.broadcast() }
        return false
    }

    /// Answers the scan or flush request of each blocked mutator (Mutator.enterBlocked) on its
    /// behalf, as Go scans the stack of a goroutine that is not running: takes the mutator
    /// (blocked -> scanning), so that it cannot leave meanwhile, and gives it back.
    func serviceBlockedMutators(_ ms: [Mutator]) {
        for m in ms where m.scanRequested.load(ordering: .acquiring) && m.region.load(ordering: .acquiring) == Mutator.blocked {
            guard m.region.compareExchange(expected: Mutator.blocked, desired: Mutator.scanning,
                                           ordering: .acquiringAndReleasing).exchanged else { continue }
            if m.scanRequested.load(ordering: .acquiring) { m.serviceScanRequest() }
            m.region.store(Mutator.blocked, ordering: .sequentiallyConsistent)
        }
    }

    /// Every root set scanned, the pool empty, every worker idle.
    private func markLooksDone(_ ms: [Mutator]) -> Bool {
        for m in ms where m.scanRequested.load(ordering: .acquiring) && !m.retired.load(ordering: .acquiring) { return false }
        if !pool.isEmpty { return false }
        for w in workers where w.busy.load(ordering: .acquiring) { return false }
        return pool.isEmpty
    }

    /// Mark termination with the world stopped. Returns false (world restarted, marking
    /// continues) if flushing the mutators' buffers turned up more than a little work.
    @discardableResult
    func markTermination(record: inout GCCycleRecord, cpuStart: Double, stw1CPU: Double, stopped: Bool, attempt: Int = 1) -> Bool {
        let start = monotonicSeconds()
        let cpu = threadCPUSeconds()
        if !stopped { record.stw2Stopping += stopTheWorld() }
        mutatorLock.lock()
        let ms = mutators
        mutatorLock.unlock()
        let termWork = GCWork(pool: pool)
        // Exact roots for verify and snapshots (the drops were shaded when they were made).
        applyOrphanDrops(ms)
        for m in ms {
            if m.scanRequested.load(ordering: .acquiring) { m.serviceScanRequest() }
            m.flushWork()
        }
        // Go restarts the world when mark termination finds work (gcMarkDone); after a few
        // tries, it finishes with the world stopped.
        if !pool.isEmpty && attempt < 4 && !configuration.stopTheWorld {
            let end = startTheWorld()
            record.stw2 += end - start
            configuration.onEvent?(GCEvent(kind: .markTermination, cycle: record.cycle, start: start, end: end))
            for w in workers { w.wake.broadcast() }
            return false
        }
        phaseWord.store(GCPhase.markTermination.rawValue, ordering: .sequentiallyConsistent)
        _ = drain(termWork, budget: Int.max)

        if configuration.verify { verifyMark(ms) }
        configuration.onMarkComplete?(self, cycleNumber.load(ordering: .relaxed) + 1)

        writeBarrier.store(0, ordering: .sequentiallyConsistent)
        phaseWord.store(GCPhase.off.rawValue, ordering: .sequentiallyConsistent)
        // Bytes marked: what the markers marked, plus what mutators allocated black.
        var marked = termWork.bytesMarked
        termWork.bytesMarked = 0
        for w in workers { marked += w.work.bytesMarked; w.work.bytesMarked = 0 }
        var assistNs = 0, assists = 0
        for m in ms {
            marked += m.work.bytesMarked
            m.work.bytesMarked = 0
            let c = m.cache.c
            // Flush the mcache: every span back to its mcentral (swept lists of this cycle).
            m.cache.flushGC()
            marked += c.pointee.gcAllocatedBytes
            c.pointee.gcAllocatedBytes = 0
            c.pointee.allocMark = MCache.allocMarkNone
            assistNs += m.hot.pointee.assistNanos
            assists += m.hot.pointee.assists
            m.hot.pointee.assistNanos = 0
            m.hot.pointee.assists = 0
            m.hot.pointee.stackGrey = false
        }
        marked += orphanBytesMarked
        orphanBytesMarked = 0
        // Every span is now unswept (Go: sweepgen += 2 flips the swept/unswept sets).
        // The sweep's class cursor goes back to the first class before any sweeper can see
        // the new sweepgen (a sweeper with last cycle's cursor would find nothing to sweep
        // and declare the sweep done).
        sweepClassCursor.store(0, ordering: .sequentiallyConsistent)
        sweepPagesPerByteBits.store(0, ordering: .relaxed)
        pagesSwept.store(0, ordering: .relaxed)
        heap.state.pointee.lock.lock()
        let sweepgen = heap.state.sweepgenAtomic
        sweepgen.pointee.store(sweepgen.pointee.load(ordering: .relaxed) &+ 2, ordering: .releasing)
        heap.state.pointee.lock.unlock()

        let heapLiveEnd = heapLive.load(ordering: .relaxed)
        let scanWork = scanWorkDone.load(ordering: .relaxed)
        let markTime = max(record.concurrent, 1e-9)
        // Go 1.19's endCycle: u = the background goal plus the assists' share of the CPU
        // during mark, u_idle = the idle workers' share.
        let cpuDuringMark = max(markTime, 1e-9) * Double(max(procCount, 1))
        let assistUtil = Double(assistNs) * 1e-9 / cpuDuringMark
        let idleUtil = idleWorkerCPUSeconds() / cpuDuringMark
        pacer.endCycle(heapLiveAtEnd: heapLiveEnd, triggeredAt: triggeredAt, scanWork: scanWork,
                       utilization: min(Pacer.backgroundUtilization + assistUtil, 0.95), idleUtilization: idleUtil,
                       bytesMarked: marked, heapScan: scanWork, stackScan: pacer.stackScan,
                       overhead: heap.overheadBytes())
        heapLive.store(marked, ordering: .relaxed)
        triggerBytes.store(pacer.trigger, ordering: .relaxed)
        paceSweeper(heapLiveBasis: marked)

        record.heapAtMarkEnd = heapLiveEnd
        record.heapMarked = marked
        record.nextGoal = pacer.goal
        record.procs = procCount
        record.assistSeconds = Double(assistNs) * 1e-9
        record.assists = assists
        record.backgroundCPUSeconds = workerCPUSeconds()
        record.idleCPUSeconds = idleWorkerCPUSeconds()
        resetWorkerCPU()
        record.stw1CPU = stw1CPU
        cycleNumber.add(1, ordering: .releasing)
        let end = startTheWorld()
        record.stw2 += end - start
        configuration.onEvent?(GCEvent(kind: .markTermination, cycle: record.cycle, start: start, end: end))
        record.stw2CPU = threadCPUSeconds() - cpu
        // Go: GC CPU as a share of the CPU available since start (wall time × P).
        record.cpuTotalSinceStart = (monotonicSeconds() - startTime) * Double(procCount)
        record.gcCPUSinceStart = accumulatedGCCPU(adding: record)
        statsLock.withLock { records.append(record) }
        configuration.onCycle?(record)
        return true
    }
}

/// A background mark worker (Go's gcBgMarkWorker): dedicated (utilisation 1), fractional
/// or idle-only (utilisation 0).
///
/// The fractional worker keeps, as Go's does, the CPU time it has marked this cycle at
/// `utilization` × the time since the mark began: it marks while it is under that share and
/// ends a slice once it is 20% over (Go's pollFractionalWorkerExit). It counts CPU time, not
/// wall time, so that time the OS took its CPU away is not held against it (a worker that
/// slept for the wall time of its last slice sat out up to 10 ms of a mark while grey work
/// waited in the pool).
///
/// A worker with an idle rank marks flat out as an idle worker (Go's gcMarkWorkerIdleMode)
/// while more than `idleRank` CPUs are idle (Collector.idleProcs); its time then counts as
/// idle marking, as Go's idleMarkTime does.
final class MarkWorker: @unchecked Sendable {
    unowned(unsafe) let collector: Collector
    let utilization: Double
    /// nil: a dedicated worker. Else this worker marks as an idle worker while
    /// Collector.idleProcs() > idleRank.
    let idleRank: Int?
    let work: GCWork
    let wake = Condition()
    let busy = Atomic<Bool>(false)
    /// CPU time marking as a dedicated or fractional worker, and as an idle worker.
    let cpuNanos = Atomic<Int>(0)
    let idleCPUNanos = Atomic<Int>(0)
    static let sliceSeconds = 0.001

    init(collector: Collector, utilization: Double, idleRank: Int?) {
        self.collector = collector
        self.utilization = min(utilization, 1.0)
        self.idleRank = idleRank
        work = GCWork(pool: collector.pool)
    }

    /// Whether this worker may mark now, and as an idle worker.
    private func mode() -> (mark: Bool, idle: Bool) {
        if let idleRank, collector.idleProcs() > idleRank { return (true, true) }
        return (utilization > 0, false)
    }

    /// Fractional mode: the cycle the counts are for, and the CPU seconds marked in it.
    private var fractionalCycle = -1
    private var fractionalCPU = 0.0

    /// Fractional mode: seconds to wait before marking again (0: mark now).
    private func fractionalWait() -> Double {
        let cycle = collector.cycleNumber.load(ordering: .relaxed)
        if cycle != fractionalCycle { fractionalCycle = cycle; fractionalCPU = 0 }
        let elapsed = monotonicSeconds() - collector.markStartSeconds
        return fractionalCPU / utilization - elapsed
    }

    func run() {
        while !collector.shuttingDown.load(ordering: .acquiring) {
            let (mayMark, idle) = mode()
            let fractional = mayMark && !idle && utilization < 1
            if !mayMark
                || collector.phaseWord.load(ordering: .acquiring) != GCPhase.mark.rawValue
                || collector.worldStopped.load(ordering: .acquiring)
                || (collector.pool.isEmpty && work.count == 0) {
                wake.wait(timeoutNanoseconds: 200_000)
                continue
            }
            if fractional {
                let wait = fractionalWait()
                if wait > 0 {
                    wake.wait(timeoutNanoseconds: Int(min(wait, 0.001) * 1e9))
                    continue
                }
            }
            busy.store(true, ordering: .sequentiallyConsistent)
            if collector.worldStopped.load(ordering: .sequentiallyConsistent) {
                busy.store(false, ordering: .sequentiallyConsistent)
                continue
            }
            let start = monotonicSeconds()
            let cpu0 = threadCPUSeconds()
            var scanned = 0
            while monotonicSeconds() - start < Self.sliceSeconds {
                if collector.worldStopped.load(ordering: .relaxed) { break }
                let done = collector.drain(work, budget: 16 << 10)
                if done == 0 { break }
                scanned += done
                if fractional {
                    let elapsed = monotonicSeconds() - collector.markStartSeconds
                    if fractionalCPU + threadCPUSeconds() - cpu0 > 1.2 * utilization * elapsed { break }
                }
            }
            collector.bgScanCredit.add(scanned, ordering: .relaxed)
            if let onEvent = collector.configuration.onEvent {
                onEvent(GCEvent(kind: .markWorker, cycle: collector.cycleNumber.load(ordering: .relaxed) + 1,
                                start: start, end: monotonicSeconds()))
            }
            // Leave nothing in the local buffer between slices, so that termination and the
            // stop-the-world drain see all remaining work in the pool.
            work.flush()
            busy.store(false, ordering: .sequentiallyConsistent)
            let cpuSeconds = threadCPUSeconds() - cpu0
            let cpu = Int(cpuSeconds * 1e9)
            if idle { idleCPUNanos.add(cpu, ordering: .relaxed) } else { cpuNanos.add(cpu, ordering: .relaxed) }
            if fractional { fractionalCPU += cpuSeconds }
            collector.markDoneWake.broadcast()
        }
    }
}

func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
