// The recorder end to end at library level: real programs run under libHeapLabRecorder.so
// (built next to this test binary by SwiftPM), their logs converted by RecorderLogImporter.
// Covers exit statuses, SIGKILL (the trace is still complete up to the kill), threads,
// exec (a shell that execs, pyenv's python3 shim), and forked children (not recorded).
import Foundation
import HeapLabImport
import HeapLabTrace
import Testing

enum RecorderLibrary {
    /// libHeapLabRecorder.so in the build directory that holds this test binary.
    static let path: String? = {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = binary.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("libHeapLabRecorder.so").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }()
}

func record(_ command: [String]) throws -> (ProgramStatus, [TraceRecord], ImportSummary) {
    let library = try #require(RecorderLibrary.path, "libHeapLabRecorder.so is not built next to the tests")
    var sink = RecordArraySink()
    let (status, summary) = try ProgramRecorder.record(command: command, library: library, into: &sink)
    return (status, sink.records, summary)
}

func allocationCount(_ records: [TraceRecord]) -> Int {
    records.filter { if case .alloc = $0 { return true } else { return false } }.count
}

@Suite(.serialized) struct ProgramRecorderTests {
    @Test func lsIsRecordedWithNamedSites() throws {
        let (status, records, summary) = try record(["ls", "-l", "/usr/bin"])
        #expect(status == .exited(0))
        #expect(checkMallocTrace(records) == nil)
        #expect(allocationCount(records) > 50)
        #expect(summary.frees > 10)
        let names = records.compactMap { if case .site(_, let name) = $0 { return name } else { return nil } }
        #expect(names.contains { $0.hasPrefix("libc.so.6+0x") || $0.hasPrefix("ls+0x") })
    }

    @Test func theProgramsExitStatusIsReported() throws {
        let (status, records, _) = try record(["sh", "-c", "exit 3"])
        #expect(status == .exited(3))
        #expect(status.shellStatus == 3)
        #expect(checkMallocTrace(records) == nil)
    }

    @Test func aProgramKilledBySIGKILLStillLeavesItsTrace() throws {
        let script = "import os, signal\nkeep = [bytearray(600 + i % 50) for i in range(20000)]  # > 512 bytes: malloc, not pymalloc\nos.kill(os.getpid(), signal.SIGKILL)"
        let (status, records, _) = try record(["python3", "-c", script])
        #expect(status == .signaled(9))
        #expect(status.shellStatus == 137)
        #expect(checkMallocTrace(records) == nil)
        #expect(allocationCount(records) > 20000)
    }

    @Test func threadsBecomeTraceThreads() throws {
        let script = """
        import threading
        def work():
            x = [str(i) * 3 for i in range(3000)]
        ts = [threading.Thread(target=work) for _ in range(4)]
        [t.start() for t in ts]; [t.join() for t in ts]
        """
        let (status, records, _) = try record(["python3", "-c", script])
        #expect(status == .exited(0))
        #expect(checkMallocTrace(records) == nil)
        let threads = Set(records.compactMap { if case .thread(let t) = $0 { return t } else { return nil } })
        #expect(threads.count >= 4)
    }

    @Test func moreThan256ThreadsReuseTheNumbersOfFinishedOnes() throws {
        let script = """
        import threading
        def work():
            x = [bytearray(700) for _ in range(10)]
        for i in range(300):
            t = threading.Thread(target=work); t.start(); t.join()
        """
        let (status, records, summary) = try record(["python3", "-c", script])
        #expect(status == .exited(0))
        #expect(checkMallocTrace(records) == nil)
        #expect(summary.threadNumbersReused >= 40)
        #expect(records.allSatisfy { if case .thread(let t) = $0 { return t < 256 } else { return true } })
    }

    @Test func execContinuesTheTraceAndForkedChildrenAreNotRecorded() throws {
        // The shell forks a child for `true`, then execs `ls` in place of itself.
        let (status, records, summary) = try record(["sh", "-c", "true; exec ls /usr"])
        #expect(status == .exited(0))
        #expect(checkMallocTrace(records) == nil)
        #expect(summary.notes.contains { $0.hasPrefix("2 program images") })
        let names = records.compactMap { if case .site(_, let name) = $0 { return name } else { return nil } }
        #expect(names.contains { $0.hasPrefix("ls+0x") })
    }

    @Test func aMissingProgramIsReportedWith127() throws {
        #expect(throws: RecordingError.self) { _ = try record(["/nonexistent/program"]) }
        do {
            _ = try record(["/nonexistent/program"])
        } catch let error as RecordingError {
            #expect(error.status == 127)
        }
    }
}
