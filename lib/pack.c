/* linattn - tensors a path cannot address in place, as dense float32
 * copies for the call: gathered (and converted) before it, scattered back
 * (rounded once) after it for the tensors it writes.  The paths read most
 * float32 views in place (the delta family's rows on the CPU); this covers
 * the rest: a last dimension that is not contiguous, every view on OpenCL,
 * and 16-bit element types (linattn(3), STRIDED TENSORS, HALF PRECISION). */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

int linattn_dense(const linattn_tensor *t)
{
    int64_t acc = 1, any = 0;
    for (int d = 0; d < t->ndim; d++) any |= t->strides[d];
    if (!any) return 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] > 1 && t->strides[d] != acc) return 0;
        acc *= t->shape[d];
    }
    return 1;
}

int linattn_unit_rows(const linattn_tensor *t)
{
    return t->dtype == LINATTN_F32 && linattn_dense_f32_rows(t);
}

int linattn_dense_f32_rows(const linattn_tensor *t)
{
    return t->ndim == 0 || t->shape[t->ndim - 1] == 1 || linattn_dense(t) ||
           t->strides[t->ndim - 1] == 1;
}

/* Copy between the view (its strides, its dtype) at view and the dense
 * float32 array dense, either way (to the view: rounded to its dtype),
 * converting with the context's kernel table, in blocks of rows over its
 * threads (a prefill's q, k, v are tens of megabytes). */
typedef struct copy_arg {
    const linattn_kernels *k;
    linattn_dtype dt;
    char *view;
    float *dense;
    int to_dense;
    size_t es;
    int64_t sh[4], st[4], rows, per;
} copy_arg;

#define COPY_ROWS_MIN 4096
#define HOST_ALIGN 64 /* bytes: each host copy starts at a cache line */ /* floats of a block of rows, at least */

static void copy_rows(void *arg, int64_t job, int thread)
{
    (void)thread;
    const copy_arg *c = arg;
    const int64_t r1 = (job + 1) * c->per < c->rows ? (job + 1) * c->per : c->rows;
    for (int64_t r = job * c->per; r < r1; r++) {
        const int64_t a = r / (c->sh[1] * c->sh[2]), b = r / c->sh[2] % c->sh[1], cc = r % c->sh[2];
        char *row = c->view + (ptrdiff_t)c->es * (a * c->st[0] + b * c->st[1] + cc * c->st[2]);
        float *d = c->dense + (size_t)r * (size_t)c->sh[3];
        if (c->st[3] == 1) { /* a contiguous row: convert it at once */
            if (c->to_dense) linattn_to_f32(c->k, row, c->dt, d, (size_t)c->sh[3]);
            else linattn_from_f32(c->k, d, row, c->dt, (size_t)c->sh[3]);
            continue;
        }
        for (int64_t i = 0; i < c->sh[3]; i++) {
            char *x = row + (ptrdiff_t)c->es * i * c->st[3];
            if (c->to_dense) linattn_to_f32(c->k, x, c->dt, d + i, 1);
            else linattn_from_f32(c->k, d + i, x, c->dt, 1);
        }
    }
}

static void host_copy(const linattn_ctx *ctx, const linattn_tensor *t, char *view, float *dense,
                      int to_dense)
{
    copy_arg c = {.k = &ctx->kern, .dt = t->dtype, .view = view, .dense = dense,
                  .to_dense = to_dense, .es = linattn_dtype_size(t->dtype),
                  .sh = {1, 1, 1, 1}, .st = {0, 0, 0, 0}};
    int64_t s[LINATTN_MAX_DIMS];
    linattn_strides(t, s);
    for (int d = 0; d < t->ndim; d++) {
        c.sh[4 - t->ndim + d] = t->shape[d];
        c.st[4 - t->ndim + d] = s[d];
    }
    c.rows = c.sh[0] * c.sh[1] * c.sh[2];
    c.per = (COPY_ROWS_MIN + c.sh[3] - 1) / c.sh[3];
    const int64_t blocks = (c.rows + c.per - 1) / c.per;
    if (blocks > 1) linattn_parallel_for(ctx, blocks, copy_rows, &c);
    else if (blocks == 1) copy_rows(&c, 0, 0);
}

/* Element [0,..] of a host view, whatever its dtype. */
static char *view_base(const linattn_tensor *t)
{
    char *base = t->buf ? (char *)linattn_host(&(linattn_tensor){.buf = t->buf})
                        : (char *)(uintptr_t)t->data;
    return base + (ptrdiff_t)linattn_dtype_size(t->dtype) * t->offset;
}

static size_t count_of(const linattn_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

static int same_view(const linattn_tensor *a, const linattn_tensor *b)
{
    return a->data == b->data && a->buf == b->buf && a->offset == b->offset &&
           a->dtype == b->dtype &&
           a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof a->shape) &&
           !memcmp(a->strides, b->strides, sizeof a->strides);
}

static int on_device(const linattn_ctx *ctx, const linattn_tensor *t)
{
    return ctx->cl && t->buf;
}

unsigned linattn_pack_need(const linattn_ctx *ctx, linattn_tensor *const *ts, int n,
                           unsigned rows_ok, unsigned any_ok, unsigned half_ok)
{
    unsigned need = 0;
    for (int i = 0; i < n; i++) {
        const linattn_tensor *t = ts[i];
        int ok;
        if (!linattn_given(t)) continue;
        if (t->dtype != LINATTN_F32) /* the kernels compute in float32; a few paths
                                        convert their rows themselves (half_ok): on
                                        OpenCL dense, at the start of a buffer */
            ok = (half_ok >> i & 1u) && (ctx->cl ? linattn_dense(t) && !(t->buf && t->offset)
                                                 : linattn_dense_f32_rows(t));
        else if (ctx->cl) /* the OpenCL kernels take dense tensors at the start of their buffers */
            ok = linattn_dense(t) && !(t->buf && t->offset);
        else
            ok = linattn_dense(t) || (any_ok >> i & 1u) ||
                 ((rows_ok >> i & 1u) && linattn_unit_rows(t));
        if (!ok) need |= 1u << i;
    }
    return need;
}

int linattn_pack_begin(linattn_packset *ps, linattn_ctx *ctx, linattn_tensor *const *ts, int n,
                       unsigned need, unsigned in, unsigned out)
{
    int rc = LINATTN_OK;
    memset(ps, 0, sizeof *ps);
    ps->ctx = ctx;
    ps->slot = -1;
    /* the host copies in one block of the context's pool: a prefill's
     * 16-bit q, k, v are tens of megabytes, and fresh pages for them on
     * every call cost more than the conversion (measured: 5x a float32 call
     * on 16 threads) */
    size_t total = 0, at = 0;
    for (int i = 0; i < n && i < LINATTN_PACK_MAX; i++)
        if ((need >> i & 1u) && linattn_given(ts[i]) && !on_device(ctx, ts[i])) {
            const size_t cnt = count_of(ts[i]);
            if (cnt > (SIZE_MAX - total) / sizeof(float) - HOST_ALIGN)
                return linattn_fail(LINATTN_ENOMEM, "strided view: out of memory for dense "
                                                    "copies");
            total += (cnt * sizeof(float) + HOST_ALIGN - 1) / HOST_ALIGN * HOST_ALIGN;
        }
    if (total && !(ps->mem = linattn_ws_take(ctx, total, &ps->slot)))
        return linattn_fail(LINATTN_ENOMEM, "strided view: out of memory for dense copies of "
                                            "%zu bytes", total);
    for (int i = 0; i < n && i < LINATTN_PACK_MAX; i++) {
        linattn_tensor *t = ts[i];
        if (!(need >> i & 1u) || !linattn_given(t)) continue;
        linattn_pack_entry *e = &ps->e[ps->n];
        e->slot = t;
        e->orig = *t;
        e->out = (out >> i & 1u) != 0;
        for (int j = 0; j < ps->n; j++)
            if (same_view(&ps->e[j].orig, t)) { /* one copy for an in-place state */
                ps->e[j].out |= e->out;
                e->alias = 1;
                e->dense = ps->e[j].dense;
                break;
            }
        ps->n++;
        if (!e->alias) {
            const size_t cnt = count_of(t);
            e->dense = *t;
            memset(e->dense.strides, 0, sizeof e->dense.strides);
            e->dense.offset = 0;
            e->dense.dtype = LINATTN_F32;
            if (on_device(ctx, t)) {
                e->dense.data = NULL;
                /* (an input's copy is written whole by the view copy below) */
                if ((rc = linattn_buffer_make(ctx, cnt, !(in >> i & 1u), &e->dense.buf))) break;
                if (in >> i & 1u) {
                    int64_t s[LINATTN_MAX_DIMS], z[LINATTN_MAX_DIMS];
                    linattn_strides(t, s);
                    linattn_strides(&e->dense, z);
                    if ((rc = linattn_cl_view_copy(ctx->cl, linattn_buffer_mem(t->buf), t->offset,
                                                   s, t->dtype, linattn_buffer_mem(e->dense.buf),
                                                   0, z, LINATTN_F32, t->shape, t->ndim,
                                                   linattn_dense(t))))
                        break;
                }
            } else {
                float *h = (float *)(ps->mem + at);
                at += (cnt * sizeof(float) + HOST_ALIGN - 1) / HOST_ALIGN * HOST_ALIGN;
                e->dense.data = h;
                e->dense.buf = NULL;
                e->host = h;
                if (in >> i & 1u) host_copy(ctx, t, view_base(t), h, 1);
            }
        }
        *t = e->dense;
    }
    if (rc) linattn_pack_end(ps, rc);
    return rc;
}

int linattn_pack_end(linattn_packset *ps, int rc)
{
    for (int i = 0; i < ps->n; i++) {
        linattn_pack_entry *e = &ps->e[i];
        *e->slot = e->orig;
        if (e->alias) continue;
        if (!rc && e->out) {
            if (e->dense.buf) {
                int64_t s[LINATTN_MAX_DIMS], z[LINATTN_MAX_DIMS];
                linattn_strides(&e->orig, s);
                linattn_strides(&e->dense, z);
                rc = linattn_cl_view_copy(ps->ctx->cl, linattn_buffer_mem(e->dense.buf), 0, z,
                                          LINATTN_F32, linattn_buffer_mem(e->orig.buf),
                                          e->orig.offset, s, e->orig.dtype, e->orig.shape,
                                          e->orig.ndim, linattn_dense(&e->orig));
            } else if (e->host) {
                host_copy(ps->ctx, &e->orig, view_base(&e->orig), e->host, 0);
            }
        }
        if (e->dense.buf) linattn_buffer_destroy(e->dense.buf);
    }
    linattn_ws_give(ps->ctx, ps->mem, ps->slot);
    ps->mem = NULL;
    ps->n = 0;
    return rc;
}

int linattn_views_begin(linattn_packset *ps, linattn_ctx *ctx, linattn_tensor *const *ts,
                        const char *const *names, int n, unsigned in, unsigned out,
                        unsigned rows_ok, unsigned any_ok, unsigned half_ok)
{
    int rc;
    memset(ps, 0, sizeof *ps);
    ps->ctx = ctx;
    ps->slot = -1;
    if ((rc = linattn_check_views(ctx, ts, names, n, out))) return rc;
    return linattn_pack_begin(ps, ctx, ts, n,
                              linattn_pack_need(ctx, ts, n, rows_ok, any_ok, half_ok), in, out);
}
