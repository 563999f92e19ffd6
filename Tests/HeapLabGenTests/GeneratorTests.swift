// Generators: every generator's output is a valid trace for several seeds (checked by the
// independent TraceCheck), has the shape it promises (threads, pointer stores, cross-thread
// frees), and the same seed gives the same records and the same file bytes in both encodings.
import Foundation
import HeapLabGen
import HeapLabTrace
import Testing

/// Small instances of every generator.
let smallGenerators: [(String, any TraceGenerator)] = {
    var gc = GCBench()
    gc.stretchDepth = 6; gc.longLivedDepth = 5; gc.minDepth = 2; gc.maxDepth = 6; gc.arraySize = 1000
    var bt = BinaryTrees()
    bt.depth = 6; bt.threads = 3
    var larson = Larson()
    larson.threads = 4; larson.objects = 50; larson.ops = 3000; larson.rounds = 5
    var xm = Xmalloc()
    xm.threads = 4; xm.ops = 3000; xm.queue = 200
    var lru = LRUCache()
    lru.threads = 2; lru.capacity = 60; lru.keys = 240; lru.ops = 3000; lru.buckets = 16
    var graph = RandomGraph()
    graph.threads = 3; graph.ops = 4000; graph.roots = 16
    return [("gcbench", gc), ("binary-trees", bt), ("larson", larson), ("xmalloc", xm), ("lru", lru), ("random-graph", graph)]
}()

/// Which OS-thread... which trace thread allocated each ID, and which freed it.
func crossThreadFrees(_ records: [TraceRecord]) -> Int {
    var thread: UInt64 = 0
    var allocatedOn: [UInt64: UInt64] = [:]
    var cross = 0
    for record in records {
        switch record {
        case .thread(let t): thread = t
        case .alloc(let id, _, _, _): allocatedOn[id] = thread
        case .free(let id): if allocatedOn[id] != thread { cross += 1 }
        default: break
        }
    }
    return cross
}

/// Runs HeapLabTrace's TraceValidator (the project's own rule checker and lifetime oracle).
func validatorProblem(_ records: [TraceRecord], name: String) -> String? {
    let validator = TraceValidator(file: name)
    do {
        for (i, record) in records.enumerated() { try validator.check(record, at: .line(i + 1)) }
        try validator.finish()
        return nil
    } catch {
        return error.description
    }
}

/// Every generator at its default size.
let defaultGenerators: [(String, any TraceGenerator)] = [
    ("gcbench", GCBench()), ("binary-trees", BinaryTrees()), ("larson", Larson()),
    ("xmalloc", Xmalloc()), ("lru", LRUCache()), ("random-graph", RandomGraph()),
]

@Suite struct GeneratorTests {
    @Test(arguments: 0..<6)
    func defaultSizesPassTheTraceValidatorForSeveralSeeds(index: Int) throws {
        let (name, generator) = defaultGenerators[index]
        #expect(generator.validate() == nil)
        for seed: UInt64 in [0, 1, 2] {
            let records = try generator.records(seed: seed)
            #expect(validatorProblem(records, name: "\(name)-\(seed)") == nil)
        }
    }

    @Test func randomNumbersMatchTheReferenceAlgorithm() {
        // Reference values from an independent implementation of SplitMix64 + xoshiro256**.
        var random = GenRandom(seed: 42)
        #expect(random.next() == 0x15780b2e0c2ec716)
        #expect(random.next() == 0x6104d9866d113a7e)
        #expect(random.next() == 0xae17533239e499a1)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[random.index(7)] += 1 }
        #expect(counts.allSatisfy { $0 > 9_000 && $0 < 11_000 })
    }

    @Test(arguments: 0..<6)
    func everyGeneratorWritesValidTraces(index: Int) throws {
        let (name, generator) = smallGenerators[index]
        #expect(generator.validate() == nil)
        for seed: UInt64 in [1, 2, 3, 12345] {
            let records = try generator.records(seed: seed)
            #expect(validatorProblem(records, name: name) == nil)
            // The independent (slow, quadratic) checker on one seed.
            var check = TraceCheck()
            let problem = seed == 1 ? check.run(records) : nil
            #expect(problem == nil, "\(name) seed \(seed): \(problem ?? "")")
            if seed != 1 { continue }
            #expect(records.count > 1000, "\(name)")
            switch name {
            case "gcbench", "lru", "random-graph", "binary-trees":
                #expect(check.writes > 100, "\(name) stores pointers")
            default:
                #expect(check.writes == 0)
            }
            switch name {
            case "larson", "xmalloc":
                #expect(crossThreadFrees(records) > 100, "\(name) frees across threads")
                #expect(check.threads.count == 4)
            case "binary-trees", "random-graph":
                #expect(check.threads.count == 3)
            case "lru":
                #expect(check.threads.count == 2)
            default:
                #expect(check.threads == [0])
            }
            if name == "random-graph" { #expect(check.holdsTaken > 50) }
        }
    }

    @Test(arguments: 0..<6)
    func sameSeedSameRecordsDifferentSeedDifferentRecords(index: Int) throws {
        let (name, generator) = smallGenerators[index]
        let a = try generator.records(seed: 7)
        let b = try generator.records(seed: 7)
        #expect(a == b)
        let c = try generator.records(seed: 8)
        if name == "gcbench" {
            #expect(a == c) // GCBench makes no random choices
        } else {
            #expect(a != c, "\(name) ignores its seed")
        }
    }

    @Test func gcbenchMatchesBoehmsCounts() throws {
        var gc = GCBench()
        gc.stretchDepth = 6; gc.longLivedDepth = 5; gc.minDepth = 2; gc.maxDepth = 6; gc.arraySize = 1000
        let records = try gc.records(seed: 0)
        let allocations = records.filter { if case .alloc = $0 { return true } else { return false } }.count
        func treeSize(_ d: Int) -> Int { (1 << (d + 1)) - 1 }
        var expected = treeSize(6) + treeSize(5) + 1   // stretch, long-lived, array
        for d in stride(from: 2, through: 6, by: 2) {
            expected += 2 * (2 * treeSize(6) / treeSize(d)) * treeSize(d)
        }
        #expect(allocations == expected)
        #expect(records.contains(.alloc(id: UInt64(treeSize(6) + treeSize(5) + 1), size: 8000, ptrs: 0, site: 2)))
    }

    @Test func writtenFilesAreByteIdenticalAndReadBack() throws {
        let directory = NSTemporaryDirectory() + "heaplab-gen-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (name, generator) in smallGenerators {
            for encoding in [TraceEncoding.text, .binary] {
                var bytes: [Data] = []
                for copy in 0..<2 {
                    let path = "\(directory)/\(name)-\(encoding)-\(copy)"
                    let writer = try TraceWriter(path: path, encoding: encoding)
                    _ = try generator.run(seed: 99) { record throws(InputError) in try writer.write(record) }
                    try writer.finish()
                    bytes.append(try Data(contentsOf: URL(fileURLWithPath: path)))
                    if copy == 0 {
                        var reader = try TraceReader.open(path: path)
                        var read: [TraceRecord] = []
                        while let record = try reader.next() { read.append(record) }
                        let expected = try generator.records(seed: 99)
                        #expect(read == expected || read == Array(expected.dropFirst()), "\(name) \(encoding)")
                    }
                }
                #expect(bytes[0] == bytes[1], "\(name) \(encoding)")
            }
        }
    }

    @Test func theIndependentCheckerCatchesBrokenTraces() {
        let base: [TraceRecord] = [
            .header(version: 1), .alloc(id: 1, size: 16, ptrs: 2, site: nil), .alloc(id: 2, size: 8, ptrs: 0, site: nil),
            .write(src: 1, slot: 0, dst: 2), .free(id: 2),
        ]
        #expect(TraceCheck.problem(in: base) == nil)
        #expect(TraceCheck.problem(in: base + [.hold(id: 2)]) == nil)                                 // reachable via 1
        #expect(TraceCheck.problem(in: base + [.write(src: 1, slot: 0, dst: nil), .hold(id: 2)]) != nil) // 2 died at the store
        #expect(TraceCheck.problem(in: base + [.free(id: 2)]) != nil)                                 // no hold left
        #expect(TraceCheck.problem(in: base + [.write(src: 1, slot: 2, dst: nil)]) != nil)            // slot out of range
        #expect(TraceCheck.problem(in: base + [.free(id: 1), .hold(id: 2)]) != nil)                   // 1 died, and 2 with it
        #expect(TraceCheck.problem(in: base + [.alloc(id: 1, size: 8, ptrs: 0, site: nil)]) != nil)   // ID 1 is live
    }

    @Test func parameterChecksRejectNonsense() {
        var bt = BinaryTrees()
        bt.threads = 300
        #expect(bt.validate() != nil)
        var lru = LRUCache()
        lru.keys = lru.capacity
        #expect(lru.validate() != nil)
        var larson = Larson()
        larson.minSize = 0
        #expect(larson.validate() != nil)
        var gc = GCBench()
        gc.maxDepth = gc.stretchDepth + 1
        #expect(gc.validate() != nil)
    }
}
