/* linattn - allocation wrappers and fault injection for tests.
 *
 * Not installed and not part of the API: the library's own files allocate
 * through linattn_malloc & co. (lib/alloc.c) so that tests can make any one
 * allocation fail, and the OpenCL backend asks linattn_fault_on() whether
 * to simulate a failing program build or device allocation.  The switch is
 * the environment variable LINATTN_FAULT, read once per process (at the
 * first allocation or query), a comma-separated list of:
 *   malloc:N     the N-th library allocation fails (counted from 1), only it
 *   malloc:N+    the N-th and every later one fails
 *   cl_build     every OpenCL program build fails as if the compiler rejected
 *                the source (build log on stderr, LINATTN_EDEVICE)
 *   cl_oom       every device buffer allocation fails with
 *                CL_MEM_OBJECT_ALLOCATION_FAILURE (LINATTN_ENOMEM)
 *   cl_auto_any  the auto backend may take a CPU-type OpenCL device (PoCL),
 *                so that its CPU fallback can be tested without a GPU
 * linattn_test_fault_set() replaces the setting in a running process (tests
 * run with CK_FORK=no cannot re-read the environment).  Like everything
 * here, the linattn_test_* functions are not exported from liblinattn.so:
 * check_faults links a private static copy (tests/liblinattn-internal.la). */
#ifndef LINATTN_FAULT_H
#define LINATTN_FAULT_H

#include <stddef.h>

#define LINATTN_FAULT_CL_BUILD 1
#define LINATTN_FAULT_CL_OOM 2
#define LINATTN_FAULT_CL_AUTO_ANY 4

/* Nonzero when fault 'what' (LINATTN_FAULT_CL_*) is switched on. */
int linattn_fault_on(int what);

/* malloc, calloc, realloc and aligned_alloc that honour malloc:N (an
 * injected failure returns NULL and leaves a realloc'd block as it was). */
void *linattn_malloc(size_t size);
void *linattn_calloc(size_t n, size_t size);
void *linattn_realloc(void *p, size_t size);
void *linattn_aligned_alloc(size_t align, size_t size);

/* Tests only (unstable).  Replace the fault setting (the LINATTN_FAULT
 * syntax; NULL or "" switches every fault off) and reset the counters:
 * LINATTN_OK, or LINATTN_EINVAL for an item it does not know (then nothing
 * changes). */
int linattn_test_fault_set(const char *spec);
/* Library allocations made, and allocations made to fail, since the last
 * linattn_test_fault_set() (or the start of the process). */
long long linattn_test_fault_allocs(void);
long long linattn_test_fault_hits(void);
/* Free the scratch a context keeps between calls (runner.c), so that the
 * next call allocates it again. */
struct linattn_ctx;
void linattn_test_ctx_trim(struct linattn_ctx *ctx);

#endif
