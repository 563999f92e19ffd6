// `--allocator go`: the trace replayed on Go's own runtime (Go 1.19's allocator and
// concurrent collector) by goreplay, the Go program in tools/goreplay. This file is the
// Swift side of it: where the goreplay binary comes from, and the arguments and environment
// it is started with (ChildReplay.measure starts it in place of a heaplab child; the
// protocol is the same: program on fd 3, one JSON object on fd 4).
//
// Finding the binary, first hit wins:
//   1. $HEAPLAB_GOREPLAY, a goreplay executable (nothing is built);
//   2. the package's sources: walking up from this heaplab executable (/proc/self/exe) to
//      the directory with Package.swift and tools/goreplay/go.mod; the binary is
//      .build/goreplay/goreplay there (else $XDG_CACHE_HOME/heaplab/goreplay, else
//      ~/.cache/heaplab/goreplay, when the package is not writable), built with
//      `go build` when missing or older than any file of tools/goreplay, into a temporary
//      name renamed into place (concurrent heaplab processes never see half a binary);
//   3. `goreplay` beside the heaplab executable (an installed copy).
// `go` is looked for in PATH, then /usr/lib/go/bin and /usr/lib/go-1.19/bin (Debian's
// golang-go); without it the error says to install golang-go (scripts/setup.sh does).
//
// Options (GCReplayOptions): GOGC and the memory limit pass through (debug.SetGCPercent,
// debug.SetMemoryLimit in the child); GOGC=0 with a heap minimum, which only the bench's heap
// sweep asks for (the command line refuses --heap-minimum for go), becomes goreplay's
// -fixed-heap: GOGC off and a memory limit (HeapSweep.swift); --gctrace copies Go's own
// gctrace lines to stderr; `--verify` becomes goreplay's -check (GODEBUG=clobberfree=1, and
// every op that names an object checks that Go has not swept it). Go has no stop-the-world mode, idle-marking switch, data-zeroing
// switch, timeline or raw stores: those are refused.

#if canImport(Glibc)
import Glibc
#endif

public enum GoReplay {
    public static let environmentVariable = "HEAPLAB_GOREPLAY"
    static let sourceDirectory = "tools/goreplay"

    /// The goreplay executable, built first if needed (see the file comment).
    public static func executable() throws(ReplayError) -> String {
        if let override = getenv(environmentVariable).map({ String(cString: $0) }), !override.isEmpty {
            guard access(override, X_OK) == 0 else {
                throw ReplayError("\(environmentVariable)=\(override): no such executable file")
            }
            return override
        }
        let exe = ChildReplay.currentExecutable()
        if let exe, let root = packageRoot(startingAt: exe) {
            return try builtBinary(root: root)
        }
        if let exe {
            let beside = directoryName(exe) + "/goreplay"
            if access(beside, X_OK) == 0 { return beside }
        }
        throw ReplayError("go: cannot find goreplay: no HeapLab package (Package.swift and \(sourceDirectory)) above \(exe ?? "this executable") and no goreplay beside it; set \(environmentVariable)")
    }

    /// goreplay's arguments after `-program-fd 3 -result-fd 4`.
    static func arguments(_ options: GCReplayOptions) throws(ReplayError) -> [String] {
        if options.stopTheWorld || !options.idleMarking || options.zeroData || options.timeline != nil || options.rawStores {
            throw ReplayError("go: Go's runtime has no stop-the-world mode, idle-marking switch, data-zeroing switch, timeline or raw stores")
        }
        var a: [String] = []
        if let minimum = options.heapMinimum {
            guard options.gogc == 0, options.memoryLimit == nil else {
                throw ReplayError("go: Go's runtime has no heap minimum (only a fixed heap: GOGC=0 with a heap size, as the heap sweep runs it)")
            }
            a += ["-fixed-heap", String(minimum)]
        } else {
            a += ["-gogc", options.gogc.map(String.init) ?? "off", "-memlimit", options.memoryLimit.map(String.init) ?? "off"]
        }
        if options.gctrace { a.append("-gctrace") }
        return a
    }

    /// The child's environment: no preload, no GOGC / GOMEMLIMIT (the options say), and
    /// GODEBUG=gctrace=1, which goreplay reads its per-cycle figures from.
    static func environment(_ inherited: [String]) -> [String] {
        inherited.filter {
            !$0.hasPrefix("LD_PRELOAD=") && !$0.hasPrefix("GOGC=") && !$0.hasPrefix("GOMEMLIMIT=") && !$0.hasPrefix("GODEBUG=")
        } + ["GODEBUG=gctrace=1"]
    }

    // MARK: finding and building

    static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The nearest directory above `path` holding Package.swift and tools/goreplay/go.mod.
    static func packageRoot(startingAt path: String) -> String? {
        var dir = directoryName(path)
        while true {
            if access("\(dir)/Package.swift", F_OK) == 0 && access("\(dir)/\(sourceDirectory)/go.mod", F_OK) == 0 {
                return dir
            }
            if dir == "/" || dir.isEmpty { return nil }
            dir = directoryName(dir)
        }
    }

    static func modificationTime(_ path: String) -> (Int, Int)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
    }

    /// Newest modification time of goreplay's sources.
    static func sourcesTime(_ source: String) -> (Int, Int) {
        var newest = (0, 0)
        for name in Bench.listDirectory(source)
        where name.hasSuffix(".go") || name.hasSuffix(".s") || name == "go.mod" {
            if let t = modificationTime("\(source)/\(name)"), t > newest { newest = t }
        }
        return newest
    }

    static func makeDirectories(_ path: String) -> Bool {
        var prefix = ""
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { return false }
        }
        return Bench.isDirectory(path)
    }

    /// Where the binary is kept: the package's .build, else the user's cache.
    static func binaryDirectories(root: String) -> [String] {
        var dirs = ["\(root)/.build/goreplay"]
        if let xdg = getenv("XDG_CACHE_HOME").map({ String(cString: $0) }), xdg.hasPrefix("/") {
            dirs.append("\(xdg)/heaplab")
        } else if let home = getenv("HOME").map({ String(cString: $0) }), home.hasPrefix("/") {
            dirs.append("\(home)/.cache/heaplab")
        }
        return dirs
    }

    static func builtBinary(root: String) throws(ReplayError) -> String {
        let source = "\(root)/\(sourceDirectory)"
        let newest = sourcesTime(source)
        let dirs = binaryDirectories(root: root)
        for dir in dirs {
            let binary = "\(dir)/goreplay"
            if access(binary, X_OK) == 0, let t = modificationTime(binary), t >= newest { return binary }
        }
        guard let go = goTool() else {
            throw ReplayError("go: --allocator go needs the Go toolchain to build \(sourceDirectory) (Go 1.19, Debian package golang-go): run scripts/setup.sh or `apt-get install golang-go`, or set \(environmentVariable) to a goreplay binary")
        }
        var lastError = "no writable directory among \(dirs.joined(separator: ", "))"
        for dir in dirs where makeDirectories(dir) && access(dir, W_OK) == 0 {
            let binary = "\(dir)/goreplay"
            let temporary = "\(binary).\(getpid()).tmp"
            var environment = ChildReplay.currentEnvironment().filter { !$0.hasPrefix("CGO_ENABLED=") } + ["CGO_ENABLED=0"]
            if getenv("GOCACHE") == nil && getenv("HOME") == nil && getenv("XDG_CACHE_HOME") == nil {
                environment.append("GOCACHE=\(dir)/gocache")
            }
            // `go build` works on the module in its current directory.
            let (status, output) = run(["/bin/sh", "-c", "cd \"$1\" && exec \"$2\" build -trimpath -o \"$3\" .", "sh", source, go, temporary],
                                       environment: environment)
            guard status == 0 else {
                unlink(temporary)
                lastError = "`go build` in \(source) failed (status \(status)): \(output.trimmedWhitespace())"
                break
            }
            guard rename(temporary, binary) == 0 else {
                lastError = "rename \(temporary): \(String(cString: strerror(errno)))"
                unlink(temporary)
                continue
            }
            return binary
        }
        throw ReplayError("go: cannot build goreplay: \(lastError)")
    }

    /// The go command: PATH, then Debian's locations.
    static func goTool() -> String? {
        var candidates: [String] = []
        if let path = getenv("PATH").map({ String(cString: $0) }) {
            candidates += path.split(separator: ":").map { "\($0)/go" }
        }
        candidates += ["/usr/lib/go/bin/go", "/usr/lib/go-1.19/bin/go", "/usr/local/go/bin/go"]
        return candidates.first { access($0, X_OK) == 0 && !Bench.isDirectory($0) }
    }

    /// Runs a command to completion; its stdout and stderr together.
    static func run(_ arguments: [String], environment: [String]) -> (Int32, String) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return (-1, "pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var pid: pid_t = 0
        let rc = ChildReplay.withCStrings(arguments) { argv in
            ChildReplay.withCStrings(environment) { envp in posix_spawn(&pid, arguments[0], &actions, nil, argv, envp) }
        }
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            return (-1, "cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        let output = ChildReplay.readToEnd(fds[0])
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) != 0 ? 128 + (status & 0x7f) : (status >> 8) & 0xff
        return (code, String(decoding: output, as: UTF8.self))
    }
}

extension String {
    fileprivate func trimmedWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
