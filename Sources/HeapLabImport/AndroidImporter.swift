// Importer for AOSP memory_replay dumps (Android's malloc debug `record_allocs` output,
// the traces shipped with platform/system/extras/memory_replay).
//
// Line syntax (checked against the public surfaceflinger trace in shared/samples):
//
//   TID: malloc PTR SIZE
//   TID: calloc PTR NMEMB SIZE          bytes = NMEMB * SIZE (overflow is an input error)
//   TID: memalign PTR ALIGN SIZE
//   TID: realloc NEW OLD SIZE           OLD 0x0 means malloc; NEW 0x0 with SIZE 0 frees OLD
//   TID: free PTR                       PTR 0x0 is a no-op
//   TID: thread_done 0x0                thread TID has exited
//
// TID is decimal, pointers and sizes as written by Android (pointers hex with 0x, sizes
// decimal). Newer dumps append the call's start and end timestamps (two decimal fields);
// those are accepted and ignored, since a HeapLab trace carries no time.
//
// Mapping: each TID becomes a trace thread (`@ T`) numbered in order of first appearance;
// once 256 numbers are in use, numbers of threads that reported thread_done are reused
// (ThreadNumbering). Dumps may be cut anywhere, so frees of unknown pointers are skipped and
// counted (MallocTraceBuilder). No sites: the format records no callers.
public import HeapLabTrace

public enum AndroidImporter {
    /// Imports the memory_replay dump at `path` into `sink`.
    public static func run<Sink: TraceSink>(path: String, into sink: inout Sink) throws(InputError) -> ImportSummary {
        var reader = try LineReader(path: path)
        var builder = try MallocTraceBuilder(sink: sink, file: path)
        var threads = ThreadNumbering()

        while let line = try reader.nextLine() {
            let lineNumber = reader.lineNumber
            let here = InputLocation.line(lineNumber)
            func bad(_ message: String) -> InputError {
                InputError(file: path, line: lineNumber, message)
            }
            var scanner = FieldScanner(line)
            guard let tidToken = scanner.token() else { continue }
            guard tidToken.count >= 2, tidToken[tidToken.count - 1] == UInt8(ascii: ":"),
                  let tid = FieldScanner.parseDecimal(UnsafeBufferPointer(rebasing: tidToken.dropLast()))
            else {
                throw bad("expected 'TID: operation ...', found \(FieldScanner.describe(line))")
            }
            guard let op = scanner.token() else { throw bad("missing operation after thread id") }

            func pointer() throws(InputError) -> UInt64 {
                guard let token = scanner.token() else { throw bad("missing pointer") }
                guard let value = FieldScanner.parseHex(token) else {
                    throw bad("bad pointer \(FieldScanner.describe(token))")
                }
                return value
            }
            func number() throws(InputError) -> UInt64 {
                guard let token = scanner.token() else { throw bad("missing size") }
                guard let value = FieldScanner.parseDecimal(token) else {
                    throw bad("bad number \(FieldScanner.describe(token))")
                }
                return value
            }
            func endOfLine() throws(InputError) {
                // Up to two trailing timestamps (newer dumps) are allowed.
                var extra = 0
                while let token = scanner.token() {
                    extra += 1
                    if extra > 2 || FieldScanner.parseDecimal(token) == nil {
                        throw bad("unexpected field \(FieldScanner.describe(token))")
                    }
                }
            }
            func threadNumber() throws(InputError) -> UInt64 {
                guard let number = threads.number(for: tid) else {
                    throw bad("more than \(TraceLimits.maxThreads) threads alive at once; a HeapLab trace has at most \(TraceLimits.maxThreads)")
                }
                return number
            }

            if FieldScanner.equals(op, "malloc") {
                let p = try pointer(), size = try number()
                try endOfLine()
                builder.setThread(try threadNumber())
                try builder.malloc(address: p, size: size, site: nil, at: here)
            } else if FieldScanner.equals(op, "free") {
                let p = try pointer()
                try endOfLine()
                builder.setThread(try threadNumber())
                try builder.free(address: p)
            } else if FieldScanner.equals(op, "calloc") {
                let p = try pointer(), count = try number(), size = try number()
                try endOfLine()
                let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
                if overflow { throw bad("calloc size \(count) x \(size) overflows") }
                builder.setThread(try threadNumber())
                try builder.malloc(address: p, size: bytes, site: nil, at: here)
            } else if FieldScanner.equals(op, "memalign") {
                let p = try pointer(), _ = try number(), size = try number()
                try endOfLine()
                builder.setThread(try threadNumber())
                try builder.malloc(address: p, size: size, site: nil, at: here)
            } else if FieldScanner.equals(op, "realloc") {
                let new = try pointer(), old = try pointer(), size = try number()
                try endOfLine()
                builder.setThread(try threadNumber())
                try builder.realloc(old: old, new: new, size: size, site: nil, at: here)
            } else if FieldScanner.equals(op, "thread_done") {
                _ = try pointer()
                try endOfLine()
                threads.finish(tid)
            } else {
                throw bad("unknown operation \(FieldScanner.describe(op))")
            }
        }
        var (out, summary) = builder.finish()
        summary.threadNumbersReused = threads.reusedCount
        sink = out
        return summary
    }
}
