// Helpers for the replay tests: temporary trace files, deterministic trace builders, and
// a reference model of what a lowered program must do.
import HeapLabReplay
import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

/// A trace file in /tmp, removed when the value is dropped.
final class TempTrace {
    let path: String

    init(_ text: String, suffix: String = ".htrace") {
        var template = Array("/tmp/heaplab-replay-test-XXXXXX\(suffix)".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, Int32(suffix.utf8.count)) }
        precondition(fd >= 0, "mkstemps failed")
        path = String(cString: template)
        var t = text
        t.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
                precondition(n > 0)
                done += n
            }
        }
        close(fd)
    }

    deinit { unlink(path) }
}

/// A small deterministic generator (xorshift), so tests are repeatable.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

enum TraceBuilder {
    /// A malloc-style trace (no `w`): allocations of mixed sizes, frees in random order,
    /// reallocs of pointer-free objects, some holds. `threads` > 1 spreads records over
    /// threads with `@` records, and lets any thread free any object.
    static func mallocTrace(records: Int, threads: Int = 1, seed: UInt64 = 1, maxSize: Int = 5000) -> String {
        var rng = TestRandom(seed: seed)
        var lines = ["heaplab-trace 1", "s 1 buffer"]
        var live: [(id: Int, ptrs: Int, holds: Int)] = []
        var nextID = 1
        var thread = 0
        for _ in 0..<records {
            if threads > 1 && rng.below(8) == 0 {
                thread = rng.below(threads)
                lines.append("@ \(thread)")
            }
            let r = rng.below(10)
            if live.isEmpty || r < 5 {
                let size = 1 + rng.below(rng.below(10) == 0 ? maxSize * 20 : maxSize)
                let ptrs = rng.below(3) == 0 ? min(size / 8, 4) : 0
                lines.append("a \(nextID) \(size) \(ptrs) 1")
                live.append((nextID, ptrs, 1))
                nextID += 1
            } else if r < 8 {
                let i = rng.below(live.count)
                lines.append("f \(live[i].id)")
                live[i].holds -= 1
                if live[i].holds == 0 { live.remove(at: i) }
            } else if r < 9 {
                let i = rng.below(live.count)
                if live[i].ptrs == 0 {
                    lines.append("r \(live[i].id) \(1 + rng.below(maxSize))")
                } else {
                    lines.append("h \(live[i].id)")
                    live[i].holds += 1
                }
            } else {
                let i = rng.below(live.count)
                lines.append("h \(live[i].id)")
                live[i].holds += 1
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Replays a lowered program symbolically in a given interleaving, checking that every op
/// finds its object in the state the trace's order implies. Used to test the wait scheme.
struct SymbolicReplay {
    enum Problem: Error, CustomStringConvertible {
        case bad(String)
        var description: String { if case .bad(let s) = self { return s }; return "" }
    }

    /// Per slot: live or not, and a generation counter.
    var live: [Bool]
    var progress: [Int]

    init(slots: Int, workers: Int) {
        live = Array(repeating: false, count: slots)
        progress = Array(repeating: 0, count: workers)
    }

    /// Whether worker `w`'s next entry may run now.
    func runnable(_ ops: UnsafeBufferPointer<ReplayOp>, worker w: Int) -> Bool {
        let i = progress[w]
        guard i < ops.count else { return false }
        let op = ops[i]
        if op.kind == ReplayOp.wait { return progress[Int(op.worker)] >= Int(op.arg) }
        return true
    }

    /// Runs worker `w`'s next op (a realloc with its second entry).
    mutating func step(_ ops: UnsafeBufferPointer<ReplayOp>, worker w: Int) throws {
        let op = ops[progress[w]]
        let s = Int(op.slot)
        switch op.kind {
        case ReplayOp.allocScan, ReplayOp.allocNoscan:
            guard !live[s] else { throw Problem.bad("alloc into live slot \(s) on worker \(w)") }
            live[s] = true
        case ReplayOp.free:
            guard live[s] else { throw Problem.bad("free of dead slot \(s) on worker \(w)") }
            live[s] = false
        case ReplayOp.realloc:
            guard live[s] else { throw Problem.bad("realloc of dead slot \(s) on worker \(w)") }
            progress[w] += 1
        case ReplayOp.store:
            guard live[s], live[Int(op.destinationSlot)] else { throw Problem.bad("store with a dead slot on worker \(w)") }
        case ReplayOp.storeNil:
            guard live[s] else { throw Problem.bad("store into dead slot \(s) on worker \(w)") }
        default:
            break
        }
        progress[w] += 1
    }
}

extension TraceBuilder {
    /// A garbage-collected program's trace: objects with pointer slots, `w` stores building
    /// a graph (cycles included), holds taken and dropped. Only held objects are ever
    /// named, so the trace is valid; deaths need the oracle (an object can outlive its last
    /// hold through pointers, and cycles die together).
    static func gcTrace(records: Int, threads: Int = 1, seed: UInt64 = 1) -> String {
        var rng = TestRandom(seed: seed)
        var lines = ["heaplab-trace 1"]
        // Held objects: id, ptrs, holds.
        var held: [(id: Int, ptrs: Int, holds: Int)] = []
        var nextID = 1
        for _ in 0..<records {
            if threads > 1 && rng.below(10) == 0 { lines.append("@ \(rng.below(threads))") }
            let r = rng.below(20)
            if held.count < 4 || r < 6 {
                let ptrs = rng.below(4)
                let size = ptrs * 8 + 8 + rng.below(64)
                lines.append("a \(nextID) \(size) \(ptrs)")
                held.append((nextID, ptrs, 1))
                nextID += 1
            } else if r < 13 {
                let withSlots = held.indices.filter { held[$0].ptrs > 0 }
                guard let s = withSlots.isEmpty ? nil : withSlots[rng.below(withSlots.count)] else { continue }
                let slot = rng.below(held[s].ptrs)
                if rng.below(5) == 0 {
                    lines.append("w \(held[s].id) \(slot) -")
                } else {
                    lines.append("w \(held[s].id) \(slot) \(held[rng.below(held.count)].id)")
                }
            } else if r < 18 {
                let i = rng.below(held.count)
                lines.append("f \(held[i].id)")
                held[i].holds -= 1
                if held[i].holds == 0 { held.remove(at: i) }
            } else if r < 19 {
                let i = rng.below(held.count)
                lines.append("h \(held[i].id)")
                held[i].holds += 1
            } else {
                let noscan = held.indices.filter { held[$0].ptrs == 0 }
                if let i = noscan.isEmpty ? nil : noscan[rng.below(noscan.count)] {
                    lines.append("r \(held[i].id) \(8 + rng.below(200))")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
