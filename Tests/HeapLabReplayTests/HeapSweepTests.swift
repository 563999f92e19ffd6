// The bench's heap sweep (Hertz & Berger) on made-up measurements: points, pair ratios
// against the baseline of the same round, interpolation at 2x and 3x, and the table, JSON,
// CSV and HTML parts.
import Testing
@testable import HeapLabReplay

/// `sampleBenchResult` with a sweep on its first trace: gc at 1.5x, 2.5x and 4x the minimum
/// heap (4 MiB), three rounds; jemalloc took 20, 20, 60 ms in those rounds.
func sampleSweepResult() -> BenchResult {
    var result = sampleBenchResult()
    func gcRun(_ wall: Double, heap: Int, cycles: Int) -> ReplayMeasurement {
        var m = ReplayMeasurement(workers: 1, wallSeconds: wall, cpuSeconds: wall, baselineRSSBytes: 10 << 20,
                                  rssAtPeakLiveBytes: 12 << 20, peakRSSBytes: 14 << 20, allocatorStatistics: [])
        let summary = GCCycleSummary(cycle: 1, startSeconds: 0, markSetupSeconds: 1e-5, concurrentMarkSeconds: 1e-3,
                                     markTerminationSeconds: 2e-5, heapAtStartBytes: heap, heapAtMarkEndBytes: heap,
                                     heapMarkedBytes: heap / 2, goalBytes: heap, assistSeconds: 0, assists: 0,
                                     backgroundCPUSeconds: 0, gctrace: "")
        m.gc = GCReport(gogc: 0, memoryLimitBytes: nil, heapMinimumBytes: heap, stopTheWorld: false, verified: false, procs: 2,
                        replaySeconds: wall, cycles: Array(repeating: summary, count: cycles), pauses: [(0.001, 0.001 + 2e-5)],
                        backgroundCPUSeconds: 0, assistSeconds: 0, assists: 0, peakHeapBytes: heap, finalHeapBytes: heap)
        return m
    }
    var points = HeapSweepPoint.points(factors: [4, 1.5, 2.5, 1.5], minimumHeap: 4 << 20, runs: 3)
    points[0].runs = [gcRun(0.040, heap: 6 << 20, cycles: 9), gcRun(0.036, heap: 6 << 20, cycles: 8), gcRun(0.120, heap: 6 << 20, cycles: 9)]
    points[1].runs = [gcRun(0.026, heap: 10 << 20, cycles: 3), gcRun(0.024, heap: 10 << 20, cycles: 3), gcRun(0.072, heap: 10 << 20, cycles: 3)]
    points[2].runs = [gcRun(0.022, heap: 16 << 20, cycles: 1), gcRun(0.022, heap: 16 << 20, cycles: 1), nil]
    points[2].error = nil
    result.traces[0].sweep = points
    return result
}

@Suite struct HeapSweepTests {
    @Test func pointsAreSortedFactorsOfTheMinimumHeap() {
        let p = HeapSweepPoint.points(factors: [3, 1.5, 3], minimumHeap: 1000, runs: 2)
        #expect(p.map(\.factor) == [1.5, 3])
        #expect(p.map(\.heapBytes) == [1500, 3000])
        let o = p[0].options(base: GCReplayOptions(gogc: 100, stopTheWorld: true, gctrace: true, timeline: "x"))
        #expect(o == GCReplayOptions(gogc: 0, memoryLimit: nil, heapMinimum: 1500, stopTheWorld: true))
    }

    @Test func ratiosArePairByPairAgainstTheBaseline() throws {
        let trace = sampleSweepResult().traces[0]
        let f = trace.sweepFigures(baseline: .jemalloc)
        #expect(f.map(\.factor) == [1.5, 2.5, 4])
        // jemalloc: 20, 20, 60 ms.
        #expect(zip(f[0].timeRatios, [2.0, 1.8, 2.0]).allSatisfy { abs(($0.0 ?? -1) - $0.1) < 1e-12 })
        #expect(f[0].timeRatio == 2.0)
        #expect(f[1].timeRatio == 1.2)                                   // 1.3, 1.2, 1.2
        #expect(f[2].timeRatios[2] == nil)
        #expect(abs(f[2].timeRatio! - 1.1) < 1e-12)
        #expect(f[0].heapRatio == 1.5)                                   // 6 MiB / 4 MiB
        #expect(f[2].heapRatio == 4)
        #expect(f[0].medianCycles == 9)
        // Interpolated: 2x lies between 1.5x (2.0) and 2.5x (1.2); 3x between 2.5x and 4x.
        #expect(abs(trace.sweepTimeRatio(atFactor: 2, baseline: .jemalloc)! - 1.6) < 1e-12)
        #expect(abs(trace.sweepTimeRatio(atFactor: 3, baseline: .jemalloc)! - (1.2 - 0.1 / 3)) < 1e-12)
        #expect(trace.sweepTimeRatio(atFactor: 5, baseline: .jemalloc) == nil)
        #expect(trace.sweepTimeRatio(atFactor: 1.5, baseline: .jemalloc) == 2.0)
        // Without the baseline's runs there is no ratio.
        #expect(trace.sweepFigures(baseline: .glibc).allSatisfy { $0.timeRatio == nil })
    }

    @Test func interpolation() {
        #expect(HeapSweepFigures.interpolate([(1, 10), (3, 30)], at: 2) == 20)
        #expect(HeapSweepFigures.interpolate([(3, 30), (1, 10)], at: 1) == 10)
        #expect(HeapSweepFigures.interpolate([(1, 10)], at: 1) == 10)
        #expect(HeapSweepFigures.interpolate([], at: 1) == nil)
        #expect(HeapSweepFigures.interpolate([(1, 10), (3, 30)], at: 0.5) == nil)
    }

    @Test func reportsCarryTheSweep() throws {
        let result = sampleSweepResult()
        let table = result.table()
        #expect(table.contains("heap sweep: gc with a fixed heap"))
        #expect(table.contains("1.50x"))
        #expect(table.contains("read off the curve: 2x 1.600"))
        #expect(table.contains("Heap sweep (Hertz & Berger)"))
        let json = try JSONValue.parse(result.json().serialized())
        let sweep = try #require(json["traces"]?.arrayValue?[0]["heap_sweep"])
        #expect(sweep["minimum_heap_bytes"]?.intValue == 4 << 20)
        #expect(sweep["points"]?.arrayValue?.count == 3)
        #expect(sweep["points"]?.arrayValue?[0]["runs"]?.arrayValue?.count == 3)
        #expect(sweep["time_ratio_at"]?["2x"]?.doubleValue.map { abs($0 - 1.6) < 1e-12 } == true)
        #expect(json["traces"]?.arrayValue?[1]["heap_sweep"] == nil)
        #expect(json["heap_sweep"]?["2x"]?["traces"]?.intValue == 1)
        let csv = result.csv().split(separator: "\n").map(String.init)
        let columns = csv[0].split(separator: ",", omittingEmptySubsequences: false).count
        #expect(csv[0].hasSuffix(",heap_factor,heap_ratio"))
        for line in csv { #expect(line.split(separator: ",", omittingEmptySubsequences: false).count == columns, "\(line)") }
        #expect(csv.filter { $0.hasPrefix("sweep,") }.count == 8)           // 3 + 3 + 2 runs
        #expect(csv.filter { $0.hasPrefix("sweep_median,") }.count == 3)
        let html = BenchHTML.render(result)
        #expect(html.contains("Heap size vs time: gc / jemalloc with oracle frees"))
        #expect(html.split(separator: "<circle", omittingEmptySubsequences: false).count - 1 == 3)
        #expect(html.contains("Heap sweep (Hertz &amp; Berger, OOPSLA 2005)"))
        // Without a sweep nothing of it shows.
        let plain = sampleBenchResult()
        #expect(!plain.table().contains("heap sweep"))
        #expect(!BenchHTML.render(plain).contains("Heap size vs time"))
        #expect(try JSONValue.parse(plain.json().serialized())["heap_sweep"] == nil)
    }
}
