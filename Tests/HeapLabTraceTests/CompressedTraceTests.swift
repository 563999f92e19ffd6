// Compressed traces (ByteSource.swift, TraceReader.swift): a zstd or gzip file, made by the
// real `zstd` and `gzip` programs, reads as exactly the records of the plain file, in either
// encoding, with the same text lines and the same binary offsets (counted in the
// decompressed stream); a truncated or corrupt compressed file is an InputError at a
// compressed byte offset, never a crash, a hang or a silent short read; the decompressed-size
// cap stops a bomb; xz is refused with a hint.
import Foundation
import Testing
@testable import HeapLabTrace

/// Runs `tool ARGUMENTS` with `input` on stdin and returns its stdout (the compressors).
func runFilter(_ tool: String, _ arguments: [String], input: [UInt8]) throws -> [UInt8] {
    let dir = TempDir()
    defer { dir.cleanup() }
    let inPath = dir.write("in", bytes: input)
    let outPath = dir.path("out")
    FileManager.default.createFile(atPath: outPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardOutput = out
    try process.run()
    process.waitUntilExit()
    try out.close()
    guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    return readBytes(outPath)
}

enum Codec: String, CaseIterable, CustomStringConvertible {
    case zstd, gzip
    var description: String { rawValue }
    func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        switch self {
        case .zstd: return try runFilter("/usr/bin/zstd", ["-q", "-c", "-3"], input: bytes)
        case .gzip: return try runFilter("/bin/gzip", ["-c", "-6"], input: bytes)
        }
    }
    var compression: TraceCompression { self == .zstd ? .zstd : .gzip }
}

/// Every record of the trace file at `path` with its location.
func readFile(_ path: String, limit: Int? = nil) throws(InputError) -> (TraceReader, [TraceRecord], [InputLocation]) {
    var reader = try TraceReader.open(path: path, decompressedLimit: limit)
    var records: [TraceRecord] = []
    var locations: [InputLocation] = []
    while let r = try reader.next() {
        records.append(r)
        locations.append(reader.location)
    }
    return (reader, records, locations)
}

func readFileError(_ path: String, limit: Int? = nil) -> InputError? {
    do { _ = try readFile(path, limit: limit); return nil } catch { return error }
}

/// A syntactically valid trace of `count` random records (several MiB of text for 200,000:
/// the 1 MiB reader buffer refills many times, across many zstd blocks).
func randomTrace(count: Int, seed: UInt64) -> [TraceRecord] {
    var rng = SeededRandom(seed: seed)
    return [.header(version: 1)] + (0..<count).map { _ in randomSyntacticRecord(&rng) }
}

@Suite struct CompressedTraceTests {
    static let records = randomTrace(count: 200_000, seed: 42)

    @Test(arguments: Codec.allCases, [TraceEncoding.text, .binary])
    func compressedTraceReadsAsThePlainOne(codec: Codec, encoding: TraceEncoding) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let plain = try encode(Self.records, encoding, dir: dir)
        let plainPath = dir.write("plain", bytes: plain)
        let packed = try codec.compress(plain)
        #expect(packed.count < plain.count)
        let packedPath = dir.write("packed", bytes: packed)

        let (plainReader, expected, plainLocations) = try readFile(plainPath)
        let (reader, got, locations) = try readFile(packedPath)
        #expect(plainReader.compression == .none)
        #expect(reader.compression == codec.compression)
        #expect(reader.encoding == encoding)
        #expect(got == expected)
        #expect(got == Self.records)
        switch encoding {
        case .text:
            #expect(locations == plainLocations)
        case .binary:
            // Same offsets, counted in the decompressed stream and labelled so.
            let offsets = plainLocations.map { l -> InputLocation in
                if case .byteOffset(let n) = l { return .decompressedByteOffset(n) }
                return l
            }
            #expect(locations == offsets)
        }
    }

    /// Several zstd frames (or gzip members) one after another read as their concatenation.
    @Test(arguments: Codec.allCases)
    func concatenatedFramesReadAsOneStream(codec: Codec) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let text = try encode(Self.records, .text, dir: dir)
        let cut = text.count / 3
        let newline = text[cut...].firstIndex(of: 0x0A)! + 1
        let packed = try codec.compress(Array(text[..<newline])) + codec.compress(Array(text[newline...]))
        let path = dir.write("two", bytes: packed)
        #expect(try readFile(path).1 == Self.records)
    }

    @Test(arguments: Codec.allCases, [TraceEncoding.text, .binary])
    func truncatedCompressedTraceIsAnErrorAtACompressedOffset(codec: Codec, encoding: TraceEncoding) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let packed = try codec.compress(try encode(Array(Self.records.prefix(50_000)), encoding, dir: dir))
        let n = packed.count
        for cut in [4, 9, 17, n / 3, n / 2, n - 9, n - 1] {
            let path = dir.write("cut\(cut)", bytes: Array(packed.prefix(cut)))
            let error = try #require(readFileError(path), "cut at \(cut) of \(n)")
            guard case .compressedByteOffset(let offset) = error.location else {
                Issue.record("cut at \(cut): \(error)")
                continue
            }
            #expect(offset <= cut)
            #expect(error.message.contains("truncated \(codec) data"), "\(error)")
            #expect(error.description.hasPrefix("\(path): byte \(offset) (compressed): "))
        }
    }

    @Test(arguments: Codec.allCases)
    func corruptCompressedTraceIsAnError(codec: Codec) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let packed = try codec.compress(try encode(Array(Self.records.prefix(50_000)), .binary, dir: dir))
        for position in [packed.count / 4, packed.count / 2, packed.count - 3] {
            var bad = packed
            bad[position] ^= 0x5A
            let path = dir.write("bad\(position)", bytes: bad)
            let error = try #require(readFileError(path), "byte \(position) flipped")
            guard case .compressedByteOffset(let offset) = error.location else {
                // Rarely a flip still decodes (the checksums catch the rest): then the
                // damage shows in the records, never as a crash.
                #expect(error.location != .wholeFile, "\(error)")
                continue
            }
            #expect(offset <= packed.count)
            #expect(error.message.contains("\(codec) data"), "\(error)")
        }
        // Bytes after the last frame/member that do not start another one.
        let trailing = dir.write("trailing", bytes: packed + Array("garbage!".utf8))
        let error = try #require(readFileError(trailing))
        #expect(error.message.contains("corrupt \(codec) data"), "\(error)")
        guard case .compressedByteOffset(let offset) = error.location else {
            Issue.record("\(error)")
            return
        }
        #expect(offset >= packed.count)
    }

    /// A problem inside the decompressed trace keeps its usual place: the line for text, the
    /// offset in the decompressed stream for binary (and says so).
    @Test(arguments: Codec.allCases)
    func errorsInsideTheTraceKeepTheirPlace(codec: Codec) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let text = "heaplab-trace 1\na 1 16\nf 1\nq 7\n"
        let textPath = dir.write("t.zst", bytes: try codec.compress(Array(text.utf8)))
        #expect(readFileError(textPath)?.location == .line(4))

        // A binary trace whose END record count is wrong.
        var binary = try encode([.header(version: 1), .alloc(id: 1, size: 16, ptrs: 0, site: nil),
                                 .free(id: 1)], .binary, dir: dir)
        let plainPath = dir.write("b", bytes: binary)
        _ = try readFile(plainPath)
        binary[binary.count - 1] ^= 1
        let badPlain = dir.write("bad", bytes: binary)
        let plainError = try #require(readFileError(badPlain))
        guard case .byteOffset(let offset) = plainError.location else {
            Issue.record("\(plainError)")
            return
        }
        let badPacked = dir.write("bad.z", bytes: try codec.compress(binary))
        let packedError = try #require(readFileError(badPacked))
        #expect(packedError.location == .decompressedByteOffset(offset))
        #expect(packedError.message == plainError.message)
        #expect(packedError.description == "\(badPacked): byte \(offset) (decompressed): \(plainError.message)")
    }

    /// A small file that expands past the cap is stopped there, however valid its content.
    @Test(arguments: Codec.allCases)
    func decompressionBombStopsAtTheCap(codec: Codec) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var text = Array("heaplab-trace 1\n".utf8)
        let pair = Array("a 1 16\nf 1\n".utf8)
        for _ in 0..<(3 << 20) / pair.count { text += pair }
        let packed = try codec.compress(text)
        #expect(packed.count < text.count / 50)
        let path = dir.write("bomb", bytes: packed)
        let limit = 1 << 20
        let error = try #require(readFileError(path, limit: limit))
        #expect(error.message.contains("decompresses to more than \(limit) bytes"), "\(error)")
        guard case .compressedByteOffset = error.location else {
            Issue.record("\(error)")
            return
        }
        // Under the cap it reads whole; the default cap is far above realistic traces.
        #expect(try readFile(path, limit: text.count).1.count == 1 + 2 * ((3 << 20) / pair.count))
        #expect(TraceReader.defaultDecompressedLimit >= 1 << 36)
    }

    @Test func xzIsRefusedWithAHint() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let xz = try runFilter("/usr/bin/xz", ["-c"], input: Array("heaplab-trace 1\n".utf8))
        let path = dir.write("t.xz", bytes: xz)
        let error = try #require(readFileError(path))
        #expect(error.message.contains("xz-compressed input is not supported"))
    }

    /// Compression is recognised by content, not by name: a plain trace named .zst is plain.
    @Test func namesDoNotMatter() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let path = dir.write("plain.hbtrace.zst", "heaplab-trace 1\na 1 8\n")
        let (reader, records, _) = try readFile(path)
        #expect(reader.compression == .none)
        #expect(records.count == 2)
    }
}

/// TraceWriter's `zstd` output (`--zstd`): one checksummed zstd frame that the real `zstd`
/// program decompresses to exactly the plain trace, that every reader reads back, and that
/// is the same bytes every time.
@Suite struct ZstdOutputTests {
    @Test(arguments: [TraceEncoding.text, .binary])
    func zstdOutputIsThePlainTraceCompressed(encoding: TraceEncoding) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let records = CompressedTraceTests.records
        let plain = try encode(records, encoding, dir: dir, name: "plain")
        func packed(_ name: String) throws -> [UInt8] {
            let writer = try TraceWriter(path: dir.path(name), encoding: encoding, zstd: true)
            for r in records { try writer.write(r) }
            try writer.finish()
            return readBytes(dir.path(name))
        }
        let first = try packed("a.zst")
        #expect(Array(first.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD])
        #expect(first.count < plain.count)   // random records: little to gain, but some
        #expect(try packed("b.zst") == first)
        #expect(try runFilter("/usr/bin/zstd", ["-q", "-d", "-c"], input: first) == plain)
        let (reader, got, _) = try readFile(dir.path("a.zst"))
        #expect(reader.compression == .zstd)
        #expect(got == records)
    }

    @Test func abandonedZstdOutputLeavesNothing() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let writer = try TraceWriter(path: dir.path("x.zst"), encoding: .binary, zstd: true)
        for r in CompressedTraceTests.records.prefix(100_000) { try writer.write(r) }
        writer.abandon()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }
}
