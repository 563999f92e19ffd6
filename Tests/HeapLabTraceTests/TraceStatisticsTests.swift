// TraceStatistics: counts, peak live heap with pointer-held objects (live = reachable, not
// "not yet freed"), size classes, lifetime buckets, threads, and the JSON keys.
import Testing
@testable import HeapLabTrace

private func statistics(_ text: String) throws -> TraceStatistics {
    let stats = TraceStatistics(classIndex: { $0 > 32768 ? 0 : Int(($0 + 15) / 16) },
                                classSize: { $0 == 0 ? nil : UInt64($0 * 16) })
    let validator = TraceValidator(file: "t", observer: stats)
    var reader = try TraceReader(bytes: Array(text.utf8), name: "t")
    while let r = try reader.next() {
        try validator.check(r, at: reader.location)
        stats.count(r)
    }
    try validator.finish()
    stats.finish(liveObjects: validator.liveObjects)
    return stats
}

@Suite struct TraceStatisticsTests {
    @Test func pointerHeldObjectsStayLiveAfterTheirFree() throws {
        // 2 is freed at record 4 but stays reachable through 1 until record 6.
        let s = try statistics("heaplab-trace 1\na 1 16 1\na 2 100\nw 1 0 2\nf 2\na 3 50\nw 1 0 -\nf 3\nf 1\n")
        #expect(s.peakLiveBytes == 166)
        #expect(s.peakLiveObjects == 3)
        #expect(s.objectsLiveAtEnd == 0)
        #expect(s.lifetimeHistogram == [
            .init(minRecords: 2, maxRecords: 3, count: 1),
            .init(minRecords: 4, maxRecords: 7, count: 2),
        ])
        #expect(s.records == 9 && s.allocations == 3 && s.frees == 3 && s.pointerStores == 2)
    }

    @Test func sizeClassesThreadsAndLargeObjects() throws {
        let s = try statistics("heaplab-trace 1\ns 1 x\n@ 3\na 1 8\n@ 5\n@ 7\nf 1\na 2 40000 0 1\nr 2 16\nh 2\n")
        #expect(s.threads == 2)
        #expect(s.sites == 1)
        #expect(s.holds == 1)
        #expect(s.reallocs == 1)
        #expect(s.totalBytesAllocated == 8 + 40000 + 16)
        #expect(s.sizeHistogram == [
            .init(sizeClass: 1, bytesPerObject: 16, count: 2, bytes: 24),
            .init(sizeClass: 0, bytesPerObject: nil, count: 1, bytes: 40000),
        ])
        #expect(s.peakLiveBytes == 40000)
        #expect(s.objectsLiveAtEnd == 1)
        #expect(s.json().hasPrefix("{\"records\":10,\"allocations\":2,\"frees\":1,\"reallocs\":1,\"pointer_stores\":0,\"holds\":1,\"threads\":2,\"sites\":1,\"total_bytes_allocated\":40024,\"peak_live_bytes\":40000,\"peak_live_objects\":1,\"objects_live_at_end\":1,\"size_histogram\":[{\"class\":1,\"bytes_per_obj\":16,\"count\":2,\"bytes\":24},{\"class\":0,\"bytes_per_obj\":null,\"count\":1,\"bytes\":40000}],\"lifetime_histogram\":[{\"min_records\":2,\"max_records\":3,\"count\":1}]}"))
    }

    @Test func byteTotalsDoNotOverflow() throws {
        var records: [TraceRecord] = [.header(version: 1)]
        for i in 0..<UInt64(20) { records.append(.alloc(id: i, size: 1 << 40, ptrs: 0, site: nil)) }
        let stats = TraceStatistics(classIndex: { _ in 0 }, classSize: { _ in nil })
        let validator = TraceValidator(file: "t", observer: stats)
        for (i, r) in records.enumerated() {
            try validator.check(r, at: .line(i))
            stats.count(r)
        }
        try validator.finish()
        #expect(stats.totalBytesAllocated == UInt128(20) << 40)
        #expect(stats.peakLiveBytes == UInt128(20) << 40)
    }
}
