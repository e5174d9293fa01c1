/* linattn tests - long sequences.  Every linear operator (gdn, kla, gla, gka,
 * kalman, ela) runs 1,000,000 tokens of one sequence with small heads and
 * realistic gates, in its chunked form and in its recurrent form, over the
 * whole sequence at once; every output and the final state must be finite.
 * Then the same tokens go through 100 calls of 10,000 tokens, each call's
 * final state the next call's initial state (the first from the default
 * state, absent), and each call's outputs are compared with the whole run's:
 *   - recurrent form: bit for bit (the float state is carried exactly; see
 *     each operator's page);
 *   - chunked form: within TOL_CHUNK = 5e-5 relative error per call (the
 *     chunk boundaries of the whole run and of the calls differ: 10,000 is
 *     no multiple of the default chunk of 64, and kalman's scan picks its
 *     pieces from T); measured about 1e-6 at worst, so a tenth of the
 *     design's 5e-4 bar against the reference; the final states of the two
 *     forms agree to the same bar.
 * softmax has no fixed-size state and its forward is quadratic (1M tokens
 * would be ~3e13 flops), so its test fills a KV cache with 1,000,000 tokens
 * in 100 appends of 10,000 and decodes a few tokens at that length, against
 * a double softmax over the whole cache computed here.
 *
 * LINATTN_LONG_TOKENS (default 1000000, a multiple of 100) sets the length
 * for slow runs (sanitizers, emulators). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define CALLS 100
#define TOL_CHUNK 5e-5

enum { OP_GDN, OP_KLA, OP_GLA, OP_GKA, OP_KALMAN, OP_ELA };
static const char *const OPNAME[] = {"gdn", "kla", "gla", "gka", "kalman", "ela"};

static int64_t tokens(void)
{
    const char *s = getenv("LINATTN_LONG_TOKENS");
    if (!s || !*s) return 1000000;
    char *end;
    const long long n = strtoll(s, &end, 10);
    ck_assert_msg(!*end && n >= CALLS && n % CALLS == 0,
                  "LINATTN_LONG_TOKENS=%s: expected a positive multiple of %d", s, CALLS);
    return n;
}

/* One long sequence (B = 1).  Per token the operator writes n1 floats to
 * out1 and n2 to out2 (kalman's y and yvar; n2 = 0 otherwise); its state is
 * ns floats in one array (sections in the order of the io struct). */
typedef struct lp {
    int op;
    int64_t L, H, K, V;
    float *in[8];
    size_t n1, n2, ns;
} lp;

static float *fresh(lp *p, int i, size_t n, double lo, double hi)
{
    p->in[i] = tu_alloc(n);
    tu_fill(p->in[i], n, lo, hi);
    return p->in[i];
}

static void lp_make(lp *p, int op, int64_t L, int64_t H, int64_t K, int64_t V)
{
    memset(p, 0, sizeof *p);
    p->op = op; p->L = L; p->H = H; p->K = K; p->V = V;
    const size_t nqk = L * H * K, nv = L * H * V, ng = L * H;
    switch (op) {
    case OP_GDN: case OP_KLA: case OP_GLA: case OP_GKA:
        fresh(p, 0, nqk, -1, 1);
        fresh(p, 1, nqk, -1, 1);
        fresh(p, 2, nv, -1, 1);
        tu_l2norm_rows(p->in[0], L * H, (int)K);
        if (op == OP_KLA) /* kla: keys keep a norm in about [0.1, 2] */
            for (size_t i = 0; i < nqk; i++) p->in[1][i] *= (float)tu_uniform(0.2, 2.0);
        else
            tu_l2norm_rows(p->in[1], L * H, (int)K);
        fresh(p, 3, ng, -0.1, 0);     /* g: memories of ten to a few hundred tokens */
        fresh(p, 4, ng, 0.05, 1);     /* beta (kla: eta) */
        if (op == OP_GKA) fresh(p, 5, ng, 0, 1); /* alpha */
        p->n1 = H * V;
        p->ns = op == OP_GKA ? H * K * K + H * K * V : H * K * V;
        break;
    case OP_KALMAN: { /* H = 1, K = S states, V = M channels */
        const size_t ny = L * V, nk = L * K;
        fresh(p, 0, ny, -1, 1);                         /* v */
        float *lv = fresh(p, 1, ny, 0, 1);              /* lam_v: variances 1e-3 .. 10 */
        for (size_t i = 0; i < ny; i++) lv[i] = (float)pow(10.0, tu_uniform(-1, 3));
        fresh(p, 2, nk, -1, 1);                         /* k */
        fresh(p, 3, nk, -1, 1);                         /* q */
        tu_l2norm_rows(p->in[2], L, (int)K);
        tu_l2norm_rows(p->in[3], L, (int)K);
        fresh(p, 4, V * K, 0.9, 0.9999);                /* decay near 1 */
        float *q = fresh(p, 5, V * K, 0, 1);            /* small process noise */
        for (int64_t i = 0; i < V * K; i++) q[i] = (float)exp(tu_uniform(log(1e-6), log(1e-2)));
        p->n1 = p->n2 = V;
        p->ns = 2 * V * K;
        break;
    }
    case OP_ELA: /* the exp map (F = K), safe form, offset carried */
        fresh(p, 0, nqk, -1, 1);
        fresh(p, 1, nqk, -1, 1);
        fresh(p, 2, nv, -1, 1);
        p->n1 = H * V;
        p->ns = H * K * V + 2 * H * K;
        break;
    }
}

static void lp_free(lp *p)
{
    for (int i = 0; i < 8; i++) free(p->in[i]);
}

/* Tokens [t0, t0+len) from state s0 (NULL: the default initial state) into
 * out1/out2 (the outputs of those tokens) and the final state st. */
static int lp_call(linattn_ctx *ctx, const lp *p, int algo, int64_t t0, int64_t len,
                   const float *s0, float *st, float *out1, float *out2)
{
    const int64_t H = p->H, K = p->K, V = p->V;
    float *const *in = p->in;
    float *q = in[0] + t0 * H * K, *k = in[1] + t0 * H * K, *v = in[2] + t0 * H * V;
    switch (p->op) {
    case OP_GDN: case OP_KLA: case OP_GLA: {
        linattn_delta_opts opts;
        linattn_delta_opts_init(&opts);
        opts.algo = (linattn_algo)algo;
        linattn_delta_io io;
        memset(&io, 0, sizeof io);
        io.q = linattn_tensor_4d(q, 1, len, H, K);
        io.k = linattn_tensor_4d(k, 1, len, H, K);
        io.v = linattn_tensor_4d(v, 1, len, H, V);
        io.g = linattn_tensor_3d(in[3] + t0 * H, 1, len, H);
        if (p->op != OP_GLA) io.beta = linattn_tensor_3d(in[4] + t0 * H, 1, len, H);
        if (s0) io.h0 = linattn_tensor_4d((float *)s0, 1, H, K, V);
        io.o = linattn_tensor_4d(out1, 1, len, H, V);
        io.ht = linattn_tensor_4d(st, 1, H, K, V);
        return linattn_delta_forward(ctx, (linattn_delta_op)p->op, &io, &opts);
    }
    case OP_GKA: {
        linattn_gka_opts opts;
        linattn_gka_opts_init(&opts);
        opts.algo = (linattn_algo)algo;
        linattn_gka_io io;
        memset(&io, 0, sizeof io);
        io.q = linattn_tensor_4d(q, 1, len, H, K);
        io.k = linattn_tensor_4d(k, 1, len, H, K);
        io.v = linattn_tensor_4d(v, 1, len, H, V);
        io.g = linattn_tensor_3d(in[3] + t0 * H, 1, len, H);
        io.beta = linattn_tensor_3d(in[4] + t0 * H, 1, len, H);
        io.alpha = linattn_tensor_3d(in[5] + t0 * H, 1, len, H);
        if (s0) {
            io.h0_kk = linattn_tensor_4d((float *)s0, 1, H, K, K);
            io.h0_kv = linattn_tensor_4d((float *)s0 + H * K * K, 1, H, K, V);
        }
        io.o = linattn_tensor_4d(out1, 1, len, H, V);
        io.ht_kk = linattn_tensor_4d(st, 1, H, K, K);
        io.ht_kv = linattn_tensor_4d(st + H * K * K, 1, H, K, V);
        return linattn_gka_forward(ctx, &io, &opts);
    }
    case OP_KALMAN: {
        linattn_kalman_opts opts;
        linattn_kalman_opts_init(&opts);
        opts.algo = (linattn_algo)algo;
        linattn_kalman_io io;
        memset(&io, 0, sizeof io);
        io.v = linattn_tensor_3d(in[0] + t0 * V, 1, len, V);
        io.lam_v = linattn_tensor_3d(in[1] + t0 * V, 1, len, V);
        io.k = linattn_tensor_3d(in[2] + t0 * K, 1, len, K);
        io.q = linattn_tensor_3d(in[3] + t0 * K, 1, len, K);
        io.decay = linattn_tensor_2d(in[4], V, K);
        io.noise = linattn_tensor_2d(in[5], V, K);
        if (s0) {
            io.lam0 = linattn_tensor_3d((float *)s0, 1, V, K);
            io.eta0 = linattn_tensor_3d((float *)s0 + V * K, 1, V, K);
        }
        io.y = linattn_tensor_3d(out1, 1, len, V);
        io.yvar = linattn_tensor_3d(out2, 1, len, V);
        io.lamT = linattn_tensor_3d(st, 1, V, K);
        io.etaT = linattn_tensor_3d(st + V * K, 1, V, K);
        return linattn_kalman_forward(ctx, &io, &opts);
    }
    default: {
        linattn_ela_opts opts;
        linattn_ela_opts_init(&opts);
        opts.algo = (linattn_algo)algo;
        linattn_ela_io io;
        memset(&io, 0, sizeof io);
        io.q = linattn_tensor_4d(q, 1, len, H, K);
        io.k = linattn_tensor_4d(k, 1, len, H, K);
        io.v = linattn_tensor_4d(v, 1, len, H, V);
        if (s0) {
            io.s0 = linattn_tensor_4d((float *)s0, 1, H, K, V);
            io.z0 = linattn_tensor_3d((float *)s0 + H * K * V, 1, H, K);
            io.c0 = linattn_tensor_3d((float *)s0 + H * K * V + H * K, 1, H, K);
        }
        io.o = linattn_tensor_4d(out1, 1, len, H, V);
        io.st = linattn_tensor_4d(st, 1, H, K, V);
        io.zt = linattn_tensor_3d(st + H * K * V, 1, H, K);
        io.ct = linattn_tensor_3d(st + H * K * V + H * K, 1, H, K);
        return linattn_ela_forward(ctx, &io, &opts);
    }
    }
}

static void expect_finite(const float *x, size_t n, const char *what)
{
    size_t i = 0; /* (one assertion, not one per element: Check logs each one) */
    while (i < n && isfinite(x[i])) i++;
    ck_assert_msg(i == n, "%s: element %zu is %g", what, i, i < n ? (double)x[i] : 0.0);
}

static int same_bits(const float *x, const float *y, size_t n)
{
    return memcmp(x, y, n * sizeof(float)) == 0;
}

/* Compare got with want: bit for bit when exact, else within TOL_CHUNK
 * (worst error kept in *worst). */
static void expect_match(const float *got, const float *want, size_t n, int exact,
                         double *worst, const char *what, int call)
{
    if (!n) return;
    if (exact) {
        if (same_bits(got, want, n)) return;
        size_t i = 0;
        while (i < n && !memcmp(got + i, want + i, sizeof(float))) i++;
        ck_abort_msg("%s, call %d: not bit for bit (element %zu: %.9g, whole run %.9g)", what,
                     call, i, (double)got[i], (double)want[i]);
    }
    const double e = tu_relerr(got, want, n);
    if (e > *worst) *worst = e;
    ck_assert_msg(e <= TOL_CHUNK, "%s, call %d: relative error %.3g > %g", what, call, e,
                  TOL_CHUNK);
}

static void long_run(int op, int64_t H, int64_t K, int64_t V)
{
    const int64_t L = tokens(), n = L / CALLS;
    lp p;
    lp_make(&p, op, L, H, K, V);
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.backend = LINATTN_BACKEND_CPU; /* best ISA, default threads */
    ck_assert_msg(linattn_ctx_create(&ctx, &cfg) == 0, "%s", linattn_last_error());
    float *w1 = tu_alloc(L * p.n1), *w2 = p.n2 ? tu_alloc(L * p.n2) : NULL;
    float *c1 = tu_alloc(n * p.n1), *c2 = p.n2 ? tu_alloc(n * p.n2) : NULL;
    float *st_w = tu_alloc(p.ns), *st_chunk = tu_alloc(p.ns), *sa = tu_alloc(p.ns),
          *sb = tu_alloc(p.ns);
    for (int algo = LINATTN_ALGO_CHUNK; algo >= LINATTN_ALGO_RECURRENT; algo--) {
        const int exact = algo == LINATTN_ALGO_RECURRENT;
        char what[96];
        snprintf(what, sizeof what, "%s %s, %lld tokens, H=%lld K=%lld V=%lld", OPNAME[op],
                 exact ? "recurrent" : "chunked", (long long)L, (long long)H, (long long)K,
                 (long long)V);
        tu_poison(w1, L * p.n1);
        if (w2) tu_poison(w2, L * p.n2);
        tu_poison(st_w, p.ns);
        ck_assert_msg(lp_call(ctx, &p, algo, 0, L, NULL, st_w, w1, w2) == 0, "%s: %s", what,
                      linattn_last_error());
        expect_finite(w1, L * p.n1, what);
        if (w2) expect_finite(w2, L * p.n2, what);
        expect_finite(st_w, p.ns, what);
        /* the same tokens in CALLS calls, the state carried */
        double worst = 0;
        const float *s0 = NULL;
        for (int c = 0; c < CALLS; c++) {
            float *st = (c % 2) ? sb : sa;
            tu_poison(c1, n * p.n1);
            if (c2) tu_poison(c2, n * p.n2);
            tu_poison(st, p.ns);
            ck_assert_msg(lp_call(ctx, &p, algo, c * n, n, s0, st, c1, c2) == 0,
                          "%s, call %d: %s", what, c, linattn_last_error());
            expect_match(c1, w1 + c * n * p.n1, n * p.n1, exact, &worst, what, c);
            if (c2) expect_match(c2, w2 + c * n * p.n2, n * p.n2, exact, &worst, what, c);
            s0 = st;
        }
        expect_match(s0, st_w, p.ns, exact, &worst, what, CALLS);
        if (exact) {
            const double e = tu_relerr(st_w, st_chunk, p.ns);
            fprintf(stderr, "%s: %d calls equal the whole run bit for bit; final state "
                    "recurrent vs chunked %.2e\n", what, CALLS, e);
            ck_assert_msg(e <= TOL_CHUNK, "%s: final states of the two forms differ by %.3g",
                          what, e);
        } else {
            memcpy(st_chunk, st_w, sizeof(float) * p.ns);
            fprintf(stderr, "%s: %d calls vs whole run, worst relative error %.2e\n", what,
                    CALLS, worst);
        }
    }
    free(w1); free(w2); free(c1); free(c2);
    free(st_w); free(st_chunk); free(sa); free(sb);
    linattn_ctx_destroy(ctx);
    lp_free(&p);
}

START_TEST(test_gdn) { long_run(OP_GDN, 2, 8, 8); }
END_TEST
START_TEST(test_kla) { long_run(OP_KLA, 1, 16, 8); }
END_TEST
START_TEST(test_gla) { long_run(OP_GLA, 2, 8, 16); }
END_TEST
START_TEST(test_gka) { long_run(OP_GKA, 1, 8, 8); }
END_TEST
START_TEST(test_kalman) { long_run(OP_KALMAN, 1, 4, 8); } /* M = 8 channels, S = 4 */
END_TEST
START_TEST(test_ela) { long_run(OP_ELA, 2, 8, 8); }
END_TEST

/* softmax: a cache of L tokens, filled by CALLS appends of L/CALLS, then a
 * few steps at that length against a double softmax over the whole cache. */
START_TEST(test_softmax)
{
    const int64_t L = tokens(), n = L / CALLS, H = 1, K = 16, V = 16, STEPS = 3;
    float *k = tu_alloc((L + STEPS) * H * K), *v = tu_alloc((L + STEPS) * H * V);
    float *q = tu_alloc(STEPS * H * K), *o = tu_alloc(H * V);
    tu_fill(k, (L + STEPS) * H * K, -1, 1);
    tu_fill(v, (L + STEPS) * H * V, -1, 1);
    tu_fill(q, STEPS * H * K, -2, 2); /* scores up to about +-8: a peaked softmax */
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.backend = LINATTN_BACKEND_CPU;
    ck_assert_msg(linattn_ctx_create(&ctx, &cfg) == 0, "%s", linattn_last_error());
    linattn_kvcache *c = NULL;
    ck_assert_int_eq(linattn_kvcache_create(ctx, &c, 1, H, K, V, 0), 0); /* grows */
    for (int i = 0; i < CALLS; i++) {
        const linattn_tensor tk = linattn_tensor_4d(k + i * n * H * K, 1, n, H, K);
        const linattn_tensor tv = linattn_tensor_4d(v + i * n * H * V, 1, n, H, V);
        ck_assert_msg(linattn_kvcache_append(ctx, c, &tk, &tv) == 0, "append %d: %s", i,
                      linattn_last_error());
    }
    ck_assert_int_eq(linattn_kvcache_length(c), L);
    ck_assert_int_ge(linattn_kvcache_capacity(c), L);
    const double scale = 1.0 / sqrt((double)K);
    double *sc = malloc(sizeof(double) * (L + STEPS));
    ck_assert_ptr_nonnull(sc);
    double worst = 0;
    for (int64_t s = 0; s < STEPS; s++) {
        const int64_t t = L + s; /* the new token's index */
        linattn_softmax_step_io io = {
            .q = linattn_tensor_3d(q + s * H * K, 1, H, K),
            .k = linattn_tensor_3d(k + t * H * K, 1, H, K),
            .v = linattn_tensor_3d(v + t * H * V, 1, H, V),
            .o = linattn_tensor_3d(o, 1, H, V),
        };
        tu_poison(o, H * V);
        ck_assert_msg(linattn_softmax_step(ctx, c, &io, NULL) == 0, "step: %s",
                      linattn_last_error());
        expect_finite(o, H * V, "softmax step");
        for (int64_t h = 0; h < H; h++) {
            const float *qh = q + (s * H + h) * K;
            double mx = -INFINITY, den = 0, ref[16] = {0};
            float got[16];
            for (int64_t j = 0; j <= t; j++) {
                double d = 0;
                for (int64_t e = 0; e < K; e++) d += (double)qh[e] * k[(j * H + h) * K + e];
                sc[j] = d * scale;
                if (sc[j] > mx) mx = sc[j];
            }
            for (int64_t j = 0; j <= t; j++) {
                const double w = exp(sc[j] - mx);
                den += w;
                for (int64_t e = 0; e < V; e++) ref[e] += w * v[(j * H + h) * V + e];
            }
            float reff[16];
            for (int64_t e = 0; e < V; e++) {
                reff[e] = (float)(ref[e] / den);
                got[e] = o[h * V + e];
            }
            const double err = tu_relerr(got, reff, V);
            if (err > worst) worst = err;
            ck_assert_msg(err < 1e-4, "softmax step at %lld tokens, head %lld: relative error "
                          "%.3g", (long long)t + 1, (long long)h, err);
        }
    }
    fprintf(stderr, "softmax: cache of %lld tokens in %d appends, %lld steps, worst relative "
            "error %.2e\n", (long long)L, CALLS, (long long)STEPS, worst);
    ck_assert_int_eq(linattn_kvcache_length(c), L + STEPS);
    free(sc); free(k); free(v); free(q); free(o);
    linattn_kvcache_destroy(c);
    linattn_ctx_destroy(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("long");
    TCase *tc = tcase_create("long");
    tcase_set_timeout(tc, 1800);
    tcase_add_test(tc, test_gdn);
    tcase_add_test(tc, test_kla);
    tcase_add_test(tc, test_gla);
    tcase_add_test(tc, test_gka);
    tcase_add_test(tc, test_kalman);
    tcase_add_test(tc, test_ela);
    tcase_add_test(tc, test_softmax);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(suite());
}
