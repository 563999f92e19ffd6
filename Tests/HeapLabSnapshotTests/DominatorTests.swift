// Dominators and retained sizes: hand-computed answers on small graphs (Lengauer and
// Tarjan's own example among them), then every idom and retained size against the naive
// "remove v, what becomes unreachable" computation on a few hundred random graphs.
import Testing
@testable import HeapLabSnapshot

@Suite struct DominatorTests {
    /// Runs the core on an adjacency list with root objects `roots`.
    static func tree(n: Int, edges: [[Int]], roots: [Int], sizes: [UInt64]) -> DominatorTree {
        var starts = [0]
        var targets: [Int32] = []
        for v in 0..<n {
            targets.append(contentsOf: edges[v].map { Int32($0) })
            starts.append(targets.count)
        }
        let r = roots.map { Int32($0) }
        return starts.withUnsafeBufferPointer { s in
            targets.withUnsafeBufferPointer { t in
                r.withUnsafeBufferPointer { rr in
                    sizes.withUnsafeBufferPointer { z in
                        Dominators.compute(nodeCount: n, edgeStart: s.baseAddress!, edgeTarget: t.baseAddress,
                                           rootTargets: rr, sizes: z.baseAddress)
                    }
                }
            }
        }
    }

    @Test func lengauerTarjanPaperExample() {
        // R A B C D E F G H I J K L, the flowgraph of Lengauer & Tarjan (1979), figure 1.
        let names = Array("RABCDEFGHIJKL")
        func i(_ c: Character) -> Int { names.firstIndex(of: c)! }
        let adjacency: [Character: String] = [
            "R": "ABC", "A": "D", "B": "ADE", "C": "FG", "D": "L", "E": "H", "F": "I", "G": "IJ",
            "H": "EK", "I": "K", "J": "I", "K": "IR", "L": "H",
        ]
        let edges = names.map { c in (adjacency[c] ?? "").map(i) }
        let t = Self.tree(n: names.count, edges: edges, roots: [i("R")], sizes: Array(repeating: 1, count: names.count))
        let expected: [Character: Character] = [
            "A": "R", "B": "R", "C": "R", "D": "R", "E": "R", "F": "C", "G": "C", "H": "R", "I": "R",
            "J": "G", "K": "R", "L": "D",
        ]
        #expect(t.idom[i("R")] == DominatorTree.rootParent)
        for (node, dom) in expected { #expect(t.idom[i(node)] == Int32(i(dom)), "idom(\(node))") }
        #expect(t.retained[i("R")] == 13)
        #expect(t.retained[i("C")] == 4)     // C, F, G, J
        #expect(t.retained[i("D")] == 2)     // D, L
        #expect(t.unreachableObjects == 0)
    }

    @Test func diamondChainAndSharedChild() {
        // 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3, 3 -> 4 ; 5 unreachable; roots: 0 and 6; 6 -> 4.
        let edges = [[1, 2], [3], [3], [4], [], [4], [4]]
        let sizes: [UInt64] = [10, 20, 30, 40, 50, 60, 70]
        let t = Self.tree(n: 7, edges: edges, roots: [0, 6], sizes: sizes)
        #expect(t.idom == [-1, 0, 0, 0, -1, -2, -1])
        #expect(t.retained == [10 + 20 + 30 + 40, 20, 30, 40, 50, 0, 70])
        #expect(t.reachableBytes == 10 + 20 + 30 + 40 + 50 + 70)
        #expect(t.unreachableObjects == 1)
        #expect(t.unreachableBytes == 60)
        #expect(Set(t.preorder) == [0, 1, 2, 3, 4, 6])
    }

    @Test func longChainNeedsNoRecursion() {
        let n = 200_000
        let edges = (0..<n).map { $0 + 1 < n ? [$0 + 1] : [] }
        let t = Self.tree(n: n, edges: edges, roots: [0], sizes: Array(repeating: 8, count: n))
        #expect(t.retained[0] == UInt64(8 * n))
        #expect(t.retained[n - 1] == 8)
        #expect(t.idom[n - 1] == Int32(n - 2))
    }

    @Test(arguments: 0..<4)
    func randomGraphsMatchNaiveDominators(batch: Int) {
        var rng = TestRandom(UInt64(0xD0_0000 + batch))
        for _ in 0..<60 {
            let n = 1 + rng.next(40)
            let density = 1 + rng.next(4)
            var edges = [[Int]](repeating: [], count: n)
            for v in 0..<n {
                for _ in 0..<rng.next(density + 1) { edges[v].append(rng.next(n)) }
            }
            let roots = (0..<(1 + rng.next(3))).map { _ in rng.next(n) }
            let sizes = (0..<n).map { _ in UInt64(1 + rng.next(1000)) }
            let t = Self.tree(n: n, edges: edges, roots: roots, sizes: sizes)
            let dominated = naiveDominated(n: n, edges: edges, roots: roots)
            for v in 0..<n {
                let retained = dominated[v].reduce(UInt64(0)) { $0 + sizes[$1] }
                #expect(t.retained[v] == retained, "retained(\(v)) in \(edges) roots \(roots)")
                // idom(w): the strict dominator of w dominated by all of w's strict dominators
                // (the one dominating the fewest nodes).
                if dominated[v].isEmpty {
                    #expect(t.idom[v] == DominatorTree.unreachable)
                    continue
                }
                let strict = (0..<n).filter { $0 != v && dominated[$0].contains(v) }
                let expected = strict.min { dominated[$0].count < dominated[$1].count }
                #expect(t.idom[v] == (expected.map { Int32($0) } ?? DominatorTree.rootParent), "idom(\(v)) in \(edges) roots \(roots)")
            }
        }
    }
}
