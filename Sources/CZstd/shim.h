// System library shim: libzstd's streaming decompressor, used by HeapLabImport to read
// heaptrack's zstd-compressed recordings in-process (no `zstd` executable needed).
#include <zstd.h>
