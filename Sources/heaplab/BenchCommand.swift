// `heaplab bench [TRACE...]`: every trace on every allocator, each run in its own process,
// interleaved, with a warm-up round; prints an aligned table and a geometric-mean summary,
// and writes JSON / CSV / HTML reports on request (HeapLabReplay's Bench*, docs/bench.md).
//
// Without traces it runs the bundled set (traces/ here or in the enclosing package, or
// --traces-dir). Allocators whose library is missing are skipped with a warning. A progress
// bar goes to stderr when stderr is a terminal and the bench has run for over a second.
import ArgumentParser
import HeapLabAllocator
import HeapLabReplay
import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Compare allocators on traces: interleaved runs, medians, pair-by-pair ratios, reports.")

    @Argument(help: "Traces to run (default: every trace in the bundled traces/ directory).")
    var traces: [String] = []

    @Option(help: "Comma-separated allocators (default: \(AllocatorKind.benchDefault.map(\.rawValue).joined(separator: ","))).")
    var allocators: String?

    @Option(help: "Counted runs per allocator and trace (one more warm-up run is not counted).")
    var runs = 5

    @Option(help: "Allocator the ratios are taken against.")
    var baseline = AllocatorKind.jemalloc.rawValue

    @Option(help: "Replay threads (default: one per trace thread).")
    var threads: Int?

    @Flag(help: "Free with the object's size where the allocator has a sized free (see replay --help).")
    var sizedFree = false

    @Option(help: "Directory of the bundled traces.")
    var tracesDir: String?

    @Option(help: "Write every figure as JSON to this file.")
    var json: String?

    @Option(help: "Write every figure as CSV to this file.")
    var csv: String?

    @Option(help: "Write a self-contained HTML report to this file.")
    var html: String?

    @Option(help: "GOGC for the gc and go allocators' runs, or 'off' (default: $GOGC, else 100).")
    var gogc: String?

    @Option(help: "Hertz & Berger heap sweep: run gc (and go, when listed) with a fixed heap of each of these factors of the trace's minimum heap (peak live bytes), e.g. 1.25,1.5,2,3,4,6; ratios against the baseline (oracle frees). See docs/bench.md.")
    var heapSweep: String?

    func parsedAllocators() throws -> [AllocatorKind] {
        guard let allocators else { return AllocatorKind.benchDefault }
        var result: [AllocatorKind] = []
        for name in allocators.split(separator: ",") {
            let trimmed = name.trimmingSpaces()
            guard let kind = AllocatorKind(rawValue: trimmed) else {
                throw ValidationError("unknown allocator '\(trimmed)' (one of: \(AllocatorKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if !result.contains(kind) { result.append(kind) }
        }
        guard !result.isEmpty else { throw ValidationError("--allocators is empty") }
        return result
    }

    func validate() throws {
        _ = try parsedAllocators()
        guard AllocatorKind(rawValue: baseline) != nil else { throw ValidationError("unknown baseline allocator '\(baseline)'") }
        guard runs >= 1 && runs <= 1000 else { throw ValidationError("--runs must be 1...1000") }
        if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be 1...256") }
        _ = try sweepFactors()
        _ = try gcOptions()
    }

    /// --heap-sweep: factors above 1 (the minimum heap itself leaves no room for garbage).
    func sweepFactors() throws -> [Double] {
        guard let heapSweep else { return [] }
        var factors: [Double] = []
        for text in heapSweep.split(separator: ",") {
            let t = text.trimmingSpaces()
            guard let f = Double(t), f.isFinite, f > 1, f <= 1000 else {
                throw ValidationError("--heap-sweep takes factors above 1 (at most 1000), comma-separated, not '\(t)'")
            }
            factors.append(f)
        }
        guard !factors.isEmpty else { throw ValidationError("--heap-sweep is empty") }
        return factors
    }

    func gcOptions() throws -> GCReplayOptions {
        var o = GCReplayOptions()
        do {
            if let gogc {
                o.gogc = try GCConfiguration.parseGOGC(gogc)
            } else if let v = getenv("GOGC") {
                o.gogc = try GCConfiguration.parseGOGC(String(cString: v))
            }
        } catch {
            throw ValidationError("\(error)")
        }
        return o
    }

    func run() throws {
        var list = try parsedAllocators()
        let base = AllocatorKind(rawValue: baseline)!
        if !list.contains(base) { list.append(base) }
        let paths = traces.isEmpty ? try Bench.bundledTraces(directory: tracesDir) : traces
        var bar = ProgressBar()
        let result = try reportingInputErrors {
            var options = BenchOptions(traces: paths, allocators: list, runs: runs, baseline: base, threads: threads,
                                       sizedFree: sizedFree)
            options.gc = try gcOptions()
            options.heapSweep = try sweepFactors()
            return try Bench.run(options) {
                bar.update($0)
            }
        }
        bar.finish()
        print(result.table(), terminator: "")
        try reportingInputErrors {
            if let json { try AtomicOutputFile.write(result.json().serialized() + "\n", to: json) }
            if let csv { try AtomicOutputFile.write(result.csv(), to: csv) }
            if let html { try AtomicOutputFile.write(BenchHTML.render(result), to: html) }
        }
    }
}

/// A one-line progress bar on stderr, shown only on a terminal and only after a second.
struct ProgressBar {
    let enabled = isatty(2) != 0
    let start = ReplaySystem.monotonicNanos()
    var shown = false

    mutating func update(_ p: BenchProgress) {
        guard enabled, ReplaySystem.monotonicNanos() - start > 1_000_000_000 else { return }
        shown = true
        let width = 28
        let filled = p.total > 0 ? p.done * width / p.total : 0
        let name = p.trace.split(separator: "/").last.map(String.init) ?? p.trace
        let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
            + "] \(p.done)/\(p.total) runs  \(name) · \(p.allocator.rawValue)\(p.warmUp ? " (warm-up)" : "")"
        printErrorNoNewline(String(line.prefix(160)) + "\u{1B}[K")
    }

    mutating func finish() {
        if shown { printErrorNoNewline("\r\u{1B}[K") }
    }

    func printErrorNoNewline(_ s: String) {
        var text = s
        text.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
