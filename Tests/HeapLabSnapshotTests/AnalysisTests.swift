// Every inspect answer, exactly, on a heap of known structure (hand-computed dominators,
// paths, histograms, class rows, fragmentation, heat map, diff), site retained sizes against
// the naive dominator sets on random heaps, and the Chrome export checked structurally.
import Foundation
import Testing
@testable import HeapLabSnapshot

/// Sites 1 Node, 2 Leaf, 3 Buf, 4 Big.
///
///   roots: #1 (thread 0), #7 (thread 1, 2 holds)
///   #1 Node 32 -> [0] #2, [1] #3      #2 Node 32 -> [0] #4, [1] #3
///   #3 Leaf 24 -> [0] #5              #4 Leaf 24 -> [0] #7
///   #5 Buf 100 (noscan)               #6 Buf 5 (tiny)
///   #7 Big 70000 -> [0] #6            #8 Node 32, unreachable
///
/// Dominator tree: root -> {1, 7}; 1 -> {2, 3}; 2 -> {4}; 3 -> {5}; 7 -> {6}.
func knownHeap() -> ModelHeap {
    var m = ModelHeap()
    m.sites = [(1, "Node"), (2, "Leaf"), (3, "Buf"), (4, "Big")]
    m.alloc(1, 32, ptrs: 2, site: 1)
    m.alloc(2, 32, ptrs: 2, site: 1)
    m.alloc(3, 24, ptrs: 1, site: 2)
    m.alloc(4, 24, ptrs: 1, site: 2)
    m.alloc(5, 100, site: 3)
    m.alloc(6, 5, site: 3)
    m.alloc(7, 70000, ptrs: 1, site: 4)
    m.alloc(8, 32, ptrs: 2, site: 1)
    m.store(1, 0, 2); m.store(1, 1, 3); m.store(2, 0, 4); m.store(2, 1, 3)
    m.store(3, 0, 5); m.store(4, 0, 7); m.store(7, 0, 6)
    m.hold(1, thread: 0)
    m.hold(7, thread: 1, holds: 2)
    return m
}

@Suite struct AnalysisTests {
    let s = knownHeap().build()
    func index(_ id: UInt64) -> Int { s.object(withTraceID: id)! }

    @Test func dominatorsAndRetainedSizes() {
        let t = Dominators.compute(s)
        let expectedIdom: [UInt64: UInt64?] = [1: nil, 2: 1, 3: 1, 4: 2, 5: 3, 6: 7, 7: nil]
        for (id, dom) in expectedIdom {
            #expect(t.idom[index(id)] == (dom.map { Int32(index($0)) } ?? DominatorTree.rootParent), "idom(#\(id))")
        }
        #expect(t.idom[index(8)] == DominatorTree.unreachable)
        let retained: [UInt64: UInt64] = [1: 212, 2: 56, 3: 124, 4: 24, 5: 100, 6: 5, 7: 70005, 8: 0]
        for (id, r) in retained { #expect(t.retained[index(id)] == r, "retained(#\(id))") }
        #expect(t.reachableBytes == 70217)
        #expect(t.unreachableObjects == 1 && t.unreachableBytes == 32)
        #expect(s.topObjects(t, count: 10).map { s.traceID[$0] } == [7, 1, 3, 5, 2, 4, 6])
        #expect(s.topObjects(t, count: 2).map { s.traceID[$0] } == [7, 1])
        let sites = s.topSites(t, count: 10).map { (s.sites[$0.site - 1].name, $0.retained) }
        #expect(sites.map(\.0) == ["Big", "Node", "Leaf", "Buf"])
        #expect(sites.map(\.1) == [70005, 212, 148, 105])
    }

    @Test func shortestPaths() {
        let p = ShortestPaths(s)
        let toFive = p.path(to: index(5))!
        #expect(s.roots[toFive.root].thread == 0)
        #expect(toFive.steps.map { s.traceID[$0.object] } == [1, 3, 5])
        #expect(toFive.steps.map(\.slot) == [nil, 1, 0])
        let toSix = p.path(to: index(6))!
        #expect(s.roots[toSix.root].thread == 1 && s.roots[toSix.root].holds == 2)
        #expect(toSix.steps.map { s.traceID[$0.object] } == [7, 6])
        #expect(p.path(to: index(4))!.steps.map { s.traceID[$0.object] } == [1, 2, 4])
        #expect(p.path(to: index(8)) == nil)
        #expect(p.depth(of: index(4)) == 2)
    }

    @Test func summary() {
        let m = s.summary()
        #expect(m.live.objects == 8 && m.live.bytes == 70249)
        #expect(m.tiny.objects == 1 && m.tiny.bytes == 5 && m.tinyBlocks == 1 && m.tiny.allocatedBytes == 16)
        #expect(m.small.objects == 6 && m.small.bytes == 244 && m.small.allocatedBytes == 256)
        #expect(m.large.objects == 1 && m.large.bytes == 70000 && m.large.allocatedBytes == 9 * 8192)
        #expect(m.live.allocatedBytes == 74000)
        #expect(m.spans == 5 && m.spanBytes == 106496)
        #expect(m.internalFragmentation == 3751)
        #expect(m.externalFragmentation == 32496)
        #expect(m.fragmentation == 1 - 70249.0 / 106496.0)
        #expect(m.heapInUse == 4 * 8192 && m.heapSys == nil)
        #expect(m.edges == 7 && m.roots == 2 && m.rootObjects == 2 && m.sites == 4)
    }

    @Test func classes() {
        let rows = s.classes()
        #expect(rows.map(\.sizeClass) == [1, 3, 4, 9, 0])
        let c4 = rows[2]
        #expect(c4.objectSize == 32 && c4.spans == 1 && c4.spanBytes == 8192 && c4.slots == 256)
        #expect(c4.allocatedSlots == 3 && c4.markedSlots == 3 && c4.freeSlots == 253)
        #expect(c4.liveObjects == 3 && c4.liveBytes == 96 && c4.waste == 8096)
        #expect(c4.utilisation == 96.0 / 8192.0)
        #expect(rows[1].slots == 341 && rows[1].liveObjects == 2 && rows[1].liveBytes == 48)
        #expect(rows[3].slots == 73 && rows[3].liveBytes == 100)
        let large = rows[4]
        #expect(large.spans == 1 && large.spanBytes == 73728 && large.slots == 1 && large.markedSlots == 1)
        #expect(large.liveObjects == 1 && large.liveBytes == 70000 && large.waste == 3728)
    }

    @Test func siteHistogram() {
        let rows = s.siteHistogram()
        #expect(rows.map(\.name) == ["Big", "Buf", "Node", "Leaf"])
        #expect(rows.map(\.objects) == [1, 2, 3, 2])
        #expect(rows.map(\.bytes) == [70000, 105, 96, 48])
        #expect(rows.map(\.allocatedBytes) == [73728, 128, 96, 48])
        #expect(rows.map(\.id) == [4, 3, 1, 2])
    }

    @Test func heatMap() {
        let text = SpanHeatMap.text(s)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[1] == "0x000000110000  :_:_:_:_L")
        let cells = SpanHeatMap.occupancy(s)
        #expect(cells.map(\.liveSlots) == [1, 2, 3, 1, 1])
        #expect(cells.map(\.gapPagesBefore) == [0, 15, 7, 39, 951])

        // Full, half and empty spans of one class (128-byte objects, 64 slots each).
        var m = ModelHeap()
        for k in 0..<64 { m.alloc(UInt64(k + 1), 128) }
        let full = m.build()
        #expect(SpanHeatMap.text(full).split(separator: "\n")[1] == "0x0000001a0000  @")
        var b = SnapshotBuilder(info: SnapshotInfo(), sizeClasses: testSizeClasses)
        b.addSpan(start: 0x200000, pages: 1, sizeClass: 10, noscan: true, cached: true, needzero: false,
                  elemSize: 128, slots: 64, allocated: [~0])
        b.addSpan(start: 0x202000, pages: 1, sizeClass: 10, noscan: true, cached: true, needzero: false,
                  elemSize: 128, slots: 64, allocated: [~0])
        for k in 0..<32 { b.addObject(address: 0x200000 + UInt64(k) * 128, size: 128, sizeClass: 10, pointerSlots: 0, site: nil, traceID: UInt64(k)) }
        let half = b.finish { _ in 0 }
        #expect(SpanHeatMap.text(half, width: 1).split(separator: "\n").dropFirst() == ["0x000000200000  *", "0x000000202000  ."])
        let svg = SpanHeatMap.svg(half)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.components(separatedBy: "<rect ").count == 3)
        #expect(svg.contains("32/64 slots live, 64 allocated"))
        // Well-formed: every element closed in order, text escaped.
        #expect(Self.tagsBalance(svg))
        #expect(!Self.tagsBalance("<svg><rect></svg></rect>"))
    }

    /// A small XML well-formedness check: tags nest and close, `&` only starts an entity.
    static func tagsBalance(_ xml: String) -> Bool {
        var stack: [Substring] = []
        var rest = Substring(xml)
        while let open = rest.firstIndex(of: "<") {
            let text = rest[..<open]
            for (k, ch) in zip(text.indices, text) where ch == "&" {
                let tail = text[k...]
                if !(tail.hasPrefix("&amp;") || tail.hasPrefix("&lt;") || tail.hasPrefix("&gt;") || tail.hasPrefix("&quot;")) { return false }
            }
            guard let close = rest[open...].firstIndex(of: ">") else { return false }
            let tag = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            if tag.hasPrefix("/") {
                guard stack.popLast() == tag.dropFirst() else { return false }
            } else if !tag.hasSuffix("/") {
                stack.append(tag.prefix { $0 != " " })
            }
        }
        return stack.isEmpty
    }

    @Test func diffBySiteAndClass() {
        var later = knownHeap()
        later.objects.removeAll { $0.id == 8 }
        later.alloc(9, 24, ptrs: 1, site: 2)
        later.alloc(10, 100, site: 3)
        let after = later.build()
        let d = s.diff(to: after)
        #expect(d.total.objectsBefore == 8 && d.total.objectsAfter == 9)
        #expect(d.total.bytesBefore == 70249 && d.total.bytesAfter == 70341 && d.total.byteDelta == 92)
        #expect(d.bySite.map(\.key) == ["Buf [site 3]", "Node [site 1]", "Leaf [site 2]", "Big [site 4]"])
        #expect(d.bySite.map(\.byteDelta) == [100, -32, 24, 0])
        #expect(d.bySite.map(\.objectDelta) == [1, -1, 1, 0])
        #expect(d.byClass.map(\.key) == ["9", "4", "3", "0", "1"])
        #expect(d.byClass.map(\.byteDelta) == [100, -32, 24, 0, 0])
    }

    @Test func siteRetainedMatchesNaiveOnRandomHeaps() {
        var rng = TestRandom(77)
        for _ in 0..<100 {
            var m = ModelHeap()
            let n = 1 + rng.next(30)
            m.sites = [(1, "A"), (2, "B"), (3, "C")]
            for id in 1...n {
                m.alloc(UInt64(id), UInt64(8 * (1 + rng.next(12))), ptrs: 1, site: rng.next(4) == 0 ? nil : UInt64(1 + rng.next(3)))
            }
            for k in m.objects.indices { m.objects[k].ptrs = m.objects[k].size / 8 }
            var edges = [[Int]](repeating: [], count: n + 1)
            for id in 1...n {
                let ptrs = Int(m.objects[id - 1].ptrs)
                for slot in 0..<ptrs where rng.next(3) == 0 {
                    let dst = 1 + rng.next(n)
                    m.store(UInt64(id), UInt64(slot), UInt64(dst))
                }
            }
            let roots = (0..<(1 + rng.next(3))).map { _ in 1 + rng.next(n) }
            for r in roots { m.hold(UInt64(r)) }
            let s = m.build()
            // Graph over object indexes for the naive computation.
            var adjacency = [[Int]](repeating: [], count: s.objectCount)
            for i in 0..<s.objectCount {
                for e in s.edgeStart[i]..<s.edgeStart[i + 1] { adjacency[i].append(Int(s.edgeTarget[e])) }
            }
            let rootIdx = s.roots.map { Int($0.object) }
            let dominated = naiveDominated(n: s.objectCount, edges: adjacency, roots: rootIdx)
            let tree = Dominators.compute(s)
            let fast = s.siteRetained(tree)
            for k in 0...s.sites.count {
                var union = Set<Int>()
                for i in 0..<s.objectCount where Int(s.site[i]) == k { union.formUnion(dominated[i]) }
                let bytes = union.reduce(UInt64(0)) { $0 + s.size[$1] }
                #expect(fast[k] == bytes, "site \(k)")
            }
            for i in 0..<s.objectCount {
                #expect(tree.retained[i] == dominated[i].reduce(UInt64(0)) { $0 + s.size[$1] })
            }
        }
    }

    @Test func chromeExportStructure() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.path("s.heapsnapshot")
        let (nodes, edges) = try ChromeExport.write(s, to: path)
        #expect(nodes == 9 && edges == 9)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let snap = json["snapshot"] as! [String: Any]
        let meta = snap["meta"] as! [String: Any]
        let nodeFields = meta["node_fields"] as! [String]
        let edgeFields = meta["edge_fields"] as! [String]
        #expect(nodeFields == ["type", "name", "id", "self_size", "edge_count", "trace_node_id", "detachedness"])
        #expect(edgeFields == ["type", "name_or_index", "to_node"])
        let nodeTypes = (meta["node_types"] as! [Any])[0] as! [String]
        let edgeTypes = (meta["edge_types"] as! [Any])[0] as! [String]
        #expect((meta["node_types"] as! [Any]).count == nodeFields.count)
        #expect((meta["edge_types"] as! [Any]).count == edgeFields.count)
        let nodeCount = snap["node_count"] as! Int, edgeCount = snap["edge_count"] as! Int
        let flatNodes = json["nodes"] as! [Int], flatEdges = json["edges"] as! [Int]
        let strings = json["strings"] as! [String]
        #expect(nodeCount == 9 && edgeCount == 9)
        #expect(flatNodes.count == nodeCount * nodeFields.count)
        #expect(flatEdges.count == edgeCount * edgeFields.count)
        // Edge totals and per-node edges in node order.
        var edgeIndex = 0
        var sum = 0
        var ids = Set<Int>()
        for k in 0..<nodeCount {
            let base = k * 7
            #expect(flatNodes[base] < nodeTypes.count)
            #expect(flatNodes[base + 1] < strings.count)
            #expect(ids.insert(flatNodes[base + 2]).inserted)
            let count = flatNodes[base + 4]
            sum += count
            var targets: [Int] = []
            var labels: [Int] = []
            for _ in 0..<count {
                let e = edgeIndex * 3
                #expect(edgeTypes[flatEdges[e]] == "element")
                #expect(flatEdges[e + 2] % 7 == 0 && flatEdges[e + 2] < flatNodes.count)
                targets.append(flatEdges[e + 2] / 7)
                labels.append(flatEdges[e + 1])
                edgeIndex += 1
            }
            if k == 0 {
                #expect(nodeTypes[flatNodes[0]] == "synthetic")
                #expect(strings[flatNodes[1]] == "(HeapLab roots)")
                #expect(Set(targets.map { s.traceID[$0 - 1] }) == [1, 7])
            } else {
                let i = k - 1
                #expect(nodeTypes[flatNodes[base]] == "object")
                #expect(strings[flatNodes[base + 1]] == s.siteName(ofObject: i))
                #expect(UInt64(flatNodes[base + 3]) == s.size[i])
                #expect(targets == s.edgeTarget[s.edgeStart[i]..<s.edgeStart[i + 1]].map { Int($0) + 1 })
                #expect(labels == s.edgeSlot[s.edgeStart[i]..<s.edgeStart[i + 1]].map { Int($0) })
            }
        }
        #expect(sum == edgeCount && edgeIndex == edgeCount)
    }
}
