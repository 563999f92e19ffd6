// Binary trace decoding (format: TraceBinaryFormat.swift, docs/trace-binary-format.md).
//
// Fast path: before each record the reader makes sure `maxFixedRecord` bytes are buffered
// (or the file has ended), then decodes the opcode and its varints, each bounded by the end
// of the buffered data, so a truncated or corrupt file can only produce an error, never a
// read past the buffer. Problems are reported at the byte offset of the record's opcode.
//
// Checks: magic and version; known opcode; every varint at most 64 bits and canonical;
// the same per-record ranges as text (TraceSyntax); site name length and bytes; an END
// record whose count matches the records read, followed by nothing.

extension TraceReaderStorage {
    @inline(never)
    func binaryError(_ message: String, offset: Int) -> InputError {
        InputError(file: path, location: binaryLocation(offset), message: message)
    }

    @inline(never)
    func varintError(_ status: TraceBinary.VarintStatus, offset: Int) -> InputError {
        switch status {
        case .truncated: return binaryError("truncated record (file ends inside it)", offset: offset)
        case .overflow: return binaryError("corrupt record: varint does not fit in 64 bits", offset: offset)
        case .nonCanonical: return binaryError("corrupt record: varint has redundant bytes", offset: offset)
        case .ok: return binaryError("internal error", offset: offset)
        }
    }

    /// Reads until at least `count` bytes follow `pos`, or the file ends.
    func ensureBinary(_ count: Int) throws(InputError) {
        let st = state
        if st.pointee.dataEnd - st.pointee.pos >= count || st.pointee.eof { return }
        compact()
        while st.pointee.dataEnd - st.pointee.pos < count && !st.pointee.eof {
            try readMore()
        }
    }

    func binaryHeader() throws(InputError) -> TraceRecord {
        let st = state
        try ensureBinary(TraceBinary.magic.count + 10)
        let available = st.pointee.dataEnd
        for i in 0..<TraceBinary.magic.count where i >= available || base[i] != TraceBinary.magic[i] {
            if i >= available {
                throw binaryError("truncated binary trace header", offset: 0)
            }
            throw binaryError("not a HeapLab binary trace (bad magic bytes)", offset: 0)
        }
        var p = UnsafePointer(base + TraceBinary.magic.count)
        var status = TraceBinary.VarintStatus.ok
        let version = TraceBinary.getVarint(&p, UnsafePointer(base + available), &status)
        if status != .ok { throw varintError(status, offset: TraceBinary.magic.count) }
        if version != TraceLimits.version {
            throw binaryError(TraceSyntax.versionMessage(version), offset: TraceBinary.magic.count)
        }
        st.pointee.pos = UnsafeMutablePointer(mutating: p) - base
        st.pointee.recordStart = 0
        st.pointee.recordIndex = 0
        return .header(version: version)
    }

    /// Fast path: a fixed-size record with its whole worst-case extent (`maxFixedRecord`
    /// bytes) already buffered, so varints are read without bounds checks. Everything else
    /// (header, site, end, the last bytes of the file, errors) goes to `nextBinaryChecked`.
    @inline(__always)
    func nextBinary() throws(InputError) -> TraceRecord? {
        let st = state
        let pos = st.pointee.pos
        guard pos <= st.pointee.fastLimit else { return try nextBinaryChecked() }
        let start = UnsafePointer(base + pos)
        var p = start + 1
        var status = TraceBinary.VarintStatus.ok
        var last = st.pointee.lastID
        let record: TraceRecord
        let op = start.pointee
        switch op {
        case TraceBinary.opAlloc, TraceBinary.opAllocPtrs, TraceBinary.opAllocSite, TraceBinary.opAllocPtrsSite:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarintUnchecked(&p, &status))
            let size = TraceBinary.getVarintUnchecked(&p, &status)
            var ptrs: UInt64 = 0
            var site: UInt64? = nil
            if op & 1 != 0 {
                ptrs = TraceBinary.getVarintUnchecked(&p, &status)
                if ptrs == 0 { return try nextBinaryChecked() }
            }
            if op & 2 != 0 { site = TraceBinary.getVarintUnchecked(&p, &status) }
            if status != .ok || !TraceSyntax.sizeOK(size) || !TraceSyntax.ptrsOK(ptrs, size: size) {
                return try nextBinaryChecked()
            }
            record = .alloc(id: last, size: size, ptrs: ptrs, site: site)
        case TraceBinary.opFree:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarintUnchecked(&p, &status))
            if status != .ok { return try nextBinaryChecked() }
            record = .free(id: last)
        case TraceBinary.opWrite, TraceBinary.opWriteNil:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarintUnchecked(&p, &status))
            let src = last
            let slot = TraceBinary.getVarintUnchecked(&p, &status)
            var dst: UInt64? = nil
            if op == TraceBinary.opWrite {
                last = last &+ TraceBinary.unzigzag(TraceBinary.getVarintUnchecked(&p, &status))
                dst = last
            }
            if status != .ok { return try nextBinaryChecked() }
            record = .write(src: src, slot: slot, dst: dst)
        case TraceBinary.opHold:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarintUnchecked(&p, &status))
            if status != .ok { return try nextBinaryChecked() }
            record = .hold(id: last)
        case TraceBinary.opRealloc:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarintUnchecked(&p, &status))
            let size = TraceBinary.getVarintUnchecked(&p, &status)
            if status != .ok || !TraceSyntax.sizeOK(size) { return try nextBinaryChecked() }
            record = .realloc(id: last, size: size)
        default:
            return try nextBinaryChecked()
        }
        st.pointee.lastID = last
        st.pointee.pos = UnsafeMutablePointer(mutating: p) - base
        st.pointee.recordStart = pos
        st.pointee.recordIndex &+= 1
        return record
    }

    /// Decodes any record with full bounds checks and error reporting, then says whether
    /// the fast path may take the next one.
    @inline(never)
    func nextBinaryChecked() throws(InputError) -> TraceRecord? {
        let record = try nextBinaryCheckedBody()
        let st = state
        st.pointee.fastLimit = st.pointee.finished || st.pointee.recordIndex < 0
            ? Int.min : st.pointee.dataEnd - TraceBinary.maxFixedRecord
        return record
    }

    func nextBinaryCheckedBody() throws(InputError) -> TraceRecord? {
        let st = state
        if st.pointee.finished { return nil }
        if st.pointee.recordIndex < 0 { return try binaryHeader() }
        try ensureBinary(TraceBinary.maxFixedRecord)
        let base = UnsafePointer(self.base)
        let start = base + st.pointee.pos
        let limit = base + st.pointee.dataEnd
        let offset = st.pointee.bufferFileOffset + st.pointee.pos
        guard start < limit else {
            throw binaryError("truncated trace: the end record is missing", offset: offset)
        }
        var p = start + 1
        var status = TraceBinary.VarintStatus.ok
        var last = st.pointee.lastID
        let record: TraceRecord
        switch start.pointee {
        case TraceBinary.opAlloc, TraceBinary.opAllocPtrs, TraceBinary.opAllocSite, TraceBinary.opAllocPtrsSite:
            let op = start.pointee
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarint(&p, limit, &status))
            let size = TraceBinary.getVarint(&p, limit, &status)
            var ptrs: UInt64 = 0
            var site: UInt64? = nil
            if op & 1 != 0 {
                ptrs = TraceBinary.getVarint(&p, limit, &status)
                if ptrs == 0 && status == .ok {
                    throw binaryError("corrupt record: pointer-slot alloc with 0 slots", offset: offset)
                }
            }
            if op & 2 != 0 { site = TraceBinary.getVarint(&p, limit, &status) }
            if status != .ok { throw varintError(status, offset: offset) }
            if !TraceSyntax.sizeOK(size) { throw binaryError(TraceSyntax.sizeMessage(size), offset: offset) }
            if !TraceSyntax.ptrsOK(ptrs, size: size) {
                throw binaryError(TraceSyntax.ptrsMessage(ptrs: ptrs, size: size), offset: offset)
            }
            record = .alloc(id: last, size: size, ptrs: ptrs, site: site)
        case TraceBinary.opFree:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarint(&p, limit, &status))
            if status != .ok { throw varintError(status, offset: offset) }
            record = .free(id: last)
        case TraceBinary.opWrite, TraceBinary.opWriteNil:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarint(&p, limit, &status))
            let src = last
            let slot = TraceBinary.getVarint(&p, limit, &status)
            var dst: UInt64? = nil
            if start.pointee == TraceBinary.opWrite {
                last = last &+ TraceBinary.unzigzag(TraceBinary.getVarint(&p, limit, &status))
                dst = last
            }
            if status != .ok { throw varintError(status, offset: offset) }
            record = .write(src: src, slot: slot, dst: dst)
        case TraceBinary.opHold:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarint(&p, limit, &status))
            if status != .ok { throw varintError(status, offset: offset) }
            record = .hold(id: last)
        case TraceBinary.opRealloc:
            last = last &+ TraceBinary.unzigzag(TraceBinary.getVarint(&p, limit, &status))
            let size = TraceBinary.getVarint(&p, limit, &status)
            if status != .ok { throw varintError(status, offset: offset) }
            if !TraceSyntax.sizeOK(size) { throw binaryError(TraceSyntax.sizeMessage(size), offset: offset) }
            record = .realloc(id: last, size: size)
        case TraceBinary.opThread:
            let t = TraceBinary.getVarint(&p, limit, &status)
            if status != .ok { throw varintError(status, offset: offset) }
            if t >= TraceLimits.maxThreads { throw binaryError(TraceSyntax.threadMessage(t), offset: offset) }
            record = .thread(t)
        case TraceBinary.opSite:
            return try binarySite(offset: offset)
        case TraceBinary.opEnd:
            try binaryEnd(offset: offset)
            return nil
        default:
            throw binaryError("corrupt record: unknown opcode \(TraceSyntax.hexByte(start.pointee))", offset: offset)
        }
        st.pointee.lastID = last
        st.pointee.pos = p - base
        st.pointee.recordStart = offset - st.pointee.bufferFileOffset
        st.pointee.recordIndex &+= 1
        return record
    }

    @inline(never)
    func binarySite(offset: Int) throws(InputError) -> TraceRecord {
        let st = state
        var p = UnsafePointer(base + st.pointee.pos + 1)
        var status = TraceBinary.VarintStatus.ok
        let id = TraceBinary.getVarint(&p, UnsafePointer(base + st.pointee.dataEnd), &status)
        let length = TraceBinary.getVarint(&p, UnsafePointer(base + st.pointee.dataEnd), &status)
        if status != .ok { throw varintError(status, offset: offset) }
        if length == 0 || length > UInt64(TraceLimits.maxSiteNameLength) {
            throw binaryError("site name length \(length) out of range (must be 1...\(TraceLimits.maxSiteNameLength))",
                              offset: offset)
        }
        let headerBytes = UnsafeMutablePointer(mutating: p) - (base + st.pointee.pos)
        let total = headerBytes + Int(length)
        try ensureBinary(total)   // may move the data to the buffer's start
        if st.pointee.dataEnd - st.pointee.pos < total {
            throw binaryError("truncated record (file ends inside it)", offset: offset)
        }
        let nameStart = base + st.pointee.pos + headerBytes
        let name = UnsafeBufferPointer(start: UnsafePointer(nameStart), count: Int(length))
        if let problem = TraceSyntax.siteNameProblem(name) { throw binaryError(problem, offset: offset) }
        st.pointee.pos += total
        st.pointee.recordStart = offset - st.pointee.bufferFileOffset
        st.pointee.recordIndex &+= 1
        return .site(id: id, name: String(decoding: name, as: UTF8.self))
    }

    @inline(never)
    func binaryEnd(offset: Int) throws(InputError) {
        let st = state
        var p = UnsafePointer(base + st.pointee.pos + 1)
        var status = TraceBinary.VarintStatus.ok
        let count = TraceBinary.getVarint(&p, UnsafePointer(base + st.pointee.dataEnd), &status)
        if status != .ok { throw varintError(status, offset: offset) }
        let read = UInt64(st.pointee.recordIndex)
        if count != read {
            throw binaryError("corrupt trace: the end record counts \(count) records but \(read) were read",
                              offset: offset)
        }
        st.pointee.pos = UnsafeMutablePointer(mutating: p) - base
        try ensureBinary(1)
        if st.pointee.dataEnd > st.pointee.pos {
            throw binaryError("corrupt trace: bytes after the end record",
                              offset: st.pointee.bufferFileOffset + st.pointee.pos)
        }
        st.pointee.finished = true
    }
}
