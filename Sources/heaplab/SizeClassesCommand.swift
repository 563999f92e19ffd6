// `heaplab sizeclasses [--json]`: prints the allocator's size-class table (Go 1.19's, derived
// by Go's generation rule; see Sources/HeapLabAllocator/SizeClasses.swift).
import ArgumentParser
import HeapLabAllocator
import HeapLabReplay

struct SizeClassesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sizeclasses",
        abstract: "Print the size-class table (Go 1.19's 67 classes, 8 KiB pages).",
        discussion: """
            Columns: class, bytes_per_obj, bytes_per_span, objects (per span), tail_waste \
            (bytes left over at the end of each span). Objects over 32768 bytes are large: \
            whole pages from the page heap.
            """)

    @Flag(help: "Print a JSON array of objects with the keys class, bytes_per_obj, bytes_per_span, objects, tail_waste.")
    var json = false

    func run() {
        let rows = SizeClasses.table.enumerated().dropFirst()
        if json {
            let array = JSONValue.array(rows.map { cls, c in
                .object([
                    JSONMember("class", .int(cls)),
                    JSONMember("bytes_per_obj", .int(c.size)),
                    JSONMember("bytes_per_span", .int(c.bytesPerSpan)),
                    JSONMember("objects", .int(c.objects)),
                    JSONMember("tail_waste", .int(c.tailWaste)),
                ])
            })
            print(array.serialized(pretty: true))
            return
        }
        func pad(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        print(["class", "bytes_per_obj", "bytes_per_span", "objects", "tail_waste"].map { pad($0, 15) }.joined())
        for (cls, c) in rows {
            print([cls, c.size, c.bytesPerSpan, c.objects, c.tailWaste].map { pad(String($0), 15) }.joined())
        }
    }
}
