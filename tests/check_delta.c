/* linattn tests - the delta-rule family (gdn, kla, gla) against the double
 * reference, and the properties of linattn_gdn(3) that need no oracle. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define TOL_REC 1e-4
#define TOL_CHUNK 5e-4
static const char *const OPS[] = {"gdn", "kla", "gla"};

static linattn_delta_opts opts_of(linattn_algo algo, int chunk)
{
    linattn_delta_opts o;
    linattn_delta_opts_init(&o);
    o.algo = algo;
    o.chunk = chunk;
    return o;
}

/* Run one problem on ctx into fresh poisoned buffers; returns status. */
static int run(int op, linattn_ctx *ctx, const tu_delta *p, const linattn_delta_opts *o,
               float *out, float *ht)
{
    tu_poison(out, p->B * p->T * p->H * p->V);
    if (ht) tu_poison(ht, p->N * p->H * p->K * p->V);
    linattn_delta_io io = tu_delta_io(p, out, ht);
    return tu_delta_run(op, ctx, &io, o);
}

/* ---- fast paths against the reference, sizes around chunk edges -------- */

typedef struct shape { int64_t B, T, H, K, V; double glo; } shape;
static const shape SHAPES[] = {
    {2, 1, 2, 16, 16, -0.5},   {1, 63, 3, 32, 48, -0.5},   {2, 64, 2, 64, 64, -0.5},
    {1, 65, 2, 128, 128, -0.5}, {2, 130, 1, 48, 32, -20.0}, {1, 1000, 2, 64, 64, -0.3},
    {1, 65, 1, 256, 64, -0.5}, {1, 130, 1, 16, 256, -0.5}, {1, 70, 2, 128, 96, -1.0},
};

static void check_shape(int op, const shape *s, int with_h0)
{
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    tu_delta p;
    tu_delta_make(&p, op, s->B, s->T, s->H, s->K, s->V, with_h0, s->glo);
    const size_t no = s->B * s->T * s->H * s->V, nh = s->B * s->H * s->K * s->V;
    float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
    linattn_delta_opts rec = opts_of(LINATTN_ALGO_RECURRENT, 0);
    linattn_delta_opts chk = opts_of(LINATTN_ALGO_CHUNK, 0);

    linattn_ctx *ref = tu_ctx("ref", 2);
    ck_assert_int_eq(run(op, ref, &p, &rec, ro, rh), 0);
    linattn_ctx_destroy(ref);

    for (int i = 0; i < nisa; i++) {
        linattn_ctx *ctx = tu_ctx(isas[i], 2);
        ck_assert_int_eq(run(op, ctx, &p, &rec, o, h), 0);
        double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
        ck_assert_msg(eo < TOL_REC && eh < TOL_REC,
                      "%s %s recurrent B=%lld T=%lld H=%lld K=%lld V=%lld: o %.2e ht %.2e",
                      OPS[op], isas[i], (long long)s->B, (long long)s->T, (long long)s->H,
                      (long long)s->K, (long long)s->V, eo, eh);
        if (i == 0) {
            int rc = run(op, ctx, &p, &chk, o, h);
            if (rc == LINATTN_EUNSUPPORTED) {
                fprintf(stderr, "note: chunk form not built (no BLAS)\n");
            } else {
                ck_assert_int_eq(rc, 0);
                eo = tu_relerr(o, ro, no);
                eh = tu_relerr(h, rh, nh);
                ck_assert_msg(eo < TOL_CHUNK && eh < TOL_CHUNK,
                              "%s chunk T=%lld K=%lld V=%lld: o %.2e ht %.2e", OPS[op],
                              (long long)s->T, (long long)s->K, (long long)s->V, eo, eh);
            }
        }
        linattn_ctx_destroy(ctx);
    }
    free(ro); free(rh); free(o); free(h);
    tu_delta_free(&p);
}

START_TEST(test_vs_reference)
{
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++)
        check_shape(_i, &SHAPES[i], (int)(i & 1));
}
END_TEST

/* ---- chunk-size invariance ---------------------------------------------- */

START_TEST(test_chunk_sizes)
{
    static const int CS[] = {1, 7, 16, 32, 64, 100, 200};
    const int op = _i;
    tu_delta p;
    tu_delta_make(&p, op, 1, 200, 2, 32, 40, 1, -0.5);
    const size_t no = p.T * p.H * p.V, nh = p.H * p.K * p.V;
    float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
    linattn_ctx *ctx = tu_ctx("scalar", 2);
    linattn_delta_opts rec = opts_of(LINATTN_ALGO_RECURRENT, 0);
    ck_assert_int_eq(run(op, ctx, &p, &rec, ro, rh), 0);
    for (size_t c = 0; c < sizeof CS / sizeof *CS; c++) {
        linattn_delta_opts o2 = opts_of(LINATTN_ALGO_CHUNK, CS[c]);
        int rc = run(op, ctx, &p, &o2, o, h);
        if (rc == LINATTN_EUNSUPPORTED) break;
        ck_assert_int_eq(rc, 0);
        const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
        ck_assert_msg(eo < TOL_CHUNK && eh < TOL_CHUNK, "%s chunk %d: o %.2e ht %.2e",
                      OPS[op], CS[c], eo, eh);
    }
    linattn_ctx_destroy(ctx);
    free(ro); free(rh); free(o); free(h);
    tu_delta_free(&p);
}
END_TEST

/* ---- a sequence split in two, state carried, equals the whole ---------- */

START_TEST(test_split)
{
    const int op = _i;
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    tu_delta p;
    tu_delta_make(&p, op, 1, 130, 2, 48, 64, 1, -0.5);
    const int64_t T1 = 63, H = p.H, K = p.K, V = p.V;
    const size_t no = p.T * H * V, nh = H * K * V;
    float *o = tu_alloc(no), *h = tu_alloc(nh), *o2 = tu_alloc(no), *h1 = tu_alloc(nh),
          *h2 = tu_alloc(nh);
    for (int a = 0; a <= nisa; a++) {
        for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
            linattn_ctx *ctx = tu_ctx(a < nisa ? isas[a] : "ref", 2);
            linattn_delta_opts opt = opts_of((linattn_algo)algo, 0);
            int rc = run(op, ctx, &p, &opt, o, h);
            if (rc == LINATTN_EUNSUPPORTED) { linattn_ctx_destroy(ctx); continue; }
            ck_assert_int_eq(rc, 0);
            tu_delta a1 = tu_delta_slice(&p, 0, T1, p.h0);
            tu_delta a2 = tu_delta_slice(&p, T1, p.T - T1, h1);
            tu_poison(o2, no);
            ck_assert_int_eq(run(op, ctx, &a1, &opt, o2, h1), 0);
            linattn_delta_io io = tu_delta_io(&a2, o2 + T1 * H * V, h2);
            tu_poison(h2, nh);
            ck_assert_int_eq(tu_delta_run(op, ctx, &io, &opt), 0);
            /* the form that ran: OpenCL runs the chunk form whatever algo says */
            const int chunk = !strcmp(linattn_ctx_last_form(ctx), "chunk");
            const double tol = chunk ? TOL_CHUNK : 1e-6;
            const double eo = tu_relerr(o2, o, no), eh = tu_relerr(h2, h, nh);
            ck_assert_msg(eo < tol && eh < tol, "%s %s algo %d split: o %.2e ht %.2e", OPS[op],
                          a < nisa ? isas[a] : "ref", algo, eo, eh);
            linattn_ctx_destroy(ctx);
        }
    }
    free(o); free(h); free(o2); free(h1); free(h2);
    tu_delta_free(&p);
}
END_TEST

/* ---- forward equals repeated step --------------------------------------- */

START_TEST(test_step)
{
    const int op = _i;
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    tu_delta p;
    tu_delta_make(&p, op, 2, 65, 3, 32, 24, 1, -0.5);
    const int64_t B = p.B, T = p.T, H = p.H, K = p.K, V = p.V;
    const size_t no = B * T * H * V, nh = B * H * K * V;
    float *o = tu_alloc(no), *h = tu_alloc(nh), *so = tu_alloc(no), *st = tu_alloc(nh);
    float *q = tu_alloc(B * H * K), *k = tu_alloc(B * H * K), *v = tu_alloc(B * H * V);
    float *g = tu_alloc(B * H), *be = tu_alloc(B * H), *ot = tu_alloc(B * H * V);
    for (int a = 0; a <= nisa; a++) {
        linattn_ctx *ctx = tu_ctx(a < nisa ? isas[a] : "ref", 2);
        linattn_delta_opts opt = opts_of(LINATTN_ALGO_RECURRENT, 0);
        ck_assert_int_eq(run(op, ctx, &p, &opt, o, h), 0);
        memcpy(st, p.h0, sizeof(float) * nh);
        for (int64_t t = 0; t < T; t++) {
            for (int64_t b = 0; b < B; b++) {
                const int64_t src = (b * T + t) * H;
                memcpy(q + b * H * K, p.q + src * K, sizeof(float) * H * K);
                memcpy(k + b * H * K, p.k + src * K, sizeof(float) * H * K);
                memcpy(v + b * H * V, p.v + src * V, sizeof(float) * H * V);
                memcpy(g + b * H, p.g + src, sizeof(float) * H);
                memcpy(be + b * H, p.beta + src, sizeof(float) * H);
            }
            linattn_delta_step_io io = {
                .q = linattn_tensor_3d(q, B, H, K), .k = linattn_tensor_3d(k, B, H, K),
                .v = linattn_tensor_3d(v, B, H, V), .g = linattn_tensor_2d(g, B, H),
                .beta = linattn_tensor_2d(be, B, H), .state_h = linattn_tensor_4d(st, B, H, K, V),
                .o = linattn_tensor_3d(ot, B, H, V)};
            tu_poison(ot, B * H * V);
            ck_assert_int_eq(tu_delta_step(op, ctx, &io, &opt), 0);
            for (int64_t b = 0; b < B; b++)
                memcpy(so + (b * T + t) * H * V, ot + b * H * V, sizeof(float) * H * V);
        }
        const double eo = tu_relerr(so, o, no), eh = tu_relerr(st, h, nh);
        ck_assert_msg(eo < 1e-5 && eh < 1e-5, "%s %s step vs forward: o %.2e ht %.2e",
                      OPS[op], a < nisa ? isas[a] : "ref", eo, eh);
        linattn_ctx_destroy(ctx);
    }
    free(o); free(h); free(so); free(st); free(q); free(k); free(v); free(g); free(be); free(ot);
    tu_delta_free(&p);
}
END_TEST

/* ---- kla with eta is gdn with beta = eta / (|k|^2 + eps) ----------------- */

START_TEST(test_kla_is_gdn)
{
    tu_delta p;
    tu_delta_make(&p, 1, 2, 70, 2, 32, 32, 1, -0.5);
    const size_t no = p.B * p.T * p.H * p.V, nh = p.B * p.H * p.K * p.V;
    float *o1 = tu_alloc(no), *h1 = tu_alloc(nh), *o2 = tu_alloc(no), *h2 = tu_alloc(nh);
    float *eta = p.beta, *beta = tu_alloc(p.B * p.T * p.H);
    linattn_delta_opts opt = opts_of(LINATTN_ALGO_RECURRENT, 0);
    opt.eps = 1e-3f;
    for (int64_t r = 0; r < p.B * p.T * p.H; r++) {
        double nn = 0;
        for (int64_t i = 0; i < p.K; i++) nn += (double)p.k[r * p.K + i] * p.k[r * p.K + i];
        beta[r] = (float)(eta[r] / (nn + (double)opt.eps));
    }
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    const char *names[2] = {"ref", isas[nisa - 1]}; /* the best ISA this CPU runs */
    for (int c = 0; c < 2; c++) {
        linattn_ctx *ctx = tu_ctx(names[c], 2);
        p.beta = beta;
        ck_assert_int_eq(run(0, ctx, &p, &opt, o1, h1), 0);
        p.beta = eta;
        ck_assert_int_eq(run(1, ctx, &p, &opt, o2, h2), 0);
        const double eo = tu_relerr(o2, o1, no), eh = tu_relerr(h2, h1, nh);
        ck_assert_msg(eo < 1e-5 && eh < 1e-5, "kla vs gdn (%s): o %.2e ht %.2e", names[c],
                      eo, eh);
        linattn_ctx_destroy(ctx);
    }
    free(o1); free(h1); free(o2); free(h2); free(beta);
    tu_delta_free(&p);
}
END_TEST

/* ---- Kaczmarz identity: with eta = 1 the write makes S^T k = v exactly --- */

START_TEST(test_kaczmarz_projection)
{
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    const int64_t B = 2, H = 3, K = 32, V = 40;
    float *q = tu_alloc(B * H * K), *v = tu_alloc(B * H * V), *eta = tu_alloc(B * H);
    float *st = tu_alloc(B * H * K * V), *o = tu_alloc(B * H * V);
    for (int a = 0; a <= nisa; a++) {
        tu_fill(q, B * H * K, -2, 2);
        tu_fill(v, B * H * V, -1, 1);
        tu_fill(st, B * H * K * V, -1, 1);
        for (int64_t i = 0; i < B * H; i++) eta[i] = 1.0f;
        tu_poison(o, B * H * V);
        linattn_delta_opts opt = opts_of(LINATTN_ALGO_RECURRENT, 0);
        opt.eps = 0.0f;
        opt.scale = 1.0f;
        /* q = k: the output reads S_t^T k_t, which must equal v_t */
        linattn_delta_step_io io = {
            .q = linattn_tensor_3d(q, B, H, K), .k = linattn_tensor_3d(q, B, H, K),
            .v = linattn_tensor_3d(v, B, H, V), .beta = linattn_tensor_2d(eta, B, H),
            .state_h = linattn_tensor_4d(st, B, H, K, V), .o = linattn_tensor_3d(o, B, H, V)};
        linattn_ctx *ctx = tu_ctx(a < nisa ? isas[a] : "ref", 2);
        ck_assert_int_eq(linattn_kla_step(ctx, &io, &opt), 0);
        const double e = tu_relerr(o, v, B * H * V);
        ck_assert_msg(e < 1e-4, "%s: S^T k after a Kaczmarz write differs from v by %.2e",
                      a < nisa ? isas[a] : "ref", e);
        linattn_ctx_destroy(ctx);
    }
    free(q); free(v); free(eta); free(st); free(o);
}
END_TEST

/* ---- cu_seqlens: a packed batch equals separate calls ------------------- */

START_TEST(test_cu_seqlens)
{
    const int op = _i;
    static const int64_t LEN[] = {5, 64, 1, 100};
    const int64_t N = 4, T = 170, H = 2, K = 24, V = 40;
    int64_t cu[5] = {0};
    for (int i = 0; i < N; i++) cu[i + 1] = cu[i] + LEN[i];
    tu_delta p;
    tu_delta_make(&p, op, 1, T, H, K, V, 0, -0.5);
    const size_t ns = H * K * V;
    float *h0 = tu_alloc(N * ns), *o = tu_alloc(T * H * V), *ht = tu_alloc(N * ns);
    float *o1 = tu_alloc(T * H * V), *h1 = tu_alloc(ns);
    tu_fill(h0, N * ns, -0.5, 0.5);
    linattn_ctx *ctx = tu_ctx("scalar", 2);
    for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
        linattn_delta_opts opt = opts_of((linattn_algo)algo, 0);
        linattn_delta_io io = tu_delta_io(&p, o, ht);
        io.cu_seqlens = cu;
        io.n_seqs = N;
        io.h0 = linattn_tensor_4d(h0, N, H, K, V);
        io.hT = linattn_tensor_4d(ht, N, H, K, V);
        tu_poison(o, T * H * V);
        tu_poison(ht, N * ns);
        int rc = tu_delta_run(op, ctx, &io, &opt);
        if (rc == LINATTN_EUNSUPPORTED) break;
        ck_assert_int_eq(rc, 0);
        for (int n = 0; n < N; n++) {
            const int64_t t0 = cu[n];
            tu_delta s = tu_delta_slice(&p, t0, LEN[n], h0 + n * ns);
            ck_assert_int_eq(run(op, ctx, &s, &opt, o1, h1), 0);
            const double eo = tu_relerr(o + t0 * H * V, o1, LEN[n] * H * V);
            const double eh = tu_relerr(ht + n * ns, h1, ns);
            ck_assert_msg(eo < 1e-6 && eh < 1e-6, "%s algo %d seq %d: o %.2e ht %.2e",
                          OPS[op], algo, n, eo, eh);
        }
    }
    linattn_ctx_destroy(ctx);
    free(h0); free(o); free(ht); free(o1); free(h1);
    tu_delta_free(&p);
}
END_TEST

/* ---- same bits whatever the thread count ------------------------------- */

START_TEST(test_threads_bitwise)
{
    const int op = _i;
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    tu_delta p;
    tu_delta_make(&p, op, 1, 150, 1, 64, 128, 1, -0.5);
    const size_t no = p.T * p.H * p.V, nh = p.H * p.K * p.V;
    float *o1 = tu_alloc(no), *h1 = tu_alloc(nh), *o2 = tu_alloc(no), *h2 = tu_alloc(nh);
    for (int a = 0; a < nisa; a++)
        for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
            linattn_delta_opts opt = opts_of((linattn_algo)algo, 0);
            linattn_ctx *c1 = tu_ctx(isas[a], 1);
            int rc = run(op, c1, &p, &opt, o1, h1);
            linattn_ctx_destroy(c1);
            if (rc == LINATTN_EUNSUPPORTED) continue;
            ck_assert_int_eq(rc, 0);
            for (int nt = 2; nt <= 5; nt++) {
                linattn_ctx *c = tu_ctx(isas[a], nt);
                ck_assert_int_eq(run(op, c, &p, &opt, o2, h2), 0);
                ck_assert_msg(!memcmp(o1, o2, sizeof(float) * no) &&
                                  !memcmp(h1, h2, sizeof(float) * nh),
                              "%s %s algo %d: %d threads differ from 1", OPS[op], isas[a],
                              algo, nt);
                linattn_ctx_destroy(c);
            }
        }
    free(o1); free(h1); free(o2); free(h2);
    tu_delta_free(&p);
}
END_TEST

/* ---- optional tensors: no gate, no ht, h0 == ht in place ---------------- */

START_TEST(test_optional_tensors)
{
    const int op = _i;
    tu_delta p;
    tu_delta_make(&p, op, 2, 40, 2, 16, 16, 1, -0.5);
    const size_t no = p.B * p.T * p.H * p.V, nh = p.B * p.H * p.K * p.V;
    float *o1 = tu_alloc(no), *h1 = tu_alloc(nh), *o2 = tu_alloc(no), *h2 = tu_alloc(nh);
    linattn_ctx *ctx = tu_ctx("scalar", 2);
    linattn_delta_opts opt = opts_of(LINATTN_ALGO_RECURRENT, 0);

    /* g absent == g all zero */
    float *g = p.g;
    float *zero = tu_alloc(p.B * p.T * p.H);
    memset(zero, 0, sizeof(float) * p.B * p.T * p.H);
    p.g = zero;
    ck_assert_int_eq(run(op, ctx, &p, &opt, o1, h1), 0);
    linattn_delta_io io = tu_delta_io(&p, o2, h2);
    io.g = linattn_tensor_none();
    tu_poison(o2, no);
    tu_poison(h2, nh);
    ck_assert_int_eq(tu_delta_run(op, ctx, &io, &opt), 0);
    ck_assert(!memcmp(o1, o2, sizeof(float) * no) && !memcmp(h1, h2, sizeof(float) * nh));
    p.g = g;

    /* ht absent: same o */
    ck_assert_int_eq(run(op, ctx, &p, &opt, o1, h1), 0);
    ck_assert_int_eq(run(op, ctx, &p, &opt, o2, NULL), 0);
    ck_assert(!memcmp(o1, o2, sizeof(float) * no));

    /* h0 == ht: updated in place */
    memcpy(h2, p.h0, sizeof(float) * nh);
    io = tu_delta_io(&p, o2, h2);
    io.h0 = io.hT;
    tu_poison(o2, no);
    ck_assert_int_eq(tu_delta_run(op, ctx, &io, &opt), 0);
    ck_assert(!memcmp(o1, o2, sizeof(float) * no) && !memcmp(h1, h2, sizeof(float) * nh));

    linattn_ctx_destroy(ctx);
    free(o1); free(h1); free(o2); free(h2); free(zero);
    tu_delta_free(&p);
}
END_TEST

/* ---- opts.qk_l2norm and opts.beta_logits -------------------------------- */

/* The formulas linattn_gdn(3) states, on the host: sum of squares in double
 * in four interleaved partial sums, r = 1 / sqrt(sum + 1e-6), y = x r. */
static void host_l2norm(const float *x, float *y, int64_t rows, int64_t K)
{
    for (int64_t r = 0; r < rows; r++) {
        double s[4] = {0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 4 <= K; i += 4)
            for (int j = 0; j < 4; j++) s[j] += (double)x[r * K + i + j] * x[r * K + i + j];
        for (; i < K; i++) s[0] += (double)x[r * K + i] * x[r * K + i];
        const double inv = 1.0 / sqrt(((s[0] + s[1]) + (s[2] + s[3])) + 1e-6);
        for (i = 0; i < K; i++) y[r * K + i] = (float)(x[r * K + i] * inv);
    }
}

static void host_sigmoid(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

/* Raw inputs for the options: q, k rows of norms far from 1 (some zero),
 * gdn's beta as logits in [-lim, lim] (lim >= 30: some exactly +-lim). */
static void make_raw(tu_delta *p, int op, double lim)
{
    const int64_t rows = p->B * p->T * p->H;
    for (int64_t r = 0; r < rows; r++) {
        const float fq = (float)tu_uniform(0.3, 4.0), fk = (float)tu_uniform(0.3, 4.0);
        for (int64_t i = 0; i < p->K; i++) {
            p->q[r * p->K + i] = r % 11 == 3 ? 0.0f : p->q[r * p->K + i] * fq;
            p->k[r * p->K + i] = r % 13 == 5 ? 0.0f : p->k[r * p->K + i] * fk;
        }
    }
    if (op == 0) {
        tu_fill(p->beta, rows, -lim, lim);
        if (lim >= 30)
            for (int64_t r = 0; r < rows; r += 3) p->beta[r] = r % 2 ? (float)lim : (float)-lim;
    }
}

static linattn_delta_opts opts_on(int op, linattn_algo algo)
{
    linattn_delta_opts o = opts_of(algo, 0);
    o.qk_l2norm = 1;
    o.beta_logits = op == 0;
    return o;
}

/* A step over B sequences (T = 1 problem), state from h0. */
static int run_step(int op, linattn_ctx *ctx, const tu_delta *p, const linattn_delta_opts *o,
                    float *out, float *st)
{
    const int64_t B = p->B, H = p->H, K = p->K, V = p->V;
    memcpy(st, p->h0, sizeof(float) * B * H * K * V);
    tu_poison(out, B * H * V);
    linattn_delta_step_io io = {
        .q = linattn_tensor_3d(p->q, B, H, K), .k = linattn_tensor_3d(p->k, B, H, K),
        .v = linattn_tensor_3d(p->v, B, H, V), .g = linattn_tensor_2d(p->g, B, H),
        .beta = op == 2 ? linattn_tensor_none() : linattn_tensor_2d(p->beta, B, H),
        .state_h = linattn_tensor_4d(st, B, H, K, V), .o = linattn_tensor_3d(out, B, H, V)};
    return tu_delta_step(op, ctx, &io, o);
}

/* A step when the problem has one token (T = 1), else a forward. */
static int run_any(int step, int op, linattn_ctx *ctx, const tu_delta *p,
                   const linattn_delta_opts *o, float *out, float *h)
{
    return step ? run_step(op, ctx, p, o, out, h) : run(op, ctx, p, o, out, h);
}

/* ---- OpenCL's two step kernels ----------------------------------------- */

/* delta_step (LINATTN_CL_STEPW=1) and delta_stepw with 4 and 8 columns per
 * work-item (V = 20: 4 when 8 are asked; V = 30: delta_step in every case). */
static const char *const STEPW[] = {"1", "4", "8"};
static const shape CLSTEP[] = {
    {1, 1, 2, 64, 64, -0.5},  {2, 1, 3, 128, 96, -0.5}, {3, 1, 1, 256, 128, -0.5},
    {4, 1, 2, 128, 128, -1.0}, {5, 1, 1, 64, 96, -0.3},  {2, 1, 2, 40, 20, -0.5},
    {1, 1, 2, 24, 30, -0.5},
};

/* loop index: op * 3 + variant.  A step from a random state against the
 * double reference's (run_step poisons the output). */
START_TEST(test_step_opencl)
{
    if (!tu_opencl()) return;
    const int op = _i / 3;
    setenv("LINATTN_CL_STEPW", STEPW[_i % 3], 1);
    for (size_t si = 0; si < sizeof CLSTEP / sizeof *CLSTEP; si++) {
        const shape *s = &CLSTEP[si];
        tu_delta p;
        tu_delta_make(&p, op, s->B, s->T, s->H, s->K, s->V, 1, s->glo);
        const size_t no = s->B * s->H * s->V, nh = s->B * s->H * s->K * s->V;
        float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
        const linattn_delta_opts rec = opts_of(LINATTN_ALGO_RECURRENT, 0);
        linattn_ctx *ref = tu_ctx("ref", 1), *cl = tu_ctx("opencl", 1);
        ck_assert_int_eq(run_step(op, ref, &p, &rec, ro, rh), 0);
        const int rc = run_step(op, cl, &p, &rec, o, h);
        ck_assert_msg(rc == 0, "%s: %s", OPS[op], linattn_last_error());
        const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
        ck_assert_msg(eo < TOL_REC && eh < TOL_REC,
                      "%s opencl step (LINATTN_CL_STEPW=%s) B=%lld H=%lld K=%lld V=%lld: o %.2e "
                      "state %.2e", OPS[op], STEPW[_i % 3], (long long)s->B, (long long)s->H,
                      (long long)s->K, (long long)s->V, eo, eh);
        linattn_ctx_destroy(ref);
        linattn_ctx_destroy(cl);
        free(ro); free(rh); free(o); free(h);
        tu_delta_free(&p);
    }
    unsetenv("LINATTN_CL_STEPW"); /* CK_FORK=no runs the next test in this process */
}
END_TEST

/* ---- OpenCL's pipelined forward ---------------------------------------- */

/* Windows of 1, 2 and 3 chunks (LINATTN_CL_PIPE) on three queues give the
 * same bits as one window on one queue (the chunks' arithmetic does not
 * depend on the windows), and match the double reference. */
static const shape PIPE[] = {
    {2, 300, 2, 64, 48, -0.5}, {1, 520, 1, 128, 128, -0.3}, {3, 200, 1, 32, 64, -1.0},
};

START_TEST(test_pipe_opencl)
{
    if (!tu_opencl()) return;
    const int op = _i;
    static const char *const span[] = {"1", "2", "3"};
    for (size_t si = 0; si < sizeof PIPE / sizeof *PIPE; si++) {
        const shape *s = &PIPE[si];
        tu_delta p;
        tu_delta_make(&p, op, s->B, s->T, s->H, s->K, s->V, 1, s->glo);
        const size_t no = s->B * s->T * s->H * s->V, nh = s->B * s->H * s->K * s->V;
        float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o1 = tu_alloc(no), *h1 = tu_alloc(nh);
        float *o = tu_alloc(no), *h = tu_alloc(nh);
        const linattn_delta_opts rec = opts_of(LINATTN_ALGO_RECURRENT, 0);
        const linattn_delta_opts chk = opts_of(LINATTN_ALGO_CHUNK, 0);
        linattn_ctx *ref = tu_ctx("ref", 1), *cl = tu_ctx("opencl", 1);
        ck_assert_int_eq(run(op, ref, &p, &rec, ro, rh), 0);
        setenv("LINATTN_CL_PIPE", "0", 1);
        ck_assert_msg(run(op, cl, &p, &chk, o1, h1) == 0, "%s", linattn_last_error());
        const double eo = tu_relerr(o1, ro, no), eh = tu_relerr(h1, rh, nh);
        ck_assert_msg(eo < TOL_CHUNK && eh < TOL_CHUNK, "%s opencl chunk T=%lld: o %.2e ht %.2e",
                      OPS[op], (long long)s->T, eo, eh);
        for (int w = 0; w < 3; w++) {
            setenv("LINATTN_CL_PIPE", span[w], 1);
            ck_assert_msg(run(op, cl, &p, &chk, o, h) == 0, "%s", linattn_last_error());
            ck_assert_msg(!memcmp(o, o1, no * sizeof *o) && !memcmp(h, h1, nh * sizeof *h),
                          "%s opencl: windows of %s chunks on three queues differ from one "
                          "window (B=%lld T=%lld)", OPS[op], span[w], (long long)s->B,
                          (long long)s->T);
        }
        unsetenv("LINATTN_CL_PIPE"); /* CK_FORK=no runs the next test in this process */
        linattn_ctx_destroy(ref);
        linattn_ctx_destroy(cl);
        free(ro); free(rh); free(o1); free(h1); free(o); free(h);
        tu_delta_free(&p);
    }
    /* packed sequences of uneven lengths (cu_seqlens): the later windows hold
     * the long ones only, the short ones' states pass through untouched */
    static const int64_t LEN[] = {70, 400, 5, 190};
    const int64_t N = 4, T = 665, H = 2, K = 64, V = 32;
    int64_t cu[5] = {0};
    for (int i = 0; i < N; i++) cu[i + 1] = cu[i] + LEN[i];
    tu_delta p;
    tu_delta_make(&p, op, 1, T, H, K, V, 0, -0.5);
    const size_t ns = H * K * V, no = T * H * V;
    float *h0 = tu_alloc(N * ns), *o1 = tu_alloc(no), *h1 = tu_alloc(N * ns);
    float *o = tu_alloc(no), *h = tu_alloc(N * ns);
    tu_fill(h0, N * ns, -0.5, 0.5);
    linattn_ctx *cl = tu_ctx("opencl", 1);
    const linattn_delta_opts chk = opts_of(LINATTN_ALGO_CHUNK, 0);
    for (int w = 0; w < 3; w++) {
        setenv("LINATTN_CL_PIPE", w ? span[w] : "0", 1);
        linattn_delta_io io = tu_delta_io(&p, w ? o : o1, w ? h : h1);
        io.cu_seqlens = cu;
        io.n_seqs = N;
        io.h0 = linattn_tensor_4d(h0, N, H, K, V);
        io.hT = linattn_tensor_4d(w ? h : h1, N, H, K, V);
        tu_poison(w ? o : o1, no);
        tu_poison(w ? h : h1, N * ns);
        ck_assert_msg(tu_delta_run(op, cl, &io, &chk) == 0, "%s", linattn_last_error());
        if (w)
            ck_assert_msg(!memcmp(o, o1, no * sizeof *o) && !memcmp(h, h1, N * ns * sizeof *h),
                          "%s opencl: packed sequences, windows of %s chunks differ from one "
                          "window", OPS[op], span[w]);
    }
    unsetenv("LINATTN_CL_PIPE");
    linattn_ctx_destroy(cl);
    free(h0); free(o1); free(h1); free(o); free(h);
    tu_delta_free(&p);
}
END_TEST

static const shape OSHAPES[] = {
    {2, 65, 2, 64, 48, -0.5}, {1, 130, 1, 128, 64, -0.3}, {3, 1, 2, 32, 40, -0.5},
    {1, 70, 3, 48, 32, -1.0},
};

/* Every backend with the options on (outputs poisoned) against the double
 * reference with them on; beta logits up to +-lim; zero q, k rows. */
static void check_options(int op, double lim)
{
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    for (size_t si = 0; si < sizeof OSHAPES / sizeof *OSHAPES; si++) {
        const shape *s = &OSHAPES[si];
        tu_delta p;
        tu_delta_make(&p, op, s->B, s->T, s->H, s->K, s->V, 1, s->glo);
        make_raw(&p, op, lim);
        const size_t no = s->B * s->T * s->H * s->V, nh = s->B * s->H * s->K * s->V;
        float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
        const int step = s->T == 1;
        linattn_delta_opts rec = opts_on(op, LINATTN_ALGO_RECURRENT);
        linattn_delta_opts chk = opts_on(op, LINATTN_ALGO_CHUNK);
        linattn_ctx *ref = tu_ctx("ref", 2);
        ck_assert_int_eq(run_any(step, op, ref, &p, &rec, ro, rh), 0);
        linattn_ctx_destroy(ref);
        ck_assert_msg(isfinite(tu_relerr(ro, ro, no)) && isfinite(tu_relerr(rh, rh, nh)),
                      "%s: reference not finite with the options", OPS[op]);
        for (int i = 0; i < nisa; i++) {
            linattn_ctx *ctx = tu_ctx(isas[i], 2);
            for (int form = 0; form < (step ? 1 : 2); form++) {
                const int rc = run_any(step, op, ctx, &p, form ? &chk : &rec, o, h);
                if (rc == LINATTN_EUNSUPPORTED) continue;
                ck_assert_int_eq(rc, 0);
                const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
                const double tol = form ? TOL_CHUNK : TOL_REC;
                ck_assert_msg(eo < tol && eh < tol,
                              "%s %s %s options on B=%lld T=%lld K=%lld V=%lld lim %g: "
                              "o %.2e ht %.2e", OPS[op], isas[i],
                              step ? "step" : form ? "chunk" : "recurrent", (long long)s->B,
                              (long long)s->T, (long long)s->K, (long long)s->V, lim, eo, eh);
            }
            linattn_ctx_destroy(ctx);
        }
        free(ro); free(rh); free(o); free(h);
        tu_delta_free(&p);
    }
}

START_TEST(test_options_vs_reference)
{
    check_options(_i, 4.0);
}
END_TEST

START_TEST(test_options_large_logits)
{
    check_options(0, 30.0);
}
END_TEST

/* The options on raw inputs equal (CPU: bit for bit) the options off on
 * inputs normalised on the host by the same formulas; and differ from the
 * options off on the raw inputs, so an ignored option fails here. */
START_TEST(test_options_prenormalised)
{
    const int op = _i;
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    for (size_t si = 0; si < sizeof OSHAPES / sizeof *OSHAPES; si++) {
        const shape *s = &OSHAPES[si];
        tu_delta p, n;
        tu_delta_make(&p, op, s->B, s->T, s->H, s->K, s->V, 1, s->glo);
        make_raw(&p, op, 4.0);
        const int64_t rows = s->B * s->T * s->H;
        tu_delta_make(&n, op, s->B, s->T, s->H, s->K, s->V, 1, s->glo); /* same shapes */
        memcpy(n.v, p.v, sizeof(float) * rows * s->V);
        memcpy(n.g, p.g, sizeof(float) * rows);
        memcpy(n.h0, p.h0, sizeof(float) * s->B * s->H * s->K * s->V);
        host_l2norm(p.q, n.q, rows, s->K);
        host_l2norm(p.k, n.k, rows, s->K);
        if (op == 0) host_sigmoid(p.beta, n.beta, rows);
        else memcpy(n.beta, p.beta, sizeof(float) * rows);
        const size_t no = rows * s->V, nh = s->B * s->H * s->K * s->V;
        float *o1 = tu_alloc(no), *h1 = tu_alloc(nh), *o2 = tu_alloc(no), *h2 = tu_alloc(nh);
        const int step = s->T == 1;
        for (int i = 0; i <= nisa; i++) {
            const char *name = i < nisa ? isas[i] : "ref";
            /* the reference applies the options in double, OpenCL in float */
            const int exact = strcmp(name, "ref") && strcmp(name, "opencl");
            linattn_ctx *ctx = tu_ctx(name, 2);
            for (int form = 0; form < (step ? 1 : 2); form++) {
                const linattn_algo algo = form ? LINATTN_ALGO_CHUNK : LINATTN_ALGO_RECURRENT;
                linattn_delta_opts on = opts_on(op, algo), off = opts_of(algo, 0);
                int rc = run_any(step, op, ctx, &p, &on, o1, h1);
                if (rc == LINATTN_EUNSUPPORTED) continue;
                ck_assert_int_eq(rc, 0);
                ck_assert_int_eq(run_any(step, op, ctx, &n, &off, o2, h2), 0);
                const double eo = tu_relerr(o1, o2, no), eh = tu_relerr(h1, h2, nh);
                if (exact)
                    ck_assert_msg(!memcmp(o1, o2, sizeof(float) * no) &&
                                      !memcmp(h1, h2, sizeof(float) * nh),
                                  "%s %s form %d: options differ from host normalisation "
                                  "(o %.2e ht %.2e)", OPS[op], name, form, eo, eh);
                else
                    ck_assert_msg(eo < 1e-5 && eh < 1e-5, "%s %s form %d: options vs host "
                                  "normalisation: o %.2e ht %.2e", OPS[op], name, form, eo, eh);
            }
            linattn_ctx_destroy(ctx);
        }
        /* options off on the raw inputs: far from the normalised result */
        if (op != 0) { /* (gdn's raw logits are refused without beta_logits) */
            linattn_ctx *ctx = tu_ctx("scalar", 2);
            linattn_delta_opts off = opts_of(LINATTN_ALGO_RECURRENT, 0), on = off;
            on.qk_l2norm = 1;
            ck_assert_int_eq(run_any(step, op, ctx, &p, &on, o1, h1), 0);
            ck_assert_int_eq(run_any(step, op, ctx, &p, &off, o2, h2), 0);
            ck_assert_msg(!(tu_relerr(o2, o1, no) < 1e-2), "%s: qk_l2norm changes nothing",
                          OPS[op]);
            linattn_ctx_destroy(ctx);
        }
        free(o1); free(h1); free(o2); free(h2);
        tu_delta_free(&p);
        tu_delta_free(&n);
    }
}
END_TEST

/* beta_logits: kla and gla refuse it; beta is then any finite value */
START_TEST(test_options_values)
{
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    tu_delta p;
    tu_delta_make(&p, 0, 1, 20, 2, 16, 16, 1, -0.5);
    const size_t no = p.T * p.H * p.V, nh = p.H * p.K * p.V;
    float *o = tu_alloc(no), *h = tu_alloc(nh);
    for (int i = 0; i <= nisa; i++) {
        linattn_ctx *ctx = tu_ctx(i < nisa ? isas[i] : "ref", 2);
        linattn_delta_opts on = opts_on(0, LINATTN_ALGO_AUTO), off = opts_of(LINATTN_ALGO_AUTO, 0);
        ck_assert_int_eq(run(1, ctx, &p, &on, o, h), LINATTN_EINVAL);
        ck_assert(strstr(linattn_last_error(), "beta_logits") != NULL);
        ck_assert_int_eq(run(2, ctx, &p, &on, o, h), LINATTN_EINVAL);
        p.beta[7] = 5.0f;
        ck_assert_int_eq(run(0, ctx, &p, &off, o, h), LINATTN_ERANGE);
        ck_assert_int_eq(run(0, ctx, &p, &on, o, h), 0);
        p.beta[7] = INFINITY;
        ck_assert_int_eq(run(0, ctx, &p, &on, o, h), LINATTN_ERANGE);
        p.beta[7] = NAN;
        ck_assert_int_eq(run(0, ctx, &p, &on, o, h), LINATTN_ERANGE);
        p.beta[7] = 0.5f;
        linattn_ctx_destroy(ctx);
    }
    free(o); free(h);
    tu_delta_free(&p);
}
END_TEST

/* The operator table's option rows reach the entry points: a table call
 * with qk_l2norm and beta_logits set equals the direct call. */
START_TEST(test_options_table)
{
    const char *const names[] = {"qk_l2norm", "beta_logits"};
    for (int op = 0; op < 3; op++) {
        tu_delta p;
        tu_delta_make(&p, op, 1, 30, 2, 16, 24, 1, -0.5);
        make_raw(&p, op, 4.0);
        const size_t no = p.T * p.H * p.V, nh = p.H * p.K * p.V;
        float *o1 = tu_alloc(no), *h1 = tu_alloc(nh);
        linattn_ctx *ctx = tu_ctx("scalar", 2);
        linattn_delta_opts on = opts_on(op, LINATTN_ALGO_AUTO);
        ck_assert_int_eq(run(op, ctx, &p, &on, o1, h1), 0);
        const linattn_op_info *info = linattn_op_find(OPS[op], "forward");
        ck_assert_ptr_nonnull(info);
        linattn_op_args a;
        linattn_op_args_init(info, &a);
        linattn_delta_io io = tu_delta_io(&p, p.o, p.ht);
        const linattn_tensor ts[] = {io.q, io.k, io.v, io.g, io.beta, io.h0, io.o, io.hT};
        const char *const tn[] = {"q", "k", "v", "g", op == 1 ? "eta" : "beta", "h0", "o", "hT"};
        for (int i = 0; i < 8; i++) {
            const int j = linattn_op_tensor_index(info, tn[i]);
            if (j >= 0) a.t[j] = ts[i];
        }
        for (int i = 0; i < 2; i++) {
            const int j = linattn_op_option_index(info, names[i]);
            ck_assert_msg((j >= 0) == (i == 0 || op == 0), "%s forward: option %s %s", OPS[op],
                          names[i], j >= 0 ? "listed" : "missing");
            if (j >= 0) a.opt[j] = 1;
        }
        tu_poison(p.o, no);
        tu_poison(p.ht, nh);
        ck_assert_int_eq(linattn_op_call(ctx, info, &a), 0);
        ck_assert_msg(!memcmp(o1, p.o, sizeof(float) * no) && !memcmp(h1, p.ht, sizeof(float) * nh),
                      "%s: table call with the options differs from the direct call", OPS[op]);
        const linattn_op_info *st = linattn_op_find(OPS[op], "step");
        ck_assert_int_ge(linattn_op_option_index(st, "qk_l2norm"), 0);
        ck_assert_int_eq(linattn_op_option_index(st, "beta_logits") >= 0, op == 0);
        linattn_ctx_destroy(ctx);
        free(o1); free(h1);
        tu_delta_free(&p);
    }
}
END_TEST

/* ---- the step's value check on device buffers -------------------------- */

/* A device buffer holding n floats (a 16-bit tensor: n uint16 in its
 * first (n + 1) / 2 floats) written from x. */
static linattn_buffer *dev_buf(linattn_ctx *c, const void *x, size_t nfloat)
{
    linattn_buffer *b;
    ck_assert_int_eq(linattn_buffer_create(c, nfloat, &b), 0);
    ck_assert_int_eq(linattn_buffer_write(b, 0, x, nfloat), 0);
    return b;
}

/* loop index: op * 2 + (state 0 float32: delta_step, 1 bf16: delta_stepw).
 * A step with q, k, v, g, beta, the state and o in device buffers and one
 * value of g (then beta) NaN or out of range: LINATTN_ERANGE naming it, and
 * the state and o buffers bit for bit as they were (the step kernel runs
 * after the check and must write nothing: with its flag ignored the state
 * changes and o loses its fill).  Then a good step on the same buffers
 * matches the reference.  (gla refuses a 16-bit state.) */
START_TEST(test_step_opencl_values)
{
    if (!tu_opencl()) return;
    const int op = _i / 2, half = _i % 2;
    if (op == 2 && half) return; /* gla keeps its state in float32 */
    const int64_t B = 3, H = 2, K = 64, V = 64;
    const size_t nq = B * H * K, nv = B * H * V, ng = B * H, nh = B * H * K * V;
    const size_t hfl = half ? (nh + 1) / 2 : nh; /* floats of the state buffer */
    tu_delta p;
    tu_delta_make(&p, op, B, 1, H, K, V, 1, -0.5);
    uint16_t *h16 = malloc(nh * 2 + 2);
    ck_assert_ptr_nonnull(h16);
    if (half) { /* the bf16 state and the float32 state it holds exactly */
        ck_assert_int_eq(linattn_convert(p.h0, LINATTN_F32, h16, LINATTN_BF16, nh), 0);
        ck_assert_int_eq(linattn_convert(h16, LINATTN_BF16, p.h0, LINATTN_F32, nh), 0);
    }
    const void *state0 = half ? (const void *)h16 : (const void *)p.h0;
    float *ofill = tu_alloc(nv), *oread = tu_alloc(nv), *sread = tu_alloc(hfl);
    float *bad = tu_alloc(ng);
    linattn_ctx *cl = tu_ctx("opencl", 1), *ref = tu_ctx("ref", 1);
    linattn_buffer *bq = dev_buf(cl, p.q, nq), *bk = dev_buf(cl, p.k, nq);
    linattn_buffer *bv = dev_buf(cl, p.v, nv), *bg = dev_buf(cl, p.g, ng);
    linattn_buffer *bb = dev_buf(cl, p.beta, ng), *bs = dev_buf(cl, state0, hfl);
    linattn_buffer *bo = dev_buf(cl, ofill, nv);
    const int64_t s3q[3] = {B, H, K}, s3v[3] = {B, H, V}, s2[2] = {B, H};
    const int64_t s4[4] = {B, H, K, V};
    linattn_delta_step_io io = {
        .q = linattn_tensor_buffer(bq, 3, s3q), .k = linattn_tensor_buffer(bk, 3, s3q),
        .v = linattn_tensor_buffer(bv, 3, s3v), .g = linattn_tensor_buffer(bg, 2, s2),
        .beta = op == 2 ? linattn_tensor_none() : linattn_tensor_buffer(bb, 2, s2),
        .state_h = linattn_tensor_buffer(bs, 4, s4), .o = linattn_tensor_buffer(bo, 3, s3v)};
    if (half) io.state_h.dtype = LINATTN_BF16;
    const linattn_delta_opts rec = opts_of(LINATTN_ALGO_RECURRENT, 0);
    const char *const names[2] = {"g", op == 1 ? "eta" : "beta"};
    for (int which = 0; which < (op == 2 ? 1 : 2); which++) {
        const float outside[2] = {NAN, which ? 2.5f : 0.5f};
        for (int b = 0; b < 2; b++) {
            tu_fill(ofill, nv, -3.0, 3.0); /* o's prior contents, kept bit for bit */
            ck_assert_int_eq(linattn_buffer_write(bo, 0, ofill, nv), 0);
            ck_assert_int_eq(linattn_buffer_write(bs, 0, state0, hfl), 0);
            memcpy(bad, which ? p.beta : p.g, ng * sizeof(float));
            const size_t at = (size_t)tu_uniform(0, (double)ng) % ng;
            bad[at] = outside[b];
            ck_assert_int_eq(linattn_buffer_write(which ? bb : bg, 0, bad, ng), 0);
            const int rc = tu_delta_step(op, cl, &io, &rec);
            char want[32];
            snprintf(want, sizeof want, "%s[%zu,%zu]", names[which], at / (size_t)H,
                     at % (size_t)H);
            ck_assert_msg(rc == LINATTN_ERANGE && strstr(linattn_last_error(), want),
                          "%s%s step: %s = %g: status %d (%s)", OPS[op], half ? " bf16" : "",
                          want, (double)outside[b], rc, linattn_last_error());
            ck_assert_int_eq(linattn_buffer_read(bo, 0, oread, nv), 0);
            ck_assert_int_eq(linattn_buffer_read(bs, 0, sread, hfl), 0);
            ck_assert_msg(!memcmp(oread, ofill, nv * sizeof(float)),
                          "%s%s step: %s = %g: o was written", OPS[op], half ? " bf16" : "",
                          want, (double)outside[b]);
            ck_assert_msg(!memcmp(sread, state0, hfl * sizeof(float)),
                          "%s%s step: %s = %g: the state was written", OPS[op],
                          half ? " bf16" : "", want, (double)outside[b]);
            ck_assert_int_eq(linattn_buffer_write(which ? bb : bg, 0, which ? p.beta : p.g, ng),
                             0);
        }
    }
    /* a good step on the same buffers after the failed ones */
    ck_assert_msg(tu_delta_step(op, cl, &io, &rec) == 0, "%s: %s", OPS[op], linattn_last_error());
    float *ro = tu_alloc(nv), *rh = tu_alloc(nh), *got = tu_alloc(nh);
    ck_assert_int_eq(run_step(op, ref, &p, &rec, ro, rh), 0);
    ck_assert_int_eq(linattn_buffer_read(bo, 0, oread, nv), 0);
    ck_assert_int_eq(linattn_buffer_read(bs, 0, sread, hfl), 0);
    if (half) ck_assert_int_eq(linattn_convert(sread, LINATTN_BF16, got, LINATTN_F32, nh), 0);
    else memcpy(got, sread, nh * sizeof(float));
    const double eo = tu_relerr(oread, ro, nv), eh = tu_relerr(got, rh, nh);
    ck_assert_msg(eo < TOL_REC && eh < (half ? 0x1p-8 : TOL_REC),
                  "%s%s step after refused ones: o %.2e state %.2e", OPS[op],
                  half ? " bf16" : "", eo, eh);
    linattn_buffer *all[] = {bq, bk, bv, bg, bb, bs, bo};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) linattn_buffer_destroy(all[i]);
    linattn_ctx_destroy(cl);
    linattn_ctx_destroy(ref);
    free(ro); free(rh); free(got); free(ofill); free(oread); free(sread); free(bad); free(h16);
    tu_delta_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("delta");
    TCase *tc = tcase_create("delta");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_vs_reference, 0, 3);
    tcase_add_loop_test(tc, test_chunk_sizes, 0, 3);
    tcase_add_loop_test(tc, test_split, 0, 3);
    tcase_add_loop_test(tc, test_step, 0, 3);
    tcase_add_test(tc, test_kla_is_gdn);
    tcase_add_test(tc, test_kaczmarz_projection);
    tcase_add_loop_test(tc, test_cu_seqlens, 0, 3);
    tcase_add_loop_test(tc, test_threads_bitwise, 0, 3);
    tcase_add_loop_test(tc, test_optional_tensors, 0, 3);
    tcase_add_loop_test(tc, test_options_vs_reference, 0, 3);
    tcase_add_test(tc, test_options_large_logits);
    tcase_add_loop_test(tc, test_options_prenormalised, 0, 3);
    tcase_add_test(tc, test_options_values);
    tcase_add_test(tc, test_options_table);
    suite_add_tcase(s, tc);
    tc = tcase_create("opencl step and pipeline");
    tcase_set_timeout(tc, 600); /* 7 kernel builds on PoCL per op and kernel */
    tcase_add_loop_test(tc, test_step_opencl, 0, 9);
    tcase_add_loop_test(tc, test_pipe_opencl, 0, 3);
    tcase_add_loop_test(tc, test_step_opencl_values, 0, 6);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
