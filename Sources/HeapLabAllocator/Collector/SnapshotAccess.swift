// What a heap snapshot of the collector's heap reads (HeapLabReplay's SnapshotCapture.swift),
// as a read-only extension: the pacer's figures, the phase, the mark bits, each span's
// allocation state, and each mutator's roots. Nothing here changes the collector.
//
// Precondition for everything below except `snapshotState`: the world is stopped and
// marking is complete, i.e. the caller runs inside `GCConfiguration.onMarkComplete`. Then:
//   - no mutator runs (all parked in a safepoint), no mark worker is in a slice, and the
//     sweeper is idle (sweep termination ran before the cycle's mark setup, and it never
//     sweeps while phase != off);
//   - a slot is *allocated* iff index < freeindex or its allocBits bit is set (Go's isFree,
//     negated): allocBits is the live set the last sweep left, freeindex the allocation
//     cursor since then (GC mode has no free stacks);
//   - a slot is *marked* iff its gcmarkBits bit is set: reachable at the start of the mark
//     or allocated since (allocate-black); the sweep will free allocated, unmarked slots.
// A large object's span has one slot: allocated while the span is in use, marked by bit 0.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The collector's state as a snapshot records it.
public struct GCSnapshotState: Sendable, Equatable {
    /// Cycles completed (a cycle in mark or mark termination is number `completedCycles + 1`).
    public var completedCycles: Int
    /// 0 off, 1 mark, 2 mark termination (the collector's GCPhase).
    public var phase: UInt32
    /// Whether the last cycle's sweep is still under way.
    public var sweeping: Bool
    /// Heap goal of the current (or, when off, the next) cycle.
    public var heapGoal: Int
    /// Go's heapLive: bytes allocated since the last mark plus what that mark found live.
    public var heapLive: Int
    public var gogc: Int?
    public var memoryLimit: Int?
    public var stopTheWorld: Bool
}

extension Collector {
    /// The pacer's figures and the phase. Racy unless the world is stopped (each field is
    /// read once; the goal is written only by the coordinator at mark termination).
    public var snapshotState: GCSnapshotState {
        GCSnapshotState(completedCycles: cycleNumber.load(ordering: .acquiring),
                        phase: phaseWord.load(ordering: .acquiring),
                        sweeping: !sweepDone,
                        heapGoal: pacer.goal, heapLive: heapLive.load(ordering: .relaxed),
                        gogc: configuration.gogc, memoryLimit: configuration.memoryLimit,
                        stopTheWorld: configuration.stopTheWorld)
    }

    /// Whether the object containing `p` is marked in the current cycle (world stopped, mark
    /// complete). False for an address outside any in-use span.
    public func isMarkedForSnapshot(_ p: UnsafeRawPointer) -> Bool {
        let addr = UInt(bitPattern: p)
        guard let span = heap.state.spanOf(addr), span.pointee.state == SpanState.inUse.rawValue else { return false }
        if span.pointee.divMul == 0 { return span.pointee.gcmarkBits[0] & 1 != 0 }
        let index = Int(span.objectIndex(ofOffset: addr &- span.pointee.startAddr))
        guard index < Int(span.pointee.nelems) else { return false }
        return span.isMarked(index)
    }

    /// Every in-use span in address order, with `allocated` holding the allocation bits (see
    /// the file comment) and `marked` this cycle's mark bits, both `ceil(slots / 64)` words.
    /// World stopped, mark complete.
    public func forEachSpanForSnapshot(_ body: (_ span: SpanInfo, _ marked: [UInt64]) -> Void) {
        heap.forEachSpanRecord { span in
            guard span.pointee.state == SpanState.inUse.rawValue else { return }
            let words = span.pointee.bitmapWords
            let large = span.pointee.divMul == 0
            let nelems = Int(span.pointee.nelems)
            var allocated = [UInt64](repeating: 0, count: max(words, 1))
            var marked = [UInt64](repeating: 0, count: max(words, 1))
            if large {
                allocated[0] = 1
                marked[0] = span.pointee.gcmarkBits[0] & 1
            } else {
                let below = Int(span.pointee.freeindex)
                for w in 0..<words {
                    let first = w << 6
                    let inSpan = min(64, nelems - first)
                    let valid: UInt64 = inSpan >= 64 ? ~0 : (UInt64(1) << UInt64(inSpan)) - 1
                    var cursor: UInt64 = 0
                    if below >= first + 64 { cursor = ~0 } else if below > first { cursor = (UInt64(1) << UInt64(below - first)) - 1 }
                    allocated[w] = (span.pointee.allocBits[w] | cursor) & valid
                    marked[w] = span.pointee.gcmarkBits[w] & valid
                }
            }
            body(SpanInfo(start: span.pointee.startAddr, pages: Int(span.pointee.npages),
                          sizeClass: span.pointee.sizeClass, noscan: span.pointee.noscan,
                          elemSize: large ? Int(span.pointee.npages) << AllocatorConstants.pageShift : Int(span.pointee.elemSize),
                          slots: large ? 1 : nelems, allocated: allocated,
                          cached: span.pointee.owner != 0, needzero: span.pointee.needzero != 0),
                 marked)
        }
    }
}

extension Mutator {
    /// Calls `body` with each object this mutator holds and its hold count (its roots). Safe
    /// while the world is stopped, or from the mutator's own thread.
    public func forEachRoot(_ body: (UnsafeRawPointer, Int) -> Void) {
        forEachRootAddress { object, count in body(UnsafeRawPointer(bitPattern: object)!, count) }
    }
}
