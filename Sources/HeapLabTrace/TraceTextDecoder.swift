// Text trace decoding: a hand-written byte scanner over the reader's buffer.
//
// The buffer invariant (TraceReader.swift) guarantees that every line in [pos, parseEnd)
// ends with '\n', so the scanner never checks for the end of the buffer inside a line: the
// newline is the sentinel that stops every loop (blank skipping, digits, names, comments).
// One backward search for the last newline per refill (1 MiB) keeps that invariant.
//
// Per line: skip blanks; '\n' or '#' means blank/comment line; otherwise the first token
// picks the record and its fields are scanned as decimal numbers (overflow checked, each
// followed by a blank, '#' or '\n'). Checks that need no history (TraceSyntax) happen
// here, so a record that leaves this file is syntactically valid.

extension TraceReaderStorage {
    /// Makes [pos, parseEnd) hold complete lines, reading as needed. `searchFrom` is where
    /// unsearched bytes start (bytes in [pos, searchFrom) are known to hold no newline).
    func fillTextLines(searchFrom initial: Int) throws(InputError) {
        let st = state
        var from = initial
        while true {
            let dataEnd = st.pointee.dataEnd
            if from < dataEnd {
                var q = base + dataEnd - 1
                let stop = base + from
                while q >= stop && q.pointee != 0x0A { q -= 1 }
                if q >= stop {
                    st.pointee.parseEnd = q - base + 1
                    return
                }
            }
            from = dataEnd
            if st.pointee.eof {
                if dataEnd > st.pointee.pos {
                    // Last line without a newline: supply one (the buffer has a spare byte).
                    base[dataEnd] = 0x0A
                    st.pointee.dataEnd = dataEnd + 1
                }
                st.pointee.parseEnd = st.pointee.dataEnd
                return
            }
            if dataEnd == capacity {
                throw InputError(file: path, line: st.pointee.line,
                                 "line longer than \(capacity) bytes")
            }
            try readMore()
        }
    }

    func prepareTextLines() throws(InputError) {
        try fillTextLines(searchFrom: 0)
    }

    @inline(never)
    func textError(_ message: String, line: Int) -> InputError {
        InputError(file: path, line: line, message)
    }

    /// The whitespace-delimited token at `p`, for error messages.
    @inline(never)
    func tokenText(_ p: UnsafeMutablePointer<UInt8>) -> String {
        var n = 0
        while true {
            let c = p[n]
            if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x23 { break }
            n += 1
        }
        return TraceSyntax.printable(UnsafePointer(p), count: n)
    }

    @inline(never)
    func badNumberError(start: UnsafeMutablePointer<UInt8>, at p: UnsafeMutablePointer<UInt8>,
                        line: Int) -> InputError {
        if p.pointee == 0x0D {
            return textError("carriage return in line (lines must end with \\n only)", line: line)
        }
        if start == p {
            if p.pointee == UInt8(ascii: "-") && start[1] >= 0x30 && start[1] <= 0x39 {
                return textError("negative number '\(tokenText(start))' (numbers are unsigned)", line: line)
            }
            return textError("expected a number, found '\(tokenText(start))'", line: line)
        }
        return textError("bad number '\(tokenText(start))'", line: line)
    }

    @inline(never)
    func overflowError(start: UnsafeMutablePointer<UInt8>, line: Int) -> InputError {
        textError("number out of range '\(tokenText(start))' (numbers must fit in 64 bits)", line: line)
    }

    @inline(never)
    func fieldCountError(_ usage: String, line: Int) -> InputError {
        textError("wrong number of fields, expected '\(usage)'", line: line)
    }

    /// Parses an unsigned decimal at `p`, which must be followed by a blank, '#' or '\n'.
    @inline(__always)
    func parseNumber(_ p: inout UnsafeMutablePointer<UInt8>, line: Int) throws(InputError) -> UInt64 {
        let start = p
        var d = p.pointee &- 48
        if d > 9 { throw badNumberError(start: start, at: p, line: line) }
        var v: UInt64 = 0
        repeat {
            if v >= 1_844_674_407_370_955_161 {
                if v > 1_844_674_407_370_955_161 || d > 5 { throw overflowError(start: start, line: line) }
            }
            v = v &* 10 &+ UInt64(d)
            p += 1
            d = p.pointee &- 48
        } while d <= 9
        let c = p.pointee
        if !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x23) {
            throw badNumberError(start: start, at: p, line: line)
        }
        return v
    }

    /// Skips blanks; true when the line has another field (not at '\n' or '#').
    @inline(__always)
    func hasField(_ p: inout UnsafeMutablePointer<UInt8>) -> Bool {
        var c = p.pointee
        while c == 0x20 || c == 0x09 { p += 1; c = p.pointee }
        return !(c == 0x0A || c == 0x23)
    }

    /// Scans up to `max` numeric fields into `f`; returns how many were present. Throws if
    /// there are more than `max`. Leaves `p` at the '\n' or '#' that ends the record.
    @inline(__always)
    func scanFields(_ p: inout UnsafeMutablePointer<UInt8>, max: Int, usage: String, line: Int,
                    _ f: inout (UInt64, UInt64, UInt64, UInt64)) throws(InputError) -> Int {
        var count = 0
        while hasField(&p) {
            if count == max { throw fieldCountError(usage, line: line) }
            let v = try parseNumber(&p, line: line)
            switch count {
            case 0: f.0 = v
            case 1: f.1 = v
            case 2: f.2 = v
            default: f.3 = v
            }
            count += 1
        }
        return count
    }

    func nextText() throws(InputError) -> TraceRecord? {
        let st = state
        if st.pointee.finished { return nil }
        let base = self.base
        while true {
            var p = base + st.pointee.pos
            if p == base + st.pointee.parseEnd {
                if st.pointee.eof && st.pointee.pos >= st.pointee.dataEnd {
                    st.pointee.finished = true
                    if st.pointee.recordIndex < 0 {
                        throw textError(TraceSyntax.missingHeaderMessage + " (the file has no records)",
                                        line: st.pointee.line)
                    }
                    return nil
                }
                // The tail [pos, dataEnd) holds no newline: after compacting, search only
                // the bytes that the next read brings.
                let searchFrom = st.pointee.dataEnd - st.pointee.pos
                compact()
                try fillTextLines(searchFrom: searchFrom)
                continue
            }
            let line = st.pointee.line
            var c = p.pointee
            while c == 0x20 || c == 0x09 { p += 1; c = p.pointee }
            if c == 0x0A {
                st.pointee.pos = p + 1 - base
                st.pointee.line = line + 1
                continue
            }
            if c == 0x23 {
                while p.pointee != 0x0A { p += 1 }
                st.pointee.pos = p + 1 - base
                st.pointee.line = line + 1
                continue
            }
            let token = p
            let after = p[1]
            let record: TraceRecord
            if after == 0x20 || after == 0x09 || after == 0x0A || after == 0x23 {
                p += 1
                var f: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
                switch c {
                case UInt8(ascii: "a"):
                    let n = try scanFields(&p, max: 4, usage: TraceSyntax.usageAlloc, line: line, &f)
                    if n < 2 { throw fieldCountError(TraceSyntax.usageAlloc, line: line) }
                    if !TraceSyntax.sizeOK(f.1) { throw textError(TraceSyntax.sizeMessage(f.1), line: line) }
                    if !TraceSyntax.ptrsOK(f.2, size: f.1) {
                        throw textError(TraceSyntax.ptrsMessage(ptrs: f.2, size: f.1), line: line)
                    }
                    record = .alloc(id: f.0, size: f.1, ptrs: f.2, site: n == 4 ? f.3 : nil)
                case UInt8(ascii: "f"):
                    let n = try scanFields(&p, max: 1, usage: TraceSyntax.usageFree, line: line, &f)
                    if n != 1 { throw fieldCountError(TraceSyntax.usageFree, line: line) }
                    record = .free(id: f.0)
                case UInt8(ascii: "w"):
                    guard hasField(&p) else { throw fieldCountError(TraceSyntax.usageWrite, line: line) }
                    f.0 = try parseNumber(&p, line: line)
                    guard hasField(&p) else { throw fieldCountError(TraceSyntax.usageWrite, line: line) }
                    f.1 = try parseNumber(&p, line: line)
                    guard hasField(&p) else { throw fieldCountError(TraceSyntax.usageWrite, line: line) }
                    var dst: UInt64? = nil
                    if p.pointee == UInt8(ascii: "-") {
                        let t = p[1]
                        if t == 0x20 || t == 0x09 || t == 0x0A || t == 0x23 {
                            p += 1
                        } else {
                            throw badNumberError(start: p, at: p, line: line)
                        }
                    } else {
                        dst = try parseNumber(&p, line: line)
                    }
                    if hasField(&p) { throw fieldCountError(TraceSyntax.usageWrite, line: line) }
                    record = .write(src: f.0, slot: f.1, dst: dst)
                case UInt8(ascii: "h"):
                    let n = try scanFields(&p, max: 1, usage: TraceSyntax.usageHold, line: line, &f)
                    if n != 1 { throw fieldCountError(TraceSyntax.usageHold, line: line) }
                    record = .hold(id: f.0)
                case UInt8(ascii: "r"):
                    let n = try scanFields(&p, max: 2, usage: TraceSyntax.usageRealloc, line: line, &f)
                    if n != 2 { throw fieldCountError(TraceSyntax.usageRealloc, line: line) }
                    if !TraceSyntax.sizeOK(f.1) { throw textError(TraceSyntax.sizeMessage(f.1), line: line) }
                    record = .realloc(id: f.0, size: f.1)
                case UInt8(ascii: "@"):
                    let n = try scanFields(&p, max: 1, usage: TraceSyntax.usageThread, line: line, &f)
                    if n != 1 { throw fieldCountError(TraceSyntax.usageThread, line: line) }
                    if f.0 >= TraceLimits.maxThreads { throw textError(TraceSyntax.threadMessage(f.0), line: line) }
                    record = .thread(f.0)
                case UInt8(ascii: "s"):
                    record = try scanSite(&p, line: line)
                default:
                    throw textError("unknown record '\(tokenText(token))'", line: line)
                }
            } else {
                record = try scanHeader(&p, line: line)
            }
            // p is at the '\n' or '#' ending the record.
            while p.pointee != 0x0A { p += 1 }
            st.pointee.pos = p + 1 - base
            st.pointee.line = line + 1
            if st.pointee.recordIndex < 0 {
                guard case .header = record else { throw textError(TraceSyntax.missingHeaderMessage, line: line) }
            }
            st.pointee.recordLocation = line
            st.pointee.recordIndex += 1
            return record
        }
    }

    /// `s SITE NAME`; `p` is just after the `s`.
    @inline(never)
    func scanSite(_ p: inout UnsafeMutablePointer<UInt8>, line: Int) throws(InputError) -> TraceRecord {
        guard hasField(&p) else { throw fieldCountError(TraceSyntax.usageSite, line: line) }
        let id = try parseNumber(&p, line: line)
        guard hasField(&p) else { throw fieldCountError(TraceSyntax.usageSite, line: line) }
        let start = p
        while p.pointee != 0x0A && p.pointee != 0x23 { p += 1 }
        var end = p
        while end[-1] == 0x20 || end[-1] == 0x09 { end -= 1 }
        let name = UnsafeBufferPointer(start: UnsafePointer(start), count: end - start)
        if let problem = TraceSyntax.siteNameProblem(name) { throw textError(problem, line: line) }
        return .site(id: id, name: String(decoding: name, as: UTF8.self))
    }

    /// `heaplab-trace VERSION`, or an unknown multi-letter record; `p` is at the token.
    @inline(never)
    func scanHeader(_ p: inout UnsafeMutablePointer<UInt8>, line: Int) throws(InputError) -> TraceRecord {
        let token = p
        let word = "heaplab-trace".utf8
        var matched = true
        var q = p
        for b in word {
            if q.pointee != b { matched = false; break }
            q += 1
        }
        let t = q.pointee
        guard matched && (t == 0x20 || t == 0x09 || t == 0x0A || t == 0x23) else {
            if p.pointee == 0x0D || p[1] == 0x0D {
                throw textError("carriage return in line (lines must end with \\n only)", line: line)
            }
            throw textError("unknown record '\(tokenText(token))'", line: line)
        }
        p = q
        var f: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let n = try scanFields(&p, max: 1, usage: TraceSyntax.usageHeader, line: line, &f)
        if n != 1 { throw textError("bad header, expected 'heaplab-trace 1'", line: line) }
        if f.0 != TraceLimits.version { throw textError(TraceSyntax.versionMessage(f.0), line: line) }
        return .header(version: f.0)
    }
}
