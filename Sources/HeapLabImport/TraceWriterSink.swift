// TraceWriter as an importer sink: the CLI imports straight into a text or binary trace file.
public import HeapLabTrace

extension TraceWriter: TraceSink {
    public func put(_ record: TraceRecord) throws(InputError) {
        try write(record)
    }
}
