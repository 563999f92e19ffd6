// The scavenger: returns free heap pages to the OS.
//
// Free pages stay mapped (the heap never unmaps an arena); the scavenger tells the OS it may
// take their memory back (madvise MADV_DONTNEED, Go's sysUnused), which drops RSS at once, and
// marks them scavenged in the page allocator. A scavenged page that is allocated again faults
// in a zero page, so spans built only from scavenged pages need no clearing (needzero = 0).
//
// Two ways in, as in Go (runtime/mgcscavenge.go):
//   - on demand: Heap.scavenge(bytes:) releases up to a budget, highest addresses first
//     (debug.FreeOSMemory when the budget is unlimited);
//   - in the background: a thread that wakes every 10 ms and releases idle memory beyond a
//     retained goal of heapInUse * (1 + retainFraction) (Go's retainExtraPercent = 10), at
//     most 64 pages (512 KiB) per wake, so it costs well under 1% of a CPU (Go paces its
//     scavenger to 1% of one CPU).
// All page-allocator work happens under the heap lock; the madvise calls do not (pages being
// released are taken out of the free set meanwhile, as Go's scavenger does).

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

extension UnsafeMutablePointer where Pointee == MHeapState {
    /// Releases up to `maxBytes` of free, unscavenged pages. Returns bytes released. Works in
    /// batches of at most 64 pages, each taken out of the free set under the heap lock and
    /// released to the OS without it (PageAllocator.takeForScavenging).
    func scavenge(maxBytes: Int) -> Int {
        let maxPages = maxBytes == .max ? Int.max : maxBytes >> AllocatorConstants.pageShift
        let base = pointee.arenaBase
        var runs: [(first: Int, count: Int)] = []
        var done = 0
        while done < maxPages {
            runs.removeAll(keepingCapacity: true)
            pointee.lock.lock()
            let taken = pageAllocator.pointee.takeForScavenging(maxPages: Swift.min(maxPages - done, Self.scavengeBatchPages)) {
                runs.append(($0, $1))
            }
            pointee.lock.unlock()
            if taken == 0 { break }
            for r in runs {
                let p = UnsafeMutableRawPointer(bitPattern: base + UInt(r.first << AllocatorConstants.pageShift))!
                OSMemory.unused(p, r.count << AllocatorConstants.pageShift)
            }
            pointee.lock.lock()
            for r in runs { pageAllocator.pointee.returnScavenged(r.first, r.count) }
            pointee.lock.unlock()
            done += taken
        }
        return done << AllocatorConstants.pageShift
    }

    /// Pages released per hold of the heap lock.
    static var scavengeBatchPages: Int { 64 }

    /// Idle bytes above the retained goal (0 when none).
    func scavengeSurplus(retainFraction: Double) -> Int {
        pointee.lock.lock()
        defer { pointee.lock.unlock() }
        let inUse = pointee.inUsePages << AllocatorConstants.pageShift
        let resident = inUse + (pageAllocator.pointee.freeUnscavengedPages << AllocatorConstants.pageShift)
        let goal = inUse + Int(Double(inUse) * retainFraction)
        return Swift.max(0, resident - goal)
    }
}

/// The background scavenger thread.
final class BackgroundScavenger: @unchecked Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private var thread: pthread_t?
    private let state: UnsafeMutablePointer<MHeapState>
    private let retainFraction: Double
    static let pagesPerWake = 64
    static let periodNanoseconds = 10_000_000

    init(heap: Heap) {
        state = heap.state
        retainFraction = heap.configuration.scavengerRetainFraction
        let unmanaged = Unmanaged.passRetained(self)
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let me = Unmanaged<BackgroundScavenger>.fromOpaque(arg!).takeRetainedValue()
            me.run()
            return nil
        }, unmanaged.toOpaque())
        thread = t
    }

    private func run() {
        while !stopFlag.load(ordering: .acquiring) {
            let surplus = state.scavengeSurplus(retainFraction: retainFraction)
            if surplus > 0 {
                _ = state.scavenge(maxBytes: Swift.min(surplus, Self.pagesPerWake << AllocatorConstants.pageShift))
            }
            var ts = timespec(tv_sec: 0, tv_nsec: Self.periodNanoseconds)
            nanosleep(&ts, nil)
        }
    }

    func stop() {
        stopFlag.store(true, ordering: .releasing)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }
}
