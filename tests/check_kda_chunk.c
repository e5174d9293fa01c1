/* linattn tests - the CPU chunk form of the delta family (linattn_gdn(3))
 * with g per key channel ([B,T,H,K], the Kimi Delta Attention form of gdn
 * and kla, full GLA) and with query heads sharing a state (Hq = nq H),
 * against the double reference: chunk sizes 16, 32, 64, 128, 40, 7 with T not a
 * multiple of them, key heads shared (Hk < H), h0 and hT, cu_seqlens, and
 * extreme decays (-20 per token and channel, and channels mixing 0 and -20)
 * that overflow any exp(-cumsum(g)) over a chunk. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define TOL 5e-4
static const char *const OPS[] = {"gdn", "kla", "gla"};

/* How g is drawn. */
enum {
    G_MILD,    /* per channel, uniform in [-0.5, 0] */
    G_STRONG,  /* per channel, -20 everywhere */
    G_SPLIT,   /* per channel: each (head, channel) 0 or -20 for the whole sequence */
    G_MIXED,   /* per channel: each entry 0, -20, -300 (exp underflows) or uniform in [-1, 0] */
    G_HEAD,    /* per head ([B,T,H]), uniform in [-0.5, 0] */
    G_MODES
};
static const char *const GNAMES[] = {"mild", "-20", "0|-20 per channel", "0|-20|-300|mild mixed",
                                     "per head"};

typedef struct prob {
    int64_t B, T, H, Hk, Hq, K, V, N;
    int gk;
    const int64_t *cu;
    float *q, *k, *v, *g, *beta, *h0;
} prob;

static void prob_make(prob *p, int op, int gmode, int64_t B, int64_t T, int64_t H, int64_t Hk,
                      int nq, int64_t K, int64_t V, const int64_t *cu, int64_t N)
{
    *p = (prob){.B = B, .T = T, .H = H, .Hk = Hk, .Hq = nq > 1 ? nq * H : Hk, .K = K, .V = V,
                .N = N, .gk = gmode != G_HEAD, .cu = cu};
    const size_t nqr = B * T * p->Hq, nkr = B * T * Hk, nh = B * T * H;
    const size_t ng = p->gk ? nh * K : nh;
    p->q = tu_alloc(nqr * K); p->k = tu_alloc(nkr * K);
    p->v = tu_alloc(nh * V); p->g = tu_alloc(ng); p->beta = tu_alloc(nh);
    p->h0 = tu_alloc(N * H * K * V);
    tu_fill(p->q, nqr * K, -1, 1);
    tu_fill(p->k, nkr * K, -1, 1);
    tu_l2norm_rows(p->q, nqr, (int)K);
    if (op == 1) /* kla: keys keep a norm */
        for (size_t i = 0; i < nkr * K; i++) p->k[i] *= (float)tu_uniform(0.2, 2.0);
    else
        tu_l2norm_rows(p->k, nkr, (int)K);
    tu_fill(p->v, nh * V, -1, 1);
    tu_fill(p->beta, nh, 0.05, 1);
    tu_fill(p->h0, N * H * K * V, -0.5, 0.5);
    switch (gmode) {
    case G_STRONG:
        for (size_t i = 0; i < ng; i++) p->g[i] = -20.0f;
        break;
    case G_SPLIT: {
        char *dead = malloc(H * K);
        ck_assert(dead != NULL);
        for (int64_t i = 0; i < H * K; i++) dead[i] = tu_uniform(0, 1) < 0.5;
        for (size_t i = 0; i < ng; i++) p->g[i] = dead[i % (H * K)] ? -20.0f : 0.0f;
        free(dead);
        break;
    }
    case G_MIXED:
        for (size_t i = 0; i < ng; i++) {
            const double u = tu_uniform(0, 4);
            p->g[i] = u < 1 ? 0.0f : u < 2 ? -20.0f : u < 3 ? -300.0f : (float)tu_uniform(-1, 0);
        }
        break;
    default:
        tu_fill(p->g, ng, -0.5, 0);
    }
}

static void prob_free(prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->g); free(p->beta); free(p->h0);
}

/* Forward into poisoned o and hT. */
static int call(int op, linattn_ctx *ctx, const prob *p, const linattn_delta_opts *o, float *out,
                float *ht)
{
    const int64_t B = p->B, T = p->T, H = p->H, K = p->K, V = p->V;
    const int64_t Ho = p->Hq != p->Hk ? p->Hq : H;
    tu_poison(out, B * T * Ho * V);
    tu_poison(ht, p->N * H * K * V);
    linattn_delta_io io = {
        .q = linattn_tensor_4d(p->q, B, T, p->Hq, K), .k = linattn_tensor_4d(p->k, B, T, p->Hk, K),
        .v = linattn_tensor_4d(p->v, B, T, H, V),
        .g = p->gk ? linattn_tensor_4d(p->g, B, T, H, K) : linattn_tensor_3d(p->g, B, T, H),
        .beta = op == 2 ? linattn_tensor_none() : linattn_tensor_3d(p->beta, B, T, H),
        .h0 = linattn_tensor_4d(p->h0, p->N, H, K, V), .o = linattn_tensor_4d(out, B, T, Ho, V),
        .hT = linattn_tensor_4d(ht, p->N, H, K, V), .cu_seqlens = p->cu,
        .n_seqs = p->cu ? p->N : 0};
    return linattn_delta_forward(ctx, (linattn_delta_op)op, &io, o);
}

static linattn_ctx *default_ctx(void)
{
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.threads = 2;
    cfg.device = "cpu"; /* the CPU chunk form, also where LINATTN_DEVICE=opencl (the OpenCL
                           forms of these shapes: check_kda_cl, check_kda) */
    ck_assert_msg(linattn_ctx_create(&cfg, &ctx) == 0, "%s", linattn_last_error());
    return ctx;
}

typedef struct shape { int64_t B, T, H, Hk; int nq; int64_t K, V; int cu; } shape;
static const int64_t CU[] = {0, 40, 41, 150};
static const shape SHAPES[] = {
    {2, 100, 4, 4, 1, 32, 24, 0},  /* one query head per state */
    {1, 150, 4, 2, 2, 16, 32, 1},  /* packed sequences, Hk < H, 2 query heads per state */
    {2, 70, 4, 1, 4, 20, 16, 0},   /* one key head, 4 query heads per state, odd K */
    {1, 23, 2, 2, 2, 64, 40, 0},   /* shorter than most chunks */
};
static const int CHUNKS[] = {16, 32, 64, 128, 40, 7}; /* the last two: not multiples of 16 */

/* The chunk form against the double reference, every shape and chunk size. */
static void check_op(int op, int gmode)
{
    linattn_ctx *ref = tu_ctx("ref", 2), *cpu = default_ctx();
    for (size_t si = 0; si < sizeof SHAPES / sizeof *SHAPES; si++) {
        const shape *s = &SHAPES[si];
        const int64_t N = s->cu ? 3 : s->B;
        prob p;
        prob_make(&p, op, gmode, s->B, s->T, s->H, s->Hk, s->nq, s->K, s->V, s->cu ? CU : NULL,
                  N);
        const int64_t Ho = p.Hq != p.Hk ? p.Hq : p.H;
        const size_t no = s->B * s->T * Ho * s->V, nh = N * s->H * s->K * s->V;
        float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
        linattn_delta_opts opts;
        linattn_delta_opts_init(&opts);
        ck_assert_msg(call(op, ref, &p, &opts, ro, rh) == 0, "ref: %s", linattn_last_error());
        opts.algo = LINATTN_ALGO_CHUNK;
        for (size_t ci = 0; ci < sizeof CHUNKS / sizeof *CHUNKS; ci++) {
            opts.chunk = CHUNKS[ci];
            const int rc = call(op, cpu, &p, &opts, o, h);
            ck_assert_msg(rc == 0, "%s chunk %d, g %s: %s", OPS[op], opts.chunk, GNAMES[gmode],
                          linattn_last_error());
            const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
            ck_assert_msg(eo < TOL && eh < TOL,
                          "%s chunk %d, g %s, T=%lld H=%lld Hk=%lld Hq=%lld K=%lld: "
                          "o %.2e hT %.2e vs reference", OPS[op], opts.chunk, GNAMES[gmode],
                          (long long)p.T, (long long)p.H, (long long)p.Hk, (long long)p.Hq,
                          (long long)p.K, eo, eh);
        }
        free(ro); free(rh); free(o); free(h);
        prob_free(&p);
    }
    linattn_ctx_destroy(ref);
    linattn_ctx_destroy(cpu);
}

START_TEST(test_gdn) { check_op(0, _i); }
END_TEST
START_TEST(test_kla) { check_op(1, _i); }
END_TEST
START_TEST(test_gla) { check_op(2, _i); }
END_TEST

/* g per channel with every channel equal gives the per-head answer. */
START_TEST(test_equal_channels)
{
    linattn_ctx *cpu = default_ctx();
    prob p;
    prob_make(&p, 0, G_HEAD, 1, 90, 3, 3, 1, 24, 16, NULL, 1);
    const size_t no = 90 * 3 * 16, nh = 3 * 24 * 16, ng = 90 * 3;
    float *o1 = tu_alloc(no), *h1 = tu_alloc(nh), *o2 = tu_alloc(no), *h2 = tu_alloc(nh);
    float *gk = tu_alloc(ng * 24);
    for (size_t r = 0; r < ng; r++)
        for (int i = 0; i < 24; i++) gk[r * 24 + i] = p.g[r];
    linattn_delta_opts opts;
    linattn_delta_opts_init(&opts);
    opts.algo = LINATTN_ALGO_CHUNK;
    opts.chunk = 40;
    ck_assert_int_eq(call(0, cpu, &p, &opts, o1, h1), 0);
    float *g = p.g;
    p.g = gk;
    p.gk = 1;
    ck_assert_msg(call(0, cpu, &p, &opts, o2, h2) == 0, "%s", linattn_last_error());
    const double eo = tu_relerr(o2, o1, no), eh = tu_relerr(h2, h1, nh);
    ck_assert_msg(eo < 1e-5 && eh < 1e-5, "o %.2e hT %.2e", eo, eh);
    p.g = g;
    free(gk); free(o1); free(h1); free(o2); free(h2);
    prob_free(&p);
    linattn_ctx_destroy(cpu);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("kda_chunk");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_gdn, 0, G_MODES);
    tcase_add_loop_test(tc, test_kla, 0, G_MODES);
    tcase_add_loop_test(tc, test_gla, 0, G_MODES);
    tcase_add_test(tc, test_equal_channels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    return tu_main(suite());
}
