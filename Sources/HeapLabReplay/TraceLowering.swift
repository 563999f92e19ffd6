// The load phase: a trace file becomes a ReplayProgram (ReplayOp.swift, ReplayProgram.swift).
//
// Nothing here is timed as replay; it all happens in the parent process before any child
// starts. Steps:
//
//   1. Scan: read every record once (either encoding) through HeapLabTrace's TraceValidator,
//      which enforces the semantic rules of TRACE-FORMAT.md and, in the same pass, computes
//      exact death points (Merlin); count records, note which mutator threads run records
//      and where the first pointer store (`w`) is.
//   2. Death points: before the first `w` an object dies exactly at the `f` that drops its
//      last hold (no pointer can keep it alive), which the lowering pass sees directly from
//      hold counts. From the first `w` on, deaths come from the validator's lifetime events
//      (the oracle's death table, collected for those records only, so a malloc-style trace
//      costs no table at all). Objects still reachable at the end are never freed.
//   3. Lower: read the trace again and emit, per worker thread, alloc / free / realloc /
//      store ops. A free goes right after the record at which its object dies, on the
//      worker that runs that record. `s`, `h`, `@` and hold-dropping `f` records vanish.
//
// Slots. Each object gets a dense slot in the pointer table. A slot freed on worker w goes
// to w's pool and is reused by w's next allocation, so the table stays as small as the
// peak number of live objects and reuse never creates a cross-thread wait.
//
// Threads. Trace threads are numbered densely in order of first appearance and mapped to
// `workers` OS threads round-robin (dense % workers); with one worker every op runs in file
// order. For more than one worker, every op waits for the op that last touched each object
// it names (allocated, freed, resized, stored into, or stored as a pointer) when that op is
// on another worker: a `wait(u, n)` op ("worker u has finished n entries") is emitted before
// it unless an earlier wait in the same stream already covers it. For the collector, an op at
// which objects die (the lifetime oracle's deaths: a store that cuts the last path to them,
// a drop of the last hold) also waits for the last op on each of them, since it takes away
// what kept them reachable. Waits only point back in the trace's global order, so the replay
// cannot deadlock.
//
// Also computed here: peak live bytes (sum of requested sizes of allocated, not yet freed
// objects) and the op at which it is first reached (the child samples RSS right after it),
// a live-bytes profile at up to 512 evenly spaced records, and per worker the bytes the
// null allocator must map (each request rounded up to 16).
//
// For the collector (`forCollector`, GCBackend.swift) the same pass emits no frees: `a` becomes
// `gcAlloc` (allocate and hold), `h` a `hold` op, `f` a `drop` op, each on the worker that runs
// the record; a death only returns the slot to that worker's pool (the table is not a root,
// so the slot can be reused once the trace can no longer name the object). A resize
// allocates a pointer-free copy and moves the holds to it (`gcRealloc`); pointer slots that
// point at the old object are then stored again with the copy (the lowering tracks pointers
// to pointer-free objects when the trace resizes at all), and a temporary hold taken by the
// realloc is dropped after them. With `origins`, each op remembers its record and objects,
// so that `--verify` can name the line of an op that found its object freed.
//
// Memory: O(live objects) in hash maps plus, with `w`, the oracle's deaths from the first `w`
// on; ops are streamed to the program file through 1 MiB buffers. A trace given as a pipe
// is spooled to an in-memory file first, since it is read twice.

public import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

public enum TraceLowering {
    /// What the scan pass learnt.
    public struct ScanSummary: Sendable {
        public var records: Int
        /// Trace thread numbers that run at least one record, in order of first appearance.
        public var threads: [Int]
        /// Index of the first `w` record, nil if none.
        public var firstStoreRecord: Int?
        /// Deaths at or after `firstStoreRecord`: (record, allocation ordinal), record order.
        var deathRecords: [Int]
        var deathOrdinals: [Int]
        /// The trace has `r` records.
        var hasResizes = false

        public var hasPointerStores: Bool { firstStoreRecord != nil }
    }

    /// Reads, validates and lowers the trace at `path` for `workers` replay threads (nil:
    /// one per trace thread; larger values are clamped to the trace's thread count).
    /// Throws `InputError` for a bad trace, `ReplayError` for system failures.
    /// `snapshots` (SnapshotCapture.swift) follows the lowering and cuts snapshot plans.
    /// `forCollector` lowers for `--allocator gc` (see the file comment); `origins` keeps each
    /// op's record and objects in `ReplayProgram.origins` (collector programs only).
    public static func lower(path: String, workers requested: Int?, profileSamples: Int = 256,
                             snapshots: SnapshotPlanner? = nil, forCollector: Bool = false,
                             origins: Bool = false) throws -> ReplayProgram {
        // Two passes need a file that can be read twice: a pipe or FIFO is spooled first
        // into an anonymous in-memory file, and errors still name the path given.
        let spool = try spoolIfNotRegular(path)
        defer { if let spool { close(spool) } }
        let readPath = spool.map { "/proc/self/fd/\($0)" } ?? path
        do {
            let summary = try scan(path: readPath)
            let threadCount = max(summary.threads.count, 1)
            let workers = max(1, min(requested ?? threadCount, threadCount))
            var lowerer = Lowerer(path: readPath, summary: summary, workers: workers,
                                  profileSamples: max(1, min(profileSamples, ReplayProgram.maxProfileSamples)))
            lowerer.planner = snapshots
            if forCollector {
                lowerer.collected = true
                lowerer.trackNoscanEdges = summary.hasResizes
                if origins { lowerer.origins = Array(repeating: [], count: workers) }
            }
            return try lowerer.run()
        } catch var error as InputError {
            error.file = path
            throw error
        }
    }

    /// For a path that is not a regular file (pipe, FIFO, character device): its whole
    /// content copied into an anonymous in-memory file, whose descriptor is returned.
    static func spoolIfNotRegular(_ path: String) throws -> Int32? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG else { return nil }
        let input = open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return nil }   // TraceReader reports the open failure
        defer { close(input) }
        let fd: Int32
        switch ReplaySystem.makeSharedFile(name: "trace-spool") {
        case .success(let f): fd = f
        case .failure(let e): throw ReplayError("cannot spool \(path): \(e)")
        }
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var offset = 0
        while true {
            let n = read(input, buffer, chunk)
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                close(fd)
                throw InputError(file: path, location: .wholeFile, message: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            if case .failure(let e) = ReplaySystem.writeAll(fd, buffer, count: n, offset: offset) {
                close(fd)
                throw ReplayError("cannot spool \(path): \(e)")
            }
            offset += n
        }
        return fd
    }

    /// Pass 1: validation and death points (TraceValidator), record count, threads, first `w`.
    public static func scan(path: String) throws(InputError) -> ScanSummary {
        var reader = try TraceReader.open(path: path)
        let deaths = DeathCollector()
        let validator = TraceValidator(file: path, observer: deaths)
        var records = 0
        var current = 0
        var seen = [Bool](repeating: false, count: Int(TraceLimits.maxThreads))
        var threads: [Int] = []
        var hasResizes = false
        while let record = try reader.next() {
            if case .realloc = record { hasResizes = true }
            switch record {
            case .thread(let t):
                current = Int(t)
            case .alloc, .free, .hold, .realloc, .write:
                if case .write = record, deaths.firstStoreRecord == Int.max { deaths.firstStoreRecord = records }
                if !seen[current] {
                    seen[current] = true
                    threads.append(current)
                }
            case .header, .site:
                break
            }
            try validator.check(record, at: reader.location)
            records += 1
        }
        try validator.finish()
        return ScanSummary(records: records, threads: threads,
                           firstStoreRecord: deaths.firstStoreRecord == Int.max ? nil : deaths.firstStoreRecord,
                           deathRecords: deaths.records, deathOrdinals: deaths.ordinals, hasResizes: hasResizes)
    }
}

/// Keeps the validator's death events from the first `w` record on (earlier deaths are the
/// hold-count deaths the lowering pass sees itself).
final class DeathCollector: LifetimeObserver {
    var firstStoreRecord = Int.max
    var records: [Int] = []
    var ordinals: [Int] = []

    func objectAllocated(record: Int, ordinal: Int, size: UInt64) {}
    func objectResized(record: Int, ordinal: Int, oldSize: UInt64, newSize: UInt64) {}
    func objectDied(record: Int, ordinal: Int, size: UInt64, allocRecord: Int) {
        guard record >= firstStoreRecord else { return }
        records.append(record)
        ordinals.append(ordinal)
    }
}

/// What the lowering pass knows about the object in a slot.
struct SlotState {
    var id: UInt64 = 0
    var size: UInt64 = 0
    var ptrs: UInt64 = 0
    /// Allocation ordinal of the object in the slot.
    var ordinal = -1
    /// Entry count of `lastWorker` right after the last op that touched the slot.
    var lastEnd = 0
    var holds: UInt32 = 0
    /// Worker of the last op that touched the slot, -1 for none.
    var lastWorker: Int16 = -1
}

/// Pass 3 state. One instance per lowering; not reused. Per-record state lives in raw
/// buffers and SlotMaps (no Dictionary, no Array writes on the per-record path).
private struct Lowerer {
    let path: String
    let summary: TraceLowering.ScanSummary
    let workers: Int
    let profileSamples: Int
    /// Records before this use hold-count deaths; from it on, the collected deaths.
    let firstStoreRecord: Int
    var deathIndex = 0

    // Objects.
    var idToSlot = SlotMap()
    /// Allocation ordinal -> slot of live objects; kept only for traces with `w`, whose
    /// deaths the oracle names by ordinal.
    var ordinalToSlot = SlotMap(capacity: 16)
    let trackOrdinals: Bool
    var slots: UnsafeMutablePointer<SlotState>
    var slotCapacity = 1024
    var nextSlot: UInt32 = 0
    /// Per worker, slots freed on that worker, reused by its next allocations.
    var pools: [[UInt32]]

    // Per worker.
    var writers: UnsafeMutablePointer<OpStreamWriter>
    var writerCount = 0
    /// waited[w * workers + u]: the highest count of u that w has already waited for.
    var waited: UnsafeMutablePointer<Int>
    var workerOfThread = [Int](repeating: 0, count: Int(TraceLimits.maxThreads))

    // Figures.
    var live = 0
    var peakLive = 0
    var peakWorker = -1
    var peakOpEnd = 0
    var totalAllocated = 0
    var allocations = 0
    var frees = 0
    var reallocs = 0
    var stores = 0
    var waits = 0
    var profile: [LiveSample] = []
    var nextProfileRecord = 0
    /// Snapshot planning (SnapshotCapture.swift), nil unless snapshots were asked for.
    var planner: SnapshotPlanner? = nil

    // Collector lowering (see the file comment).
    var collected = false
    /// Per worker, per op: where it came from (collector programs under --verify).
    var origins: [[OpOrigin]]? = nil
    /// Where the current record is (kept only with origins).
    var currentLocation = InputLocation.wholeFile
    /// Pointer slots that point at pointer-free objects, kept only when the trace resizes:
    /// (source slot, word) -> allocation ordinal of the target; per target slot the slots
    /// that pointed at it (validated against noscanEdges when used); per source slot the
    /// words it has in noscanEdges (removed when it dies).
    var trackNoscanEdges = false
    var noscanEdges: [NoscanEdge: Int] = [:]
    var incoming: [UInt32: [NoscanEdge]] = [:]
    var outgoing: [UInt32: [UInt64]] = [:]

    init(path: String, summary: TraceLowering.ScanSummary, workers: Int, profileSamples: Int) {
        self.path = path
        self.summary = summary
        self.workers = workers
        self.profileSamples = min(profileSamples, max(summary.records, 1))
        firstStoreRecord = summary.firstStoreRecord ?? Int.max
        trackOrdinals = summary.hasPointerStores
        pools = Array(repeating: [], count: workers)
        slots = .allocate(capacity: slotCapacity)
        writers = .allocate(capacity: workers)
        waited = .allocate(capacity: workers * workers)
        waited.initialize(repeating: 0, count: workers * workers)
        for (dense, t) in summary.threads.enumerated() { workerOfThread[t] = dense % workers }
    }

    /// Frees everything the lowering used (not the program file).
    mutating func release() {
        for w in 0..<writerCount { writers[w].deallocate() }
        writers.deinitialize(count: writerCount)
        writers.deallocate()
        writerCount = 0
        slots.deinitialize(count: Int(nextSlot))
        slots.deallocate()
        waited.deallocate()
        idToSlot.deallocate()
        ordinalToSlot.deallocate()
    }

    mutating func run() throws -> ReplayProgram {
        let fd: Int32
        switch ReplaySystem.makeSharedFile(name: "replay-program") {
        case .success(let f): fd = f
        case .failure(let e):
            release()
            throw ReplayError("cannot create the replay program: \(e)")
        }
        var ok = false
        defer {
            release()
            if !ok { close(fd) }
        }
        let headerBytes = ReplayProgram.headerBytes(workers: workers, profileSamples: profileSamples)
        (writers + 0).initialize(to: OpStreamWriter(fd: fd, startOffset: headerBytes, ownsFile: false))
        writerCount = 1
        for w in 1..<max(workers, 1) {
            switch ReplaySystem.makeSharedFile(name: "replay-stream") {
            case .success(let f):
                (writers + w).initialize(to: OpStreamWriter(fd: f, startOffset: 0, ownsFile: true))
                writerCount += 1
            case .failure(let e): throw ReplayError("cannot create a replay stream: \(e)")
            }
        }
        nextProfileRecord = sampleRecord(0)
        let deathRecords = summary.deathRecords
        let deathOrdinals = summary.deathOrdinals

        var reader = try TraceReader.open(path: path)
        var recordIndex = 0
        var worker = 0
        while let record = try reader.next() {
            var diesHere: UInt32? = nil
            if origins != nil { currentLocation = reader.location }
            // For the collector, the op of a record at which objects die (a store that cut the
            // last path to them, a drop of the last hold) takes their reachability away: it
            // must wait for the last op on each of them, which may be on another worker and
            // later in that worker's stream. Otherwise a worker running ahead could overwrite
            // the only pointer to an object that another worker is about to hold again, and
            // the collector would rightly free it first.
            if collected && workers > 1 {
                var k = deathIndex
                while k < deathRecords.count && deathRecords[k] == recordIndex {
                    if let slot = ordinalToSlot.get(UInt64(deathOrdinals[k])) { try depend(on: slot, worker: worker) }
                    k += 1
                }
            }
            switch record {
            case .header:
                break
            case .site(let id, let name):
                planner?.declareSite(id, name)
            case .thread(let t):
                worker = workerOfThread[Int(t)]
                planner?.thread = Int(t)
            case .alloc(let id, let size, let ptrs, let site):
                guard idToSlot.get(id) == nil else { throw reader.error("object \(id) is already live") }
                guard let slot = newSlot(worker: worker) else {
                    throw reader.error("more than \(ReplayOp.maxSlot) objects live at once: too many for the replayer")
                }
                idToSlot.set(id, slot)
                if trackOrdinals { ordinalToSlot.set(UInt64(allocations), slot) }
                let st = slots + Int(slot)
                st.pointee.id = id
                st.pointee.size = size
                st.pointee.ptrs = ptrs
                st.pointee.holds = 1
                st.pointee.ordinal = allocations
                planner?.allocated(slot: slot, id: id, size: size, ptrs: ptrs, site: site)
                allocations += 1
                try depend(on: slot, worker: worker)
                try emit(collected ? .gcAlloc(slot: slot, size: size, ptrs: ptrs) : .alloc(slot: slot, size: size, noscan: ptrs == 0),
                         worker: worker, record: recordIndex, object: id)
                touched(slot, worker: worker)
                writers[worker].nullBytes += roundUp16(size)
                totalAllocated += Int(size)
                live += Int(size)
                notePeak(worker: worker)
            case .free(let id):
                guard let slot = idToSlot.get(id) else { throw reader.error("object \(id) is not live") }
                let st = slots + Int(slot)
                guard st.pointee.holds > 0 else { throw reader.error("object \(id) has no hold left to drop") }
                st.pointee.holds -= 1
                planner?.dropped(slot: slot)
                if collected {
                    try depend(on: slot, worker: worker)
                    try emit(ReplayOp(kind: ReplayOp.drop, slot: slot), worker: worker, record: recordIndex, object: id)
                    touched(slot, worker: worker)
                }
                if st.pointee.holds == 0 && recordIndex < firstStoreRecord { diesHere = slot }
            case .hold(let id):
                guard let slot = idToSlot.get(id) else { throw reader.error("object \(id) is not live") }
                let st = slots + Int(slot)
                guard st.pointee.holds < UInt32.max else { throw reader.error("too many holds on object \(id)") }
                st.pointee.holds += 1
                planner?.held(slot: slot)
                if collected {
                    try depend(on: slot, worker: worker)
                    try emit(ReplayOp(kind: ReplayOp.hold, slot: slot), worker: worker, record: recordIndex, object: id)
                    touched(slot, worker: worker)
                }
            case .write(let src, let index, let dst):
                guard let from = idToSlot.get(src) else { throw reader.error("object \(src) is not live") }
                let ptrs = slots[Int(from)].ptrs
                guard index < ptrs else {
                    throw reader.error("slot \(index) out of bounds: object \(src) has \(ptrs) pointer slots")
                }
                var to: UInt32? = nil
                if let dst {
                    guard let slot = idToSlot.get(dst) else { throw reader.error("object \(dst) is not live") }
                    to = slot
                }
                try depend(on: from, worker: worker)
                if let to { try depend(on: to, worker: worker) }
                try emit(.store(source: from, wordIndex: index, destination: to), worker: worker, record: recordIndex,
                         object: src, destination: dst ?? 0)
                if trackNoscanEdges { noteStore(from: from, word: index, to: to) }
                touched(from, worker: worker)
                if let to { touched(to, worker: worker) }
                stores += 1
            case .realloc(let id, let size):
                guard let slot = idToSlot.get(id) else { throw reader.error("object \(id) is not live") }
                let st = slots + Int(slot)
                guard st.pointee.ptrs == 0 else { throw reader.error("realloc of object \(id), which has pointer slots") }
                try depend(on: slot, worker: worker)
                if collected {
                    try resizeForCollector(slot: slot, id: id, size: size, worker: worker, record: recordIndex)
                } else {
                    let (first, second) = ReplayOp.realloc(slot: slot, oldSize: st.pointee.size, newSize: size)
                    try writers[worker].append(first)
                    try writers[worker].append(second)
                    touched(slot, worker: worker)
                }
                live += Int(size) - Int(st.pointee.size)
                planner?.resized(slot: slot, size: size)
                st.pointee.size = size
                writers[worker].nullBytes += roundUp16(size)
                totalAllocated += Int(size)
                reallocs += 1
                notePeak(worker: worker)
            }
            if let slot = diesHere { try free(slot, worker: worker) }
            while deathIndex < deathRecords.count && deathRecords[deathIndex] <= recordIndex {
                guard deathRecords[deathIndex] == recordIndex,
                      let slot = ordinalToSlot.get(UInt64(deathOrdinals[deathIndex])) else {
                    throw reader.error("lifetime oracle names an object that is not live here (internal error)")
                }
                deathIndex += 1
                try free(slot, worker: worker)
            }
            if let planner {
                planner.endOfRecord(recordIndex) { (0..<workers).map { writers[$0].count } }
            }
            if recordIndex == nextProfileRecord {
                profile.append(LiveSample(record: recordIndex, liveBytes: live))
                nextProfileRecord = sampleRecord(profile.count)
            }
            recordIndex += 1
        }
        guard recordIndex == summary.records else {
            throw InputError(file: path, location: .wholeFile, message: "trace changed while it was being read")
        }
        return try finish(fd: fd, ok: &ok)
    }

    /// Record index of profile sample k (evenly spaced, the last one at the last record).
    func sampleRecord(_ k: Int) -> Int {
        guard k < profileSamples else { return -1 }
        return (k + 1) * summary.records / profileSamples - 1
    }

    func roundUp16(_ size: UInt64) -> Int { Int((size + 15) & ~15) }

    mutating func notePeak(worker: Int) {
        if live > peakLive {
            peakLive = live
            peakWorker = worker
            peakOpEnd = writers[worker].count
        }
    }


    /// A slot for a new object on `worker`; nil when every slot number is in use.
    mutating func newSlot(worker: Int) -> UInt32? {
        if let slot = pools[worker].popLast() { return slot }
        guard nextSlot <= ReplayOp.maxSlot else { return nil }
        if Int(nextSlot) == slotCapacity {
            let bigger = UnsafeMutablePointer<SlotState>.allocate(capacity: slotCapacity * 2)
            bigger.moveInitialize(from: slots, count: slotCapacity)
            slots.deallocate()
            slots = bigger
            slotCapacity *= 2
        }
        let slot = nextSlot
        (slots + Int(slot)).initialize(to: SlotState())
        nextSlot += 1
        return slot
    }

    /// Emits a wait if the last op on `slot` ran on another worker and no earlier wait in
    /// this stream covers it.
    mutating func depend(on slot: UInt32, worker: Int) throws(ReplayError) {
        guard workers > 1 else { return }
        let st = slots + Int(slot)
        let u = Int(st.pointee.lastWorker)
        guard u >= 0, u != worker else { return }
        let need = st.pointee.lastEnd
        if waited[worker * workers + u] < need {
            try writers[worker].append(.wait(worker: u, count: need))
            origins?[worker].append(OpOrigin(record: -1, location: .wholeFile, object: 0, destination: 0))
            waited[worker * workers + u] = need
            waits += 1
        }
    }

    func touched(_ slot: UInt32, worker: Int) {
        guard workers > 1 else { return }
        let st = slots + Int(slot)
        st.pointee.lastWorker = Int16(worker)
        st.pointee.lastEnd = writers[worker].count
    }

    /// Appends `op` to `worker`'s stream, with its origin when origins are kept.
    mutating func emit(_ op: ReplayOp, worker: Int, record: Int, object: UInt64, destination: UInt64 = 0) throws(ReplayError) {
        try writers[worker].append(op)
        origins?[worker].append(OpOrigin(record: record, location: currentLocation, object: object, destination: destination))
    }

    /// Collector lowering of `r`: copy, holds moved, pointers to the object stored again.
    mutating func resizeForCollector(slot: UInt32, id: UInt64, size: UInt64, worker: Int, record: Int) throws(ReplayError) {
        let st = slots + Int(slot)
        let (first, second) = ReplayOp.gcRealloc(slot: slot, oldSize: st.pointee.size, newSize: size, holds: st.pointee.holds)
        try emit(first, worker: worker, record: record, object: id)
        try emit(second, worker: worker, record: record, object: id)
        touched(slot, worker: worker)
        if trackNoscanEdges, let list = incoming[slot] {
            var kept: [NoscanEdge] = []
            var seen = Set<NoscanEdge>()
            for e in list where noscanEdges[e] == st.pointee.ordinal && seen.insert(e).inserted {
                kept.append(e)
                try depend(on: e.source, worker: worker)
                try emit(.store(source: e.source, wordIndex: e.word, destination: slot), worker: worker, record: record,
                         object: slots[Int(e.source)].id, destination: id)
                touched(e.source, worker: worker)
            }
            incoming[slot] = kept
        }
        // The realloc took one hold more than the object had, so that the copy stayed a
        // root until the stores above made it reachable the way the original was.
        try emit(ReplayOp(kind: ReplayOp.drop, slot: slot), worker: worker, record: record, object: id)
        // Every op above names the slot: a later op on it (another worker's allocation into
        // the slot, once the object has died) must wait for all of them, not just the realloc.
        touched(slot, worker: worker)
    }

    /// Tracks a store for later resizes: which pointer slots point at pointer-free objects.
    mutating func noteStore(from: UInt32, word: UInt64, to: UInt32?) {
        let e = NoscanEdge(source: from, word: word)
        if let to, slots[Int(to)].ptrs == 0 {
            if noscanEdges.updateValue(slots[Int(to)].ordinal, forKey: e) == nil { outgoing[from, default: []].append(word) }
            incoming[to, default: []].append(e)
        } else {
            noscanEdges.removeValue(forKey: e)
        }
    }

    mutating func free(_ slot: UInt32, worker: Int) throws(ReplayError) {
        let st = slots + Int(slot)
        if collected {
            // No op: the collector finds the object dead; the slot may be reused.
            live -= Int(st.pointee.size)
            planner?.died(slot: slot)
            if trackNoscanEdges {
                incoming[slot] = nil
                if let words = outgoing.removeValue(forKey: slot) {
                    for w in words { noscanEdges.removeValue(forKey: NoscanEdge(source: slot, word: w)) }
                }
            }
            if idToSlot.get(st.pointee.id) == slot { idToSlot.remove(st.pointee.id) }
            if trackOrdinals { ordinalToSlot.remove(UInt64(st.pointee.ordinal)) }
            pools[worker].append(slot)
            return
        }
        try depend(on: slot, worker: worker)
        try writers[worker].append(.free(slot: slot, size: st.pointee.size, noscan: st.pointee.ptrs == 0))
        touched(slot, worker: worker)
        live -= Int(st.pointee.size)
        planner?.died(slot: slot)
        frees += 1
        if idToSlot.get(st.pointee.id) == slot { idToSlot.remove(st.pointee.id) }
        if trackOrdinals { ordinalToSlot.remove(UInt64(st.pointee.ordinal)) }
        pools[worker].append(slot)
    }

    /// Flushes the streams, appends workers 1... after worker 0, writes the header, maps.
    mutating func finish(fd: Int32, ok: inout Bool) throws -> ReplayProgram {
        var streams: [ReplayStreamInfo] = []
        var end = writers[0].startOffset
        for w in 0..<workers {
            try writers[w].flush()
            var offset = writers[w].startOffset
            if w > 0 {
                offset = ReplaySystem.roundUpToPage(end)
                try copyStream(from: writers[w].fd, bytes: writers[w].count * 16, to: fd, at: offset)
            }
            streams.append(ReplayStreamInfo(offset: offset, opCount: writers[w].count, nullBytes: writers[w].nullBytes))
            end = offset + writers[w].count * 16
        }
        let info = ReplayProgramInfo(
            workers: workers, slotCount: Int(nextSlot), records: summary.records,
            traceThreads: summary.threads.count, peakLiveBytes: peakLive, peakWorker: peakWorker,
            peakOpEnd: peakOpEnd, finalLiveBytes: live, totalAllocatedBytes: totalAllocated,
            allocations: allocations, frees: frees, reallocs: reallocs, stores: stores, waits: waits,
            streams: streams, liveProfile: profile, collected: collected)
        let header = ReplayProgram.encodeHeader(info)
        let headerBytes = ReplayProgram.headerBytes(workers: workers, profileSamples: profile.count)
        precondition(headerBytes <= writers[0].startOffset, "profile larger than planned")
        // Pad the file to whole pages so the mapping never ends in a partial page.
        if ftruncate(fd, off_t(ReplaySystem.roundUpToPage(max(end, headerBytes)))) != 0 {
            throw ReplayError("cannot size the replay program: \(String(cString: strerror(errno)))")
        }
        let written = header.withUnsafeBytes { raw in
            ReplaySystem.writeAll(fd, raw.baseAddress!, count: raw.count, offset: 0)
        }
        if case .failure(let e) = written { throw ReplayError("writing the replay program header: \(e)") }
        ok = true   // from here on the program owns fd
        let program = try ReplayProgram(fd: fd)
        program.origins = origins
        return program
    }

    func copyStream(from source: Int32, bytes: Int, to destination: Int32, at offset: Int) throws(ReplayError) {
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < bytes {
            let n = min(chunk, bytes - done)
            if case .failure(let e) = ReplaySystem.readAll(source, into: buffer, count: n, offset: done) {
                throw ReplayError("copying a replay stream: \(e)")
            }
            if case .failure(let e) = ReplaySystem.writeAll(destination, buffer, count: n, offset: offset + done) {
                throw ReplayError("copying a replay stream: \(e)")
            }
            done += n
        }
    }
}

/// A pointer slot: (source slot, word index). Collector lowering of resizes.
struct NoscanEdge: Hashable {
    var source: UInt32
    var word: UInt64
}
