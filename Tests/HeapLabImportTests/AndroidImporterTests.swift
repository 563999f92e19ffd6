// Android memory_replay importer: every operation, thread numbering and reuse past 256
// threads, errors with line numbers, and the real surfaceflinger dump.
import Foundation
import HeapLabImport
import HeapLabTrace
import Testing

@Suite struct AndroidImporterTests {
    @Test func handWrittenDumpMapsEveryOperation() throws {
        let dump = """
        10: malloc 0xa000 24
        10: calloc 0xb000 4 8
        11: memalign 0xc000 64 100
        11: realloc 0xd000 0xa000 48
        10: realloc 0xe000 0x0 16
        10: free 0x0
        10: free 0xf000
        11: realloc 0x0 0xb000 0
        11: free 0xc000 123 456
        11: thread_done 0x0
        """
        let path = try temporaryFile(dump)
        let (records, summary) = try importRecords(.android, path)
        #expect(records == [
            .header(version: 1),
            .alloc(id: 1, size: 24, ptrs: 0, site: nil),
            .alloc(id: 2, size: 32, ptrs: 0, site: nil),
            .thread(1),
            .alloc(id: 3, size: 100, ptrs: 0, site: nil),
            .realloc(id: 1, size: 48),
            .thread(0),
            .alloc(id: 4, size: 16, ptrs: 0, site: nil),
            .thread(1),
            .free(id: 2),
            .free(id: 3),
        ])
        #expect(summary.unknownFrees == 1)
        #expect(checkMallocTrace(records) == nil)
    }

    @Test func threadNumbersAreReusedAfterThreadDone() throws {
        // 300 threads, each allocating then finishing: numbers past 255 come from finished threads.
        var lines: [String] = []
        for tid in 1000..<1300 {
            lines.append("\(tid): malloc 0x\(String(tid * 16, radix: 16)) 8")
            lines.append("\(tid): thread_done 0x0")
        }
        let path = try temporaryFile(lines.joined(separator: "\n"))
        let (records, summary) = try importRecords(.android, path)
        #expect(summary.threadNumbersReused == 44)
        #expect(records.allSatisfy { if case .thread(let t) = $0 { return t < 256 } else { return true } })
        #expect(checkMallocTrace(records) == nil)
    }

    @Test func tooManyLiveThreadsIsAClearError() throws {
        let lines = (0..<257).map { "\($0 + 1): malloc 0x\(String(($0 + 1) * 16, radix: 16)) 8" }
        let path = try temporaryFile(lines.joined(separator: "\n"))
        #expect(throws: InputError(file: path, line: 257, "more than 256 threads alive at once; a HeapLab trace has at most 256")) {
            _ = try importRecords(.android, path)
        }
    }

    @Test func callocOverflowIsAnError() throws {
        let path = try temporaryFile("1: calloc 0x10 18446744073709551615 2\n")
        #expect(throws: InputError(file: path, line: 1, "calloc size 18446744073709551615 x 2 overflows")) {
            _ = try importRecords(.android, path)
        }
    }

    @Test func unknownOperationAndMissingFieldsReportTheLine() throws {
        let path = try temporaryFile("1: malloc 0x10 8\n1: mmap 0x10 8\n")
        #expect(throws: InputError(file: path, line: 2, "unknown operation 'mmap'")) {
            _ = try importRecords(.android, path)
        }
        let short = try temporaryFile("1: malloc 0x10\n")
        #expect(throws: InputError(file: short, line: 1, "missing size")) {
            _ = try importRecords(.android, short)
        }
        let noTid = try temporaryFile("malloc 0x10 8\n")
        #expect(throws: InputError.self) { _ = try importRecords(.android, noTid) }
    }

    @Test(.enabled(if: Samples.available, "shared/samples is not present"))
    func surfaceflingerDumpImportsToAValidTrace() throws {
        let path = try Samples.xzSample("android-surfaceflinger-head50k.txt.xz")
        let (records, summary) = try importRecords(.android, path)
        #expect(checkMallocTrace(records) == nil)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        let tids = Set(lines.map { $0.split(separator: ":")[0] })
        let threadRecords = Set(records.compactMap { if case .thread(let t) = $0 { return t } else { return nil } })
        #expect(threadRecords.count == tids.count - (threadRecords.contains(0) ? 0 : 1))
        let mallocs = lines.filter { $0.contains(" malloc ") || $0.contains(" calloc ") || $0.contains(" memalign ") }.count
        #expect(summary.allocations >= mallocs)
        #expect(summary.liveAtEnd > 0)
    }
}
