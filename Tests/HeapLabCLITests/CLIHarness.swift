// Runs the built `heaplab` binary for end-to-end tests and captures what it did.
//
//     let r = try CLIHarness.run(["check", path])
//     #expect(r.status == 0); #expect(r.stdout.contains("valid trace"))
//
// Finding the binary, first hit wins:
//   1. $HEAPLAB_BIN, if set;
//   2. `heaplab` beside the running test executable (/proc/self/exe, else argv[0]): SwiftPM
//      builds it into the same directory because HeapLabCLITests depends on it;
//   3. walking up from this source file to the package root, the newest
//      `.build*/debug/heaplab` (or `.build*/release/heaplab`).
// Output goes through temporary files rather than pipes, so a chatty child can never
// block on a full pipe while the test waits for it.
import Foundation

struct CLIResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLIHarness {
    /// Path of the `heaplab` executable under test.
    static let binaryPath: String = findBinary()

    /// Runs `heaplab ARGUMENTS` (optionally in `directory`, with `stdin` text) and waits.
    static func run(_ arguments: [String], stdin: String? = nil, directory: String? = nil,
                    environment: [String: String]? = nil) throws -> CLIResult {
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("heaplab-cli-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout")
        let errURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: binaryPath)
        process.arguments = arguments
        process.standardOutput = outHandle
        process.standardError = errHandle
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { process.environment = environment }
        if let stdin {
            let inURL = scratch.appendingPathComponent("stdin")
            try Data(stdin.utf8).write(to: inURL)
            process.standardInput = try FileHandle(forReadingFrom: inURL)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        let out = String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self)
        let err = String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
        return CLIResult(status: process.terminationStatus, stdout: out, stderr: err)
    }

    private static func findBinary(sourceFile: String = #filePath) -> String {
        let fm = FileManager.default
        if let path = ProcessInfo.processInfo.environment["HEAPLAB_BIN"], fm.isExecutableFile(atPath: path) {
            return path
        }
        var runners: [String] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") { runners.append(exe) }
        if let first = CommandLine.arguments.first { runners.append(first) }
        for runner in runners {
            let candidate = URL(fileURLWithPath: runner).deletingLastPathComponent().appendingPathComponent("heaplab").path
            if fm.isExecutableFile(atPath: candidate) { return candidate }
        }
        // Walk up from Tests/HeapLabCLITests/CLIHarness.swift to a directory with Package.swift.
        var dir = URL(fileURLWithPath: sourceFile).deletingLastPathComponent()
        while dir.path != "/" && !fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            dir = dir.deletingLastPathComponent()
        }
        var best: (path: String, date: Date)? = nil
        let builds = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix(".build") }
        for build in builds {
            for configuration in ["debug", "release"] {
                let path = dir.appendingPathComponent(build).appendingPathComponent(configuration)
                    .appendingPathComponent("heaplab").path
                guard fm.isExecutableFile(atPath: path),
                      let date = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date else { continue }
                if best == nil || date > best!.date { best = (path, date) }
            }
        }
        return best?.path ?? "heaplab"
    }
}
