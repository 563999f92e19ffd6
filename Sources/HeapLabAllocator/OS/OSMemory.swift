// The OS layer: the only code in HeapLab's allocator that calls mmap, mprotect, madvise or
// munmap. Everything above it sees four operations, named as in Go's runtime/mem.go:
//
//   reserve   address space with no access and no commitment (PROT_NONE, MAP_NORESERVE)
//   map       make part of a reservation readable and writable (sysMap); fresh pages are zero
//   unused    give pages back to the OS (MADV_DONTNEED): RSS drops, the range stays mapped,
//             and the next touch faults in a zero page (sysUnused)
//   free      unmap a whole reservation (sysFree)
//
// Each call returns a result carrying errno instead of trapping, so the heap can turn
// "out of address space" into a clear error.

#if canImport(Glibc)
import Glibc
#endif

public struct OSError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Int32
    public var bytes: Int
    public var description: String {
        "\(operation) of \(bytes) bytes failed: \(String(cString: strerror(errno)))"
    }
}

enum OSMemory {
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Reserves `bytes` of address space with no access rights and no memory committed.
    static func reserve(_ bytes: Int) -> Result<UnsafeMutableRawPointer, OSError> {
        let p = mmap(nil, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else {
            return .failure(OSError(operation: "mmap(reserve)", errno: errno, bytes: bytes))
        }
        return .success(p)
    }

    /// Makes `[p, p+bytes)` of a reservation readable and writable. Pages are zero.
    static func map(_ p: UnsafeMutableRawPointer, _ bytes: Int) -> Result<Void, OSError> {
        if mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0 {
            return .failure(OSError(operation: "mprotect(map)", errno: errno, bytes: bytes))
        }
        return .success(())
    }

    /// Maps fresh zeroed read-write memory (for metadata), outside any reservation.
    static func mapFresh(_ bytes: Int) -> Result<UnsafeMutableRawPointer, OSError> {
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else {
            return .failure(OSError(operation: "mmap", errno: errno, bytes: bytes))
        }
        return .success(p)
    }

    /// Returns the physical pages under `[p, p+bytes)` to the OS. The range stays usable;
    /// it reads as zero when touched again.
    @discardableResult
    static func unused(_ p: UnsafeMutableRawPointer, _ bytes: Int) -> Bool {
        madvise(p, bytes, MADV_DONTNEED) == 0
    }

    /// Unmaps a whole reservation or mapping.
    static func free(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        munmap(p, bytes)
    }
}
