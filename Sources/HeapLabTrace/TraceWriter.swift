// Trace writer: canonical text or binary, through `AtomicOutputFile`, so a trace file is
// either complete or absent.
//
// The header is written by `init`; a `.header(version: 1)` passed as the very first record
// is accepted and skipped (so `while let r = try reader.next() { try writer.write(r) }`
// copies a trace), and a header anywhere else is an error. Every record is checked with
// `TraceSyntax.problem` first: the writer never produces a file a reader would reject on
// syntax. Semantic validity (liveness, reachability) is `TraceValidator`'s business.
//
// Records are encoded into a private 256 KiB buffer (state behind an unsafe pointer, no
// class-property access per record) and handed to the output file when it fills.
// `finish()` adds the binary END record and renames the file into place; `abandon()` (or
// deinit before `finish()`) removes the temporary file. With `zstd: true` each full buffer
// goes through ZstdOutput.swift on its way to the file, which then holds one zstd frame
// (level 19, checksummed) that every trace reader decompresses (ByteSource.swift).

/// Writes a trace record by record, in either encoding.
///
///     let writer = try TraceWriter(path: "out.hbtrace", encoding: .binary)
///     try writer.write(.alloc(id: 1, size: 32, ptrs: 0, site: nil))
///     try writer.finish()
public final class TraceWriter {
    public let path: String
    public let encoding: TraceEncoding
    private let output: AtomicOutputFile
    private let compressor: ZstdOutput?
    private let buffer: UnsafeMutablePointer<UInt8>
    private let state: UnsafeMutablePointer<WriterState>

    private static let bufferSize = 256 << 10
    /// Room kept free before encoding one record.
    private static let recordRoom = TraceSyntax.maxTextLineLength + 64

    private struct WriterState {
        var used = 0
        var records: UInt64 = 0   // records written after the header
        var lastID: UInt64 = 0
        var finished = false
        var headerSkipped = false
    }

    /// Creates `path` (through a temporary file) and writes the header; with `zstd`, the
    /// file is the zstd-compressed trace.
    public init(path: String, encoding: TraceEncoding, zstd: Bool = false) throws(InputError) {
        self.path = path
        self.encoding = encoding
        compressor = zstd ? try ZstdOutput(level: ZstdOutput.defaultLevel, path: path) : nil
        output = try AtomicOutputFile(path: path)
        buffer = .allocate(capacity: Self.bufferSize)
        state = .allocate(capacity: 1)
        state.initialize(to: WriterState())
        switch encoding {
        case .text:
            state.pointee.used = TraceSyntax.formatText(.header(version: TraceLimits.version), into: buffer)
        case .binary:
            for (i, b) in TraceBinary.magic.enumerated() { buffer[i] = b }
            let end = TraceBinary.putVarint(TraceLimits.version, buffer + TraceBinary.magic.count)
            state.pointee.used = end - buffer
        }
    }

    deinit {
        if !state.pointee.finished { output.abandon() }
        buffer.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    @inline(never)
    private func fail(_ message: String) -> InputError {
        InputError(file: path, location: .wholeFile, message: message)
    }

    private func flushBuffer(end: Bool = false) throws(InputError) {
        let used = state.pointee.used
        if let compressor {
            try compressor.compress(buffer, count: used, end: end, to: output)
            state.pointee.used = 0
        } else if used > 0 {
            try output.write(UnsafeRawBufferPointer(start: buffer, count: used))
            state.pointee.used = 0
        }
    }

    /// Appends one record. Throws if the record breaks a syntax rule (size out of range,
    /// thread >= 256, a site name a text trace cannot hold, a second header), or on I/O error.
    public func write(_ record: TraceRecord) throws(InputError) {
        let st = state
        if st.pointee.finished { throw fail("write after the trace was finished") }
        if case .header = record {
            if st.pointee.records == 0 && record == .header(version: TraceLimits.version) && !st.pointee.headerSkipped {
                st.pointee.headerSkipped = true
                return
            }
            throw fail("cannot write record \(st.pointee.records + 1): a header is only allowed first")
        }
        if let problem = TraceSyntax.problem(record) {
            throw fail("cannot write record \(st.pointee.records + 1) (\(record)): \(problem)")
        }
        if st.pointee.used > Self.bufferSize - Self.recordRoom { try flushBuffer() }
        let out = buffer + st.pointee.used
        switch encoding {
        case .text:
            st.pointee.used += TraceSyntax.formatText(record, into: out)
        case .binary:
            st.pointee.used += encodeBinary(record, into: out, lastID: &st.pointee.lastID)
        }
        st.pointee.records &+= 1
    }

    /// Binary encoding of one record at `out`; returns its length.
    @inline(__always)
    private func encodeBinary(_ record: TraceRecord, into out: UnsafeMutablePointer<UInt8>,
                              lastID: inout UInt64) -> Int {
        var p = out + 1
        @inline(__always) func id(_ v: UInt64) {
            p = TraceBinary.putVarint(TraceBinary.zigzag(v &- lastID), p)
            lastID = v
        }
        switch record {
        case .header:
            preconditionFailure("headers are handled by write(_:)")
        case .site(let site, let name):
            out.pointee = TraceBinary.opSite
            p = TraceBinary.putVarint(site, p)
            var n = name
            n.withUTF8 { u in
                p = TraceBinary.putVarint(UInt64(u.count), p)
                p.update(from: u.baseAddress!, count: u.count)
                p += u.count
            }
        case .thread(let t):
            out.pointee = TraceBinary.opThread
            p = TraceBinary.putVarint(t, p)
        case .alloc(let objectID, let size, let ptrs, let site):
            out.pointee = TraceBinary.opAlloc | (ptrs != 0 ? 1 : 0) | (site != nil ? 2 : 0)
            id(objectID)
            p = TraceBinary.putVarint(size, p)
            if ptrs != 0 { p = TraceBinary.putVarint(ptrs, p) }
            if let site { p = TraceBinary.putVarint(site, p) }
        case .free(let objectID):
            out.pointee = TraceBinary.opFree
            id(objectID)
        case .hold(let objectID):
            out.pointee = TraceBinary.opHold
            id(objectID)
        case .write(let src, let slot, let dst):
            out.pointee = dst == nil ? TraceBinary.opWriteNil : TraceBinary.opWrite
            id(src)
            p = TraceBinary.putVarint(slot, p)
            if let dst { id(dst) }
        case .realloc(let objectID, let size):
            out.pointee = TraceBinary.opRealloc
            id(objectID)
            p = TraceBinary.putVarint(size, p)
        }
        return p - out
    }

    /// Writes the end of the trace and renames the file into place.
    public func finish() throws(InputError) {
        let st = state
        if st.pointee.finished { throw fail("trace already finished") }
        if encoding == .binary {
            if st.pointee.used > Self.bufferSize - Self.recordRoom { try flushBuffer() }
            let out = buffer + st.pointee.used
            out.pointee = TraceBinary.opEnd
            st.pointee.used += TraceBinary.putVarint(st.pointee.records, out + 1) - out
        }
        do {
            try flushBuffer(end: true)
            try output.commit()
        } catch {
            output.abandon()
            st.pointee.finished = true
            throw error
        }
        st.pointee.finished = true
    }

    /// Discards everything written; the destination is left as it was.
    public func abandon() {
        output.abandon()
        state.pointee.finished = true
    }
}
