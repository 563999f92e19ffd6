// System library shim: zlib's inflate, used by HeapLabTrace's ByteSource to read
// gzip-compressed traces and importer inputs (heaptrack's older .gz recordings) in-process.
#include <zlib.h>
