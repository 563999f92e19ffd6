// `heaplab replay TRACE --allocator NAME [--threads N] [--json] [--verify]`: replays one trace
// on one allocator and reports time, memory and fragmentation (HeapLabReplay does the work;
// docs/replay.md explains the figures).
//
// The measurement always runs in a child process (`heaplab replay ... --child-program-fd 3
// --child-result-fd 4`, hidden options), started with the allocator's LD_PRELOAD; this
// process loads the trace and prints. A bad trace exits 2 with `FILE:LINE: message`; a
// missing allocator library or a failed replay exits 1.
import ArgumentParser
import HeapLabReplay
#if canImport(Glibc)
import Glibc
#endif

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay an allocation trace on one allocator and measure it.",
        discussion: "Allocators: \(AllocatorKind.allCases.map(\.rawValue).joined(separator: ", ")). "
            + "jemalloc, mimalloc and tcmalloc are Debian's shared libraries, preloaded into the "
            + "measuring child process. See docs/replay.md.")

    @Argument(help: "The trace (text or binary encoding).")
    var trace: String

    @Option(help: "Allocator to replay on.")
    var allocator: String = AllocatorKind.heaplab.rawValue

    @Option(help: "Replay threads (default: one per thread of the trace; 1 runs every record in file order).")
    var threads: Int?

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Flag(help: "Check every block the allocator returns (slow; not for timing).")
    var verify = false

    @Flag(help: "Free with the object's size where the allocator has a sized free (sdallocx, mi_free_size, tc_free_sized, HeapLab's; glibc has none).")
    var sizedFree = false

    @Option(help: .private)
    var childProgramFd: Int32?

    @Option(help: .private)
    var childResultFd: Int32?

    func validate() throws {
        guard AllocatorKind(rawValue: allocator) != nil else {
            throw ValidationError("unknown allocator '\(allocator)' (one of: \(AllocatorKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be 1...256") }
        if (childProgramFd == nil) != (childResultFd == nil) {
            throw ValidationError("--child-program-fd and --child-result-fd go together")
        }
    }

    func run() throws {
        let kind = AllocatorKind(rawValue: allocator)!
        if let programFD = childProgramFd, let resultFD = childResultFd {
            let status = ChildReplay.childMain(programFD: programFD, resultFD: resultFD, allocator: kind, verify: verify,
                                               sizedFree: sizedFree)
            if status != 0 { throw ExitCode(status) }
            return
        }
        let report = try reportingInputErrors {
            try ChildReplay.replay(trace: trace, allocator: kind, threads: threads, verify: verify, sizedFree: sizedFree)
        }
        print(json ? report.json().serialized() : report.text(), terminator: json ? "\n" : "")
    }
}
