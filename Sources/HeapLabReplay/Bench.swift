// `heaplab bench`: several traces on several allocators, measured fairly, with the figures
// derived from the runs.
//
// Procedure per trace (../shared/BENCHMARKING.md):
//   1. Load and lower the trace once in this process (TraceLowering); every run of every
//      allocator replays the same program file.
//   2. One warm-up round, not counted: each allocator once, in order.
//   3. `runs` counted rounds, each running every allocator once in the same order
//      (A B C A B C ...), each run a fresh child process (ChildReplay).
// A run that fails (the null allocator cannot map the trace's total, an allocator runs out)
// marks that (trace, allocator) failed with the message, and its later runs are skipped;
// the rest of the bench goes on. A bad trace stops the bench (InputError, exit 2).
//
// The collectors (`gc`, and `go`: Go's runtime) replay the trace lowered for them (holds as
// roots, no frees), a second program made once per trace; `heapSweep` adds Hertz & Berger's heap-size sweep of the
// collector to every round (HeapSweep.swift).
//
// Derived figures (BenchFigures): per round, wall and cpu time, ns per record, peak heap
// RSS (VmHWM - baseline), RSS at peak live, allocator cost (wall - null wall of the same
// round), and ratios against the baseline allocator of the same round; then min / median /
// max of each, the median of each pair ratio, and per allocator the geometric mean of the
// per-trace median ratios (BenchStatistics.swift).

import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

public struct BenchOptions: Sendable {
    public var traces: [String]
    public var allocators: [AllocatorKind]
    public var runs: Int
    public var baseline: AllocatorKind
    public var threads: Int?
    /// Free with the object's size where the allocator can (see MallocBackend.swift).
    public var sizedFree: Bool
    /// The heaplab binary that runs the children (default: this process's).
    public var executable: String?
    /// The collector's options for the `gc` allocator's runs.
    public var gc = GCReplayOptions()
    /// Heap sizes, as factors of each trace's minimum heap (peak live bytes), at which the
    /// collector runs with a fixed-size heap (HeapSweep.swift); empty: no sweep.
    public var heapSweep: [Double] = []

    public init(traces: [String], allocators: [AllocatorKind] = AllocatorKind.benchDefault, runs: Int = 5,
                baseline: AllocatorKind = .jemalloc, threads: Int? = nil, sizedFree: Bool = false,
                executable: String? = nil) {
        self.sizedFree = sizedFree
        self.traces = traces
        self.allocators = allocators
        self.runs = runs
        self.baseline = baseline
        self.threads = threads
        self.executable = executable
    }
}

/// One (trace, allocator) pair: its counted runs by round (nil: failed or skipped).
public struct BenchCell: Equatable, Sendable {
    public var allocator: AllocatorKind
    public var runs: [ReplayMeasurement?]
    public var error: String?
}

/// One trace of a bench.
public struct BenchTrace: Equatable, Sendable {
    public var path: String
    public var loadSeconds: Double
    public var program: ReplayProgramInfo
    public var cells: [BenchCell]
    /// The heap sweep's points (empty without `--heap-sweep`).
    public var sweep: [HeapSweepPoint] = []

    /// The file name without directories.
    public var name: String { path.split(separator: "/").last.map(String.init) ?? path }

    public func cell(_ allocator: AllocatorKind) -> BenchCell? { cells.first { $0.allocator == allocator } }
}

/// Everything a bench measured.
public struct BenchResult: Equatable, Sendable {
    public var allocators: [AllocatorKind]
    public var baseline: AllocatorKind
    public var runs: Int
    public var traces: [BenchTrace]
    public var warnings: [String]

    public init(allocators: [AllocatorKind], baseline: AllocatorKind, runs: Int, traces: [BenchTrace], warnings: [String]) {
        self.allocators = allocators
        self.baseline = baseline
        self.runs = runs
        self.traces = traces
        self.warnings = warnings
    }
}

/// The figures of one (trace, allocator) pair, per round and aggregated.
public struct BenchFigures: Sendable {
    public typealias Spread = BenchStatistics.Spread
    public var allocator: AllocatorKind
    public var wall: [Double?]
    public var cpu: [Double?]
    public var nsPerRecord: [Double?]
    public var peakRSS: [Double?]
    public var peakHeapRSS: [Double?]
    public var rssAtPeakLive: [Double?]
    public var fragmentation3: [Double?]
    public var fragmentation4: [Double?]
    /// wall - null wall of the same round.
    public var cost: [Double?]
    /// Pair ratios against the baseline of the same round.
    public var timeRatios: [Double?]
    public var costRatios: [Double?]
    public var rssRatios: [Double?]

    public var wallSpread: Spread? { BenchStatistics.spread(wall.compactMap { $0 }) }
    public var cpuSpread: Spread? { BenchStatistics.spread(cpu.compactMap { $0 }) }
    public var nsPerRecordSpread: Spread? { BenchStatistics.spread(nsPerRecord.compactMap { $0 }) }
    public var peakRSSSpread: Spread? { BenchStatistics.spread(peakRSS.compactMap { $0 }) }
    public var peakHeapRSSSpread: Spread? { BenchStatistics.spread(peakHeapRSS.compactMap { $0 }) }
    public var rssAtPeakLiveSpread: Spread? { BenchStatistics.spread(rssAtPeakLive.compactMap { $0 }) }
    public var fragmentation3Spread: Spread? { BenchStatistics.spread(fragmentation3.compactMap { $0 }) }
    public var fragmentation4Spread: Spread? { BenchStatistics.spread(fragmentation4.compactMap { $0 }) }
    public var costSpread: Spread? { BenchStatistics.spread(cost.compactMap { $0 }) }
    public var timeRatio: Double? { BenchStatistics.median(timeRatios.compactMap { $0 }) }
    public var costRatio: Double? { BenchStatistics.median(costRatios.compactMap { $0 }) }
    public var rssRatio: Double? { BenchStatistics.median(rssRatios.compactMap { $0 }) }
}

extension BenchTrace {
    /// Figures for every allocator of this trace, in bench order.
    public func figures(baseline: AllocatorKind) -> [BenchFigures] {
        let records = Double(max(program.records, 1))
        let peakLive = Double(program.peakLiveBytes)
        func series(_ a: AllocatorKind, _ f: (ReplayMeasurement) -> Double) -> [Double?] {
            cell(a)?.runs.map { $0.map(f) } ?? []
        }
        let nullWall = series(.null) { $0.wallSeconds }
        let baseWall = series(baseline) { $0.wallSeconds }
        let baseHeap = series(baseline) { Double(max(0, $0.peakRSSBytes - $0.baselineRSSBytes)) }
        let baseCost = BenchStatistics.allocatorCosts(baseWall, null: nullWall)
        return cells.map { c in
            let a = c.allocator
            let wall = series(a) { $0.wallSeconds }
            let heap = series(a) { Double(max(0, $0.peakRSSBytes - $0.baselineRSSBytes)) }
            let cost = cell(.null) == nil ? wall.map { _ in nil } : BenchStatistics.allocatorCosts(wall, null: nullWall)
            func perRound(_ v: [Double?], _ b: [Double?]) -> [Double?] {
                v.indices.map { r in
                    guard r < b.count, let x = v[r], let y = b[r], y > 0 else { return nil }
                    return x / y
                }
            }
            return BenchFigures(
                allocator: a,
                wall: wall,
                cpu: series(a) { $0.cpuSeconds },
                nsPerRecord: series(a) { $0.wallSeconds * 1e9 / records },
                peakRSS: series(a) { Double($0.peakRSSBytes) },
                peakHeapRSS: heap,
                rssAtPeakLive: series(a) { Double($0.rssAtPeakLiveBytes) },
                fragmentation3: series(a) { peakLive > 0 ? Double(max(0, $0.rssAtPeakLiveBytes - $0.baselineRSSBytes)) / peakLive : .nan },
                fragmentation4: series(a) { peakLive > 0 ? Double(max(0, $0.peakRSSBytes - $0.baselineRSSBytes)) / peakLive : .nan },
                cost: cost,
                timeRatios: perRound(wall, baseWall),
                // The null allocator's cost is zero by definition: no ratio.
                costRatios: a == .null ? cost.map { _ in nil } : perRound(cost, baseCost),
                rssRatios: perRound(heap, baseHeap))
        }
    }
}

extension BenchResult {
    /// Per allocator: geometric means over traces of the median time, cost and peak heap
    /// RSS ratios against the baseline (nil where no trace has the ratio).
    public func geometricMeans() -> [(allocator: AllocatorKind, time: Double?, cost: Double?, rss: Double?, traces: Int)] {
        let all = traces.map { $0.figures(baseline: baseline) }
        return allocators.map { a in
            let figures = all.compactMap { list in list.first { $0.allocator == a } }
            let times = figures.compactMap(\.timeRatio)
            return (a, BenchStatistics.geometricMean(times),
                    BenchStatistics.geometricMean(figures.compactMap(\.costRatio)),
                    BenchStatistics.geometricMean(figures.compactMap(\.rssRatio)), times.count)
        }
    }
}

/// Where a bench is, for progress displays.
public struct BenchProgress: Sendable {
    public var done: Int
    public var total: Int
    public var trace: String
    public var allocator: AllocatorKind
    public var warmUp: Bool
}

public enum Bench {
    /// Runs the bench. `progress` is called before each run. Throws `InputError` for a bad
    /// trace; allocator failures become cell errors and warnings.
    public static func run(_ options: BenchOptions, progress: (BenchProgress) -> Void = { _ in }) throws -> BenchResult {
        var warnings: [String] = []
        var allocators: [AllocatorKind] = []
        for a in options.allocators where !allocators.contains(a) {
            do {
                _ = try a.libraryPath()
                if a == .go { _ = try GoReplay.executable() }
                allocators.append(a)
            } catch {
                warnings.append("skipping \(a.rawValue): \(error)")
            }
        }
        if !allocators.contains(options.baseline) {
            warnings.append("baseline \(options.baseline.rawValue) did not run: no ratios")
        }
        let runs = max(1, options.runs)
        // The heap sweep runs each collector among the allocators (gc alone if neither is).
        var sweepers = allocators.filter(\.isCollected)
        if sweepers.isEmpty { sweepers = [.gc] }
        let total = options.traces.count * (allocators.count + Set(options.heapSweep).count * sweepers.count) * (runs + 1)
        var done = 0
        var traces: [BenchTrace] = []
        for path in options.traces {
            let start = ReplaySystem.monotonicNanos()
            let program = try TraceLowering.lower(path: path, workers: options.threads)
            let loadSeconds = Double(ReplaySystem.monotonicNanos() - start) / 1e9
            var cells = allocators.map { BenchCell(allocator: $0, runs: Array(repeating: nil, count: runs), error: nil) }
            var sweep: [HeapSweepPoint] = []
            if !options.heapSweep.isEmpty {
                if program.info.peakLiveBytes > 0 {
                    sweep = sweepers.flatMap {
                        HeapSweepPoint.points(factors: options.heapSweep, minimumHeap: program.info.peakLiveBytes, runs: runs, allocator: $0)
                    }
                } else {
                    warnings.append("\(path): no heap sweep (the trace never has live bytes)")
                }
            }
            // The collector replays the trace lowered for it.
            let collectorProgram = allocators.contains(where: \.isCollected) || !sweep.isEmpty
                ? try TraceLowering.lower(path: path, workers: options.threads, forCollector: true) : nil
            for round in -1..<runs {   // round -1 is the warm-up
                for (i, a) in allocators.enumerated() {
                    progress(BenchProgress(done: done, total: total, trace: path, allocator: a, warmUp: round < 0))
                    done += 1
                    guard cells[i].error == nil else { continue }
                    do {
                        let m = try ChildReplay.measure(program: a.isCollected ? collectorProgram! : program, allocator: a, trace: path,
                                                        sizedFree: options.sizedFree && !a.isCollected, executable: options.executable,
                                                        gc: a.isCollected ? options.gc : nil)
                        if round >= 0 { cells[i].runs[round] = m }
                    } catch {
                        cells[i].error = "\(error)"
                        warnings.append("\(path): \(a.rawValue) failed: \(error)")
                    }
                }
                for k in sweep.indices {
                    let a = sweep[k].allocator
                    progress(BenchProgress(done: done, total: total, trace: path, allocator: a, warmUp: round < 0))
                    done += 1
                    guard sweep[k].error == nil else { continue }
                    do {
                        let m = try ChildReplay.measure(program: collectorProgram!, allocator: a, trace: path,
                                                        executable: options.executable, gc: sweep[k].options(base: options.gc))
                        if round >= 0 { sweep[k].runs[round] = m }
                    } catch {
                        sweep[k].error = "\(error)"
                        warnings.append("\(path): \(a.rawValue) at \(Format.fixed(sweep[k].factor, 2))x the minimum heap failed: \(error)")
                    }
                }
            }
            var trace = BenchTrace(path: path, loadSeconds: loadSeconds, program: program.info, cells: cells)
            trace.sweep = sweep
            traces.append(trace)
        }
        return BenchResult(allocators: allocators, baseline: options.baseline, runs: runs, traces: traces, warnings: warnings)
    }

    /// The bundled trace set: trace files in `directory`, or else in `traces/` under the
    /// current directory or the nearest parent that has a Package.swift. Sorted by name.
    public static func bundledTraces(directory: String? = nil) throws(ReplayError) -> [String] {
        let dir: String
        if let directory {
            dir = directory
        } else if let found = findTracesDirectory() {
            dir = found
        } else {
            throw ReplayError("no traces given and no traces/ directory found here or above (use --traces-dir)")
        }
        let files = listDirectory(dir).filter { looksLikeTrace("\(dir)/\($0)") }.sorted()
        guard !files.isEmpty else { throw ReplayError("\(dir): no trace files") }
        return files.map { "\(dir)/\($0)" }
    }

    static func findTracesDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        var dir = String(cString: buffer)
        if isDirectory("\(dir)/traces") { return "\(dir)/traces" }
        while dir != "/" && !dir.isEmpty {
            if access("\(dir)/Package.swift", F_OK) == 0 && isDirectory("\(dir)/traces") { return "\(dir)/traces" }
            dir = dir.split(separator: "/").dropLast().joined(separator: "/")
            dir = "/" + dir
        }
        return nil
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names
    }

    /// A regular file whose content, decompressed if it is zstd or gzip (recognised by
    /// content, as every trace reader does: ByteSource), starts like a trace: the binary
    /// magic byte, or text whose first record (after comments and blank lines) is the header.
    public static func looksLikeTrace(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        guard var source = try? ByteSource(path: path) else { return false }
        var bytes = [UInt8](repeating: 0, count: 4096)
        var n = 0
        while n < bytes.count {
            let got = bytes.withUnsafeMutableBufferPointer { buffer in
                try? source.read(into: buffer.baseAddress! + n, count: buffer.count - n)
            }
            guard let got, got > 0 else { break }
            n += got
        }
        guard n > 0 else { return false }
        if bytes[0] == 0x89 { return true }
        let text = String(decoding: bytes[0..<n], as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let trimmed = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if trimmed.isEmpty { continue }
            return trimmed.first == "heaplab-trace"
        }
        return false
    }
}
