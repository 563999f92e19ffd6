// Heap snapshots during a replay: `heaplab replay TRACE --allocator heaplab --snapshot-at R`,
// `--snapshot-at-peak`, `--snapshot-dir DIR` (docs/snapshot-format.md, docs/inspect.md).
//
// Three parts, all in this file, hooked into the replay at three places:
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
    public var directory = "."
    public init(records: [Int] = [], atPeak: Bool = false, directory: String = ".") {
        self.records = records
        self.atPeak = atPeak
        self.directory = directory
    }
    public var isEmpty: Bool { records.isEmpty && !atPeak }
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

    public var peakLive: Int { counters.pointee.peakLive }
    public var peakRecord: Int { counters.pointee.peakRecord }
    public var records: Int { counters.pointee.records }
    var thread: Int {
        get { counters.pointee.thread }
        set { counters.pointee.thread = newValue }
    }

    /// `records`: (record, trigger) pairs, in any order.
    init(wanted: [(record: Int, trigger: SnapshotTrigger)]) {
        self.wanted = wanted.sorted { $0.record < $1.record }
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
    /// Runs with the world stopped; returns the work to do after the world resumes.
    let capture: (Int, UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> (() -> Void)

    init(workers: Int, ends: [[Int]], capture: @escaping (Int, UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> (() -> Void)) {
        self.workers = workers
        self.ends = ends
        self.capture = capture
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
            let after = capture(k, table)
            released[k].store(1, ordering: .releasing)
            after()
            return true
        }
        while released[k].load(ordering: .acquiring) == 0 {
            if aborted() { return false }
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

    /// Arenas, spans and statistics of `heap` (world stopped).
    static func addHeapState(_ heap: Heap, _ b: inout SnapshotBuilder) {
        let stats = heap.statistics()
        // Arenas are mapped from the bottom of the reservation, 64 MiB at a time
        // (docs/allocator.md), so the mapped part is heapSys bytes from the base.
        let arena = 64 << 20
        var start = UInt64(heap.reservedRange.lowerBound)
        for _ in 0..<(stats.heapSys / arena) {
            b.addArena(start: start, bytes: UInt64(arena))
            start += UInt64(arena)
        }
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

    /// Lowers `trace`, replays it in this process on HeapLab's allocator (pointer-bearing
    /// objects zeroed), and writes a snapshot at each requested point into `request.directory`.
    public static func replay(trace: String, threads: Int?, request: SnapshotRequest) throws -> (ReplayReport, [WrittenSnapshot]) {
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
        let resultLock = Mutex(())
        let pauses = ReplayPauses(workers: program.info.workers, ends: plans.map(\.opEnds)) { k, table in
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
