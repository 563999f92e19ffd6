// Bench arithmetic on given numbers, and the reports built from a hand-made result.
import Testing
@testable import HeapLabReplay

@Suite struct BenchStatisticsTests {
    @Test func medians() {
        #expect(BenchStatistics.median([]) == nil)
        #expect(BenchStatistics.median([3]) == 3)
        #expect(BenchStatistics.median([5, 1, 3]) == 3)
        #expect(BenchStatistics.median([4, 1, 3, 2]) == 2.5)
        #expect(BenchStatistics.median([.nan, 2, 4]) == 3)
        #expect(BenchStatistics.spread([2, 9, 4]) == .init(min: 2, median: 4, max: 9))
    }

    @Test func ratiosArePairByPairThenMedian() {
        // Round 2 was slow for both: pair ratios cancel it, a ratio of medians would not.
        let a: [Double?] = [1.0, 1.1, 3.0, 1.05, 0.95]
        let b: [Double?] = [2.0, 2.0, 6.0, 2.0, 2.1]
        #expect(BenchStatistics.pairRatios(a, baseline: b) == [0.5, 0.55, 0.5, 0.525, 0.95 / 2.1])
        #expect(BenchStatistics.medianPairRatio(a, baseline: b) == 0.5)
        // The ratio of the medians would be 1.05 / 2.0 = 0.525: different on purpose.
        #expect(BenchStatistics.median(a.compactMap { $0 })! / BenchStatistics.median(b.compactMap { $0 })! == 0.525)
    }

    @Test func missingAndNonPositiveRoundsAreSkipped() {
        let a: [Double?] = [1, nil, 3, 4]
        let b: [Double?] = [2, 2, 0, -1]
        #expect(BenchStatistics.pairRatios(a, baseline: b) == [0.5])
        #expect(BenchStatistics.medianPairRatio([nil], baseline: [1]) == nil)
    }

    @Test func allocatorCostSubtractsTheSameRoundsNull() {
        let costs = BenchStatistics.allocatorCosts([10, 12, nil], null: [4, 5, 4])
        #expect(costs == [6, 7, nil])
    }

    @Test func geometricMean() {
        #expect(BenchStatistics.geometricMean([]) == nil)
        #expect(abs(BenchStatistics.geometricMean([2, 8])! - 4) < 1e-12)
        #expect(abs(BenchStatistics.geometricMean([0.5, 2, 1])! - 1) < 1e-12)
        #expect(BenchStatistics.geometricMean([0, -1]) == nil)
    }
}

/// A bench result with made-up measurements: three allocators, two traces, three rounds.
func sampleBenchResult() -> BenchResult {
    func m(_ wall: Double, peak: Int, atPeak: Int) -> ReplayMeasurement {
        ReplayMeasurement(workers: 1, wallSeconds: wall, cpuSeconds: wall, baselineRSSBytes: 10 << 20,
                          rssAtPeakLiveBytes: atPeak, peakRSSBytes: peak, allocatorStatistics: [])
    }
    func info(records: Int) -> ReplayProgramInfo {
        ReplayProgramInfo(workers: 1, slotCount: 10, records: records, traceThreads: 1, peakLiveBytes: 4 << 20,
                          peakWorker: 0, peakOpEnd: 5, finalLiveBytes: 0, totalAllocatedBytes: 8 << 20,
                          allocations: 100, frees: 100, reallocs: 0, stores: 0, waits: 0,
                          streams: [ReplayStreamInfo(offset: 4096, opCount: 200, nullBytes: 8 << 20)],
                          liveProfile: (0..<50).map { LiveSample(record: $0 * records / 50, liveBytes: ($0 % 10) << 19) })
    }
    let t1 = BenchTrace(path: "traces/one & <two>.htrace", loadSeconds: 0.01, program: info(records: 1000), cells: [
        BenchCell(allocator: .heaplab, runs: [m(0.010, peak: 16 << 20, atPeak: 15 << 20), m(0.011, peak: 16 << 20, atPeak: 15 << 20), m(0.030, peak: 16 << 20, atPeak: 15 << 20)], error: nil),
        BenchCell(allocator: .jemalloc, runs: [m(0.020, peak: 18 << 20, atPeak: 16 << 20), m(0.020, peak: 18 << 20, atPeak: 16 << 20), m(0.060, peak: 18 << 20, atPeak: 16 << 20)], error: nil),
        BenchCell(allocator: .null, runs: [m(0.005, peak: 20 << 20, atPeak: 19 << 20), m(0.005, peak: 20 << 20, atPeak: 19 << 20), m(0.010, peak: 20 << 20, atPeak: 19 << 20)], error: nil),
    ])
    let t2 = BenchTrace(path: "traces/two.hbin", loadSeconds: 0.02, program: info(records: 5000), cells: [
        BenchCell(allocator: .heaplab, runs: [m(0.040, peak: 20 << 20, atPeak: 18 << 20), m(0.040, peak: 20 << 20, atPeak: 18 << 20), m(0.040, peak: 20 << 20, atPeak: 18 << 20)], error: nil),
        BenchCell(allocator: .jemalloc, runs: [m(0.050, peak: 20 << 20, atPeak: 18 << 20), m(0.050, peak: 20 << 20, atPeak: 18 << 20), m(0.050, peak: 20 << 20, atPeak: 18 << 20)], error: nil),
        BenchCell(allocator: .null, runs: [nil, nil, nil], error: "the null allocator would need too much"),
    ])
    return BenchResult(allocators: [.heaplab, .jemalloc, .null], baseline: .jemalloc, runs: 3, traces: [t1, t2],
                       warnings: ["traces/two.hbin: null failed"])
}

@Suite struct BenchFigureTests {
    @Test func figuresAndGeometricMeans() throws {
        let result = sampleBenchResult()
        let f1 = result.traces[0].figures(baseline: .jemalloc)
        let heaplab = try #require(f1.first { $0.allocator == .heaplab })
        #expect(heaplab.wallSpread == .init(min: 0.010, median: 0.011, max: 0.030))
        #expect(heaplab.timeRatio == 0.5)                                  // 0.5, 0.55, 0.5
        // cost: heaplab 5, 6, 20 ms; jemalloc 15, 15, 50 ms -> ratios 1/3, 0.4, 0.4
        #expect(abs(heaplab.costRatio! - 0.4) < 1e-9)
        // peak heap RSS 6 MiB vs 8 MiB
        #expect(heaplab.rssRatio == 0.75)
        #expect(heaplab.fragmentation4Spread?.median == 1.5)               // 6 MiB / 4 MiB
        #expect(heaplab.fragmentation3Spread?.median == 1.25)              // 5 MiB / 4 MiB
        #expect(heaplab.nsPerRecordSpread?.median == 11_000)
        let f2 = result.traces[1].figures(baseline: .jemalloc)
        #expect(abs(f2.first { $0.allocator == .heaplab }!.timeRatio! - 0.8) < 1e-12)
        #expect(f2.first { $0.allocator == .heaplab }?.costRatio == nil)   // no null runs

        let means = result.geometricMeans()
        let h = try #require(means.first { $0.allocator == .heaplab })
        #expect(abs(h.time! - (0.5 * 0.8).squareRoot()) < 1e-12)
        #expect(abs(h.cost! - 0.4) < 1e-9)                                  // one trace has a cost
        #expect(h.traces == 2)
        #expect(means.first { $0.allocator == .jemalloc }?.time == 1)
    }

    @Test func tableNamesEveryAllocatorAndTheSummary() {
        let table = sampleBenchResult().table()
        #expect(table.contains("traces/one & <two>.htrace"))
        #expect(table.contains("Summary: geometric mean over 2 traces"))
        #expect(table.contains("failed: the null allocator would need too much"))
        for a in ["heaplab", "jemalloc", "null"] { #expect(table.contains(a)) }
        // Aligned: every row of the first trace's block has the same width up to ns/record.
        let rows = table.split(separator: "\n").filter { $0.hasPrefix("  heaplab ") || $0.hasPrefix("  jemalloc ") }
        #expect(Set(rows.prefix(2).map(\.count)).count == 1)
    }

    @Test func jsonCarriesRunsAndAggregates() throws {
        let json = try JSONValue.parse(sampleBenchResult().json().serialized())
        #expect(json["baseline"]?.stringValue == "jemalloc")
        let traces = try #require(json["traces"]?.arrayValue)
        #expect(traces.count == 2)
        let heaplab = try #require(traces[0]["allocators"]?["heaplab"])
        #expect(heaplab["runs"]?.arrayValue?.count == 3)
        #expect(heaplab["wall_seconds"]?["median"]?.doubleValue == 0.011)
        #expect(heaplab["time_ratio"]?.doubleValue == 0.5)
        #expect(traces[1]["allocators"]?["null"]?["error"]?.stringValue != nil)
        #expect(traces[0]["live_profile"]?.arrayValue?.count == 50)
        #expect(json["geomean"]?["heaplab"]?["traces"]?.intValue == 2)
    }

    @Test func csvHasRunAndAggregateRows() {
        let csv = sampleBenchResult().csv()
        let lines = csv.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("kind,trace,allocator,round,wall_seconds"))
        let columns = lines[0].split(separator: ",", omittingEmptySubsequences: false).count
        // Every row has the header's number of fields (the quoted trace name has no comma).
        for line in lines { #expect(line.split(separator: ",", omittingEmptySubsequences: false).count == columns) }
        #expect(lines.filter { $0.hasPrefix("run,") }.count == 3 + 3 + 3 + 3 + 3)   // null of trace 2 failed
        #expect(lines.filter { $0.hasPrefix("median,") }.count == 6)
        #expect(lines.filter { $0.hasPrefix("geomean,*,") }.count == 3)
    }
}

/// The repository's own traces/ directory: bench's default set finds every bundled trace,
/// the zstd-compressed GC traces included (by content, after decompression), and skips
/// README.md and inputs/. (Only the first bytes of each are read: replaying them is the
/// release-build job of scripts/compare.sh, not a debug test's.)
@Suite struct BundledTraceSetTests {
    static var tracesDirectory: String {
        var parts = "\(#filePath)".split(separator: "/").map(String.init)
        parts.removeLast(3)   // Tests/HeapLabReplayTests/BenchTests.swift
        return "/" + parts.joined(separator: "/") + "/traces"
    }

    @Test func benchFindsTheCompressedGCTraces() throws {
        let found = try Bench.bundledTraces(directory: Self.tracesDirectory).map { $0.split(separator: "/").last.map(String.init) ?? "" }
        for name in ["gen-gcbench", "gen-binary-trees", "gen-lru", "gen-random-graph"] {
            #expect(found.contains("\(name).hbtrace.zst"), "\(found)")
        }
        #expect(found.contains("mtrace-git.hbtrace"))
        #expect(!found.contains("README.md"))
        #expect(!found.contains("inputs"))
        #expect(found.count == 12)
    }
}
