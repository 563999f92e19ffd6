// Running a program under libHeapLabRecorder.so and turning its log into a trace: the
// library half of `heaplab record` (docs/recorder.md).
//
// Steps: (1) make a private temporary directory for the raw log; (2) spawn the program
// (PATH search) with LD_PRELOAD = the recorder library (before any preload the caller
// already had) and HEAPLAB_RECORD_LOG = DIR/log, SIGINT and SIGQUIT reset to their
// defaults in the child while this process ignores them, so ^C stops the program but
// not the conversion; (3) wait for it; (4) convert DIR/log (RecorderLogImporter) into the
// sink; (5) remove the directory. The program's exit status is returned whatever happens
// to it: a program killed by a signal still leaves every event logged before the kill.
//
// Invariants: the temporary directory is removed on every path out; the sink receives a
// complete trace or the caller gets an error (and abandons its output).
public import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

/// How a recorded program ended.
public enum ProgramStatus: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)

    /// The shell's convention: the exit code, or 128 + the signal number.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }
}

/// Why a program could not be recorded (not an input-file problem).
public struct RecordingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The exit status the CLI should use (127: program not found, 126: not runnable, 1: other).
    public var status: Int32
}

public enum ProgramRecorder {
    /// Environment variable that overrides where the recorder library is looked for.
    public static let libraryVariable = "HEAPLAB_RECORDER_LIBRARY"
    public static let libraryName = "libHeapLabRecorder.so"

    /// The recorder library: $HEAPLAB_RECORDER_LIBRARY, else next to the running executable
    /// (/proc/self/exe), where SwiftPM builds it.
    public static func locateLibrary() -> String? {
        if let override = getenv(libraryVariable).map({ String(cString: $0) }), !override.isEmpty {
            return access(override, R_OK) == 0 ? override : nil
        }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard n > 0 else { return nil }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = exe.lastIndex(of: "/") else { return nil }
        let candidate = String(exe[..<slash]) + "/" + libraryName
        return access(candidate, R_OK) == 0 ? candidate : nil
    }

    /// Runs `command` (program and arguments) under the recorder and converts its heap log
    /// into `sink`. Returns how the program ended and the import summary.
    public static func record<Sink: TraceSink>(command: [String], library: String,
                                               into sink: inout Sink) throws -> (ProgramStatus, ImportSummary) {
        precondition(!command.isEmpty, "no program to record")
        let temporary = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((temporary + "/heaplab-record-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw RecordingError(description: "cannot create a temporary directory: \(String(cString: strerror(errno)))", status: 1)
        }
        let directory = String(cString: made)
        defer { removeDirectory(directory) }
        let log = directory + "/log"

        let status = try spawnAndWait(command: command, library: library, log: log)
        if access(log, F_OK) != 0 {
            throw RecordingError(description: """
                \(command[0]) wrote no heap log: it did not load \(libraryName) \
                (statically linked, setuid, or it cleared LD_PRELOAD?)
                """, status: 1)
        }
        let summary = try RecorderLogImporter.run(path: log, into: &sink)
        return (status, summary)
    }

    private static func spawnAndWait(command: [String], library: String, log: String) throws -> ProgramStatus {
        var environment: [String] = []
        var preload = library
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            index += 1
            if text.hasPrefix("LD_PRELOAD=") {
                let existing = text.dropFirst("LD_PRELOAD=".count)
                if !existing.isEmpty { preload += " " + existing }
            } else if !text.hasPrefix("HEAPLAB_RECORD_LOG=") {
                environment.append(text)
            }
        }
        environment.append("LD_PRELOAD=" + preload)
        environment.append("HEAPLAB_RECORD_LOG=" + log)

        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGQUIT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        let oldInt = signal(SIGINT, SIG_IGN)
        let oldQuit = signal(SIGQUIT, SIG_IGN)
        defer {
            signal(SIGINT, oldInt)
            signal(SIGQUIT, oldQuit)
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, command[0], nil, &attributes, argv, envp)
        if result != 0 {
            let reason = String(cString: strerror(result))
            throw RecordingError(description: "cannot run \(command[0]): \(reason)",
                                 status: result == ENOENT ? 127 : 126)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR {
                throw RecordingError(description: "waitpid failed: \(String(cString: strerror(errno)))", status: 1)
            }
        }
        // WIFEXITED / WTERMSIG by hand (the C macros are not imported).
        let termination = status & 0x7F
        if termination == 0 { return .exited((status >> 8) & 0xFF) }
        return .signaled(termination)
    }

    private static func removeDirectory(_ path: String) {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}
