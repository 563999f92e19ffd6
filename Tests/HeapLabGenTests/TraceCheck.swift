// Test support: an independent checker of every TRACE-FORMAT.md rule (holds, reachability
// through pointer slots, sites, sizes, threads), written from the spec for these tests and
// kept deliberately simple (it recomputes reachability from the holds after any record
// that can kill an object), so it suits small traces only.
import HeapLabTrace

struct TraceCheck {
    struct Object {
        var size: UInt64
        var ptrs: UInt64
        var holds: Int
        var slots: [UInt64?]
    }
    private var objects: [UInt64: Object] = [:]
    private var sites = Set<UInt64>()
    private var dirty = false
    private(set) var writes = 0
    private(set) var holdsTaken = 0
    private(set) var threads = Set<UInt64>([0])
    private(set) var maxLive = 0

    /// Checks a whole trace; returns the first problem, or nil.
    static func problem(in records: [TraceRecord]) -> String? {
        var check = TraceCheck()
        return check.run(records)
    }

    mutating func run(_ records: [TraceRecord]) -> String? {
        guard records.first == .header(version: 1) else { return "header is not first" }
        for (i, record) in records.enumerated().dropFirst() {
            if let problem = step(record) { return "record \(i) (\(record)): \(problem)" }
        }
        return nil
    }

    private mutating func collect() {
        guard dirty else { return }
        dirty = false
        var marked = Set<UInt64>()
        var stack = objects.compactMap { $0.value.holds > 0 ? $0.key : nil }
        while let id = stack.popLast() {
            guard marked.insert(id).inserted, let object = objects[id] else { continue }
            for case let target? in object.slots where !marked.contains(target) { stack.append(target) }
        }
        objects = objects.filter { marked.contains($0.key) }
    }

    private mutating func reachable(_ id: UInt64) -> Bool {
        collect()
        return objects[id] != nil
    }

    mutating func step(_ record: TraceRecord) -> String? {
        switch record {
        case .header: return "second header"
        case .site(let id, let name):
            if !sites.insert(id).inserted { return "site redeclared" }
            if name.isEmpty { return "empty site name" }
        case .thread(let t):
            if t >= 256 { return "thread out of range" }
            threads.insert(t)
        case .alloc(let id, let size, let ptrs, let site):
            if reachable(id) { return "ID is live" }
            if size < 1 || size > 1 << 40 { return "size out of range" }
            if ptrs * 8 > size { return "too many pointer slots" }
            if let site, !sites.contains(site) { return "undeclared site" }
            objects[id] = Object(size: size, ptrs: ptrs, holds: 1, slots: Array(repeating: nil, count: Int(ptrs)))
            maxLive = max(maxLive, objects.count)
        case .free(let id):
            guard reachable(id) else { return "free of an unreachable object" }
            guard objects[id]!.holds > 0 else { return "free with no hold left" }
            objects[id]!.holds -= 1
            if objects[id]!.holds == 0 { dirty = true }
        case .hold(let id):
            guard reachable(id) else { return "hold on an unreachable object" }
            objects[id]!.holds += 1
            holdsTaken += 1
        case .write(let src, let slot, let dst):
            guard reachable(src) else { return "store into an unreachable object" }
            if let dst, !reachable(dst) { return "store of an unreachable object" }
            guard slot < objects[src]!.ptrs else { return "slot out of range" }
            if objects[src]!.slots[Int(slot)] != nil { dirty = true }
            objects[src]!.slots[Int(slot)] = dst
            writes += 1
        case .realloc(let id, let size):
            guard reachable(id) else { return "realloc of an unreachable object" }
            if objects[id]!.ptrs != 0 { return "realloc of an object with pointer slots" }
            if size < 1 || size > 1 << 40 { return "size out of range" }
            objects[id]!.size = size
        }
        return nil
    }
}
