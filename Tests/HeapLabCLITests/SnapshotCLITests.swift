// End-to-end tests of heap snapshots: `heaplab replay --snapshot-at/--snapshot-at-peak` on a
// hand-written trace of known structure, then every `heaplab inspect` command and `export
// --chrome` checked against hand-computed answers; the same snapshot from a two-thread
// replay (barrier) equals the one-thread answer; every kind of bad snapshot exits 2 with
// FILE: byte OFFSET.
import Foundation
import Testing

/// Sites: 1 Node, 2 Leaf, 3 Buf, 4 Big. After record 28:
///   roots: #1 (thread 0, 1 hold), #7 (thread 1, 2 holds)
///   #1 Node 32 -> [0] #2, [1] #3      #2 Node 32 -> [0] #4, [1] #3
///   #3 Leaf 24 -> [0] #5              #4 Leaf 24 -> [0] #7
///   #5 Buf 100 (noscan)               #6 Buf 5 (tiny)      #7 Big 70000 -> [0] #6
/// Dominator tree: root -> {1, 7}; 1 -> {2, 3}; 2 -> {4}; 3 -> {5}; 7 -> {6}.
let knownTrace = """
    heaplab-trace 1
    s 1 Node
    s 2 Leaf
    s 3 Buf
    s 4 Big
    a 1 32 2 1
    a 2 32 2 1
    a 3 24 1 2
    a 4 24 1 2
    a 5 100 0 3
    a 6 5 0 3
    a 7 70000 1 4
    w 1 0 2
    w 1 1 3
    w 2 0 4
    w 2 1 3
    w 3 0 5
    w 4 0 7
    w 7 0 6
    f 2
    f 3
    f 4
    f 5
    f 6
    @ 1
    h 7
    h 7
    @ 0
    f 7

    """

@Suite(.serialized) struct SnapshotCLITests {
    func json(_ r: CLIResult) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    /// Replays the known trace with snapshots after records 8 and 28 (and the peak).
    func snapshots(_ s: ReplayScratch, threads: Int? = nil) throws -> (early: String, late: String, peak: String, stdout: String) {
        let trace = s.write("known.htrace", knownTrace)
        var args = ["replay", trace, "--allocator", "heaplab", "--snapshot-at", "8,28", "--snapshot-at-peak",
                    "--snapshot-dir", s.path("snaps")]
        if let threads { args += ["--threads", String(threads)] }
        let r = try CLIHarness.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        return (s.path("snaps/known.r8.hsnap"), s.path("snaps/known.r28.hsnap"), s.path("snaps/known.peak.r11.hsnap"), r.stdout)
    }

    @Test func replayWritesSnapshotsAndInspectAnswersExactly() throws {
        let s = ReplayScratch("snapshot")
        defer { s.cleanup() }
        let (early, late, peak, out) = try snapshots(s)
        #expect(out.contains("known.r8.hsnap: record 8 (record), 4 objects, 0 pointers"))
        #expect(out.contains("known.peak.r11.hsnap: record 11 (peak), 7 objects, 0 pointers"))
        #expect(out.contains("known.r28.hsnap: record 28 (record), 7 objects, 7 pointers"))
        for f in [early, late, peak] { #expect(FileManager.default.fileExists(atPath: f)) }

        // summary
        let sum = try #require(try json(try CLIHarness.run(["inspect", late, "summary", "--json"])) as? [String: Any])
        let live = sum["live"] as! [String: Int], tiny = sum["tiny"] as! [String: Int]
        let small = sum["small"] as! [String: Int], large = sum["large"] as! [String: Int]
        #expect(live["objects"] == 7 && live["bytes"] == 70217 && live["allocated_bytes"] == 16 + 224 + 73728)
        #expect(tiny["objects"] == 1 && tiny["bytes"] == 5 && tiny["blocks"] == 1 && tiny["allocated_bytes"] == 16)
        #expect(small["objects"] == 5 && small["bytes"] == 212 && small["allocated_bytes"] == 224)
        #expect(large["objects"] == 1 && large["bytes"] == 70000 && large["allocated_bytes"] == 73728)
        #expect(sum["spans"] as? Int == 5 && sum["span_bytes"] as? Int == 106496)
        #expect(sum["heap_in_use"] as? Int == 106496)
        #expect(sum["edges"] as? Int == 7 && sum["roots"] as? Int == 2 && sum["root_objects"] as? Int == 2)
        #expect(sum["record"] as? Int == 28 && sum["trigger"] as? String == "record" && sum["threads"] as? Int == 2)
        #expect(sum["unresolved_pointers"] as? Int == 0)
        #expect((sum["fragmentation"] as? Double).map { abs($0 - (1 - 70217.0 / 106496.0)) < 1e-12 } == true)

        // top by object and by site
        let top = try #require(try json(try CLIHarness.run(["inspect", late, "top", "--json", "-n", "10"])) as? [String: Any])
        let objects = top["objects"] as! [[String: Any]]
        #expect(objects.map { $0["id"] as! Int } == [7, 1, 3, 5, 2, 4, 6])
        #expect(objects.map { $0["retained"] as! Int } == [70005, 212, 124, 100, 56, 24, 5])
        #expect(objects.map { $0["dominator"] as? Int } == [nil, nil, 1, 3, 1, 2, 7])
        #expect(top["reachable_bytes"] as? Int == 70217)
        let sites = try #require(try json(try CLIHarness.run(["inspect", late, "top", "--by", "site", "--json"])) as? [String: Any])
        let siteRows = sites["sites"] as! [[String: Any]]
        #expect(siteRows.map { $0["site"] as! String } == ["Big", "Node", "Leaf", "Buf"])
        #expect(siteRows.map { $0["retained"] as! Int } == [70005, 212, 148, 105])
        let topText = try CLIHarness.run(["inspect", late, "top", "-n", "2"])
        #expect(topText.status == 0)
        #expect(topText.stdout.contains("reachable: 70217 B; unreachable: 0 objects, 0 B"))
        #expect(topText.stdout.split(separator: "\n").count == 4)

        // path
        let path = try CLIHarness.run(["inspect", late, "path", "5"])
        #expect(path.status == 0, "\(path.stderr)")
        let lines = path.stdout.split(separator: "\n").map(String.init)
        #expect(lines[0] == "root: held by thread 0 (1 hold)")
        #expect(lines[1].hasPrefix("  #1 Node (32 B) at 0x"))
        #expect(lines[2].hasPrefix("  .slot 1 -> #3 Leaf (24 B) at 0x"))
        #expect(lines[3].hasPrefix("  .slot 0 -> #5 Buf (100 B) at 0x"))
        #expect(lines[4] == "2 hop(s)")
        let path6 = try #require(try json(try CLIHarness.run(["inspect", late, "path", "6", "--json"])) as? [String: Any])
        #expect((path6["root"] as! [[String: Int]]) == [["thread": 1, "holds": 2]])
        #expect((path6["steps"] as! [[String: Any]]).map { $0["id"] as! Int } == [7, 6])
        #expect(path6["hops"] as? Int == 1)
        let missing = try CLIHarness.run(["inspect", late, "path", "99"])
        #expect(missing.status == 1 && missing.stderr.contains("no live object 99"))

        // sites histogram
        let hist = try #require(try json(try CLIHarness.run(["inspect", late, "sites", "--json"])) as? [[String: Any]])
        #expect(hist.map { $0["site"] as! String } == ["Big", "Buf", "Node", "Leaf"])
        #expect(hist.map { $0["bytes"] as! Int } == [70000, 105, 64, 48])
        #expect(hist.map { $0["objects"] as! Int } == [1, 2, 2, 2])

        // classes: tiny class 2, Leaf 3, Node 4, Buf 9, large
        let classes = try #require(try json(try CLIHarness.run(["inspect", late, "classes", "--json"])) as? [[String: Any]])
        #expect(classes.map { $0["class"] as! Int } == [2, 3, 4, 9, 0])
        #expect(classes.map { $0["live_objects"] as! Int } == [1, 2, 2, 1, 1])
        #expect(classes.map { $0["live_bytes"] as! Int } == [5, 48, 64, 100, 70000])
        #expect(classes.map { $0["live_slots"] as! Int } == [1, 2, 2, 1, 1])
        #expect(classes.map { $0["span_bytes"] as! Int } == [8192, 8192, 8192, 8192, 73728])

        // spans: map and SVG
        let svg = s.path("spans.svg")
        let spans = try CLIHarness.run(["inspect", late, "spans", "--svg", svg])
        #expect(spans.status == 0)
        #expect(spans.stdout.contains("wrote \(svg)"))
        let picture = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(picture.components(separatedBy: "<rect ").count - 1 >= 5)
        let spanRows = try #require(try json(try CLIHarness.run(["inspect", late, "spans", "--json"])) as? [[String: Any]])
        #expect(spanRows.count == 5)
        #expect(spanRows.map { $0["live_slots"] as! Int }.reduce(0, +) == 7)

        // diff: record 8 (the four Node/Leaf objects) to record 28
        let diff = try #require(try json(try CLIHarness.run(["inspect", early, "diff", late, "--json"])) as? [String: Any])
        let total = diff["total"] as! [String: Any]
        #expect(total["bytes_delta"] as? Int == 70105 && total["objects_delta"] as? Int == 3)
        let bySite = diff["sites"] as! [[String: Any]]
        #expect(bySite.map { $0["site"] as! String } == ["Big [site 4]", "Buf [site 3]", "Leaf [site 2]", "Node [site 1]"])
        #expect(bySite.map { $0["bytes_delta"] as! Int } == [70000, 105, 0, 0])
        let byClass = diff["classes"] as! [[String: Any]]
        #expect(byClass.map { $0["class"] as! String }.prefix(3) == ["large", "9 (112 B)", "2 (16 B)"])

        // export
        let chrome = s.path("known.heapsnapshot")
        let export = try CLIHarness.run(["export", late, "--chrome", chrome])
        #expect(export.status == 0 && export.stdout.contains("8 nodes, 9 edges"))
        let v8 = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: chrome))) as? [String: Any])
        let snap = v8["snapshot"] as! [String: Any]
        #expect(snap["node_count"] as? Int == 8 && snap["edge_count"] as? Int == 9)
        #expect((v8["nodes"] as! [Int]).count == 8 * 7 && (v8["edges"] as! [Int]).count == 9 * 3)
    }

    @Test func twoThreadReplayGivesTheSameSnapshotAsOne() throws {
        let s1 = ReplayScratch("snapshot"), s2 = ReplayScratch("snapshot")
        defer { s1.cleanup(); s2.cleanup() }
        let one = try snapshots(s1, threads: 1).late
        let two = try snapshots(s2).late
        for command in [["top", "--json"], ["sites", "--json"], ["classes", "--json"]] {
            let a = try CLIHarness.run(["inspect", one] + command), b = try CLIHarness.run(["inspect", two] + command)
            #expect(a.status == 0 && b.status == 0)
            if command[0] == "top" {
                // Addresses differ between runs; compare the address-free figures.
                let strip = { (r: CLIResult) throws -> [[Int]] in
                    let o = (try self.json(r) as! [String: Any])["objects"] as! [[String: Any]]
                    return o.map { [$0["id"] as! Int, $0["retained"] as! Int, $0["size"] as! Int] }
                }
                #expect(try strip(a) == strip(b))
            } else {
                #expect(a.stdout == b.stdout)
            }
        }
    }

    /// `--allocator gc --snapshot-at`: the same objects, graph and answers as heaplab's, taken
    /// in a collection started at the record.
    @Test func collectorSnapshotsAtRecordsAnswerAsTheManualHeap() throws {
        let s = ReplayScratch("snapshot")
        defer { s.cleanup() }
        let manual = try snapshots(s).late
        let trace = s.path("known.htrace")
        let r = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--gogc", "off", "--snapshot-at", "8,28",
                                    "--snapshot-at-peak", "--snapshot-dir", s.path("gc"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try json(r) as? [String: Any])
        let list = try #require(out["snapshots"] as? [[String: Any]])
        #expect(list.map { $0["record"] as! Int } == [8, 11, 28])
        #expect(list.map { $0["objects"] as! Int } == [4, 7, 7])
        #expect(list.map { $0["trigger"] as! String } == ["record", "peak", "record"])
        // GOGC=off: the only collections are the three started for the snapshots.
        #expect(list.map { $0["gc_cycle"] as! Int } == [1, 2, 3])
        let late = s.path("gc/known.r28.hsnap")
        let sum = try #require(try json(try CLIHarness.run(["inspect", late, "summary", "--json"])) as? [String: Any])
        let gc = try #require(sum["gc"] as? [String: Any])
        #expect(gc["collector"] as? Bool == true && gc["forced_cycle"] as? Bool == true && gc["phase"] as? String == "mark-termination")
        #expect(gc["current_cycle"] as? Int == 3 && gc["gogc"] is NSNull)
        #expect(sum["allocator"] as? String == "gc")
        #expect((sum["live"] as! [String: Int])["bytes"] == 70217)
        #expect((sum["unreachable"] as! [String: Int])["objects"] == 0)
        // Objects, retained sizes, sites and paths answer exactly as on the manual heap.
        for command in [["top", "--json", "-n", "10"], ["top", "--by", "site", "--json"], ["sites", "--json"], ["path", "6", "--json"]] {
            let a = try CLIHarness.run(["inspect", manual] + command), b = try CLIHarness.run(["inspect", late] + command)
            #expect(a.status == 0 && b.status == 0, "\(b.stderr)")
            func strip(_ r: CLIResult) -> String {
                r.stdout.replacingOccurrences(of: #""address": ?"0x[0-9a-f]+""#, with: "", options: .regularExpression)
            }
            #expect(strip(a) == strip(b), "\(command)")
        }
        let text = try CLIHarness.run(["inspect", late, "summary"])
        #expect(text.stdout.contains("gc             cycle 3 in mark-termination (cycle started for this snapshot)"))
        #expect(text.stdout.contains("garbage awaiting sweep"))
    }

    /// `--snapshot-every-gc` on a generated trace: one file per collection, each readable by
    /// every inspect command and the export.
    @Test func collectorSnapshotAtEveryCollection() throws {
        let s = ReplayScratch("snapshot")
        defer { s.cleanup() }
        let trace = s.path("bt.htrace")
        let g = try CLIHarness.run(["gen", "binary-trees", "--depth", "9", "--threads", "2", "--seed", "3", "-o", trace])
        #expect(g.status == 0, "\(g.stderr)")
        let r = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--gogc", "1", "--heap-minimum", "16384",
                                    "--snapshot-every-gc", "--snapshot-dir", s.path("d")])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("snapshot ") }
        #expect(lines.count >= 2, "\(r.stdout)")
        var files: [String] = []
        for line in lines {
            #expect(line.contains(" (gc), gc cycle "))
            let path = String(line.split(separator: " ", omittingEmptySubsequences: true)[1].dropLast())
            #expect(path.hasSuffix(".hsnap") && path.contains("/bt.gc"))
            files.append(path)
        }
        for f in files.prefix(3) {
            let sum = try #require(try json(try CLIHarness.run(["inspect", f, "summary", "--json"])) as? [String: Any])
            #expect(sum["trigger"] as? String == "gc")
            let gc = try #require(sum["gc"] as? [String: Any])
            #expect(gc["phase"] as? String == "mark-termination" && gc["gogc"] as? Int == 1 && gc["forced_cycle"] as? Bool == false)
            #expect((gc["heap_marked"] as? Int ?? 0) > 0)
            let top = try #require(try json(try CLIHarness.run(["inspect", f, "top", "--json", "-n", "3"])) as? [String: Any])
            let objects = try #require(top["objects"] as? [[String: Any]])
            #expect(!objects.isEmpty)
            // Every object has its trace ID: a path to the largest one answers.
            let id = try #require(objects.first?["id"] as? Int)
            #expect(id > 0)
            let path = try CLIHarness.run(["inspect", f, "path", String(id)])
            #expect(path.status == 0 && path.stdout.hasPrefix("root: held by thread "), "\(path.stderr)")
            for command in [["classes"], ["spans"], ["sites"], ["diff", files[0]]] {
                let c = try CLIHarness.run(["inspect", f] + command)
                #expect(c.status == 0, "\(command): \(c.stderr)")
            }
            let export = try CLIHarness.run(["export", f, "--chrome", s.path("x.heapsnapshot")])
            #expect(export.status == 0)
        }
    }

    @Test func snapshotOptionErrors() throws {
        let s = ReplayScratch("snapshot")
        defer { s.cleanup() }
        let trace = s.write("known.htrace", knownTrace)
        let gc = try CLIHarness.run(["replay", trace, "--snapshot-every-gc"])
        #expect(gc.status == 2 && gc.stderr.contains("--snapshot-every-gc needs --allocator gc"))
        let gcJemalloc = try CLIHarness.run(["replay", trace, "--allocator", "jemalloc", "--snapshot-every-gc"])
        #expect(gcJemalloc.status == 2 && gcJemalloc.stderr.contains("--snapshot-every-gc needs --allocator gc"))
        let glibc = try CLIHarness.run(["replay", trace, "--allocator", "glibc", "--snapshot-at", "3"])
        #expect(glibc.status == 2 && glibc.stderr.contains("heap snapshots need --allocator heaplab or gc, not glibc"))
        let raw = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--gogc", "off", "--raw-stores", "--snapshot-every-gc"])
        #expect(raw.status == 2 && raw.stderr.contains("--raw-stores does not combine with snapshots"))
        let verify = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--verify", "--snapshot-at", "3"])
        #expect(verify.status == 2 && verify.stderr.contains("--verify and --sized-free do not combine with snapshots"))
        let negative = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--snapshot-at", "3,x"])
        #expect(negative.status == 2 && negative.stderr.contains("--snapshot-at takes record numbers"))
        let gcBeyond = try CLIHarness.run(["replay", trace, "--allocator", "gc", "--snapshot-at", "29", "--snapshot-dir", s.path("y")])
        #expect(gcBeyond.status == 2 && gcBeyond.stderr.contains("--snapshot-at 29: the trace has records 0...28"))
        let beyond = try CLIHarness.run(["replay", trace, "--snapshot-at", "29", "--snapshot-dir", s.path("x")])
        #expect(beyond.status == 2 && beyond.stderr.contains("--snapshot-at 29: the trace has records 0...28"))
        let unknown = try CLIHarness.run(["inspect", trace, "frobnicate"])
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown inspect command 'frobnicate'"))
    }

    @Test func badSnapshotsExitTwoWithAnOffset() throws {
        let s = ReplayScratch("snapshot")
        defer { s.cleanup() }
        let late = try snapshots(s).late
        let good = try Data(contentsOf: URL(fileURLWithPath: late))
        func check(_ name: String, _ bytes: Data, _ message: String, command: [String] = ["summary"]) throws {
            let path = s.write(name, "")
            try bytes.write(to: URL(fileURLWithPath: path))
            let r = try CLIHarness.run(["inspect", path] + command)
            #expect(r.status == 2, "\(name): \(r.stderr)")
            #expect(r.stderr.hasPrefix("\(path): byte "), "\(name): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(name): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        // Truncated at a spread of offsets (every offset is covered by the unit tests).
        for cut in stride(from: 0, to: good.count, by: max(1, good.count / 13)) {
            try check("cut\(cut).hsnap", good.prefix(cut), "truncated")
        }
        var flipped = good
        flipped[good.count / 2] ^= 0x10
        try check("flip.hsnap", flipped, "checksum mismatch")
        var version = good
        version[8] = 9
        try check("version.hsnap", version, "snapshot format version 9; this heaplab reads versions 1 to 2")
        try check("magic.hsnap", Data("heaplab-trace 1\n".utf8), "not a HeapLab snapshot")
        try check("top.hsnap", flipped, "checksum mismatch", command: ["top"])
        try check("export.hsnap", flipped, "checksum mismatch", command: ["diff", late])
        // Hostile: an objects count of 2^60 behind valid checksums.
        try check("hostile.hsnap", Self.hostile(), "object count 1152921504606846976 cannot fit")
        let exportBad = try CLIHarness.run(["export", s.path("flip.hsnap"), "--chrome", s.path("out.heapsnapshot")])
        #expect(exportBad.status == 2 && !FileManager.default.fileExists(atPath: s.path("out.heapsnapshot")))
        let missing = try CLIHarness.run(["inspect", s.path("none.hsnap"), "summary"])
        #expect(missing.status == 2 && missing.stderr.contains("cannot open"))
    }

    /// A well-framed file whose objects section claims 2^60 objects.
    static func hostile() -> Data {
        func varint(_ v: UInt64) -> [UInt8] {
            var out: [UInt8] = [], x = v
            while x >= 0x80 { out.append(UInt8(x & 0x7f) | 0x80); x >>= 7 }
            return out + [UInt8(x)]
        }
        func crc(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
            }
            return ~c
        }
        func frame(_ tag: UInt8, _ payload: [UInt8]) -> [UInt8] {
            let n = UInt32(payload.count)
            var f: [UInt8] = [tag, UInt8(n & 0xff), UInt8((n >> 8) & 0xff), UInt8((n >> 16) & 0xff), UInt8(n >> 24)] + payload
            let c = crc(f)
            f += [UInt8(c & 0xff), UInt8((c >> 8) & 0xff), UInt8((c >> 16) & 0xff), UInt8(c >> 24)]
            return f
        }
        let huge: UInt64 = 1 << 60
        var file: [UInt8] = [0x89, 0x48, 0x4C, 0x53, 0x4E, 0x41, 0x50, 0x0A, 1, 0, 0, 0]
        file += frame(1, [0, 0, 0, 0, 0, 0, 0, 1, 0] + varint(huge) + [0, 0, 0, 0])
        file += frame(2, [0]) + frame(3, [0, 0]) + frame(4, [0]) + frame(5, varint(huge) + [1, 2, 3])
        for tag: UInt8 in [6, 7, 8, 9] { file += frame(tag, []) }
        file += frame(0xFF, varint(UInt64(file.count)))
        return Data(file)
    }
}
