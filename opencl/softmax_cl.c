/* linattn - host side of softmax attention on OpenCL (kernels in
 * softmax.cl): the forward; the KV cache in device memory (growth, append)
 * and the split-K decode step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"
#include "softmax_cl_src.h" /* generated from softmax.cl: linattn_softmax_cl_src */

#define A LINATTN_KARG
#define DEV_SPLIT_MIN 64   /* keys in a split of the device step: at least */
#define DEV_SPLIT_MAX 1024 /* and at most (SPLIT_MAX in softmax.cl) */

enum { K_FWD, K_FWD2, K_SPLIT, K_MERGE, K_APPEND, NKERN };
static const char *const kernel_names[NKERN] = {"softmax_fwd", "softmax_fwd2", "softmax_split",
                                                "softmax_merge", "kv_append"};

/* The kernels for (K, V), built on first use; cl->lock held.  stage: 0
 * builds softmax_fwd2 without loads ahead (a program of its own). */
static int kernels(linattn_cl *cl, int K, int V, int stage, cl_kernel *out)
{
    char opts[64];
    snprintf(opts, sizeof opts, "-DK=%d -DV=%d%s", K, V, stage ? "" : " -DSTAGE2=0");
    return linattn_cl_kernels(cl, linattn_softmax_cl_src, opts, kernel_names, NKERN, out);
}

/* Query rows per work-group of softmax_fwd and softmax_fwd2: BQ and BQ2 of
 * softmax.cl; softmax_fwd2 runs work-groups of FWD2_WG (WG2), for V up to
 * FWD2_VMAX. */
#define FWD_ROWS 64
#define FWD2_WG 128
#define FWD2_VMAX 128

/* The forward's kernel, from LINATTN_CL_SOFTMAX (tuning, read at each
 * call): 1 softmax_fwd; 2 softmax_fwd2 where V allows it, 3 (default) the
 * same without its loads ahead (built with -DSTAGE2=0: on an H200, B=1
 * T=16384 H=16 K=V=128, 39.0 ms against 41.4 with them and 88.6 by
 * softmax_fwd); softmax_fwd where V does not allow softmax_fwd2. */
static int fwd_form(int64_t V)
{
    const char *env = getenv("LINATTN_CL_SOFTMAX");
    const int f = env && !strcmp(env, "1") ? 1 : env && !strcmp(env, "2") ? 2 : 3;
    return V <= FWD2_VMAX ? f : 1;
}

/* Keys per split of the device step for L tokens (a function of L alone). */
static int64_t dev_split(int64_t L)
{
    int64_t s = (L + 63) / 64;
    s = (s + 63) / 64 * 64;
    return s < DEV_SPLIT_MIN ? DEV_SPLIT_MIN : s > DEV_SPLIT_MAX ? DEV_SPLIT_MAX : s;
}

/* ---- forward ------------------------------------------------------------ */

static int fwd(linattn_clrun *r, const linattn_cl_softmax *a, cl_kernel kern, size_t wg,
               const char *name, const cl_long *stab, const cl_long *btab, int64_t nblk)
{
    int rc;
    cl_mem q, k, v, o, st, bt;
    linattn_cl *cl = r->cl;
    const size_t sb = sizeof(cl_long) * 2 * (size_t)a->nseq, bb = sizeof(cl_long) * 2 * (size_t)nblk;
    if ((rc = linattn_clrun_resolve(r, &a->q, 1, &q)) || (rc = linattn_clrun_resolve(r, &a->k, 1, &k)) ||
        (rc = linattn_clrun_resolve(r, &a->v, 1, &v)) || (rc = linattn_clrun_resolve(r, &a->o, 0, &o)) ||
        (rc = linattn_clrun_alloc(r, sb, 0, &st)) || (rc = linattn_clrun_alloc(r, bb, 0, &bt)))
        return rc;
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(cl->queue, st, CL_TRUE, 0, sb, stab, 0,
                                                        NULL, NULL), "clEnqueueWriteBuffer");
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(cl->queue, bt, CL_TRUE, 0, bb, btab, 0,
                                                        NULL, NULL), "clEnqueueWriteBuffer");
    const cl_int H = (cl_int)a->H, Hk = (cl_int)a->Hk;
    const float scale = a->scale;
    const linattn_karg args[] = {A(st), A(bt), A(q), A(k), A(v), A(o), A(H), A(Hk), A(scale)};
    if ((rc = linattn_clrun_args(kern, args, 9, name))) return rc;
    const size_t local[2] = {wg, 1};
    const size_t global[2] = {(size_t)nblk * wg, (size_t)a->H};
    if ((rc = linattn_clrun_launch(cl, kern, 2, global, local, name))) return rc;
    return linattn_clrun_out(r, o, &a->o);
}

int linattn_cl_softmax_run(linattn_cl *cl, const linattn_cl_softmax *a)
{
    int rc;
    cl_kernel kn[NKERN];
    linattn_clrun r = {.cl = cl};
    const int qb = FWD_ROWS;
    int64_t nblk = 0;
    cl_long *stab = linattn_malloc(sizeof *stab * 2 * (size_t)a->nseq);
    for (int64_t n = 0; stab && n < a->nseq; n++) {
        const int64_t b = a->cu ? 0 : n, t0 = a->cu ? a->cu[n] : 0;
        const int64_t t1 = a->cu ? a->cu[n + 1] : a->T;
        stab[2 * n] = b * a->T + t0;
        stab[2 * n + 1] = t1 - t0;
        nblk += (t1 - t0 + qb - 1) / qb;
    }
    cl_long *btab = stab ? linattn_malloc(sizeof *btab * 2 * (size_t)nblk) : NULL;
    if (!btab) {
        free(stab);
        return linattn_fail(LINATTN_ENOMEM, "softmax: out of memory");
    }
    /* the longest rows first */
    int64_t g = nblk;
    for (int64_t n = 0; n < a->nseq; n++)
        for (int64_t i0 = 0; i0 < stab[2 * n + 1]; i0 += qb) {
            g--;
            btab[2 * g] = n;
            btab[2 * g + 1] = i0;
        }
    pthread_mutex_lock(&cl->lock);
    const int form = fwd_form(a->V), two = form != 1;
    rc = kernels(cl, a->K, a->V, form != 3, kn);
    if (!rc)
        rc = fwd(&r, a, kn[two ? K_FWD2 : K_FWD], two ? FWD2_WG : LINATTN_CL_WG,
                 kernel_names[two ? K_FWD2 : K_FWD], stab, btab, nblk);
    rc = linattn_clrun_end(&r, rc);
    free(stab);
    free(btab);
    return rc;
}

/* ---- the KV cache ------------------------------------------------------- */

void linattn_cl_kv_free(linattn_cl_kv *kv)
{
    linattn_cl_free(kv->k);
    linattn_cl_free(kv->v);
    linattn_cl_free(kv->part);
    memset(kv, 0, sizeof *kv);
}

static int move_rows(linattn_cl *cl, cl_mem from, cl_mem to, int64_t rows, int d, int64_t len,
                     int64_t oldcap, int64_t newcap)
{
    const size_t f = sizeof(float) * (size_t)d;
    for (int64_t r = 0; r < rows && len; r++)
        LINATTN_CL_CHECK(linattn_clapi.clEnqueueCopyBuffer(cl->queue, from, to, (size_t)(r * oldcap) * f,
                                                           (size_t)(r * newcap) * f, (size_t)len * f,
                                                           0, NULL, NULL),
                         "clEnqueueCopyBuffer");
    return LINATTN_OK;
}

int linattn_cl_kv_resize(linattn_cl *cl, linattn_cl_kv *kv, int64_t rows, int K, int V,
                         int64_t len, int64_t oldcap, int64_t newcap)
{
    int rc;
    void *nk = NULL, *nv = NULL;
    const size_t n = (size_t)rows * (size_t)newcap;
    pthread_mutex_lock(&cl->lock);
    if (!(rc = linattn_cl_alloc_locked(cl, n * K * sizeof(float), 0, &nk)) &&
        !(rc = linattn_cl_alloc_locked(cl, n * V * sizeof(float), 0, &nv)) && kv->k &&
        !(rc = move_rows(cl, kv->k, nk, rows, K, len, oldcap, newcap)))
        rc = move_rows(cl, kv->v, nv, rows, V, len, oldcap, newcap);
    cl_int err = linattn_clapi.clFinish(cl->queue);
    if (!rc && err != CL_SUCCESS) rc = linattn_cl_fail(err, "clFinish");
    if (rc) {
        linattn_cl_free(nk);
        linattn_cl_free(nv);
    } else {
        linattn_cl_free(kv->k);
        linattn_cl_free(kv->v);
        kv->k = nk;
        kv->v = nv;
    }
    pthread_mutex_unlock(&cl->lock);
    return rc;
}

static int kv_step(linattn_clrun *r, linattn_cl_kv *kv, const linattn_cl_kvstep *a,
                   const cl_kernel *kn)
{
    int rc;
    linattn_cl *cl = r->cl;
    cl_mem k, v, q = NULL, o = NULL;
    const int step = a->q.host || a->q.mem;
    const cl_long L = a->len + a->T, nk = a->B * a->T * a->H * a->K, nv = a->B * a->T * a->H * a->V;
    const int64_t S = dev_split(L), nsplit = (L + S - 1) / S;
    const size_t need = (size_t)(a->B * a->Hq * nsplit * (a->V + 2));
    if ((rc = linattn_clrun_resolve(r, &a->k, 1, &k)) || (rc = linattn_clrun_resolve(r, &a->v, 1, &v)))
        return rc;
    if (step && ((rc = linattn_clrun_resolve(r, &a->q, 1, &q)) ||
                 (rc = linattn_clrun_resolve(r, &a->o, 0, &o))))
        return rc;
    if (step && kv->part_floats < need) { /* the split scratch, kept in the cache */
        void *m;
        if ((rc = linattn_cl_alloc_locked(cl, need * sizeof(float), 0, &m))) return rc;
        linattn_cl_free(kv->part);
        kv->part = m;
        kv->part_floats = need;
    }
    cl_mem kc = kv->k, vc = kv->v, part = kv->part;
    const cl_long T = a->T, cap = a->cap, len = a->len;
    const cl_int H = (cl_int)a->H;
    const linattn_karg aa[] = {A(k), A(v), A(kc), A(vc), A(T), A(H), A(cap), A(len), A(nk), A(nv)};
    if ((rc = linattn_clrun_args(kn[K_APPEND], aa, 10, "kv_append"))) return rc;
    const size_t total = (size_t)(nk + nv);
    if ((rc = linattn_clrun_launch(cl, kn[K_APPEND], 1, &total, NULL, "kv_append"))) return rc;
    if (!step) return LINATTN_OK;
    const cl_int Si = (cl_int)S, ns = (cl_int)nsplit, G = (cl_int)(a->Hq / a->H);
    const float scale = a->scale;
    const linattn_karg as[] = {A(kc), A(vc), A(q), A(part), A(cap), A(L), A(Si), A(ns), A(H),
                               A(G), A(scale)};
    if ((rc = linattn_clrun_args(kn[K_SPLIT], as, 11, "softmax_split"))) return rc;
    const size_t local[3] = {LINATTN_CL_WG, 1, 1};
    const size_t gs[3] = {(size_t)nsplit * LINATTN_CL_WG, (size_t)a->Hq, (size_t)a->B};
    if ((rc = linattn_clrun_launch(cl, kn[K_SPLIT], 3, gs, local, "softmax_split"))) return rc;
    const linattn_karg am[] = {A(part), A(o), A(ns)};
    if ((rc = linattn_clrun_args(kn[K_MERGE], am, 3, "softmax_merge"))) return rc;
    const size_t gm[3] = {LINATTN_CL_WG, (size_t)a->Hq, (size_t)a->B};
    if ((rc = linattn_clrun_launch(cl, kn[K_MERGE], 3, gm, local, "softmax_merge"))) return rc;
    return linattn_clrun_out(r, o, &a->o);
}

int linattn_cl_kv_run(linattn_cl *cl, linattn_cl_kv *kv, const linattn_cl_kvstep *a)
{
    int rc;
    cl_kernel kn[NKERN];
    linattn_clrun r = {.cl = cl};
    pthread_mutex_lock(&cl->lock);
    rc = kernels(cl, a->K, a->V, 1, kn);
    if (!rc) rc = kv_step(&r, kv, a, kn);
    rc = linattn_clrun_end(&r, rc);
    return rc;
}
