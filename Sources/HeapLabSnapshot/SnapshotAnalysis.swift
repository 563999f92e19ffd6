// What `heaplab inspect` computes from a snapshot (docs/inspect.md describes each answer):
//
//   summary   live objects and bytes by kind (tiny / small / large), heap in use, idle,
//             released, metadata, fragmentation; allocated slots holding no snapshot object
//             (garbage awaiting sweep on the collector's heap) and objects no root reaches
//   classes   per size class: spans, slots, allocated / marked / free slots, live objects,
//             bytes, utilisation, waste
//   sites     histogram by allocation site (objects, bytes)
//   top       objects and sites by retained size (Dominators.swift)
//   diff      growth between two snapshots by site and by size class
//
// Sizes: an object's *size* is what the trace requested; its *allocated* size is its slot
// (class size), whole pages for a large object, and for tiny objects the 16-byte blocks
// they share, counted once per block. Every pass is linear in objects (plus spans); only
// `top` builds the dominator tree.

/// Objects and bytes of one kind.
public struct SizeBreakdown: Equatable, Sendable {
    public var objects = 0
    public var bytes: UInt64 = 0
    public var allocatedBytes: UInt64 = 0
    public init() {}
}

public struct SnapshotSummary: Equatable, Sendable {
    public var live = SizeBreakdown()
    public var tiny = SizeBreakdown()
    /// Distinct 16-byte blocks holding live tiny objects.
    public var tinyBlocks = 0
    public var small = SizeBreakdown()
    public var large = SizeBreakdown()
    public var spans = 0
    /// Bytes of all in-use spans (the layout's view of heap in use).
    public var spanBytes: UInt64 = 0
    /// The allocator's figures (nil when the snapshot has none).
    public var heapSys: Int64?
    public var heapInUse: Int64?
    public var heapIdle: Int64?
    public var heapReleased: Int64?
    public var metadataBytes: Int64?
    /// allocated - requested bytes of live objects (rounding up to classes and pages).
    public var internalFragmentation: UInt64 = 0
    /// Span bytes not allocated to a live object: free slots, freed-but-cached slots, tails.
    public var externalFragmentation: UInt64 = 0
    /// 1 - live bytes / span bytes.
    public var fragmentation: Double = 0
    public var edges = 0
    public var roots = 0
    public var rootObjects = 0
    public var sites = 0
    /// Slots the allocation bits count as allocated that hold no object of the snapshot
    /// (allocBits & ~markBits), and their slot bytes. What they are depends on the heap:
    /// manual mode, objects freed onto an mcache's free stack; the collector's heap, garbage
    /// the sweep will free (allocated since the last sweep, not marked / not live).
    public var unmarkedAllocatedSlots = 0
    public var unmarkedAllocatedBytes: UInt64 = 0
    /// Objects of the snapshot that no path from a root reaches. A snapshot taken at a
    /// collector's mark termination holds every marked object: marked but unreachable is
    /// floating garbage (unreachable by the end of the mark, kept until the next cycle).
    public var unreachable = SizeBreakdown()
}

public struct ClassRow: Equatable, Sendable {
    /// 0: large objects.
    public var sizeClass: Int
    public var objectSize: Int
    public var spans = 0
    public var spanBytes: UInt64 = 0
    public var slots = 0
    /// Slots the allocator counts as allocated (allocation bits); includes freed objects
    /// still on an mcache's free stack.
    public var allocatedSlots = 0
    /// Slots holding live objects (mark bits).
    public var markedSlots = 0
    public var liveObjects = 0
    public var liveBytes: UInt64 = 0
    public var freeSlots: Int { slots - allocatedSlots }
    /// Live bytes / span bytes.
    public var utilisation: Double { spanBytes == 0 ? 0 : Double(liveBytes) / Double(spanBytes) }
    /// Span bytes not holding live data.
    public var waste: UInt64 { spanBytes &- liveBytes }
}

public struct SiteRow: Equatable, Sendable {
    /// 0: objects without a site; k: sites[k - 1].
    public var site: Int
    public var id: UInt64?
    public var name: String
    public var objects = 0
    public var bytes: UInt64 = 0
    public var allocatedBytes: UInt64 = 0
}

public struct DiffRow: Equatable, Sendable {
    public var key: String
    public var objectsBefore = 0
    public var objectsAfter = 0
    public var bytesBefore: UInt64 = 0
    public var bytesAfter: UInt64 = 0
    public var objectDelta: Int { objectsAfter - objectsBefore }
    public var byteDelta: Int64 { Int64(bitPattern: bytesAfter) - Int64(bitPattern: bytesBefore) }
}

public struct SnapshotDiff: Equatable, Sendable {
    public var total: DiffRow
    /// Sites present in either snapshot, largest |byte delta| first.
    public var bySite: [DiffRow]
    /// Size classes (0 = large), largest |byte delta| first.
    public var byClass: [DiffRow]
}

extension HeapSnapshot {
    public func summary() -> SnapshotSummary {
        var s = SnapshotSummary()
        var lastTinyBlock: UInt64 = .max
        for i in 0..<objectCount {
            let bytes = size[i]
            let allocated = allocatedSize(ofObject: i)
            s.live.objects += 1
            s.live.bytes += bytes
            if isTiny(i) {
                s.tiny.objects += 1
                s.tiny.bytes += bytes
                let block = address[i] >> 4
                if block != lastTinyBlock {
                    s.tinyBlocks += 1
                    lastTinyBlock = block
                }
            } else if isLarge(i) {
                s.large.objects += 1
                s.large.bytes += bytes
                s.large.allocatedBytes += allocated
            } else {
                s.small.objects += 1
                s.small.bytes += bytes
                s.small.allocatedBytes += allocated
            }
        }
        s.tiny.allocatedBytes = UInt64(s.tinyBlocks) * Self.tinySize
        s.live.allocatedBytes = s.tiny.allocatedBytes + s.small.allocatedBytes + s.large.allocatedBytes
        s.spans = spans.count
        s.spanBytes = spans.reduce(0) { $0 + $1.bytes }
        s.heapSys = statistic("heap_sys")
        s.heapInUse = statistic("heap_in_use")
        s.heapIdle = statistic("heap_idle")
        s.heapReleased = statistic("heap_released")
        s.metadataBytes = statistic("metadata_bytes")
        s.internalFragmentation = s.live.allocatedBytes &- s.live.bytes
        s.externalFragmentation = s.spanBytes >= s.live.allocatedBytes ? s.spanBytes - s.live.allocatedBytes : 0
        s.fragmentation = s.spanBytes == 0 ? 0 : 1 - Double(s.live.bytes) / Double(s.spanBytes)
        s.edges = edgeCount
        s.roots = roots.count
        s.rootObjects = Set(roots.map(\.object)).count
        s.sites = sites.count
        for span in spans {
            var count = 0
            for w in 0..<span.bitWords {
                count += (allocBits[span.bitsOffset + w] & ~markBits[span.bitsOffset + w]).nonzeroBitCount
            }
            s.unmarkedAllocatedSlots += count
            s.unmarkedAllocatedBytes += UInt64(count) * span.elemSize
        }
        let reached = reachableFromRoots()
        for i in 0..<objectCount where !reached[i] {
            s.unreachable.objects += 1
            s.unreachable.bytes += size[i]
            s.unreachable.allocatedBytes += allocatedSize(ofObject: i)
        }
        return s
    }

    /// Which objects some path from a root reaches (breadth-first over the edges).
    public func reachableFromRoots() -> [Bool] {
        var seen = [Bool](repeating: false, count: objectCount)
        var queue: [Int32] = []
        for r in roots where !seen[Int(r.object)] {
            seen[Int(r.object)] = true
            queue.append(r.object)
        }
        var head = 0
        while head < queue.count {
            let v = Int(queue[head])
            head += 1
            for e in edgeStart[v]..<edgeStart[v + 1] where !seen[Int(edgeTarget[e])] {
                seen[Int(edgeTarget[e])] = true
                queue.append(edgeTarget[e])
            }
        }
        return seen
    }

    /// One row per size class that has spans or objects (class 0, large, last).
    public func classes() -> [ClassRow] {
        var rows = (0..<256).map { ClassRow(sizeClass: $0, objectSize: $0 < sizeClasses.count ? sizeClasses[$0].size : 0) }
        for span in spans {
            let c = Int(span.sizeClass)
            rows[c].spans += 1
            rows[c].spanBytes += span.bytes
            rows[c].slots += Int(span.slots)
            for w in 0..<span.bitWords {
                rows[c].allocatedSlots += allocBits[span.bitsOffset + w].nonzeroBitCount
                rows[c].markedSlots += markBits[span.bitsOffset + w].nonzeroBitCount
            }
        }
        for i in 0..<objectCount {
            let c = Int(sizeClass[i])
            rows[c].liveObjects += 1
            rows[c].liveBytes += size[i]
        }
        let used = rows.filter { $0.spans > 0 || $0.liveObjects > 0 }
        return used.filter { $0.sizeClass != 0 } + used.filter { $0.sizeClass == 0 }
    }

    /// Histogram by site, most bytes first (ties: site order).
    public func siteHistogram() -> [SiteRow] {
        var rows = [SiteRow(site: 0, id: nil, name: "(no site)")]
        for (k, s) in sites.enumerated() { rows.append(SiteRow(site: k + 1, id: s.id, name: s.name)) }
        var lastTinyBlock: UInt64 = .max
        for i in 0..<objectCount {
            let k = Int(site[i])
            rows[k].objects += 1
            rows[k].bytes += size[i]
            if isTiny(i) {
                // A block shared by several objects counts for the first one.
                let block = address[i] >> 4
                if block != lastTinyBlock { rows[k].allocatedBytes += Self.tinySize; lastTinyBlock = block }
            } else {
                rows[k].allocatedBytes += allocatedSize(ofObject: i)
            }
        }
        return rows.filter { $0.objects > 0 }.sorted { ($0.bytes, $1.site) > ($1.bytes, $0.site) }
    }

    /// Retained bytes per site (index 0: no site): the bytes of every object dominated by
    /// some object of the site, i.e. the sum of the retained sizes of the site's objects
    /// that no other object of the same site dominates.
    public func siteRetained(_ tree: DominatorTree) -> [UInt64] {
        let n = objectCount
        var result = [UInt64](repeating: 0, count: sites.count + 1)
        // Children lists of the dominator tree (CSR), roots' children under index n.
        var childStart = [Int](repeating: 0, count: n + 2)
        for v in 0..<n where tree.isReachable(v) {
            let d = tree.idom[v] < 0 ? n : Int(tree.idom[v])
            childStart[d + 1] += 1
        }
        for k in 0..<(n + 1) { childStart[k + 1] += childStart[k] }
        var fill = Array(childStart[0..<(n + 1)])
        var children = [Int32](repeating: 0, count: childStart[n + 1])
        for v in 0..<n where tree.isReachable(v) {
            let d = tree.idom[v] < 0 ? n : Int(tree.idom[v])
            children[fill[d]] = Int32(v)
            fill[d] += 1
        }
        fill = []
        // DFS over the dominator tree, counting the sites on the current root path.
        var onPath = [Int32](repeating: 0, count: sites.count + 1)
        var stackNode: [Int32] = [Int32(n)]
        var stackPos: [Int] = [childStart[n]]
        while let v = stackNode.last {
            let vi = Int(v)
            let pos = stackPos[stackPos.count - 1]
            if pos == childStart[vi + 1] {
                stackNode.removeLast()
                stackPos.removeLast()
                if vi != n { onPath[Int(site[vi])] -= 1 }
                continue
            }
            stackPos[stackPos.count - 1] = pos + 1
            let w = Int(children[pos])
            let k = Int(site[w])
            if onPath[k] == 0 { result[k] += tree.retained[w] }
            onPath[k] += 1
            stackNode.append(Int32(w))
            stackPos.append(childStart[w])
        }
        return result
    }

    /// The `count` objects with the largest retained sizes (ties: lower index first).
    public func topObjects(_ tree: DominatorTree, count: Int) -> [Int] {
        guard count > 0 else { return [] }
        // Min-heap of (retained, -index) of size <= count.
        var heap: [(UInt64, Int)] = []
        heap.reserveCapacity(count + 1)
        func less(_ a: (UInt64, Int), _ b: (UInt64, Int)) -> Bool { a.0 != b.0 ? a.0 < b.0 : a.1 > b.1 }
        tree.retained.withUnsafeBufferPointer { r in
            for i in 0..<objectCount where tree.idom[i] != DominatorTree.unreachable {
                let item = (r[i], i)
                if heap.count == count {
                    if !less(heap[0], item) { continue }
                    heap[0] = item
                    var k = 0
                    while true {
                        let l = 2 * k + 1, rr = l + 1
                        var m = k
                        if l < heap.count && less(heap[l], heap[m]) { m = l }
                        if rr < heap.count && less(heap[rr], heap[m]) { m = rr }
                        if m == k { break }
                        heap.swapAt(k, m)
                        k = m
                    }
                } else {
                    heap.append(item)
                    var k = heap.count - 1
                    while k > 0 && less(heap[k], heap[(k - 1) / 2]) {
                        heap.swapAt(k, (k - 1) / 2)
                        k = (k - 1) / 2
                    }
                }
            }
        }
        return heap.sorted { less($1, $0) }.map(\.1)
    }

    /// Sites by retained size, largest first: (site index, retained bytes).
    public func topSites(_ tree: DominatorTree, count: Int) -> [(site: Int, retained: UInt64)] {
        let retained = siteRetained(tree)
        var present = [Bool](repeating: false, count: sites.count + 1)
        for i in 0..<objectCount { present[Int(site[i])] = true }
        let rows = (0...sites.count).filter { present[$0] }.map { (site: $0, retained: retained[$0]) }
        return Array(rows.sorted { ($0.retained, $1.site) > ($1.retained, $0.site) }.prefix(count))
    }

    /// Growth from `self` (before) to `after`.
    public func diff(to after: HeapSnapshot) -> SnapshotDiff {
        func siteKey(_ s: HeapSnapshot, _ i: Int) -> String {
            let k = Int(s.site[i])
            return k == 0 ? "(no site)" : "\(s.sites[k - 1].name) [site \(s.sites[k - 1].id)]"
        }
        var sites: [String: DiffRow] = [:]
        var classes: [Int: DiffRow] = [:]
        var total = DiffRow(key: "total")
        for i in 0..<objectCount {
            let key = siteKey(self, i)
            sites[key, default: DiffRow(key: key)].objectsBefore += 1
            sites[key]!.bytesBefore += size[i]
            let c = Int(sizeClass[i])
            classes[c, default: DiffRow(key: "\(c)")].objectsBefore += 1
            classes[c]!.bytesBefore += size[i]
            total.objectsBefore += 1
            total.bytesBefore += size[i]
        }
        for i in 0..<after.objectCount {
            let key = siteKey(after, i)
            sites[key, default: DiffRow(key: key)].objectsAfter += 1
            sites[key]!.bytesAfter += after.size[i]
            let c = Int(after.sizeClass[i])
            classes[c, default: DiffRow(key: "\(c)")].objectsAfter += 1
            classes[c]!.bytesAfter += after.size[i]
            total.objectsAfter += 1
            total.bytesAfter += after.size[i]
        }
        func order(_ a: DiffRow, _ b: DiffRow) -> Bool {
            let x = a.byteDelta.magnitude, y = b.byteDelta.magnitude
            if x != y { return x > y }
            if a.objectDelta.magnitude != b.objectDelta.magnitude { return a.objectDelta.magnitude > b.objectDelta.magnitude }
            return a.key < b.key
        }
        return SnapshotDiff(total: total, bySite: sites.values.sorted(by: order), byClass: classes.values.sorted(by: order))
    }
}
