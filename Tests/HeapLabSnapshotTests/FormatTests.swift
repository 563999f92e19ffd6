// The snapshot file: exact round trip of every field, and every kind of bad input answered
// with an InputError carrying a byte offset: truncation at every offset, a flipped byte at
// every offset, wrong magic, wrong version, sections out of order, trailing data, and
// hostile counts (valid checksums around counts larger than the file could hold).
import Foundation
import Testing
import HeapLabTrace
@testable import HeapLabSnapshot

@Suite struct FormatTests {
    static func sample() -> HeapSnapshot {
        var m = ModelHeap()
        m.sites = [(1, "Node"), (7, "[]byte with \"quotes\" ✓")]
        m.alloc(1, 32, ptrs: 2, site: 1)
        m.alloc(2, 32, ptrs: 2, site: 1)
        m.alloc(3, 100, site: 7)
        m.alloc(4, 5)
        m.alloc(5, 70000, ptrs: 3, site: 1)
        m.store(1, 0, 2)
        m.store(1, 1, 5)
        m.store(5, 2, 3)
        m.hold(1, thread: 0, holds: 2)
        m.hold(1, thread: 3)
        m.hold(4, thread: 1)
        var info = SnapshotInfo()
        info.trace = "t.htrace"
        info.record = 42
        info.trigger = .record
        info.pauseNanos = 12345
        info.unixTime = 1_700_000_000
        info.threads = 4
        var s = m.build(info: info)
        s.arenas = [SnapshotArena(start: 0x100000, bytes: 64 << 20)]
        s.gc.cycle = 3
        s.gc.phase = .sweep
        s.gc.heapGoal = 4 << 20
        s.gc.heapMarked = 3 << 20
        s.gc.gcPercent = 50
        s.gc.heapLive = 5 << 20
        s.gc.flags = SnapshotGCState.collectorFlag | SnapshotGCState.stopTheWorldFlag
        s.gc.memoryLimit = 1 << 30
        s.statistics.append((name: "negative", value: -5))
        s.classStatistics = [SnapshotClassStatistics(sizeClass: 4, allocations: 10, frees: 8, liveObjects: 2, spans: 1)]
        return s
    }

    static func bytes(of s: HeapSnapshot) throws -> [UInt8] {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path("s.hsnap")
        try s.write(to: path)
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func expectSame(_ a: HeapSnapshot, _ b: HeapSnapshot) {
        #expect(a.info == b.info)
        #expect(a.sizeClasses == b.sizeClasses)
        #expect(a.arenas == b.arenas)
        #expect(a.spans == b.spans)
        #expect(a.allocBits == b.allocBits)
        #expect(a.markBits == b.markBits)
        #expect(a.sites == b.sites)
        #expect(a.address == b.address)
        #expect(a.size == b.size)
        #expect(a.sizeClass == b.sizeClass)
        #expect(a.pointerSlots == b.pointerSlots)
        #expect(a.site == b.site)
        #expect(a.traceID == b.traceID)
        #expect(a.edgeStart == b.edgeStart)
        #expect(a.edgeSlot == b.edgeSlot)
        #expect(a.edgeTarget == b.edgeTarget)
        #expect(a.roots == b.roots)
        #expect(a.gc == b.gc)
        #expect(a.statistics.map(\.name) == b.statistics.map(\.name))
        #expect(a.statistics.map(\.value) == b.statistics.map(\.value))
        #expect(a.classStatistics == b.classStatistics)
    }

    @Test func roundTripKeepsEveryField() throws {
        let s = Self.sample()
        #expect(s.validate() == nil)
        #expect(s.objectCount == 5)
        #expect(s.edgeCount == 3)
        #expect(s.roots.count == 3)
        let data = try Self.bytes(of: s)
        #expect(Array(data[0..<8]) == SnapshotFormat.magic)
        let back = try SnapshotReader.decode(data, file: "s")
        Self.expectSame(s, back)
    }

    @Test func largeSnapshotSpansManyFramesAndRoundTrips() throws {
        // 300k objects: the objects section needs several 1 MiB frames.
        var b = SnapshotBuilder(info: SnapshotInfo(), sizeClasses: testSizeClasses)
        var memory: [UInt64: UInt64] = [:]
        let n = 300_000
        for i in 0..<n {
            let a = 0x1000_0000 + UInt64(i) * 32
            b.addObject(address: a, size: 32, sizeClass: 4, pointerSlots: 2, site: nil, traceID: UInt64(i) + 1_000_000_000_000)
            if i > 0 { memory[a] = a - 32 }
        }
        b.addRoot(object: n - 1, thread: 0, holds: 1)
        let s = b.finish { memory[$0] ?? 0 }
        let data = try Self.bytes(of: s)
        #expect(data.count > 2 * SnapshotFormat.writerFramePayload)
        let back = try SnapshotReader.decode(data, file: "big")
        Self.expectSame(s, back)
        #expect(back.edgeCount == n - 1)
    }

    static func error(_ data: [UInt8]) -> InputError? {
        do {
            _ = try SnapshotReader.decode(data, file: "bad.hsnap")
            return nil
        } catch {
            return error
        }
    }

    static func offset(_ e: InputError?) -> Int? {
        if case .byteOffset(let o) = e?.location { return o }
        return nil
    }

    @Test func truncatedAtEveryOffsetIsAnErrorWithAnOffset() throws {
        let data = try Self.bytes(of: Self.sample())
        for cut in 0..<data.count {
            let e = Self.error(Array(data[0..<cut]))
            #expect(e != nil, "cut at \(cut)")
            let o = Self.offset(e)
            #expect(o != nil && o! <= cut, "cut at \(cut): \(String(describing: e))")
            #expect(e?.description.hasPrefix("bad.hsnap: byte ") == true)
        }
    }

    @Test func flippedByteAtEveryOffsetIsAnError() throws {
        let data = try Self.bytes(of: Self.sample())
        for k in 0..<data.count {
            var bad = data
            bad[k] ^= 0x40
            let e = Self.error(bad)
            #expect(e != nil, "flip at \(k)")
            #expect(Self.offset(e) != nil)
            if k >= SnapshotFormat.headerBytes {
                // Past the header, a flip is caught by the frame checksum or the frame
                // length (which then fails the checksum or runs off the file).
                let m = e?.message ?? ""
                #expect(m.contains("checksum") || m.contains("truncated") || m.contains("frame length"), "flip at \(k): \(m)")
            }
        }
        var wrongCRC = data
        wrongCRC[SnapshotFormat.headerBytes + 5] ^= 1     // first payload byte of the info frame
        let e = Self.error(wrongCRC)
        #expect(e?.message.contains("checksum mismatch in a frame of section info") == true)
        #expect(Self.offset(e) == SnapshotFormat.headerBytes)
    }

    @Test func wrongMagicAndVersion() throws {
        let data = try Self.bytes(of: Self.sample())
        var magic = data
        magic[1] = UInt8(ascii: "X")
        #expect(Self.error(magic)?.description == "bad.hsnap: byte 1: not a HeapLab snapshot (bad magic number)")
        #expect(data[8] == 2 && SnapshotFormat.version == 2)
        var version = data
        version[8] = 3
        #expect(Self.error(version)?.description == "bad.hsnap: byte 8: snapshot format version 3; this heaplab reads versions 1 to 2")
        version[8] = 0
        #expect(Self.error(version)?.description == "bad.hsnap: byte 8: snapshot format version 0; this heaplab reads versions 1 to 2")
        #expect(Self.error(Array("heaplab-trace 1\n".utf8)) != nil)
        #expect(Self.error([])?.description == "bad.hsnap: byte 0: truncated: the file ends inside the 8-byte magic number")
    }

    /// Version 1 files (no collector fields in gc-state) still read; version 2 keeps them.
    @Test func versionOneStillReadsAndVersionTwoKeepsTheCollectorFields() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let s = Self.sample()
        let v1 = dir.path("v1.hsnap"), v2 = dir.path("v2.hsnap")
        let n1 = try s.write(to: v1, version: 1)
        let n2 = try s.write(to: v2)
        let one = try SnapshotReader.read(path: v1)
        let two = try SnapshotReader.read(path: v2)
        Self.expectSame(s, two)
        #expect(two.gc.stopTheWorld && two.gc.hasCollector && !two.gc.gogcOff && !two.gc.forcedCycle)
        var expected = s
        expected.gc.heapLive = 0
        expected.gc.flags = 0
        expected.gc.memoryLimit = 0
        Self.expectSame(expected, one)
        let bytes1 = Array(try Data(contentsOf: URL(fileURLWithPath: v1)))
        #expect(bytes1[8] == 1)
        // The three varints: 5 MiB (4 bytes), 5 (1 byte), 1 GiB (5 bytes).
        #expect(n2 - n1 == 10)
        // A version-1 file with version-2 fields, or a version-2 file without them: the
        // gc-state section does not end where the version says.
        var relabelled = bytes1
        relabelled[8] = 2
        #expect(Self.error(relabelled)?.message.contains("section gc-state: truncated") == true)
        var unknownFlags = s
        unknownFlags.gc.flags = 16
        let bad = dir.path("flags.hsnap")
        try unknownFlags.write(to: bad)
        #expect(throws: InputError.self) { _ = try SnapshotReader.read(path: bad) }
        let e = Self.error(Array(try Data(contentsOf: URL(fileURLWithPath: bad))))
        #expect(e?.message == "section gc-state: unknown GC flags 0x10")
    }

    /// A file made frame by frame, for the hostile cases.
    static func frame(_ tag: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let n = UInt32(payload.count)
        var f: [UInt8] = [tag, UInt8(n & 0xff), UInt8((n >> 8) & 0xff), UInt8((n >> 16) & 0xff), UInt8(n >> 24)]
        f.append(contentsOf: payload)
        let crc = CRC32.checksum(f)
        f.append(contentsOf: [UInt8(crc & 0xff), UInt8((crc >> 8) & 0xff), UInt8((crc >> 16) & 0xff), UInt8(crc >> 24)])
        return f
    }

    static func varint(_ v: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        var x = v
        while x >= 0x80 { out.append(UInt8(x & 0x7f) | 0x80); x >>= 7 }
        out.append(UInt8(x))
        return out
    }

    static let header: [UInt8] = SnapshotFormat.magic + [1, 0, 0, 0]

    /// Completes a hand-made file: empty frames for the required sections after the last
    /// one present, then a correct end section, so that only the content is wrong.
    static func complete(_ partial: [UInt8], last: SnapshotSection) -> [UInt8] {
        var file = partial
        let required = SnapshotSection.required
        for s in required[(required.firstIndex(of: last)! + 1)...] { file += frame(s.rawValue, []) }
        return file + frame(SnapshotSection.end.rawValue, varint(UInt64(file.count)))
    }

    static func infoPayload(objects: UInt64 = 0, edges: UInt64 = 0, spans: UInt64 = 0, sites: UInt64 = 0, roots: UInt64 = 0) -> [UInt8] {
        [0, 0, 0] + [0, 0, 0, 0, 1, 0] + varint(objects) + varint(edges) + varint(spans) + varint(sites) + varint(roots)
    }

    @Test func hostileCountsAreRefusedBeforeAnyAllocation() {
        let classes = Self.frame(2, [0])
        // 2^60 objects declared and claimed, a few bytes present.
        let huge: UInt64 = 1 << 60
        var file = Self.header + Self.frame(1, Self.infoPayload(objects: huge)) + classes
        file += Self.frame(3, [0, 0]) + Self.frame(4, [0])
        let objectsFrame = file.count
        file = Self.complete(file + Self.frame(5, Self.varint(huge) + [1, 2, 3]), last: .objects)
        let e = Self.error(file)
        #expect(e?.message.contains("object count 1152921504606846976 cannot fit") == true, "\(String(describing: e))")
        // The offset is that of the count, inside the objects frame.
        #expect(Self.offset(e) == objectsFrame + 5)

        // Spans: 2^40 spans claimed.
        var spans = Self.header + Self.frame(1, Self.infoPayload(spans: 1 << 40)) + classes
        spans = Self.complete(spans + Self.frame(3, [0] + Self.varint(1 << 40) + [0, 0, 0]), last: .layout)
        #expect(Self.error(spans)?.message.contains("span count 1099511627776 cannot fit") == true)

        // A span whose bitmaps would need 2^26 words.
        var bitmap = Self.header + Self.frame(1, Self.infoPayload(spans: 1)) + Self.frame(2, [1, 0, 0])
        bitmap += Self.frame(3, [0, 1] + Self.varint(0x100000) + Self.varint(1 << 20) + [0, 0, 0] + Self.varint(1) + Self.varint(1 << 32 - 1) + [UInt8](repeating: 0, count: 40))
        let be = Self.error(Self.complete(bitmap, last: .layout))
        #expect(be?.message.contains("bitmaps of 67108864 words each run past the end of the section") == true, "\(String(describing: be))")

        // Edges: more edges than bytes.
        var edges = Self.header + Self.frame(1, Self.infoPayload(objects: 1, edges: 1 << 50)) + classes
        edges += Self.frame(3, [0, 0]) + Self.frame(4, [0]) + Self.frame(5, [1, 16, 8, 0, 0, 0, 9])
        edges = Self.complete(edges + Self.frame(6, Self.varint(1 << 50) + [0]), last: .edges)
        #expect(Self.error(edges)?.message.contains("edge count 1125899906842624 cannot fit") == true)

        // A string length beyond the section.
        let strings = Self.complete(Self.header + Self.frame(1, Self.varint(1 << 62) + [1, 2]), last: .info)
        #expect(Self.error(strings)?.message.contains("producer byte count 4611686018427387904 cannot fit") == true)

        // A frame length beyond the file.
        let frameLength = Self.header + [1, 0xff, 0xff, 0xff, 0x7f, 0]
        #expect(Self.error(frameLength)?.message.contains("exceeds the limit") == true)
        let frameLength2 = Self.header + [1, 0xff, 0xff, 0x00, 0x00, 0]
        #expect(Self.error(frameLength2)?.message.contains("truncated: a frame of 65535 payload bytes") == true)
    }

    @Test func structuralErrors() throws {
        let data = try Self.bytes(of: Self.sample())
        // Trailing data after the end section.
        let trailing = Self.error(data + [0])
        #expect(trailing?.message == "data after the end section")
        #expect(Self.offset(trailing) == data.count)
        // A section out of order: objects right after info.
        let outOfOrder = Self.header + Self.frame(1, Self.infoPayload()) + Self.frame(5, [0])
        #expect(Self.error(outOfOrder)?.message == "section objects where section size-classes was expected")
        // Unknown tag; an optional extension tag is skipped.
        #expect(Self.error(Self.header + Self.frame(0x20, []))?.message == "unknown section tag 0x00000020")
        let endFrame = 5 + Self.varint(UInt64(data.count - 10)).count + 4
        let body = Array(data[0..<12]) + Self.frame(0x41, [1, 2, 3]) + Array(data[12..<(data.count - endFrame)])
        let withExtension = body + Self.frame(0xFF, Self.varint(UInt64(body.count)))
        #expect(Self.error(withExtension) == nil)
        // A whole frame dropped from the middle (every remaining checksum valid) is caught
        // by the end section's byte count at the latest.
        let infoFrame = Int(data[13]) + 9
        #expect(Self.error(Array(data[0..<12]) + Array(data[(12 + infoFrame)...])) != nil)
        // Edge to an object that does not exist (valid checksums).
        var edges = Self.header + Self.frame(1, Self.infoPayload(objects: 1, edges: 1)) + Self.frame(2, [1, 0, 0])
        edges += Self.frame(3, [0, 0]) + Self.frame(4, [0]) + Self.frame(5, [1, 16, 16, 0, 2, 0, 9])
        edges = Self.complete(edges + Self.frame(6, [1, 1, 0, 5]), last: .edges)
        #expect(Self.error(edges)?.message == "section edges: object 0: edge to object 5 of 1")
        // Addresses that do not increase.
        var addresses = Self.header + Self.frame(1, Self.infoPayload(objects: 2)) + Self.frame(2, [1, 0, 0])
        addresses += Self.frame(3, [0, 0]) + Self.frame(4, [0]) + Self.frame(5, [2, 16, 8, 0, 0, 0, 9, 0, 8, 0, 0, 0, 10])
        addresses = Self.complete(addresses, last: .objects)
        #expect(Self.error(addresses)?.message == "section objects: object 1: addresses must strictly increase")
        // Missing end section.
        let noEnd = Array(data[0..<(data.count - 5 - 4 - Self.varint(UInt64(data.count - 10)).count)])
        #expect(Self.error(noEnd)?.message == "truncated: the file ends before section end")
    }

    @Test func writeIsAtomicAndReadReportsMissingFiles() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path("x.hsnap")
        var s = Self.sample()
        s.edgeTarget[0] = 99           // inconsistent: refused, nothing written
        #expect(throws: InputError.self) { try s.write(to: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir.url.path))?.isEmpty == true)
        #expect(throws: InputError.self) { _ = try SnapshotReader.read(path: dir.path("missing.hsnap")) }
        let good = Self.sample()
        try good.write(to: path)
        Self.expectSame(good, try SnapshotReader.read(path: path))
    }
}
