// Where importers put the records they produce.
//
// Importers and the recorder-log converter never know whether their records end up in a
// text file, a binary file or memory: they write to a `TraceSink`. The CLI passes a
// `TraceWriter` (HeapLabTrace), tests pass a `RecordArraySink`.
//
// Contract: records arrive in trace order, starting with the header; a sink that throws
// stops the import, and the caller abandons the output.
public import HeapLabTrace

/// Receives the records of a trace in order.
public protocol TraceSink {
    mutating func put(_ record: TraceRecord) throws(InputError)
}

/// A sink that keeps every record in memory (tests, small traces).
public struct RecordArraySink: TraceSink, Sendable {
    public var records: [TraceRecord] = []

    public init() {}

    public mutating func put(_ record: TraceRecord) throws(InputError) {
        records.append(record)
    }
}
