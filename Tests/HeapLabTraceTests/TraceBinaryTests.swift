// Binary encoding: exact bytes of a small example (pins the documented format), text <->
// binary round trips on random traces, detection by content, and truncation / corruption at
// every byte offset (an error with a byte offset, never a crash or hang).
import Foundation
import Testing
@testable import HeapLabTrace

@Suite struct TraceBinaryTests {
    /// The worked example of docs/trace-binary-format.md, byte for byte.
    @Test func documentedExampleBytes() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let records: [TraceRecord] = [
            .header(version: 1),
            .site(id: 1, name: "Node"),
            .alloc(id: 1000, size: 32, ptrs: 2, site: 1),
            .alloc(id: 1001, size: 24, ptrs: 0, site: nil),
            .write(src: 1000, slot: 0, dst: 1001),
            .free(id: 1001),
            .write(src: 1000, slot: 0, dst: nil),
            .thread(3),
            .realloc(id: 1000, size: 300),
            .hold(id: 1000),
        ]
        let bytes = try encode(records, .binary, dir: dir)
        #expect(bytes == [
            0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01,   // magic, version 1
            0x01, 0x01, 0x04, 0x4E, 0x6F, 0x64, 0x65,                // s 1 Node
            0x13, 0xD0, 0x0F, 0x20, 0x02, 0x01,                      // a 1000 32 2 1 (zz(1000) = 2000)
            0x10, 0x02, 0x18,                                        // a 1001 24   (delta +1)
            0x22, 0x01, 0x00, 0x02,                                  // w 1000 0 1001 (-1, then +1)
            0x20, 0x00,                                              // f 1001 (delta 0)
            0x23, 0x01, 0x00,                                        // w 1000 0 -
            0x02, 0x03,                                              // @ 3
            0x24, 0x00, 0xAC, 0x02,                                  // r 1000 300
            0x21, 0x00,                                              // h 1000
            0x00, 0x09,                                              // end, 9 records
        ])
        var reader = try TraceReader(bytes: bytes, name: "b")
        #expect(reader.encoding == .binary)
        var got: [TraceRecord] = []
        var offsets: [InputLocation] = []
        while let r = try reader.next() { got.append(r); offsets.append(reader.location) }
        #expect(got == records)
        #expect(offsets == [0, 9, 16, 22, 25, 29, 31, 34, 36, 40].map { .byteOffset($0) })
    }

    @Test func varintAndZigzagEdges() {
        let values: [UInt64] = [0, 1, 127, 128, 16383, 16384, 1 << 63, UInt64.max, UInt64.max - 1]
        for v in values {
            var buf = [UInt8](repeating: 0, count: 10)
            let n = buf.withUnsafeMutableBufferPointer { TraceBinary.putVarint(v, $0.baseAddress!) - $0.baseAddress! }
            var status = TraceBinary.VarintStatus.ok
            let back = buf.withUnsafeBufferPointer { b -> UInt64 in
                var p = b.baseAddress!
                let r = TraceBinary.getVarint(&p, b.baseAddress! + n, &status)
                #expect(p == b.baseAddress! + n)
                return r
            }
            #expect(status == .ok)
            #expect(back == v)
            #expect(TraceBinary.unzigzag(TraceBinary.zigzag(v)) == v)
        }
        #expect(TraceBinary.zigzag(0) == 0)
        #expect(TraceBinary.zigzag(UInt64.max) == 1)   // -1
        #expect(TraceBinary.zigzag(1) == 2)
    }

    /// Random syntactically valid traces: text -> records -> binary -> records -> text gives
    /// the same records and byte-identical canonical text, and binary re-encodes identically.
    @Test(arguments: 0..<20)
    func randomRoundTrip(seed: Int) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var rng = SeededRandom(seed: UInt64(seed) &* 7919)
        var records: [TraceRecord] = [.header(version: 1)]
        for _ in 0..<(Int(rng.next() % 2000) + (seed == 0 ? 0 : 1)) { records.append(randomSyntacticRecord(&rng)) }
        let text = try encode(records, .text, dir: dir, name: "a.htrace")
        let fromText = try readAll(text)
        #expect(fromText == records)
        let binary = try encode(fromText, .binary, dir: dir, name: "a.hbtrace")
        let fromBinary = try readAll(binary)
        #expect(fromBinary == records)
        #expect(try encode(fromBinary, .text, dir: dir, name: "b.htrace") == text)
        #expect(try encode(fromBinary, .binary, dir: dir, name: "b.hbtrace") == binary)
    }

    /// Large binary file through the file reader (several buffer refills, site records
    /// straddling refills).
    @Test func readsLargeBinaryFile() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var rng = SeededRandom(seed: 99)
        let path = dir.path("big.hbtrace")
        let writer = try TraceWriter(path: path, encoding: .binary)
        var records: [TraceRecord] = []
        var n = 0
        while n < 3 * TraceReader.bufferSize {
            var r = randomSyntacticRecord(&rng)
            if rng.next() % 500 == 0 { r = .site(id: 1, name: String(repeating: "L", count: 60000)) }
            records.append(r)
            try writer.write(r)
            n += 20
            if case .site(_, let name) = r { n += name.utf8.count }
        }
        try writer.finish()
        var reader = try TraceReader.open(path: path)
        #expect(try reader.next() == .header(version: 1))
        var i = 0
        while let r = try reader.next() {
            #expect(r == records[i])
            i += 1
        }
        #expect(i == records.count)
    }

    static func smallTrace() throws -> [UInt8] {
        let dir = TempDir()
        defer { dir.cleanup() }
        return try encode([
            .header(version: 1), .site(id: 3, name: "T x"), .thread(2),
            .alloc(id: 70000, size: 4096, ptrs: 3, site: 3), .alloc(id: 5, size: 16, ptrs: 0, site: nil),
            .write(src: 70000, slot: 2, dst: 5), .write(src: 70000, slot: 1, dst: nil),
            .hold(id: 5), .free(id: 5), .realloc(id: 5, size: 1 << 39), .free(id: 70000),
        ], .binary, dir: dir)
    }

    /// Every proper prefix of a binary trace is rejected with a byte offset inside the file.
    @Test func truncationAtEveryOffset() throws {
        let bytes = try Self.smallTrace()
        for cut in 0..<bytes.count {
            let prefix = Array(bytes[0..<cut])
            guard let error = readError(prefix, name: "cut") else {
                Issue.record("prefix of \(cut) bytes was accepted")
                continue
            }
            if cut == 0 {
                // An empty file is read as (empty) text.
                #expect(error.description.hasPrefix("cut:1: missing header"))
                continue
            }
            guard case .byteOffset(let offset) = error.location else {
                Issue.record("prefix \(cut): \(error) has no byte offset")
                continue
            }
            #expect(offset <= cut)
        }
    }

    /// Every byte replaced by several values: reading either fails with a byte offset or
    /// succeeds; it never crashes or hangs.
    @Test func corruptionAtEveryOffset() throws {
        let bytes = try Self.smallTrace()
        var failures = 0
        for i in 0..<bytes.count {
            for v: UInt8 in [0x00, 0x01, 0x7F, 0x80, 0xFF, bytes[i] ^ 0x40] where v != bytes[i] {
                var corrupt = bytes
                corrupt[i] = v
                if let error = readError(corrupt, name: "c") {
                    failures += 1
                    if i == 0 { continue }   // no longer starts with 0x89: read as text
                    guard case .byteOffset = error.location else {
                        Issue.record("corrupt byte \(i): \(error) has no byte offset")
                        continue
                    }
                }
            }
        }
        #expect(failures > bytes.count)
    }

    @Test(arguments: [
        ([0x89, 0x48, 0x4C], "b: byte 0: truncated binary trace header"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x46, 0x01, 0x00, 0x00], "b: byte 0: not a HeapLab binary trace (bad magic bytes)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x02, 0x00, 0x00],
         "b: byte 8: unsupported trace version 2 (this reader reads version 1)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01], "b: byte 9: truncated trace: the end record is missing"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x20, 0x02], "b: byte 11: truncated trace: the end record is missing"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x20], "b: byte 9: truncated record (file ends inside it)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x20, 0x82, 0x00, 0x00, 0x01],
         "b: byte 9: corrupt record: varint has redundant bytes"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x20,
          0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0x00, 0x01],
         "b: byte 9: corrupt record: varint does not fit in 64 bits"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x07, 0x00, 0x01],
         "b: byte 9: corrupt record: unknown opcode 0x07"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x11, 0x02, 0x10, 0x00, 0x00, 0x01],
         "b: byte 9: corrupt record: pointer-slot alloc with 0 slots"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x10, 0x02, 0x00, 0x00, 0x01],
         "b: byte 9: size 0 out of range (must be 1...2^40)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x11, 0x02, 0x08, 0x02, 0x00, 0x01],
         "b: byte 9: 2 pointer slots do not fit in 8 bytes (PTRS * 8 must be <= SIZE)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x24, 0x02, 0x81, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00, 0x01],
         "b: byte 9: size 1099511627777 out of range (must be 1...2^40)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x02, 0x80, 0x02, 0x00, 0x01],
         "b: byte 9: thread 256 out of range (must be below 256)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x01, 0x01, 0x00, 0x00, 0x01],
         "b: byte 9: site name length 0 out of range (must be 1...65536)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x01, 0x01, 0x80, 0x80, 0x08, 0x00, 0x01],
         "b: byte 9: site name length 131072 out of range (must be 1...65536)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x01, 0x01, 0x05, 0x41],
         "b: byte 9: truncated record (file ends inside it)"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x01, 0x01, 0x02, 0x41, 0x0A, 0x00, 0x01],
         "b: byte 9: site name contains byte 0x0a, which a text trace cannot hold"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x01, 0x01, 0x02, 0x41, 0x23, 0x00, 0x01],
         "b: byte 9: site name contains byte 0x23, which a text trace cannot hold"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x01, 0x01, 0x02, 0x41, 0x20, 0x00, 0x01],
         "b: byte 9: site name starts or ends with a space or tab"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x20, 0x02, 0x00, 0x02],
         "b: byte 11: corrupt trace: the end record counts 2 records but 1 were read"),
        ([0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45, 0x01, 0x20, 0x02, 0x00, 0x01, 0x00],
         "b: byte 13: corrupt trace: bytes after the end record"),
    ] as [([UInt8], String)])
    func binaryErrors(bytes: [UInt8], expected: String) {
        #expect(readError(bytes, name: "b")?.description == expected)
    }

    @Test func writerRejectsWhatReadersWouldReject() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let path = dir.path("w.htrace")
        let writer = try TraceWriter(path: path, encoding: .text)
        try writer.write(.header(version: 1))
        #expect(throws: InputError.self) { try writer.write(.header(version: 1)) }
        #expect(throws: InputError.self) { try writer.write(.alloc(id: 1, size: 0, ptrs: 0, site: nil)) }
        #expect(throws: InputError.self) { try writer.write(.alloc(id: 1, size: 8, ptrs: 2, site: nil)) }
        #expect(throws: InputError.self) { try writer.write(.thread(256)) }
        #expect(throws: InputError.self) { try writer.write(.site(id: 1, name: "a#b")) }
        #expect(throws: InputError.self) { try writer.write(.site(id: 1, name: " a")) }
        #expect(throws: InputError.self) { try writer.write(.site(id: 1, name: "")) }
        try writer.write(.alloc(id: 1, size: 8, ptrs: 1, site: nil))
        #expect(!fileExists(path))
        try writer.finish()
        #expect(String(decoding: readBytes(path), as: UTF8.self) == "heaplab-trace 1\na 1 8 1\n")
        #expect(throws: InputError.self) { try writer.write(.free(id: 1)) }
    }

    @Test func abandonedWriterLeavesNothing() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let path = dir.path("gone.hbtrace")
        do {
            let writer = try TraceWriter(path: path, encoding: .binary)
            try writer.write(.free(id: 1))
            writer.abandon()
        }
        do {
            let writer = try TraceWriter(path: path, encoding: .binary)
            try writer.write(.free(id: 1))
            // dropped without finish()
            _ = writer
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.url.path)
        #expect(leftovers.isEmpty)
    }
}
