// Line-by-line reading of importer inputs, transparently decompressed.
//
// Owns: cutting an input file into lines. Opening it, recognising its compression by
// content (zstd, gzip; xz is refused with a hint) and decompressing it in-process is
// HeapLabTrace's ByteSource, the same code every trace reader goes through.
//
// Invariants:
//   - `buffer[start..<end]` holds bytes read but not yet returned; a returned line is a
//     view into `buffer` that stays valid only until the next call to `nextLine()`.
//   - A line never exceeds `maxLineLength` bytes; a longer one is an input error (a corrupt
//     or hostile file cannot make the reader allocate without bound).
//   - `lineNumber` is the 1-based number of the line last returned, so every error the
//     importers raise can say `FILE:LINE`.
//   - Truncated or corrupt compressed data is an `InputError` (at its compressed byte
//     offset), never a silent short read.
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
        let n = try source.read(into: buffer + end, count: capacity - end)
        if n == 0 { atEOF = true }
        end += n
    }
}
