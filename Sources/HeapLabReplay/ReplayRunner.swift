// Runs a mapped ReplayProgram on one back end and measures it. This is what the measuring
// child does (ChildReplay.swift), and what the tests call in-process.
//
// Order of events (everything before step 5 and after step 7 is untimed):
//   1. Map the pointer table (8 bytes per slot) with MAP_POPULATE: harness memory.
//   2. Read RSS: the *baseline*, everything the process holds before the allocator under
//      test serves a byte (binary, runtime, program mapping, table).
//   3. Create the back end (the null allocator maps and faults its regions here; HeapLab
//      creates its heap), so that memory counts as the allocator's.
//   4. Start one thread per worker beyond the first (the first worker runs on the calling
//      thread); each makes its allocator handle, then waits at the start gate.
//   5. Open the gate; each worker notes its thread CPU clock and replays its ops. The
//      worker that owns the peak-live op stops right after it, reads RSS (one read of
//      /proc/self/statm, a few microseconds), and goes on.
//   6. Each worker notes its finish time and CPU clock, hands its allocator back, exits.
//   7. wall = latest finish - gate opening; cpu = sum of the workers' thread CPU times;
//      peak RSS = VmHWM; then the allocator's own statistics.
//
// A failure (allocator returned nil) stops that worker, raises the abort flag so no other
// worker waits forever, and is reported with the op that failed.

import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A named figure an allocator reports about itself.
public struct AllocatorStatistic: Equatable, Sendable {
    public var name: String
    public var value: Int
    public init(name: String, value: Int) {
        self.name = name
        self.value = value
    }
}

/// What one replay measured. Times are of the replay loop only (step 5 above).
public struct ReplayMeasurement: Equatable, Sendable {
    public var workers: Int
    public var wallSeconds: Double
    public var cpuSeconds: Double
    /// RSS before the allocator under test was created (harness memory).
    public var baselineRSSBytes: Int
    /// RSS right after the op at which live bytes peak (0 for a trace without allocations).
    public var rssAtPeakLiveBytes: Int
    /// The process's peak RSS (VmHWM) after the replay.
    public var peakRSSBytes: Int
    public var allocatorStatistics: [AllocatorStatistic]
    /// With verification: nil if every check passed, else the first problem.
    public var verificationFailure: String?
    public var verified: Bool
    /// Frees passed the object's size (the allocator's sized free).
    public var sizedFree = false
    /// The collector's figures (`--allocator gc` only; GCReport.swift).
    public var gc: GCReport? = nil

    public init(workers: Int, wallSeconds: Double, cpuSeconds: Double, baselineRSSBytes: Int,
                rssAtPeakLiveBytes: Int, peakRSSBytes: Int, allocatorStatistics: [AllocatorStatistic],
                verified: Bool = false, verificationFailure: String? = nil) {
        self.workers = workers
        self.wallSeconds = wallSeconds
        self.cpuSeconds = cpuSeconds
        self.baselineRSSBytes = baselineRSSBytes
        self.rssAtPeakLiveBytes = rssAtPeakLiveBytes
        self.peakRSSBytes = peakRSSBytes
        self.allocatorStatistics = allocatorStatistics
        self.verified = verified
        self.verificationFailure = verificationFailure
    }
}

/// Read access to the replay's pointer table after the loop (tests).
public struct ReplayInspection {
    public let table: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    public let slotCount: Int
    /// Address most recently stored in `slot` (an alloc or realloc result).
    public func pointer(slot: Int) -> UnsafeMutableRawPointer? {
        precondition(slot >= 0 && slot < slotCount)
        return table[slot]
    }
}

/// What one worker leaves behind; each worker writes only its own entry, and the main
/// thread reads them after joining.
struct WorkerResult {
    var finish = 0
    var cpu = 0
    /// Entry that failed, -1 if none.
    var failedAt = -1
    var rssAtPeak = 0
}

/// Start gate and per-worker results, shared by the worker threads of one replay.
final class WorkerGroup: @unchecked Sendable {
    let ready = Atomic<Int>(0)
    let go = Atomic<Int>(0)
    let workers: Int
    let results: UnsafeMutablePointer<WorkerResult>

    init(workers: Int) {
        self.workers = workers
        results = .allocate(capacity: workers)
        results.initialize(repeating: WorkerResult(), count: workers)
    }

    deinit { results.deallocate() }
}

/// What a new thread needs: its body and the gate.
final class ThreadStart {
    let body: WorkerThread
    let group: WorkerGroup
    init(body: WorkerThread, group: WorkerGroup) {
        self.body = body
        self.group = group
    }
}

/// A worker thread's body; the generic subclass knows the back end.
class WorkerThread {
    /// Makes the allocator handle (before the gate); false if that failed.
    func prepare() -> Bool { true }
    /// Replays the stream and hands the allocator back.
    func execute() {}

    /// Thread entry for workers 1...: prepare, wait at the gate, execute.
    func runThread(group: WorkerGroup) {
        let ok = prepare()
        group.ready.add(1, ordering: .releasing)
        guard ok else { return }
        while group.go.load(ordering: .acquiring) == 0 { sched_yield() }
        execute()
    }
}

final class TypedWorkerThread<B: ReplayBackend>: WorkerThread {
    let backend: B
    let worker: Int
    let ops: UnsafeBufferPointer<ReplayOp>
    let peakEnd: Int
    let table: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let board: ProgressBoard?
    let group: WorkerGroup
    /// Snapshot barriers (SnapshotCapture.swift), nil for a plain replay.
    var pauses: ReplayPauses? = nil
    var allocator: B.Allocator? = nil
    var setupError: ReplayError? = nil

    init(backend: B, worker: Int, ops: UnsafeBufferPointer<ReplayOp>, peakEnd: Int,
         table: UnsafeMutablePointer<UnsafeMutableRawPointer?>, board: ProgressBoard?, group: WorkerGroup) {
        self.backend = backend
        self.worker = worker
        self.ops = ops
        self.peakEnd = peakEnd
        self.table = table
        self.board = board
        self.group = group
    }

    override func prepare() -> Bool {
        do {
            allocator = try backend.makeAllocator(worker: worker)
            return true
        } catch {
            setupError = error
            board.map { ThreadSynchronization(board: $0, worker: worker).abort() }
            return false
        }
    }

    override func execute() {
        guard var allocator = allocator.take() else { return }
        if let board, board.aborted {
            backend.releaseAllocator(&allocator, worker: worker)
            return
        }
        let result = group.results + worker
        let cpu0 = Self.threadCPUNanos()
        if let board {
            replay(&allocator, ThreadSynchronization(board: board, worker: worker), result)
        } else {
            replay(&allocator, NoSynchronization(), result)
        }
        result.pointee.finish = ReplaySystem.monotonicNanos()
        result.pointee.cpu = Self.threadCPUNanos() - cpu0
        backend.releaseAllocator(&allocator, worker: worker)
    }

    /// Runs the whole stream, pausing after the peak-live op to sample RSS; records the
    /// entry that failed, if any.
    @inline(__always)
    func replay<S: ReplaySynchronization>(_ allocator: inout B.Allocator, _ sync: S, _ result: UnsafeMutablePointer<WorkerResult>) {
        if let pauses { return replayPausing(&allocator, sync, result, pauses) }
        guard let base = ops.baseAddress, ops.count > 0 else { return }
        var done = 0
        if peakEnd > 0 {
            done = allocator.runOps(sync, ops: base, from: 0, to: peakEnd, table: table)
            if done == peakEnd { result.pointee.rssAtPeak = ReplaySystem.residentBytes() }
        }
        if done == peakEnd {
            done = allocator.runOps(sync, ops: base, from: peakEnd, to: ops.count, table: table)
        }
        if done != ops.count {
            sync.abort()
            result.pointee.failedAt = done
        }
    }

    static func threadCPUNanos() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }
}

public enum ReplayRunner {
    /// Replays `program` on `backend` (created by `makeBackend` after the baseline RSS is
    /// read) and measures it. `inspect` sees the pointer table after the loop.
    public static func run<B: ReplayBackend>(
        _ program: ReplayProgram,
        makeBackend: () throws(ReplayError) -> B,
        inspect: ((ReplayInspection) -> Void)? = nil,
        pauses: ReplayPauses? = nil
    ) throws(ReplayError) -> (ReplayMeasurement, B) {
        let info = program.info
        let tableBytes = max(info.slotCount, 1) * MemoryLayout<UnsafeMutableRawPointer?>.stride
        let tableRaw: UnsafeMutableRawPointer
        switch ReplaySystem.mapAnonymous(tableBytes, populate: true) {
        case .success(let p): tableRaw = p
        case .failure(let e): throw ReplayError("pointer table: \(e)")
        }
        defer { ReplaySystem.unmap(tableRaw, tableBytes) }
        let table = tableRaw.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: max(info.slotCount, 1))
        let board = info.workers > 1 ? try ProgressBoard(workers: info.workers) : nil
        defer { board?.deallocate() }

        let baseline = ReplaySystem.residentBytes()
        let backend = try makeBackend()
        let group = WorkerGroup(workers: info.workers)
        var bodies: [TypedWorkerThread<B>] = []
        for w in 0..<info.workers {
            bodies.append(TypedWorkerThread(
                backend: backend, worker: w, ops: program.ops(worker: w),
                peakEnd: w == info.peakWorker ? info.peakOpEnd : 0,
                table: table, board: board, group: group))
            bodies[w].pauses = pauses
        }
        // Workers 1... get their own threads; worker 0 runs on this one.
        var threads: [pthread_t] = []
        for w in 1..<max(info.workers, 1) {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(ThreadStart(body: bodies[w], group: group)).toOpaque()
            let rc = pthread_create(&thread, nil, { context in
                let start = Unmanaged<ThreadStart>.fromOpaque(context!).takeRetainedValue()
                start.body.runThread(group: start.group)
                return nil
            }, context)
            if rc != 0 {
                Unmanaged<ThreadStart>.fromOpaque(context).release()
                board.map { ThreadSynchronization(board: $0, worker: 0).abort() }
                group.go.store(1, ordering: .releasing)
                for t in threads { pthread_join(t, nil) }
                throw ReplayError("cannot start worker thread \(w): \(String(cString: strerror(rc)))")
            }
            threads.append(thread)
        }
        let ready0 = bodies[0].prepare()
        while group.ready.load(ordering: .acquiring) < info.workers - 1 { sched_yield() }
        let start = ReplaySystem.monotonicNanos()
        group.go.store(1, ordering: .releasing)
        if ready0 { bodies[0].execute() }
        for t in threads { pthread_join(t, nil) }
        let peakRSS = ReplaySystem.peakResidentBytes()

        if let error = bodies.compactMap({ $0.setupError }).first { throw error }
        var rssAtPeak = 0
        var latest = start
        var cpu = 0
        for w in 0..<info.workers {
            let r = group.results[w]
            rssAtPeak = max(rssAtPeak, r.rssAtPeak)
            latest = max(latest, r.finish)
            cpu += r.cpu
        }
        for w in 0..<info.workers where group.results[w].failedAt >= 0 {
            let index = group.results[w].failedAt
            let op = program.ops(worker: w)[index]
            if op.kind == ReplayOp.wait { continue }   // gave up because another worker failed
            let reason = backend.failureReason() ?? "allocator returned nil"
            throw ReplayError("replay stopped at op \(index) of worker \(w) (\(op)): \(reason)")
        }
        if let problem = backend.problemAfterReplay() { throw ReplayError("replay failed: \(problem)") }
        if let inspect { inspect(ReplayInspection(table: table, slotCount: info.slotCount)) }
        let measurement = ReplayMeasurement(
            workers: info.workers,
            wallSeconds: Double(latest - start) / 1e9,
            cpuSeconds: Double(cpu) / 1e9,
            baselineRSSBytes: baseline,
            rssAtPeakLiveBytes: rssAtPeak,
            peakRSSBytes: peakRSS,
            allocatorStatistics: backend.statistics().map { AllocatorStatistic(name: $0.0, value: $0.1) })
        return (measurement, backend)
    }
}

extension ReplayRunner {
    /// Replays `program` in this process on the named allocator. The only place a back end
    /// is chosen by name; everything below it is specialised for the concrete type.
    /// jemalloc / mimalloc / tcmalloc measure whatever malloc this process runs on, so they
    /// belong in a child started by `ChildReplay.measure`.
    /// `sizedFree`: frees pass the object's size and kind where the allocator has a sized
    /// free (reported back in `ReplayMeasurement.sizedFree`).
    /// `gc`: the collector's options (`allocator == .gc` only).
    public static func measure(program: ReplayProgram, allocator: AllocatorKind, verify: Bool,
                               sizedFree: Bool = false, gc: GCReplayOptions = GCReplayOptions()) throws(ReplayError) -> ReplayMeasurement {
        var m: ReplayMeasurement
        var sized = false
        switch allocator {
        case .gc:
            return try measureCollector(program: program, options: gc, verify: verify)
        case .go:
            throw ReplayError("go: Go's runtime replays in goreplay (ChildReplay.measure), not in this process")
        case .null:
            m = try measure(program, verify: verify) { () throws(ReplayError) in try NullBackend(program: program.info) }
        case .heaplab:
            m = try measure(program, verify: verify) { () throws(ReplayError) in try HeapLabBackend(sizedFree: sizedFree) }
            sized = sizedFree
        case .glibc, .jemalloc, .mimalloc, .tcmalloc:
            let backend = MallocBackend(sizedFree: sizedFree)
            sized = backend.usesSizedFree
            m = try measure(program, verify: verify) { () throws(ReplayError) in backend }
        }
        m.sizedFree = sized
        return m
    }

    static func measure<B: ReplayBackend>(_ program: ReplayProgram, verify: Bool,
                                          _ make: () throws(ReplayError) -> B) throws(ReplayError) -> ReplayMeasurement {
        if verify {
            let log = VerificationLog()
            var (m, _) = try run(program, makeBackend: { () throws(ReplayError) in VerifyingBackend(try make(), log: log) })
            m.verified = true
            return m
        }
        return try run(program, makeBackend: make).0
    }
}
