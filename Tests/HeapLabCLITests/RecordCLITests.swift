// `heaplab record` end to end: the command exits with the recorded program's status (also
// when the program fails or is killed by a signal), and the trace is written and valid.
import Foundation
import Testing

@Suite struct RecordCLITests {
    @Test(arguments: [("exit 0", Int32(0)), ("exit 5", Int32(5)), ("kill -9 $$", Int32(137)), ("kill -TERM $$", Int32(143))])
    func exitsWithTheProgramsStatusAndWritesTheTrace(script: String, status: Int32) throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = "\(dir)/sh.htrace"
        let result = try CLIHarness.run(["record", "-o", out, "--", "sh", "-c", "ls / >/dev/null; " + script])
        #expect(result.status == status, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: out))
        let check = try CLIHarness.run(["check", out])
        #expect(check.status == 0, "\(check.stderr)")
    }

    @Test func aProgramThatCannotRunExits127WithoutOutput() throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLIHarness.run(["record", "-o", "\(dir)/x.htrace", "--", "/nonexistent/prog"])
        #expect(result.status == 127)
        #expect(result.stderr.contains("cannot run /nonexistent/prog"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.htrace"))
    }

    @Test func pythonRecordedInBinaryChecks() throws {
        let dir = try heaplabTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = "\(dir)/py.hbtrace"
        let result = try CLIHarness.run(["record", "-o", out, "--binary", "--", "python3", "-c",
                                     "d = {str(i): [i] * 600 for i in range(2000)}; print(len(d))"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "2000\n")
        let check = try CLIHarness.run(["check", out])
        #expect(check.status == 0, "\(check.stderr)")
    }
}
