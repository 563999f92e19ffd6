// The address map of the malloc-style importers: heap address -> trace object ID.
//
// Open addressing with linear probing over two parallel unsafe arrays (keys, values),
// power-of-two capacity, grown before the load factor passes 1/2. Deletion shifts the
// following entries of the probe run back (no tombstones), so lookups stay short however
// many frees a trace has.
//
// Invariants:
//   - key 0 marks an empty slot; address 0 is never a live allocation (malloc's failure
//     value), so callers never insert it.
//   - every stored key sits in the probe run that starts at its home slot, with no empty
//     slot between its home and its position.
//   - count * 2 <= capacity.

import HeapLabTrace

/// A hash map from UInt64 keys (never 0) to UInt64 values, without Swift collections.
struct AddressTable: ~Copyable {
    private var keys: UnsafeMutablePointer<UInt64>
    private var values: UnsafeMutablePointer<UInt64>
    private var capacity: Int
    private var shift: UInt64
    private(set) var count = 0

    init(minimumCapacity: Int = 1 << 12) {
        var capacity = 16
        while capacity < minimumCapacity { capacity <<= 1 }
        self.capacity = capacity
        shift = UInt64(64 - capacity.trailingZeroBitCount)
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: 0, count: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(repeating: 0, count: capacity)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The value stored for `key`, or nil.
    func find(_ key: UInt64) -> UInt64? {
        let mask = capacity - 1
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key { return values[i] }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// Stores `value` for `key` and returns the value it replaces, if any.
    @discardableResult
    mutating func insert(_ key: UInt64, _ value: UInt64) -> UInt64? {
        precondition(key != 0, "address 0 is never a live allocation")
        if (count + 1) * 2 > capacity { grow() }
        let mask = capacity - 1
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key {
                let old = values[i]
                values[i] = value
                return old
            }
            if k == 0 {
                keys[i] = key
                values[i] = value
                count += 1
                return nil
            }
            i = (i + 1) & mask
        }
    }

    /// Removes `key` and returns its value, or nil if it was absent.
    mutating func remove(_ key: UInt64) -> UInt64? {
        let mask = capacity - 1
        var i = home(key)
        while true {
            let k = keys[i]
            if k == 0 { return nil }
            if k == key { break }
            i = (i + 1) & mask
        }
        let removed = values[i]
        // Backward-shift deletion: pull later members of the run into the hole when the
        // hole lies between their home slot and their current slot (cyclically).
        var hole = i
        var j = (i + 1) & mask
        while keys[j] != 0 {
            let h = home(keys[j])
            let distanceToJ = (j &- h) & mask
            let distanceToHole = (hole &- h) & mask
            if distanceToHole <= distanceToJ {
                keys[hole] = keys[j]
                values[hole] = values[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        keys[hole] = 0
        values[hole] = 0
        count -= 1
        return removed
    }

    /// Every (key, value) pair, in no particular order.
    func forEach(_ body: (UInt64, UInt64) throws(InputError) -> Void) throws(InputError) {
        for i in 0..<capacity where keys[i] != 0 {
            try body(keys[i], values[i])
        }
    }

    mutating func removeAll() {
        keys.update(repeating: 0, count: capacity)
        count = 0
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let oldCapacity = capacity
        capacity <<= 1
        shift -= 1
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: 0, count: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(repeating: 0, count: capacity)
        let mask = capacity - 1
        for i in 0..<oldCapacity where oldKeys[i] != 0 {
            var j = home(oldKeys[i])
            while keys[j] != 0 { j = (j + 1) & mask }
            keys[j] = oldKeys[i]
            values[j] = oldValues[i]
        }
        oldKeys.deallocate()
        oldValues.deallocate()
    }
}
