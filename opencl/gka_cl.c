/* linattn - host side of gka on OpenCL (kernels in gka.cl): the state on the
 * device, a sequence table; the recurrence in one launch, or the chunk form
 * in windows of chunks (gka_chunk_walk, then gka_chunk_out per window). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"
#include "gka_cl_src.h" /* generated from gka.cl: linattn_gka_cl_src */

#define A LINATTN_KARG
#define GKA_CL_CHUNK 32    /* tokens per chunk of the chunk form, at most */
#define GKA_CL_TW 32       /* TW of gka.cl: state columns per gka_chunk_walk group */
#define GKA_CL_LOCAL 32768 /* local memory the kernels may use, at most */

/* the buffers both forms use */
typedef struct gka_bufs {
    cl_mem q, k, v, g, beta, alpha, o, Skk, Skv, om, st;
    cl_int H, has_g, has_beta, has_alpha, iters;
    float scale, ridge;
} gka_bufs;

static int bufs_begin(linattn_clrun *r, const linattn_cl_gka *a, const cl_long *stab, gka_bufs *b)
{
    int rc;
    linattn_cl *cl = r->cl;
    const size_t nkk = (size_t)a->nseq * a->H * a->K * a->K;
    const size_t nkv = (size_t)a->nseq * a->H * a->K * a->V;
    if ((rc = linattn_clrun_resolve(r, &a->q, 1, &b->q)) ||
        (rc = linattn_clrun_resolve(r, &a->k, 1, &b->k)) ||
        (rc = linattn_clrun_resolve(r, &a->v, 1, &b->v)) ||
        (rc = linattn_clrun_resolve(r, &a->g, 1, &b->g)) ||
        (rc = linattn_clrun_resolve(r, &a->beta, 1, &b->beta)) ||
        (rc = linattn_clrun_resolve(r, &a->alpha, 1, &b->alpha)) ||
        (rc = linattn_clrun_resolve(r, &a->o, 0, &b->o)) ||
        (rc = linattn_clrun_state_in(r, &a->h0kk, nkk, a->step, &b->Skk)) ||
        (rc = linattn_clrun_state_in(r, &a->h0kv, nkv, a->step, &b->Skv)) ||
        (rc = linattn_clrun_alloc(r, sizeof(float) * (size_t)a->iters, 0, &b->om)) ||
        (rc = linattn_clrun_alloc(r, sizeof(cl_long) * 2 * (size_t)a->nseq, 0, &b->st)))
        return rc;
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(cl->queue, b->om, CL_TRUE, 0,
                                                        sizeof(float) * (size_t)a->iters,
                                                        a->omega, 0, NULL, NULL), "clEnqueueWriteBuffer");
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(cl->queue, b->st, CL_TRUE, 0,
                                                        sizeof(cl_long) * 2 * (size_t)a->nseq, stab,
                                                        0, NULL, NULL), "clEnqueueWriteBuffer");
    b->H = (cl_int)a->H;
    b->has_g = a->g.host || a->g.mem;
    b->has_beta = a->beta.host || a->beta.mem;
    b->has_alpha = a->alpha.host || a->alpha.mem;
    b->iters = a->iters;
    b->scale = a->scale;
    b->ridge = a->ridge;
    return LINATTN_OK;
}

static int bufs_end(linattn_clrun *r, const linattn_cl_gka *a, const gka_bufs *b)
{
    int rc;
    const size_t nkk = (size_t)a->nseq * a->H * a->K * a->K;
    const size_t nkv = (size_t)a->nseq * a->H * a->K * a->V;
    if ((rc = linattn_clrun_state_out(r, b->Skk, &a->htkk, nkk, a->step)) ||
        (rc = linattn_clrun_state_out(r, b->Skv, &a->htkv, nkv, a->step)))
        return rc;
    return linattn_clrun_out(r, b->o, &a->o);
}

static int run_rec(linattn_clrun *r, const linattn_cl_gka *a, cl_kernel kern, const cl_long *stab)
{
    int rc;
    gka_bufs b;
    if ((rc = bufs_begin(r, a, stab, &b))) return rc;
    const linattn_karg args[] = {A(b.st), A(b.q), A(b.k), A(b.v), A(b.g), A(b.beta),
                                 A(b.alpha), A(b.H), A(b.has_g), A(b.has_beta), A(b.has_alpha),
                                 A(b.Skk), A(b.Skv), A(b.o), A(b.om), A(b.iters), A(b.scale),
                                 A(b.ridge)};
    if ((rc = linattn_clrun_args(kern, args, 18, "gka_seq"))) return rc;
    const size_t local[2] = {LINATTN_CL_WG, 1};
    const size_t global[2] = {(size_t)a->nseq * LINATTN_CL_WG, (size_t)a->H};
    if ((rc = linattn_clrun_launch(r->cl, kern, 2, global, local, "gka_seq"))) return rc;
    return bufs_end(r, a, &b);
}

/* kern: gka_chunk_walk, gka_chunk_out; C tokens per chunk, W chunks per window,
 * nch the most chunks of a sequence */
static int run_chunk(linattn_clrun *r, const linattn_cl_gka *a, cl_kernel *kern,
                     const cl_long *stab, int W, int64_t nch)
{
    int rc;
    gka_bufs b;
    cl_mem St;
    const size_t nsh = (size_t)a->nseq * a->H;
    if ((rc = bufs_begin(r, a, stab, &b)) ||
        (rc = linattn_clrun_alloc(r, sizeof(float) * nsh * W * a->K * ((size_t)a->K + a->V), 0,
                                  &St)))
        return rc;
    const size_t local[2] = {LINATTN_CL_WG, 1};
    const size_t nb = (size_t)(a->K + GKA_CL_TW - 1) / GKA_CL_TW + (a->V + GKA_CL_TW - 1) / GKA_CL_TW;
    const cl_int Wc = W;
    for (int64_t w = 0; w < nch; w += W) {
        const cl_int w0 = (cl_int)w;
        const linattn_karg wa[] = {A(b.st), A(b.k), A(b.v), A(b.g), A(b.beta), A(b.H),
                                   A(b.has_g), A(b.has_beta), A(b.Skk), A(b.Skv), A(St), A(w0),
                                   A(Wc)};
        const size_t gw[2] = {nb * LINATTN_CL_WG, nsh};
        if ((rc = linattn_clrun_args(kern[0], wa, 13, "gka_chunk_walk")) ||
            (rc = linattn_clrun_launch(r->cl, kern[0], 2, gw, local, "gka_chunk_walk")))
            return rc;
        const int64_t span = nch - w < W ? nch - w : W;
        const linattn_karg oa[] = {A(b.st), A(b.q), A(b.k), A(b.v), A(b.g), A(b.beta),
                                   A(b.alpha), A(b.H), A(b.has_g), A(b.has_beta), A(b.has_alpha),
                                   A(St), A(b.o), A(b.om), A(b.iters), A(b.scale), A(b.ridge),
                                   A(w0), A(Wc)};
        const size_t go[2] = {(size_t)span * LINATTN_CL_WG, nsh};
        if ((rc = linattn_clrun_args(kern[1], oa, 19, "gka_chunk_out")) ||
            (rc = linattn_clrun_launch(r->cl, kern[1], 2, go, local, "gka_chunk_out")))
            return rc;
    }
    return bufs_end(r, a, &b);
}

/* The most tokens per chunk (up to want, else GKA_CL_CHUNK) whose tiles fit
 * the local memory of gka_chunk_out and gka_chunk_walk; 0 if none does. */
static int pick_chunk(const linattn_cl *cl, int K, int want)
{
    if (K > (K % 4 ? 1 : 4) * LINATTN_CL_WG) return 0; /* NCG of gka.cl within a group */
    uint64_t lm = cl->info.local_mem ? cl->info.local_mem : GKA_CL_LOCAL;
    if (lm > GKA_CL_LOCAL) lm = GKA_CL_LOCAL;
    /* at least 2: with one token per chunk PoCL read wrong values from the
     * one-element local arrays */
    const int first = want > 0 && want < GKA_CL_CHUNK ? want < 2 ? 2 : want : GKA_CL_CHUNK;
    for (int C = first; C >= 2; C /= 2) {
        const uint64_t out = (uint64_t)C * (K + 1) + 3u * C * C + 7u * C + LINATTN_CL_WG;
        const uint64_t walk = (uint64_t)C * K + (uint64_t)C * GKA_CL_TW + 2u * C;
        if (sizeof(float) * (out > walk ? out : walk) + 256 <= lm) return C;
    }
    return 0;
}

int linattn_cl_gka_run(linattn_cl *cl, const linattn_cl_gka *a)
{
    int rc, C = 0, W = 0;
    int64_t nch = 0, maxlen = 0;
    const char *why = NULL;
    cl_kernel kern[2];
    linattn_clrun r = {.cl = cl};
    cl_long *stab = linattn_clrun_seqtab(a->cu, a->nseq, a->T, a->step);
    if (!stab) return linattn_fail(LINATTN_ENOMEM, "gka: out of memory");
    for (int64_t n = 0; n < a->nseq; n++)
        if (stab[2 * n + 1] > maxlen) maxlen = stab[2 * n + 1];
    if (!a->step && a->algo != LINATTN_ALGO_RECURRENT) {
        C = pick_chunk(cl, a->K, a->chunk);
        /* the chunk states of a window within a quarter of device memory, 1 GiB
         * and one allocation */
        uint64_t budget = cl->info.global_mem / 4;
        if (budget > ((uint64_t)1 << 30)) budget = (uint64_t)1 << 30;
        if (cl->info.max_alloc && budget > cl->info.max_alloc) budget = cl->info.max_alloc;
        const uint64_t per = (uint64_t)a->nseq * a->H * a->K * ((uint64_t)a->K + a->V) * sizeof(float);
        nch = C ? (maxlen + C - 1) / C : 0;
        const uint64_t wmax = per ? budget / per : 0;
        W = (int)((uint64_t)nch < wmax ? (uint64_t)nch : wmax > 65536 ? 65536 : wmax);
        const char *cap = getenv("LINATTN_CL_GKA_WINDOW"); /* tests: windows of fewer chunks */
        if (cap && atoi(cap) > 0 && atoi(cap) < W) W = atoi(cap);
        const int autom = a->algo == LINATTN_ALGO_AUTO;
        /* auto on a CPU device: the recurrence once every compute unit has a
         * (sequence, head) (PoCL ran the chunk form about 2x slower there) */
        const int busy = !cl->info.is_gpu && a->nseq * a->H >= cl->info.compute_units;
        if (!C) why = "OpenCL: a chunk's tiles do not fit in local memory, the recurrence";
        else if (W < 1) why = "OpenCL: the chunk states would not fit in device memory, the recurrence";
        else if (autom && maxlen < C) why = "auto: recurrent, every sequence is shorter than a chunk";
        else if (autom && busy)
            why = "auto: recurrent, a CPU device with a (sequence, head) for every compute unit";
        else why = autom ? "auto: chunk form (OpenCL)" : "forced by opts.algo";
        if (!C || W < 1 || (autom && (maxlen < C || busy))) C = 0;
    }
    if (a->ran_chunk) *a->ran_chunk = C != 0;
    if (a->why) *a->why = why;
    pthread_mutex_lock(&cl->lock);
    static const char *const rec[] = {"gka_seq"};
    static const char *const chk[] = {"gka_chunk_walk", "gka_chunk_out"};
    char opts[64];
    snprintf(opts, sizeof opts, "-DK=%d -DV=%d -DCH=%d -DTW=%d", a->K, a->V,
             C ? C : GKA_CL_CHUNK, GKA_CL_TW);
    rc = linattn_cl_kernels(cl, linattn_gka_cl_src, opts, C ? chk : rec, C ? 2 : 1, kern);
    if (!rc) rc = C ? run_chunk(&r, a, kern, stab, W, nch) : run_rec(&r, a, kern[0], stab);
    rc = linattn_clrun_end(&r, rc);
    free(stab);
    return rc;
}
