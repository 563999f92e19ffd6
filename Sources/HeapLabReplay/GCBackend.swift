// HeapLab's garbage collector as a replay back end: `heaplab replay --allocator gc`.
//
// The program is lowered for the collector (TraceLowering, `forCollector`): holds are roots,
// nothing is freed explicitly. Per op (ReplayOp.swift's collector kinds), on the worker that
// runs the record:
//
//   gcAlloc     p = Mutator.allocate(size, ptrs) (zeroed; pointer slots nil), the first word
//               written (pointer-free objects: the slot number, as every back end does),
//               hold(p): the new object is a root of this thread, then one byte in every
//               further page (polling every 64 KiB: a large object's page faults must not hold
//               up a stop)
//   hold/drop   Mutator.holdSlot / dropSlot: roots named by the op's slot, no hashing (a
//               hold taken on another thread is dropped through the collector's orphan log)
//   store       Mutator.writePointer: through the write barrier
//   gcRealloc   a pointer-free copy with holds + 1, the old object's holds dropped; the lowering
//               follows it with stores that re-point every pointer slot that pointed at the
//               old object, then drops the extra hold. The old copy becomes garbage. (Only
//               pointer-free objects are resized, so nothing inside the copy needs updating.)
//   wait        spin until the other worker got there, answering safepoints meanwhile; a
//               long wait blocks the mutator (Mutator.enterBlocked: a stop does not wait
//               for it, the collector scans its roots, idle marking may use its CPU)
// and `Mutator.poll()` (a safepoint) every 8 ops. A worker that waits must poll: a
// stop-the-world request waits for every registered mutator to park.
//
// Threads. Each replay worker registers one Mutator (one mcache) on its own thread before
// timing starts (makeAllocator), blocked until its first op (it waits at the start gate
// meanwhile, without polling). When its stream ends it stays registered, answering
// safepoints, until every worker is done: its roots are the trace's holds and another
// thread may still use (or drop) what it holds (blocked meanwhile). Then it unregisters; the last one out
// stops the collector, so no cycle runs after the replay.
//
// Verify (`--verify`): the collector re-marks after every cycle with the world stopped and
// poisons swept memory (Collector's verify mode; a miss is a replay failure naming the object,
// its span and a path from a root), and before every op that names an object the loop asks
// `Collector.isAllocated`: an object the collector has swept while the trace still names it
// stops the replay, and the parent reports the record's `FILE:LINE` (OpOrigin).
//
// Snapshots (`--snapshot-at`, `--snapshot-every-gc`; SnapshotCapture.swift's
// GCSnapshotSession): the collector captures in `onMarkComplete` with the world stopped; the
// op loop is generic over a GCOpLog that, for every-gc snapshots only, records each worker's
// position and allocations (NoGCLog, for every other replay, compiles to nothing). The
// capture's time is taken out of the figures below (mark-termination event, cycle record,
// gctrace line): it is the snapshot's pause, reported with the snapshot.
//
// Figures: the collector's cycle records and events (pauses, concurrent mark, and with a
// timeline the worker slices and assists) go into a GCReport (GCReport.swift) and, with
// `--timeline`, a Chrome trace-event file (GCTimeline.swift), both made after timing.

public import HeapLabAllocator
public import HeapLabTrace
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where an op of a collector program came from (kept with `--verify`): the record index
/// (-1 for a wait) and its place in the file, the object the op names (a store's source)
/// and a store's destination.
public struct OpOrigin: Equatable, Sendable {
    public var record: Int
    public var location: InputLocation
    public var object: UInt64
    public var destination: UInt64
    public init(record: Int, location: InputLocation, object: UInt64, destination: UInt64) {
        self.record = record
        self.location = location
        self.object = object
        self.destination = destination
    }
}

/// An op that found its object already freed by the collector (under `--verify`).
public struct GCUseAfterFree: Equatable, Sendable {
    public var worker: Int
    public var op: Int
    /// 0: the op's object (a store's source); 1: a store's destination.
    public var role: Int
    public init(worker: Int, op: Int, role: Int) {
        self.worker = worker
        self.op = op
        self.role = role
    }

    /// The trace error for it: `FILE:LINE: object N was used after the collector freed it`,
    /// from the program's origins (nil when they do not cover the op).
    public func inputError(trace: String, origins: [[OpOrigin]]?) -> InputError? {
        guard let origins, worker >= 0, worker < origins.count, op >= 0, op < origins[worker].count else { return nil }
        let origin = origins[worker][op]
        guard origin.record >= 0 else { return nil }
        let id = role == 1 ? origin.destination : origin.object
        return InputError(file: trace, location: origin.location, message: "object \(id) was used after the collector freed it")
    }
}

/// How the collector runs in a replay (the `heaplab replay` options of the same names).
public struct GCReplayOptions: Equatable, Sendable {
    /// GOGC; nil is off.
    public var gogc: Int? = 100
    /// Soft memory limit (GOMEMLIMIT); nil: none.
    public var memoryLimit: Int? = nil
    /// Overrides Go's minimum heap (4 MiB × GOGC/100).
    public var heapMinimum: Int? = nil
    /// Every collection stops the world (gcstoptheworld=1).
    public var stopTheWorld = false
    /// CPUs the mutators leave idle mark flat out (Go's idle marking); false: only the 25%
    /// background workers mark.
    public var idleMarking = true
    /// Print Go's gctrace line per cycle to stderr.
    public var gctrace = false
    /// Write a Chrome trace-event timeline to this file.
    public var timeline: String? = nil
    /// Measurement only: pointer stores skip the write barrier (plain stores). Allowed only
    /// with GOGC=off and no memory limit, so that no cycle ever marks; comparing with a normal
    /// run gives the cost of the barrier's check outside marking (docs/replay.md).
    public var rawStores = false
    /// Clear every object's data words too (Go's typed allocation). By default only pointer
    /// slots are cleared: a trace's allocations have malloc's contract (the program writes
    /// what it reads), so the collector's heap does no clearing its rivals skip.
    public var zeroData = false

    public init(gogc: Int? = 100, memoryLimit: Int? = nil, heapMinimum: Int? = nil, stopTheWorld: Bool = false,
                gctrace: Bool = false, timeline: String? = nil) {
        self.gogc = gogc
        self.memoryLimit = memoryLimit
        self.heapMinimum = heapMinimum
        self.stopTheWorld = stopTheWorld
        self.gctrace = gctrace
        self.timeline = timeline
    }

    /// The measuring child's arguments for these options (explicit, so that the child never
    /// reads GOGC or GOMEMLIMIT itself).
    public var childArguments: [String] {
        var a = ["--gogc", gogc.map(String.init) ?? "off", "--memlimit", memoryLimit.map(String.init) ?? "off"]
        if let heapMinimum { a += ["--heap-minimum", String(heapMinimum)] }
        if stopTheWorld { a.append("--stw") }
        if !idleMarking { a.append("--no-idle-marking") }
        if gctrace { a.append("--gctrace") }
        if let timeline { a += ["--timeline", timeline] }
        if rawStores { a.append("--raw-stores") }
        if zeroData { a.append("--zero-data") }
        return a
    }
}

/// One collector event and the thread it happened on.
struct RecordedGCEvent {
    var event: GCEvent
    var thread: UInt
}

/// What the workers of one collector replay share.
final class GCRunState: @unchecked Sendable {
    let workers: Int
    /// Worker and mark-worker slices and assists are kept only for a timeline.
    let detailedEvents: Bool
    let registered = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    let unregistered = Atomic<Int>(0)
    let aborted = Atomic<Bool>(false)
    let finalHeap = Atomic<Int>(0)
    struct Shared {
        var events: [RecordedGCEvent] = []
        /// pthread_self of each replay worker's thread.
        var workerThreads: [UInt: Int] = [:]
        /// Monotonic seconds of each worker's first op and of the end of its stream.
        var starts: [Int: Double] = [:]
        var ends: [Int: Double] = [:]
        var useAfterFree: GCUseAfterFree? = nil
    }
    let shared = PthreadLocked(Shared())

    init(workers: Int, detailedEvents: Bool) {
        self.workers = workers
        self.detailedEvents = detailedEvents
    }

    func record(_ e: GCEvent) {
        guard detailedEvents || e.isPause || e.kind == .concurrentMark else { return }
        let thread = UInt(pthread_self())
        shared.withLock { $0.events.append(RecordedGCEvent(event: e, thread: thread)) }
    }
}

public final class GCBackend: ReplayBackend {
    /// One worker's handle: its mutator.
    public struct Allocator: ReplayAllocator {
        let mutator: Mutator
        let collector: Collector
        let state: GCRunState
        let worker: Int
        let verify: Bool
        let streamLength: Int
        let rawStores: Bool
        /// Clear data words too (GCReplayOptions.zeroData).
        let zeroData: Bool
        /// `--snapshot-every-gc`: the allocation log (SnapshotCapture.swift), else nil.
        let snapshotLog: SnapshotGCLog?

        /// Used only outside the op loop (the loop is `runOps`): pointer-free objects.
        public mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
            mutator.allocate(size: size, pointerSlots: noscan ? 0 : min(1, size / 8), zeroed: zeroData)
        }

        /// The collector frees; an explicit free does nothing.
        public mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool) {}

        public mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
            guard let p = mutator.allocate(size: newSize, pointerSlots: 0, zeroed: zeroData) else { return nil }
            p.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
            return p
        }

        public mutating func runOps<S: ReplaySynchronization>(_ sync: S, ops: UnsafePointer<ReplayOp>, from start: Int, to end: Int,
                                                               table: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int {
            mutator.leaveBlocked()
            let now = Self.monotonic()
            if start == 0 { state.shared.withLock { $0.starts[worker] = now } }
            var failure = GCUseAfterFree(worker: worker, op: -1, role: 0)
            // The loop specialised for each concrete synchronisation: called through this
            // generic requirement, a multi-threaded replay ran the unspecialised loop (a
            // retain/release and witness calls per op: 3-7 times slower on 2-thread traces).
            let done: Int
            if let s = sync as? ThreadSynchronization {
                done = runSpecialized(s, ops: ops, from: start, to: end, table: table, failure: &failure)
            } else if let s = sync as? NoSynchronization {
                done = runSpecialized(s, ops: ops, from: start, to: end, table: table, failure: &failure)
            } else {
                done = runSpecialized(sync, ops: ops, from: start, to: end, table: table, failure: &failure)
            }
            if done != end || done == streamLength {
                let finish = Self.monotonic()
                state.shared.withLock {
                    $0.ends[worker] = finish
                    if failure.op >= 0 && $0.useAfterFree == nil { $0.useAfterFree = failure }
                }
            }
            if done != end { state.aborted.store(true, ordering: .releasing) }
            return done
        }

        @inline(__always)
        func runSpecialized<S: ReplaySynchronization>(_ sync: S, ops: UnsafePointer<ReplayOp>, from start: Int, to end: Int,
                                                      table: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                                      failure: inout GCUseAfterFree) -> Int {
            if let snapshotLog {
                let done = replayGCOps(mutator, verify ? collector : nil, sync, BarrierStores(), snapshotLog, ops: ops, from: start, to: end,
                                       table: table, zeroData: zeroData, failure: &failure)
                snapshotLog.position(done)
                return done
            } else if rawStores {
                return replayGCOps(mutator, verify ? collector : nil, sync, RawStores(), NoGCLog(), ops: ops, from: start, to: end,
                                   table: table, zeroData: zeroData, failure: &failure)
            } else {
                return replayGCOps(mutator, verify ? collector : nil, sync, BarrierStores(), NoGCLog(), ops: ops, from: start, to: end,
                                   table: table, zeroData: zeroData, failure: &failure)
            }
        }

        static func monotonic() -> Double { Double(ReplaySystem.monotonicNanos()) * 1e-9 }
    }

    public let heap: Heap
    public let collector: Collector
    public let options: GCReplayOptions
    public let verify: Bool
    let state: GCRunState
    let streamLengths: [Int]
    /// Size of the program's object table: each mutator's slot roots cover it.
    let slotCount: Int
    /// Heap snapshots (SnapshotCapture.swift's GCSnapshotSession), nil for a plain replay.
    let snapshots: GCSnapshotSession?

    /// A heap and a running collector for `program` (which must have been lowered for the
    /// collector). With `snapshots`, the collector captures at mark termination, and the
    /// capture's time is taken out of the pauses these figures report (it is the snapshot's
    /// pause, reported with the snapshot).
    public convenience init(program: ReplayProgramInfo, options: GCReplayOptions, verify: Bool) throws(ReplayError) {
        try self.init(program: program, options: options, verify: verify, snapshots: nil)
    }

    init(program: ReplayProgramInfo, options: GCReplayOptions, verify: Bool, snapshots: GCSnapshotSession?) throws(ReplayError) {
        guard program.collected else {
            throw ReplayError("the collector back end needs a program lowered for it (TraceLowering forCollector)")
        }
        if options.rawStores && (options.gogc != nil || options.memoryLimit != nil) {
            throw ReplayError("raw stores (no write barrier) need GOGC=off and no memory limit: no cycle may run")
        }
        self.options = options
        self.verify = verify
        self.snapshots = snapshots
        streamLengths = program.streams.map(\.opCount)
        slotCount = program.slotCount
        let state = GCRunState(workers: program.workers, detailedEvents: options.timeline != nil)
        self.state = state
        do {
            heap = try Heap(configuration: HeapConfiguration(onFault: .record))
        } catch {
            throw ReplayError("cannot create the HeapLab heap: \(error)")
        }
        var config = GCConfiguration()
        config.gogc = options.gogc
        config.memoryLimit = options.memoryLimit
        config.heapMinimum = options.heapMinimum
        config.stopTheWorld = options.stopTheWorld
        config.idleMarking = options.idleMarking
        config.verify = verify
        config.onEvent = { state.record($0) }
        if options.gctrace {
            config.onCycle = { record in
                var line = record.gctraceLine + "\n"
                line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            }
        }
        if let snapshots {
            // Capture at mark termination; the capture's time leaves the collector's figures
            // (the last mark-termination event of the cycle, its record, its gctrace line).
            config.onMarkComplete = { collector, cycle in snapshots.markComplete(collector, cycle: cycle) }
            config.onEvent = { e in
                var e = e
                if e.kind == .markTermination { e.end = max(e.start, e.end - snapshots.captureSeconds(cycle: e.cycle)) }
                state.record(e)
            }
            let gctrace = options.gctrace
            config.onCycle = { record in
                if gctrace {
                    var line = GCBackend.withoutCapture(record, snapshots).gctraceLine + "\n"
                    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
                }
                snapshots.cycleEnded(record.cycle)
            }
        }
        do {
            collector = try Collector(heap: heap, configuration: config)
        } catch {
            throw ReplayError("cannot start the collector: \(error)")
        }
    }

    deinit { collector.shutdown() }

    /// A cycle record with the snapshot capture's time taken out of its mark termination.
    static func withoutCapture(_ record: GCCycleRecord, _ snapshots: GCSnapshotSession?) -> GCCycleRecord {
        guard let snapshots else { return record }
        var r = record
        r.stw2 = max(0, r.stw2 - snapshots.captureSeconds(cycle: r.cycle))
        return r
    }

    public func makeAllocator(worker: Int) throws(ReplayError) -> Allocator {
        let m = collector.registerMutator()
        // Holds are named by the program's object slots: roots without hashing.
        m.enableSlotRoots(capacity: slotCount)
        m.enterBlocked()
        state.registered.add(1, ordering: .acquiringAndReleasing)
        let thread = UInt(pthread_self())
        state.shared.withLock { $0.workerThreads[thread] = worker }
        snapshots?.register(worker: worker, mutator: m)
        return Allocator(mutator: m, collector: collector, state: state, worker: worker, verify: verify,
                         streamLength: streamLengths[worker], rawStores: options.rawStores, zeroData: options.zeroData,
                         snapshotLog: snapshots?.opLog(worker: worker))
    }

    /// Waits (blocked) until every worker is done, then unregisters; the last worker out
    /// stops the collector.
    public func releaseAllocator(_ allocator: inout Allocator, worker: Int) {
        state.finished.add(1, ordering: .acquiringAndReleasing)
        allocator.mutator.enterBlocked()
        while state.finished.load(ordering: .acquiring) < state.workers && !state.aborted.load(ordering: .acquiring) {
            sched_yield()
        }
        snapshots?.replayEnded()
        collector.unregisterMutator(allocator.mutator)
        let out = state.unregistered.add(1, ordering: .acquiringAndReleasing).newValue
        if out == state.registered.load(ordering: .acquiring) {
            state.finalHeap.store(collector.heapLiveBytes, ordering: .relaxed)
            collector.shutdown()
        }
    }

    public func statistics() -> [(String, Int)] {
        collector.shutdown()
        let s = heap.statistics()
        return [
            ("heap_in_use", s.heapInUse), ("heap_idle", s.heapIdle), ("heap_released", s.heapReleased),
            ("heap_sys", s.heapSys), ("metadata_bytes", s.metadataBytes), ("live_objects", s.liveObjects),
            ("live_bytes", s.liveBytes), ("total_allocs", s.totalAllocs), ("tiny_allocs", s.tinyAllocs),
            ("large_allocs", s.largeAllocs), ("gc_cycles", collector.cycles.count),
        ]
    }

    /// The use after free `--verify` found, if any.
    public var useAfterFree: GCUseAfterFree? { state.shared.withLock { $0.useAfterFree } }

    public func failureReason() -> String? {
        if useAfterFree != nil { return "the op names an object the collector has already freed" }
        return heap.lastError.map { "\($0)" }
    }

    public func problemAfterReplay() -> String? {
        if let failure = collector.verifyFailures.first { return failure }
        let faults = heap.faults
        guard let first = faults.first else { return nil }
        return "the HeapLab heap reported \(faults.count) fault(s), the first: \(first)"
    }

    // MARK: figures

    /// The replay interval (monotonic seconds): first op of any worker to the end of the last.
    var replayInterval: (start: Double, end: Double) {
        state.shared.withLock { s in
            let start = s.starts.values.min() ?? 0
            return (start, max(start, s.ends.values.max() ?? start))
        }
    }

    /// The collector's figures for the replay (after `ReplayRunner.run` returned).
    public func report() -> GCReport {
        collector.shutdown()
        let (t0, t1) = replayInterval
        let origin = collector.startTime
        let events = state.shared.withLock { $0.events }
        // The replay's cycles and pauses: those whose world stopped before its end (a cycle
        // under way when the last worker finished may complete after it).
        var setupStart: [Int: Double] = [:]
        for e in events where e.event.kind == .markSetup { setupStart[e.event.cycle] = e.event.start }
        let records = collector.cycles.filter { (setupStart[$0.cycle] ?? origin + $0.start) < t1 }
            .map { GCBackend.withoutCapture($0, snapshots) }
        var intervals: [(start: Double, end: Double)] = []
        if options.stopTheWorld {
            // One pause per cycle: the world stays stopped from mark setup to termination.
            var byCycle: [Int: (Double, Double)] = [:]
            for e in events where e.event.isPause {
                let old = byCycle[e.event.cycle] ?? (e.event.start, e.event.end)
                byCycle[e.event.cycle] = (min(old.0, e.event.start), max(old.1, e.event.end))
            }
            intervals = byCycle.values.map { ($0.0, $0.1) }
        } else {
            intervals = events.filter(\.event.isPause).map { ($0.event.start, $0.event.end) }
        }
        let pauses = MMU.union(intervals.filter { $0.start < t1 }.map { (max($0.start, t0) - t0, $0.end - t0) })
        let cycles = records.map { r in
            GCCycleSummary(cycle: r.cycle, startSeconds: origin + r.start - t0, markSetupSeconds: r.stw1,
                           concurrentMarkSeconds: r.concurrent, markTerminationSeconds: r.stw2,
                           heapAtStartBytes: r.heapAtStart, heapAtMarkEndBytes: r.heapAtMarkEnd, heapMarkedBytes: r.heapMarked,
                           goalBytes: r.goal, assistSeconds: r.assistSeconds, assists: r.assists,
                           backgroundCPUSeconds: r.backgroundCPUSeconds, gctrace: r.gctraceLine,
                           markSetupStoppingSeconds: r.stw1Stopping, markTerminationStoppingSeconds: r.stw2Stopping,
                           idleCPUSeconds: r.idleCPUSeconds)
        }
        let final = state.finalHeap.load(ordering: .relaxed)
        let peak = max(final, records.map { max($0.heapAtMarkEnd, $0.heapAtStart) }.max() ?? 0)
        return GCReport(
            gogc: options.gogc, memoryLimitBytes: options.memoryLimit, heapMinimumBytes: options.heapMinimum,
            stopTheWorld: options.stopTheWorld, verified: verify, procs: records.first?.procs ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            replaySeconds: t1 - t0, cycles: cycles, pauses: pauses,
            backgroundCPUSeconds: records.reduce(0) { $0 + $1.backgroundCPUSeconds },
            assistSeconds: records.reduce(0) { $0 + $1.assistSeconds }, assists: records.reduce(0) { $0 + $1.assists },
            peakHeapBytes: peak, finalHeapBytes: final, idleCPUSeconds: records.reduce(0) { $0 + $1.idleCPUSeconds })
    }

    /// Writes the Chrome trace-event timeline (GCTimeline.swift) to `path`, atomically.
    public func writeTimeline(to path: String) throws(InputError) {
        let (t0, t1) = replayInterval
        let snapshot = state.shared.withLock { $0 }
        let text = GCTimeline.render(events: snapshot.events, workerThreads: snapshot.workerThreads,
                                     workerSpans: snapshot.starts.keys.sorted().map { ($0, snapshot.starts[$0]!, snapshot.ends[$0] ?? t1) },
                                     cycles: collector.cycles, collectorStart: collector.startTime,
                                     replayStart: t0, replayEnd: t1)
        try AtomicOutputFile.write(text, to: path)
    }
}

/// The collector replay loop: entries [start, end) of one worker's ops (see the file
/// comment). Returns `end`, or the entry that failed (the heap is exhausted, a wait was
/// aborted, or with `check` an op named a freed object: then `failure` says which).
@inline(never)
func replayGCOps<S: ReplaySynchronization, P: PointerStores, L: GCOpLog>(
    _ m: Mutator,
    _ check: Collector?,
    _ sync: S,
    _ stores: P,
    _ log: L,
    ops: UnsafePointer<ReplayOp>,
    from start: Int,
    to end: Int,
    table: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
    zeroData: Bool,
    failure: inout GCUseAfterFree
) -> Int {
    /// Verify: is the object in `slot` still allocated? Records the failure if not.
    @inline(__always)
    func freed(_ p: UnsafeMutableRawPointer, _ i: Int, role: Int) -> Bool {
        guard let check, !check.isAllocated(p) else { return false }
        failure.op = i
        failure.role = role
        return true
    }
    var i = start
    while i < end {
        log.position(i)
        // A safepoint every 8 ops (under 100 ns of replay apart): the poll's three loads
        // and branches were a tenth of the loop's instructions. Ops that can run long poll
        // inside (waits, touching and copying large objects).
        if i & 7 == 0 { m.poll() }
        let op = ops[i]
        let slot = Int(truncatingIfNeeded: op.slot)
        switch op.kind {
        case ReplayOp.gcAlloc:
            let size = Int(truncatingIfNeeded: op.arg & ReplayOp.gcSizeMask)
            let ptrs = op.gcPointerSlots
            guard let p = m.allocate(size: size, pointerSlots: ptrs, zeroed: zeroData) else { return i }
            if ptrs > 0 {
                stores.write(m, p, 0, nil)
            } else if size >= 8 {
                p.storeBytes(of: UInt64(op.slot), as: UInt64.self)
            } else {
                p.storeBytes(of: UInt8(truncatingIfNeeded: op.slot), as: UInt8.self)
            }
            // Held before the rest of it is touched: that polls (a large object's pages take
            // a page fault each), and a collection may start meanwhile.
            m.holdSlot(slot, p)
            table[slot] = p
            touchPagesPolling(p, from: 0, to: size, m)
            log.allocated(slot: slot, p, size: size)
        case ReplayOp.hold:
            let p = table[slot].unsafelyUnwrapped
            if check != nil && freed(p, i, role: 0) { return i }
            m.holdSlot(slot, p)
        case ReplayOp.drop:
            let p = table[slot].unsafelyUnwrapped
            if check != nil && freed(p, i, role: 0) { return i }
            m.dropSlot(slot, p)
        case ReplayOp.store:
            let source = table[slot].unsafelyUnwrapped
            let target = table[Int(truncatingIfNeeded: op.destinationSlot)].unsafelyUnwrapped
            if check != nil && (freed(source, i, role: 0) || freed(target, i, role: 1)) { return i }
            stores.write(m, source, op.wordIndex, target)
        case ReplayOp.storeNil:
            let source = table[slot].unsafelyUnwrapped
            if check != nil && freed(source, i, role: 0) { return i }
            stores.write(m, source, op.wordIndex, nil)
        case ReplayOp.gcRealloc:
            let old = table[slot].unsafelyUnwrapped
            if check != nil && freed(old, i, role: 0) { return i }
            let newSize = Int(truncatingIfNeeded: op.arg)
            let oldSize = Int(truncatingIfNeeded: ops[i &+ 1].arg)
            let holds = Int(ops[i &+ 1].slot)
            guard let p = m.allocate(size: newSize, pointerSlots: 0, zeroed: zeroData) else { return i }
            // holds + 1: the extra one keeps the copy a root until the stores the lowering
            // put after this op make it reachable as the original was. Taken before the copy,
            // which polls between chunks (the old object is still held meanwhile).
            for _ in 0...holds { m.holdSlot(slot, p) }
            copyPolling(p, from: old, byteCount: min(oldSize, newSize), m)
            if newSize > oldSize {
                p.storeBytes(of: 1, toByteOffset: oldSize, as: UInt8.self)
                touchPagesPolling(p, from: oldSize, to: newSize, m)
            }
            for _ in 0..<holds { m.dropSlot(slot, old) }
            table[slot] = p
            log.moved(slot: slot, p, size: newSize)
            i &+= 1
        case ReplayOp.wait:
            let w = Int(op.worker), n = Int(truncatingIfNeeded: op.arg)
            var spins = 0
            while !sync.reached(worker: w, count: n) {
                if sync.isAborted { m.leaveBlocked(); return i }
                spins &+= 1
                if spins <= 100 {
                    m.poll()
                } else {
                    // A long wait blocks: stops need not wait for this thread, and its CPU
                    // is free for others (idle marking among them).
                    if spins == 101 { m.enterBlocked() }
                    sched_yield()
                }
            }
            m.leaveBlocked()
        default:
            break
        }
        i &+= 1
        sync.published(i)
    }
    return end
}

/// Bytes a collector-replay op touches or copies between safepoints: a large object's pages
/// each take a page fault (about a microsecond), and a stop must not wait for hundreds (Go's
/// large allocations clear memory in preemptible chunks, and its goroutines are preempted
/// asynchronously).
let pollEveryBytes = 64 << 10

/// touchPages, polling every 64 KiB. The object must be held.
@inline(__always)
func touchPagesPolling(_ p: UnsafeMutableRawPointer, from: Int, to: Int, _ m: Mutator) {
    if to &- from <= pollEveryBytes { return touchPages(p, from: from, to: to) }
    touchPagesInChunks(p, from: from, to: to) { m.poll() }
}

/// touchPages over [from, to) in 64 KiB chunks, calling `poll` after each: the same bytes.
@inline(never)
func touchPagesInChunks(_ p: UnsafeMutableRawPointer, from: Int, to: Int, poll: () -> Void) {
    var start = from
    while start < to {
        let end = min(to, start + pollEveryBytes)
        // From the byte before the chunk: a page boundary exactly at its start is this
        // chunk's (touchPages writes the boundaries after its first byte).
        touchPages(p, from: start == from ? start : start &- 1, to: end)
        poll()
        start = end
    }
}

/// copyMemory, polling every 64 KiB. Both objects must be held.
@inline(__always)
func copyPolling(_ p: UnsafeMutableRawPointer, from old: UnsafeMutableRawPointer, byteCount: Int, _ m: Mutator) {
    var done = 0
    while byteCount &- done > pollEveryBytes {
        (p + done).copyMemory(from: old + done, byteCount: pollEveryBytes)
        done &+= pollEveryBytes
        m.poll()
    }
    (p + done).copyMemory(from: old + done, byteCount: byteCount &- done)
}

extension ReplayRunner {
    /// `--allocator gc`: runs `program` (lowered for the collector) and adds the collector's
    /// figures; writes the timeline if asked. A use after free found by `--verify` is thrown
    /// with `ReplayError.useAfterFree` set.
    static func measureCollector(program: ReplayProgram, options: GCReplayOptions, verify: Bool) throws(ReplayError) -> ReplayMeasurement {
        var made: GCBackend? = nil
        var m: ReplayMeasurement
        let backend: GCBackend
        do throws(ReplayError) {
            (m, backend) = try run(program, makeBackend: { () throws(ReplayError) in
                let b = try GCBackend(program: program.info, options: options, verify: verify)
                made = b
                return b
            })
        } catch {
            // A mark that missed a reachable object explains whatever went wrong after it.
            if let missed = made?.collector.verifyFailures.first { throw ReplayError("replay failed: \(missed)") }
            var e = error
            if e.useAfterFree == nil, let u = made?.useAfterFree { e.useAfterFree = u }
            throw e
        }
        m.verified = verify
        m.gc = backend.report()
        if let path = options.timeline {
            do { try backend.writeTimeline(to: path) } catch { throw ReplayError("\(error)") }
        }
        return m
    }
}

/// How the collector loop stores pointers: through the write barrier (always, except when
/// measuring the barrier itself).
protocol PointerStores {
    func write(_ m: Mutator, _ object: UnsafeMutableRawPointer, _ word: Int, _ value: UnsafeMutableRawPointer?)
}

struct BarrierStores: PointerStores {
    @inline(__always)
    func write(_ m: Mutator, _ object: UnsafeMutableRawPointer, _ word: Int, _ value: UnsafeMutableRawPointer?) {
        m.writePointer(object, slot: word, value)
    }
}

/// The same store as Mutator.writePointer makes when the barrier is off, without looking at
/// the barrier flag: only for runs in which no cycle can mark.
struct RawStores: PointerStores {
    @inline(__always)
    func write(_ m: Mutator, _ object: UnsafeMutableRawPointer, _ word: Int, _ value: UnsafeMutableRawPointer?) {
        (object + word &* 8).assumingMemoryBound(to: Atomic<UInt>.self).pointee
            .store(UInt(bitPattern: value), ordering: .relaxed)
    }
}
