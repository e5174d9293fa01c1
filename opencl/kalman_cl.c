/* linattn - host side of kalman on OpenCL (kernels in kalman.cl): the
 * piece table and up to three launches per call (the value check is
 * values_cl.c's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"
#include "kalman_cl_src.h" /* generated from kalman.cl: linattn_kalman_cl_src */

#define A LINATTN_KARG
#define LOCAL 64
#define MIN_PIECE 32

enum { K_SUM, K_ENTER, K_SEQ, NKERN };
static const char *const kernel_names[NKERN] = {"kalman_sum", "kalman_enter", "kalman_seq"};

/* The program of S states per channel (K = S; V is unused). */
static void options(char *opts, size_t n, int S) { snprintf(opts, n, "-DK=%d -DV=0", S); }

static int kernels(linattn_cl *cl, int S, cl_kernel *out)
{
    char opts[64];
    options(opts, sizeof opts, S);
    return linattn_cl_kernels(cl, linattn_kalman_cl_src, opts, kernel_names, NKERN, out);
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* Tokens per piece: the caller's, or enough pieces that the device holds
 * about WI_PER_CU work-items per compute unit (LINATTN_CL_KALMAN_WI sets
 * another number, for tuning). */
#define WI_PER_CU 256
static int64_t piece_len(const linattn_cl *cl, const linattn_cl_kalman *a, int64_t longest)
{
    if (a->step) return 1;
    if (a->L > 0) return a->L;
    const char *env = getenv("LINATTN_CL_KALMAN_WI");
    const long wi = env && atol(env) > 0 ? atol(env) : WI_PER_CU;
    const int64_t want = wi * (int64_t)(cl->info.compute_units > 0 ? cl->info.compute_units : 1);
    const int64_t have = a->nseq * a->M;
    if (have >= want) return longest;
    const int64_t pieces = (want + have - 1) / have, L = (longest + pieces - 1) / pieces;
    return L > MIN_PIECE ? L : MIN_PIECE;
}

/* The piece table {first row, tokens, sequence, last} and the first piece
 * of each sequence; *np receives the pieces. */
static int tables(const linattn_cl *cl, const linattn_cl_kalman *a, cl_long **ptab,
                  cl_long **first, int64_t *np)
{
    int64_t longest = 0, L, n = 0;
    for (int64_t s = 0; s < a->nseq; s++) {
        const int64_t len = a->step ? 1 : a->cu ? a->cu[s + 1] - a->cu[s] : a->T;
        if (len > longest) longest = len;
    }
    L = piece_len(cl, a, longest);
    *first = linattn_malloc(sizeof(cl_long) * (size_t)(a->nseq + 1));
    if (!*first) return linattn_fail(LINATTN_ENOMEM, "kalman: out of memory");
    for (int64_t s = 0; s < a->nseq; s++) {
        const int64_t len = a->step ? 1 : a->cu ? a->cu[s + 1] - a->cu[s] : a->T;
        (*first)[s] = n;
        n += (len + L - 1) / L;
    }
    (*first)[a->nseq] = n;
    *ptab = linattn_malloc(sizeof(cl_long) * 4 * (size_t)n);
    if (!*ptab) return linattn_fail(LINATTN_ENOMEM, "kalman: out of memory");
    for (int64_t s = 0; s < a->nseq; s++) {
        const int64_t b = a->cu ? 0 : s, t0 = a->step ? 0 : a->cu ? a->cu[s] : 0;
        const int64_t len = a->step ? 1 : a->cu ? a->cu[s + 1] - t0 : a->T;
        for (int64_t g = (*first)[s], from = 0; g < (*first)[s + 1]; g++, from += L) {
            cl_long *e = *ptab + 4 * g;
            e[0] = (a->step ? s : b * a->T + t0) + from;
            e[1] = len - from < L ? len - from : L;
            e[2] = s;
            e[3] = g + 1 == (*first)[s + 1];
        }
    }
    *np = n;
    return LINATTN_OK;
}

/* A table into a fresh buffer, without waiting: src outlives the call's
 * clFinish. */
static int upload(linattn_clrun *r, const void *src, size_t bytes, cl_mem *out)
{
    int rc = linattn_clrun_alloc(r, bytes, 0, out);
    if (rc) return rc;
    LINATTN_CL_CHECK(linattn_clapi.clEnqueueWriteBuffer(r->cl->queue, *out, CL_FALSE, 0, bytes, src,
                                                        0, NULL, NULL), "clEnqueueWriteBuffer");
    return LINATTN_OK;
}

static int same(const linattn_cl_arg *x, const linattn_cl_arg *y)
{
    return (x->mem && x->mem == y->mem) || (x->host && x->host == y->host);
}

typedef struct kcall {
    cl_mem pt, fi, v, lv, k, q, a, p, l0, e0, y, yv, lT, eT;
    cl_long M;
    int64_t np;
} kcall;

/* The scan's first two passes: maps of the pieces, then the entering state
 * of every piece into el/ee. */
static int scan_passes(linattn_clrun *r, const linattn_cl_kalman *a, const cl_kernel *kn,
                       kcall *c, cl_mem *el, cl_mem *ee)
{
    int rc;
    cl_mem sums;
    const size_t MS = (size_t)a->M * a->S;
    if ((rc = linattn_clrun_alloc(r, sizeof(float) * 7 * MS * (size_t)c->np, 0, &sums)) ||
        (rc = linattn_clrun_alloc(r, sizeof(float) * MS * (size_t)c->np, 0, el)) ||
        (rc = linattn_clrun_alloc(r, sizeof(float) * MS * (size_t)c->np, 0, ee)))
        return rc;
    const linattn_karg sa[] = {A(c->pt), A(c->v), A(c->lv), A(c->k), A(c->a), A(c->p), A(c->M),
                               A(sums)};
    const size_t gs[2] = {round_up(MS, LOCAL), (size_t)c->np}, ls[2] = {LOCAL, 1};
    if ((rc = linattn_clrun_args(kn[K_SUM], sa, 8, "kalman_sum")) ||
        (rc = linattn_clrun_launch(r->cl, kn[K_SUM], 2, gs, ls, "kalman_sum")))
        return rc;
    const cl_int has_h0 = a->lam0.host || a->lam0.mem;
    const linattn_karg ea[] = {A(c->fi), A(c->l0), A(c->e0), A(has_h0), A(sums), A(c->M), A(*el),
                               A(*ee)};
    const size_t ge[2] = {round_up(MS, LOCAL), (size_t)a->nseq};
    if ((rc = linattn_clrun_args(kn[K_ENTER], ea, 8, "kalman_enter")) ||
        (rc = linattn_clrun_launch(r->cl, kn[K_ENTER], 2, ge, ls, "kalman_enter")))
        return rc;
    return LINATTN_OK;
}

static int run(linattn_clrun *r, const linattn_cl_kalman *a, const cl_kernel *kn,
               const cl_long *ptab, const cl_long *first, int64_t np)
{
    int rc;
    kcall c = {.M = a->M, .np = np};
    const int has_out = a->lamT.host || a->lamT.mem, has_yv = a->yvar.host || a->yvar.mem;
    if ((rc = upload(r, ptab, sizeof(cl_long) * 4 * (size_t)np, &c.pt)) ||
        (rc = upload(r, first, sizeof(cl_long) * (size_t)(a->nseq + 1), &c.fi)) ||
        (rc = linattn_clrun_resolve(r, &a->v, 1, &c.v)) ||
        (rc = linattn_clrun_resolve(r, &a->lv, 1, &c.lv)) ||
        (rc = linattn_clrun_resolve(r, &a->k, 1, &c.k)) ||
        (rc = linattn_clrun_resolve(r, &a->q, 1, &c.q)) ||
        (rc = linattn_clrun_resolve(r, &a->a, 1, &c.a)) ||
        (rc = linattn_clrun_resolve(r, &a->p, 1, &c.p)) ||
        (rc = linattn_clrun_resolve(r, &a->lam0, 1, &c.l0)) ||
        (rc = linattn_clrun_resolve(r, &a->eta0, 1, &c.e0)) ||
        (rc = linattn_clrun_resolve(r, &a->y, 0, &c.y)) ||
        (rc = linattn_clrun_resolve(r, &a->yvar, !has_yv, &c.yv)))
        return rc;
    /* the final state in place when it is the initial one (the step) */
    c.lT = c.l0;
    c.eT = c.e0;
    if (has_out && !same(&a->lamT, &a->lam0) &&
        ((rc = linattn_clrun_resolve(r, &a->lamT, 0, &c.lT)) ||
         (rc = linattn_clrun_resolve(r, &a->etaT, 0, &c.eT))))
        return rc;
    cl_mem lin = c.l0, ein = c.e0;
    cl_int has_in = a->lam0.host || a->lam0.mem, in_piece = 0;
    if (a->scan) *a->scan = np > a->nseq; /* what ran (linattn_ctx_last_form) */
    if (np > a->nseq) { /* more than one piece somewhere: the scan */
        if ((rc = scan_passes(r, a, kn, &c, &lin, &ein))) return rc;
        has_in = 1;
        in_piece = 1;
    }
    const cl_int out = has_out, has_yvar = has_yv;
    const linattn_karg qa[] = {A(c.pt), A(c.v), A(c.lv), A(c.k), A(c.q), A(c.a), A(c.p), A(c.M),
                               A(lin), A(ein), A(has_in), A(in_piece), A(c.lT), A(c.eT), A(out),
                               A(c.y), A(c.yv), A(has_yvar)};
    const size_t gs[2] = {round_up((size_t)a->M, LOCAL), (size_t)np}, ls[2] = {LOCAL, 1};
    if ((rc = linattn_clrun_args(kn[K_SEQ], qa, 18, "kalman_seq")) ||
        (rc = linattn_clrun_launch(r->cl, kn[K_SEQ], 2, gs, ls, "kalman_seq")))
        return rc;
    if ((rc = linattn_clrun_out(r, c.y, &a->y)) || (rc = linattn_clrun_out(r, c.yv, &a->yvar)))
        return rc;
    if (!has_out) return LINATTN_OK;
    if ((rc = linattn_clrun_out(r, c.lT, &a->lamT))) return rc;
    return linattn_clrun_out(r, c.eT, &a->etaT);
}

int linattn_cl_kalman_run(linattn_cl *cl, const linattn_cl_kalman *a)
{
    int rc;
    cl_kernel kn[NKERN];
    cl_long *ptab = NULL, *first = NULL;
    int64_t np = 0;
    linattn_clrun r = {.cl = cl};
    if ((rc = tables(cl, a, &ptab, &first, &np))) goto out;
    pthread_mutex_lock(&cl->lock);
    rc = kernels(cl, a->S, kn);
    if (!rc) rc = run(&r, a, kn, ptab, first, np);
    rc = linattn_clrun_end(&r, rc);
out:
    free(ptab);
    free(first);
    return rc;
}
