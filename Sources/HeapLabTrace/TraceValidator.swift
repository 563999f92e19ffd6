// Semantic validation of a trace and its exact lifetime oracle, in one streaming pass.
//
// `TraceValidator.check(_:at:)` takes the records of a trace in order and enforces every
// rule of ../shared/TRACE-FORMAT.md that needs history (syntax is the readers' job):
//   - the header comes first and exactly once;
//   - a site is declared before use and never redeclared;
//   - `a` does not name a live object (an ID is reused only after its object is dead);
//   - `f` needs a hold (> 0) to drop; `h` and `r` need a reachable object; `r` needs PTRS 0;
//   - `w` needs SRC and DST reachable and SLOT < PTRS of SRC.
// As a by-product it knows exactly when each object dies and reports allocations, resizes
// and deaths, in record order, to a `LifetimeObserver` (LifetimeOracle.swift builds the
// death table from them; TraceStatistics.swift builds `check`'s figures).
//
// Model. Objects live in a dense table (ObjectEntry) found through a hash index from trace
// ID; a dead object's entry is recycled, so memory follows the live heap, not the trace.
// Every non-nil pointer slot is an edge, linked into its source's out-list and its
// target's in-list and indexed by (source, slot). `incoming` counts an object's in-edges.
// Reachable = hold count > 0, or pointed at by a slot of a reachable object.
//
// Deaths (Merlin: Hertz, Blackburn, Moss, McKinley, Stefanovic, TOPLAS 2006).
//   Each object carries a timestamp `stamp`: the last record at which it lost a hold or an
//   incoming pointer (initially its allocation record). When a set S of dead objects is
//   found, each member dies at the largest stamp among members that reach it; processing S
//   in decreasing stamp order and flooding forward through unassigned members gives every
//   object that maximum in O(|S| log |S|). When a dead object's edges are removed, each
//   surviving target's stamp is raised to the dead source's death time.
//
// Finding dead objects, cheapest first:
//   1. Immediate: an object with no hold and no in-edge is dead now; its removal may
//      cascade down its out-edges. Malloc-style traces (no `w`) only ever take this path,
//      so they need no reachability pass at all.
//   2. A cut that leaves an object with no hold but some in-edges is "questionable": it may
//      have made a cycle (or what hangs off one) unreachable. It bumps `epoch`, which
//      invalidates every "proven reachable" mark, and sets `undetected`.
//   3. A record that names an object with no hold while `undetected` is set asks whether
//      it is reachable: a backward search over in-edges stops at the first held or proven
//      object (reachable; the object is marked proven for this epoch) or exhausts the
//      ancestors, which are then all dead (an ancestor-closed dead set, killed as above).
//   4. A full pass marks from every held object and kills everything unmarked; afterwards
//      `undetected` is clear. It runs when backward searches since the last pass have done
//      more work than a pass would, when the table or the pending events have grown past
//      twice their size after the last pass (+64 Ki), and at the end of the trace.
//   Each pass costs O(live objects + edges) and is paid for by at least as much search
//   work or growth, so the whole oracle is amortized O(1) per record on top of the hash
//   lookups (O(n log n) worst case from sorting dead sets).
//
// Event order. Events collect in `pending` and go to the observer in sorted batches, by
// (record, allocations and resizes before deaths, ordinal). A batch may only be handed
// over while `undetected` is clear, since then every death up to now is known; otherwise
// a death found later could lie in the past. So pending events wait for the next full
// pass (which completes the timeline up to its record), or, in a clean state, until
// `batch` of them have gathered. Observers thus see records in non-decreasing order.

/// One change in an object's life, as reported to a `LifetimeObserver`. Records are
/// numbered from 0 (the header); objects by allocation ordinal, 0 for the first `a` record.
public struct LifetimeEvent: Sendable, Equatable {
    public enum Kind: UInt8, Sendable { case allocated = 0, resized = 1, died = 2 }
    public var kind: Kind
    /// `allocated`, `resized`: the record that did it. `died`: the record right after
    /// which the object is dead.
    public var record: Int
    public var ordinal: Int
    /// The object's size after the event (`died`: its size when it died).
    public var size: UInt64
    /// `resized`: the size before; 0 otherwise.
    public var oldSize: UInt64
    /// The record that allocated the object.
    public var allocRecord: Int

    public init(kind: Kind, record: Int, ordinal: Int, size: UInt64, oldSize: UInt64, allocRecord: Int) {
        self.kind = kind
        self.record = record
        self.ordinal = ordinal
        self.size = size
        self.oldSize = oldSize
        self.allocRecord = allocRecord
    }
}

/// Receives object lifetime events from `TraceValidator`. Across all calls the events are
/// in non-decreasing record order; at one record an allocation or resize comes before the
/// deaths, and deaths are sorted by ordinal.
///
/// Implement either the per-event methods (simple) or `observe(_:)` (a whole batch per
/// call, which is cheaper for heavy observers); each has a default: `observe` calls the
/// per-event methods, which do nothing.
public protocol LifetimeObserver: AnyObject {
    /// A batch of events, in order.
    func observe(_ events: UnsafeBufferPointer<LifetimeEvent>)
    /// Object number `ordinal` was allocated by record `record`.
    func objectAllocated(record: Int, ordinal: Int, size: UInt64)
    /// Object `ordinal` was resized (`r`) by record `record`.
    func objectResized(record: Int, ordinal: Int, oldSize: UInt64, newSize: UInt64)
    /// Object `ordinal` (allocated by record `allocRecord`) is dead right after `record`.
    func objectDied(record: Int, ordinal: Int, size: UInt64, allocRecord: Int)
}

extension LifetimeObserver {
    public func observe(_ events: UnsafeBufferPointer<LifetimeEvent>) {
        for e in events {
            switch e.kind {
            case .allocated: objectAllocated(record: e.record, ordinal: e.ordinal, size: e.size)
            case .resized: objectResized(record: e.record, ordinal: e.ordinal, oldSize: e.oldSize, newSize: e.size)
            case .died: objectDied(record: e.record, ordinal: e.ordinal, size: e.size, allocRecord: e.allocRecord)
            }
        }
    }
    public func objectAllocated(record: Int, ordinal: Int, size: UInt64) {}
    public func objectResized(record: Int, ordinal: Int, oldSize: UInt64, newSize: UInt64) {}
    public func objectDied(record: Int, ordinal: Int, size: UInt64, allocRecord: Int) {}
}

/// Checks the semantic rules of a trace, record by record, and computes exact death points.
///
///     let validator = TraceValidator(file: path)
///     var reader = try TraceReader.open(path: path)
///     while let r = try reader.next() { try validator.check(r, at: reader.location) }
///     try validator.finish()
///
/// Memory is proportional to the objects still in the table (live, plus dead ones not yet
/// found, bounded by the pass policy above). Amortized O(1) work per record.
public final class TraceValidator {
    public let file: String
    private let core: UnsafeMutablePointer<ValidatorCore>
    /// Keeps the observer alive; the core refers to it without reference counting.
    private let observer: (any LifetimeObserver)?

    public init(file: String, observer: (any LifetimeObserver)? = nil) {
        self.file = file
        self.observer = observer
        core = .allocate(capacity: 1)
        core.initialize(to: ValidatorCore(observer: observer))
    }

    /// Tests use tiny slack values so that searches give up and full passes run often.
    init(file: String, observer: (any LifetimeObserver)?, growthSlack: Int, searchSlack: Int) {
        self.file = file
        self.observer = observer
        core = .allocate(capacity: 1)
        core.initialize(to: ValidatorCore(observer: observer))
        core.pointee.growthSlack = growthSlack
        core.pointee.searchSlack = searchSlack
    }

    deinit {
        core.pointee.deallocate()
        core.deinitialize(count: 1)
        core.deallocate()
    }

    /// Checks the next record; `location` is used in the error message.
    @inline(__always)
    public func check(_ record: consuming TraceRecord, at location: InputLocation) throws(InputError) {
        do {
            try core.pointee.check(record)
        } catch {
            throw InputError(file: file, location: location, message: error.message)
        }
    }

    /// Ends the trace: finds every remaining dead object and delivers the last events.
    public func finish() throws(InputError) {
        do {
            try core.pointee.finish()
        } catch {
            throw InputError(file: file, location: .wholeFile, message: error.message)
        }
    }

    /// Records checked so far.
    public var recordCount: Int { core.pointee.records }
    /// `a` records so far (the next allocation ordinal).
    public var allocations: Int { core.pointee.allocations }
    /// Objects not yet known to be dead; after `finish()`, the objects reachable at the end.
    public var liveObjects: Int { core.pointee.liveCount }
    /// Full reachability passes run so far (a measure of the oracle's work).
    public var reachabilityPasses: Int { core.pointee.passes }

    /// Reads and validates the trace at `path` (either encoding).
    public static func validate(path: String, observer: (any LifetimeObserver)? = nil) throws(InputError) {
        var reader = try TraceReader.open(path: path)
        let validator = TraceValidator(file: path, observer: observer)
        while let record = try reader.next() { try validator.check(record, at: reader.location) }
        try validator.finish()
    }
}

struct SemanticError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

struct ObjectEntry {
    var id: UInt64
    var size: UInt64
    var ptrs: UInt64
    var holds: UInt64
    /// Allocation ordinal; -1 marks a free entry.
    var ordinal: Int
    var allocRecord: Int
    /// Merlin timestamp: last record at which the object lost a hold or an in-edge.
    var stamp: Int
    /// Death record while a dead set is processed (-1: not yet assigned).
    var death: Int
    var incoming: Int
    /// Out-edge list head; for a free entry, the next free entry.
    var firstOut: Int32
    var firstIn: Int32
    /// Epoch in which the object was proven reachable.
    var proven: UInt64
    /// Visit number of the last search or pass that reached it.
    var mark: UInt64
}

struct EdgeEntry {
    var slot: UInt64
    var src: Int32
    var dst: Int32
    /// For a free edge, `nextOut` is the next free edge.
    var nextOut: Int32
    var prevOut: Int32
    var nextIn: Int32
    var prevIn: Int32
}

struct ValidatorCore {
    /// Owned by the TraceValidator; unowned here (events are delivered in batches anyway).
    unowned(unsafe) let observer: (any LifetimeObserver)?
    let hasObserver: Bool
    var records = 0
    var allocations = 0
    var liveCount = 0
    var passes = 0

    var sites = HashIndex<UInt64>()
    var ids = HashIndex<UInt64>()
    var objects = RawBuffer<ObjectEntry>(capacity: 1024)
    var freeObject: Int32 = -1
    var edges = RawBuffer<EdgeEntry>(capacity: 16)
    var freeEdge: Int32 = -1
    var edgeCount = 0
    var slots = HashIndex<SlotKey>()

    var epoch: UInt64 = 1
    var visit: UInt64 = 1
    /// Some object may be dead without being known dead (see the file comment, step 2).
    var undetected = false
    var searchWork = 0
    var liveAfterPass = 0
    var pending = RawBuffer<LifetimeEvent>(capacity: 1024)

    // Scratch buffers: a search queue / dead set, a DFS stack, a cascade worklist.
    var work = RawBuffer<Int32>(capacity: 64)
    var stack = RawBuffer<Int32>(capacity: 64)
    var cascade = RawBuffer<Int32>(capacity: 64)

    /// Extra room before growth forces a full pass, and base budget of backward searches.
    var growthSlack = 65536
    /// Events handed to the observer at a time (when the timeline is complete).
    static let batch = 4096
    var searchSlack = 4096

    init(observer: (any LifetimeObserver)?) {
        self.observer = observer
        hasObserver = observer != nil
    }

    func deallocate() {
        sites.deallocate(); ids.deallocate(); slots.deallocate()
        objects.deallocate(); edges.deallocate(); pending.deallocate()
        work.deallocate(); stack.deallocate(); cascade.deallocate()
    }

    // MARK: Records

    mutating func check(_ record: consuming TraceRecord) throws(SemanticError) {
        let now = records
        records = now &+ 1
        if now == 0 {
            guard case .header = record else { throw SemanticError(TraceSyntax.missingHeaderMessage) }
            return
        }
        if undetected { collectIfGrown() }
        defer { if !undetected && pending.count >= Self.batch { flushPending() } }
        switch record {
        case .alloc(let id, let size, let ptrs, let site):
            if let site, sites.find(site) < 0 { throw SemanticError("site \(site) is not declared") }
            let old = ids.find(id)
            if old >= 0 && isReachable(old) {
                throw SemanticError("object \(id) is already live (an ID is reused only after its object dies)")
            }
            if freeObject < 0 && objects.count >= Int(Int32.max) {
                throw SemanticError("more than \(Int32.max) objects live at once (the validator's limit)")
            }
            allocate(id: id, size: size, ptrs: ptrs, now: now)
        case .free(let id):
            let o = ids.find(id)
            if o < 0 { throw SemanticError("object \(id) is not live") }
            let holds = objects[Int(o)].holds
            if holds == 0 {
                if isReachable(o) {
                    throw SemanticError("object \(id) has no hold to drop (it is reachable only through pointers)")
                }
                throw SemanticError("object \(id) is not live")
            }
            objects.base[Int(o)].holds = holds &- 1
            objects.base[Int(o)].stamp = now
            if holds == 1 { lostLastReference(o) }
        case .hold(let id):
            let o = try reachableObject(id, role: "object")
            objects.base[Int(o)].holds &+= 1
        case .write(let src, let slot, let dst):
            let s = try reachableObject(src, role: "source object")
            let ptrs = objects[Int(s)].ptrs
            if slot >= ptrs {
                throw SemanticError("slot \(slot) out of range (object \(src) has \(ptrs) pointer slots)")
            }
            var d: Int32 = -1
            if let dst { d = try reachableObject(dst, role: "destination object") }
            if d >= 0 && freeEdge < 0 && edges.count >= Int(Int32.max) {
                throw SemanticError("more than \(Int32.max) pointer slots set at once (the validator's limit)")
            }
            store(src: s, slot: slot, dst: d, now: now)
        case .realloc(let id, let size):
            let o = try reachableObject(id, role: "object")
            let entry = objects[Int(o)]
            if entry.ptrs != 0 {
                throw SemanticError("object \(id) has \(entry.ptrs) pointer slots; only pointer-free objects can be resized")
            }
            objects.base[Int(o)].size = size
            emit(LifetimeEvent(kind: .resized, record: now, ordinal: entry.ordinal, size: size, oldSize: entry.size,
                               allocRecord: entry.allocRecord))
        case .site(let id, _):
            if sites.find(id) >= 0 { throw SemanticError("site \(id) is already declared") }
            sites.insert(id, 0)
        case .thread:
            break
        case .header:
            throw SemanticError("duplicate header (it must appear exactly once, first)")
        }
    }

    /// The entry of a live, reachable object `id`, or an error naming its role.
    @inline(__always)
    mutating func reachableObject(_ id: UInt64, role: String) throws(SemanticError) -> Int32 {
        let o = ids.find(id)
        if o < 0 || !isReachable(o) { throw SemanticError("\(role) \(id) is not live") }
        return o
    }

    mutating func finish() throws(SemanticError) {
        if records == 0 { throw SemanticError(TraceSyntax.missingHeaderMessage + " (the trace has no records)") }
        if undetected { fullPass() }
        flushPending()
    }

    // MARK: Objects and edges

    @inline(__always)
    mutating func allocate(id: UInt64, size: UInt64, ptrs: UInt64, now: Int) {
        let entry = ObjectEntry(id: id, size: size, ptrs: ptrs, holds: 1, ordinal: allocations, allocRecord: now,
                                stamp: now, death: -1, incoming: 0, firstOut: -1, firstIn: -1, proven: 0, mark: 0)
        let o: Int32
        if freeObject >= 0 {
            o = freeObject
            freeObject = objects[Int(o)].firstOut
            objects[Int(o)] = entry
        } else {
            o = Int32(truncatingIfNeeded: objects.count)
            objects.append(entry)
        }
        ids.insert(id, o)
        liveCount &+= 1
        allocations &+= 1
        emit(LifetimeEvent(kind: .allocated, record: now, ordinal: entry.ordinal, size: size, oldSize: 0, allocRecord: now))
    }

    @inline(__always)
    mutating func release(_ o: Int32) {
        ids.remove(objects[Int(o)].id)
        objects.base[Int(o)].ordinal = -1
        objects.base[Int(o)].firstOut = freeObject
        freeObject = o
        liveCount &-= 1
    }

    /// `w`: slot `slot` of `s` now points at `d` (-1: nil).
    mutating func store(src s: Int32, slot: UInt64, dst d: Int32, now: Int) {
        let key = SlotKey(object: s, slot: slot)
        let e = slots.find(key)
        var old: Int32 = -1
        if e >= 0 {
            old = edges[Int(e)].dst
            if old == d { return }
            unlinkIn(e)
            if d >= 0 {
                edges.base[Int(e)].dst = d
                linkIn(e)
            } else {
                unlinkOut(e)
                slots.remove(key)
                releaseEdge(e)
            }
        } else if d >= 0 {
            let edge = EdgeEntry(slot: slot, src: s, dst: d, nextOut: -1, prevOut: -1, nextIn: -1, prevIn: -1)
            let n: Int32
            if freeEdge >= 0 {
                n = freeEdge
                freeEdge = edges[Int(n)].nextOut
                edges[Int(n)] = edge
            } else {
                n = Int32(truncatingIfNeeded: edges.count)
                edges.append(edge)
            }
            edgeCount &+= 1
            linkOut(n)
            linkIn(n)
            slots.insert(key, n)
        }
        if d >= 0 { objects.base[Int(d)].incoming &+= 1 }
        if old >= 0 {
            objects.base[Int(old)].incoming &-= 1
            objects.base[Int(old)].stamp = now
            if objects[Int(old)].holds == 0 { lostLastReference(old) }
        }
    }

    @inline(__always)
    mutating func linkOut(_ e: Int32) {
        let s = Int(edges[Int(e)].src)
        let head = objects[s].firstOut
        edges.base[Int(e)].nextOut = head
        edges.base[Int(e)].prevOut = -1
        if head >= 0 { edges.base[Int(head)].prevOut = e }
        objects.base[s].firstOut = e
    }

    @inline(__always)
    mutating func unlinkOut(_ e: Int32) {
        let edge = edges[Int(e)]
        if edge.prevOut >= 0 { edges.base[Int(edge.prevOut)].nextOut = edge.nextOut }
        else { objects.base[Int(edge.src)].firstOut = edge.nextOut }
        if edge.nextOut >= 0 { edges.base[Int(edge.nextOut)].prevOut = edge.prevOut }
    }

    @inline(__always)
    mutating func linkIn(_ e: Int32) {
        let d = Int(edges[Int(e)].dst)
        let head = objects[d].firstIn
        edges.base[Int(e)].nextIn = head
        edges.base[Int(e)].prevIn = -1
        if head >= 0 { edges.base[Int(head)].prevIn = e }
        objects.base[d].firstIn = e
    }

    @inline(__always)
    mutating func unlinkIn(_ e: Int32) {
        let edge = edges[Int(e)]
        if edge.prevIn >= 0 { edges.base[Int(edge.prevIn)].nextIn = edge.nextIn }
        else { objects.base[Int(edge.dst)].firstIn = edge.nextIn }
        if edge.nextIn >= 0 { edges.base[Int(edge.nextIn)].prevIn = edge.prevIn }
    }

    @inline(__always)
    mutating func releaseEdge(_ e: Int32) {
        edges.base[Int(e)].nextOut = freeEdge
        freeEdge = e
        edgeCount &-= 1
    }

    // MARK: Reachability

    /// `o` has no hold left and has just lost a hold or an in-edge (its stamp is set).
    @inline(__always)
    mutating func lostLastReference(_ o: Int32) {
        if objects[Int(o)].incoming == 0 {
            cascade.append(o)
            killCascade()
        } else {
            questionableCut()
        }
    }

    @inline(__always)
    mutating func questionableCut() {
        epoch &+= 1
        undetected = true
    }

    /// Whether live entry `o` is reachable now. If it is not, it (and every dead object
    /// found with it) is removed and its death reported.
    @inline(__always)
    mutating func isReachable(_ o: Int32) -> Bool {
        let entry = objects[Int(o)]
        if entry.holds > 0 || !undetected || entry.proven == epoch { return true }
        return searchBackward(o)
    }

    /// Backward breadth-first search over in-edges from `o` (no hold, not proven).
    @inline(never)
    mutating func searchBackward(_ o: Int32) -> Bool {
        visit &+= 1
        let v = visit
        work.removeAll()
        work.append(o)
        objects.base[Int(o)].mark = v
        let budget = 4 &* (liveCount &+ edgeCount) &+ searchSlack
        var head = 0
        while head < work.count {
            let x = work[head]
            head &+= 1
            var e = objects[Int(x)].firstIn
            while e >= 0 {
                let s = edges[Int(e)].src
                searchWork &+= 1
                let source = objects[Int(s)]
                if source.mark != v {
                    if source.holds > 0 || source.proven == epoch {
                        objects.base[Int(o)].proven = epoch
                        return true
                    }
                    objects.base[Int(s)].mark = v
                    work.append(s)
                }
                e = edges[Int(e)].nextIn
            }
            if searchWork > budget {
                // Searching has cost as much as a full pass would: run one.
                fullPass()
                return objects[Int(o)].ordinal >= 0
            }
        }
        // Every ancestor was visited and none is held or proven: all dead.
        killSet(membership: v, fullPass: false)
        return false
    }

    /// Marks from every held object; kills all unmarked objects. Afterwards every object in
    /// the table is reachable and every death up to now is known.
    mutating func fullPass() {
        visit &+= 1
        let v = visit
        epoch &+= 1
        let e = epoch
        let objs = objects.base
        stack.removeAll()
        for i in 0..<objects.count where objs[i].ordinal >= 0 && objs[i].holds > 0 {
            objs[i].mark = v
            objs[i].proven = e
            stack.append(Int32(truncatingIfNeeded: i))
        }
        while let x = stack.popLast() {
            var edge = objs[Int(x)].firstOut
            while edge >= 0 {
                let d = Int(edges[Int(edge)].dst)
                if objs[d].mark != v {
                    objs[d].mark = v
                    objs[d].proven = e
                    stack.append(Int32(truncatingIfNeeded: d))
                }
                edge = edges[Int(edge)].nextOut
            }
        }
        visit &+= 1
        let dead = visit
        work.removeAll()
        for i in 0..<objects.count where objs[i].ordinal >= 0 && objs[i].mark != v {
            objs[i].mark = dead
            work.append(Int32(truncatingIfNeeded: i))
        }
        if work.count > 0 { killSet(membership: dead, fullPass: true) }
        undetected = false
        searchWork = 0
        liveAfterPass = liveCount
        passes &+= 1
        flushPending()
    }

    /// Runs a full pass when the table or the pending events outgrew the last pass.
    @inline(__always)
    mutating func collectIfGrown() {
        let limit = 2 &* liveAfterPass &+ growthSlack
        if liveCount > limit || pending.count > limit { fullPass() }
    }

    /// Kills the dead set in `work` (members have `mark == membership`): assigns Merlin death
    /// times, reports the deaths, removes the members' out-edges and frees the members.
    /// Outside the set, targets lose an in-edge (and, outside a full pass, may die in turn).
    mutating func killSet(membership m: UInt64, fullPass: Bool) {
        let objs = objects.base
        var members = work.buffer
        for x in members { objs[Int(x)].death = -1 }
        members.sort { objs[Int($0)].stamp > objs[Int($1)].stamp }
        for r in members where objs[Int(r)].death < 0 {
            let time = objs[Int(r)].stamp
            objs[Int(r)].death = time
            stack.removeAll()
            stack.append(r)
            while let y = stack.popLast() {
                var e = objs[Int(y)].firstOut
                while e >= 0 {
                    let d = Int(edges[Int(e)].dst)
                    if objs[d].mark == m && objs[d].death < 0 {
                        objs[d].death = time
                        stack.append(Int32(truncatingIfNeeded: d))
                    }
                    e = edges[Int(e)].nextOut
                }
            }
        }
        for x in members {
            let entry = objs[Int(x)]
            emit(LifetimeEvent(kind: .died, record: entry.death, ordinal: entry.ordinal, size: entry.size, oldSize: 0,
                               allocRecord: entry.allocRecord))
            var e = entry.firstOut
            while e >= 0 {
                let edge = edges[Int(e)]
                slots.remove(SlotKey(object: x, slot: edge.slot))
                let d = Int(edge.dst)
                if objs[d].mark != m {
                    unlinkIn(e)
                    objs[d].incoming &-= 1
                    if objs[d].stamp < entry.death { objs[d].stamp = entry.death }
                    if !fullPass && objs[d].holds == 0 {
                        if objs[d].incoming == 0 { cascade.append(Int32(truncatingIfNeeded: d)) }
                        else { questionableCut() }
                    }
                }
                releaseEdge(e)
                e = edge.nextOut
            }
        }
        for x in members { release(x) }
        if cascade.count > 0 { killCascade() }
    }

    /// Kills the objects in `cascade` (no hold, no in-edge), each at its stamp, and any
    /// object left with no hold and no in-edge by their removal.
    mutating func killCascade() {
        let objs = objects.base
        while let x = cascade.popLast() {
            let entry = objs[Int(x)]
            let death = entry.stamp
            emit(LifetimeEvent(kind: .died, record: death, ordinal: entry.ordinal, size: entry.size, oldSize: 0,
                               allocRecord: entry.allocRecord))
            var e = entry.firstOut
            while e >= 0 {
                let edge = edges[Int(e)]
                slots.remove(SlotKey(object: x, slot: edge.slot))
                let d = Int(edge.dst)
                if d != Int(x) {
                    unlinkIn(e)
                    objs[d].incoming &-= 1
                    if objs[d].stamp < death { objs[d].stamp = death }
                    if objs[d].holds == 0 {
                        if objs[d].incoming == 0 { cascade.append(Int32(truncatingIfNeeded: d)) }
                        else { questionableCut() }
                    }
                }
                releaseEdge(e)
                e = edge.nextOut
            }
            release(x)
        }
    }

    // MARK: Events

    @inline(__always)
    mutating func emit(_ event: LifetimeEvent) {
        if hasObserver { pending.append(event) }
    }

    /// Hands the pending events to the observer, sorted; only when every death up to now
    /// is known (`undetected` clear).
    mutating func flushPending() {
        guard let observer, pending.count > 0 else { return }
        var events = pending.buffer
        @inline(__always) func before(_ a: LifetimeEvent, _ b: LifetimeEvent) -> Bool {
            if a.record != b.record { return a.record < b.record }
            if a.kind != b.kind { return a.kind.rawValue < b.kind.rawValue }
            return a.ordinal < b.ordinal
        }
        // Usually already in order (malloc-style traces): check before sorting.
        var sorted = true
        for i in 1..<events.count where before(events[i], events[i - 1]) {
            sorted = false
            break
        }
        if !sorted { events.sort(by: before) }
        observer.observe(UnsafeBufferPointer(events))
        pending.removeAll()
    }
}
