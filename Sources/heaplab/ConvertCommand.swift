// `heaplab convert IN -o OUT [--text|--binary]`: rewrites a trace in the other (or the same)
// encoding, validating every record on the way (TraceValidator), so a converted trace is
// always a valid one. The output is canonical (docs/trace-binary-format.md; canonical text
// has no comments and single spaces). On any error nothing is left at OUT: the writer's
// temporary file is removed and the command exits with status 2.
import ArgumentParser
import HeapLabTrace

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a trace between the text and binary encodings, validating it.",
        discussion: """
            The input encoding and compression (zstd, gzip) are recognised by content. Text output is canonical (no \
            comments, single spaces); binary output is described in docs/trace-binary-format.md. \
            A trace that breaks any rule is rejected and OUT is left untouched.
            """)

    @Argument(help: "The trace to read (text or binary, plain or zstd/gzip-compressed).")
    var input: String

    @OptionGroup var output: TraceOutputOptions

    func run() throws {
        // (The closure returns the record count: a typed-throws closure returning Void
        // crashes the Swift 6.3.1 compiler in LifetimeDependenceDiagnostics.)
        _ = try reportingInputErrors { () throws(InputError) -> Int in
            var reader = try TraceReader.open(path: input)
            let writer = try TraceWriter(path: output.output, encoding: output.traceEncoding, zstd: output.zstd)
            do throws(InputError) {
                let validator = TraceValidator(file: input)
                while let record = try reader.next() {
                    try validator.check(record, at: reader.location)
                    try writer.write(record)
                }
                try validator.finish()
                try writer.finish()
                return validator.recordCount
            } catch {
                writer.abandon()
                throw error
            }
        }
    }
}
