// `heaplab bench --html FILE`: one self-contained, offline HTML page (inline CSS and inline
// SVG; no script, no fonts or images fetched) that shows a bench at a glance.
//
// Contents:
//   - header: date, machine (uname, cores), runs, baseline
//   - summary table: per allocator the geometric means of the time, cost and peak heap RSS
//     ratios vs the baseline, with the allocator's colour swatch
//   - per trace, a <section class="trace"> with four SVG charts:
//       time        horizontal bars = median wall time, whiskers = min..max
//       memory      bars = median peak heap RSS, whiskers = min..max
//       cost        median allocator-cost ratio vs baseline (null excluded), line at 1
//       live heap   live bytes along the trace (the load phase's profile), as an area line
//       heap sweep  (with --heap-sweep) Hertz & Berger's curve: gc time / baseline time
//                   against the heap size over the minimum heap, with the baseline's 1.0
//                   line (HeapSweep.swift)
//     and a table with every median figure.
// Each allocator keeps one colour everywhere (Okabe & Ito's colour-blind-safe palette).
//
// The document is well-formed XML as well as HTML (every element closed, attributes
// quoted, only the five XML entities, UTF-8), so tests parse it and other tools can too.

#if canImport(Glibc)
import Glibc
#endif

public enum BenchHTML {
    /// Colour of an allocator in every chart.
    public static func colour(_ a: AllocatorKind) -> String {
        switch a {
        case .heaplab: return "#0072B2"
        case .jemalloc: return "#E69F00"
        case .glibc: return "#D55E00"
        case .mimalloc: return "#009E73"
        case .tcmalloc: return "#CC79A7"
        case .null: return "#9A9A9A"
        case .gc: return "#56B4E9"
        case .go: return "#00ADD8"
        }
    }

    /// Escapes text for element content and attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab / newline are not allowed in XML.
                if c.value < 0x20 && c != "\t" && c != "\n" { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    static func num(_ x: Double) -> String { Format.fixed(x, 1) }

    /// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks.
    static func niceStep(_ range: Double, count: Int) -> Double {
        guard range > 0, range.isFinite else { return 1 }
        let raw = range / Double(max(count, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let f = raw / magnitude
        let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10
        return nice * magnitude
    }

    /// A unit for a set of values: (divisor, suffix).
    static func timeUnit(_ maxSeconds: Double) -> (Double, String) {
        if maxSeconds >= 1 { return (1, "s") }
        if maxSeconds >= 1e-3 { return (1e-3, "ms") }
        return (1e-6, "µs")
    }

    static func byteUnit(_ maxBytes: Double) -> (Double, String) {
        if maxBytes >= 1_073_741_824 { return (1_073_741_824, "GiB") }
        if maxBytes >= 1_048_576 { return (1_048_576, "MiB") }
        if maxBytes >= 1024 { return (1024, "KiB") }
        return (1, "B")
    }

    static func label(_ x: Double, step: Double) -> String {
        let digits = step >= 1 ? 0 : min(6, Int(ceil(-log10(step))))
        return Format.fixed(x, digits)
    }

    struct Bar {
        var allocator: AllocatorKind
        var value: Double
        var low: Double?
        var high: Double?
        var text: String
    }

    /// A horizontal bar chart with optional whiskers and an optional reference line.
    static func barChart(title: String, axisLabel: String, bars: [Bar], divisor: Double,
                         reference: (value: Double, label: String)? = nil) -> String {
        let width = 620.0, left = 92.0, right = 110.0, row = 26.0
        let top = reference == nil ? 34.0 : 50.0   // room for the reference line's label
        let plotWidth = width - left - right
        let height = top + row * Double(max(bars.count, 1)) + 44
        var maxValue = bars.map { max($0.value, $0.high ?? 0) }.max() ?? 0
        if let reference { maxValue = max(maxValue, reference.value) }
        let scaledMax = maxValue / divisor
        let step = niceStep(scaledMax, count: 5)
        let axisMax = max(step, ceil(scaledMax / step) * step)
        func x(_ v: Double) -> Double { left + plotWidth * min(v / divisor / axisMax, 1.05) }
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(num(width)) \(num(height))\" width=\"\(num(width))\" height=\"\(num(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<title>\(escape(title))</title>"
        svg += "<text x=\"\(num(left))\" y=\"20\" class=\"ctitle\">\(escape(title))</text>"
        // Grid and ticks.
        let plotBottom = top + row * Double(bars.count)
        var t = 0.0
        while t <= axisMax + step / 2 {
            let px = left + plotWidth * t / axisMax
            svg += "<line x1=\"\(num(px))\" y1=\"\(num(top - 4))\" x2=\"\(num(px))\" y2=\"\(num(plotBottom))\" class=\"grid\"/>"
            svg += "<text x=\"\(num(px))\" y=\"\(num(plotBottom + 16))\" class=\"tick\" text-anchor=\"middle\">\(label(t, step: step))</text>"
            t += step
        }
        svg += "<text x=\"\(num(left + plotWidth / 2))\" y=\"\(num(plotBottom + 36))\" class=\"axis\" text-anchor=\"middle\">\(escape(axisLabel))</text>"
        for (i, bar) in bars.enumerated() {
            let y = top + row * Double(i)
            let colour = colour(bar.allocator)
            svg += "<text x=\"\(num(left - 8))\" y=\"\(num(y + row / 2 + 4))\" class=\"label\" text-anchor=\"end\">\(escape(bar.allocator.rawValue))</text>"
            let w = max(0, x(bar.value) - left)
            svg += "<rect x=\"\(num(left))\" y=\"\(num(y + 5))\" width=\"\(num(w))\" height=\"\(num(row - 10))\" fill=\"\(colour)\" rx=\"2\"><title>\(escape(bar.allocator.rawValue + ": " + bar.text))</title></rect>"
            if let low = bar.low, let high = bar.high {
                let x1 = x(low), x2 = x(high), cy = y + row / 2
                svg += "<line x1=\"\(num(x1))\" y1=\"\(num(cy))\" x2=\"\(num(x2))\" y2=\"\(num(cy))\" class=\"whisker\"/>"
                svg += "<line x1=\"\(num(x1))\" y1=\"\(num(cy - 6))\" x2=\"\(num(x1))\" y2=\"\(num(cy + 6))\" class=\"whisker\"/>"
                svg += "<line x1=\"\(num(x2))\" y1=\"\(num(cy - 6))\" x2=\"\(num(x2))\" y2=\"\(num(cy + 6))\" class=\"whisker\"/>"
            }
            let textX = max(x(bar.value), x(bar.high ?? 0)) + 6
            svg += "<text x=\"\(num(textX))\" y=\"\(num(y + row / 2 + 4))\" class=\"value\">\(escape(bar.text))</text>"
        }
        if let reference {
            let px = x(reference.value)
            svg += "<line x1=\"\(num(px))\" y1=\"\(num(top - 6))\" x2=\"\(num(px))\" y2=\"\(num(plotBottom))\" class=\"reference\"/>"
            svg += "<text x=\"\(num(px))\" y=\"\(num(top - 10))\" class=\"tick\" text-anchor=\"middle\">\(escape(reference.label))</text>"
        }
        svg += "<line x1=\"\(num(left))\" y1=\"\(num(top - 4))\" x2=\"\(num(left))\" y2=\"\(num(plotBottom))\" class=\"axisline\"/>"
        svg += "</svg>"
        return svg
    }

    /// Live bytes along the trace, as a filled line.
    static func liveChart(title: String, profile: [LiveSample], records: Int) -> String {
        let width = 620.0, height = 250.0, left = 64.0, right = 20.0, top = 34.0, bottom = 46.0
        let plotW = width - left - right, plotH = height - top - bottom
        let maxBytes = Double(profile.map(\.liveBytes).max() ?? 0)
        let (div, unit) = byteUnit(maxBytes)
        let yStep = niceStep(maxBytes / div, count: 4)
        let yMax = max(yStep, ceil(maxBytes / div / yStep) * yStep)
        let xMaxValue = Double(max(records - 1, 1))
        let xStep = niceStep(xMaxValue, count: 5)
        func px(_ r: Double) -> Double { left + plotW * r / xMaxValue }
        func py(_ b: Double) -> Double { top + plotH * (1 - b / div / yMax) }
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(num(width)) \(num(height))\" width=\"\(num(width))\" height=\"\(num(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<title>\(escape(title))</title>"
        svg += "<text x=\"\(num(left))\" y=\"20\" class=\"ctitle\">\(escape(title))</text>"
        var v = 0.0
        while v <= yMax + yStep / 2 {
            let y = top + plotH * (1 - v / yMax)
            svg += "<line x1=\"\(num(left))\" y1=\"\(num(y))\" x2=\"\(num(left + plotW))\" y2=\"\(num(y))\" class=\"grid\"/>"
            svg += "<text x=\"\(num(left - 6))\" y=\"\(num(y + 4))\" class=\"tick\" text-anchor=\"end\">\(label(v, step: yStep))</text>"
            v += yStep
        }
        var r = 0.0
        while r <= xMaxValue + xStep * 1e-9 {
            svg += "<text x=\"\(num(px(r)))\" y=\"\(num(top + plotH + 16))\" class=\"tick\" text-anchor=\"middle\">\(escape(shortCount(r)))</text>"
            r += xStep
        }
        svg += "<text x=\"\(num(left + plotW / 2))\" y=\"\(num(height - 6))\" class=\"axis\" text-anchor=\"middle\">record</text>"
        svg += "<text x=\"14\" y=\"\(num(top + plotH / 2))\" class=\"axis\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(num(top + plotH / 2)))\">live \(unit)</text>"
        if !profile.isEmpty {
            var points = "\(num(px(0))),\(num(py(0)))"
            for s in profile { points += " \(num(px(Double(s.record)))),\(num(py(Double(s.liveBytes))))" }
            let area = points + " \(num(px(Double(profile.last!.record)))),\(num(py(0)))"
            svg += "<polygon points=\"\(area)\" class=\"livearea\"/>"
            svg += "<polyline points=\"\(points)\" class=\"liveline\"/>"
        }
        svg += "<line x1=\"\(num(left))\" y1=\"\(num(top + plotH))\" x2=\"\(num(left + plotW))\" y2=\"\(num(top + plotH))\" class=\"axisline\"/>"
        svg += "</svg>"
        return svg
    }

    /// Hertz & Berger's curve for one trace: median gc/baseline time ratio at each heap size
    /// (a factor of the minimum heap), with the baseline's 1.0 line.
    static func sweepChart(_ trace: BenchTrace, baseline: AllocatorKind) -> String {
        let figures = trace.sweepFigures(baseline: baseline)
        let points = figures.compactMap { f in f.timeRatio.map { (f, $0) } }
        let title = "Heap size vs time: \(trace.sweepAllocators.map(\.rawValue).joined(separator: ", ")) / \(baseline.rawValue) with oracle frees"
        let width = 620.0, height = 270.0, left = 64.0, right = 24.0, top = 34.0, bottom = 46.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xMaxValue = max(figures.map(\.factor).max() ?? 1, 1) * 1.05
        let xMin = min(1.0, figures.map(\.factor).min() ?? 1)
        let yTop = max(1.2, (points.map(\.1).max() ?? 1) * 1.08)
        let yStep = niceStep(yTop, count: 5)
        let yMax = ceil(yTop / yStep) * yStep
        let xStep = niceStep(xMaxValue - xMin, count: 6)
        func px(_ x: Double) -> Double { left + plotW * (x - xMin) / max(xMaxValue - xMin, 1e-9) }
        func py(_ y: Double) -> Double { top + plotH * (1 - min(y, yMax) / yMax) }
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(num(width)) \(num(height))\" width=\"\(num(width))\" height=\"\(num(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<title>\(escape(title))</title>"
        svg += "<text x=\"\(num(left))\" y=\"20\" class=\"ctitle\">\(escape(title))</text>"
        var v = 0.0
        while v <= yMax + yStep / 2 {
            svg += "<line x1=\"\(num(left))\" y1=\"\(num(py(v)))\" x2=\"\(num(left + plotW))\" y2=\"\(num(py(v)))\" class=\"grid\"/>"
            svg += "<text x=\"\(num(left - 6))\" y=\"\(num(py(v) + 4))\" class=\"tick\" text-anchor=\"end\">\(label(v, step: yStep))</text>"
            v += yStep
        }
        var x = ceil(xMin / xStep) * xStep
        while x <= xMaxValue + xStep * 1e-9 {
            svg += "<text x=\"\(num(px(x)))\" y=\"\(num(top + plotH + 16))\" class=\"tick\" text-anchor=\"middle\">\(label(x, step: xStep))×</text>"
            x += xStep
        }
        svg += "<text x=\"\(num(left + plotW / 2))\" y=\"\(num(height - 6))\" class=\"axis\" text-anchor=\"middle\">heap size / minimum heap (\(escape(Format.bytes(trace.program.peakLiveBytes))) peak live)</text>"
        svg += "<text x=\"14\" y=\"\(num(top + plotH / 2))\" class=\"axis\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(num(top + plotH / 2)))\">time / \(escape(baseline.rawValue))</text>"
        // Hertz & Berger's readings at 2× and 3×.
        for k in BenchResult.sweepReadings where k >= xMin && k <= xMaxValue {
            svg += "<line x1=\"\(num(px(k)))\" y1=\"\(num(top))\" x2=\"\(num(px(k)))\" y2=\"\(num(top + plotH))\" class=\"grid\"/>"
        }
        svg += "<line x1=\"\(num(left))\" y1=\"\(num(py(1)))\" x2=\"\(num(left + plotW))\" y2=\"\(num(py(1)))\" class=\"reference\"/>"
        svg += "<text x=\"\(num(left + plotW - 4))\" y=\"\(num(py(1) - 6))\" class=\"tick\" text-anchor=\"end\">\(escape(baseline.rawValue)), oracle frees = 1</text>"
        if !points.isEmpty {
            for a in trace.sweepAllocators {
                let mine = points.filter { $0.0.allocator == a }
                let line = mine.map { "\(num(px($0.0.factor))),\(num(py($0.1)))" }.joined(separator: " ")
                svg += "<polyline points=\"\(line)\" fill=\"none\" stroke=\"\(colour(a))\" stroke-width=\"2\"/>"
                for (f, r) in mine {
                    let tip = "\(a.rawValue) at \(Format.fixed(f.factor, 2))× minimum heap: \(Format.fixed(r, 3)) × \(baseline.rawValue)"
                        + (f.heapRatio.map { "; peak heap \(Format.fixed($0, 2)) × minimum" } ?? "")
                        + (f.medianCycles.map { "; \(Format.fixed($0, 0)) cycles" } ?? "")
                    svg += "<circle cx=\"\(num(px(f.factor)))\" cy=\"\(num(py(r)))\" r=\"4\" fill=\"\(colour(a))\"><title>\(escape(tip))</title></circle>"
                }
            }
        } else {
            svg += "<text x=\"\(num(left + plotW / 2))\" y=\"\(num(top + plotH / 2))\" class=\"tick\" text-anchor=\"middle\">no ratios: the sweep or \(escape(baseline.rawValue)) did not run</text>"
        }
        svg += "<line x1=\"\(num(left))\" y1=\"\(num(top + plotH))\" x2=\"\(num(left + plotW))\" y2=\"\(num(top + plotH))\" class=\"axisline\"/>"
        svg += "</svg>"
        return svg
    }

    /// 1200000 as "1.2M".
    static func shortCount(_ x: Double) -> String {
        if x >= 1e9 { return Format.fixed(x / 1e9, x >= 1e10 ? 0 : 1) + "G" }
        if x >= 1e6 { return Format.fixed(x / 1e6, x >= 1e7 ? 0 : 1) + "M" }
        if x >= 1e3 { return Format.fixed(x / 1e3, x >= 1e4 ? 0 : 1) + "k" }
        return Format.fixed(x, 0)
    }

    static func machineDescription() -> String {
        var u = utsname()
        guard uname(&u) == 0 else { return "" }
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(field(u.sysname)) \(field(u.release)) \(field(u.machine)), \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) cores"
    }

    static func utcDate() -> String {
        var t = time(nil)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday)) \(two(tm.tm_hour)):\(two(tm.tm_min)) UTC"
    }

    static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;background:#f6f7f9;color:#1d2330;line-height:1.45}
        main{max-width:1320px;margin:0 auto;padding:24px 28px 48px}
        h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 6px;word-break:break-all}
        .meta{color:#5b6475;font-size:14px;margin:0 0 18px}
        .card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:18px 20px;margin:18px 0;box-shadow:0 1px 2px rgba(0,0,0,.04)}
        .charts{display:flex;flex-wrap:wrap;gap:10px 24px}
        table{border-collapse:collapse;font-size:14px;margin-top:8px}
        th,td{padding:5px 12px;text-align:right;border-bottom:1px solid #e8ebf0;white-space:nowrap}
        th{background:#f1f3f6;font-weight:600}th:first-child,td:first-child{text-align:left}
        .swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:7px;vertical-align:-1px}
        .legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:14px;margin:6px 0 0}
        .note{color:#5b6475;font-size:13px}
        .bad{color:#b3261e}
        svg.chart{max-width:100%;height:auto;font-size:12px}
        svg .ctitle{font-size:14px;font-weight:600;fill:#1d2330}
        svg .tick{fill:#5b6475;font-size:11px}svg .axis{fill:#3d4555;font-size:12px}
        svg .label{fill:#1d2330;font-size:12.5px}svg .value{fill:#3d4555;font-size:11.5px}
        svg .grid{stroke:#e6e9ee;stroke-width:1}svg .axisline{stroke:#8a93a3;stroke-width:1}
        svg .whisker{stroke:#1d2330;stroke-width:1.4}
        svg .reference{stroke:#1d2330;stroke-width:1.2;stroke-dasharray:4 3}
        svg .livearea{fill:#0072B2;fill-opacity:.14}svg .liveline{fill:none;stroke:#0072B2;stroke-width:1.8}
        """

    /// The whole page.
    public static func render(_ result: BenchResult, title: String = "HeapLab allocator bench") -> String {
        let b = result.baseline.rawValue
        var h = "<!DOCTYPE html>\n<html lang=\"en\" xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n<meta charset=\"utf-8\"/>\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>\(escape(title))</title>\n"
        h += "<style>\n\(style)\n</style>\n</head>\n<body>\n<main>\n"
        h += "<h1>\(escape(title))</h1>\n"
        h += "<p class=\"meta\">\(escape(utcDate())) · \(escape(machineDescription())) · \(result.traces.count) trace\(result.traces.count == 1 ? "" : "s") · median of \(result.runs) interleaved run\(result.runs == 1 ? "" : "s") per allocator, each in its own process, after one warm-up · baseline \(escape(b))</p>\n"
        h += "<div class=\"legend\">"
        for a in result.allocators {
            h += "<span><span class=\"swatch\" style=\"background:\(colour(a))\"></span>\(escape(a.rawValue))</span>"
        }
        h += "</div>\n"

        // Summary.
        h += "<section class=\"card summary\">\n<h2>Summary</h2>\n"
        h += "<p class=\"note\">Geometric mean over traces of the median pair-by-pair ratio to \(escape(b)) in the same round. Below 1 is faster or smaller. Cost = replay time − null-allocator time of the same round (the allocator's own work).</p>\n"
        h += "<table>\n<thead><tr><th>allocator</th><th>time ratio</th><th>cost ratio</th><th>peak heap RSS ratio</th><th>traces</th></tr></thead>\n<tbody>\n"
        for g in result.geometricMeans() {
            h += "<tr><td><span class=\"swatch\" style=\"background:\(colour(g.allocator))\"></span>\(escape(g.allocator.rawValue))</td>"
            h += "<td>\(g.time.map { Format.fixed($0, 3) } ?? "–")</td><td>\(g.cost.map { Format.fixed($0, 3) } ?? "–")</td>"
            h += "<td>\(g.rss.map { Format.fixed($0, 3) } ?? "–")</td><td>\(g.traces)</td></tr>\n"
        }
        h += "</tbody>\n</table>\n"
        if result.hasHeapSweep {
            h += "<p class=\"note\">Heap sweep (Hertz &amp; Berger, OOPSLA 2005): the collector with a fixed heap of k × each trace's minimum heap (its peak live bytes), time over \(escape(b)) freeing at the lifetime oracle's death points; geometric mean over traces of the ratio read off each trace's curve.</p>\n"
            for a in result.sweepAllocators {
                h += "<table>\n<thead><tr><th>heap</th><th>\(escape(a.rawValue)) time / \(escape(b)) time</th><th>traces</th></tr></thead>\n<tbody>\n"
                for k in BenchResult.sweepReadings {
                    let g = result.sweepGeometricMean(atFactor: k, allocator: a)
                    h += "<tr><td>\(Format.fixed(k, 0))× minimum</td><td>\(g.ratio.map { Format.fixed($0, 3) } ?? "–")</td><td>\(g.traces)</td></tr>\n"
                }
                h += "</tbody>\n</table>\n"
            }
        }
        h += "</section>\n"

        for trace in result.traces {
            let p = trace.program
            let figures = trace.figures(baseline: result.baseline)
            let ran = figures.filter { $0.wallSpread != nil }
            h += "<section class=\"card trace\">\n<h2>\(escape(trace.name))</h2>\n"
            h += "<p class=\"meta\">\(escape(trace.path)) · \(Format.grouped(p.records)) records · \(Format.grouped(p.totalOps)) ops · peak live \(escape(Format.bytes(p.peakLiveBytes))) · \(p.workers) thread\(p.workers == 1 ? "" : "s") · load \(escape(Format.seconds(trace.loadSeconds)))</p>\n"
            h += "<div class=\"charts\">\n"
            let maxTime = ran.compactMap { $0.wallSpread?.max }.max() ?? 0
            let (tdiv, tunit) = timeUnit(maxTime)
            h += barChart(title: "Replay time (median, min–max)", axisLabel: "wall time (\(tunit))",
                          bars: ran.map { f in
                              let s = f.wallSpread!
                              return Bar(allocator: f.allocator, value: s.median, low: s.min, high: s.max, text: Format.seconds(s.median))
                          }, divisor: tdiv) + "\n"
            let maxHeap = ran.compactMap { $0.peakHeapRSSSpread?.max }.max() ?? 0
            let (bdiv, bunit) = byteUnit(maxHeap)
            h += barChart(title: "Peak heap RSS (median, min–max)", axisLabel: "VmHWM − baseline (\(bunit))",
                          bars: ran.compactMap { f in
                              guard let s = f.peakHeapRSSSpread else { return nil }
                              return Bar(allocator: f.allocator, value: s.median, low: s.min, high: s.max, text: Format.bytes(Int(s.median)))
                          }, divisor: bdiv) + "\n"
            let costBars = ran.compactMap { f -> Bar? in
                guard f.allocator != .null, let r = f.costRatio else { return nil }
                return Bar(allocator: f.allocator, value: r, low: nil, high: nil, text: Format.fixed(r, 3) + "×")
            }
            if costBars.isEmpty {
                h += "<p class=\"note\">No allocator-cost ratios: the null allocator or \(escape(b)) did not run, or the time minus the null time was not positive.</p>\n"
            } else {
                h += barChart(title: "Allocator cost vs \(b) (median of pair ratios)", axisLabel: "(time − null time) / same for \(b)",
                              bars: costBars, divisor: 1, reference: (1, b)) + "\n"
            }
            h += liveChart(title: "Live heap over the trace", profile: p.liveProfile, records: p.records) + "\n"
            if !trace.sweep.isEmpty { h += sweepChart(trace, baseline: result.baseline) + "\n" }
            h += "</div>\n"
            h += "<table>\n<thead><tr><th>allocator</th><th>time</th><th>min–max</th><th>vs \(escape(b))</th><th>cost vs \(escape(b))</th><th>ns/record</th><th>peak heap RSS</th><th>vs \(escape(b))</th><th>frag #3</th><th>frag #4</th></tr></thead>\n<tbody>\n"
            for f in figures {
                h += "<tr><td><span class=\"swatch\" style=\"background:\(colour(f.allocator))\"></span>\(escape(f.allocator.rawValue))</td>"
                if let s = f.wallSpread {
                    h += "<td>\(escape(Format.seconds(s.median)))</td><td>\(escape(Format.seconds(s.min)))–\(escape(Format.seconds(s.max)))</td>"
                    h += "<td>\(f.timeRatio.map { Format.fixed($0, 3) } ?? "–")</td><td>\(f.costRatio.map { Format.fixed($0, 3) } ?? "–")</td>"
                    h += "<td>\(f.nsPerRecordSpread.map { Format.fixed($0.median, 2) } ?? "–")</td>"
                    h += "<td>\(f.peakHeapRSSSpread.map { escape(Format.bytes(Int($0.median))) } ?? "–")</td>"
                    h += "<td>\(f.rssRatio.map { Format.fixed($0, 3) } ?? "–")</td>"
                    h += "<td>\(f.fragmentation3Spread.map { Format.fixed($0.median, 2) } ?? "–")</td>"
                    h += "<td>\(f.fragmentation4Spread.map { Format.fixed($0.median, 2) } ?? "–")</td></tr>\n"
                } else {
                    h += "<td colspan=\"9\" class=\"bad\">failed: \(escape(trace.cell(f.allocator)?.error ?? "no run"))</td></tr>\n"
                }
            }
            h += "</tbody>\n</table>\n</section>\n"
        }
        if !result.warnings.isEmpty {
            h += "<section class=\"card\">\n<h2>Warnings</h2>\n<ul>\n"
            for w in result.warnings { h += "<li>\(escape(w))</li>\n" }
            h += "</ul>\n</section>\n"
        }
        h += "<p class=\"note\">Peak heap RSS = the measuring child's VmHWM minus its RSS before the allocator was created (binary, runtime, lowered trace, pointer table). Fragmentation #3 = RSS above that baseline at the point of peak live bytes / peak live bytes; #4 = peak heap RSS / peak live bytes (Johnstone &amp; Wilson, ISMM 1998). Generated by heaplab bench.</p>\n"
        h += "</main>\n</body>\n</html>\n"
        return h
    }
}
