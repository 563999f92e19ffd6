/*
 * libHeapLabRecorder.so: an LD_PRELOAD library that logs every heap call of a program.
 * The log format is in include/heaplab_recorder.h; `heaplab record` (docs/recorder.md)
 * preloads this library, runs the program, and converts the log into a HeapLab trace.
 *
 * Design, step by step:
 *
 *  1. Interposition. The library defines malloc, calloc, realloc, reallocarray, free,
 *     memalign, posix_memalign, aligned_alloc, valloc and pvalloc. Each forwards to glibc's
 *     exported implementation (__libc_malloc, __libc_calloc, ...), so no dlsym bootstrap is
 *     needed and the recorder works from the very first allocation of the dynamic loader.
 *
 *  2. No allocation of its own. The recorder never calls malloc: the log is a file mapped
 *     MAP_SHARED, events are fixed-size stores into it, paths are built on the stack. A
 *     per-thread reentrancy counter (`t_busy`) sends any heap call made while the recorder
 *     itself is running (e.g. by pthread_atfork's bookkeeping) straight to glibc, unlogged.
 *
 *  3. Ordering. An event's slot is taken with one atomic fetch-and-add on the header's
 *     `next`, so the log order is a total order consistent with real time. A free is
 *     logged *before* the real free and an allocation *after* the real allocation; so when
 *     thread A frees p and thread B is then handed p, A's free always precedes B's malloc in
 *     the log. realloc is logged as BEGIN (before) and END (after), like mtrace's `<`/`>`.
 *
 *  4. Durability. The mapping is MAP_SHARED: a store is in the page cache as soon as it
 *     retires, so SIGKILL loses nothing already stored. An event's `kind` is stored last,
 *     with release ordering; a slot left with kind 0 was never completed and is skipped.
 *
 *  5. Growth. 64 GiB of address space is reserved for the mapping up front; the file
 *     behind it grows in 64 MiB steps (ftruncate under a mutex) just before a slot would
 *     pass its end. Events past 64 GiB are counted in `dropped` rather than written.
 *
 *  6. Processes. The first process to create the log owns it (O_CREAT|O_EXCL); its pid is
 *     the header's `owner_pid`. After exec, the new image (same pid) reopens the log, logs
 *     an EXEC event and continues. A child after fork stops recording (pthread_atfork
 *     handler); a child that execs finds a log owned by another pid and stays silent.
 *
 *  7. Sites. Every event carries __builtin_return_address(0), the caller of the heap
 *     function. At start-up and at exit the library copies /proc/self/maps to
 *     LOG.maps.IMAGE so the converter can name sites as `module+offset`.
 *
 *  8. Threads. Events carry gettid() (cached per thread). A pthread key destructor logs
 *     THREAD_EXIT when a thread that allocated ends, so the converter can reuse its
 *     trace-thread number.
 */
#define _GNU_SOURCE
#include "heaplab_recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *block, size_t size);
extern void __libc_free(void *block);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

#define HL_RESERVE (1ULL << 36)   /* address space reserved for the log mapping */
#define HL_GROW (64ULL << 20)     /* file growth step */
#define HL_EXPORT __attribute__((visibility("default")))
#define HL_TLS __thread __attribute__((tls_model("initial-exec")))
#define HL_CALLER ((uint64_t)(uintptr_t)__builtin_return_address(0))
#define HL_UNLIKELY(x) __builtin_expect(!!(x), 0)

static struct hl_log_header *g_log;    /* the mapping; NULL when not recording */
static uint64_t g_file_size;           /* current file length (atomic) */
static int g_fd = -1;
static int g_enabled;                  /* 1 while this process records (atomic) */
static uint64_t g_image;               /* this image's number, 1-based */
static pthread_mutex_t g_grow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t g_thread_key;
static int g_thread_key_ok;
static char g_maps_path[PATH_MAX];

static HL_TLS int t_busy;        /* > 0 while the recorder runs on this thread */
static HL_TLS uint32_t t_tid;    /* cached gettid(), 0 until first use */

/* ---- the log ---------------------------------------------------------------------- */

/* Makes the file at least `need` bytes long. Returns 0 if it cannot. */
static int hl_grow(uint64_t need)
{
    int ok = 1;
    pthread_mutex_lock(&g_grow_lock);
    uint64_t size = __atomic_load_n(&g_file_size, __ATOMIC_ACQUIRE);
    if (need > size) {
        uint64_t target = size;
        while (target < need) target += HL_GROW;
        if (target > HL_RESERVE) target = HL_RESERVE;
        if (target < need || ftruncate(g_fd, (off_t)target) != 0) {
            ok = 0;
        } else {
            __atomic_store_n(&g_file_size, target, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&g_grow_lock);
    return ok;
}

static uint32_t hl_tid(void)
{
    if (HL_UNLIKELY(t_tid == 0)) {
        t_tid = (uint32_t)syscall(SYS_gettid);
        if (g_thread_key_ok) pthread_setspecific(g_thread_key, (void *)1);
    }
    return t_tid;
}

/* Appends one event. Call with t_busy raised. */
static void hl_log(uint32_t kind, uint64_t a, uint64_t b, uint64_t site)
{
    struct hl_log_header *log = g_log;
    uint64_t offset = __atomic_fetch_add(&log->next, HL_EVENT_SIZE, __ATOMIC_RELAXED);
    if (HL_UNLIKELY(offset + HL_EVENT_SIZE > __atomic_load_n(&g_file_size, __ATOMIC_ACQUIRE))) {
        if (offset + HL_EVENT_SIZE > HL_RESERVE || !hl_grow(offset + HL_EVENT_SIZE)) {
            __atomic_fetch_add(&log->dropped, 1, __ATOMIC_RELAXED);
            return;
        }
    }
    struct hl_event *event = (struct hl_event *)((char *)log + offset);
    event->tid = hl_tid();
    event->a = a;
    event->b = b;
    event->site = site;
    __atomic_store_n(&event->kind, kind, __ATOMIC_RELEASE);
}

static inline int hl_active(void)
{
    return __atomic_load_n(&g_enabled, __ATOMIC_RELAXED) && t_busy == 0;
}

/* ---- process life cycle ------------------------------------------------------------ */

static void hl_thread_exit(void *unused)
{
    (void)unused;
    if (hl_active()) {
        t_busy++;
        hl_log(HL_EV_THREAD_EXIT, 0, 0, 0);
        t_busy--;
    }
}

static void hl_after_fork_child(void)
{
    __atomic_store_n(&g_enabled, 0, __ATOMIC_RELAXED);
}

/* Copies /proc/self/maps to LOG.maps.IMAGE, with read/write only (no stdio, no malloc). */
static void hl_snapshot_maps(void)
{
    if (g_maps_path[0] == 0) return;
    int in = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (in < 0) return;
    int out = open(g_maps_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out >= 0) {
        char buffer[4096];
        for (;;) {
            ssize_t n = read(in, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            ssize_t done = 0;
            while (done < n) {
                ssize_t w = write(out, buffer + done, (size_t)(n - done));
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) { done = n; break; }
                done += w;
            }
        }
        close(out);
    }
    close(in);
}

/* Builds "PATH.maps.N" into g_maps_path. */
static void hl_set_maps_path(const char *path, uint64_t image)
{
    size_t length = strlen(path);
    char digits[24];
    int count = 0;
    do { digits[count++] = (char)('0' + image % 10); image /= 10; } while (image > 0);
    if (length + 6 + (size_t)count + 1 > sizeof g_maps_path) return;
    memcpy(g_maps_path, path, length);
    memcpy(g_maps_path + length, ".maps.", 6);
    for (int i = 0; i < count; i++) g_maps_path[length + 6 + i] = digits[count - 1 - i];
    g_maps_path[length + 6 + count] = 0;
}

__attribute__((constructor(101))) static void hl_start(void)
{
    t_busy++;
    const char *path = getenv(HL_LOG_ENV);
    if (path == NULL || path[0] == 0) goto out;

    int fresh = 1;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno != EEXIST) goto out;
        fresh = 0;
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) goto out;
        struct hl_log_header header;
        if (pread(fd, &header, sizeof header, 0) != (ssize_t)sizeof header
            || memcmp(header.magic, HL_LOG_MAGIC, 8) != 0
            || header.owner_pid != (uint64_t)getpid()) {
            close(fd); /* another process's log: a forked child that exec'd. Stay silent. */
            goto out;
        }
    } else if (ftruncate(fd, (off_t)HL_GROW) != 0) {
        close(fd);
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); goto out; }
    void *base = mmap(NULL, HL_RESERVE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (base == MAP_FAILED) { close(fd); goto out; }

    struct hl_log_header *log = base;
    if (fresh) {
        log->owner_pid = (uint64_t)getpid();
        log->images = 1;
        __atomic_store_n(&log->next, (uint64_t)HL_HEADER_SIZE, __ATOMIC_RELEASE);
        memcpy(log->magic, HL_LOG_MAGIC, 8);
    } else {
        __atomic_fetch_add(&log->images, 1, __ATOMIC_RELAXED);
    }
    g_image = __atomic_load_n(&log->images, __ATOMIC_RELAXED);
    g_fd = fd;
    g_log = log;
    __atomic_store_n(&g_file_size, (uint64_t)st.st_size, __ATOMIC_RELEASE);
    hl_set_maps_path(path, g_image);

    g_thread_key_ok = pthread_key_create(&g_thread_key, hl_thread_exit) == 0;
    pthread_atfork(NULL, NULL, hl_after_fork_child);
    if (!fresh) hl_log(HL_EV_EXEC, g_image, 0, 0);
    hl_snapshot_maps();
    __atomic_store_n(&g_enabled, 1, __ATOMIC_RELEASE);
out:
    t_busy--;
}

__attribute__((destructor)) static void hl_stop(void)
{
    /* Libraries loaded since start-up are in the maps now. Recording goes on: frees made
       by later exit handlers are still logged. */
    if (__atomic_load_n(&g_enabled, __ATOMIC_RELAXED)) {
        t_busy++;
        hl_snapshot_maps();
        t_busy--;
    }
}

/* ---- the interposed functions ------------------------------------------------------- */

HL_EXPORT void *malloc(size_t size)
{
    if (!hl_active()) return __libc_malloc(size);
    t_busy++;
    void *block = __libc_malloc(size);
    hl_log(HL_EV_MALLOC, (uint64_t)(uintptr_t)block, size, HL_CALLER);
    t_busy--;
    return block;
}

HL_EXPORT void free(void *block)
{
    if (block == NULL || !hl_active()) {
        __libc_free(block);
        return;
    }
    t_busy++;
    hl_log(HL_EV_FREE, (uint64_t)(uintptr_t)block, 0, HL_CALLER);
    __libc_free(block);
    t_busy--;
}

HL_EXPORT void *calloc(size_t count, size_t size)
{
    if (!hl_active()) return __libc_calloc(count, size);
    t_busy++;
    void *block = __libc_calloc(count, size);
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) bytes = SIZE_MAX;
    hl_log(HL_EV_MALLOC, (uint64_t)(uintptr_t)block, bytes, HL_CALLER);
    t_busy--;
    return block;
}

static void *hl_realloc(void *block, size_t size, uint64_t caller)
{
    if (block == NULL) {
        void *fresh = __libc_malloc(size);
        hl_log(HL_EV_MALLOC, (uint64_t)(uintptr_t)fresh, size, caller);
        return fresh;
    }
    hl_log(HL_EV_REALLOC_BEGIN, (uint64_t)(uintptr_t)block, 0, caller);
    void *result = __libc_realloc(block, size);
    hl_log(HL_EV_REALLOC_END, (uint64_t)(uintptr_t)result, size, caller);
    return result;
}

HL_EXPORT void *realloc(void *block, size_t size)
{
    if (!hl_active()) return __libc_realloc(block, size);
    t_busy++;
    void *result = hl_realloc(block, size, HL_CALLER);
    t_busy--;
    return result;
}

HL_EXPORT void *reallocarray(void *block, size_t count, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!hl_active()) return __libc_realloc(block, bytes);
    t_busy++;
    void *result = hl_realloc(block, bytes, HL_CALLER);
    t_busy--;
    return result;
}

static void *hl_aligned(size_t alignment, size_t size, uint64_t caller)
{
    if (!hl_active()) return __libc_memalign(alignment, size);
    t_busy++;
    void *block = __libc_memalign(alignment, size);
    hl_log(HL_EV_MALLOC, (uint64_t)(uintptr_t)block, size, caller);
    t_busy--;
    return block;
}

HL_EXPORT void *memalign(size_t alignment, size_t size)
{
    return hl_aligned(alignment, size, HL_CALLER);
}

HL_EXPORT void *aligned_alloc(size_t alignment, size_t size)
{
    return hl_aligned(alignment, size, HL_CALLER);
}

HL_EXPORT int posix_memalign(void **result, size_t alignment, size_t size)
{
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0)
        return EINVAL;
    int saved = errno;
    void *block = hl_aligned(alignment, size, HL_CALLER);
    if (block == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *result = block;
    return 0;
}

HL_EXPORT void *valloc(size_t size)
{
    if (!hl_active()) return __libc_valloc(size);
    t_busy++;
    void *block = __libc_valloc(size);
    hl_log(HL_EV_MALLOC, (uint64_t)(uintptr_t)block, size, HL_CALLER);
    t_busy--;
    return block;
}

HL_EXPORT void *pvalloc(size_t size)
{
    if (!hl_active()) return __libc_pvalloc(size);
    t_busy++;
    void *block = __libc_pvalloc(size);
    hl_log(HL_EV_MALLOC, (uint64_t)(uintptr_t)block, size, HL_CALLER);
    t_busy--;
    return block;
}
