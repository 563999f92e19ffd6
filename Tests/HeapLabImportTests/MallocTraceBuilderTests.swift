// The shared address-map machinery: AddressTable against a Dictionary model, the builder's
// rules (lost frees, split realloc across threads, exec), thread-number reuse, and the
// recorder-log converter on a log written byte by byte as the C recorder lays it out.
import Foundation
@testable import HeapLabImport
import HeapLabTrace
import Testing

@Suite struct MallocTraceBuilderTests {
    @Test func addressTableAgreesWithADictionary() {
        var table = AddressTable(minimumCapacity: 16)
        var model: [UInt64: UInt64] = [:]
        var state: UInt64 = 12345
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        for step in 0..<200_000 {
            let key = (next() % 5000 + 1) * 16   // clustered keys, like heap addresses
            if next() % 3 == 0 {
                #expect(table.remove(key) == model.removeValue(forKey: key))
            } else {
                #expect(table.insert(key, UInt64(step)) == model.updateValue(UInt64(step), forKey: key))
            }
        }
        #expect(table.count == model.count)
        for (key, value) in model { #expect(table.find(key) == value) }
        #expect(table.find(16 * 6000) == nil)
    }

    @Test func lostFreeAndSplitReallocAcrossThreadsStayValid() throws {
        var builder = try MallocTraceBuilder(sink: RecordArraySink(), file: "t")
        try builder.malloc(address: 0x100, size: 8, site: nil, at: .line(1))
        try builder.malloc(address: 0x100, size: 16, site: nil, at: .line(2))   // free of 1 was lost
        builder.beginRealloc(old: 0x100, token: 7)                               // thread 7 starts realloc
        builder.setThread(1)
        try builder.malloc(address: 0x100, size: 4, site: nil, at: .line(4))    // thread 1 gets the old block
        builder.setThread(0)
        try builder.endRealloc(new: 0x200, size: 64, token: 7, site: nil, at: .line(5))
        try builder.free(address: 0x100)
        try builder.free(address: 0x200)
        let (sink, summary) = builder.finish()
        #expect(sink.records == [
            .header(version: 1),
            .alloc(id: 1, size: 8, ptrs: 0, site: nil),
            .free(id: 1),
            .alloc(id: 2, size: 16, ptrs: 0, site: nil),
            .thread(1),
            .alloc(id: 3, size: 4, ptrs: 0, site: nil),
            .thread(0),
            .realloc(id: 2, size: 64),
            .free(id: 3),
            .free(id: 2),
        ])
        #expect(summary.replacedLive == 1)
        #expect(checkMallocTrace(sink.records) == nil)
    }

    @Test func failedAndZeroSizeReallocs() throws {
        var builder = try MallocTraceBuilder(sink: RecordArraySink(), file: "t")
        try builder.malloc(address: 0x10, size: 8, site: nil, at: .line(1))
        builder.beginRealloc(old: 0x10, token: 1)
        try builder.endRealloc(new: 0, size: 1 << 30, token: 1, site: nil, at: .line(2)) // failed: 0x10 stays
        builder.beginRealloc(old: 0x10, token: 1)
        try builder.endRealloc(new: 0, size: 0, token: 1, site: nil, at: .line(3))       // realloc(p, 0) frees
        #expect(throws: InputError(file: "t", line: 4, "realloc result without a realloc start")) {
            try builder.endRealloc(new: 0x20, size: 8, token: 1, site: nil, at: .line(4))
        }
        let (sink, summary) = builder.finish()
        #expect(sink.records == [.header(version: 1), .alloc(id: 1, size: 8, ptrs: 0, site: nil), .free(id: 1)])
        #expect(summary.failedCalls == 1)
    }

    @Test func siteNamesAreMadeWritable() {
        typealias B = MallocTraceBuilder<RecordArraySink>
        #expect(B.sanitizedSiteName("  a#b\u{7}c  ") == "a?b?c")
        #expect(B.sanitizedSiteName("") == "?")
        #expect(B.sanitizedSiteName("é") == "??")
        #expect(B.sanitizedSiteName(String(repeating: "x", count: 5000)).utf8.count == 1024)
    }

    @Test func threadNumberingHandsOutFreshThenFinishedNumbers() {
        var threads = ThreadNumbering()
        for tid in 0..<256 { #expect(threads.number(for: UInt64(tid + 100)) == UInt64(tid)) }
        #expect(threads.number(for: 9999) == nil)
        threads.finish(105)
        threads.finish(103)
        #expect(threads.number(for: 105) == 5)        // finished but not yet reused: keeps its number
        #expect(threads.number(for: 9999) == 5)       // oldest finished first
        #expect(threads.number(for: 9998) == 3)
        #expect(threads.number(for: 105) == nil)      // its number went to 9999
        #expect(threads.reusedCount == 2)
    }
}

@Suite struct RecorderLogImporterTests {
    /// Builds a log the way libHeapLabRecorder lays it out (heaplab_recorder.h).
    struct LogBuilder {
        var events: [(UInt32, UInt32, UInt64, UInt64, UInt64)] = []
        var dropped: UInt64 = 0

        func bytes(next: UInt64? = nil) -> Data {
            var data = Data("HLRLOG01".utf8)
            func put(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
            func put32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
            put(42)
            put(next ?? UInt64(64 + 32 * events.count))
            put(dropped)
            put(1)
            put(0); put(0); put(0)
            for (kind, tid, a, b, site) in events {
                put32(kind); put32(tid); put(a); put(b); put(site)
            }
            data.append(Data(count: 4096))   // the file grows in chunks: zeros past `next`
            return data
        }
    }

    func convert(_ log: LogBuilder, next: UInt64? = nil, maps: String? = nil) throws -> ([TraceRecord], ImportSummary) {
        let path = scratchDirectory + "/reclog-\(UUID().uuidString)"
        try log.bytes(next: next).write(to: URL(fileURLWithPath: path))
        if let maps { try maps.write(toFile: path + ".maps.1", atomically: true, encoding: .utf8) }
        var sink = RecordArraySink()
        let summary = try RecorderLogImporter.run(path: path, into: &sink)
        return (sink.records, summary)
    }

    @Test func eventsBecomeAValidTraceWithNamedSites() throws {
        var log = LogBuilder()
        log.events = [
            (1, 500, 0x5000, 24, 0x7f00_0000_1234),   // malloc on the main thread
            (1, 501, 0x6000, 0, 0x7f00_0000_1234),    // malloc(0) on a second thread
            (0, 501, 0, 0, 0),                        // a slot never completed
            (3, 501, 0x6000, 0, 0),                   // realloc begin
            (4, 501, 0x7000, 100, 0x5555_0000_0010),  // realloc end
            (5, 501, 0, 0, 0),                        // thread exit
            (2, 500, 0x5000, 0, 0),                   // free
            (2, 500, 0x9999, 0, 0),                   // free of an unknown block
            (6, 500, 2, 0, 0),                        // exec: the old image's heap is gone
        ]
        let maps = """
        555500000000-555500001000 r-xp 00002000 08:01 1234 /usr/bin/prog
        7f0000000000-7f0000100000 r-xp 00010000 08:01 99 /lib/x86_64-linux-gnu/libc.so.6
        7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
        """
        let (records, summary) = try convert(log, maps: maps)
        #expect(records == [
            .header(version: 1),
            .site(id: 1, name: "libc.so.6+0x11234"),
            .alloc(id: 1, size: 24, ptrs: 0, site: 1),
            .thread(1),
            .alloc(id: 2, size: 1, ptrs: 0, site: 1),
            .site(id: 2, name: "prog+0x2010"),
            .realloc(id: 2, size: 100),
            .thread(0),
            .free(id: 1),
            .free(id: 2),
        ])
        #expect(summary.unknownFrees == 1)
        #expect(summary.notes.contains { $0.contains("1 log slots never completed") })
        #expect(checkMallocTrace(records) == nil)
    }

    @Test func badMagicAndUnknownKindsAreErrors() throws {
        let path = scratchDirectory + "/reclog-\(UUID().uuidString)"
        try Data("not a log at all, not a log at all, not a log at all, not a log!".utf8)
            .write(to: URL(fileURLWithPath: path))
        var sink = RecordArraySink()
        #expect(throws: InputError(file: path, byteOffset: 0, "not a HeapLab recorder log (bad magic)")) {
            _ = try RecorderLogImporter.run(path: path, into: &sink)
        }
        var log = LogBuilder()
        log.events = [(1, 1, 0x10, 8, 0), (77, 1, 0, 0, 0)]
        #expect(throws: InputError.self) { _ = try convert(log) }
    }

    @Test func aKilledWritersLogEndsAtItsLastCompleteEvent() throws {
        var log = LogBuilder()
        log.events = [(1, 1, 0x10, 8, 0), (1, 1, 0x20, 8, 0)]
        // `next` claims three more slots than were written (the writers were killed).
        let (records, summary) = try convert(log, next: UInt64(64 + 32 * 5))
        #expect(records.count == 3)
        #expect(summary.liveAtEnd == 2)
    }
}
