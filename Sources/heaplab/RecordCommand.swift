// `heaplab record -o OUT [--text|--binary] -- PROGRAM ARGS...`: runs a program with
// libHeapLabRecorder.so preloaded and writes its heap activity as a trace (HeapLabImport's
// ProgramRecorder does the work; docs/recorder.md covers fork, exec, threads and signals).
//
// Exit status: the program's own (128 + N when it was killed by signal N), also when it
// failed or was killed: the trace of what it did until then is still written. 127/126
// when the program cannot be started, 1 when the recorder library is missing or the
// program did not load it, 2 when the log is corrupt (`LOG: byte N: message`).
import ArgumentParser
import HeapLabImport
import HeapLabTrace

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Run a program under the heap recorder and write its allocations as a trace.",
        discussion: """
            Example: heaplab record -o ls.htrace -- ls -l /usr/bin
            The recorder library (libHeapLabRecorder.so) is found next to the heaplab
            executable, or at $HEAPLAB_RECORDER_LIBRARY. See docs/recorder.md.
            """)

    @OptionGroup var output: TraceOutputOptions

    @Flag(help: "Do not print the summary line.")
    var quiet = false

    @Argument(parsing: .postTerminator, help: "The program and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("name the program to record after --") }
    }

    func run() throws {
        guard let library = ProgramRecorder.locateLibrary() else {
            printError("heaplab record: cannot find \(ProgramRecorder.libraryName) next to the heaplab executable (build it with `swift build`, or set \(ProgramRecorder.libraryVariable))")
            throw ExitCode(1)
        }
        let writer: TraceWriter = try reportingInputErrors {
            try TraceWriter(path: output.output, encoding: output.traceEncoding, zstd: output.zstd)
        }
        var sink = writer
        let status: ProgramStatus
        let summary: ImportSummary
        do {
            (status, summary) = try ProgramRecorder.record(command: command, library: library, into: &sink)
            try writer.finish()
        } catch let error as RecordingError {
            writer.abandon()
            printError("heaplab record: \(error.description)")
            throw ExitCode(error.status)
        } catch let error as InputError {
            writer.abandon()
            printError(error.description)
            throw ExitCode(2)
        }
        if !quiet {
            let how: String
            switch status {
            case .exited(let code): how = "exited with status \(code)"
            case .signaled(let signal): how = "was killed by signal \(signal)"
            }
            printError("heaplab record: \(command[0]) \(how); \(output.output): \(summary)")
        }
        if status.shellStatus != 0 { throw ExitCode(status.shellStatus) }
    }
}
