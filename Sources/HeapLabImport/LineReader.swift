// Line-by-line reading of importer inputs, transparently decompressed.
//
// Owns: opening an input file, recognising its compression by content (zstd magic
// 28 B5 2F FD, gzip magic 1F 8B; anything else is read raw), decompressing it in-process
// through libzstd / zlib (the CZstd and CZlib system-library shims), and cutting the
// stream into lines.
//
// Invariants:
//   - `buffer[start..<end]` holds bytes read but not yet returned; a returned line is a
//     view into `buffer` that stays valid only until the next call to `nextLine()`.
//   - A line never exceeds `maxLineLength` bytes; a longer one is an input error (a corrupt
//     or hostile file cannot make the reader allocate without bound).
//   - `lineNumber` is the 1-based number of the line last returned, so every error the
//     importers raise can say `FILE:LINE`.
//   - Truncated or corrupt compressed data is an `InputError`, never a silent short read.
import CZlib
import CZstd
public import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

/// Reads an importer input file one line at a time, decompressing zstd or gzip on the fly.
public struct LineReader: ~Copyable {
    /// The file name used in error messages.
    public let path: String
    /// 1-based number of the last line returned by `nextLine()` (0 before the first).
    public private(set) var lineNumber = 0

    public static let maxLineLength = 16 << 20

    private var source: ByteSource
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var scanned = 0
    private var atEOF = false

    /// Opens `path`; throws if it cannot be opened or its compressed header is unusable.
    public init(path: String) throws(InputError) {
        self.path = path
        source = try ByteSource(path: path)
        capacity = 1 << 20
        buffer = .allocate(capacity: capacity)
    }

    deinit {
        buffer.deallocate()
    }

    /// The next line without its terminating `\n` (and `\r`), or nil at the end of input.
    /// The view is valid until the next call.
    public mutating func nextLine() throws(InputError) -> UnsafeBufferPointer<UInt8>? {
        while true {
            if scanned < end {
                let found = memchr(buffer + scanned, 0x0A, end - scanned)
                if let found {
                    let newline = found.assumingMemoryBound(to: UInt8.self) - buffer
                    let line = takeLine(upTo: newline)
                    start = newline + 1
                    scanned = start
                    return line
                }
                scanned = end
            }
            if atEOF {
                if start < end {
                    let line = takeLine(upTo: end)
                    start = end
                    scanned = end
                    return line
                }
                return nil
            }
            if end - start >= Self.maxLineLength {
                throw InputError(file: path, line: lineNumber + 1,
                                 "line longer than \(Self.maxLineLength) bytes")
            }
            try fill()
        }
    }

    private mutating func takeLine(upTo stop: Int) -> UnsafeBufferPointer<UInt8> {
        lineNumber += 1
        var length = stop - start
        if length > 0 && buffer[start + length - 1] == 0x0D { length -= 1 }
        return UnsafeBufferPointer(start: buffer + start, count: length)
    }

    /// Makes room (compacting, then growing up to the line limit) and reads more bytes.
    private mutating func fill() throws(InputError) {
        if start > 0 {
            let pending = end - start
            if pending > 0 { memmove(buffer, buffer + start, pending) }
            scanned -= start
            end = pending
            start = 0
        }
        if end == capacity {
            let newCapacity = min(capacity * 2, Self.maxLineLength + 1)
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            grown.update(from: buffer, count: end)
            buffer.deallocate()
            buffer = grown
            capacity = newCapacity
        }
        let n = try source.read(into: buffer + end, count: capacity - end, path: path, line: lineNumber + 1)
        if n == 0 { atEOF = true }
        end += n
    }
}

/// The bytes of a file after decompression. One thin layer over read(2), zstd and zlib.
struct ByteSource: ~Copyable {
    enum Codec { case raw, gzip, zstd }

    let codec: Codec
    private let fd: Int32
    private var input: UnsafeMutablePointer<UInt8>
    private static let inputCapacity = 1 << 18
    private var inputCapacity: Int { Self.inputCapacity }
    private var inputStart = 0
    private var inputEnd = 0
    private var inputEOF = false
    private var zstd: OpaquePointer?
    private var zlib: UnsafeMutablePointer<z_stream>?
    /// True once the decompressor reported the end of a complete frame/member and no
    /// bytes of a following one have been fed yet.
    private var streamComplete = true

    init(path: String) throws(InputError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw InputError(file: path, location: .wholeFile,
                             message: "cannot open: \(String(cString: strerror(errno)))")
        }
        let input = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.inputCapacity)
        // Sniff the first bytes to choose the codec.
        var n = 0
        var eof = false
        while n < 6 && !eof {
            let got = Glibc.read(fd, input + n, Self.inputCapacity - n)
            if got < 0 {
                if errno == EINTR { continue }
                let message = String(cString: strerror(errno))
                close(fd)
                input.deallocate()
                throw InputError(file: path, line: 1, "read failed: \(message)")
            }
            if got == 0 { eof = true }
            n += got
        }
        if n >= 6 && input[0] == 0xFD && input[1] == 0x37 && input[2] == 0x7A && input[3] == 0x58 {
            close(fd)
            input.deallocate()
            throw InputError(file: path, location: .wholeFile,
                             message: "xz-compressed input is not supported: decompress it first (xz -dk)")
        }
        self.fd = fd
        self.input = input
        inputEnd = n
        inputEOF = eof
        if n >= 4 && input[0] == 0x28 && input[1] == 0xB5 && input[2] == 0x2F && input[3] == 0xFD {
            codec = .zstd
            zstd = ZSTD_createDStream()
            _ = ZSTD_initDStream(zstd)
        } else if n >= 2 && input[0] == 0x1F && input[1] == 0x8B {
            codec = .gzip
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            // 15 + 32: maximum window, and accept a gzip (or zlib) header.
            _ = inflateInit2_(stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
            zlib = stream
        } else {
            codec = .raw
        }
    }

    deinit {
        if let zstd { ZSTD_freeDStream(zstd) }
        if let zlib {
            inflateEnd(zlib)
            zlib.deallocate()
        }
        input.deallocate()
        close(fd)
    }

    /// Reads up to `count` decompressed bytes; returns 0 only at the end of the data.
    mutating func read(into destination: UnsafeMutablePointer<UInt8>, count: Int,
                       path: String, line: Int) throws(InputError) -> Int {
        switch codec {
        case .raw:
            if inputStart < inputEnd {
                let n = min(count, inputEnd - inputStart)
                destination.update(from: input + inputStart, count: n)
                inputStart += n
                return n
            }
            while true {
                let n = Glibc.read(fd, destination, count)
                if n >= 0 { return n }
                if errno == EINTR { continue }
                throw InputError(file: path, line: line, "read failed: \(String(cString: strerror(errno)))")
            }
        case .zstd:
            return try readZstd(into: destination, count: count, path: path, line: line)
        case .gzip:
            return try readGzip(into: destination, count: count, path: path, line: line)
        }
    }

    private mutating func refill(path: String, line: Int) throws(InputError) {
        if inputStart > 0 {
            let pending = inputEnd - inputStart
            if pending > 0 { memmove(input, input + inputStart, pending) }
            inputEnd = pending
            inputStart = 0
        }
        while inputEnd < inputCapacity {
            let n = Glibc.read(fd, input + inputEnd, inputCapacity - inputEnd)
            if n < 0 {
                if errno == EINTR { continue }
                throw InputError(file: path, line: line, "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { inputEOF = true }
            inputEnd += n
            break
        }
    }

    private mutating func readZstd(into destination: UnsafeMutablePointer<UInt8>, count: Int,
                                   path: String, line: Int) throws(InputError) -> Int {
        while true {
            if inputStart == inputEnd {
                if inputEOF {
                    if !streamComplete {
                        throw InputError(file: path, line: line, "zstd data is truncated")
                    }
                    return 0
                }
                try refill(path: path, line: line)
                continue
            }
            var inBuffer = ZSTD_inBuffer(src: UnsafeRawPointer(input + inputStart),
                                         size: inputEnd - inputStart, pos: 0)
            var outBuffer = ZSTD_outBuffer(dst: UnsafeMutableRawPointer(destination), size: count, pos: 0)
            let result = ZSTD_decompressStream(zstd, &outBuffer, &inBuffer)
            if ZSTD_isError(result) != 0 {
                throw InputError(file: path, line: line,
                                 "corrupt zstd data: \(String(cString: ZSTD_getErrorName(result)))")
            }
            inputStart += inBuffer.pos
            streamComplete = result == 0
            if outBuffer.pos > 0 { return outBuffer.pos }
        }
    }

    private mutating func readGzip(into destination: UnsafeMutablePointer<UInt8>, count: Int,
                                   path: String, line: Int) throws(InputError) -> Int {
        guard let zlib else { return 0 }
        while true {
            if inputStart == inputEnd {
                if inputEOF {
                    if !streamComplete {
                        throw InputError(file: path, line: line, "gzip data is truncated")
                    }
                    return 0
                }
                try refill(path: path, line: line)
                continue
            }
            if streamComplete {
                // A new member starts (gzip files may be concatenations of members).
                if inflateReset(zlib) != Z_OK {
                    throw InputError(file: path, line: line, "corrupt gzip data")
                }
                streamComplete = false
            }
            let available = inputEnd - inputStart
            zlib.pointee.next_in = input + inputStart
            zlib.pointee.avail_in = UInt32(available)
            zlib.pointee.next_out = destination
            zlib.pointee.avail_out = UInt32(min(count, Int(UInt32.max)))
            let status = inflate(zlib, Z_NO_FLUSH)
            let consumed = available - Int(zlib.pointee.avail_in)
            let produced = min(count, Int(UInt32.max)) - Int(zlib.pointee.avail_out)
            inputStart += consumed
            if status == Z_STREAM_END {
                streamComplete = true
            } else if status != Z_OK && status != Z_BUF_ERROR {
                let detail = zlib.pointee.msg.map { String(cString: $0) } ?? "inflate error \(status)"
                throw InputError(file: path, line: line, "corrupt gzip data: \(detail)")
            } else if consumed == 0 && produced == 0 {
                throw InputError(file: path, line: line, "corrupt gzip data")
            }
            if produced > 0 { return produced }
        }
    }
}
