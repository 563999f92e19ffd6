// `heaplab check TRACE [--json]`: validates a trace (either encoding) against every rule of
// TRACE-FORMAT.md and prints its statistics: record counts, bytes, peak live heap (live =
// reachable, from the Merlin lifetime oracle), a histogram by Go size class and an object
// lifetime histogram. docs/check.md describes the output and the JSON keys.
// Bad trace: `FILE:LINE: message` (or `FILE: byte N: message`), exit status 2.
import ArgumentParser
import HeapLabAllocator
import HeapLabTrace

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a trace and print its statistics.",
        discussion: """
            Checks every syntax and semantic rule of the trace format (header, sites, live and \
            reachable objects, holds, pointer slots, realloc of pointer-free objects), then \
            prints record counts, bytes allocated, the peak live heap, a size-class histogram \
            and an object lifetime histogram. See docs/check.md.
            """)

    @Argument(help: "The trace to check (text or binary, plain or zstd/gzip-compressed, recognised by content).")
    var trace: String

    @Flag(help: "Print the statistics as one JSON object (snake_case keys).")
    var json = false

    func run() throws {
        let stats = try reportingInputErrors { () throws(InputError) -> TraceStatistics in
            try TraceStatistics.compute(
                path: trace,
                classIndex: { size in
                    size > UInt64(AllocatorConstants.maxSmallSize) ? 0 : SizeClasses.classIndex(forSize: Int(size))
                },
                classSize: { c in
                    c > 0 && c < SizeClasses.table.count ? UInt64(SizeClasses.table[c].size) : nil
                })
        }
        print(json ? stats.json() : stats.table(file: trace), terminator: "")
    }
}
