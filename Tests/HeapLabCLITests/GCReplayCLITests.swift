// `heaplab replay --allocator gc` end to end, through the built binary: generated GC traces
// (several seeds, thread counts and GOGC values, GOGC=1 for constant collection) pass
// --verify; gctrace lines have Go's shape, one per cycle; the `gc` JSON object and the human
// lines; a trace that names a dead object exits 2 with its line; the timeline is Chrome
// trace-event JSON; GOGC and GOMEMLIMIT come from the environment unless the options say
// otherwise; collector options without --allocator gc are refused.
import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite(.serialized) struct GCReplayCLITests {
    /// Small generated traces: gen NAME with options that keep a debug build quick.
    static func generate(_ s: ReplayScratch, _ name: String, threads: Int, seed: Int) throws -> String {
        var options: [String]
        switch name {
        case "gcbench": options = ["--stretch-depth", "12", "--long-lived-depth", "10", "--max-depth", "10"]
        case "binary-trees": options = ["--depth", "11", "--threads", String(threads)]
        case "lru": options = ["--threads", String(threads), "--ops", "15000", "--capacity", "500", "--keys", "2000"]
        default: options = ["--threads", String(threads), "--ops", "40000"]
        }
        let path = s.path("\(name)-\(threads)-\(seed).hbtrace")
        let r = try CLIHarness.run(["gen", name, "--seed", String(seed), "-o", path, "--binary"] + options)
        #expect(r.status == 0, "\(r.stderr)")
        return path
    }

    static func json(_ r: CLIResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    static func cleanEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        var e = ProcessInfo.processInfo.environment
        e["GOGC"] = nil
        e["GOMEMLIMIT"] = nil
        for (k, v) in extra { e[k] = v }
        return e
    }

    @Test(arguments: [("gcbench", 1, 1), ("binary-trees", 3, 2), ("lru", 2, 3), ("random-graph", 2, 4), ("random-graph", 3, 5)],
          ["1", "10", "100"])
    func generatedTracesPassVerify(workload: (String, Int, Int), gogc: String) throws {
        let (name, threads, seed) = workload
        let s = ReplayScratch("gcreplay")
        defer { s.cleanup() }
        let trace = try Self.generate(s, name, threads: threads, seed: seed)
        // The test needs at least one collection to mean anything. A replay of these small
        // traces takes a few milliseconds in a release build, and on a busy machine it can
        // end before the coordinator gets a CPU to finish its first cycle: then it is run
        // again (at most three times), every run under verify.
        var r = CLIResult(status: -1, stdout: "", stderr: "")
        var j: [String: Any] = [:]
        for _ in 0..<3 {
            r = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--gogc", gogc, "--heap-minimum", "256KiB",
                                    "--verify", "--json"], environment: Self.cleanEnvironment())
            #expect(r.status == 0, "\(name) GOGC=\(gogc): \(r.stderr)")
            j = try Self.json(r)
            if let gc = j["gc"] as? [String: Any], (gc["cycles"] as? Int ?? 0) >= 1 { break }
        }
        #expect(j["allocator"] as? String == "gc")
        #expect(j["threads"] as? Int == threads)
        #expect(j["verified"] as? Bool == true)
        let gc = try #require(j["gc"] as? [String: Any])
        #expect(gc["verified"] as? Bool == true)
        #expect(gc["gogc"] as? Int == Int(gogc))
        #expect((gc["cycles"] as? Int ?? 0) >= 1, "\(name) at GOGC=\(gogc) never collected")
        #expect(j["frees"] as? Int == 0)
    }

    /// A worker running ahead must not cut the last path to an object that another worker is
    /// about to name. Here thread 1 overwrites a slot of a long-lived object (object 1) that
    /// thread 0 filled, after (in the trace) thread 0 held the old target again; without the
    /// lowering's wait for the last op on each object that dies at a record, thread 1 could
    /// do it first, the collector freed the target, and verify stopped the replay at thread
    /// 0's hold ("object 12966 was used after the collector freed it"): about a quarter of
    /// `--stw` runs of this trace in a release build, none at 40,000 ops or with one thread.
    @Test func aWorkerRunningAheadDoesNotCutAnotherWorkersObjectLoose() throws {
        let s = ReplayScratch("gcreplay")
        defer { s.cleanup() }
        let trace = s.path("random-graph-long.hbtrace")
        let g = try CLIHarness.run(["gen", "random-graph", "--seed", "4", "--threads", "2", "--ops", "120000", "-o", trace, "--binary"])
        #expect(g.status == 0, "\(g.stderr)")
        for run in 0..<20 {
            let r = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--gogc", "10", "--heap-minimum", "256KiB",
                                        "--stw", "--verify", "--json"], environment: Self.cleanEnvironment())
            #expect(r.status == 0, "run \(run): \(r.stderr)")
            if r.status != 0 { return }
        }
    }

    @Test func gctraceLinesHaveGosShapeOnePerCycle() throws {
        let s = ReplayScratch("gcreplay")
        defer { s.cleanup() }
        let trace = try Self.generate(s, "random-graph", threads: 2, seed: 1)
        let r = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--gogc", "1", "--gctrace", "--json"],
                                   environment: Self.cleanEnvironment())
        #expect(r.status == 0, "\(r.stderr)")
        let cycles = try #require((try Self.json(r))["gc"] as? [String: Any])["cycles"] as? Int
        let lines = r.stderr.split(separator: "\n").map(String.init)
        let shape = try Regex(#"gc \d+ @\d+\.\d{3}s \d+%: [0-9.]+\+[0-9.]+\+[0-9.]+ ms clock, [0-9.]+\+[0-9.]+/[0-9.]+/[0-9.]+\+[0-9.]+ ms cpu, \d+->\d+->\d+ MB, \d+ MB goal, \d+ P"#)
        for line in lines { #expect(line.wholeMatch(of: shape) != nil, "not a gctrace line: \(line)") }
        // Every cycle of the replay printed its line (one more may finish just after it).
        #expect(lines.count >= (cycles ?? 0) && lines.count <= (cycles ?? 0) + 1)
        #expect(lines.first?.hasPrefix("gc 1 @") == true)
    }

    @Test func jsonAndTextNameEveryFigure() throws {
        let s = ReplayScratch("gcreplay")
        defer { s.cleanup() }
        let trace = try Self.generate(s, "lru", threads: 2, seed: 2)
        let r = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--gogc", "50", "--json"],
                                   environment: Self.cleanEnvironment())
        #expect(r.status == 0, "\(r.stderr)")
        let gc = try #require(try Self.json(r)["gc"] as? [String: Any])
        for key in ["gogc", "memory_limit_bytes", "heap_minimum_bytes", "mode", "verified", "procs", "replay_seconds",
                    "cycles", "pauses", "mmu", "cpu", "assists", "heap_goal_bytes", "peak_heap_bytes", "final_heap_bytes",
                    "per_cycle"] {
            #expect(gc[key] != nil, "missing gc.\(key)")
        }
        let pauses = try #require(gc["pauses"] as? [String: Any])
        for key in ["count", "max_seconds", "p50_seconds", "p99_seconds", "total_seconds", "histogram", "intervals"] {
            #expect(pauses[key] != nil, "missing gc.pauses.\(key)")
        }
        let mmu = try #require(gc["mmu"] as? [String: Any])
        #expect(Set(mmu.keys) == ["1ms", "10ms", "100ms"])
        let cpu = try #require(gc["cpu"] as? [String: Any])
        for key in ["background_seconds", "assist_seconds", "pause_seconds", "total_seconds", "fraction"] {
            #expect(cpu[key] != nil, "missing gc.cpu.\(key)")
        }
        #expect((gc["heap_goal_bytes"] as? [Any])?.count == gc["cycles"] as? Int)
        #expect(gc["mode"] as? String == "concurrent")
        let text = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--stw"], environment: Self.cleanEnvironment())
        #expect(text.status == 0, "\(text.stderr)")
        for word in ["on gc, 2 threads", "collector: GOGC=100", "stop-the-world", "max pause", "MMU at 10 ms", "GC CPU", "peak heap"] {
            #expect(text.stdout.contains(word), "no '\(word)' in\n\(text.stdout)")
        }
    }

    @Test func anObjectNamedAfterItDiedIsATraceErrorWithItsLine() throws {
        let s = ReplayScratch("gcreplay")
        defer { s.cleanup() }
        let trace = s.write("dead.htrace", """
            heaplab-trace 1
            a 1 64 1
            a 2 32
            w 1 0 2
            f 2
            w 1 0 -
            h 2
            """)
        for extra in [["--verify"], []] {
            let r = try CLIHarness.run(["replay", trace, "--allocator", "gc"] + extra, environment: Self.cleanEnvironment())
            #expect(r.status == 2)
            #expect(r.stderr.hasPrefix("\(trace):7: "), "\(r.stderr)")
            #expect(r.stderr.contains("object 2"))
            #expect(r.stdout.isEmpty)
        }
    }

    @Test func timelineIsWellFormedAndWrittenOnlyOnSuccess() throws {
        let s = ReplayScratch("gcreplay")
        defer { s.cleanup() }
        let trace = try Self.generate(s, "random-graph", threads: 2, seed: 3)
        let out = s.path("timeline.json")
        let r = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--gogc", "1", "--timeline", out],
                                   environment: Self.cleanEnvironment())
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        let events = try #require(object["traceEvents"] as? [[String: Any]])
        let names = Set(events.compactMap { $0["name"] as? String })
        for name in ["thread_name", "replay", "mark setup (STW)", "mark termination (STW)", "concurrent mark", "heap"] {
            #expect(names.contains(name), "no \(name)")
        }
        #expect(Set(events.compactMap { $0["ph"] as? String }).isSubset(of: ["X", "M", "C"]))
        #expect(!FileManager.default.fileExists(atPath: out + ".tmp.\(0)"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: s.url.path).filter { $0.contains(".tmp.") }
        #expect(leftovers.isEmpty)
        // A broken trace: exit 2, and no timeline file.
        let bad = s.write("bad.htrace", "heaplab-trace 1\nf 9\n")
        let failed = s.path("none.json")
        let b = try CLIHarness.run(["replay", bad, "--allocator", "gc", "--timeline", failed], environment: Self.cleanEnvironment())
        #expect(b.status == 2)
        #expect(!FileManager.default.fileExists(atPath: failed))
    }

    @Test func gogcAndGomemlimitComeFromTheEnvironmentUnlessGiven() throws {
        let s = ReplayScratch("gcreplay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", "heaplab-trace 1\na 1 64 1\na 2 64 1\nw 1 0 2\nf 2\nf 1\n")
        let env = Self.cleanEnvironment(["GOGC": "37", "GOMEMLIMIT": "64MiB"])
        let r = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--json"], environment: env)
        #expect(r.status == 0, "\(r.stderr)")
        let gc = try #require(try Self.json(r)["gc"] as? [String: Any])
        #expect(gc["gogc"] as? Int == 37)
        #expect(gc["memory_limit_bytes"] as? Int == 64 << 20)
        let o = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--json", "--gogc", "off", "--memlimit", "off"], environment: env)
        let g2 = try #require(try Self.json(o)["gc"] as? [String: Any])
        #expect(g2["gogc"] as? String == "off")
        #expect(g2["memory_limit_bytes"] is NSNull)
        let bad = try CLIHarness.run(["replay", trace, "--allocator", "gc"], environment: Self.cleanEnvironment(["GOMEMLIMIT": "lots"]))
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("memory limit"))
    }

    @Test func collectorOptionsNeedTheCollector() throws {
        let s = ReplayScratch("gcreplay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", "heaplab-trace 1\na 1 64\nf 1\n")
        for option in [["--gogc", "50"], ["--stw"], ["--gctrace"], ["--timeline", s.path("x.json")], ["--memlimit", "1GiB"], ["--zero-data"], ["--no-idle-marking"]] {
            let r = try CLIHarness.run(["replay", trace, "--allocator", "heaplab"] + option, environment: Self.cleanEnvironment())
            #expect(r.status == 64, "\(option)")
            #expect(r.stderr.contains("need --allocator gc"))
        }
    }

    /// `heaplab bench` with gc as an allocator and a heap sweep: table, JSON, CSV and an HTML
    /// page with the Hertz & Berger chart.
    @Test func benchRunsGcAndTheHeapSweep() throws {
        let s = ReplayScratch("gcbench")
        defer { s.cleanup() }
        let trace = try Self.generate(s, "gcbench", threads: 1, seed: 1)
        let baseline = rivalLibraryInstalled("jemalloc") ? "jemalloc" : "glibc"
        let r = try CLIHarness.run(["bench", trace, "--runs", "1", "--allocators", "gc,\(baseline)", "--baseline", baseline,
                                    "--heap-sweep", "1.5,3", "--json", s.path("r.json"), "--csv", s.path("r.csv"),
                                    "--html", s.path("r.html")], environment: Self.cleanEnvironment())
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("  gc "))
        #expect(r.stdout.contains("heap sweep: gc with a fixed heap"))
        #expect(r.stdout.contains("1.50x") && r.stdout.contains("3.00x"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path("r.json")))) as? [String: Any])
        let traces = try #require(json["traces"] as? [[String: Any]])
        let sweep = try #require(traces[0]["heap_sweep"] as? [String: Any])
        let points = try #require(sweep["points"] as? [[String: Any]])
        #expect(points.map { $0["factor"] as? Double } == [1.5, 3])
        #expect(points.allSatisfy { ($0["time_ratio"] as? Double ?? 0) > 0 && ($0["heap_ratio"] as? Double ?? 0) > 0 })
        let gcCell = try #require((traces[0]["allocators"] as? [String: Any])?["gc"] as? [String: Any])
        #expect(((gcCell["runs"] as? [[String: Any]])?.first?["wall_seconds"] as? Double ?? 0) > 0)
        let csv = try String(contentsOfFile: s.path("r.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").filter { $0.hasPrefix("sweep,") }.count == 2)
        let html = try String(contentsOfFile: s.path("r.html"), encoding: .utf8)
        #expect(html.contains("Heap size vs time: gc / \(baseline) with oracle frees"))
        let parser = XMLParser(data: Data(html.utf8))
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        let bad = try CLIHarness.run(["bench", trace, "--heap-sweep", "0.5"], environment: Self.cleanEnvironment())
        #expect(bad.status == 64)
    }
}
