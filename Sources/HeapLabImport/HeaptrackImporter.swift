// Importer for heaptrack recordings (the files `heaptrack` leaves behind: heaptrack_interpret
// output, usually zstd or gzip compressed; LineReader decompresses by content).
//
// Line syntax (heaptrack 1.4, file format 3, checked against shared/samples/heaptrack-python.zst;
// every number is lower-case hex without 0x, fields separated by one blank):
//
//   v HEAPTRACK_VERSION FILE_FORMAT     file format version (0 if the line is missing)
//   X COMMAND LINE                      the traced command (ignored)
//   I PAGESIZE PAGES                    system info (ignored)
//   s LEN STRING                        string table entry 1, 2, ...; from format 3 on the
//                                       string is length-prefixed, before that it is the rest
//   i IP MODULE [FUNC [FILE LINE]]...   instruction pointer 1, 2, ...: address, module string,
//                                       then its frame and inlined frames (string indices;
//                                       FILE LINE missing without debug info)
//   t IP PARENT                         backtrace node 1, 2, ...: leaf IP, caller-side parent
//                                       node (0 = root); parents come before children
//   a SIZE TRACE                        allocation info 0, 1, ...: a (size, backtrace) pair
//   + INFO                              an allocation described by allocation info INFO
//   - INFO                              a deallocation of a block allocated with INFO
//   c TIME, R RSS, A, #..., blank       timestamps, RSS samples, "attached", comments (ignored)
//
// Format 0 files (before allocation infos) write `+ SIZE TRACE PTR` and `- PTR` instead;
// those keep pointer identity and go through MallocTraceBuilder's address map directly.
//
// Pairing frees with allocations (format >= 1): heaptrack_interpret replaces each freed
// pointer by the allocation info of the block it frees, so a free says "one block of this
// size from this backtrace" but not which one. Blocks with equal info are interchangeable
// for size and site; only their lifetimes differ. The importer pairs LIFO: a free ends the
// most recent still-live allocation with that info (a temporary allocation, heaptrack's
// "allocation directly followed by its free", pairs exactly). A free whose info has no live
// allocation (an allocation before heaptrack attached) is skipped and counted.
//
// Sites: one per backtrace node used by an allocation, named after its three innermost
// frames (`leaf <- caller <- caller's caller`), function names where heaptrack resolved them,
// otherwise `module@0xIP`. Heaptrack records no threads: everything runs on thread 0.
// Realloc is recorded by heaptrack as a free plus an allocation, so no `r` records appear.
//
// Invariants: indices read from the file are checked against the tables built so far before
// use; no table is sized from a number in the file.
public import HeapLabTrace

public enum HeaptrackImporter {
    public static let newestFormat: UInt64 = 3

    /// Imports the heaptrack recording at `path` into `sink`.
    public static func run<Sink: TraceSink>(path: String, into sink: inout Sink) throws(InputError) -> ImportSummary {
        var reader = try LineReader(path: path)
        var builder = try MallocTraceBuilder(sink: sink, file: path)
        var tables = Tables()
        var format: UInt64 = 0
        var sawVersion = false
        var attached = false
        // Format >= 1: per allocation info, a LIFO stack of live synthetic addresses linked
        // through `below` (indexed by synthetic address; 0 = empty).
        var stackTop: [UInt64] = []
        var below: [UInt64] = [0]
        var infoSite: [UInt64?] = []

        while let line = try reader.nextLine() {
            let lineNumber = reader.lineNumber
            let here = InputLocation.line(lineNumber)
            func bad(_ message: String) -> InputError {
                InputError(file: path, line: lineNumber, message)
            }
            guard let mode = line.first else { continue }
            var scanner = FieldScanner(UnsafeBufferPointer(rebasing: line.dropFirst()))
            func hex(_ what: String) throws(InputError) -> UInt64 {
                guard let token = scanner.token() else { throw bad("missing \(what)") }
                guard let value = FieldScanner.parseHex(token) else {
                    throw bad("bad \(what) \(FieldScanner.describe(token))")
                }
                return value
            }
            func end() throws(InputError) {
                if let extra = scanner.token() { throw bad("unexpected field \(FieldScanner.describe(extra))") }
            }
            func index(_ value: UInt64, below limit: Int, _ what: String) throws(InputError) -> Int {
                guard value < UInt64(limit) else { throw bad("\(what) \(String(value, radix: 16)) is not defined") }
                return Int(value)
            }

            switch mode {
            case UInt8(ascii: "+"):
                if format >= 1 {
                    let info = try index(try hex("allocation info"), below: tables.infoSize.count, "allocation info")
                    try end()
                    let site: UInt64?
                    if let known = infoSite[info] {
                        site = known
                    } else {
                        site = try tables.site(forTrace: tables.infoTrace[info], builder: &builder)
                        infoSite[info] = site
                    }
                    let address = UInt64(below.count)
                    below.append(stackTop[info])
                    stackTop[info] = address
                    try builder.malloc(address: address, size: tables.infoSize[info], site: site, at: here)
                } else {
                    let size = try hex("size"), trace = try hex("trace"), pointer = try hex("pointer")
                    try end()
                    let node = try index(trace, below: tables.traceIP.count, "trace")
                    let site = try tables.site(forTrace: node, builder: &builder)
                    try builder.malloc(address: pointer, size: size, site: site, at: here)
                }
            case UInt8(ascii: "-"):
                if format >= 1 {
                    let info = try index(try hex("allocation info"), below: tables.infoSize.count, "allocation info")
                    try end()
                    let address = stackTop[info]
                    if address == 0 {
                        builder.skipUnknownFree()
                    } else {
                        stackTop[info] = below[Int(address)]
                        try builder.free(address: address)
                    }
                } else {
                    let pointer = try hex("pointer")
                    try end()
                    try builder.free(address: pointer)
                }
            case UInt8(ascii: "a"):
                let size = try hex("size")
                let trace = try index(try hex("trace"), below: tables.traceIP.count, "trace")
                try end()
                tables.infoSize.append(size)
                tables.infoTrace.append(trace)
                stackTop.append(0)
                infoSite.append(nil)
            case UInt8(ascii: "t"):
                let ip = try index(try hex("instruction pointer"), below: tables.ipAddress.count, "instruction pointer")
                let parent = try index(try hex("parent trace"), below: tables.traceIP.count, "parent trace")
                try end()
                tables.traceIP.append(ip)
                tables.traceParent.append(parent)
            case UInt8(ascii: "i"):
                let address = try hex("address")
                let module = try index(try hex("module"), below: tables.strings.count, "string")
                // Then the frame (FUNC FILE LINE, or FUNC alone when heaptrack found no
                // debug info) and inlined frames (FUNC FILE LINE each); only FUNC is used.
                var fields: [UInt64] = []
                while !scanner.atEnd {
                    fields.append(try hex("frame field"))
                    if fields.count > 3 * 4096 { throw bad("too many inlined frames") }
                }
                guard fields.count <= 1 || fields.count % 3 == 0 else {
                    throw bad("frames must be FUNCTION FILE LINE triples")
                }
                var function = 0
                for (k, value) in fields.enumerated() where k % 3 != 2 {
                    let string = try index(value, below: tables.strings.count, "string")
                    if k == 0 { function = string }
                }
                tables.ipAddress.append(address)
                tables.ipModule.append(module)
                tables.ipFunction.append(function)
            case UInt8(ascii: "s"):
                if format >= 3 {
                    let length = try hex("string length")
                    guard length <= UInt64(line.count), let bytes = scanner.take(Int(length)) else {
                        throw bad("string length \(String(length, radix: 16)) runs past the end of the line")
                    }
                    tables.strings.append(String(decoding: bytes, as: UTF8.self))
                } else {
                    tables.strings.append(scanner.rest())
                }
            case UInt8(ascii: "v"):
                if sawVersion { throw bad("second version line") }
                sawVersion = true
                _ = try hex("heaptrack version")
                format = scanner.atEnd ? 1 : try hex("file format version")
                try end()
                if format > newestFormat {
                    throw bad("heaptrack file format \(format) is newer than this importer understands (\(newestFormat))")
                }
            case UInt8(ascii: "A"):
                attached = true
            case UInt8(ascii: "X"), UInt8(ascii: "I"), UInt8(ascii: "c"), UInt8(ascii: "R"), UInt8(ascii: "#"):
                continue
            default:
                throw bad("unknown heaptrack line \(FieldScanner.describe(line))")
            }
        }
        var (out, summary) = builder.finish()
        if format >= 1 {
            summary.notes.append("frees paired LIFO with the latest live allocation of the same size and backtrace")
        }
        if attached {
            summary.notes.append("heaptrack attached to a running process: earlier allocations are unknown")
        }
        sink = out
        return summary
    }

    /// The string, instruction-pointer and backtrace tables, 1-based as heaptrack numbers
    /// them (entry 0 is a placeholder), and the allocation infos (0-based).
    struct Tables {
        var strings: [String] = [""]
        var ipAddress: [UInt64] = [0]
        var ipModule: [Int] = [0]
        var ipFunction: [Int] = [0]
        var traceIP: [Int] = [0]
        var traceParent: [Int] = [0]
        var infoSize: [UInt64] = []
        var infoTrace: [Int] = []
        var traceSites: [Int: UInt64] = [:]

        /// The site of backtrace node `trace` (nil for node 0, "no backtrace").
        mutating func site<Sink: TraceSink>(forTrace trace: Int,
                                            builder: inout MallocTraceBuilder<Sink>) throws(InputError) -> UInt64? {
            if trace == 0 { return nil }
            if let site = traceSites[trace] { return site }
            var frames: [String] = []
            var node = trace
            while node != 0 && frames.count < 3 {
                let ip = traceIP[node]
                let function = ipFunction[ip]
                if function != 0 {
                    frames.append(strings[function])
                } else {
                    let module = strings[ipModule[ip]]
                    let base = module.split(separator: "/").last.map(String.init) ?? module
                    frames.append("\(base)@0x\(String(ipAddress[ip], radix: 16))")
                }
                node = traceParent[node]
            }
            let site = try builder.site(named: frames.joined(separator: " <- "))
            traceSites[trace] = site
            return site
        }
    }
}
