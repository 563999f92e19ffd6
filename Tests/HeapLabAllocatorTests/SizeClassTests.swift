import Testing
@testable import HeapLabAllocator

/// Go 1.19's runtime/sizeclasses.go table: class, bytes/obj, bytes/span, objects, tail waste.
/// Typed in from Go's published table, so that the derived table is checked against it.
let go119Table: [(Int, Int, Int, Int, Int)] = [
    (1, 8, 8192, 1024, 0), (2, 16, 8192, 512, 0), (3, 24, 8192, 341, 8), (4, 32, 8192, 256, 0),
    (5, 48, 8192, 170, 32), (6, 64, 8192, 128, 0), (7, 80, 8192, 102, 32), (8, 96, 8192, 85, 32),
    (9, 112, 8192, 73, 16), (10, 128, 8192, 64, 0), (11, 144, 8192, 56, 128), (12, 160, 8192, 51, 32),
    (13, 176, 8192, 46, 96), (14, 192, 8192, 42, 128), (15, 208, 8192, 39, 80), (16, 224, 8192, 36, 128),
    (17, 240, 8192, 34, 32), (18, 256, 8192, 32, 0), (19, 288, 8192, 28, 128), (20, 320, 8192, 25, 192),
    (21, 352, 8192, 23, 96), (22, 384, 8192, 21, 128), (23, 416, 8192, 19, 288), (24, 448, 8192, 18, 128),
    (25, 480, 8192, 17, 32), (26, 512, 8192, 16, 0), (27, 576, 8192, 14, 128), (28, 640, 8192, 12, 512),
    (29, 704, 8192, 11, 448), (30, 768, 8192, 10, 512), (31, 896, 8192, 9, 128), (32, 1024, 8192, 8, 0),
    (33, 1152, 8192, 7, 128), (34, 1280, 8192, 6, 512), (35, 1408, 16384, 11, 896), (36, 1536, 8192, 5, 512),
    (37, 1792, 16384, 9, 256), (38, 2048, 8192, 4, 0), (39, 2304, 16384, 7, 256), (40, 2688, 8192, 3, 128),
    (41, 3072, 24576, 8, 0), (42, 3200, 16384, 5, 384), (43, 3456, 24576, 7, 384), (44, 4096, 8192, 2, 0),
    (45, 4864, 24576, 5, 256), (46, 5376, 16384, 3, 256), (47, 6144, 24576, 4, 0), (48, 6528, 32768, 5, 128),
    (49, 6784, 40960, 6, 256), (50, 6912, 49152, 7, 768), (51, 8192, 8192, 1, 0), (52, 9472, 57344, 6, 512),
    (53, 9728, 49152, 5, 512), (54, 10240, 40960, 4, 0), (55, 10880, 32768, 3, 128), (56, 12288, 24576, 2, 0),
    (57, 13568, 40960, 3, 256), (58, 14336, 57344, 4, 0), (59, 16384, 16384, 1, 0), (60, 18432, 73728, 4, 0),
    (61, 19072, 57344, 3, 128), (62, 20480, 40960, 2, 0), (63, 21760, 65536, 3, 256), (64, 24576, 24576, 1, 0),
    (65, 27264, 81920, 3, 128), (66, 28672, 57344, 2, 0), (67, 32768, 32768, 1, 0),
]

@Suite struct SizeClassTests {
    @Test func derivedTableEqualsGo119() {
        let table = SizeClasses.table
        #expect(table.count == 68)
        #expect(table[0].size == 0)
        for (cls, size, spanBytes, objects, tail) in go119Table {
            #expect(table[cls].size == size, "class \(cls) size")
            #expect(table[cls].bytesPerSpan == spanBytes, "class \(cls) bytes per span")
            #expect(table[cls].objects == objects, "class \(cls) objects")
            #expect(table[cls].tailWaste == tail, "class \(cls) tail waste")
        }
    }

    @Test func lookupGivesSmallestFittingClass() {
        let table = SizeClasses.table
        for size in 1...AllocatorConstants.maxSmallSize {
            let cls = SizeClasses.classIndex(forSize: size)
            #expect(cls >= 1 && cls <= 67)
            #expect(table[cls].size >= size)
            if table[cls].size < size || table[cls - 1].size >= size {
                Issue.record("size \(size) mapped to class \(cls)")
                return
            }
        }
        #expect(SizeClasses.classIndex(forSize: AllocatorConstants.maxSmallSize + 1) == 0)
    }

    @Test func magicDivisionIsExactForEveryOffsetInASpan() {
        for c in SizeClasses.table.dropFirst() {
            let divMul = UInt64(c.divMul)
            var offset = 0
            while offset < c.bytesPerSpan {
                let index = (UInt64(offset) * divMul) >> 32
                if Int(index) != offset / c.size {
                    Issue.record("class size \(c.size) offset \(offset): \(index) != \(offset / c.size)")
                    return
                }
                offset += 1
            }
        }
    }
}
