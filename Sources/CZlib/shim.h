// System library shim: zlib's inflate, used by HeapLabImport to read gzip-compressed
// inputs (heaptrack's older .gz recordings) in-process.
#include <zlib.h>
