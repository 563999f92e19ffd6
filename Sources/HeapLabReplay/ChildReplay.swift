// Every measurement runs in a child process of heaplab; this file is both sides of that.
//
// Why: jemalloc, mimalloc and tcmalloc replace malloc for a whole process when preloaded,
// and peak RSS is a per-process figure. So each (trace, allocator) run gets a fresh
// process, started with exactly the environment that allocator needs (LD_PRELOAD set to its
// library, or removed for glibc / heaplab / null, so a stray inherited preload cannot leak
// in). The parent has already lowered the trace (TraceLowering) into an in-memory file,
// so the child does no loading: nothing the allocator serves before the replay besides the
// runtime's own start-up.
//
// Parent:  spawn  EXE replay TRACE --allocator NAME --child-program-fd 3 --child-result-fd 4
//          (for `--allocator go`, EXE is goreplay, Go's side: GoReplay.swift, tools/goreplay)
//          with the program file as fd 3 and the write end of a pipe as fd 4 (posix_spawn
//          file actions; every other descriptor of ours is close-on-exec), read the pipe to
//          EOF, wait for the child, decode the JSON it wrote.
// Child:   `childMain` checks that the malloc it runs on is the one asked for (the preload
//          took effect), maps the program, runs ReplayRunner, writes one JSON object to fd 4:
//          the ReplayMeasurement, or {"error": "..."} with exit status 1.

import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

public enum ChildReplay {
    /// This executable (/proc/self/exe).
    public static func currentExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = buffer.withUnsafeMutableBufferPointer { readlink("/proc/self/exe", $0.baseAddress!, 4096) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: parent side

    /// Runs `program` for `allocator` in a child `executable` (a heaplab binary) and returns
    /// what the child measured.
    public static func measure(program: ReplayProgram, allocator: AllocatorKind, trace: String,
                               verify: Bool = false, sizedFree: Bool = false,
                               executable: String? = nil, gc: GCReplayOptions? = nil) throws(ReplayError) -> ReplayMeasurement {
        let exe: String
        var arguments: [String]
        var environment: [String]
        if allocator == .go {
            // Go's runtime: goreplay (GoReplay.swift) speaks the same protocol.
            if sizedFree { throw ReplayError("go: --sized-free does not apply to Go's runtime") }
            exe = try GoReplay.executable()
            arguments = [exe, "-program-fd", "3", "-result-fd", "4"] + (try GoReplay.arguments(gc ?? GCReplayOptions()))
            if verify { arguments.append("-check") }
            environment = GoReplay.environment(currentEnvironment())
        } else {
            guard let heaplab = executable ?? currentExecutable() else {
                throw ReplayError("cannot find the heaplab executable (/proc/self/exe)")
            }
            exe = heaplab
            let preload = try allocator.libraryPath()
            arguments = [exe, "replay", trace, "--allocator", allocator.rawValue,
                         "--child-program-fd", "3", "--child-result-fd", "4"]
            if verify { arguments.append("--verify") }
            if sizedFree { arguments.append("--sized-free") }
            if allocator == .gc { arguments += (gc ?? GCReplayOptions()).childArguments }
            environment = currentEnvironment().filter { !$0.hasPrefix("LD_PRELOAD=") }
            if let preload { environment.append("LD_PRELOAD=\(preload)") }
        }

        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw ReplayError("pipe: \(String(cString: strerror(errno)))") }
        // Keep our ends close-on-exec; copies at fd >= 10 never collide with 3 and 4.
        let readEnd = pipeFDs[0]
        let writeEnd = fcntl(pipeFDs[1], F_DUPFD_CLOEXEC, 10)
        close(pipeFDs[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        let programCopy = fcntl(program.fd, F_DUPFD_CLOEXEC, 10)
        defer {
            if programCopy >= 0 { close(programCopy) }
        }
        guard writeEnd >= 0, programCopy >= 0 else {
            close(readEnd)
            if writeEnd >= 0 { close(writeEnd) }
            throw ReplayError("fcntl: \(String(cString: strerror(errno)))")
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, programCopy, 3)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 4)

        var pid: pid_t = 0
        let rc = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                posix_spawn(&pid, exe, &actions, nil, argv, envp)
            }
        }
        close(writeEnd)
        guard rc == 0 else {
            close(readEnd)
            throw ReplayError("cannot start \(exe): \(String(cString: strerror(rc)))")
        }
        let output = readToEnd(readEnd)
        close(readEnd)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}

        let text = String(decoding: output, as: UTF8.self)
        let json = try? JSONValue.parse(text)
        if let message = json?["error"]?.stringValue {
            var error = ReplayError(message)
            if let u = json?["use_after_free"], let w = u["worker"]?.intValue, let op = u["op"]?.intValue,
               let role = u["role"]?.intValue {
                error.useAfterFree = GCUseAfterFree(worker: w, op: op, role: role)
            }
            throw error
        }
        let signal = status & 0x7f
        if signal != 0 {
            let name = strsignal(signal).map { String(cString: $0) } ?? "signal \(signal)"
            throw ReplayError("the \(allocator.rawValue) replay child was killed by \(name)")
        }
        let exitCode = (status >> 8) & 0xff
        guard exitCode == 0, let json, let measurement = decodeMeasurement(json) else {
            throw ReplayError("the \(allocator.rawValue) replay child failed (exit status \(exitCode)) without a result")
        }
        return measurement
    }

    static func currentEnvironment() -> [String] {
        var result: [String] = []
        var p = environ
        while let entry = p.pointee {
            result.append(String(cString: entry))
            p += 1
        }
        return result
    }

    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { Glibc.free($0) } }
        let array = copies + [nil]
        return array.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    static func readToEnd(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            result.append(contentsOf: chunk[0..<n])
            if result.count > 64 << 20 { break }   // a child never writes this much
        }
        return result
    }

    // MARK: child side

    /// The child's whole job. Returns the exit status.
    public static func childMain(programFD: Int32, resultFD: Int32, allocator: AllocatorKind, verify: Bool,
                                 sizedFree: Bool = false, gc: GCReplayOptions = GCReplayOptions()) -> Int32 {
        let result: JSONValue
        var status: Int32 = 0
        do {
            if let expected = allocator.expectedMallocFamily {
                let actual = MallocFamily.current()
                guard actual == expected else {
                    throw ReplayError("\(allocator.rawValue): this process runs on \(actual.rawValue) malloc; the LD_PRELOAD of \(allocator.libraryFileName ?? "the library") did not take effect")
                }
            }
            let program = try ReplayProgram(fd: programFD)
            let measurement = try ReplayRunner.measure(program: program, allocator: allocator, verify: verify,
                                                       sizedFree: sizedFree, gc: gc)
            result = encodeMeasurement(measurement)
        } catch {
            var members = [JSONMember("error", .string("\(error)"))]
            if let u = (error as? ReplayError)?.useAfterFree {
                members.append(JSONMember("use_after_free", .object([
                    JSONMember("worker", .int(u.worker)), JSONMember("op", .int(u.op)), JSONMember("role", .int(u.role)),
                ])))
            }
            result = .object(members)
            status = 1
        }
        var text = result.serialized(pretty: false) + "\n"
        text.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(resultFD, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                done += n
            }
        }
        close(resultFD)
        return status
    }

    // MARK: protocol

    public static func encodeMeasurement(_ m: ReplayMeasurement) -> JSONValue {
        var members = [
            JSONMember("workers", .int(m.workers)),
            JSONMember("wall_seconds", .double(m.wallSeconds)),
            JSONMember("cpu_seconds", .double(m.cpuSeconds)),
            JSONMember("baseline_rss_bytes", .int(m.baselineRSSBytes)),
            JSONMember("rss_at_peak_live_bytes", .int(m.rssAtPeakLiveBytes)),
            JSONMember("peak_rss_bytes", .int(m.peakRSSBytes)),
            JSONMember("allocator_stats", .object(m.allocatorStatistics.map { JSONMember($0.name, .int($0.value)) })),
            JSONMember("verified", .bool(m.verified)),
            JSONMember("sized_free", .bool(m.sizedFree)),
        ]
        if let failure = m.verificationFailure { members.append(JSONMember("verification_failure", .string(failure))) }
        if let gc = m.gc { members.append(JSONMember("gc", gc.json())) }
        return .object(members)
    }

    public static func decodeMeasurement(_ json: JSONValue) -> ReplayMeasurement? {
        guard let workers = json["workers"]?.intValue,
              let wall = json["wall_seconds"]?.doubleValue,
              let cpu = json["cpu_seconds"]?.doubleValue,
              let baseline = json["baseline_rss_bytes"]?.intValue,
              let atPeak = json["rss_at_peak_live_bytes"]?.intValue,
              let peak = json["peak_rss_bytes"]?.intValue,
              let stats = json["allocator_stats"]?.objectValue else { return nil }
        var m = ReplayMeasurement(
            workers: workers, wallSeconds: wall, cpuSeconds: cpu, baselineRSSBytes: baseline,
            rssAtPeakLiveBytes: atPeak, peakRSSBytes: peak,
            allocatorStatistics: stats.compactMap { m in m.value.intValue.map { AllocatorStatistic(name: m.key, value: $0) } },
            verified: json["verified"] == .bool(true),
            verificationFailure: json["verification_failure"]?.stringValue)
        m.sizedFree = json["sized_free"] == .bool(true)
        if let gc = json["gc"] {
            guard let report = GCReport(json: gc) else { return nil }
            m.gc = report
        }
        return m
    }
}

extension ChildReplay {
    /// `heaplab replay`: load and lower the trace here (timed as load), measure in a child.
    /// Throws `InputError` for a bad trace, `ReplayError` otherwise. `executable` is the
    /// heaplab binary to start (default: this process's).
    /// `gc`: the collector's options (`--allocator gc`).
    public static func replay(trace: String, allocator: AllocatorKind, threads: Int?, verify: Bool = false,
                              sizedFree: Bool = false, executable: String? = nil,
                              gc: GCReplayOptions? = nil) throws -> ReplayReport {
        _ = try allocator.libraryPath()   // a missing library fails before the load
        if allocator == .go { _ = try GoReplay.executable() }   // so does a missing Go
        let start = ReplaySystem.monotonicNanos()
        let collected = allocator.isCollected
        let program = try TraceLowering.lower(path: trace, workers: threads, forCollector: collected,
                                              origins: collected && verify)
        let loadSeconds = Double(ReplaySystem.monotonicNanos() - start) / 1e9
        let measurement = try measureNamingUseAfterFree(program: program, allocator: allocator, trace: trace, verify: verify,
                                                        sizedFree: sizedFree, executable: executable, gc: gc)
        return ReplayReport(allocator: allocator, trace: trace, loadSeconds: loadSeconds,
                            program: program.info, measurement: measurement)
    }

    /// `measure`, with a use after free that `--verify` found turned into the trace's
    /// `FILE:LINE: object N was used after the collector freed it` (InputError).
    static func measureNamingUseAfterFree(program: ReplayProgram, allocator: AllocatorKind, trace: String, verify: Bool,
                                          sizedFree: Bool, executable: String?, gc: GCReplayOptions?) throws -> ReplayMeasurement {
        do {
            return try measure(program: program, allocator: allocator, trace: trace, verify: verify,
                               sizedFree: sizedFree, executable: executable, gc: gc)
        } catch {
            guard let u = error.useAfterFree,
                  let named = u.inputError(trace: trace, origins: program.origins) else { throw error }
            throw named
        }
    }
}
