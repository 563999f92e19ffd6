// Shared behaviour of every subcommand: how input errors leave the program.
import ArgumentParser
import HeapLabTrace
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body`; an `InputError` is printed as `FILE:LINE: message` on stderr and the
/// process exits with status 2, as every HeapLab command promises for bad input.
func reportingInputErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as InputError {
        printError(error.description)
        throw ExitCode(2)
    }
}

func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
