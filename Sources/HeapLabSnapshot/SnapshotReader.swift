// Reads snapshot files (docs/snapshot-format.md), trusting nothing in them.
//
// Steps:
//   1. Read the whole file into one buffer (its size from fstat; no count from the file
//      sizes anything yet).
//   2. Frames: check the magic and version, then walk the frames. Each frame's length must
//      fit in the bytes that are left, its CRC-32 must match, its tag must be the current
//      section's or the next one's in the fixed order. Payloads are moved down in place so
//      that each section's payload is contiguous; a small table maps payload positions back
//      to file offsets for error messages. The `end` section must come last and say how many
//      bytes preceded it.
//   3. Sections: decode with a cursor bounded by the section. Every count is checked against
//      the bytes left in its section (count x the fewest bytes one element can take) before
//      any array is sized from it; every index is checked against what it indexes.
//
// Every problem is an InputError `FILE: byte OFFSET: what is wrong`, OFFSET being the file
// offset of the offending byte (for a checksum, the frame's first byte).

public import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

public enum SnapshotReader {
    /// Reads and checks the snapshot at `path`.
    public static func read(path: String) throws(InputError) -> HeapSnapshot {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw InputError(file: path, location: .wholeFile, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw InputError(file: path, location: .wholeFile, message: "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw InputError(file: path, location: .wholeFile, message: "not a regular file")
        }
        let size = Int(st.st_size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < size {
            let n = Glibc.read(fd, buffer.baseAddress! + done, size - done)
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                throw InputError(file: path, byteOffset: done, "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
        return try decode(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<done]), file: path)
    }

    /// Decodes a snapshot held in `bytes` (which is overwritten: payloads are compacted).
    public static func decode(_ bytes: UnsafeMutableRawBufferPointer, file: String) throws(InputError) -> HeapSnapshot {
        let p = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        // Read before frames() compacts payloads over the header (it checks the version).
        let version = bytes.count >= SnapshotFormat.headerBytes
            ? UInt32(p[8]) | UInt32(p[9]) << 8 | UInt32(p[10]) << 16 | UInt32(p[11]) << 24 : 0
        let sections = try frames(bytes, file: file)
        var decoder = SectionDecoder(file: file, base: p, sections: sections, version: version)
        return try decoder.decodeAll()
    }

    /// Convenience for tests: decodes a copy of `data`.
    public static func decode(_ data: [UInt8], file: String) throws(InputError) -> HeapSnapshot {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 16)
        defer { copy.deallocate() }
        data.withUnsafeBytes { copy.copyMemory(from: $0) }
        return try decode(UnsafeMutableRawBufferPointer(rebasing: copy[0..<data.count]), file: file)
    }

    /// One frame's payload: where it now sits (compacted) and where it was in the file.
    struct FrameMap {
        var logical: Int
        var fileOffset: Int
        var length: Int
    }

    /// A section: its compacted payload [start, end) and the frames it came from.
    struct SectionSpan {
        var section: SnapshotSection
        var start: Int
        var end: Int
        var frames: [FrameMap]
        /// File offset of the section's first frame.
        var firstFrameOffset: Int

        func fileOffset(_ logical: Int) -> Int {
            var best = frames[0]
            for f in frames where f.logical <= logical { best = f }
            return best.fileOffset + (logical - best.logical)
        }
    }

    /// Step 2: validates the framing and checksums, compacts payloads.
    static func frames(_ bytes: UnsafeMutableRawBufferPointer, file: String) throws(InputError) -> [SectionSpan] {
        let total = bytes.count
        let p = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let magic = SnapshotFormat.magic
        for k in 0..<magic.count {
            guard k < total else {
                throw InputError(file: file, byteOffset: total, "truncated: the file ends inside the 8-byte magic number")
            }
            guard p[k] == magic[k] else {
                throw InputError(file: file, byteOffset: k, "not a HeapLab snapshot (bad magic number)")
            }
        }
        guard total >= SnapshotFormat.headerBytes else {
            throw InputError(file: file, byteOffset: total, "truncated: the file ends inside the version number")
        }
        let version = UInt32(p[8]) | UInt32(p[9]) << 8 | UInt32(p[10]) << 16 | UInt32(p[11]) << 24
        guard version >= SnapshotFormat.oldestReadableVersion && version <= SnapshotFormat.version else {
            throw InputError(file: file, byteOffset: 8,
                             "snapshot format version \(version); this heaplab reads versions \(SnapshotFormat.oldestReadableVersion) to \(SnapshotFormat.version)")
        }
        var sections: [SectionSpan] = []
        var expected = 0                 // index into `required` of the next section to open
        var offset = SnapshotFormat.headerBytes
        var write = 0                    // compacted payload fill
        var sawEnd = false
        while offset < total {
            if sawEnd {
                throw InputError(file: file, byteOffset: offset, "data after the end section")
            }
            guard total - offset >= SnapshotFormat.frameHeaderBytes else {
                throw InputError(file: file, byteOffset: offset,
                                 "truncated: a frame header needs 5 bytes, \(total - offset) left")
            }
            let tag = p[offset]
            let length = Int(p[offset + 1]) | Int(p[offset + 2]) << 8 | Int(p[offset + 3]) << 16 | Int(p[offset + 4]) << 24
            let left = total - offset - SnapshotFormat.frameHeaderBytes
            guard length <= SnapshotFormat.maxFramePayload else {
                throw InputError(file: file, byteOffset: offset + 1,
                                 "frame length \(length) exceeds the limit of \(SnapshotFormat.maxFramePayload) bytes")
            }
            guard length + SnapshotFormat.frameTrailerBytes <= left else {
                throw InputError(file: file, byteOffset: offset + 1,
                                 "truncated: a frame of \(length) payload bytes and a 4-byte checksum needs \(length + 4) bytes, \(left) left")
            }
            let covered = SnapshotFormat.frameHeaderBytes + length
            let stored = UInt32(p[offset + covered]) | UInt32(p[offset + covered + 1]) << 8
                | UInt32(p[offset + covered + 2]) << 16 | UInt32(p[offset + covered + 3]) << 24
            let computed = CRC32.checksum(UnsafeRawBufferPointer(start: p + offset, count: covered))
            guard stored == computed else {
                throw InputError(file: file, byteOffset: offset,
                                 "checksum mismatch in a frame of section \(sectionName(tag)) (stored 0x\(hex(stored)), computed 0x\(hex(computed)))")
            }
            let payloadOffset = offset + SnapshotFormat.frameHeaderBytes
            offset += covered + SnapshotFormat.frameTrailerBytes
            if SnapshotSection.isOptionalExtension(tag) { continue }
            guard let section = SnapshotSection(rawValue: tag) else {
                throw InputError(file: file, byteOffset: payloadOffset - 5, "unknown section tag 0x\(hex(UInt32(tag)))")
            }
            // Continue the open section, or open the next one in order.
            if let last = sections.last, last.section == section, section != .end {
                sections[sections.count - 1].frames.append(FrameMap(logical: write, fileOffset: payloadOffset, length: length))
            } else {
                let want: SnapshotSection = expected < SnapshotSection.required.count ? SnapshotSection.required[expected] : .end
                guard section == want else {
                    throw InputError(file: file, byteOffset: payloadOffset - 5,
                                     "section \(section.name) where section \(want.name) was expected")
                }
                expected += 1
                if section == .end { sawEnd = true }
                sections.append(SectionSpan(section: section, start: write, end: write,
                                            frames: [FrameMap(logical: write, fileOffset: payloadOffset, length: length)],
                                            firstFrameOffset: payloadOffset - 5))
            }
            if write != payloadOffset {
                UnsafeMutableRawPointer(p + write).copyMemory(from: p + payloadOffset, byteCount: length)
            }
            write += length
            sections[sections.count - 1].end = write
        }
        guard sawEnd else {
            let want = expected < SnapshotSection.required.count ? SnapshotSection.required[expected].name : "end"
            throw InputError(file: file, byteOffset: total, "truncated: the file ends before section \(want)")
        }
        return sections
    }

    static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 8 - s.count)) + s
    }

    static func sectionName(_ tag: UInt8) -> String {
        SnapshotSection(rawValue: tag)?.name ?? "0x\(String(tag, radix: 16))"
    }
}

/// Bounded reads from one section's compacted payload.
struct PayloadCursor {
    let file: String
    let base: UnsafePointer<UInt8>
    let span: SnapshotReader.SectionSpan
    var pos: Int

    init(file: String, base: UnsafePointer<UInt8>, span: SnapshotReader.SectionSpan) {
        self.file = file
        self.base = base
        self.span = span
        pos = span.start
    }

    var remaining: Int { span.end - pos }

    func error(at logical: Int, _ message: String) -> InputError {
        InputError(file: file, byteOffset: span.fileOffset(logical), "section \(span.section.name): \(message)")
    }

    func error(_ message: String) -> InputError { error(at: pos, message) }

    @inline(__always)
    mutating func varint() throws(InputError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = pos
        while true {
            guard pos < span.end else { throw error(at: start, "truncated: a number runs past the end of the section") }
            let b = base[pos]
            pos += 1
            if shift == 63 && b > 1 { throw error(at: start, "number does not fit in 64 bits") }
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw error(at: start, "number does not fit in 64 bits") }
        }
    }

    /// A value that must be <= `limit`.
    mutating func bounded(_ what: String, _ limit: UInt64) throws(InputError) -> UInt64 {
        let start = pos
        let v = try varint()
        guard v <= limit else { throw error(at: start, "\(what) \(v) is larger than \(limit)") }
        return v
    }

    mutating func int(_ what: String, max limit: Int = Int.max) throws(InputError) -> Int {
        Int(try bounded(what, UInt64(limit)))
    }

    /// A count of elements each taking at least `minBytes`: checked against what is left
    /// before the caller sizes anything from it.
    mutating func count(_ what: String, minBytes: Int) throws(InputError) -> Int {
        let start = pos
        let v = try varint()
        let left = remaining
        guard v <= UInt64(left / max(minBytes, 1)) else {
            throw error(at: start, "\(what) count \(v) cannot fit: each takes at least \(minBytes) byte(s) and only \(left) byte(s) are left in the section")
        }
        return Int(v)
    }

    mutating func signed() throws(InputError) -> Int64 {
        let z = try varint()
        return Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1)))
    }

    mutating func string(_ what: String) throws(InputError) -> String {
        let n = try count("\(what) byte", minBytes: 1)
        let s = String(decoding: UnsafeBufferPointer(start: base + pos, count: n), as: UTF8.self)
        pos += n
        return s
    }

    /// `n` little-endian words appended to `out` (the caller has checked n * 8 <= remaining).
    mutating func words(_ n: Int, into out: inout [UInt64]) {
        for k in 0..<n {
            out.append(UInt64(littleEndian: UnsafeRawPointer(base + pos + 8 * k).loadUnaligned(as: UInt64.self)))
        }
        pos += 8 * n
    }

    func expectEnd() throws(InputError) {
        guard pos == span.end else { throw error("\(span.end - pos) unexpected byte(s) at the end of the section") }
    }
}

/// Step 3: one decoder per file.
struct SectionDecoder {
    let file: String
    let base: UnsafePointer<UInt8>
    let sections: [SnapshotReader.SectionSpan]
    /// The file's format version (gc-state has three more fields from version 2 on).
    let version: UInt32
    var snapshot = HeapSnapshot()
    var declaredObjects = 0, declaredEdges = 0, declaredSpans = 0, declaredSites = 0, declaredRoots = 0

    init(file: String, base: UnsafePointer<UInt8>, sections: [SnapshotReader.SectionSpan], version: UInt32) {
        self.file = file
        self.base = base
        self.sections = sections
        self.version = version
    }

    func cursor(_ s: SnapshotSection) -> PayloadCursor {
        PayloadCursor(file: file, base: base, span: sections.first { $0.section == s }!)
    }

    mutating func decodeAll() throws(InputError) -> HeapSnapshot {
        try info()
        try sizeClasses()
        try layout()
        try sites()
        try objects()
        try edges()
        try roots()
        try gcState()
        try statistics()
        try end()
        return snapshot
    }

    mutating func info() throws(InputError) {
        var c = cursor(.info)
        var i = SnapshotInfo()
        i.producer = try c.string("producer")
        i.allocator = try c.string("allocator")
        i.trace = try c.string("trace")
        i.record = try c.int("record", max: Int.max - 1) - 1
        let triggerAt = c.pos
        guard let trigger = SnapshotTrigger(rawValue: UInt8(truncatingIfNeeded: try c.bounded("trigger", 255))) else {
            throw c.error(at: triggerAt, "unknown trigger code")
        }
        i.trigger = trigger
        i.pauseNanos = try c.varint()
        i.unixTime = try c.varint()
        i.threads = try c.int("thread count")
        i.unresolvedPointers = try c.varint()
        declaredObjects = try c.int("object count")
        declaredEdges = try c.int("edge count")
        declaredSpans = try c.int("span count")
        declaredSites = try c.int("site count")
        declaredRoots = try c.int("root count")
        try c.expectEnd()
        snapshot.info = i
    }

    mutating func sizeClasses() throws(InputError) {
        var c = cursor(.sizeClasses)
        let n = try c.count("size class", minBytes: 2)
        guard n <= 256 else { throw c.error("\(n) size classes; at most 256") }
        snapshot.sizeClasses.reserveCapacity(n)
        for _ in 0..<n {
            let size = try c.int("class size", max: 1 << 40)
            let pages = try c.int("class pages", max: 1 << 20)
            snapshot.sizeClasses.append(SnapshotSizeClass(size: size, pages: pages))
        }
        try c.expectEnd()
    }

    mutating func layout() throws(InputError) {
        var c = cursor(.layout)
        let arenaCount = try c.count("arena", minBytes: 2)
        snapshot.arenas.reserveCapacity(arenaCount)
        for _ in 0..<arenaCount {
            snapshot.arenas.append(SnapshotArena(start: try c.varint(), bytes: try c.varint()))
        }
        let countAt = c.pos
        let n = try c.count("span", minBytes: 7 + 16)
        guard n == declaredSpans else { throw c.error(at: countAt, "\(n) spans; the info section declared \(declaredSpans)") }
        snapshot.spans.reserveCapacity(n)
        var previousEnd: UInt64 = 0
        let page = UInt64(HeapSnapshot.pageSize)
        for k in 0..<n {
            let at = c.pos
            let delta = try c.varint()
            let (start, o1) = previousEnd.addingReportingOverflow(delta)
            let pages = try c.bounded("span page count", UInt64(UInt32.max))
            guard pages >= 1 else { throw c.error(at: at, "span \(k) has no pages") }
            let (end, o2) = start.addingReportingOverflow(pages * page)
            guard !o1, !o2 else { throw c.error(at: at, "span \(k) runs past the end of the address space") }
            let clsAt = c.pos
            let cls = try c.bounded("size class", 255)
            guard Int(cls) < max(snapshot.sizeClasses.count, 1) else {
                throw c.error(at: clsAt, "span \(k) names size class \(cls); the table has \(snapshot.sizeClasses.count)")
            }
            let flags = try c.bounded("span flags", 7)
            let state = try c.bounded("span state", 255)
            let elemSize = try c.varint()
            let slotsAt = c.pos
            let slots = try c.bounded("slot count", UInt64(UInt32.max))
            let (used, o3) = slots.multipliedReportingOverflow(by: elemSize)
            guard slots >= 1, elemSize >= 1, !o3, used <= pages * page else {
                throw c.error(at: slotsAt, "span \(k): \(slots) slots of \(elemSize) bytes do not fit in \(pages) page(s)")
            }
            let wordsEach = (Int(slots) + 63) >> 6
            guard wordsEach <= c.remaining / 16 else {
                throw c.error(at: slotsAt, "span \(k): bitmaps of \(wordsEach) words each run past the end of the section")
            }
            let offset = snapshot.allocBits.count
            c.words(wordsEach, into: &snapshot.allocBits)
            c.words(wordsEach, into: &snapshot.markBits)
            snapshot.spans.append(SnapshotSpan(
                start: start, pages: UInt32(pages), sizeClass: UInt8(cls), noscan: flags & 1 != 0,
                cached: flags & 2 != 0, needzero: flags & 4 != 0, elemSize: elemSize, slots: UInt32(slots),
                bitsOffset: offset))
            snapshot.spans[k].state = UInt8(state)
            previousEnd = end
        }
        try c.expectEnd()
    }

    mutating func sites() throws(InputError) {
        var c = cursor(.sites)
        let at = c.pos
        let n = try c.count("site", minBytes: 2)
        guard n == declaredSites else { throw c.error(at: at, "\(n) sites; the info section declared \(declaredSites)") }
        guard n < Int(UInt32.max) else { throw c.error(at: at, "too many sites") }
        snapshot.sites.reserveCapacity(n)
        for _ in 0..<n {
            let id = try c.varint()
            snapshot.sites.append(SnapshotSite(id: id, name: try c.string("site name")))
        }
        try c.expectEnd()
    }

    mutating func objects() throws(InputError) {
        var c = cursor(.objects)
        let at = c.pos
        let n = try c.count("object", minBytes: 6)
        guard n == declaredObjects else { throw c.error(at: at, "\(n) objects; the info section declared \(declaredObjects)") }
        guard n < Int(Int32.max) else { throw c.error(at: at, "more than 2^31-1 objects") }
        var address = [UInt64](), size = [UInt64](), cls = [UInt8](), ptrs = [UInt64](), site = [UInt32](), ids = [UInt64]()
        address.reserveCapacity(n); size.reserveCapacity(n); cls.reserveCapacity(n)
        ptrs.reserveCapacity(n); site.reserveCapacity(n); ids.reserveCapacity(n)
        let classCount = UInt64(max(snapshot.sizeClasses.count, 1) - 1)
        let siteCount = UInt64(snapshot.sites.count)
        var previous: UInt64 = 0
        for i in 0..<n {
            let objectAt = c.pos
            let delta = try c.varint()
            let (a, overflow) = previous.addingReportingOverflow(delta)
            guard !overflow, i == 0 || delta > 0 else {
                throw c.error(at: objectAt, "object \(i): addresses must strictly increase")
            }
            previous = a
            let sizeAt = c.pos
            let s = try c.varint()
            guard s >= 1 else { throw c.error(at: sizeAt, "object \(i) has size 0") }
            let k = try c.bounded("size class", classCount)
            let ptrsAt = c.pos
            let p = try c.varint()
            guard p <= s / 8 else { throw c.error(at: ptrsAt, "object \(i): \(p) pointer slots do not fit in \(s) bytes") }
            let st = try c.bounded("site index", siteCount)
            address.append(a); size.append(s); cls.append(UInt8(k)); ptrs.append(p); site.append(UInt32(st))
            ids.append(try c.varint())
        }
        try c.expectEnd()
        snapshot.address = address; snapshot.size = size; snapshot.sizeClass = cls
        snapshot.pointerSlots = ptrs; snapshot.site = site; snapshot.traceID = ids
    }

    mutating func edges() throws(InputError) {
        var c = cursor(.edges)
        let n = snapshot.objectCount
        let at = c.pos
        let total = try c.varint()
        guard total <= UInt64(max(0, c.remaining - n) / 2) else {
            throw c.error(at: at, "edge count \(total) cannot fit: \(n) objects and 2 bytes per edge need more than the \(c.remaining) byte(s) left")
        }
        guard Int(total) == declaredEdges else { throw c.error(at: at, "\(total) edges; the info section declared \(declaredEdges)") }
        let m = Int(total)
        var starts = [Int](repeating: 0, count: n + 1)
        var slots = [UInt32](repeating: 0, count: m)
        var targets = [Int32](repeating: 0, count: m)
        var e = 0
        try snapshot.pointerSlots.withUnsafeBufferPointer { (ptrs) throws(InputError) in
            for i in 0..<n {
                let kAt = c.pos
                let k = try c.varint()
                guard k <= ptrs[i], k <= UInt64(m - e) else {
                    throw c.error(at: kAt, "object \(i) claims \(k) pointer edges (it has \(ptrs[i]) slots; \(m - e) edges left)")
                }
                var next: UInt64 = 0
                for _ in 0..<Int(k) {
                    let slotAt = c.pos
                    let gap = try c.varint()
                    let (slot, o) = next.addingReportingOverflow(gap)
                    guard !o, slot < ptrs[i], slot <= UInt64(UInt32.max) else {
                        throw c.error(at: slotAt, "object \(i): pointer slot out of range (it has \(ptrs[i]) slots)")
                    }
                    let targetAt = c.pos
                    let t = try c.varint()
                    guard t < UInt64(n) else { throw c.error(at: targetAt, "object \(i): edge to object \(t) of \(n)") }
                    slots[e] = UInt32(slot)
                    targets[e] = Int32(t)
                    e += 1
                    next = slot + 1
                }
                starts[i + 1] = e
            }
        }
        guard e == m else { throw c.error("\(e) edges present; the section declared \(m)") }
        try c.expectEnd()
        snapshot.edgeStart = starts
        snapshot.edgeSlot = slots
        snapshot.edgeTarget = targets
    }

    mutating func roots() throws(InputError) {
        var c = cursor(.roots)
        let at = c.pos
        let n = try c.count("root", minBytes: 3)
        guard n == declaredRoots else { throw c.error(at: at, "\(n) roots; the info section declared \(declaredRoots)") }
        snapshot.roots.reserveCapacity(n)
        let objects = UInt64(max(snapshot.objectCount, 1) - 1)
        for _ in 0..<n {
            let rootAt = c.pos
            guard snapshot.objectCount > 0 else { throw c.error(at: rootAt, "a root in a snapshot without objects") }
            let o = try c.bounded("root object", objects)
            let t = try c.bounded("thread", UInt64(UInt16.max))
            let h = try c.bounded("hold count", UInt64(UInt32.max))
            snapshot.roots.append(SnapshotRoot(object: Int32(o), thread: UInt16(t), holds: UInt32(h)))
        }
        try c.expectEnd()
    }

    mutating func gcState() throws(InputError) {
        var c = cursor(.gcState)
        var g = SnapshotGCState()
        g.cycle = try c.varint()
        let at = c.pos
        guard let phase = SnapshotGCPhase(rawValue: UInt8(truncatingIfNeeded: try c.bounded("phase", 255))) else {
            throw c.error(at: at, "unknown GC phase")
        }
        g.phase = phase
        g.heapGoal = try c.varint()
        g.heapMarked = try c.varint()
        g.gcPercent = try c.varint()
        if version >= 2 {
            g.heapLive = try c.varint()
            let flagsAt = c.pos
            g.flags = try c.varint()
            guard g.flags < 16 else { throw c.error(at: flagsAt, "unknown GC flags 0x\(String(g.flags, radix: 16))") }
            g.memoryLimit = try c.varint()
        }
        try c.expectEnd()
        snapshot.gc = g
    }

    mutating func statistics() throws(InputError) {
        var c = cursor(.statistics)
        let n = try c.count("statistic", minBytes: 2)
        snapshot.statistics.reserveCapacity(n)
        for _ in 0..<n {
            let name = try c.string("statistic name")
            snapshot.statistics.append((name: name, value: try c.signed()))
        }
        let m = try c.count("class statistics", minBytes: 5)
        snapshot.classStatistics.reserveCapacity(m)
        for _ in 0..<m {
            snapshot.classStatistics.append(SnapshotClassStatistics(
                sizeClass: try c.int("size class", max: 255), allocations: try c.varint(), frees: try c.varint(),
                liveObjects: try c.varint(), spans: try c.varint()))
        }
        try c.expectEnd()
    }

    mutating func end() throws(InputError) {
        var c = cursor(.end)
        let at = c.pos
        let before = try c.varint()
        let actual = c.span.firstFrameOffset
        guard before == UInt64(actual) else {
            throw c.error(at: at, "the end section says \(before) bytes precede it; \(actual) do")
        }
        try c.expectEnd()
    }
}
