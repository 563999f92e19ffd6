// Constants of the snapshot file format, version 2 (docs/snapshot-format.md is the contract).
// Version 2 added collector fields at the end of gc-state; readers take versions 1 and 2.
//
//   file    = magic (8 bytes) version (u32 LE) frame*
//   frame   = tag (u8) length (u32 LE) payload[length] crc32 (u32 LE over tag, length, payload)
//   section = one or more consecutive frames with the same tag; its payload is the
//             concatenation of theirs (a value may straddle two frames)
//
// Sections come in the order of `SnapshotSection.required`, each exactly once, then `end`.
// Tags 0x40...0x7f are optional extensions a reader skips; any other unknown tag
// is an error. Integers inside payloads are LEB128 varints (unsigned, at most 10 bytes,
// canonical is not required); strings are a varint byte count then UTF-8.

public enum SnapshotFormat {
    /// "\u{89}HLSNAP\n": a high byte first (catches 7-bit channels), a newline last (catches
    /// newline translation), as PNG's signature does.
    public static let magic: [UInt8] = [0x89, 0x48, 0x4C, 0x53, 0x4E, 0x41, 0x50, 0x0A]
    /// The version this code writes.
    public static let version: UInt32 = 2
    /// The oldest version it reads (version 1 lacks gc-state's collector fields).
    public static let oldestReadableVersion: UInt32 = 1
    public static let headerBytes = 12
    /// Frame overhead: tag + length before the payload, CRC after.
    public static let frameHeaderBytes = 5
    public static let frameTrailerBytes = 4
    /// Payload bytes per frame the writer emits; readers accept up to `maxFramePayload`.
    public static let writerFramePayload = 1 << 20
    public static let maxFramePayload = 1 << 26
}

public enum SnapshotSection: UInt8, Sendable, CaseIterable {
    case info = 0x01
    case sizeClasses = 0x02
    case layout = 0x03
    case sites = 0x04
    case objects = 0x05
    case edges = 0x06
    case roots = 0x07
    case gcState = 0x08
    case statistics = 0x09
    case end = 0xFF

    /// Sections every file has, in this order, before `end`.
    public static let required: [SnapshotSection] = [.info, .sizeClasses, .layout, .sites, .objects, .edges, .roots, .gcState, .statistics]

    public var name: String {
        switch self {
        case .info: return "info"
        case .sizeClasses: return "size-classes"
        case .layout: return "layout"
        case .sites: return "sites"
        case .objects: return "objects"
        case .edges: return "edges"
        case .roots: return "roots"
        case .gcState: return "gc-state"
        case .statistics: return "statistics"
        case .end: return "end"
        }
    }

    public static func isOptionalExtension(_ tag: UInt8) -> Bool { tag >= 0x40 && tag <= 0x7f }
}
