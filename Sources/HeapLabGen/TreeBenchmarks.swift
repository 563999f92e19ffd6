// Tree-shaped generators: Boehm's GCBench and the Benchmarks Game's binary-trees.
//
// GCBench (Hans Boehm, after John Ellis and Pete Kovac; the classic parameters are stretch
// depth 18, long-lived depth 16, an array of 500,000 doubles, and trees of depth 4, 6, ...,
// 16): it builds and drops a stretch tree, keeps a long-lived tree and a long-lived array,
// then for each depth d builds NumIters(d) = 2 * TreeSize(stretch) / TreeSize(d) trees top
// down (Populate) and as many bottom up (MakeTree), dropping each at once. TreeSize(i) =
// 2^(i+1) - 1. binary-trees (Benchmarks Game): a stretch tree of depth n+1, a long-lived
// tree of depth n, then 2^(n - d + 4) trees of each depth d = 4, 6, ..., n, bottom up.
//
// How a program's locals become holds (so the trace is valid by construction):
//   - `a` gives the new node the hold of the local that receives it;
//   - top down: `a child; w parent SLOT child; f child` (the child stays reachable
//     through its parent), then the recursion visits the children, which are reachable;
//   - bottom up: both subtrees are built (each held by a local), then `a node;
//     w node 0 left; w node 1 right; f left; f right` and the caller holds the node;
//   - dropping a tree is one `f root`: the whole tree dies there.
// Nodes are 2 pointer slots plus two ints (24 bytes) in GCBench, 2 pointer slots (16
// bytes) in binary-trees; GCBench's array is one pointer-free object.
public import HeapLabTrace

/// Boehm's GCBench shape.
public struct GCBench: TraceGenerator {
    public var stretchDepth = 10
    public var longLivedDepth = 8
    public var minDepth = 4
    public var maxDepth = 8
    public var arraySize: UInt64 = 50_000

    static let node: UInt64 = 1, array: UInt64 = 2
    static let nodeSize: UInt64 = 24

    public init() {}

    public func validate() -> String? {
        if stretchDepth < 0 || stretchDepth > 24 { return "--stretch-depth must be 0...24" }
        if longLivedDepth < 0 || longLivedDepth > 24 { return "--long-lived-depth must be 0...24" }
        if minDepth < 0 || maxDepth > stretchDepth || minDepth > maxDepth {
            return "need 0 <= --min-depth <= --max-depth <= --stretch-depth"
        }
        if arraySize < 1 || arraySize > (1 << 37) { return "--array-size must be 1...2^37" }
        return nil
    }

    public func generate(seed: UInt64, into out: inout TraceOutput) throws(InputError) {
        try out.site(Self.node, "Node")
        try out.site(Self.array, "double[]")
        let temp = try makeTree(stretchDepth, &out)
        try out.free(temp)
        let longLived = try out.alloc(size: Self.nodeSize, ptrs: 2, site: Self.node)
        try populate(longLivedDepth, longLived, &out)
        let array = try out.alloc(size: arraySize * 8, ptrs: 0, site: Self.array)
        for depth in stride(from: minDepth, through: maxDepth, by: 2) {
            let iterations = 2 * treeSize(stretchDepth) / treeSize(depth)
            for _ in 0..<iterations {
                let root = try out.alloc(size: Self.nodeSize, ptrs: 2, site: Self.node)
                try populate(depth, root, &out)
                try out.free(root)
            }
            for _ in 0..<iterations {
                let root = try makeTree(depth, &out)
                try out.free(root)
            }
        }
        try out.free(longLived)
        try out.free(array)
    }

    private func treeSize(_ depth: Int) -> Int { (1 << (depth + 1)) - 1 }

    private func populate(_ depth: Int, _ node: UInt64, _ out: inout TraceOutput) throws(InputError) {
        if depth <= 0 { return }
        let left = try out.alloc(size: Self.nodeSize, ptrs: 2, site: Self.node)
        try out.write(node, 0, left)
        try out.free(left)
        let right = try out.alloc(size: Self.nodeSize, ptrs: 2, site: Self.node)
        try out.write(node, 1, right)
        try out.free(right)
        try populate(depth - 1, left, &out)
        try populate(depth - 1, right, &out)
    }

    private func makeTree(_ depth: Int, _ out: inout TraceOutput) throws(InputError) -> UInt64 {
        if depth <= 0 { return try out.alloc(size: Self.nodeSize, ptrs: 2, site: Self.node) }
        let left = try makeTree(depth - 1, &out)
        let right = try makeTree(depth - 1, &out)
        let node = try out.alloc(size: Self.nodeSize, ptrs: 2, site: Self.node)
        try out.write(node, 0, left)
        try out.write(node, 1, right)
        try out.free(left)
        try out.free(right)
        return node
    }
}

/// The Benchmarks Game's binary-trees; with several threads each depth's trees are shared
/// out among the threads, and the seed decides how the threads' work interleaves.
public struct BinaryTrees: TraceGenerator {
    public var depth = 8
    public var threads = 1
    static let minDepth = 4
    static let node: UInt64 = 1
    static let nodeSize: UInt64 = 16

    public init() {}

    public func validate() -> String? {
        if depth < Self.minDepth || depth > 24 { return "--depth must be 4...24" }
        if threads < 1 || threads > 256 { return "--threads must be 1...256" }
        return nil
    }

    public func generate(seed: UInt64, into out: inout TraceOutput) throws(InputError) {
        var random = GenRandom(seed: seed)
        try out.site(Self.node, "TreeNode")
        let stretch = try bottomUp(depth + 1, &out)
        try out.free(stretch)
        let longLived = try bottomUp(depth, &out)
        for d in stride(from: Self.minDepth, through: depth, by: 2) {
            // Work list: remaining trees per thread; threads take turns in random order.
            let iterations = 1 << (depth - d + Self.minDepth)
            var remaining = (0..<threads).map { t in iterations / threads + (t < iterations % threads ? 1 : 0) }
            var busy = remaining.indices.filter { remaining[$0] > 0 }
            while !busy.isEmpty {
                let pick = random.index(busy.count)
                let t = busy[pick]
                out.thread(UInt64(t))
                let root = try bottomUp(d, &out)
                try out.free(root)
                remaining[t] -= 1
                if remaining[t] == 0 { busy.remove(at: pick) }
            }
            out.thread(0)
        }
        try out.free(longLived)
    }

    private func bottomUp(_ depth: Int, _ out: inout TraceOutput) throws(InputError) -> UInt64 {
        if depth <= 0 { return try out.alloc(size: Self.nodeSize, ptrs: 2, site: Self.node) }
        let left = try bottomUp(depth - 1, &out)
        let right = try bottomUp(depth - 1, &out)
        let node = try out.alloc(size: Self.nodeSize, ptrs: 2, site: Self.node)
        try out.write(node, 0, left)
        try out.write(node, 1, right)
        try out.free(left)
        try out.free(right)
        return node
    }
}
