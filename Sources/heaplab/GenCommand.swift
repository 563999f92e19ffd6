// `heaplab gen NAME --seed N -o OUT [--text|--binary] [options]`: writes a synthetic trace
// (HeapLabGen does the work; docs/generators.md describes each generator). The same name,
// options and seed always give the same bytes. Options that do not apply to the chosen
// generator are rejected rather than silently ignored.
import ArgumentParser
import HeapLabGen
import HeapLabTrace

struct GenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "Write a deterministic synthetic trace (gcbench, binary-trees, larson, xmalloc, lru, random-graph).",
        discussion: """
            gcbench: --stretch-depth --long-lived-depth --min-depth --max-depth --array-size
            binary-trees: --depth --threads
            larson: --threads --objects --ops --rounds --min-size --max-size
            xmalloc: --threads --ops --queue --min-size --max-size
            lru: --threads --capacity --keys --ops --buckets
            random-graph: --threads --ops --roots
            See docs/generators.md.
            """)

    @Argument(help: "Generator: \(GeneratorName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var name: String

    @Option(help: "Seed for the generator's random choices.")
    var seed: UInt64

    @OptionGroup var output: TraceOutputOptions

    @Option(help: "Mutator threads.") var threads: Int?
    @Option(help: "Operations (steps) to generate.") var ops: Int?
    @Option(help: "binary-trees: maximum tree depth.") var depth: Int?
    @Option(help: "gcbench: stretch tree depth.") var stretchDepth: Int?
    @Option(help: "gcbench: long-lived tree depth.") var longLivedDepth: Int?
    @Option(help: "gcbench: smallest tree depth.") var minDepth: Int?
    @Option(help: "gcbench: largest tree depth.") var maxDepth: Int?
    @Option(help: "gcbench: elements of the long-lived double array.") var arraySize: UInt64?
    @Option(help: "larson: live blocks per thread.") var objects: Int?
    @Option(help: "larson: rounds (each hands every block array to another thread).") var rounds: Int?
    @Option(help: "larson, xmalloc: smallest block size.") var minSize: UInt64?
    @Option(help: "larson, xmalloc: largest block size.") var maxSize: UInt64?
    @Option(help: "xmalloc: producer/consumer queue length.") var queue: Int?
    @Option(help: "lru: cache capacity per thread.") var capacity: Int?
    @Option(help: "lru: distinct keys requested.") var keys: Int?
    @Option(help: "lru: hash buckets.") var buckets: Int?
    @Option(help: "random-graph: most roots (holds) per thread.") var roots: Int?

    /// The configured generator, or a usage problem.
    func makeGenerator() throws -> any TraceGenerator {
        guard let kind = GeneratorName(rawValue: name) else {
            throw ValidationError("unknown generator '\(name)' (one of: \(GeneratorName.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var used: Set<String> = []
        func take<T>(_ value: T?, _ flag: String, into target: inout T) {
            if let value { target = value; used.insert(flag) }
        }
        let generator: any TraceGenerator
        switch kind {
        case .gcbench:
            var g = GCBench()
            take(stretchDepth, "--stretch-depth", into: &g.stretchDepth)
            take(longLivedDepth, "--long-lived-depth", into: &g.longLivedDepth)
            take(minDepth, "--min-depth", into: &g.minDepth)
            take(maxDepth, "--max-depth", into: &g.maxDepth)
            take(arraySize, "--array-size", into: &g.arraySize)
            generator = g
        case .binaryTrees:
            var g = BinaryTrees()
            take(depth, "--depth", into: &g.depth)
            take(threads, "--threads", into: &g.threads)
            generator = g
        case .larson:
            var g = Larson()
            take(threads, "--threads", into: &g.threads)
            take(objects, "--objects", into: &g.objects)
            take(ops, "--ops", into: &g.ops)
            take(rounds, "--rounds", into: &g.rounds)
            take(minSize, "--min-size", into: &g.minSize)
            take(maxSize, "--max-size", into: &g.maxSize)
            generator = g
        case .xmalloc:
            var g = Xmalloc()
            take(threads, "--threads", into: &g.threads)
            take(ops, "--ops", into: &g.ops)
            take(queue, "--queue", into: &g.queue)
            take(minSize, "--min-size", into: &g.minSize)
            take(maxSize, "--max-size", into: &g.maxSize)
            generator = g
        case .lru:
            var g = LRUCache()
            take(threads, "--threads", into: &g.threads)
            take(capacity, "--capacity", into: &g.capacity)
            take(keys, "--keys", into: &g.keys)
            take(ops, "--ops", into: &g.ops)
            take(buckets, "--buckets", into: &g.buckets)
            generator = g
        case .randomGraph:
            var g = RandomGraph()
            take(threads, "--threads", into: &g.threads)
            take(ops, "--ops", into: &g.ops)
            take(roots, "--roots", into: &g.roots)
            generator = g
        }
        let given: [(Bool, String)] = [
            (threads != nil, "--threads"), (ops != nil, "--ops"), (depth != nil, "--depth"),
            (stretchDepth != nil, "--stretch-depth"), (longLivedDepth != nil, "--long-lived-depth"),
            (minDepth != nil, "--min-depth"), (maxDepth != nil, "--max-depth"), (arraySize != nil, "--array-size"),
            (objects != nil, "--objects"), (rounds != nil, "--rounds"), (minSize != nil, "--min-size"),
            (maxSize != nil, "--max-size"), (queue != nil, "--queue"), (capacity != nil, "--capacity"),
            (keys != nil, "--keys"), (buckets != nil, "--buckets"), (roots != nil, "--roots"),
        ]
        for (isGiven, flag) in given where isGiven && !used.contains(flag) {
            throw ValidationError("\(flag) does not apply to \(name)")
        }
        if let problem = generator.validate() { throw ValidationError(problem) }
        return generator
    }

    func validate() throws {
        _ = try makeGenerator()
    }

    func run() throws {
        let generator = try makeGenerator()
        try reportingInputErrors {
            let writer = try TraceWriter(path: output.output, encoding: output.traceEncoding, zstd: output.zstd)
            do throws(InputError) {
                _ = try generator.run(seed: seed) { record throws(InputError) in try writer.write(record) }
                try writer.finish()
            } catch {
                writer.abandon()
                throw error
            }
        }
    }
}
