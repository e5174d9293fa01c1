/* linattn tests - long sequences.  Every forward of the operator table with
 * a fixed-size state (gdn, kla, gla, gka, kalman, ela; a new operator by its
 * table rows) runs 1,000,000 tokens of one sequence with small heads and
 * the table's typical values, in its chunked form and in its recurrent
 * form, over the whole sequence at once; every output and the final state
 * must be finite.
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
#include "testop.h"
#include "testutil.h"

#define CALLS 100
#define TOL_CHUNK 5e-5

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

/* The sizes of every operator's long run (kalman: M channels, S states). */
#define H_ 2
#define K_ 8
#define V_ 8
#define M_ 8
#define S_ 4

/* One long sequence (B = 1) of a forward from the operator table: its
 * arrays (tu_op), and how its tensors split: per token ([1,T,...]: sliced
 * by the calls), initial states (inputs over N: absent in the whole run,
 * the carried state in the calls), final states (outputs over N: the
 * state, sections in table order), the rest whole (e.g. kalman's decay). */
typedef struct lp {
    tu_op p;
    int64_t L;
    size_t row[LINATTN_OP_MAX_TENSORS]; /* floats per token (per-token tensors) */
    size_t soff[LINATTN_OP_MAX_TENSORS]; /* section of the state (initial and final states) */
    size_t ooff[LINATTN_OP_MAX_TENSORS]; /* floats before this output, per token */
    size_t nrow, ns;                     /* output floats per token; state floats */
} lp;

enum { WHOLE, TOKEN, INIT, FINAL };

static int kind(const lp *p, int i)
{
    const linattn_op_tensor *d = &p->p.op->tensors[i];
    if (d->dims[0] == 'B' && d->dims[1] == 'T') return TOKEN;
    if (d->dims[0] == 'N') return d->role == LINATTN_ROLE_IN ? INIT : FINAL;
    return WHOLE;
}

/* Whether the forward op has a fixed-size state to carry (softmax has not). */
static int has_state(const linattn_op_info *op)
{
    for (int i = 0; i < op->ntensors; i++)
        if (op->tensors[i].dims[0] == 'N' && op->tensors[i].role == LINATTN_ROLE_OUT) return 1;
    return 0;
}

static void lp_make(lp *p, const linattn_op_info *op, int64_t L)
{
    int64_t dims[LINATTN_OP_LETTERS];
    memset(p, 0, sizeof *p);
    p->L = L;
    tu_op_sizes(dims, 1, L, H_, K_, V_, M_, S_);
    tu_op_make(&p->p, op, dims, TU_OP_ALL, 1, 0);
    size_t init = 0;
    for (int i = 0; i < op->ntensors; i++) {
        const size_t n = p->p.count[i];
        switch (kind(p, i)) {
        case TOKEN:
            p->row[i] = n / (size_t)L;
            if (op->tensors[i].role == LINATTN_ROLE_OUT) {
                p->ooff[i] = p->nrow;
                p->nrow += p->row[i];
            }
            break;
        case INIT: p->soff[i] = init; init += n; break;
        case FINAL: p->soff[i] = p->ns; p->ns += n; break;
        }
    }
    ck_assert_msg(init == p->ns, "%s: initial states of %zu floats, final ones of %zu",
                  tu_op_name(op), init, p->ns);
}

static void lp_free(lp *p) { tu_op_free(&p->p); }

/* Tokens [t0, t0+len) from state s0 (NULL: the default initial state) into
 * out (the outputs of those tokens, [len, nrow] by sections) and the final
 * state st. */
static int lp_call(linattn_ctx *ctx, const lp *p, int algo, int64_t t0, int64_t len,
                   const float *s0, float *st, float *out)
{
    linattn_op_args a = p->p.a;
    const linattn_op_info *op = p->p.op;
    const int ai = linattn_op_option_index(op, "algo");
    if (ai >= 0) a.opt[ai] = algo;
    for (int i = 0; i < op->ntensors; i++) {
        linattn_tensor *t = &a.t[i];
        switch (kind(p, i)) {
        case TOKEN:
            t->shape[1] = len;
            t->data = op->tensors[i].role == LINATTN_ROLE_OUT ? out + len * p->ooff[i]
                                                              : t->data + t0 * p->row[i];
            break;
        case INIT:
            if (s0) t->data = (float *)s0 + p->soff[i];
            else *t = linattn_tensor_none();
            break;
        case FINAL: t->data = st + p->soff[i]; break;
        }
    }
    return linattn_op_call(ctx, op, &a);
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

static void long_run(const linattn_op_info *op)
{
    const int64_t L = tokens(), n = L / CALLS;
    lp p;
    lp_make(&p, op, L);
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.backend = LINATTN_BACKEND_CPU; /* best ISA, default threads */
    ck_assert_msg(linattn_ctx_create(&cfg, &ctx) == 0, "%s", linattn_last_error());
    float *w = tu_alloc(L * p.nrow), *c1 = tu_alloc(n * p.nrow);
    float *st_w = tu_alloc(p.ns), *st_chunk = tu_alloc(p.ns), *sa = tu_alloc(p.ns),
          *sb = tu_alloc(p.ns);
    for (int algo = LINATTN_ALGO_CHUNK; algo >= LINATTN_ALGO_RECURRENT; algo--) {
        const int exact = algo == LINATTN_ALGO_RECURRENT;
        char what[128];
        snprintf(what, sizeof what, "%s %s, %lld tokens, H=%d K=%d V=%d M=%d S=%d", op->name,
                 exact ? "recurrent" : "chunked", (long long)L, H_, K_, V_, M_, S_);
        tu_poison(w, L * p.nrow);
        tu_poison(st_w, p.ns);
        ck_assert_msg(lp_call(ctx, &p, algo, 0, L, NULL, st_w, w) == 0, "%s: %s", what,
                      linattn_last_error());
        expect_finite(w, L * p.nrow, what);
        expect_finite(st_w, p.ns, what);
        /* the same tokens in CALLS calls, the state carried */
        double worst = 0;
        const float *s0 = NULL;
        for (int c = 0; c < CALLS; c++) {
            float *st = (c % 2) ? sb : sa;
            tu_poison(c1, n * p.nrow);
            tu_poison(st, p.ns);
            ck_assert_msg(lp_call(ctx, &p, algo, c * n, n, s0, st, c1) == 0,
                          "%s, call %d: %s", what, c, linattn_last_error());
            for (int i = 0; i < op->ntensors; i++)
                if (kind(&p, i) == TOKEN && op->tensors[i].role == LINATTN_ROLE_OUT)
                    expect_match(c1 + n * p.ooff[i], w + L * p.ooff[i] + c * n * p.row[i],
                                 n * p.row[i], exact, &worst, what, c);
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
    free(w); free(c1);
    free(st_w); free(st_chunk); free(sa); free(sb);
    linattn_ctx_destroy(ctx);
    lp_free(&p);
}

/* Every forward of the operator table with a state to carry. */
START_TEST(test_forward)
{
    const linattn_op_info *op = linattn_op_at(_i);
    if (strcmp(op->entry, "forward") || !has_state(op)) return;
    long_run(op);
}
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
    ck_assert_msg(linattn_ctx_create(&cfg, &ctx) == 0, "%s", linattn_last_error());
    linattn_kvcache *c = NULL;
    ck_assert_int_eq(linattn_kvcache_create(ctx, 1, H, K, V, 0, &c), 0); /* grows */
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
    tcase_add_loop_test(tc, test_forward, 0, linattn_op_count());
    tcase_add_test(tc, test_softmax);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(suite());
}
