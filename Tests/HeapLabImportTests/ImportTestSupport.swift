// Test support for the importer tests: locating and decompressing the real samples in
// shared/samples, writing small inputs, and checking that a malloc-style trace is valid.
//
// `checkMallocTrace` applies the TRACE-FORMAT.md rules that matter for traces without `w`
// records (header first, declared sites, live IDs, sizes, threads); an object dies at its `f`.
import Foundation
import HeapLabImport
import HeapLabTrace

enum Samples {
    /// shared/samples, found from this file: Tests/HeapLabImportTests/ -> ../../../shared/samples.
    static let directory: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("shared/samples").path
    }()

    static var available: Bool {
        FileManager.default.fileExists(atPath: directory + "/README.md")
    }

    /// Decompresses `name` (xz) into a temporary file once per process and returns its path.
    static func xzSample(_ name: String) throws -> String {
        let output = scratchDirectory + "/\(name).txt"
        if FileManager.default.fileExists(atPath: output) { return output }
        let data = try run("/usr/bin/xz", ["-dc", directory + "/" + name])
        try data.write(to: URL(fileURLWithPath: output + ".part"))
        try FileManager.default.moveItem(atPath: output + ".part", toPath: output)
        return output
    }

    static func path(_ name: String) -> String { directory + "/" + name }

    /// Runs a program and returns its standard output.
    static func run(_ program: String, _ arguments: [String], input: Data? = nil) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        let stdin = Pipe()
        if input != nil { process.standardInput = stdin }
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(input)
            try stdin.fileHandleForWriting.close()
        }
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "run", code: Int(process.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "\(program) failed"])
        }
        return data
    }
}

/// This test process's scratch directory, `TMP/heaplab-import-tests-PID`. Directories left
/// by earlier runs whose process is gone are removed when it is first used.
let scratchDirectory: String = {
    let base = NSTemporaryDirectory()
    let prefix = "heaplab-import-tests-"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where name.hasPrefix(prefix) {
        if let pid = Int32(name.dropFirst(prefix.count)), pid != getpid(), kill(pid, 0) != 0 {
            try? FileManager.default.removeItem(atPath: base + "/" + name)
        }
    }
    let path = base + "/" + prefix + "\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// A temporary file holding `text`, in the scratch directory.
func temporaryFile(_ text: String, suffix: String = ".txt") throws -> String {
    let path = scratchDirectory + "/\(UUID().uuidString)\(suffix)"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

func importRecords(_ format: ImportFormat, _ path: String) throws(InputError) -> ([TraceRecord], ImportSummary) {
    var sink = RecordArraySink()
    let summary = try format.run(path: path, into: &sink)
    return (sink.records, summary)
}

/// The first rule a malloc-style trace breaks, or nil if it is valid: HeapLabTrace's
/// TraceValidator, and an independent check of the malloc-trace rules.
func checkMallocTrace(_ records: [TraceRecord]) -> String? {
    let validator = TraceValidator(file: "imported")
    do {
        for (i, record) in records.enumerated() { try validator.check(record, at: .line(i + 1)) }
        try validator.finish()
    } catch {
        return error.description
    }
    return independentMallocCheck(records)
}

func independentMallocCheck(_ records: [TraceRecord]) -> String? {
    guard records.first == .header(version: 1) else { return "header is not first" }
    var live = Set<UInt64>()
    var sites = Set<UInt64>()
    for (index, record) in records.enumerated().dropFirst() {
        switch record {
        case .header: return "record \(index): second header"
        case .site(let id, let name):
            if !sites.insert(id).inserted { return "record \(index): site \(id) redeclared" }
            if name.isEmpty || name.utf8.contains(where: { $0 < 0x20 || $0 > 0x7E || $0 == 0x23 }) {
                return "record \(index): site name \(name) cannot be written as text"
            }
        case .thread(let t):
            if t >= 256 { return "record \(index): thread \(t)" }
        case .alloc(let id, let size, let ptrs, let site):
            if !live.insert(id).inserted { return "record \(index): alloc of live ID \(id)" }
            if size < 1 || size > 1 << 40 { return "record \(index): size \(size)" }
            if ptrs * 8 > size { return "record \(index): ptrs" }
            if let site, !sites.contains(site) { return "record \(index): undeclared site \(site)" }
        case .free(let id):
            if live.remove(id) == nil { return "record \(index): free of dead ID \(id)" }
        case .realloc(let id, let size):
            if !live.contains(id) { return "record \(index): realloc of dead ID \(id)" }
            if size < 1 || size > 1 << 40 { return "record \(index): size \(size)" }
        case .hold, .write:
            return "record \(index): unexpected \(record) in a malloc trace"
        }
    }
    return nil
}
