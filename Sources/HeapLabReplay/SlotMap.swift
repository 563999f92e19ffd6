// The load phase's hash map from a 64-bit key (trace object ID, or allocation ordinal) to a
// 32-bit slot, over raw memory.
//
// Swift's Dictionary hashes with SipHash and checks uniqueness on every write; lowering does
// two or three lookups per record, so it gets this instead: open addressing with linear
// probing, a multiplicative (Fibonacci) hash, capacity a power of two kept at most half
// full, and deletion by backward shift (no tombstones, so probe sequences never rot).
//
// Invariants: `count <= capacity / 2`; every key sits in the run of occupied cells that
// starts at its home cell; an empty cell is marked by `UInt32.max` in `values` (slot numbers
// never reach it, see ReplayOp.maxSlot).

struct SlotMap {
    private var keys: UnsafeMutablePointer<UInt64>
    private var values: UnsafeMutablePointer<UInt32>
    private var mask: Int
    private var shift: UInt64
    private(set) var count = 0
    static let empty = UInt32.max

    init(capacity: Int = 1024) {
        var c = 16
        while c < capacity { c <<= 1 }
        keys = .allocate(capacity: c)
        values = .allocate(capacity: c)
        values.initialize(repeating: Self.empty, count: c)
        mask = c - 1
        shift = UInt64(64 - c.trailingZeroBitCount)
    }

    func deallocate() {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    @inline(__always)
    func get(_ key: UInt64) -> UInt32? {
        var i = home(key)
        while true {
            let v = values[i]
            if v == Self.empty { return nil }
            if keys[i] == key { return v }
            i = (i &+ 1) & mask
        }
    }

    /// Inserts or replaces.
    mutating func set(_ key: UInt64, _ value: UInt32) {
        if (count + 1) * 2 > mask + 1 { grow() }
        var i = home(key)
        while values[i] != Self.empty {
            if keys[i] == key { values[i] = value; return }
            i = (i &+ 1) & mask
        }
        keys[i] = key
        values[i] = value
        count += 1
    }

    /// Removes `key` if present.
    mutating func remove(_ key: UInt64) {
        var i = home(key)
        while true {
            if values[i] == Self.empty { return }
            if keys[i] == key { break }
            i = (i &+ 1) & mask
        }
        // Backward shift: pull later members of the run into the hole when their home
        // cell does not lie (cyclically) after the hole.
        var hole = i
        var j = (i &+ 1) & mask
        while values[j] != Self.empty {
            let h = home(keys[j])
            let distanceToJ = (j &- h) & mask
            let distanceToHole = (hole &- h) & mask
            if distanceToHole <= distanceToJ {
                keys[hole] = keys[j]
                values[hole] = values[j]
                hole = j
            }
            j = (j &+ 1) & mask
        }
        values[hole] = Self.empty
        count -= 1
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values, oldCapacity = mask + 1
        let c = oldCapacity * 2
        keys = .allocate(capacity: c)
        values = .allocate(capacity: c)
        values.initialize(repeating: Self.empty, count: c)
        mask = c - 1
        shift = UInt64(64 - c.trailingZeroBitCount)
        count = 0
        for i in 0..<oldCapacity where oldValues[i] != Self.empty { set(oldKeys[i], oldValues[i]) }
        oldKeys.deallocate()
        oldValues.deallocate()
    }
}
