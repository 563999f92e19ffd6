// Converter from libHeapLabRecorder's raw log (Sources/HeapLabRecorder/include/
// heaplab_recorder.h) to a HeapLab trace; the second half of `heaplab record`.
//
// Log layout, mirrored from the C header: a 64-byte header (magic "HLRLOG01", owner pid,
// `next` = end of the used part, `dropped`, `images`), then 32-byte events
// {kind: u32, tid: u32, a: u64, b: u64, site: u64}, little-endian, in log order.
//
// Mapping (shares MallocTraceBuilder with the mtrace and Android importers):
//   - MALLOC a=block b=size          -> malloc (block 0: failed call, skipped)
//   - FREE a=block                   -> free
//   - REALLOC_BEGIN / REALLOC_END    -> the builder's split realloc, token = OS thread id
//   - THREAD_EXIT                    -> that thread's trace number may be reused
//   - EXEC                           -> a new program image: every block of the old image
//                                       is gone, so each live object is freed (ID order)
//   - kind 0                         -> a slot never completed (writer killed): skipped
//   - each OS thread id becomes a trace thread in order of appearance (ThreadNumbering)
//   - each distinct return address becomes a site, named `module+0xOFFSET` from the
//     LOG.maps.IMAGE snapshot of /proc/self/maps when there is one, else `0xADDRESS`.
//
// Invariants: only bytes below min(next, file length) are read; every field is range
// checked before use; nothing is allocated from a count found in the log.
public import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

public enum RecorderLogImporter {
    static let magic: [UInt8] = Array("HLRLOG01".utf8)
    static let headerSize = 64
    static let eventSize = 32

    enum Kind: UInt32 {
        case malloc = 1, free, reallocBegin, reallocEnd, threadExit, exec
    }

    /// Converts the recorder log at `path` into `sink`. `mapsPrefix` names the maps
    /// snapshots (`PREFIX.N` for image N); by default `path + ".maps"`.
    public static func run<Sink: TraceSink>(path: String, mapsPrefix: String? = nil,
                                            into sink: inout Sink) throws(InputError) -> ImportSummary {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw InputError(file: path, location: .wholeFile,
                             message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw InputError(file: path, location: .wholeFile, message: "cannot stat the log")
        }
        let fileSize = Int(st.st_size)

        var header = [UInt8](repeating: 0, count: headerSize)
        let got = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, headerSize, 0) }
        guard got == headerSize, Array(header[0..<8]) == magic else {
            throw InputError(file: path, byteOffset: 0, "not a HeapLab recorder log (bad magic)")
        }
        func field(_ offset: Int) -> UInt64 {
            header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        }
        let next = field(16), dropped = field(24)
        guard next >= UInt64(headerSize) else {
            throw InputError(file: path, byteOffset: 16, "log end \(next) lies inside the header")
        }
        let end = Int(min(next, UInt64(fileSize)))

        let prefix = mapsPrefix ?? path + ".maps"
        var builder = try MallocTraceBuilder(sink: sink, file: path)
        var threads = ThreadNumbering()
        var image: UInt64 = 1
        var symbols = ModuleMap(path: "\(prefix).1")
        var siteOf: [UInt64: UInt64] = [:]
        var incomplete = 0

        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 8)
        defer { buffer.deallocate() }
        var offset = headerSize
        while offset + eventSize <= end {
            let want = min(chunk, (end - offset) / eventSize * eventSize)
            var filled = 0
            while filled < want {
                let n = pread(fd, buffer + filled, want - filled, off_t(offset + filled))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    throw InputError(file: path, byteOffset: offset + filled, "log is shorter than its header says")
                }
                filled += n
            }
            var at = 0
            while at < filled {
                let eventOffset = offset + at
                let kindValue = buffer.loadUnaligned(fromByteOffset: at, as: UInt32.self)
                let tid = UInt64(buffer.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
                let a = buffer.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self)
                let b = buffer.loadUnaligned(fromByteOffset: at + 16, as: UInt64.self)
                let caller = buffer.loadUnaligned(fromByteOffset: at + 24, as: UInt64.self)
                at += eventSize
                if kindValue == 0 {
                    incomplete += 1
                    continue
                }
                guard let kind = Kind(rawValue: kindValue) else {
                    throw InputError(file: path, byteOffset: eventOffset, "unknown event kind \(kindValue)")
                }
                let here = InputLocation.byteOffset(eventOffset)
                if kind == .threadExit {
                    threads.finish(tid)
                    continue
                }
                guard let number = threads.number(for: tid) else {
                    throw InputError(file: path, byteOffset: eventOffset,
                                     "more than \(TraceLimits.maxThreads) threads alive at once; a HeapLab trace has at most \(TraceLimits.maxThreads)")
                }
                builder.setThread(number)
                var site: UInt64? = nil
                if caller != 0 && (kind == .malloc || kind == .reallocEnd) {
                    if let known = siteOf[caller] {
                        site = known
                    } else {
                        site = try builder.site(named: symbols.name(of: caller))
                        siteOf[caller] = site
                    }
                }
                switch kind {
                case .malloc:
                    try builder.malloc(address: a, size: b, site: site, at: here)
                case .free:
                    try builder.free(address: a)
                case .reallocBegin:
                    builder.beginRealloc(old: a, token: tid)
                case .reallocEnd:
                    try builder.endRealloc(new: a, size: b, token: tid, site: site, at: here)
                case .exec:
                    try builder.releaseAll()
                    image += 1
                    symbols = ModuleMap(path: "\(prefix).\(image)")
                    siteOf.removeAll()
                case .threadExit:
                    break
                }
            }
            offset += filled
        }

        var (out, summary) = builder.finish()
        summary.threadNumbersReused = threads.reusedCount
        if incomplete > 0 { summary.notes.append("\(incomplete) log slots never completed (writer killed)") }
        if dropped > 0 { summary.notes.append("\(dropped) events lost: the log hit its size limit") }
        if image > 1 { summary.notes.append("\(image) program images (exec): each exec frees the old image's objects") }
        sink = out
        return summary
    }
}

/// The executable mappings of a recorded process, from a copy of /proc/self/maps, for
/// naming return addresses as `module+0xOFFSET`. A missing or unreadable file gives an
/// empty map (sites are then named by raw address).
struct ModuleMap {
    private var starts: [UInt64] = []
    private var ends: [UInt64] = []
    private var fileOffsets: [UInt64] = []
    private var names: [String] = []

    init(path: String) {
        var lines: LineReader
        do { lines = try LineReader(path: path) } catch { return }
        var entries: [(UInt64, UInt64, UInt64, String)] = []
        while true {
            let next: UnsafeBufferPointer<UInt8>?
            do { next = try lines.nextLine() } catch { break }
            guard let line = next else { break }
            // start-end perms offset dev inode [path]
            var scanner = FieldScanner(line)
            guard let range = scanner.token(), let _ = scanner.token(), let offsetToken = scanner.token(),
                  let _ = scanner.token(), let _ = scanner.token(), let file = scanner.token() else { continue }
            guard let dash = range.firstIndex(of: UInt8(ascii: "-")),
                  let start = FieldScanner.parseHex(UnsafeBufferPointer(rebasing: range[..<dash])),
                  let end = FieldScanner.parseHex(UnsafeBufferPointer(rebasing: range[(dash + 1)...])),
                  let fileOffset = FieldScanner.parseHex(offsetToken), start < end else { continue }
            let full = String(decoding: file, as: UTF8.self)
            let base = full.split(separator: "/").last.map(String.init) ?? full
            entries.append((start, end, fileOffset, base))
        }
        entries.sort { $0.0 < $1.0 }
        for (start, end, offset, name) in entries {
            starts.append(start)
            ends.append(end)
            fileOffsets.append(offset)
            names.append(name)
        }
    }

    /// `module+0xOFFSET` (offset within the file) or `0xADDRESS`.
    func name(of address: UInt64) -> String {
        var low = 0, high = starts.count
        while low < high {
            let mid = (low + high) / 2
            if starts[mid] <= address { low = mid + 1 } else { high = mid }
        }
        let i = low - 1
        if i >= 0 && address < ends[i] {
            return "\(names[i])+0x\(String(address - starts[i] + fileOffsets[i], radix: 16))"
        }
        return "0x\(String(address, radix: 16))"
    }
}
