// The pacer: when to start a cycle and how much marking to ask of allocating mutators.
// Go 1.19's gcControllerState (runtime/mgcpacer.go; design: "GC pacer redesign", Knyszek 2021).
//
// Heap goal (commit):
//     goal = max(heapMarked + (heapMarked + stackScan + globalsScan) × GOGC/100,
//                heapMinimum)                       heapMinimum = 4 MiB × GOGC/100
// with GOGC=off meaning no goal from growth. The minimum heap bounds the goal, not the
// trigger (Go 1.19's commit), so a small heap still starts marking with runway to spare. A soft memory limit (GOMEMLIMIT semantics) caps
// the goal at the limit minus the memory the heap uses besides objects (metadata, free
// spans): goal = min(goal, limit − overhead), never below heapMarked + 4 MiB·GOGC/100... as
// Go, the goal is only bounded below by the live heap: under the limit the GC may run back to
// back (Go 1.19 then caps GC CPU at 50%; we report, not cap).
//
// Trigger: the runway is the heap growth the mutator will do while the GC does its expected
// scan work at the goal utilisation u = 0.25:
//     runway = consMark × (1 − u)/u × (lastHeapScan + stackScan + globalsScan)
//     trigger = goal − runway, clamped to [heapMarked + 0.7 (goal − heapMarked),
//                                          max(heapMarked + 0.95 (goal − heapMarked),
//                                              goal − 4 MiB)]
// (Go 1.19's trigger: for a large heap the latest trigger leaves the runway of a minimum
// heap rather than 5% of the distance). consMark, the ratio of allocation
// rate to scan rate, is measured each cycle:
//     consMark = (heapLive − trigger) × (u + u_idle) / (scanWork × (1 − u))
// (bytes allocated during the cycle against scan work, weighed by the CPU shares of marking
// and mutation) and smoothed by taking the largest of the last four cycles, as Go 1.21 does
// (Go 1.18–1.20 used a PI controller for the same purpose).
//
// Assists (revise): during mark, each allocated byte owes
//     assistWorkPerByte = (expected scan work − scan work done) / (goal − heapLive)
// bytes of scan work, where expected = lastHeapScan + stackScan + globalsScan, and the goal is
// at least 64 KiB past the heap size the cycle was triggered at (Go's minRunway, so that a
// late start does not ask for unbounded assists); once the work done exceeds it, Go assumes the worst (all of heapLive is scannable) and extends the goal by
// GOGC/100 — the "hard goal".

struct Pacer {
    static let goalUtilization = 0.25      // gcGoalUtilization = gcBackgroundUtilization
    static let backgroundUtilization = 0.25
    static let defaultHeapMinimum = 4 << 20
    static let triggerMinRatio = 0.7
    static let triggerMaxRatio = 0.95

    /// GOGC; nil is GOGC=off.
    var gogc: Int?
    /// Soft memory limit in bytes (Int.max: none).
    var memoryLimit: Int

    var heapMarked = 0
    var lastHeapScan = 0
    var stackScan = 0
    var globalsScan = 0
    var consMarkHistory: [Double] = [0, 0, 0, 0]
    var consMark: Double { consMarkHistory.max() ?? 0 }

    private(set) var goal = 0
    private(set) var trigger = 0

    /// GCConfiguration.heapMinimum, when set.
    var heapMinimumOverride: Int? = nil

    var heapMinimum: Int {
        if let heapMinimumOverride { return heapMinimumOverride }
        return gogc.map { Self.defaultHeapMinimum * $0 / 100 } ?? Self.defaultHeapMinimum
    }

    init(gogc: Int?, memoryLimit: Int, heapMinimum: Int? = nil) {
        self.gogc = gogc
        self.memoryLimit = memoryLimit
        heapMinimumOverride = heapMinimum
        commit(overhead: 0)
    }

    /// Recomputes goal and trigger (Go's commit). `overhead`: heap memory that is not object
    /// bytes (metadata, idle spans), subtracted from the memory limit.
    mutating func commit(overhead: Int) {
        var goal = Int.max
        if let gogc {
            goal = heapMarked + (heapMarked + stackScan + globalsScan) * gogc / 100
            goal = max(goal, heapMinimum)
        }
        if memoryLimit != Int.max {
            goal = min(goal, max(memoryLimit - overhead, heapMarked + 1))
        }
        let distance = Double(goal - heapMarked)
        let minTrigger = heapMarked + Int(Self.triggerMinRatio * distance)
        var maxTrigger = heapMarked + Int(Self.triggerMaxRatio * distance)
        if goal != Int.max && goal > Self.defaultHeapMinimum && goal - Self.defaultHeapMinimum > maxTrigger {
            maxTrigger = goal - Self.defaultHeapMinimum
        }
        maxTrigger = max(maxTrigger, minTrigger)
        let runway = consMark * (1 - Self.goalUtilization) / Self.goalUtilization
            * Double(lastHeapScan + stackScan + globalsScan)
        var trigger = runway >= Double(goal) ? minTrigger : goal - Int(runway)
        trigger = min(max(trigger, minTrigger), maxTrigger)
        if goal == Int.max { trigger = Int.max }
        self.goal = max(goal, trigger == Int.max ? goal : trigger)
        self.trigger = trigger
    }

    /// Go's minRunway: the goal a cycle works to is at least this far past its trigger point.
    static let minRunway = 64 << 10

    /// Scan work each allocated byte owes during mark (Go's revise), for a cycle triggered
    /// when the heap was `triggeredAt` bytes.
    func assistWorkPerByte(heapLive: Int, scanWorkDone: Int, heapScanNow: Int, triggeredAt: Int) -> Double {
        var expected = lastHeapScan + stackScan + globalsScan
        var goal = max(self.goal, triggeredAt + Self.minRunway)
        if scanWorkDone > expected {
            // Past the estimate: assume everything live is scannable and use the hard goal.
            expected = heapScanNow + stackScan + globalsScan
            if let gogc { goal = Int(Double(goal) * (1 + Double(gogc) / 100)) }
        }
        let remainingWork = max(expected - scanWorkDone, 1000)
        let remainingHeap = max(goal - heapLive, 1)
        return Double(remainingWork) / Double(remainingHeap)
    }

    /// Ends a cycle (Go's endCycle + resetLive): measures cons/mark, records the new marked
    /// heap and scan figures, and recomputes goal and trigger.
    mutating func endCycle(heapLiveAtEnd: Int, triggeredAt: Int, scanWork: Int, utilization: Double,
                           idleUtilization: Double, bytesMarked: Int, heapScan: Int, stackScan: Int,
                           overhead: Int) {
        if scanWork > 0 && utilization < 1 {
            let current = Double(max(heapLiveAtEnd - triggeredAt, 0)) * (utilization + idleUtilization)
                / (Double(scanWork) * (1 - utilization))
            consMarkHistory.removeFirst()
            consMarkHistory.append(current)
        }
        heapMarked = bytesMarked
        lastHeapScan = heapScan
        self.stackScan = stackScan
        commit(overhead: overhead)
    }

    /// Go's formula for the background mark workers on `procs` Ps: the dedicated workers,
    /// and the utilisation goal of the fractional worker (per P).
    static func markWorkers(procs: Int) -> (dedicated: Int, fractionalGoal: Double) {
        let total = Double(procs) * backgroundUtilization
        var dedicated = Int(total + 0.5)
        let utilError = Double(dedicated) / total - 1
        let maxUtilError = 0.3
        if utilError < -maxUtilError || utilError > maxUtilError {
            if Double(dedicated) > total { dedicated -= 1 }
        }
        return (dedicated, (total - Double(dedicated)) / Double(procs))
    }
}
