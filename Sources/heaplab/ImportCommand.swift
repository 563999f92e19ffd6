// `heaplab import mtrace|android|heaptrack INPUT -o OUT [--text|--binary]`: converts another
// tool's allocation log into a HeapLab trace (HeapLabImport does the work; docs/importers.md
// describes each format and how it maps). A summary line (records, skipped frees of unknown
// addresses, ...) goes to stderr. Bad input: `FILE:LINE: message`, exit 2, no output file.
//
// Also home of `TraceOutputOptions`, the `-o OUT [--text|--binary]` group shared by the
// commands that write traces (import, record, gen).
import ArgumentParser
import HeapLabImport
import HeapLabTrace

/// `-o OUT` and the output encoding, for every command that writes a trace.
struct TraceOutputOptions: ParsableArguments {
    enum Encoding: String, EnumerableFlag {
        case text, binary

        static func help(for value: Encoding) -> ArgumentHelp? {
            switch value {
            case .text: return "Write the text encoding (default)."
            case .binary: return "Write the compact binary encoding."
            }
        }
    }

    @Option(name: .shortAndLong, help: "The trace file to write (replaced atomically).")
    var output: String

    @Flag(exclusivity: .exclusive)
    var encoding: Encoding = .text

    @Flag(help: "Compress the output with zstd (level 19); every command reads it as is.")
    var zstd = false

    var traceEncoding: TraceEncoding { encoding == .binary ? .binary : .text }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a glibc mtrace log, an Android memory_replay dump or a heaptrack recording into a trace.",
        discussion: """
            Formats: mtrace (MALLOC_TRACE logs), android (memory_replay dumps), heaptrack
            (heaptrack's .zst/.gz/raw recordings). Compression is recognised by content.
            Frees of blocks allocated before tracing began are skipped and counted.
            See docs/importers.md.
            """)

    @Argument(help: "Input format: \(ImportFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: String

    @Argument(help: "The file to import.")
    var input: String

    @OptionGroup var output: TraceOutputOptions

    @Flag(help: "Do not print the summary line.")
    var quiet = false

    func validate() throws {
        guard ImportFormat(rawValue: format) != nil else {
            throw ValidationError("unknown format '\(format)' (one of: \(ImportFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    func run() throws {
        let format = ImportFormat(rawValue: format)!
        let summary: ImportSummary = try reportingInputErrors {
            var writer = try TraceWriter(path: output.output, encoding: output.traceEncoding, zstd: output.zstd)
            do throws(InputError) {
                let summary = try format.run(path: input, into: &writer)
                try writer.finish()
                return summary
            } catch {
                writer.abandon()
                throw error
            }
        }
        if !quiet { printError("heaplab import: \(input): \(summary)") }
    }
}
