// The generators' side of a trace: fresh IDs, thread switches and record counts.
//
// Owns ID assignment for generated traces (1, 2, 3, ... in allocation order, never reused,
// so an ID never names two objects) and the `@ T` records: `thread(_:)` only changes the
// current thread, and the `@` record is written just before the next record that runs on
// a different thread. Generators call `alloc`/`free`/`hold`/`write`/`realloc` and keep the
// trace's semantic rules themselves (each generator's file says how).
public import HeapLabTrace

/// Where a generator's records go, with ID and thread bookkeeping.
public struct TraceOutput {
    private let put: (TraceRecord) throws(InputError) -> Void
    private var nextID: UInt64 = 1
    private var thread: UInt64 = 0
    private var emittedThread: UInt64 = 0
    /// Records written so far, header included.
    public private(set) var records = 0
    /// Objects allocated so far.
    public var allocations: UInt64 { nextID - 1 }

    /// Writes the header at once; every later record goes to `put` too.
    public init(_ put: @escaping (TraceRecord) throws(InputError) -> Void) throws(InputError) {
        self.put = put
        try put(.header(version: TraceLimits.version))
        records = 1
    }

    public mutating func site(_ id: UInt64, _ name: String) throws(InputError) {
        try put(.site(id: id, name: name))
        records += 1
    }

    /// Later records run on `number` (< 256).
    public mutating func thread(_ number: UInt64) {
        precondition(number < TraceLimits.maxThreads)
        thread = number
    }

    public mutating func alloc(size: UInt64, ptrs: UInt64 = 0, site: UInt64? = nil) throws(InputError) -> UInt64 {
        let id = nextID
        nextID += 1
        try emit(.alloc(id: id, size: size, ptrs: ptrs, site: site))
        return id
    }

    public mutating func free(_ id: UInt64) throws(InputError) { try emit(.free(id: id)) }
    public mutating func hold(_ id: UInt64) throws(InputError) { try emit(.hold(id: id)) }
    public mutating func write(_ src: UInt64, _ slot: UInt64, _ dst: UInt64?) throws(InputError) {
        try emit(.write(src: src, slot: slot, dst: dst))
    }
    public mutating func realloc(_ id: UInt64, size: UInt64) throws(InputError) {
        try emit(.realloc(id: id, size: size))
    }

    private mutating func emit(_ record: TraceRecord) throws(InputError) {
        if thread != emittedThread {
            try put(.thread(thread))
            emittedThread = thread
            records += 1
        }
        try put(record)
        records += 1
    }
}
