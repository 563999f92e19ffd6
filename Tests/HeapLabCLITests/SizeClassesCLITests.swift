import Foundation
import Testing

/// `heaplab sizeclasses`: the table as text and as JSON with exactly the documented keys.
@Suite struct SizeClassesCLITests {
    @Test func jsonHasExactlyTheDocumentedKeysAndGosValues() throws {
        let r = try CLIHarness.run(["sizeclasses", "--json"])
        #expect(r.status == 0)
        let rows = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Int]])
        #expect(rows.count == 67)
        for row in rows {
            #expect(Set(row.keys) == ["class", "bytes_per_obj", "bytes_per_span", "objects", "tail_waste"])
        }
        #expect(rows[0] == ["class": 1, "bytes_per_obj": 8, "bytes_per_span": 8192, "objects": 1024, "tail_waste": 0])
        #expect(rows[34] == ["class": 35, "bytes_per_obj": 1408, "bytes_per_span": 16384, "objects": 11, "tail_waste": 896])
        #expect(rows[66] == ["class": 67, "bytes_per_obj": 32768, "bytes_per_span": 32768, "objects": 1, "tail_waste": 0])
    }

    @Test func textTableHasAHeaderAndOneRowPerClass() throws {
        let r = try CLIHarness.run(["sizeclasses"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 68)
        #expect(lines[0].split(separator: " ") == ["class", "bytes_per_obj", "bytes_per_span", "objects", "tail_waste"])
        #expect(lines[3].split(separator: " ") == ["3", "24", "8192", "341", "8"])
    }
}
