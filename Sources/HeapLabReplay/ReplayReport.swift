// The result of `heaplab replay`: what the child measured, put together with what the load
// phase knows about the trace, and printed for people or as JSON.
//
// Memory figures (docs/replay.md, "Memory figures"):
//   baseline_rss_bytes        RSS of the measuring child before the allocator under test
//                             existed: binary, runtime, the mapped program, the pointer table
//   peak_rss_bytes            the child's VmHWM after the replay (whole process, from the OS)
//   peak_heap_rss_bytes       peak_rss_bytes - baseline_rss_bytes
//   rss_at_peak_live_bytes    the child's RSS read from /proc/self/statm right after the op
//                             at which live bytes peak (precomputed at load)
//   peak_live_bytes           from the trace: the largest sum of requested sizes of objects
//                             allocated and not yet freed
//   fragmentation_3           (rss_at_peak_live - baseline) / peak_live: Johnstone & Wilson's
//                             measure #3, memory used at the point of peak live memory over
//                             live memory at that point ("The Memory Fragmentation Problem:
//                             Solved?", ISMM 1998)
//   fragmentation_4           (peak_rss - baseline) / peak_live: their measure #4, peak
//                             memory used over peak live memory
// Both ratios are 1 for a perfect allocator with no metadata; they are null when the trace
// allocates nothing.

/// Number formatting shared by replay and bench output (no Foundation).
public enum Format {
    /// `x` with exactly `digits` decimals ("-" for NaN or infinity).
    public static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(x) * scale).rounded()
        guard scaled < 9e18 else { return "\(x)" }
        let n = UInt64(scaled)
        let s = UInt64(scale)
        var text = String(n / s)
        if digits > 0 {
            let fraction = String(n % s)
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return (x < 0 && n != 0 ? "-" : "") + text
    }

    /// 1234567 as "1,234,567".
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Bytes in binary units with three significant figures: "512 B", "12.3 MiB".
    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while abs(value) >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(n) B" }
        let digits = abs(value) >= 100 ? 0 : (abs(value) >= 10 ? 1 : 2)
        return fixed(value, digits) + " " + units[unit]
    }

    /// Seconds with a unit that keeps three or four significant figures.
    public static func seconds(_ s: Double) -> String {
        guard s.isFinite else { return "-" }
        if abs(s) >= 1 { return fixed(s, 3) + " s" }
        if abs(s) >= 1e-3 { return fixed(s * 1e3, 2) + " ms" }
        return fixed(s * 1e6, 1) + " µs"
    }

    /// Pads to `width` characters, on the left (`right == true`) or right.
    public static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let n = s.count
        guard n < width else { return s }
        let fill = String(repeating: " ", count: width - n)
        return right ? fill + s : s + fill
    }
}

/// One `heaplab replay` result.
public struct ReplayReport: Equatable, Sendable {
    public var allocator: AllocatorKind
    public var trace: String
    public var loadSeconds: Double
    public var program: ReplayProgramInfo
    public var measurement: ReplayMeasurement

    public init(allocator: AllocatorKind, trace: String, loadSeconds: Double, program: ReplayProgramInfo,
                measurement: ReplayMeasurement) {
        self.allocator = allocator
        self.trace = trace
        self.loadSeconds = loadSeconds
        self.program = program
        self.measurement = measurement
    }

    public var nsPerRecord: Double {
        program.records > 0 ? measurement.wallSeconds * 1e9 / Double(program.records) : 0
    }

    public var peakHeapRSSBytes: Int { max(0, measurement.peakRSSBytes - measurement.baselineRSSBytes) }

    public var heapRSSAtPeakLiveBytes: Int {
        max(0, measurement.rssAtPeakLiveBytes - measurement.baselineRSSBytes)
    }

    /// Johnstone & Wilson #3; nil without allocations.
    public var fragmentation3: Double? {
        program.peakLiveBytes > 0 ? Double(heapRSSAtPeakLiveBytes) / Double(program.peakLiveBytes) : nil
    }

    /// Johnstone & Wilson #4; nil without allocations.
    public var fragmentation4: Double? {
        program.peakLiveBytes > 0 ? Double(peakHeapRSSBytes) / Double(program.peakLiveBytes) : nil
    }

    public func json() -> JSONValue {
        let m = measurement
        var members: [JSONMember] = [
            JSONMember("allocator", .string(allocator.rawValue)),
            JSONMember("trace", .string(trace)),
            JSONMember("records", .int(program.records)),
            JSONMember("threads", .int(m.workers)),
            JSONMember("trace_threads", .int(program.traceThreads)),
            JSONMember("ops", .int(program.totalOps)),
            JSONMember("wall_seconds", .double(m.wallSeconds)),
            JSONMember("cpu_seconds", .double(m.cpuSeconds)),
            JSONMember("load_seconds", .double(loadSeconds)),
            JSONMember("ns_per_record", .double(nsPerRecord)),
            JSONMember("peak_rss_bytes", .int(m.peakRSSBytes)),
            JSONMember("baseline_rss_bytes", .int(m.baselineRSSBytes)),
            JSONMember("peak_heap_rss_bytes", .int(peakHeapRSSBytes)),
            JSONMember("rss_at_peak_live_bytes", .int(m.rssAtPeakLiveBytes)),
            JSONMember("peak_live_bytes", .int(program.peakLiveBytes)),
            JSONMember("final_live_bytes", .int(program.finalLiveBytes)),
            JSONMember("total_allocated_bytes", .int(program.totalAllocatedBytes)),
            JSONMember("fragmentation_3", .number(fragmentation3)),
            JSONMember("fragmentation_4", .number(fragmentation4)),
            JSONMember("allocations", .int(program.allocations)),
            JSONMember("frees", .int(program.frees)),
            JSONMember("reallocs", .int(program.reallocs)),
            JSONMember("stores", .int(program.stores)),
            JSONMember("waits", .int(program.waits)),
            JSONMember("slots", .int(program.slotCount)),
            JSONMember("allocator_stats", .object(m.allocatorStatistics.map { JSONMember($0.name, .int($0.value)) })),
            JSONMember("verified", .bool(m.verified)),
            JSONMember("sized_free", .bool(m.sizedFree)),
        ]
        if let gc = m.gc { members.append(JSONMember("gc", gc.json())) }
        return .object(members)
    }

    /// The human-readable form.
    public func text() -> String {
        let m = measurement
        var lines: [String] = []
        func row(_ label: String, _ value: String, _ note: String = "") {
            lines.append("  " + Format.pad(label, 20) + Format.pad(value, 14, right: true) + (note.isEmpty ? "" : "   " + note))
        }
        let threadWord = m.workers == 1 ? "thread" : "threads"
        lines.append("\(trace) on \(allocator.rawValue), \(m.workers) \(threadWord)\(m.sizedFree ? ", sized frees" : "")\(m.verified ? ", verified" : "")")
        row("records", Format.grouped(program.records),
            "\(Format.grouped(program.totalOps)) ops: \(Format.grouped(program.allocations)) allocs, \(Format.grouped(program.frees)) frees, \(Format.grouped(program.reallocs)) reallocs, \(Format.grouped(program.stores)) stores")
        row("load", Format.seconds(loadSeconds), "read, validate, death points, lowering (not timed below)")
        row("wall", Format.seconds(m.wallSeconds), Format.fixed(nsPerRecord, 2) + " ns/record")
        row("cpu", Format.seconds(m.cpuSeconds), m.gc?.runtime == "go" ? "the whole process: workers and Go's GC workers" : "replay threads only")
        row("peak live", Format.bytes(program.peakLiveBytes), "from the trace (requested sizes)")
        row("peak RSS", Format.bytes(m.peakRSSBytes), "VmHWM; \(Format.bytes(peakHeapRSSBytes)) above the \(Format.bytes(m.baselineRSSBytes)) baseline")
        row("RSS at peak live", Format.bytes(m.rssAtPeakLiveBytes), "\(Format.bytes(heapRSSAtPeakLiveBytes)) above baseline")
        row("fragmentation #3", fragmentation3.map { Format.fixed($0, 3) } ?? "-", "(RSS at peak live - baseline) / peak live")
        row("fragmentation #4", fragmentation4.map { Format.fixed($0, 3) } ?? "-", "(peak RSS - baseline) / peak live")
        if !m.allocatorStatistics.isEmpty {
            lines.append("  \(allocator.rawValue) statistics after the replay:")
            for s in m.allocatorStatistics {
                // Byte figures end in _bytes or name a heap area; everything else is a count.
                let isCount = !(s.name.hasSuffix("_bytes") || s.name.hasPrefix("heap_")
                    || ["allocated", "active", "resident", "mapped", "metadata", "retained", "_commit"].contains(where: { s.name.hasSuffix($0) }))
                row("  " + s.name, isCount ? Format.grouped(s.value) : Format.bytes(s.value))
            }
        }
        if let gc = m.gc { lines += gc.textLines() }
        return lines.joined(separator: "\n") + "\n"
    }
}
