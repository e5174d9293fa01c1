/* linattn - a later segment of a split forward on an OpenCL context
 * (delta_seg.c, linattn_segment(3)): its inputs go up once, both runs of
 * its summary read them there, its outputs o0 and oA stay on the device;
 * only A and B (K^2 + KV floats per head) come down for the scan on the
 * host and only its entering state S goes up; o += oA S runs on the device
 * (segment.cl), then o comes down once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "segment.h"

double linattn_segdev_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t count_of(const linattn_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* A fresh device buffer holding the host view (absent stays absent): one
 * write, from the view itself when it is dense float32, else from a dense
 * float32 copy made on the host. */
static int upload(linattn_ctx *ctx, const linattn_tensor *view, linattn_buffer **buf,
                  linattn_tensor *out)
{
    int rc;
    *out = *view;
    if (!linattn_given(view)) return LINATTN_OK;
    linattn_tensor t = *view, *tp = &t;
    linattn_packset ps;
    const unsigned need = t.dtype != LINATTN_F32 || !linattn_dense(&t) ? 1u : 0u;
    if ((rc = linattn_pack_begin(&ps, ctx, &tp, 1, need, 1u, 0u))) return rc;
    const size_t n = count_of(&t);
    if (!(rc = linattn_buffer_create(ctx, n, buf)))
        rc = linattn_buffer_write(*buf, 0, linattn_host(&t), n);
    rc = linattn_pack_end(&ps, rc);
    if (!rc) *out = linattn_tensor_buffer(*buf, view->ndim, view->shape);
    return rc;
}

static void drop_inputs(linattn_segdev *d)
{
    for (int i = 0; i < 6; i++) {
        linattn_buffer_destroy(d->in[i]);
        d->in[i] = NULL;
    }
}

void linattn_segdev_free(linattn_segdev *d)
{
    drop_inputs(d);
    linattn_buffer_destroy(d->o);
    linattn_buffer_destroy(d->oA);
    linattn_buffer_destroy(d->S);
    d->o = d->oA = d->S = NULL;
}

int linattn_segdev_summarise(linattn_segdev *d, linattn_ctx *ctx, int op,
                             const linattn_delta_io *x, const linattn_delta_opts *opts, float *A,
                             float *B)
{
    int rc;
    const int64_t Bt = x->v.shape[0], len = x->v.shape[1], H = x->v.shape[2];
    const int64_t K = x->q.shape[3], V = x->v.shape[3], Ho = x->o.shape[2];
    d->Bt = Bt; d->len = len; d->H = H; d->Ho = Ho; d->K = K; d->V = V;
    double t = linattn_segdev_now();
    linattn_delta_io y = {0};
    if ((rc = upload(ctx, &x->q, &d->in[0], &y.q)) || (rc = upload(ctx, &x->k, &d->in[1], &y.k)) ||
        (rc = upload(ctx, &x->v, &d->in[2], &y.v)) || (rc = upload(ctx, &x->g, &d->in[3], &y.g)) ||
        (rc = upload(ctx, &x->beta, &d->in[4], &y.beta)))
        return rc;
    const int64_t osh[4] = {Bt, len, Ho, V}, ash[4] = {Bt, len, Ho, K};
    if ((rc = linattn_buffer_create(ctx, (size_t)(Bt * len * Ho * V), &d->o)) ||
        (rc = linattn_buffer_create(ctx, (size_t)(Bt * len * Ho * K), &d->oA)))
        return rc;
    d->up = linattn_segdev_now() - t;
    t = linattn_segdev_now();
    /* B and o0: the forward from zero; B comes down (small) */
    y.o = linattn_tensor_buffer(d->o, 4, osh);
    y.hT = linattn_tensor_4d(B, Bt, H, K, V);
    if ((rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &y, opts))) return rc;
    /* A and oA: K columns from the identity (a broadcast host view, K^2
     * floats), values zero (a fresh buffer: zeros on the device) */
    float *eye = linattn_calloc((size_t)(K * K), sizeof(float));
    if (!eye) return linattn_fail(LINATTN_ENOMEM, "split forward: out of memory for scratch");
    for (int64_t i = 0; i < K; i++) eye[i * K + i] = 1.0f;
    linattn_buffer_destroy(d->in[2]); /* v: read */
    d->in[2] = NULL;
    const int64_t zsh[4] = {Bt, len, H, K};
    if (!(rc = linattn_buffer_create(ctx, (size_t)(Bt * len * H * K), &d->in[5]))) {
        y.v = linattn_tensor_buffer(d->in[5], 4, zsh);
        y.h0 = linattn_tensor_4d(eye, Bt, H, K, K);
        y.h0.strides[0] = y.h0.strides[1] = 0;
        y.h0.strides[2] = K;
        y.h0.strides[3] = 1;
        y.hT = linattn_tensor_4d(A, Bt, H, K, K);
        y.o = linattn_tensor_buffer(d->oA, 4, ash);
        rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &y, opts);
    }
    free(eye);
    drop_inputs(d);
    d->sum = linattn_segdev_now() - t;
    return rc;
}

int linattn_segdev_finish(linattn_segdev *d, linattn_ctx *ctx, const float *S,
                          const linattn_tensor *o)
{
    int rc;
    double t = linattn_segdev_now();
    const size_t ns = (size_t)(d->Bt * d->H * d->K * d->V);
    if ((rc = linattn_buffer_create(ctx, ns, &d->S)) ||
        (rc = linattn_buffer_write(d->S, 0, S, ns)) ||
        (rc = linattn_cl_seg_addmul(ctx->cl, linattn_buffer_mem(d->o), linattn_buffer_mem(d->oA),
                                    linattn_buffer_mem(d->S), d->Bt, d->len, d->Ho, d->H,
                                    (int)d->K, (int)d->V)))
        return rc;
    linattn_buffer_destroy(d->oA);
    d->oA = NULL;
    d->fix = linattn_segdev_now() - t;
    t = linattn_segdev_now();
    const size_t n = (size_t)(d->Bt * d->len * d->Ho * d->V);
    if (linattn_dense(o)) { /* straight into the caller's rows */
        rc = linattn_buffer_read(d->o, 0, linattn_host(o), n);
    } else { /* rows at unit stride: down once, then row by row */
        float *h = linattn_malloc(sizeof(float) * n);
        if (!h) return linattn_fail(LINATTN_ENOMEM, "split forward: out of memory for %zu floats "
                                                    "of outputs", n);
        if (!(rc = linattn_buffer_read(d->o, 0, h, n))) {
            const linattn_rows r = linattn_rows_of(o, 1, 1);
            for (int64_t b = 0; b < d->Bt; b++)
                for (int64_t i = 0; i < d->len; i++)
                    for (int64_t j = 0; j < d->Ho; j++)
                        memcpy(linattn_row(&r, b, i, j), h + ((b * d->len + i) * d->Ho + j) * d->V,
                               sizeof(float) * (size_t)d->V);
        }
        free(h);
    }
    d->out = linattn_segdev_now() - t;
    return rc;
}
