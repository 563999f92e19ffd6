// The replay harness's OS layer: the only code in HeapLabReplay that calls mmap, munmap,
// memfd_create, clock_gettime or reads /proc. Everything above it sees:
//
//   mapAnonymous    private zeroed memory, optionally faulted in now (MAP_POPULATE), for
//                   the harness's own tables and the null allocator's region: memory the
//                   allocator under test never serves
//   makeSharedFile  an anonymous in-memory file (memfd, or an unlinked /dev/shm file) that
//                   carries a lowered program from the parent to the measuring child
//   mapFile         a shared mapping of such a file
//   clocks          monotonic wall time and process CPU time, in nanoseconds
//   memory figures  resident bytes now (/proc/self/statm) and the high-water mark
//                   (/proc/self/status VmHWM, else getrusage ru_maxrss)
//
// Calls return a `Result` carrying errno rather than trapping. memfd_create is looked up
// with dlsym because Swift's Glibc module is imported without _GNU_SOURCE.

#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which, on what, and errno.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Int32
    public init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }
    public var description: String { "\(operation) failed: \(String(cString: strerror(errno)))" }
}

public enum ReplaySystem {
    public static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Physical memory of the machine in bytes (0 if unknown).
    public static var physicalMemoryBytes: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        return pages > 0 ? pages * pageSize : 0
    }

    static func roundUpToPage(_ n: Int) -> Int { (n + pageSize - 1) & ~(pageSize - 1) }

    // MARK: memory

    /// Maps `bytes` (rounded up to a page, at least one page) of zeroed private memory.
    /// With `populate`, every page is faulted in before the call returns.
    public static func mapAnonymous(_ bytes: Int, populate: Bool) -> Result<UnsafeMutableRawPointer, SystemError> {
        let length = roundUpToPage(max(bytes, 1))
        var flags = MAP_PRIVATE | MAP_ANONYMOUS
        if populate { flags |= MAP_POPULATE } else { flags |= MAP_NORESERVE }
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, flags, -1, 0)
        guard let p, p != MAP_FAILED else {
            return .failure(SystemError(operation: "mmap of \(length) bytes", errno: errno))
        }
        return .success(p)
    }

    /// Unmaps memory from `mapAnonymous` or `mapFile` (same `bytes` as mapped).
    public static func unmap(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        munmap(p, roundUpToPage(max(bytes, 1)))
    }

    private typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
    private static let memfdCreate: MemfdCreate? = {
        guard let sym = dlsym(nil, "memfd_create") else { return nil }   // nil: RTLD_DEFAULT
        return unsafeBitCast(sym, to: MemfdCreate.self)
    }()

    /// An anonymous in-memory file, open read-write, close-on-exec, with no name in any
    /// directory. The caller closes it.
    public static func makeSharedFile(name: String) -> Result<Int32, SystemError> {
        if let memfdCreate {
            let fd = memfdCreate(name, 1 /* MFD_CLOEXEC */)
            if fd >= 0 { return .success(fd) }
        }
        // Fallback: a file in /dev/shm (or TMPDIR) unlinked straight away.
        let dirs = ["/dev/shm", getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"]
        var lastErrno: Int32 = 0
        for dir in dirs {
            var template = Array("\(dir)/heaplab-\(name)-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if fd >= 0 {
                template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return .success(fd)
            }
            lastErrno = errno
        }
        return .failure(SystemError(operation: "memfd_create", errno: lastErrno))
    }

    /// Maps `bytes` of file `fd` from offset 0, shared. Read-only unless `writable`.
    public static func mapFile(_ fd: Int32, bytes: Int, writable: Bool, populate: Bool)
        -> Result<UnsafeMutableRawPointer, SystemError>
    {
        let length = roundUpToPage(max(bytes, 1))
        var flags = MAP_SHARED
        if populate { flags |= MAP_POPULATE }
        let prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
        let p = mmap(nil, length, prot, flags, fd, 0)
        guard let p, p != MAP_FAILED else {
            return .failure(SystemError(operation: "mmap of a \(length)-byte file", errno: errno))
        }
        return .success(p)
    }

    /// Writes all `count` bytes at file offset `offset`.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawPointer, count: Int, offset: Int) -> Result<Void, SystemError> {
        var done = 0
        while done < count {
            let n = pwrite(fd, bytes + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(SystemError(operation: "write", errno: errno))
            }
            done += n
        }
        return .success(())
    }

    /// Reads exactly `count` bytes at `offset`; fails on a short file.
    public static func readAll(_ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int, offset: Int) -> Result<Void, SystemError> {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(SystemError(operation: "read", errno: errno))
            }
            if n == 0 { return .failure(SystemError(operation: "read (file too short)", errno: EIO)) }
            done += n
        }
        return .success(())
    }

    /// Size of an open file in bytes.
    public static func fileSize(_ fd: Int32) -> Result<Int, SystemError> {
        var st = stat()
        if fstat(fd, &st) != 0 { return .failure(SystemError(operation: "fstat", errno: errno)) }
        return .success(Int(st.st_size))
    }

    // MARK: clocks

    /// Monotonic wall-clock time in nanoseconds.
    @inline(__always)
    public static func monotonicNanos() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    /// CPU time of the whole process (all threads), in nanoseconds.
    public static func processCPUNanos() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    // MARK: memory figures

    /// Resident set size of this process now, in bytes: the second field of
    /// /proc/self/statm (pages) times the page size. 0 if it cannot be read.
    public static func residentBytes() -> Int {
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &buffer) { raw -> Int in
            let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
            if fd < 0 { return 0 }
            defer { close(fd) }
            let n = read(fd, raw.baseAddress, raw.count - 1)
            if n <= 0 { return 0 }
            let bytes = raw.bindMemory(to: UInt8.self)
            var i = 0
            while i < n && bytes[i] != 0x20 { i += 1 }   // skip "size"
            i += 1
            var pages = 0
            while i < n, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                pages = pages * 10 + Int(bytes[i] - 0x30)
                i += 1
            }
            return pages * pageSize
        }
    }

    /// The process's peak resident set size in bytes: VmHWM from /proc/self/status, or
    /// getrusage's ru_maxrss (KiB) where /proc is unavailable.
    public static func peakResidentBytes() -> Int {
        if let kib = statusField("VmHWM:") { return kib * 1024 }
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }

    /// A "Name:   N kB" field of /proc/self/status, in KiB.
    static func statusField(_ name: String) -> Int? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let digits = line.dropFirst(name.count).filter { $0.isNumber }
            return Int(digits)
        }
        return nil
    }
}
