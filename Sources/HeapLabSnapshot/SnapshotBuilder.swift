// Builds a HeapSnapshot from what a capture sees: spans, live objects in any order, memory,
// roots. This is the allocator-independent half of a capture (the replay's HeapLab capture
// and tests feed it from a real Heap; the API takes anything that can list spans and read
// words).
//
// `finish(readWord:)`:
//   1. sorts objects by address (a permutation; handles given out by `addObject` stay valid
//      for `addRoot`);
//   2. reads each pointer slot of each object through `readWord` and maps non-nil values to
//      the object containing that address (binary search); values that name no live object
//      are counted in `info.unresolvedPointers` and dropped;
//   3. sets each span's mark bits: the slots holding a live object of the snapshot;
//   4. remaps roots to object indexes, merging duplicate (object, thread) holds.
// The world must be stopped for the whole of step 2 (the caller's duty).

public struct SnapshotBuilder {
    public private(set) var snapshot = HeapSnapshot()
    var siteIndex: [UInt64: UInt32] = [:]
    var objAddress: [UInt64] = []
    var objSize: [UInt64] = []
    var objClass: [UInt8] = []
    var objPtrs: [UInt64] = []
    var objSite: [UInt32] = []
    var objID: [UInt64] = []
    var rootHandles: [(handle: Int, thread: UInt16, holds: UInt32)] = []

    public init(info: SnapshotInfo, sizeClasses: [SnapshotSizeClass]) {
        snapshot.info = info
        snapshot.sizeClasses = sizeClasses
    }

    public mutating func reserveObjects(_ n: Int) {
        objAddress.reserveCapacity(n); objSize.reserveCapacity(n); objClass.reserveCapacity(n)
        objPtrs.reserveCapacity(n); objSite.reserveCapacity(n); objID.reserveCapacity(n)
    }

    public mutating func addSite(id: UInt64, name: String) {
        guard siteIndex[id] == nil else { return }
        snapshot.sites.append(SnapshotSite(id: id, name: name))
        siteIndex[id] = UInt32(snapshot.sites.count)
    }

    public mutating func addArena(start: UInt64, bytes: UInt64) {
        snapshot.arenas.append(SnapshotArena(start: start, bytes: bytes))
    }

    /// Adds a span (spans must come in address order). `allocated` holds ceil(slots/64) words.
    public mutating func addSpan(start: UInt64, pages: Int, sizeClass: Int, noscan: Bool, cached: Bool, needzero: Bool,
                                 elemSize: Int, slots: Int, allocated: [UInt64]) {
        let words = (slots + 63) >> 6
        let offset = snapshot.allocBits.count
        for w in 0..<words { snapshot.allocBits.append(w < allocated.count ? allocated[w] : 0) }
        snapshot.markBits.append(contentsOf: repeatElement(0, count: words))
        snapshot.spans.append(SnapshotSpan(start: start, pages: UInt32(pages), sizeClass: UInt8(sizeClass), noscan: noscan,
                                           cached: cached, needzero: needzero, elemSize: UInt64(elemSize),
                                           slots: UInt32(slots), bitsOffset: offset))
    }

    /// Adds a live object; returns its handle for `addRoot`. `site` is a trace site ID
    /// declared with `addSite` (unknown IDs and nil mean no site).
    @discardableResult
    public mutating func addObject(address: UInt64, size: UInt64, sizeClass: Int, pointerSlots: UInt64,
                                   site: UInt64?, traceID: UInt64) -> Int {
        objAddress.append(address)
        objSize.append(size)
        objClass.append(UInt8(truncatingIfNeeded: sizeClass))
        objPtrs.append(pointerSlots)
        objSite.append(site.flatMap { siteIndex[$0] } ?? 0)
        objID.append(traceID)
        return objAddress.count - 1
    }

    public mutating func addRoot(object handle: Int, thread: Int, holds: Int) {
        rootHandles.append((handle, UInt16(truncatingIfNeeded: thread), UInt32(truncatingIfNeeded: holds)))
    }

    public mutating func addStatistic(_ name: String, _ value: Int) {
        snapshot.statistics.append((name: name, value: Int64(value)))
    }

    public mutating func addClassStatistics(_ row: SnapshotClassStatistics) { snapshot.classStatistics.append(row) }

    public mutating func setGCState(_ gc: SnapshotGCState) { snapshot.gc = gc }

    /// Completes the snapshot (see the file comment). `readWord(address)` returns the 8-byte
    /// word at `address` of a live object.
    public mutating func finish(readWord: (UInt64) -> UInt64) -> HeapSnapshot {
        let n = objAddress.count
        var order = Array(0..<n)
        // Objects usually arrive almost in address order (slots fill spans in order).
        let sorted = objAddress.withUnsafeBufferPointer { a in (1..<max(n, 1)).allSatisfy { a[$0 - 1] < a[$0] } }
        if !sorted { objAddress.withUnsafeBufferPointer { a in order.sort { a[$0] < a[$1] } } }
        var rank = [Int32](repeating: 0, count: n)
        for (k, i) in order.enumerated() { rank[i] = Int32(k) }
        var s = snapshot
        s.address = order.map { objAddress[$0] }
        s.size = order.map { objSize[$0] }
        s.sizeClass = order.map { objClass[$0] }
        s.pointerSlots = order.map { objPtrs[$0] }
        s.site = order.map { objSite[$0] }
        s.traceID = order.map { objID[$0] }
        objAddress = []; objSize = []; objClass = []; objPtrs = []; objSite = []; objID = []

        // Edges from memory.
        var starts = [Int](repeating: 0, count: n + 1)
        var slots: [UInt32] = []
        var targets: [Int32] = []
        var unresolved: UInt64 = 0
        s.address.withUnsafeBufferPointer { addr in
            s.size.withUnsafeBufferPointer { sizes in
                s.pointerSlots.withUnsafeBufferPointer { ptrs in
                    let index = AddressIndex(addr)
                    for i in 0..<n {
                        let p = ptrs[i]
                        if p > 0 {
                            for slot in 0..<p {
                                let word = readWord(addr[i] &+ 8 &* slot)
                                if word == 0 { continue }
                                let t = index.lookup(word, sizes: sizes)
                                guard t >= 0 else { unresolved += 1; continue }
                                slots.append(UInt32(truncatingIfNeeded: slot))
                                targets.append(Int32(t))
                            }
                        }
                        starts[i + 1] = targets.count
                    }
                }
            }
        }
        s.edgeStart = starts
        s.edgeSlot = slots
        s.edgeTarget = targets
        s.info.unresolvedPointers += unresolved

        // Mark bits: merge objects and spans, both in address order.
        var k = 0
        for i in 0..<n {
            let a = s.address[i]
            while k < s.spans.count && s.spans[k].end <= a { k += 1 }
            guard k < s.spans.count, s.spans[k].start <= a else { continue }
            let span = s.spans[k]
            let slot = Int((a - span.start) / span.elemSize)
            guard slot < Int(span.slots) else { continue }
            s.markBits[span.bitsOffset + slot >> 6] |= 1 << UInt64(slot & 63)
        }

        // Roots: object index order, one entry per (object, thread).
        var merged: [Int64: UInt32] = [:]
        for r in rootHandles where r.handle >= 0 && r.handle < n {
            let key = Int64(rank[r.handle]) << 16 | Int64(r.thread)
            merged[key, default: 0] &+= r.holds
        }
        s.roots = merged.keys.sorted().map {
            SnapshotRoot(object: Int32($0 >> 16), thread: UInt16($0 & 0xffff), holds: merged[$0]!)
        }
        rootHandles = []
        snapshot = HeapSnapshot()
        return s
    }
}

/// Address -> object index over sorted addresses: the address range is cut into buckets of
/// 2^k bytes (k >= 4, as small as keeps them at most 2n + 1024) and each bucket remembers its
/// first object, so a lookup is a binary search over the few objects of one bucket.
struct AddressIndex {
    let addr: UnsafeBufferPointer<UInt64>
    let base: UInt64
    let shift: UInt64
    let first: [Int32]

    init(_ addr: UnsafeBufferPointer<UInt64>) {
        self.addr = addr
        let n = addr.count
        base = n > 0 ? addr[0] : 0
        let range = n > 0 ? addr[n - 1] - base : 0
        // About one object per bucket (at most 2n + 1024 buckets): a lookup then touches one
        // bucket entry and one or two addresses.
        var sh: UInt64 = 4
        while (range >> sh) > UInt64(2 * n + 1024) { sh += 1 }
        shift = sh
        let buckets = Int(range >> sh) + 2
        var f = [Int32](repeating: Int32(n), count: buckets)
        var b = 0
        for i in 0..<n {
            let bi = Int((addr[i] - base) >> sh)
            while b <= bi { f[b] = Int32(i); b += 1 }
        }
        first = f
    }

    /// Index of the object containing `p`, or -1.
    @inline(__always)
    func lookup(_ p: UInt64, sizes: UnsafeBufferPointer<UInt64>) -> Int {
        guard addr.count > 0, p >= base else { return -1 }
        let b = Int((p - base) >> shift)
        guard b + 1 < first.count else {
            let last = addr.count - 1
            return p - addr[last] < sizes[last] ? last : -1
        }
        // The object containing p starts in p's bucket or before: search [first[b]-1, first[b+1]).
        var lo = max(Int(first[b]) - 1, 0), hi = Int(first[b + 1])
        while lo < hi {
            let mid = (lo + hi) >> 1
            if addr[mid] <= p { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0, p - addr[lo - 1] < sizes[lo - 1] else { return -1 }
        return lo - 1
    }
}
