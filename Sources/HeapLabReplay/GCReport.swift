// What `heaplab replay --allocator gc` tells about the collector: the `gc` object of the
// replay JSON and the collector lines of the human output. Computed in the measuring child
// from the collector's cycle records and its pause events (GCBackend.swift), sent to the
// parent as JSON, and decoded there (the same shape both ways).
//
// Figures (docs/replay.md, "The collector's figures"):
//   cycles          collections that completed during the replay
//   pauses          every stop-the-world pause (mark setup, each mark-termination attempt;
//                   under --stw one pause per cycle, setup to termination): count, max,
//                   total (exact), p50 and p99 read from an HDR histogram of the pauses
//   mmu             minimum mutator utilisation for 1, 10 and 100 ms windows over the replay
//                   (Cheng & Blelloch, PLDI 2001): the least fraction of any window of that
//                   length in which the world was not stopped; exact (see `mmu`)
//   cpu             GC CPU: background mark workers, assists, pauses × P (Go's accounting
//                   of a stopped world), their total, and that total over wall × P
//   heap            the goal of each cycle, and the peak heap (Go's heapLive: at each mark's
//                   end, and at the end of the replay)
//
// `--allocator go` (Go's own runtime, tools/goreplay) reports in the same shape, with
// `runtime` "go" and the figures Go has no measure for null: the number of assists and the
// time spent stopping the world (`runtime_figures` carries what only Go reports; see
// docs/replay.md, "Go's runtime").
//
// Invariants: `pauses` are disjoint and sorted, and start inside [0, replaySeconds] (times
// count from the start of the replay; a pause under way when the replay ends is kept whole,
// the MMU counts only its part inside the replay); percentiles are within 0.1% above the
// exact order statistic.

/// An HDR-style histogram of durations in nanoseconds: exact below 2048 ns, above that
/// 1024 linear sub-buckets per power of two, so every recorded value is known to three
/// significant digits (relative bucket width < 1/1024). Gil Tene's HdrHistogram layout,
/// with sparse storage (pause counts are small).
public struct DurationHistogram: Equatable, Sendable {
    /// Bucket key -> count. Key: (shift << 11) | (value >> shift), shift = 0 below 2048.
    public private(set) var counts: [Int: Int] = [:]
    public private(set) var total = 0

    public init() {}

    static func key(_ nanos: Int) -> Int {
        let v = max(0, nanos)
        if v < 2048 { return v }
        let shift = (Int.bitWidth - v.leadingZeroBitCount) - 11
        return (shift << 11) | (v >> shift)
    }

    /// The range of values that share bucket `key`: [lowest, highest].
    public static func range(ofKey key: Int) -> (lowest: Int, highest: Int) {
        let shift = key >> 11
        let mantissa = key & 2047
        if shift == 0 { return (mantissa, mantissa) }
        return (mantissa << shift, ((mantissa + 1) << shift) - 1)
    }

    public mutating func record(nanoseconds: Int) {
        counts[Self.key(nanoseconds), default: 0] += 1
        total += 1
    }

    /// HdrHistogram's valueAtPercentile: the highest value equivalent to the smallest
    /// recorded value v such that at least `percentile`% of the values are <= v.
    public func value(atPercentile percentile: Double) -> Int? {
        guard total > 0 else { return nil }
        let wanted = max(1, Int((percentile / 100 * Double(total)).rounded(.up)))
        var seen = 0
        for key in counts.keys.sorted() {
            seen += counts[key]!
            if seen >= wanted { return Self.range(ofKey: key).highest }
        }
        return Self.range(ofKey: counts.keys.max()!).highest
    }

    /// Non-empty buckets in value order: (lowest, highest, count).
    public var buckets: [(lowest: Int, highest: Int, count: Int)] {
        counts.keys.sorted().map { let r = Self.range(ofKey: $0); return (r.lowest, r.highest, counts[$0]!) }
    }
}

/// Minimum mutator utilisation.
public enum MMU {
    /// The minimum, over every window [t, t + window] inside [start, end], of the fraction of
    /// the window not covered by `pauses` (Cheng & Blelloch's MMU). `pauses` must be sorted
    /// and disjoint. Nil when the window is longer than [start, end].
    ///
    /// Paused time in [t, t + w] is piecewise linear in t and changes slope only where t or
    /// t + w crosses a pause boundary, so its maximum is at one of those t (or at the ends
    /// of the range): every candidate is evaluated exactly, with prefix sums. O(n log n).
    public static func utilization(pauses: [(start: Double, end: Double)], start: Double, end: Double, window: Double) -> Double? {
        guard window > 0, end - start >= window else { return nil }
        let p = pauses.compactMap { q -> (Double, Double)? in
            let a = max(q.start, start), b = min(q.end, end)
            return b > a ? (a, b) : nil
        }
        if p.isEmpty { return 1 }
        var prefix = [0.0]   // prefix[i] = paused time of p[0..<i]
        for q in p { prefix.append(prefix.last! + (q.1 - q.0)) }
        /// Paused time in [start, x].
        func pausedUpTo(_ x: Double) -> Double {
            // Number of pauses starting before x.
            var lo = 0, hi = p.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if p[mid].0 < x { lo = mid + 1 } else { hi = mid }
            }
            guard lo > 0 else { return 0 }
            let last = p[lo - 1]
            return prefix[lo - 1] + (min(x, last.1) - last.0)
        }
        let lastStart = end - window
        var candidates = [start, lastStart]
        for q in p {
            candidates += [q.0, q.1, q.0 - window, q.1 - window]
        }
        var worst = 0.0
        for c in candidates {
            let t = min(max(c, start), lastStart)
            worst = max(worst, pausedUpTo(t + window) - pausedUpTo(t))
        }
        return max(0, 1 - worst / window)
    }

    /// Sorts and merges overlapping or touching intervals.
    public static func union(_ intervals: [(start: Double, end: Double)]) -> [(start: Double, end: Double)] {
        var out: [(start: Double, end: Double)] = []
        for q in intervals.sorted(by: { $0.start < $1.start }) where q.end > q.start {
            if let last = out.last, q.start <= last.end {
                out[out.count - 1].end = max(last.end, q.end)
            } else {
                out.append(q)
            }
        }
        return out
    }
}

/// One completed cycle, as reported.
public struct GCCycleSummary: Equatable, Sendable {
    public var cycle: Int
    /// Seconds from the start of the replay to the start of the cycle.
    public var startSeconds: Double
    public var markSetupSeconds: Double
    public var concurrentMarkSeconds: Double
    public var markTerminationSeconds: Double
    /// Of the two pauses, the time spent waiting for every thread to reach a safepoint
    /// (Go 1.22's /sched/pauses/stopping/gc); the rest is the collector's work. Nil: not
    /// measured (Go's runtime).
    public var markSetupStoppingSeconds: Double?
    public var markTerminationStoppingSeconds: Double?
    public var heapAtStartBytes: Int
    public var heapAtMarkEndBytes: Int
    public var heapMarkedBytes: Int
    public var goalBytes: Int
    public var assistSeconds: Double
    /// Nil: not counted (Go's runtime).
    public var assists: Int?
    public var backgroundCPUSeconds: Double
    /// CPU of idle mark workers (Go's idle marking: CPUs no mutator used).
    public var idleCPUSeconds: Double
    /// Go's gctrace line for the cycle.
    public var gctrace: String

    public init(cycle: Int, startSeconds: Double, markSetupSeconds: Double, concurrentMarkSeconds: Double,
                markTerminationSeconds: Double, heapAtStartBytes: Int, heapAtMarkEndBytes: Int, heapMarkedBytes: Int,
                goalBytes: Int, assistSeconds: Double, assists: Int?, backgroundCPUSeconds: Double, gctrace: String,
                markSetupStoppingSeconds: Double? = 0, markTerminationStoppingSeconds: Double? = 0, idleCPUSeconds: Double = 0) {
        self.cycle = cycle
        self.idleCPUSeconds = idleCPUSeconds
        self.markSetupStoppingSeconds = markSetupStoppingSeconds
        self.markTerminationStoppingSeconds = markTerminationStoppingSeconds
        self.startSeconds = startSeconds
        self.markSetupSeconds = markSetupSeconds
        self.concurrentMarkSeconds = concurrentMarkSeconds
        self.markTerminationSeconds = markTerminationSeconds
        self.heapAtStartBytes = heapAtStartBytes
        self.heapAtMarkEndBytes = heapAtMarkEndBytes
        self.heapMarkedBytes = heapMarkedBytes
        self.goalBytes = goalBytes
        self.assistSeconds = assistSeconds
        self.assists = assists
        self.backgroundCPUSeconds = backgroundCPUSeconds
        self.gctrace = gctrace
    }
}

/// The collector's side of one replay.
public struct GCReport: Equatable, Sendable {
    /// GOGC; nil is off.
    public var gogc: Int?
    public var memoryLimitBytes: Int?
    public var heapMinimumBytes: Int?
    public var stopTheWorld: Bool
    public var verified: Bool
    /// Logical processors (Go's P) the collector sized its workers for.
    public var procs: Int
    /// Length of the replay the figures cover (first op to last op of any worker).
    public var replaySeconds: Double
    public var cycles: [GCCycleSummary]
    /// Stop-the-world pauses, seconds from the start of the replay, sorted and disjoint.
    public var pauses: [(start: Double, end: Double)]
    public var backgroundCPUSeconds: Double
    /// CPU of idle mark workers (marking on CPUs no mutator used).
    public var idleCPUSeconds: Double
    public var assistSeconds: Double
    /// Nil: not counted (Go's runtime).
    public var assists: Int?
    public var peakHeapBytes: Int
    public var finalHeapBytes: Int
    /// Whose collector: nil for HeapLab's, "go" for Go's runtime (`--allocator go`).
    public var runtime: String? = nil
    /// Figures only that runtime reports (Go: GCCPUFraction, MemStats pause totals, the
    /// runtime/metrics pause histogram...), passed through as the child wrote them.
    public var runtimeFigures: JSONValue? = nil

    public static let mmuWindows: [(name: String, seconds: Double)] = [("1ms", 0.001), ("10ms", 0.010), ("100ms", 0.100)]

    public init(gogc: Int?, memoryLimitBytes: Int?, heapMinimumBytes: Int?, stopTheWorld: Bool, verified: Bool, procs: Int,
                replaySeconds: Double, cycles: [GCCycleSummary], pauses: [(start: Double, end: Double)],
                backgroundCPUSeconds: Double, assistSeconds: Double, assists: Int?, peakHeapBytes: Int, finalHeapBytes: Int,
                idleCPUSeconds: Double = 0) {
        self.gogc = gogc
        self.idleCPUSeconds = idleCPUSeconds
        self.memoryLimitBytes = memoryLimitBytes
        self.heapMinimumBytes = heapMinimumBytes
        self.stopTheWorld = stopTheWorld
        self.verified = verified
        self.procs = procs
        self.replaySeconds = replaySeconds
        self.cycles = cycles
        self.pauses = pauses
        self.backgroundCPUSeconds = backgroundCPUSeconds
        self.assistSeconds = assistSeconds
        self.assists = assists
        self.peakHeapBytes = peakHeapBytes
        self.finalHeapBytes = finalHeapBytes
    }

    public static func == (a: GCReport, b: GCReport) -> Bool {
        a.gogc == b.gogc && a.memoryLimitBytes == b.memoryLimitBytes && a.heapMinimumBytes == b.heapMinimumBytes
            && a.stopTheWorld == b.stopTheWorld && a.verified == b.verified && a.procs == b.procs
            && a.replaySeconds == b.replaySeconds && a.cycles == b.cycles
            && a.pauses.map(\.start) == b.pauses.map(\.start) && a.pauses.map(\.end) == b.pauses.map(\.end)
            && a.backgroundCPUSeconds == b.backgroundCPUSeconds && a.idleCPUSeconds == b.idleCPUSeconds
            && a.assistSeconds == b.assistSeconds
            && a.assists == b.assists && a.peakHeapBytes == b.peakHeapBytes && a.finalHeapBytes == b.finalHeapBytes
            && a.runtime == b.runtime && a.runtimeFigures == b.runtimeFigures
    }

    // MARK: derived figures

    public var pauseHistogram: DurationHistogram {
        var h = DurationHistogram()
        for p in pauses { h.record(nanoseconds: Int(((p.end - p.start) * 1e9).rounded())) }
        return h
    }

    public var maxPauseSeconds: Double? { pauses.map { $0.end - $0.start }.max() }
    public var totalPauseSeconds: Double { pauses.reduce(0) { $0 + ($1.end - $1.start) } }
    public func pausePercentileSeconds(_ p: Double) -> Double? { pauseHistogram.value(atPercentile: p).map { Double($0) / 1e9 } }

    /// MMU for `window` seconds over the replay; nil if the replay is shorter than the window.
    public func mmu(window: Double) -> Double? {
        MMU.utilization(pauses: pauses, start: 0, end: replaySeconds, window: window)
    }

    /// Pause CPU as Go counts it: the stopped world costs every P.
    public var pauseCPUSeconds: Double { totalPauseSeconds * Double(procs) }
    public var totalCPUSeconds: Double { backgroundCPUSeconds + idleCPUSeconds + assistSeconds + pauseCPUSeconds }
    /// GC CPU over the CPU the replay had (wall × P).
    public var cpuFraction: Double? { replaySeconds > 0 ? totalCPUSeconds / (replaySeconds * Double(procs)) : nil }

    // MARK: JSON

    public func json() -> JSONValue {
        let h = pauseHistogram
        func seconds(_ v: Double?) -> JSONValue { .number(v) }
        var members: [JSONMember] = []
        if let runtime { members.append(JSONMember("runtime", .string(runtime))) }
        if let runtimeFigures { members.append(JSONMember("runtime_figures", runtimeFigures)) }
        return .object(members + [
            JSONMember("gogc", gogc.map { .int($0) } ?? .string("off")),
            JSONMember("memory_limit_bytes", memoryLimitBytes.map { .int($0) } ?? .null),
            JSONMember("heap_minimum_bytes", heapMinimumBytes.map { .int($0) } ?? .null),
            JSONMember("mode", .string(stopTheWorld ? "stop-the-world" : "concurrent")),
            JSONMember("verified", .bool(verified)),
            JSONMember("procs", .int(procs)),
            JSONMember("replay_seconds", .double(replaySeconds)),
            JSONMember("cycles", .int(cycles.count)),
            JSONMember("pauses", .object([
                JSONMember("count", .int(pauses.count)),
                JSONMember("max_seconds", seconds(maxPauseSeconds)),
                JSONMember("p50_seconds", seconds(pausePercentileSeconds(50))),
                JSONMember("p99_seconds", seconds(pausePercentileSeconds(99))),
                JSONMember("total_seconds", .double(totalPauseSeconds)),
                JSONMember("histogram", .object([
                    JSONMember("unit", .string("ns")),
                    JSONMember("significant_digits", .int(3)),
                    JSONMember("buckets", .array(h.buckets.map { .array([.int($0.lowest), .int($0.highest), .int($0.count)]) })),
                ])),
                JSONMember("intervals", .array(pauses.map { .array([.double($0.start), .double($0.end)]) })),
            ])),
            JSONMember("mmu", .object(Self.mmuWindows.map { JSONMember($0.name, .number(mmu(window: $0.seconds))) })),
            JSONMember("cpu", .object([
                JSONMember("background_seconds", .double(backgroundCPUSeconds)),
                JSONMember("idle_seconds", .double(idleCPUSeconds)),
                JSONMember("assist_seconds", .double(assistSeconds)),
                JSONMember("pause_seconds", .double(pauseCPUSeconds)),
                JSONMember("total_seconds", .double(totalCPUSeconds)),
                JSONMember("fraction", .number(cpuFraction)),
            ])),
            JSONMember("assists", assists.map { .int($0) } ?? .null),
            JSONMember("heap_goal_bytes", .array(cycles.map { .int($0.goalBytes) })),
            JSONMember("peak_heap_bytes", .int(peakHeapBytes)),
            JSONMember("final_heap_bytes", .int(finalHeapBytes)),
            JSONMember("per_cycle", .array(cycles.map { c in
                .object([
                    JSONMember("cycle", .int(c.cycle)),
                    JSONMember("start_seconds", .double(c.startSeconds)),
                    JSONMember("mark_setup_seconds", .double(c.markSetupSeconds)),
                    JSONMember("concurrent_mark_seconds", .double(c.concurrentMarkSeconds)),
                    JSONMember("mark_termination_seconds", .double(c.markTerminationSeconds)),
                    JSONMember("mark_setup_stopping_seconds", .number(c.markSetupStoppingSeconds)),
                    JSONMember("mark_termination_stopping_seconds", .number(c.markTerminationStoppingSeconds)),
                    JSONMember("heap_at_start_bytes", .int(c.heapAtStartBytes)),
                    JSONMember("heap_at_mark_end_bytes", .int(c.heapAtMarkEndBytes)),
                    JSONMember("heap_marked_bytes", .int(c.heapMarkedBytes)),
                    JSONMember("goal_bytes", .int(c.goalBytes)),
                    JSONMember("assist_seconds", .double(c.assistSeconds)),
                    JSONMember("assists", c.assists.map { .int($0) } ?? .null),
                    JSONMember("background_cpu_seconds", .double(c.backgroundCPUSeconds)),
                    JSONMember("idle_cpu_seconds", .double(c.idleCPUSeconds)),
                    JSONMember("gctrace", .string(c.gctrace)),
                ])
            })),
        ])
    }

    /// Reads what `json()` wrote (the child's report); nil if a field is missing.
    public init?(json: JSONValue) {
        guard let modeText = json["mode"]?.stringValue,
              let procs = json["procs"]?.intValue,
              let replay = json["replay_seconds"]?.doubleValue,
              let pauseObject = json["pauses"], let intervals = pauseObject["intervals"]?.arrayValue,
              let cpu = json["cpu"],
              let background = cpu["background_seconds"]?.doubleValue,
              let assist = cpu["assist_seconds"]?.doubleValue,
              json["assists"] != nil,
              let peak = json["peak_heap_bytes"]?.intValue,
              let final = json["final_heap_bytes"]?.intValue,
              let perCycle = json["per_cycle"]?.arrayValue else { return nil }
        var pauses: [(start: Double, end: Double)] = []
        for i in intervals {
            guard let pair = i.arrayValue, pair.count == 2, let a = pair[0].doubleValue, let b = pair[1].doubleValue else { return nil }
            pauses.append((a, b))
        }
        var cycles: [GCCycleSummary] = []
        for c in perCycle {
            guard let n = c["cycle"]?.intValue, let start = c["start_seconds"]?.doubleValue,
                  let s1 = c["mark_setup_seconds"]?.doubleValue, let cm = c["concurrent_mark_seconds"]?.doubleValue,
                  let s2 = c["mark_termination_seconds"]?.doubleValue, let h0 = c["heap_at_start_bytes"]?.intValue,
                  let h1 = c["heap_at_mark_end_bytes"]?.intValue, let hm = c["heap_marked_bytes"]?.intValue,
                  let goal = c["goal_bytes"]?.intValue, let a = c["assist_seconds"]?.doubleValue,
                  c["assists"] != nil, let bg = c["background_cpu_seconds"]?.doubleValue,
                  let line = c["gctrace"]?.stringValue else { return nil }
            cycles.append(GCCycleSummary(cycle: n, startSeconds: start, markSetupSeconds: s1, concurrentMarkSeconds: cm,
                                         markTerminationSeconds: s2, heapAtStartBytes: h0, heapAtMarkEndBytes: h1,
                                         heapMarkedBytes: hm, goalBytes: goal, assistSeconds: a, assists: c["assists"]?.intValue,
                                         backgroundCPUSeconds: bg, gctrace: line,
                                         markSetupStoppingSeconds: Self.optionalSeconds(c["mark_setup_stopping_seconds"]),
                                         markTerminationStoppingSeconds: Self.optionalSeconds(c["mark_termination_stopping_seconds"]),
                                         idleCPUSeconds: c["idle_cpu_seconds"]?.doubleValue ?? 0))
        }
        self.init(gogc: json["gogc"]?.intValue, memoryLimitBytes: json["memory_limit_bytes"]?.intValue,
                  heapMinimumBytes: json["heap_minimum_bytes"]?.intValue, stopTheWorld: modeText == "stop-the-world",
                  verified: json["verified"] == .bool(true), procs: procs, replaySeconds: replay, cycles: cycles,
                  pauses: pauses, backgroundCPUSeconds: background, assistSeconds: assist, assists: json["assists"]?.intValue,
                  peakHeapBytes: peak, finalHeapBytes: final, idleCPUSeconds: cpu["idle_seconds"]?.doubleValue ?? 0)
        runtime = json["runtime"]?.stringValue
        runtimeFigures = json["runtime_figures"]
    }

    /// A per-cycle figure that may be null (not measured); missing (an older report): 0.
    static func optionalSeconds(_ v: JSONValue?) -> Double? {
        guard let v else { return 0 }
        return v.doubleValue
    }

    // MARK: text

    /// The collector's lines of the human output (two leading spaces, as ReplayReport.text).
    public func textLines() -> [String] {
        func row(_ label: String, _ value: String, _ note: String = "") -> String {
            "  " + Format.pad(label, 20) + Format.pad(value, 14, right: true) + (note.isEmpty ? "" : "   " + note)
        }
        let gogcText = gogc.map { "GOGC=\($0)" } ?? "GOGC=off"
        let limitText = memoryLimitBytes.map { "memory limit \(Format.bytes($0))" } ?? "no memory limit"
        let minimumText = heapMinimumBytes.map { ", heap minimum \(Format.bytes($0))" } ?? ""
        let whose = runtime == "go" ? "Go's runtime (\(runtimeFigures?["go_version"]?.stringValue ?? "go")), " : ""
        var lines = ["  collector: \(whose)\(gogcText), \(limitText)\(minimumText), \(stopTheWorld ? "stop-the-world" : "concurrent"), \(procs) P\(verified ? ", verified" : "")"]
        lines.append(row("cycles", Format.grouped(cycles.count), assists.map { "\(Format.grouped($0)) assists" } ?? "assists not counted"))
        if let maxPause = maxPauseSeconds {
            lines.append(row("max pause", Format.seconds(maxPause),
                             "p50 \(Format.seconds(pausePercentileSeconds(50) ?? 0)), p99 \(Format.seconds(pausePercentileSeconds(99) ?? 0)), total \(Format.seconds(totalPauseSeconds)) in \(Format.grouped(pauses.count)) pause\(pauses.count == 1 ? "" : "s")"))
        } else {
            lines.append(row("max pause", "-", "no pauses"))
        }
        func percent(_ v: Double?) -> String { v.map { Format.fixed($0 * 100, 1) + "%" } ?? "-" }
        let mmus = Self.mmuWindows.map { w in "\(w.name) " + percent(mmu(window: w.seconds)) }
        lines.append(row("MMU at 10 ms", percent(mmu(window: 0.010)), mmus.joined(separator: ", ") + " (minimum mutator utilisation)"))
        lines.append(row("GC CPU", Format.seconds(totalCPUSeconds),
                         "background \(Format.seconds(backgroundCPUSeconds)), idle \(Format.seconds(idleCPUSeconds)), assist \(Format.seconds(assistSeconds)), pause × P \(Format.seconds(pauseCPUSeconds))"
                            + (cpuFraction.map { "; \(Format.fixed($0 * 100, 1))% of wall × P" } ?? "")))
        let goals = cycles.map(\.goalBytes)
        let goalText = goals.isEmpty ? "no cycle" : "goals \(Format.bytes(goals.min()!))–\(Format.bytes(goals.max()!))"
        lines.append(row("peak heap", Format.bytes(peakHeapBytes), "\(goalText); heap at the end \(Format.bytes(finalHeapBytes))"))
        if runtime == "go", let figures = runtimeFigures {
            if let fraction = figures["gc_cpu_fraction"]?.doubleValue {
                lines.append(row("GCCPUFraction", Format.fixed(fraction * 100, 2) + "%", "Go's MemStats.GCCPUFraction (since the process started)"))
            }
            if let ns = figures["pause_ns_total_memstats"]?.intValue, let n = figures["pause_cycles_memstats"]?.intValue {
                lines.append(row("pause (MemStats)", Format.seconds(Double(ns) / 1e9), "exact total of \(Format.grouped(n)) cycle\(n == 1 ? "" : "s") (MemStats.PauseNs); phases and placement from gctrace"))
            }
        }
        return lines
    }
}
