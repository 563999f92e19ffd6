// Shortest paths from the roots: one breadth-first search over the object graph, started
// from every root object at once (in root order), so the first time an object is reached is
// along a path with the fewest pointer hops; ties go to the earlier root and the lower slot.
//
// `ShortestPaths` keeps, per object, the object it was reached from and through which slot
// (or, for a root object, which root record), in flat arrays: 8 bytes per object.

public struct PathStep: Equatable, Sendable {
    /// The object reached.
    public var object: Int
    /// The pointer slot of the previous step's object that leads here (nil for the first step).
    public var slot: UInt32?
}

public struct RootedPath: Equatable, Sendable {
    /// The root record the path starts from (index into `HeapSnapshot.roots`).
    public var root: Int
    public var steps: [PathStep]
}

public struct ShortestPaths: Sendable {
    /// Object reached from (object index), -1 for a root object, -2 unreachable.
    public var parent: [Int32]
    /// For a root object: the root record; otherwise the slot in the parent.
    public var via: [UInt32]

    public init(_ s: HeapSnapshot) {
        let n = s.objectCount
        var parent = [Int32](repeating: -2, count: n)
        var via = [UInt32](repeating: 0, count: n)
        var queue = [Int32](repeating: 0, count: n)
        var head = 0, tail = 0
        parent.withUnsafeMutableBufferPointer { par in
            via.withUnsafeMutableBufferPointer { vi in
                queue.withUnsafeMutableBufferPointer { q in
                    for (k, r) in s.roots.enumerated() where par[Int(r.object)] == -2 {
                        par[Int(r.object)] = -1
                        vi[Int(r.object)] = UInt32(truncatingIfNeeded: k)
                        q[tail] = r.object; tail += 1
                    }
                    s.edgeStart.withUnsafeBufferPointer { starts in
                        s.edgeTarget.withUnsafeBufferPointer { targets in
                            s.edgeSlot.withUnsafeBufferPointer { slots in
                                while head < tail {
                                    let v = Int(q[head]); head += 1
                                    for e in starts[v]..<starts[v + 1] {
                                        let w = Int(targets[e])
                                        if par[w] != -2 { continue }
                                        par[w] = Int32(v)
                                        vi[w] = slots[e]
                                        q[tail] = Int32(w); tail += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        self.parent = parent
        self.via = via
    }

    /// The path from a root to `object`, nil if it is unreachable.
    public func path(to object: Int) -> RootedPath? {
        guard parent[object] != -2 else { return nil }
        var steps: [PathStep] = []
        var v = object
        while parent[v] >= 0 {
            steps.append(PathStep(object: v, slot: via[v]))
            v = Int(parent[v])
        }
        steps.append(PathStep(object: v, slot: nil))
        return RootedPath(root: Int(via[v]), steps: steps.reversed())
    }

    /// Hops from the nearest root (0 for a root object), nil if unreachable.
    public func depth(of object: Int) -> Int? {
        guard parent[object] != -2 else { return nil }
        var d = 0
        var v = object
        while parent[v] >= 0 { v = Int(parent[v]); d += 1 }
        return d
    }
}
