// Compressed traces through the built `heaplab`: check, convert, replay (also with the
// collector) and bench take a zstd- or gzip-compressed trace exactly as they take the plain
// one (recognised by content, whatever the name); a truncated compressed trace exits 2 with
// `FILE: byte N (compressed): ...` at several cut points and leaves no output behind; `--zstd`
// writes compressed traces.
import Foundation
import Testing

@Suite(.serialized) struct CompressedTraceCLITests {
    /// `tool ARGUMENTS < input > output`.
    static func compress(_ tool: String, _ arguments: [String], _ input: String, _ output: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: input))
        FileManager.default.createFile(atPath: output, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        try out.close()
        #expect(process.terminationStatus == 0)
    }

    static let compressors: [(name: String, tool: String, arguments: [String])] = [
        ("zstd", "/usr/bin/zstd", ["-q", "-c", "-19"]),
        ("gzip", "/bin/gzip", ["-c", "-9"]),
    ]

    static func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

    @Test(arguments: ["--text", "--binary"])
    func everyCommandReadsCompressedTraces(encoding: String) throws {
        let s = ReplayScratch("compressed")
        defer { s.cleanup() }
        let plain = s.path("plain")
        var r = try CLIHarness.run(["gen", "lru", "--seed", "3", "--ops", "3000", "--capacity", "300", "--keys", "1000",
                                    "-o", plain, encoding])
        #expect(r.status == 0, "\(r.stderr)")
        let plainCheck = try CLIHarness.run(["check", "--json", plain])
        #expect(plainCheck.status == 0)
        let plainReplay = try CLIHarness.run(["replay", plain, "--allocator", "null", "--json"])
        #expect(plainReplay.status == 0)
        for c in Self.compressors {
            // A misleading name: compression is recognised by content.
            let packed = s.path("\(c.name).htrace")
            try Self.compress(c.tool, c.arguments, plain, packed)
            #expect(Self.bytes(packed).count < Self.bytes(plain).count)

            r = try CLIHarness.run(["check", "--json", packed])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.replacingOccurrences(of: packed, with: plain) == plainCheck.stdout)

            r = try CLIHarness.run(["convert", packed, "-o", s.path("back"), encoding])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(Self.bytes(s.path("back")) == Self.bytes(plain))

            r = try CLIHarness.run(["replay", packed, "--allocator", "null", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let a = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let b = try #require(try JSONSerialization.jsonObject(with: Data(plainReplay.stdout.utf8)) as? [String: Any])
            #expect(a["records"] as? Int == b["records"] as? Int)
            #expect(a["ops"] as? Int == b["ops"] as? Int)

            r = try CLIHarness.run(["replay", packed, "--allocator", "gc", "--verify"],
                                   environment: GCReplayCLITests.cleanEnvironment(["GOGC": "10"]))
            #expect(r.status == 0, "\(r.stderr)")
        }
    }

    @Test(arguments: compressors.map(\.name))
    func truncatedCompressedTraceExitsTwoWithItsOffset(codec: String) throws {
        let s = ReplayScratch("compressed")
        defer { s.cleanup() }
        let plain = s.path("plain")
        var r = try CLIHarness.run(["gen", "random-graph", "--seed", "2", "--ops", "20000", "-o", plain, "--binary"])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try #require(Self.compressors.first { $0.name == codec })
        let whole = s.path("whole")
        try Self.compress(c.tool, c.arguments, plain, whole)
        let packed = Self.bytes(whole)
        for cut in [6, packed.count / 4, packed.count / 2, packed.count - 2] {
            let path = s.path("cut-\(cut)")
            try Data(packed.prefix(cut)).write(to: URL(fileURLWithPath: path))
            for command in [["check", path], ["replay", path, "--allocator", "null"],
                            ["convert", path, "-o", s.path("out"), "--text"]] {
                r = try CLIHarness.run(command)
                #expect(r.status == 2, "\(command): \(r.stderr)")
                #expect(r.stderr.hasPrefix("\(path): byte "), "\(command): \(r.stderr)")
                #expect(r.stderr.contains(" (compressed): truncated \(codec) data"), "\(command): \(r.stderr)")
                #expect(!FileManager.default.fileExists(atPath: s.path("out")))
            }
        }
    }

    /// `--zstd` (every trace-writing command): gen writes the compressed trace directly, the
    /// same records as without it; convert with an error leaves nothing behind.
    @Test func zstdOutputFromGenAndConvert() throws {
        let s = ReplayScratch("compressed")
        defer { s.cleanup() }
        let gen = ["gen", "binary-trees", "--seed", "5", "--depth", "10", "--threads", "2", "--binary"]
        var r = try CLIHarness.run(gen + ["-o", s.path("plain")])
        #expect(r.status == 0, "\(r.stderr)")
        r = try CLIHarness.run(gen + ["-o", s.path("packed"), "--zstd"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Array(Self.bytes(s.path("packed")).prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD])
        #expect(Self.bytes(s.path("packed")).count * 20 < Self.bytes(s.path("plain")).count)
        r = try CLIHarness.run(["convert", s.path("packed"), "-o", s.path("back"), "--binary"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.bytes(s.path("back")) == Self.bytes(s.path("plain")))

        let bad = s.write("bad.htrace", "heaplab-trace 1\na 1 16\nf 1\nf 1\n")
        r = try CLIHarness.run(["convert", bad, "-o", s.path("out.zst"), "--zstd"])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("\(bad):4: "))
        #expect(!FileManager.default.fileExists(atPath: s.path("out.zst")))
    }

    @Test func benchFindsCompressedTracesInTheTracesDirectory() throws {
        let s = ReplayScratch("compressed")
        defer { s.cleanup() }
        let plain = s.write("plain.htrace", ReplayScratch.mallocTrace(records: 500, seed: 3))
        try Self.compress("/usr/bin/zstd", ["-q", "-c"], plain, s.path("one.htrace.zst"))
        try Self.compress("/bin/gzip", ["-c"], plain, s.path("two.htrace.gz"))
        try FileManager.default.removeItem(atPath: plain)
        try Self.compress("/usr/bin/zstd", ["-q", "-c"], s.write("notes", "not a trace\n"), s.path("notes.zst"))
        let r = try CLIHarness.run(["bench", "--traces-dir", s.url.path, "--runs", "1", "--allocators", "glibc,null",
                                    "--baseline", "glibc"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("one.htrace.zst: 501 records"))
        #expect(r.stdout.contains("two.htrace.gz: 501 records"))
        #expect(!r.stdout.contains("notes"))
    }
}
