// swift-tools-version: 6.3
//
// HeapLab's benchmarks, kept in a nested package so ordo-one/benchmark stays out of the main
// dependency graph. Run from this directory:
//
//   swift package benchmark                       # all benchmarks
//   swift package benchmark --filter "pair"      # one group
//
// The rivals are linked into the same process and called through their own prefixed entry
// points (jemalloc's mallocx/sdallocx, mimalloc's mi_malloc/mi_free_size, tcmalloc's
// tc_malloc/tc_free_sized, glibc's __libc_malloc/__libc_free), so every figure in one run is
// measured on the same machine state.
import PackageDescription

let package = Package(
    name: "HeapLabBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(name: "CRivals", path: "Sources/CRivals"),
        // The allocator's own sources, through a symlink (a path dependency on ".." would
        // take its identity from whatever the clone's directory is called).
        .target(name: "HeapLabAllocator", path: "Sources/HeapLabAllocator"),
        .executableTarget(
            name: "AllocatorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "HeapLabAllocator",
                "CRivals",
            ],
            path: "Benchmarks/AllocatorBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
