// `heaplab inspect SNAPSHOT COMMAND [OPTIONS] [--json]`: answers about one heap snapshot
// (docs/inspect.md lists every command, its output and its JSON keys).
//
//   summary            live objects and bytes (tiny / small / large), heap, fragmentation
//   classes            per size class: spans, slots, objects, bytes, utilisation, waste
//   spans [--svg F]    span occupancy heat map (text; SVG picture with --svg)
//   top [--by object|site] [-n N]   largest retained sizes (exact dominator tree)
//   path ID            shortest path from a root to an object (trace ID, or 0xADDRESS)
//   sites [-n N]       histogram by allocation site
//   diff OTHER [-n N]  growth from SNAPSHOT to OTHER by site and size class
//
// The snapshot comes first (as users name the thing before the question), so the root
// command takes SNAPSHOT COMMAND REST... and hands [SNAPSHOT] + REST to the command's own
// parser. The work is HeapLabSnapshot's; this file only parses and prints. A bad snapshot
// exits 2 with `FILE: byte OFFSET: message`; an unknown object or unreachable one exits 1.
import ArgumentParser
import HeapLabReplay
import HeapLabSnapshot
import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Answer questions about a heap snapshot.",
        discussion: """
            Commands (each takes --json; `heaplab inspect SNAPSHOT COMMAND --help` for its options):
              summary   live objects and bytes by kind, heap in use/idle/released, fragmentation
              classes   per size class: spans, slots, live and free objects, utilisation, waste
              spans     span occupancy heat map (--svg FILE for a picture, --width N)
              top       objects or sites by retained size (--by object|site, -n N)
              path ID   shortest path from a root to the object with trace ID ID (or 0xADDRESS)
              sites     histogram by allocation site (-n N)
              diff OTHER  what grew and shrank from SNAPSHOT to OTHER, by site and size class
            See docs/inspect.md.
            """)

    @Argument(help: "The snapshot file (.hsnap).")
    var snapshot: String

    @Argument(help: "summary, classes, spans, top, path, sites or diff.")
    var command: String

    @Argument(parsing: .captureForPassthrough, help: .hidden)
    var options: [String] = []

    static let commands: [String: any ParsableCommand.Type] = [
        "summary": InspectSummary.self, "classes": InspectClasses.self, "spans": InspectSpans.self,
        "top": InspectTop.self, "path": InspectPath.self, "sites": InspectSites.self, "diff": InspectDiff.self,
    ]

    func validate() throws {
        guard Self.commands[command] != nil else {
            throw ValidationError("unknown inspect command '\(command)' (one of: summary, classes, spans, top, path, sites, diff)")
        }
    }

    func run() throws {
        let type = Self.commands[command]!
        var parsed: any ParsableCommand
        do {
            parsed = try type.parseAsRoot([snapshot] + options)
        } catch {
            let message = type.fullMessage(for: error)
            let code = type.exitCode(for: error)
            if code == .success { print(message) } else { printError(message) }
            throw code
        }
        try parsed.run()
    }
}

// MARK: shared

/// Reads a snapshot; a bad file exits 2.
func loadSnapshot(_ path: String) throws -> HeapSnapshot {
    try reportingInputErrors { try SnapshotReader.read(path: path) }
}

func hexAddress(_ a: UInt64) -> String { "0x" + String(a, radix: 16) }

func percent(_ x: Double) -> String {
    let v = (x * 1000).rounded() / 10
    return "\(v)%"
}

/// Right-aligned columns; the last column left-aligned (names).
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    var widths = [Int](repeating: 0, count: header.count)
    for r in all { for (k, c) in r.enumerated() { widths[k] = max(widths[k], c.count) } }
    var out = ""
    for r in all {
        var line = ""
        for (k, c) in r.enumerated() {
            if k == r.count - 1 {
                line += c
            } else {
                line += String(repeating: " ", count: widths[k] - c.count) + c + "  "
            }
        }
        while line.hasSuffix(" ") { line.removeLast() }
        out += line + "\n"
    }
    return out
}

func u(_ v: UInt64) -> JSONValue { .int(Int(truncatingIfNeeded: v)) }
func optional(_ v: Int64?) -> JSONValue { v.map { .int(Int($0)) } ?? .null }

func describeObject(_ s: HeapSnapshot, _ i: Int) -> String {
    "#\(s.traceID[i]) \(s.siteName(ofObject: i)) (\(s.size[i]) B) at \(hexAddress(s.address[i]))"
}

func objectJSON(_ s: HeapSnapshot, _ i: Int) -> [JSONMember] {
    [
        JSONMember("id", u(s.traceID[i])),
        JSONMember("address", .string(hexAddress(s.address[i]))),
        JSONMember("size", u(s.size[i])),
        JSONMember("size_class", .int(Int(s.sizeClass[i]))),
        JSONMember("site", .string(s.siteName(ofObject: i))),
    ]
}

// MARK: summary

struct InspectSummary: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "summary", abstract: "Live objects and bytes, heap, fragmentation.", usage: "heaplab inspect SNAPSHOT summary [--json]")
    @Argument(help: .hidden) var snapshot: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let s = try loadSnapshot(snapshot)
        let m = s.summary()
        if json {
            func kind(_ k: SizeBreakdown, _ extra: [JSONMember] = []) -> JSONValue {
                .object([JSONMember("objects", .int(k.objects)), JSONMember("bytes", u(k.bytes)),
                         JSONMember("allocated_bytes", u(k.allocatedBytes))] + extra)
            }
            let value = JSONValue.object([
                JSONMember("allocator", .string(s.info.allocator)),
                JSONMember("trace", .string(s.info.trace)),
                JSONMember("record", .int(s.info.record)),
                JSONMember("trigger", .string(s.info.trigger.name)),
                JSONMember("pause_ns", u(s.info.pauseNanos)),
                JSONMember("threads", .int(s.info.threads)),
                JSONMember("gc", .object([JSONMember("cycle", u(s.gc.cycle)), JSONMember("phase", .string(s.gc.phase.name)),
                                          JSONMember("heap_goal", u(s.gc.heapGoal)),
                                          JSONMember("collector", .bool(s.gc.hasCollector)),
                                          JSONMember("current_cycle", u(s.gc.currentCycle)),
                                          JSONMember("heap_marked", u(s.gc.heapMarked)),
                                          JSONMember("heap_live", u(s.gc.heapLive)),
                                          JSONMember("gogc", s.gc.hasCollector && !s.gc.gogcOff ? u(s.gc.gcPercent) : .null),
                                          JSONMember("memory_limit", s.gc.memoryLimit > 0 ? u(s.gc.memoryLimit) : .null),
                                          JSONMember("stop_the_world", .bool(s.gc.stopTheWorld)),
                                          JSONMember("forced_cycle", .bool(s.gc.forcedCycle))])),
                JSONMember("live", kind(m.live)),
                JSONMember("tiny", kind(m.tiny, [JSONMember("blocks", .int(m.tinyBlocks))])),
                JSONMember("small", kind(m.small)),
                JSONMember("large", kind(m.large)),
                JSONMember("heap_sys", optional(m.heapSys)),
                JSONMember("heap_in_use", optional(m.heapInUse)),
                JSONMember("heap_idle", optional(m.heapIdle)),
                JSONMember("heap_released", optional(m.heapReleased)),
                JSONMember("metadata_bytes", optional(m.metadataBytes)),
                JSONMember("spans", .int(m.spans)),
                JSONMember("span_bytes", u(m.spanBytes)),
                JSONMember("internal_fragmentation_bytes", u(m.internalFragmentation)),
                JSONMember("external_fragmentation_bytes", u(m.externalFragmentation)),
                JSONMember("fragmentation", .number(m.fragmentation)),
                JSONMember("edges", .int(m.edges)),
                JSONMember("roots", .int(m.roots)),
                JSONMember("root_objects", .int(m.rootObjects)),
                JSONMember("sites", .int(m.sites)),
                JSONMember("unresolved_pointers", u(s.info.unresolvedPointers)),
                JSONMember("unmarked_allocated", .object([
                    JSONMember("slots", .int(m.unmarkedAllocatedSlots)), JSONMember("bytes", u(m.unmarkedAllocatedBytes)),
                    JSONMember("meaning", .string(unmarkedMeaning(s))),
                ])),
                JSONMember("unreachable", kind(m.unreachable)),
            ])
            print(value.serialized())
            return
        }
        let record = s.info.record >= 0 ? "record \(s.info.record)" : "no record"
        let trace = s.info.trace.isEmpty ? "" : "trace \(s.info.trace), "
        var out = "snapshot       \(snapshot): \(s.info.allocator), \(trace)\(record), trigger \(s.info.trigger.name), pause \(Double(s.info.pauseNanos) / 1e6) ms\n"
        if s.gc.hasCollector {
            let gogc = s.gc.gogcOff ? "off" : "\(s.gc.gcPercent)"
            let limit = s.gc.memoryLimit > 0 ? ", memory limit \(s.gc.memoryLimit) B" : ""
            let marking = s.gc.phase == .mark || s.gc.phase == .markTermination
            let cycle = marking ? "cycle \(s.gc.currentCycle) in \(s.gc.phase.name)" : "\(s.gc.cycle) cycles done, phase \(s.gc.phase.name)"
            out += "gc             \(cycle)\(s.gc.forcedCycle ? " (cycle started for this snapshot)" : ""), heap goal \(s.gc.heapGoal) B, marked \(s.gc.heapMarked) B, heap live \(s.gc.heapLive) B, GOGC \(gogc)\(limit)\(s.gc.stopTheWorld ? ", stop-the-world marking" : "")\n"
        } else {
            out += "gc             cycle \(s.gc.cycle), phase \(s.gc.phase.name), heap goal \(s.gc.heapGoal) B\n"
        }
        func line(_ name: String, _ k: SizeBreakdown, _ extra: String = "") -> String {
            name + String(repeating: " ", count: max(1, 15 - name.count))
                + "\(k.objects) objects, \(k.bytes) B requested, \(k.allocatedBytes) B allocated\(extra)\n"
        }
        out += line("live", m.live)
        out += line("  tiny", m.tiny, " (\(m.tinyBlocks) 16-byte blocks)")
        out += line("  small", m.small)
        out += line("  large", m.large)
        func fig(_ v: Int64?) -> String { v.map { "\($0) B" } ?? "n/a" }
        out += "heap           sys \(fig(m.heapSys)), in use \(fig(m.heapInUse)), idle \(fig(m.heapIdle)), released \(fig(m.heapReleased))\n"
        out += "metadata       \(fig(m.metadataBytes))\n"
        out += "spans          \(m.spans) spans, \(m.spanBytes) B\n"
        out += "fragmentation  \(percent(m.fragmentation)) of span bytes not live; internal \(m.internalFragmentation) B (rounding to classes/pages), external \(m.externalFragmentation) B (free and cached slots, span tails)\n"
        out += "not live       \(m.unmarkedAllocatedSlots) allocated slots (\(m.unmarkedAllocatedBytes) B) hold no live object: \(unmarkedMeaning(s))\n"
        out += line("unreachable", m.unreachable, m.unreachable.objects > 0 && s.gc.hasCollector && s.info.trigger == .gc
                    ? " (marked, no root reaches them: floating garbage, freed next cycle)" : "")
        out += "graph          \(m.edges) pointers, \(m.roots) roots on \(m.rootObjects) objects, \(m.sites) sites, \(s.info.unresolvedPointers) unresolved pointers\n"
        print(out, terminator: "")
    }
}

/// What allocated-but-unmarked slots are in this kind of snapshot.
func unmarkedMeaning(_ s: HeapSnapshot) -> String {
    s.gc.hasCollector ? "garbage awaiting sweep (allocated since the last sweep, not live)"
        : "freed objects still cached (an mcache's free stack)"
}

// MARK: classes

struct InspectClasses: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "classes", abstract: "Per size class: spans, slots, objects, bytes, utilisation, waste.", usage: "heaplab inspect SNAPSHOT classes [--json]")
    @Argument(help: .hidden) var snapshot: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let s = try loadSnapshot(snapshot)
        let rows = s.classes()
        if json {
            print(JSONValue.array(rows.map { r in
                .object([
                    JSONMember("class", .int(r.sizeClass)), JSONMember("object_size", .int(r.objectSize)),
                    JSONMember("spans", .int(r.spans)), JSONMember("span_bytes", u(r.spanBytes)),
                    JSONMember("slots", .int(r.slots)), JSONMember("allocated_slots", .int(r.allocatedSlots)),
                    JSONMember("live_slots", .int(r.markedSlots)), JSONMember("free_slots", .int(r.freeSlots)),
                    JSONMember("live_objects", .int(r.liveObjects)), JSONMember("live_bytes", u(r.liveBytes)),
                    JSONMember("utilisation", .number(r.utilisation)), JSONMember("waste_bytes", u(r.waste)),
                ])
            }).serialized())
            return
        }
        let body = rows.map { r in
            [r.sizeClass == 0 ? "large" : String(r.sizeClass), r.sizeClass == 0 ? "-" : String(r.objectSize),
             String(r.spans), String(r.spanBytes), String(r.slots), String(r.allocatedSlots), String(r.markedSlots),
             String(r.freeSlots), String(r.liveObjects), String(r.liveBytes), percent(r.utilisation), String(r.waste)]
        }
        print(table(["class", "size", "spans", "span_bytes", "slots", "allocated", "live_slots", "free", "objects",
                     "live_bytes", "util", "waste"], body), terminator: "")
    }
}

// MARK: spans

struct InspectSpans: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spans", abstract: "Span occupancy heat map.", usage: "heaplab inspect SNAPSHOT spans [--svg FILE] [--width N] [--json]")
    @Argument(help: .hidden) var snapshot: String
    @Option(help: "Also draw the map as an SVG picture to this file.") var svg: String?
    @Option(help: "Spans per row.") var width: Int = 64
    @Flag(help: "Print JSON (one entry per span).") var json = false

    func validate() throws {
        guard width >= 1 && width <= 4096 else { throw ValidationError("--width must be 1...4096") }
    }

    func run() throws {
        let s = try loadSnapshot(snapshot)
        if let svg {
            let picture = SpanHeatMap.svg(s, width: width)
            try reportingInputErrors {
                try AtomicOutputFile.write(picture, to: svg)
            }
        }
        if json {
            print(JSONValue.array(SpanHeatMap.occupancy(s).map { o in
                .object([
                    JSONMember("start", .string(hexAddress(o.start))), JSONMember("pages", .int(o.pages)),
                    JSONMember("class", .int(o.sizeClass)), JSONMember("elem_size", u(o.elemSize)),
                    JSONMember("slots", .int(o.slots)), JSONMember("allocated_slots", .int(o.allocatedSlots)),
                    JSONMember("live_slots", .int(o.liveSlots)), JSONMember("occupancy", .number(o.occupancy)),
                    JSONMember("free_pages_before", .int(o.gapPagesBefore)),
                ])
            }).serialized())
        } else {
            print(SpanHeatMap.text(s, width: width), terminator: "")
            if let svg { print("wrote \(svg)") }
        }
    }
}

// MARK: top

struct InspectTop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "top", abstract: "Objects or sites by retained size (exact dominators).", usage: "heaplab inspect SNAPSHOT top [--by object|site] [-n N] [--json]")
    @Argument(help: .hidden) var snapshot: String
    @Option(help: "object or site.") var by: String = "object"
    @Option(name: .short, help: "How many rows.") var n: Int = 20
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard by == "object" || by == "site" else { throw ValidationError("--by must be object or site") }
        guard n >= 0 else { throw ValidationError("-n must be at least 0") }
    }

    func run() throws {
        let s = try loadSnapshot(snapshot)
        let tree = Dominators.compute(s)
        let total = tree.reachableBytes
        func share(_ v: UInt64) -> Double { total == 0 ? 0 : Double(v) / Double(total) }
        if by == "site" {
            let rows = s.topSites(tree, count: n)
            let hist = Dictionary(uniqueKeysWithValues: s.siteHistogram().map { ($0.site, $0) })
            if json {
                print(JSONValue.object([
                    JSONMember("reachable_bytes", u(total)),
                    JSONMember("unreachable_objects", .int(tree.unreachableObjects)),
                    JSONMember("sites", .array(rows.map { r in
                        .object([
                            JSONMember("site", .string(hist[r.site]?.name ?? "")),
                            JSONMember("site_id", hist[r.site]?.id.map { u($0) } ?? .null),
                            JSONMember("objects", .int(hist[r.site]?.objects ?? 0)),
                            JSONMember("bytes", u(hist[r.site]?.bytes ?? 0)),
                            JSONMember("retained", u(r.retained)),
                        ])
                    })),
                ]).serialized())
                return
            }
            print("reachable: \(total) B; unreachable: \(tree.unreachableObjects) objects, \(tree.unreachableBytes) B")
            print(table(["retained", "share", "objects", "bytes", "site"], rows.map { r in
                [String(r.retained), percent(share(r.retained)), String(hist[r.site]?.objects ?? 0),
                 String(hist[r.site]?.bytes ?? 0), hist[r.site]?.name ?? ""]
            }), terminator: "")
            return
        }
        let top = s.topObjects(tree, count: n)
        func dominator(_ i: Int) -> String {
            let d = tree.idom[i]
            return d < 0 ? "root" : "#\(s.traceID[Int(d)])"
        }
        if json {
            print(JSONValue.object([
                JSONMember("reachable_bytes", u(total)),
                JSONMember("unreachable_objects", .int(tree.unreachableObjects)),
                JSONMember("objects", .array(top.map { i in
                    .object(objectJSON(s, i) + [
                        JSONMember("retained", u(tree.retained[i])),
                        JSONMember("dominator", tree.idom[i] < 0 ? .null : u(s.traceID[Int(tree.idom[i])])),
                    ])
                })),
            ]).serialized())
            return
        }
        print("reachable: \(total) B; unreachable: \(tree.unreachableObjects) objects, \(tree.unreachableBytes) B")
        print(table(["retained", "share", "size", "id", "dominator", "address", "site"], top.map { i in
            [String(tree.retained[i]), percent(share(tree.retained[i])), String(s.size[i]), "#\(s.traceID[i])",
             dominator(i), hexAddress(s.address[i]), s.siteName(ofObject: i)]
        }), terminator: "")
    }
}

// MARK: path

struct InspectPath: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "path", abstract: "Shortest path from a root to an object.", usage: "heaplab inspect SNAPSHOT path ID|0xADDRESS [--json]")
    @Argument(help: .hidden) var snapshot: String
    @Argument(help: "The object's trace ID, or 0xADDRESS (any address inside it).") var object: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let s = try loadSnapshot(snapshot)
        var index: Int?
        if object.hasPrefix("0x"), let a = UInt64(object.dropFirst(2), radix: 16) {
            index = s.object(containing: a)
        } else if let id = UInt64(object) {
            index = s.object(withTraceID: id)
        } else {
            throw ValidationError("'\(object)' is neither a trace ID nor a 0x address")
        }
        guard let target = index else {
            printError("no live object \(object) in \(snapshot)")
            throw ExitCode(1)
        }
        let paths = ShortestPaths(s)
        guard let path = paths.path(to: target) else {
            printError("object \(describeObject(s, target)) is not reachable from any root")
            throw ExitCode(1)
        }
        let first = path.steps[0].object
        let holders = s.roots.filter { Int($0.object) == first }
        if json {
            print(JSONValue.object([
                JSONMember("root", .array(holders.map {
                    .object([JSONMember("thread", .int(Int($0.thread))), JSONMember("holds", .int(Int($0.holds)))])
                })),
                JSONMember("steps", .array(path.steps.map { step in
                    .object(objectJSON(s, step.object) + [JSONMember("slot", step.slot.map { .int(Int($0)) } ?? .null)])
                })),
                JSONMember("hops", .int(path.steps.count - 1)),
            ]).serialized())
            return
        }
        let holds = holders.map { "thread \($0.thread) (\($0.holds) hold\($0.holds == 1 ? "" : "s"))" }.joined(separator: ", ")
        var out = "root: held by \(holds)\n"
        out += "  \(describeObject(s, first))\n"
        for step in path.steps.dropFirst() {
            out += "  .slot \(step.slot!) -> \(describeObject(s, step.object))\n"
        }
        out += "\(path.steps.count - 1) hop(s)\n"
        print(out, terminator: "")
    }
}

// MARK: sites

struct InspectSites: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sites", abstract: "Histogram by allocation site.", usage: "heaplab inspect SNAPSHOT sites [-n N] [--json]")
    @Argument(help: .hidden) var snapshot: String
    @Option(name: .short, help: "How many rows (0: all).") var n: Int = 0
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let s = try loadSnapshot(snapshot)
        var rows = s.siteHistogram()
        if n > 0 { rows = Array(rows.prefix(n)) }
        if json {
            print(JSONValue.array(rows.map { r in
                .object([
                    JSONMember("site", .string(r.name)), JSONMember("site_id", r.id.map { u($0) } ?? .null),
                    JSONMember("objects", .int(r.objects)), JSONMember("bytes", u(r.bytes)),
                    JSONMember("allocated_bytes", u(r.allocatedBytes)),
                ])
            }).serialized())
            return
        }
        print(table(["objects", "bytes", "allocated", "avg_size", "site"], rows.map { r in
            [String(r.objects), String(r.bytes), String(r.allocatedBytes), String(r.bytes / UInt64(max(r.objects, 1))), r.name]
        }), terminator: "")
    }
}

// MARK: diff

struct InspectDiff: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Growth between two snapshots, by site and size class.", usage: "heaplab inspect SNAPSHOT diff OTHER [-n N] [--json]")
    @Argument(help: .hidden) var snapshot: String
    @Argument(help: "The later snapshot.") var other: String
    @Option(name: .short, help: "Rows per table (0: all).") var n: Int = 20
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let before = try loadSnapshot(snapshot)
        let after = try loadSnapshot(other)
        let d = before.diff(to: after)
        func limit(_ rows: [DiffRow]) -> [DiffRow] { n > 0 ? Array(rows.prefix(n)) : rows }
        func className(_ key: String) -> String {
            guard let c = Int(key), c > 0 else { return "large" }
            let size = c < after.sizeClasses.count ? after.sizeClasses[c].size : (c < before.sizeClasses.count ? before.sizeClasses[c].size : 0)
            return "\(c) (\(size) B)"
        }
        func rowJSON(_ r: DiffRow, _ name: String, _ key: String) -> JSONValue {
            .object([
                JSONMember(key, .string(name)),
                JSONMember("objects_before", .int(r.objectsBefore)), JSONMember("objects_after", .int(r.objectsAfter)),
                JSONMember("objects_delta", .int(r.objectDelta)),
                JSONMember("bytes_before", u(r.bytesBefore)), JSONMember("bytes_after", u(r.bytesAfter)),
                JSONMember("bytes_delta", .int(Int(r.byteDelta))),
            ])
        }
        if json {
            print(JSONValue.object([
                JSONMember("total", rowJSON(d.total, "total", "name")),
                JSONMember("sites", .array(limit(d.bySite).map { rowJSON($0, $0.key, "site") })),
                JSONMember("classes", .array(limit(d.byClass).map { rowJSON($0, className($0.key), "class") })),
            ]).serialized())
            return
        }
        func signed(_ v: Int64) -> String { v > 0 ? "+\(v)" : "\(v)" }
        func body(_ rows: [DiffRow], _ name: (DiffRow) -> String) -> [[String]] {
            rows.map { r in
                [signed(r.byteDelta), String(r.bytesBefore), String(r.bytesAfter), signed(Int64(r.objectDelta)),
                 String(r.objectsBefore), String(r.objectsAfter), name(r)]
            }
        }
        let header = ["bytes_delta", "bytes_before", "bytes_after", "objects_delta", "objects_before", "objects_after"]
        var out = "total: \(signed(d.total.byteDelta)) B (\(d.total.bytesBefore) -> \(d.total.bytesAfter)), \(signed(Int64(d.total.objectDelta))) objects (\(d.total.objectsBefore) -> \(d.total.objectsAfter))\n\nby site\n"
        out += table(header + ["site"], body(limit(d.bySite)) { $0.key })
        out += "\nby size class\n"
        out += table(header + ["class"], body(limit(d.byClass)) { className($0.key) })
        print(out, terminator: "")
    }
}
