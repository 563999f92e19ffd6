// Shared helpers: snapshots of known structure built through SnapshotBuilder with a fake
// memory (a dictionary of words), temporary files, and the naive dominator computation the
// fast one is checked against.
import Foundation
import HeapLabSnapshot

/// Go 1.19's first classes (enough for the tests' sizes) plus class 0.
let testSizeClasses: [SnapshotSizeClass] = [
    SnapshotSizeClass(size: 0, pages: 0), SnapshotSizeClass(size: 8, pages: 1), SnapshotSizeClass(size: 16, pages: 1),
    SnapshotSizeClass(size: 24, pages: 1), SnapshotSizeClass(size: 32, pages: 1), SnapshotSizeClass(size: 48, pages: 1),
    SnapshotSizeClass(size: 64, pages: 1), SnapshotSizeClass(size: 80, pages: 1), SnapshotSizeClass(size: 96, pages: 1),
    SnapshotSizeClass(size: 112, pages: 1), SnapshotSizeClass(size: 128, pages: 1),
]

/// A tiny model heap: objects laid out in spans of their class, pointers in a word map.
struct ModelHeap {
    struct Object { var id: UInt64; var size: UInt64; var ptrs: UInt64; var site: UInt64?; var address: UInt64 = 0; var cls = 0 }
    var objects: [Object] = []
    var stores: [(src: UInt64, slot: UInt64, dst: UInt64)] = []
    var roots: [(id: UInt64, thread: Int, holds: Int)] = []
    var sites: [(UInt64, String)] = []

    mutating func alloc(_ id: UInt64, _ size: UInt64, ptrs: UInt64 = 0, site: UInt64? = nil) {
        objects.append(Object(id: id, size: size, ptrs: ptrs, site: site))
    }
    mutating func store(_ src: UInt64, _ slot: UInt64, _ dst: UInt64) { stores.append((src, slot, dst)) }
    mutating func hold(_ id: UInt64, thread: Int = 0, holds: Int = 1) { roots.append((id, thread, holds)) }

    static func classFor(_ size: UInt64) -> Int {
        for (k, c) in testSizeClasses.enumerated() where k > 0 && UInt64(c.size) >= size { return k }
        return 0
    }

    /// Lays objects out: one span per class used (8 KiB, base 0x100000 + 0x10000 * k), large
    /// objects in their own page runs after them; allocation order within a span.
    func build(info: SnapshotInfo = SnapshotInfo()) -> HeapSnapshot {
        var objs = objects
        var next: [Int: Int] = [:]
        var spanOf: [Int: [Int]] = [:]
        var largeBase: UInt64 = 0x900000
        var larges: [(UInt64, Int)] = []
        for k in objs.indices {
            let c = Self.classFor(objs[k].size)
            objs[k].cls = c
            if c == 0 {
                objs[k].address = largeBase
                let pages = Int((objs[k].size + 8191) / 8192)
                larges.append((largeBase, pages))
                largeBase += UInt64(pages * 8192) + 8192   // a free page between large spans
            } else {
                let slot = next[c, default: 0]
                next[c] = slot + 1
                objs[k].address = 0x100000 + 0x10000 * UInt64(c) + UInt64(slot * testSizeClasses[c].size)
                spanOf[c, default: []].append(slot)
            }
        }
        var b = SnapshotBuilder(info: info, sizeClasses: testSizeClasses)
        for (id, name) in sites { b.addSite(id: id, name: name) }
        for c in spanOf.keys.sorted() {
            let slots = 8192 / testSizeClasses[c].size
            var bits = [UInt64](repeating: 0, count: (slots + 63) / 64)
            for s in spanOf[c]! { bits[s / 64] |= 1 << UInt64(s % 64) }
            b.addSpan(start: 0x100000 + 0x10000 * UInt64(c), pages: 1, sizeClass: c, noscan: false, cached: false,
                      needzero: false, elemSize: testSizeClasses[c].size, slots: slots, allocated: bits)
        }
        for (start, pages) in larges {
            b.addSpan(start: start, pages: pages, sizeClass: 0, noscan: false, cached: false, needzero: true,
                      elemSize: pages * 8192, slots: 1, allocated: [1])
        }
        var handle: [UInt64: Int] = [:]
        var addressOf: [UInt64: UInt64] = [:]
        for o in objs {
            handle[o.id] = b.addObject(address: o.address, size: o.size, sizeClass: o.cls, pointerSlots: o.ptrs,
                                       site: o.site, traceID: o.id)
            addressOf[o.id] = o.address
        }
        var memory: [UInt64: UInt64] = [:]
        for s in stores { memory[addressOf[s.src]! + 8 * s.slot] = addressOf[s.dst]! }
        for r in roots { b.addRoot(object: handle[r.id]!, thread: r.thread, holds: r.holds) }
        b.addStatistic("heap_in_use", 8192 * spanOf.count)
        return b.finish { memory[$0] ?? 0 }
    }
}

/// A per-test temporary directory.
struct TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("heaplab-snapshot-\(getpid())-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Naive dominators: v dominates w iff w is unreachable from the root once v is removed.
/// Returns, per node, the set of nodes it dominates (itself included when reachable).
func naiveDominated(n: Int, edges: [[Int]], roots: [Int]) -> [Set<Int>] {
    func reachable(removing removed: Int?) -> Set<Int> {
        var seen = Set<Int>()
        var queue = roots.filter { $0 != removed }
        seen.formUnion(queue)
        while let v = queue.popLast() {
            for w in edges[v] where w != removed && !seen.contains(w) {
                seen.insert(w)
                queue.append(w)
            }
        }
        return seen
    }
    let all = reachable(removing: nil)
    return (0..<n).map { v in all.contains(v) ? all.subtracting(reachable(removing: v)) : [] }
}

/// Deterministic xorshift.
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed | 1 }
    mutating func next(_ bound: Int) -> Int {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Int(state % UInt64(bound))
    }
}
