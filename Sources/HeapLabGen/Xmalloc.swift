// xmalloc: producer/consumer, after Lever & Boreham's xmalloc-test (the "xmalloc-test"
// of mimalloc-bench): producer threads allocate blocks and hand them over a shared FIFO
// queue to consumer threads, which free them. Every free is a cross-thread free.
//
// Threads 0..<producers produce, the rest consume (with one thread it does both). Each
// step picks a producer (which allocates a batch of 1...64 blocks and enqueues them) or,
// when the queue is not empty, a consumer (which dequeues and frees a batch of 1...64);
// a full queue (`queue` blocks) forces a consumer. Sizes: 3 in 4 blocks are small
// (minSize...min(64, maxSize)), the rest minSize...maxSize. After `ops` allocations the
// consumers drain the queue.
//
// Valid by construction: no pointer slots, each block is freed once after its allocation.
public import HeapLabTrace

public struct Xmalloc: TraceGenerator {
    public var threads = 4
    public var ops = 100_000
    public var queue = 4096
    public var minSize: UInt64 = 8
    public var maxSize: UInt64 = 512

    public init() {}

    public func validate() -> String? {
        if threads < 1 || threads > 256 { return "--threads must be 1...256" }
        if ops < 0 || ops > 1 << 32 { return "--ops must be 0...2^32" }
        if queue < 1 || queue > 1 << 24 { return "--queue must be 1...2^24" }
        if minSize < 1 || minSize > maxSize || maxSize > TraceLimits.maxSize { return "need 1 <= --min-size <= --max-size <= 2^40" }
        return nil
    }

    public func generate(seed: UInt64, into out: inout TraceOutput) throws(InputError) {
        var random = GenRandom(seed: seed)
        try out.site(1, "xmalloc block")
        let producers = max(1, threads / 2)
        let consumers = threads - producers
        func consumerThread(_ r: inout GenRandom) -> UInt64 {
            consumers == 0 ? 0 : UInt64(producers + r.index(consumers))
        }
        // FIFO ring of block IDs.
        var ring = [UInt64](repeating: 0, count: queue)
        var head = 0, count = 0
        var produced = 0
        let smallMax = min(max(64, minSize), maxSize)
        while produced < ops || count > 0 {
            let produce = produced < ops && count < queue && (count == 0 || random.chance(1, in: 2))
            if produce {
                out.thread(UInt64(random.index(producers)))
                let batch = min(Int(random.inRange(1, 64)), ops - produced, queue - count)
                for _ in 0..<batch {
                    let size = random.chance(3, in: 4) ? random.inRange(minSize, smallMax) : random.inRange(minSize, maxSize)
                    ring[(head + count) % queue] = try out.alloc(size: size, site: 1)
                    count += 1
                }
                produced += batch
            } else {
                out.thread(consumerThread(&random))
                let batch = min(Int(random.inRange(1, 64)), count)
                for _ in 0..<batch {
                    try out.free(ring[head])
                    head = (head + 1) % queue
                    count -= 1
                }
            }
        }
    }
}
