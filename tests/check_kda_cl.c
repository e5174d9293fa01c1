/* linattn tests - the delta family on OpenCL with g per key channel (gdn/kla
 * in the Kimi Delta Attention form, full GLA) and query heads sharing a
 * state, forward (chunk form) and step, against the double reference:
 * log-decays down to -20 per token and channel, mixes of 0 and -20, Hq = H,
 * 2H, 4H with Hk < H, host and device (linattn_buffer) tensors, cu_seqlens.
 * Without an OpenCL device the suite has nothing to run, unless
 * LINATTN_TEST_OPENCL=1 asks for one: then it fails. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define TOL_FWD 5e-4  /* float chunk form on the device vs the double reference */
#define TOL_STEP 1e-4 /* float decode step */

static const char *const OPS[] = {"gdn", "kla", "gla"};

/* g of a case: 0 uniform in [-3, 0]; 1 all -20; 2 each value 0 or -20 at
 * random; 3 channel i always 0 (even i) or -20 (odd i); 4 uniform in
 * [-20, 0]; 5 uniform in [-0.05, 0] (rows far apart in a chunk still see
 * each other). */
enum { G_UNIFORM, G_ALL20, G_MIXED, G_CHANNELS, G_WIDE, G_MILD };

typedef struct kcase {
    int op, gk, gmode;
    int64_t B, T, H, Hk, Hq, K, V;
    int packed;  /* B = 1 with cu_seqlens of three sequences */
    int chunk;   /* opts.chunk (0: default) */
    int buffers; /* every tensor in a linattn_buffer */
    int map;     /* opts.head_map */
    int qkn;     /* opts.qk_l2norm (q, k then not normalised beforehand) */
} kcase;

static const kcase CASES[] = {
    {0, 1, G_UNIFORM, 2, 100, 2, 2, 2, 64, 32, 0, 0, 0, 0, 0},
    {0, 1, G_ALL20, 2, 100, 2, 2, 2, 64, 32, 0, 0, 0, 0, 0},
    {0, 1, G_MIXED, 2, 100, 2, 2, 2, 64, 32, 0, 0, 0, 0, 0},
    {0, 1, G_CHANNELS, 1, 130, 2, 2, 2, 40, 24, 0, 0, 0, 0, 0},
    {0, 1, G_WIDE, 2, 90, 2, 1, 4, 32, 40, 0, 0, 1, 0, 0},
    {1, 1, G_MILD, 2, 100, 2, 1, 1, 64, 32, 0, 0, 0, 0, 0},
    {1, 1, G_MIXED, 1, 150, 2, 2, 4, 48, 32, 1, 0, 0, 0, 0},
    {1, 1, G_CHANNELS, 2, 70, 4, 2, 8, 32, 16, 0, 32, 1, 1, 0},
    {2, 1, G_MILD, 2, 100, 2, 2, 2, 40, 22, 0, 0, 0, 0, 0}, /* V % 4 != 0: gla_scan a column a work-item */
    {2, 1, G_ALL20, 1, 120, 2, 1, 2, 64, 32, 1, 0, 1, 0, 0},
    {2, 1, G_MIXED, 2, 80, 2, 1, 8, 32, 32, 0, 8, 0, 1, 0}, /* 10 chunks: gla_scan's batches of 8 */
    {0, 0, G_MILD, 2, 100, 2, 1, 4, 64, 32, 0, 0, 0, 0, 0},      /* per head, Hq = 2H */
    {0, 1, G_MILD, 2, 128, 2, 2, 2, 64, 32, 0, 0, 0, 0, 0},
    {1, 0, G_UNIFORM, 1, 140, 2, 1, 2, 32, 32, 1, 0, 1, 1, 0},   /* per head, Hq = H > Hk */
    {2, 0, G_ALL20, 2, 90, 1, 1, 4, 32, 48, 0, 0, 0, 0, 0},      /* per head, Hq = 4H */
    {0, 1, G_WIDE, 1, 200, 2, 2, 2, 64, 64, 1, 0, 0, 0, 0},
    {0, 1, G_UNIFORM, 2, 80, 2, 1, 4, 32, 32, 0, 0, 0, 0, 1}, /* qk_l2norm, Hq = 2H */
    {1, 0, G_MILD, 2, 80, 2, 1, 8, 32, 32, 0, 0, 1, 1, 1},
    {0, 0, G_UNIFORM, 1, 150, 2, 2, 2, 128, 40, 0, 0, 0, 0, 0}, /* K = 128: rows of k as vectors */
    {0, 1, G_MILD, 2, 70, 1, 1, 1, 128, 24, 0, 0, 0, 0, 0},
    {2, 0, G_MILD, 1, 100, 2, 2, 2, 128, 36, 1, 0, 0, 0, 0},
    /* V > 64: delta_out's groups of 128 value columns (the last one partial)
     * and delta_prep's W and U by pairs of 64-column blocks (2 + 3: the
     * last pair half empty; 2 + 2) */
    {0, 0, G_UNIFORM, 1, 100, 2, 1, 2, 128, 136, 0, 0, 0, 0, 0},
    {1, 0, G_MIXED, 1, 90, 2, 2, 2, 128, 80, 0, 0, 1, 0, 0},
    {2, 1, G_MILD, 2, 70, 2, 2, 4, 32, 96, 0, 0, 0, 0, 0},
    /* gla with a gate per head, V > 64: gla_out's groups of 128 value
     * columns (the last one partial); the shapes of the gdn case above, so
     * the same program */
    {2, 0, G_MIXED, 1, 100, 2, 1, 2, 128, 136, 0, 0, 0, 0, 0},
};
#define NCASES ((int)(sizeof CASES / sizeof *CASES))

/* A problem of a case with owned host data. */
typedef struct prob {
    kcase c;
    int64_t N, Ho;
    size_t nq, nk, nv, ng, nb, ns, no;
    float *q, *k, *v, *g, *beta, *h0;
    int64_t cu[4];
} prob;

static void fill_g(float *g, size_t n, int64_t K, int gk, int mode)
{
    for (size_t e = 0; e < n; e++) {
        const int64_t i = gk ? (int64_t)(e % (size_t)K) : 0;
        switch (mode) {
        case G_UNIFORM: g[e] = (float)tu_uniform(-3, 0); break;
        case G_ALL20: g[e] = -20.0f; break;
        case G_MIXED: g[e] = tu_uniform(0, 1) < 0.5 ? 0.0f : -20.0f; break;
        case G_CHANNELS: g[e] = i % 2 ? -20.0f : 0.0f; break;
        case G_WIDE: g[e] = (float)tu_uniform(-20, 0); break;
        default: g[e] = (float)tu_uniform(-0.05, 0); break;
        }
    }
}

/* T tokens (forward) or T = 1 (a step: B sequences of one token). */
static void prob_make(prob *p, const kcase *c, int step)
{
    memset(p, 0, sizeof *p);
    p->c = *c;
    if (step) {
        p->c.T = 1;
        p->c.packed = 0;
    }
    const kcase *s = &p->c;
    const size_t BT = (size_t)(s->B * s->T);
    p->N = s->packed ? 3 : s->B;
    p->Ho = s->Hq != s->Hk ? s->Hq : s->H;
    p->nq = BT * s->Hq * s->K;
    p->nk = BT * s->Hk * s->K;
    p->nv = BT * s->H * s->V;
    p->ng = BT * s->H * (s->gk ? s->K : 1);
    p->nb = BT * s->H;
    p->ns = (size_t)(p->N * s->H * s->K * s->V);
    p->no = BT * p->Ho * s->V;
    p->q = tu_alloc(p->nq); p->k = tu_alloc(p->nk); p->v = tu_alloc(p->nv);
    p->g = tu_alloc(p->ng); p->beta = tu_alloc(p->nb); p->h0 = tu_alloc(p->ns);
    tu_fill(p->q, p->nq, -1, 1);
    tu_fill(p->k, p->nk, -1, 1);
    tu_fill(p->v, p->nv, -1, 1);
    tu_fill(p->beta, p->nb, 0.05, 1);
    tu_fill(p->h0, p->ns, -0.5, 0.5);
    fill_g(p->g, p->ng, s->K, s->gk, s->gmode);
    if (s->packed) { /* three sequences: one shorter than a chunk, one across */
        p->cu[0] = 0;
        p->cu[1] = 37;
        p->cu[2] = s->T - 20;
        p->cu[3] = s->T;
    }
    if (s->qkn) { /* rows of norm up to 3: the option's normalisation matters */
        for (size_t i = 0; i < p->nq; i++) p->q[i] *= 3.0f;
        for (size_t i = 0; i < p->nk; i++) p->k[i] *= 3.0f;
        return;
    }
    tu_l2norm_rows(p->q, BT * s->Hq, (int)s->K);
    if (s->op == 1) { /* kla: keys keep a norm, eta in (0, 1] */
        for (size_t i = 0; i < p->nk; i++) p->k[i] *= (float)tu_uniform(0.2, 2.0);
    } else {
        tu_l2norm_rows(p->k, BT * s->Hk, (int)s->K);
    }
}

static void prob_free(prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->g); free(p->beta); free(p->h0);
}

static linattn_tensor t4(const float *x, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return linattn_tensor_4d(x, a, b, c, d);
}

static linattn_delta_io prob_io(const prob *p, float *o, float *ht)
{
    const kcase *s = &p->c;
    linattn_delta_io io;
    memset(&io, 0, sizeof io);
    io.q = t4(p->q, s->B, s->T, s->Hq, s->K);
    io.k = t4(p->k, s->B, s->T, s->Hk, s->K);
    io.v = t4(p->v, s->B, s->T, s->H, s->V);
    io.g = s->gk ? t4(p->g, s->B, s->T, s->H, s->K) : linattn_tensor_3d(p->g, s->B, s->T, s->H);
    io.beta = s->op == 2 ? linattn_tensor_none() : linattn_tensor_3d(p->beta, s->B, s->T, s->H);
    io.h0 = t4(p->h0, p->N, s->H, s->K, s->V);
    io.o = t4(o, s->B, s->T, p->Ho, s->V);
    io.hT = t4(ht, p->N, s->H, s->K, s->V);
    if (s->packed) {
        io.cu_seqlens = p->cu;
        io.n_seqs = 3;
    }
    return io;
}

static linattn_delta_step_io prob_step_io(const prob *p, float *o, float *state)
{
    const kcase *s = &p->c;
    linattn_delta_step_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_3d(p->q, s->B, s->Hq, s->K);
    io.k = linattn_tensor_3d(p->k, s->B, s->Hk, s->K);
    io.v = linattn_tensor_3d(p->v, s->B, s->H, s->V);
    io.g = s->gk ? linattn_tensor_3d(p->g, s->B, s->H, s->K) : linattn_tensor_2d(p->g, s->B, s->H);
    io.beta = s->op == 2 ? linattn_tensor_none() : linattn_tensor_2d(p->beta, s->B, s->H);
    io.state_h = t4(state, s->B, s->H, s->K, s->V);
    io.o = linattn_tensor_3d(o, s->B, p->Ho, s->V);
    return io;
}

static linattn_delta_opts opts_of(const kcase *c)
{
    linattn_delta_opts o;
    linattn_delta_opts_init(&o);
    o.algo = LINATTN_ALGO_CHUNK;
    o.chunk = c->chunk;
    o.head_map = c->map;
    o.qk_l2norm = c->qkn;
    return o;
}

/* Point t at a new buffer of ctx holding its data (or, when poison, NaN);
 * the buffer goes to *b (NULL for an absent tensor). */
static void to_buf(linattn_ctx *ctx, linattn_tensor *t, int poison, linattn_buffer **b)
{
    *b = NULL;
    if (!t->data) return;
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    ck_assert_int_eq(linattn_buffer_create(ctx, n, b), 0);
    float *x = tu_alloc(n);
    if (poison) tu_poison(x, n);
    else memcpy(x, t->data, n * sizeof(float));
    ck_assert_int_eq(linattn_buffer_write(*b, 0, x, n), 0);
    free(x);
    *t = linattn_tensor_buffer(*b, t->ndim, t->shape);
}

static void from_buf(linattn_buffer *b, float *dst, size_t n)
{
    ck_assert_int_eq(linattn_buffer_read(b, 0, dst, n), 0);
    linattn_buffer_destroy(b);
}

/* OpenCL is required when LINATTN_TEST_OPENCL=1; else no device, no test. */
static int have_device(void)
{
    if (tu_opencl()) return 1;
    const char *want = getenv("LINATTN_TEST_OPENCL");
    ck_assert_msg(!(want && !strcmp(want, "1")),
                  "LINATTN_TEST_OPENCL=1 but no usable OpenCL device");
    return 0;
}

static void describe(char *buf, size_t n, const kcase *c, const char *what)
{
    snprintf(buf, n, "%s %s gk=%d g%d B=%lld T=%lld H=%lld Hk=%lld Hq=%lld K=%lld V=%lld%s%s",
             OPS[c->op], what, c->gk, c->gmode, (long long)c->B, (long long)c->T,
             (long long)c->H, (long long)c->Hk, (long long)c->Hq, (long long)c->K,
             (long long)c->V, c->packed ? " packed" : "", c->buffers ? " buffers" : "");
}

/* The walk over the chunks has two kernels (delta_walk for K a multiple of
 * 32, else delta_state) and 8, 16 or 32 value columns per group, chosen by
 * the device's size (PoCL's: delta_walk with 32 where K <= 128 allows):
 * on the cases below test_forward_kernels forces delta_walk with 16
 * columns (its 4 x 4 tiles of U', WTILE; 8 and 32 share the other code)
 * and delta_state with 32 (LINATTN_CL_BV, LINATTN_CL_WALK, read at each
 * call). */
static const int KERNEL_CASES[] = {4, 13, 18, 19};
#define NKCASES ((int)(sizeof KERNEL_CASES / sizeof *KERNEL_CASES))
static const char *const VARIANTS[][2] = {{"16", "1"}, {"32", "0"}};
#define NVARIANTS 2

/* gla's chunk states come from gla_sum and gla_scan; LINATTN_CL_GLA_SCAN=0
 * takes the walk as gdn's instead: test_forward_gla_walk runs the gla
 * cases that way (the BV variants change the walk's and the other kernels'
 * shapes). */
static const int GLA_CASES[] = {8, 9, 10, 14, 20};
#define NGCASES ((int)(sizeof GLA_CASES / sizeof *GLA_CASES))

/* gla with a gate per head: gla_walk (gla_sum and gla_scan in one, a group
 * a (sequence, head, state tile)) where its groups fill the device, else
 * gla_sum and gla_scan; test_forward_gla_tiles forces each on one of the
 * per-head cases (LINATTN_CL_GLA_WALK: 0 the scan, else gla_walk's tile),
 * whatever the device's size makes of them in test_forward. */
static const struct { int ci; const char *tile; } GLA_TILES[] = {{14, "64"}, {20, "0"}, {24, "128"}};
#define NGTILES ((int)(sizeof GLA_TILES / sizeof *GLA_TILES))

static void forward_case(int ci);

START_TEST(test_forward)
{
    forward_case(_i);
}
END_TEST

START_TEST(test_forward_kernels)
{
    setenv("LINATTN_CL_BV", VARIANTS[_i % NVARIANTS][0], 1);
    setenv("LINATTN_CL_WALK", VARIANTS[_i % NVARIANTS][1], 1);
    forward_case(KERNEL_CASES[_i / NVARIANTS]);
}
END_TEST

START_TEST(test_forward_gla_walk)
{
    setenv("LINATTN_CL_GLA_SCAN", "0", 1);
    setenv("LINATTN_CL_BV", VARIANTS[_i % NVARIANTS][0], 1);
    setenv("LINATTN_CL_WALK", VARIANTS[_i % NVARIANTS][1], 1);
    ck_assert(CASES[GLA_CASES[_i / NVARIANTS]].op == 2);
    forward_case(GLA_CASES[_i / NVARIANTS]);
    unsetenv("LINATTN_CL_GLA_SCAN");
}
END_TEST

START_TEST(test_forward_gla_tiles)
{
    setenv("LINATTN_CL_GLA_WALK", GLA_TILES[_i].tile, 1);
    ck_assert(CASES[GLA_TILES[_i].ci].op == 2 && !CASES[GLA_TILES[_i].ci].gk);
    forward_case(GLA_TILES[_i].ci);
    unsetenv("LINATTN_CL_GLA_WALK");
}
END_TEST

static void forward_case(int ci)
{
    if (!have_device()) return;
    const kcase *c = &CASES[ci];
    prob p;
    prob_make(&p, c, 0);
    float *ro = tu_alloc(p.no), *rh = tu_alloc(p.ns), *o = tu_alloc(p.no), *h = tu_alloc(p.ns);
    const linattn_delta_opts opts = opts_of(c);
    char what[160];
    describe(what, sizeof what, c, "forward");

    tu_poison(ro, p.no);
    tu_poison(rh, p.ns);
    linattn_ctx *ref = tu_ctx("ref", 2);
    linattn_delta_io io = prob_io(&p, ro, rh);
    ck_assert_msg(linattn_delta_forward(ref, (linattn_delta_op)c->op, &io, &opts) == 0, "%s: ref: %s",
                  what, linattn_last_error());
    linattn_ctx_destroy(ref);

    linattn_ctx *cl = tu_ctx("opencl", 1);
    tu_poison(o, p.no);
    tu_poison(h, p.ns);
    io = prob_io(&p, o, h);
    linattn_buffer *bufs[8] = {NULL};
    if (c->buffers) {
        linattn_tensor *ts[] = {&io.q, &io.k, &io.v, &io.g, &io.beta, &io.h0, &io.o, &io.hT};
        for (int i = 0; i < 8; i++) to_buf(cl, ts[i], i >= 6, &bufs[i]);
    }
    const int rc = linattn_delta_forward(cl, (linattn_delta_op)c->op, &io, &opts);
    ck_assert_msg(rc == 0, "%s: %d %s", what, rc, linattn_last_error());
    if (c->buffers) {
        from_buf(bufs[6], o, p.no);
        from_buf(bufs[7], h, p.ns);
        for (int i = 0; i < 6; i++) linattn_buffer_destroy(bufs[i]);
    }
    linattn_ctx_destroy(cl);
    const double eo = tu_relerr(o, ro, p.no), eh = tu_relerr(h, rh, p.ns);
    const char *bv = getenv("LINATTN_CL_BV"), *walk = getenv("LINATTN_CL_WALK");
    const char *gw = getenv("LINATTN_CL_GLA_WALK");
    ck_assert_msg(eo < TOL_FWD && eh < TOL_FWD, "%s (BV %s, walk %s, gla walk %s): o %.2e ht %.2e",
                  what, bv ? bv : "auto", walk ? walk : "auto", gw ? gw : "auto", eo, eh);
    free(ro); free(rh); free(o); free(h);
    prob_free(&p);
}

/* Two steps from a random state, the second on the state the first left. */
START_TEST(test_step)
{
    if (!have_device()) return;
    const kcase *c = &CASES[_i];
    char what[160];
    describe(what, sizeof what, c, "step");
    linattn_ctx *ref = tu_ctx("ref", 2), *cl = tu_ctx("opencl", 1);
    const linattn_delta_opts opts = opts_of(c);
    prob p;
    prob_make(&p, c, 1);
    float *rs = tu_alloc(p.ns), *s = tu_alloc(p.ns);
    memcpy(rs, p.h0, p.ns * sizeof(float));
    memcpy(s, p.h0, p.ns * sizeof(float));
    for (int round = 0; round < 2; round++) {
        if (round) { /* fresh token, same shapes */
            prob_free(&p);
            prob_make(&p, c, 1);
        }
        float *ro = tu_alloc(p.no), *o = tu_alloc(p.no);
        tu_poison(ro, p.no);
        tu_poison(o, p.no);
        linattn_delta_step_io io = prob_step_io(&p, ro, rs);
        ck_assert_msg(linattn_delta_step(ref, (linattn_delta_op)c->op, &io, &opts) == 0,
                      "%s: ref: %s", what, linattn_last_error());
        io = prob_step_io(&p, o, s);
        linattn_buffer *bs = NULL, *bo = NULL, *bin[5] = {NULL};
        if (c->buffers) {
            linattn_tensor *ts[] = {&io.q, &io.k, &io.v, &io.g, &io.beta};
            for (int i = 0; i < 5; i++) to_buf(cl, ts[i], 0, &bin[i]);
            to_buf(cl, &io.state_h, 0, &bs);
            to_buf(cl, &io.o, 1, &bo);
        }
        const int rc = linattn_delta_step(cl, (linattn_delta_op)c->op, &io, &opts);
        ck_assert_msg(rc == 0, "%s: %d %s", what, rc, linattn_last_error());
        if (c->buffers) {
            from_buf(bo, o, p.no);
            from_buf(bs, s, p.ns);
            for (int i = 0; i < 5; i++) linattn_buffer_destroy(bin[i]);
        }
        const double eo = tu_relerr(o, ro, p.no), es = tu_relerr(s, rs, p.ns);
        ck_assert_msg(eo < TOL_STEP && es < TOL_STEP, "%s round %d: o %.2e state %.2e", what,
                      round, eo, es);
        free(ro);
        free(o);
    }
    linattn_ctx_destroy(ref);
    linattn_ctx_destroy(cl);
    free(rs);
    free(s);
    prob_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kda_cl");
    TCase *tc = tcase_create("kda_cl");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_forward, 0, NCASES);
    tcase_add_loop_test(tc, test_step, 0, NCASES);
    tcase_add_loop_test(tc, test_forward_kernels, 0, NKCASES * NVARIANTS);
    tcase_add_loop_test(tc, test_forward_gla_walk, 0, NGCASES * NVARIANTS);
    tcase_add_loop_test(tc, test_forward_gla_tiles, 0, NGTILES);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
