// The HTML report: well-formed (parsed here as XML by a small checker), self-contained, one
// section with SVG charts per trace, consistent allocator colours.
import Testing
@testable import HeapLabReplay

/// A minimal XML well-formedness checker: tags balance, attributes are quoted, entities
/// are the five XML ones or numeric. Returns the element names in document order.
struct XMLCheck {
    enum Failure: Error, CustomStringConvertible {
        case bad(String, Int)
        var description: String { if case .bad(let m, let at) = self { return "\(m) at \(at)" }; return "" }
    }

    static func elements(_ text: String) throws -> [(name: String, attributes: [String: String])] {
        let b = Array(text.utf8)
        var i = 0
        var stack: [String] = []
        var out: [(String, [String: String])] = []
        func fail(_ m: String) -> Failure { .bad(m, i) }
        func isName(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x3a || c == 0x5f
        }
        func checkEntities(_ s: ArraySlice<UInt8>) throws {
            var j = s.startIndex
            while j < s.endIndex {
                if s[j] == UInt8(ascii: "&") {
                    guard let semi = s[j...].firstIndex(of: UInt8(ascii: ";")) else { throw fail("unterminated entity") }
                    let name = String(decoding: s[(j + 1)..<semi], as: UTF8.self)
                    guard ["amp", "lt", "gt", "quot", "apos"].contains(name) || name.hasPrefix("#") else { throw fail("entity &\(name);") }
                    j = semi
                } else if s[j] == UInt8(ascii: "<") {
                    throw fail("< in text")
                }
                j += 1
            }
        }
        while i < b.count {
            if b[i] != UInt8(ascii: "<") {
                let start = i
                while i < b.count && b[i] != UInt8(ascii: "<") { i += 1 }
                try checkEntities(b[start..<i])
                continue
            }
            if b[i...].starts(with: Array("<!DOCTYPE".utf8)) || b[i...].starts(with: Array("<!--".utf8)) {
                while i < b.count && b[i] != UInt8(ascii: ">") { i += 1 }
                i += 1
                continue
            }
            i += 1
            let closing = b[i] == UInt8(ascii: "/")
            if closing { i += 1 }
            let ns = i
            while i < b.count && isName(b[i]) { i += 1 }
            let name = String(decoding: b[ns..<i], as: UTF8.self)
            guard !name.isEmpty else { throw fail("empty tag name") }
            var attributes: [String: String] = [:]
            while true {
                while i < b.count && (b[i] == 0x20 || b[i] == 0x0a) { i += 1 }
                guard i < b.count else { throw fail("unterminated tag") }
                if b[i] == UInt8(ascii: ">") { i += 1; break }
                if b[i] == UInt8(ascii: "/") && i + 1 < b.count && b[i + 1] == UInt8(ascii: ">") {
                    i += 2
                    guard !closing else { throw fail("bad close") }
                    out.append((name, attributes))
                    attributes = [:]
                    break
                }
                let an = i
                while i < b.count && isName(b[i]) { i += 1 }
                let attribute = String(decoding: b[an..<i], as: UTF8.self)
                guard !attribute.isEmpty, i < b.count, b[i] == UInt8(ascii: "=") else { throw fail("attribute without value") }
                i += 1
                guard b[i] == UInt8(ascii: "\"") else { throw fail("unquoted attribute") }
                i += 1
                let vs = i
                while i < b.count && b[i] != UInt8(ascii: "\"") { i += 1 }
                try checkEntities(b[vs..<i])
                guard attributes[attribute] == nil else { throw fail("duplicate attribute \(attribute)") }
                attributes[attribute] = String(decoding: b[vs..<i], as: UTF8.self)
                i += 1
            }
            if closing {
                guard stack.last == name else { throw fail("</\(name)> closes <\(stack.last ?? "nothing")>") }
                stack.removeLast()
            } else if b[i - 2] != UInt8(ascii: "/") {
                stack.append(name)
                out.append((name, attributes))
                if name == "style" {   // raw text up to </style>
                    guard let end = String(decoding: b[i...], as: UTF8.self).firstRange(of: "</style>") else { throw fail("unclosed style") }
                    i += String(decoding: b[i...], as: UTF8.self)[..<end.lowerBound].utf8.count
                }
            }
        }
        guard stack.isEmpty else { throw Failure.bad("unclosed \(stack)", i) }
        return out
    }
}

@Suite struct BenchHTMLTests {
    @Test func wellFormedWithChartsPerTrace() throws {
        let result = sampleBenchResult()
        let html = BenchHTML.render(result)
        let elements = try XMLCheck.elements(html)
        #expect(elements.first?.name == "html")
        // One section per trace, each with its time, memory, cost and live-heap charts
        // (the second trace has no null runs, so no cost chart).
        var svgsPerSection: [Int] = []
        for e in elements {
            if e.name == "section", e.attributes["class"] == "card trace" { svgsPerSection.append(0) }
            if e.name == "svg", !svgsPerSection.isEmpty { svgsPerSection[svgsPerSection.count - 1] += 1 }
        }
        #expect(svgsPerSection == [4, 3])
        // Self-contained: no script, no external resources.
        #expect(!elements.contains { ["script", "link", "img", "iframe"].contains($0.name) })
        #expect(!elements.contains { $0.attributes["src"] != nil || ($0.attributes["href"]?.hasPrefix("http") ?? false) })
        // The trace name with & and < is escaped, not raw.
        #expect(html.contains("one &amp; &lt;two&gt;.htrace"))
        // Every allocator has its colour in the charts.
        let fills = Set(elements.compactMap { $0.name == "rect" ? $0.attributes["fill"] : nil })
        for a in result.allocators { #expect(fills.contains(BenchHTML.colour(a))) }
        // The live-heap chart draws the profile.
        #expect(elements.contains { $0.name == "polyline" })
    }

    @Test func checkerRejectsBrokenMarkup() {
        for bad in ["<a><b></a></b>", "<a x=1></a>", "<a>&nbsp;</a>", "<a>"] {
            #expect(throws: XMLCheck.Failure.self) { try XMLCheck.elements(bad) }
        }
    }

    @Test func niceTicks() {
        #expect(BenchHTML.niceStep(10, count: 5) == 2)
        #expect(BenchHTML.niceStep(0.03, count: 5) == 0.01)
        #expect(BenchHTML.niceStep(7, count: 5) == 2)
        #expect(BenchHTML.shortCount(2_500_000) == "2.5M")
    }
}
