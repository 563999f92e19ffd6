// Output files that are never seen half-written.
//
// Every file HeapLab writes (traces, reports, snapshots, JSON) goes through this type: bytes
// go to a temporary name beside the destination (`DEST.tmp.PID`), and only `commit()` renames
// it over the destination, after the data is flushed. `abandon()` (or deinit without commit)
// removes the temporary file, so a failing command leaves nothing behind.
//
// Buffering: writes are gathered in a 1 MiB buffer and written with write(2).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class AtomicOutputFile {
    public let path: String
    public let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var committed = false
    private static let bufferLimit = 1 << 20

    /// Opens `DEST.tmp.PID` for writing. Throws `InputError` (whole file) if it cannot.
    public init(path: String) throws(InputError) {
        self.path = path
        self.temporaryPath = "\(path).tmp.\(getpid())"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            throw InputError(file: path, location: .wholeFile,
                             message: "cannot create output file: \(String(cString: strerror(errno)))")
        }
        buffer.reserveCapacity(Self.bufferLimit)
    }

    public func write(_ bytes: some Sequence<UInt8>) throws(InputError) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.bufferLimit { try flush() }
    }

    /// Appends raw bytes (one copy into the buffer; large blocks go straight to the file).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(InputError) {
        if bytes.count >= Self.bufferLimit {
            try flush()
            var start = 0
            while start < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + start, bytes.count - start)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw InputError(file: path, location: .wholeFile,
                                     message: "write failed: \(String(cString: strerror(errno)))")
                }
                start += n
            }
            return
        }
        buffer.append(contentsOf: bytes)
        if buffer.count >= Self.bufferLimit { try flush() }
    }

    public func write(_ string: String) throws(InputError) {
        var s = string
        s.withUTF8 { buffer.append(contentsOf: $0) }
        if buffer.count >= Self.bufferLimit { try flush() }
    }

    public func flush() throws(InputError) {
        var start = 0
        while start < buffer.count {
            let n = buffer.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + start, raw.count - start)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw InputError(file: path, location: .wholeFile,
                                 message: "write failed: \(String(cString: strerror(errno)))")
            }
            start += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, closes and renames the temporary file over `path`.
    public func commit() throws(InputError) {
        try flush()
        close(fd)
        fd = -1
        if rename(temporaryPath, path) != 0 {
            let message = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw InputError(file: path, location: .wholeFile, message: "cannot rename output into place: \(message)")
        }
        committed = true
    }

    /// Writes `text` to `path` whole: under a temporary name, renamed when complete; on an
    /// error the temporary file is removed and `path` is left as it was.
    public static func write(_ text: String, to path: String) throws(InputError) {
        let file = try AtomicOutputFile(path: path)
        do {
            try file.write(text)
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }

    /// Removes the temporary file; the destination is left as it was.
    public func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        if !committed { unlink(temporaryPath) }
        committed = true
    }

    deinit { if !committed { abandon() } }
}
