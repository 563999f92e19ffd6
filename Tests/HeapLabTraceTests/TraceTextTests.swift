// Text encoding: parsing the format's example, canonical output, every syntax rule's error
// (exact `FILE:LINE: message`), and reading across buffer refills.
import Foundation
import Testing
@testable import HeapLabTrace

@Suite struct TraceTextTests {
    static let example = """
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

    @Test func parsesTheFormatExample() throws {
        let records = try readAll(Self.example)
        #expect(records == [
            .header(version: 1),
            .site(id: 1, name: "Node"), .site(id: 2, name: "[]byte"),
            .alloc(id: 1, size: 32, ptrs: 2, site: 1), .alloc(id: 2, size: 32, ptrs: 2, site: 1),
            .write(src: 1, slot: 0, dst: 2), .free(id: 2),
            .alloc(id: 3, size: 100, ptrs: 0, site: 2), .realloc(id: 3, size: 400), .free(id: 3),
            .write(src: 1, slot: 0, dst: nil), .free(id: 1),
        ])
    }

    @Test func locationsAreLinesOfRecords() throws {
        var reader = try TraceReader(bytes: Array("# c\n\nheaplab-trace 1\n  \n\t@ 3\nh 7 # x\nf 7".utf8), name: "x")
        var lines: [InputLocation] = []
        var indices: [Int] = []
        while let _ = try reader.next() { lines.append(reader.location); indices.append(reader.recordIndex) }
        #expect(lines == [.line(3), .line(5), .line(6), .line(7)])
        #expect(indices == [0, 1, 2, 3])
        #expect(reader.encoding == .text)
    }

    @Test func blanksTabsCommentsAndOptionalFields() throws {
        let text = "heaplab-trace\t1#hdr\ns 5   a name  with  spaces \t # trailing\na\t9 16\na 10 16 0\na 11 16 2\na 12 16 0 5\nw 9 1 -#\nw 0 0 00\n@ 255\n"
        let records = try readAll(text)
        #expect(records == [
            .header(version: 1), .site(id: 5, name: "a name  with  spaces"),
            .alloc(id: 9, size: 16, ptrs: 0, site: nil), .alloc(id: 10, size: 16, ptrs: 0, site: nil),
            .alloc(id: 11, size: 16, ptrs: 2, site: nil), .alloc(id: 12, size: 16, ptrs: 0, site: 5),
            .write(src: 9, slot: 1, dst: nil), .write(src: 0, slot: 0, dst: 0), .thread(255),
        ])
    }

    @Test func numberLimits() throws {
        let records = try readAll("heaplab-trace 1\nf 18446744073709551615\na 0 1099511627776 137438953472\n")
        #expect(records[1] == .free(id: UInt64.max))
        #expect(records[2] == .alloc(id: 0, size: 1 << 40, ptrs: 1 << 37, site: nil))
    }

    @Test func canonicalTextWriter() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let input = Array(Self.example.utf8)
        let records = try readAll(input)
        let out = try encode(records, .text, dir: dir)
        #expect(String(decoding: out, as: UTF8.self) == """
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
        #expect(TraceRecord.alloc(id: 4, size: 8, ptrs: 0, site: nil).description == "a 4 8")
        #expect(TraceRecord.alloc(id: 4, size: 8, ptrs: 1, site: nil).description == "a 4 8 1")
        #expect(TraceRecord.alloc(id: 4, size: 8, ptrs: 0, site: 0).description == "a 4 8 0 0")
        #expect(TraceRecord.thread(0).description == "@ 0")
    }

    /// Every syntax rule, with the exact message shape.
    @Test(arguments: [
        ("", "t:1: missing header: a trace starts with 'heaplab-trace 1' (the file has no records)"),
        ("# only a comment\n\n", "t:3: missing header: a trace starts with 'heaplab-trace 1' (the file has no records)"),
        ("a 1 8\n", "t:1: missing header: a trace starts with 'heaplab-trace 1'"),
        ("heaplab-trace 2\n", "t:1: unsupported trace version 2 (this reader reads version 1)"),
        ("heaplab-trace\n", "t:1: bad header, expected 'heaplab-trace 1'"),
        ("heaplab-trace 1 1\n", "t:1: wrong number of fields, expected 'heaplab-trace 1'"),
        ("heaplab-tracer 1\n", "t:1: unknown record 'heaplab-tracer'"),
        ("heaplab-trace 1\nx 1\n", "t:2: unknown record 'x'"),
        ("heaplab-trace 1\nalloc 1 8\n", "t:2: unknown record 'alloc'"),
        ("heaplab-trace 1\na 1\n", "t:2: wrong number of fields, expected 'a ID SIZE [PTRS [SITE]]'"),
        ("heaplab-trace 1\na 1 8 0 0 0\n", "t:2: wrong number of fields, expected 'a ID SIZE [PTRS [SITE]]'"),
        ("heaplab-trace 1\nf\n", "t:2: wrong number of fields, expected 'f ID'"),
        ("heaplab-trace 1\nf 1 2\n", "t:2: wrong number of fields, expected 'f ID'"),
        ("heaplab-trace 1\nh\n", "t:2: wrong number of fields, expected 'h ID'"),
        ("heaplab-trace 1\nh 1 # \n\nh 1 1\n", "t:4: wrong number of fields, expected 'h ID'"),
        ("heaplab-trace 1\nw 1 0\n", "t:2: wrong number of fields, expected 'w SRC SLOT DST'"),
        ("heaplab-trace 1\nw 1 0 2 3\n", "t:2: wrong number of fields, expected 'w SRC SLOT DST'"),
        ("heaplab-trace 1\nr 1\n", "t:2: wrong number of fields, expected 'r ID SIZE'"),
        ("heaplab-trace 1\n@\n", "t:2: wrong number of fields, expected '@ T'"),
        ("heaplab-trace 1\n@ 1 2\n", "t:2: wrong number of fields, expected '@ T'"),
        ("heaplab-trace 1\ns 1\n", "t:2: wrong number of fields, expected 's SITE NAME'"),
        ("heaplab-trace 1\ns 1   # no name\n", "t:2: wrong number of fields, expected 's SITE NAME'"),
        ("heaplab-trace 1\ns\n", "t:2: wrong number of fields, expected 's SITE NAME'"),
        ("heaplab-trace 1\ns x Name\n", "t:2: expected a number, found 'x'"),
        ("heaplab-trace 1\ns 1 caf\u{e9}\n", "t:2: site name contains byte 0xc3, which a text trace cannot hold"),
        ("heaplab-trace 1\nf 18446744073709551616\n",
         "t:2: number out of range '18446744073709551616' (numbers must fit in 64 bits)"),
        ("heaplab-trace 1\nf 99999999999999999999999\n",
         "t:2: number out of range '99999999999999999999999' (numbers must fit in 64 bits)"),
        ("heaplab-trace 1\nf 12x\n", "t:2: bad number '12x'"),
        ("heaplab-trace 1\nf x\n", "t:2: expected a number, found 'x'"),
        ("heaplab-trace 1\nf -3\n", "t:2: negative number '-3' (numbers are unsigned)"),
        ("heaplab-trace 1\nf +3\n", "t:2: expected a number, found '+3'"),
        ("heaplab-trace 1\nw 1 0 -1\n", "t:2: negative number '-1' (numbers are unsigned)"),
        ("heaplab-trace 1\nw 1 - 2\n", "t:2: expected a number, found '-'"),
        ("heaplab-trace 1\nf 1\r\n", "t:2: carriage return in line (lines must end with \\n only)"),
        ("heaplab-trace 1\r\n", "t:1: carriage return in line (lines must end with \\n only)"),
        ("heaplab-trace 1\n@ 256\n", "t:2: thread 256 out of range (must be below 256)"),
        ("heaplab-trace 1\na 1 0\n", "t:2: size 0 out of range (must be 1...2^40)"),
        ("heaplab-trace 1\na 1 1099511627777\n", "t:2: size 1099511627777 out of range (must be 1...2^40)"),
        ("heaplab-trace 1\nr 1 0\n", "t:2: size 0 out of range (must be 1...2^40)"),
        ("heaplab-trace 1\na 1 15 2\n", "t:2: 2 pointer slots do not fit in 15 bytes (PTRS * 8 must be <= SIZE)"),
        ("heaplab-trace 1\na 1 8 18446744073709551615\n",
         "t:2: 18446744073709551615 pointer slots do not fit in 8 bytes (PTRS * 8 must be <= SIZE)"),
        ("heaplab-trace 1\nf 1\u{0}\n", "t:2: bad number '1\\x00'"),
    ])
    func syntaxErrors(text: String, expected: String) {
        #expect(readError(text)?.description == expected)
    }

    @Test func lineLongerThanTheBufferIsAnError() {
        let dir = TempDir()
        defer { dir.cleanup() }
        let long = "heaplab-trace 1\n# " + String(repeating: "x", count: TraceReader.bufferSize + 10) + "\n"
        let path = dir.write("long.htrace", long)
        do {
            var reader = try TraceReader.open(path: path)
            while let _ = try reader.next() {}
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "\(path):2: line longer than \(TraceReader.bufferSize) bytes")
        }
    }

    @Test func missingFileIsAnError() {
        do {
            _ = try TraceReader.open(path: "/nonexistent/x.htrace")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "/nonexistent/x.htrace: cannot open trace: No such file or directory")
        }
    }

    /// A file several buffers long, with lines of varying length and no final newline, read
    /// from disk: records and line numbers survive every refill boundary.
    @Test func readsAcrossBufferRefills() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var rng = SeededRandom(seed: 7)
        var text = "heaplab-trace 1\n"
        var expected: [TraceRecord] = [.header(version: 1)]
        var expectedLines: [Int] = [1]
        var line = 2
        while text.utf8.count < 3 * TraceReader.bufferSize {
            if rng.next() % 7 == 0 {
                text += "# " + String(repeating: "c", count: Int(rng.next() % 3000)) + "\n"
                line += 1
                continue
            }
            let r = randomSyntacticRecord(&rng)
            text += r.description + (rng.next() % 2 == 0 ? "\n" : "   # x\n")
            expected.append(r)
            expectedLines.append(line)
            line += 1
        }
        text += "f 1"   // no final newline
        expected.append(.free(id: 1))
        expectedLines.append(line)
        let path = dir.write("big.htrace", text)
        var reader = try TraceReader.open(path: path)
        var got: [TraceRecord] = []
        var lines: [Int] = []
        while let r = try reader.next() {
            got.append(r)
            if case .line(let l) = reader.location { lines.append(l) }
        }
        #expect(got == expected)
        #expect(lines == expectedLines)
    }
}
