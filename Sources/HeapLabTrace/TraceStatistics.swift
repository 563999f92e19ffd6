// Figures about a trace, for `heaplab check` (docs/check.md): record counts, bytes, peak
// live heap, a size histogram by allocator size class, and an object lifetime histogram.
//
// It is a `LifetimeObserver` of the validator, so "live" means what the trace format means:
// allocated and not yet dead, where an object dies when it becomes unreachable (the
// Merlin oracle's death points; for traces without `w`, at the `f` that drops its last
// hold). Live bytes are the sum of current requested sizes (after `r`) of live objects;
// the peak is taken after each record's allocation or resize, before its deaths.
//
// Byte totals are UInt128: a hostile trace of 2^24 objects of 2^40 bytes would overflow
// 64 bits, and the figures must stay exact.
//
// Size classes come from the caller (the CLI passes HeapLabAllocator's Go size classes):
// `classIndex(size)` gives 1...N for small sizes and 0 for sizes served as large objects.
// The histogram counts allocation requests: every `a` record's SIZE and every `r`
// record's new SIZE. Lifetimes are in records, death record - allocation record (>= 1),
// bucketed by powers of two: [1,1], [2,3], [4,7], ...

/// Statistics of one trace; feed records with `count(_:)` and register it as the
/// validator's observer, or use `TraceStatistics.compute(path:...)`.
public final class TraceStatistics: LifetimeObserver {
    public struct SizeClassBucket: Equatable, Sendable {
        /// Allocator size class; 0 means large (above the small-object limit).
        public var sizeClass: Int
        /// Object size of the class; nil for large objects.
        public var bytesPerObject: UInt64?
        public var count: Int
        /// Sum of the requested sizes in this class.
        public var bytes: UInt128
    }

    public struct LifetimeBucket: Equatable, Sendable {
        public var minRecords: Int
        public var maxRecords: Int
        public var count: Int
    }

    public private(set) var records = 0
    public private(set) var allocations = 0
    public private(set) var frees = 0
    public private(set) var reallocs = 0
    public private(set) var pointerStores = 0
    public private(set) var holds = 0
    public private(set) var sites = 0
    /// Threads that run at least one object record (a, f, h, w, r).
    public private(set) var threads = 0
    public private(set) var totalBytesAllocated: UInt128 = 0
    public private(set) var peakLiveBytes: UInt128 = 0
    public private(set) var peakLiveObjects = 0
    /// Objects still reachable after the last record; set by `finish(liveObjects:)`.
    public private(set) var objectsLiveAtEnd = 0

    private let classIndex: (UInt64) -> Int
    private let classSize: (Int) -> UInt64?
    private var classCounts: [Int] = []
    private var classBytes: [UInt128] = []
    private var lifetimeCounts = [Int](repeating: 0, count: 64)
    private var liveBytes: UInt128 = 0
    private var liveObjects = 0
    private var currentThread = 0
    private var threadSeen = [Bool](repeating: false, count: Int(TraceLimits.maxThreads))

    /// `classIndex` maps a request size to its size class (0 for large); `classSize` gives a
    /// class's object size (nil for 0).
    public init(classIndex: @escaping (UInt64) -> Int, classSize: @escaping (Int) -> UInt64?) {
        self.classIndex = classIndex
        self.classSize = classSize
    }

    /// Counts one record (in trace order).
    public func count(_ record: TraceRecord) {
        records += 1
        switch record {
        case .header:
            break
        case .site:
            sites += 1
        case .thread(let t):
            currentThread = Int(t)
        case .alloc(_, let size, _, _):
            allocations += 1
            request(size)
            noteThread()
        case .free:
            frees += 1
            noteThread()
        case .hold:
            holds += 1
            noteThread()
        case .write:
            pointerStores += 1
            noteThread()
        case .realloc(_, let size):
            reallocs += 1
            request(size)
            noteThread()
        }
    }

    private func noteThread() {
        if !threadSeen[currentThread] {
            threadSeen[currentThread] = true
            threads += 1
        }
    }

    private func request(_ size: UInt64) {
        totalBytesAllocated += UInt128(size)
        let c = max(0, classIndex(size))
        if c >= classCounts.count {
            classCounts += [Int](repeating: 0, count: c + 1 - classCounts.count)
            classBytes += [UInt128](repeating: 0, count: c + 1 - classBytes.count)
        }
        classCounts[c] += 1
        classBytes[c] += UInt128(size)
    }

    public func observe(_ events: UnsafeBufferPointer<LifetimeEvent>) {
        var live = liveBytes, objects = liveObjects
        var peakBytes = peakLiveBytes, peakObjects = peakLiveObjects
        for e in events {
            switch e.kind {
            case .allocated:
                live += UInt128(e.size)
                objects += 1
                if live > peakBytes { peakBytes = live }
                if objects > peakObjects { peakObjects = objects }
            case .resized:
                live = live - UInt128(e.oldSize) + UInt128(e.size)
                if live > peakBytes { peakBytes = live }
            case .died:
                live -= UInt128(e.size)
                objects -= 1
                let lifetime = max(1, e.record - e.allocRecord)
                lifetimeCounts[Int.bitWidth - 1 - lifetime.leadingZeroBitCount] += 1
            }
        }
        liveBytes = live
        liveObjects = objects
        peakLiveBytes = peakBytes
        peakLiveObjects = peakObjects
    }

    /// Records the number of objects reachable at the end (the validator's `liveObjects`
    /// after `finish()`).
    public func finish(liveObjects: Int) {
        objectsLiveAtEnd = liveObjects
    }

    /// Non-empty size classes, small classes in increasing order, then large (class 0).
    public var sizeHistogram: [SizeClassBucket] {
        var out: [SizeClassBucket] = []
        for c in classCounts.indices.dropFirst() where classCounts[c] > 0 {
            out.append(SizeClassBucket(sizeClass: c, bytesPerObject: classSize(c), count: classCounts[c], bytes: classBytes[c]))
        }
        if let large = classCounts.first, large > 0 {
            out.append(SizeClassBucket(sizeClass: 0, bytesPerObject: nil, count: large, bytes: classBytes[0]))
        }
        return out
    }

    /// Non-empty power-of-two lifetime buckets, shortest first (objects that died only).
    public var lifetimeHistogram: [LifetimeBucket] {
        var out: [LifetimeBucket] = []
        for k in 0..<63 where lifetimeCounts[k] > 0 {
            out.append(LifetimeBucket(minRecords: 1 << k, maxRecords: (1 << (k + 1)) - 1, count: lifetimeCounts[k]))
        }
        return out
    }

    /// Reads, validates and measures the trace at `path`.
    public static func compute(path: String, classIndex: @escaping (UInt64) -> Int,
                               classSize: @escaping (Int) -> UInt64?) throws(InputError) -> TraceStatistics {
        var reader = try TraceReader.open(path: path)
        let stats = TraceStatistics(classIndex: classIndex, classSize: classSize)
        let validator = TraceValidator(file: path, observer: stats)
        while let record = try reader.next() {
            try validator.check(record, at: reader.location)
            stats.count(record)
        }
        try validator.finish()
        stats.finish(liveObjects: validator.liveObjects)
        return stats
    }

    // MARK: Output

    /// JSON object with snake_case keys (documented in docs/check.md), one line, "\n" ended.
    public func json() -> String {
        var s = "{"
        func field(_ key: String, _ value: String) { s += (s.count > 1 ? "," : "") + "\"\(key)\":\(value)" }
        field("records", "\(records)")
        field("allocations", "\(allocations)")
        field("frees", "\(frees)")
        field("reallocs", "\(reallocs)")
        field("pointer_stores", "\(pointerStores)")
        field("holds", "\(holds)")
        field("threads", "\(threads)")
        field("sites", "\(sites)")
        field("total_bytes_allocated", "\(totalBytesAllocated)")
        field("peak_live_bytes", "\(peakLiveBytes)")
        field("peak_live_objects", "\(peakLiveObjects)")
        field("objects_live_at_end", "\(objectsLiveAtEnd)")
        let sizes = sizeHistogram.map { b in
            "{\"class\":\(b.sizeClass),\"bytes_per_obj\":\(b.bytesPerObject.map { "\($0)" } ?? "null"),"
                + "\"count\":\(b.count),\"bytes\":\(b.bytes)}"
        }
        field("size_histogram", "[" + sizes.joined(separator: ",") + "]")
        let lifetimes = lifetimeHistogram.map { b in
            "{\"min_records\":\(b.minRecords),\"max_records\":\(b.maxRecords),\"count\":\(b.count)}"
        }
        field("lifetime_histogram", "[" + lifetimes.joined(separator: ",") + "]")
        return s + "}\n"
    }

    /// The human-readable report of `heaplab check`.
    public func table(file: String) -> String {
        func row(_ name: String, _ value: String) -> String {
            pad(name, 24, left: true) + value + "\n"
        }
        var s = "\(file): valid trace\n"
        s += row("records", "\(records)")
        s += row("allocations (a)", "\(allocations)")
        s += row("frees (f)", "\(frees)")
        s += row("reallocs (r)", "\(reallocs)")
        s += row("pointer stores (w)", "\(pointerStores)")
        s += row("holds (h)", "\(holds)")
        s += row("threads", "\(threads)")
        s += row("sites", "\(sites)")
        s += row("bytes allocated", "\(totalBytesAllocated)")
        s += row("peak live bytes", "\(peakLiveBytes)")
        s += row("peak live objects", "\(peakLiveObjects)")
        s += row("live at end", "\(objectsLiveAtEnd)")
        let sizes = sizeHistogram
        if !sizes.isEmpty {
            s += "\n" + pad("class", 10) + pad("bytes/obj", 12) + pad("count", 13) + pad("bytes", 17) + "\n"
            for b in sizes {
                let name = b.sizeClass == 0 ? "large" : "\(b.sizeClass)"
                s += pad(name, 10) + pad(b.bytesPerObject.map { "\($0)" } ?? "-", 12)
                    + pad("\(b.count)", 13) + pad("\(b.bytes)", 17) + "\n"
            }
        }
        let lifetimes = lifetimeHistogram
        if !lifetimes.isEmpty {
            s += "\n" + pad("lifetime (records)", 20, left: true) + pad("objects", 15) + "\n"
            for b in lifetimes {
                s += pad(b.minRecords == b.maxRecords ? "\(b.minRecords)" : "\(b.minRecords)-\(b.maxRecords)", 20, left: true)
                    + pad("\(b.count)", 15) + "\n"
            }
        }
        return s
    }

    private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        if text.count >= width { return left ? text + " " : " " + text }
        let spaces = String(repeating: " ", count: width - text.count)
        return left ? text + spaces : spaces + text
    }
}
