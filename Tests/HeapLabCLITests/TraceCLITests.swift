// End-to-end tests of `heaplab check` and `heaplab convert`, spawning the built binary:
// exit status 2 and `FILE:LINE: message` on bad traces, no partial output from convert,
// check's JSON keys and values, text <-> binary conversion by content.
import Foundation
import Testing

private struct Scratch {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("heaplab-trace-cli-\(getpid())-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let p = path(name)
        try! Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }
    func bytes(_ name: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path(name)) ?? Data()) }
    func listing() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted() }
    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

private let example = """
    heaplab-trace 1
    s 1 Node
    s 2 []byte
    a 1 32 2 1      # root node with two pointer slots
    a 2 32 2 1
    w 1 0 2         # 1.left = 2
    f 2             # 2 stays reachable through 1
    a 3 100 0 2     # a noscan buffer
    r 3 400
    f 3             # 3 dies here
    w 1 0 -         # 1.left = nil: 2 dies here
    f 1             # 1 dies here

    """

@Suite struct TraceCLITests {
    @Test func checkPrintsStatistics() throws {
        let dir = Scratch()
        defer { dir.cleanup() }
        let trace = dir.write("ex.htrace", example)
        let r = try CLIHarness.run(["check", trace])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr == "")
        #expect(r.stdout.hasPrefix("\(trace): valid trace\n"))
        #expect(r.stdout.contains("peak live bytes         464\n"))
    }

    @Test func checkJSONKeysAndValues() throws {
        let dir = Scratch()
        defer { dir.cleanup() }
        let trace = dir.write("ex.htrace", example)
        let r = try CLIHarness.run(["check", "--json", trace])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(Set(object.keys) == [
            "records", "allocations", "frees", "reallocs", "pointer_stores", "holds", "threads", "sites",
            "total_bytes_allocated", "peak_live_bytes", "peak_live_objects", "objects_live_at_end",
            "size_histogram", "lifetime_histogram",
        ])
        #expect(object["records"] as? Int == 12)
        #expect(object["allocations"] as? Int == 3)
        #expect(object["frees"] as? Int == 3)
        #expect(object["reallocs"] as? Int == 1)
        #expect(object["pointer_stores"] as? Int == 2)
        #expect(object["holds"] as? Int == 0)
        #expect(object["threads"] as? Int == 1)
        #expect(object["sites"] as? Int == 2)
        #expect(object["total_bytes_allocated"] as? Int == 564)
        #expect(object["peak_live_bytes"] as? Int == 464)
        #expect(object["peak_live_objects"] as? Int == 3)
        #expect(object["objects_live_at_end"] as? Int == 0)
        let sizes = try #require(object["size_histogram"] as? [[String: Any]])
        #expect(sizes.count == 3)
        for bucket in sizes { #expect(Set(bucket.keys) == ["class", "bytes_per_obj", "count", "bytes"]) }
        #expect(sizes.map { $0["count"] as? Int } == [2, 1, 1])
        let lifetimes = try #require(object["lifetime_histogram"] as? [[String: Any]])
        for bucket in lifetimes { #expect(Set(bucket.keys) == ["min_records", "max_records", "count"]) }
        #expect(lifetimes.map { $0["min_records"] as? Int } == [2, 4, 8])
    }

    @Test func checkJSONMarksLargeObjectsWithNull() throws {
        let dir = Scratch()
        defer { dir.cleanup() }
        let trace = dir.write("big.htrace", "heaplab-trace 1\na 1 1000000\n")
        let r = try CLIHarness.run(["check", "--json", trace])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"size_histogram\":[{\"class\":0,\"bytes_per_obj\":null,\"count\":1,\"bytes\":1000000}]"))
        #expect(r.stdout.contains("\"objects_live_at_end\":1"))
    }

    @Test(arguments: [
        ("heaplab-trace 1\na 1 8\nf 1\nf 1\n", ":4: object 1 is not live\n"),
        ("heaplab-trace 1\na 1 8 2\n", ":2: 2 pointer slots do not fit in 8 bytes (PTRS * 8 must be <= SIZE)\n"),
        ("a 1 8\n", ":1: missing header: a trace starts with 'heaplab-trace 1'\n"),
        ("heaplab-trace 1\nq 1\n", ":2: unknown record 'q'\n"),
    ])
    func checkRejectsBadTraces(text: String, suffix: String) throws {
        let dir = Scratch()
        defer { dir.cleanup() }
        let trace = dir.write("bad.htrace", text)
        let r = try CLIHarness.run(["check", trace])
        #expect(r.status == 2)
        #expect(r.stdout == "")
        #expect(r.stderr == trace + suffix)
    }

    @Test func checkMissingFile() throws {
        let r = try CLIHarness.run(["check", "/nonexistent/t.htrace"])
        #expect(r.status == 2)
        #expect(r.stderr == "/nonexistent/t.htrace: cannot open trace: No such file or directory\n")
    }

    @Test func convertRoundTripsAndDetectsEncodingByContent() throws {
        let dir = Scratch()
        defer { dir.cleanup() }
        let trace = dir.write("ex.htrace", example)
        // Deliberately misleading names: encodings are recognised by content.
        var r = try CLIHarness.run(["convert", trace, "-o", dir.path("bin.htrace"), "--binary"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(dir.bytes("bin.htrace").first == 0x89)
        r = try CLIHarness.run(["convert", dir.path("bin.htrace"), "-o", dir.path("back.hbtrace"), "--text"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(String(decoding: dir.bytes("back.hbtrace"), as: UTF8.self) == """
            heaplab-trace 1
            s 1 Node
            s 2 []byte
            a 1 32 2 1
            a 2 32 2 1
            w 1 0 2
            f 2
            a 3 100 0 2
            r 3 400
            f 3
            w 1 0 -
            f 1

            """)
        r = try CLIHarness.run(["convert", dir.path("back.hbtrace"), "-o", dir.path("bin2"), "--binary"])
        #expect(r.status == 0)
        #expect(dir.bytes("bin2") == dir.bytes("bin.htrace"))
        r = try CLIHarness.run(["check", "--json", dir.path("bin2")])
        #expect(r.status == 0)
        #expect(r.stdout.contains("\"peak_live_bytes\":464"))
    }

    @Test func convertLeavesNothingBehindOnError() throws {
        let dir = Scratch()
        defer { dir.cleanup() }
        // Valid for many records, then a semantic error: the writer has already written
        // (and flushed) output by then.
        var text = "heaplab-trace 1\n"
        for i in 0..<100_000 { text += "a \(i) 64\n" }
        text += "f 5\nh 5\n"
        let bad = dir.write("bad.htrace", text)
        let r = try CLIHarness.run(["convert", bad, "-o", dir.path("out.hbtrace"), "--binary"])
        #expect(r.status == 2)
        #expect(r.stderr == "\(bad):100003: object 5 is not live\n")
        #expect(dir.listing() == ["bad.htrace"])

        // An existing output file is left untouched.
        dir.write("keep.htrace", "precious\n")
        let r2 = try CLIHarness.run(["convert", bad, "-o", dir.path("keep.htrace")])
        #expect(r2.status == 2)
        #expect(String(decoding: dir.bytes("keep.htrace"), as: UTF8.self) == "precious\n")
        #expect(dir.listing() == ["bad.htrace", "keep.htrace"])
    }

    @Test func convertRejectsTruncatedBinary() throws {
        let dir = Scratch()
        defer { dir.cleanup() }
        let trace = dir.write("ex.htrace", example)
        _ = try CLIHarness.run(["convert", trace, "-o", dir.path("b"), "--binary"])
        var bytes = dir.bytes("b")
        bytes.removeLast(3)
        try Data(bytes).write(to: URL(fileURLWithPath: dir.path("cut")))
        let r = try CLIHarness.run(["convert", dir.path("cut"), "-o", dir.path("out")])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix(dir.path("cut") + ": byte "))
        #expect(!FileManager.default.fileExists(atPath: dir.path("out")))
    }
}
