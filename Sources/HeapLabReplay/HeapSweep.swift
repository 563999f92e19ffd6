// `heaplab bench --heap-sweep F1,F2,...`: the collector against explicit freeing as the heap
// grows, after Hertz & Berger, "Quantifying the performance of garbage collection vs.
// explicit memory management" (OOPSLA 2005).
//
// Each trace's minimum heap is its peak live bytes, from the lifetime oracle (the most any
// allocator must hold at once). For each factor F the collector replays the trace with a
// fixed-size heap of F × minimum heap: GOGC=0 and a heap minimum of F × minimum heap, so the
// heap goal stays at that size and a cycle starts when the heap reaches it (the goal only
// grows past it if the live heap itself does). Hertz & Berger ran collectors at fixed heap
// sizes in the same way; their 1.0 line is the same program with oracle-placed frees, which
// is what the bench's baseline (jemalloc by default) replays.
//
// The sweep runs inside the bench's rounds (each point once per round, after the
// allocators), so every point has a baseline run from the same round, and its ratio is the
// median of pair-by-pair ratios as for every other figure (BenchStatistics.swift). The curve
// is time ratio against F; the measured peak heap over the minimum heap is reported beside
// it (the heap overshoots the goal while a concurrent mark runs), and the time ratios at 2×
// and 3× are read off the curve by linear interpolation between measured points.
//
// With `go` among the bench's allocators, Go's runtime is swept too (a curve per collector,
// `allocator` on each point). Go has no heap minimum: its fixed heap is GOGC=off with a soft
// memory limit of F × minimum heap plus the runtime memory goreplay holds before timing that
// is not free heap (its own heap, stacks, metadata; tools/goreplay/main.go, -fixed-heap). A
// memory limit bounds all of Go's memory, fragmentation in spans included, where gc's heap
// minimum bounds its heapLive, so the two heaps at one F are close but not equal: the
// measured peak heap / minimum column says what each got.

/// One point of a heap sweep: the collector at a fixed heap of `factor` × the minimum heap.
public struct HeapSweepPoint: Equatable, Sendable {
    /// The collector swept: gc (HeapLab's) or go (Go's runtime).
    public var allocator: AllocatorKind
    public var factor: Double
    /// The heap size (bytes): factor × the trace's peak live bytes.
    public var heapBytes: Int
    /// Counted runs by round (nil: failed or skipped).
    public var runs: [ReplayMeasurement?]
    public var error: String?

    public init(factor: Double, heapBytes: Int, runs: [ReplayMeasurement?], error: String? = nil, allocator: AllocatorKind = .gc) {
        self.allocator = allocator
        self.factor = factor
        self.heapBytes = heapBytes
        self.runs = runs
        self.error = error
    }

    /// The collector's options for this point (stop-the-world as the bench's gc runs). For go
    /// (GoReplay.swift) GOGC=0 with a heap minimum means the fixed heap described above.
    public func options(base: GCReplayOptions) -> GCReplayOptions {
        GCReplayOptions(gogc: 0, memoryLimit: nil, heapMinimum: heapBytes, stopTheWorld: base.stopTheWorld)
    }

    /// Points for `factors` (sorted, duplicates removed) of `minimumHeap` bytes.
    public static func points(factors: [Double], minimumHeap: Int, runs: Int, allocator: AllocatorKind = .gc) -> [HeapSweepPoint] {
        Array(Set(factors)).sorted().map {
            HeapSweepPoint(factor: $0, heapBytes: max(1, Int((Double(minimumHeap) * $0).rounded())),
                           runs: Array(repeating: nil, count: runs), allocator: allocator)
        }
    }
}

/// The figures of one sweep point, per round and aggregated.
public struct HeapSweepFigures: Sendable {
    public var allocator: AllocatorKind = .gc
    public var factor: Double
    public var heapBytes: Int
    public var wall: [Double?]
    /// wall / the baseline's wall of the same round.
    public var timeRatios: [Double?]
    /// The collector's peak heap / the minimum heap.
    public var heapRatios: [Double?]
    public var cycles: [Double?]
    public var maxPause: [Double?]
    public var error: String?

    public var wallSpread: BenchStatistics.Spread? { BenchStatistics.spread(wall.compactMap { $0 }) }
    public var timeRatio: Double? { BenchStatistics.median(timeRatios.compactMap { $0 }) }
    public var heapRatio: Double? { BenchStatistics.median(heapRatios.compactMap { $0 }) }
    public var medianCycles: Double? { BenchStatistics.median(cycles.compactMap { $0 }) }
    public var medianMaxPause: Double? { BenchStatistics.median(maxPause.compactMap { $0 }) }
}

extension BenchTrace {
    /// The sweep's figures against `baseline` (empty without a sweep).
    public func sweepFigures(baseline: AllocatorKind) -> [HeapSweepFigures] {
        let base = cell(baseline)?.runs.map { $0?.wallSeconds } ?? []
        let minimum = Double(max(program.peakLiveBytes, 1))
        return sweep.map { p in
            let wall = p.runs.map { $0?.wallSeconds }
            let ratios: [Double?] = wall.indices.map { r in
                guard r < base.count, let x = wall[r], let y = base[r], y > 0 else { return nil }
                return x / y
            }
            return HeapSweepFigures(
                allocator: p.allocator, factor: p.factor, heapBytes: p.heapBytes, wall: wall, timeRatios: ratios,
                heapRatios: p.runs.map { $0?.gc.map { Double($0.peakHeapBytes) / minimum } },
                cycles: p.runs.map { $0?.gc.map { Double($0.cycles.count) } },
                maxPause: p.runs.map { $0?.gc?.maxPauseSeconds },
                error: p.error)
        }
    }

    /// The collectors swept, in bench order.
    public var sweepAllocators: [AllocatorKind] {
        var out: [AllocatorKind] = []
        for p in sweep where !out.contains(p.allocator) { out.append(p.allocator) }
        return out
    }

    /// The sweep's time ratio at `factor` × the minimum heap, interpolated linearly between
    /// the nearest measured points on either side (nil outside the measured range).
    public func sweepTimeRatio(atFactor factor: Double, baseline: AllocatorKind, allocator: AllocatorKind = .gc) -> Double? {
        HeapSweepFigures.interpolate(sweepFigures(baseline: baseline).filter { $0.allocator == allocator }
                                        .compactMap { f in f.timeRatio.map { (f.factor, $0) } },
                                     at: factor)
    }
}

extension HeapSweepFigures {
    /// Linear interpolation in sorted (x, y) points; nil outside [first x, last x].
    public static func interpolate(_ points: [(Double, Double)], at x: Double) -> Double? {
        let p = points.sorted { $0.0 < $1.0 }
        guard let first = p.first, let last = p.last, x >= first.0, x <= last.0 else { return nil }
        for i in p.indices {
            if p[i].0 == x { return p[i].1 }
            if i > 0 && p[i - 1].0 < x && x < p[i].0 {
                let t = (x - p[i - 1].0) / (p[i].0 - p[i - 1].0)
                return p[i - 1].1 + t * (p[i].1 - p[i - 1].1)
            }
        }
        return nil
    }
}

extension BenchResult {
    /// The heap sizes the summary reads the sweep at (Hertz & Berger's 2× and 3×).
    public static let sweepReadings: [Double] = [2, 3]

    /// Whether any trace has a sweep.
    public var hasHeapSweep: Bool { traces.contains { !$0.sweep.isEmpty } }

    /// The collectors swept in any trace, in bench order.
    public var sweepAllocators: [AllocatorKind] {
        var out: [AllocatorKind] = []
        for t in traces { for a in t.sweepAllocators where !out.contains(a) { out.append(a) } }
        return out
    }

    /// Geometric mean over traces of the interpolated sweep time ratio at `factor`.
    public func sweepGeometricMean(atFactor factor: Double, allocator: AllocatorKind = .gc) -> (ratio: Double?, traces: Int) {
        let values = traces.compactMap { $0.sweepTimeRatio(atFactor: factor, baseline: baseline, allocator: allocator) }
        return (BenchStatistics.geometricMean(values), values.count)
    }

    // MARK: report parts

    /// The sweep's block of the table for one trace: one per collector swept.
    func sweepTable(_ trace: BenchTrace) -> String {
        guard !trace.sweep.isEmpty else { return "" }
        let b = baseline.rawValue
        var out = ""
        let all = trace.sweepFigures(baseline: baseline)
        for a in trace.sweepAllocators {
            let how = a == .go ? " (GOGC=off, memory limit k × minimum + Go's non-heap memory)" : ""
            out += "  heap sweep: \(a.rawValue) with a fixed heap of k × the minimum heap (\(Format.bytes(trace.program.peakLiveBytes)), peak live)\(how), time vs \(b) (oracle frees)\n"
            out += "  " + [Format.pad("heap", 8), Format.pad("time (median)", 14, right: true), Format.pad("vs \(b)", 12, right: true),
                           Format.pad("peak heap / min", 16, right: true), Format.pad("cycles", 8, right: true),
                           Format.pad("max pause", 11, right: true)].joined(separator: "  ") + "\n"
            for f in all where f.allocator == a {
                let label = Format.pad(Format.fixed(f.factor, 2) + "x", 8)
                if let error = f.error, f.wallSpread == nil {
                    out += "  " + label + "  failed: \(error)\n"
                    continue
                }
                out += "  " + [label,
                               Format.pad(f.wallSpread.map { Format.seconds($0.median) } ?? "-", 14, right: true),
                               Format.pad(f.timeRatio.map { Format.fixed($0, 3) } ?? "-", 12, right: true),
                               Format.pad(f.heapRatio.map { Format.fixed($0, 2) } ?? "-", 16, right: true),
                               Format.pad(f.medianCycles.map { Format.fixed($0, 0) } ?? "-", 8, right: true),
                               Format.pad(f.medianMaxPause.map { Format.seconds($0) } ?? "-", 11, right: true)].joined(separator: "  ") + "\n"
            }
            let readings = Self.sweepReadings.map { k in
                "\(Format.fixed(k, 0))x " + (trace.sweepTimeRatio(atFactor: k, baseline: baseline, allocator: a).map { Format.fixed($0, 3) } ?? "-")
            }
            out += "  time vs \(b) read off the curve: " + readings.joined(separator: ", ") + "\n"
        }
        return out
    }

    /// The sweep summary lines after the allocator summary.
    func sweepSummary() -> String {
        guard hasHeapSweep else { return "" }
        var out = ""
        for a in sweepAllocators {
            out += "Heap sweep (Hertz & Berger): \(a.rawValue) time / \(baseline.rawValue) time with oracle frees, geometric mean over traces\n"
            for k in Self.sweepReadings {
                let g = sweepGeometricMean(atFactor: k, allocator: a)
                out += "  at \(Format.fixed(k, 0))x the minimum heap: \(g.ratio.map { Format.fixed($0, 3) } ?? "-") (\(g.traces) trace\(g.traces == 1 ? "" : "s"))\n"
            }
        }
        return out
    }

    /// The `heap_sweep` member of a trace's JSON, nil without a sweep.
    func sweepJSON(_ trace: BenchTrace) -> JSONValue? {
        guard !trace.sweep.isEmpty else { return nil }
        let points: [JSONValue] = trace.sweepFigures(baseline: baseline).enumerated().map { k, f in
            var runs: [JSONValue] = []
            for (r, m) in trace.sweep[k].runs.enumerated() {
                guard let m else { continue }
                runs.append(.object([
                    JSONMember("round", .int(r)),
                    JSONMember("wall_seconds", .double(m.wallSeconds)),
                    JSONMember("time_ratio", .number(f.timeRatios[r])),
                    JSONMember("peak_heap_bytes", m.gc.map { .int($0.peakHeapBytes) } ?? .null),
                    JSONMember("heap_ratio", .number(f.heapRatios[r])),
                    JSONMember("cycles", m.gc.map { .int($0.cycles.count) } ?? .null),
                    JSONMember("max_pause_seconds", .number(f.maxPause[r])),
                    JSONMember("gc_cpu_seconds", .number(m.gc?.totalCPUSeconds)),
                    JSONMember("peak_heap_rss_bytes", .int(max(0, m.peakRSSBytes - m.baselineRSSBytes))),
                ]))
            }
            var members = [
                JSONMember("allocator", .string(f.allocator.rawValue)),
                JSONMember("factor", .double(f.factor)),
                JSONMember("heap_bytes", .int(f.heapBytes)),
                JSONMember("gogc", f.allocator == .go ? .string("off") : .int(0)),
                JSONMember("runs", .array(runs)),
                JSONMember("wall_seconds", Self.spreadJSON(f.wallSpread)),
                JSONMember("time_ratio", .number(f.timeRatio)),
                JSONMember("heap_ratio", .number(f.heapRatio)),
                JSONMember("cycles", .number(f.medianCycles)),
                JSONMember("max_pause_seconds", .number(f.medianMaxPause)),
            ]
            if let error = f.error { members.append(JSONMember("error", .string(error))) }
            return .object(members)
        }
        return .object([
            JSONMember("minimum_heap_bytes", .int(trace.program.peakLiveBytes)),
            JSONMember("baseline", .string(baseline.rawValue)),
            JSONMember("points", .array(points)),
            JSONMember("time_ratio_at", .object(Self.sweepReadings.map {
                JSONMember(Format.fixed($0, 0) + "x", .number(trace.sweepTimeRatio(atFactor: $0, baseline: baseline)))
            })),
            JSONMember("time_ratio_at_by_allocator", .object(trace.sweepAllocators.map { a in
                JSONMember(a.rawValue, .object(Self.sweepReadings.map {
                    JSONMember(Format.fixed($0, 0) + "x", .number(trace.sweepTimeRatio(atFactor: $0, baseline: baseline, allocator: a)))
                }))
            })),
        ])
    }

    /// The result's `heap_sweep` summary member, nil without a sweep.
    func sweepSummaryJSON() -> JSONValue? {
        guard hasHeapSweep else { return nil }
        func readings(_ a: AllocatorKind) -> [JSONMember] {
            Self.sweepReadings.map { k in
                let g = sweepGeometricMean(atFactor: k, allocator: a)
                return JSONMember(Format.fixed(k, 0) + "x", .object([JSONMember("time_ratio", .number(g.ratio)), JSONMember("traces", .int(g.traces))]))
            }
        }
        // gc's readings at the top (as before go was swept too), every collector's by name.
        return .object(readings(.gc) + [JSONMember("by_allocator", .object(sweepAllocators.map { JSONMember($0.rawValue, .object(readings($0))) }))])
    }

    /// CSV rows of the sweep: `sweep` per counted run, `sweep_median` per point. Fields are
    /// in `csvColumns` order; columns that do not apply are empty.
    func sweepCSVRows(_ trace: BenchTrace) -> [String] {
        var rows: [String] = []
        let t = Self.csvField(trace.path)
        for f in trace.sweepFigures(baseline: baseline) {
            func row(_ kind: String, _ round: String, wall: Double?, ratio: Double?, heapRatio: Double?) -> String {
                var fields = Array(repeating: "", count: Self.csvColumns.count)
                fields[0] = kind; fields[1] = t; fields[2] = f.allocator.rawValue; fields[3] = round
                fields[Self.csvColumns.firstIndex(of: "wall_seconds")!] = Self.csvNumber(wall)
                fields[Self.csvColumns.firstIndex(of: "time_ratio")!] = Self.csvNumber(ratio)
                fields[Self.csvColumns.firstIndex(of: "heap_factor")!] = Self.csvNumber(f.factor)
                fields[Self.csvColumns.firstIndex(of: "heap_ratio")!] = Self.csvNumber(heapRatio)
                return fields.joined(separator: ",")
            }
            for r in f.wall.indices where f.wall[r] != nil {
                rows.append(row("sweep", String(r), wall: f.wall[r], ratio: f.timeRatios[r], heapRatio: f.heapRatios[r]))
            }
            rows.append(row("sweep_median", "", wall: f.wallSpread?.median, ratio: f.timeRatio, heapRatio: f.heapRatio))
        }
        return rows
    }
}
