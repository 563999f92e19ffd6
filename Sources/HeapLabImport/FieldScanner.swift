// Field-level parsing of one input line, shared by every text importer.
//
// Owns: splitting a line (a view into the LineReader's buffer) into blank-separated
// tokens and converting tokens to numbers without allocating. Every conversion checks
// for overflow and for stray characters and returns nil on any problem; the importer
// turns nil into an `InputError` naming the line.
//
// Invariant: `position` only moves forward, and never past `line.count`.

/// A cursor over the bytes of one line.
public struct FieldScanner {
    public let line: UnsafeBufferPointer<UInt8>
    public private(set) var position = 0

    public init(_ line: UnsafeBufferPointer<UInt8>) {
        self.line = line
    }

    /// True when only blanks remain.
    public var atEnd: Bool {
        mutating get {
            skipBlanks()
            return position >= line.count
        }
    }

    public mutating func skipBlanks() {
        while position < line.count && (line[position] == 0x20 || line[position] == 0x09) {
            position += 1
        }
    }

    /// The next blank-delimited token, or nil at the end of the line.
    public mutating func token() -> UnsafeBufferPointer<UInt8>? {
        skipBlanks()
        guard position < line.count else { return nil }
        let begin = position
        while position < line.count && line[position] != 0x20 && line[position] != 0x09 {
            position += 1
        }
        return UnsafeBufferPointer(rebasing: line[begin..<position])
    }

    /// Everything after the current position (after one separating blank), as a String.
    public mutating func rest() -> String {
        if position < line.count && (line[position] == 0x20 || line[position] == 0x09) { position += 1 }
        let text = String(decoding: UnsafeBufferPointer(rebasing: line[position...]), as: UTF8.self)
        position = line.count
        return text
    }

    /// Takes exactly `count` bytes (after one separating blank), or nil if fewer remain.
    public mutating func take(_ count: Int) -> UnsafeBufferPointer<UInt8>? {
        if position < line.count && line[position] == 0x20 { position += 1 }
        guard count >= 0, count <= line.count - position else { return nil }
        let slice = UnsafeBufferPointer(rebasing: line[position..<(position + count)])
        position += count
        return slice
    }

    public mutating func hex() -> UInt64? {
        token().flatMap(Self.parseHex)
    }

    public mutating func decimal() -> UInt64? {
        token().flatMap(Self.parseDecimal)
    }

    /// Hexadecimal with an optional `0x`/`0X` prefix; digits in either case; must fit 64 bits.
    public static func parseHex(_ token: UnsafeBufferPointer<UInt8>) -> UInt64? {
        var i = 0
        if token.count >= 2 && token[0] == 0x30 && (token[1] == 0x78 || token[1] == 0x58) { i = 2 }
        guard i < token.count else { return nil }
        var value: UInt64 = 0
        while i < token.count {
            guard let digit = hexDigit(token[i]), value >> 60 == 0 else { return nil }
            value = value << 4 | digit
            i += 1
        }
        return value
    }

    @inline(__always)
    static func hexDigit(_ c: UInt8) -> UInt64? {
        switch c {
        case 0x30...0x39: return UInt64(c - 0x30)
        case 0x61...0x66: return UInt64(c - 0x61 + 10)
        case 0x41...0x46: return UInt64(c - 0x41 + 10)
        default: return nil
        }
    }

    /// Unsigned decimal that fits in 64 bits.
    public static func parseDecimal(_ token: UnsafeBufferPointer<UInt8>) -> UInt64? {
        guard !token.isEmpty else { return nil }
        var value: UInt64 = 0
        for c in token {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(c - 0x30))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    /// Compares a token with an ASCII literal.
    public static func equals(_ token: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard token.count == literal.utf8CodeUnitCount else { return false }
        let bytes = literal.utf8Start
        for i in 0..<token.count where token[i] != bytes[i] { return false }
        return true
    }

    /// A token as text, for error messages (at most 40 characters).
    public static func describe(_ token: UnsafeBufferPointer<UInt8>) -> String {
        let text = String(decoding: UnsafeBufferPointer(rebasing: token.prefix(40)), as: UTF8.self)
        return token.count > 40 ? "'\(text)...'" : "'\(text)'"
    }
}
