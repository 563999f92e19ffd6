// The replay instruction set: what a trace is lowered to before anything is timed.
//
// A lowered program is a flat array of 16-byte `ReplayOp`s per worker thread. Only the
// records that touch memory survive lowering (`s`, `h`, `@` and hold-dropping `f` vanish);
// every object is named by a dense *slot* (an index into the pointer table), never by its
// trace ID. Kinds:
//
//   allocScan    slot, arg = size        allocate; first word written 0 (a nil pointer slot)
//   allocNoscan  slot, arg = size        allocate a pointer-free object; first word written
//   free         slot, arg = size,       free the object in slot; size and kind are there for
//                extra = 1 if noscan     sized frees (sdallocx and kin)
//   realloc      slot, arg = new size    resize; ALWAYS followed by one `reallocOldSize`
//   reallocOldSize        arg = old size entry, consumed by the realloc before it
//   store        slot = source, arg = dst slot | (word index & 0xffff_ffff) << 32,
//                extra = word index >> 32     write dst's address into word `index` of src
//   storeNil     slot = source, arg/extra as store, dst ignored: write nil
//   wait         worker = W, arg = n     multi-threaded replay: spin until worker W has
//                                        finished its first n ops (see ReplayLoop.swift)
//
// Programs lowered for the collector (`--allocator gc`, GCBackend.swift) never contain
// `free`, `realloc` or `alloc*`; they use instead:
//
//   gcAlloc      slot, arg = size | (ptrs >> 16) << 41, worker = ptrs & 0xffff
//                                        allocate with `ptrs` pointer slots and take a hold
//   hold         slot                    take one hold (a root of this thread): `h`
//   drop         slot                    drop one hold: `f`
//   gcRealloc    slot, arg = new size    allocate a pointer-free copy, take holds + 1 on it,
//                                        drop `holds` on the old object; ALWAYS followed by
//                                        one `reallocOldSize` whose slot field is `holds`
// and `store`/`storeNil`/`wait` as above (stores go through the write barrier).
//
// Invariants (established by TraceLowering, relied on by the loop without checks):
//   - a slot is written by an alloc before any op reads it, and not read after its free
//     until the next alloc into it;
//   - sizes are 1...2^40; word indexes are < size / 8 of the source object;
//   - a `realloc` is never the last entry of a stream;
//   - a `wait` names another worker and a count that worker reaches (no cycles: it always
//     refers to an op earlier in the trace's global order).
//
// The layout is fixed (a test pins `MemoryLayout<ReplayOp>.size == 16`) because programs
// are passed between processes as raw bytes.

/// One replay instruction. See the file comment for the encoding of each kind.
@frozen
public struct ReplayOp: Equatable, Sendable, CustomStringConvertible {
    public var kind: UInt8
    /// store/storeNil: bits 32...39 of the word index. free: 1 for a pointer-free object.
    public var extra: UInt8
    /// wait: the worker waited for.
    public var worker: UInt16
    /// alloc/free/realloc: the object's slot; store: the source object's slot.
    public var slot: UInt32
    public var arg: UInt64

    @inlinable
    public init(kind: UInt8, extra: UInt8 = 0, worker: UInt16 = 0, slot: UInt32 = 0, arg: UInt64 = 0) {
        self.kind = kind
        self.extra = extra
        self.worker = worker
        self.slot = slot
        self.arg = arg
    }

    public static let allocScan: UInt8 = 0
    public static let allocNoscan: UInt8 = 1
    public static let free: UInt8 = 2
    public static let realloc: UInt8 = 3
    public static let store: UInt8 = 4
    public static let storeNil: UInt8 = 5
    public static let wait: UInt8 = 6
    public static let reallocOldSize: UInt8 = 7
    public static let gcAlloc: UInt8 = 8
    public static let hold: UInt8 = 9
    public static let drop: UInt8 = 10
    public static let gcRealloc: UInt8 = 11

    /// gcAlloc: size in the low 41 bits of arg (sizes are at most 2^40).
    public static let gcSizeMask: UInt64 = (1 << 41) - 1

    @inlinable
    public static func gcAlloc(slot: UInt32, size: UInt64, ptrs: UInt64) -> ReplayOp {
        ReplayOp(kind: gcAlloc, worker: UInt16(truncatingIfNeeded: ptrs), slot: slot,
                 arg: size | (ptrs >> 16) << 41)
    }

    /// gcAlloc: the number of pointer slots.
    @inlinable
    public var gcPointerSlots: Int { Int(truncatingIfNeeded: (arg >> 41) << 16 | UInt64(worker)) }

    /// The two entries of a collector-mode realloc; `holds` is the object's hold count.
    @inlinable
    public static func gcRealloc(slot: UInt32, oldSize: UInt64, newSize: UInt64, holds: UInt32) -> (ReplayOp, ReplayOp) {
        (ReplayOp(kind: gcRealloc, slot: slot, arg: newSize), ReplayOp(kind: reallocOldSize, slot: holds, arg: oldSize))
    }

    /// Largest slot number (one value below UInt32.max stays unused).
    public static let maxSlot = UInt32.max - 1

    @inlinable
    public static func alloc(slot: UInt32, size: UInt64, noscan: Bool) -> ReplayOp {
        ReplayOp(kind: noscan ? allocNoscan : allocScan, slot: slot, arg: size)
    }

    @inlinable
    public static func free(slot: UInt32, size: UInt64, noscan: Bool) -> ReplayOp {
        ReplayOp(kind: free, extra: noscan ? 1 : 0, slot: slot, arg: size)
    }

    /// The two entries of a realloc.
    @inlinable
    public static func realloc(slot: UInt32, oldSize: UInt64, newSize: UInt64) -> (ReplayOp, ReplayOp) {
        (ReplayOp(kind: realloc, slot: slot, arg: newSize), ReplayOp(kind: reallocOldSize, slot: slot, arg: oldSize))
    }

    @inlinable
    public static func store(source: UInt32, wordIndex: UInt64, destination: UInt32?) -> ReplayOp {
        let low = (wordIndex & 0xffff_ffff) << 32
        let high = UInt8(truncatingIfNeeded: wordIndex >> 32)
        if let destination {
            return ReplayOp(kind: store, extra: high, slot: source, arg: low | UInt64(destination))
        }
        return ReplayOp(kind: storeNil, extra: high, slot: source, arg: low)
    }

    @inlinable
    public static func wait(worker: Int, count: Int) -> ReplayOp {
        ReplayOp(kind: wait, worker: UInt16(worker), arg: UInt64(count))
    }

    /// store/storeNil: the word index in the source object.
    @inlinable
    public var wordIndex: Int { Int(truncatingIfNeeded: (arg >> 32) | (UInt64(extra) << 32)) }

    /// store: the destination slot.
    @inlinable
    public var destinationSlot: UInt32 { UInt32(truncatingIfNeeded: arg) }

    public var description: String {
        switch kind {
        case ReplayOp.allocScan: return "alloc #\(slot) \(arg)"
        case ReplayOp.allocNoscan: return "alloc-noscan #\(slot) \(arg)"
        case ReplayOp.free: return "free\(extra & 1 != 0 ? "-noscan" : "") #\(slot) (\(arg))"
        case ReplayOp.realloc: return "realloc #\(slot) \(arg)"
        case ReplayOp.reallocOldSize: return "  (old size \(arg))"
        case ReplayOp.store: return "store #\(slot)[\(wordIndex)] = #\(destinationSlot)"
        case ReplayOp.storeNil: return "store #\(slot)[\(wordIndex)] = nil"
        case ReplayOp.wait: return "wait worker \(worker) >= \(arg)"
        case ReplayOp.gcAlloc: return "gc-alloc #\(slot) \(arg & ReplayOp.gcSizeMask) ptrs \(gcPointerSlots)"
        case ReplayOp.hold: return "hold #\(slot)"
        case ReplayOp.drop: return "drop #\(slot)"
        case ReplayOp.gcRealloc: return "gc-realloc #\(slot) \(arg)"
        default: return "unknown op \(kind)"
        }
    }
}
