// `heaplab import` end to end: real samples import to traces `heaplab check` accepts, and bad
// input gives `FILE:LINE: message`, exit status 2 and no output file.
//
// Runs the binary through CLIHarness; `heaplabTemporaryDirectory` and `cliSamples` are shared
// by the import, record and gen CLI tests.
import Foundation
import Testing

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
        let result = try CLIHarness.run(["import", "mtrace", input, "-o", "\(dir)/out.htrace"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("\(input):3: "))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.htrace"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(leftovers == ["bad.mtrace"])
    }

    @Test func missingInputExitsTwo() throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLIHarness.run(["import", "android", "\(dir)/none.txt", "-o", "\(dir)/out.htrace"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("none.txt"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out.htrace"))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: cliSamples + "/README.md"), "shared/samples is not present"))
    func heaptrackSampleImportsAndChecks() throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = "\(dir)/python.hbtrace"
        let result = try CLIHarness.run(["import", "heaptrack", cliSamples + "/heaptrack-python.zst", "-o", out, "--binary"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("220432 allocations"))
        #expect(result.stderr.contains("paired LIFO"))
        let check = try CLIHarness.run(["check", out])
        #expect(check.status == 0, "\(check.stderr)")
    }
}
