// lru: a key/value cache in steady state, kept as a real pointer graph.
//
// Each of `threads` shards is one cache on its own thread:
//
//   Cache   (3 slots: 0 head, 1 tail, 2 buckets)          held for the whole run
//   Buckets (one slot per bucket: the first entry of its chain)
//   Entry   (5 slots: 0 prev, 1 next, 2 chain, 3 key, 4 value; 48 bytes)
//   Key     (pointer-free, 16...48 bytes)    Value (pointer-free, 32...2048 bytes)
//
// A request for key k (8 in 10 requests go to the hottest fifth of the key space): a hit
// moves the entry to the front of the recency list (the `w` records of a doubly linked
// list unlink and relink), and one hit in four replaces the value (`a`, `w entry 4 value`,
// `f`: the old value dies). A miss allocates key, value and entry, links the entry into
// its bucket chain and at the list front, and, over capacity, evicts the tail: unlinked
// from its bucket chain and from the list, the entry dies with its key and value; those
// deaths are what the lifetime oracle finds. The first `capacity` distinct misses warm the
// cache up; `ops` requests follow. At the end each shard drops its Cache hold.
//
// Valid by construction: every object named is either held (a new object before its `f`,
// the Cache) or linked into its shard's structure, which hangs off the held Cache; an
// evicted entry is never named after its last link is cut.
public import HeapLabTrace

public struct LRUCache: TraceGenerator {
    public var threads = 1
    public var capacity = 1000
    public var keys = 4000
    public var ops = 50_000
    public var buckets = 512

    static let cacheSite: UInt64 = 1, bucketSite: UInt64 = 2, entrySite: UInt64 = 3
    static let keySite: UInt64 = 4, valueSite: UInt64 = 5

    public init() {}

    public func validate() -> String? {
        if threads < 1 || threads > 256 { return "--threads must be 1...256" }
        if capacity < 1 || capacity > 1 << 24 { return "--capacity must be 1...2^24" }
        if keys <= capacity || keys > 1 << 30 { return "--keys must be above --capacity (and at most 2^30)" }
        if buckets < 1 || buckets > 1 << 24 { return "--buckets must be 1...2^24" }
        if ops < 0 || ops > 1 << 32 { return "--ops must be 0...2^32" }
        return nil
    }

    /// One shard's model of its cache (what the program's memory holds).
    struct Shard {
        let thread: UInt64
        var cache: UInt64 = 0
        var bucketArray: UInt64 = 0
        var head: Int = -1, tail: Int = -1
        var bucketHead: [Int]
        var entryOf: [Int: Int] = [:]          // key -> entry index
        var id: [UInt64] = [], key: [Int] = []
        var prev: [Int] = [], next: [Int] = [], chain: [Int] = []
        var freeEntries: [Int] = []
        var count = 0
        var random: GenRandom

        init(thread: UInt64, buckets: Int, seed: UInt64) {
            self.thread = thread
            bucketHead = [Int](repeating: -1, count: buckets)
            random = GenRandom(seed: seed)
        }
    }

    public func generate(seed: UInt64, into out: inout TraceOutput) throws(InputError) {
        var master = GenRandom(seed: seed)
        try out.site(Self.cacheSite, "Cache")
        try out.site(Self.bucketSite, "Bucket[]")
        try out.site(Self.entrySite, "Entry")
        try out.site(Self.keySite, "Key")
        try out.site(Self.valueSite, "Value")
        var shards: [Shard] = []
        for t in 0..<threads {
            var shard = Shard(thread: UInt64(t), buckets: buckets, seed: master.next())
            out.thread(shard.thread)
            shard.cache = try out.alloc(size: 32, ptrs: 3, site: Self.cacheSite)
            shard.bucketArray = try out.alloc(size: UInt64(buckets) * 8, ptrs: UInt64(buckets), site: Self.bucketSite)
            try out.write(shard.cache, 2, shard.bucketArray)
            try out.free(shard.bucketArray)
            // Warm-up: fill to capacity with distinct keys.
            var k = 0
            while shard.count < capacity {
                // 2654435761 is prime and keys <= 2^30, so this visits every key.
                try request(&shard, key: Int((UInt64(k) &* 2_654_435_761) % UInt64(keys)), &out)
                k += 1
            }
            shards.append(shard)
        }
        var done = 0
        while done < ops {
            let s = master.index(threads)
            let batch = min(Int(master.inRange(1, 64)), ops - done)
            out.thread(shards[s].thread)
            for _ in 0..<batch {
                let hot = shards[s].random.chance(8, in: 10)
                let k = hot ? shards[s].random.index(max(1, keys / 5)) : shards[s].random.index(keys)
                try request(&shards[s], key: k, &out)
            }
            done += batch
        }
        for shard in shards {
            out.thread(shard.thread)
            try out.free(shard.cache)
        }
    }

    private func bucket(of key: Int) -> Int {
        Int((UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 40) % buckets
    }

    private func request(_ s: inout Shard, key: Int, _ out: inout TraceOutput) throws(InputError) {
        if let e = s.entryOf[key] {
            try moveToFront(&s, e, &out)
            if s.random.chance(1, in: 4) {
                let value = try out.alloc(size: s.random.inRange(32, 2048), site: Self.valueSite)
                try out.write(s.id[e], 4, value)
                try out.free(value)
            }
            return
        }
        // Miss: build the entry while it is held, then link it in.
        let e: Int
        if let reused = s.freeEntries.popLast() {
            e = reused
        } else {
            e = s.id.count
            s.id.append(0); s.key.append(0); s.prev.append(-1); s.next.append(-1); s.chain.append(-1)
        }
        let entry = try out.alloc(size: 48, ptrs: 5, site: Self.entrySite)
        s.id[e] = entry
        s.key[e] = key
        let keyObject = try out.alloc(size: s.random.inRange(16, 48), site: Self.keySite)
        try out.write(entry, 3, keyObject)
        try out.free(keyObject)
        let value = try out.alloc(size: s.random.inRange(32, 2048), site: Self.valueSite)
        try out.write(entry, 4, value)
        try out.free(value)
        let b = bucket(of: key)
        s.chain[e] = s.bucketHead[b]
        if s.chain[e] >= 0 { try out.write(entry, 2, s.id[s.chain[e]]) }
        s.bucketHead[b] = e
        try out.write(s.bucketArray, UInt64(b), entry)
        s.prev[e] = -1
        s.next[e] = -1
        try pushFront(&s, e, &out)
        try out.free(entry)
        s.entryOf[key] = e
        s.count += 1
        if s.count > capacity { try evictTail(&s, &out) }
    }

    private func pushFront(_ s: inout Shard, _ e: Int, _ out: inout TraceOutput) throws(InputError) {
        let oldHead = s.head
        s.prev[e] = -1
        s.next[e] = oldHead
        if oldHead >= 0 {
            try out.write(s.id[e], 1, s.id[oldHead])
            s.prev[oldHead] = e
            try out.write(s.id[oldHead], 0, s.id[e])
        } else {
            s.tail = e
            try out.write(s.cache, 1, s.id[e])
        }
        s.head = e
        try out.write(s.cache, 0, s.id[e])
    }

    /// Unlinks `e` from the recency list (it stays reachable through its bucket chain).
    private func unlink(_ s: inout Shard, _ e: Int, _ out: inout TraceOutput) throws(InputError) {
        let p = s.prev[e], n = s.next[e]
        if p >= 0 {
            try out.write(s.id[p], 1, n >= 0 ? s.id[n] : nil)
            s.next[p] = n
        } else {
            s.head = n
            try out.write(s.cache, 0, n >= 0 ? s.id[n] : nil)
        }
        if n >= 0 {
            try out.write(s.id[n], 0, p >= 0 ? s.id[p] : nil)
            s.prev[n] = p
        } else {
            s.tail = p
            try out.write(s.cache, 1, p >= 0 ? s.id[p] : nil)
        }
        if s.prev[e] >= 0 { try out.write(s.id[e], 0, nil) }
        if s.next[e] >= 0 { try out.write(s.id[e], 1, nil) }
        s.prev[e] = -1
        s.next[e] = -1
    }

    private func moveToFront(_ s: inout Shard, _ e: Int, _ out: inout TraceOutput) throws(InputError) {
        if s.head == e { return }
        try unlink(&s, e, &out)
        try pushFront(&s, e, &out)
    }

    private func evictTail(_ s: inout Shard, _ out: inout TraceOutput) throws(InputError) {
        let t = s.tail
        // Cut the bucket-chain link first: the entry stays reachable through the list.
        let b = bucket(of: s.key[t])
        if s.bucketHead[b] == t {
            s.bucketHead[b] = s.chain[t]
            try out.write(s.bucketArray, UInt64(b), s.chain[t] >= 0 ? s.id[s.chain[t]] : nil)
        } else {
            var p = s.bucketHead[b]
            while s.chain[p] != t { p = s.chain[p] }
            s.chain[p] = s.chain[t]
            try out.write(s.id[p], 2, s.chain[t] >= 0 ? s.id[s.chain[t]] : nil)
        }
        // Then the list links; the last cut is where the entry (and its key, value) dies.
        let p = s.prev[t]
        if p >= 0 {
            s.next[p] = -1
            try out.write(s.id[p], 1, nil)
        } else {
            s.head = -1
            try out.write(s.cache, 0, nil)
        }
        s.tail = p
        try out.write(s.cache, 1, p >= 0 ? s.id[p] : nil)
        s.entryOf.removeValue(forKey: s.key[t])
        s.chain[t] = -1
        s.prev[t] = -1
        s.freeEntries.append(t)
        s.count -= 1
    }
}
