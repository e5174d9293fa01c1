/* linattn tests - exact (feature-map) linear attention (ela): every ISA,
 * both CPU forms and OpenCL against the double reference; the reference and
 * the chunk form against the quadratic masked form computed here from the
 * kernels' definitions; the safe exp form against the plain one; properties
 * that need no oracle (chunk sizes, split = whole, steps = forward, threads). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "ela_exp.h" /* the kernels' exp (inline), checked here against double exp */

#define TOL 1e-4       /* recurrent float forms against the reference */
#define TOL_CHUNK 5e-4 /* chunk form */
#define NFEAT 5

typedef struct prob {
    int64_t B, T, H, K, V, F, N;
    int feature;
    float *q, *k, *v, *s0, *z0, *c0;
    int64_t cu[8];
    int packed;
} prob;

static size_t nq(const prob *p) { return (size_t)(p->B * p->T * p->H * p->K); }
static size_t nv(const prob *p) { return (size_t)(p->B * p->T * p->H * p->V); }
static size_t ns(const prob *p) { return (size_t)(p->N * p->H * p->F * p->V); }
static size_t nz(const prob *p) { return (size_t)(p->N * p->H * p->F); }
static int safe(const prob *p, const linattn_ela_opts *o)
{
    return p->feature == LINATTN_FEATURE_EXP && !(o && o->plain_exp);
}

static void opts_for(linattn_ela_opts *o, const prob *p, int algo, int bidir)
{
    linattn_ela_opts_init(o);
    o->feature = (linattn_ela_feature)p->feature;
    o->algo = (linattn_algo)algo;
    o->bidirectional = bidir;
}

/* Forward into o, st, zt and (safe exp, ct != NULL) ct, all poisoned first. */
static int run(linattn_ctx *ctx, const prob *p, const linattn_ela_opts *opts, float *o, float *st,
               float *zt, float *ct)
{
    const int64_t B = p->B, T = p->T, H = p->H, K = p->K, V = p->V, F = p->F, N = p->N;
    tu_poison(o, nv(p));
    tu_poison(st, ns(p));
    tu_poison(zt, nz(p));
    linattn_ela_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(p->q, B, T, H, K);
    io.k = linattn_tensor_4d(p->k, B, T, H, K);
    io.v = linattn_tensor_4d(p->v, B, T, H, V);
    if (p->s0) {
        io.s0 = linattn_tensor_4d(p->s0, N, H, F, V);
        io.z0 = linattn_tensor_3d(p->z0, N, H, F);
    }
    if (p->c0) io.c0 = linattn_tensor_3d(p->c0, N, H, F);
    io.o = linattn_tensor_4d(o, B, T, H, V);
    io.sT = linattn_tensor_4d(st, N, H, F, V);
    io.zT = linattn_tensor_3d(zt, N, H, F);
    if (ct) {
        tu_poison(ct, nz(p));
        io.cT = linattn_tensor_3d(ct, N, H, F);
    }
    if (p->packed) {
        io.cu_seqlens = p->cu;
        io.n_seqs = N;
    }
    return linattn_ela_forward(ctx, &io, opts);
}

/* Inputs for a feature map: q, k in [-1, 1] ([0, 1] for identity, so that
 * the denominators stay away from 0); with_s0: the state a reference run
 * over 8 random tokens leaves (shifted, with c0, when with_s0 == 2). */
static void prob_make(prob *p, int feature, int64_t B, int64_t T, int64_t H, int64_t K, int64_t V,
                      int with_s0)
{
    memset(p, 0, sizeof *p);
    p->B = B; p->T = T; p->H = H; p->K = K; p->V = V; p->N = B;
    p->feature = feature;
    p->F = linattn_ela_feature_dim((linattn_ela_feature)feature, K);
    const double lo = feature == LINATTN_FEATURE_IDENTITY ? 0.0 : -1.0;
    p->q = tu_alloc(nq(p)); p->k = tu_alloc(nq(p)); p->v = tu_alloc(nv(p));
    tu_fill(p->q, nq(p), lo, 1);
    tu_fill(p->k, nq(p), lo, 1);
    tu_fill(p->v, nv(p), -1, 1);
    if (!with_s0) return;
    prob pre;
    prob_make(&pre, feature, B, 8, H, K, V, 0);
    p->s0 = tu_alloc(ns(p));
    p->z0 = tu_alloc(nz(p));
    float *o = tu_alloc(nv(&pre));
    if (with_s0 == 2 && feature == LINATTN_FEATURE_EXP) p->c0 = tu_alloc(nz(p));
    linattn_ctx *ref = tu_ctx("ref", 1);
    linattn_ela_opts opts;
    linattn_ela_opts_init(&opts);
    opts.feature = (linattn_ela_feature)feature;
    ck_assert_int_eq(run(ref, &pre, &opts, o, p->s0, p->z0, p->c0), 0);
    linattn_ctx_destroy(ref);
    free(o);
    free(pre.q); free(pre.k); free(pre.v);
}

static void prob_free(prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->s0); free(p->z0); free(p->c0);
}

/* one run's outputs */
typedef struct outs { float *o, *s, *z, *c; } outs;
static outs outs_new(const prob *p)
{
    outs r = {tu_alloc(nv(p)), tu_alloc(ns(p)), tu_alloc(nz(p)), tu_alloc(nz(p))};
    return r;
}
static void outs_free(outs *r) { free(r->o); free(r->s); free(r->z); free(r->c); }
static int runo(linattn_ctx *ctx, const prob *p, const linattn_ela_opts *opts, outs *r)
{
    return run(ctx, p, opts, r->o, r->s, r->z, safe(p, opts) ? r->c : NULL);
}
static int same(const prob *p, const outs *a, const outs *b, int with_c)
{
    return !memcmp(a->o, b->o, sizeof(float) * nv(p)) && !memcmp(a->s, b->s, sizeof(float) * ns(p)) &&
           !memcmp(a->z, b->z, sizeof(float) * nz(p)) &&
           (!with_c || !memcmp(a->c, b->c, sizeof(float) * nz(p)));
}

typedef struct shape { int64_t B, T, H, K, V; int s0; int packed; } shape;
static const shape SHAPES[] = {
    {4, 1, 8, 16, 16, 0, 0},  {1, 63, 3, 32, 48, 2, 0}, {2, 64, 2, 64, 64, 0, 0},
    {2, 65, 2, 24, 40, 1, 0}, {1, 130, 1, 128, 96, 2, 0}, {1, 1000, 2, 32, 16, 0, 0},
    {1, 130, 2, 32, 20, 2, 1},  {1, 100, 2, 13, 77, 1, 0}, /* K, V not multiples of 4 */
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof *SHAPES))

/* every ISA, both forms, OpenCL, every feature map, causal and bidirectional,
 * against the double reference: outputs and the final state */
START_TEST(test_vs_reference)
{
    const shape *sh = &SHAPES[_i];
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int f = 0; f < NFEAT; f++) {
        prob p;
        prob_make(&p, f, sh->B, sh->T, sh->H, sh->K, sh->V, sh->s0);
        if (sh->packed) { /* three sequences packed into B = 1 */
            p.packed = 1;
            p.N = 3;
            p.cu[0] = 0; p.cu[1] = 40; p.cu[2] = 41; p.cu[3] = sh->T;
            if (p.s0) { /* a state per sequence */
                prob_free(&p);
                prob big;
                prob_make(&big, f, 3, sh->T, sh->H, sh->K, sh->V, sh->s0);
                p = big;
                p.B = 1; p.N = 3; p.packed = 1;
                p.cu[0] = 0; p.cu[1] = 40; p.cu[2] = 41; p.cu[3] = sh->T;
            }
        }
        outs r = outs_new(&p), x = outs_new(&p);
        for (int bidir = 0; bidir <= 1; bidir++) {
            linattn_ela_opts opts;
            opts_for(&opts, &p, LINATTN_ALGO_RECURRENT, bidir);
            linattn_ctx *ref = tu_ctx("ref", 2);
            ck_assert_int_eq(runo(ref, &p, &opts, &r), 0);
            linattn_ctx_destroy(ref);
            for (int i = 0; i < n; i++)
                for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
                    linattn_ctx *c = tu_ctx(isas[i], 2);
                    opts.algo = (linattn_algo)algo;
                    ck_assert_int_eq(runo(c, &p, &opts, &x), 0);
                    linattn_ctx_destroy(c);
                    const double tol = algo == LINATTN_ALGO_CHUNK ? TOL_CHUNK : TOL;
                    const double eo = tu_relerr(x.o, r.o, nv(&p)), es = tu_relerr(x.s, r.s, ns(&p)),
                                 ez = tu_relerr(x.z, r.z, nz(&p)),
                                 ec = safe(&p, &opts) ? tu_relerr(x.c, r.c, nz(&p)) : 0.0;
                    ck_assert_msg(eo < tol && es < tol && ez < tol && ec < 1e-6,
                                  "%s algo %d shape %d feature %d bidir %d: o %g S %g z %g c %g",
                                  isas[i], algo, _i, f, bidir, eo, es, ez, ec);
                }
        }
        outs_free(&r);
        outs_free(&x);
        prob_free(&p);
    }
}
END_TEST

/* the kernel k(a, b) of each map, from its definition (linattn_ela(3)), in double */
static double kern(int f, const float *qa, const float *kb, int K, double off)
{
    double s = 0.0, t;
    for (int d = 0; d < K; d++) {
        const double a = qa[d] + off, b = kb[d] + off;
        switch (f) {
        case LINATTN_FEATURE_EXP: s += exp(a + b); break;
        case LINATTN_FEATURE_SQDIST_SUM: t = a + b; s += t * t; break;
        case LINATTN_FEATURE_SQDIST_SUB: t = a - b; s += t * t; break;
        case LINATTN_FEATURE_ELU1: s += (a > 0 ? a + 1 : exp(a)) * (b > 0 ? b + 1 : exp(b)); break;
        default: s += a * b; break;
        }
    }
    return s;
}

/* y_i = sum_j k(a_i, b_j) v_j / max(sum_j k(a_i, b_j), 1e-8), j <= i or all j;
 * off is added to every q and k (the test's inputs stay unshifted) */
static void quadratic(const prob *p, int bidir, double off, float *y)
{
    const int64_t T = p->T, H = p->H, K = p->K, V = p->V;
    double *num = malloc(sizeof(double) * V);
    ck_assert(num != NULL);
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                const int64_t ri = (b * T + i) * H + h;
                double den = 0;
                for (int j = 0; j < V; j++) num[j] = 0;
                for (int64_t t = 0; t < (bidir ? T : i + 1); t++) {
                    const int64_t rj = (b * T + t) * H + h;
                    const double w = kern(p->feature, p->q + ri * K, p->k + rj * K, (int)K, off);
                    den += w;
                    for (int j = 0; j < V; j++) num[j] += w * p->v[rj * V + j];
                }
                den = den > 1e-8 ? den : 1e-8;
                for (int j = 0; j < V; j++) y[ri * V + j] = (float)(num[j] / den);
            }
    free(num);
}

/* the reference, both CPU forms and OpenCL against the quadratic masked form
 * (the decomposition is exact up to rounding), on lengths around the chunk size */
START_TEST(test_quadratic)
{
    static const int64_t Ts[] = {1, 40, 130};
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int f = 0; f < NFEAT; f++)
        for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
            prob p;
            prob_make(&p, f, 2, Ts[ti], 2, 8, 6, 0);
            float *y = tu_alloc(nv(&p));
            outs x = outs_new(&p);
            for (int bidir = 0; bidir <= 1; bidir++) {
                quadratic(&p, bidir, 0.0, y);
                for (int i = -1; i < n; i++)
                    for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
                        const char *isa = i < 0 ? "ref" : isas[i];
                        if (algo == LINATTN_ALGO_CHUNK && i < 0) continue;
                        linattn_ctx *c = tu_ctx(isa, 2);
                        linattn_ela_opts opts;
                        opts_for(&opts, &p, algo, bidir);
                        opts.chunk = 16;
                        ck_assert_int_eq(runo(c, &p, &opts, &x), 0);
                        linattn_ctx_destroy(c);
                        const double e = tu_relerr(x.o, y, nv(&p));
                        const double tol = i < 0 ? 1e-6 : algo == LINATTN_ALGO_CHUNK ? TOL_CHUNK : TOL;
                        ck_assert_msg(e < tol, "%s algo %d feature %d T %lld bidir %d: %g", isa,
                                      algo, f, (long long)p.T, bidir, e);
                    }
            }
            free(y);
            outs_free(&x);
            prob_free(&p);
        }
}
END_TEST

/* linattn_ela(3): the safe exp form equals the plain one; where the plain form
 * overflows in float (q, k around 60: e^(q+k) > FLT_MAX) the safe form
 * still equals the quadratic form (computed in double) */
START_TEST(test_safe_is_plain)
{
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    prob p;
    prob_make(&p, LINATTN_FEATURE_EXP, 2, 130, 2, 16, 24, 0);
    float *y = tu_alloc(nv(&p)), *q0 = tu_alloc(nq(&p)), *k0 = tu_alloc(nq(&p));
    memcpy(q0, p.q, sizeof(float) * nq(&p));
    memcpy(k0, p.k, sizeof(float) * nq(&p));
    outs a = outs_new(&p), b = outs_new(&p);
    for (int big = 0; big <= 1; big++) {
        for (size_t e = 0; e < nq(&p); e++) {
            p.q[e] = q0[e] + (big ? 60.0f : 0.0f);
            p.k[e] = k0[e] + (big ? 60.0f : 0.0f);
        }
        for (int bidir = 0; bidir <= 1; bidir++) {
            if (big) quadratic(&p, bidir, 0.0, y);
            for (int i = -1; i < n; i++)
                for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
                    const char *isa = i < 0 ? "ref" : isas[i];
                    if (algo == LINATTN_ALGO_CHUNK && i < 0) continue;
                    linattn_ctx *c = tu_ctx(isa, 2);
                    linattn_ela_opts opts;
                    opts_for(&opts, &p, algo, bidir);
                    ck_assert_int_eq(runo(c, &p, &opts, &a), 0);
                    opts.plain_exp = 1;
                    ck_assert_int_eq(runo(c, &p, &opts, &b), 0);
                    linattn_ctx_destroy(c);
                    const double tol = algo == LINATTN_ALGO_CHUNK ? TOL_CHUNK : TOL;
                    if (!big) {
                        const double eo = tu_relerr(a.o, b.o, nv(&p));
                        ck_assert_msg(eo < tol, "%s algo %d bidir %d: safe vs plain %g", isa, algo,
                                      bidir, eo);
                        continue;
                    }
                    const double eo = tu_relerr(a.o, y, nv(&p));
                    ck_assert_msg(eo < tol, "%s algo %d bidir %d: safe vs quadratic at q, k ~ 60: %g",
                                  isa, algo, bidir, eo);
                    if (i >= 0) /* the float plain form does overflow here (the reference is double) */
                        ck_assert_msg(!isfinite(tu_relerr(b.o, y, nv(&p))),
                                      "%s algo %d: the plain form did not overflow", isa, algo);
                }
        }
    }
    outs_free(&a); outs_free(&b);
    free(y); free(q0); free(k0);
    prob_free(&p);
}
END_TEST

/* the chunk form for chunk sizes around the sequence length, against the
 * recurrence, with an initial state, on the CPU and OpenCL (its chunks stop
 * at 64 tokens; K = 70 and F = 72 span two of its 64-wide feature tiles, and
 * there V = 136 two of its 128-wide value tiles, the second cut short) */
START_TEST(test_chunk_sizes)
{
    static const int sizes[] = {1, 7, 16, 64, 100, 200};
    static const int feats[] = {LINATTN_FEATURE_EXP, LINATTN_FEATURE_SQDIST_SUM};
    const char *where = _i ? "opencl" : "scalar";
    if (_i && !tu_opencl()) return;
    for (int fi = 0; fi < 2; fi++) {
        prob p;
        prob_make(&p, feats[fi], 2, 150, 2, 70, _i ? 136 : 72,
                  feats[fi] == LINATTN_FEATURE_EXP ? 2 : 1);
        outs r = outs_new(&p), x = outs_new(&p);
        linattn_ctx *c = tu_ctx(where, 2);
        for (int bidir = 0; bidir <= 1; bidir++) {
            linattn_ela_opts opts;
            opts_for(&opts, &p, LINATTN_ALGO_RECURRENT, bidir);
            ck_assert_int_eq(runo(c, &p, &opts, &r), 0);
            opts.algo = LINATTN_ALGO_CHUNK;
            for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
                opts.chunk = sizes[i];
                ck_assert_int_eq(runo(c, &p, &opts, &x), 0);
                const double eo = tu_relerr(x.o, r.o, nv(&p)), es = tu_relerr(x.s, r.s, ns(&p)),
                             ez = tu_relerr(x.z, r.z, nz(&p));
                ck_assert_msg(eo < TOL_CHUNK && es < TOL_CHUNK && ez < TOL_CHUNK,
                              "%s feature %d bidir %d chunk %d: o %g S %g z %g", where,
                              feats[fi], bidir, sizes[i], eo, es, ez);
                if (safe(&p, &opts)) /* the offset is a maximum: the same bits */
                    ck_assert(!memcmp(x.c, r.c, sizeof(float) * nz(&p)));
            }
        }
        linattn_ctx_destroy(c);
        outs_free(&r); outs_free(&x);
        prob_free(&p);
    }
}
END_TEST

/* A sequence split in two with the state (S, z, c) carried equals the whole,
 * bit for bit; with the true sums carried (no c) to float rounding; T steps
 * equal the forward bit for bit; thread counts change no bit (both forms);
 * bidirectional leaves the causal final state. */
START_TEST(test_split_step_threads)
{
    static const int feats[] = {LINATTN_FEATURE_EXP, LINATTN_FEATURE_SQDIST_SUB};
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    const int64_t T = 37, H = 3, K = 32, V = 24, t1 = 15;
    for (int fi = 0; fi < 2; fi++) {
        prob p;
        prob_make(&p, feats[fi], 1, T, H, K, V, feats[fi] == LINATTN_FEATURE_EXP ? 2 : 1);
        const int sf = safe(&p, NULL);
        outs w = outs_new(&p), x = outs_new(&p), m = outs_new(&p);
        for (int i = 0; i <= n; i++) {
            const char *isa = i < n ? isas[i] : "ref";
            linattn_ctx *c = tu_ctx(isa, 2);
            linattn_ela_opts opts;
            opts_for(&opts, &p, LINATTN_ALGO_RECURRENT, 0);
            ck_assert_int_eq(runo(c, &p, &opts, &w), 0);
            /* split: [0, t1) from s0, then [t1, T) from the carried state */
            prob a = p, b = p;
            a.T = t1;
            b.T = T - t1;
            b.q += t1 * H * K; b.k += t1 * H * K; b.v += t1 * H * V;
            ck_assert_int_eq(runo(c, &a, &opts, &m), 0);
            memcpy(x.o, m.o, sizeof(float) * t1 * H * V);
            b.s0 = m.s; b.z0 = m.z; b.c0 = sf ? m.c : NULL;
            float *o2 = x.o;
            x.o += t1 * H * V;
            ck_assert_int_eq(runo(c, &b, &opts, &x), 0);
            x.o = o2;
            if (i < n) /* float kernels carry the state in float: bit for bit */
                ck_assert_msg(same(&p, &w, &x, sf), "%s feature %d: split differs", isa, feats[fi]);
            else /* the reference rounds its double state to float at the split */
                ck_assert_msg(tu_relerr(x.o, w.o, nv(&p)) < 1e-6 &&
                              tu_relerr(x.s, w.s, ns(&p)) < 1e-6, "ref: split differs");
            if (sf) { /* the true sums out and in (no c) */
                ck_assert_int_eq(run(c, &a, &opts, m.o, m.s, m.z, NULL), 0);
                b.c0 = NULL;
                x.o += t1 * H * V;
                ck_assert_int_eq(run(c, &b, &opts, x.o, x.s, x.z, NULL), 0);
                x.o = o2;
                const double eo = tu_relerr(x.o + t1 * H * V, w.o + t1 * H * V, (T - t1) * H * V);
                /* the final state as true sums: exp(c) S */
                float *S = tu_alloc(ns(&p));
                for (size_t e = 0; e < ns(&p); e++) S[e] = w.s[e] * expf(w.c[e / V]);
                const double es = tu_relerr(x.s, S, ns(&p));
                free(S);
                ck_assert_msg(eo < 1e-5 && es < 1e-5, "%s: split with true sums: o %g S %g", isa,
                              eo, es);
            }
            /* steps, from the initial state */
            memcpy(m.s, p.s0, sizeof(float) * ns(&p));
            memcpy(m.z, p.z0, sizeof(float) * nz(&p));
            if (sf) memcpy(m.c, p.c0, sizeof(float) * nz(&p));
            for (int64_t t = 0; t < T; t++) {
                linattn_ela_step_io s = {
                    .q = linattn_tensor_3d(p.q + t * H * K, 1, H, K),
                    .k = linattn_tensor_3d(p.k + t * H * K, 1, H, K),
                    .v = linattn_tensor_3d(p.v + t * H * V, 1, H, V),
                    .state_s = linattn_tensor_4d(m.s, 1, H, p.F, V),
                    .state_z = linattn_tensor_3d(m.z, 1, H, p.F),
                    .state_c = sf ? linattn_tensor_3d(m.c, 1, H, p.F) : linattn_tensor_none(),
                    .o = linattn_tensor_3d(m.o + t * H * V, 1, H, V)};
                tu_poison(m.o + t * H * V, H * V);
                ck_assert_int_eq(linattn_ela_step(c, &s, &opts), 0);
            }
            if (i < n)
                ck_assert_msg(same(&p, &w, &m, sf), "%s feature %d: steps differ", isa, feats[fi]);
            else
                ck_assert_msg(tu_relerr(m.o, w.o, nv(&p)) < 1e-6 &&
                              tu_relerr(m.s, w.s, ns(&p)) < 1e-6, "ref: steps differ");
            /* bidirectional: the same final state */
            opts.bidirectional = 1;
            ck_assert_int_eq(runo(c, &p, &opts, &x), 0);
            if (i < n)
                ck_assert_msg(!memcmp(x.s, w.s, sizeof(float) * ns(&p)) &&
                              !memcmp(x.z, w.z, sizeof(float) * nz(&p)),
                              "%s: bidirectional final state differs", isa);
            linattn_ctx_destroy(c);
            /* thread counts, both forms */
            for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK && i < n; algo++) {
                opts_for(&opts, &p, algo, 0);
                opts.chunk = 16;
                c = tu_ctx(isa, 1);
                ck_assert_int_eq(runo(c, &p, &opts, &w), 0);
                linattn_ctx_destroy(c);
                c = tu_ctx(isa, 4);
                ck_assert_int_eq(runo(c, &p, &opts, &x), 0);
                linattn_ctx_destroy(c);
                ck_assert_msg(same(&p, &w, &x, sf), "%s algo %d: 1 and 4 threads differ", isa,
                              algo);
            }
        }
        outs_free(&w); outs_free(&x); outs_free(&m);
        prob_free(&p);
    }
}
END_TEST

START_TEST(test_features)
{
    static const char *names[] = {"exp", "sqdist_sum", "sqdist_sub", "elu1", "identity"};
    for (int f = 0; f < NFEAT; f++) {
        linattn_ela_feature e = (linattn_ela_feature)99;
        ck_assert_int_eq(linattn_ela_feature_parse(names[f], &e), 0);
        ck_assert_int_eq(e, f);
        ck_assert_str_eq(linattn_ela_feature_name(e), names[f]);
        ck_assert_int_eq(linattn_ela_feature_dim(e, 64), f == 1 || f == 2 ? 66 : 64);
    }
    linattn_ela_feature e = LINATTN_FEATURE_ELU1;
    ck_assert_int_eq(linattn_ela_feature_parse("softmax", &e), LINATTN_EINVAL);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "softmax"));
    ck_assert_int_eq(e, LINATTN_FEATURE_ELU1);
    ck_assert_int_eq(linattn_ela_feature_dim((linattn_ela_feature)7, 64), LINATTN_EINVAL);
    ck_assert_ptr_null(linattn_ela_feature_name((linattn_ela_feature)-1));
    linattn_ela_opts o;
    memset(&o, 0x55, sizeof o);
    linattn_ela_opts_init(&o);
    ck_assert(o.feature == LINATTN_FEATURE_EXP && !o.plain_exp && !o.bidirectional &&
              o.qk_scale == 0.0f && o.algo == LINATTN_ALGO_AUTO && o.chunk == 0);
}
END_TEST

/* qk_scale multiplies q and k before the maps */
START_TEST(test_qk_scale)
{
    prob p, p2;
    prob_make(&p, LINATTN_FEATURE_EXP, 1, 20, 2, 16, 8, 0);
    prob_make(&p2, LINATTN_FEATURE_EXP, 1, 20, 2, 16, 8, 0);
    for (size_t e = 0; e < nq(&p); e++) {
        p2.q[e] = 0.25f * p.q[e];
        p2.k[e] = 0.25f * p.k[e];
    }
    memcpy(p2.v, p.v, sizeof(float) * nv(&p));
    outs a = outs_new(&p), b = outs_new(&p);
    linattn_ctx *c = tu_ctx("ref", 1);
    linattn_ela_opts opts;
    opts_for(&opts, &p, LINATTN_ALGO_AUTO, 0);
    opts.qk_scale = 0.25f;
    ck_assert_int_eq(runo(c, &p, &opts, &a), 0);
    opts.qk_scale = 0.0f;
    ck_assert_int_eq(runo(c, &p2, &opts, &b), 0);
    ck_assert(tu_relerr(a.o, b.o, nv(&p)) < 1e-6);
    linattn_ctx_destroy(c);
    outs_free(&a); outs_free(&b);
    prob_free(&p); prob_free(&p2);
}
END_TEST

/* bad arguments: distinct codes, the argument named, outputs untouched */
START_TEST(test_bad_args)
{
    const int64_t T = 4, H = 2, K = 8, V = 8;
    prob p;
    prob_make(&p, LINATTN_FEATURE_EXP, 1, T, H, K, V, 2);
    outs r = outs_new(&p);
    linattn_ctx *c = tu_ctx("scalar", 1);
    linattn_ela_opts opts;
    linattn_ela_opts_init(&opts);
#define BAD(call, code, word)                                                          \
    do {                                                                               \
        ck_assert_int_eq(call, code);                                                  \
        ck_assert_msg(strstr(linattn_last_error(), word), "%s", linattn_last_error()); \
        for (size_t i_ = 0; i_ < nv(&p); i_++) ck_assert(r.o[i_] != r.o[i_]);           \
    } while (0)
    opts.qk_scale = NAN;
    BAD(runo(c, &p, &opts, &r), LINATTN_ERANGE, "qk_scale");
    linattn_ela_opts_init(&opts);
    opts.feature = (linattn_ela_feature)9;
    BAD(run(c, &p, &opts, r.o, r.s, r.z, NULL), LINATTN_EINVAL, "feature");
    linattn_ela_opts_init(&opts);
    opts.chunk = -1;
    BAD(runo(c, &p, &opts, &r), LINATTN_ERANGE, "chunk");
    linattn_ela_opts_init(&opts);
    opts.algo = (linattn_algo)7;
    BAD(runo(c, &p, &opts, &r), LINATTN_EINVAL, "algo");
    linattn_ela_opts_init(&opts);
    opts.plain_exp = 1; /* c0 given: only the safe form has an offset */
    BAD(run(c, &p, &opts, r.o, r.s, r.z, NULL), LINATTN_EINVAL, "c0");
    opts.plain_exp = 0;
    prob q = p;
    q.z0 = NULL; /* s0 without z0 */
    BAD(runo(c, &q, &opts, &r), LINATTN_EINVAL, "z0");
    q = p;
    q.s0 = q.z0 = NULL; /* c0 alone */
    BAD(runo(c, &q, &opts, &r), LINATTN_EINVAL, "c0");
    q = p;
    q.feature = LINATTN_FEATURE_SQDIST_SUM; /* the state has F = K rows, K + 2 expected */
    opts.feature = LINATTN_FEATURE_SQDIST_SUM;
    q.c0 = NULL;
    BAD(run(c, &q, &opts, r.o, r.s, r.z, NULL), LINATTN_ESHAPE, "s0");
    opts.feature = LINATTN_FEATURE_EXP;
    ck_assert_int_eq(linattn_ela_forward(c, NULL, NULL), LINATTN_ENULL);
    ck_assert_int_eq(linattn_ela_forward(NULL, NULL, NULL), LINATTN_ENULL);
    linattn_ela_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(p.q, 1, T, H, K);
    io.k = linattn_tensor_4d(p.k, 1, T, H, K);
    io.v = linattn_tensor_4d(p.v, 1, T, H, V);
    io.o = linattn_tensor_4d(r.o, 1, T, H, V);
    io.sT = linattn_tensor_4d(r.s, 1, H, K, V);
    io.cT = linattn_tensor_3d(r.c, 1, H, K); /* cT without zT */
    BAD(linattn_ela_forward(c, &io, NULL), LINATTN_EINVAL, "zT");
    io.zT = linattn_tensor_3d(r.z, 1, H, K);
    io.n_seqs = 2; /* without cu_seqlens */
    BAD(linattn_ela_forward(c, &io, NULL), LINATTN_EINVAL, "n_seqs");
    io.n_seqs = 0;
    io.v = linattn_tensor_4d(p.v, 1, T, H + 1, V);
    BAD(linattn_ela_forward(c, &io, NULL), LINATTN_ESHAPE, "v");
    linattn_ela_step_io s;
    memset(&s, 0, sizeof s);
    s.q = linattn_tensor_3d(p.q, 1, H, K);
    s.k = linattn_tensor_3d(p.k, 1, H, K);
    s.v = linattn_tensor_3d(p.v, 1, H, V);
    s.o = linattn_tensor_3d(r.o, 1, H, V);
    BAD(linattn_ela_step(c, &s, NULL), LINATTN_ENULL, "state_s");
    s.state_s = linattn_tensor_4d(r.s, 1, H, K, V);
    s.state_z = linattn_tensor_3d(r.z, 1, H, K + 1);
    BAD(linattn_ela_step(c, &s, NULL), LINATTN_ESHAPE, "state_z");
    linattn_ctx_destroy(c);
    outs_free(&r);
    prob_free(&p);
}
END_TEST

/* ela_expf(x) against exp(x) in double: 0 if within the documented bound
 * (ela_exp.h), else 1 (with a message). */
static int exp_bad(float x, float y)
{
    const double e = exp((double)x);
    if (isnan(x)) return isnan(y) ? 0 : (fprintf(stderr, "exp(nan) = %g\n", y), 1);
    int ok;
    if (e > (double)FLT_MAX) /* rounds to inf, or just above FLT_MAX within the bound */
        ok = isinf(y) || fabs((double)y - e) <= LINATTN_ELA_EXP_RELERR * e;
    else if (e >= (double)FLT_MIN)
        ok = isfinite(y) && fabs((double)y - e) <= LINATTN_ELA_EXP_RELERR * e;
    else /* subnormal or 0: one subnormal step */
        ok = fabs((double)y - e) <= ldexp(1.0, -149) + LINATTN_ELA_EXP_RELERR * e;
    if (!ok) fprintf(stderr, "exp(%.9g) = %.9g, double %.17g\n", x, y, e);
    return !ok;
}

static float from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* The whole float range: every 251st float of each sign, every float of
 * the edges (overflow near 88.72, normal/subnormal near -87.34, underflow
 * near -103.97, around 0), infinities and NaN; as scalar calls and as a
 * vectorised loop (#pragma omp simd where the build has it). */
START_TEST(test_exp_accuracy)
{
    enum { N = 4096 };
    static float xs[N], ys[N];
    int bad = 0, n = 0;
    long checked = 0;
    const float edges[] = {88.72283935546875f, -87.33654022216797f, 0.0f,
                           -103.97208404541016f};
    for (int pass = 0; pass < 3; pass++) {
        const uint32_t step = pass == 0 ? 251u : 1u;
        for (int sign = 0; sign < 2; sign++)
            for (uint32_t b = 0; b < 0x7F800000u && bad < 10; b += step) {
                if (pass > 0) { /* every float within 2^16 steps of one edge */
                    const float c = edges[pass == 1 ? sign : 2 + sign];
                    uint32_t cb;
                    memcpy(&cb, &c, sizeof cb);
                    cb &= 0x7FFFFFFFu;
                    if (b < (cb > 65536u ? cb - 65536u : 0u)) b = cb > 65536u ? cb - 65536u : 0u;
                    if (b > cb + 65536u) break;
                }
                const float x = from_bits(b | (sign ? 0x80000000u : 0u));
                bad += exp_bad(x, ela_expf(x));
                xs[n++] = x;
                checked++;
                if (n == N) {
#if defined(LINATTN_OMP_SIMD) || defined(_OPENMP)
#pragma omp simd
#endif
                    for (int i = 0; i < N; i++) ys[i] = ela_expf(xs[i]);
                    for (int i = 0; i < N; i++) bad += exp_bad(xs[i], ys[i]);
                    n = 0;
                }
            }
    }
    const float special[] = {INFINITY, -INFINITY, NAN, 1e30f, -1e30f, FLT_MAX, -FLT_MAX,
                             89.0f, -104.0f, -95.0f, 1e-30f, -1e-30f};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        bad += exp_bad(special[i], ela_expf(special[i]));
    ck_assert_msg(ela_expf(0.0f) == 1.0f, "exp(0) = %.9g", ela_expf(0.0f));
    ck_assert_msg(isinf(ela_expf(89.0f)) && ela_expf(-104.0f) == 0.0f, "overflow/underflow");
    ck_assert_msg(!bad, "%d of %ld exps outside the bound", bad, checked);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ela");
    TCase *tc = tcase_create("ela");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_vs_reference, 0, NSHAPES);
    tcase_add_test(tc, test_quadratic);
    tcase_add_test(tc, test_safe_is_plain);
    tcase_add_loop_test(tc, test_chunk_sizes, 0, 2);
    tcase_add_test(tc, test_split_step_threads);
    tcase_add_test(tc, test_features);
    tcase_add_test(tc, test_qk_scale);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test(tc, test_exp_accuracy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
