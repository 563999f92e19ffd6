// heaptrack importer: the real zstd recording, the same data gzip-compressed and raw,
// LIFO pairing, format-0 pointer files, and errors with line numbers.
import Foundation
import HeapLabImport
import HeapLabTrace
import Testing

@Suite struct HeaptrackImporterTests {
    static let small = """
    v 10400 3
    X ./demo
    s 6 ./demo
    s 4 main
    s 4 fill
    i 401000 1 2 1 10
    i 401100 1 3 1 20
    t 1 0
    t 2 1
    a 20 2
    a 8 1
    + 0
    + 0
    + 1
    - 0
    c 10
    - 0
    - 0
    - 1
    """

    @Test func freesPairWithTheLatestLiveAllocationOfTheirInfo() throws {
        let path = try temporaryFile(Self.small)
        let (records, summary) = try importRecords(.heaptrack, path)
        #expect(records == [
            .header(version: 1),
            .site(id: 1, name: "fill <- main"),
            .alloc(id: 1, size: 32, ptrs: 0, site: 1),
            .alloc(id: 2, size: 32, ptrs: 0, site: 1),
            .site(id: 2, name: "main"),
            .alloc(id: 3, size: 8, ptrs: 0, site: 2),
            .free(id: 2),
            .free(id: 1),
            .free(id: 3),
        ])
        #expect(summary.unknownFrees == 1)
        #expect(checkMallocTrace(records) == nil)
    }

    @Test func gzipAndZstdCompressedInputsGiveTheSameTrace() throws {
        let raw = try temporaryFile(Self.small)
        let gz = raw + ".gz"
        try Samples.run("/bin/gzip", ["-c", raw]).write(to: URL(fileURLWithPath: gz))
        let zst = raw + ".zst"
        try Samples.run("/usr/bin/zstd", ["-q", "-c", raw]).write(to: URL(fileURLWithPath: zst))
        let expected = try importRecords(.heaptrack, raw).0
        #expect(try importRecords(.heaptrack, gz).0 == expected)
        #expect(try importRecords(.heaptrack, zst).0 == expected)
    }

    @Test func truncatedCompressedInputIsAnError() throws {
        let raw = try temporaryFile(String(repeating: Self.small + "\n", count: 200))
        let data = try Samples.run("/usr/bin/zstd", ["-q", "-c", raw])
        let cut = raw + ".cut.zst"
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        #expect(throws: InputError.self) { _ = try importRecords(.heaptrack, cut) }
    }

    @Test func formatZeroFilesKeepPointerIdentity() throws {
        let text = """
        s main
        i 401000 1 1 1 10
        t 1 0
        + 10 1 7f0000001000
        + 20 1 7f0000002000
        - 7f0000001000
        - 7f0000003000
        """
        let path = try temporaryFile(text)
        let (records, summary) = try importRecords(.heaptrack, path)
        #expect(records == [
            .header(version: 1),
            .site(id: 1, name: "main"),
            .alloc(id: 1, size: 16, ptrs: 0, site: 1),
            .alloc(id: 2, size: 32, ptrs: 0, site: 1),
            .free(id: 1),
        ])
        #expect(summary.unknownFrees == 1)
    }

    @Test func undefinedIndicesAndUnknownLinesReportTheLine() throws {
        let badInfo = try temporaryFile("v 10400 3\n+ 5\n")
        #expect(throws: InputError(file: badInfo, line: 2, "allocation info 5 is not defined")) {
            _ = try importRecords(.heaptrack, badInfo)
        }
        let badLine = try temporaryFile("v 10400 3\nQ 1 2\n")
        #expect(throws: InputError(file: badLine, line: 2, "unknown heaptrack line 'Q 1 2'")) {
            _ = try importRecords(.heaptrack, badLine)
        }
        let badString = try temporaryFile("v 10400 3\ns 40 short\n")
        #expect(throws: InputError(file: badString, line: 2, "string length 40 runs past the end of the line")) {
            _ = try importRecords(.heaptrack, badString)
        }
        let newer = try temporaryFile("v 10400 9\n")
        #expect(throws: InputError.self) { _ = try importRecords(.heaptrack, newer) }
    }

    @Test(.enabled(if: Samples.available, "shared/samples is not present"))
    func realPythonRecordingImportsToAValidTrace() throws {
        let path = Samples.path("heaptrack-python.zst")
        let (records, summary) = try importRecords(.heaptrack, path)
        #expect(checkMallocTrace(records) == nil)
        let text = String(decoding: try Samples.run("/usr/bin/zstd", ["-dc", path]), as: UTF8.self)
        var plus = 0, minus = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("+ ") { plus += 1 }
            if line.hasPrefix("- ") { minus += 1 }
        }
        #expect(summary.allocations == plus)
        #expect(summary.frees + summary.unknownFrees == minus)
        #expect(summary.liveAtEnd == plus - summary.frees)
        #expect(summary.sites > 100)
        let names = records.compactMap { if case .site(_, let name) = $0 { return name } else { return nil } }
        #expect(names.contains { $0.contains("PyMem") || $0.contains("_Py") })
    }
}
