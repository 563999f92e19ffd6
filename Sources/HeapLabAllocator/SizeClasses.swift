// Size classes: Go 1.19's table, derived rather than typed in.
//
// Small objects (up to 32 KiB) are rounded up to one of 67 size classes; class 0 stands for
// "large" (a whole-page allocation). Each class also fixes how many 8 KiB pages make up one
// of its spans. The table is generated with the rule of Go's runtime/mksizeclasses.go:
//
//   1. Walk sizes in steps of `align`, starting at 8. At each power of two the step grows:
//      16 from 32 bytes on, size/8 from 128 bytes on, 256 from 2048 bytes on.
//   2. For each size, grow the span one page at a time until the tail left over after
//      packing whole objects is at most 1/8 of the span (so tail waste <= 12.5%).
//   3. If the previous class has the same number of pages and fits the same number of
//      objects, the new size replaces it (the larger size wastes nothing more).
//   4. Finally each class grows to the largest size that still fits the same number of
//      objects in its span, kept a multiple of 128 (`largeSizeDiv`) so lookups stay exact.
//
// Lookups: two byte tables map a size to its class, one in 8-byte steps up to 1024 bytes
// (`smallSizeMax`) and one in 128-byte steps above it, as Go's size_to_class8 and
// size_to_class128. Object indexes inside a span use Go's magic-number division:
// `index = (offset * divMul) >> 32` with `divMul = ⌈2^32 / size⌉`, exact for every offset
// within a span (checked by a test over every class and offset).
//
// Invariants: class sizes strictly increase; `objects * size <= bytesPerSpan`; the tables
// map every size in 1...maxSmallSize to the smallest class that fits it.

/// Go's allocator constants (runtime/malloc.go, sizeclasses.go).
public enum AllocatorConstants {
    public static let pageShift = 13
    /// 8 KiB pages.
    public static let pageSize = 1 << pageShift
    /// Largest small object; larger ones go to the large-object path.
    public static let maxSmallSize = 32768
    public static let smallSizeDiv = 8
    public static let smallSizeMax = 1024
    public static let largeSizeDiv = 128
    /// Number of size classes including class 0 (large).
    public static let numSizeClasses = 68
    /// Two span classes per size class: scan (even) and noscan (odd).
    public static let numSpanClasses = numSizeClasses << 1
    /// Tiny allocator: pointer-free objects below this size share a 16-byte block.
    public static let tinySize = 16
    public static let tinySizeClass: UInt8 = 2
}

/// One row of the size-class table.
public struct SizeClass: Equatable, Sendable {
    public var size: Int
    public var pages: Int
    public var bytesPerSpan: Int { pages * AllocatorConstants.pageSize }
    public var objects: Int { size == 0 ? 0 : bytesPerSpan / size }
    public var tailWaste: Int { size == 0 ? 0 : bytesPerSpan - objects * size }
    /// ⌈2^32 / size⌉, for magic-number division of offsets within a span.
    public var divMul: UInt32 { size == 0 ? 0 : UInt32(truncatingIfNeeded: (UInt64(UInt32.max) / UInt64(size)) &+ 1) }
}

public enum SizeClasses {
    /// The table, class 0 (large) first. Derived by `generate()` once.
    public static let table: [SizeClass] = generate()

    /// Go's generation rule (see the file comment).
    public static func generate() -> [SizeClass] {
        let pageSize = AllocatorConstants.pageSize
        var classes = [SizeClass(size: 0, pages: 0)]
        var align = 8
        var size = align
        while size <= AllocatorConstants.maxSmallSize {
            if size & (size - 1) == 0 {
                if size >= 2048 {
                    align = 256
                } else if size >= 128 {
                    align = size / 8
                } else if size >= 32 {
                    align = 16
                }
            }
            var allocSize = pageSize
            while allocSize % size > allocSize / 8 {
                allocSize += pageSize
            }
            let pages = allocSize / pageSize
            if classes.count > 1, let last = classes.last,
               last.pages == pages, allocSize / size == allocSize / last.size {
                classes[classes.count - 1].size = size
            } else {
                classes.append(SizeClass(size: size, pages: pages))
            }
            size += align
        }
        for i in 1..<classes.count {
            let spanBytes = classes[i].pages * pageSize
            let grown = (spanBytes / (spanBytes / classes[i].size)) & ~(AllocatorConstants.largeSizeDiv - 1)
            if grown > classes[i].size { classes[i].size = grown }
        }
        return classes
    }

    /// The size class for an allocation of `size` bytes: 1...67, or 0 for sizes above 32 KiB.
    @inlinable
    public static func classIndex(forSize size: Int) -> Int {
        Int(SizeClassLookup.shared.classOf(size))
    }
}

/// The lookup tables and per-class constants, in one immutable block of plain memory so the
/// allocator's fast path reads them without Swift array checks.
@usableFromInline
final class SizeClassLookup: @unchecked Sendable {
    @usableFromInline static let shared = SizeClassLookup()

    @usableFromInline let class8: UnsafeMutablePointer<UInt8>    // (size + 7) >> 3, sizes <= 1024
    @usableFromInline let class128: UnsafeMutablePointer<UInt8>  // (size - 1024 + 127) >> 7
    @usableFromInline let sizes: UnsafeMutablePointer<UInt32>
    @usableFromInline let pages: UnsafeMutablePointer<UInt32>
    @usableFromInline let objects: UnsafeMutablePointer<UInt32>
    @usableFromInline let divMul: UnsafeMutablePointer<UInt32>

    init() {
        let table = SizeClasses.table
        let n8 = AllocatorConstants.smallSizeMax / AllocatorConstants.smallSizeDiv + 1
        let n128 = (AllocatorConstants.maxSmallSize - AllocatorConstants.smallSizeMax) / AllocatorConstants.largeSizeDiv + 1
        class8 = .allocate(capacity: n8)
        class128 = .allocate(capacity: n128)
        sizes = .allocate(capacity: table.count)
        pages = .allocate(capacity: table.count)
        objects = .allocate(capacity: table.count)
        divMul = .allocate(capacity: table.count)
        for (i, c) in table.enumerated() {
            sizes[i] = UInt32(c.size)
            pages[i] = UInt32(c.pages)
            objects[i] = UInt32(c.objects)
            divMul[i] = c.divMul
        }
        var cls = 1
        for i in 0..<n8 {
            let size = i * AllocatorConstants.smallSizeDiv
            while table[cls].size < size { cls += 1 }
            class8[i] = UInt8(cls)
        }
        for i in 0..<n128 {
            let size = AllocatorConstants.smallSizeMax + i * AllocatorConstants.largeSizeDiv
            while table[cls].size < size { cls += 1 }
            class128[i] = UInt8(cls)
        }
    }

    /// Size class for `size` (>= 0); 0 for large sizes.
    @inlinable @inline(__always)
    func classOf(_ size: Int) -> UInt8 {
        if size <= AllocatorConstants.smallSizeMax - 8 {
            return class8[(size &+ 7) &>> 3]
        }
        if size <= AllocatorConstants.maxSmallSize {
            return class128[(size &- AllocatorConstants.smallSizeMax &+ 127) &>> 7]
        }
        return 0
    }
}
