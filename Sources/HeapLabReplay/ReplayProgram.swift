// A lowered trace ("replay program") in a shared in-memory file.
//
// The parent process lowers the trace once (TraceLowering.swift) and writes the result to an
// anonymous in-memory file; each measuring child maps that file read-only and populated, so
// the ops never pass through the allocator under test and the child does no loading work
// of its own (see docs/replay.md, "Why a child process").
//
// File layout (native byte order; the file never leaves the machine):
//
//   [0, headerBytes)   header: `fixedFields` UInt64 words (magic, version, counts, peak
//                      point, ...), then 3 words per worker (stream offset, op count, null
//                      allocator bytes), then 2 words per live-profile sample (record index,
//                      live bytes after it). headerBytes is a multiple of the page size.
//   streams            worker w's ops: `opCount` 16-byte ReplayOps at `offset` (page
//                      aligned), one stream after another.
//
// Invariants checked when a program is opened: magic and version match, every stream lies
// inside the file, 1 <= workers <= 256, the peak point names a real op.

#if canImport(Glibc)
import Glibc
#endif

/// Problems that are not the input's fault: system calls failing, a missing library, an
/// allocator running out. The CLI prints `description` and exits with status 1.
public struct ReplayError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// Set when a collector replay under `--verify` found an op naming an object the collector
    /// had already freed; the parent turns it into `FILE:LINE` (GCBackend.swift).
    public var useAfterFree: GCUseAfterFree? = nil
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where one worker's ops are and how much the null allocator needs for them.
public struct ReplayStreamInfo: Equatable, Sendable {
    /// Byte offset of the stream in the program file.
    public var offset: Int
    /// Number of 16-byte op entries.
    public var opCount: Int
    /// Bytes this worker's allocations and reallocations request, each rounded up to 16:
    /// what the null allocator's region for this worker must hold.
    public var nullBytes: Int
}

/// One point of the live-heap profile computed at load.
public struct LiveSample: Equatable, Sendable {
    /// Index of the record after which the sample was taken (header = record 0).
    public var record: Int
    /// Requested bytes of the objects not yet freed at that point.
    public var liveBytes: Int
}

/// What a program holds, besides its ops.
public struct ReplayProgramInfo: Equatable, Sendable {
    public var workers: Int
    /// Size of the pointer table (dense object slots).
    public var slotCount: Int
    /// Trace records, header included.
    public var records: Int
    /// Distinct mutator threads in the trace.
    public var traceThreads: Int
    /// Highest sum of requested sizes of objects allocated and not yet freed.
    public var peakLiveBytes: Int
    /// The op after which live bytes first reach their peak: worker, and the count of that
    /// worker's entries up to and including it (run [0, peakOpEnd), then sample RSS).
    /// peakWorker is -1 for a trace without allocations.
    public var peakWorker: Int
    public var peakOpEnd: Int
    /// Live bytes when the trace ends (objects never freed).
    public var finalLiveBytes: Int
    /// Sum of all sizes requested by allocations and reallocations.
    public var totalAllocatedBytes: Int
    public var allocations: Int
    public var frees: Int
    public var reallocs: Int
    public var stores: Int
    public var waits: Int
    public var streams: [ReplayStreamInfo]
    public var liveProfile: [LiveSample]
    /// Lowered for the collector (holds and drops, no frees; GCBackend.swift).
    public var collected = false

    public var totalOps: Int { streams.reduce(0) { $0 + $1.opCount } }
    public var totalNullBytes: Int { streams.reduce(0) { $0 + $1.nullBytes } }
}

/// A lowered trace, mapped read-only. Owns its file descriptor and mapping.
public final class ReplayProgram: @unchecked Sendable {
    static let magic: UInt64 = 0x5941_4c50_4552_4c48   // "HLREPLAY" read little-endian
    static let version: UInt64 = 1
    static let fixedFields = 18
    static let maxProfileSamples = 512

    /// The shared file (inheritable by a child through `dup2`).
    public let fd: Int32
    public let info: ReplayProgramInfo
    let base: UnsafeMutableRawPointer
    let fileBytes: Int
    /// Collector programs lowered with origins (for `--verify`): per worker, per op, the
    /// record and objects it came from. Kept in the lowering process only.
    public internal(set) var origins: [[OpOrigin]]? = nil

    /// Maps the program in `fd` (read-only, populated) and checks its header. Takes
    /// ownership of `fd`.
    public init(fd: Int32) throws(ReplayError) {
        let size: Int
        switch ReplaySystem.fileSize(fd) {
        case .success(let s): size = s
        case .failure(let e): close(fd); throw ReplayError("replay program: \(e)")
        }
        guard size >= ReplaySystem.pageSize else {
            close(fd)
            throw ReplayError("replay program: file of \(size) bytes is too short")
        }
        let base: UnsafeMutableRawPointer
        switch ReplaySystem.mapFile(fd, bytes: size, writable: false, populate: true) {
        case .success(let p): base = p
        case .failure(let e): close(fd); throw ReplayError("replay program: \(e)")
        }
        do {
            info = try Self.parseHeader(base, fileBytes: size)
        } catch {
            ReplaySystem.unmap(base, size)
            close(fd)
            throw error
        }
        self.fd = fd
        self.base = base
        self.fileBytes = size
    }

    deinit {
        ReplaySystem.unmap(base, fileBytes)
        close(fd)
    }

    /// Worker `w`'s ops.
    public func ops(worker w: Int) -> UnsafeBufferPointer<ReplayOp> {
        let s = info.streams[w]
        return UnsafeBufferPointer(start: (base + s.offset).assumingMemoryBound(to: ReplayOp.self), count: s.opCount)
    }

    static func headerBytes(workers: Int, profileSamples: Int) -> Int {
        let words = fixedFields + 3 * workers + 2 * profileSamples
        return ReplaySystem.roundUpToPage(words * 8)
    }

    static func encodeHeader(_ info: ReplayProgramInfo) -> [UInt64] {
        var w: [UInt64] = [
            magic, version, UInt64(info.workers), UInt64(info.slotCount), UInt64(info.records),
            UInt64(info.traceThreads), UInt64(info.peakLiveBytes), UInt64(bitPattern: Int64(info.peakWorker)),
            UInt64(info.peakOpEnd), UInt64(info.finalLiveBytes), UInt64(info.totalAllocatedBytes),
            UInt64(info.allocations), UInt64(info.frees), UInt64(info.reallocs), UInt64(info.stores),
            UInt64(info.waits), UInt64(info.liveProfile.count), info.collected ? 1 : 0,
        ]
        precondition(w.count == fixedFields)
        for s in info.streams { w += [UInt64(s.offset), UInt64(s.opCount), UInt64(s.nullBytes)] }
        for p in info.liveProfile { w += [UInt64(p.record), UInt64(p.liveBytes)] }
        return w
    }

    static func parseHeader(_ base: UnsafeRawPointer, fileBytes: Int) throws(ReplayError) -> ReplayProgramInfo {
        func word(_ i: Int) -> UInt64 { base.load(fromByteOffset: i * 8, as: UInt64.self) }
        func int(_ i: Int) throws(ReplayError) -> Int {
            let v = word(i)
            guard v <= UInt64(Int.max) else { throw ReplayError("replay program: header field \(i) out of range") }
            return Int(v)
        }
        guard word(0) == magic else { throw ReplayError("replay program: bad magic number") }
        guard word(1) == version else { throw ReplayError("replay program: unsupported version \(word(1))") }
        let workers = try int(2)
        let profileCount = try int(16)
        guard workers >= 1, workers <= 256, profileCount <= maxProfileSamples else {
            throw ReplayError("replay program: bad worker or profile count")
        }
        let headerBytes = headerBytes(workers: workers, profileSamples: profileCount)
        guard headerBytes <= fileBytes else { throw ReplayError("replay program: header larger than file") }
        var streams: [ReplayStreamInfo] = []
        for w in 0..<workers {
            let i = fixedFields + 3 * w
            let s = ReplayStreamInfo(offset: try int(i), opCount: try int(i + 1), nullBytes: try int(i + 2))
            let (bytes, overflow) = s.opCount.multipliedReportingOverflow(by: MemoryLayout<ReplayOp>.stride)
            guard !overflow, s.offset >= headerBytes, s.offset % 16 == 0, s.offset <= fileBytes,
                  bytes <= fileBytes - s.offset else {
                throw ReplayError("replay program: stream \(w) lies outside the file")
            }
            streams.append(s)
        }
        var profile: [LiveSample] = []
        for p in 0..<profileCount {
            let i = fixedFields + 3 * workers + 2 * p
            profile.append(LiveSample(record: try int(i), liveBytes: try int(i + 1)))
        }
        let peakWorker = Int(Int64(bitPattern: word(7)))
        let peakOpEnd = try int(8)
        guard peakWorker >= -1, peakWorker < workers,
              peakWorker == -1 || (peakOpEnd >= 1 && peakOpEnd <= streams[peakWorker].opCount) else {
            throw ReplayError("replay program: peak point outside the program")
        }
        let slotCount = try int(3)
        guard slotCount <= Int(ReplayOp.maxSlot) + 1 else { throw ReplayError("replay program: too many slots") }
        return ReplayProgramInfo(
            workers: workers, slotCount: slotCount, records: try int(4), traceThreads: try int(5),
            peakLiveBytes: try int(6), peakWorker: peakWorker, peakOpEnd: peakOpEnd,
            finalLiveBytes: try int(9), totalAllocatedBytes: try int(10), allocations: try int(11),
            frees: try int(12), reallocs: try int(13), stores: try int(14), waits: try int(15),
            streams: streams, liveProfile: profile, collected: word(17) == 1)
    }
}

/// Appends ops for one worker to a file through a 1 MiB buffer (TraceLowering's output).
struct OpStreamWriter {
    let fd: Int32
    /// File offset where this stream starts.
    let startOffset: Int
    let ownsFile: Bool
    private let buffer: UnsafeMutablePointer<ReplayOp>
    private var buffered = 0
    /// Entries written so far (flushed or not).
    private(set) var count = 0
    var nullBytes = 0
    static let bufferEntries = (1 << 20) / 16

    init(fd: Int32, startOffset: Int, ownsFile: Bool) {
        self.fd = fd
        self.startOffset = startOffset
        self.ownsFile = ownsFile
        buffer = .allocate(capacity: Self.bufferEntries)
    }

    func deallocate() {
        buffer.deallocate()
        if ownsFile { close(fd) }
    }

    @inline(__always)
    mutating func append(_ op: ReplayOp) throws(ReplayError) {
        if buffered == Self.bufferEntries { try flush() }
        buffer[buffered] = op
        buffered += 1
        count += 1
    }

    mutating func flush() throws(ReplayError) {
        guard buffered > 0 else { return }
        let flushedEntries = count - buffered
        let offset = startOffset + flushedEntries * 16
        if case .failure(let e) = ReplaySystem.writeAll(fd, buffer, count: buffered * 16, offset: offset) {
            throw ReplayError("writing the replay program: \(e)")
        }
        buffered = 0
    }
}
