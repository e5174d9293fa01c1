/* linattn - the scratch memory a context keeps, and the jobs of one call.
 *
 * Every driver plans a call, takes scratch (per-thread slices plus a part
 * shared by the call), runs jobs on the context's threads and gives the
 * scratch back.  The scratch comes from a small pool of blocks kept by the
 * context, so that a decode step allocates nothing once a first step has
 * grown a block: several threads may share one context, so a block is
 * taken under a mutex and is the caller's alone until given back; when
 * every block is busy the call allocates one of its own. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "internal.h"

#define POOL_SLOTS 8
#define ALIGN 64

struct linattn_wspool {
    pthread_mutex_t lock;
    struct {
        void *mem;
        size_t size;
        int busy;
    } s[POOL_SLOTS];
};

int linattn_wspool_create(linattn_wspool **out)
{
    linattn_wspool *p = linattn_calloc(1, sizeof *p);
    *out = NULL;
    if (!p) return linattn_fail(LINATTN_ENOMEM, "ctx: out of memory");
    if (pthread_mutex_init(&p->lock, NULL)) {
        free(p);
        return linattn_fail(LINATTN_ENOMEM, "ctx: cannot create a mutex");
    }
    *out = p;
    return LINATTN_OK;
}

/* Free the blocks nobody holds. */
static void trim(linattn_wspool *p)
{
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < POOL_SLOTS; i++)
        if (!p->s[i].busy) {
            free(p->s[i].mem);
            p->s[i].mem = NULL;
            p->s[i].size = 0;
        }
    pthread_mutex_unlock(&p->lock);
}

void linattn_wspool_destroy(linattn_wspool *p)
{
    if (!p) return;
    trim(p);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void linattn_test_ctx_trim(linattn_ctx *ctx)
{
    if (ctx && ctx->ws) trim(ctx->ws);
}

/* A block of at least size bytes (a multiple of ALIGN): the smallest idle
 * one that fits; else an idle one (empty first, then the largest) is
 * replaced by a larger one; else a block of the call's own (*slot = -1). */
static void *take(linattn_wspool *p, size_t size, int *slot)
{
    int fit = -1, other = -1;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < POOL_SLOTS; i++) {
        if (p->s[i].busy) continue;
        if (p->s[i].size >= size) {
            if (fit < 0 || p->s[i].size < p->s[fit].size) fit = i;
        } else if (other < 0 || (p->s[other].mem && (!p->s[i].mem ||
                                                     p->s[i].size > p->s[other].size))) {
            other = i;
        }
    }
    const int i = fit >= 0 ? fit : other;
    if (i >= 0) p->s[i].busy = 1;
    pthread_mutex_unlock(&p->lock);
    *slot = i;
    if (i < 0) return linattn_aligned_alloc(ALIGN, size);
    if (fit >= 0) return p->s[i].mem;
    /* grow by half at least, so that a slowly growing need (a decode step
     * over a growing cache) reallocates now and then, not every call */
    size_t grow = p->s[i].size < SIZE_MAX / 4 ? p->s[i].size + p->s[i].size / 2 : 0;
    grow = grow / ALIGN * ALIGN;
    if (grow < size) grow = size;
    free(p->s[i].mem);
    void *mem = linattn_aligned_alloc(ALIGN, grow);
    if (!mem && grow > size) mem = linattn_aligned_alloc(ALIGN, grow = size);
    p->s[i].mem = mem;
    p->s[i].size = mem ? grow : 0;
    if (!mem) {
        pthread_mutex_lock(&p->lock);
        p->s[i].busy = 0;
        pthread_mutex_unlock(&p->lock);
    }
    return mem;
}

static void give(linattn_wspool *p, void *mem, int slot)
{
    if (slot < 0) {
        free(mem);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->s[slot].busy = 0;
    pthread_mutex_unlock(&p->lock);
}

/* a + b into *a, 1 on overflow */
static int add(size_t *a, size_t b)
{
    if (*a > SIZE_MAX - b) return 1;
    *a += b;
    return 0;
}

/* n * m * e into *out, 1 on overflow */
static int mul3(size_t n, size_t m, size_t e, size_t *out)
{
    if (m && n > SIZE_MAX / m) return 1;
    if (e && n * m > SIZE_MAX / e) return 1;
    *out = n * m * e;
    return 0;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

int linattn_runner_begin(linattn_runner *r, const linattn_ctx *ctx, size_t work_floats,
                         size_t dwork_n, size_t shared_bytes, const char *what)
{
    const int nt = linattn_max_threads(ctx);
    size_t wb, db, total;
    r->ctx = ctx;
    r->threads = nt;
    r->work_floats = round_up(work_floats, 16);
    r->dwork_n = round_up(dwork_n, 8);
    r->mem = NULL;
    r->slot = -1;
    if (r->work_floats < work_floats || mul3(r->work_floats, (size_t)nt, sizeof(float), &wb) ||
        mul3(r->dwork_n, (size_t)nt, sizeof(double), &db) || (total = wb, add(&total, db)) ||
        add(&total, shared_bytes) || add(&total, ALIGN))
        return linattn_fail(LINATTN_ENOMEM, "%s: out of memory for scratch", what);
    total = round_up(total, ALIGN);
    char *m = ctx->ws ? take(ctx->ws, total, &r->slot) : linattn_aligned_alloc(ALIGN, total);
    if (!m) return linattn_fail(LINATTN_ENOMEM, "%s: out of memory for scratch", what);
    r->mem = m;
    r->work = (float *)m;
    r->dwork = (double *)(m + wb);
    r->shared = m + round_up(wb + db, ALIGN);
    return LINATTN_OK;
}

void *linattn_ws_take(const linattn_ctx *ctx, size_t bytes, int *slot)
{
    bytes = round_up(bytes ? bytes : 1, ALIGN);
    if (ctx->ws) return take(ctx->ws, bytes, slot);
    *slot = -1;
    return linattn_aligned_alloc(ALIGN, bytes);
}

void linattn_ws_give(const linattn_ctx *ctx, void *mem, int slot)
{
    if (!mem) return;
    if (ctx->ws) give(ctx->ws, mem, slot);
    else free(mem);
}

void linattn_runner_jobs(const linattn_runner *r, int64_t njobs, linattn_job_fn fn, void *arg,
                         int blas)
{
    const int began = linattn_blas_serial_begin(blas);
    linattn_parallel_for(r->ctx, njobs, fn, arg);
    linattn_blas_serial_end(began);
}

void linattn_runner_end(linattn_runner *r)
{
    if (!r->mem) return;
    if (r->ctx->ws) give(r->ctx->ws, r->mem, r->slot);
    else free(r->mem);
    r->mem = NULL;
}
