// The lifetime oracle's product: for every object that dies, the record right after which
// it is dead, listed in record order. This is what explicit-free replays use to free each
// object at its exact death point (Hertz & Berger's "oracular memory management"; the death
// points are Merlin's, computed by TraceValidator in the same pass that validates).
//
// Numbering (shared with LifetimeObserver): records from 0 in reader order, the header
// being record 0; objects by allocation ordinal, 0 for the first `a` record of the trace.
// Objects still reachable at the end of the trace are not listed; `objectsLiveAtEnd`
// counts them.
//
// Memory: 16 bytes per dead object (the table is the whole trace's answer, unlike the
// validator, whose memory follows the live heap).

/// Death points of a trace's objects, in record order.
public struct DeathTable: Sendable, Equatable {
    public struct Entry: Sendable, Equatable, Hashable {
        /// The object is dead right after this record.
        public var recordIndex: Int
        /// Which object: 0 for the one allocated by the trace's first `a` record, and so on.
        public var allocOrdinal: Int
        public init(recordIndex: Int, allocOrdinal: Int) {
            self.recordIndex = recordIndex
            self.allocOrdinal = allocOrdinal
        }
    }

    public private(set) var entries: [Entry]
    /// Objects allocated by the trace (`a` records).
    public private(set) var allocations: Int
    /// Objects still reachable after the last record (not in `entries`).
    public private(set) var objectsLiveAtEnd: Int
    /// Records in the trace, the header included.
    public private(set) var records: Int

    public init(entries: [Entry], allocations: Int, objectsLiveAtEnd: Int, records: Int) {
        self.entries = entries
        self.allocations = allocations
        self.objectsLiveAtEnd = objectsLiveAtEnd
        self.records = records
    }

    public var count: Int { entries.count }
    public subscript(i: Int) -> Entry { entries[i] }
}

/// Collects deaths into a `DeathTable` (in plain memory: no exclusivity checks per death).
final class DeathTableBuilder: LifetimeObserver {
    private let buffer: UnsafeMutablePointer<RawBuffer<DeathTable.Entry>>

    init() {
        buffer = .allocate(capacity: 1)
        buffer.initialize(to: RawBuffer(capacity: 1024))
    }

    deinit {
        buffer.pointee.deallocate()
        buffer.deallocate()
    }

    var entries: [DeathTable.Entry] { Array(buffer.pointee.buffer) }

    func observe(_ events: UnsafeBufferPointer<LifetimeEvent>) {
        for e in events where e.kind == .died {
            buffer.pointee.append(DeathTable.Entry(recordIndex: e.record, allocOrdinal: e.ordinal))
        }
    }
}

/// Exact object death points (Merlin), computed while validating the trace.
public enum LifetimeOracle {
    /// Reads and validates the trace at `path` (either encoding) and returns its deaths.
    public static func deathTable(path: String) throws(InputError) -> DeathTable {
        var reader = try TraceReader.open(path: path)
        let builder = DeathTableBuilder()
        let validator = TraceValidator(file: path, observer: builder)
        while let record = try reader.next() { try validator.check(record, at: reader.location) }
        try validator.finish()
        return DeathTable(entries: builder.entries, allocations: validator.allocations,
                          objectsLiveAtEnd: validator.liveObjects, records: validator.recordCount)
    }

    /// Validates `records` (the header first) and returns their deaths. Errors name record
    /// `i` as `FILE:i` with `.line(i)` (0-based record index).
    public static func deathTable(records: some Sequence<TraceRecord>, file: String = "<records>") throws(InputError) -> DeathTable {
        try deathTable(records: records, file: file, growthSlack: 65536, searchSlack: 4096)
    }

    static func deathTable(records: some Sequence<TraceRecord>, file: String, growthSlack: Int,
                           searchSlack: Int) throws(InputError) -> DeathTable {
        let builder = DeathTableBuilder()
        let validator = TraceValidator(file: file, observer: builder, growthSlack: growthSlack, searchSlack: searchSlack)
        var i = 0
        for record in records {
            try validator.check(record, at: .line(i))
            i += 1
        }
        try validator.finish()
        return DeathTable(entries: builder.entries, allocations: validator.allocations,
                          objectsLiveAtEnd: validator.liveObjects, records: validator.recordCount)
    }
}
