// End-to-end tests of `heaplab bench`: one run on two tiny traces prints the table and the
// summary and writes HTML, JSON and CSV; --traces-dir finds the bundled set by content.
import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite(.serialized) struct BenchCLITests {
    func allocatorList() -> String {
        (["glibc", "null", "heaplab"] + ["jemalloc"].filter(rivalLibraryInstalled)).joined(separator: ",")
    }

    @Test func twoTracesOneRunWithReports() throws {
        let s = ReplayScratch("bench")
        defer { s.cleanup() }
        let a = s.write("a.htrace", ReplayScratch.mallocTrace(records: 3000, seed: 1))
        let b = s.write("b.htrace", ReplayScratch.mallocTrace(records: 2000, seed: 2))
        let r = try CLIHarness.run(["bench", a, b, "--runs", "1", "--allocators", allocatorList(), "--baseline", "glibc",
                                    "--html", s.path("r.html"), "--json", s.path("r.json"), "--csv", s.path("r.csv")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\(a): 3,001 records"))
        #expect(r.stdout.contains("\(b): 2,001 records"))
        #expect(r.stdout.contains("Summary: geometric mean over 2 traces"))
        for allocator in allocatorList().split(separator: ",") { #expect(r.stdout.contains(" \(allocator) ")) }

        let html = try String(contentsOfFile: s.path("r.html"), encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<section class=\"card trace\">").count == 3)
        // Four charts per trace; the cost chart gives way to a note when, on such tiny traces,
        // noise leaves no positive allocator cost in the one round.
        let charts = html.components(separatedBy: "<svg class=\"chart\"").count - 1
        let costNotes = html.components(separatedBy: "No allocator-cost ratios").count - 1
        #expect(charts + costNotes == 2 * 4)
        #expect(charts >= 2 * 3)
        #expect(!html.contains("<script"))
        // Well-formed as XML.
        let parser = XMLParser(data: Data(html.utf8))
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")

        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path("r.json")))) as? [String: Any])
        #expect((json["traces"] as? [Any])?.count == 2)
        #expect(json["baseline"] as? String == "glibc")
        let csv = try String(contentsOfFile: s.path("r.csv"), encoding: .utf8)
        #expect(csv.hasPrefix("kind,trace,allocator,round,"))
        // No temporary files left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: s.url.path).filter { $0.contains(".tmp.") }
        #expect(left.isEmpty)
    }

    @Test func bundledSetFromTracesDir() throws {
        let s = ReplayScratch("bench")
        defer { s.cleanup() }
        s.write("one.htrace", ReplayScratch.mallocTrace(records: 500, seed: 3))
        s.write("README.md", "not a trace\n")
        let r = try CLIHarness.run(["bench", "--traces-dir", s.url.path, "--runs", "1", "--allocators", "glibc,null",
                                    "--baseline", "glibc"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("one.htrace"))
        #expect(!r.stdout.contains("README"))
    }

    @Test func badTraceStopsTheBenchWithExitTwo() throws {
        let s = ReplayScratch("bench")
        defer { s.cleanup() }
        let bad = s.write("bad.htrace", "heaplab-trace 1\nf 9\n")
        let r = try CLIHarness.run(["bench", bad, "--runs", "1", "--allocators", "null", "--baseline", "null",
                                    "--html", s.path("r.html")])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("\(bad):2: "))
        #expect(!FileManager.default.fileExists(atPath: s.path("r.html")))
    }
}
