// The generators' random numbers: xoshiro256** seeded through SplitMix64.
//
// Every generator draws from this one source, never from SystemRandomNumberGenerator, so a
// seed fixes a trace byte for byte on every machine and Swift version. Only integer
// arithmetic is used (no floating point), for the same reason.
//
// References: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2021)
// for xoshiro256** and SplitMix64; Lemire, "Fast random integer generation in an interval"
// (2019) for unbiased bounded draws.

/// A small, fast, seedable pseudo-random generator (xoshiro256**).
public struct GenRandom: Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Expands `seed` into the 256-bit state with SplitMix64 (so seed 0 is fine).
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = Self.rotl(s3, 45)
        return result
    }

    /// Uniform in 0..<bound (bound > 0), without modulo bias.
    public mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0, "empty range")
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }

    /// Uniform in 0..<bound for Int bounds.
    public mutating func index(_ bound: Int) -> Int { Int(below(UInt64(bound))) }

    /// Uniform in low...high.
    public mutating func inRange(_ low: UInt64, _ high: UInt64) -> UInt64 {
        low + below(high - low + 1)
    }

    /// True with probability numerator/denominator.
    public mutating func chance(_ numerator: UInt64, in denominator: UInt64) -> Bool {
        below(denominator) < numerator
    }
}
