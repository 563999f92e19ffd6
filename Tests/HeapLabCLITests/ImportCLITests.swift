// `heaplab import` end to end: real samples import to traces `heaplab check` accepts, and bad
// input gives `FILE:LINE: message`, exit status 2 and no output file.
//
// Until the shared CLIHarness.swift exists, this file carries the small runner the import,
// record and gen CLI tests use (`heaplabRun`): it finds `heaplab` in the build directory that
// holds this test binary and runs it with Foundation's Process.
import Foundation
import Testing

struct HeaplabResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The built `heaplab` next to the test binary (or in a parent build directory).
let heaplabBinary: String? = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("heaplab").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}()

func heaplabRun(_ arguments: [String]) throws -> HeaplabResult {
    let binary = try #require(heaplabBinary, "heaplab is not built next to the tests")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes concurrently so neither fills up.
    nonisolated(unsafe) var errData = Data()
    let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !reader.isFinished { usleep(1000) }
    return HeaplabResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

func heaplabTemporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "heaplab-cli-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// shared/samples, from this file: Tests/HeapLabCLITests/ -> ../../../shared/samples.
let cliSamples: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/samples").path

@Suite struct ImportCLITests {
    @Test func badInputReportsFileLineExitsTwoAndWritesNothing() throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = "\(dir)/bad.mtrace"
        try "= Start\n@ x:[0x1] + 0x10 0x8\n@ x:[0x1] ? 0x10\n".write(toFile: input, atomically: true, encoding: .utf8)
        let result = try heaplabRun(["import", "mtrace", input, "-o", "\(dir)/out.htrace"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("\(input):3: "))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.htrace"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(leftovers == ["bad.mtrace"])
    }

    @Test func missingInputExitsTwo() throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try heaplabRun(["import", "android", "\(dir)/none.txt", "-o", "\(dir)/out.htrace"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("none.txt"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.htrace"))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: cliSamples + "/README.md"), "shared/samples is not present"))
    func heaptrackSampleImportsAndChecks() throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = "\(dir)/python.hbtrace"
        let result = try heaplabRun(["import", "heaptrack", cliSamples + "/heaptrack-python.zst", "-o", out, "--binary"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("220432 allocations"))
        #expect(result.stderr.contains("paired LIFO"))
        let check = try heaplabRun(["check", out])
        #expect(check.status == 0, "\(check.stderr)")
    }
}
