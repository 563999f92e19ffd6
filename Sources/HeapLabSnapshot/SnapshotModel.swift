// The heap snapshot model: what a snapshot holds, in memory, as flat arrays.
//
// A snapshot is a picture of a Go-style heap taken with the world stopped (docs/snapshot-format.md
// gives its file form, docs/inspect.md what is computed from it). It holds:
//
//   info         who took it, when (trace record), why (record, peak, GC), the pause
//   size classes the allocator's table (so a snapshot is readable without the allocator)
//   layout       arenas; spans in address order with class, state, allocation and mark bits
//   sites        allocation sites (trace site ID, name)
//   objects      every live object: address, requested size, size class, pointer slots, site,
//                trace ID, in strictly increasing address order
//   edges        the non-nil pointer slots of each object, as (slot, target object index), in
//                CSR form: object i's edges are edgeSlot/edgeTarget[edgeStart[i] ..< edgeStart[i+1]]
//   roots        the holds the program keeps outside the heap, per (object, thread)
//   gc state     cycle, phase, heap goal, marked and live bytes, GOGC, limit (version 2)
//   statistics   the allocator's own figures (name, value) and per size class
//
// Storage is struct-of-arrays so that 10 M objects cost about 40 bytes each plus 12 per edge,
// and the analyses (Dominators.swift, SnapshotGraph.swift) run over plain buffers.
//
// Invariants (checked by SnapshotReader on every file, by `validate()` for built snapshots):
//   - object addresses strictly increase; sizes are >= 1;
//   - object i's edge slots strictly increase and are < pointerSlots[i]; targets < count;
//   - site indexes are 0 (no site) or 1...sites.count; root objects < count;
//   - spans are in increasing address order and do not overlap; a span's bit arrays hold
//     ceil(slots / 64) words each, at bitsOffset in allocBits / markBits.

/// Why a snapshot was taken.
public enum SnapshotTrigger: UInt8, Sendable, CaseIterable {
    /// Through the Swift API.
    case api = 0
    /// `--snapshot-at RECORD`.
    case record = 1
    /// `--snapshot-at-peak`: after the record at which live bytes first peak.
    case peak = 2
    /// `--snapshot-every-gc`: at a collection's mark termination.
    case gc = 3

    public var name: String {
        switch self {
        case .api: return "api"
        case .record: return "record"
        case .peak: return "peak"
        case .gc: return "gc"
        }
    }
}

/// Who took the snapshot, and when.
public struct SnapshotInfo: Equatable, Sendable {
    /// Program that wrote it (e.g. "heaplab 1").
    public var producer: String = "heaplab"
    /// Allocator name ("heaplab", "gc").
    public var allocator: String = "heaplab"
    /// The trace replayed, if any.
    public var trace: String = ""
    /// Index of the trace record after which the snapshot was taken (header = 0); -1 if none.
    public var record: Int = -1
    public var trigger: SnapshotTrigger = .api
    /// How long the world was stopped to capture it.
    public var pauseNanos: UInt64 = 0
    /// Seconds since 1970 when it was taken.
    public var unixTime: UInt64 = 0
    /// Mutator threads of the program (trace threads) at capture.
    public var threads: Int = 1
    /// Pointer slots whose value named no live object (stale pointers: e.g. to an object
    /// that a `r` record moved); they are not edges.
    public var unresolvedPointers: UInt64 = 0

    public init() {}
}

/// One size class (index = class number; class 0 = large objects, size 0).
public struct SnapshotSizeClass: Equatable, Sendable {
    public var size: Int
    public var pages: Int
    public init(size: Int, pages: Int) {
        self.size = size
        self.pages = pages
    }
    public var spanBytes: Int { pages * HeapSnapshot.pageSize }
    public var objectsPerSpan: Int { size == 0 ? 1 : spanBytes / size }
}

/// One mapped arena.
public struct SnapshotArena: Equatable, Sendable {
    public var start: UInt64
    public var bytes: UInt64
    public init(start: UInt64, bytes: UInt64) {
        self.start = start
        self.bytes = bytes
    }
}

/// Span states (mspan.state).
public enum SnapshotSpanState: UInt8, Sendable {
    case inUse = 1
    case manual = 2
}

/// One in-use span.
public struct SnapshotSpan: Equatable, Sendable {
    public var start: UInt64
    public var pages: UInt32
    /// 0: one large object.
    public var sizeClass: UInt8
    public var noscan: Bool
    /// Owned by an mcache at capture.
    public var cached: Bool
    public var needzero: Bool
    public var state: UInt8 = SnapshotSpanState.inUse.rawValue
    /// Object (slot) size; for a large span, its bytes.
    public var elemSize: UInt64
    /// Slots; 1 for a large span.
    public var slots: UInt32
    /// Index of this span's first bit word in `HeapSnapshot.allocBits` and `markBits`.
    public var bitsOffset: Int

    public init(start: UInt64, pages: UInt32, sizeClass: UInt8, noscan: Bool, cached: Bool, needzero: Bool,
                elemSize: UInt64, slots: UInt32, bitsOffset: Int) {
        self.start = start
        self.pages = pages
        self.sizeClass = sizeClass
        self.noscan = noscan
        self.cached = cached
        self.needzero = needzero
        self.elemSize = elemSize
        self.slots = slots
        self.bitsOffset = bitsOffset
    }

    public var bytes: UInt64 { UInt64(pages) * UInt64(HeapSnapshot.pageSize) }
    public var end: UInt64 { start + bytes }
    public var bitWords: Int { (Int(slots) + 63) >> 6 }
}

/// An allocation site (`s SITE NAME`).
public struct SnapshotSite: Equatable, Sendable {
    public var id: UInt64
    public var name: String
    public init(id: UInt64, name: String) {
        self.id = id
        self.name = name
    }
}

/// Holds that one thread keeps on one object.
public struct SnapshotRoot: Equatable, Sendable {
    public var object: Int32
    public var thread: UInt16
    public var holds: UInt32
    public init(object: Int32, thread: UInt16, holds: UInt32) {
        self.object = object
        self.thread = thread
        self.holds = holds
    }
}

/// Collector phases (Go's gcphase, plus `off` for a manual heap).
public enum SnapshotGCPhase: UInt8, Sendable {
    case off = 0
    case sweep = 1
    case mark = 2
    case markTermination = 3

    public var name: String {
        switch self {
        case .off: return "off"
        case .sweep: return "sweep"
        case .mark: return "mark"
        case .markTermination: return "mark-termination"
        }
    }
}

/// The collector's state at capture (all zero for a manual heap). Format version 2 added
/// `heapLive`, `flags` and `memoryLimit`; a version-1 file reads them as 0.
public struct SnapshotGCState: Equatable, Sendable {
    /// Completed collections. In phase mark or mark termination, the cycle under way is
    /// `cycle + 1` (see `currentCycle`).
    public var cycle: UInt64 = 0
    public var phase: SnapshotGCPhase = .off
    /// Heap goal of the cycle under way (phase mark, mark termination), else of the next
    /// one (0: no collector).
    public var heapGoal: UInt64 = 0
    /// Bytes of the slots marked by the most recent mark: at mark termination, this cycle's
    /// (every marked slot's size, a large object's whole pages).
    public var heapMarked: UInt64 = 0
    /// GOGC (0: no collector, or GOGC=off: see `flags`).
    public var gcPercent: UInt64 = 0
    /// Go's heapLive at capture: bytes allocated since the last mark plus what it found live.
    public var heapLive: UInt64 = 0
    public var flags: UInt64 = 0
    /// Soft memory limit in bytes (0: none).
    public var memoryLimit: UInt64 = 0
    public init() {}

    /// `flags` bits.
    public static let collectorFlag: UInt64 = 1
    public static let gogcOffFlag: UInt64 = 2
    public static let stopTheWorldFlag: UInt64 = 4
    /// The cycle was started for this snapshot (`--snapshot-at` on the collector).
    public static let forcedCycleFlag: UInt64 = 8

    public var hasCollector: Bool { flags & Self.collectorFlag != 0 }
    public var gogcOff: Bool { flags & Self.gogcOffFlag != 0 }
    public var stopTheWorld: Bool { flags & Self.stopTheWorldFlag != 0 }
    public var forcedCycle: Bool { flags & Self.forcedCycleFlag != 0 }
    /// The cycle the state refers to: the one under way while marking, else the last completed.
    public var currentCycle: UInt64 { phase == .mark || phase == .markTermination ? cycle + 1 : cycle }
}

/// The allocator's per-class counters.
public struct SnapshotClassStatistics: Equatable, Sendable {
    public var sizeClass: Int
    public var allocations: UInt64
    public var frees: UInt64
    public var liveObjects: UInt64
    public var spans: UInt64
    public init(sizeClass: Int, allocations: UInt64, frees: UInt64, liveObjects: UInt64, spans: UInt64) {
        self.sizeClass = sizeClass
        self.allocations = allocations
        self.frees = frees
        self.liveObjects = liveObjects
        self.spans = spans
    }
}

/// A heap snapshot. See the file comment for the parts and their invariants.
public struct HeapSnapshot: Sendable {
    public static let pageSize = 8192
    /// Pointer-free objects under this size are tiny (packed into 16-byte blocks).
    public static let tinySize: UInt64 = 16
    public static let maxSmallSize: UInt64 = 32768

    public var info = SnapshotInfo()
    public var sizeClasses: [SnapshotSizeClass] = []
    public var arenas: [SnapshotArena] = []
    public var spans: [SnapshotSpan] = []
    public var allocBits: [UInt64] = []
    public var markBits: [UInt64] = []
    public var sites: [SnapshotSite] = []

    // Objects (parallel arrays, address order).
    public var address: [UInt64] = []
    public var size: [UInt64] = []
    public var sizeClass: [UInt8] = []
    public var pointerSlots: [UInt64] = []
    /// 0: no site; k: sites[k - 1].
    public var site: [UInt32] = []
    public var traceID: [UInt64] = []

    // Edges (CSR).
    public var edgeStart: [Int] = [0]
    public var edgeSlot: [UInt32] = []
    public var edgeTarget: [Int32] = []

    public var roots: [SnapshotRoot] = []
    public var gc = SnapshotGCState()
    /// The allocator's figures (heap_sys, heap_in_use, ...), in its own order.
    public var statistics: [(name: String, value: Int64)] = []
    public var classStatistics: [SnapshotClassStatistics] = []

    public init() {}

    public var objectCount: Int { address.count }
    public var edgeCount: Int { edgeTarget.count }

    /// The allocator figure called `name`, if recorded.
    public func statistic(_ name: String) -> Int64? { statistics.first { $0.name == name }?.value }

    /// Site name of object i ("(no site)" when none).
    public func siteName(ofObject i: Int) -> String {
        let s = Int(site[i])
        return s == 0 ? "(no site)" : sites[s - 1].name
    }

    public func isTiny(_ i: Int) -> Bool { pointerSlots[i] == 0 && size[i] < Self.tinySize }
    public func isLarge(_ i: Int) -> Bool { size[i] > Self.maxSmallSize }

    /// Bytes the allocator set aside for object i: its class size, whole pages for a
    /// large object, and for a tiny object its requested size (tiny objects share blocks).
    public func allocatedSize(ofObject i: Int) -> UInt64 {
        if isTiny(i) { return size[i] }
        let c = Int(sizeClass[i])
        if c == 0 || c >= sizeClasses.count || sizeClasses[c].size == 0 {
            let page = UInt64(Self.pageSize)
            return (size[i] + page - 1) / page * page
        }
        return UInt64(sizeClasses[c].size)
    }

    /// Index of the object whose [address, address + size) contains `addr`, if any.
    public func object(containing addr: UInt64) -> Int? {
        address.withUnsafeBufferPointer { a in
            var lo = 0, hi = a.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if a[mid] <= addr { lo = mid + 1 } else { hi = mid }
            }
            guard lo > 0, addr - a[lo - 1] < size[lo - 1] else { return nil }
            return lo - 1
        }
    }

    /// Index of the live object with trace ID `id`, if any (linear scan).
    public func object(withTraceID id: UInt64) -> Int? {
        traceID.withUnsafeBufferPointer { t in
            for i in 0..<t.count where t[i] == id { return i }
            return nil
        }
    }

    /// Checks the invariants in the file comment; returns the first one broken.
    public func validate() -> String? {
        let n = address.count
        guard size.count == n, sizeClass.count == n, pointerSlots.count == n, site.count == n, traceID.count == n else {
            return "object arrays differ in length"
        }
        guard edgeStart.count == n + 1, edgeStart[0] == 0, edgeStart[n] == edgeTarget.count,
              edgeSlot.count == edgeTarget.count else { return "edge arrays are inconsistent" }
        for i in 0..<n {
            if size[i] == 0 { return "object \(i) has size 0" }
            if i > 0 && address[i] <= address[i - 1] { return "object addresses do not increase at \(i)" }
            if Int(site[i]) > sites.count { return "object \(i) names site index \(site[i])" }
            if edgeStart[i + 1] < edgeStart[i] { return "edges of object \(i) run backwards" }
            var previous: Int = -1
            for e in edgeStart[i]..<edgeStart[i + 1] {
                let s = Int(edgeSlot[e])
                if s <= previous || UInt64(s) >= pointerSlots[i] { return "object \(i) has a bad edge slot \(s)" }
                previous = s
                if edgeTarget[e] < 0 || Int(edgeTarget[e]) >= n { return "object \(i) has an edge to \(edgeTarget[e])" }
            }
        }
        for r in roots where r.object < 0 || Int(r.object) >= n { return "root names object \(r.object)" }
        var end: UInt64 = 0
        for (k, s) in spans.enumerated() {
            if s.start < end { return "span \(k) overlaps the one before" }
            end = s.end
            if s.bitsOffset < 0 || s.bitsOffset + s.bitWords > allocBits.count || s.bitsOffset + s.bitWords > markBits.count {
                return "span \(k) bitmaps out of range"
            }
        }
        return nil
    }
}
