/* linattn tests - causal softmax attention and its KV cache: the reference
 * against a naive softmax written here; every ISA and OpenCL against the
 * reference; blocked forward = naive softmax; step-by-step decode =
 * forward; split-K decode over long caches; threads never change a bit;
 * the cache's bookkeeping; and the argument contract. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define TOL 1e-5

/* Huge allocations must fail quietly under AddressSanitizer (the growth
 * failure test); without ASan this hook is never called. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

typedef struct prob {
    int64_t B, T, H, K, V;
    float *q, *k, *v;
} prob;

/* q in [-qa, qa] (the spread of the scores), k and v in [-1, 1] */
static void prob_make(prob *p, int64_t B, int64_t T, int64_t H, int64_t K, int64_t V, double qa)
{
    p->B = B; p->T = T; p->H = H; p->K = K; p->V = V;
    p->q = tu_alloc(B * T * H * K);
    p->k = tu_alloc(B * T * H * K);
    p->v = tu_alloc(B * T * H * V);
    tu_fill(p->q, B * T * H * K, -qa, qa);
    tu_fill(p->k, B * T * H * K, -1, 1);
    tu_fill(p->v, B * T * H * V, -1, 1);
}

static void prob_free(prob *p)
{
    free(p->q); free(p->k); free(p->v);
}

static size_t nout(const prob *p) { return (size_t)(p->B * p->T * p->H * p->V); }

/* Forward into o (poisoned first). */
static int fwd(linattn_ctx *c, const prob *p, float *o, const int64_t *cu, int64_t nseq,
               const linattn_softmax_opts *opts)
{
    tu_poison(o, nout(p));
    linattn_softmax_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(p->q, p->B, p->T, p->H, p->K);
    io.k = linattn_tensor_4d(p->k, p->B, p->T, p->H, p->K);
    io.v = linattn_tensor_4d(p->v, p->B, p->T, p->H, p->V);
    io.o = linattn_tensor_4d(o, p->B, p->T, p->H, p->V);
    io.cu_seqlens = cu;
    io.n_seqs = cu ? nseq : 0;
    return linattn_softmax_forward(c, &io, opts);
}

/* The test's own oracle: every score of every row in double, naively. */
static void naive(const prob *p, const int64_t *cu, int64_t nseq, double scale, float *o)
{
    const int64_t H = p->H, K = p->K, V = p->V;
    double *s = malloc(sizeof(double) * p->T), *acc = malloc(sizeof(double) * V);
    ck_assert(s && acc);
    for (int64_t n = 0; n < (cu ? nseq : p->B); n++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t base = cu ? cu[n] : n * p->T, len = cu ? cu[n + 1] - cu[n] : p->T;
            for (int64_t t = 0; t < len; t++) {
                const float *q = p->q + ((base + t) * H + h) * K;
                double mx = -INFINITY, den = 0;
                for (int64_t j = 0; j <= t; j++) {
                    const float *k = p->k + ((base + j) * H + h) * K;
                    double d = 0;
                    for (int64_t i = 0; i < K; i++) d += (double)q[i] * k[i];
                    s[j] = scale * d;
                    mx = fmax(mx, s[j]);
                }
                for (int64_t c = 0; c < V; c++) acc[c] = 0;
                for (int64_t j = 0; j <= t; j++) {
                    const double w = exp(s[j] - mx);
                    den += w;
                    for (int64_t c = 0; c < V; c++) acc[c] += w * p->v[((base + j) * H + h) * V + c];
                }
                for (int64_t c = 0; c < V; c++) o[((base + t) * H + h) * V + c] = (float)(acc[c] / den);
            }
        }
    free(s);
    free(acc);
}

/* Token t of every batch row as [B,H,*] arrays: q from p, k and v from pk
 * and pv [B,T,Hk,*] (p's own k and v with Hk = H). */
static void gather_kv(const prob *p, const float *pk, const float *pv, int64_t Hk, int64_t t,
                      float *q, float *k, float *v)
{
    const int64_t H = p->H, K = p->K, V = p->V;
    for (int64_t b = 0; b < p->B; b++) {
        memcpy(q + b * H * K, p->q + (b * p->T + t) * H * K, sizeof(float) * H * K);
        memcpy(k + b * Hk * K, pk + (b * p->T + t) * Hk * K, sizeof(float) * Hk * K);
        memcpy(v + b * Hk * V, pv + (b * p->T + t) * Hk * V, sizeof(float) * Hk * V);
    }
}

static void gather(const prob *p, int64_t t, float *q, float *k, float *v)
{
    gather_kv(p, p->k, p->v, p->H, t, q, k, v);
}

static void scatter(const prob *p, int64_t t, const float *o, float *out)
{
    for (int64_t b = 0; b < p->B; b++)
        memcpy(out + (b * p->T + t) * p->H * p->V, o + b * p->H * p->V,
               sizeof(float) * p->H * p->V);
}

/* Decode tokens [t0, T) of p by steps on cache c into out (rows of those
 * tokens), k and v from pk and pv [B,T,Hk,*]. */
static void steps_kv(linattn_ctx *ctx, linattn_kvcache *c, const prob *p, const float *pk,
                     const float *pv, int64_t Hk, int64_t t0, float *out,
                     const linattn_softmax_opts *opts)
{
    const int64_t B = p->B, H = p->H, K = p->K, V = p->V;
    float *q = tu_alloc(B * H * K), *k = tu_alloc(B * Hk * K), *v = tu_alloc(B * Hk * V);
    float *o = tu_alloc(B * H * V);
    for (int64_t t = t0; t < p->T; t++) {
        gather_kv(p, pk, pv, Hk, t, q, k, v);
        tu_poison(o, B * H * V);
        linattn_softmax_step_io s = {
            .q = linattn_tensor_3d(q, B, H, K), .k = linattn_tensor_3d(k, B, Hk, K),
            .v = linattn_tensor_3d(v, B, Hk, V), .o = linattn_tensor_3d(o, B, H, V)};
        ck_assert_msg(linattn_softmax_step(ctx, c, &s, opts) == 0, "step %lld: %s", (long long)t,
                      linattn_last_error());
        ck_assert_int_eq(linattn_kvcache_length(c), t + 1);
        scatter(p, t, o, out);
    }
    free(q); free(k); free(v); free(o);
}

static void steps(linattn_ctx *ctx, linattn_kvcache *c, const prob *p, int64_t t0, float *out,
                  const linattn_softmax_opts *opts)
{
    steps_kv(ctx, c, p, p->k, p->v, p->H, t0, out, opts);
}

/* Append tokens [0, t1) of pk and pv [B,T,H,*] (all batch rows) to c. */
static int append_kv(linattn_ctx *ctx, linattn_kvcache *c, const prob *p, const float *pk,
                     const float *pv, int64_t H, int64_t t1)
{
    const int64_t B = p->B, K = p->K, V = p->V;
    float *k = tu_alloc(B * t1 * H * K), *v = tu_alloc(B * t1 * H * V);
    for (int64_t b = 0; b < B; b++) {
        memcpy(k + b * t1 * H * K, pk + b * p->T * H * K, sizeof(float) * t1 * H * K);
        memcpy(v + b * t1 * H * V, pv + b * p->T * H * V, sizeof(float) * t1 * H * V);
    }
    const linattn_tensor tk = linattn_tensor_4d(k, B, t1, H, K), tv = linattn_tensor_4d(v, B, t1, H, V);
    const int rc = linattn_kvcache_append(ctx, c, &tk, &tv);
    free(k);
    free(v);
    return rc;
}

static int append(linattn_ctx *ctx, linattn_kvcache *c, const prob *p, int64_t t1)
{
    return append_kv(ctx, c, p, p->k, p->v, p->H, t1);
}

/* ---- the oracle itself ------------------------------------------------- */

START_TEST(test_ref_is_naive)
{
    prob p;
    prob_make(&p, 2, 37, 3, 16, 12, 3);
    float *o = tu_alloc(nout(&p)), *o2 = tu_alloc(nout(&p));
    linattn_ctx *c = tu_ctx("ref", 2);
    ck_assert_int_eq(fwd(c, &p, o, NULL, 0, NULL), 0);
    naive(&p, NULL, 0, 1.0 / sqrt(16.0), o2);
    ck_assert_msg(tu_relerr(o, o2, nout(&p)) < 1e-6, "ref vs naive: %g", tu_relerr(o, o2, nout(&p)));
    /* packed sequences, an explicit scale */
    prob q = p;
    q.B = 1;
    q.T = 2 * 37;
    const int64_t cu[4] = {0, 1, 30, 74};
    linattn_softmax_opts opts;
    linattn_softmax_opts_init(&opts);
    opts.scale = 0.7f;
    ck_assert_int_eq(fwd(c, &q, o, cu, 3, &opts), 0);
    naive(&q, cu, 3, 0.7f, o2);
    ck_assert_msg(tu_relerr(o, o2, nout(&q)) < 1e-6, "ref vs naive, packed: %g",
                  tu_relerr(o, o2, nout(&q)));
    linattn_ctx_destroy(c);
    free(o); free(o2);
    prob_free(&p);
}
END_TEST

/* ---- every fast path against the reference ------------------------------ */

typedef struct shape { int64_t B, T, H, K, V; int packed; } shape;
static const shape SHAPES[] = {
    {3, 1, 4, 16, 16, 0},  {1, 63, 2, 32, 48, 0}, {2, 64, 2, 64, 64, 0},
    {1, 65, 3, 128, 128, 0}, {2, 130, 1, 48, 24, 0}, {1, 1000, 1, 64, 32, 0},
    {1, 300, 2, 256, 16, 1}, {1, 20, 1, 1, 3, 0},
    /* OpenCL's two forward kernels: K = V = 128 with sequences not a multiple
     * of the blocks, V with padded columns, V > 128 (softmax_fwd only) */
    {1, 333, 2, 128, 128, 1}, {2, 200, 1, 128, 128, 0}, {1, 97, 1, 100, 96, 0},
    {1, 150, 2, 32, 160, 1},
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof *SHAPES))

START_TEST(test_vs_reference)
{
    const shape *s = &SHAPES[_i];
    prob p;
    prob_make(&p, s->B, s->T, s->H, s->K, s->V, 2);
    const int64_t cu[4] = {0, s->T / 3, s->T / 3 + 1, s->T};
    const int64_t *c = s->packed ? cu : NULL;
    float *o0 = tu_alloc(nout(&p)), *o1 = tu_alloc(nout(&p));
    linattn_ctx *ref = tu_ctx("ref", 2);
    ck_assert_int_eq(fwd(ref, &p, o0, c, 3, NULL), 0);
    linattn_ctx_destroy(ref);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    /* OpenCL: each forward kernel (LINATTN_CL_SOFTMAX, read at each call):
     * softmax_fwd2 where V <= 128, without loads ahead, softmax_fwd */
    static const char *const forms[] = {"2", "3", "1"};
    for (int i = 0; i < n; i++) {
        const int nf = strcmp(isas[i], "opencl") ? 1 : 3;
        linattn_ctx *x = tu_ctx(isas[i], 2);
        for (int f = 0; f < nf; f++) {
            if (nf > 1) setenv("LINATTN_CL_SOFTMAX", forms[f], 1);
            tu_poison(o1, nout(&p));
            ck_assert_msg(fwd(x, &p, o1, c, 3, NULL) == 0, "%s: %s", isas[i], linattn_last_error());
            const double e = tu_relerr(o1, o0, nout(&p));
            ck_assert_msg(e < TOL, "%s (form %s) shape %d: %g", isas[i], nf > 1 ? forms[f] : "-", _i,
                          e);
        }
        if (nf > 1) unsetenv("LINATTN_CL_SOFTMAX");
        linattn_ctx_destroy(x);
    }
    free(o0); free(o1);
    prob_free(&p);
}
END_TEST

/* the block size changes the order of the sums only */
START_TEST(test_blocks)
{
    static const int blocks[] = {1, 7, 16, 64, 100, 1024};
    prob p;
    prob_make(&p, 2, 150, 2, 32, 40, 3);
    float *o0 = tu_alloc(nout(&p)), *o1 = tu_alloc(nout(&p));
    linattn_ctx *ref = tu_ctx("ref", 2);
    ck_assert_int_eq(fwd(ref, &p, o0, NULL, 0, NULL), 0);
    linattn_ctx_destroy(ref);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++) {
        if (!strcmp(isas[i], "opencl")) continue; /* its blocks are its own: in test_vs_reference */
        linattn_ctx *x = tu_ctx(isas[i], 2);
        for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
            linattn_softmax_opts opts;
            linattn_softmax_opts_init(&opts);
            opts.chunk = blocks[b];
            ck_assert_int_eq(fwd(x, &p, o1, NULL, 0, &opts), 0);
            const double e = tu_relerr(o1, o0, nout(&p));
            ck_assert_msg(e < TOL, "%s block %d: %g", isas[i], blocks[b], e);
        }
        linattn_ctx_destroy(x);
    }
    free(o0); free(o1);
    prob_free(&p);
}
END_TEST

/* scores far above exp's range: the running max keeps everything finite */
START_TEST(test_large_scores)
{
    prob p;
    prob_make(&p, 1, 200, 2, 32, 32, 1);
    linattn_softmax_opts opts;
    linattn_softmax_opts_init(&opts);
    opts.scale = 60.0f; /* scores up to ~ 600 */
    float *o0 = tu_alloc(nout(&p)), *o1 = tu_alloc(nout(&p)), *o2 = tu_alloc(nout(&p));
    linattn_ctx *ref = tu_ctx("ref", 1);
    ck_assert_int_eq(fwd(ref, &p, o0, NULL, 0, &opts), 0);
    linattn_ctx_destroy(ref);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++) {
        linattn_ctx *x = tu_ctx(isas[i], 2);
        ck_assert_int_eq(fwd(x, &p, o1, NULL, 0, &opts), 0);
        double e = tu_relerr(o1, o0, nout(&p));
        ck_assert_msg(e < 1e-4, "%s forward: %g", isas[i], e);
        linattn_kvcache *c;
        ck_assert_int_eq(linattn_kvcache_create(x, 1, 2, 32, 32, 0, &c), 0);
        steps(x, c, &p, 0, o2, &opts);
        e = tu_relerr(o2, o0, nout(&p));
        ck_assert_msg(e < 1e-4, "%s steps: %g", isas[i], e);
        linattn_kvcache_destroy(c);
        linattn_ctx_destroy(x);
    }
    free(o0); free(o1); free(o2);
    prob_free(&p);
}
END_TEST

/* ---- decode ------------------------------------------------------------ */

/* step-by-step decode = forward, on a cache that starts with room for one
 * token (it grows on the way); then a prefill by append and steps after it */
START_TEST(test_decode_is_forward)
{
    const int64_t B = 2, T = 300, H = 2, K = 32, V = 24, t1 = 137;
    prob p;
    prob_make(&p, B, T, H, K, V, 2);
    float *o0 = tu_alloc(nout(&p)), *o1 = tu_alloc(nout(&p));
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i <= n; i++) {
        const char *isa = i < n ? isas[i] : "ref";
        const double tol = i < n ? TOL : 1e-6;
        linattn_ctx *x = tu_ctx(isa, 2);
        ck_assert_int_eq(fwd(x, &p, o0, NULL, 0, NULL), 0);
        linattn_kvcache *c;
        ck_assert_int_eq(linattn_kvcache_create(x, B, H, K, V, 1, &c), 0);
        tu_poison(o1, nout(&p));
        steps(x, c, &p, 0, o1, NULL);
        double e = tu_relerr(o1, o0, nout(&p));
        ck_assert_msg(e < tol, "%s: steps vs forward %g", isa, e);
        ck_assert_int_ge(linattn_kvcache_capacity(c), T);
        /* reset, prefill [0, t1) by append, decode the rest */
        ck_assert_int_eq(linattn_kvcache_reset(c), 0);
        ck_assert_int_eq(linattn_kvcache_length(c), 0);
        ck_assert_int_eq(append(x, c, &p, t1), 0);
        ck_assert_int_eq(linattn_kvcache_length(c), t1);
        tu_poison(o1, nout(&p));
        steps(x, c, &p, t1, o1, NULL);
        for (int64_t b = 0; b < B; b++) {
            const size_t off = (size_t)((b * T + t1) * H * V), cnt = (size_t)((T - t1) * H * V);
            e = tu_relerr(o1 + off, o0 + off, cnt);
            ck_assert_msg(e < tol, "%s: append + steps vs forward, row %lld: %g", isa,
                          (long long)b, e);
        }
        /* roll back to t2 by truncate and decode again: the same outputs */
        const int64_t t2 = 200;
        ck_assert_int_eq(linattn_kvcache_truncate(c, t2), 0);
        ck_assert_int_eq(linattn_kvcache_length(c), t2);
        tu_poison(o1, nout(&p));
        steps(x, c, &p, t2, o1, NULL);
        for (int64_t b = 0; b < B; b++) {
            const size_t off = (size_t)((b * T + t2) * H * V), cnt = (size_t)((T - t2) * H * V);
            e = tu_relerr(o1 + off, o0 + off, cnt);
            ck_assert_msg(e < tol, "%s: truncate + steps vs forward, row %lld: %g", isa,
                          (long long)b, e);
        }
        linattn_kvcache_destroy(c);
        linattn_ctx_destroy(x);
    }
    free(o0); free(o1);
    prob_free(&p);
}
END_TEST

/* one step over long caches (many splits) against the reference's step */
START_TEST(test_long_cache)
{
    static const int64_t lens[] = {1, 127, 128, 129, 1000, 4097, 9000};
    const int64_t L = lens[_i], B = 1, H = 3, K = 64, V = 40;
    prob p;
    prob_make(&p, B, L + 1, H, K, V, 3);
    float *q = tu_alloc(B * H * K), *k = tu_alloc(B * H * K), *v = tu_alloc(B * H * V);
    float *o0 = tu_alloc(B * H * V), *o1 = tu_alloc(B * H * V);
    gather(&p, L, q, k, v);
    linattn_softmax_step_io s = {
        .q = linattn_tensor_3d(q, B, H, K), .k = linattn_tensor_3d(k, B, H, K),
        .v = linattn_tensor_3d(v, B, H, V), .o = linattn_tensor_3d(o0, B, H, V)};
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = n; i >= 0; i--) { /* the reference first */
        const char *isa = i < n ? isas[i] : "ref";
        linattn_ctx *x = tu_ctx(isa, 2);
        linattn_kvcache *c;
        ck_assert_int_eq(linattn_kvcache_create(x, B, H, K, V, 0, &c), 0);
        if (L > 1) { /* two appends: the second one grows the cache */
            ck_assert_int_eq(append(x, c, &p, L / 2), 0);
            prob r = p;
            r.k += L / 2 * H * K;
            r.v += L / 2 * H * V;
            r.T = p.T - L / 2;
            ck_assert_int_eq(append(x, c, &r, L - L / 2), 0);
        } else {
            ck_assert_int_eq(append(x, c, &p, 1), 0);
        }
        ck_assert_int_eq(linattn_kvcache_length(c), L);
        s.o = linattn_tensor_3d(i < n ? o1 : o0, B, H, V);
        tu_poison(i < n ? o1 : o0, B * H * V);
        ck_assert_msg(linattn_softmax_step(x, c, &s, NULL) == 0, "%s: %s", isa, linattn_last_error());
        ck_assert_int_eq(linattn_kvcache_length(c), L + 1);
        if (i < n) {
            const double e = tu_relerr(o1, o0, B * H * V);
            ck_assert_msg(e < TOL, "%s L=%lld: %g", isa, (long long)L, e);
        }
        linattn_kvcache_destroy(c);
        linattn_ctx_destroy(x);
    }
    free(q); free(k); free(v); free(o0); free(o1);
    prob_free(&p);
}
END_TEST

/* the thread count never changes a bit: forward, and a step over a cache
 * long enough for many splits */
START_TEST(test_threads)
{
    const int64_t B = 1, T = 3000, H = 2, K = 32, V = 16;
    prob p;
    prob_make(&p, B, T, H, K, V, 2);
    float *o0 = tu_alloc(nout(&p)), *o1 = tu_alloc(nout(&p));
    float *s0 = tu_alloc(B * H * V), *s1 = tu_alloc(B * H * V);
    float *q = tu_alloc(B * H * K), *k = tu_alloc(B * H * K), *v = tu_alloc(B * H * V);
    gather(&p, T - 1, q, k, v);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++) {
        if (!strcmp(isas[i], "opencl")) continue;
        for (int nt = 1; nt <= 4; nt++) {
            linattn_ctx *x = tu_ctx(isas[i], nt);
            float *o = nt == 1 ? o0 : o1, *so = nt == 1 ? s0 : s1;
            ck_assert_int_eq(fwd(x, &p, o, NULL, 0, NULL), 0);
            linattn_kvcache *c;
            ck_assert_int_eq(linattn_kvcache_create(x, B, H, K, V, 0, &c), 0);
            ck_assert_int_eq(append(x, c, &p, T - 1), 0);
            linattn_softmax_step_io s = {
                .q = linattn_tensor_3d(q, B, H, K), .k = linattn_tensor_3d(k, B, H, K),
                .v = linattn_tensor_3d(v, B, H, V), .o = linattn_tensor_3d(so, B, H, V)};
            tu_poison(so, B * H * V);
            ck_assert_int_eq(linattn_softmax_step(x, c, &s, NULL), 0);
            if (nt > 1) {
                ck_assert_msg(!memcmp(o0, o1, sizeof(float) * nout(&p)), "%s: forward, %d threads",
                              isas[i], nt);
                ck_assert_msg(!memcmp(s0, s1, sizeof(float) * B * H * V), "%s: step, %d threads",
                              isas[i], nt);
            }
            linattn_kvcache_destroy(c);
            linattn_ctx_destroy(x);
        }
    }
    free(o0); free(o1); free(s0); free(s1); free(q); free(k); free(v);
    prob_free(&p);
}
END_TEST

/* tensors in buffers: forward and steps as with host tensors */
START_TEST(test_buffers)
{
    const int64_t B = 2, T = 70, H = 2, K = 16, V = 8;
    prob p;
    prob_make(&p, B, T, H, K, V, 2);
    float *o0 = tu_alloc(nout(&p)), *o1 = tu_alloc(nout(&p)), *ob = tu_alloc(B * H * V);
    float *q = tu_alloc(B * H * K), *k = tu_alloc(B * H * K), *v = tu_alloc(B * H * V);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++) {
        linattn_ctx *x = tu_ctx(isas[i], 2);
        ck_assert_int_eq(fwd(x, &p, o0, NULL, 0, NULL), 0);
        linattn_buffer *bq, *bk, *bv, *bo;
        const size_t nq = B * T * H * K, nv = B * T * H * V;
        ck_assert_int_eq(linattn_buffer_create(x, nq, &bq), 0);
        ck_assert_int_eq(linattn_buffer_create(x, nq, &bk), 0);
        ck_assert_int_eq(linattn_buffer_create(x, nv, &bv), 0);
        ck_assert_int_eq(linattn_buffer_create(x, nv, &bo), 0);
        ck_assert_int_eq(linattn_buffer_write(bq, 0, p.q, nq), 0);
        ck_assert_int_eq(linattn_buffer_write(bk, 0, p.k, nq), 0);
        ck_assert_int_eq(linattn_buffer_write(bv, 0, p.v, nv), 0);
        const int64_t sq[4] = {B, T, H, K}, sv[4] = {B, T, H, V};
        linattn_softmax_io io = {.q = linattn_tensor_buffer(bq, 4, sq),
                                 .k = linattn_tensor_buffer(bk, 4, sq),
                                 .v = linattn_tensor_buffer(bv, 4, sv),
                                 .o = linattn_tensor_buffer(bo, 4, sv)};
        ck_assert_int_eq(linattn_softmax_forward(x, &io, NULL), 0);
        tu_poison(o1, nv);
        ck_assert_int_eq(linattn_buffer_read(bo, 0, o1, nv), 0);
        ck_assert_msg(!memcmp(o0, o1, sizeof(float) * nv), "%s: forward on buffers", isas[i]);
        /* steps with every tensor in a buffer, the cache prefilled from buffers */
        linattn_kvcache *c;
        ck_assert_int_eq(linattn_kvcache_create(x, B, H, K, V, 0, &c), 0);
        ck_assert_int_eq(linattn_kvcache_append(x, c, &io.k, &io.v), 0);
        ck_assert_int_eq(linattn_kvcache_reset(c), 0);
        const int64_t s3q[3] = {B, H, K}, s3v[3] = {B, H, V};
        linattn_buffer *sq3, *sk3, *sv3, *so3;
        ck_assert_int_eq(linattn_buffer_create(x, B * H * K, &sq3), 0);
        ck_assert_int_eq(linattn_buffer_create(x, B * H * K, &sk3), 0);
        ck_assert_int_eq(linattn_buffer_create(x, B * H * V, &sv3), 0);
        ck_assert_int_eq(linattn_buffer_create(x, B * H * V, &so3), 0);
        linattn_softmax_step_io s = {.q = linattn_tensor_buffer(sq3, 3, s3q),
                                     .k = linattn_tensor_buffer(sk3, 3, s3q),
                                     .v = linattn_tensor_buffer(sv3, 3, s3v),
                                     .o = linattn_tensor_buffer(so3, 3, s3v)};
        for (int64_t t = 0; t < T; t++) {
            gather(&p, t, q, k, v);
            ck_assert_int_eq(linattn_buffer_write(sq3, 0, q, B * H * K), 0);
            ck_assert_int_eq(linattn_buffer_write(sk3, 0, k, B * H * K), 0);
            ck_assert_int_eq(linattn_buffer_write(sv3, 0, v, B * H * V), 0);
            ck_assert_int_eq(linattn_softmax_step(x, c, &s, NULL), 0);
            tu_poison(ob, B * H * V);
            ck_assert_int_eq(linattn_buffer_read(so3, 0, ob, B * H * V), 0);
            scatter(&p, t, ob, o1);
        }
        const double e = tu_relerr(o1, o0, nv);
        ck_assert_msg(e < TOL, "%s: steps on buffers %g", isas[i], e);
        linattn_kvcache_destroy(c);
        linattn_buffer_destroy(bq); linattn_buffer_destroy(bk);
        linattn_buffer_destroy(bv); linattn_buffer_destroy(bo);
        linattn_buffer_destroy(sq3); linattn_buffer_destroy(sk3);
        linattn_buffer_destroy(sv3); linattn_buffer_destroy(so3);
        linattn_ctx_destroy(x);
    }
    free(o0); free(o1); free(ob); free(q); free(k); free(v);
    prob_free(&p);
}
END_TEST

/* outputs poisoned with SENT must keep it; a refusal's message names the argument */
#define SENT 12345.0f
static int untouched(const float *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (o[i] != SENT) return 0;
    return 1;
}

static void expect(int rc, int want, const char *word)
{
    ck_assert_msg(rc == want, "%s: got %d (%s), want %d", word, rc, linattn_last_error(), want);
    ck_assert_msg(strstr(linattn_last_error(), word) != NULL, "message \"%s\" lacks \"%s\"",
                  linattn_last_error(), word);
}

/* ---- grouped query heads ------------------------------------------------- */

/* Hq = G Hk query heads over Hk key/value heads: a prob of Hq heads whose k
 * and v are kh and vh [B,T,Hk,*] repeated by hand (query head h gets
 * key/value head h / G, as repeat_interleave). */
typedef struct gqa {
    prob p;
    float *kh, *vh;
    int64_t Hk;
} gqa;

static void gqa_make(gqa *g, int64_t B, int64_t T, int64_t Hk, int64_t G, int64_t K, int64_t V)
{
    prob *p = &g->p;
    prob_make(p, B, T, Hk * G, K, V, 2);
    g->Hk = Hk;
    g->kh = tu_alloc(B * T * Hk * K);
    g->vh = tu_alloc(B * T * Hk * V);
    tu_fill(g->kh, B * T * Hk * K, -1, 1);
    tu_fill(g->vh, B * T * Hk * V, -1, 1);
    for (int64_t r = 0; r < B * T; r++)
        for (int64_t h = 0; h < p->H; h++) {
            memcpy(p->k + (r * p->H + h) * K, g->kh + (r * Hk + h / G) * K, sizeof(float) * K);
            memcpy(p->v + (r * p->H + h) * V, g->vh + (r * Hk + h / G) * V, sizeof(float) * V);
        }
}

static void gqa_free(gqa *g)
{
    prob_free(&g->p);
    free(g->kh);
    free(g->vh);
}

/* The forward with k and v of Hk heads into o (poisoned first). */
static int fwd_gqa(linattn_ctx *c, const gqa *g, float *o, const int64_t *cu, int64_t nseq)
{
    const prob *p = &g->p;
    tu_poison(o, nout(p));
    linattn_softmax_io io = {
        .q = linattn_tensor_4d(p->q, p->B, p->T, p->H, p->K),
        .k = linattn_tensor_4d(g->kh, p->B, p->T, g->Hk, p->K),
        .v = linattn_tensor_4d(g->vh, p->B, p->T, g->Hk, p->V),
        .o = linattn_tensor_4d(o, p->B, p->T, p->H, p->V),
        .cu_seqlens = cu, .n_seqs = cu ? nseq : 0};
    return linattn_softmax_forward(c, &io, NULL);
}

typedef struct gqa_case { int64_t B, T, Hk, G, K, V; int packed; } gqa_case;
static const gqa_case GQA[] = {
    {2, 70, 2, 2, 16, 8, 0}, {3, 41, 1, 4, 32, 24, 0}, {1, 90, 2, 4, 64, 40, 1},
    {2, 150, 3, 2, 128, 128, 0},
};
#define NGQA ((int)(sizeof GQA / sizeof *GQA))

/* grouped heads equal k and v repeated by hand, bit for bit on each backend:
 * the forward (B > 1, packed sequences) and the steps over a cache of Hk
 * heads prefilled by append; the repeated runs are checked against the
 * reference so that both are really written */
START_TEST(test_gqa_is_repeated)
{
    const gqa_case *gc = &GQA[_i];
    gqa g;
    gqa_make(&g, gc->B, gc->T, gc->Hk, gc->G, gc->K, gc->V);
    const prob *p = &g.p;
    const int64_t cu[4] = {0, gc->T / 3, gc->T / 3 + 1, gc->T}, H = p->H, t1 = gc->T / 2;
    const int64_t *c = gc->packed ? cu : NULL;
    const size_t no = nout(p);
    float *want = tu_alloc(no), *o0 = tu_alloc(no), *o1 = tu_alloc(no);
    float *sw = tu_alloc(no), *s0 = tu_alloc(no), *s1 = tu_alloc(no);
    linattn_ctx *ref = tu_ctx("ref", 2);
    ck_assert_int_eq(fwd(ref, p, want, c, 3, NULL), 0);
    linattn_kvcache *kc;
    ck_assert_int_eq(linattn_kvcache_create(ref, p->B, H, p->K, p->V, 0, &kc), 0);
    steps(ref, kc, p, 0, sw, NULL);
    linattn_kvcache_destroy(kc);
    linattn_ctx_destroy(ref);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i <= n; i++) {
        const char *isa = i < n ? isas[i] : "ref";
        linattn_ctx *x = tu_ctx(isa, 2);
        /* forward */
        ck_assert_int_eq(fwd(x, p, o0, c, 3, NULL), 0);
        double e = tu_relerr(o0, want, no);
        ck_assert_msg(e < TOL, "%s case %d: repeated forward vs reference %g", isa, _i, e);
        ck_assert_msg(fwd_gqa(x, &g, o1, c, 3) == 0, "%s: %s", isa, linattn_last_error());
        ck_assert_msg(!memcmp(o0, o1, sizeof(float) * no), "%s case %d: forward, grouped heads",
                      isa, _i);
        /* steps: a cache of H heads fed the repeated k, v; one of Hk heads */
        linattn_kvcache *cr, *cg;
        ck_assert_int_eq(linattn_kvcache_create(x, p->B, H, p->K, p->V, 0, &cr), 0);
        ck_assert_int_eq(linattn_kvcache_create(x, p->B, g.Hk, p->K, p->V, 0, &cg), 0);
        ck_assert_int_eq(append(x, cr, p, t1), 0);
        ck_assert_int_eq(append_kv(x, cg, p, g.kh, g.vh, g.Hk, t1), 0);
        tu_poison(s0, no);
        tu_poison(s1, no);
        steps(x, cr, p, t1, s0, NULL);
        steps_kv(x, cg, p, g.kh, g.vh, g.Hk, t1, s1, NULL);
        for (int64_t b = 0; b < p->B; b++) {
            const size_t off = (size_t)((b * p->T + t1) * H * p->V);
            const size_t cnt = (size_t)((p->T - t1) * H * p->V);
            e = tu_relerr(s0 + off, sw + off, cnt);
            ck_assert_msg(e < TOL, "%s case %d: repeated steps vs reference %g", isa, _i, e);
            ck_assert_msg(!memcmp(s0 + off, s1 + off, sizeof(float) * cnt),
                          "%s case %d: steps, grouped heads, batch row %lld", isa, _i,
                          (long long)b);
        }
        linattn_kvcache_destroy(cr);
        linattn_kvcache_destroy(cg);
        linattn_ctx_destroy(x);
    }
    free(want); free(o0); free(o1); free(sw); free(s0); free(s1);
    gqa_free(&g);
}
END_TEST

/* query heads not a multiple of the key/value heads, k and v with different
 * heads, a cache of other heads: refused naming the argument, nothing
 * written, the cache's length kept */
START_TEST(test_gqa_bad_heads)
{
    const int64_t B = 2, T = 5, K = 8, V = 4, Hk = 2;
    gqa g;
    gqa_make(&g, B, T, Hk, 2, K, V); /* q has 4 heads; kh, vh 2 */
    const prob *p = &g.p;
    float o[B * T * 4 * V], so[B * 4 * V];
    for (size_t i = 0; i < sizeof o / sizeof *o; i++) o[i] = SENT;
    for (size_t i = 0; i < sizeof so / sizeof *so; i++) so[i] = SENT;
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i <= n; i++) {
        linattn_ctx *x = tu_ctx(i < n ? isas[i] : "ref", 1);
        const linattn_softmax_io io = {
            .q = linattn_tensor_4d(p->q, B, T, 4, K), .k = linattn_tensor_4d(g.kh, B, T, Hk, K),
            .v = linattn_tensor_4d(g.vh, B, T, Hk, V), .o = linattn_tensor_4d(o, B, T, 4, V)};
        linattn_softmax_io bad = io;
        bad.q.shape[2] = 3; /* 3 query heads over 2 */
        bad.o.shape[2] = 3;
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_ESHAPE, "q");
        bad = io;
        bad.v.shape[2] = 4; /* v's heads (4, q's) differ from k's (2): v named */
        bad.v.data = p->v;
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_ESHAPE, "v");
        bad = io;
        bad.k.shape[2] = 4; /* k's 4 heads over v's 2 */
        bad.k.data = p->k;
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_ESHAPE, "k");
        bad = io;
        bad.o.shape[2] = Hk; /* o has q's heads */
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_ESHAPE, "o");
        ck_assert(untouched(o, sizeof o / sizeof *o));
        /* the step: a cache of 2 heads holding 2 tokens */
        linattn_kvcache *c;
        ck_assert_int_eq(linattn_kvcache_create(x, B, Hk, K, V, 0, &c), 0);
        ck_assert_int_eq(append_kv(x, c, p, g.kh, g.vh, Hk, 2), 0);
        float q[B * 4 * K], k[B * 4 * K], v[B * 4 * V];
        gather_kv(p, g.kh, g.vh, Hk, 2, q, k, v);
        const linattn_softmax_step_io s = {
            .q = linattn_tensor_3d(q, B, 4, K), .k = linattn_tensor_3d(k, B, Hk, K),
            .v = linattn_tensor_3d(v, B, Hk, V), .o = linattn_tensor_3d(so, B, 4, V)};
        linattn_softmax_step_io sb = s;
        sb.q.shape[1] = 3;
        sb.o.shape[1] = 3;
        expect(linattn_softmax_step(x, c, &sb, NULL), LINATTN_ESHAPE, "q");
        sb = s;
        sb.v.shape[1] = 4;
        expect(linattn_softmax_step(x, c, &sb, NULL), LINATTN_ESHAPE, "v");
        sb = s;
        sb.k.shape[1] = 1; /* k and v of 1 head: grouped heads, but not the cache's */
        sb.v.shape[1] = 1;
        expect(linattn_softmax_step(x, c, &sb, NULL), LINATTN_ESHAPE, "k");
        sb = s;
        sb.o.shape[1] = Hk;
        expect(linattn_softmax_step(x, c, &sb, NULL), LINATTN_ESHAPE, "o");
        ck_assert(untouched(so, sizeof so / sizeof *so));
        ck_assert_int_eq(linattn_kvcache_length(c), 2);
        /* and a good grouped step after all that */
        ck_assert_msg(linattn_softmax_step(x, c, &s, NULL) == 0, "%s", linattn_last_error());
        ck_assert_int_eq(linattn_kvcache_length(c), 3);
        ck_assert(!untouched(so, sizeof so / sizeof *so));
        for (size_t j = 0; j < sizeof so / sizeof *so; j++) so[j] = SENT;
        linattn_kvcache_destroy(c);
        linattn_ctx_destroy(x);
    }
    gqa_free(&g);
}
END_TEST

/* ---- the cache's bookkeeping -------------------------------------------- */

START_TEST(test_cache_api)
{
    const int64_t B = 2, H = 3, K = 8, V = 4;
    const size_t tok = (size_t)(B * H * (K + V)) * sizeof(float);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    prob p;
    prob_make(&p, B, 40, H, K, V, 1);
    for (int i = 0; i <= n; i++) {
        linattn_ctx *x = tu_ctx(i < n ? isas[i] : "ref", 1);
        linattn_kvcache *c;
        ck_assert_int_eq(linattn_kvcache_create(x, B, H, K, V, 0, &c), 0);
        ck_assert_int_eq(linattn_kvcache_length(c), 0);
        ck_assert_int_eq(linattn_kvcache_capacity(c), 0);
        ck_assert_uint_eq(linattn_kvcache_bytes(c), 0);
        ck_assert_int_eq(append(x, c, &p, 5), 0);
        ck_assert_int_eq(linattn_kvcache_length(c), 5);
        ck_assert_int_eq(linattn_kvcache_capacity(c), 16); /* the smallest growth */
        ck_assert_uint_eq(linattn_kvcache_bytes(c), 16 * tok);
        ck_assert_int_eq(append(x, c, &p, 12), 0); /* 17 tokens: doubles */
        ck_assert_int_eq(linattn_kvcache_capacity(c), 32);
        ck_assert_int_eq(append(x, c, &p, 40), 0); /* 57 tokens: 64 */
        ck_assert_int_eq(linattn_kvcache_length(c), 57);
        ck_assert_int_eq(linattn_kvcache_capacity(c), 64);
        ck_assert_int_eq(linattn_kvcache_reset(c), 0);
        ck_assert_int_eq(linattn_kvcache_length(c), 0);
        ck_assert_uint_eq(linattn_kvcache_bytes(c), 64 * tok); /* memory kept */
        linattn_kvcache_destroy(c);
        /* an exact capacity is taken as given, and a long append past it grows to need */
        ck_assert_int_eq(linattn_kvcache_create(x, B, H, K, V, 7, &c), 0);
        ck_assert_int_eq(linattn_kvcache_capacity(c), 7);
        ck_assert_uint_eq(linattn_kvcache_bytes(c), 7 * tok);
        ck_assert_int_eq(append(x, c, &p, 40), 0);
        ck_assert_int_eq(linattn_kvcache_capacity(c), 40);
        linattn_kvcache_destroy(c);
        linattn_kvcache_destroy(NULL);
        ck_assert_int_eq(linattn_kvcache_length(NULL), 0);
        ck_assert_uint_eq(linattn_kvcache_bytes(NULL), 0);
        linattn_ctx_destroy(x);
    }
    prob_free(&p);
}
END_TEST

/* ---- the argument contract ------------------------------------------------ */

START_TEST(test_bad_args)
{
    const int64_t B = 1, T = 6, H = 2, K = 8, V = 4;
    prob p;
    prob_make(&p, B, T, H, K, V, 1);
    float o[B * T * H * V], so[B * H * V];
    for (size_t i = 0; i < sizeof o / sizeof *o; i++) o[i] = SENT;
    for (size_t i = 0; i < sizeof so / sizeof *so; i++) so[i] = SENT;
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i <= n; i++) {
        linattn_ctx *x = tu_ctx(i < n ? isas[i] : "ref", 1), *y = tu_ctx("scalar", 1);
        linattn_softmax_io io = {.q = linattn_tensor_4d(p.q, B, T, H, K),
                                 .k = linattn_tensor_4d(p.k, B, T, H, K),
                                 .v = linattn_tensor_4d(p.v, B, T, H, V),
                                 .o = linattn_tensor_4d(o, B, T, H, V)};
        linattn_softmax_opts opts;
        linattn_softmax_opts_init(&opts);
        /* forward */
        expect(linattn_softmax_forward(NULL, &io, NULL), LINATTN_ENULL, "ctx");
        expect(linattn_softmax_forward(x, NULL, NULL), LINATTN_ENULL, "io");
        opts.chunk = -1;
        expect(linattn_softmax_forward(x, &io, &opts), LINATTN_ERANGE, "chunk");
        opts.chunk = LINATTN_MAX_CHUNK + 1;
        expect(linattn_softmax_forward(x, &io, &opts), LINATTN_ERANGE, "chunk");
        opts.chunk = 0;
        opts.scale = NAN;
        expect(linattn_softmax_forward(x, &io, &opts), LINATTN_ERANGE, "scale");
        linattn_softmax_io bad = io;
        bad.k.shape[3] = K + 1;
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_ESHAPE, "k");
        bad = io;
        bad.o.data = NULL;
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_ENULL, "o");
        bad = io;
        bad.v.shape[1] = T - 1;
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_ESHAPE, "v");
        bad = io;
        const int64_t cu[3] = {0, 4, 5};
        bad.cu_seqlens = cu;
        bad.n_seqs = 2;
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_ESEQLENS, "cu_seqlens");
        bad.cu_seqlens = NULL;
        expect(linattn_softmax_forward(x, &bad, NULL), LINATTN_EINVAL, "n_seqs");
        ck_assert(untouched(o, sizeof o / sizeof *o));
        /* cache creation */
        linattn_kvcache *c = (linattn_kvcache *)&p; /* must be reset to NULL on failure */
        expect(linattn_kvcache_create(NULL, 1, 1, 1, 1, 0, &c), LINATTN_ENULL, "ctx");
        ck_assert_ptr_null(c);
        expect(linattn_kvcache_create(x, 1, 1, 1, 1, 0, NULL), LINATTN_ENULL, "out");
        expect(linattn_kvcache_create(x, 0, 1, 1, 1, 0, &c), LINATTN_ESIZE, "B");
        expect(linattn_kvcache_create(x, 1, -2, 1, 1, 0, &c), LINATTN_ESIZE, "H");
        expect(linattn_kvcache_create(x, 1, 1, 1, 1, -1, &c), LINATTN_ESIZE, "capacity");
        expect(linattn_kvcache_create(x, 1, 1, LINATTN_MAX_HEAD_DIM + 1, 1, 0, &c), LINATTN_EHEADDIM,
               "K");
        expect(linattn_kvcache_create(x, 1, 1, 8, LINATTN_MAX_HEAD_DIM + 1, 0, &c), LINATTN_EHEADDIM,
               "V");
        expect(linattn_kvcache_create(x, 1, 1, 8, 8, INT64_MAX / 4, &c), LINATTN_EOVERFLOW, "cache");
        ck_assert_ptr_null(c);
        ck_assert_int_eq(linattn_kvcache_create(x, B, H, K, V, 0, &c), 0);
        ck_assert_int_eq(append(x, c, &p, 3), 0);
        /* append */
        linattn_tensor tk = linattn_tensor_4d(p.k, B, 2, H, K), tv = linattn_tensor_4d(p.v, B, 2, H, V);
        expect(linattn_kvcache_append(NULL, c, &tk, &tv), LINATTN_ENULL, "ctx");
        expect(linattn_kvcache_append(x, NULL, &tk, &tv), LINATTN_ENULL, "cache");
        expect(linattn_kvcache_append(x, c, NULL, &tv), LINATTN_ENULL, "k");
        expect(linattn_kvcache_append(y, c, &tk, &tv), LINATTN_EINVAL, "another context");
        linattn_tensor t2 = tk;
        t2.shape[2] = H + 1;
        expect(linattn_kvcache_append(x, c, &t2, &tv), LINATTN_ESHAPE, "k");
        t2 = tv;
        t2.shape[1] = 3;
        expect(linattn_kvcache_append(x, c, &tk, &t2), LINATTN_ESHAPE, "v");
        t2 = tv;
        t2.shape[3] = V + 1;
        expect(linattn_kvcache_append(x, c, &tk, &t2), LINATTN_ESHAPE, "v");
        /* growth that cannot succeed: ENOMEM, the cache as it was (the data
         * is never read: room is made first) */
        const int64_t big = (int64_t)1 << 56;
        t2 = linattn_tensor_4d(p.k, B, big, H, K);
        linattn_tensor t3 = linattn_tensor_4d(p.v, B, big, H, V);
        const int64_t cap = linattn_kvcache_capacity(c);
        expect(linattn_kvcache_append(x, c, &t2, &t3), LINATTN_ENOMEM, "");
        ck_assert_int_eq(linattn_kvcache_length(c), 3);
        ck_assert_int_eq(linattn_kvcache_capacity(c), cap);
        /* step */
        float q[B * H * K], k[B * H * K], v[B * H * V];
        gather(&p, 3, q, k, v);
        linattn_softmax_step_io s = {.q = linattn_tensor_3d(q, B, H, K),
                                     .k = linattn_tensor_3d(k, B, H, K),
                                     .v = linattn_tensor_3d(v, B, H, V),
                                     .o = linattn_tensor_3d(so, B, H, V)};
        expect(linattn_softmax_step(NULL, c, &s, NULL), LINATTN_ENULL, "ctx");
        expect(linattn_softmax_step(x, NULL, &s, NULL), LINATTN_ENULL, "cache");
        expect(linattn_softmax_step(x, c, NULL, NULL), LINATTN_ENULL, "io");
        expect(linattn_softmax_step(y, c, &s, NULL), LINATTN_EINVAL, "another context");
        linattn_softmax_step_io sb = s;
        sb.q.shape[2] = K / 2;
        sb.k.shape[2] = K / 2;
        expect(linattn_softmax_step(x, c, &sb, NULL), LINATTN_ESHAPE, "q");
        sb = s;
        sb.v.shape[2] = V + 1;
        sb.o.shape[2] = V + 1;
        expect(linattn_softmax_step(x, c, &sb, NULL), LINATTN_ESHAPE, "v");
        sb = s;
        sb.o.shape[0] = 2;
        expect(linattn_softmax_step(x, c, &sb, NULL), LINATTN_ESHAPE, "o");
        sb = s;
        sb.k.data = NULL;
        expect(linattn_softmax_step(x, c, &sb, NULL), LINATTN_ENULL, "k");
        opts.scale = INFINITY;
        expect(linattn_softmax_step(x, c, &s, &opts), LINATTN_ERANGE, "scale");
        ck_assert(untouched(so, sizeof so / sizeof *so));
        ck_assert_int_eq(linattn_kvcache_length(c), 3);
        expect(linattn_kvcache_reset(NULL), LINATTN_ENULL, "cache");
        expect(linattn_kvcache_truncate(NULL, 0), LINATTN_ENULL, "cache");
        expect(linattn_kvcache_truncate(c, 4), LINATTN_ERANGE, "length");
        expect(linattn_kvcache_truncate(c, -1), LINATTN_ERANGE, "length");
        ck_assert_int_eq(linattn_kvcache_length(c), 3);
        /* and a good step after all that */
        ck_assert_int_eq(linattn_softmax_step(x, c, &s, NULL), 0);
        ck_assert_int_eq(linattn_kvcache_length(c), 4);
        ck_assert(!untouched(so, sizeof so / sizeof *so));
        for (size_t j = 0; j < sizeof so / sizeof *so; j++) so[j] = SENT;
        linattn_kvcache_destroy(c);
        linattn_ctx_destroy(y);
        linattn_ctx_destroy(x);
    }
    prob_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("softmax");
    TCase *tc = tcase_create("softmax");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_ref_is_naive);
    tcase_add_loop_test(tc, test_vs_reference, 0, NSHAPES);
    tcase_add_test(tc, test_blocks);
    tcase_add_test(tc, test_large_scores);
    tcase_add_test(tc, test_decode_is_forward);
    tcase_add_loop_test(tc, test_long_cache, 0, 7);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_buffers);
    tcase_add_loop_test(tc, test_gqa_is_repeated, 0, NGQA);
    tcase_add_test(tc, test_gqa_bad_heads);
    tcase_add_test(tc, test_cache_api);
    tcase_add_test(tc, test_bad_args);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
