/* linattn tests - the recurrent form of the delta family (linattn_gdn(3))
 * with g per key channel (g [B,T,H,K], the Kimi Delta Attention decay) and
 * query heads sharing a state (q [B,T,Hq,K], Hq a multiple of H), on every
 * kernel ISA of this CPU: against the double reference; equal channels
 * against g per head; each shared query against a call of its own (bit for
 * bit); extreme decays; bad shapes refused with nothing written. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define TOL 2e-4      /* recurrent kernels vs the double reference */
#define TOL_EQ 2e-5   /* g per channel, all equal, vs g per head */
/* Timeouts: the work of a test in multiply-adds of the reference (the
 * slowest backend), at a rate a busy 2-core machine keeps, plus margin. */
#define RATE 2e7
#define MARGIN 60
/* and the OpenCL programs the first test of a case builds on PoCL, one per
 * shape: 7-8 s each measured on an idle 2-core machine (the per-channel
 * kernels with float4 slabs), doubled for a busy one */
#define CL_BUILD 16
static const char *const OPS[] = {"gdn", "kla", "gla"};

/* One problem: q [B,T,Hq,K], k [B,T,Hk,K], v [B,T,H,V], g [B,T,H,K] (gk) or
 * [B,T,H], beta [B,T,H], h0 [N,H,K,V]; o [B,T,Ho,V]. */
typedef struct prob {
    int64_t B, T, H, Hk, Hq, Ho, K, V, N;
    const int64_t *cu;
    int gk;
    float *q, *k, *v, *g, *beta, *h0;
} prob;

static void prob_make(prob *p, int op, int64_t B, int64_t T, int64_t H, int64_t Hk, int64_t Hq,
                      int64_t K, int64_t V, const int64_t *cu, int64_t N, int gk, double glo)
{
    *p = (prob){.B = B, .T = T, .H = H, .Hk = Hk, .Hq = Hq, .Ho = Hq != Hk ? Hq : H, .K = K,
                .V = V, .N = N, .cu = cu, .gk = gk};
    const size_t nq = B * T * Hq * K, nk = B * T * Hk * K, nh = B * T * H;
    const size_t ng = nh * (gk ? K : 1);
    p->q = tu_alloc(nq); p->k = tu_alloc(nk);
    p->v = tu_alloc(nh * V); p->g = tu_alloc(ng); p->beta = tu_alloc(nh);
    p->h0 = tu_alloc(N * H * K * V);
    tu_fill(p->q, nq, -1, 1);
    tu_fill(p->k, nk, -1, 1);
    tu_l2norm_rows(p->q, B * T * Hq, (int)K);
    if (op == 1) /* kla: keys keep their norm */
        for (size_t i = 0; i < nk; i++) p->k[i] *= (float)tu_uniform(0.2, 2.0);
    else
        tu_l2norm_rows(p->k, B * T * Hk, (int)K);
    tu_fill(p->v, nh * V, -1, 1);
    tu_fill(p->g, ng, glo, 0);
    tu_fill(p->beta, nh, 0.05, 1);
    tu_fill(p->h0, N * H * K * V, -0.5, 0.5);
}

static void prob_free(prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->g); free(p->beta); free(p->h0);
}

static size_t n_out(const prob *p) { return p->B * p->T * p->Ho * p->V; }
static size_t n_state(const prob *p) { return p->N * p->H * p->K * p->V; }

/* Forward (T > 1) or step (T == 1, state from h0) into poisoned out and
 * state (a step's state starts as h0).  gdim: g's last size (K per channel). */
static int call_g(int op, linattn_ctx *ctx, const prob *p, const linattn_delta_opts *o,
                  int64_t gdim, float *out, float *st)
{
    const int64_t B = p->B, T = p->T, H = p->H, K = p->K, V = p->V;
    const linattn_tensor none = linattn_tensor_none();
    tu_poison(out, n_out(p));
    if (T == 1) {
        memcpy(st, p->h0, sizeof(float) * n_state(p));
        linattn_delta_step_io io = {
            .q = linattn_tensor_3d(p->q, B, p->Hq, K), .k = linattn_tensor_3d(p->k, B, p->Hk, K),
            .v = linattn_tensor_3d(p->v, B, H, V),
            .g = p->gk ? linattn_tensor_3d(p->g, B, H, gdim) : linattn_tensor_2d(p->g, B, H),
            .beta = op == 2 ? none : linattn_tensor_2d(p->beta, B, H),
            .state_h = linattn_tensor_4d(st, B, H, K, V),
            .o = linattn_tensor_3d(out, B, p->Ho, V)};
        return linattn_delta_step(ctx, (linattn_delta_op)op, &io, o);
    }
    tu_poison(st, n_state(p));
    linattn_delta_io io = {
        .q = linattn_tensor_4d(p->q, B, T, p->Hq, K), .k = linattn_tensor_4d(p->k, B, T, p->Hk, K),
        .v = linattn_tensor_4d(p->v, B, T, H, V),
        .g = p->gk ? linattn_tensor_4d(p->g, B, T, H, gdim) : linattn_tensor_3d(p->g, B, T, H),
        .beta = op == 2 ? none : linattn_tensor_3d(p->beta, B, T, H),
        .h0 = linattn_tensor_4d(p->h0, p->N, H, K, V), .o = linattn_tensor_4d(out, B, T, p->Ho, V),
        .hT = linattn_tensor_4d(st, p->N, H, K, V), .cu_seqlens = p->cu,
        .n_seqs = p->cu ? p->N : 0};
    return linattn_delta_forward(ctx, (linattn_delta_op)op, &io, o);
}

static int call(int op, linattn_ctx *ctx, const prob *p, const linattn_delta_opts *o, float *out,
                float *st)
{
    return call_g(op, ctx, p, o, p->K, out, st);
}

static void opts_rec(linattn_delta_opts *o, int qknorm)
{
    linattn_delta_opts_init(o);
    o->algo = LINATTN_ALGO_RECURRENT;
    o->qk_l2norm = qknorm;
}

/* The backends under test: "ref" first, then every kernel ISA and OpenCL
 * where usable. */
static int backends(const char **names)
{
    static int said;
    names[0] = "ref";
    const int n = 1 + tu_isas(names + 1, 7);
    if (!said) {
        fprintf(stderr, "check_kda backends:");
        for (int i = 0; i < n; i++) fprintf(stderr, " %s", names[i]);
        fprintf(stderr, "\n");
        said = 1;
    }
    return n;
}

/* Every backend takes these shapes: none is skipped. */
static int skipped(const char *name, int rc)
{
    (void)name;
    (void)rc;
    return 0;
}

typedef struct shape { int64_t B, T, H, K, V; int cu; } shape;
static const int64_t CU[] = {0, 40, 41, 150};
static const shape SHAPES[] = {
    {2, 70, 4, 32, 48, 0},  {1, 33, 3, 20, 70, 0}, {1, 150, 2, 16, 32, 1},
    {1, 40, 1, 64, 96, 0},  {3, 1, 4, 64, 40, 0},  {2, 1, 2, 24, 72, 0},
    {1, 9, 1, 300, 20, 0},  {1, 5, 1, 600, 24, 0}, /* K * panel width above the pack */
};
#define NSHAPES (sizeof SHAPES / sizeof *SHAPES)

static double shape_work(const shape *s, int nq)
{
    return (double)s->B * s->T * s->H * s->K * s->V * (4.0 + 2.0 * nq);
}

/* g per channel against the reference, with and without qk_l2norm, every
 * shape, forward and step; glo: g's lower end per token and channel. */
static void check_ref(int op, double glo)
{
    const char *names[8];
    const int nb = backends(names);
    for (size_t si = 0; si < NSHAPES; si++)
        for (int qknorm = 0; qknorm < 2; qknorm++) {
            const shape *s = &SHAPES[si];
            prob p;
            prob_make(&p, op, s->B, s->T, s->H, s->H, s->H, s->K, s->V, s->cu ? CU : NULL,
                      s->cu ? 3 : s->B, 1, glo);
            const size_t no = n_out(&p), nh = n_state(&p);
            float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
            linattn_delta_opts opts;
            opts_rec(&opts, qknorm);
            for (int b = 0; b < nb; b++) {
                linattn_ctx *ctx = tu_ctx(names[b], 2);
                const int rc = call(op, ctx, &p, &opts, b ? o : ro, b ? h : rh);
                linattn_ctx_destroy(ctx);
                if (skipped(names[b], rc)) continue;
                ck_assert_msg(rc == 0, "%s %s: %s", OPS[op], names[b], linattn_last_error());
                if (!b) continue;
                const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
                ck_assert_msg(eo < TOL && eh < TOL,
                              "%s %s g per channel (>= %g) T=%lld K=%lld V=%lld qknorm=%d: "
                              "o %.2e ht %.2e vs reference", OPS[op], names[b], glo,
                              (long long)s->T, (long long)s->K, (long long)s->V, qknorm, eo, eh);
            }
            free(ro); free(rh); free(o); free(h);
            prob_free(&p);
        }
}

START_TEST(test_channels_vs_reference)
{
    check_ref(_i, -0.5);
}
END_TEST

/* g down to -20 per token and channel: finite, and the reference's */
START_TEST(test_extreme_decay)
{
    check_ref(_i, -20.0);
}
END_TEST

/* g per channel with all channels equal: the per-head result */
START_TEST(test_equal_channels)
{
    const int op = _i;
    const char *names[8];
    const int nb = backends(names);
    for (size_t si = 0; si < NSHAPES; si++) {
        const shape *s = &SHAPES[si];
        prob p;
        prob_make(&p, op, s->B, s->T, s->H, s->H, s->H, s->K, s->V, s->cu ? CU : NULL,
                  s->cu ? 3 : s->B, 1, -0.5);
        const size_t rows = p.B * p.T * p.H, no = n_out(&p), nh = n_state(&p);
        for (size_t r = 0; r < rows; r++)
            for (int64_t i = 1; i < p.K; i++) p.g[r * p.K + i] = p.g[r * p.K];
        prob ph = p; /* the same problem, g per head */
        ph.gk = 0;
        ph.g = tu_alloc(rows);
        for (size_t r = 0; r < rows; r++) ph.g[r] = p.g[r * p.K];
        float *o1 = tu_alloc(no), *h1 = tu_alloc(nh), *o2 = tu_alloc(no), *h2 = tu_alloc(nh);
        linattn_delta_opts opts;
        opts_rec(&opts, 0);
        for (int b = 0; b < nb; b++) {
            linattn_ctx *ctx = tu_ctx(names[b], 2);
            const int rc = call(op, ctx, &p, &opts, o1, h1);
            if (skipped(names[b], rc)) { linattn_ctx_destroy(ctx); continue; }
            ck_assert_msg(rc == 0, "%s %s: %s", OPS[op], names[b], linattn_last_error());
            ck_assert_int_eq(call(op, ctx, &ph, &opts, o2, h2), 0);
            linattn_ctx_destroy(ctx);
            const double eo = tu_relerr(o1, o2, no), eh = tu_relerr(h1, h2, nh);
            ck_assert_msg(eo < TOL_EQ && eh < TOL_EQ, "%s %s T=%lld K=%lld V=%lld: equal "
                          "channels o %.2e ht %.2e vs g per head", OPS[op], names[b],
                          (long long)s->T, (long long)s->K, (long long)s->V, eo, eh);
        }
        free(o1); free(h1); free(o2); free(h2); free(ph.g);
        prob_free(&p);
    }
}
END_TEST

/* Query heads sharing a state: Hq = nq H query heads (nq 2, 3, 4, 8: in
 * registers and by read passes), Hk = H and H/2, g per head and per
 * channel, with and without qk_l2norm.  Each query r alone (q of H heads,
 * head h = the shared call's head h nq + r) gives bit for bit the shared
 * call's o of head h nq + r and the same state; the shared call is within
 * tolerance of the reference. */
static const int NQS[] = {2, 3, 4, 8};
#define NNQ (sizeof NQS / sizeof *NQS)

START_TEST(test_shared_queries)
{
    const int op = _i;
    const char *names[8];
    const int nb = backends(names);
    for (size_t si = 0; si < NSHAPES; si++)
        for (size_t qi = 0; qi < NNQ; qi++) {
            const shape *s = &SHAPES[si];
            const int nq = NQS[qi], gk = (int)((si + qi) & 1), qknorm = (int)(qi >> 1 & 1);
            const int64_t Hk = s->H % 2 ? s->H : s->H / 2;
            if (s->K > 256 && nq > 3) continue; /* large K: nq 2 and 3 are enough */
            prob p;
            prob_make(&p, op, s->B, s->T, s->H, Hk, nq * s->H, s->K, s->V, s->cu ? CU : NULL,
                      s->cu ? 3 : s->B, gk, -0.5);
            prob one = p; /* query r alone */
            one.Hq = one.Ho = s->H;
            const size_t no = n_out(&p), nh = n_state(&p), no1 = n_out(&one);
            const size_t rows = p.B * p.T * p.H;
            one.q = tu_alloc(rows * p.K);
            float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
            float *o1 = tu_alloc(no1), *h1 = tu_alloc(nh);
            linattn_delta_opts opts;
            opts_rec(&opts, qknorm);
            for (int b = 0; b < nb; b++) {
                linattn_ctx *ctx = tu_ctx(names[b], 2);
                int rc = call(op, ctx, &p, &opts, b ? o : ro, b ? h : rh);
                if (skipped(names[b], rc)) { linattn_ctx_destroy(ctx); continue; }
                ck_assert_msg(rc == 0, "%s %s: %s", OPS[op], names[b], linattn_last_error());
                const float *so = b ? o : ro, *sh = b ? h : rh;
                for (int r = 0; r < nq; r++) {
                    for (size_t x = 0; x < rows; x++)
                        memcpy(one.q + x * p.K, p.q + (x * nq + r) * p.K, sizeof(float) * p.K);
                    ck_assert_int_eq(call(op, ctx, &one, &opts, o1, h1), 0);
                    /* bit for bit on the CPU (linattn_gdn(3)); OpenCL reads the extra
                     * queries by another sum order: within TOL there */
                    const int cl = !strcmp(names[b], "opencl");
                    int same = cl ? tu_relerr(h1, sh, nh) < TOL : !memcmp(h1, sh, sizeof(float) * nh);
                    for (size_t x = 0; x < rows && same; x++)
                        same = cl ? tu_relerr(o1 + x * p.V, so + (x * nq + r) * p.V, p.V) < TOL
                                  : !memcmp(o1 + x * p.V, so + (x * nq + r) * p.V,
                                            sizeof(float) * p.V);
                    ck_assert_msg(same, "%s %s nq=%d r=%d H=%lld Hk=%lld T=%lld K=%lld V=%lld "
                                  "gk=%d qknorm=%d: shared query differs from its own call",
                                  OPS[op], names[b], nq, r, (long long)p.H, (long long)Hk,
                                  (long long)p.T, (long long)p.K, (long long)p.V, gk, qknorm);
                }
                linattn_ctx_destroy(ctx);
                if (!b) continue;
                const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
                ck_assert_msg(eo < TOL && eh < TOL, "%s %s nq=%d gk=%d: o %.2e ht %.2e vs "
                              "reference", OPS[op], names[b], nq, gk, eo, eh);
            }
            free(ro); free(rh); free(o); free(h); free(o1); free(h1); free(one.q);
            prob_free(&p);
        }
}
END_TEST

static int untouched(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) return 0;
    return 1;
}

/* g [..,H,K'] with K' != K, and Hq neither Hk nor a multiple of H:
 * ESHAPE, o and the state as they were. */
START_TEST(test_bad_shapes)
{
    const char *names[8];
    const int nb = backends(names);
    for (int b = 0; b < nb; b++) {
        linattn_ctx *ctx = tu_ctx(names[b], 1);
        for (int T = 1; T <= 5; T += 4)
            for (int c = 0; c < 2; c++) {
                prob p;
                /* c = 0: g [..,4,15] for K = 16; c = 1: H = 4, Hk = 2, Hq = 6 */
                prob_make(&p, 0, 2, T, 4, c ? 2 : 4, c ? 6 : 4, 16, 16, NULL, 2, !c, -0.5);
                p.Ho = 6 * c + 4 * !c;
                const size_t no = n_out(&p), nh = n_state(&p);
                float *o = tu_alloc(no), *h = tu_alloc(nh);
                linattn_delta_opts opts;
                opts_rec(&opts, 0);
                ck_assert_int_eq(call_g(0, ctx, &p, &opts, c ? 1 : 15, o, h), LINATTN_ESHAPE);
                ck_assert_msg(strstr(linattn_last_error(), c ? "q" : "g") != NULL, "%s: %s",
                              names[b], linattn_last_error());
                ck_assert(untouched(o, no));
                if (T > 1) ck_assert(untouched(h, nh));
                else ck_assert(!memcmp(h, p.h0, sizeof(float) * nh));
                free(o); free(h);
                prob_free(&p);
            }
        linattn_ctx_destroy(ctx);
    }
}
END_TEST

/* The TCase timeout of a test: its reference work (the kernels' is less)
 * times the backends, at RATE, plus MARGIN seconds. */
static int timeout_of(double work)
{
    /* counted without starting OpenCL: a runtime started here, in the parent,
     * would not survive the fork of each test (ref, scalar, the ISAs, OpenCL) */
    const int n = 3 + linattn_isa_usable("avx2") + linattn_isa_usable("avx512") +
                  linattn_isa_usable("neon");
    return MARGIN + CL_BUILD * (int)NSHAPES + (int)(work * n / RATE);
}

static Suite *suite(void)
{
    double ref = 0, eq = 0, sq = 0;
    for (size_t si = 0; si < NSHAPES; si++) {
        ref += 2 * shape_work(&SHAPES[si], 1); /* qk_l2norm off and on */
        eq += 2 * shape_work(&SHAPES[si], 1);  /* per channel and per head */
        for (size_t qi = 0; qi < NNQ; qi++)    /* shared, then each query alone */
            if (SHAPES[si].K <= 256 || NQS[qi] <= 3)
                sq += shape_work(&SHAPES[si], NQS[qi]) + NQS[qi] * shape_work(&SHAPES[si], 1);
    }
    Suite *s = suite_create("kda");
    TCase *tr = tcase_create("reference");
    tcase_set_timeout(tr, timeout_of(ref)); /* per test: one operator */
    tcase_add_loop_test(tr, test_channels_vs_reference, 0, 3);
    tcase_add_loop_test(tr, test_extreme_decay, 0, 3);
    suite_add_tcase(s, tr);
    TCase *te = tcase_create("equal");
    tcase_set_timeout(te, timeout_of(eq));
    tcase_add_loop_test(te, test_equal_channels, 0, 3);
    suite_add_tcase(s, te);
    TCase *ts = tcase_create("shared");
    tcase_set_timeout(ts, timeout_of(sq));
    tcase_add_loop_test(ts, test_shared_queries, 0, 3);
    tcase_add_test(ts, test_bad_shapes);
    suite_add_tcase(s, ts);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
