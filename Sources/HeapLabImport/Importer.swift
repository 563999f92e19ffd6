// The importer front door: one entry point per input format, chosen by name.
//
// Owns the list of formats `heaplab import` accepts. Each importer reads its input with
// LineReader (so compression is recognised by content), writes a complete, valid trace into
// a TraceSink, and returns an ImportSummary; on bad input it throws InputError
// (`FILE:LINE: message`) and the caller abandons the output.
public import HeapLabTrace

/// The input formats HeapLab imports.
public enum ImportFormat: String, CaseIterable, Sendable {
    /// glibc mtrace logs (MALLOC_TRACE).
    case mtrace
    /// AOSP memory_replay dumps.
    case android
    /// heaptrack recordings (raw, gzip or zstd).
    case heaptrack

    /// Imports the file at `path` in this format into `sink`.
    public func run<Sink: TraceSink>(path: String, into sink: inout Sink) throws(InputError) -> ImportSummary {
        switch self {
        case .mtrace: return try MtraceImporter.run(path: path, into: &sink)
        case .android: return try AndroidImporter.run(path: path, into: &sink)
        case .heaptrack: return try HeaptrackImporter.run(path: path, into: &sink)
        }
    }
}
