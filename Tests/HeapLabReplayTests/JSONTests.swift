// The JSON writer and parser used by reports and the parent/child protocol.
import Testing
@testable import HeapLabReplay

@Suite struct JSONTests {
    @Test func roundTrip() throws {
        let value = JSONValue.object([
            JSONMember("name", .string("a \"quoted\"\nline\t\u{1}é😀")),
            JSONMember("n", .int(-42)),
            JSONMember("x", .double(0.000123456789)),
            JSONMember("big", .double(1.5e300)),
            JSONMember("whole", .double(3)),
            JSONMember("list", .array([.null, .bool(true), .bool(false), .array([])])),
            JSONMember("nested", .object([JSONMember("k", .object([]))])),
        ])
        for pretty in [true, false] {
            let parsed = try JSONValue.parse(value.serialized(pretty: pretty))
            #expect(parsed["name"] == value["name"])
            #expect(parsed["n"]?.intValue == -42)
            #expect(parsed["x"]?.doubleValue == 0.000123456789)
            #expect(parsed["big"]?.doubleValue == 1.5e300)
            #expect(parsed["whole"]?.doubleValue == 3)
            #expect(parsed["list"] == value["list"])
            #expect(parsed["nested"] == value["nested"])
        }
    }

    @Test func nonFiniteBecomesNull() {
        #expect(JSONValue.number(.nan) == .null)
        #expect(JSONValue.double(.infinity).serialized() == "null")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "\"\\x\"", "01x", "[1] 2", "\"\u{1}\"", "nul"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func rejectsDeepNesting() {
        let text = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func measurementSurvivesTheChildProtocol() throws {
        let m = ReplayMeasurement(workers: 3, wallSeconds: 0.123456789, cpuSeconds: 0.3, baselineRSSBytes: 1 << 20,
                                  rssAtPeakLiveBytes: 5 << 20, peakRSSBytes: 6 << 20,
                                  allocatorStatistics: [AllocatorStatistic(name: "allocated", value: 12345)],
                                  verified: true)
        let text = ChildReplay.encodeMeasurement(m).serialized(pretty: false)
        #expect(ChildReplay.decodeMeasurement(try JSONValue.parse(text)) == m)
    }

    @Test func formatting() {
        #expect(Format.fixed(1.005, 2) == "1.00" || Format.fixed(1.005, 2) == "1.01")
        #expect(Format.fixed(-2.5, 1) == "-2.5")
        #expect(Format.fixed(3, 0) == "3")
        #expect(Format.fixed(0.0625, 3) == "0.063" || Format.fixed(0.0625, 3) == "0.062")
        #expect(Format.grouped(1234567) == "1,234,567")
        #expect(Format.grouped(-1000) == "-1,000")
        #expect(Format.grouped(999) == "999")
        #expect(Format.bytes(512) == "512 B")
        #expect(Format.bytes(1536) == "1.50 KiB")
        #expect(Format.bytes(200 << 20) == "200 MiB")
        #expect(Format.seconds(0.0123) == "12.30 ms")
    }
}
