// The lifetime oracle: hand-written traces with known death points (chains, cycles, a cut
// in the middle of a chain, ID reuse, Merlin timestamps), deep structures (no recursion),
// and random small-graph traces checked against a naive oracle that runs a full
// reachability pass after every record. The same random traces check that the validator
// accepts and rejects exactly what the naive model does.
import Testing
@testable import HeapLabTrace

private func deaths(_ text: String) throws -> DeathTable {
    try LifetimeOracle.deathTable(records: readAll(text))
}

private func pairs(_ table: DeathTable) -> [[Int]] {
    table.entries.map { [$0.recordIndex, $0.allocOrdinal] }
}

@Suite struct LifetimeOracleTests {
    static let h = "heaplab-trace 1\n"

    @Test func formatExample() throws {
        let table = try deaths(TraceTextTests.example)
        // records: 0 header, 1-2 sites, 3 a1, 4 a2, 5 w, 6 f2, 7 a3, 8 r3, 9 f3, 10 w 1 0 -, 11 f1
        #expect(pairs(table) == [[9, 2], [10, 1], [11, 0]])
        #expect(table.allocations == 3)
        #expect(table.objectsLiveAtEnd == 0)
        #expect(table.records == 12)
    }

    @Test func chainDiesWithItsHead() throws {
        let t = Self.h + "a 1 8 1\na 2 8 1\na 3 8 1\na 4 8 1\nw 1 0 2\nw 2 0 3\nw 3 0 4\nf 2\nf 3\nf 4\nf 1\n"
        #expect(pairs(try deaths(t)) == [[11, 0], [11, 1], [11, 2], [11, 3]])
    }

    @Test func cutInTheMiddleOfAChain() throws {
        let t = Self.h + "a 1 8 1\na 2 8 1\na 3 8 1\na 4 8 1\nw 1 0 2\nw 2 0 3\nw 3 0 4\nf 2\nf 3\nf 4\nw 2 0 -\nf 1\n"
        #expect(pairs(try deaths(t)) == [[11, 2], [11, 3], [12, 0], [12, 1]])
    }

    @Test func cycleDiesWhenItsLastHoldGoes() throws {
        // The cycle is only found at the end of the trace, but its deaths are listed at
        // record 6, before the later death at record 8.
        let t = Self.h + "a 1 8 1\na 2 8 1\nw 1 0 2\nw 2 0 1\nf 1\nf 2\na 3 8\nf 3\n"
        let table = try deaths(t)
        #expect(pairs(table) == [[6, 0], [6, 1], [8, 2]])
    }

    @Test func cycleHangingOffAChainDiesAtTheCutNotAtItsFrees() throws {
        // 1 -> 2 <-> 3; 2 and 3 lose their holds at 7 and 8; the cut at 11 kills both.
        let t = Self.h + "a 1 8 1\na 2 8 1\na 3 8 1\nw 1 0 2\nw 2 0 3\nw 3 0 2\nf 2\nf 3\na 4 8\nf 4\nw 1 0 -\nf 1\n"
        #expect(pairs(try deaths(t)) == [[10, 3], [11, 1], [11, 2], [12, 0]])
    }

    @Test func deadCycleReachingALiveObjectDoesNotKillIt() throws {
        // 1 <-> 2 points at 3, which keeps its own hold; 3 dies only at its f.
        let t = Self.h + "a 1 8 1\na 2 16 2\na 3 8\nw 1 0 2\nw 2 0 1\nw 2 1 3\nf 1\nf 2\na 4 8\nf 3\n"
        let table = try deaths(t)
        #expect(pairs(table) == [[8, 0], [8, 1], [10, 2]])
        #expect(table.objectsLiveAtEnd == 1)
    }

    @Test func idReuse() throws {
        let t = Self.h + "a 1 8\nf 1\na 1 8\nf 1\na 1 16 1\na 2 8\nw 1 0 2\nf 2\nw 1 0 -\na 2 8\n"
        let table = try deaths(t)
        #expect(pairs(table) == [[2, 0], [4, 1], [9, 3]])
        #expect(table.objectsLiveAtEnd == 2)
        #expect(table.allocations == 5)
    }

    @Test func reusingTheIDOfADeadCycleMember() throws {
        // Object 2 (ordinal 1) is in a dead cycle when its ID is reused at record 7.
        let t = Self.h + "a 1 8 1\na 2 8 1\nw 1 0 2\nw 2 0 1\nf 2\nf 1\na 2 8\nf 2\n"
        #expect(pairs(try deaths(t)) == [[6, 0], [6, 1], [8, 2]])
    }

    @Test func pointerHeldObjectDiesWithItsParent() throws {
        #expect(pairs(try deaths(Self.h + "a 1 16 1\na 2 8\nw 1 0 2\nf 2\nf 1\n")) == [[5, 0], [5, 1]])
    }

    @Test func overwritingASlotKillsTheOldTarget() throws {
        let t = Self.h + "a 1 16 1\na 2 8\na 3 8\nw 1 0 2\nf 2\nw 1 0 3\nf 3\nf 1\n"
        #expect(pairs(try deaths(t)) == [[6, 1], [8, 0], [8, 2]])
    }

    /// 200 000-object chain and ring: the cascade, backward search and full pass are
    /// iterative, so depth does not matter.
    @Test func deepStructures() throws {
        let n = 200_000
        var records: [TraceRecord] = [.header(version: 1)]
        for i in 0..<UInt64(n) { records.append(.alloc(id: i, size: 8, ptrs: 1, site: nil)) }
        for i in 0..<UInt64(n - 1) { records.append(.write(src: i, slot: 0, dst: i + 1)) }
        for i in 1..<UInt64(n) { records.append(.free(id: i)) }
        let chainEnd = records.count
        records.append(.free(id: 0))
        let table = try LifetimeOracle.deathTable(records: records)
        #expect(table.count == n)
        #expect(table.entries.allSatisfy { $0.recordIndex == chainEnd })

        // A ring: closing it makes every object reachable only through the ring.
        var ring: [TraceRecord] = [.header(version: 1)]
        for i in 0..<UInt64(n) { ring.append(.alloc(id: i, size: 8, ptrs: 1, site: nil)) }
        for i in 0..<UInt64(n) { ring.append(.write(src: i, slot: 0, dst: (i + 1) % UInt64(n))) }
        for i in 1..<UInt64(n) { ring.append(.free(id: i)) }
        ring.append(.hold(id: UInt64(n - 1)))     // backward search across the whole ring
        ring.append(.free(id: UInt64(n - 1)))
        let cut = ring.count
        ring.append(.free(id: 0))
        ring.append(.alloc(id: 7, size: 8, ptrs: 0, site: nil))   // reuse: search finds the ring dead
        let ringTable = try LifetimeOracle.deathTable(records: ring)
        #expect(ringTable.count == n)
        #expect(ringTable.entries.allSatisfy { $0.recordIndex == cut })
        #expect(ringTable.objectsLiveAtEnd == 1)
    }

    @Test func textAndBinaryGiveTheSameTable() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var rng = SeededRandom(seed: 4242)
        let records = RandomHeapTrace.generate(&rng, length: 3000, ids: 40).records
        let textPath = dir.write("r.htrace", bytes: try encode(records, .text, dir: dir, name: "x1"))
        let binaryPath = dir.write("r.hbtrace", bytes: try encode(records, .binary, dir: dir, name: "x2"))
        let a = try LifetimeOracle.deathTable(path: textPath)
        let b = try LifetimeOracle.deathTable(path: binaryPath)
        #expect(a == b)
        #expect(a == (try LifetimeOracle.deathTable(records: records)))
        #expect(a.count > 100)
    }

    /// Random small-graph traces: the oracle equals a naive full-reachability oracle, with
    /// the default pass policy and with one that gives up searching and collects constantly.
    @Test(arguments: 0..<150)
    func randomTracesMatchNaiveOracle(seed: Int) throws {
        var rng = SeededRandom(seed: UInt64(seed) &+ 1000)
        let ids = [4, 8, 16, 40][seed % 4]
        let trace = RandomHeapTrace.generate(&rng, length: 400, ids: ids)
        for (growth, search) in [(65536, 4096), (0, 0), (2, 1)] {
            let table = try LifetimeOracle.deathTable(records: trace.records, file: "r", growthSlack: growth,
                                                      searchSlack: search)
            #expect(table.entries == trace.model.deaths, "seed \(seed) slack \(growth)/\(search)")
            #expect(table.objectsLiveAtEnd == trace.model.objects.count)
            #expect(table.allocations == trace.model.allocations)
        }
    }

    /// Invalid records picked during generation are rejected at exactly that record, and
    /// the valid ones before it are accepted.
    @Test(arguments: 0..<60)
    func validatorAgreesWithNaiveModelOnValidity(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed) &+ 5000)
        let trace = RandomHeapTrace.generate(&rng, length: 250, ids: [6, 12][seed % 2], invalidSamples: 25)
        #expect(!trace.invalid.isEmpty)
        for (prefixLength, bad) in trace.invalid {
            let records = Array(trace.records[0..<prefixLength]) + [bad]
            for (growth, search) in [(65536, 4096), (0, 0)] {
                do {
                    _ = try LifetimeOracle.deathTable(records: records, file: "r", growthSlack: growth, searchSlack: search)
                    Issue.record("seed \(seed): \(bad) after \(prefixLength) records was accepted")
                } catch {
                    #expect(error.location == .line(prefixLength), "seed \(seed): \(error)")
                }
            }
        }
    }
}

/// The naive reference: the heap as plain dictionaries, and a full reachability pass after
/// every record.
struct NaiveHeap {
    struct Object {
        var ordinal: Int
        var holds: Int
        var ptrs: Int
        var slots: [UInt64: UInt64] = [:]
    }

    var objects: [UInt64: Object] = [:]
    var sites: Set<UInt64> = []
    var allocations = 0
    var deaths: [DeathTable.Entry] = []

    func isValid(_ record: TraceRecord) -> Bool {
        switch record {
        case .header: return false
        case .site(let id, _): return !sites.contains(id)
        case .thread: return true
        case .alloc(let id, _, _, let site): return objects[id] == nil && (site.map { sites.contains($0) } ?? true)
        case .free(let id): return (objects[id]?.holds ?? 0) > 0
        case .hold(let id): return objects[id] != nil
        case .write(let src, let slot, let dst):
            guard let s = objects[src], slot < UInt64(s.ptrs) else { return false }
            return dst.map { objects[$0] != nil } ?? true
        case .realloc(let id, _): return objects[id].map { $0.ptrs == 0 } ?? false
        }
    }

    mutating func apply(_ record: TraceRecord, index: Int) {
        switch record {
        case .site(let id, _): sites.insert(id)
        case .alloc(let id, _, let ptrs, _):
            objects[id] = Object(ordinal: allocations, holds: 1, ptrs: Int(ptrs))
            allocations += 1
        case .free(let id): objects[id]!.holds -= 1
        case .hold(let id): objects[id]!.holds += 1
        case .write(let src, let slot, let dst): objects[src]!.slots[slot] = dst
        default: break
        }
        var reached = Set(objects.filter { $0.value.holds > 0 }.map(\.key))
        var stack = Array(reached)
        while let x = stack.popLast() {
            for target in objects[x]!.slots.values where !reached.contains(target) {
                reached.insert(target)
                stack.append(target)
            }
        }
        let dead = objects.filter { !reached.contains($0.key) }.map(\.value.ordinal).sorted()
        for ordinal in dead { deaths.append(DeathTable.Entry(recordIndex: index, allocOrdinal: ordinal)) }
        objects = objects.filter { reached.contains($0.key) }
    }
}

/// Random valid traces over a small ID space, built against `NaiveHeap`.
struct RandomHeapTrace {
    var records: [TraceRecord] = [.header(version: 1)]
    var model = NaiveHeap()
    /// (number of valid records before it, an invalid record) pairs.
    var invalid: [(Int, TraceRecord)] = []

    static func generate(_ rng: inout SeededRandom, length: Int, ids: Int, invalidSamples: Int = 0) -> RandomHeapTrace {
        var t = RandomHeapTrace()
        var attempts = 0
        while t.records.count < length && attempts < length * 20 {
            attempts += 1
            let candidate = t.candidate(&rng, ids: UInt64(ids))
            if t.model.isValid(candidate) {
                t.model.apply(candidate, index: t.records.count)
                t.records.append(candidate)
            } else if t.invalid.count < invalidSamples && rng.next() % 3 == 0 {
                t.invalid.append((t.records.count, candidate))
            }
        }
        return t
    }

    func candidate(_ rng: inout SeededRandom, ids: UInt64) -> TraceRecord {
        let live = model.objects.keys.sorted()
        func pick() -> UInt64 {
            if !live.isEmpty && rng.next() % 8 != 0 { return live[Int(rng.next() % UInt64(live.count))] }
            return rng.next() % ids
        }
        switch rng.next() % 100 {
        case 0..<25:
            let ptrs = rng.next() % 4
            let site: UInt64? = rng.next() % 4 == 0 ? rng.next() % 4 : nil
            return .alloc(id: rng.next() % ids, size: 8 * max(ptrs, 1) + rng.next() % 9, ptrs: ptrs, site: site)
        case 25..<45: return .free(id: pick())
        case 45..<50: return .hold(id: pick())
        case 50..<88:
            let dst: UInt64? = rng.next() % 5 == 0 ? nil : pick()
            return .write(src: pick(), slot: rng.next() % 4, dst: dst)
        case 88..<94: return .realloc(id: pick(), size: 1 + rng.next() % 100)
        case 94..<97: return .site(id: rng.next() % 4, name: "site")
        default: return .thread(rng.next() % 3)
        }
    }
}

/// An observer that implements only the per-event methods (the protocol's default
/// `observe(_:)` dispatches to them).
private final class PerEventObserver: LifetimeObserver {
    var allocated: [Int] = []
    var died: [DeathTable.Entry] = []
    var resized: [(Int, UInt64, UInt64)] = []
    func objectAllocated(record: Int, ordinal: Int, size: UInt64) { allocated.append(record) }
    func objectResized(record: Int, ordinal: Int, oldSize: UInt64, newSize: UInt64) {
        resized.append((ordinal, oldSize, newSize))
    }
    func objectDied(record: Int, ordinal: Int, size: UInt64, allocRecord: Int) {
        died.append(DeathTable.Entry(recordIndex: record, allocOrdinal: ordinal))
    }
}

@Suite struct LifetimeObserverTests {
    @Test func perEventMethodsSeeEveryEventInOrder() throws {
        let records = try readAll(TraceTextTests.example)
        let observer = PerEventObserver()
        let validator = TraceValidator(file: "x", observer: observer)
        for (i, r) in records.enumerated() { try validator.check(r, at: .line(i + 1)) }
        try validator.finish()
        #expect(observer.allocated == [3, 4, 7])
        #expect(observer.resized.count == 1)
        #expect(observer.resized.first.map { [$0.0, Int($0.1), Int($0.2)] } == [2, 100, 400])
        #expect(observer.died == (try LifetimeOracle.deathTable(records: records)).entries)
    }

    @Test func hotStructSizesArePinned() {
        #expect(MemoryLayout<ObjectEntry>.stride == 96)
        #expect(MemoryLayout<EdgeEntry>.stride == 32)
        #expect(MemoryLayout<LifetimeEvent>.stride == 48)
        #expect(MemoryLayout<ReaderState>.stride <= 128)
    }
}
