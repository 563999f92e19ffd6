// A mutator thread's view of the collector: allocation with assists, the write barrier, its
// roots (the trace's holds: this thread's "stack"), and safepoints.
//
// Write barrier (Go's hybrid barrier, runtime/mbarrier.go; proposal 17503 "Eliminate STW
// stack re-scanning"):
//
//     writePointer(slot, ptr):
//         shade(*slot)                 // Yuasa: the overwritten pointer
//         if current stack is grey:
//             shade(ptr)               // Dijkstra: the installed pointer
//         *slot = ptr
//
// - shading the old value keeps every object reachable at mark start reachable by the
//   marker, even when the mutator cuts its last heap path;
// - shading the new value while this thread's roots are unscanned covers a pointer moved
//   from the unscanned roots into the heap behind the marker;
// - once the roots are scanned (black), a thread can only obtain pointers from the heap
//   (protected by the Yuasa half), from its black roots, or from new objects (allocated
//   black), so its roots never need rescanning.
// Roots here are explicit tables (a hold taken on one thread may be dropped on another, through
// the collector's orphan queue), so while marking every hold taken or dropped shades its
// object too: a root removal is a pointer deletion (Yuasa), a root addition an insertion.
// When not marking the barrier is one relaxed load and a predictable branch.
//
// Safepoints: `poll()` is two relaxed loads (stop requested; roots to scan or, once scanned,
// grey buffer to flush). A mutator parks at a stop request until the collector restarts the
// world (parking for that stop's epoch), scans its own roots at the first poll after mark
// setup (Go scans a goroutine's stack when it stops it), and flushes its grey buffer when the
// collector's ragged barrier before mark termination asks.
//
// Blocked threads (Go: a goroutine blocked in a channel or a syscall gives up its P and is
// already at a safe point): a thread about to wait for a while (for another thread, or for
// the end of the replay) calls `enterBlocked()` at a safepoint and `leaveBlocked()` before it
// touches the heap again. While blocked it does not poll: a stop does not wait for it, its
// CPU counts as idle for idle marking, and the collector answers its scan and flush requests
// itself. State, in `region`:
//     running  -> blocked    owner, enterBlocked (grey buffer flushed first)
//     blocked  -> running    owner, leaveBlocked (compare-exchange; then parks if a stop is
//                            on: the stop counted it as stopped, so it touches nothing first)
//     blocked  -> scanning   collector, to scan its roots or flush for it while the world runs
//     scanning -> blocked    collector, done (the owner's leaveBlocked waits meanwhile)
// Stop requests and region changes are sequentially consistent: a stop that saw `blocked`
// is seen by the owner's check after its compare-exchange, so it parks.

#if canImport(Glibc)
import Glibc
#endif
public import Synchronization

public final class Mutator: @unchecked Sendable {
    @usableFromInline unowned(unsafe) let collector: Collector
    /// This thread's mcache (GC mode).
    public let cache: ThreadCache
    @usableFromInline let stopRequested = Atomic<Bool>(false)
    /// The collector asks this thread to scan its roots (at mark setup) or, once they are
    /// scanned, to flush its grey buffer (the ragged barrier before mark termination). It
    /// clears the flag when done.
    @usableFromInline let scanRequested = Atomic<Bool>(false)
    /// The stop (Collector.stopEpoch) this thread is parked for; stale once it resumes, so a
    /// thread on its way out of one stop never counts as parked for the next.
    let parkedEpoch = Atomic<Int>(0)
    let retired = Atomic<Bool>(false)
    /// This mutator's entry in Collector.orphanCursors (set at registration).
    var orphanSlot = 0
    /// running, blocked or scanning (see the file comment).
    let region = Atomic<Int>(Mutator.running)
    static let running = 0
    static let blocked = 1
    static let scanning = 2
    let resume = Condition()
    let work: GCWork
    /// `work` and the collector without reference counting, for the barrier and shading
    /// paths (`grey`): a class reference loaded from a property and passed on costs a retain
    /// and a release per call (20% of a 2-thread replay's time while marking). The mutator
    /// owns `work`, and the collector outlives its mutators.
    let workRef: Unmanaged<GCWork>
    let collectorRef: Unmanaged<Collector>
    /// Mutable per-thread state in plain memory (read on the allocation and barrier paths).
    @usableFromInline let hot: UnsafeMutablePointer<MutatorHot>
    @usableFromInline let roots = RootTable()
    /// Roots named by a dense slot number (a replay's object table), when the thread's
    /// caller has them (enableSlotRoots): no hashing. Nil: every root is in `roots`.
    @usableFromInline var slotRoots: SlotRoots? = nil

    @usableFromInline struct MutatorHot {
        /// Bytes this mutator may still allocate during mark before it must assist.
        var assistBalance: Int = 0
        /// Its roots are not scanned yet this cycle (Go: the stack is grey).
        var stackGrey: Bool = false
        var assistNanos: Int = 0
        var assists: Int = 0
        /// The orphan-drop generation this thread last looked at (Collector.orphanGeneration).
        @usableFromInline var orphanGenerationSeen: Int = 0
        /// The thread is blocked (enterBlocked): its CPU is free for idle marking.
        var blocked: Bool = false
    }

    init(collector: Collector, cache: ThreadCache) {
        self.collector = collector
        self.cache = cache
        work = GCWork(pool: collector.pool)
        workRef = Unmanaged.passUnretained(work)
        collectorRef = Unmanaged.passUnretained(collector)
        hot = .allocate(capacity: 1)
        hot.initialize(to: MutatorHot())
    }

    deinit { hot.deallocate() }

    // MARK: Allocation

    /// Allocates an object whose first `pointerSlots` words hold pointers (0: noscan, never
    /// scanned; under 16 bytes it is a tiny object). Pays assist debt while marking. Returns
    /// nil when the heap cannot grow.
    ///
    /// With `zeroed` (Go's typed allocation) the whole object reads as zero. Without it only
    /// the pointer slots do, which is all the collector needs: the data words may hold old
    /// bytes, as malloc's do (Go's mallocgc with needzero false, for memory its caller
    /// overwrites). Fresh spans and pages are zero either way, so they are never cleared.
    @inline(__always)
    public func allocate(size: Int, pointerSlots: Int, zeroed: Bool = true) -> UnsafeMutableRawPointer? {
        if collector.phaseWord.load(ordering: .relaxed) != 0 {
            hot.pointee.assistBalance &-= size
            if hot.pointee.assistBalance < 0 { assist() }
        }
        let noscan = pointerSlots == 0
        if size > AllocatorConstants.maxSmallSize {
            guard let p = allocateLarge(size, noscan: noscan, zeroed: zeroed, clearPrefix: pointerSlots &* 8) else { return nil }
            if !noscan {
                let pages = (size + AllocatorConstants.pageSize - 1) & ~(AllocatorConstants.pageSize - 1)
                collector.bits.setObject(UInt(bitPattern: p), ptrs: pointerSlots, sizeWords: pages >> 3)
            }
            return p
        }
        if noscan && size < AllocatorConstants.tinySize {
            return cache.allocate(size: size, noscan: true, zeroed: zeroed)
        }
        // Small: the class is looked up once, and the slot size comes back with the slot.
        let sizeClass = Int(cache.c.pointee.sizeClassOf(size))
        let clearWords = zeroed ? Int.max : pointerSlots
        guard let (p, elemSize) = cache.allocateSmallGC(sizeClass: sizeClass, noscan: noscan, clearWords: clearWords) else { return nil }
        if !noscan { collector.bits.setObject(UInt(bitPattern: p), ptrs: pointerSlots, sizeWords: elemSize >> 3) }
        return p
    }

    @inline(never)
    func allocateLarge(_ size: Int, noscan: Bool, zeroed: Bool, clearPrefix: Int) -> UnsafeMutableRawPointer? {
        let marking = collector.phaseWord.load(ordering: .acquiring) != 0
        guard let p = collector.heap.state.allocLarge(size, noscan: noscan, markBlack: marking, zeroed: zeroed, clearPrefix: clearPrefix) else { return nil }
        let bytes = (size + AllocatorConstants.pageSize - 1) & ~(AllocatorConstants.pageSize - 1)
        let live = collector.heapLive.add(bytes, ordering: .relaxed).newValue
        if marking { cache.c.pointee.gcAllocatedBytes += bytes }
        if live >= collector.triggerBytes.load(ordering: .relaxed) { collector.noteTrigger() }
        return p
    }

    // MARK: Write barrier

    /// Stores `value` (nil: 0) in pointer slot `slot` of `object`, through the write barrier.
    @inlinable @inline(__always)
    public func writePointer(_ object: UnsafeMutableRawPointer, slot: Int, _ value: UnsafeMutableRawPointer?) {
        let slotAddress = object + slot &* 8
        if collector.writeBarrier.load(ordering: .relaxed) != 0 {
            barrier(slotAddress, value)
        }
        // Releasing: whoever loads the pointer (a marker, another thread) also sees the
        // object's allocation (its span's freeindex, its heap bits). A plain store on x86.
        slotAddress.assumingMemoryBound(to: Atomic<UInt>.self).pointee
            .store(UInt(bitPattern: value), ordering: .releasing)
    }

    /// Reads pointer slot `slot` of `object`.
    @inlinable @inline(__always)
    public func readPointer(_ object: UnsafeMutableRawPointer, slot: Int) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: (object + slot &* 8).assumingMemoryBound(to: Atomic<UInt>.self).pointee
            .load(ordering: .acquiring))
    }

    @usableFromInline @inline(never)
    func barrier(_ slotAddress: UnsafeMutableRawPointer, _ value: UnsafeMutableRawPointer?) {
        let old = slotAddress.assumingMemoryBound(to: Atomic<UInt>.self).pointee.load(ordering: .acquiring)
        if old != 0 { grey(old) }
        if hot.pointee.stackGrey, let value { grey(UInt(bitPattern: value)) }
    }

    // MARK: Roots

    /// Takes one hold on `object` (the trace's `a` and `h`): it is a root of this thread.
    @inlinable @inline(__always)
    public func hold(_ object: UnsafeMutableRawPointer) {
        roots.add(UInt(bitPattern: object))
        if collector.writeBarrier.load(ordering: .relaxed) != 0 { shade(UInt(bitPattern: object)) }
    }

    /// Drops one hold on `object` (the trace's `f`), taken by this thread or, if this thread
    /// holds none, by another: that thread applies the drop at its next safepoint (or the
    /// collector at its next stop), as only a table's owner changes it.
    @inlinable @inline(__always)
    public func drop(_ object: UnsafeMutableRawPointer) {
        if !roots.remove(UInt(bitPattern: object)) {
            collector.postOrphanDrop(UInt(bitPattern: object), slot: -1, from: self)
        }
        if collector.writeBarrier.load(ordering: .relaxed) != 0 { shade(UInt(bitPattern: object)) }
    }

    /// Roots by slot (holdSlot/dropSlot) for slots 0..<capacity: a replay gives each object a
    /// dense slot, so a hold is an array update instead of a hash-table probe, and a root
    /// scan walks a dense list, like a stack. Call once, from the owner thread, before the
    /// first holdSlot.
    public func enableSlotRoots(capacity: Int) {
        if slotRoots == nil { slotRoots = SlotRoots(capacity: capacity) }
    }

    /// Takes one hold on `object`, which the caller names `slot` (enableSlotRoots): as
    /// hold(_:). While another object is held in the same slot (a resize holds the copy
    /// before it lets go of the original) the hold goes to the hash table instead.
    @inlinable @inline(__always)
    public func holdSlot(_ slot: Int, _ object: UnsafeMutableRawPointer) {
        let k = UInt(bitPattern: object)
        if !slotRoots.unsafelyUnwrapped.add(slot, k) { roots.add(k) }
        if collector.writeBarrier.load(ordering: .relaxed) != 0 { shade(k) }
    }

    /// Drops one hold on `object`, named `slot`: as drop(_:).
    @inlinable @inline(__always)
    public func dropSlot(_ slot: Int, _ object: UnsafeMutableRawPointer) {
        let k = UInt(bitPattern: object)
        if !slotRoots.unsafelyUnwrapped.remove(slot, k) && !roots.remove(k) {
            collector.postOrphanDrop(k, slot: slot, from: self)
        }
        if collector.writeBarrier.load(ordering: .relaxed) != 0 { shade(k) }
    }

    /// Every root of this thread with its hold count (slot roots and table roots; a thread
    /// uses one or the other for a given object).
    func forEachRootAddress(_ body: (UInt, Int) -> Void) {
        roots.forEach(body)
        slotRoots?.forEach(body)
    }

    /// Removes one hold on `object` (named `slot`, or -1), wherever this thread keeps it.
    func removeRoot(_ object: UInt, slot: Int) -> Bool {
        if slot >= 0, let slotRoots, slotRoots.remove(slot, object) { return true }
        return roots.remove(object)
    }

    /// Distinct roots held (for the pacer's stack-scan estimate).
    var rootCount: Int { roots.size + (slotRoots?.heldCount ?? 0) }

    /// Greys `object` (a hold taken or dropped while marking).
    @usableFromInline @inline(never)
    func shade(_ object: UInt) { grey(object) }

    /// Greys `object` into this mutator's buffer, with no reference counting.
    @inline(__always)
    func grey(_ object: UInt) {
        collectorRef._withUnsafeGuaranteedRef { collector in
            workRef._withUnsafeGuaranteedRef { work in collector.greyObject(object, work) }
        }
    }

    /// Whether this thread holds `object`.
    public func holds(_ object: UnsafeRawPointer) -> Bool {
        var held = roots.count(of: UInt(bitPattern: object)) > 0
        if !held, let slotRoots { slotRoots.forEach { k, _ in if k == UInt(bitPattern: object) { held = true } } }
        return held
    }

    func dropAllRoots() {
        let marking = collector.writeBarrier.load(ordering: .relaxed) != 0
        forEachRootAddress { object, _ in if marking { grey(object) } }
        roots.removeAll()
        slotRoots?.removeAll()
    }

    /// Answers `scanRequested`: scans the roots if they are still grey, else flushes.
    func serviceScanRequest() {
        if hot.pointee.stackGrey {
            scanRoots()
        } else {
            work.flush()
            scanRequested.store(false, ordering: .releasing)
        }
        // The coordinator may be waiting for this answer (mark completion, ragged flush).
        collector.markDoneWake.broadcast()
    }

    /// Scans this thread's roots (its stack) and blackens them.
    func scanRoots() {
        forEachRootAddress { object, _ in grey(object) }
        hot.pointee.stackGrey = false
        scanRequested.store(false, ordering: .releasing)
        work.flush()
        // The background workers found no work at mark setup (roots are scanned here):
        // there is some now.
        for w in collector.workers { w.wake.broadcast() }
    }

    // MARK: Safepoints

    /// The thread is about to wait for a while (for another thread, or for the end of the
    /// replay) without touching the heap: a stop does not wait for it, the collector scans
    /// its roots if a mark begins, and idle marking may use its CPU. Call at a safepoint, from
    /// the owner thread; then do not poll, allocate, store or hold until `leaveBlocked()`.
    public func enterBlocked() {
        if hot.pointee.blocked { return }
        work.flush()
        hot.pointee.blocked = true
        collector.runningMutators.add(-1, ordering: .relaxed)
        region.store(Mutator.blocked, ordering: .sequentiallyConsistent)
    }

    /// Ends `enterBlocked()`: waits while the collector is scanning this thread's roots, and
    /// parks if the world is stopped.
    public func leaveBlocked() {
        if !hot.pointee.blocked { return }
        while !region.compareExchange(expected: Mutator.blocked, desired: Mutator.running,
                                      ordering: .sequentiallyConsistent).exchanged {
            sched_yield()
        }
        hot.pointee.blocked = false
        collector.runningMutators.add(1, ordering: .relaxed)
        // A stop that began while this thread was blocked counted it as stopped: park before
        // anything else (its grey buffer may be in the collector's hands; no flush).
        if stopRequested.load(ordering: .sequentiallyConsistent) { park(flushing: false) }
        poll()
    }

    /// Whether the thread is blocked (enterBlocked).
    public var isBlocked: Bool { hot.pointee.blocked }

    /// A safepoint: call between operations. Parks if the collector is stopping the world;
    /// scans this thread's roots if the collector asked.
    @inlinable @inline(__always)
    public func poll() {
        if stopRequested.load(ordering: .relaxed) || scanRequested.load(ordering: .relaxed)
            || collector.orphanGeneration.load(ordering: .relaxed) != hot.pointee.orphanGenerationSeen {
            pollSlow()
        }
    }

    @usableFromInline @inline(never)
    func pollSlow() {
        // A blocked thread is stopped already and the collector answers its requests.
        if hot.pointee.blocked { return }
        if collector.orphanGeneration.load(ordering: .acquiring) != hot.pointee.orphanGenerationSeen {
            collector.takeOrphanDrops(for: self)
        }
        if scanRequested.load(ordering: .acquiring) && !stopRequested.load(ordering: .acquiring) {
            serviceScanRequest()
        }
        if stopRequested.load(ordering: .acquiring) { park(flushing: true) }
    }

    /// Waits out a stop of the world.
    func park(flushing: Bool) {
        if flushing { work.flush() }
        // Re-announce on every round: a stop may begin while this thread still waits out
        // the previous one (it never saw the world restart). The collector bumps the
        // epoch after setting the requests, so a thread that announces the new epoch
        // sees the new request on its next check and stays parked.
        while stopRequested.load(ordering: .sequentiallyConsistent) {
            parkedEpoch.store(collector.stopEpoch.load(ordering: .sequentiallyConsistent), ordering: .sequentiallyConsistent)
            resume.wait(timeoutNanoseconds: 200_000)
        }
    }

    // MARK: Assists

    /// Scan work between an assist's checks for a stop request (about 10 µs of scanning).
    static let assistSlice = 16 << 10

    /// Pays assist debt: steals background scan credit, then marks.
    @inline(never)
    func assist() {
        let ratio = collector.assistWorkPerByte
        if ratio <= 0 { hot.pointee.assistBalance = 0; return }
        var needed = Int(Double(-hot.pointee.assistBalance) * ratio) + 1
        var preempted = false
        var foundNoWork = false
        // Steal credit the background workers have banked.
        var credit = collector.bgScanCredit.load(ordering: .relaxed)
        while credit > 0 {
            let take = min(credit, needed)
            let (done, seen) = collector.bgScanCredit.compareExchange(expected: credit, desired: credit - take, ordering: .relaxed)
            if done { needed -= take; break }
            credit = seen
        }
        if needed > 0 {
            // Do the work ourselves, plus Go's over-assist margin (gcOverAssistWork, 64 KiB),
            // in slices: a stop request ends the assist (Go's assists are preemptible too),
            // the unpaid debt stays and is paid at a later allocation.
            let start = monotonicSeconds()
            var target = needed + 64 << 10
            var scanned = 0
            let work = workRef
            while target > 0 {
                let done = collectorRef._withUnsafeGuaranteedRef { c in
                    work._withUnsafeGuaranteedRef { c.drain($0, budget: min(target, Self.assistSlice)) }
                }
                needed -= done
                target -= done
                scanned += done
                if done == 0 { break }
                if stopRequested.load(ordering: .relaxed) { preempted = true; break }
            }
            if scanned == 0 {
                // Nothing to scan (what is left is in other threads' buffers): not an assist.
                foundNoWork = true
            } else {
                hot.pointee.assists += 1
                let end = monotonicSeconds()
                hot.pointee.assistNanos += Int((end - start) * 1e9)
                if let onEvent = collector.configuration.onEvent {
                    onEvent(GCEvent(kind: .assist, cycle: collector.cycleNumber.load(ordering: .relaxed) + 1, start: start, end: end))
                }
            }
        }
        // Convert what was paid beyond the debt back into allocation credit; a preempted
        // assist keeps its debt. With no work left to do, Go parks the assist until
        // background credit arrives; here the debt is forgiven (marking is nearly done), and
        // when the pool was empty the thread may allocate another 64 KiB before it looks
        // again (before, it looked at every allocation: 62 k empty assists, two clock reads
        // each, on a 9.7 M-record binary-trees replay).
        if needed <= 0 {
            hot.pointee.assistBalance = Int(Double(-needed) / ratio)
        } else if preempted {
            hot.pointee.assistBalance = -Int(Double(needed) / ratio)
        } else {
            hot.pointee.assistBalance = foundNoWork ? Self.emptyPoolAllowance : 0
        }
    }

    /// Bytes a mutator may allocate after an assist that found no work, before it looks again.
    static let emptyPoolAllowance = 64 << 10

    /// Flushes this mutator's grey buffer to the pool.
    func flushWork() { work.flush() }
}

/// A thread's roots: object address -> hold count. The latest holds sit in a small buffer
/// (`recent`, one entry per hold, in order); a full buffer spills into an open-addressing
/// table with linear probing. A program lets go of most holds soon after taking them (a
/// new node is held until it is linked in), so most drops find their hold among the last
/// few: a short scan, no hashing, no probe chain to repair. Whole-table readers (scans,
/// verify, snapshots, counts) spill first, so the table alone holds every root.
///
/// No lock: only the owner thread changes or reads it while the world runs (its own holds,
/// drops, root scans at its safepoints, and the posted drops of its holds it takes there);
/// the collector reads and changes it only while the owner is parked in a stopped world,
/// which orders every access. (A lock here, even a spin lock's one compare-exchange per
/// `a`/`h`/`f`, was a quarter to a third of the mutator's time.) A drop made on another
/// thread goes through the collector's orphan queue (Marking.swift).
@usableFromInline
final class RootTable: @unchecked Sendable {
    @usableFromInline static let recentCapacity = 8
    @usableFromInline let recent: UnsafeMutablePointer<UInt>
    /// Entries in `recent`. In plain memory, not a stored `var`: the inlined hold and drop
    /// paths would pay Swift's dynamic exclusivity check on a class property (a runtime
    /// call per access; 17% of the mutator's instructions when it was a `var`).
    @usableFromInline let recentCountStorage: UnsafeMutablePointer<Int>
    @usableFromInline var recentCount: Int {
        @inline(__always) get { recentCountStorage.pointee }
        @inline(__always) set { recentCountStorage.pointee = newValue }
    }
    private var keys: UnsafeMutablePointer<UInt>
    private var counts: UnsafeMutablePointer<UInt32>
    private var capacity = 64
    /// Distinct objects in the table (not counting the recent buffer).
    private var tableSize = 0

    init() {
        recent = .allocate(capacity: Self.recentCapacity)
        recent.initialize(repeating: 0, count: Self.recentCapacity)
        recentCountStorage = .allocate(capacity: 1)
        recentCountStorage.initialize(to: 0)
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: 0, count: capacity)
        counts = .allocate(capacity: capacity)
        counts.initialize(repeating: 0, count: capacity)
    }

    deinit { recent.deallocate(); recentCountStorage.deallocate(); keys.deallocate(); counts.deallocate() }

    /// Roots held, at most one per hold (for the pacer's stack-scan estimate).
    var size: Int { tableSize + recentCount }

    /// Takes one hold on `k`.
    @inlinable @inline(__always)
    func add(_ k: UInt) {
        if recentCount == Self.recentCapacity { spill() }
        recent[recentCount] = k
        recentCount &+= 1
    }

    /// Removes one hold; false if there was none.
    @inlinable @inline(__always)
    func remove(_ k: UInt) -> Bool {
        var i = recentCount &- 1
        while i >= 0 {
            if recent[i] == k {
                removeRecent(at: i)
                return true
            }
            i &-= 1
        }
        return removeFromTable(k)
    }

    /// Takes entry `i` out of the recent buffer, keeping the order of the rest.
    @usableFromInline @inline(__always)
    func removeRecent(at i: Int) {
        recentCount &-= 1
        var j = i
        while j < recentCount {
            recent[j] = recent[j &+ 1]
            j &+= 1
        }
    }

    /// Moves the recent buffer into the table.
    @usableFromInline @inline(never)
    func spill() {
        for i in 0..<recentCount { addToTable(recent[i]) }
        recentCount = 0
    }

    @inline(__always) private func hash(_ k: UInt) -> Int { Int(truncatingIfNeeded: (k &>> 4) &* 0x9E37_79B9_7F4A_7C15 &>> 16) }

    private func addToTable(_ k: UInt) {
        if (tableSize + 1) * 4 > capacity * 3 { grow() }
        var i = hash(k) & (capacity - 1)
        while keys[i] != 0 && keys[i] != k { i = (i + 1) & (capacity - 1) }
        if keys[i] == 0 { keys[i] = k; tableSize += 1 }
        counts[i] &+= 1
    }

    @usableFromInline @inline(never)
    func removeFromTable(_ k: UInt) -> Bool {
        var i = hash(k) & (capacity - 1)
        while keys[i] != 0 {
            if keys[i] == k {
                counts[i] -= 1
                if counts[i] == 0 { deleteSlot(i) }
                return true
            }
            i = (i + 1) & (capacity - 1)
        }
        return false
    }

    func count(of k: UInt) -> Int {
        spill()
        var i = hash(k) & (capacity - 1)
        while keys[i] != 0 {
            if keys[i] == k { return Int(counts[i]) }
            i = (i + 1) & (capacity - 1)
        }
        return 0
    }

    /// Every root once, with its hold count.
    func forEach(_ body: (UInt, Int) -> Void) {
        spill()
        for i in 0..<capacity where keys[i] != 0 { body(keys[i], Int(counts[i])) }
    }

    func removeAll() {
        recentCount = 0
        keys.update(repeating: 0, count: capacity)
        counts.update(repeating: 0, count: capacity)
        tableSize = 0
    }

    /// Backward-shift deletion keeps probe chains intact without tombstones.
    private func deleteSlot(_ slot: Int) {
        var hole = slot
        var j = slot
        keys[hole] = 0
        counts[hole] = 0
        tableSize -= 1
        while true {
            j = (j + 1) & (capacity - 1)
            if keys[j] == 0 { return }
            let home = hash(keys[j]) & (capacity - 1)
            // Move j into the hole if its home is not in (hole, j] cyclically.
            let inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if !inRange {
                keys[hole] = keys[j]; counts[hole] = counts[j]
                keys[j] = 0; counts[j] = 0
                hole = j
            }
        }
    }

    private func grow() {
        let oldKeys = keys, oldCounts = counts, oldCapacity = capacity
        capacity *= 2
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: 0, count: capacity)
        counts = .allocate(capacity: capacity)
        counts.initialize(repeating: 0, count: capacity)
        for i in 0..<oldCapacity where oldKeys[i] != 0 {
            var j = hash(oldKeys[i]) & (capacity - 1)
            while keys[j] != 0 { j = (j + 1) & (capacity - 1) }
            keys[j] = oldKeys[i]
            counts[j] = oldCounts[i]
        }
        oldKeys.deallocate()
        oldCounts.deallocate()
    }
}

/// A thread's roots named by dense slot numbers (Mutator.enableSlotRoots): per slot the held
/// object, its hold count and its place in a dense list of the held slots, used for scans.
/// A hold or drop is a few array updates; a scan walks the list, like a stack. A slot's
/// three fields share one 16-byte entry, so a hold or drop of a slot not touched lately
/// costs one cache miss, not three. One object per slot at a time: `add` refuses a second
/// object while the slot holds one, and the caller keeps that hold elsewhere (the root
/// table). Owner-only, as RootTable.
@usableFromInline
final class SlotRoots: @unchecked Sendable {
    @usableFromInline struct Entry {
        /// The held object (0: none).
        @usableFromInline var object: UInt
        @usableFromInline var count: UInt32
        /// Index of the slot in `held`.
        @usableFromInline var place: UInt32

        @inlinable init(object: UInt, count: UInt32, place: UInt32) {
            self.object = object
            self.count = count
            self.place = place
        }
    }

    @usableFromInline let capacity: Int
    @usableFromInline let entries: UnsafeMutablePointer<Entry>
    /// The held slots, densely; its length in plain memory (no class `var` on the hot path).
    @usableFromInline let held: UnsafeMutablePointer<UInt32>
    @usableFromInline let heldCountStorage: UnsafeMutablePointer<Int>
    @usableFromInline var heldCount: Int {
        @inline(__always) get { heldCountStorage.pointee }
        @inline(__always) set { heldCountStorage.pointee = newValue }
    }

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        let n = self.capacity
        entries = .allocate(capacity: n)
        entries.initialize(repeating: Entry(object: 0, count: 0, place: 0), count: n)
        held = .allocate(capacity: n)
        held.initialize(repeating: 0, count: n)
        heldCountStorage = .allocate(capacity: 1)
        heldCountStorage.initialize(to: 0)
    }

    deinit {
        entries.deallocate(); held.deallocate()
        heldCountStorage.deallocate()
    }

    /// One more hold on `object` in `slot`; false (nothing changed) if the slot holds
    /// another object.
    @inlinable @inline(__always)
    func add(_ slot: Int, _ object: UInt) -> Bool {
        let e = entries + slot
        let n = e.pointee.count
        if n == 0 {
            let h = heldCount
            e.pointee = Entry(object: object, count: 1, place: UInt32(truncatingIfNeeded: h))
            held[h] = UInt32(truncatingIfNeeded: slot)
            heldCount = h &+ 1
            return true
        }
        if e.pointee.object != object { return false }
        e.pointee.count = n &+ 1
        return true
    }

    /// One hold fewer on `object` in `slot`; false if this thread holds no such hold there.
    @inlinable @inline(__always)
    func remove(_ slot: Int, _ object: UInt) -> Bool {
        let e = entries + slot
        let n = e.pointee.count
        if n == 0 || e.pointee.object != object { return false }
        e.pointee.count = n &- 1
        if n == 1 {
            e.pointee.object = 0
            // Swap-remove from the dense list.
            let last = heldCount &- 1
            let place = Int(e.pointee.place)
            let moved = held[last]
            held[place] = moved
            entries[Int(moved)].place = UInt32(truncatingIfNeeded: place)
            heldCount = last
        }
        return true
    }

    func forEach(_ body: (UInt, Int) -> Void) {
        for i in 0..<heldCount {
            let e = entries[Int(held[i])]
            body(e.object, Int(e.count))
        }
    }

    func removeAll() {
        for i in 0..<heldCount {
            entries[Int(held[i])] = Entry(object: 0, count: 0, place: 0)
        }
        heldCount = 0
    }
}
