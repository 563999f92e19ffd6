// The generator registry: every synthetic workload `heaplab gen NAME` can write.
//
// A generator is a value holding its parameters; `generate(seed:into:)` writes one
// complete, valid trace (header first) through a TraceOutput. Generators draw randomness
// only from GenRandom(seed:), so the same parameters and seed give the same records, and
// therefore the same bytes in either encoding. `validate()` checks parameters before any
// output is created. See docs/generators.md.
public import HeapLabTrace

/// A deterministic synthetic trace.
public protocol TraceGenerator: Sendable {
    /// A problem with the parameters, or nil.
    func validate() -> String?
    /// Writes the whole trace for `seed`.
    func generate(seed: UInt64, into out: inout TraceOutput) throws(InputError)
}

/// The generators by command-line name.
public enum GeneratorName: String, CaseIterable, Sendable {
    case binaryTrees = "binary-trees"
    case gcbench
    case larson
    case xmalloc
    case lru
    case randomGraph = "random-graph"
}

extension TraceGenerator {
    /// Runs the generator into `put` (header included).
    public func run(seed: UInt64, _ put: @escaping (TraceRecord) throws(InputError) -> Void) throws(InputError) -> Int {
        var out = try TraceOutput(put)
        try generate(seed: seed, into: &out)
        return out.records
    }

    /// All records in memory (tests, small traces).
    public func records(seed: UInt64) throws(InputError) -> [TraceRecord] {
        let box = RecordBox()
        _ = try run(seed: seed) { record throws(InputError) in box.records.append(record) }
        return box.records
    }
}

private final class RecordBox {
    var records: [TraceRecord] = []
}
