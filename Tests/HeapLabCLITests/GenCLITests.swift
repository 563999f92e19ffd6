// `heaplab gen` end to end: the built binary writes byte-identical files for the same seed in
// both encodings, different files for different seeds, and rejects options that do not apply.
//
// Runs the binary through CLIHarness.
import Foundation
import Testing

@Suite struct GenCLITests {
    @Test(arguments: ["gcbench", "binary-trees", "larson", "xmalloc", "lru", "random-graph"])
    func sameSeedGivesIdenticalBytes(name: String) throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var small: [String] = []
        switch name {
        case "gcbench": small = ["--stretch-depth", "6", "--long-lived-depth", "5", "--max-depth", "6"]
        case "binary-trees": small = ["--depth", "6", "--threads", "2"]
        case "lru": small = ["--ops", "2000", "--capacity", "100", "--keys", "400"]
        default: small = ["--ops", "2000"]
        }
        for encoding in ["--text", "--binary"] {
            var outputs: [Data] = []
            for (copy, seed) in [(0, "5"), (1, "5"), (2, "6")] {
                let out = "\(dir)/\(name)-\(copy)\(encoding)"
                let result = try CLIHarness.run(["gen", name, "--seed", seed, "-o", out, encoding] + small)
                #expect(result.status == 0, "\(result.stderr)")
                outputs.append(try Data(contentsOf: URL(fileURLWithPath: out)))
            }
            #expect(outputs[0] == outputs[1])
            #expect(!outputs[0].isEmpty)
            if name != "gcbench" { #expect(outputs[0] != outputs[2]) }
            let check = try CLIHarness.run(["check", "\(dir)/\(name)-0\(encoding)"])
            #expect(check.status == 0, "\(check.stderr)")
        }
    }

    @Test func optionsThatDoNotApplyAreRejected() throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLIHarness.run(["gen", "gcbench", "--seed", "1", "--threads", "4", "-o", "\(dir)/x"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--threads does not apply to gcbench"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x"))
        let unknown = try CLIHarness.run(["gen", "nope", "--seed", "1", "-o", "\(dir)/x"])
        #expect(unknown.status == 64)
    }
}
