// mtrace importer: exact records for hand-written logs, validity and counts on the real
// glibc logs of `git log --stat` and awk, and FILE:LINE errors.
import Foundation
import HeapLabImport
import HeapLabTrace
import Testing

@Suite struct MtraceImporterTests {
    @Test func handWrittenLogMapsEveryOperation() throws {
        let log = """
        = Start
        @ ./prog:[0x1111] + 0x1000 0x10
        @ ./prog:(main+0x1c)[0x2222] + 0x2000 0x0
        @ ./prog:[0x1111] - 0x1000
        @ ./prog:[0x1111] + 0x1000 0x20
        @ ./prog:[0x3333] < 0x2000
        @ ./prog:[0x3333] > 0x3000 0x40
        - 0x9999
        + (nil) 0x100000
        @ ./prog:[0x3333] ! 0x3000 0x80
        @ ./prog:[0x4444] - 0x3000
        = End
        """
        let path = try temporaryFile(log)
        let (records, summary) = try importRecords(.mtrace, path)
        #expect(records == [
            .header(version: 1),
            .site(id: 1, name: "./prog:[0x1111]"),
            .alloc(id: 1, size: 16, ptrs: 0, site: 1),
            .site(id: 2, name: "./prog:(main+0x1c)[0x2222]"),
            .alloc(id: 2, size: 1, ptrs: 0, site: 2),
            .free(id: 1),
            .alloc(id: 3, size: 32, ptrs: 0, site: 1),
            .site(id: 3, name: "./prog:[0x3333]"),
            .realloc(id: 2, size: 64),
            .free(id: 2),
        ])
        #expect(summary.unknownFrees == 1)
        #expect(summary.failedCalls == 2)
        #expect(summary.zeroSizeAllocations == 1)
        #expect(summary.liveAtEnd == 1)
        #expect(checkMallocTrace(records) == nil)
    }

    @Test func callerWithBlanksIsKeptWhole() throws {
        let path = try temporaryFile("@ /opt/my app/bin:[0x10] + 0x5000 0x8\n")
        let (records, _) = try importRecords(.mtrace, path)
        #expect(records.contains(.site(id: 1, name: "/opt/my app/bin:[0x10]")))
    }

    @Test func crlfLinesAndAMissingFinalNewlineAreAccepted() throws {
        let path = try temporaryFile("= Start\r\n@ x:[0x1] + 0x10 0x8\r\n@ x:[0x1] - 0x10")
        let (records, _) = try importRecords(.mtrace, path)
        #expect(records == [.header(version: 1), .site(id: 1, name: "x:[0x1]"),
                            .alloc(id: 1, size: 8, ptrs: 0, site: 1), .free(id: 1)])
    }

    @Test(.enabled(if: Samples.available, "shared/samples is not present"))
    func xzInputIsRefusedWithAHint() throws {
        let path = Samples.path("glibc-mtrace-awk.mtrace.xz")
        #expect(throws: InputError(file: path, location: .wholeFile,
                                   message: "xz-compressed input is not supported: decompress it first (xz -dk)")) {
            _ = try importRecords(.mtrace, path)
        }
    }

    @Test func unrecognisedLineReportsItsLineNumber() throws {
        let path = try temporaryFile("= Start\n@ x:[0x1] + 0x10 0x8\n@ x:[0x1] * 0x10\n")
        #expect(throws: InputError(file: path, line: 3, "not an mtrace line: '@ x:[0x1] * 0x10'")) {
            _ = try importRecords(.mtrace, path)
        }
    }

    @Test func badNumberReportsItsLineNumber() throws {
        let path = try temporaryFile("@ x:[0x1] + 0x10 0xZZ\n")
        #expect(throws: InputError(file: path, line: 1, "bad size '0xZZ'")) {
            _ = try importRecords(.mtrace, path)
        }
    }

    @Test func reallocResultWithoutStartIsAnError() throws {
        let path = try temporaryFile("@ x:[0x1] > 0x10 0x8\n")
        #expect(throws: InputError(file: path, line: 1, "realloc result '>' without a preceding '<'")) {
            _ = try importRecords(.mtrace, path)
        }
    }

    @Test func hugeAllocationIsAnInputError() throws {
        let path = try temporaryFile("@ x:[0x1] + 0x10 0x20000000000\n")
        #expect(throws: InputError.self) { _ = try importRecords(.mtrace, path) }
    }

    @Test(.enabled(if: Samples.available, "shared/samples is not present"),
          arguments: ["glibc-mtrace-git.mtrace.xz", "glibc-mtrace-awk.mtrace.xz"])
    func realGlibcLogImportsToAValidTrace(sample: String) throws {
        let path = try Samples.xzSample(sample)
        let (records, summary) = try importRecords(.mtrace, path)
        #expect(checkMallocTrace(records) == nil)

        // Count the operations independently from the text.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var plus = 0, minus = 0, results = 0, nilAllocations = 0
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.contains("+") { plus += 1; if fields.contains("(nil)") { nilAllocations += 1 } }
            if fields.contains("-") { minus += 1 }
            if fields.contains(">") { results += 1 }
        }
        #expect(plus > 1000 || sample.contains("awk"))
        #expect(summary.allocations == plus - nilAllocations + summary.unknownReallocs)
        #expect(summary.frees + summary.unknownFrees == minus)
        #expect(summary.reallocs + summary.unknownReallocs == results)
        #expect(summary.sites > 10)
        let allocs = records.filter { if case .alloc = $0 { return true } else { return false } }.count
        #expect(allocs == summary.allocations)
    }
}
