// Streaming trace reader: the one way every command reads a trace, in either encoding.
//
// `TraceReader.open(path:)` reads the first bytes and decides by content: a zstd or gzip
// file is decompressed on the fly (ByteSource.swift: streamed, so memory stays fixed, and
// capped at `ByteSource.defaultLimit` decompressed bytes), then a stream starting with byte
// 0x89 is binary (docs/trace-binary-format.md), anything else is text
// (../shared/TRACE-FORMAT.md). Locations in a compressed binary trace are offsets in the
// decompressed stream (`.decompressedByteOffset`); text lines are the same either way.
// `next()` returns one record at a time, the header first (record 0), and nil after the
// last; `location` says where the last record was (line for text, byte offset of its opcode
// for binary) so that later checks can blame the right place. Syntax errors (see
// TraceSyntax.swift) are thrown as `InputError`.
//
// Memory: one fixed buffer of `bufferSize` bytes per reader, refilled from the ByteSource, so
// memory never grows with the trace and pipes work too. No allocation depends on a count
// read from the file (a site name's length is checked against the 64 KiB limit first).
//
// Layout of the buffer (indices into `base`):
//   0 <= pos <= parseEnd <= dataEnd <= capacity
//   [pos, dataEnd)        bytes read but not consumed
//   text:   [pos, parseEnd) holds only complete lines (parseEnd - 1 is a '\n'); the tail
//           [parseEnd, dataEnd) is an unfinished line kept for the next refill. At end of
//           file a missing final newline is supplied at base[dataEnd] (capacity has one
//           spare byte for it).
//   binary: parseEnd == dataEnd.
// Mutable cursor state lives in `ReaderState` behind an unsafe pointer owned by the
// storage object, so the hot loops never touch class properties.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a trace file is encoded.
public enum TraceEncoding: Sendable, Equatable {
    case text
    case binary
}

/// How a trace file is compressed (recognised by content: zstd or gzip magic bytes).
public enum TraceCompression: Sendable, Equatable {
    case none
    case zstd
    case gzip
}

struct ReaderState {
    var pos = 0
    var parseEnd = 0
    var dataEnd = 0
    /// File offset of base[0].
    var bufferFileOffset = 0   // (offset in the decompressed stream for compressed files)
    var eof = false
    var finished = false
    /// Text: line number of the byte at `pos` (1-based).
    var line = 1
    /// Text: line of the last record.
    var recordLocation = 0
    /// Binary: buffer index of the last record's opcode (its file offset is
    /// bufferFileOffset + recordStart; `compact` keeps that sum).
    var recordStart = 0
    /// Binary: the fast path may decode a record at `pos` when pos <= fastLimit (a whole
    /// worst-case record is buffered, the header is read, the end is not). Int.min otherwise.
    var fastLimit = Int.min
    /// Index of the last record returned; -1 before the header.
    var recordIndex = -1
    /// Binary: previous object ID, for delta decoding.
    var lastID: UInt64 = 0
}

final class TraceReaderStorage {
    var source: ByteSource
    let compression: TraceCompression
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    let state: UnsafeMutablePointer<ReaderState>
    let path: String

    init(source: consuming ByteSource, capacity: Int) {
        switch source.codec {
        case .raw: compression = .none
        case .zstd: compression = .zstd
        case .gzip: compression = .gzip
        }
        self.path = source.path
        self.source = source
        self.capacity = capacity
        base = .allocate(capacity: capacity + 1)
        state = .allocate(capacity: 1)
        state.initialize(to: ReaderState())
    }

    deinit {
        base.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// Reads more bytes after `dataEnd`, once; sets `eof` at the end of the (decompressed) data.
    func readMore() throws(InputError) {
        let st = state
        let room = capacity - st.pointee.dataEnd
        precondition(room > 0, "readMore with a full buffer")
        let n = try source.read(into: base + st.pointee.dataEnd, count: room)
        if n == 0 { st.pointee.eof = true } else { st.pointee.dataEnd += n }
    }

    /// Where a binary record at decompressed-stream offset `offset` is.
    func binaryLocation(_ offset: Int) -> InputLocation {
        compression == .none ? .byteOffset(offset) : .decompressedByteOffset(offset)
    }

    /// Moves the unconsumed bytes [pos, dataEnd) to the start of the buffer.
    func compact() {
        let st = state
        let pos = st.pointee.pos
        guard pos > 0 else { return }
        let keep = st.pointee.dataEnd - pos
        if keep > 0 { (base).update(from: base + pos, count: keep) }
        st.pointee.bufferFileOffset += pos
        st.pointee.recordStart -= pos
        st.pointee.parseEnd -= pos
        st.pointee.dataEnd = keep
        st.pointee.pos = 0
    }
}

/// Reads a trace record by record, in either encoding, plain or zstd/gzip-compressed (all
/// recognised by content).
///
///     var reader = try TraceReader.open(path: "app.htrace")
///     while let record = try reader.next() { ... }
///
/// Memory is one fixed 1 MiB buffer (plus 256 KiB of compressed input and the
/// decompressor's window for a compressed file) whatever the trace length. Copies of a
/// reader share one cursor (it behaves like a file handle).
public struct TraceReader {
    /// Size of the read buffer, and so the longest text line accepted.
    public static let bufferSize = 1 << 20

    /// Most decompressed bytes `open` reads from a compressed trace by default (64 GiB).
    public static var defaultDecompressedLimit: Int { ByteSource.defaultLimit }

    /// The file name used in error messages.
    public let path: String
    public let encoding: TraceEncoding
    let storage: TraceReaderStorage

    /// Whether the file is compressed (its records are those of the decompressed content).
    public var compression: TraceCompression { storage.compression }

    /// Opens `path` and recognises its compression and encoding from its first bytes.
    /// A compressed trace that decompresses to more than `decompressedLimit` bytes is an
    /// error when the reader gets there (nil: `defaultDecompressedLimit`, far beyond real traces).
    public static func open(path: String, decompressedLimit: Int? = nil) throws(InputError) -> TraceReader {
        let source = try ByteSource(path: path, limit: decompressedLimit ?? defaultDecompressedLimit,
                                    openFailure: "cannot open trace")
        let storage = TraceReaderStorage(source: source, capacity: bufferSize)
        return try TraceReader(storage: storage)
    }

    /// A reader over a (plain) trace held in memory; `name` is used in error messages.
    public init(bytes: [UInt8], name: String) throws(InputError) {
        let storage = TraceReaderStorage(source: ByteSource(emptyNamed: name), capacity: max(bytes.count, 16))
        bytes.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: $0.count) }
        storage.state.pointee.dataEnd = bytes.count
        storage.state.pointee.eof = true
        try self.init(storage: storage)
    }

    private init(storage: TraceReaderStorage) throws(InputError) {
        self.storage = storage
        self.path = storage.path
        let st = storage.state
        // Enough bytes to see the magic (pipes may deliver them piecemeal).
        while st.pointee.dataEnd < TraceBinary.magic.count && !st.pointee.eof {
            try storage.readMore()
        }
        if st.pointee.dataEnd > 0 && storage.base[0] == TraceBinary.firstMagicByte {
            encoding = .binary
            st.pointee.parseEnd = st.pointee.dataEnd
        } else {
            encoding = .text
            try storage.prepareTextLines()
        }
    }

    /// Returns the next record, the header first; nil after the last one.
    /// Throws `InputError` at the offending line or byte offset for malformed input.
    public mutating func next() throws(InputError) -> TraceRecord? {
        switch encoding {
        case .text: return try storage.nextText()
        case .binary: return try storage.nextBinary()
        }
    }

    /// Where the last record returned by `next()` is: `.line(n)` for text, `.byteOffset(n)`
    /// for binary (offset of the record's first byte; `.decompressedByteOffset(n)` when the
    /// file is compressed).
    public var location: InputLocation {
        let st = storage.state.pointee
        switch encoding {
        case .text: return .line(st.recordLocation)
        case .binary: return storage.binaryLocation(st.bufferFileOffset + st.recordStart)
        }
    }

    /// Index of the last record returned (the header is record 0); -1 before the first.
    public var recordIndex: Int { storage.state.pointee.recordIndex }

    /// An `InputError` about the last record returned, for checks made after reading.
    public func error(_ message: String) -> InputError {
        InputError(file: path, location: location, message: message)
    }
}
