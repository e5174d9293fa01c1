/* linattn tests - Kalman linear attention (kalman): every ISA and OpenCL
 * against the double reference over the range of decays and
 * noises, the scan against the recurrence, properties that need no oracle,
 * the p -> 0 linear limit, and the value checks. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

typedef struct kprob {
    int64_t B, T, M, S;
    float *v, *lv, *k, *q, *a, *p, *l0, *e0; /* l0, e0: NULL for the default prior */
} kprob;

/* Decays uniform in [alo, ahi], noises log-uniform in [plo, phi]. */
static void prob_make(kprob *p, int64_t B, int64_t T, int64_t M, int64_t S, double alo,
                      double ahi, double plo, double phi, int with_h0)
{
    memset(p, 0, sizeof *p);
    p->B = B; p->T = T; p->M = M; p->S = S;
    const size_t nv = B * T * M, nk = B * T * S, ms = M * S;
    p->v = tu_alloc(nv); p->lv = tu_alloc(nv); p->k = tu_alloc(nk); p->q = tu_alloc(nk);
    p->a = tu_alloc(ms); p->p = tu_alloc(ms);
    tu_fill(p->v, nv, -1, 1);
    for (size_t i = 0; i < nv; i++) p->lv[i] = (float)pow(10.0, tu_uniform(-1, 3)); /* 1/var */
    tu_fill(p->k, nk, -1, 1);
    tu_fill(p->q, nk, -1, 1);
    tu_l2norm_rows(p->k, B * T, (int)S);
    tu_l2norm_rows(p->q, B * T, (int)S);
    tu_fill(p->a, ms, alo, ahi);
    for (size_t i = 0; i < ms; i++) p->p[i] = (float)exp(tu_uniform(log(plo), log(phi)));
    if (with_h0) {
        const size_t n = B * M * S;
        p->l0 = tu_alloc(n);
        p->e0 = tu_alloc(n);
        tu_fill(p->l0, n, 0.5, 50);
        tu_fill(p->e0, n, -5, 5);
    }
}

static void prob_free(kprob *p)
{
    free(p->v); free(p->lv); free(p->k); free(p->q); free(p->a); free(p->p);
    free(p->l0); free(p->e0);
}

/* Outputs of one run. */
typedef struct kout { float *y, *yv, *lT, *eT; } kout;

static void out_alloc(kout *o, const kprob *p)
{
    o->y = tu_alloc(p->B * p->T * p->M);
    o->yv = tu_alloc(p->B * p->T * p->M);
    o->lT = tu_alloc(p->B * p->M * p->S);
    o->eT = tu_alloc(p->B * p->M * p->S);
}

static void out_free(kout *o) { free(o->y); free(o->yv); free(o->lT); free(o->eT); }

static linattn_kalman_io make_io(const kprob *p, const kout *o)
{
    const int64_t B = p->B, T = p->T, M = p->M, S = p->S;
    linattn_kalman_io io;
    memset(&io, 0, sizeof io);
    io.v = linattn_tensor_3d(p->v, B, T, M);
    io.lam_v = linattn_tensor_3d(p->lv, B, T, M);
    io.k = linattn_tensor_3d(p->k, B, T, S);
    io.q = linattn_tensor_3d(p->q, B, T, S);
    io.decay = linattn_tensor_2d(p->a, M, S);
    io.noise = linattn_tensor_2d(p->p, M, S);
    if (p->l0) {
        io.lam0 = linattn_tensor_3d(p->l0, B, M, S);
        io.eta0 = linattn_tensor_3d(p->e0, B, M, S);
    }
    io.y = linattn_tensor_3d(o->y, B, T, M);
    io.yvar = linattn_tensor_3d(o->yv, B, T, M);
    io.lamT = linattn_tensor_3d(o->lT, B, M, S);
    io.etaT = linattn_tensor_3d(o->eT, B, M, S);
    return io;
}

/* Forward (outputs poisoned first); algo and chunk as given. */
static int run(linattn_ctx *ctx, const kprob *p, int algo, int chunk, const kout *o)
{
    linattn_kalman_opts opts;
    linattn_kalman_opts_init(&opts);
    opts.algo = algo;
    opts.chunk = chunk;
    tu_poison(o->y, p->B * p->T * p->M);
    tu_poison(o->yv, p->B * p->T * p->M);
    tu_poison(o->lT, p->B * p->M * p->S);
    tu_poison(o->eT, p->B * p->M * p->S);
    linattn_kalman_io io = make_io(p, o);
    return linattn_kalman_forward(ctx, &io, &opts);
}

/* The acceptance: max |x - ref| <= 2e-5 + 2e-4 max |ref|; NaN fails. */
static int close_to(const float *x, const float *ref, size_t n, double *worst)
{
    double mx = 0.0, err = 0.0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)x[i] - ref[i]);
        if (!(d == d) || isinf(x[i])) return 0;
        err = fmax(err, d);
    }
    *worst = err / (2e-5 + 2e-4 * mx);
    return err <= 2e-5 + 2e-4 * mx;
}

static void expect_close(const kprob *p, const kout *x, const kout *r, const char *what)
{
    const size_t ny = p->B * p->T * p->M, ns = p->B * p->M * p->S;
    const float *got[] = {x->y, x->yv, x->lT, x->eT}, *want[] = {r->y, r->yv, r->lT, r->eT};
    static const char *const names[] = {"y", "yvar", "lamT", "etaT"};
    for (int i = 0; i < 4; i++) {
        double w = 0.0;
        const int ok = close_to(got[i], want[i], i < 2 ? ny : ns, &w);
        ck_assert_msg(ok, "%s: %s off by %.3g of the tolerance", what, names[i], w);
    }
}

static int same_bits(const float *x, const float *y, size_t n)
{
    return memcmp(x, y, n * sizeof(float)) == 0;
}

static void expect_same(const kprob *p, const kout *x, const kout *r, const char *what)
{
    const size_t ny = p->B * p->T * p->M, ns = p->B * p->M * p->S;
    ck_assert_msg(same_bits(x->y, r->y, ny) && same_bits(x->yv, r->yv, ny) &&
                      same_bits(x->lT, r->lT, ns) && same_bits(x->eT, r->eT, ns),
                  "%s: not bit for bit", what);
}

/* {B, T, M, S, decay lo/hi, noise lo/hi, h0} */
typedef struct setting { int64_t B, T, M, S; double alo, ahi, plo, phi; int h0; } setting;
static const setting SETTINGS[] = {
    {2, 1, 40, 16, 0.1, 0.9999, 1e-8, 1, 1},
    {1, 65, 35, 16, 0.1, 0.3, 0.5, 1, 0},          /* fast decay, big noise */
    {2, 130, 17, 5, 0.9, 0.9999, 1e-8, 1e-7, 1},   /* slow decay, tiny noise */
    {1, 1000, 64, 16, 0.1, 0.9999, 1e-8, 1, 1},    /* the whole range */
    {1, 8192, 8, 16, 0.9999, 0.9999, 1e-8, 1e-8, 0}, /* the worst case linattn_kalman(3) names */
    {1, 8192, 3, 16, 0.1, 0.9999, 1e-8, 1, 1},
    {1, 300, 9, 64, 0.5, 0.99, 1e-4, 1e-2, 1},
};
#define NSETTINGS ((int)(sizeof SETTINGS / sizeof *SETTINGS))

START_TEST(test_vs_reference)
{
    const setting *s = &SETTINGS[_i];
    kprob p;
    kout r, x;
    prob_make(&p, s->B, s->T, s->M, s->S, s->alo, s->ahi, s->plo, s->phi, s->h0);
    out_alloc(&r, &p);
    out_alloc(&x, &p);
    linattn_ctx *ref = tu_ctx("ref", 2);
    ck_assert_int_eq(run(ref, &p, LINATTN_ALGO_AUTO, 0, &r), 0);
    linattn_ctx_destroy(ref);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++)
        for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
            char what[64];
            linattn_ctx *c = tu_ctx(isas[i], 2);
            /* the scan with pieces of 100 tokens, so most cases have several */
            ck_assert_int_eq(run(c, &p, algo, algo == LINATTN_ALGO_CHUNK ? 100 : 0, &x), 0);
            snprintf(what, sizeof what, "%s %s T=%lld", isas[i],
                     algo == LINATTN_ALGO_CHUNK ? "scan" : "recurrent", (long long)s->T);
            expect_close(&p, &x, &r, what);
            linattn_ctx_destroy(c);
        }
    out_free(&r);
    out_free(&x);
    prob_free(&p);
}
END_TEST

/* The scan with pieces of 1 .. T tokens agrees with the recurrence. */
START_TEST(test_scan_pieces)
{
    static const int pieces[] = {1, 7, 64, 999, 5000};
    kprob p;
    kout r, x;
    prob_make(&p, 2, 1000, 21, 16, 0.1, 0.9999, 1e-8, 1, 1);
    out_alloc(&r, &p);
    out_alloc(&x, &p);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++) {
        linattn_ctx *c = tu_ctx(isas[i], 2);
        ck_assert_int_eq(run(c, &p, LINATTN_ALGO_RECURRENT, 0, &r), 0);
        for (size_t j = 0; j < sizeof pieces / sizeof *pieces; j++) {
            char what[64];
            ck_assert_int_eq(run(c, &p, LINATTN_ALGO_CHUNK, pieces[j], &x), 0);
            snprintf(what, sizeof what, "%s pieces of %d", isas[i], pieces[j]);
            expect_close(&p, &x, &r, what);
        }
        linattn_ctx_destroy(c);
    }
    out_free(&r);
    out_free(&x);
    prob_free(&p);
}
END_TEST

/* Tokens [t0, t0 + len) of a B = 1 problem as a problem of its own
 * (views), starting from the state (l0, e0). */
static kprob slice(const kprob *p, int64_t t0, int64_t len, float *l0, float *e0)
{
    kprob s = *p;
    s.T = len;
    s.v = p->v + t0 * p->M;
    s.lv = p->lv + t0 * p->M;
    s.k = p->k + t0 * p->S;
    s.q = p->q + t0 * p->S;
    s.l0 = l0;
    s.e0 = e0;
    return s;
}

/* Bit for bit, on every ISA, for the recurrence: a sequence split in two
 * with the state carried; packed sequences (cu_seqlens) against separate
 * calls; token-by-token steps; thread counts; yvar left out. */
START_TEST(test_properties)
{
    const int64_t T = 300, M = 37, S = 16, t1 = 123;
    kprob p;
    kout w, a, b;
    prob_make(&p, 1, T, M, S, 0.1, 0.9999, 1e-8, 1, 1);
    out_alloc(&w, &p);
    out_alloc(&a, &p);
    out_alloc(&b, &p);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++) {
        linattn_ctx *c = tu_ctx(isas[i], 2);
        ck_assert_int_eq(run(c, &p, LINATTN_ALGO_RECURRENT, 0, &w), 0);
        /* split at t1 */
        kprob p1 = slice(&p, 0, t1, p.l0, p.e0);
        kout a1 = {a.y, a.yv, a.lT, a.eT};
        ck_assert_int_eq(run(c, &p1, LINATTN_ALGO_RECURRENT, 0, &a1), 0);
        kprob p2 = slice(&p, t1, T - t1, a.lT, a.eT);
        kout b2 = {a.y + t1 * M, a.yv + t1 * M, b.lT, b.eT};
        linattn_kalman_opts opts;
        linattn_kalman_opts_init(&opts);
        opts.algo = LINATTN_ALGO_RECURRENT;
        linattn_kalman_io io = make_io(&p2, &b2);
        ck_assert_int_eq(linattn_kalman_forward(c, &io, &opts), 0);
        memcpy(a.lT, b.lT, sizeof(float) * M * S);
        memcpy(a.eT, b.eT, sizeof(float) * M * S);
        expect_same(&p, &a, &w, isas[i]);
        /* step by step from the same initial state */
        float *sl = tu_alloc(M * S), *se = tu_alloc(M * S);
        memcpy(sl, p.l0, sizeof(float) * M * S);
        memcpy(se, p.e0, sizeof(float) * M * S);
        tu_poison(b.y, T * M);
        tu_poison(b.yv, T * M);
        for (int64_t t = 0; t < T; t++) {
            linattn_kalman_step_io st = {
                .v = linattn_tensor_2d(p.v + t * M, 1, M),
                .lam_v = linattn_tensor_2d(p.lv + t * M, 1, M),
                .k = linattn_tensor_2d(p.k + t * S, 1, S), .q = linattn_tensor_2d(p.q + t * S, 1, S),
                .decay = linattn_tensor_2d(p.a, M, S), .noise = linattn_tensor_2d(p.p, M, S),
                .state_lam = linattn_tensor_3d(sl, 1, M, S),
                .state_eta = linattn_tensor_3d(se, 1, M, S),
                .y = linattn_tensor_2d(b.y + t * M, 1, M), .yvar = linattn_tensor_2d(b.yv + t * M, 1, M),
            };
            ck_assert_int_eq(linattn_kalman_step(c, &st, NULL), 0);
        }
        memcpy(b.lT, sl, sizeof(float) * M * S);
        memcpy(b.eT, se, sizeof(float) * M * S);
        expect_same(&p, &b, &w, isas[i]);
        free(sl);
        free(se);
        /* threads, and yvar absent */
        for (int th = 1; th <= 3; th++) {
            linattn_ctx *ct = tu_ctx(isas[i], th);
            ck_assert_int_eq(run(ct, &p, LINATTN_ALGO_RECURRENT, 0, &a), 0);
            expect_same(&p, &a, &w, "threads");
            ck_assert_int_eq(run(ct, &p, LINATTN_ALGO_CHUNK, 50, &a), 0);
            ck_assert_int_eq(run(c, &p, LINATTN_ALGO_CHUNK, 50, &b), 0);
            expect_same(&p, &a, &b, "scan threads");
            linattn_ctx_destroy(ct);
        }
        linattn_kalman_io io2 = make_io(&p, &a);
        io2.yvar = linattn_tensor_none();
        tu_poison(a.y, T * M);
        opts.algo = LINATTN_ALGO_RECURRENT;
        ck_assert_int_eq(linattn_kalman_forward(c, &io2, &opts), 0);
        ck_assert(same_bits(a.y, w.y, T * M));
        linattn_ctx_destroy(c);
    }
    out_free(&w);
    out_free(&a);
    out_free(&b);
    prob_free(&p);
}
END_TEST

/* Packed sequences equal separate calls, bit for bit. */
START_TEST(test_packed)
{
    const int64_t M = 20, S = 8;
    const int64_t cu[] = {0, 50, 51, 300};
    kprob p;
    kout w, a;
    prob_make(&p, 1, 300, M, S, 0.2, 0.999, 1e-6, 0.1, 0);
    p.l0 = tu_alloc(3 * M * S);
    p.e0 = tu_alloc(3 * M * S);
    tu_fill(p.l0, 3 * M * S, 0.5, 5);
    tu_fill(p.e0, 3 * M * S, -1, 1);
    out_alloc(&w, &p);
    out_alloc(&a, &p);
    free(w.lT); free(w.eT);
    w.lT = tu_alloc(3 * M * S);
    w.eT = tu_alloc(3 * M * S);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++)
        for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
            linattn_ctx *c = tu_ctx(isas[i], 2);
            linattn_kalman_opts opts;
            linattn_kalman_opts_init(&opts);
            opts.algo = algo;
            opts.chunk = 16;
            linattn_kalman_io io = make_io(&p, &w);
            io.lam0 = linattn_tensor_3d(p.l0, 3, M, S);
            io.eta0 = linattn_tensor_3d(p.e0, 3, M, S);
            io.lamT = linattn_tensor_3d(w.lT, 3, M, S);
            io.etaT = linattn_tensor_3d(w.eT, 3, M, S);
            io.cu_seqlens = cu;
            io.n_seqs = 3;
            tu_poison(w.y, 300 * M);
            ck_assert_int_eq(linattn_kalman_forward(c, &io, &opts), 0);
            for (int s = 0; s < 3; s++) {
                kprob ps = slice(&p, cu[s], cu[s + 1] - cu[s], p.l0 + s * M * S, p.e0 + s * M * S);
                ck_assert_int_eq(run(c, &ps, algo, 16, &a), 0);
                const size_t ny = (cu[s + 1] - cu[s]) * M;
                ck_assert(same_bits(a.y, w.y + cu[s] * M, ny));
                ck_assert(same_bits(a.yv, w.yv + cu[s] * M, ny));
                ck_assert(same_bits(a.lT, w.lT + s * M * S, M * S));
                ck_assert(same_bits(a.eT, w.eT + s * M * S, M * S));
            }
            linattn_ctx_destroy(c);
        }
    out_free(&w);
    out_free(&a);
    prob_free(&p);
}
END_TEST

/* Noise 0 (floored at 1e-12): the precision follows the linear recurrence
 * lam_t = lam_{t-1} / a^2 + phi_t (linattn_kalman(3)), computed here in double. */
START_TEST(test_linear_limit)
{
    const int64_t T = 60, M = 19, S = 16;
    kprob p;
    kout x;
    prob_make(&p, 1, T, M, S, 0.93, 0.995, 1, 1, 0);
    memset(p.p, 0, sizeof(float) * M * S);
    out_alloc(&x, &p);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++) {
        linattn_ctx *c = tu_ctx(isas[i], 2);
        ck_assert_int_eq(run(c, &p, LINATTN_ALGO_AUTO, 0, &x), 0);
        double worst = 0.0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t s = 0; s < S; s++) {
                const double a = p.a[m * S + s];
                double lam = 1.0;
                for (int64_t t = 0; t < T; t++) {
                    const double ks = p.k[t * S + s];
                    lam = lam / (a * a) + (double)p.lv[t * M + m] * ks * ks;
                }
                const double e = fabs(x.lT[m * S + s] - lam) / lam;
                /* (no fmax: aarch64 GCC 12 crashes vectorising it) */
                if (e != e) worst = INFINITY;
                else if (e > worst) worst = e;
            }
        ck_assert_msg(worst < 1e-4, "%s: linear limit off by %g", isas[i], worst);
        linattn_ctx_destroy(c);
    }
    out_free(&x);
    prob_free(&p);
}
END_TEST

/* Every value check names its tensor, returns LINATTN_ERANGE and leaves
 * the outputs as they were. */
static void expect_range(linattn_ctx *c, const kprob *p, const kout *o, float *x, size_t at,
                         float bad, const char *name)
{
    const float keep = x[at];
    const size_t ny = p->B * p->T * p->M;
    x[at] = bad;
    for (size_t i = 0; i < ny; i++) o->y[i] = 7.0f;
    linattn_kalman_io io = make_io(p, o);
    ck_assert_int_eq(linattn_kalman_forward(c, &io, NULL), LINATTN_ERANGE);
    ck_assert_msg(strstr(linattn_last_error(), name), "%s: message '%s'", name,
                  linattn_last_error());
    for (size_t i = 0; i < ny; i++) ck_assert(o->y[i] == 7.0f);
    x[at] = keep;
}

START_TEST(test_bad_values)
{
    kprob p;
    kout o;
    prob_make(&p, 2, 9, 5, 4, 0.2, 0.9, 1e-3, 1, 1);
    out_alloc(&o, &p);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++) {
        linattn_ctx *c = tu_ctx(isas[i], 2);
        expect_range(c, &p, &o, p.lv, 17, 0.0f, "lam_v");
        expect_range(c, &p, &o, p.lv, 3, -1.0f, "lam_v[0,0,3]");
        expect_range(c, &p, &o, p.lv, 60, NAN, "lam_v");
        expect_range(c, &p, &o, p.lv, 89, INFINITY, "lam_v");
        expect_range(c, &p, &o, p.a, 2, 1.0f, "decay[0,2]");
        expect_range(c, &p, &o, p.a, 7, 0.0f, "decay");
        expect_range(c, &p, &o, p.a, 7, -0.5f, "decay");
        expect_range(c, &p, &o, p.p, 11, -1e-9f, "noise[2,3]");
        expect_range(c, &p, &o, p.p, 11, INFINITY, "noise");
        expect_range(c, &p, &o, p.l0, 5, 0.0f, "lam0");
        expect_range(c, &p, &o, p.l0, 39, -3.0f, "lam0[1,4,3]");
        linattn_ctx_destroy(c);
    }
    out_free(&o);
    prob_free(&p);
}
END_TEST

START_TEST(test_bad_args)
{
    kprob p;
    kout o;
    prob_make(&p, 1, 4, 6, 4, 0.2, 0.9, 1e-3, 1, 1);
    out_alloc(&o, &p);
    linattn_ctx *c = tu_ctx("scalar", 1);
    linattn_kalman_io io = make_io(&p, &o);
    ck_assert_int_eq(linattn_kalman_forward(NULL, &io, NULL), LINATTN_ENULL);
    ck_assert_int_eq(linattn_kalman_forward(c, NULL, NULL), LINATTN_ENULL);
    io.k = linattn_tensor_3d(p.k, 1, 4, 3); /* S from k: q disagrees */
    ck_assert_int_eq(linattn_kalman_forward(c, &io, NULL), LINATTN_ESHAPE);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "q"));
    io = make_io(&p, &o);
    io.decay = linattn_tensor_2d(p.a, 4, 6);
    ck_assert_int_eq(linattn_kalman_forward(c, &io, NULL), LINATTN_ESHAPE);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "decay"));
    io = make_io(&p, &o);
    io.lam_v = linattn_tensor_3d(p.lv, 1, 6, 4);
    ck_assert_int_eq(linattn_kalman_forward(c, &io, NULL), LINATTN_ESHAPE);
    io = make_io(&p, &o);
    io.eta0 = linattn_tensor_none();
    ck_assert_int_eq(linattn_kalman_forward(c, &io, NULL), LINATTN_EINVAL);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "eta0"));
    io = make_io(&p, &o);
    io.noise = linattn_tensor_none();
    ck_assert_int_eq(linattn_kalman_forward(c, &io, NULL), LINATTN_ENULL);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "noise"));
    float *big = tu_alloc(300 * 4);
    io = make_io(&p, &o);
    io.k = linattn_tensor_3d(big, 1, 4, 300);
    io.q = linattn_tensor_3d(big, 1, 4, 300);
    ck_assert_int_eq(linattn_kalman_forward(c, &io, NULL), LINATTN_EHEADDIM);
    free(big);
    io = make_io(&p, &o);
    linattn_kalman_opts opts;
    linattn_kalman_opts_init(&opts);
    opts.chunk = -1;
    ck_assert_int_eq(linattn_kalman_forward(c, &io, &opts), LINATTN_ERANGE);
    opts.chunk = 0;
    opts.algo = (linattn_algo)9;
    ck_assert_int_eq(linattn_kalman_forward(c, &io, &opts), LINATTN_EINVAL);
    int64_t cu[] = {0, 3, 2};
    io.cu_seqlens = cu;
    io.n_seqs = 2;
    ck_assert_int_eq(linattn_kalman_forward(c, &io, NULL), LINATTN_ESEQLENS);
    /* the step needs its state */
    linattn_kalman_step_io st = {
        .v = linattn_tensor_2d(p.v, 1, 6), .lam_v = linattn_tensor_2d(p.lv, 1, 6),
        .k = linattn_tensor_2d(p.k, 1, 4), .q = linattn_tensor_2d(p.q, 1, 4),
        .decay = linattn_tensor_2d(p.a, 6, 4), .noise = linattn_tensor_2d(p.p, 6, 4),
        .y = linattn_tensor_2d(o.y, 1, 6),
    };
    ck_assert_int_eq(linattn_kalman_step(c, &st, NULL), LINATTN_ENULL);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "state_lam"));
    st.state_lam = linattn_tensor_3d(p.l0, 1, 6, 4);
    st.state_eta = linattn_tensor_3d(p.e0, 1, 6, 4);
    p.l0[3] = -2.0f;
    ck_assert_int_eq(linattn_kalman_step(c, &st, NULL), LINATTN_ERANGE);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "state_lam[0,0,3]"));
    linattn_ctx_destroy(c);
    out_free(&o);
    prob_free(&p);
}
END_TEST

/* OpenCL: every tensor in a device buffer gives the host-tensor result bit
 * for bit, and a bad value inside a buffer is found and named. */
START_TEST(test_buffers)
{
    if (!tu_opencl()) return; /* nothing to test: no device (said by tu_report) */
    kprob p;
    kout h, d;
    prob_make(&p, 2, 200, 33, 16, 0.1, 0.9999, 1e-8, 1, 1);
    out_alloc(&h, &p);
    out_alloc(&d, &p);
    linattn_ctx *c = tu_ctx("opencl", 1);
    for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
        ck_assert_int_eq(run(c, &p, algo, 64, &h), 0);
        linattn_kalman_io io = make_io(&p, &d);
        linattn_tensor *ts[] = {&io.v, &io.lam_v, &io.k, &io.q, &io.decay, &io.noise,
                                &io.lam0, &io.eta0, &io.y, &io.yvar, &io.lamT, &io.etaT};
        linattn_buffer *bufs[12];
        for (int i = 0; i < 12; i++) {
            size_t cnt = 1;
            for (int j = 0; j < ts[i]->ndim; j++) cnt *= (size_t)ts[i]->shape[j];
            ck_assert_int_eq(linattn_buffer_create(c, cnt, &bufs[i]), 0);
            ck_assert_int_eq(linattn_buffer_write(bufs[i], 0, ts[i]->data, cnt), 0);
            ts[i]->buf = bufs[i];
            ts[i]->data = NULL;
        }
        linattn_kalman_opts opts;
        linattn_kalman_opts_init(&opts);
        opts.algo = algo;
        opts.chunk = 64;
        ck_assert_int_eq(linattn_kalman_forward(c, &io, &opts), 0);
        float *outs[] = {d.y, d.yv, d.lT, d.eT};
        for (int i = 0; i < 4; i++) {
            tu_poison(outs[i], linattn_buffer_count(bufs[8 + i]));
            ck_assert_int_eq(linattn_buffer_read(bufs[8 + i], 0, outs[i],
                                                 linattn_buffer_count(bufs[8 + i])), 0);
        }
        expect_same(&p, &d, &h, "buffers");
        const float bad = -1.0f;
        ck_assert_int_eq(linattn_buffer_write(bufs[1], 1234, &bad, 1), 0);
        ck_assert_int_eq(linattn_kalman_forward(c, &io, &opts), LINATTN_ERANGE);
        ck_assert_ptr_nonnull(strstr(linattn_last_error(), "lam_v[0,37,13]"));
        for (int i = 0; i < 12; i++) linattn_buffer_destroy(bufs[i]);
    }
    linattn_ctx_destroy(c);
    out_free(&h);
    out_free(&d);
    prob_free(&p);
}
END_TEST

/* The device keeps at most 32 programs per context, the least recently
 * used going first (opencl/program.c): S = 1 .. 34 on one context (one
 * program each, so S = 1 and 2 are evicted), each against the reference,
 * then S = 1 again: rebuilt, the same bits as the first time. */
START_TEST(test_program_cache)
{
    if (!tu_opencl()) return; /* nothing to test: no device (said by tu_report) */
    linattn_ctx *c = tu_ctx("opencl", 1), *ref = tu_ctx("ref", 1);
    kprob p1;
    kout x1, again;
    prob_make(&p1, 1, 9, 3, 1, 0.1, 0.9999, 1e-8, 1, 1);
    out_alloc(&x1, &p1);
    out_alloc(&again, &p1);
    for (int S = 1; S <= 34; S++) {
        kprob p = p1;
        kout r, x = x1; /* S = 1: into x1 */
        char what[32];
        if (S > 1) {
            prob_make(&p, 1, 9, 3, S, 0.1, 0.9999, 1e-8, 1, 1);
            out_alloc(&x, &p);
        }
        out_alloc(&r, &p);
        ck_assert_int_eq(run(ref, &p, LINATTN_ALGO_AUTO, 0, &r), 0);
        ck_assert_int_eq(run(c, &p, LINATTN_ALGO_RECURRENT, 0, &x), 0);
        snprintf(what, sizeof what, "opencl S=%d", S);
        expect_close(&p, &x, &r, what);
        out_free(&r);
        if (S > 1) {
            out_free(&x);
            prob_free(&p);
        }
    }
    ck_assert_int_eq(run(c, &p1, LINATTN_ALGO_RECURRENT, 0, &again), 0);
    expect_same(&p1, &again, &x1, "S=1 after its program was evicted");
    linattn_ctx_destroy(c);
    linattn_ctx_destroy(ref);
    out_free(&x1);
    out_free(&again);
    prob_free(&p1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kalman");
    TCase *tc = tcase_create("kalman");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_vs_reference, 0, NSETTINGS);
    tcase_add_test(tc, test_scan_pieces);
    tcase_add_test(tc, test_properties);
    tcase_add_test(tc, test_packed);
    tcase_add_test(tc, test_linear_limit);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test(tc, test_buffers);
    tcase_add_test(tc, test_program_cache);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
