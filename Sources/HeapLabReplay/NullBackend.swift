// The null allocator: a bump pointer that never frees. It measures the replay harness alone
// (reading ops, the pointer table, touching first words, storing pointers), so that
// "allocator cost" = run time - null run time (../shared/BENCHMARKING.md).
//
// Its memory is mapped with MAP_POPULATE when the back end is created, before timing
// starts: every page is already faulted in, so no page fault lands in the timed loop. Each
// worker gets its own region, sized by TraceLowering to exactly the bytes that worker's
// allocations and reallocations request, each rounded up to 16 (so every block is 16-byte
// aligned, as malloc's are). A realloc bumps a new block and copies the kept bytes.
//
// Invariant: cursor <= end for every worker; allocate returns nil rather than pass `end`
// (which cannot happen for the program the regions were sized from).
//
// Refuses (with an error, before anything is mapped) to populate more than the machine's
// physical memory minus 1/8: a trace that allocates 100 GiB in total cannot be measured
// with a never-freeing allocator on a 16 GiB machine.

#if canImport(Glibc)
import Glibc
#endif

public final class NullBackend: ReplayBackend {
    public struct Allocator: ReplayAllocator {
        var cursor: UnsafeMutableRawPointer
        let end: UnsafeMutableRawPointer

        @inline(__always)
        public mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
            let rounded = (size &+ 15) & ~15
            guard end - cursor >= rounded else { return nil }
            let p = cursor
            cursor += rounded
            return p
        }

        @inline(__always)
        public mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool) {}

        @inline(__always)
        public mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
            guard let p = allocate(size: newSize, noscan: true) else { return nil }
            p.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
            return p
        }
    }

    let regions: [(base: UnsafeMutableRawPointer, bytes: Int)]

    /// Maps and faults in one region per worker of `program`.
    public init(program: ReplayProgramInfo) throws(ReplayError) {
        let total = program.totalNullBytes
        let physical = ReplaySystem.physicalMemoryBytes
        if physical > 0 && total > physical - physical / 8 {
            throw ReplayError("the null allocator would need \(total) bytes populated (the trace's total allocation, never freed); this machine has \(physical)")
        }
        var regions: [(UnsafeMutableRawPointer, Int)] = []
        for s in program.streams {
            switch ReplaySystem.mapAnonymous(s.nullBytes, populate: true) {
            case .success(let p): regions.append((p, s.nullBytes))
            case .failure(let e):
                for r in regions { ReplaySystem.unmap(r.0, r.1) }
                throw ReplayError("null allocator region: \(e)")
            }
        }
        self.regions = regions
    }

    deinit {
        for r in regions { ReplaySystem.unmap(r.base, r.bytes) }
    }

    public func makeAllocator(worker: Int) throws(ReplayError) -> Allocator {
        let r = regions[worker]
        return Allocator(cursor: r.base, end: r.base + r.bytes)
    }

    public func statistics() -> [(String, Int)] {
        [("region_bytes", regions.reduce(0) { $0 + $1.bytes })]
    }

    public func failureReason() -> String? { "null allocator region exhausted (internal error)" }
}
