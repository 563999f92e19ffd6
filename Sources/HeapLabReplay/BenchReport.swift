// `heaplab bench` output: the aligned table for the terminal, and the JSON and CSV files
// that carry every figure (each counted run, and the aggregates).
//
// Table, per trace: allocator, median wall time with its min-max range, time ratio vs the
// baseline, allocator-cost ratio vs the baseline, median peak heap RSS, its ratio, and
// ns per record. Then the summary: per allocator the geometric mean over traces of each
// ratio. Ratios are medians of pair-by-pair ratios (BenchStatistics.swift); below 1 means
// faster or smaller than the baseline.
//
// CSV columns (one header line; `kind` says what a row is):
//   kind            run | min | median | max | geomean
//   trace, allocator, round (run rows only, 0-based; the warm-up is never listed)
//   wall_seconds, cpu_seconds, ns_per_record, allocator_cost_seconds, peak_rss_bytes,
//   peak_heap_rss_bytes, rss_at_peak_live_bytes, fragmentation_3, fragmentation_4
//   time_ratio, cost_ratio, rss_ratio   (run rows: that round's pair ratio; median rows: the
//                                        median of the pair ratios; geomean rows: over traces)
//   heap_factor, heap_ratio   heap sweep rows only (`sweep` per run, `sweep_median`; allocator
//                             gc): the fixed heap as a factor of the minimum heap, and the
//                             collector's peak heap over the minimum heap (HeapSweep.swift)
// Empty fields mean "not available" (failed run, no null allocator, no baseline).

extension BenchResult {
    // MARK: table

    public func table() -> String {
        var out = ""
        let b = baseline.rawValue
        let ratioWidth = max(10, "vs \(b)".count)
        let costWidth = max(13, "cost vs \(b)".count)
        for trace in traces {
            let p = trace.program
            out += "\(trace.path): \(Format.grouped(p.records)) records, peak live \(Format.bytes(p.peakLiveBytes)), \(p.workers) thread\(p.workers == 1 ? "" : "s"), load \(Format.seconds(trace.loadSeconds))\n"
            let header = [("allocator", 10, false), ("time (median, min-max)", 30, false), ("vs \(b)", ratioWidth, true),
                          ("cost vs \(b)", costWidth, true), ("peak heap RSS", 14, true), ("vs \(b)", ratioWidth, true),
                          ("ns/record", 10, true)]
            out += "  " + header.map { Format.pad($0.0, $0.1, right: $0.2) }.joined(separator: "  ") + "\n"
            for f in trace.figures(baseline: baseline) {
                var cells: [String] = [Format.pad(f.allocator.rawValue, 10)]
                if let error = trace.cell(f.allocator)?.error, f.wallSpread == nil {
                    out += "  " + cells[0] + " failed: \(error)\n"
                    continue
                }
                let time = f.wallSpread.map { "\(Format.seconds($0.median)) (\(Format.seconds($0.min))-\(Format.seconds($0.max)))" } ?? "-"
                cells.append(Format.pad(time, 30))
                cells.append(Format.pad(f.timeRatio.map { Format.fixed($0, 3) } ?? "-", ratioWidth, right: true))
                cells.append(Format.pad(f.costRatio.map { Format.fixed($0, 3) } ?? "-", costWidth, right: true))
                cells.append(Format.pad(f.peakHeapRSSSpread.map { Format.bytes(Int($0.median)) } ?? "-", 14, right: true))
                cells.append(Format.pad(f.rssRatio.map { Format.fixed($0, 3) } ?? "-", ratioWidth, right: true))
                cells.append(Format.pad(f.nsPerRecordSpread.map { Format.fixed($0.median, 2) } ?? "-", 10, right: true))
                out += "  " + cells.joined(separator: "  ") + "\n"
            }
            out += sweepTable(trace)
            out += "\n"
        }
        out += "Summary: geometric mean over \(traces.count) trace\(traces.count == 1 ? "" : "s") of the median ratios vs \(b) (below 1: faster / smaller)\n"
        out += "  " + [Format.pad("allocator", 10), Format.pad("time", 8, right: true), Format.pad("cost", 8, right: true),
                       Format.pad("peak heap RSS", 14, right: true), Format.pad("traces", 7, right: true)].joined(separator: " ") + "\n"
        for g in geometricMeans() {
            out += "  " + [Format.pad(g.allocator.rawValue, 10),
                           Format.pad(g.time.map { Format.fixed($0, 3) } ?? "-", 8, right: true),
                           Format.pad(g.cost.map { Format.fixed($0, 3) } ?? "-", 8, right: true),
                           Format.pad(g.rss.map { Format.fixed($0, 3) } ?? "-", 14, right: true),
                           Format.pad(String(g.traces), 7, right: true)].joined(separator: " ") + "\n"
        }
        out += sweepSummary()
        out += "Times are of the replay loop only (median of \(runs) run\(runs == 1 ? "" : "s"), each in its own process, interleaved, after one warm-up); cost = time - null time of the same round; peak heap RSS = VmHWM - the child's RSS before the allocator started.\n"
        for w in warnings { out += "warning: \(w)\n" }
        return out
    }

    // MARK: JSON

    static func spreadJSON(_ s: BenchStatistics.Spread?) -> JSONValue {
        guard let s else { return .null }
        return .object([JSONMember("min", .number(s.min)), JSONMember("median", .number(s.median)), JSONMember("max", .number(s.max))])
    }

    public func json() -> JSONValue {
        var traceValues: [JSONValue] = []
        for trace in traces {
            let p = trace.program
            var cells: [JSONMember] = []
            for f in trace.figures(baseline: baseline) {
                let cell = trace.cell(f.allocator)
                var runValues: [JSONValue] = []
                for (r, m) in (cell?.runs ?? []).enumerated() {
                    guard let m else { continue }
                    runValues.append(.object([
                        JSONMember("round", .int(r)),
                        JSONMember("wall_seconds", .double(m.wallSeconds)),
                        JSONMember("cpu_seconds", .double(m.cpuSeconds)),
                        JSONMember("ns_per_record", .number(f.nsPerRecord[r])),
                        JSONMember("allocator_cost_seconds", .number(f.cost[r])),
                        JSONMember("peak_rss_bytes", .int(m.peakRSSBytes)),
                        JSONMember("baseline_rss_bytes", .int(m.baselineRSSBytes)),
                        JSONMember("peak_heap_rss_bytes", .int(max(0, m.peakRSSBytes - m.baselineRSSBytes))),
                        JSONMember("rss_at_peak_live_bytes", .int(m.rssAtPeakLiveBytes)),
                        JSONMember("fragmentation_3", .number(f.fragmentation3[r])),
                        JSONMember("fragmentation_4", .number(f.fragmentation4[r])),
                        JSONMember("time_ratio", .number(f.timeRatios[r])),
                        JSONMember("cost_ratio", .number(f.costRatios[r])),
                        JSONMember("rss_ratio", .number(f.rssRatios[r])),
                        JSONMember("allocator_stats", .object(m.allocatorStatistics.map { JSONMember($0.name, .int($0.value)) })),
                    ]))
                }
                var members = [
                    JSONMember("runs", .array(runValues)),
                    JSONMember("wall_seconds", Self.spreadJSON(f.wallSpread)),
                    JSONMember("cpu_seconds", Self.spreadJSON(f.cpuSpread)),
                    JSONMember("ns_per_record", Self.spreadJSON(f.nsPerRecordSpread)),
                    JSONMember("allocator_cost_seconds", Self.spreadJSON(f.costSpread)),
                    JSONMember("peak_rss_bytes", Self.spreadJSON(f.peakRSSSpread)),
                    JSONMember("peak_heap_rss_bytes", Self.spreadJSON(f.peakHeapRSSSpread)),
                    JSONMember("rss_at_peak_live_bytes", Self.spreadJSON(f.rssAtPeakLiveSpread)),
                    JSONMember("fragmentation_3", Self.spreadJSON(f.fragmentation3Spread)),
                    JSONMember("fragmentation_4", Self.spreadJSON(f.fragmentation4Spread)),
                    JSONMember("time_ratio", .number(f.timeRatio)),
                    JSONMember("cost_ratio", .number(f.costRatio)),
                    JSONMember("rss_ratio", .number(f.rssRatio)),
                ]
                if let error = cell?.error { members.append(JSONMember("error", .string(error))) }
                cells.append(JSONMember(f.allocator.rawValue, .object(members)))
            }
            var traceMembers = [
                JSONMember("trace", .string(trace.path)),
                JSONMember("records", .int(p.records)),
                JSONMember("ops", .int(p.totalOps)),
                JSONMember("threads", .int(p.workers)),
                JSONMember("peak_live_bytes", .int(p.peakLiveBytes)),
                JSONMember("total_allocated_bytes", .int(p.totalAllocatedBytes)),
                JSONMember("load_seconds", .double(trace.loadSeconds)),
                JSONMember("live_profile", .array(p.liveProfile.map { .array([.int($0.record), .int($0.liveBytes)]) })),
                JSONMember("allocators", .object(cells)),
            ]
            if let sweep = sweepJSON(trace) { traceMembers.append(JSONMember("heap_sweep", sweep)) }
            traceValues.append(.object(traceMembers))
        }
        let means = geometricMeans().map { g in
            JSONMember(g.allocator.rawValue, .object([
                JSONMember("time_ratio", .number(g.time)), JSONMember("cost_ratio", .number(g.cost)),
                JSONMember("rss_ratio", .number(g.rss)), JSONMember("traces", .int(g.traces)),
            ]))
        }
        var members = [
            JSONMember("baseline", .string(baseline.rawValue)),
            JSONMember("runs", .int(runs)),
            JSONMember("allocators", .array(allocators.map { .string($0.rawValue) })),
            JSONMember("traces", .array(traceValues)),
            JSONMember("geomean", .object(means)),
            JSONMember("warnings", .array(warnings.map { .string($0) })),
        ]
        if let sweep = sweepSummaryJSON() { members.append(JSONMember("heap_sweep", sweep)) }
        return .object(members)
    }

    // MARK: CSV

    static let csvColumns = [
        "kind", "trace", "allocator", "round", "wall_seconds", "cpu_seconds", "ns_per_record",
        "allocator_cost_seconds", "peak_rss_bytes", "peak_heap_rss_bytes", "rss_at_peak_live_bytes",
        "fragmentation_3", "fragmentation_4", "time_ratio", "cost_ratio", "rss_ratio",
        "heap_factor", "heap_ratio",
    ]

    static func csvField(_ s: String) -> String {
        if s.contains(",") || s.contains("\"") || s.contains("\n") {
            return "\"" + s.replacingAll("\"", with: "\"\"") + "\""
        }
        return s
    }

    static func csvNumber(_ d: Double?) -> String {
        guard let d, d.isFinite else { return "" }
        return "\(d)"
    }

    public func csv() -> String {
        var lines = [Self.csvColumns.joined(separator: ",")]
        for trace in traces {
            for f in trace.figures(baseline: baseline) {
                let t = Self.csvField(trace.path), a = f.allocator.rawValue
                for r in f.wall.indices where f.wall[r] != nil {
                    lines.append(([ "run", t, a, String(r)] + [
                        f.wall[r], f.cpu[r], f.nsPerRecord[r], f.cost[r], f.peakRSS[r], f.peakHeapRSS[r],
                        f.rssAtPeakLive[r], f.fragmentation3[r], f.fragmentation4[r],
                        f.timeRatios[r], f.costRatios[r], f.rssRatios[r], nil, nil,
                    ].map(Self.csvNumber)).joined(separator: ","))
                }
                let spreads = [f.wallSpread, f.cpuSpread, f.nsPerRecordSpread, f.costSpread, f.peakRSSSpread,
                               f.peakHeapRSSSpread, f.rssAtPeakLiveSpread, f.fragmentation3Spread, f.fragmentation4Spread]
                for (kind, pick) in [("min", { (s: BenchStatistics.Spread) in s.min }),
                                     ("median", { $0.median }), ("max", { $0.max })] {
                    let ratios: [Double?] = (kind == "median" ? [f.timeRatio, f.costRatio, f.rssRatio] : [nil, nil, nil]) + [nil, nil]
                    lines.append(([kind, t, a, ""] + (spreads.map { $0.map(pick) } + ratios).map(Self.csvNumber))
                        .joined(separator: ","))
                }
            }
        }
        for g in geometricMeans() {
            lines.append((["geomean", "*", g.allocator.rawValue, ""] + Array(repeating: "", count: 9)
                          + [g.time, g.cost, g.rss, nil, nil].map(Self.csvNumber)).joined(separator: ","))
        }
        for trace in traces { lines += sweepCSVRows(trace) }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    /// Every occurrence of `target` replaced (no Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
