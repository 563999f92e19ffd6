// Turning a stream of malloc/free/realloc calls on addresses into a valid HeapLab trace.
//
// Shared by the mtrace and Android importers, by heaptrack's pointer-based (version 0)
// files, and by `heaplab record`'s log converter. Each importer parses its own syntax and
// calls `malloc`, `free`, `realloc` (or the split `beginRealloc`/`endRealloc` pair) here.
//
// The mapping (see docs/importers.md):
//   - every successful allocation gets a fresh trace ID (1, 2, 3, ... in order), so IDs are
//     never reused, live or dead; the address map sends the address to that ID until the
//     address is freed, after which a later malloc may return the same address again;
//   - realloc that succeeds is `r ID SIZE`: the object keeps its ID, the map entry moves to
//     the new address; realloc(NULL, n) is malloc; realloc(p, 0) returning NULL frees p (glibc);
//     a failed realloc (NULL, size > 0) leaves p as it was;
//   - a free of an address that is not in the map (allocated before tracing began, or by
//     an untraced path) is skipped and counted; free(NULL) is a no-op;
//   - an allocation reported at an address that is still live means a free was lost: the
//     old object is freed first (counted as `replacedLive`), so the trace stays valid;
//   - size 0 becomes size 1 (the format requires SIZE >= 1; malloc(0) returns a unique
//     pointer anyway), counted; a size above 2^40 is an input error;
//   - failed allocations (address 0) are skipped and counted;
//   - `@ T` is emitted only when the thread of the next record differs from the last one.
//
// Invariants: `table` holds exactly the live objects (address -> ID); `pending` holds the
// objects detached by a `beginRealloc` whose `endRealloc` has not arrived, keyed by the
// caller's token (the thread); every record put into the sink keeps the trace valid.
public import HeapLabTrace

/// What an import did, for the summary line the CLI prints on stderr.
public struct ImportSummary: Equatable, Sendable, CustomStringConvertible {
    public var records = 0
    public var allocations = 0
    public var frees = 0
    public var reallocs = 0
    public var sites = 0
    /// Frees (or realloc(p, 0)) of addresses the trace never allocated: skipped.
    public var unknownFrees = 0
    /// Reallocs of addresses the trace never allocated: imported as a fresh allocation.
    public var unknownReallocs = 0
    /// Allocation calls that returned NULL, and failed reallocs: skipped.
    public var failedCalls = 0
    /// Allocations of 0 bytes, recorded as 1 byte.
    public var zeroSizeAllocations = 0
    /// Allocations at an address that was still live (a lost free): the old object was freed.
    public var replacedLive = 0
    /// Thread numbers handed to a new OS thread after their first thread finished.
    public var threadNumbersReused = 0
    /// Objects still live at the end of the trace (leaks, or the program was cut short).
    public var liveAtEnd = 0
    /// Importer-specific remarks (one short sentence each).
    public var notes: [String] = []

    public init() {}

    public var description: String {
        var parts = ["\(records) records: \(allocations) allocations, \(frees) frees, \(reallocs) reallocs, \(sites) sites, \(liveAtEnd) live at end"]
        if unknownFrees > 0 { parts.append("skipped \(unknownFrees) frees of unknown addresses") }
        if unknownReallocs > 0 { parts.append("\(unknownReallocs) reallocs of unknown addresses imported as allocations") }
        if failedCalls > 0 { parts.append("skipped \(failedCalls) failed allocation calls") }
        if zeroSizeAllocations > 0 { parts.append("\(zeroSizeAllocations) zero-byte allocations recorded as 1 byte") }
        if replacedLive > 0 { parts.append("\(replacedLive) allocations at a still-live address (old object freed first)") }
        if threadNumbersReused > 0 { parts.append("\(threadNumbersReused) thread numbers reused after their threads finished") }
        parts.append(contentsOf: notes)
        return parts.joined(separator: "; ")
    }
}

/// Builds a valid trace from address-level malloc events.
public struct MallocTraceBuilder<Sink: TraceSink>: ~Copyable {
    public private(set) var sink: Sink
    /// The input file, for error messages.
    public let file: String
    public private(set) var summary = ImportSummary()

    private var table = AddressTable()
    private var nextID: UInt64 = 1
    private var thread: UInt64 = 0
    private var emittedThread: UInt64 = 0
    private var siteNumbers: [String: UInt64] = [:]
    private var pending: [UInt64: (id: UInt64, address: UInt64)] = [:]

    /// Starts the trace (writes the header).
    public init(sink: consuming Sink, file: String) throws(InputError) {
        self.sink = sink
        self.file = file
        try self.sink.put(.header(version: TraceLimits.version))
        summary.records = 1
    }

    /// Records from now on run on trace thread `number` (< 256).
    public mutating func setThread(_ number: UInt64) {
        thread = number
    }

    /// The site number for `name`, declaring it (`s SITE NAME`) on first use.
    public mutating func site(named rawName: String) throws(InputError) -> UInt64 {
        let name = Self.sanitizedSiteName(rawName)
        if let number = siteNumbers[name] { return number }
        let number = UInt64(siteNumbers.count + 1)
        siteNumbers[name] = number
        try put(.site(id: number, name: name))
        summary.sites += 1
        return number
    }

    /// A successful (address != 0) or failed (address == 0) allocation of `size` bytes.
    public mutating func malloc(address: UInt64, size: UInt64, site: UInt64?,
                                at location: InputLocation) throws(InputError) {
        if address == 0 {
            summary.failedCalls += 1
            return
        }
        let size = try normalized(size, at: location)
        try evictLive(at: address)
        let id = nextID
        nextID += 1
        table.insert(address, id)
        try emit(.alloc(id: id, size: size, ptrs: 0, site: site))
        summary.allocations += 1
    }

    /// free(address). free(NULL) is a no-op; unknown addresses are skipped and counted.
    public mutating func free(address: UInt64) throws(InputError) {
        if address == 0 { return }
        if let id = table.remove(address) {
            try emit(.free(id: id))
            summary.frees += 1
        } else {
            summary.unknownFrees += 1
        }
    }

    /// A free the importer already knows refers to nothing live: skipped and counted.
    public mutating func skipUnknownFree() {
        summary.unknownFrees += 1
    }

    /// realloc(old, size) that returned `new`, reported as one event.
    public mutating func realloc(old: UInt64, new: UInt64, size: UInt64, site: UInt64?,
                                 at location: InputLocation) throws(InputError) {
        if old == 0 {
            try malloc(address: new, size: size, site: site, at: location)
            return
        }
        if new == 0 {
            if size == 0 {
                try free(address: old)
            } else {
                summary.failedCalls += 1
            }
            return
        }
        guard let id = table.remove(old) else {
            summary.unknownReallocs += 1
            try malloc(address: new, size: size, site: site, at: location)
            return
        }
        try move(id: id, to: new, size: size, at: location)
    }

    /// First half of a realloc whose result is reported later (by `endRealloc` with the same
    /// `token`): the old block leaves the address map now, because once the real realloc
    /// has run another thread may be handed the same address.
    public mutating func beginRealloc(old: UInt64, token: UInt64) {
        let id = old == 0 ? 0 : (table.remove(old) ?? UInt64.max)
        pending[token] = (id: id, address: old)
    }

    /// Second half of a split realloc: it returned `new` for `size` bytes.
    public mutating func endRealloc(new: UInt64, size: UInt64, token: UInt64, site: UInt64?,
                                    at location: InputLocation) throws(InputError) {
        guard let (id, old) = pending.removeValue(forKey: token) else {
            throw InputError(file: file, location: location, message: "realloc result without a realloc start")
        }
        if old == 0 {
            try malloc(address: new, size: size, site: site, at: location)
            return
        }
        let known = id != UInt64.max
        if new == 0 {
            if size == 0 {
                if known {
                    try emit(.free(id: id))
                    summary.frees += 1
                } else {
                    summary.unknownFrees += 1
                }
            } else {
                if known { table.insert(old, id) }
                summary.failedCalls += 1
            }
            return
        }
        guard known else {
            summary.unknownReallocs += 1
            try malloc(address: new, size: size, site: site, at: location)
            return
        }
        try move(id: id, to: new, size: size, at: location)
    }

    /// Frees every live object (a process image replaced by exec: its heap is gone), in ID order.
    public mutating func releaseAll() throws(InputError) {
        var ids: [UInt64] = []
        ids.reserveCapacity(table.count + pending.count)
        try table.forEach { _, id in ids.append(id) }
        for (_, entry) in pending where entry.id != 0 && entry.id != UInt64.max { ids.append(entry.id) }
        ids.sort()
        for id in ids {
            try emit(.free(id: id))
            summary.frees += 1
        }
        table.removeAll()
        pending.removeAll()
    }

    /// Ends the build and hands back the sink and the summary.
    public consuming func finish() -> (sink: Sink, summary: ImportSummary) {
        summary.liveAtEnd = table.count
            + pending.values.filter { $0.id != 0 && $0.id != UInt64.max }.count
        return (sink, summary)
    }

    /// A site name a text trace can hold: printable ASCII without `#` (other bytes become
    /// `?`), no blanks at either end, at most 1024 bytes (longer names are cut, ending `...`).
    public static func sanitizedSiteName(_ name: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(name.utf8.count, 1024))
        for b in name.utf8 {
            if bytes.count == 1024 {
                bytes.removeLast(3)
                bytes.append(contentsOf: [0x2E, 0x2E, 0x2E])
                break
            }
            bytes.append((b >= 0x20 && b <= 0x7E && b != 0x23) ? b : 0x3F)
        }
        while let last = bytes.last, last == 0x20 { bytes.removeLast() }
        let firstKept = bytes.firstIndex { $0 != 0x20 } ?? bytes.count
        let trimmed = bytes[firstKept...]
        return trimmed.isEmpty ? "?" : String(decoding: trimmed, as: UTF8.self)
    }

    // MARK: - Internals

    private mutating func move(id: UInt64, to new: UInt64, size: UInt64,
                               at location: InputLocation) throws(InputError) {
        let size = try normalized(size, at: location)
        try evictLive(at: new)
        table.insert(new, id)
        try emit(.realloc(id: id, size: size))
        summary.reallocs += 1
    }

    /// An allocation landed on a live address: its free was lost; free the old object first.
    private mutating func evictLive(at address: UInt64) throws(InputError) {
        if let stale = table.remove(address) {
            try emit(.free(id: stale))
            summary.replacedLive += 1
        }
    }

    private mutating func normalized(_ size: UInt64, at location: InputLocation) throws(InputError) -> UInt64 {
        if size == 0 {
            summary.zeroSizeAllocations += 1
            return 1
        }
        if size > TraceLimits.maxSize {
            throw InputError(file: file, location: location,
                             message: "allocation of \(size) bytes exceeds the trace format's limit of 2^40 bytes")
        }
        return size
    }

    private mutating func emit(_ record: TraceRecord) throws(InputError) {
        if thread != emittedThread {
            try sink.put(.thread(thread))
            emittedThread = thread
            summary.records += 1
        }
        try sink.put(record)
        summary.records += 1
    }

    private mutating func put(_ record: TraceRecord) throws(InputError) {
        try sink.put(record)
        summary.records += 1
    }
}
