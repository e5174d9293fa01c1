/* linattn - allocation wrappers and the test-only fault switch (fault.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int flags;          /* LINATTN_FAULT_CL_* */
static atomic_llong fail_at;      /* allocation number that fails; 0: none */
static atomic_int fail_later;     /* and every one after it */
static atomic_llong allocs, hits; /* counters since the last setting */

/* Parse spec into *fl, *at, *later: 0, or -1 with the bad item in bad[]. */
static int parse(const char *spec, int *fl, long long *at, int *later, char *bad, size_t nbad)
{
    *fl = 0;
    *at = 0;
    *later = 0;
    while (spec && *spec) {
        size_t n = strcspn(spec, ",");
        char item[64];
        if (n >= sizeof item) n = sizeof item - 1;
        memcpy(item, spec, n);
        item[n] = '\0';
        spec += strcspn(spec, ",");
        if (*spec == ',') spec++;
        char *end;
        if (!item[0]) continue;
        if (!strcmp(item, "cl_build")) {
            *fl |= LINATTN_FAULT_CL_BUILD;
        } else if (!strcmp(item, "cl_oom")) {
            *fl |= LINATTN_FAULT_CL_OOM;
        } else if (!strcmp(item, "cl_auto_any")) {
            *fl |= LINATTN_FAULT_CL_AUTO_ANY;
        } else if (!strncmp(item, "malloc:", 7) && item[7] >= '1' && item[7] <= '9' &&
                   (*at = strtoll(item + 7, &end, 10)) > 0 && (!*end || !strcmp(end, "+"))) {
            *later = *end == '+';
        } else {
            snprintf(bad, nbad, "%s", item);
            return -1;
        }
    }
    return 0;
}

static void store(int fl, long long at, int later)
{
    atomic_store(&flags, fl);
    atomic_store(&fail_later, later);
    atomic_store(&fail_at, at);
    atomic_store(&allocs, 0);
    atomic_store(&hits, 0);
}

static void read_env(void)
{
    const char *s = getenv("LINATTN_FAULT");
    int fl, later;
    long long at;
    char bad[64];
    if (!s || !*s) return;
    if (parse(s, &fl, &at, &later, bad, sizeof bad)) {
        fprintf(stderr, "linattn: LINATTN_FAULT=%s: unknown item '%s'; no fault injected\n", s,
                bad);
        return;
    }
    store(fl, at, later);
}

int linattn_test_fault_set(const char *spec)
{
    int fl, later;
    long long at;
    char bad[64];
    pthread_once(&once, read_env); /* so that the environment is not read later */
    if (parse(spec, &fl, &at, &later, bad, sizeof bad))
        return linattn_fail(LINATTN_EINVAL, "fault setting: unknown item '%s'", bad);
    store(fl, at, later);
    return LINATTN_OK;
}

long long linattn_test_fault_allocs(void) { return atomic_load(&allocs); }
long long linattn_test_fault_hits(void) { return atomic_load(&hits); }

int linattn_fault_on(int what)
{
    pthread_once(&once, read_env);
    return (atomic_load(&flags) & what) != 0;
}

/* 1 when this allocation is to fail. */
static int fail_now(void)
{
    pthread_once(&once, read_env);
    const long long n = atomic_fetch_add(&allocs, 1) + 1;
    const long long at = atomic_load(&fail_at);
    if (!at || n < at || (n > at && !atomic_load(&fail_later))) return 0;
    atomic_fetch_add(&hits, 1);
    return 1;
}

void *linattn_malloc(size_t size) { return fail_now() ? NULL : malloc(size); }
void *linattn_calloc(size_t n, size_t size) { return fail_now() ? NULL : calloc(n, size); }
void *linattn_realloc(void *p, size_t size) { return fail_now() ? NULL : realloc(p, size); }
void *linattn_aligned_alloc(size_t align, size_t size)
{
    return fail_now() ? NULL : aligned_alloc(align, size);
}
