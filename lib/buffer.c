/* linattn - buffers: memory where the context computes (host memory on a
 * CPU context, device memory on an OpenCL one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

struct linattn_buffer {
    const linattn_ctx *ctx;
    size_t count;
    float *host; /* CPU contexts */
    void *mem;   /* OpenCL contexts */
};

int linattn_buffer_create(linattn_ctx *ctx, size_t count, linattn_buffer **out)
{
    return linattn_buffer_make(ctx, count, 1, out);
}

int linattn_buffer_make(linattn_ctx *ctx, size_t count, int zero, linattn_buffer **out)
{
    int rc;
    if (!out) return linattn_fail(LINATTN_ENULL, "out: NULL");
    *out = NULL;
    if (!ctx) return linattn_fail(LINATTN_ENULL, "ctx: NULL");
    if (!count) return linattn_fail(LINATTN_ESIZE, "count: 0 (must be > 0)");
    if (count > (SIZE_MAX - 64) / sizeof(float))
        return linattn_fail(LINATTN_EOVERFLOW, "count: %zu floats overflow size_t", count);
    linattn_buffer *b = linattn_calloc(1, sizeof *b);
    if (!b) return linattn_fail(LINATTN_ENOMEM, "buffer: out of memory");
    b->ctx = ctx;
    b->count = count;
    if (ctx->cl) {
        if ((rc = linattn_cl_alloc(ctx->cl, count * sizeof(float), zero, &b->mem))) {
            free(b);
            return rc;
        }
    } else if (!(b->host = linattn_calloc(count, sizeof(float)))) {
        free(b);
        return linattn_fail(LINATTN_ENOMEM, "buffer: out of memory for %zu floats", count);
    }
    *out = b;
    return LINATTN_OK;
}

void linattn_buffer_destroy(linattn_buffer *b)
{
    if (!b) return;
    if (b->mem) linattn_cl_free(b->mem);
    free(b->host);
    free(b);
}

size_t linattn_buffer_count(const linattn_buffer *b) { return b ? b->count : 0; }

void *linattn_buffer_mem(const linattn_buffer *b) { return b->mem; }

static int check_range(const linattn_buffer *b, size_t offset, const void *p, size_t count)
{
    if (!b) return linattn_fail(LINATTN_ENULL, "buf: NULL");
    if (!p) return linattn_fail(LINATTN_ENULL, "host pointer: NULL");
    if (offset > b->count || count > b->count - offset)
        return linattn_fail(LINATTN_ERANGE, "floats [%zu, %zu + %zu) outside a buffer of %zu",
                            offset, offset, count, b->count);
    return LINATTN_OK;
}

int linattn_buffer_write(linattn_buffer *b, size_t offset, const float *src, size_t count)
{
    int rc = check_range(b, offset, src, count);
    if (rc || !count) return rc;
    if (b->mem)
        return linattn_cl_write(b->ctx->cl, b->mem, offset * sizeof(float), count * sizeof(float), src);
    memmove(b->host + offset, src, count * sizeof(float));
    return LINATTN_OK;
}

int linattn_buffer_read(const linattn_buffer *b, size_t offset, float *dst, size_t count)
{
    int rc = check_range(b, offset, dst, count);
    if (rc || !count) return rc;
    if (b->mem)
        return linattn_cl_read(b->ctx->cl, b->mem, offset * sizeof(float), count * sizeof(float), dst);
    memmove(dst, b->host + offset, count * sizeof(float));
    return LINATTN_OK;
}

linattn_tensor linattn_tensor_buffer(linattn_buffer *buf, int ndim, const int64_t *shape)
{
    linattn_tensor t;
    memset(&t, 0, sizeof t);
    t.buf = buf;
    t.ndim = ndim;
    for (int i = 0; i < ndim && i < LINATTN_MAX_DIMS && shape; i++) t.shape[i] = shape[i];
    return t;
}

int linattn_check_buffer(const linattn_ctx *ctx, const linattn_tensor *t, const char *name)
{
    if (!t->buf) return LINATTN_OK;
    if (t->buf->ctx != ctx)
        return linattn_fail(LINATTN_EINVAL, "%s: buffer belongs to another context", name);
    int64_t s[LINATTN_MAX_DIMS];
    linattn_strides(t, s);
    uint64_t last = (uint64_t)t->offset; /* checked not to overflow (check.c) */
    for (int d = 0; d < t->ndim; d++) last += (uint64_t)(t->shape[d] - 1) * (uint64_t)s[d];
    const size_t es = linattn_dtype_size(t->dtype); /* the buffer counts floats */
    if (last >= (uint64_t)t->buf->count * sizeof(float) / es)
        return linattn_fail(LINATTN_ESHAPE, "%s: the view reaches element %llu (%s) of a buffer "
                            "of %zu floats", name, (unsigned long long)last,
                            linattn_dtype_name(t->dtype), t->buf->count);
    return LINATTN_OK;
}

int linattn_check_views(const linattn_ctx *ctx, linattn_tensor *const *t,
                        const char *const *names, int n, unsigned written)
{
    int rc;
    for (int i = 0; i < n; i++) {
        if ((rc = linattn_check_buffer(ctx, t[i], names[i]))) return rc;
        if ((written >> i & 1u) && (rc = linattn_check_written(t[i], names[i]))) return rc;
    }
    return LINATTN_OK;
}

float *linattn_host(const linattn_tensor *t)
{
    /* data is const for the callers of the API; outputs point to writable
     * memory (linattn.h), so writing through it is defined */
    /* float32 tensors only (the others are converted first, pack.c) */
    float *base = t->buf ? t->buf->host : (float *)(uintptr_t)t->data;
    return base ? base + t->offset : NULL;
}

linattn_cl_arg linattn_cl_arg_of(const linattn_tensor *t)
{
    /* (16-bit tensors reach here dense, at the start of their buffers) */
    const size_t es = linattn_dtype_size(t->dtype);
    linattn_cl_arg a = {.host = t->data ? (const float *)(const void *)((const char *)t->data +
                                                                       es * (size_t)t->offset)
                                        : NULL,
                        .mem = t->buf ? t->buf->mem : NULL, .dtype = t->dtype};
    if (linattn_given(t)) {
        a.count = 1;
        for (int d = 0; d < t->ndim; d++) a.count *= (size_t)t->shape[d];
    }
    return a;
}

int linattn_cl_fallback(const linattn_ctx *ctx, int rc, linattn_tensor *const *t, int n)
{
    int bufs = 0;
    for (int i = 0; i < n; i++) bufs |= t[i]->buf != NULL;
    const int fb = rc && ctx->cl_auto && !bufs && (rc == LINATTN_ENOMEM || rc == LINATTN_EDEVICE);
    if (fb && ctx->verbose)
        fprintf(stderr, "linattn: OpenCL failed (%s); running on the CPU\n", linattn_last_error());
    return fb;
}
