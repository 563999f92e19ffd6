// Semantic rules: every rule of TRACE-FORMAT.md broken once, with the exact
// `FILE:LINE: message`, plus traces that look suspicious but are valid.
import Testing
@testable import HeapLabTrace

/// Reads and validates an in-memory text trace; the error's description, or nil.
func validationError(_ text: String, name: String = "t") -> String? {
    do {
        var reader = try TraceReader(bytes: Array(text.utf8), name: name)
        let validator = TraceValidator(file: name)
        while let r = try reader.next() { try validator.check(r, at: reader.location) }
        try validator.finish()
        return nil
    } catch {
        return error.description
    }
}

@Suite struct TraceValidatorTests {
    static let h = "heaplab-trace 1\n"

    @Test(arguments: [
        // header exactly once, first
        (h + "a 1 8\nheaplab-trace 1\n", "t:3: duplicate header (it must appear exactly once, first)"),
        // sites
        (h + "s 1 A\ns 1 B\n", "t:3: site 1 is already declared"),
        (h + "a 1 8 0 7\n", "t:2: site 7 is not declared"),
        (h + "a 1 8 0 7\ns 7 late\n", "t:2: site 7 is not declared"),
        // a: ID must not name a live object
        (h + "a 1 8\na 1 8\n", "t:3: object 1 is already live (an ID is reused only after its object dies)"),
        (h + "a 1 16 1\na 2 8\nw 1 0 2\nf 2\na 2 8\n",
         "t:6: object 2 is already live (an ID is reused only after its object dies)"),
        (h + "a 1 16 1\na 2 16 1\nw 1 0 2\nw 2 0 1\nf 2\na 2 8\n",
         "t:7: object 2 is already live (an ID is reused only after its object dies)"),
        // f: needs a hold
        (h + "f 9\n", "t:2: object 9 is not live"),
        (h + "a 1 8\nf 1\nf 1\n", "t:4: object 1 is not live"),
        (h + "a 1 16 1\na 2 8\nw 1 0 2\nf 2\nf 2\n",
         "t:6: object 2 has no hold to drop (it is reachable only through pointers)"),
        (h + "a 1 8 1\na 2 8 1\nw 1 0 2\nw 2 0 1\nf 2\nf 1\nf 2\n", "t:8: object 2 is not live"),
        // h: object must be reachable
        (h + "h 3\n", "t:2: object 3 is not live"),
        (h + "a 1 8\nf 1\nh 1\n", "t:4: object 1 is not live"),
        (h + "a 1 8 1\na 2 8 1\nw 1 0 2\nw 2 0 1\nf 1\nf 2\nh 1\n", "t:8: object 1 is not live"),
        (h + "a 1 8 1\na 2 8 1\na 3 8\nw 1 0 2\nw 2 0 1\nw 2 0 3\nf 3\nf 2\nf 1\nh 3\n", "t:11: object 3 is not live"),
        // w: SRC and DST reachable, SLOT < PTRS
        (h + "a 1 16 2\nw 1 2 -\n", "t:3: slot 2 out of range (object 1 has 2 pointer slots)"),
        (h + "a 1 16\nw 1 0 -\n", "t:3: slot 0 out of range (object 1 has 0 pointer slots)"),
        (h + "w 5 0 -\n", "t:2: source object 5 is not live"),
        (h + "a 1 8 1\nw 1 0 5\n", "t:3: destination object 5 is not live"),
        (h + "a 1 8 1\na 2 8\nf 2\nw 1 0 2\n", "t:5: destination object 2 is not live"),
        (h + "a 1 8 1\na 2 8 1\nw 1 0 2\nw 2 0 1\nf 1\nf 2\na 3 8\nw 3 0 1\n", "t:9: slot 0 out of range (object 3 has 0 pointer slots)"),
        (h + "a 1 8 1\na 2 8 1\nw 1 0 2\nw 2 0 1\nf 1\nf 2\na 3 8 1\nw 3 0 1\n", "t:9: destination object 1 is not live"),
        (h + "a 1 8 1\na 2 8 1\nw 1 0 2\nw 2 0 1\nf 1\nf 2\nw 2 0 -\n", "t:8: source object 2 is not live"),
        // r: reachable, pointer-free
        (h + "r 3 8\n", "t:2: object 3 is not live"),
        (h + "a 1 16 1\nr 1 32\n", "t:3: object 1 has 1 pointer slots; only pointer-free objects can be resized"),
        (h + "a 1 16\nf 1\nr 1 32\n", "t:4: object 1 is not live"),
    ])
    func semanticErrors(text: String, expected: String) {
        #expect(validationError(text) == expected)
    }

    @Test(arguments: [
        // the format's own example
        TraceTextTests.example,
        // ID reuse after death, by f and by a cut
        h + "a 1 8\nf 1\na 1 8\n",
        h + "a 1 16 1\na 2 8\nw 1 0 2\nf 2\nw 1 0 -\na 2 8\n",
        // a dead cycle's IDs are reusable
        h + "a 1 8 1\na 2 8 1\nw 1 0 2\nw 2 0 1\nf 1\nf 2\na 1 8\na 2 8\n",
        // objects reachable only through pointers may be named
        h + "a 1 16 2\na 2 16 1\nw 1 0 2\nf 2\nh 2\nf 2\nw 2 0 1\n",
        h + "a 1 16 2\na 2 16\nw 1 0 2\nf 2\nr 2 64\nw 1 1 2\nw 1 0 -\nr 2 8\n",
        // sites declared before use; threads
        h + "s 1 x\n@ 3\na 1 8 0 1\n@ 0\nf 1\n",
        // stores of nil into empty slots, storing the same pointer twice
        h + "a 1 8 1\nw 1 0 -\na 2 8\nw 1 0 2\nw 1 0 2\nf 2\nh 2\n",
    ])
    func validTraces(text: String) {
        #expect(validationError(text) == nil)
    }

    @Test func recordsWithoutHeader() {
        #expect(throws: InputError(file: "<records>", location: .line(0),
                                   message: "missing header: a trace starts with 'heaplab-trace 1'")) {
            _ = try LifetimeOracle.deathTable(records: [TraceRecord.alloc(id: 1, size: 8, ptrs: 0, site: nil)])
        }
        #expect(throws: InputError(file: "<records>", location: .wholeFile,
                                   message: "missing header: a trace starts with 'heaplab-trace 1' (the trace has no records)")) {
            _ = try LifetimeOracle.deathTable(records: [TraceRecord]())
        }
    }

    @Test func binaryErrorsUseByteOffsets() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let bytes = try encode([.header(version: 1), .alloc(id: 1, size: 8, ptrs: 0, site: nil), .free(id: 1), .free(id: 1)],
                               .binary, dir: dir)
        let path = dir.write("bad.hbtrace", bytes: bytes)
        #expect(throws: InputError(file: path, location: .byteOffset(14), message: "object 1 is not live")) {
            try TraceValidator.validate(path: path)
        }
    }
}
