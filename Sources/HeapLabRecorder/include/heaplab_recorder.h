/*
 * HeapLab recorder: the raw allocation log written by libHeapLabRecorder.so.
 *
 * The library is LD_PRELOADed into a program by `heaplab record`; it interposes malloc,
 * calloc, realloc, reallocarray, free, memalign, posix_memalign, aligned_alloc, valloc and
 * pvalloc, forwards each call to glibc's own implementation (__libc_malloc, ...), and
 * appends one fixed-size event per call to the log named by HEAPLAB_RECORD_LOG. This header
 * is the contract between the C side and the Swift converter
 * (Sources/HeapLabImport/RecorderLogImporter.swift mirrors these numbers).
 *
 * File layout (little-endian, x86-64/aarch64 Linux):
 *
 *   offset 0   struct hl_log_header   (64 bytes)
 *   offset 64  struct hl_event[...]   (32 bytes each), in the order their slots were taken
 *
 * The file is mapped MAP_SHARED, so every event written is in the page cache the moment
 * the store retires: a program killed by SIGKILL leaves every completed event behind.
 * A slot whose `kind` is still 0 was reserved but not completed (the writer was killed,
 * or its thread vanished at exec) and is skipped by the reader. The file may be longer
 * than `next` (it grows in chunks); bytes past `next` are zero.
 */
#ifndef HEAPLAB_RECORDER_H
#define HEAPLAB_RECORDER_H

#include <stdint.h>

#define HL_LOG_MAGIC "HLRLOG01"
#define HL_LOG_ENV "HEAPLAB_RECORD_LOG"
#define HL_HEADER_SIZE 64
#define HL_EVENT_SIZE 32

/* Event kinds. */
enum {
    HL_EV_NONE = 0,          /* slot reserved, never completed */
    HL_EV_MALLOC = 1,        /* a = block (0: failed), b = size, site = caller */
    HL_EV_FREE = 2,          /* a = block (logged before the real free) */
    HL_EV_REALLOC_BEGIN = 3, /* a = old block (logged before the real realloc) */
    HL_EV_REALLOC_END = 4,   /* a = new block (0: failed or freed), b = size, site = caller */
    HL_EV_THREAD_EXIT = 5,   /* the thread `tid` is exiting */
    HL_EV_EXEC = 6,          /* a new program image (exec) starts in the recorded process */
};

struct hl_log_header {
    char magic[8];           /* HL_LOG_MAGIC */
    uint64_t owner_pid;      /* the process being recorded (kept across exec) */
    uint64_t next;           /* byte offset of the next free event slot (atomic) */
    uint64_t dropped;        /* events lost because the log hit its size limit */
    uint64_t images;         /* number of program images recorded (1 + execs) */
    uint64_t reserved[3];
};

struct hl_event {
    uint32_t kind;           /* written last, with release ordering */
    uint32_t tid;            /* gettid() of the calling thread */
    uint64_t a;
    uint64_t b;
    uint64_t site;           /* return address of the interposed call */
};

#endif
