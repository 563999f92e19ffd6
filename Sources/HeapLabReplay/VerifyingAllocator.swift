// A checking wrapper around any back end (`heaplab replay --verify`, and the tests).
//
// It forwards every call to the real allocator underneath and checks what comes back:
//   - every block is aligned (8 bytes from 16 bytes up; below that, to the size's largest
//     power-of-two divisor, Go's tiny-allocator rule) and overlaps no other live block (an
//     exact interval check);
//   - every block is writable over its whole length (it is filled with a pattern byte; for
//     blocks over 1 MiB, the first 1 MiB and the last 64 KiB);
//   - a free names a live block, with the size it was allocated or last resized to;
//   - a realloc keeps the first min(old, new) bytes (compared by checksum over up to 4 KiB).
// The first failure is recorded as a message (no trap), the replay goes on.
//
// The live-block set is a sorted array of [start, end) intervals under a Mutex, shared by
// all workers: O(live blocks) per insertion, so meant for traces of up to ~10^5 live
// objects, and never for timing (the lock and the fill dominate).

import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Live blocks and the first problem found, shared by every worker of one verified replay.
public final class VerificationLog: @unchecked Sendable {
    struct State {
        var starts: [UInt] = []
        var ends: [UInt] = []
        var firstFailure: String? = nil
        var allocations = 0
        var frees = 0
    }
    let state = PthreadLocked(State())

    public init() {}

    /// The first problem found, nil if none.
    public var failure: String? { state.withLock { $0.firstFailure } }
    public var allocations: Int { state.withLock { $0.allocations } }
    public var frees: Int { state.withLock { $0.frees } }
    /// Blocks allocated and not freed.
    public var liveBlocks: Int { state.withLock { $0.starts.count } }

    func fail(_ message: String) {
        state.withLock { if $0.firstFailure == nil { $0.firstFailure = message } }
    }

    /// Index of the first interval whose start is >= `address`.
    static func lowerBound(_ starts: [UInt], _ address: UInt) -> Int {
        var lo = 0, hi = starts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if starts[mid] < address { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func insert(_ p: UnsafeMutableRawPointer, size: Int) {
        let start = UInt(bitPattern: p)
        let end = start + UInt(size)
        state.withLock { s in
            s.allocations += 1
            let i = Self.lowerBound(s.starts, start)
            if i > 0 && s.ends[i - 1] > start {
                s.firstFailure = s.firstFailure ?? "block \(p) (\(size) bytes) overlaps a live block at 0x\(String(s.starts[i - 1], radix: 16))"
            }
            if i < s.starts.count && s.starts[i] < end {
                s.firstFailure = s.firstFailure ?? "block \(p) (\(size) bytes) overlaps a live block at 0x\(String(s.starts[i], radix: 16))"
            }
            s.starts.insert(start, at: i)
            s.ends.insert(end, at: i)
        }
    }

    func remove(_ p: UnsafeMutableRawPointer, size: Int, what: String) {
        let start = UInt(bitPattern: p)
        state.withLock { s in
            let i = Self.lowerBound(s.starts, start)
            guard i < s.starts.count, s.starts[i] == start else {
                s.firstFailure = s.firstFailure ?? "\(what) of \(p), which is not a live block"
                return
            }
            if s.ends[i] - start != UInt(size) {
                s.firstFailure = s.firstFailure ?? "\(what) of \(p) with size \(size), but it has \(s.ends[i] - start) bytes"
            }
            s.starts.remove(at: i)
            s.ends.remove(at: i)
            s.frees += 1
        }
    }
}

/// Wraps a back end's handles in `VerifyingAllocator`.
public struct VerifyingBackend<Base: ReplayBackend>: ReplayBackend {
    public let base: Base
    public let log: VerificationLog

    public init(_ base: Base, log: VerificationLog = VerificationLog()) {
        self.base = base
        self.log = log
    }

    public func makeAllocator(worker: Int) throws(ReplayError) -> VerifyingAllocator<Base.Allocator> {
        VerifyingAllocator(base: try base.makeAllocator(worker: worker), log: log)
    }

    public func releaseAllocator(_ allocator: inout VerifyingAllocator<Base.Allocator>, worker: Int) {
        base.releaseAllocator(&allocator.base, worker: worker)
    }

    public func statistics() -> [(String, Int)] { base.statistics() }
    public func failureReason() -> String? { base.failureReason() }
    public func problemAfterReplay() -> String? { log.failure ?? base.problemAfterReplay() }
}

/// One worker's checked handle.
public struct VerifyingAllocator<Base: ReplayAllocator>: ReplayAllocator {
    var base: Base
    let log: VerificationLog
    var fill: UInt8 = 0x5a

    static var fullFillLimit: Int { 1 << 20 }
    static var tailFill: Int { 1 << 16 }

    mutating func check(_ p: UnsafeMutableRawPointer, size: Int, from offset: Int) {
        // Blocks of 16 bytes or more: 8-byte aligned. Smaller ones: aligned to the largest
        // power of two (up to 8) dividing the size, which is what Go's tiny allocator
        // promises and every malloc exceeds.
        let alignment = size >= 16 ? 8 : min(8, 1 << size.trailingZeroBitCount)
        if UInt(bitPattern: p) % UInt(alignment) != 0 {
            log.fail("block \(p) of \(size) bytes is not \(alignment)-byte aligned")
        }
        log.insert(p, size: size)
        fill = fill &+ 1
        let from = min(offset, size)
        if size <= Self.fullFillLimit {
            (p + from).initializeMemory(as: UInt8.self, repeating: fill, count: size - from)
        } else {
            if from < Self.fullFillLimit {
                (p + from).initializeMemory(as: UInt8.self, repeating: fill, count: Self.fullFillLimit - from)
            }
            let tail = max(from, size - Self.tailFill)
            (p + tail).initializeMemory(as: UInt8.self, repeating: fill, count: size - tail)
        }
    }

    public mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
        guard let p = base.allocate(size: size, noscan: noscan) else { return nil }
        check(p, size: size, from: 0)
        return p
    }

    public mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool) {
        log.remove(pointer, size: size, what: "free")
        base.free(pointer, size: size, noscan: noscan)
    }

    static func checksum(_ p: UnsafeRawPointer, _ count: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<count {
            h = (h ^ UInt64(p.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01b3
        }
        return h
    }

    public mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
        let kept = min(min(oldSize, newSize), 4096)
        let before = Self.checksum(pointer, kept)
        log.remove(pointer, size: oldSize, what: "realloc")
        guard let p = base.reallocate(pointer, oldSize: oldSize, newSize: newSize) else { return nil }
        if Self.checksum(p, kept) != before {
            log.fail("realloc from \(oldSize) to \(newSize) bytes did not keep the block's contents")
        }
        check(p, size: newSize, from: min(oldSize, newSize))
        return p
    }
}
