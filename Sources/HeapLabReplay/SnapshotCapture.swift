// Heap snapshots during a replay: `heaplab replay TRACE --allocator heaplab|gc --snapshot-at R`,
// `--snapshot-at-peak`, `--snapshot-every-gc` (gc), `--snapshot-dir DIR`
// (docs/snapshot-format.md, docs/inspect.md).
//
// The collector's heap has its own part at the end of this file ("The collector's heap":
// GCObjectFacts, the op loop's GCOpLog, GCSnapshotSession, whose comment says why every
// capture there happens inside the collector's stop-the-world at mark termination). On
// HeapLab's manual heap, three parts, hooked into the replay at three places:
//
//   SnapshotPlanner   follows the lowering (TraceLowering.swift calls it per record): which
//                     slot holds which trace object (ID, size, pointer slots, site), the
//                     holds per (object, thread), live bytes and the peak record. After a
//                     requested record it cuts a SnapshotPlan: every live object's slot and
//                     trace facts, the roots, and each worker's op count at that point.
//   ReplayPauses      a barrier per plan (ReplayRunner.swift's workers run up to their op
//                     count for the plan and wait): the last worker to arrive captures with
//                     the world stopped, releases the others, then writes the file.
//   capture           the live objects' pointers come from the replay's slot table (not from
//                     the heap walk: objects on an mcache free stack still look allocated
//                     there); size classes from Heap.objectInfo; spans from Heap.forEachSpan;
//                     pointer slots are read from the objects' real memory, where the replay
//                     wrote every `w` store, and mapped back to objects by address.
//
// Holds per thread: `a` and `h` on thread T add a hold by T; `f` on T drops one of T's holds
// if T has any, else one of the holds of the thread that took the oldest remaining hold (a
// hold handed to another thread).
//
// The back end is HeapLab's allocator with pointer-bearing objects zeroed on allocation (as Go
// always does), so a pointer slot the trace never stored into reads as nil, not as whatever
// the memory held before. (That zeroing is the only difference from `--allocator heaplab`;
// a replay that takes snapshots is for inspection, not for timing.)

public import HeapLabSnapshot
public import HeapLabAllocator
import HeapLabTrace
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What to capture.
public struct SnapshotRequest: Sendable {
    /// Records after which to capture (header = record 0).
    public var records: [Int] = []
    public var atPeak = false
    /// At every collection's mark termination (the collector only).
    public var everyGC = false
    public var directory = "."
    public init(records: [Int] = [], atPeak: Bool = false, everyGC: Bool = false, directory: String = ".") {
        self.records = records
        self.atPeak = atPeak
        self.everyGC = everyGC
        self.directory = directory
    }
    public var isEmpty: Bool { records.isEmpty && !atPeak && !everyGC }
}

/// One capture to take: what the lowering knew at the record.
struct SnapshotPlan {
    var record: Int
    var trigger: SnapshotTrigger
    /// Per worker: ops to run before the capture.
    var opEnds: [Int]
    var slots: [UInt32] = []
    var ids: [UInt64] = []
    var sizes: [UInt64] = []
    var ptrs: [UInt64] = []
    /// UInt64.max: no site.
    var sites: [UInt64] = []
    /// (index into the arrays above, trace thread, holds).
    var roots: [(Int, Int, Int)] = []
    var liveBytes = 0
}

/// Follows the lowering; see the file comment.
public final class SnapshotPlanner {
    let wanted: [(record: Int, trigger: SnapshotTrigger)]
    var nextWanted = 0
    var plans: [SnapshotPlan] = []
    var siteNames: [(UInt64, String)] = []

    /// What changes per record lives in raw memory (no class-property access, so no dynamic
    /// exclusivity checks, on the lowering's per-record path).
    struct Counters {
        var thread = 0
        var live = 0
        var peakLive = 0
        var peakRecord = -1
        var records = 0
    }
    struct Slot {
        var id: UInt64 = 0
        var size: UInt64 = 0
        var ptrs: UInt64 = 0
        /// UInt64.max: no site.
        var site: UInt64 = .max
        /// Holds of the thread that has held the object longest (0: no holds)...
        var holds: UInt32 = 0
        var holdThread: UInt16 = 0
        var alive = false
        /// ...and whether `moreHolders` has other threads' holds on it.
        var multi = false
    }
    let counters: UnsafeMutablePointer<Counters>
    var slots: UnsafeMutablePointer<Slot>
    var capacity = 1024
    /// Other threads' holds, oldest first, for the few objects several threads hold.
    var moreHolders: [Int: [(thread: UInt16, holds: UInt32)]] = [:]
    /// --snapshot-every-gc: what a capture at an arbitrary op needs (GCObjectFacts), nil
    /// otherwise.
    let facts: GCObjectFacts?

    public var peakLive: Int { counters.pointee.peakLive }
    public var peakRecord: Int { counters.pointee.peakRecord }
    public var records: Int { counters.pointee.records }
    var thread: Int {
        get { counters.pointee.thread }
        set { counters.pointee.thread = newValue }
    }

    /// `records`: (record, trigger) pairs, in any order.
    /// `tracksObjects`: keep GCObjectFacts for captures at collections.
    init(wanted: [(record: Int, trigger: SnapshotTrigger)], tracksObjects: Bool = false) {
        self.wanted = wanted.sorted { $0.record < $1.record }
        facts = tracksObjects ? GCObjectFacts() : nil
        counters = .allocate(capacity: 1)
        counters.initialize(to: Counters())
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Slot(), count: capacity)
    }

    deinit {
        counters.deallocate()
        slots.deallocate()
    }

    @inline(never)
    func grow(_ slot: Int) {
        var c = capacity
        while c <= slot { c *= 2 }
        let bigger = UnsafeMutablePointer<Slot>.allocate(capacity: c)
        bigger.moveInitialize(from: slots, count: capacity)
        (bigger + capacity).initialize(repeating: Slot(), count: c - capacity)
        slots.deallocate()
        slots = bigger
        capacity = c
    }

    func declareSite(_ id: UInt64, _ name: String) { siteNames.append((id, name)) }

    func allocated(slot: UInt32, id: UInt64, size: UInt64, ptrs p: UInt64, site: UInt64?) {
        let s = Int(slot)
        if s >= capacity { grow(s) }
        let st = slots + s
        if st.pointee.multi { moreHolders[s] = nil }
        st.pointee = Slot(id: id, size: size, ptrs: p, site: site ?? .max, holds: 1,
                          holdThread: UInt16(counters.pointee.thread), alive: true, multi: false)
        counters.pointee.live += Int(size)
        if let facts { facts.allocated(slot: s, id: id, ptrs: p, site: site ?? .max) }
    }

    func held(slot: UInt32) {
        let s = Int(slot)
        let st = slots + s
        let t = UInt16(counters.pointee.thread)
        if st.pointee.holds == 0 {
            st.pointee.holdThread = t
            st.pointee.holds = 1
        } else if st.pointee.holdThread == t {
            st.pointee.holds += 1
        } else {
            st.pointee.multi = true
            if let k = moreHolders[s]?.firstIndex(where: { $0.thread == t }) {
                moreHolders[s]![k].holds += 1
            } else {
                moreHolders[s, default: []].append((t, 1))
            }
        }
    }

    func dropped(slot: UInt32) {
        let s = Int(slot)
        let st = slots + s
        let t = UInt16(counters.pointee.thread)
        if st.pointee.multi && st.pointee.holdThread != t,
           let k = moreHolders[s]?.firstIndex(where: { $0.thread == t }) {
            moreHolders[s]![k].holds -= 1
            if moreHolders[s]![k].holds == 0 { moreHolders[s]!.remove(at: k) }
            if moreHolders[s]!.isEmpty { moreHolders[s] = nil; st.pointee.multi = false }
            return
        }
        guard st.pointee.holds > 0 else { return }
        st.pointee.holds -= 1
        if st.pointee.holds == 0 && st.pointee.multi, var others = moreHolders[s], !others.isEmpty {
            // The next-oldest holder becomes the first.
            st.pointee.holdThread = others[0].thread
            st.pointee.holds = others[0].holds
            others.removeFirst()
            moreHolders[s] = others.isEmpty ? nil : others
            st.pointee.multi = !others.isEmpty
        }
    }

    func resized(slot: UInt32, size: UInt64) {
        let st = slots + Int(slot)
        counters.pointee.live += Int(size) - Int(st.pointee.size)
        st.pointee.size = size
    }

    func died(slot: UInt32) {
        let s = Int(slot)
        let st = slots + s
        st.pointee.alive = false
        st.pointee.holds = 0
        if st.pointee.multi { moreHolders[s] = nil; st.pointee.multi = false }
        counters.pointee.live -= Int(st.pointee.size)
    }

    /// Called after each record (and its deaths); `opEnds` is asked only when a plan is cut.
    func endOfRecord(_ record: Int, opEnds: () -> [Int]) {
        let c = counters
        c.pointee.records = record + 1
        if c.pointee.live > c.pointee.peakLive {
            c.pointee.peakLive = c.pointee.live
            c.pointee.peakRecord = record
        }
        if nextWanted < wanted.count { cutDue(record, opEnds) }
        if let facts { facts.endOfRecord(record, ends: opEnds(), thread: c.pointee.thread) }
    }

    @inline(never)
    func cutDue(_ record: Int, _ opEnds: () -> [Int]) {
        while nextWanted < wanted.count && wanted[nextWanted].record <= record {
            if wanted[nextWanted].record == record { cut(record, wanted[nextWanted].trigger, opEnds()) }
            nextWanted += 1
        }
    }

    func cut(_ record: Int, _ trigger: SnapshotTrigger, _ ends: [Int]) {
        var plan = SnapshotPlan(record: record, trigger: trigger, opEnds: ends)
        plan.liveBytes = counters.pointee.live
        for s in 0..<capacity where slots[s].alive {
            let st = slots[s]
            let k = plan.slots.count
            plan.slots.append(UInt32(s)); plan.ids.append(st.id); plan.sizes.append(st.size)
            plan.ptrs.append(st.ptrs); plan.sites.append(st.site)
            if st.holds > 0 { plan.roots.append((k, Int(st.holdThread), Int(st.holds))) }
            if st.multi, let others = moreHolders[s] { for h in others { plan.roots.append((k, Int(h.thread), Int(h.holds))) } }
        }
        plans.append(plan)
    }
}

/// Per plan, a barrier for the workers; the last to arrive captures. Shared by the workers of
/// one replay.
public final class ReplayPauses: @unchecked Sendable {
    let workers: Int
    let ends: [[Int]]
    let arrived: UnsafeMutablePointer<Atomic<Int>>
    let released: UnsafeMutablePointer<Atomic<Int>>
    /// (plan, worker, table): runs on the last worker to arrive, every other worker waiting;
    /// returns the work to do after they are released.
    let capture: (Int, Int, UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> (() -> Void)
    /// Called by each waiting worker (with its index) while it waits: the collector's workers
    /// are mutators and must keep answering safepoints. Nil for a manual heap.
    let poll: ((Int) -> Void)?

    init(workers: Int, ends: [[Int]], poll: ((Int) -> Void)? = nil,
         capture: @escaping (Int, Int, UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> (() -> Void)) {
        self.workers = workers
        self.ends = ends
        self.capture = capture
        self.poll = poll
        arrived = .allocate(capacity: max(ends.count, 1))
        released = .allocate(capacity: max(ends.count, 1))
        for k in 0..<max(ends.count, 1) {
            (arrived + k).initialize(to: Atomic(0))
            (released + k).initialize(to: Atomic(0))
        }
    }

    deinit {
        arrived.deallocate()
        released.deallocate()
    }

    /// Worker `worker` has run its ops up to plan k's end. Returns false if the replay was
    /// aborted while waiting.
    func arrive(_ k: Int, worker: Int, table: UnsafeMutablePointer<UnsafeMutableRawPointer?>, aborted: () -> Bool) -> Bool {
        let before = arrived[k].add(1, ordering: .acquiringAndReleasing).oldValue
        if before == workers - 1 {
            let after = capture(k, worker, table)
            released[k].store(1, ordering: .releasing)
            after()
            return true
        }
        while released[k].load(ordering: .acquiring) == 0 {
            if aborted() { return false }
            poll?(worker)
            sched_yield()
        }
        return true
    }
}

extension TypedWorkerThread {
    /// The stream in segments, pausing at each plan's barrier (no RSS sampling: a replay with
    /// snapshots is not a measurement).
    func replayPausing<S: ReplaySynchronization>(_ allocator: inout B.Allocator, _ sync: S,
                                                 _ result: UnsafeMutablePointer<WorkerResult>, _ pauses: ReplayPauses) {
        guard let base = ops.baseAddress else { return }
        var done = 0
        for k in 0..<pauses.ends.count {
            let end = pauses.ends[k][worker]
            if done < end { done = allocator.runOps(sync, ops: base, from: done, to: end, table: table) }
            if done != end { break }
            if !pauses.arrive(k, worker: worker, table: table, aborted: { board?.aborted ?? false }) {
                result.pointee.failedAt = done
                return
            }
        }
        if done == (pauses.ends.last?[worker] ?? 0) && done < ops.count {
            done = allocator.runOps(sync, ops: base, from: done, to: ops.count, table: table)
        }
        if done != ops.count {
            sync.abort()
            result.pointee.failedAt = done
        }
    }
}

/// HeapLab's allocator with pointer-bearing objects zeroed (see the file comment).
public final class SnapshotHeapBackend: ReplayBackend {
    public struct Allocator: ReplayAllocator {
        let cache: ThreadCache

        @inline(__always)
        public mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
            cache.allocate(size: size, noscan: noscan, zeroed: !noscan)
        }

        @inline(__always)
        public mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool) {
            cache.free(pointer)
        }

        @inline(__always)
        public mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
            guard let p = cache.allocate(size: newSize, noscan: true) else { return nil }
            p.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
            cache.free(pointer)
            return p
        }
    }

    public let heap: Heap

    public init() throws(ReplayError) {
        do {
            heap = try Heap(configuration: HeapConfiguration(onFault: .record))
        } catch {
            throw ReplayError("cannot create the HeapLab heap: \(error)")
        }
    }

    public func makeAllocator(worker: Int) throws(ReplayError) -> Allocator { Allocator(cache: heap.makeThreadCache()) }
    public func releaseAllocator(_ allocator: inout Allocator, worker: Int) { heap.releaseThreadCache(allocator.cache) }
    public func statistics() -> [(String, Int)] {
        let s = heap.statistics()
        return [("heap_in_use", s.heapInUse), ("heap_idle", s.heapIdle), ("heap_released", s.heapReleased),
                ("heap_sys", s.heapSys), ("metadata_bytes", s.metadataBytes), ("live_objects", s.liveObjects),
                ("live_bytes", s.liveBytes)]
    }
    public func failureReason() -> String? { heap.lastError.map { "\($0)" } }
    public func problemAfterReplay() -> String? {
        heap.faults.first.map { "the HeapLab heap reported \(heap.faults.count) fault(s), the first: \($0)" }
    }
}

/// A snapshot written during a replay.
public struct WrittenSnapshot: Equatable, Sendable {
    public var path: String
    public var record: Int
    public var trigger: SnapshotTrigger
    public var objects: Int
    public var edges: Int
    public var pauseNanos: UInt64
    /// Bytes of the file, and how long writing it took.
    public var bytes: Int
    public var writeNanos: UInt64
    /// The collection it was taken in (the collector only; 0 for a manual heap).
    public var gcCycle: Int = 0
}

public enum HeapCapture {
    /// The allocator's size-class table in snapshot form.
    public static var sizeClasses: [SnapshotSizeClass] {
        SizeClasses.table.map { SnapshotSizeClass(size: $0.size, pages: $0.pages) }
    }

    /// Captures `heap` with the given live objects. The world must be stopped: no thread may
    /// allocate, free or store while this runs. `objects` are (pointer, trace ID, requested
    /// size, pointer slots, site or nil); `roots` are (index into objects, thread, holds).
    public static func capture(heap: Heap, info: SnapshotInfo, sites: [(UInt64, String)],
                               objects: [(UnsafeRawPointer, UInt64, UInt64, UInt64, UInt64?)],
                               roots: [(Int, Int, Int)]) -> HeapSnapshot {
        var b = SnapshotBuilder(info: info, sizeClasses: sizeClasses)
        for (id, name) in sites { b.addSite(id: id, name: name) }
        b.reserveObjects(objects.count)
        for (p, id, size, ptrs, site) in objects {
            let cls = heap.objectInfo(p)?.sizeClass ?? 0
            b.addObject(address: UInt64(UInt(bitPattern: p)), size: size, sizeClass: cls, pointerSlots: ptrs, site: site, traceID: id)
        }
        for (k, thread, holds) in roots { b.addRoot(object: k, thread: thread, holds: holds) }
        addHeapState(heap, &b)
        return b.finish { UnsafeRawPointer(bitPattern: UInt($0))!.load(as: UInt64.self) }
    }

    /// The heap's arenas. They are mapped from the bottom of the reservation, 64 MiB at a time
    /// (docs/allocator.md), so the mapped part is heapSys bytes from the base.
    static func addArenas(_ heap: Heap, _ stats: HeapStatistics, _ b: inout SnapshotBuilder) {
        let arena = 64 << 20
        var start = UInt64(heap.reservedRange.lowerBound)
        for _ in 0..<(stats.heapSys / arena) {
            b.addArena(start: start, bytes: UInt64(arena))
            start += UInt64(arena)
        }
    }

    /// Arenas, spans and statistics of `heap` (world stopped).
    static func addHeapState(_ heap: Heap, _ b: inout SnapshotBuilder) {
        let stats = heap.statistics()
        addArenas(heap, stats, &b)
        heap.forEachSpan { span in
            b.addSpan(start: UInt64(span.start), pages: span.pages, sizeClass: span.sizeClass, noscan: span.noscan,
                      cached: span.cached, needzero: span.needzero, elemSize: span.elemSize, slots: max(span.slots, 1),
                      allocated: span.allocated)
        }
        for (name, value) in [("heap_sys", stats.heapSys), ("heap_in_use", stats.heapInUse), ("heap_idle", stats.heapIdle),
                              ("heap_released", stats.heapReleased), ("metadata_bytes", stats.metadataBytes),
                              ("span_metadata_bytes", stats.spanMetadataBytes), ("mcache_metadata_bytes", stats.mcacheMetadataBytes),
                              ("bitmap_bytes", stats.bitmapBytes), ("page_map_bytes", stats.pageMapBytes),
                              ("live_objects", stats.liveObjects), ("live_bytes", stats.liveBytes),
                              ("total_allocs", stats.totalAllocs), ("total_frees", stats.totalFrees),
                              ("tiny_allocs", stats.tinyAllocs), ("tiny_blocks", stats.tinyBlocks),
                              ("large_allocs", stats.largeAllocs), ("large_frees", stats.largeFrees),
                              ("large_live_bytes", stats.largeLiveBytes)] {
            b.addStatistic(name, value)
        }
        for c in stats.perClass where c.allocations > 0 || c.spans > 0 {
            b.addClassStatistics(SnapshotClassStatistics(
                sizeClass: c.sizeClass, allocations: UInt64(max(c.allocations, 0)), frees: UInt64(max(c.frees, 0)),
                liveObjects: UInt64(max(c.liveObjects, 0)), spans: UInt64(max(c.spans, 0))))
        }
    }
}

public enum SnapshotReplay {
    /// File name for a snapshot of `trace` at `record`.
    static func fileName(trace: String, record: Int, trigger: SnapshotTrigger) -> String {
        var base = trace.split(separator: "/").last.map(String.init) ?? "trace"
        for ext in [".htrace", ".hbtrace"] where base.hasSuffix(ext) { base.removeLast(ext.count) }
        return trigger == .peak ? "\(base).peak.r\(record).hsnap" : "\(base).r\(record).hsnap"
    }

    /// File name for a snapshot of `trace` at collection `cycle`.
    static func fileName(trace: String, cycle: Int) -> String {
        var base = trace.split(separator: "/").last.map(String.init) ?? "trace"
        for ext in [".htrace", ".hbtrace"] where base.hasSuffix(ext) { base.removeLast(ext.count) }
        return "\(base).gc\(cycle).hsnap"
    }

    /// Lowers `trace`, replays it in this process and writes a snapshot at each requested
    /// point into `request.directory`: on HeapLab's allocator (pointer-bearing objects
    /// zeroed), or with `allocator: .gc` on the collector (see "The collector's heap" above).
    public static func replay(trace: String, threads: Int?, request: SnapshotRequest, allocator: AllocatorKind = .heaplab,
                              gc: GCReplayOptions = GCReplayOptions()) throws -> (ReplayReport, [WrittenSnapshot]) {
        if allocator == .gc { return try replayCollector(trace: trace, threads: threads, request: request, options: gc) }
        guard allocator == .heaplab, !request.everyGC else {
            throw ReplayError("heap snapshots need --allocator heaplab or gc; --snapshot-every-gc needs gc")
        }
        let start = ReplaySystem.monotonicNanos()
        var wanted = Set(request.records).sorted().map { (record: $0, trigger: SnapshotTrigger.record) }
        if request.atPeak {
            // The peak is known only at the end of a lowering: find it first.
            let finder = SnapshotPlanner(wanted: [])
            _ = try TraceLowering.lower(path: trace, workers: threads, snapshots: finder)
            if finder.peakRecord >= 0 { wanted.append((finder.peakRecord, .peak)) }
        }
        let planner = SnapshotPlanner(wanted: wanted)
        let program = try TraceLowering.lower(path: trace, workers: threads, snapshots: planner)
        for r in request.records where r >= planner.records {
            throw InputError(file: trace, location: .wholeFile,
                             message: "--snapshot-at \(r): the trace has records 0...\(planner.records - 1) (header = record 0)")
        }
        let loadSeconds = Double(ReplaySystem.monotonicNanos() - start) / 1e9
        let plans = planner.plans
        let sites = planner.siteNames
        let backend = try SnapshotHeapBackend()
        let threadCount = program.info.traceThreads
        var written = [WrittenSnapshot?](repeating: nil, count: plans.count)
        var failure: InputError? = nil
        let resultLock = PthreadLocked(())
        let pauses = ReplayPauses(workers: program.info.workers, ends: plans.map(\.opEnds)) { k, _, table in
            let t0 = ReplaySystem.monotonicNanos()
            let plan = plans[k]
            var info = SnapshotInfo()
            info.trace = trace
            info.record = plan.record
            info.trigger = plan.trigger
            info.threads = threadCount
            info.unixTime = UInt64(time(nil))
            var objects: [(UnsafeRawPointer, UInt64, UInt64, UInt64, UInt64?)] = []
            objects.reserveCapacity(plan.slots.count)
            for i in 0..<plan.slots.count {
                let p = UnsafeRawPointer(table[Int(plan.slots[i])]!)
                objects.append((p, plan.ids[i], plan.sizes[i], plan.ptrs[i], plan.sites[i] == .max ? nil : plan.sites[i]))
            }
            var snapshot = HeapCapture.capture(heap: backend.heap, info: info, sites: sites, objects: objects, roots: plan.roots)
            let pause = UInt64(ReplaySystem.monotonicNanos() - t0)
            snapshot.info.pauseNanos = pause
            return {
                let path = request.directory + "/" + fileName(trace: trace, record: plan.record, trigger: plan.trigger)
                let w0 = ReplaySystem.monotonicNanos()
                do {
                    let bytes = try snapshot.write(to: path)
                    let entry = WrittenSnapshot(path: path, record: plan.record, trigger: plan.trigger,
                                                objects: snapshot.objectCount, edges: snapshot.edgeCount, pauseNanos: pause,
                                                bytes: bytes, writeNanos: UInt64(ReplaySystem.monotonicNanos() - w0))
                    resultLock.withLock { _ in written[k] = entry }
                } catch let e as InputError {
                    resultLock.withLock { _ in if failure == nil { failure = e } }
                } catch {}
            }
        }
        let (measurement, _) = try ReplayRunner.run(program, makeBackend: { () throws(ReplayError) in backend }, pauses: pauses)
        if let failure { throw failure }
        let report = ReplayReport(allocator: .heaplab, trace: trace, loadSeconds: loadSeconds, program: program.info,
                                  measurement: measurement)
        return (report, written.compactMap { $0 })
    }
}

// MARK: - The collector's heap

/// What the lowering knows that a capture at an arbitrary op of a collector replay needs
/// (`--snapshot-every-gc`): per allocation ordinal the trace object's ID, pointer slots and
/// site; per slot its occupants in allocation order (a chain through `Fact.next`, head in
/// `slotFirst`); per worker the op count at the end of each record that ran ops on it, and
/// the trace thread of the first such record (roots are named by it).
///
/// Why occupants per slot work at replay time: a slot is reused only after its object died,
/// on the worker whose record freed it, and the new allocation waits for every op that
/// touched the slot (TraceLowering's `depend`), so allocations into one slot run in the
/// lowering's order on any number of workers: the replay's n-th allocation into slot s is
/// the lowering's n-th.
final class GCObjectFacts {
    struct Fact {
        var id: UInt64
        var ptrs: UInt64
        /// UInt64.max: no site.
        var site: UInt64
        /// Next ordinal allocated into the same slot, -1: none.
        var next: Int
    }
    var facts: UnsafeMutablePointer<Fact>
    var count = 0
    var capacity = 1024
    var slotFirst: UnsafeMutablePointer<Int>
    var slotLast: UnsafeMutablePointer<Int>
    var slotCapacity = 1024
    var recordEnds: [[(opEnd: Int, record: Int)]] = []
    var lastEnds: [Int] = []
    var threadOfWorker: [Int] = []

    init() {
        facts = .allocate(capacity: capacity)
        slotFirst = .allocate(capacity: slotCapacity)
        slotFirst.initialize(repeating: -1, count: slotCapacity)
        slotLast = .allocate(capacity: slotCapacity)
        slotLast.initialize(repeating: -1, count: slotCapacity)
    }

    deinit {
        facts.deallocate()
        slotFirst.deallocate()
        slotLast.deallocate()
    }

    func allocated(slot: Int, id: UInt64, ptrs: UInt64, site: UInt64) {
        if count == capacity {
            let bigger = UnsafeMutablePointer<Fact>.allocate(capacity: capacity * 2)
            bigger.moveInitialize(from: facts, count: count)
            facts.deallocate()
            facts = bigger
            capacity *= 2
        }
        if slot >= slotCapacity {
            var c = slotCapacity
            while c <= slot { c *= 2 }
            for p in [\GCObjectFacts.slotFirst, \GCObjectFacts.slotLast] {
                let bigger = UnsafeMutablePointer<Int>.allocate(capacity: c)
                bigger.moveInitialize(from: self[keyPath: p], count: slotCapacity)
                (bigger + slotCapacity).initialize(repeating: -1, count: c - slotCapacity)
                self[keyPath: p].deallocate()
                self[keyPath: p] = bigger
            }
            slotCapacity = c
        }
        (facts + count).initialize(to: Fact(id: id, ptrs: ptrs, site: site, next: -1))
        if slotLast[slot] >= 0 { facts[slotLast[slot]].next = count } else { slotFirst[slot] = count }
        slotLast[slot] = count
        count += 1
    }

    func endOfRecord(_ record: Int, ends: [Int], thread: Int) {
        if lastEnds.count < ends.count {
            lastEnds += [Int](repeating: 0, count: ends.count - lastEnds.count)
            recordEnds += [[(opEnd: Int, record: Int)]](repeating: [], count: ends.count - recordEnds.count)
            threadOfWorker += [Int](repeating: -1, count: ends.count - threadOfWorker.count)
        }
        for w in 0..<ends.count where ends[w] != lastEnds[w] {
            recordEnds[w].append((ends[w], record))
            lastEnds[w] = ends[w]
            if threadOfWorker[w] < 0 { threadOfWorker[w] = thread }
        }
    }

    /// The last record every record up to which had run on every worker, given each worker's
    /// op count (`positions`; a worker at its stream's end has run all of its records).
    func completedRecord(positions: [Int], records: Int) -> Int {
        var result = records - 1
        for w in 0..<min(positions.count, recordEnds.count) {
            let list = recordEnds[w]
            // First record whose ops on w end after the worker's position: not complete.
            var lo = 0, hi = list.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if list[mid].opEnd <= positions[w] { lo = mid + 1 } else { hi = mid }
            }
            if lo < list.count { result = min(result, list[lo].record - 1) }
        }
        return result
    }
}

/// One object the collector replay allocated (or a resized copy): its address, the
/// allocation ordinal of its trace object, its requested size.
struct GCLogEntry {
    var address: UInt
    var ordinal: Int
    var size: UInt64
}

/// One worker's allocations since the last capture, and how many of its ops have run.
/// Written only by the worker (in the op loop), read and emptied by the capture with the
/// world stopped.
struct GCWorkerLog {
    var entries: UnsafeMutablePointer<GCLogEntry>
    var count = 0
    var capacity: Int
    var position = 0
}

/// The op loop's side of `--snapshot-every-gc` (GCBackend.swift's replayGCOps is generic over
/// it; `NoGCLog` for every other replay compiles to nothing).
protocol GCOpLog {
    /// About to run op `i` (ops before it have run).
    func position(_ i: Int)
    /// gcAlloc into `slot` returned `p`.
    func allocated(slot: Int, _ p: UnsafeMutableRawPointer, size: Int)
    /// gcRealloc of the object in `slot` made the copy `p`.
    func moved(slot: Int, _ p: UnsafeMutableRawPointer, size: Int)
}

struct NoGCLog: GCOpLog {
    @inline(__always) func position(_ i: Int) {}
    @inline(__always) func allocated(slot: Int, _ p: UnsafeMutableRawPointer, size: Int) {}
    @inline(__always) func moved(slot: Int, _ p: UnsafeMutableRawPointer, size: Int) {}
}

struct SnapshotGCLog: GCOpLog {
    let log: UnsafeMutablePointer<GCWorkerLog>
    /// Per slot, the ordinal of the object it holds at this point of the replay (-1: none yet).
    let current: UnsafeMutablePointer<Int>
    let first: UnsafeMutablePointer<Int>
    let facts: UnsafeMutablePointer<GCObjectFacts.Fact>

    @inline(__always) func position(_ i: Int) { log.pointee.position = i }

    @inline(__always) func allocated(slot: Int, _ p: UnsafeMutableRawPointer, size: Int) {
        let now = current[slot]
        let ordinal = now < 0 ? first[slot] : facts[now].next
        current[slot] = ordinal
        append(p, ordinal, size)
    }

    @inline(__always) func moved(slot: Int, _ p: UnsafeMutableRawPointer, size: Int) { append(p, current[slot], size) }

    @inline(__always) func append(_ p: UnsafeMutableRawPointer, _ ordinal: Int, _ size: Int) {
        let l = log
        // Capacity is the worker's count of gcAlloc and gcRealloc ops: never exceeded.
        guard l.pointee.count < l.pointee.capacity else { return }
        l.pointee.entries[l.pointee.count] = GCLogEntry(address: UInt(bitPattern: p), ordinal: ordinal, size: UInt64(size))
        l.pointee.count &+= 1
    }
}

/// Snapshots of one collector replay. Two kinds of capture, both inside the collector's own
/// stop-the-world at mark termination (`GCConfiguration.onMarkComplete`, on the coordinator
/// thread), never from a pause of our own:
///
///   record / peak   the workers stop at the plan's op counts (ReplayPauses), polling so the
///                   collector can stop them; the last to arrive asks for a full collection
///                   (Collector.collect) and waits in it. The capture runs at the mark
///                   termination of the first cycle whose mark began after every worker had
///                   stopped (cycle n+1 if the collector was off when the last worker
///                   arrived, else n+2: while that worker runs, no mark can start or end,
///                   since both need it parked). With no mutation during that mark, the
///                   marked set is exactly what the roots reach at the record. Objects come
///                   from the plan (the trace's live set, with its holds per thread, the same
///                   as `--allocator heaplab` at the same record), the heap's state from the
///                   spans. The extra cycle is real: it counts in the gc figures.
///   every gc        at every cycle's mark termination: the marked objects (what this cycle
///                   keeps). Their trace identity comes from the workers' allocation logs
///                   (SnapshotGCLog) and the survivors of the previous capture: an address is
///                   reused only after a sweep frees it, and every sweep follows a capture,
///                   so `survivors ∪ logs` names every allocated object exactly once. Marked
///                   entries become the new survivors; unmarked ones are garbage the sweep
///                   frees. Roots are the mutators' root tables, named by the trace thread
///                   the worker runs (with fewer workers than trace threads, the first it ran).
///
/// Why not pause the workers and read the heap then: the collector's threads keep running (mark
/// workers set mark bits, the sweeper rewrites allocation bits and frees spans, the coordinator
/// may stop the world itself), so a heap walk would race them, and a second stopper would race
/// the coordinator's own stop-the-world. At mark termination the sweep is finished, no mark
/// worker is in a slice, every mutator is parked, and the mark bits are complete.
///
/// The capture runs with the world stopped; the file is written after the world restarts
/// (every gc: on the coordinator thread, from `onCycle`; record: on the worker that asked).
/// Its duration is taken out of the gc figures' pauses (GCBackend.swift) and reported as the
/// snapshot's pause.
public final class GCSnapshotSession: @unchecked Sendable {
    let everyGC: Bool
    let facts: GCObjectFacts?
    let plans: [SnapshotPlan]
    let sites: [(UInt64, String)]
    let trace: String
    let directory: String
    let traceThreads: Int
    let records: Int
    let workers: Int
    let streamLengths: [Int]
    let options: GCReplayOptions
    let logs: UnsafeMutablePointer<GCWorkerLog>
    let current: UnsafeMutablePointer<Int>
    let slotCount: Int
    /// Marked objects of the last capture, in address order (coordinator thread only).
    var survivors: [GCLogEntry] = []

    struct Shared {
        var mutators: [Mutator?]
        /// A record capture waiting for its cycle: (plan, cycle, the pointer table's address).
        var pendingPlan: (plan: Int, cycle: Int, table: UInt)? = nil
        var planSnapshots: [Int: HeapSnapshot] = [:]
        /// Every-gc snapshots for the writer thread (cycle 0 until the cycle has ended).
        var toWrite: [(snapshot: HeapSnapshot, cycle: Int)] = []
        var writerStarted = false
        var stopWriter = false
        var writer: UInt? = nil
        var written: [WrittenSnapshot] = []
        var failure: InputError? = nil
        /// Seconds each cycle's mark termination spent capturing.
        var captureSeconds: [Int: Double] = [:]
        var ended = false
    }
    let shared: PthreadLocked<Shared>

    init(program: ReplayProgram, planner: SnapshotPlanner, trace: String, request: SnapshotRequest, options: GCReplayOptions) {
        everyGC = request.everyGC
        facts = planner.facts
        plans = planner.plans
        sites = planner.siteNames
        self.trace = trace
        directory = request.directory
        traceThreads = program.info.traceThreads
        records = planner.records
        workers = program.info.workers
        streamLengths = program.info.streams.map(\.opCount)
        self.options = options
        slotCount = max(program.info.slotCount, 1)
        shared = PthreadLocked(Shared(mutators: [Mutator?](repeating: nil, count: program.info.workers)))
        logs = .allocate(capacity: max(workers, 1))
        for w in 0..<workers {
            // Room for every allocation the worker makes (only with --snapshot-every-gc).
            var n = 0
            if everyGC {
                let ops = program.ops(worker: w)
                for op in ops where op.kind == ReplayOp.gcAlloc || op.kind == ReplayOp.gcRealloc { n += 1 }
            }
            (logs + w).initialize(to: GCWorkerLog(entries: .allocate(capacity: max(n, 1)), capacity: n))
        }
        current = .allocate(capacity: slotCount)
        current.initialize(repeating: -1, count: slotCount)
    }

    deinit {
        for w in 0..<workers { logs[w].entries.deallocate() }
        logs.deallocate()
        current.deallocate()
    }

    /// The op loop's log for `worker` (nil unless every collection is captured).
    func opLog(worker: Int) -> SnapshotGCLog? {
        guard everyGC, let facts else { return nil }
        return SnapshotGCLog(log: logs + worker, current: current, first: facts.slotFirst, facts: facts.facts)
    }

    func register(worker: Int, mutator: Mutator) { shared.withLock { $0.mutators[worker] = mutator } }

    /// The replay is over (a worker is about to unregister and drop its roots): no more captures.
    func replayEnded() { shared.withLock { $0.ended = true } }

    func poll(worker: Int) { shared.withLock { $0.mutators[worker] }?.poll() }

    func captureSeconds(cycle: Int) -> Double { shared.withLock { $0.captureSeconds[cycle] ?? 0 } }

    // MARK: record captures

    /// On the last worker to reach plan k (the others wait, polling): runs a collection and
    /// returns the file write for after the release.
    func captureAtRecord(_ k: Int, worker: Int, table: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                         collector: Collector) -> () -> Void {
        guard let mutator = shared.withLock({ $0.mutators[worker] }) else { return {} }
        // Stable while this (registered, running) mutator does not poll: see the type comment.
        let state = collector.snapshotState
        let cycle = state.completedCycles + (state.phase == 0 ? 1 : 2)
        let tableAddress = UInt(bitPattern: table)
        shared.withLock { $0.pendingPlan = (k, cycle, tableAddress) }
        collector.collect(from: mutator)
        let snapshot = shared.withLock { s -> HeapSnapshot? in
            s.pendingPlan = nil
            return s.planSnapshots.removeValue(forKey: k)
        }
        guard let snapshot else { return {} }
        let plan = plans[k]
        return { self.write(snapshot, name: SnapshotReplay.fileName(trace: self.trace, record: plan.record, trigger: plan.trigger), cycle: cycle) }
    }

    // MARK: at mark termination (world stopped)

    /// GCConfiguration.onMarkComplete.
    func markComplete(_ collector: Collector, cycle: Int) {
        let t0 = ReplaySystem.monotonicNanos()
        let (pending, ended) = shared.withLock { ($0.pendingPlan, $0.ended) }
        var made: [HeapSnapshot] = []
        if everyGC && !ended { made.append(captureMarked(collector, cycle: cycle)) }
        var planned: (Int, HeapSnapshot)? = nil
        if let pending, pending.cycle == cycle,
           let table = UnsafeMutablePointer<UnsafeMutableRawPointer?>(bitPattern: pending.table) {
            planned = (pending.plan, capturePlan(collector, pending.plan, table))
        }
        let pause = UInt64(ReplaySystem.monotonicNanos() - t0)
        guard !made.isEmpty || planned != nil else { return }
        for i in 0..<made.count { made[i].info.pauseNanos = pause }
        planned?.1.info.pauseNanos = pause
        shared.withLock {
            $0.captureSeconds[cycle] = Double(pause) * 1e-9
            $0.toWrite += made.map { (snapshot: $0, cycle: 0) }
            if let planned { $0.planSnapshots[planned.0] = planned.1 }
        }
    }

    /// GCConfiguration.onCycle (world running): hands this cycle's every-gc snapshot to the
    /// writer thread, so that the coordinator can start the next cycle on time.
    func cycleEnded(_ cycle: Int) {
        let start = shared.withLock { s -> Bool in
            for k in s.toWrite.indices where s.toWrite[k].cycle == 0 { s.toWrite[k].cycle = cycle }
            defer { s.writerStarted = true }
            return !s.writerStarted && !s.toWrite.isEmpty
        }
        if start {
            let thread = spawnSnapshotWriter { [self] in writerLoop() }
            shared.withLock { $0.writer = thread }
        }
    }

    /// The writer thread: writes queued every-gc snapshots until `stopWriter`.
    func writerLoop() {
        while true {
            let (batch, stop) = shared.withLock { s -> ([(snapshot: HeapSnapshot, cycle: Int)], Bool) in
                let ready = s.toWrite.filter { $0.cycle > 0 }
                s.toWrite.removeAll { $0.cycle > 0 }
                return (ready, s.stopWriter)
            }
            for item in batch {
                write(item.snapshot, name: SnapshotReplay.fileName(trace: trace, cycle: item.cycle), cycle: item.cycle)
            }
            if batch.isEmpty {
                if stop { return }
                usleep(500)
            }
        }
    }

    /// After the collector has stopped: lets the writer finish the queue and joins it.
    func finishWriting() {
        let writer = shared.withLock { s -> UInt? in
            s.stopWriter = true
            return s.writer
        }
        if let writer, writer != 0 { pthread_join(pthread_t(writer), nil) }
        shared.withLock { $0.writer = nil }
        writerLoop()   // whatever is left (all of it if the thread could not start)
    }

    func write(_ snapshot: HeapSnapshot, name: String, cycle: Int) {
        let path = directory + "/" + name
        let w0 = ReplaySystem.monotonicNanos()
        do {
            let bytes = try snapshot.write(to: path)
            let entry = WrittenSnapshot(path: path, record: snapshot.info.record, trigger: snapshot.info.trigger,
                                        objects: snapshot.objectCount, edges: snapshot.edgeCount, pauseNanos: snapshot.info.pauseNanos,
                                        bytes: bytes, writeNanos: UInt64(ReplaySystem.monotonicNanos() - w0), gcCycle: cycle)
            shared.withLock { $0.written.append(entry) }
        } catch {
            shared.withLock { if $0.failure == nil { $0.failure = error } }
        }
    }

    func info(record: Int, trigger: SnapshotTrigger) -> SnapshotInfo {
        var info = SnapshotInfo()
        info.allocator = AllocatorKind.gc.rawValue
        info.trace = trace
        info.record = record
        info.trigger = trigger
        info.threads = traceThreads
        info.unixTime = UInt64(time(nil))
        return info
    }

    /// Every marked object, from the survivors and the logs (see the type comment).
    func captureMarked(_ collector: Collector, cycle: Int) -> HeapSnapshot {
        guard let facts else { return HeapSnapshot() }
        var positions: [Int] = []
        var fresh: [GCLogEntry] = []
        for w in 0..<workers {
            positions.append(logs[w].position)
            fresh.append(contentsOf: UnsafeBufferPointer(start: logs[w].entries, count: logs[w].count))
            logs[w].count = 0
        }
        fresh.sort { $0.address < $1.address }
        // Merge with the survivors (both sorted); a fresh entry wins over an old one at the
        // same address (cannot happen without a sweep in between; kept safe all the same).
        var merged: [GCLogEntry] = []
        merged.reserveCapacity(survivors.count + fresh.count)
        var a = 0, b = 0
        while a < survivors.count || b < fresh.count {
            if b == fresh.count || (a < survivors.count && survivors[a].address < fresh[b].address) {
                merged.append(survivors[a]); a += 1
            } else {
                if a < survivors.count && survivors[a].address == fresh[b].address { a += 1 }
                if let last = merged.last, last.address == fresh[b].address { merged.removeLast() }
                merged.append(fresh[b]); b += 1
            }
        }
        fresh = []
        var kept: [GCLogEntry] = []
        kept.reserveCapacity(merged.count)
        for e in merged where collector.isMarkedForSnapshot(UnsafeRawPointer(bitPattern: e.address)!) { kept.append(e) }
        merged = []
        survivors = kept

        var b2 = SnapshotBuilder(info: info(record: facts.completedRecord(positions: positions, records: records), trigger: .gc),
                                 sizeClasses: HeapCapture.sizeClasses)
        for (id, name) in sites { b2.addSite(id: id, name: name) }
        b2.reserveObjects(kept.count)
        var unknown = 0
        for e in kept {
            let p = UnsafeRawPointer(bitPattern: e.address)!
            let cls = collector.heap.objectInfo(p)?.sizeClass ?? 0
            if e.ordinal >= 0 && e.ordinal < facts.count {
                let f = facts.facts[e.ordinal]
                b2.addObject(address: UInt64(e.address), size: max(e.size, 1), sizeClass: cls, pointerSlots: f.ptrs,
                             site: f.site == .max ? nil : f.site, traceID: f.id)
            } else {
                unknown += 1
                b2.addObject(address: UInt64(e.address), size: max(e.size, 1), sizeClass: cls, pointerSlots: 0, site: nil, traceID: 0)
            }
        }
        // Roots: each mutator's holds, found among the kept objects by address.
        let mutators = shared.withLock { $0.mutators }
        var lostRoots = 0
        for w in 0..<workers {
            let thread = w < facts.threadOfWorker.count && facts.threadOfWorker[w] >= 0 ? facts.threadOfWorker[w] : w
            mutators[w]?.forEachRoot { p, holds in
                let addr = UInt(bitPattern: p)
                var lo = 0, hi = kept.count
                while lo < hi {
                    let mid = (lo + hi) >> 1
                    if kept[mid].address < addr { lo = mid + 1 } else { hi = mid }
                }
                if lo < kept.count && kept[lo].address == addr {
                    b2.addRoot(object: lo, thread: thread, holds: holds)
                } else {
                    lostRoots += 1
                }
            }
        }
        var snapshot = finishCollectorSnapshot(&b2, collector, forced: false)
        snapshot.statistics.append((name: "gc_objects_without_trace_identity", value: Int64(unknown)))
        snapshot.statistics.append((name: "gc_roots_not_marked", value: Int64(lostRoots)))
        return snapshot
    }

    /// Plan k's objects (the trace's live set at its record), in the forced cycle.
    func capturePlan(_ collector: Collector, _ k: Int, _ table: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> HeapSnapshot {
        let plan = plans[k]
        var b = SnapshotBuilder(info: info(record: plan.record, trigger: plan.trigger), sizeClasses: HeapCapture.sizeClasses)
        for (id, name) in sites { b.addSite(id: id, name: name) }
        b.reserveObjects(plan.slots.count)
        var unmarked = 0
        for i in 0..<plan.slots.count {
            guard let raw = table[Int(plan.slots[i])] else { continue }
            let p = UnsafeRawPointer(raw)
            if !collector.isMarkedForSnapshot(p) { unmarked += 1 }
            b.addObject(address: UInt64(UInt(bitPattern: p)), size: plan.sizes[i], sizeClass: collector.heap.objectInfo(p)?.sizeClass ?? 0,
                        pointerSlots: plan.ptrs[i], site: plan.sites[i] == .max ? nil : plan.sites[i], traceID: plan.ids[i])
        }
        for (k, thread, holds) in plan.roots { b.addRoot(object: k, thread: thread, holds: holds) }
        var snapshot = finishCollectorSnapshot(&b, collector, forced: true)
        snapshot.statistics.append((name: "gc_live_objects_not_marked", value: Int64(unmarked)))
        return snapshot
    }

    /// Arenas, spans (allocation bits as the collector sees them), statistics and the GC
    /// state, then the builder's finish (edges from memory); adds how many marked slots hold no
    /// object of the snapshot.
    func finishCollectorSnapshot(_ b: inout SnapshotBuilder, _ collector: Collector, forced: Bool) -> HeapSnapshot {
        let heap = collector.heap
        let stats = heap.statistics()
        HeapCapture.addArenas(heap, stats, &b)
        var markedBytes: UInt64 = 0
        var collectorMarks: [UInt64] = []
        collector.forEachSpanForSnapshot { span, marked in
            b.addSpan(start: UInt64(span.start), pages: span.pages, sizeClass: span.sizeClass, noscan: span.noscan,
                      cached: span.cached, needzero: span.needzero, elemSize: span.elemSize, slots: max(span.slots, 1),
                      allocated: span.allocated)
            let words = (max(span.slots, 1) + 63) >> 6
            for w in 0..<words {
                let m = w < marked.count ? marked[w] : 0
                collectorMarks.append(m)
                markedBytes += UInt64(m.nonzeroBitCount) * UInt64(span.elemSize)
            }
        }
        for (name, value) in [("heap_sys", stats.heapSys), ("heap_in_use", stats.heapInUse), ("heap_idle", stats.heapIdle),
                              ("heap_released", stats.heapReleased), ("metadata_bytes", stats.metadataBytes),
                              ("span_metadata_bytes", stats.spanMetadataBytes), ("mcache_metadata_bytes", stats.mcacheMetadataBytes),
                              ("bitmap_bytes", stats.bitmapBytes), ("page_map_bytes", stats.pageMapBytes),
                              ("total_allocs", stats.totalAllocs), ("tiny_allocs", stats.tinyAllocs),
                              ("large_allocs", stats.largeAllocs)] {
            b.addStatistic(name, value)
        }
        let st = collector.snapshotState
        var gc = SnapshotGCState()
        gc.cycle = UInt64(st.completedCycles)
        gc.phase = st.phase == 2 ? .markTermination : st.phase == 1 ? .mark : (st.sweeping ? .sweep : .off)
        gc.heapGoal = UInt64(max(st.heapGoal, 0))
        gc.heapMarked = markedBytes
        gc.gcPercent = UInt64(st.gogc ?? 0)
        gc.heapLive = UInt64(max(st.heapLive, 0))
        gc.memoryLimit = UInt64(st.memoryLimit ?? 0)
        gc.flags = SnapshotGCState.collectorFlag | (st.gogc == nil ? SnapshotGCState.gogcOffFlag : 0)
            | (st.stopTheWorld ? SnapshotGCState.stopTheWorldFlag : 0) | (forced ? SnapshotGCState.forcedCycleFlag : 0)
        b.setGCState(gc)
        var snapshot = b.finish { UnsafeRawPointer(bitPattern: UInt($0))!.load(as: UInt64.self) }
        var extra = 0
        for k in 0..<min(collectorMarks.count, snapshot.markBits.count) {
            extra += (collectorMarks[k] & ~snapshot.markBits[k]).nonzeroBitCount
        }
        snapshot.statistics.append((name: "gc_marked_slots_without_object", value: Int64(extra)))
        return snapshot
    }

    /// What was written, in order of record then cycle; the first write failure, if any.
    func results() -> ([WrittenSnapshot], InputError?) {
        shared.withLock { s in
            (s.written.sorted { ($0.gcCycle, $0.record, $0.trigger.rawValue) < ($1.gcCycle, $1.record, $1.trigger.rawValue) }, s.failure)
        }
    }
}

extension SnapshotReplay {
    /// `--allocator gc` with snapshots: the program lowered for the collector, a GCBackend
    /// with a GCSnapshotSession, barriers for record captures (see GCSnapshotSession).
    static func replayCollector(trace: String, threads: Int?, request: SnapshotRequest,
                                options: GCReplayOptions) throws -> (ReplayReport, [WrittenSnapshot]) {
        guard !options.rawStores else { throw ReplayError("--raw-stores does not combine with snapshots") }
        let start = ReplaySystem.monotonicNanos()
        var wanted = Set(request.records).sorted().map { (record: $0, trigger: SnapshotTrigger.record) }
        if request.atPeak {
            let finder = SnapshotPlanner(wanted: [])
            _ = try TraceLowering.lower(path: trace, workers: threads, snapshots: finder, forCollector: true)
            if finder.peakRecord >= 0 { wanted.append((finder.peakRecord, .peak)) }
        }
        let planner = SnapshotPlanner(wanted: wanted, tracksObjects: request.everyGC)
        let program = try TraceLowering.lower(path: trace, workers: threads, snapshots: planner, forCollector: true)
        for r in request.records where r >= planner.records {
            throw InputError(file: trace, location: .wholeFile,
                             message: "--snapshot-at \(r): the trace has records 0...\(planner.records - 1) (header = record 0)")
        }
        let loadSeconds = Double(ReplaySystem.monotonicNanos() - start) / 1e9
        let session = GCSnapshotSession(program: program, planner: planner, trace: trace, request: request, options: options)
        var made: GCBackend? = nil
        var pauses: ReplayPauses? = nil
        if !session.plans.isEmpty {
            pauses = ReplayPauses(workers: program.info.workers, ends: session.plans.map(\.opEnds),
                                  poll: { session.poll(worker: $0) }) { k, worker, table in
                guard let collector = made?.collector else { return {} }
                return session.captureAtRecord(k, worker: worker, table: table, collector: collector)
            }
        }
        var measurement: ReplayMeasurement
        let backend: GCBackend
        (measurement, backend) = try ReplayRunner.run(program, makeBackend: { () throws(ReplayError) in
            let b = try GCBackend(program: program.info, options: options, verify: false, snapshots: session)
            made = b
            return b
        }, pauses: pauses)
        measurement.gc = backend.report()   // stops the collector: every capture is queued
        session.finishWriting()
        if let path = options.timeline {
            do { try backend.writeTimeline(to: path) } catch { throw ReplayError("\(error)") }
        }
        let (written, failure) = session.results()
        if let failure { throw failure }
        let report = ReplayReport(allocator: .gc, trace: trace, loadSeconds: loadSeconds, program: program.info,
                                  measurement: measurement)
        return (report, written)
    }
}

/// Starts a thread running `body` (the snapshot writer); returns its pthread_t.
func spawnSnapshotWriter(_ body: @escaping () -> Void) -> UInt {
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    var t = pthread_t()
    let arg = Unmanaged.passRetained(Box(body)).toOpaque()
    let rc = pthread_create(&t, nil, { arg in
        Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, arg)
    if rc != 0 {
        // No thread: GCSnapshotSession.finishWriting writes the queue at the end instead.
        Unmanaged<Box>.fromOpaque(arg).release()
        return 0
    }
    return UInt(t)
}
