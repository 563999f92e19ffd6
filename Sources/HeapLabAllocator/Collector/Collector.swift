// The collector: concurrent tri-colour mark-and-sweep over a GC-mode Heap, after Go's
// (runtime/mgc.go). See docs/collector.md for the whole design; this file owns the cycle.
//
// A cycle, as mgc.go numbers it:
//
//   1. Sweep termination: finish sweeping the previous cycle's spans (concurrently).
//   2. Mark setup, world stopped (STW 1):
//        a. phase = mark, write barrier on, every mcache allocates black (atomically);
//        b. every mutator's roots ("stack") become grey: each will scan its own roots at its
//           next safepoint, then it is black for the rest of the cycle;
//        c. assist ratio computed; world restarted.
//   3. Concurrent mark: background workers (Go's dedicated + fractional, 25% of the CPUs,
//      plus idle workers on CPUs no mutator is using) drain grey objects; mutators scan
//      their roots, shade through the write barrier and pay assist debt when they allocate.
//      Done when every root set is scanned, the pool is empty and no worker holds work.
//   4. Mark termination, world stopped (STW 2): flush every mutator's grey buffer and drain
//      what is left (if much is left, restart the world and go back to 3), verify (optional),
//      write barrier off, flush every mcache (spans back to their mcentral), sweepgen += 2,
//      pacer: new goal and trigger. World restarted.
//   5. Sweep: a background sweeper and allocating mutators (lazily, in mcentral) sweep every
//      span: allocBits := gcmarkBits, fresh gcmarkBits; empty spans go back to the heap.
//
// `phase` is written only by the coordinator thread, with the world stopped:
//     off  -> mark            (STW 1)
//     mark -> markTermination (STW 2 begins)
//     markTermination -> off  (STW 2 ends)
// The write barrier flag follows phase (on exactly while mark or markTermination), except
// under `disableWriteBarrierForTesting`.
//
// Stop-the-world is a real safepoint protocol: the coordinator raises each mutator's stop
// flag; mutators poll it at every operation (one relaxed load), park, and count themselves
// stopped; the coordinator proceeds when all have. Pauses are measured from the request to
// the restart.

#if canImport(Glibc)
import Glibc
#endif
public import Synchronization

/// How the collector runs.
public struct GCConfiguration: Sendable {
    /// GOGC: heap growth (percent) between cycles; nil is GOGC=off.
    public var gogc: Int? = 100
    /// Soft memory limit in bytes (GOMEMLIMIT semantics); nil: none.
    public var memoryLimit: Int? = nil
    /// Every cycle stops the world for its whole mark (gcstoptheworld=1), as a baseline.
    public var stopTheWorld = false
    /// After each mark, re-mark from the roots with the world stopped and fail loudly on any
    /// reachable object the concurrent mark missed; poison swept memory.
    public var verify = false
    /// Test-only: no write barrier (so that a test can show `verify` catching the bug).
    public var disableWriteBarrierForTesting = false
    /// Logical processors (Go's GOMAXPROCS) for the worker formula; default: online CPUs.
    public var procs: Int? = nil
    /// Idle marking (Go's gcMarkWorkerIdleMode): a CPU that no running mutator and no
    /// dedicated worker uses marks flat out while there is work. Off: only the 25% of
    /// Go's dedicated and fractional workers mark in the background, as on a machine with
    /// no spare CPU.
    public var idleMarking = true
    /// Called after every cycle (on the coordinator thread).
    public var onCycle: (@Sendable (GCCycleRecord) -> Void)? = nil
    /// Called during mark termination with the world stopped, after marking is complete and
    /// before sweeping starts: mark bits (`Heap.forEachSpan`'s `allocated`, which in GC mode
    /// is gcmarkBits) say exactly which objects survive. For heap snapshots at every cycle.
    public var onMarkComplete: (@Sendable (Collector, Int) -> Void)? = nil
    /// Called for each stop-the-world pause, concurrent mark phase, background mark slice and
    /// assist, on the thread that did it (for pause lists, MMU and timelines); nil: none.
    public var onEvent: (@Sendable (GCEvent) -> Void)? = nil
    /// Overrides Go's minimum heap goal (4 MiB × GOGC/100); with GOGC=0 it makes a fixed-size
    /// heap (collect when the heap reaches it), as in Hertz & Berger's experiments.
    public var heapMinimum: Int? = nil

    public init() {}

    /// Reads GOGC and GOMEMLIMIT from the environment, as Go does ("off", a number; a limit
    /// with an optional B, KiB, MiB, GiB or TiB suffix).
    public static func fromEnvironment(_ env: [String: String]) throws(GCConfigurationError) -> GCConfiguration {
        var c = GCConfiguration()
        if let g = env["GOGC"] { c.gogc = try parseGOGC(g) }
        if let m = env["GOMEMLIMIT"] { c.memoryLimit = try parseMemoryLimit(m) }
        return c
    }

    public static func parseGOGC(_ s: String) throws(GCConfigurationError) -> Int? {
        if s == "off" { return nil }
        guard let v = Int(s), v >= 0 else { throw GCConfigurationError("GOGC must be 'off' or a non-negative integer, not '\(s)'") }
        return v
    }

    public static func parseMemoryLimit(_ s: String) throws(GCConfigurationError) -> Int? {
        if s == "off" { return nil }
        let units: [(String, Int)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        for (suffix, scale) in units where s.hasSuffix(suffix) {
            guard let v = Int(s.dropLast(suffix.count)), v >= 0 else { break }
            return v.multipliedReportingOverflow(by: scale).overflow ? Int.max : v * scale
        }
        if let v = Int(s), v >= 0 { return v }
        throw GCConfigurationError("memory limit must be 'off' or bytes with an optional B, KiB, MiB, GiB or TiB suffix, not '\(s)'")
    }
}

public struct GCConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// A drop posted to the orphan log: the object, and its slot when the poster named one
/// (Mutator.dropSlot), else -1. `object` 0: applied.
struct OrphanDrop {
    var object: UInt
    var slot: Int
}

/// Phases (Go's gcphase).
enum GCPhase: UInt32 {
    case off = 0
    case mark = 1
    case markTermination = 2
}

/// The collector of one GC-mode heap.
public final class Collector: @unchecked Sendable {
    public let heap: Heap
    let configuration: GCConfiguration
    let bits: HeapBits
    let pool = WorkPool()

    // Hot flags, read by mutators on every operation or pointer store.
    @usableFromInline let phaseWord = Atomic<UInt32>(GCPhase.off.rawValue)
    @usableFromInline let writeBarrier = Atomic<UInt32>(0)
    let cycleNumber = Atomic<Int>(0)

    // Pacing figures shared with mutators.
    let heapLive = Atomic<Int>(0)
    let triggerBytes = Atomic<Int>(Int.max)
    let scanWorkDone = Atomic<Int>(0)
    let bgScanCredit = Atomic<Int>(0)
    let assistWorkPerByteBits = Atomic<UInt64>(0)
    /// When the current cycle's concurrent mark began (monotonic seconds, as bits): the
    /// fractional worker's utilisation is measured from here.
    let markStartBits = Atomic<UInt64>(0)
    var markStartSeconds: Double { Double(bitPattern: markStartBits.load(ordering: .acquiring)) }
    var assistWorkPerByte: Double { Double(bitPattern: assistWorkPerByteBits.load(ordering: .relaxed)) }

    // Mutators and stop-the-world.
    let mutatorLock = HeapLock()
    var mutators: [Mutator] = []
    let stoppedCount = Atomic<Int>(0)
    let worldStopped = Atomic<Bool>(false)
    /// Counts stops; a mutator is parked for the current stop when its parkedEpoch equals it.
    let stopEpoch = Atomic<Int>(0)

    // Coordinator, workers, sweeper.
    let startRequested = Atomic<Bool>(false)
    /// Whether a mutator has woken the coordinator for the trigger since it last looked
    /// (noteTrigger): later refills past the trigger then need not wake it again.
    let triggerPosted = Atomic<Bool>(false)
    let shuttingDown = Atomic<Bool>(false)
    let wake = Condition()
    var threads: [pthread_t] = []
    var workers: [MarkWorker] = []
    /// Dedicated workers (Pacer.markWorkers), each a whole CPU.
    var dedicatedWorkers = 0
    /// Registered mutators not blocked (Mutator.enterBlocked): the CPUs mutators use.
    let runningMutators = Atomic<Int>(0)
    let markDoneWake = Condition()

    var pacer: Pacer
    let statsLock = HeapLock()
    var records: [GCCycleRecord] = []
    /// CLOCK_MONOTONIC seconds when the collector started (GCCycleRecord.start counts from it).
    public let startTime: Double

    // Cycle bookkeeping (coordinator only).
    var cycleStart = 0.0
    var triggeredAt = 0
    var failures: [String] = []
    /// Bytes marked by work buffers that no longer exist (unregistered mutators, STW 1).
    var orphanBytesMarked = 0
    /// Drops of holds taken on another thread, waiting for their holder: an append-only log
    /// between stops (Marking.swift).
    let orphanLock = HeapLock()
    var orphanDrops: [OrphanDrop] = []
    /// Per mutator (Mutator.orphanSlot): the next orphan-log entry it has not looked at;
    /// Int.max once it has left. Under orphanLock.
    var orphanCursors: [Int] = []
    /// Log length at which the next post compacts it (compactOrphanLog).
    var orphanCompactAt = 4096
    /// Bumped per posted drop; a mutator looks at the log when it has not seen the latest.
    @usableFromInline let orphanGeneration = Atomic<Int>(0)
    /// The sweepgen whose sweep is complete: sweeping is done while it equals the heap's
    /// sweepgen. A generation rather than a flag, so that a sweeper that found nothing left
    /// and was then descheduled past the next flip cannot declare the new sweep done.
    let sweptGeneration = Atomic<UInt32>(0)
    var sweepDone: Bool { sweptGeneration.load(ordering: .acquiring) == sweepgen }
    /// Proportional sweeping (Go's gcPaceSweeper): pages to sweep per byte allocated since
    /// the sweep began (as bits; 0: none owed), the heap at that point, and the pages swept
    /// since. Refills sweep until pagesSwept reaches their share (ThreadCache.refillGC).
    let sweepPagesPerByteBits = Atomic<UInt64>(0)
    let sweepHeapLiveBasis = Atomic<Int>(0)
    let pagesSwept = Atomic<Int>(0)
    /// Span classes below this have no unswept span left this cycle (sweepOne starts here).
    let sweepClassCursor = Atomic<Int>(0)
    /// Objects freed by sweeping, in total.
    let sweptFrees = Atomic<Int>(0)
    /// Threads in the middle of sweeping a span they took off a list.
    let sweepersActive = Atomic<Int>(0)

    /// GOMAXPROCS: the CPUs the collector paces for (GCConfiguration.procs, else online CPUs).
    let procCount: Int

    /// Creates the collector for `heap`, which must have been made in GC mode
    /// (`HeapConfiguration.gc`), and starts its background threads.
    public init(heap: Heap, configuration: GCConfiguration) throws(HeapError) {
        guard let bits = HeapBits(heapBase: heap.state.pointee.arenaBase, reservedBytes: Int(heap.state.pointee.reservedBytes)) else {
            throw .metadataExhausted
        }
        self.heap = heap
        self.configuration = configuration
        self.bits = bits
        // Once: sysconf reads /sys on every call (about 60 µs, which mark termination paid
        // inside its pause).
        procCount = configuration.procs ?? max(1, Int(sysconfProcessors()))
        pacer = Pacer(gogc: configuration.gogc, memoryLimit: configuration.memoryLimit ?? Int.max,
                      heapMinimum: configuration.heapMinimum)
        startTime = monotonicSeconds()
        triggerBytes.store(pacer.trigger, ordering: .relaxed)
        heap.state.pointee.collector = Unmanaged.passUnretained(self)
        startThreads()
    }

    deinit { shutdown() }

    /// Stops the background threads. Mutators must have been unregistered.
    public func shutdown() {
        if shuttingDown.exchange(true, ordering: .acquiringAndReleasing) { return }
        wake.broadcast()
        markDoneWake.broadcast()
        for w in workers { w.wake.broadcast() }
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    var phase: GCPhase { GCPhase(rawValue: phaseWord.load(ordering: .acquiring))! }

    /// Cycles completed so far, with their figures.
    public var cycles: [GCCycleRecord] { statsLock.withLock { records } }

    /// The heap size the pacer works with (Go's heapLive): bytes of objects allocated (whole
    /// cached spans) since the last mark, plus what that mark found live.
    public var heapLiveBytes: Int { heapLive.load(ordering: .relaxed) }

    /// Problems `verify` found (empty when all cycles verified).
    public var verifyFailures: [String] { statsLock.withLock { failures } }

    // MARK: Mutators

    /// Registers the calling thread as a mutator. Use the handle from this thread only.
    public func registerMutator() -> Mutator {
        let m = Mutator(collector: self, cache: heap.makeThreadCache())
        m.cache.c.pointee.gcMode = true
        // Its cursor starts at the log's end: it holds nothing posted before it came.
        orphanLock.lock()
        m.orphanSlot = orphanCursors.count
        orphanCursors.append(orphanDrops.count)
        m.hot.pointee.orphanGenerationSeen = orphanGeneration.load(ordering: .relaxed)
        orphanLock.unlock()
        // Join only while the world runs. A stop takes its list of mutators when it begins
        // and the phase changes only while the world is stopped, so a thread that joined
        // then would run on unstopped through the pause and keep the allocation colour of
        // the phase it saw (allocating black after the cycle ended: an object marked before
        // the next cycle starts is never scanned, and what it points to is lost).
        lockMutatorsWhileTheWorldRuns(nil)
        // A mutator joining mid-cycle starts black: its (empty) roots need no scan, and it
        // allocates black while marking.
        if phase != .off {
            m.cache.c.pointee.allocMark = MCache.allocMarkAtomic
        } else {
            m.cache.c.pointee.allocMark = MCache.allocMarkNone
        }
        mutators.append(m)
        runningMutators.add(1, ordering: .relaxed)
        mutatorLock.unlock()
        return m
    }

    /// Unregisters a mutator: its roots are dropped (and shaded if marking) and its mcache
    /// released. The thread must not use the handle again.
    public func unregisterMutator(_ m: Mutator) {
        m.leaveBlocked()
        // Leave only while the world runs (a stopped world must not change under the
        // collector): park at the stop, then leave before the next one can begin.
        lockMutatorsWhileTheWorldRuns(m)
        m.dropAllRoots()
        m.flushWork()
        orphanBytesMarked += m.work.bytesMarked
        m.work.bytesMarked = 0
        m.cache.flushGC()
        orphanBytesMarked += m.cache.c.pointee.gcAllocatedBytes
        m.cache.c.pointee.gcAllocatedBytes = 0
        mutators.removeAll { $0 === m }
        orphanLock.lock()
        orphanCursors[m.orphanSlot] = Int.max
        orphanLock.unlock()
        runningMutators.add(-1, ordering: .relaxed)
        m.retired.store(true, ordering: .releasing)
        mutatorLock.unlock()
        heap.releaseThreadCache(m.cache)
        // A stop request may be waiting for this mutator.
        wake.broadcast()
    }

    /// Takes the mutator lock at a moment the world runs (stopTheWorld raises worldStopped
    /// under it). Waits for a stop to end without the lock: a waiter that took and dropped it
    /// in a loop could be preempted holding it, and the coordinator would wait for its next
    /// scheduler slice. `m`, when given, answers safepoints while it waits.
    private func lockMutatorsWhileTheWorldRuns(_ m: Mutator?) {
        while true {
            while worldStopped.load(ordering: .acquiring) {
                m?.poll()
                sched_yield()
            }
            mutatorLock.lock()
            if !worldStopped.load(ordering: .acquiring) { return }
            mutatorLock.unlock()
        }
    }

    /// Asks for a cycle now (runtime.GC without waiting).
    public func requestCycle() {
        startRequested.store(true, ordering: .releasing)
        wake.broadcast()
    }

    /// Runs one full cycle and waits for it (runtime.GC). Call from a registered mutator's
    /// thread passing its handle, so that it keeps answering safepoints while it waits.
    public func collect(from mutator: Mutator?) {
        // The phase before the cycle count: read the other way round, a cycle under way (one
        // that may have shaded what the caller just dropped) could end between the two reads
        // and count as the full cycle the caller asked for. This way a cycle ending between
        // them costs one extra cycle at worst.
        let marking = phase != .off
        let target = cycleNumber.load(ordering: .acquiring) + (marking ? 2 : 1)
        requestCycle()
        while cycleNumber.load(ordering: .acquiring) < target {
            mutator?.poll()
            usleep(50)
        }
    }

    // MARK: Stop the world

    /// Stops every registered mutator at its next safepoint. Returns the seconds it waited.
    @discardableResult
    func stopTheWorld() -> Double {
        let start = monotonicSeconds()
        mutatorLock.lock()
        let ms = mutators
        for m in ms { m.stopRequested.store(true, ordering: .sequentiallyConsistent) }
        // After the requests: a mutator that reads this epoch then sees its request.
        let epoch = stopEpoch.add(1, ordering: .sequentiallyConsistent).newValue
        worldStopped.store(true, ordering: .sequentiallyConsistent)
        mutatorLock.unlock()
        // Wait until every mutator is parked (or has retired), and every background mark
        // worker is between slices (it checks worldStopped after announcing itself busy).
        var spins = 0
        while true {
            var all = true
            // A blocked mutator is stopped already (it parks if it leaves before the restart).
            for m in ms where m.parkedEpoch.load(ordering: .sequentiallyConsistent) != epoch && !m.retired.load(ordering: .acquiring)
                && m.region.load(ordering: .sequentiallyConsistent) != Mutator.blocked {
                all = false
                break
            }
            if all {
                for w in workers where w.busy.load(ordering: .sequentiallyConsistent) { all = false; break }
            }
            if all { break }
            spins += 1
            if spins > 64 { sched_yield() }
        }
        return monotonicSeconds() - start
    }

    /// Restarts every mutator. Returns when the pause ended: the moment before the first
    /// mutator may run again, as Go takes the pause's end before startTheWorldWithSema.
    /// (Waking the parked threads comes after: on an oversubscribed machine they may take
    /// the coordinator's CPU, which would otherwise count their running time as pause.)
    @discardableResult
    func startTheWorld() -> Double {
        mutatorLock.lock()
        let end = monotonicSeconds()
        worldStopped.store(false, ordering: .sequentiallyConsistent)
        // Every flag first, then the wake-ups: a thread still asleep when the coordinator
        // loses its CPU sees its cleared flag at its next timed wake (200 µs) anyway.
        for m in mutators { m.stopRequested.store(false, ordering: .sequentiallyConsistent) }
        for m in mutators { m.resume.broadcast() }
        mutatorLock.unlock()
        return end
    }

    // MARK: Threads

    private func startThreads() {
        let procs = procCount
        let (dedicated, fractional) = Pacer.markWorkers(procs: procs)
        // Go runs dedicated workers on whole Ps and a fractional worker on a P for
        // fractional × procs of the time; here each is a thread with that duty cycle. Every
        // CPU besides the dedicated ones may run an idle worker: the fractional worker is the
        // first of them (idle rank 0), then idle-only workers (utilisation 0 when not idle).
        for _ in 0..<dedicated { workers.append(MarkWorker(collector: self, utilization: 1.0, idleRank: nil)) }
        var rank = 0
        if fractional > 0 {
            workers.append(MarkWorker(collector: self, utilization: fractional * Double(procs), idleRank: rank))
            rank += 1
        }
        if configuration.idleMarking {
            while dedicated + rank < procs {
                workers.append(MarkWorker(collector: self, utilization: 0, idleRank: rank))
                rank += 1
            }
        }
        if workers.isEmpty { workers.append(MarkWorker(collector: self, utilization: 1.0, idleRank: nil)) }
        dedicatedWorkers = dedicated
        threads.append(spawnThread { [unowned self] in self.coordinatorLoop() })
        for w in workers { threads.append(spawnThread { w.run() }) }
        threads.append(spawnThread { [unowned self] in self.sweeperLoop() })
    }

    /// The coordinator: waits for the trigger, then runs a cycle.
    private func coordinatorLoop() {
        raiseCoordinatorPriority()
        while !shuttingDown.load(ordering: .acquiring) {
            // Ticket first, then look: a wake between the look and the wait ends the wait.
            let ticket = wake.ticket()
            triggerPosted.store(false, ordering: .sequentiallyConsistent)
            if startRequested.exchange(false, ordering: .acquiringAndReleasing)
                || heapLive.load(ordering: .sequentiallyConsistent) >= triggerBytes.load(ordering: .relaxed) {
                runCycle()
                continue
            }
            wake.wait(timeoutNanoseconds: 1_000_000, ticket: ticket)
        }
    }

    /// CPUs that neither a running mutator nor a dedicated worker uses: idle workers of
    /// rank below this mark flat out (Go runs an idle mark worker on an idle P).
    func idleProcs() -> Int {
        configuration.idleMarking ? procCount - dedicatedWorkers - runningMutators.load(ordering: .relaxed) : 0
    }

    /// Runs the coordinator at nice -10 when the process may raise a thread's priority (root,
    /// or CAP_SYS_NICE; otherwise it stays at the default and nothing changes). Its pauses
    /// are the whole world's: on a machine with more runnable threads than CPUs (mutators,
    /// mark workers, the sweeper), the scheduler could otherwise leave it waiting for another
    /// thread's time slice in the middle of a pause. (HotSpot likewise runs its safepoint
    /// thread, the VM thread, at a raised priority where the OS allows it.)
    private func raiseCoordinatorPriority() {
        // Linux keeps the nice value per thread; `who` 0 is the calling thread.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, -10)
    }

    /// Called by a mutator after growing heapLive past the trigger: wakes the coordinator,
    /// once (every span refill past the trigger calls this until the cycle starts).
    @inline(never)
    func noteTrigger() {
        if phase == .off && !triggerPosted.exchange(true, ordering: .sequentiallyConsistent) { wake.broadcast() }
    }
}

/// A condition variable with a timeout, for the collector's threads.
final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var generation = 0

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    /// The broadcasts so far: `wait(timeoutNanoseconds:ticket:)` returns at once if there
    /// has been one since.
    func ticket() -> Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return generation
    }

    func wait(timeoutNanoseconds: Int, ticket: Int? = nil) {
        pthread_mutex_lock(mutex)
        let gen = ticket ?? generation
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let total = Int(ts.tv_nsec) + timeoutNanoseconds
        ts.tv_sec += total / 1_000_000_000
        ts.tv_nsec = total % 1_000_000_000
        while gen == generation {
            if pthread_cond_timedwait(cond, mutex, &ts) != 0 { break }
        }
        pthread_mutex_unlock(mutex)
    }

    func broadcast() {
        pthread_mutex_lock(mutex)
        generation &+= 1
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }
}

func spawnThread(_ body: @escaping () -> Void) -> pthread_t {
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    var t = pthread_t()
    let arg = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&t, nil, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, arg)
    return t
}

func sysconfProcessors() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
