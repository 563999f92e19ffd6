// Errors about input files, in the one shape every HeapLab command reports them:
// `FILE:LINE: what is wrong` for text input, `FILE: byte OFFSET: what is wrong` for binary
// input. For a compressed file (ByteSource.swift) the offset says which bytes it counts:
// `FILE: byte OFFSET (compressed): ...` for a problem with the compressed stream itself,
// `FILE: byte OFFSET (decompressed): ...` for a binary trace's problem inside it (text keeps
// `FILE:LINE`, lines being the same either way). The CLI prints `description` to stderr
// and exits with status 2.

/// Where in an input file a problem was found.
public enum InputLocation: Equatable, Sendable {
    case line(Int)
    case byteOffset(Int)
    /// An offset in a compressed file: the problem is in the compressed stream.
    case compressedByteOffset(Int)
    /// An offset in a compressed file's decompressed content.
    case decompressedByteOffset(Int)
    case wholeFile
}

/// A problem with an input file (trace, import source, snapshot): the file, where, and what.
public struct InputError: Error, Equatable, CustomStringConvertible, Sendable {
    public var file: String
    public var location: InputLocation
    public var message: String

    public init(file: String, location: InputLocation, message: String) {
        self.file = file
        self.location = location
        self.message = message
    }

    public init(file: String, line: Int, _ message: String) {
        self.init(file: file, location: .line(line), message: message)
    }

    public init(file: String, byteOffset: Int, _ message: String) {
        self.init(file: file, location: .byteOffset(byteOffset), message: message)
    }

    public var description: String {
        switch location {
        case .line(let line): return "\(file):\(line): \(message)"
        case .byteOffset(let offset): return "\(file): byte \(offset): \(message)"
        case .compressedByteOffset(let offset): return "\(file): byte \(offset) (compressed): \(message)"
        case .decompressedByteOffset(let offset): return "\(file): byte \(offset) (decompressed): \(message)"
        case .wholeFile: return "\(file): \(message)"
        }
    }
}
