/* linattn tests - rollback and checkpoint rows of kalman (lamW/etaW,
 * lamC/etaC) and ela (sW/zW/cW, sC/zC/cC) on every backend (reference,
 * each ISA, OpenCL when present): each row equals the final state of the
 * call truncated at its token, bit for bit on the CPU's recurrence, within
 * tolerance on the chunk forms, the reference and OpenCL; with
 * checkpoint_every and with checkpoint_offsets, states in pools with
 * slots; bad rows or offsets refused with nothing written. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "serveutil.h"
#include "testutil.h"

#define TOL 1e-4

enum { N = 3, P = 4, W = 3, C = 3, EVERY = 5 };
static const int64_t lens[N] = {9, 12, 20};
static const int64_t cu[N + 1] = {0, 9, 21, 41};
static const int64_t slot[N] = {2, 3, 0};
static const int64_t offs[N * C] = {3, 9, 0, 1, 7, 12, 4, 5, 19};
#define TT 41

static void close_to(const float *a, const float *b, size_t n, int exact, const char *what,
                     const char *be, int k)
{
    if (exact) {
        ck_assert_msg(!memcmp(a, b, n * sizeof(float)), "%s differs (%s, case %d)", what, be, k);
        return;
    }
    const double e = tu_relerr(a, b, n);
    ck_assert_msg(e < TOL, "%s: relative error %g (%s, case %d)", what, e, be, k);
}

static void all_nan(const float *x, size_t n, const char *what)
{
    for (size_t e = 0; e < n; e++) ck_assert_msg(isnan(x[e]), "%s written", what);
}

/* The token counts of sequence n's rows: W window rows, then C checkpoint
 * rows (0: not written); m receives W + C. */
static void row_tokens(int n, int listed, int64_t *at)
{
    for (int w = 0; w < W; w++) at[w] = lens[n] - W + 1 + w;
    for (int c = 0; c < C; c++) {
        at[W + c] = listed ? offs[n * C + c] : (int64_t)(c + 1) * EVERY;
        if (at[W + c] > lens[n]) at[W + c] = 0;
    }
}

/* ---- kalman ----------------------------------------------------------------- */

#define KM TU_KM
#define KS TU_KS
#define MS TU_KMS

/* Refusals: each must leave the pools, y and the rows untouched. */
static void kalman_refusals(linattn_ctx *ctx, linattn_kalman_io io,
                            const linattn_kalman_opts *opts, const float *pl, const float *pl0,
                            const float *y, const float *wl, const float *cl_)
{
    float *dummy = tu_alloc(N * W * MS);
    int64_t bad_offs[N * C];
    memcpy(bad_offs, offs, sizeof bad_offs);
    bad_offs[1] = 2; /* not above the one before */
    linattn_kalman_io b = io;
    b.etaW = linattn_tensor_none(); /* lamW without etaW */
    ck_assert_int_eq(linattn_kalman_forward(ctx, &b, opts), LINATTN_EINVAL);
    b = io;
    b.checkpoint_every = 0; /* rows without a period */
    b.checkpoint_offsets = NULL;
    ck_assert_int_eq(linattn_kalman_forward(ctx, &b, opts), LINATTN_ERANGE);
    b = io;
    b.lamW = linattn_tensor_3d(dummy, N * W, KM, KS / 2); /* wrong state shape */
    ck_assert_int_eq(linattn_kalman_forward(ctx, &b, opts), LINATTN_ESHAPE);
    b = io;
    b.lamW = linattn_tensor_3d(dummy, N * W + 1, KM, KS); /* not N*W rows */
    ck_assert_int_eq(linattn_kalman_forward(ctx, &b, opts), LINATTN_ESHAPE);
    b = io;
    b.lamW = linattn_tensor_3d(dummy, N * 10, KM, KS); /* a window past sequence 0 */
    b.etaW = linattn_tensor_3d(dummy, N * 10, KM, KS);
    ck_assert_int_eq(linattn_kalman_forward(ctx, &b, opts), LINATTN_ESHAPE);
    b = io;
    b.checkpoint_every = 0;
    b.checkpoint_offsets = bad_offs;
    ck_assert_int_eq(linattn_kalman_forward(ctx, &b, opts), LINATTN_EINVAL);
    bad_offs[1] = 10; /* past the 9 tokens of sequence 0 */
    ck_assert_int_eq(linattn_kalman_forward(ctx, &b, opts), LINATTN_ERANGE);
    b.checkpoint_every = EVERY; /* both */
    bad_offs[1] = 9;
    ck_assert_int_eq(linattn_kalman_forward(ctx, &b, opts), LINATTN_EINVAL);
    ck_assert_msg(!memcmp(pl, pl0, P * MS * sizeof(float)), "kalman pool after a refusal");
    all_nan(y, (size_t)TT * KM, "kalman y by a refused call");
    all_nan(wl, N * W * MS, "kalman lamW by a refused call");
    all_nan(cl_, N * C * MS, "kalman lamC by a refused call");
    free(dummy);
}

START_TEST(test_kalman_rows)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    const int cl = !strcmp(be[_i], "opencl"), ref = !strcmp(be[_i], "ref");
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    for (int k = 0; k < 4; k++) {
        const int algo = k & 1, listed = k >> 1;
        tu_kalman p;
        tu_kalman_make(&p, TT);
        linattn_kalman_opts opts;
        linattn_kalman_opts_init(&opts);
        opts.algo = algo ? LINATTN_ALGO_CHUNK : LINATTN_ALGO_RECURRENT;
        opts.chunk = 4;
        const size_t ny = (size_t)TT * KM;
        float *y = tu_alloc(ny), *yv = tu_alloc(ny), *ry = tu_alloc(ny), *ryv = tu_alloc(ny);
        float *pl = tu_alloc(P * MS), *pe = tu_alloc(P * MS), *pl0 = tu_alloc(P * MS);
        float *pe0 = tu_alloc(P * MS), *rl = tu_alloc(MS), *re = tu_alloc(MS);
        float *wl = tu_alloc(N * W * MS), *we = tu_alloc(N * W * MS);
        float *cl_ = tu_alloc(N * C * MS), *ce = tu_alloc(N * C * MS);
        tu_kalman_pools_fill(pl0, pe0, P);
        memcpy(pl, pl0, P * MS * sizeof(float));
        memcpy(pe, pe0, P * MS * sizeof(float));
        tu_poison(y, ny);
        tu_poison(yv, ny);
        tu_poison(wl, N * W * MS);
        tu_poison(we, N * W * MS);
        tu_poison(cl_, N * C * MS);
        tu_poison(ce, N * C * MS);
        linattn_kalman_io io = tu_kalman_io(&p, 0, TT, y, yv);
        tu_kalman_pools(&io, pl, pe, P, cu, N, slot);
        io.lamW = linattn_tensor_3d(wl, N * W, KM, KS);
        io.etaW = linattn_tensor_3d(we, N * W, KM, KS);
        io.lamC = linattn_tensor_3d(cl_, N * C, KM, KS);
        io.etaC = linattn_tensor_3d(ce, N * C, KM, KS);
        if (listed) io.checkpoint_offsets = offs;
        else io.checkpoint_every = EVERY;
        kalman_refusals(ctx, io, &opts, pl, pl0, y, wl, cl_);
        const int rc = linattn_kalman_forward(ctx, &io, &opts);
        ck_assert_msg(rc == 0, "kalman rows on %s: %s", be[_i], linattn_last_error());
        /* the CPU runs the recurrence with rows; the truncated calls run the
         * scan with opts.algo chunk, the reference's double state restarts
         * at each cut, OpenCL runs its own kernels */
        const int exact = !cl && !ref && algo == 0;
        for (int n = 0; n < N; n++) {
            int64_t at[W + C];
            row_tokens(n, listed, at);
            for (int r = 0; r <= W + C; r++) { /* the rows, then the whole sequence */
                const int64_t len = r < W + C ? at[r] : lens[n];
                const float *rowl = r < W ? wl + (n * W + r) * MS : cl_ + (n * C + r - W) * MS;
                const float *rowe = r < W ? we + (n * W + r) * MS : ce + (n * C + r - W) * MS;
                if (!len) {
                    all_nan(rowl, MS, "kalman checkpoint row not due");
                    continue;
                }
                memcpy(rl, pl0 + slot[n] * MS, MS * sizeof(float));
                memcpy(re, pe0 + slot[n] * MS, MS * sizeof(float));
                linattn_kalman_io t = tu_kalman_io(&p, cu[n], len, ry, ryv);
                t.lam0 = t.lamT = linattn_tensor_3d(rl, 1, KM, KS);
                t.eta0 = t.etaT = linattn_tensor_3d(re, 1, KM, KS);
                ck_assert_int_eq(linattn_kalman_forward(ctx, &t, &opts), 0);
                if (r < W + C) {
                    close_to(rowl, rl, MS, exact, "kalman lam row", be[_i], k);
                    close_to(rowe, re, MS, exact, "kalman eta row", be[_i], k);
                } else {
                    close_to(y + cu[n] * KM, ry, (size_t)len * KM, exact, "kalman y", be[_i],
                             k);
                    close_to(pl + slot[n] * MS, rl, MS, exact, "kalman lam slot", be[_i], k);
                    ck_assert_msg(!memcmp(pe + slot[n] * MS, we + (n * W + W - 1) * MS,
                                          MS * sizeof(float)),
                                  "kalman last window row is not the final state");
                }
            }
        }
        ck_assert_msg(!memcmp(pl + MS, pl0 + MS, MS * sizeof(float)), "kalman unnamed slot");
        free(y); free(yv); free(ry); free(ryv); free(pl); free(pe); free(pl0); free(pe0);
        free(rl); free(re); free(wl); free(we); free(cl_); free(ce);
        tu_kalman_free(&p);
    }
    linattn_ctx_destroy(ctx);
}
END_TEST

/* ---- ela -------------------------------------------------------------------- */

#define EH 2
#define EK 8
#define EV 8
#define EZ ((size_t)EH * EK)      /* z, c of one sequence (F = K: the exp map) */
#define ES ((size_t)EH * EK * EV) /* s of one sequence */

typedef struct eprob {
    float *q, *k, *v;
} eprob;

static linattn_ela_io eio(const eprob *p, int64_t t0, int64_t len, float *o)
{
    linattn_ela_io io = {.q = linattn_tensor_4d(p->q + t0 * EH * EK, 1, len, EH, EK),
                         .k = linattn_tensor_4d(p->k + t0 * EH * EK, 1, len, EH, EK),
                         .v = linattn_tensor_4d(p->v + t0 * EH * EV, 1, len, EH, EV),
                         .o = linattn_tensor_4d(o, 1, len, EH, EV)};
    return io;
}

static void ela_refusals(linattn_ctx *ctx, linattn_ela_io io, const linattn_ela_opts *opts,
                         const float *ps, const float *ps0, const float *o, const float *ws,
                         const float *cs)
{
    float *dummy = tu_alloc(N * W * ES);
    linattn_ela_opts o2 = *opts;
    linattn_ela_io b = io;
    b.zW = linattn_tensor_none(); /* sW without zW */
    ck_assert_int_eq(linattn_ela_forward(ctx, &b, opts), LINATTN_EINVAL);
    b = io;
    b.zC = linattn_tensor_3d(dummy, N * C, EH, EK + 1); /* wrong shape */
    ck_assert_int_eq(linattn_ela_forward(ctx, &b, opts), LINATTN_ESHAPE);
    b = io;
    b.zC = linattn_tensor_3d(dummy, N * (C + 1), EH, EK); /* rows apart from sC's */
    ck_assert_int_eq(linattn_ela_forward(ctx, &b, opts), LINATTN_ESHAPE);
    b = io;
    b.checkpoint_every = -1;
    b.checkpoint_offsets = NULL;
    ck_assert_int_eq(linattn_ela_forward(ctx, &b, opts), LINATTN_ERANGE);
    o2.bidirectional = 1; /* rows of a bidirectional call */
    ck_assert_int_eq(linattn_ela_forward(ctx, &io, &o2), LINATTN_EINVAL);
    o2 = *opts;
    o2.plain_exp = 1; /* an offset row without the safe form */
    b = io;
    b.c0 = b.cT = linattn_tensor_none();
    b.cW = linattn_tensor_3d(dummy, N * W, EH, EK);
    ck_assert_int_eq(linattn_ela_forward(ctx, &b, &o2), LINATTN_EINVAL);
    ck_assert_msg(!memcmp(ps, ps0, P * ES * sizeof(float)), "ela pool after a refusal");
    all_nan(o, (size_t)TT * EH * EV, "ela o by a refused call");
    all_nan(ws, N * W * ES, "ela sW by a refused call");
    all_nan(cs, N * C * ES, "ela sC by a refused call");
    free(dummy);
}

/* s shifted by c to the true sums exp(c_d) s[d,:] */
static void true_sums(float *out, const float *s, const float *c)
{
    for (size_t d = 0; d < EZ; d++)
        for (int j = 0; j < EV; j++) out[d * EV + j] = expf(c[d]) * s[d * EV + j];
}

START_TEST(test_ela_rows)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    const int cl = !strcmp(be[_i], "opencl"), ref = !strcmp(be[_i], "ref");
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    for (int k = 0; k < 8; k++) {
        const int algo = k & 1, listed = k >> 1 & 1, withc = k >> 2;
        eprob p;
        const size_t nq = (size_t)TT * EH * EK, no = (size_t)TT * EH * EV;
        p.q = tu_alloc(nq);
        p.k = tu_alloc(nq);
        p.v = tu_alloc(no);
        tu_fill(p.q, nq, -2, 2);
        tu_fill(p.k, nq, -2, 2);
        tu_fill(p.v, no, -1, 1);
        linattn_ela_opts opts;
        linattn_ela_opts_init(&opts);
        opts.algo = algo ? LINATTN_ALGO_CHUNK : LINATTN_ALGO_RECURRENT;
        opts.chunk = 4;
        float *o = tu_alloc(no), *ro = tu_alloc(no);
        float *ps = tu_alloc(P * ES), *pz = tu_alloc(P * EZ), *pc = tu_alloc(P * EZ);
        float *ps0 = tu_alloc(P * ES), *pz0 = tu_alloc(P * EZ), *pc0 = tu_alloc(P * EZ);
        float *rs = tu_alloc(ES), *rz = tu_alloc(EZ), *rc = tu_alloc(EZ);
        float *ws = tu_alloc(N * W * ES), *wz = tu_alloc(N * W * EZ), *wc = tu_alloc(N * W * EZ);
        float *cs = tu_alloc(N * C * ES), *cz = tu_alloc(N * C * EZ), *cc = tu_alloc(N * C * EZ);
        tu_ela_pools_fill(ps0, pz0, pc0, P, ES, EZ);
        tu_ela_pools_copy(ps, pz, pc, ps0, pz0, pc0, P, ES, EZ);
        tu_poison(o, no);
        tu_poison(ws, N * W * ES); tu_poison(wz, N * W * EZ); tu_poison(wc, N * W * EZ);
        tu_poison(cs, N * C * ES); tu_poison(cz, N * C * EZ); tu_poison(cc, N * C * EZ);
        linattn_ela_io io = eio(&p, 0, TT, o);
        io.s0 = io.sT = linattn_tensor_4d(ps, P, EH, EK, EV);
        io.z0 = io.zT = linattn_tensor_3d(pz, P, EH, EK);
        io.c0 = io.cT = linattn_tensor_3d(pc, P, EH, EK);
        io.cu_seqlens = cu;
        io.n_seqs = N;
        io.state_indices = slot;
        io.sW = linattn_tensor_4d(ws, N * W, EH, EK, EV);
        io.zW = linattn_tensor_3d(wz, N * W, EH, EK);
        io.sC = linattn_tensor_4d(cs, N * C, EH, EK, EV);
        io.zC = linattn_tensor_3d(cz, N * C, EH, EK);
        if (withc) {
            io.cW = linattn_tensor_3d(wc, N * W, EH, EK);
            io.cC = linattn_tensor_3d(cc, N * C, EH, EK);
        }
        if (listed) io.checkpoint_offsets = offs;
        else io.checkpoint_every = EVERY;
        ela_refusals(ctx, io, &opts, ps, ps0, o, ws, cs);
        const int rc_ = linattn_ela_forward(ctx, &io, &opts);
        ck_assert_msg(rc_ == 0, "ela rows on %s: %s", be[_i], linattn_last_error());
        /* the chunk form's chunks and the reference's double state restart at
         * each cut; OpenCL runs its own kernels */
        const int exact = !cl && !ref && algo == 0;
        for (int n = 0; n < N; n++) {
            int64_t at[W + C];
            row_tokens(n, listed, at);
            for (int r = 0; r <= W + C; r++) { /* the rows, then the whole sequence */
                const int64_t len = r < W + C ? at[r] : lens[n];
                const int64_t u = r < W ? n * W + r : n * C + r - W;
                const float *rows = (r < W ? ws : cs) + u * ES, *rowz = (r < W ? wz : cz) + u * EZ;
                const float *rowc = (r < W ? wc : cc) + u * EZ;
                if (!len) {
                    all_nan(rows, ES, "ela checkpoint row not due");
                    continue;
                }
                linattn_ela_io t = eio(&p, cu[n], len, ro);
                t.s0 = linattn_tensor_4d(ps0 + slot[n] * ES, 1, EH, EK, EV);
                t.z0 = linattn_tensor_3d(pz0 + slot[n] * EZ, 1, EH, EK);
                t.c0 = linattn_tensor_3d(pc0 + slot[n] * EZ, 1, EH, EK);
                t.sT = linattn_tensor_4d(rs, 1, EH, EK, EV);
                t.zT = linattn_tensor_3d(rz, 1, EH, EK);
                if (withc || r == W + C) t.cT = linattn_tensor_3d(rc, 1, EH, EK);
                ck_assert_int_eq(linattn_ela_forward(ctx, &t, &opts), 0);
                if (r < W + C) {
                    close_to(rows, rs, ES, exact, "ela s row", be[_i], k);
                    close_to(rowz, rz, EZ, exact, "ela z row", be[_i], k);
                    if (withc) close_to(rowc, rc, EZ, exact, "ela c row", be[_i], k);
                } else {
                    close_to(o + cu[n] * EH * EV, ro, (size_t)len * EH * EV, exact, "ela o",
                             be[_i], k);
                    if (exact) {
                        close_to(ps + slot[n] * ES, rs, ES, 1, "ela s slot", be[_i], k);
                        close_to(pc + slot[n] * EZ, rc, EZ, 1, "ela c slot", be[_i], k);
                    } else { /* OpenCL restarts from rows without offsets: the true sums */
                        float *a = tu_alloc(ES), *b = tu_alloc(ES);
                        true_sums(a, ps + slot[n] * ES, pc + slot[n] * EZ);
                        true_sums(b, rs, rc);
                        close_to(a, b, ES, 0, "ela s slot (true sums)", be[_i], k);
                        free(a);
                        free(b);
                    }
                }
            }
        }
        if (!withc) all_nan(wc, N * W * EZ, "ela cW (absent)");
        ck_assert_msg(!memcmp(ps + ES, ps0 + ES, ES * sizeof(float)), "ela unnamed slot");
        free(p.q); free(p.k); free(p.v); free(o); free(ro);
        free(ps); free(pz); free(pc); free(ps0); free(pz0); free(pc0); free(rs); free(rz);
        free(rc); free(ws); free(wz); free(wc); free(cs); free(cz); free(cc);
    }
    linattn_ctx_destroy(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rows");
    TCase *tc = tcase_create("rows");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_kalman_rows, 0, 8);
    tcase_add_loop_test(tc, test_ela_rows, 0, 8);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_report();
    return tu_main(suite());
}
