// The span occupancy map: every in-use span in address order, coloured by the fraction of
// its slots that hold live objects (mark bits), as text for the terminal and as SVG.
//
// Text: one character per span, `width` spans per row, each row prefixed with the address
// of its first span. Occupancy levels (live slots / slots):
//     .  0%    :  < 12.5%   -  < 25%   =  < 37.5%   +  < 50%
//     *  < 62.5%   #  < 75%   %  < 100%   @  100%
// `L` marks a large-object span (always full), `_` a run of free pages between two spans.
// SVG: the same cells as 12x12 squares, colour from pale yellow (empty) to dark red (full),
// large spans blue, gaps grey; each cell has a <title> with the span's figures.

public struct SpanOccupancy: Equatable, Sendable {
    public var span: Int
    public var start: UInt64
    public var pages: Int
    public var sizeClass: Int
    public var elemSize: UInt64
    public var slots: Int
    public var allocatedSlots: Int
    public var liveSlots: Int
    /// Free pages between the previous span's end and this span's start.
    public var gapPagesBefore: Int
    public var occupancy: Double { slots == 0 ? 0 : Double(liveSlots) / Double(slots) }
}

public enum SpanHeatMap {
    public static let levels: [Character] = [".", ":", "-", "=", "+", "*", "#", "%", "@"]

    public static func occupancy(_ s: HeapSnapshot) -> [SpanOccupancy] {
        var result: [SpanOccupancy] = []
        result.reserveCapacity(s.spans.count)
        var previousEnd: UInt64? = nil
        for (k, span) in s.spans.enumerated() {
            var allocated = 0, live = 0
            for w in 0..<span.bitWords {
                allocated += s.allocBits[span.bitsOffset + w].nonzeroBitCount
                live += s.markBits[span.bitsOffset + w].nonzeroBitCount
            }
            let gap = previousEnd.map { Int((span.start - $0) / UInt64(HeapSnapshot.pageSize)) } ?? 0
            result.append(SpanOccupancy(span: k, start: span.start, pages: Int(span.pages), sizeClass: Int(span.sizeClass),
                                        elemSize: span.elemSize, slots: Int(span.slots), allocatedSlots: allocated,
                                        liveSlots: live, gapPagesBefore: gap))
            previousEnd = span.end
        }
        return result
    }

    /// The character for one span.
    public static func symbol(_ o: SpanOccupancy) -> Character {
        if o.sizeClass == 0 { return "L" }
        if o.liveSlots >= o.slots { return "@" }
        if o.liveSlots == 0 { return "." }
        return levels[1 + min(7, Int(o.occupancy * 8))]
    }

    static func hexAddress(_ a: UInt64) -> String {
        let h = String(a, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 12 - h.count)) + h
    }

    public static func text(_ s: HeapSnapshot, width: Int = 64) -> String {
        let cells = occupancy(s)
        var out = "span occupancy (live slots / slots): . 0%  : <12.5%  - <25%  = <37.5%  + <50%  * <62.5%  # <75%  % <100%  @ 100%  L large  _ free pages\n"
        var row = ""
        var rowStart: UInt64 = 0
        var inRow = 0
        func flush() {
            if inRow > 0 { out += "\(hexAddress(rowStart))  \(row)\n" }
            row = ""
            inRow = 0
        }
        for c in cells {
            if c.gapPagesBefore > 0 {
                if inRow == 0 { rowStart = c.start }
                row.append("_")
                inRow += 1
                if inRow == width { flush() }
            }
            if inRow == 0 { rowStart = c.start }
            row.append(symbol(c))
            inRow += 1
            if inRow == width { flush() }
        }
        flush()
        if cells.isEmpty { out += "(no spans)\n" }
        return out
    }

    static func colour(_ o: SpanOccupancy) -> String {
        if o.sizeClass == 0 { return "#3b6fb6" }
        // Pale yellow (255,247,188) to dark red (153,0,13).
        let t = o.occupancy
        func mix(_ a: Double, _ b: Double) -> Int { Int((a + (b - a) * t).rounded()) }
        let r = mix(255, 153), g = mix(247, 0), b = mix(188, 13)
        func hex2(_ v: Int) -> String { let h = String(v, radix: 16); return h.count == 1 ? "0" + h : h }
        return "#" + hex2(r) + hex2(g) + hex2(b)
    }

    public static func svg(_ s: HeapSnapshot, width: Int = 64) -> String {
        let cells = occupancy(s)
        let cell = 12
        var items: [(x: Int, y: Int, fill: String, title: String)] = []
        var index = 0
        func place(_ fill: String, _ title: String) {
            items.append((index % width, index / width, fill, title))
            index += 1
        }
        for c in cells {
            if c.gapPagesBefore > 0 { place("#d9d9d9", "\(c.gapPagesBefore) free page(s)") }
            let what = c.sizeClass == 0
                ? "large object span, \(c.pages) page(s)"
                : "class \(c.sizeClass) (\(c.elemSize) B), \(c.liveSlots)/\(c.slots) slots live, \(c.allocatedSlots) allocated"
            place(colour(c), "\(hexAddress(c.start)): \(what)")
        }
        let rows = max(1, (index + width - 1) / width)
        let w = width * cell + 20, h = rows * cell + 50
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\">\n"
        out += "<title>HeapLab span occupancy</title>\n"
        out += "<text x=\"10\" y=\"18\" font-family=\"sans-serif\" font-size=\"12\">span occupancy: \(cells.count) spans, pale = empty, dark red = full, blue = large, grey = free pages</text>\n"
        for it in items {
            out += "<rect x=\"\(10 + it.x * cell)\" y=\"\(30 + it.y * cell)\" width=\"\(cell - 1)\" height=\"\(cell - 1)\" fill=\"\(it.fill)\"><title>\(escape(it.title))</title></rect>\n"
        }
        out += "</svg>\n"
        return out
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}
