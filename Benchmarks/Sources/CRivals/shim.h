// The rival allocators' own entry points (Debian: libjemalloc-dev, libmimalloc-dev,
// libgoogle-perftools-dev). Declared here rather than through their headers, which also
// redeclare malloc and friends.
#include <stddef.h>
void *mallocx(size_t size, int flags);
void sdallocx(void *ptr, size_t size, int flags);
void *mi_malloc(size_t size);
void mi_free_size(void *p, size_t size);
void *tc_malloc(size_t size);
void tc_free_sized(void *ptr, size_t size);
void *__libc_malloc(size_t size);
void __libc_free(void *ptr);
