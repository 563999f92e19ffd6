// The binary trace encoding: constants and the varint codec. The full specification, with
// a worked example, is docs/trace-binary-format.md; this file and that document must agree.
//
//   file    = MAGIC VERSION record* END
//   MAGIC   = 89 48 4C 54 52 41 43 45        ("\x89HLTRACE"; 0x89 cannot start a text trace)
//   VERSION = uvarint, 1                      (the header record, record 0)
//   record  = opcode byte, then operands as LEB128 varints:
//     01 site     SITE LEN NAME[LEN]
//     02 thread   T
//     10 alloc    ID SIZE                     (ptrs 0, no site)
//     11 alloc    ID SIZE PTRS                (PTRS >= 1, no site)
//     12 alloc    ID SIZE SITE                (ptrs 0, site given)
//     13 alloc    ID SIZE PTRS SITE           (PTRS >= 1, site given)
//     20 free     ID
//     21 hold     ID
//     22 write    SRC SLOT DST
//     23 write    SRC SLOT                    (DST nil)
//     24 realloc  ID SIZE
//     00 end      COUNT                       (records between header and END; must be last)
//
// Object IDs (ID, SRC, DST) are zig-zag coded differences from the previous object ID in the
// file (initially 0), wrapping modulo 2^64, so sequential or address-like IDs take one to
// three bytes. Every other number is a plain unsigned LEB128 varint.
//
// Invariant making encodings unique (so binary -> text -> binary is byte-identical): a
// varint has no redundant trailing 0x80/0x00 groups and fits in 64 bits; opcodes 11/13
// never carry PTRS = 0. Readers reject anything else as corrupt.

enum TraceBinary {
    static let magic: [UInt8] = [0x89, 0x48, 0x4C, 0x54, 0x52, 0x41, 0x43, 0x45]
    static let firstMagicByte: UInt8 = 0x89

    static let opEnd: UInt8 = 0x00
    static let opSite: UInt8 = 0x01
    static let opThread: UInt8 = 0x02
    static let opAlloc: UInt8 = 0x10
    static let opAllocPtrs: UInt8 = 0x11
    static let opAllocSite: UInt8 = 0x12
    static let opAllocPtrsSite: UInt8 = 0x13
    static let opFree: UInt8 = 0x20
    static let opHold: UInt8 = 0x21
    static let opWrite: UInt8 = 0x22
    static let opWriteNil: UInt8 = 0x23
    static let opRealloc: UInt8 = 0x24

    /// Longest record other than `site`: opcode + 4 varints of at most 10 bytes.
    static let maxFixedRecord = 1 + 4 * 10

    @inline(__always)
    static func zigzag(_ delta: UInt64) -> UInt64 {
        (delta << 1) ^ UInt64(bitPattern: Int64(bitPattern: delta) >> 63)
    }

    @inline(__always)
    static func unzigzag(_ z: UInt64) -> UInt64 {
        (z >> 1) ^ (0 &- (z & 1))
    }

    /// Writes `v` as LEB128 at `p` (at most 10 bytes); returns the byte after it.
    @inline(__always)
    static func putVarint(_ v: UInt64, _ p: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        var v = v
        var p = p
        while v >= 0x80 {
            p.pointee = UInt8(truncatingIfNeeded: v) | 0x80
            p += 1
            v >>= 7
        }
        p.pointee = UInt8(truncatingIfNeeded: v)
        return p + 1
    }

    /// Result of decoding one varint.
    enum VarintStatus { case ok, truncated, overflow, nonCanonical }

    /// Decodes a LEB128 varint at `p`, not reading at or past `limit`. On failure `p` stays
    /// put, 0 is returned and `status` records the first problem (later calls keep it).
    @inline(__always)
    static func getVarint(_ p: inout UnsafePointer<UInt8>, _ limit: UnsafePointer<UInt8>,
                          _ status: inout VarintStatus) -> UInt64 {
        guard p < limit else { if status == .ok { status = .truncated }; return 0 }
        let b0 = p.pointee
        if b0 < 0x80 { p += 1; return UInt64(b0) }
        return getVarintSlow(&p, limit, &status)
    }

    /// Decodes a varint at `p` without a bounds check: the caller guarantees 10 readable
    /// bytes. Reads at most 10 bytes, even from garbage. (A branch-free variant that loads
    /// 8 bytes and squeezes the 7-bit groups together measured slower here than this loop.)
    @inline(__always)
    static func getVarintUnchecked(_ p: inout UnsafePointer<UInt8>, _ status: inout VarintStatus) -> UInt64 {
        let b0 = p.pointee
        if b0 < 0x80 { p += 1; return UInt64(b0) }
        var q = p + 1
        var v = UInt64(b0 & 0x7F)
        var shift: UInt64 = 7
        while true {
            let b = q.pointee
            q += 1
            v |= UInt64(b & 0x7F) &<< shift
            if b < 0x80 {
                if b == 0 { if status == .ok { status = .nonCanonical }; return 0 }
                p = q
                return v
            }
            shift &+= 7
            if shift == 63 { return getVarintLong(&p, &status) }
        }
    }

    /// Varints of 10 bytes (and garbage with no end byte among the first 9).
    @inline(never)
    static func getVarintLong(_ p: inout UnsafePointer<UInt8>, _ status: inout VarintStatus) -> UInt64 {
        getVarintSlow(&p, p + 10, &status)
    }

    @inline(never)
    static func getVarintSlow(_ p: inout UnsafePointer<UInt8>, _ limit: UnsafePointer<UInt8>,
                              _ status: inout VarintStatus) -> UInt64 {
        var q = p
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard q < limit else { if status == .ok { status = .truncated }; return 0 }
            let b = q.pointee
            q += 1
            if shift == 63 {
                // Tenth byte: only the lowest bit fits in 64 bits.
                if b > 1 { if status == .ok { status = .overflow }; return 0 }
            }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 {
                if b == 0 && shift != 0 { if status == .ok { status = .nonCanonical }; return 0 }
                p = q
                return v
            }
            shift += 7
        }
    }
}
