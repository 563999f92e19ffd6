// The process's own malloc as a replay back end, and the statistics each malloc can report.
//
// MallocBackend calls malloc / free / realloc through the dynamic linker's normal binding,
// so it measures glibc in a plain process and jemalloc, mimalloc or tcmalloc in a child
// started with that library in LD_PRELOAD (ChildReplay.swift). By default every rival gets
// the same three calls. With sized frees (`--sized-free`), free goes to the library's
// sized free instead, found with dlsym: jemalloc `sdallocx(p, size, 0)`, mimalloc
// `mi_free_size(p, size)`, tcmalloc `tc_free_sized(p, size)`; glibc 2.36 has none and
// keeps plain free.
//
// Which malloc is live is found by symbol (dlsym on the global scope, RTLD_DEFAULT):
//   jemalloc  `mallctl`: after writing "epoch", stats.allocated / active / resident /
//             mapped / metadata / retained (bytes)
//   tcmalloc  `MallocExtension_GetNumericProperty`: generic.current_allocated_bytes,
//             generic.heap_size, tcmalloc.pageheap_free_bytes, tcmalloc.pageheap_unmapped_bytes
//   mimalloc  `mi_process_info`: current and peak committed bytes
//   glibc     `malloc_info` (XML): system bytes (current), mmap'd chunk bytes, free bytes in
//             bins (fast + rest); in use = system + mmap - free
// `MallocFamily.current()` is what the child checks to make sure the preload took effect.

#if canImport(Glibc)
import Glibc
#endif

/// The malloc implementation serving this process.
public enum MallocFamily: String, Sendable {
    case glibc, jemalloc, tcmalloc, mimalloc

    static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        dlsym(nil, name)   // nil handle is RTLD_DEFAULT on glibc
    }

    /// Identified by the symbols only that library exports.
    public static func current() -> MallocFamily {
        if symbol("mallctl") != nil { return .jemalloc }
        if symbol("MallocExtension_GetNumericProperty") != nil { return .tcmalloc }
        if symbol("mi_process_info") != nil { return .mimalloc }
        return .glibc
    }

    /// The statistics this malloc reports, read now.
    public func statistics() -> [(String, Int)] {
        switch self {
        case .jemalloc: return Self.jemallocStatistics()
        case .tcmalloc: return Self.tcmallocStatistics()
        case .mimalloc: return Self.mimallocStatistics()
        case .glibc: return Self.glibcStatistics()
        }
    }

    private typealias Mallctl = @convention(c) (
        UnsafePointer<CChar>, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?, UnsafeMutableRawPointer?, Int
    ) -> Int32

    static func jemallocStatistics() -> [(String, Int)] {
        guard let sym = symbol("mallctl") else { return [] }
        let mallctl = unsafeBitCast(sym, to: Mallctl.self)
        // Writing "epoch" makes jemalloc refresh its cached statistics.
        var epoch: UInt64 = 1
        var newEpoch: UInt64 = 1
        var length = MemoryLayout<UInt64>.size
        _ = mallctl("epoch", &epoch, &length, &newEpoch, MemoryLayout<UInt64>.size)
        var result: [(String, Int)] = []
        for name in ["allocated", "active", "resident", "mapped", "metadata", "retained"] {
            var value = 0
            var size = MemoryLayout<Int>.size
            if mallctl("stats." + name, &value, &size, nil, 0) == 0 { result.append((name, value)) }
        }
        return result
    }

    private typealias GetNumericProperty = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<Int>) -> Int32

    static func tcmallocStatistics() -> [(String, Int)] {
        guard let sym = symbol("MallocExtension_GetNumericProperty") else { return [] }
        let get = unsafeBitCast(sym, to: GetNumericProperty.self)
        var result: [(String, Int)] = []
        for (key, name) in [("generic.current_allocated_bytes", "current_allocated_bytes"),
                            ("generic.heap_size", "heap_size"),
                            ("tcmalloc.pageheap_free_bytes", "pageheap_free_bytes"),
                            ("tcmalloc.pageheap_unmapped_bytes", "pageheap_unmapped_bytes")] {
            var value = 0
            if get(key, &value) != 0 { result.append((name, value)) }
        }
        return result
    }

    private typealias ProcessInfo = @convention(c) (
        UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>,
        UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>
    ) -> Void

    static func mimallocStatistics() -> [(String, Int)] {
        guard let sym = symbol("mi_process_info") else { return [] }
        let info = unsafeBitCast(sym, to: ProcessInfo.self)
        var elapsed = 0, user = 0, system = 0, rss = 0, peakRSS = 0, commit = 0, peakCommit = 0, faults = 0
        info(&elapsed, &user, &system, &rss, &peakRSS, &commit, &peakCommit, &faults)
        return [("current_commit", commit), ("peak_commit", peakCommit)]
    }

    private typealias MallocInfo = @convention(c) (Int32, UnsafeMutablePointer<FILE>?) -> Int32

    static func glibcStatistics() -> [(String, Int)] {
        guard let sym = symbol("malloc_info") else { return [] }
        let mallocInfo = unsafeBitCast(sym, to: MallocInfo.self)
        var buffer: UnsafeMutablePointer<CChar>? = nil
        var length = 0
        guard let stream = open_memstream(&buffer, &length) else { return [] }
        _ = mallocInfo(0, stream)
        fclose(stream)
        guard let buffer else { return [] }
        let xml = String(cString: buffer)
        Glibc.free(buffer)
        // Only the process-wide totals after the last </heap>.
        let totals = xml.ranges(of: "</heap>").last.map { xml[$0.upperBound...] } ?? xml[...]
        func attribute(_ element: String, type: String) -> Int? {
            guard let r = totals.firstRange(of: "<\(element) type=\"\(type)\"") else { return nil }
            let rest = totals[r.upperBound...]
            guard let s = rest.firstRange(of: "size=\"") else { return nil }
            return Int(rest[s.upperBound...].prefix { $0.isNumber })
        }
        let system = attribute("system", type: "current") ?? 0
        let mmapBytes = attribute("total", type: "mmap") ?? 0
        let free = (attribute("total", type: "fast") ?? 0) + (attribute("total", type: "rest") ?? 0)
        return [("system_bytes", system), ("mmap_bytes", mmapBytes), ("free_bytes", free),
                ("in_use_bytes", system + mmapBytes - free)]
    }
}

/// The process's malloc (glibc, or whatever LD_PRELOAD put in front of it).
public struct MallocBackend: ReplayBackend {
    typealias SizedFree = @convention(c) (UnsafeMutableRawPointer?, Int) -> Void
    typealias Sdallocx = @convention(c) (UnsafeMutableRawPointer?, Int, Int32) -> Void

    public struct Allocator: ReplayAllocator {
        let sizedFree: SizedFree?
        let sdallocx: Sdallocx?

        @inline(__always)
        public mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer? {
            malloc(size)
        }

        @inline(__always)
        public mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool) {
            if let sdallocx {
                sdallocx(pointer, size, 0)
            } else if let sizedFree {
                sizedFree(pointer, size)
            } else {
                Glibc.free(pointer)
            }
        }

        @inline(__always)
        public mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
            realloc(pointer, newSize)
        }
    }

    public let family: MallocFamily
    let sizedFree: SizedFree?
    let sdallocx: Sdallocx?

    /// `sized`: free through the library's sized free, if it has one.
    public init(sizedFree sized: Bool = false) {
        family = MallocFamily.current()
        var sizedFree: SizedFree? = nil
        var sdallocx: Sdallocx? = nil
        if sized {
            switch family {
            case .jemalloc: sdallocx = MallocFamily.symbol("sdallocx").map { unsafeBitCast($0, to: Sdallocx.self) }
            case .mimalloc: sizedFree = MallocFamily.symbol("mi_free_size").map { unsafeBitCast($0, to: SizedFree.self) }
            case .tcmalloc: sizedFree = MallocFamily.symbol("tc_free_sized").map { unsafeBitCast($0, to: SizedFree.self) }
            case .glibc: break
            }
        }
        self.sizedFree = sizedFree
        self.sdallocx = sdallocx
    }

    /// Whether frees pass the size (false for glibc, which has no sized free).
    public var usesSizedFree: Bool { sizedFree != nil || sdallocx != nil }

    public func makeAllocator(worker: Int) throws(ReplayError) -> Allocator {
        Allocator(sizedFree: sizedFree, sdallocx: sdallocx)
    }

    public func statistics() -> [(String, Int)] { family.statistics() }

    public func failureReason() -> String? { "\(family.rawValue) malloc returned NULL (out of memory)" }
}
