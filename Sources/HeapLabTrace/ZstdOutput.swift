// zstd compression of a trace on its way to an AtomicOutputFile: the writing half of
// ByteSource.swift, used by TraceWriter when asked for compressed output (`--zstd`).
//
// Owns one libzstd compression context (CZstd) and a fixed output buffer. `compress` feeds
// a chunk and writes whatever compressed bytes are ready; `finish` ends the frame (with
// zstd's content checksum, so a reader notices corruption). Single-threaded and with fixed
// parameters, so the same records give the same bytes with the same libzstd release.
//
// Invariant: after `finish` the file holds exactly one complete zstd frame; any error is an
// InputError naming the output file (the caller abandons the AtomicOutputFile).
import CZstd

final class ZstdOutput {
    /// The level `--zstd` uses: high (the generated traces shrink thousands of times), and
    /// still a few seconds for a 10 M-record trace.
    static let defaultLevel: Int32 = 19

    private let context: OpaquePointer
    private let buffer: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private let path: String

    init(level: Int32, path: String) throws(InputError) {
        guard let context = ZSTD_createCCtx() else {
            throw InputError(file: path, location: .wholeFile, message: "cannot create a zstd compressor")
        }
        self.context = context
        self.path = path
        capacity = ZSTD_CStreamOutSize()
        buffer = .allocate(capacity: capacity)
        for (parameter, value) in [(ZSTD_c_compressionLevel, level), (ZSTD_c_checksumFlag, 1)] {
            if ZSTD_isError(ZSTD_CCtx_setParameter(context, parameter, value)) != 0 {
                ZSTD_freeCCtx(context)
                buffer.deallocate()
                throw InputError(file: path, location: .wholeFile, message: "zstd rejected compression level \(level)")
            }
        }
    }

    deinit {
        ZSTD_freeCCtx(context)
        buffer.deallocate()
    }

    /// Compresses `count` bytes at `source` (all of them) and writes what is ready to `file`;
    /// with `end`, also closes the frame.
    func compress(_ source: UnsafePointer<UInt8>, count: Int, end: Bool, to file: AtomicOutputFile) throws(InputError) {
        var input = ZSTD_inBuffer(src: UnsafeRawPointer(source), size: count, pos: 0)
        let mode = end ? ZSTD_e_end : ZSTD_e_continue
        while true {
            var output = ZSTD_outBuffer(dst: UnsafeMutableRawPointer(buffer), size: capacity, pos: 0)
            let remaining = ZSTD_compressStream2(context, &output, &input, mode)
            if ZSTD_isError(remaining) != 0 {
                throw InputError(file: path, location: .wholeFile,
                                 message: "zstd compression failed: \(String(cString: ZSTD_getErrorName(remaining)))")
            }
            if output.pos > 0 { try file.write(UnsafeRawBufferPointer(start: buffer, count: output.pos)) }
            // continue: done once the input is consumed; end: once nothing is left to flush.
            if end ? remaining == 0 : input.pos == input.size { return }
        }
    }
}
