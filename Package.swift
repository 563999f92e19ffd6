// swift-tools-version: 6.1
//
// HeapLab: a Go-style allocator and collector over real memory, a trace harness that
// replays the same allocation trace on HeapLab, jemalloc, glibc, mimalloc and tcmalloc,
// and heap-snapshot tooling. The targets mirror the architecture:
//
//   HeapLabAllocator   size classes, mspan, mcache, mcentral, mheap, scavenger (no deps)
//   HeapLabTrace       the trace format: model, text and binary I/O, validation, oracle
//   HeapLabImport      importers for glibc mtrace, Android memory_replay, heaptrack
//   HeapLabGen         deterministic trace generators (GCBench, larson, LRU, ...)
//   HeapLabReplay      the replay loop, allocator back ends, bench and reports
//   HeapLabSnapshot    heap snapshots: model, file format, dominators, inspect, V8 export
//   HeapLabRecorder    LD_PRELOAD library (C) that records any Linux program's heap calls
//   heaplab            the thin command-line front end (swift-argument-parser)
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .define("HEAPLAB_DEBUG_CHECKS", .when(configuration: .debug)),
]

let package = Package(
    name: "HeapLab",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "heaplab", targets: ["heaplab"]),
        .library(name: "HeapLabAllocator", targets: ["HeapLabAllocator"]),
        .library(name: "HeapLabTrace", targets: ["HeapLabTrace"]),
        .library(name: "HeapLabReplay", targets: ["HeapLabReplay"]),
        .library(name: "HeapLabRecorder", type: .dynamic, targets: ["HeapLabRecorder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(name: "HeapLabAllocator", swiftSettings: swiftSettings),
        .target(name: "HeapLabTrace", dependencies: ["CZstd", "CZlib"], swiftSettings: swiftSettings),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "HeapLabImport", dependencies: ["HeapLabTrace"], swiftSettings: swiftSettings),
        .target(name: "HeapLabGen", dependencies: ["HeapLabTrace"], swiftSettings: swiftSettings),
        .target(
            name: "HeapLabReplay",
            dependencies: ["HeapLabAllocator", "HeapLabTrace", "HeapLabSnapshot"],
            swiftSettings: swiftSettings),
        .target(name: "HeapLabRecorder"),
        .target(name: "HeapLabSnapshot", dependencies: ["HeapLabTrace"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "heaplab",
            dependencies: [
                "HeapLabAllocator", "HeapLabTrace", "HeapLabImport", "HeapLabGen", "HeapLabReplay", "HeapLabSnapshot",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "HeapLabAllocatorTests", dependencies: ["HeapLabAllocator"], swiftSettings: swiftSettings),
        .testTarget(name: "HeapLabTraceTests", dependencies: ["HeapLabTrace"], swiftSettings: swiftSettings),
        .testTarget(name: "HeapLabImportTests", dependencies: ["HeapLabImport", "HeapLabTrace"], swiftSettings: swiftSettings),
        .testTarget(name: "HeapLabGenTests", dependencies: ["HeapLabGen", "HeapLabTrace"], swiftSettings: swiftSettings),
        .testTarget(
            name: "HeapLabReplayTests",
            dependencies: ["HeapLabReplay", "HeapLabTrace", "HeapLabAllocator", "HeapLabGen"],
            swiftSettings: swiftSettings),
        .testTarget(name: "HeapLabSnapshotTests", dependencies: ["HeapLabSnapshot", "HeapLabAllocator", "HeapLabTrace", "HeapLabReplay"], swiftSettings: swiftSettings),
        .testTarget(name: "HeapLabCLITests", dependencies: ["heaplab"], swiftSettings: swiftSettings),
    ]
)
