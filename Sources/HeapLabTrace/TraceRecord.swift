// The trace model: one value per record of ../shared/TRACE-FORMAT.md (version 1).
//
// This file owns the in-memory shape of a record, shared by every reader (text, binary),
// writer, importer, generator and the replayer. It holds no I/O and no validation: readers
// check syntax, `TraceValidator` checks the semantic rules (liveness, reachability, holds).
//
// Invariants a well-formed trace keeps (checked by the validator, not by this type):
//   - `.header` comes first and exactly once.
//   - thread numbers are < 256; sizes are 1...2^40; ptrs * 8 <= size.

/// One record of a HeapLab trace.
public enum TraceRecord: Equatable, Hashable, Sendable {
    /// `heaplab-trace VERSION`.
    case header(version: UInt64)
    /// `s SITE NAME`: declares allocation site `id` with a human-readable name.
    case site(id: UInt64, name: String)
    /// `@ T`: the records that follow run on mutator thread `thread`.
    case thread(UInt64)
    /// `a ID SIZE [PTRS [SITE]]`: allocate `size` bytes as object `id`, whose first
    /// `ptrs` words are pointer slots.
    case alloc(id: UInt64, size: UInt64, ptrs: UInt64, site: UInt64?)
    /// `f ID`: drop one hold on `id`.
    case free(id: UInt64)
    /// `h ID`: take one more hold on `id`.
    case hold(id: UInt64)
    /// `w SRC SLOT DST`: store a pointer to `dst` (nil when `dst` is nil) in `slot` of `src`.
    case write(src: UInt64, slot: UInt64, dst: UInt64?)
    /// `r ID SIZE`: resize `id` to `size` bytes (realloc); only for pointer-free objects.
    case realloc(id: UInt64, size: UInt64)
}

/// Limits of the version-1 format.
public enum TraceLimits {
    public static let version: UInt64 = 1
    public static let maxThreads: UInt64 = 256
    public static let maxSize: UInt64 = 1 << 40
    public static let wordSize: UInt64 = 8
}
