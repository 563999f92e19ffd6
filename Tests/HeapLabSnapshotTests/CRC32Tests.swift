// CRC-32 against its published check value and a bitwise reference, at every length and
// alignment the slicing loop can see.
import Testing
@testable import HeapLabSnapshot

@Suite struct CRC32Tests {
    @Test func checkValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
    }

    /// Bit-at-a-time CRC-32, the definition.
    static func reference(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return ~c
    }

    @Test func matchesBitwiseReferenceAtEveryLengthAndOffset() {
        var state: UInt64 = 0x1234_5678_9abc_def1
        let data: [UInt8] = (0..<300).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
        for start in 0..<9 {
            for end in stride(from: start, through: data.count, by: 7) {
                let got = data.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
                #expect(got == Self.reference(data[start..<end]))
            }
        }
        // Incremental update equals one pass.
        let whole = CRC32.checksum(data)
        let split = data.withUnsafeBytes { raw in
            CRC32.update(CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<101])), UnsafeRawBufferPointer(rebasing: raw[101...]))
        }
        #expect(whole == split)
    }
}
