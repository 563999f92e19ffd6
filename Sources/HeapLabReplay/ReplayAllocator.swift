// What the replay loop needs from an allocator, and how a back end hands one to each
// worker thread.
//
//   ReplayAllocator   one worker thread's handle: allocate, free, reallocate. The loop
//                     (ReplayLoop.swift) is generic over it and is specialised for every
//                     concrete back end, so these calls are direct (no witness tables,
//                     no existentials) in the hot loop.
//   ReplayBackend     one per replay: makes a handle per worker (on that worker's thread,
//                     before timing starts), takes it back after timing, and reports
//                     whatever statistics the allocator can tell.
//
// Back ends: MallocBackend (the process's malloc: glibc, or jemalloc / mimalloc / tcmalloc
// when preloaded into the child), NullBackend (bump pointer, the harness alone),
// HeapLabBackend (HeapLab's allocator, manual mode). VerifyingAllocator wraps any of them
// with checks.
//
// Contract: `allocate` returns nil only when the allocator cannot serve the request (out of
// memory, a configured limit); the loop then stops. `free` gets exactly a pointer that
// `allocate`/`reallocate` returned and has not been freed, with its current size.

/// One worker thread's allocator handle.
public protocol ReplayAllocator {
    /// Returns at least `size` bytes, 8-byte aligned or better, or nil when exhausted.
    /// `noscan` is true for pointer-free objects (only HeapLab uses it).
    mutating func allocate(size: Int, noscan: Bool) -> UnsafeMutableRawPointer?
    /// Frees a block that is `size` bytes long as far as the program knows; `noscan` as
    /// when it was allocated. Back ends made with sized frees pass both on (sdallocx,
    /// mi_free_size, tc_free_sized, HeapLab's sized free); the others ignore them.
    mutating func free(_ pointer: UnsafeMutableRawPointer, size: Int, noscan: Bool)
    /// Resizes a pointer-free block, keeping its first min(oldSize, newSize) bytes.
    mutating func reallocate(_ pointer: UnsafeMutableRawPointer, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer?
    /// Runs entries [start, end) of this worker's ops; returns `end`, or the entry that
    /// failed. The default is the shared loop, `replayOps` (ReplayLoop.swift); the collector's
    /// handle has a loop of its own (GCBackend.swift).
    mutating func runOps<S: ReplaySynchronization>(_ sync: S, ops: UnsafePointer<ReplayOp>, from start: Int, to end: Int,
                                                    table: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int
}

extension ReplayAllocator {
    @inline(__always)
    public mutating func runOps<S: ReplaySynchronization>(_ sync: S, ops: UnsafePointer<ReplayOp>, from start: Int, to end: Int,
                                                           table: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int {
        replayOps(&self, sync, ops: ops, from: start, to: end, table: table)
    }
}

/// One allocator set up for one replay.
public protocol ReplayBackend {
    associatedtype Allocator: ReplayAllocator
    /// A handle for worker `worker`, created on that worker's thread before timing starts.
    func makeAllocator(worker: Int) throws(ReplayError) -> Allocator
    /// Takes a handle back after timing (HeapLab flushes its thread cache here).
    func releaseAllocator(_ allocator: inout Allocator, worker: Int)
    /// Figures the allocator itself reports, read after the replay (name, bytes or count).
    func statistics() -> [(String, Int)]
    /// Why the last allocation failed, if the allocator can say.
    func failureReason() -> String?
    /// A problem the allocator noticed during a replay that otherwise completed (HeapLab's
    /// recorded faults); the replay is then reported as failed.
    func problemAfterReplay() -> String?
}

extension ReplayBackend {
    public func releaseAllocator(_ allocator: inout Allocator, worker: Int) {}
    public func statistics() -> [(String, Int)] { [] }
    public func failureReason() -> String? { nil }
    public func problemAfterReplay() -> String? { nil }
}
