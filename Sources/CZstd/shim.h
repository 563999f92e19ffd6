// System library shim: libzstd's streaming decompressor, used by HeapLabTrace's ByteSource
// to read zstd-compressed traces and importer inputs in-process (no `zstd` executable needed).
#include <zstd.h>
