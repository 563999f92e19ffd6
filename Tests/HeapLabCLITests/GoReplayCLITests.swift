// `heaplab replay --allocator go` (Go's own runtime, tools/goreplay) end to end, through the
// built binary: a small generated trace replays with the trace's counts, collects at a small
// GOGC and reports pauses; a trace whose objects die is collected (Go's heap stays far below
// what the trace allocates, and reaches it with GOGC=off); --verify (goreplay -check) passes;
// --gctrace passes Go's own lines through; options Go has no knob for exit 64; a corrupt
// program header is a clear error from goreplay; HEAPLAB_GOREPLAY names the binary; `bench`
// runs go beside gc, heap sweep and HTML included; and the Go side's own `go vet` and `go test`.
//
// These tests need Go (Debian's golang-go, installed by scripts/setup.sh): they fail, not
// skip, without it.
import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite(.serialized) struct GoReplayCLITests {
    static let packageRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()

    static var goSource: String { packageRoot.appendingPathComponent("tools/goreplay").path }

    /// Runs a shell command (for the go tool and goreplay itself), output in the result.
    static func shell(_ script: String, _ arguments: [String] = []) throws -> CLIResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, "sh"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIResult(status: process.terminationStatus, stdout: String(decoding: data, as: UTF8.self), stderr: "")
    }

    @Test func goIsInstalled() throws {
        let r = try Self.shell("command -v go && go version")
        #expect(r.status == 0, "Go is required for --allocator go: run scripts/setup.sh (apt-get install golang-go)")
        #expect(r.stdout.contains("go1."))
    }

    @Test func goSideVetAndTests() throws {
        let r = try Self.shell("cd \"$1\" && go vet . && go test -count=1 .", [Self.goSource])
        #expect(r.status == 0, "\(r.stdout)")
    }

    @Test func replayMatchesTheTraceCollectsAndReportsPauses() throws {
        let s = ReplayScratch("goreplay")
        defer { s.cleanup() }
        let trace = try GCReplayCLITests.generate(s, "lru", threads: 2, seed: 2)
        let r = try CLIHarness.run(["replay", trace, "--allocator", "go", "--gogc", "10", "--json"],
                                   environment: GCReplayCLITests.cleanEnvironment())
        #expect(r.status == 0, "\(r.stderr)")
        let j = try GCReplayCLITests.json(r)
        #expect(j["allocator"] as? String == "go")
        #expect(j["threads"] as? Int == 2)
        #expect(j["frees"] as? Int == 0)
        // The replay ran the trace's allocations: Go counted at least that many (and only a
        // few more: the harness's own, while the replay ran).
        let check = try CLIHarness.run(["check", trace, "--json"])
        #expect(check.status == 0, "\(check.stderr)")
        let checked = try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any])
        let allocations = try #require(j["allocations"] as? Int)
        #expect(checked["allocations"] as? Int == allocations)
        #expect(checked["pointer_stores"] as? Int == j["stores"] as? Int)
        let stats = try #require(j["allocator_stats"] as? [String: Any])
        let mallocs = try #require(stats["mallocs"] as? Int)
        #expect(mallocs >= allocations && mallocs <= allocations + 2000, "Go counted \(mallocs) mallocs for \(allocations) allocations")
        let gc = try #require(j["gc"] as? [String: Any])
        #expect(gc["runtime"] as? String == "go")
        #expect(gc["gogc"] as? Int == 10)
        let cycles = try #require(gc["cycles"] as? Int)
        #expect(cycles >= 1)
        #expect(gc["assists"] is NSNull, "Go does not count assists: null, not invented")
        let pauses = try #require(gc["pauses"] as? [String: Any])
        #expect((pauses["count"] as? Int ?? 0) >= 1)
        #expect((pauses["max_seconds"] as? Double ?? 0) > 0)
        let perCycle = try #require(gc["per_cycle"] as? [[String: Any]])
        #expect(perCycle.count == cycles)
        #expect(perCycle.allSatisfy { ($0["gctrace"] as? String ?? "").hasPrefix("gc ") && $0["mark_setup_stopping_seconds"] is NSNull })
        let figures = try #require(gc["runtime_figures"] as? [String: Any])
        #expect((figures["go_version"] as? String ?? "").hasPrefix("go1."))
        #expect(figures["gc_cpu_fraction"] is Double || figures["gc_cpu_fraction"] is Int)
        #expect((figures["pause_ns_total_memstats"] as? Int ?? 0) > 0)

        let text = try CLIHarness.run(["replay", trace, "--allocator", "go", "--gogc", "10"], environment: GCReplayCLITests.cleanEnvironment())
        #expect(text.status == 0, "\(text.stderr)")
        for word in ["on go, 2 threads", "Go's runtime (go1.", "GOGC=10", "max pause", "MMU at 10 ms", "GC CPU", "peak heap", "GCCPUFraction"] {
            #expect(text.stdout.contains(word), "no '\(word)' in\n\(text.stdout)")
        }
    }

    /// Objects the trace stops holding are collected: with a small GOGC the heap stays far
    /// below what the trace allocates; with GOGC=off (no collection) it reaches it.
    @Test func deadObjectsAreCollected() throws {
        let s = ReplayScratch("goreplay")
        defer { s.cleanup() }
        let trace = try GCReplayCLITests.generate(s, "binary-trees", threads: 2, seed: 2)
        func run(_ gogc: String) throws -> (peak: Int, total: Int, cycles: Int) {
            let r = try CLIHarness.run(["replay", trace, "--allocator", "go", "--gogc", gogc, "--json"],
                                       environment: GCReplayCLITests.cleanEnvironment())
            #expect(r.status == 0, "\(r.stderr)")
            let j = try GCReplayCLITests.json(r)
            let gc = try #require(j["gc"] as? [String: Any])
            return (try #require(gc["peak_heap_bytes"] as? Int), try #require(j["total_allocated_bytes"] as? Int),
                    try #require(gc["cycles"] as? Int))
        }
        let collected = try run("10")
        #expect(collected.cycles >= 2)
        #expect(collected.peak < collected.total / 2, "peak heap \(collected.peak) of \(collected.total) allocated")
        let uncollected = try run("off")
        #expect(uncollected.cycles == 0)
        #expect(Double(uncollected.peak) >= 0.9 * Double(uncollected.total), "GOGC=off: peak heap \(uncollected.peak) of \(uncollected.total)")
    }

    @Test func verifyAndGctrace() throws {
        let s = ReplayScratch("goreplay")
        defer { s.cleanup() }
        let trace = try GCReplayCLITests.generate(s, "random-graph", threads: 2, seed: 4)
        let r = try CLIHarness.run(["replay", trace, "--allocator", "go", "--gogc", "1", "--verify", "--gctrace", "--json"],
                                   environment: GCReplayCLITests.cleanEnvironment())
        #expect(r.status == 0, "\(r.stderr)")
        let j = try GCReplayCLITests.json(r)
        #expect(j["verified"] as? Bool == true)
        let cycles = try #require((j["gc"] as? [String: Any])?["cycles"] as? Int)
        #expect(cycles >= 1)
        let lines = r.stderr.split(separator: "\n")
        // Go's own line, one per cycle of the replay (Go 1.19 adds stacks and globals).
        let shape = try Regex(#"gc \d+ @\d+\.\d{3}s \d+%: [0-9.]+\+[0-9.]+\+[0-9.]+ ms clock, .* MB goal, .* \d+ P.*"#)
        #expect(lines.count == cycles)
        for line in lines { #expect(String(line).wholeMatch(of: shape) != nil, "not a gctrace line: \(line)") }
    }

    @Test func optionsGoHasNoKnobForAreRefused() throws {
        let s = ReplayScratch("goreplay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", "heaplab-trace 1\na 1 64\nf 1\n")
        for option in [["--heap-minimum", "1MiB"], ["--stw"], ["--zero-data"], ["--no-idle-marking"], ["--timeline", s.path("x.json")], ["--sized-free"]] {
            let r = try CLIHarness.run(["replay", trace, "--allocator", "go"] + option, environment: GCReplayCLITests.cleanEnvironment())
            #expect(r.status == 64, "\(option): \(r.stderr)")
        }
        let minimum = try CLIHarness.run(["replay", trace, "--allocator", "go", "--heap-minimum", "1MiB"], environment: GCReplayCLITests.cleanEnvironment())
        #expect(minimum.stderr.contains("no heap-minimum knob"))
        let ok = try CLIHarness.run(["replay", trace, "--allocator", "go", "--gogc", "50", "--memlimit", "1GiB", "--json"],
                                    environment: GCReplayCLITests.cleanEnvironment())
        #expect(ok.status == 0, "\(ok.stderr)")
        let gc = try #require(try GCReplayCLITests.json(ok)["gc"] as? [String: Any])
        #expect(gc["gogc"] as? Int == 50)
        #expect(gc["memory_limit_bytes"] as? Int == 1 << 30)
    }

    /// goreplay answers a corrupt program with {"error": ...} on the result fd and exit 1.
    @Test func corruptProgramHeaderIsAClearError() throws {
        let s = ReplayScratch("goreplay")
        defer { s.cleanup() }
        let binary = s.path("goreplay")
        let build = try Self.shell("cd \"$1\" && CGO_ENABLED=0 go build -o \"$2\" .", [Self.goSource, binary])
        #expect(build.status == 0, "\(build.stdout)")
        let page = [UInt8](repeating: 0, count: 4096)
        let cases: [(String, (inout [UInt8]) -> Void, String)] = [
            ("magic", { $0[0] = 1 }, "replay program: bad magic number"),
            ("short", { $0 = Array($0.prefix(100)) }, "replay program: file of 100 bytes is too short"),
            ("workers", { b in
                withUnsafeBytes(of: UInt64(0x5941_4c50_4552_4c48).littleEndian) { b.replaceSubrange(0..<8, with: $0) }
                withUnsafeBytes(of: UInt64(1).littleEndian) { b.replaceSubrange(8..<16, with: $0) }
            }, "replay program: bad worker or profile count"),
        ]
        // HEAPLAB_GOREPLAY names the binary heaplab starts (nothing is built); a bad one is an error.
        let trace = s.write("t.htrace", "heaplab-trace 1\na 1 64\nf 1\n")
        let viaOverride = try CLIHarness.run(["replay", trace, "--allocator", "go", "--json"],
                                             environment: GCReplayCLITests.cleanEnvironment(["HEAPLAB_GOREPLAY": binary]))
        #expect(viaOverride.status == 0, "\(viaOverride.stderr)")
        let missing = try CLIHarness.run(["replay", trace, "--allocator", "go"],
                                         environment: GCReplayCLITests.cleanEnvironment(["HEAPLAB_GOREPLAY": s.path("nothing")]))
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("HEAPLAB_GOREPLAY"))
        for (name, mutate, message) in cases {
            var bytes = page
            mutate(&bytes)
            let program = s.path("\(name).program")
            try Data(bytes).write(to: URL(fileURLWithPath: program))
            let result = s.path("\(name).json")
            let r = try Self.shell("exec \"$1\" -program-fd 3 -result-fd 4 3<\"$2\" 4>\"$3\"", [binary, program, result])
            #expect(r.status == 1, "\(name): \(r.stdout)")
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: result))) as? [String: Any]
            #expect(json?["error"] as? String == message, "\(name)")
        }
    }

    /// `heaplab bench` with go beside gc: the go row, its runs and ratios, and a heap sweep
    /// of both collectors.
    @Test func benchRunsGoBesideGc() throws {
        let s = ReplayScratch("gobench")
        defer { s.cleanup() }
        let trace = try GCReplayCLITests.generate(s, "gcbench", threads: 1, seed: 1)
        let baseline = rivalLibraryInstalled("jemalloc") ? "jemalloc" : "glibc"
        let r = try CLIHarness.run(["bench", trace, "--runs", "1", "--allocators", "\(baseline),gc,go", "--baseline", baseline,
                                    "--heap-sweep", "2", "--json", s.path("r.json"), "--html", s.path("r.html")],
                                   environment: GCReplayCLITests.cleanEnvironment())
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("  go "), "\(r.stdout)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path("r.json")))) as? [String: Any])
        let traces = try #require(json["traces"] as? [[String: Any]])
        let goCell = try #require((traces[0]["allocators"] as? [String: Any])?["go"] as? [String: Any])
        let run = try #require((goCell["runs"] as? [[String: Any]])?.first)
        #expect((run["wall_seconds"] as? Double ?? 0) > 0)
        #expect(goCell["error"] == nil || goCell["error"] is NSNull)
        #expect(r.stdout.contains("heap sweep: go with a fixed heap"))
        let points = try #require((traces[0]["heap_sweep"] as? [String: Any])?["points"] as? [[String: Any]])
        #expect(Set(points.compactMap { $0["allocator"] as? String }) == ["gc", "go"])
        let goPoint = try #require(points.first { $0["allocator"] as? String == "go" })
        #expect(goPoint["gogc"] as? String == "off")
        #expect((goPoint["time_ratio"] as? Double ?? 0) > 0 && (goPoint["heap_ratio"] as? Double ?? 0) > 0)
        let html = try String(contentsOfFile: s.path("r.html"), encoding: .utf8)
        #expect(html.contains("Heap size vs time: gc, go / \(baseline) with oracle frees"))
        let parser = XMLParser(data: Data(html.utf8))
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
    }
}
