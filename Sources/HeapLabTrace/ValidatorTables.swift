// Plain-memory tables behind TraceValidator: a growable buffer and an open-addressing hash
// index. They exist so the validator's per-record work touches only unsafe pointers (no
// Swift Array uniqueness checks, no class-property exclusivity checks; see STYLE.md).
//
// RawBuffer<T>: count <= capacity; elements [0, count) are initialized; growth doubles.
// Only trivial (POD) element types are stored, so nothing needs deinitializing.
//
// HashIndex<Key>: linear probing, power-of-two capacity, load factor <= 1/2, values are
// Int32 with -1 marking an empty bucket. Deletion shifts later entries of the probe run
// back (no tombstones), so lookups stay short however many deletions happen.
// Invariant: every key is stored in the probe run that starts at its home bucket.

struct RawBuffer<T> {
    private(set) var base: UnsafeMutablePointer<T>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int = 16) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    func deallocate() { base.deallocate() }

    @inline(__always)
    subscript(i: Int) -> T {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }

    @inline(__always)
    mutating func append(_ v: T) {
        if count == capacity { grow() }
        (base + count).initialize(to: v)
        count += 1
    }

    @inline(__always)
    mutating func popLast() -> T? {
        if count == 0 { return nil }
        count -= 1
        return base[count]
    }

    mutating func removeAll() { count = 0 }

    @inline(never)
    private mutating func grow() {
        let newCapacity = capacity * 2
        let newBase = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
        newBase.moveInitialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    var buffer: UnsafeMutableBufferPointer<T> { UnsafeMutableBufferPointer(start: base, count: count) }
}

protocol HashIndexKey: Equatable {
    var hash64: UInt64 { get }
}

extension UInt64: HashIndexKey {
    @inline(__always) var hash64: UInt64 { self }
}

/// A pointer slot of an object: (dense object index, slot number).
struct SlotKey: HashIndexKey {
    var object: Int32
    var slot: UInt64
    @inline(__always) var hash64: UInt64 {
        (UInt64(UInt32(bitPattern: object)) &* 0xC2B2_AE3D_27D4_EB4F) ^ slot
    }
}

struct HashIndex<Key: HashIndexKey> {
    private var keys: UnsafeMutablePointer<Key>
    private var values: UnsafeMutablePointer<Int32>
    private var mask: Int
    private var shift: UInt64
    private(set) var count = 0

    init() {
        let capacity = 16
        keys = .allocate(capacity: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(repeating: -1, count: capacity)
        mask = capacity - 1
        shift = 64 - 4
    }

    func deallocate() {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    private func home(_ key: Key) -> Int {
        Int(truncatingIfNeeded: (key.hash64 &* 0x9E37_79B9_7F4A_7C15) &>> shift)
    }

    /// The value stored for `key`, or -1.
    @inline(__always)
    func find(_ key: Key) -> Int32 {
        var i = home(key)
        while true {
            let v = values[i]
            if v < 0 || keys[i] == key { return v }
            i = (i &+ 1) & mask
        }
    }

    /// Stores `key` -> `value`; `key` must be absent.
    @inline(__always)
    mutating func insert(_ key: Key, _ value: Int32) {
        if (count + 1) * 2 > mask + 1 { grow() }
        var i = home(key)
        while values[i] >= 0 { i = (i &+ 1) & mask }
        (keys + i).initialize(to: key)
        values[i] = value
        count += 1
    }

    /// Removes `key`, which must be present.
    mutating func remove(_ key: Key) {
        var i = home(key)
        while !(values[i] >= 0 && keys[i] == key) { i = (i &+ 1) & mask }
        // Backward-shift deletion: move later members of the run into the hole when their
        // home bucket is not in (hole, position].
        var j = i
        while true {
            j = (j &+ 1) & mask
            if values[j] < 0 { break }
            let k = home(keys[j])
            let stays = i <= j ? (i < k && k <= j) : (i < k || k <= j)
            if stays { continue }
            keys[i] = keys[j]
            values[i] = values[j]
            i = j
        }
        values[i] = -1
        count -= 1
    }

    @inline(never)
    private mutating func grow() {
        let oldKeys = keys, oldValues = values, oldCapacity = mask + 1
        let capacity = oldCapacity * 2
        keys = .allocate(capacity: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(repeating: -1, count: capacity)
        mask = capacity - 1
        shift -= 1
        for i in 0..<oldCapacity where oldValues[i] >= 0 {
            var j = home(oldKeys[i])
            while values[j] >= 0 { j = (j &+ 1) & mask }
            (keys + j).initialize(to: oldKeys[i])
            values[j] = oldValues[i]
        }
        oldKeys.deallocate()
        oldValues.deallocate()
    }
}
