// `heaplab replay TRACE --allocator NAME [--threads N] [--json] [--verify]`: replays one trace
// on one allocator and reports time, memory and fragmentation (HeapLabReplay does the work;
// docs/replay.md explains the figures). With `--snapshot-at`, `--snapshot-at-peak` or
// `--snapshot-every-gc` the replay runs in this process on HeapLab's allocator or the
// collector and writes heap snapshots (SnapshotCapture.swift; docs/inspect.md).
//
// The measurement always runs in a child process (`heaplab replay ... --child-program-fd 3
// --child-result-fd 4`, hidden options), started with the allocator's LD_PRELOAD; this
// process loads the trace and prints. A bad trace exits 2 with `FILE:LINE: message`; a
// missing allocator library or a failed replay exits 1.
import ArgumentParser
import Foundation
import HeapLabAllocator
import HeapLabReplay
import HeapLabSnapshot
#if canImport(Glibc)
import Glibc
#endif

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay an allocation trace on one allocator and measure it.",
        discussion: "Allocators: \(AllocatorKind.allCases.map(\.rawValue).joined(separator: ", ")). "
            + "jemalloc, mimalloc and tcmalloc are Debian's shared libraries, preloaded into the "
            + "measuring child process; go is Go 1.19's own runtime (allocator and collector), replayed "
            + "by tools/goreplay, which heaplab builds with `go build` on first use. See docs/replay.md.")

    @Argument(help: "The trace (text or binary encoding, plain or zstd/gzip-compressed).")
    var trace: String

    @Option(help: "Allocator to replay on.")
    var allocator: String = AllocatorKind.heaplab.rawValue

    @Option(help: "Replay threads (default: one per thread of the trace; 1 runs every record in file order).")
    var threads: Int?

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Flag(help: "Check every block the allocator returns (slow; not for timing). go: stop at an op naming an object Go's collector freed (GODEBUG=clobberfree=1).")
    var verify = false

    @Flag(help: "Free with the object's size where the allocator has a sized free (sdallocx, mi_free_size, tc_free_sized, HeapLab's; glibc has none).")
    var sizedFree = false

    @Option(help: "Take a heap snapshot after these records (comma-separated; header = record 0). --allocator heaplab or gc (gc: inside a collection started at that record). See docs/inspect.md.")
    var snapshotAt: [String] = []

    @Flag(help: "Take a heap snapshot after the record at which live bytes first peak (--allocator heaplab or gc).")
    var snapshotAtPeak = false

    @Flag(help: "Take a heap snapshot at every collection's mark termination: the marked objects (--allocator gc).")
    var snapshotEveryGc = false

    @Option(help: "Directory for snapshot files (default: the current directory).")
    var snapshotDir: String = "."

    @Option(help: "gc and go: GOGC, the heap growth between collections in percent, or 'off' (default: $GOGC, else 100).")
    var gogc: String?

    @Option(help: "gc and go: soft memory limit in bytes, with an optional B, KiB, MiB, GiB or TiB suffix, or 'off' (default: $GOMEMLIMIT, else none).")
    var memlimit: String?

    @Option(help: "gc: minimum heap goal (bytes, suffixes as --memlimit) instead of Go's 4 MiB x GOGC/100; with --gogc 0, a fixed-size heap.")
    var heapMinimum: String?

    @Flag(help: "gc: every collection stops the world for its whole mark (Go's gcstoptheworld=1).")
    var stw = false

    @Flag(help: "gc: no idle marking: only Go's 25% background workers mark, not CPUs the mutators leave idle (as on a machine with no spare CPU).")
    var noIdleMarking = false

    @Flag(help: "gc and go: print Go's gctrace line for every collection to stderr.")
    var gctrace = false

    @Option(help: "gc: write the collector's phases, workers and assists as a Chrome trace-event file (opens in Perfetto).")
    var timeline: String?

    @Flag(help: "gc: clear every object's data words, as Go's typed allocations do (default: only pointer slots are cleared; a trace's allocations have malloc's contract).")
    var zeroData = false

    @Flag(help: .private)
    var rawStores = false

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
        if allocator == AllocatorKind.go.rawValue {
            // Go's runtime takes GOGC, the memory limit and gctrace; nothing else of the collector's.
            if heapMinimum != nil {
                throw ValidationError("--heap-minimum does not apply to --allocator go: Go's runtime has no heap-minimum knob (use --gogc and --memlimit)")
            }
            if stw || noIdleMarking || zeroData || timeline != nil || rawStores {
                throw ValidationError("--stw, --no-idle-marking, --zero-data and --timeline need --allocator gc (Go's runtime has no such switches)")
            }
            if sizedFree {
                throw ValidationError("--sized-free does not apply to --allocator go (the collector frees)")
            }
            _ = try gcOptions()
        } else if allocator != AllocatorKind.gc.rawValue
            && (gogc != nil || memlimit != nil || heapMinimum != nil || stw || noIdleMarking || zeroData || gctrace || timeline != nil || rawStores) {
            throw ValidationError("--gogc, --memlimit, --heap-minimum, --stw, --no-idle-marking, --zero-data, --gctrace and --timeline need --allocator gc (--gogc, --memlimit and --gctrace also apply to go)")
        }
        if allocator == AllocatorKind.gc.rawValue {
            _ = try gcOptions()
            if sizedFree { throw ValidationError("--sized-free does not apply to --allocator gc (the collector frees)") }
        }
        // Snapshot option errors exit 2, as bad input does.
        if snapshotEveryGc && allocator != AllocatorKind.gc.rawValue {
            throw usageError("--snapshot-every-gc needs --allocator gc (it captures at each collection's mark termination)")
        }
        if wantsSnapshots {
            guard allocator == AllocatorKind.heaplab.rawValue || allocator == AllocatorKind.gc.rawValue else {
                throw usageError("heap snapshots need --allocator heaplab or gc, not \(allocator)")
            }
            if verify || sizedFree { throw usageError("--verify and --sized-free do not combine with snapshots") }
            if rawStores { throw usageError("--raw-stores does not combine with snapshots") }
            if snapshotRecords.contains(where: { $0 < 0 }) {
                throw usageError("--snapshot-at takes record numbers (0 or more), comma-separated")
            }
        }
    }

    var wantsSnapshots: Bool { !snapshotRecords.isEmpty || snapshotAtPeak || snapshotEveryGc }

    /// Prints `message` as the parser prints its errors and returns exit status 2.
    func usageError(_ message: String) -> ExitCode {
        printError("Error: \(message)")
        return ExitCode(2)
    }

    /// The collector's options: the command line, else GOGC and GOMEMLIMIT as Go reads them.
    func gcOptions() throws -> GCReplayOptions {
        var environment: [String: String] = [:]
        if gogc == nil, let v = getenv("GOGC") { environment["GOGC"] = String(cString: v) }
        if memlimit == nil, let v = getenv("GOMEMLIMIT") { environment["GOMEMLIMIT"] = String(cString: v) }
        do {
            let fromEnvironment = try GCConfiguration.fromEnvironment(environment)
            var o = GCReplayOptions(stopTheWorld: stw, gctrace: gctrace, timeline: timeline)
            o.rawStores = rawStores
            o.idleMarking = !noIdleMarking
            o.zeroData = zeroData
            o.gogc = try gogc.map { try GCConfiguration.parseGOGC($0) } ?? fromEnvironment.gogc
            o.memoryLimit = try memlimit.map { try GCConfiguration.parseMemoryLimit($0) } ?? fromEnvironment.memoryLimit
            if let heapMinimum {
                guard let bytes = try GCConfiguration.parseMemoryLimit(heapMinimum) else {
                    throw ValidationError("--heap-minimum takes bytes, not 'off'")
                }
                o.heapMinimum = bytes
            }
            return o
        } catch let error as GCConfigurationError {
            throw ValidationError("\(error)")
        }
    }

    /// --snapshot-at values: comma-separated record numbers, option repeatable.
    var snapshotRecords: [Int] {
        snapshotAt.flatMap { $0.split(separator: ",") }.map { Int($0.trimmingCharacters(in: .whitespaces)) ?? -1 }
    }

    func run() throws {
        let kind = AllocatorKind(rawValue: allocator)!
        if let programFD = childProgramFd, let resultFD = childResultFd {
            let status = ChildReplay.childMain(programFD: programFD, resultFD: resultFD, allocator: kind, verify: verify,
                                               sizedFree: sizedFree, gc: kind == .gc ? try gcOptions() : GCReplayOptions())
            if status != 0 { throw ExitCode(status) }
            return
        }
        if wantsSnapshots { return try runWithSnapshots(kind) }
        let report = try reportingInputErrors {
            try ChildReplay.replay(trace: trace, allocator: kind, threads: threads, verify: verify, sizedFree: sizedFree,
                                   gc: kind.isCollected ? try gcOptions() : nil)
        }
        print(json ? report.json().serialized() : report.text(), terminator: json ? "\n" : "")
    }

    /// An in-process replay on HeapLab's allocator or the collector that writes snapshots
    /// (SnapshotCapture.swift).
    func runWithSnapshots(_ kind: AllocatorKind) throws {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: snapshotDir, isDirectory: &isDirectory) {
            try FileManager.default.createDirectory(atPath: snapshotDir, withIntermediateDirectories: true)
        }
        let request = SnapshotRequest(records: snapshotRecords, atPeak: snapshotAtPeak, everyGC: snapshotEveryGc, directory: snapshotDir)
        let gc = kind == .gc ? try gcOptions() : GCReplayOptions()
        let (report, written) = try reportingInputErrors {
            try SnapshotReplay.replay(trace: trace, threads: threads, request: request, allocator: kind, gc: gc)
        }
        if json {
            var members = report.json().objectValue ?? []
            members.append(JSONMember("snapshots", .array(written.map { w in
                .object([
                    JSONMember("path", .string(w.path)), JSONMember("record", .int(w.record)),
                    JSONMember("trigger", .string(w.trigger.name)), JSONMember("objects", .int(w.objects)),
                    JSONMember("edges", .int(w.edges)), JSONMember("pause_ns", .int(Int(w.pauseNanos))),
                    JSONMember("bytes", .int(w.bytes)), JSONMember("write_ns", .int(Int(w.writeNanos))),
                    JSONMember("gc_cycle", kind == .gc ? .int(w.gcCycle) : .null),
                ])
            })))
            print(JSONValue.object(members).serialized())
            return
        }
        print(report.text(), terminator: "")
        for w in written {
            let cycle = kind == .gc ? ", gc cycle \(w.gcCycle)" : ""
            print("snapshot       \(w.path): record \(w.record) (\(w.trigger.name))\(cycle), \(w.objects) objects, \(w.edges) pointers, pause \(Double(w.pauseNanos) / 1e6) ms, \(w.bytes) bytes written in \(Double(w.writeNanos) / 1e6) ms")
        }
    }
}
