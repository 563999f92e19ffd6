// Importer for glibc mtrace logs (MALLOC_TRACE, glibc's malloc debugging hooks).
//
// Line syntax, as glibc 2.36 writes it (checked against real logs of `git log --stat` and
// awk in shared/samples):
//
//   = Start                                  tracing began (also `= End`; repeats allowed)
//   @ CALLER + 0xPTR 0xSIZE                  malloc/calloc/memalign/realloc(NULL, n)
//   @ CALLER - 0xPTR                         free, or realloc(p, 0)
//   @ CALLER < 0xOLD                         realloc moved/resized OLD ...
//   @ CALLER > 0xNEW 0xSIZE                  ... and returned NEW for SIZE bytes
//   @ CALLER ! 0xOLD 0xSIZE                  realloc failed; OLD is unchanged
//
// CALLER is `FILE:(SYMBOL+OFF)[0xADDR]`, `FILE:[0xADDR]` or `[0xADDR]`, and the whole
// `@ CALLER ` prefix is absent when glibc could not find a caller. A failed malloc prints
// `(nil)` as its pointer. Because a file name may contain blanks, the operator is found from
// the end of the line (it is followed by exactly one or two numbers).
//
// Mapping: one site per distinct CALLER text of an allocation (`s SITE CALLER`), everything on thread 0
// (mtrace does not record threads); addresses become IDs through MallocTraceBuilder. The
// `<`/`>` pair is fed through the builder's split realloc, so a line of another thread
// printed between the two halves does no harm.
public import HeapLabTrace

public enum MtraceImporter {
    /// Imports the mtrace log at `path` into `sink`.
    public static func run<Sink: TraceSink>(path: String, into sink: inout Sink) throws(InputError) -> ImportSummary {
        var reader = try LineReader(path: path)
        var builder = try MallocTraceBuilder(sink: sink, file: path)
        var reallocPending = false
        var tokens: [UnsafeBufferPointer<UInt8>] = []
        tokens.reserveCapacity(16)

        while let line = try reader.nextLine() {
            let lineNumber = reader.lineNumber
            let here = InputLocation.line(lineNumber)
            func bad(_ message: String) -> InputError {
                InputError(file: path, line: lineNumber, message)
            }
            // Collect the token boundaries (at most a handful on a well-formed line).
            var scanner = FieldScanner(line)
            tokens.removeAll(keepingCapacity: true)
            while let token = scanner.token() {
                tokens.append(token)
                if tokens.count > 64 { throw bad("not an mtrace line (too many fields)") }
            }
            guard let first = tokens.first else { continue }
            if first.count == 1 && first[0] == UInt8(ascii: "=") { continue }

            // Locate the operator from the end: `op N` or `op N N`.
            let n = tokens.count
            var opIndex = -1
            if n >= 3, isOperator(tokens[n - 3], takingTwo: true) {
                opIndex = n - 3
            } else if n >= 2, isOperator(tokens[n - 2], takingTwo: false) {
                opIndex = n - 2
            }
            guard opIndex >= 0 else { throw bad("not an mtrace line: \(FieldScanner.describe(line))") }

            let op = tokens[opIndex][0]
            var site: UInt64? = nil
            if opIndex > 0 {
                guard FieldScanner.equals(first, "@"), opIndex >= 2 else {
                    throw bad("not an mtrace line: \(FieldScanner.describe(line))")
                }
            }
            if opIndex > 0 && (op == UInt8(ascii: "+") || op == UInt8(ascii: ">")) {
                // Only allocations carry a site.
                let callerStart = tokens[1].baseAddress! - line.baseAddress!
                let callerEnd = tokens[opIndex - 1].baseAddress! - line.baseAddress! + tokens[opIndex - 1].count
                let caller = String(decoding: UnsafeBufferPointer(rebasing: line[callerStart..<callerEnd]), as: UTF8.self)
                site = try builder.site(named: caller)
            }

            guard let address = parseAddress(tokens[opIndex + 1]) else {
                throw bad("bad address \(FieldScanner.describe(tokens[opIndex + 1]))")
            }
            var size: UInt64 = 0
            if opIndex + 2 < n {
                guard let s = FieldScanner.parseHex(tokens[opIndex + 2]) else {
                    throw bad("bad size \(FieldScanner.describe(tokens[opIndex + 2]))")
                }
                size = s
            }

            switch op {
            case UInt8(ascii: "+"):
                try builder.malloc(address: address, size: size, site: site, at: here)
            case UInt8(ascii: "-"):
                try builder.free(address: address)
            case UInt8(ascii: "<"):
                if reallocPending { throw bad("realloc start '<' while the previous one has no '>' result") }
                builder.beginRealloc(old: address, token: 0)
                reallocPending = true
            case UInt8(ascii: ">"):
                guard reallocPending else { throw bad("realloc result '>' without a preceding '<'") }
                try builder.endRealloc(new: address, size: size, token: 0, site: site, at: here)
                reallocPending = false
            default: // "!": realloc failed, the old block is untouched.
                if reallocPending {
                    try builder.endRealloc(new: 0, size: max(size, 1), token: 0, site: site, at: here)
                    reallocPending = false
                } else {
                    try builder.realloc(old: address, new: 0, size: max(size, 1), site: site, at: here)
                }
            }
        }
        let (out, summary) = builder.finish()
        sink = out
        return summary
    }

    private static func isOperator(_ token: UnsafeBufferPointer<UInt8>, takingTwo: Bool) -> Bool {
        guard token.count == 1 else { return false }
        switch token[0] {
        case UInt8(ascii: "+"), UInt8(ascii: ">"), UInt8(ascii: "!"): return takingTwo
        case UInt8(ascii: "-"), UInt8(ascii: "<"): return !takingTwo
        default: return false
        }
    }

    /// `0x...` or glibc's `(nil)` for NULL.
    private static func parseAddress(_ token: UnsafeBufferPointer<UInt8>) -> UInt64? {
        if FieldScanner.equals(token, "(nil)") { return 0 }
        return FieldScanner.parseHex(token)
    }
}
