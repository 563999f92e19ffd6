// The replay loop: the only code that runs while a replay is timed.
//
// `replayOps` is one generic function over the allocator handle and the thread
// synchronisation policy. It is called only with concrete types from ReplayRunner.swift, in
// this module, so it is specialised for each back end (MallocBackend, NullBackend,
// HeapLabBackend, each also under VerifyingAllocator) and for single- and multi-threaded
// runs; the calls into the allocator are direct. It reads ops and the pointer table through
// raw pointers (no Swift arrays, no class properties, no reference counting): check with
// `valgrind --tool=callgrind` that no swift_retain / swift_beginAccess shows up here.
//
// Per op, what a program would do:
//   alloc        p = allocate(size); write p's first word (0 = nil for objects with
//                pointer slots, the slot number for pointer-free ones; only the first byte
//                when size < 8, so small objects are never overrun), and one byte in every
//                further 4 KiB page the object spans (a program initialises what it
//                allocates; RSS must see the whole object); table[slot] = p
//   free         free(table[slot]), or with sized frees free(table[slot], size, noscan)
//   realloc      p = reallocate(table[slot], old, new); when it grew, write the first new
//                byte and one byte in every further page of the new part (the program
//                appends); table[slot] = p
//   store        *(table[src] + 8 * word) = table[dst]   (or nil)
//   wait         spin until worker W has published count n (multi-threaded only)
// After each op a multi-threaded run publishes its progress (a releasing store of the
// entry count); a single-threaded run does nothing there (`NoSynchronization` is empty and
// inlined away).
//
// Ordering argument for threads: a worker publishes count n with release ordering after
// finishing entry n-1, including the table and object writes of that op; a waiter loads
// with acquire ordering and sees n or more before it reads the table, so every pointer it
// reads was written before. Waits point back in the trace's global order (TraceLowering),
// hence no cycle and no deadlock; an `abort` flag stops waiters when a worker fails.

import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a worker publishes progress and waits for others.
public protocol ReplaySynchronization {
    /// Called after each op with the number of entries finished so far.
    func published(_ count: Int)
    /// Waits until `worker` has published at least `count`; false if the replay aborted.
    func wait(worker: Int, count: Int) -> Bool
    /// Tells every waiter to give up (a worker failed).
    func abort()
    /// Whether `worker` has published at least `count`, without waiting: for loops that must
    /// keep doing something while they wait (the collector replay answers safepoints).
    func reached(worker: Int, count: Int) -> Bool
    /// Whether some worker gave up.
    var isAborted: Bool { get }
}

/// Single-threaded replay: nothing to publish, nothing to wait for.
public struct NoSynchronization: ReplaySynchronization {
    public init() {}
    @inline(__always) public func published(_ count: Int) {}
    @inline(__always) public func wait(worker: Int, count: Int) -> Bool { true }
    @inline(__always) public func abort() {}
    @inline(__always) public func reached(worker: Int, count: Int) -> Bool { true }
    @inline(__always) public var isAborted: Bool { false }
}

/// Progress counters for a multi-threaded replay, in one mmap'd block: worker w's counter
/// at offset 128 * w (its own cache-line pair, no false sharing), the abort flag after them.
public struct ProgressBoard: @unchecked Sendable {
    static let stride = 128
    let base: UnsafeMutableRawPointer
    let workers: Int

    public init(workers: Int) throws(ReplayError) {
        let bytes = (workers + 1) * Self.stride
        switch ReplaySystem.mapAnonymous(bytes, populate: true) {
        case .success(let p): base = p
        case .failure(let e): throw ReplayError("progress counters: \(e)")
        }
        self.workers = workers
        for w in 0...workers {
            (base + w * Self.stride).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        }
    }

    public func deallocate() { ReplaySystem.unmap(base, (workers + 1) * Self.stride) }

    @inline(__always)
    func counter(_ w: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (base + w &* Self.stride).assumingMemoryBound(to: Atomic<Int>.self)
    }

    /// Current published count of worker `w`.
    public func progress(of w: Int) -> Int { counter(w).pointee.load(ordering: .acquiring) }

    public var aborted: Bool { counter(workers).pointee.load(ordering: .relaxed) != 0 }
}

/// Multi-threaded replay: worker `worker` publishes to its counter and waits on others'.
public struct ThreadSynchronization: ReplaySynchronization {
    let board: ProgressBoard
    let own: UnsafeMutablePointer<Atomic<Int>>
    let abortFlag: UnsafeMutablePointer<Atomic<Int>>

    public init(board: ProgressBoard, worker: Int) {
        self.board = board
        own = board.counter(worker)
        abortFlag = board.counter(board.workers)
    }

    @inline(__always)
    public func published(_ count: Int) {
        own.pointee.store(count, ordering: .releasing)
    }

    @inline(__always)
    public func wait(worker: Int, count: Int) -> Bool {
        let cell = board.counter(worker)
        if cell.pointee.load(ordering: .acquiring) >= count { return true }
        return waitSlow(cell, count)
    }

    @inline(never)
    func waitSlow(_ cell: UnsafeMutablePointer<Atomic<Int>>, _ count: Int) -> Bool {
        var spins = 0
        while cell.pointee.load(ordering: .acquiring) < count {
            if abortFlag.pointee.load(ordering: .relaxed) != 0 { return false }
            spins &+= 1
            // Spin briefly, then yield: there may be fewer cores than workers.
            if spins > 100 { sched_yield() }
        }
        return true
    }

    public func abort() { abortFlag.pointee.store(1, ordering: .relaxed) }

    @inline(__always)
    public func reached(worker: Int, count: Int) -> Bool {
        board.counter(worker).pointee.load(ordering: .acquiring) >= count
    }

    public var isAborted: Bool { abortFlag.pointee.load(ordering: .relaxed) != 0 }
}

/// Writes one byte in every 4 KiB page that [p + from, p + to) reaches beyond the page
/// of p + from (already written by the caller), as a program initialising the object
/// would; without it an allocator that maps fresh pages for large objects would look
/// smaller in RSS than it is. Two compares for an object inside one page.
@inline(__always)
func touchPages(_ p: UnsafeMutableRawPointer, from: Int, to: Int) {
    let start = Int(bitPattern: UInt(bitPattern: p)) &+ from
    var page = (start | 4095) &+ 1          // first page boundary after the first byte
    let end = Int(bitPattern: UInt(bitPattern: p)) &+ to
    if page >= end { return }
    while page < end {
        UnsafeMutableRawPointer(bitPattern: page).unsafelyUnwrapped.storeBytes(of: 0, as: UInt8.self)
        page &+= 4096
    }
}

/// Runs entries [start, end) of one worker's ops. Returns `end`, or the index of the op
/// that failed (the allocator returned nil, or a wait was aborted).
@inline(never)
func replayOps<A: ReplayAllocator, S: ReplaySynchronization>(
    _ allocator0: inout A,
    _ sync: S,
    ops: UnsafePointer<ReplayOp>,
    from start: Int,
    to end: Int,
    table: UnsafeMutablePointer<UnsafeMutableRawPointer?>
) -> Int {
    // A local copy, so that the handle's fields (the null allocator's bump pointer) stay in
    // registers: stores through the raw object pointers below could alias `allocator`.
    var allocator = allocator0
    defer { allocator0 = allocator }
    var i = start
    while i < end {
        let op = ops[i]
        switch op.kind {
        case ReplayOp.allocScan:
            let size = Int(truncatingIfNeeded: op.arg)
            guard let p = allocator.allocate(size: size, noscan: false) else { return i }
            if size >= 8 { p.storeBytes(of: 0, as: UInt64.self) } else { p.storeBytes(of: 0, as: UInt8.self) }
            touchPages(p, from: 0, to: size)
            table[Int(truncatingIfNeeded: op.slot)] = p
        case ReplayOp.allocNoscan:
            let size = Int(truncatingIfNeeded: op.arg)
            guard let p = allocator.allocate(size: size, noscan: true) else { return i }
            if size >= 8 {
                p.storeBytes(of: UInt64(op.slot), as: UInt64.self)
            } else {
                p.storeBytes(of: UInt8(truncatingIfNeeded: op.slot), as: UInt8.self)
            }
            touchPages(p, from: 0, to: size)
            table[Int(truncatingIfNeeded: op.slot)] = p
        case ReplayOp.free:
            let slot = Int(truncatingIfNeeded: op.slot)
            allocator.free(table[slot].unsafelyUnwrapped, size: Int(truncatingIfNeeded: op.arg), noscan: op.extra != 0)
        case ReplayOp.realloc:
            let slot = Int(truncatingIfNeeded: op.slot)
            let newSize = Int(truncatingIfNeeded: op.arg)
            let oldSize = Int(truncatingIfNeeded: ops[i &+ 1].arg)
            guard let p = allocator.reallocate(table[slot].unsafelyUnwrapped, oldSize: oldSize, newSize: newSize)
            else { return i }
            if newSize > oldSize {
                p.storeBytes(of: 1, toByteOffset: oldSize, as: UInt8.self)
                touchPages(p, from: oldSize, to: newSize)
            }
            table[slot] = p
            i &+= 1
        case ReplayOp.store:
            let source = table[Int(truncatingIfNeeded: op.slot)].unsafelyUnwrapped
            let target = table[Int(truncatingIfNeeded: op.destinationSlot)]
            source.storeBytes(of: target, toByteOffset: op.wordIndex &* 8, as: UnsafeMutableRawPointer?.self)
        case ReplayOp.storeNil:
            let source = table[Int(truncatingIfNeeded: op.slot)].unsafelyUnwrapped
            source.storeBytes(of: nil, toByteOffset: op.wordIndex &* 8, as: UnsafeMutableRawPointer?.self)
        case ReplayOp.wait:
            if !sync.wait(worker: Int(op.worker), count: Int(truncatingIfNeeded: op.arg)) { return i }
        default:
            break
        }
        i &+= 1
        sync.published(i)
    }
    return end
}
