// Writes snapshot files (docs/snapshot-format.md) as a stream, atomically.
//
// `SnapshotWriter` is the frame layer: `begin(section)`, then varints, strings and raw words,
// then `end()`. Payload bytes gather in one buffer of `SnapshotFormat.writerFramePayload`
// (1 MiB) plus slack; when it fills, a frame (tag, length, payload, CRC-32) goes to the
// output and the section goes on in the next frame, so a snapshot of any size is written with
// 1 MiB of buffer and never held whole in memory. Output goes through AtomicOutputFile: a
// temporary name, renamed over the destination only by `finish()`; a writer dropped without
// `finish()` leaves nothing behind.
//
// `HeapSnapshot.write(to:)` streams every section of a model through one writer. Hot path:
// `varint` checks the fill level once (the slack holds any one varint) and stores bytes
// through a raw pointer.

public import HeapLabTrace

public final class SnapshotWriter {
    let out: AtomicOutputFile
    /// Frame under construction: 5 header bytes, then payload.
    let frame: UnsafeMutablePointer<UInt8>
    /// Fill level and counters in raw memory: the hot path touches no class property (no
    /// dynamic exclusivity check per varint).
    struct State {
        var fill = 0
        var tag: UInt8 = 0
        var framesInSection = 0
        var open = false
        var bytesWritten = 0
        var frames = 0
    }
    let state: UnsafeMutablePointer<State>
    static let slack = 64

    /// Bytes handed to the output so far (header and frames).
    public var bytesWritten: Int { state.pointee.bytesWritten }
    public var frames: Int { state.pointee.frames }

    /// The format version being written (gc-state's fields depend on it).
    public let version: UInt32

    /// Creates `path`'s temporary file and writes the file header. `version` may be an older
    /// readable version (tests of the reader's compatibility); the default is the current.
    public init(path: String, version: UInt32 = SnapshotFormat.version) throws(InputError) {
        precondition(version >= SnapshotFormat.oldestReadableVersion && version <= SnapshotFormat.version)
        self.version = version
        out = try AtomicOutputFile(path: path)
        frame = .allocate(capacity: SnapshotFormat.frameHeaderBytes + SnapshotFormat.writerFramePayload + Self.slack)
        state = .allocate(capacity: 1)
        state.initialize(to: State())
        var header = SnapshotFormat.magic
        var v = version.littleEndian
        withUnsafeBytes(of: &v) { header.append(contentsOf: $0) }
        try out.write(header)
        state.pointee.bytesWritten = header.count
    }

    deinit {
        frame.deallocate()
        state.deallocate()
        // AtomicOutputFile removes its temporary file unless committed.
    }

    public func begin(_ section: SnapshotSection) {
        precondition(!state.pointee.open, "section \(state.pointee.tag) still open")
        state.pointee.tag = section.rawValue
        state.pointee.fill = 0
        state.pointee.framesInSection = 0
        state.pointee.open = true
    }

    /// Closes the section (emits its last frame; an empty section still gets one frame).
    public func end() throws(InputError) {
        precondition(state.pointee.open)
        if state.pointee.fill > 0 || state.pointee.framesInSection == 0 { try emitFrame() }
        state.pointee.open = false
    }

    @inline(__always)
    public func varint(_ value: UInt64) throws(InputError) {
        let st = state
        if st.pointee.fill >= SnapshotFormat.writerFramePayload { try emitFrame() }
        var v = value
        let start = frame + SnapshotFormat.frameHeaderBytes
        var p = start + st.pointee.fill
        while v >= 0x80 {
            p.pointee = UInt8(truncatingIfNeeded: v) | 0x80
            p += 1
            v >>= 7
        }
        p.pointee = UInt8(truncatingIfNeeded: v)
        st.pointee.fill = p - start + 1
    }

    @inline(__always)
    public func varint(_ value: Int) throws(InputError) {
        precondition(value >= 0)
        try varint(UInt64(value))
    }

    /// A signed value, zigzag-encoded.
    public func signed(_ value: Int64) throws(InputError) {
        try varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public func bytes(_ raw: UnsafeRawBufferPointer) throws(InputError) {
        var done = 0
        while done < raw.count {
            if state.pointee.fill >= SnapshotFormat.writerFramePayload { try emitFrame() }
            let n = min(raw.count - done, SnapshotFormat.writerFramePayload - state.pointee.fill)
            UnsafeMutableRawPointer(frame + SnapshotFormat.frameHeaderBytes + state.pointee.fill)
                .copyMemory(from: raw.baseAddress! + done, byteCount: n)
            state.pointee.fill += n
            done += n
        }
    }

    public func string(_ s: String) throws(InputError) {
        var copy = s
        let utf8 = copy.withUTF8 { Array($0) }
        try varint(utf8.count)
        for b in utf8 { try byte(b) }
    }

    @inline(__always)
    func byte(_ b: UInt8) throws(InputError) {
        if state.pointee.fill >= SnapshotFormat.writerFramePayload { try emitFrame() }
        frame[SnapshotFormat.frameHeaderBytes + state.pointee.fill] = b
        state.pointee.fill += 1
    }

    /// 64-bit words, little-endian.
    public func words(_ w: UnsafeBufferPointer<UInt64>) throws(InputError) {
        #if _endian(little)
        try bytes(UnsafeRawBufferPointer(w))
        #else
        for x in w {
            for k in 0..<8 { try byte(UInt8(truncatingIfNeeded: x >> UInt64(8 * k))) }
        }
        #endif
    }

    @inline(never)
    func emitFrame() throws(InputError) {
        let fill = state.pointee.fill
        let length = UInt32(fill)
        frame[0] = state.pointee.tag
        frame[1] = UInt8(truncatingIfNeeded: length)
        frame[2] = UInt8(truncatingIfNeeded: length >> 8)
        frame[3] = UInt8(truncatingIfNeeded: length >> 16)
        frame[4] = UInt8(truncatingIfNeeded: length >> 24)
        let total = SnapshotFormat.frameHeaderBytes + fill
        let crc = CRC32.checksum(UnsafeRawBufferPointer(start: frame, count: total))
        for k in 0..<4 { frame[total + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
        try out.write(UnsafeRawBufferPointer(start: frame, count: total + 4))
        state.pointee.bytesWritten += total + 4
        state.pointee.frames += 1
        state.pointee.framesInSection += 1
        state.pointee.fill = 0
    }

    /// Writes the `end` section and renames the file into place.
    public func finish() throws(InputError) {
        precondition(!state.pointee.open)
        let before = bytesWritten
        begin(.end)
        try varint(before)
        try end()
        try out.commit()
    }

    /// Drops the temporary file.
    public func abandon() { out.abandon() }
}

extension HeapSnapshot {
    /// Writes the snapshot to `path` (atomically) in format `version` (default: the current;
    /// version 1 drops gc-state's collector fields). Returns the file's size in bytes.
    @discardableResult
    public func write(to path: String, version: UInt32 = SnapshotFormat.version) throws(InputError) -> Int {
        if let problem = validate() {
            throw InputError(file: path, location: .wholeFile, message: "refusing to write an inconsistent snapshot: \(problem)")
        }
        let w = try SnapshotWriter(path: path, version: version)
        do {
            try writeSections(w)
            try w.finish()
        } catch {
            w.abandon()
            throw error
        }
        return w.bytesWritten
    }

    func writeSections(_ w: SnapshotWriter) throws(InputError) {
        w.begin(.info)
        try w.string(info.producer)
        try w.string(info.allocator)
        try w.string(info.trace)
        try w.varint(UInt64(info.record + 1))
        try w.varint(UInt64(info.trigger.rawValue))
        try w.varint(info.pauseNanos)
        try w.varint(info.unixTime)
        try w.varint(info.threads)
        try w.varint(info.unresolvedPointers)
        try w.varint(objectCount)
        try w.varint(edgeCount)
        try w.varint(spans.count)
        try w.varint(sites.count)
        try w.varint(roots.count)
        try w.end()

        w.begin(.sizeClasses)
        try w.varint(sizeClasses.count)
        for c in sizeClasses {
            try w.varint(c.size)
            try w.varint(c.pages)
        }
        try w.end()

        w.begin(.layout)
        try w.varint(arenas.count)
        for a in arenas {
            try w.varint(a.start)
            try w.varint(a.bytes)
        }
        try w.varint(spans.count)
        var previousEnd: UInt64 = 0
        try allocBits.withUnsafeBufferPointer { (alloc) throws(InputError) in
            try markBits.withUnsafeBufferPointer { (mark) throws(InputError) in
                for s in spans {
                    try w.varint(s.start - previousEnd)
                    previousEnd = s.end
                    try w.varint(UInt64(s.pages))
                    try w.varint(UInt64(s.sizeClass))
                    try w.varint(UInt64((s.noscan ? 1 : 0) | (s.cached ? 2 : 0) | (s.needzero ? 4 : 0)))
                    try w.varint(UInt64(s.state))
                    try w.varint(s.elemSize)
                    try w.varint(UInt64(s.slots))
                    try w.words(UnsafeBufferPointer(rebasing: alloc[s.bitsOffset..<(s.bitsOffset + s.bitWords)]))
                    try w.words(UnsafeBufferPointer(rebasing: mark[s.bitsOffset..<(s.bitsOffset + s.bitWords)]))
                }
            }
        }
        try w.end()

        w.begin(.sites)
        try w.varint(sites.count)
        for s in sites {
            try w.varint(s.id)
            try w.string(s.name)
        }
        try w.end()

        w.begin(.objects)
        let n = objectCount
        try w.varint(n)
        try address.withUnsafeBufferPointer { (addr) throws(InputError) in
            try size.withUnsafeBufferPointer { (sz) throws(InputError) in
                try sizeClass.withUnsafeBufferPointer { (cls) throws(InputError) in
                    try pointerSlots.withUnsafeBufferPointer { (ptrs) throws(InputError) in
                        try site.withUnsafeBufferPointer { (st) throws(InputError) in
                            try traceID.withUnsafeBufferPointer { (ids) throws(InputError) in
                                var previous: UInt64 = 0
                                for i in 0..<n {
                                    try w.varint(addr[i] &- previous)
                                    previous = addr[i]
                                    try w.varint(sz[i])
                                    try w.varint(UInt64(cls[i]))
                                    try w.varint(ptrs[i])
                                    try w.varint(UInt64(st[i]))
                                    try w.varint(ids[i])
                                }
                            }
                        }
                    }
                }
            }
        }
        try w.end()

        w.begin(.edges)
        try w.varint(edgeCount)
        try edgeStart.withUnsafeBufferPointer { (starts) throws(InputError) in
            try edgeSlot.withUnsafeBufferPointer { (slots) throws(InputError) in
                try edgeTarget.withUnsafeBufferPointer { (targets) throws(InputError) in
                    for i in 0..<n {
                        let from = starts[i], to = starts[i + 1]
                        try w.varint(to - from)
                        var next: UInt32 = 0
                        for e in from..<to {
                            try w.varint(UInt64(slots[e] - next))
                            next = slots[e] + 1
                            try w.varint(UInt64(targets[e]))
                        }
                    }
                }
            }
        }
        try w.end()

        w.begin(.roots)
        try w.varint(roots.count)
        for r in roots {
            try w.varint(UInt64(r.object))
            try w.varint(UInt64(r.thread))
            try w.varint(UInt64(r.holds))
        }
        try w.end()

        w.begin(.gcState)
        try w.varint(gc.cycle)
        try w.varint(UInt64(gc.phase.rawValue))
        try w.varint(gc.heapGoal)
        try w.varint(gc.heapMarked)
        try w.varint(gc.gcPercent)
        if w.version >= 2 {
            try w.varint(gc.heapLive)
            try w.varint(gc.flags)
            try w.varint(gc.memoryLimit)
        }
        try w.end()

        w.begin(.statistics)
        try w.varint(statistics.count)
        for s in statistics {
            try w.string(s.name)
            try w.signed(s.value)
        }
        try w.varint(classStatistics.count)
        for c in classStatistics {
            try w.varint(c.sizeClass)
            try w.varint(c.allocations)
            try w.varint(c.frees)
            try w.varint(c.liveObjects)
            try w.varint(c.spans)
        }
        try w.end()
    }
}
