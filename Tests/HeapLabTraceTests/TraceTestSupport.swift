// Helpers shared by the trace tests: temporary files, reading whole traces, a seeded
// random generator (tests are reproducible), and random syntactically valid records.
import Foundation
@testable import HeapLabTrace

/// A fresh temporary directory, removed by `cleanup()`.
struct TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("heaplab-trace-tests-\(getpid())-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func write(_ name: String, _ text: String) -> String {
        let p = path(name)
        try! Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }
    func write(_ name: String, bytes: [UInt8]) -> String {
        let p = path(name)
        try! Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }
    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

func readBytes(_ path: String) -> [UInt8] {
    [UInt8](FileManager.default.contents(atPath: path) ?? Data())
}

func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

/// Reads every record of an in-memory trace.
func readAll(_ bytes: [UInt8], name: String = "t") throws(InputError) -> [TraceRecord] {
    var reader = try TraceReader(bytes: bytes, name: name)
    var out: [TraceRecord] = []
    while let r = try reader.next() { out.append(r) }
    return out
}

func readAll(_ text: String, name: String = "t") throws(InputError) -> [TraceRecord] {
    try readAll(Array(text.utf8), name: name)
}

/// The error an in-memory trace produces, or nil if it reads cleanly.
func readError(_ bytes: [UInt8], name: String = "t") -> InputError? {
    do { _ = try readAll(bytes, name: name); return nil } catch { return error }
}

func readError(_ text: String, name: String = "t") -> InputError? {
    readError(Array(text.utf8), name: name)
}

/// Encodes records with `TraceWriter` into a temporary file and returns the bytes.
func encode(_ records: [TraceRecord], _ encoding: TraceEncoding, dir: TempDir,
            name: String = "enc") throws(InputError) -> [UInt8] {
    let path = dir.path(name)
    let writer = try TraceWriter(path: path, encoding: encoding)
    for r in records { try writer.write(r) }
    try writer.finish()
    return readBytes(path)
}

/// SplitMix64: small, fast, seeded.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random number with a random magnitude (small values, edge values, full range).
func randomNumber(_ rng: inout SeededRandom) -> UInt64 {
    switch rng.next() % 6 {
    case 0: return rng.next() % 10
    case 1: return rng.next() % 1000
    case 2: return UInt64.max - rng.next() % 3
    case 3: return rng.next() >> (rng.next() % 64)
    default: return rng.next() % 100_000
    }
}

/// A random record that passes every syntax rule (not necessarily the semantic ones).
func randomSyntacticRecord(_ rng: inout SeededRandom) -> TraceRecord {
    switch rng.next() % 9 {
    case 0:
        let alphabet = Array("abcXYZ09 _[]*<>:.\t-")
        var name = ""
        for _ in 0..<(1 + rng.next() % 20) { name.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
        name = "N" + name + "e"
        return .site(id: randomNumber(&rng), name: name)
    case 1: return .thread(rng.next() % 256)
    case 2, 3:
        let size = 1 + rng.next() % (rng.next() % 2 == 0 ? 4096 : TraceLimits.maxSize)
        let ptrs = rng.next() % 3 == 0 ? 0 : rng.next() % (size / 8 + 1)
        let site: UInt64? = rng.next() % 2 == 0 ? nil : randomNumber(&rng)
        return .alloc(id: randomNumber(&rng), size: size, ptrs: ptrs, site: site)
    case 4: return .free(id: randomNumber(&rng))
    case 5: return .hold(id: randomNumber(&rng))
    case 6: return .write(src: randomNumber(&rng), slot: randomNumber(&rng),
                          dst: rng.next() % 3 == 0 ? nil : randomNumber(&rng))
    default: return .realloc(id: randomNumber(&rng), size: 1 + rng.next() % TraceLimits.maxSize)
    }
}
