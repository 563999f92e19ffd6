// What each cycle did, and Go's gctrace line for it (GODEBUG=gctrace=1, runtime/mgc.go):
//
//   gc # @#s #%: #+#+# ms clock, #+#/#/#+# ms cpu, #->#-># MB, # MB goal, # P
//
//   gc #         the cycle number
//   @#s          seconds since the collector started
//   #%           share of the CPU available since start (wall × P) spent in GC, as Go
//   #+#+# clock  wall time of mark setup (STW) + concurrent mark + mark termination (STW)
//   #+#/#/#+#    CPU time of mark setup + assists/background/idle marking + mark termination;
//                as Go, the STW phases count clock × P
//   #->#-># MB   heap at the start of the cycle, at the end of mark, and marked (live)
//   # MB goal    the heap goal of the cycle
//   # P          logical processors (Go's GOMAXPROCS)

import Synchronization

/// One interval of collector activity, reported through `GCConfiguration.onEvent` on the
/// thread that did it. Times are CLOCK_MONOTONIC seconds.
public struct GCEvent: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// Mark setup with the world stopped (STW 1; under `stopTheWorld`, the whole mark).
        case markSetup
        /// Concurrent mark, from the end of mark setup to the start of the final termination.
        case concurrentMark
        /// Mark termination with the world stopped (STW 2); an attempt that found more work
        /// and restarted the world is reported too.
        case markTermination
        /// A background mark worker's slice.
        case markWorker
        /// A mutator's assist.
        case assist
    }
    public var kind: Kind
    public var cycle: Int
    public var start: Double
    public var end: Double

    public init(kind: Kind, cycle: Int, start: Double, end: Double) {
        self.kind = kind
        self.cycle = cycle
        self.start = start
        self.end = end
    }

    /// Whether the world was stopped during this interval.
    public var isPause: Bool { kind == .markSetup || kind == .markTermination }
}

public struct GCCycleRecord: Sendable, Equatable {
    public var cycle: Int
    /// Seconds since the collector started, when the cycle began.
    public var start = 0.0
    /// Wall-clock seconds of mark setup (STW), concurrent mark, mark termination (STW).
    public var stw1 = 0.0
    public var concurrent = 0.0
    public var stw2 = 0.0
    /// Of the pauses above, the seconds spent waiting for every thread to reach a safepoint
    /// (Go 1.22's /sched/pauses/stopping/gc): mark setup, and mark termination (all attempts).
    public var stw1Stopping = 0.0
    public var stw2Stopping = 0.0
    public var stw1CPU = 0.0
    public var stw2CPU = 0.0
    public var assistSeconds = 0.0
    public var assists = 0
    public var backgroundCPUSeconds = 0.0
    public var idleCPUSeconds = 0.0
    public var heapAtStart = 0
    public var heapAtMarkEnd = 0
    public var heapMarked = 0
    /// Heap goal of this cycle, and the goal set for the next.
    public var goal = 0
    public var nextGoal = 0
    public var procs = 1
    public var cpuTotalSinceStart = 0.0
    public var gcCPUSinceStart = 0.0

    public init(cycle: Int) { self.cycle = cycle }

    /// Pauses of this cycle (seconds).
    public var pauses: [Double] { [stw1, stw2] }

    public var gctraceLine: String {
        func ms(_ s: Double) -> String { formatMillis(s * 1000) }
        func mb(_ b: Int) -> String { String(b >> 20) }
        let percent = cpuTotalSinceStart > 0 ? Int((gcCPUSinceStart / cpuTotalSinceStart * 100).rounded()) : 0
        let p = Double(procs)
        return "gc \(cycle) @\(String(format3(start)))s \(percent)%: "
            + "\(ms(stw1))+\(ms(concurrent))+\(ms(stw2)) ms clock, "
            + "\(ms(stw1 * p))+\(ms(assistSeconds))/\(ms(backgroundCPUSeconds))/\(ms(idleCPUSeconds))+\(ms(stw2 * p)) ms cpu, "
            + "\(mb(heapAtStart))->\(mb(heapAtMarkEnd))->\(mb(heapMarked)) MB, \(mb(goal)) MB goal, \(procs) P"
    }
}

/// Go prints clock and CPU times with 2 significant digits (at least): 0.015, 1.2, 12.
func formatMillis(_ v: Double) -> String {
    if v >= 10 { return String(Int(v.rounded())) }
    if v >= 1 { return String(format1(v)) }
    return String(format3(v))
}

private func format1(_ v: Double) -> String {
    let t = (v * 10).rounded() / 10
    return t == t.rounded() ? String(Int(t)) : String(t)
}

private func format3(_ v: Double) -> String {
    let scaled = Int((v * 1000).rounded())
    let whole = scaled / 1000, frac = scaled % 1000
    let f = String(frac)
    return "\(whole)." + String(repeating: "0", count: 3 - f.count) + f
}

extension Collector {


    func workerCPUSeconds() -> Double {
        Double(workers.reduce(0) { $0 + $1.cpuNanos.load(ordering: .relaxed) }) * 1e-9
    }

    func idleWorkerCPUSeconds() -> Double {
        Double(workers.reduce(0) { $0 + $1.idleCPUNanos.load(ordering: .relaxed) }) * 1e-9
    }

    func resetWorkerCPU() {
        for w in workers {
            w.cpuNanos.store(0, ordering: .relaxed)
            w.idleCPUNanos.store(0, ordering: .relaxed)
        }
    }

    /// GC CPU time so far, including this cycle: STW × P, assists, background marking.
    func accumulatedGCCPU(adding r: GCCycleRecord) -> Double {
        let p = Double(r.procs)
        let previous = records.last?.gcCPUSinceStart ?? 0
        return previous + (r.stw1 + r.stw2) * p + r.assistSeconds + r.backgroundCPUSeconds + r.idleCPUSeconds
    }
}
