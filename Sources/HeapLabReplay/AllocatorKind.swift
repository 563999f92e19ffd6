// The allocators `heaplab replay` and `heaplab bench` know by name, and where each comes from.
//
//   heaplab    HeapLab's allocator (HeapLabAllocator), manual mode, linked in
//   glibc      the C library's malloc (no preload)
//   jemalloc   Debian's libjemalloc.so.2 (package libjemalloc2), preloaded
//   mimalloc   Debian's libmimalloc.so.2 (package libmimalloc2.0), preloaded
//   tcmalloc   Debian's libtcmalloc_minimal.so.4 (package libtcmalloc-minimal4), preloaded
//   null       bump pointer that never frees: the harness alone
//   gc         HeapLab's allocator with its garbage collector: holds are roots, nothing is
//              freed explicitly (GCBackend.swift); the trace is lowered for it
//   go         Go 1.19's runtime: its allocator and concurrent collector, on the collector's
//              lowering (goreplay, tools/goreplay; GoReplay.swift finds or builds it)
//
// A preloaded library is looked for in the multiarch directory for this machine
// (/usr/lib/x86_64-linux-gnu on amd64), then /usr/lib64, /usr/lib, /usr/local/lib; the
// environment variable HEAPLAB_<NAME>_LIBRARY (e.g. HEAPLAB_JEMALLOC_LIBRARY) names another
// file instead.

#if canImport(Glibc)
import Glibc
#endif

public enum AllocatorKind: String, CaseIterable, Sendable {
    case heaplab, jemalloc, glibc, mimalloc, tcmalloc, null, gc, go

    /// The default order of `heaplab bench`.
    public static let benchDefault: [AllocatorKind] = [.heaplab, .jemalloc, .glibc, .mimalloc, .tcmalloc, .null]

    /// Replays the trace lowered for a collector (holds as roots, no frees): gc and go.
    public var isCollected: Bool { self == .gc || self == .go }

    /// File name of the shared library preloaded for this allocator, nil if none.
    public var libraryFileName: String? {
        switch self {
        case .jemalloc: return "libjemalloc.so.2"
        case .mimalloc: return "libmimalloc.so.2"
        case .tcmalloc: return "libtcmalloc_minimal.so.4"
        default: return nil
        }
    }

    /// The Debian package that installs the library.
    public var aptPackage: String? {
        switch self {
        case .jemalloc: return "libjemalloc2"
        case .mimalloc: return "libmimalloc2.0"
        case .tcmalloc: return "libtcmalloc-minimal4"
        default: return nil
        }
    }

    /// Which malloc the measuring child must find itself running on.
    public var expectedMallocFamily: MallocFamily? {
        switch self {
        case .jemalloc: return .jemalloc
        case .mimalloc: return .mimalloc
        case .tcmalloc: return .tcmalloc
        case .glibc: return .glibc
        default: return nil
        }
    }

    static var multiarchDirectory: String? {
        var u = utsname()
        guard uname(&u) == 0 else { return nil }
        let machine = withUnsafeBytes(of: &u.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch machine {
        case "x86_64": return "/usr/lib/x86_64-linux-gnu"
        case "aarch64", "arm64": return "/usr/lib/aarch64-linux-gnu"
        default: return "/usr/lib/\(machine)-linux-gnu"
        }
    }

    /// Path of the library to preload, or nil if this allocator needs none. Throws with
    /// the package to install when the library is missing.
    public func libraryPath() throws(ReplayError) -> String? {
        guard let file = libraryFileName else { return nil }
        let variable = "HEAPLAB_\(rawValue.uppercased())_LIBRARY"
        if let override = getenv(variable).map({ String(cString: $0) }), !override.isEmpty {
            guard access(override, R_OK) == 0 else {
                throw ReplayError("\(variable)=\(override): no such readable file")
            }
            return override
        }
        var directories = ["/usr/lib64", "/usr/lib", "/usr/local/lib"]
        if let multiarch = Self.multiarchDirectory { directories.insert(multiarch, at: 0) }
        for directory in directories {
            let path = "\(directory)/\(file)"
            if access(path, R_OK) == 0 { return path }
        }
        throw ReplayError("\(rawValue): \(file) not found in \(directories.joined(separator: ", ")); install it with `apt-get install \(aptPackage ?? "")` or set \(variable)")
    }

    /// Whether the allocator can run on this machine.
    public var isAvailable: Bool {
        do { _ = try libraryPath(); return true } catch { return false }
    }
}
