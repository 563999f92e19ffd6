// `heaplab export SNAPSHOT --chrome OUT.heapsnapshot`: converts a heap snapshot to V8's heap
// snapshot JSON, which Chrome DevTools' Memory panel opens ("Load profile"). The mapping is in
// Sources/HeapLabSnapshot/ChromeExport.swift and docs/inspect.md. A bad snapshot exits 2.
import ArgumentParser
import HeapLabSnapshot

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Convert a heap snapshot for other tools (Chrome DevTools).")

    @Argument(help: "The snapshot file (.hsnap).")
    var snapshot: String

    @Option(help: "Write V8's .heapsnapshot JSON here (Chrome DevTools, Memory panel, Load profile).")
    var chrome: String

    func run() throws {
        let s = try loadSnapshot(snapshot)
        let (nodes, edges) = try reportingInputErrors { try ChromeExport.write(s, to: chrome) }
        print("wrote \(chrome): \(nodes) nodes, \(edges) edges")
    }
}
