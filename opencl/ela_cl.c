/* linattn - host side of ela on OpenCL (kernels in ela.cl): the state on the
 * device; the recurrence (ela_seq: the step, and the forward when asked) in
 * one launch, or the chunk form in three (chunk sums, the walk over chunks,
 * the outputs) plus one that returns the true sums of a safe state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"
#include "ela_cl_src.h" /* generated from ela.cl: linattn_ela_cl_src */

#define A LINATTN_KARG
#define FTILE 64                        /* TR of ela.cl: features of a chunk-sum tile */
#define VTILE(V) ((V) > 64 ? 128 : 64) /* TC of ela.cl: value columns of a tile */

static int given(const linattn_cl_arg *x) { return x->host || x->mem; }

/* the buffers every form uses */
typedef struct ela_bufs {
    cl_mem q, k, v, o, S, z, c;
    size_t nfv, nf;
    int c_in, c_out, zero_c;
} ela_bufs;

static int buffers(linattn_clrun *r, const linattn_cl_ela *a, ela_bufs *b)
{
    int rc;
    b->nfv = (size_t)a->nseq * a->H * a->F * a->V;
    b->nf = (size_t)a->nseq * a->H * a->F;
    const int has_c = a->safe && (given(&a->c0) || given(&a->ct));
    /* the chunk form keeps the offset whenever the map is the safe exp */
    const int need_c = has_c || (a->chunk && a->safe);
    if ((rc = linattn_clrun_resolve(r, &a->q, 1, &b->q)) ||
        (rc = linattn_clrun_resolve(r, &a->k, 1, &b->k)) ||
        (rc = linattn_clrun_resolve(r, &a->v, 1, &b->v)) ||
        (rc = linattn_clrun_resolve(r, &a->o, 0, &b->o)) ||
        (rc = linattn_clrun_state_in(r, &a->s0, b->nfv, a->step, &b->S)) ||
        (rc = linattn_clrun_state_in(r, &a->z0, b->nf, a->step, &b->z)) ||
        (rc = need_c ? linattn_clrun_state_in(r, &a->c0, b->nf, a->step, &b->c)
                     : linattn_clrun_resolve(r, &a->c0, 1, &b->c)))
        return rc;
    b->c_in = a->safe && given(&a->c0);
    b->c_out = a->safe && given(&a->ct);
    b->zero_c = given(&a->s0);
    return LINATTN_OK;
}

static int state_out(linattn_clrun *r, const linattn_cl_ela *a, const ela_bufs *b)
{
    int rc;
    if ((rc = linattn_clrun_state_out(r, b->S, &a->st, b->nfv, a->step)) ||
        (rc = linattn_clrun_state_out(r, b->z, &a->zt, b->nf, a->step)) ||
        (b->c_out && (rc = linattn_clrun_state_out(r, b->c, &a->ct, b->nf, a->step))))
        return rc;
    return linattn_clrun_out(r, b->o, &a->o);
}

static int write_table(linattn_clrun *r, const cl_long *tab, size_t n, cl_mem *out)
{
    int rc;
    if ((rc = linattn_clrun_alloc(r, sizeof(cl_long) * (n ? n : 1), 0, out))) return rc;
    if (n)
        LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(r->cl->queue, *out, CL_TRUE, 0,
                                                            sizeof(cl_long) * n, tab, 0, NULL,
                                                            NULL),
                         "clEnqueueWriteBuffer");
    return LINATTN_OK;
}

static int run_rec(linattn_clrun *r, const linattn_cl_ela *a, cl_kernel kern, cl_long *stab)
{
    int rc;
    ela_bufs b;
    cl_mem st;
    if ((rc = buffers(r, a, &b)) || (rc = write_table(r, stab, 2 * (size_t)a->nseq, &st)))
        return rc;
    const cl_int H = (cl_int)a->H, feature = a->feature, safe = a->safe, bidir = a->bidir;
    const cl_int c_in = b.c_in, c_out = b.c_out, zero_c = b.zero_c;
    const float s = a->qk_scale;
    const linattn_karg args[] = {A(st), A(b.q), A(b.k), A(b.v), A(H), A(feature), A(safe),
                                 A(bidir), A(c_in), A(c_out), A(zero_c), A(s), A(b.S),
                                 A(b.z), A(b.c), A(b.o)};
    if ((rc = linattn_clrun_args(kern, args, 16, "ela_seq"))) return rc;
    const size_t local[2] = {LINATTN_CL_WG, 1};
    const size_t global[2] = {(size_t)a->nseq * LINATTN_CL_WG, (size_t)a->H};
    if ((rc = linattn_clrun_launch(r->cl, kern, 2, global, local, "ela_seq"))) return rc;
    return state_out(r, a, &b);
}

/* ela_chunk_scan's elements a work-item (its SV): 4 adjacent value columns
 * where V allows (one 16-byte load each), else 1 */
static int scan_width(int V) { return V % 4 ? 1 : 4; }

/* kern: ela_chunk_sum, ela_chunk_scan, ela_chunk_out, ela_chunk_unshift */
static int run_chunk(linattn_clrun *r, const linattn_cl_ela *a, cl_kernel *kern,
                     const cl_long *stab)
{
    int rc;
    ela_bufs b;
    const int64_t C = a->chunk;
    /* the chunk table {first row, tokens, sequence} and the sequence table
     * {first chunk, chunks} */
    int64_t nch = 0;
    for (int64_t n = 0; n < a->nseq; n++) nch += (stab[2 * n + 1] + C - 1) / C;
    cl_long *ct = linattn_malloc(sizeof *ct * 3 * (size_t)(nch ? nch : 1));
    cl_long *sq = linattn_malloc(sizeof *sq * 2 * (size_t)a->nseq);
    if (!ct || !sq) {
        free(ct);
        free(sq);
        return linattn_fail(LINATTN_ENOMEM, "ela: out of memory");
    }
    for (int64_t n = 0, i = 0; n < a->nseq; n++) {
        sq[2 * n] = i;
        for (int64_t t = 0; t < stab[2 * n + 1]; t += C, i++) {
            ct[3 * i] = stab[2 * n] + t;
            ct[3 * i + 1] = stab[2 * n + 1] - t < C ? stab[2 * n + 1] - t : C;
            ct[3 * i + 2] = n;
        }
        sq[2 * n + 1] = i - sq[2 * n];
    }
    cl_mem ctm, sqm, P, pz, m, cx, cf;
    const size_t per = (size_t)(nch ? nch : 1) * a->H * a->F;
    rc = buffers(r, a, &b);
    if (!rc) rc = write_table(r, ct, 3 * (size_t)nch, &ctm);
    if (!rc) rc = write_table(r, sq, 2 * (size_t)a->nseq, &sqm);
    free(ct);
    free(sq);
    if (rc || (rc = linattn_clrun_alloc(r, per * a->V * sizeof(float), 0, &P)) ||
        (rc = linattn_clrun_alloc(r, per * sizeof(float), 0, &pz)) ||
        (rc = linattn_clrun_alloc(r, per * sizeof(float), 0, &m)) ||
        (rc = linattn_clrun_alloc(r, per * sizeof(float), 0, &cx)) ||
        (rc = linattn_clrun_alloc(r, b.nf * sizeof(float), 0, &cf)))
        return rc;
    const cl_int H = (cl_int)a->H, F = a->F, feature = a->feature, safe = a->safe;
    const cl_int bidir = a->bidir, c_in = b.c_in, zero_c = b.zero_c;
    const float s = a->qk_scale;
    const size_t vt = (size_t)((a->V + VTILE(a->V) - 1) / VTILE(a->V));
    const size_t ft = (size_t)(a->F + FTILE - 1) / FTILE;
    const size_t elems = ((size_t)a->F * a->V + a->F + LINATTN_CL_WG - 1) / LINATTN_CL_WG *
                         LINATTN_CL_WG;
    const size_t scan_items = ((size_t)a->F * a->V / scan_width(a->V) + a->F + LINATTN_CL_WG - 1) /
                              LINATTN_CL_WG * LINATTN_CL_WG;
    const size_t local[3] = {LINATTN_CL_WG, 1, 1};
    if (nch) {
        const linattn_karg sa[] = {A(ctm), A(b.k), A(b.v), A(H), A(F), A(feature), A(safe),
                                   A(s), A(P), A(pz), A(m)};
        const size_t g[3] = {(size_t)nch * LINATTN_CL_WG, (size_t)a->H, ft * vt};
        if ((rc = linattn_clrun_args(kern[0], sa, 11, "ela_chunk_sum")) ||
            (rc = linattn_clrun_launch(r->cl, kern[0], 3, g, local, "ela_chunk_sum")))
            return rc;
    }
    const linattn_karg wa[] = {A(sqm), A(H), A(F), A(safe), A(c_in), A(zero_c), A(P),
                               A(pz), A(m), A(cx), A(b.S), A(b.z), A(b.c), A(cf)};
    const size_t gw[3] = {scan_items, (size_t)a->H, (size_t)a->nseq};
    if ((rc = linattn_clrun_args(kern[1], wa, 14, "ela_chunk_scan")) ||
        (rc = linattn_clrun_launch(r->cl, kern[1], 3, gw, local, "ela_chunk_scan")))
        return rc;
    if (safe) b.c = cf; /* the final offset */
    if (nch) {
        const linattn_karg oa[] = {A(ctm), A(b.q), A(b.k), A(b.v), A(H), A(F), A(feature),
                                   A(safe), A(bidir), A(s), A(P), A(pz), A(m), A(cx),
                                   A(b.S), A(b.z), A(b.c), A(b.o)};
        const size_t g[3] = {(size_t)nch * LINATTN_CL_WG, (size_t)a->H, vt};
        if ((rc = linattn_clrun_args(kern[2], oa, 18, "ela_chunk_out")) ||
            (rc = linattn_clrun_launch(r->cl, kern[2], 3, g, local, "ela_chunk_out")))
            return rc;
    }
    if (safe && !b.c_out) { /* the true sums */
        const linattn_karg ua[] = {A(F), A(b.S), A(b.z), A(b.c)};
        const size_t g[2] = {elems, (size_t)(a->nseq * a->H)};
        if ((rc = linattn_clrun_args(kern[3], ua, 4, "ela_chunk_unshift")) ||
            (rc = linattn_clrun_launch(r->cl, kern[3], 2, g, local, "ela_chunk_unshift")))
            return rc;
    }
    return state_out(r, a, &b);
}

int linattn_cl_ela_run(linattn_cl *cl, const linattn_cl_ela *a)
{
    int rc;
    cl_kernel kern[4];
    linattn_clrun r = {.cl = cl};
    int chunk = a->step ? 0 : a->chunk;
    cl_long *stab = linattn_clrun_seqtab(a->cu, a->nseq, a->T, a->step);
    if (!stab) return linattn_fail(LINATTN_ENOMEM, "ela: out of memory");
    if (chunk) { /* the chunk states within a quarter of device memory, 1 GiB and one
                    allocation; else the recurrence */
        uint64_t nch = 0, budget = cl->info.global_mem / 4;
        for (int64_t n = 0; n < a->nseq; n++) nch += (uint64_t)(stab[2 * n + 1] + chunk - 1) / chunk;
        if (budget > ((uint64_t)1 << 30)) budget = (uint64_t)1 << 30;
        if (cl->info.max_alloc && budget > cl->info.max_alloc) budget = cl->info.max_alloc;
        if (nch * (uint64_t)a->H * a->F * a->V * sizeof(float) > budget) chunk = 0;
    }
    pthread_mutex_lock(&cl->lock);
    static const char *const rec[] = {"ela_seq"};
    static const char *const chk[] = {"ela_chunk_sum", "ela_chunk_scan", "ela_chunk_out",
                                      "ela_chunk_unshift"};
    char opts[64];
    snprintf(opts, sizeof opts, "-DK=%d -DV=%d -DCH=%d -DSV=%d -DGALIGN=%d", a->K, a->V,
             chunk ? chunk : LINATTN_CL_CHUNK, scan_width(a->V), a->K % 4 == 0 && a->V % 4 == 0);
    if (a->ran_chunk) *a->ran_chunk = chunk != 0;
    rc = linattn_cl_kernels(cl, linattn_ela_cl_src, opts, chunk ? chk : rec, chunk ? 4 : 1,
                            kern);
    if (!rc) rc = chunk ? run_chunk(&r, a, kern, stab) : run_rec(&r, a, kern[0], stab);
    rc = linattn_clrun_end(&r, rc);
    free(stab);
    return rc;
}
