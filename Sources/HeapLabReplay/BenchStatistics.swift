// The arithmetic of `heaplab bench`, kept apart so it can be tested on given numbers.
//
// Rules (../shared/BENCHMARKING.md):
//   - a figure is reported as min, median and max over the counted runs (the warm-up run
//     is never among them); the median of an even count is the mean of the middle two;
//   - a ratio against the baseline allocator is taken pair by pair, run r of A over run r
//     of the baseline, both from the same round (so both saw the same machine state), and
//     then the median of those ratios is reported: never a ratio of two medians;
//   - allocator cost = run time - null allocator run time of the same round; a cost ratio
//     is skipped for a round where the baseline's cost is not positive (noise larger than
//     the cost), and is missing if every round was skipped;
//   - the summary over traces is the geometric mean of the per-trace median ratios.

public enum BenchStatistics {
    /// Min, median and max of some numbers.
    public struct Spread: Equatable, Sendable {
        public var min: Double
        public var median: Double
        public var max: Double
        public init(min: Double, median: Double, max: Double) {
            self.min = min
            self.median = median
            self.max = max
        }
    }

    /// The median; nil for no values. NaNs are ignored.
    public static func median(_ values: [Double]) -> Double? {
        let v = values.filter { !$0.isNaN }.sorted()
        guard !v.isEmpty else { return nil }
        let mid = v.count / 2
        return v.count % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
    }

    public static func spread(_ values: [Double]) -> Spread? {
        let v = values.filter { !$0.isNaN }
        guard let median = median(v), let lo = v.min(), let hi = v.max() else { return nil }
        return Spread(min: lo, median: median, max: hi)
    }

    /// Ratios of `values[r] / baseline[r]` for each round where both exist and the
    /// baseline is positive.
    public static func pairRatios(_ values: [Double?], baseline: [Double?]) -> [Double] {
        var ratios: [Double] = []
        for (v, b) in zip(values, baseline) {
            guard let v, let b, b > 0, v.isFinite, b.isFinite else { continue }
            ratios.append(v / b)
        }
        return ratios
    }

    /// The median of the pair-by-pair ratios, nil if no round has both figures.
    public static func medianPairRatio(_ values: [Double?], baseline: [Double?]) -> Double? {
        median(pairRatios(values, baseline: baseline))
    }

    /// Per round: `times[r] - nullTimes[r]` (nil where either is missing).
    public static func allocatorCosts(_ times: [Double?], null nullTimes: [Double?]) -> [Double?] {
        zip(times, nullTimes).map { t, n in
            guard let t, let n else { return nil }
            return t - n
        }
    }

    /// Geometric mean of positive numbers (others are ignored); nil if none.
    public static func geometricMean(_ values: [Double]) -> Double? {
        let v = values.filter { $0 > 0 && $0.isFinite }
        guard !v.isEmpty else { return nil }
        var logSum = 0.0
        for x in v { logSum += log(x) }
        return exp(logSum / Double(v.count))
    }
}

#if canImport(Glibc)
import Glibc
#endif
