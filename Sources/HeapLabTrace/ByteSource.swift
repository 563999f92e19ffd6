// The bytes of an input file after decompression: the one place HeapLab opens a file that
// may be compressed. TraceReader (every trace every command reads) and HeapLabImport's
// LineReader (every importer input) both read through it.
//
// Owns: opening the file, recognising its compression by content, never by name (zstd magic
// 28 B5 2F FD, gzip magic 1F 8B; xz magic FD 37 7A 58 5A 00 is refused with a hint; anything
// else is read raw), and decompressing it in-process through libzstd / zlib (the CZstd and
// CZlib system-library shims), streaming: memory is two fixed buffers whatever the file.
//
// Invariants:
//   - `read` returns 0 only at the true end of the data. A compressed stream that ends inside
//     a zstd frame or gzip member (truncated), or that the decompressor rejects (corrupt,
//     including trailing bytes that are not another frame/member), is an `InputError` at
//     `.compressedByteOffset(N)`: N is the offset in the file (compressed bytes) where the
//     problem was found, the file's length for a truncation. Never a silent short read.
//   - `input[inputStart..<inputEnd]` holds compressed bytes read but not yet fed to the
//     decompressor; `inputFileOffset` is the file offset of `input[0]`.
//   - Decompressed output is capped at `limit` bytes (default `defaultLimit`, 64 GiB, far
//     beyond any realistic trace or importer input): memory never depends on the data, but a
//     few kilobytes of hostile zstd can expand to terabytes, and everything downstream of a
//     reader (a replay program, a converted trace) grows with it. Past the cap the read
//     fails with a clear error; decompressing the file by hand lifts the cap.
//   - Every decompressor call makes progress or ends the loop: zstd either consumes input,
//     produces output or reports an error; zlib is checked for a call that did neither. At
//     the end of the input the decompressor is still called (with no input) while its frame
//     is incomplete, so output it holds back for lack of room is flushed before a
//     truncation is reported.
import CZlib
import CZstd
#if canImport(Glibc)
import Glibc
#endif

/// A file's bytes, decompressed on the fly when they are zstd or gzip.
package struct ByteSource: ~Copyable {
    package enum Codec: Sendable { case raw, gzip, zstd }

    /// Decompressed bytes a source delivers before it fails (see the file comment).
    package static let defaultLimit = 1 << 36

    package let codec: Codec
    /// The file name used in error messages.
    package let path: String
    /// Decompressed bytes returned so far.
    package private(set) var produced = 0
    private let limit: Int
    private let fd: Int32
    private var input: UnsafeMutablePointer<UInt8>
    private static let inputCapacity = 1 << 18
    private var inputStart = 0
    private var inputEnd = 0
    private var inputFileOffset = 0
    private var inputEOF = false
    private var zstd: OpaquePointer?
    private var zlib: UnsafeMutablePointer<z_stream>?
    /// True once the decompressor reported the end of a complete frame/member and no
    /// bytes of a following one have been fed yet.
    private var streamComplete = true

    /// Opens `path` and recognises its compression. `openFailure` starts the message when
    /// the file cannot be opened ("cannot open", "cannot open trace").
    package init(path: String, limit: Int = ByteSource.defaultLimit,
                 openFailure: String = "cannot open") throws(InputError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw InputError(file: path, location: .wholeFile,
                             message: "\(openFailure): \(String(cString: strerror(errno)))")
        }
        let input = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.inputCapacity)
        // Sniff the first bytes to choose the codec (a pipe may deliver them piecemeal).
        var n = 0
        var eof = false
        while n < 6 && !eof {
            let got = Glibc.read(fd, input + n, Self.inputCapacity - n)
            if got < 0 {
                if errno == EINTR { continue }
                let message = String(cString: strerror(errno))
                close(fd)
                input.deallocate()
                throw InputError(file: path, location: .wholeFile, message: "read failed: \(message)")
            }
            if got == 0 { eof = true }
            n += got
        }
        if n >= 6 && input[0] == 0xFD && input[1] == 0x37 && input[2] == 0x7A && input[3] == 0x58
            && input[4] == 0x5A && input[5] == 0x00 {
            close(fd)
            input.deallocate()
            throw InputError(file: path, location: .wholeFile,
                             message: "xz-compressed input is not supported: decompress it first (xz -dk)")
        }
        self.path = path
        self.limit = limit
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

    /// A source with no file that is already at its end (for readers over memory).
    package init(emptyNamed path: String) {
        self.path = path
        limit = 0
        fd = -1
        input = .allocate(capacity: 1)
        inputEOF = true
        codec = .raw
    }

    deinit {
        if let zstd { ZSTD_freeDStream(zstd) }
        if let zlib {
            inflateEnd(zlib)
            zlib.deallocate()
        }
        input.deallocate()
        if fd >= 0 { close(fd) }
    }

    /// Reads up to `count` (> 0) decompressed bytes; returns 0 only at the end of the data.
    package mutating func read(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws(InputError) -> Int {
        if codec == .raw {
            let n = try readRaw(into: destination, count: count)
            produced += n
            return n
        }
        // One byte more than the limit allows is enough to see it crossed.
        let room = limit - produced
        let allowed = count <= room ? count : room + 1
        let n = codec == .zstd ? try readZstd(into: destination, count: allowed)
                               : try readGzip(into: destination, count: min(allowed, Int(UInt32.max)))
        produced += n
        if produced > limit {
            throw compressedError("decompresses to more than \(limit) bytes, the limit for compressed input "
                                  + "(decompress it first to read it whole)")
        }
        return n
    }

    private var consumedOffset: Int { inputFileOffset + inputStart }

    private func compressedError(_ message: String, at offset: Int? = nil) -> InputError {
        InputError(file: path, location: .compressedByteOffset(offset ?? consumedOffset), message: message)
    }

    private func readFailure() -> InputError {
        InputError(file: path, location: .wholeFile, message: "read failed: \(String(cString: strerror(errno)))")
    }

    private mutating func readRaw(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws(InputError) -> Int {
        if inputStart < inputEnd {
            let n = min(count, inputEnd - inputStart)
            destination.update(from: input + inputStart, count: n)
            inputStart += n
            return n
        }
        guard fd >= 0, !inputEOF else { return 0 }
        while true {
            let n = Glibc.read(fd, destination, count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw readFailure()
        }
    }

    /// Moves the pending compressed bytes to the front and reads once more after them.
    private mutating func refill() throws(InputError) {
        if inputStart > 0 {
            let pending = inputEnd - inputStart
            if pending > 0 { memmove(input, input + inputStart, pending) }
            inputFileOffset += inputStart
            inputEnd = pending
            inputStart = 0
        }
        while true {
            let n = Glibc.read(fd, input + inputEnd, Self.inputCapacity - inputEnd)
            if n < 0 {
                if errno == EINTR { continue }
                throw readFailure()
            }
            if n == 0 { inputEOF = true }
            inputEnd += n
            return
        }
    }

    /// Refills an empty input buffer. False when there is nothing more to decode: the file
    /// is at its end and the last stream complete.
    private mutating func inputOrPendingOutput() throws(InputError) -> Bool {
        while inputStart == inputEnd && !inputEOF { try refill() }
        return !(inputStart == inputEnd && streamComplete)
    }

    private mutating func readZstd(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws(InputError) -> Int {
        while true {
            // At the end of the file inside a frame, go on: zstd may still hold output.
            guard try inputOrPendingOutput() else { return 0 }
            var inBuffer = ZSTD_inBuffer(src: UnsafeRawPointer(input + inputStart),
                                         size: inputEnd - inputStart, pos: 0)
            var outBuffer = ZSTD_outBuffer(dst: UnsafeMutableRawPointer(destination), size: count, pos: 0)
            let result = ZSTD_decompressStream(zstd, &outBuffer, &inBuffer)
            if ZSTD_isError(result) != 0 {
                throw compressedError("corrupt zstd data: \(String(cString: ZSTD_getErrorName(result)))",
                                      at: consumedOffset + inBuffer.pos)
            }
            inputStart += inBuffer.pos
            streamComplete = result == 0
            if outBuffer.pos > 0 { return outBuffer.pos }
            if inputStart == inputEnd && inputEOF && !streamComplete {
                throw compressedError("truncated zstd data (the file ends inside a frame)", at: inputFileOffset + inputEnd)
            }
        }
    }

    private mutating func readGzip(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws(InputError) -> Int {
        guard let zlib else { return 0 }
        while true {
            guard try inputOrPendingOutput() else { return 0 }
            if streamComplete {
                // A new member starts (gzip files may be concatenations of members).
                if inflateReset(zlib) != Z_OK { throw compressedError("corrupt gzip data") }
                streamComplete = false
            }
            let available = inputEnd - inputStart
            zlib.pointee.next_in = input + inputStart
            zlib.pointee.avail_in = UInt32(available)
            zlib.pointee.next_out = destination
            zlib.pointee.avail_out = UInt32(count)
            let status = inflate(zlib, Z_NO_FLUSH)
            let consumed = available - Int(zlib.pointee.avail_in)
            let produced = count - Int(zlib.pointee.avail_out)
            if status == Z_STREAM_END {
                streamComplete = true
            } else if status != Z_OK && status != Z_BUF_ERROR {
                let detail = zlib.pointee.msg.map { String(cString: $0) } ?? "inflate error \(status)"
                throw compressedError("corrupt gzip data: \(detail)", at: consumedOffset + consumed)
            }
            inputStart += consumed
            if produced > 0 { return produced }
            if consumed == 0 {
                if inputStart == inputEnd && inputEOF {
                    throw compressedError("truncated gzip data (the file ends inside a member)",
                                          at: inputFileOffset + inputEnd)
                }
                if status != Z_STREAM_END { throw compressedError("corrupt gzip data") }
            }
        }
    }
}
