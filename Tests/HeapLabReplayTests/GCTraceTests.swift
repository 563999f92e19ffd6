// Traces with pointer stores: frees land exactly at the lifetime oracle's death points, and
// the replay writes every pointer into the objects' real memory.
import Testing
import HeapLabTrace
@testable import HeapLabReplay

@Suite struct GCTraceTests {
    @Test func formatExampleDiesWhereTheSpecSays() throws {
        // The example of TRACE-FORMAT.md.
        let trace = TempTrace("""
            heaplab-trace 1
            s 1 Node
            s 2 []byte
            a 1 32 2 1      # root node with two pointer slots
            a 2 32 2 1
            w 1 0 2         # 1.left = 2
            f 2             # 2 stays reachable through 1
            a 3 100 0 2     # a noscan buffer
            r 3 400
            f 3             # 3 dies here
            w 1 0 -         # 1.left = nil: 2 dies here
            f 1             # 1 dies here
            """)
        let program = try TraceLowering.lower(path: trace.path, workers: nil)
        let ops = Array(program.ops(worker: 0))
        let realloc = ReplayOp.realloc(slot: 2, oldSize: 100, newSize: 400)
        #expect(ops == [
            .alloc(slot: 0, size: 32, noscan: false),
            .alloc(slot: 1, size: 32, noscan: false),
            .store(source: 0, wordIndex: 0, destination: 1),
            .alloc(slot: 2, size: 100, noscan: true),
            realloc.0, realloc.1,
            .free(slot: 2, size: 400, noscan: true),
            .store(source: 0, wordIndex: 0, destination: nil),
            .free(slot: 1, size: 32, noscan: false),
            .free(slot: 0, size: 32, noscan: false),
        ])
        #expect(program.info.finalLiveBytes == 0)
    }

    /// The op stream in terms of allocation ordinals, and the same sequence built from the
    /// trace and the oracle's death table: they must agree event for event.
    @Test(arguments: [UInt64(1), 2, 3, 4])
    func freesFollowTheOracle(seed: UInt64) throws {
        let text = TraceBuilder.gcTrace(records: 4000, seed: seed)
        let trace = TempTrace(text)
        let program = try TraceLowering.lower(path: trace.path, workers: 1)
        let table = try LifetimeOracle.deathTable(path: trace.path)

        // From the program: alloc k, free k, store, realloc.
        var slotOrdinal = [Int](repeating: -1, count: program.info.slotCount)
        var allocs = 0
        var actual: [String] = []
        for op in program.ops(worker: 0) {
            switch op.kind {
            case ReplayOp.allocScan, ReplayOp.allocNoscan:
                slotOrdinal[Int(op.slot)] = allocs
                actual.append("a\(allocs)")
                allocs += 1
            case ReplayOp.free: actual.append("f\(slotOrdinal[Int(op.slot)])")
            case ReplayOp.store, ReplayOp.storeNil: actual.append("w")
            case ReplayOp.realloc: actual.append("r")
            default: break
            }
        }

        // From the trace and the death table.
        var expected: [String] = []
        var reader = try TraceReader.open(path: trace.path)
        var index = 0, ordinal = 0, d = 0
        while let record = try reader.next() {
            switch record {
            case .alloc: expected.append("a\(ordinal)"); ordinal += 1
            case .write: expected.append("w")
            case .realloc: expected.append("r")
            default: break
            }
            while d < table.count && table[d].recordIndex == index {
                expected.append("f\(table[d].allocOrdinal)")
                d += 1
            }
            index += 1
        }
        #expect(table.count > 100)
        #expect(actual == expected)
        #expect(program.info.frees == table.count)
    }

    @Test(arguments: [AllocatorKind.glibc, .heaplab, .null])
    func storesWriteRealPointers(_ allocator: AllocatorKind) throws {
        let text = TraceBuilder.gcTrace(records: 3000, seed: 17)
        let trace = TempTrace(text)
        let program = try TraceLowering.lower(path: trace.path, workers: 1)
        let table = try LifetimeOracle.deathTable(path: trace.path)
        let dead = Set(table.entries.map(\.allocOrdinal))

        // Model: per object (ordinal), its pointer slots' last stored target (ordinal or nil);
        // a slot never stored holds whatever the allocator left there (only the first word
        // of a new object is written), so it is not checked.
        // A target resized (`r`) after the store has moved: the stored address is the old one
        // (the replayer cannot know who points at a resized object), so such slots are
        // skipped too.
        var ordinalOf: [UInt64: Int] = [:]
        var slots: [Int: [Int??]] = [:]
        var resizes: [Int: Int] = [:]
        var resizesAtStore: [Int: [Int]] = [:]
        var reader = try TraceReader.open(path: trace.path)
        var next = 0
        while let record = try reader.next() {
            switch record {
            case .alloc(let id, _, let ptrs, _):
                ordinalOf[id] = next
                slots[next] = Array(repeating: .none, count: Int(ptrs))
                resizesAtStore[next] = Array(repeating: 0, count: Int(ptrs))
                next += 1
            case .write(let src, let slot, let dst):
                slots[ordinalOf[src]!]![Int(slot)] = .some(dst.map { ordinalOf[$0]! })
                resizesAtStore[ordinalOf[src]!]![Int(slot)] = dst.map { resizes[ordinalOf[$0]!, default: 0] } ?? 0
            case .realloc(let id, _):
                resizes[ordinalOf[id]!, default: 0] += 1
            default: break
            }
        }
        // Ordinal -> slot, from the program's alloc order.
        var slotOf: [Int] = []
        for op in program.ops(worker: 0) where op.kind == ReplayOp.allocScan || op.kind == ReplayOp.allocNoscan {
            slotOf.append(Int(op.slot))
        }

        var checked = 0
        let run: () throws(ReplayError) -> Void = {
            let m = try ReplayRunner.measure(program: program, allocator: allocator, verify: true)
            #expect(m.verified)
        }
        try run()
        _ = try ReplayRunner.run(program, makeBackend: { () throws(ReplayError) -> AnyBackendForTests in
            try AnyBackendForTests(allocator, program: program.info)
        }, inspect: { inspection in
            for (ordinal, words) in slots where !dead.contains(ordinal) {
                let p = inspection.pointer(slot: slotOf[ordinal])!
                for (k, stored) in words.enumerated() {
                    guard case .some(let target) = stored else { continue }
                    if let t = target, resizes[t, default: 0] != resizesAtStore[ordinal]![k] { continue }
                    let stored = p.load(fromByteOffset: 8 * k, as: UnsafeMutableRawPointer?.self)
                    let want = target.map { inspection.pointer(slot: slotOf[$0]) } ?? nil
                    #expect(stored == want, "object \(ordinal) slot \(k)")
                    checked += 1
                }
            }
        })
        #expect(checked > 50)
    }
}

/// The three in-process back ends behind one concrete type, for tests that need to pick one
/// by name and still inspect the pointer table.
final class AnyBackendForTests: ReplayBackend {
    enum Handle: ReplayAllocator {
        case malloc(MallocBackend.Allocator)
        case null(NullBackend.Allocator)
        case heaplab(HeapLabBackend.Allocator)

        mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
            switch self {
            case .malloc(var a): defer { self = .malloc(a) }; return a.allocate(size: size, noscan: noscan)
            case .null(var a): defer { self = .null(a) }; return a.allocate(size: size, noscan: noscan)
            case .heaplab(var a): defer { self = .heaplab(a) }; return a.allocate(size: size, noscan: noscan)
            }
        }
        mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool) {
            switch self {
            case .malloc(var a): a.free(pointer, size: size, noscan: noscan)
            case .null(var a): a.free(pointer, size: size, noscan: noscan)
            case .heaplab(var a): a.free(pointer, size: size, noscan: noscan)
            }
        }
        mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
            switch self {
            case .malloc(var a): defer { self = .malloc(a) }; return a.reallocate(pointer, oldSize: oldSize, newSize: newSize)
            case .null(var a): defer { self = .null(a) }; return a.reallocate(pointer, oldSize: oldSize, newSize: newSize)
            case .heaplab(var a): defer { self = .heaplab(a) }; return a.reallocate(pointer, oldSize: oldSize, newSize: newSize)
            }
        }
    }

    let malloc = MallocBackend()
    let null: NullBackend?
    let heaplab: HeapLabBackend?
    let kind: AllocatorKind

    init(_ kind: AllocatorKind, program: ReplayProgramInfo) throws(ReplayError) {
        self.kind = kind
        null = kind == .null ? try NullBackend(program: program) : nil
        heaplab = kind == .heaplab ? try HeapLabBackend() : nil
    }

    func makeAllocator(worker: Int) throws(ReplayError) -> Handle {
        if let null { return .null(try null.makeAllocator(worker: worker)) }
        if let heaplab { return .heaplab(try heaplab.makeAllocator(worker: worker)) }
        return .malloc(try malloc.makeAllocator(worker: worker))
    }
}
