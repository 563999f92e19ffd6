// Export to V8's heap snapshot format (.heapsnapshot JSON), which Chrome DevTools' Memory
// panel loads. The format, as DevTools reads it (front_end/.../HeapSnapshot.ts):
//
//   { "snapshot": { "meta": { "node_fields": [...], "node_types": [[...], ...],
//                             "edge_fields": [...], "edge_types": [[...], ...], ... },
//                   "node_count": N, "edge_count": M, "trace_function_count": 0 },
//     "nodes": [ N x node_fields.count numbers ],
//     "edges": [ M x edge_fields.count numbers ],
//     "trace_function_infos": [], "trace_tree": [], "samples": [], "locations": [],
//     "strings": [ ... ] }
//
// Nodes are flat: type (index into node_types[0]), name (string index), id, self_size,
// edge_count, trace_node_id, detachedness. Edges are flat and grouped by source node in node
// order (a node's edges are the next edge_count entries after its predecessors'): type
// (index into edge_types[0]), name_or_index (string index for named edges, the element
// index otherwise), to_node (the *offset* of the target in `nodes`: index x 7).
//
// Mapping: node 0 is a synthetic root ("(HeapLab roots)") with one `element` edge per
// distinct root object; every object is an `object` node named after its allocation site,
// self_size = requested size, id = 2 x index + 3 (odd, as V8's heap object ids; the root is
// 1); each non-nil pointer slot is an `element` edge whose index is the slot number.
// Written as a stream (numbers formatted by hand) through AtomicOutputFile.

public import HeapLabTrace

public enum ChromeExport {
    public static let nodeFields = ["type", "name", "id", "self_size", "edge_count", "trace_node_id", "detachedness"]
    public static let nodeTypes = ["hidden", "array", "string", "object", "code", "closure", "regexp", "number",
                                   "native", "synthetic", "concatenated string", "sliced string", "symbol", "bigint",
                                   "object shape"]
    public static let edgeFields = ["type", "name_or_index", "to_node"]
    public static let edgeTypes = ["context", "element", "property", "internal", "hidden", "shortcut", "weak"]
    static let objectType = 3, syntheticType = 9, elementEdge = 1

    /// Writes `s` to `path`. Returns (nodes, edges) written.
    @discardableResult
    public static func write(_ s: HeapSnapshot, to path: String) throws(InputError) -> (nodes: Int, edges: Int) {
        let out = try AtomicOutputFile(path: path)
        var buf = JSONStream(out: out)
        // Strings: 0 = root name, then "(no site)", then site names.
        var strings = ["(HeapLab roots)", "(no site)"]
        strings.append(contentsOf: s.sites.map(\.name))
        var rootObjects: [Int32] = []
        var seen = Set<Int32>()
        for r in s.roots where seen.insert(r.object).inserted { rootObjects.append(r.object) }
        let n = s.objectCount + 1
        let m = s.edgeCount + rootObjects.count

        do {
            try buf.raw("{\"snapshot\":{\"meta\":{\"node_fields\":")
            try buf.stringArray(nodeFields)
            try buf.raw(",\"node_types\":[")
            try buf.stringArray(nodeTypes)
            try buf.raw(",\"string\",\"number\",\"number\",\"number\",\"number\",\"number\"],\"edge_fields\":")
            try buf.stringArray(edgeFields)
            try buf.raw(",\"edge_types\":[")
            try buf.stringArray(edgeTypes)
            try buf.raw(",\"string_or_number\",\"node\"],\"trace_function_info_fields\":[\"function_id\",\"name\",\"script_name\",\"script_id\",\"line\",\"column\"],\"trace_node_fields\":[\"id\",\"function_info_index\",\"count\",\"size\",\"children\"],\"sample_fields\":[\"timestamp_us\",\"last_assigned_id\"],\"location_fields\":[\"object_index\",\"script_id\",\"line\",\"column\"]},")
            try buf.raw("\"node_count\":")
            try buf.number(UInt64(n))
            try buf.raw(",\"edge_count\":")
            try buf.number(UInt64(m))
            try buf.raw(",\"trace_function_count\":0},\n\"nodes\":[")
            // Root node.
            try buf.numbers([UInt64(syntheticType), 0, 1, 0, UInt64(rootObjects.count), 0, 0], first: true)
            for i in 0..<s.objectCount {
                let site = UInt64(s.site[i]) + 1      // string 1 = "(no site)", 2... = sites
                let edges = UInt64(s.edgeStart[i + 1] - s.edgeStart[i])
                try buf.raw(",\n")
                try buf.numbers([UInt64(objectType), site, UInt64(2 * i + 3), s.size[i], edges, 0, 0], first: true)
            }
            try buf.raw("],\n\"edges\":[")
            var first = true
            for (k, o) in rootObjects.enumerated() {
                if !first { try buf.raw(",\n") }
                try buf.numbers([UInt64(elementEdge), UInt64(k), UInt64(Int(o) + 1) * 7], first: true)
                first = false
            }
            for i in 0..<s.objectCount {
                for e in s.edgeStart[i]..<s.edgeStart[i + 1] {
                    if !first { try buf.raw(",\n") }
                    try buf.numbers([UInt64(elementEdge), UInt64(s.edgeSlot[e]), UInt64(Int(s.edgeTarget[e]) + 1) * 7], first: true)
                    first = false
                }
            }
            try buf.raw("],\n\"trace_function_infos\":[],\"trace_tree\":[],\"samples\":[],\"locations\":[],\n\"strings\":")
            try buf.stringArray(strings)
            try buf.raw("}\n")
            try buf.flush()
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
        return (n, m)
    }
}

/// Buffered JSON text for the exporter (numbers and strings formatted by hand).
struct JSONStream {
    let out: AtomicOutputFile
    var bytes: [UInt8] = []

    init(out: AtomicOutputFile) {
        self.out = out
        bytes.reserveCapacity(1 << 16)
    }

    mutating func spill() throws(InputError) {
        if bytes.count >= 1 << 16 {
            try out.write(bytes)
            bytes.removeAll(keepingCapacity: true)
        }
    }

    mutating func flush() throws(InputError) {
        try out.write(bytes)
        bytes.removeAll(keepingCapacity: true)
    }

    mutating func raw(_ s: String) throws(InputError) {
        bytes.append(contentsOf: s.utf8)
        try spill()
    }

    mutating func number(_ v: UInt64) throws(InputError) {
        appendNumber(v)
        try spill()
    }

    mutating func appendNumber(_ v: UInt64) {
        if v < 10 { bytes.append(0x30 + UInt8(v)); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { d in
            while x > 0 { d[n] = 0x30 + UInt8(x % 10); x /= 10; n += 1 }
            for k in stride(from: n - 1, through: 0, by: -1) { bytes.append(d[k]) }
        }
    }

    mutating func numbers(_ values: [UInt64], first: Bool) throws(InputError) {
        for (k, v) in values.enumerated() {
            if k > 0 { bytes.append(0x2C) }
            appendNumber(v)
        }
        try spill()
    }

    mutating func string(_ s: String) {
        bytes.append(0x22)
        for u in s.unicodeScalars {
            switch u {
            case "\"": bytes.append(contentsOf: [0x5C, 0x22])
            case "\\": bytes.append(contentsOf: [0x5C, 0x5C])
            case "\n": bytes.append(contentsOf: [0x5C, 0x6E])
            case "\r": bytes.append(contentsOf: [0x5C, 0x72])
            case "\t": bytes.append(contentsOf: [0x5C, 0x74])
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    bytes.append(contentsOf: "\\u".utf8)
                    bytes.append(contentsOf: (String(repeating: "0", count: 4 - h.count) + h).utf8)
                } else {
                    bytes.append(contentsOf: String(u).utf8)
                }
            }
        }
        bytes.append(0x22)
    }

    mutating func stringArray(_ items: [String]) throws(InputError) {
        bytes.append(0x5B)
        for (k, s) in items.enumerated() {
            if k > 0 { bytes.append(0x2C) }
            string(s)
            try spill()
        }
        bytes.append(0x5D)
        try spill()
    }
}
