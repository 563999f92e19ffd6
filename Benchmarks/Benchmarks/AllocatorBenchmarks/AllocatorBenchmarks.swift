// Allocator micro-benchmarks: HeapLab's allocator (manual mode) beside jemalloc, mimalloc,
// tcmalloc and glibc, in one process and one run.
//
//   pair/<allocator>:        malloc then free of the same object, sizes cycling over 32...88
//                            bytes (8 size classes): the fast paths alone.
//   replay-like/<allocator>: a table of 100 k slots; each operation picks a slot at random
//                            (precomputed) and frees its object or allocates one (60% up to
//                            64 bytes, 35% up to 512, 5% up to 4 KiB), writing its first
//                            byte: 10 M operations with about 100 k objects live, like a replay.
// Speed targets live here, never in unit tests (issue: "at least as fast as jemalloc").
import Benchmark
import CRivals
import HeapLabAllocator

/// What every allocator under test provides. Generic, so each loop is specialised.
protocol BenchAllocator {
    func allocate(_ size: Int) -> UnsafeMutableRawPointer
    func free(_ p: UnsafeMutableRawPointer, _ size: Int)
}

struct HeapLabAllocatorUnderTest: BenchAllocator {
    let cache: ThreadCache
    @inline(__always) func allocate(_ size: Int) -> UnsafeMutableRawPointer { cache.allocate(size: size, noscan: true)! }
    // Sized free, as jemalloc's sdallocx: the caller knows the size.
    @inline(__always) func free(_ p: UnsafeMutableRawPointer, _ size: Int) { cache.free(p, size: size, noscan: true) }
}

struct JemallocUnderTest: BenchAllocator {
    @inline(__always) func allocate(_ size: Int) -> UnsafeMutableRawPointer { mallocx(size, 0)! }
    @inline(__always) func free(_ p: UnsafeMutableRawPointer, _ size: Int) { sdallocx(p, size, 0) }
}

struct MimallocUnderTest: BenchAllocator {
    @inline(__always) func allocate(_ size: Int) -> UnsafeMutableRawPointer { mi_malloc(size)! }
    @inline(__always) func free(_ p: UnsafeMutableRawPointer, _ size: Int) { mi_free_size(p, size) }
}

struct TcmallocUnderTest: BenchAllocator {
    @inline(__always) func allocate(_ size: Int) -> UnsafeMutableRawPointer { tc_malloc(size)! }
    @inline(__always) func free(_ p: UnsafeMutableRawPointer, _ size: Int) { tc_free_sized(p, size) }
}

struct GlibcUnderTest: BenchAllocator {
    @inline(__always) func allocate(_ size: Int) -> UnsafeMutableRawPointer { __libc_malloc(size)! }
    @inline(__always) func free(_ p: UnsafeMutableRawPointer, _ size: Int) { __libc_free(p) }
}

/// The replay-like workload's inputs and its live table, in memory none of the allocators
/// serves (allocated once, before timing).
final class ReplayWorkload: @unchecked Sendable {
    static let slots = 100_000
    static let opsPerIteration = 1_000_000
    let sizes: UnsafeMutablePointer<Int>
    let picks: UnsafeMutablePointer<Int32>
    let table: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let tableSizes: UnsafeMutablePointer<Int>
    var cursor = 0

    init() {
        var state: UInt64 = 0x243F_6A88_85A3_08D3
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        sizes = .allocate(capacity: 1 << 16)
        for i in 0..<(1 << 16) {
            let r = next() % 100
            sizes[i] = r < 60 ? Int(next() % 64) + 1 : r < 95 ? Int(next() % 512) + 1 : Int(next() % 4096) + 1
        }
        picks = .allocate(capacity: 1 << 20)
        for i in 0..<(1 << 20) { picks[i] = Int32(next() % UInt64(Self.slots)) }
        table = .allocate(capacity: Self.slots)
        table.initialize(repeating: nil, count: Self.slots)
        tableSizes = .allocate(capacity: Self.slots)
        tableSizes.initialize(repeating: 0, count: Self.slots)
    }

    @inline(__always)
    func run<A: BenchAllocator>(_ a: A, operations: Int) {
        var i = cursor
        for _ in 0..<operations {
            let slot = Int(picks[i & ((1 << 20) - 1)])
            if let p = table[slot] {
                a.free(p, tableSizes[slot])
                table[slot] = nil
            } else {
                let size = sizes[i & 0xFFFF]
                let p = a.allocate(size)
                p.storeBytes(of: 1, as: UInt8.self)
                table[slot] = p
                tableSizes[slot] = size
            }
            i &+= 1
        }
        cursor = i
    }
}

@inline(never)
func pairLoop<A: BenchAllocator>(_ a: A, iterations: Int) {
    for i in 0..<iterations {
        let size = 32 + (i & 7) * 8
        let p = a.allocate(size)
        p.storeBytes(of: UInt64(truncatingIfNeeded: i), as: UInt64.self)
        blackHole(p)
        a.free(p, size)
    }
}

func register<A: BenchAllocator>(_ name: String, _ a: A) {
    Benchmark("pair/\(name)", configuration: .init(metrics: [.wallClock, .throughput], scalingFactor: .mega)) { benchmark in
        pairLoop(a, iterations: benchmark.scaledIterations.count)
    }
    let workload = ReplayWorkload()
    Benchmark("replay-like/\(name)", configuration: .init(metrics: [.wallClock, .throughput], scalingFactor: .mega, maxIterations: 10)) { benchmark in
        workload.run(a, operations: benchmark.scaledIterations.count)
    }
}

/// The heap must outlive its caches (ThreadCache holds no reference, to keep the fast path
/// free of retain/release).
let benchmarkHeap = try! Heap()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration.maxDuration = .seconds(3)
    register("heaplab", HeapLabAllocatorUnderTest(cache: benchmarkHeap.makeThreadCache()))
    register("jemalloc", JemallocUnderTest())
    register("mimalloc", MimallocUnderTest())
    register("tcmalloc", TcmallocUnderTest())
    register("glibc", GlibcUnderTest())
}
