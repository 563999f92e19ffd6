// larson: server-style churn after Larson & Krishnan, "Memory allocation for long-running
// server applications" (ISMM 1998), as mimalloc-bench and Hoard run it.
//
// `threads` chains each own an array of `objects` live blocks. After a warm-up that fills
// every array, each step picks a chain and a random slot, frees the block there and
// allocates a new one of a random size in minSize...maxSize. The run is cut into `rounds`;
// in round r chain c runs on thread (c + r) mod threads, as the benchmark hands each
// thread's array to a new thread: a block allocated in one round is typically freed by a
// different thread in a later one (cross-thread frees). Chains take turns in random order,
// a random batch of 1...32 steps at a time. At the end every block is freed.
//
// Valid by construction: no pointer slots, each block is freed exactly once, by whoever
// holds its slot.
public import HeapLabTrace

public struct Larson: TraceGenerator {
    public var threads = 4
    public var objects = 1000
    public var ops = 100_000
    public var rounds = 10
    public var minSize: UInt64 = 8
    public var maxSize: UInt64 = 1000

    public init() {}

    public func validate() -> String? {
        if threads < 1 || threads > 256 { return "--threads must be 1...256" }
        if objects < 1 || objects > 1 << 24 { return "--objects must be 1...2^24" }
        if ops < 0 || ops > 1 << 32 { return "--ops must be 0...2^32" }
        if rounds < 1 { return "--rounds must be at least 1" }
        if minSize < 1 || minSize > maxSize || maxSize > TraceLimits.maxSize { return "need 1 <= --min-size <= --max-size <= 2^40" }
        return nil
    }

    public func generate(seed: UInt64, into out: inout TraceOutput) throws(InputError) {
        var random = GenRandom(seed: seed)
        try out.site(1, "larson block")
        var slots = [UInt64](repeating: 0, count: threads * objects)
        for chain in 0..<threads {
            out.thread(UInt64(chain))
            for i in 0..<objects {
                slots[chain * objects + i] = try out.alloc(size: random.inRange(minSize, maxSize), site: 1)
            }
        }
        let perRound = max(1, (ops + rounds - 1) / rounds)
        var done = 0
        while done < ops {
            let round = done / perRound
            let chain = random.index(threads)
            out.thread(UInt64((chain + round) % threads))
            let batch = min(Int(random.inRange(1, 32)), ops - done, perRound - done % perRound)
            for _ in 0..<batch {
                let slot = chain * objects + random.index(objects)
                try out.free(slots[slot])
                slots[slot] = try out.alloc(size: random.inRange(minSize, maxSize), site: 1)
            }
            done += batch
        }
        for chain in 0..<threads {
            out.thread(UInt64((chain + max(0, done - 1) / perRound) % threads))
            for i in 0..<objects { try out.free(slots[chain * objects + i]) }
        }
    }
}
