// End-to-end tests of `heaplab replay`, spawning the built binary: every allocator on a
// small trace (rivals skipped when their library is missing), with --verify; the --json
// keys; a multi-threaded trace; a broken trace exits 2 with FILE:LINE; an inherited
// LD_PRELOAD does not leak into a glibc measurement.
import Foundation
import Testing

/// A directory of small traces for the replay and bench CLI tests.
struct ReplayScratch {
    let url: URL
    init(_ tag: String) {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("heaplab-\(tag)-cli-\(getpid())-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let p = path(name)
        try! Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }
    func cleanup() { try? FileManager.default.removeItem(at: url) }

    /// A malloc-style trace: `records` allocations and frees (about half each), sizes up
    /// to 40000 bytes, some reallocs; deterministic. With `threads` > 1, `@` records
    /// spread it over threads, and objects are freed by whichever thread runs then.
    static func mallocTrace(records: Int, threads: Int = 1, seed: UInt64 = 1) -> String {
        var state = seed | 1
        func next() -> Int {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Int(state % 1_000_000_007)
        }
        var lines = ["heaplab-trace 1"]
        var live: [Int] = []
        var id = 1
        for _ in 0..<records {
            if threads > 1 && next() % 7 == 0 { lines.append("@ \(next() % threads)") }
            let r = next() % 10
            if live.isEmpty || r < 5 {
                let size = 1 + (next() % 10 == 0 ? next() % 40000 : next() % 300)
                lines.append("a \(id) \(size)")
                live.append(id)
                id += 1
            } else if r < 9 {
                let i = next() % live.count
                lines.append("f \(live[i])")
                live.remove(at: i)
            } else {
                lines.append("r \(live[next() % live.count]) \(1 + next() % 2000)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension CLIHarness {
    /// Runs `heaplab ARGUMENTS` with its standard input a pipe fed from `file` (through
    /// `/bin/sh -c 'cat FILE | heaplab ...'`).
    static func run(_ arguments: [String], stdin: String?, directory: String?, environment: [String: String]?,
                    viaPipeFrom file: String) throws -> CLIResult {
        func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = "cat \(quote(file)) | \(([binaryPath] + arguments).map(quote).joined(separator: " "))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Where a rival's Debian library lives on this machine, if it is installed.
func rivalLibraryInstalled(_ name: String) -> Bool {
    let files = ["jemalloc": "libjemalloc.so.2", "mimalloc": "libmimalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4"]
    guard let file = files[name] else { return true }
    for dir in ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"] {
        if FileManager.default.fileExists(atPath: "\(dir)/\(file)") { return true }
    }
    return false
}

@Suite(.serialized) struct ReplayCLITests {
    static let allocators = ["heaplab", "glibc", "null", "jemalloc", "mimalloc", "tcmalloc"]

    @Test(arguments: allocators)
    func replaysOnEachAllocatorVerified(_ allocator: String) throws {
        guard rivalLibraryInstalled(allocator) else { return }   // skipped: library not installed
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", ReplayScratch.mallocTrace(records: 3000))
        let r = try CLIHarness.run(["replay", trace, "--allocator", allocator, "--verify"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("on \(allocator), 1 thread, verified"))
        #expect(r.stdout.contains("fragmentation #4"))
    }

    @Test(arguments: allocators)
    func sizedFreesWhereTheAllocatorHasThem(_ allocator: String) throws {
        guard rivalLibraryInstalled(allocator) else { return }
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", ReplayScratch.mallocTrace(records: 3000, seed: 4))
        let r = try CLIHarness.run(["replay", trace, "--allocator", allocator, "--sized-free", "--verify", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        // glibc 2.36 has no sized free; the null allocator frees nothing.
        #expect(json["sized_free"] as? Bool == !["glibc", "null"].contains(allocator))
        #expect(json["verified"] as? Bool == true)
    }

    @Test func jsonHasEveryKey() throws {
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", ReplayScratch.mallocTrace(records: 2000))
        let r = try CLIHarness.run(["replay", trace, "--allocator", "glibc", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["allocator", "trace", "records", "threads", "wall_seconds", "cpu_seconds", "load_seconds",
                    "ns_per_record", "peak_rss_bytes", "baseline_rss_bytes", "peak_heap_rss_bytes",
                    "rss_at_peak_live_bytes", "peak_live_bytes", "fragmentation_3", "fragmentation_4",
                    "allocator_stats", "allocations", "frees", "reallocs", "ops"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect(json["allocator"] as? String == "glibc")
        #expect(json["records"] as? Int == 2001)
        #expect((json["peak_rss_bytes"] as? Int ?? 0) >= (json["baseline_rss_bytes"] as? Int ?? 1))
        let stats = try #require(json["allocator_stats"] as? [String: Any])
        #expect(stats["in_use_bytes"] != nil)   // glibc's malloc_info figures
    }

    @Test func jemallocReportsItsStatistics() throws {
        guard rivalLibraryInstalled("jemalloc") else { return }
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", ReplayScratch.mallocTrace(records: 2000))
        let r = try CLIHarness.run(["replay", trace, "--allocator", "jemalloc", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let stats = try #require(json["allocator_stats"] as? [String: Any])
        for key in ["allocated", "active", "resident"] { #expect((stats[key] as? Int ?? 0) > 0, "\(key)") }
    }

    @Test func inheritedPreloadDoesNotLeakIntoGlibc() throws {
        guard rivalLibraryInstalled("jemalloc") else { return }
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", ReplayScratch.mallocTrace(records: 500))
        var environment = ProcessInfo.processInfo.environment
        environment["LD_PRELOAD"] = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
        let r = try CLIHarness.run(["replay", trace, "--allocator", "glibc", "--json"], environment: environment)
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let stats = try #require(json["allocator_stats"] as? [String: Any])
        #expect(stats["in_use_bytes"] != nil)
        #expect(stats["allocated"] == nil)   // would be jemalloc's
    }

    @Test func multiThreadedTrace() throws {
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("mt.htrace", ReplayScratch.mallocTrace(records: 5000, threads: 3))
        let r = try CLIHarness.run(["replay", trace, "--allocator", "heaplab", "--json", "--verify"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["threads"] as? Int == 3)
        #expect((json["waits"] as? Int ?? 0) > 0)
        let one = try CLIHarness.run(["replay", trace, "--allocator", "glibc", "--threads", "1", "--json"])
        let j1 = try #require(try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as? [String: Any])
        #expect(j1["threads"] as? Int == 1)
        #expect(j1["waits"] as? Int == 0)
    }

    @Test func brokenTraceExitsTwoWithTheLine() throws {
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("bad.htrace", "heaplab-trace 1\na 1 16\nf 1\nf 1\n")
        let r = try CLIHarness.run(["replay", trace, "--allocator", "null"])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("\(trace):4: "))
        #expect(r.stdout.isEmpty)
        let missing = try CLIHarness.run(["replay", s.path("nope.htrace"), "--allocator", "glibc"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("nope.htrace"))
    }

    @Test func traceFromAPipe() throws {
        // The trace is read twice (scan, then lowering); a pipe is spooled first.
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", ReplayScratch.mallocTrace(records: 1000))
        let bad = s.write("bad.htrace", "heaplab-trace 1\nf 3\n")
        func throughPipe(_ file: String, _ allocator: String) throws -> CLIResult {
            // sh: `cat FILE | heaplab replay /dev/stdin ...`, so stdin really is a pipe.
            try CLIHarness.run(["replay", "/dev/stdin", "--allocator", allocator, "--json"], stdin: nil,
                               directory: nil, environment: nil, viaPipeFrom: file)
        }
        let r = try throughPipe(trace, "glibc")
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["records"] as? Int == 1001)
        let b = try throughPipe(bad, "null")
        #expect(b.status == 2)
        #expect(b.stderr.hasPrefix("/dev/stdin:2: "))
    }

    @Test func unknownAllocatorIsAUsageError() throws {
        let r = try CLIHarness.run(["replay", "/dev/null", "--allocator", "hoard"])
        #expect(r.status != 0 && r.status != 2)
        #expect(r.stderr.contains("unknown allocator 'hoard'"))
    }

    @Test func missingLibraryIsExplained() throws {
        let s = ReplayScratch("replay")
        defer { s.cleanup() }
        let trace = s.write("t.htrace", ReplayScratch.mallocTrace(records: 100))
        var environment = ProcessInfo.processInfo.environment
        environment["HEAPLAB_TCMALLOC_LIBRARY"] = s.path("no-such-libtcmalloc.so")
        let r = try CLIHarness.run(["replay", trace, "--allocator", "tcmalloc"], environment: environment)
        #expect(r.status == 1)
        #expect(r.stderr.contains("HEAPLAB_TCMALLOC_LIBRARY"))
    }
}
