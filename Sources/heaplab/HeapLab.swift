// The `heaplab` command: a tiny root that lists the subcommands, one file each.
// The real work lives in the library targets; subcommands parse options, call a library,
// and print. Input problems are reported as `FILE:LINE: message` with exit status 2
// (see CLISupport.swift).
import ArgumentParser

@main
struct HeapLab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heaplab",
        abstract: "A Go-style allocator and collector, an allocation-trace harness, and heap snapshots.",
        subcommands: [
            SizeClassesCommand.self,
            ImportCommand.self, RecordCommand.self, GenCommand.self,
            CheckCommand.self, ConvertCommand.self,
            ReplayCommand.self, BenchCommand.self,
            InspectCommand.self, ExportCommand.self,
        ]
    )
}
