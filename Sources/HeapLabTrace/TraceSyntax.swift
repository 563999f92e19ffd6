// Record syntax shared by every reader and writer: the per-record rules of
// ../shared/TRACE-FORMAT.md that need no history (ranges of numbers, site-name shape),
// the canonical text form of a record, and the wording of syntax errors.
//
// One place owns these rules so that the text reader, the binary reader and both writers
// accept exactly the same set of records; that is what makes text <-> binary round trips
// exact. Rules that need history (liveness, holds, reachability, declared sites, header
// once) belong to `TraceValidator`.
//
// Canonical text (what `TraceWriter` emits and `TraceRecord.description` returns):
//   heaplab-trace 1
//   s SITE NAME
//   @ T
//   a ID SIZE                 (ptrs 0, no site)
//   a ID SIZE PTRS            (ptrs > 0, no site)
//   a ID SIZE PTRS SITE       (site given; PTRS written even when 0)
//   f ID | h ID | r ID SIZE
//   w SRC SLOT DST            (DST `-` for nil)
// Fields are separated by one space, lines end with "\n", no comments.
//
// Site names: the text format makes a name "the rest of the line", and `#` starts a
// comment, so a name that survives a text round trip is 1...65536 bytes of printable ASCII
// (0x20...0x7E) or tab, without `#`, not starting or ending with a space or tab. Both
// readers reject other names (the binary one too, so every binary trace has a text twin).

extension TraceLimits {
    /// Longest site name, in bytes.
    public static let maxSiteNameLength = 65536
}

/// Record-level (history-free) rules of the trace format.
enum TraceSyntax {
    static let usageHeader = "heaplab-trace 1"
    static let usageSite = "s SITE NAME"
    static let usageThread = "@ T"
    static let usageAlloc = "a ID SIZE [PTRS [SITE]]"
    static let usageFree = "f ID"
    static let usageHold = "h ID"
    static let usageWrite = "w SRC SLOT DST"
    static let usageRealloc = "r ID SIZE"

    static func threadMessage(_ t: UInt64) -> String {
        "thread \(t) out of range (must be below \(TraceLimits.maxThreads))"
    }

    static func sizeMessage(_ size: UInt64) -> String {
        "size \(size) out of range (must be 1...2^40)"
    }

    static func ptrsMessage(ptrs: UInt64, size: UInt64) -> String {
        "\(ptrs) pointer slots do not fit in \(size) bytes (PTRS * 8 must be <= SIZE)"
    }

    static func versionMessage(_ v: UInt64) -> String {
        "unsupported trace version \(v) (this reader reads version \(TraceLimits.version))"
    }

    static let missingHeaderMessage = "missing header: a trace starts with 'heaplab-trace 1'"

    @inline(__always)
    static func sizeOK(_ size: UInt64) -> Bool { size &- 1 < TraceLimits.maxSize }

    @inline(__always)
    static func ptrsOK(_ ptrs: UInt64, size: UInt64) -> Bool { ptrs <= size >> 3 }

    /// Checks a site name given as bytes; nil when it is acceptable.
    static func siteNameProblem(_ name: UnsafeBufferPointer<UInt8>) -> String? {
        if name.isEmpty { return "missing site name" }
        if name.count > TraceLimits.maxSiteNameLength {
            return "site name longer than \(TraceLimits.maxSiteNameLength) bytes"
        }
        for b in name where !(b >= 0x20 && b <= 0x7E && b != 0x23) && b != 0x09 {
            return "site name contains byte \(hexByte(b)), which a text trace cannot hold"
        }
        let first = name[0], last = name[name.count - 1]
        if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 {
            return "site name starts or ends with a space or tab"
        }
        return nil
    }

    static func siteNameProblem(_ name: String) -> String? {
        var copy = name
        return copy.withUTF8 { siteNameProblem($0) }
    }

    /// The problem with a record that no reader would accept, or nil.
    static func problem(_ record: TraceRecord) -> String? {
        switch record {
        case .header(let version):
            return version == TraceLimits.version ? nil : versionMessage(version)
        case .site(_, let name):
            return siteNameProblem(name)
        case .thread(let t):
            return t < TraceLimits.maxThreads ? nil : threadMessage(t)
        case .alloc(_, let size, let ptrs, _):
            if !sizeOK(size) { return sizeMessage(size) }
            if !ptrsOK(ptrs, size: size) { return ptrsMessage(ptrs: ptrs, size: size) }
            return nil
        case .realloc(_, let size):
            return sizeOK(size) ? nil : sizeMessage(size)
        case .free, .hold, .write:
            return nil
        }
    }

    static func hexByte(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return "0x" + String(digits[Int(b >> 4)]) + String(digits[Int(b & 15)])
    }

    /// A short, printable rendering of untrusted bytes for error messages.
    static func printable(_ p: UnsafePointer<UInt8>, count: Int, limit: Int = 24) -> String {
        var s = ""
        for i in 0..<min(count, limit) {
            let b = p[i]
            if b >= 0x20 && b < 0x7F && b != 0x27 { s.unicodeScalars.append(Unicode.Scalar(b)) }
            else { s += "\\x" + String(hexByte(b).dropFirst(2)) }
        }
        if count > limit { s += "..." }
        return s
    }

    // MARK: Canonical text

    /// Longest canonical text line (site record with the longest name, plus newline).
    static let maxTextLineLength = TraceLimits.maxSiteNameLength + 32

    /// Writes the canonical text line of `record` (with "\n") at `out`, which must have room
    /// for `maxTextLineLength` bytes (or 5 * 21 + 8 for records other than `s`). Returns
    /// the number of bytes written. The record must be free of `problem`s.
    @inline(__always)
    static func formatText(_ record: TraceRecord, into out: UnsafeMutablePointer<UInt8>) -> Int {
        var p = out
        switch record {
        case .header(let version):
            for b in "heaplab-trace ".utf8 { p.pointee = b; p += 1 }
            p = formatDecimal(version, into: p)
        case .site(let id, let name):
            p[0] = UInt8(ascii: "s"); p[1] = 0x20; p += 2
            p = formatDecimal(id, into: p)
            p.pointee = 0x20; p += 1
            var n = name
            n.withUTF8 { u in
                p.update(from: u.baseAddress!, count: u.count)
                p += u.count
            }
        case .thread(let t):
            p[0] = UInt8(ascii: "@"); p[1] = 0x20; p += 2
            p = formatDecimal(t, into: p)
        case .alloc(let id, let size, let ptrs, let site):
            p[0] = UInt8(ascii: "a"); p[1] = 0x20; p += 2
            p = formatDecimal(id, into: p)
            p.pointee = 0x20; p += 1
            p = formatDecimal(size, into: p)
            if ptrs != 0 || site != nil {
                p.pointee = 0x20; p += 1
                p = formatDecimal(ptrs, into: p)
            }
            if let site {
                p.pointee = 0x20; p += 1
                p = formatDecimal(site, into: p)
            }
        case .free(let id):
            p[0] = UInt8(ascii: "f"); p[1] = 0x20; p += 2
            p = formatDecimal(id, into: p)
        case .hold(let id):
            p[0] = UInt8(ascii: "h"); p[1] = 0x20; p += 2
            p = formatDecimal(id, into: p)
        case .write(let src, let slot, let dst):
            p[0] = UInt8(ascii: "w"); p[1] = 0x20; p += 2
            p = formatDecimal(src, into: p)
            p.pointee = 0x20; p += 1
            p = formatDecimal(slot, into: p)
            p.pointee = 0x20; p += 1
            if let dst { p = formatDecimal(dst, into: p) } else { p.pointee = UInt8(ascii: "-"); p += 1 }
        case .realloc(let id, let size):
            p[0] = UInt8(ascii: "r"); p[1] = 0x20; p += 2
            p = formatDecimal(id, into: p)
            p.pointee = 0x20; p += 1
            p = formatDecimal(size, into: p)
        }
        p.pointee = 0x0A
        return p + 1 - out
    }

    /// Writes `v` in decimal at `p` (at most 20 bytes); returns the byte after it.
    @inline(__always)
    static func formatDecimal(_ v: UInt64, into p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        if v < 10 { p.pointee = UInt8(truncatingIfNeeded: v) &+ 48; return p + 1 }
        var digits = 0
        var t = v
        while t != 0 { digits &+= 1; t /= 10 }
        var q = p + digits
        t = v
        while t != 0 {
            q -= 1
            q.pointee = UInt8(truncatingIfNeeded: t % 10) &+ 48
            t /= 10
        }
        return p + digits
    }
}

extension TraceRecord: CustomStringConvertible {
    /// The record's canonical text line, without the newline (`a 1 32 2 1`, `w 1 0 -`).
    public var description: String {
        let capacity: Int
        if case .site(_, let name) = self { capacity = name.utf8.count + 32 } else { capacity = 128 }
        return String(unsafeUninitializedCapacity: capacity) { buffer in
            TraceSyntax.formatText(self, into: buffer.baseAddress!) - 1
        }
    }
}
