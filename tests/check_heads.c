/* linattn tests - grouped value heads of the delta family (linattn_gdn(3)):
 * q and k with Hk key heads shared by H value heads, in the grouped
 * (h / (H / Hk)) and the tiled (h % Hk) order, give bit for bit the same
 * call with q and k repeated by hand to H heads, on every backend; and
 * shapes and opts.head_map are checked with nothing written. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define TOL_REC 1e-4
#define TOL_CHUNK 5e-4
static const char *const OPS[] = {"gdn", "kla", "gla"};
static const char *const MAPS[] = {"grouped", "tiled"};

/* One problem: q, k with Hk heads (qh, kh) and repeated to H (q, k). */
typedef struct prob {
    int64_t B, T, H, Hk, K, V, N;
    const int64_t *cu;
    float *qh, *kh, *q, *k, *v, *g, *beta, *h0;
} prob;

static void prob_make(prob *p, int op, int64_t B, int64_t T, int64_t H, int64_t Hk, int64_t K,
                      int64_t V, const int64_t *cu, int64_t N)
{
    *p = (prob){.B = B, .T = T, .H = H, .Hk = Hk, .K = K, .V = V, .N = N, .cu = cu};
    const size_t nk = B * T * Hk * K, nq = B * T * H * K, ng = B * T * H;
    p->qh = tu_alloc(nk); p->kh = tu_alloc(nk);
    p->q = tu_alloc(nq); p->k = tu_alloc(nq);
    p->v = tu_alloc(ng * V); p->g = tu_alloc(ng); p->beta = tu_alloc(ng);
    p->h0 = tu_alloc(N * H * K * V);
    tu_fill(p->qh, nk, -1, 1);
    tu_fill(p->kh, nk, -1, 1);
    tu_l2norm_rows(p->qh, B * T * Hk, (int)K);
    if (op == 1) /* kla: keys keep their norm */
        for (size_t i = 0; i < nk; i++) p->kh[i] *= (float)tu_uniform(0.2, 2.0);
    else
        tu_l2norm_rows(p->kh, B * T * Hk, (int)K);
    tu_fill(p->v, ng * V, -1, 1);
    tu_fill(p->g, ng, -0.5, 0);
    tu_fill(p->beta, ng, 0.05, 1);
    tu_fill(p->h0, N * H * K * V, -0.5, 0.5);
}

static void prob_free(prob *p)
{
    free(p->qh); free(p->kh); free(p->q); free(p->k);
    free(p->v); free(p->g); free(p->beta); free(p->h0);
}

/* q, k repeated by hand: value head h gets key head h / (H / Hk) or h % Hk. */
static void expand(prob *p, int map)
{
    for (int64_t r = 0; r < p->B * p->T; r++)
        for (int64_t h = 0; h < p->H; h++) {
            const int64_t j = map ? h % p->Hk : h / (p->H / p->Hk);
            memcpy(p->q + (r * p->H + h) * p->K, p->qh + (r * p->Hk + j) * p->K,
                   sizeof(float) * p->K);
            memcpy(p->k + (r * p->H + h) * p->K, p->kh + (r * p->Hk + j) * p->K,
                   sizeof(float) * p->K);
        }
}

/* Forward (T > 1) or step (T == 1, state from h0) into poisoned o and
 * state; shared: q, k with Hk heads, else the repeated ones. */
static int call(int op, linattn_ctx *ctx, const prob *p, const linattn_delta_opts *o,
                int shared, float *out, float *st)
{
    const int64_t B = p->B, T = p->T, H = p->H, K = p->K, V = p->V;
    const int64_t J = shared ? p->Hk : H;
    const float *q = shared ? p->qh : p->q, *k = shared ? p->kh : p->k;
    const linattn_tensor none = linattn_tensor_none();
    tu_poison(out, B * T * H * V);
    if (T == 1) {
        memcpy(st, p->h0, sizeof(float) * B * H * K * V);
        linattn_delta_step_io io = {
            .q = linattn_tensor_3d(q, B, J, K), .k = linattn_tensor_3d(k, B, J, K),
            .v = linattn_tensor_3d(p->v, B, H, V), .g = linattn_tensor_2d(p->g, B, H),
            .beta = op == 2 ? none : linattn_tensor_2d(p->beta, B, H),
            .state_h = linattn_tensor_4d(st, B, H, K, V), .o = linattn_tensor_3d(out, B, H, V)};
        return linattn_delta_step(ctx, (linattn_delta_op)op, &io, o);
    }
    tu_poison(st, p->N * H * K * V);
    linattn_delta_io io = {
        .q = linattn_tensor_4d(q, B, T, J, K), .k = linattn_tensor_4d(k, B, T, J, K),
        .v = linattn_tensor_4d(p->v, B, T, H, V), .g = linattn_tensor_3d(p->g, B, T, H),
        .beta = op == 2 ? none : linattn_tensor_3d(p->beta, B, T, H),
        .h0 = linattn_tensor_4d(p->h0, p->N, H, K, V), .o = linattn_tensor_4d(out, B, T, H, V),
        .hT = linattn_tensor_4d(st, p->N, H, K, V), .cu_seqlens = p->cu, .n_seqs = p->cu ? p->N : 0};
    return linattn_delta_forward(ctx, (linattn_delta_op)op, &io, o);
}

typedef struct shape { int64_t B, T, H, K, V; int cu; } shape;
static const int64_t CU[] = {0, 40, 41, 150};
static const shape SHAPES[] = {
    {2, 70, 8, 32, 48, 0}, {1, 150, 4, 16, 32, 1}, {3, 1, 8, 32, 40, 0}, {2, 1, 4, 64, 16, 0},
};

/* Every backend, both maps, Hk in {H, H/2, H/4}: the shared call equals
 * the repeated call bit for bit, and the double reference within tolerance. */
static void check_op(int op, int qknorm)
{
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    for (size_t si = 0; si < sizeof SHAPES / sizeof *SHAPES; si++) {
        const shape *s = &SHAPES[si];
        const int64_t N = s->cu ? 3 : s->B;
        const size_t no = s->B * s->T * s->H * s->V, nh = N * s->H * s->K * s->V;
        float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o1 = tu_alloc(no), *h1 = tu_alloc(nh);
        float *o2 = tu_alloc(no), *h2 = tu_alloc(nh);
        for (int64_t div = 1; div <= 4; div *= 2)
            for (int map = 0; map < 2; map++) {
                prob p;
                prob_make(&p, op, s->B, s->T, s->H, s->H / div, s->K, s->V, s->cu ? CU : NULL, N);
                expand(&p, map);
                for (int i = -1; i < nisa; i++) {
                    const char *name = i < 0 ? "ref" : isas[i];
                    linattn_ctx *ctx = tu_ctx(name, 2);
                    for (int form = 0; form < (s->T == 1 ? 1 : 2); form++) {
                        linattn_delta_opts o;
                        linattn_delta_opts_init(&o);
                        o.algo = form ? LINATTN_ALGO_CHUNK : LINATTN_ALGO_RECURRENT;
                        o.head_map = map;
                        o.qk_l2norm = qknorm;
                        const int rc = call(op, ctx, &p, &o, 1, o1, h1);
                        if (rc == LINATTN_EUNSUPPORTED && form) continue;
                        ck_assert_msg(rc == 0, "%s: %s", name, linattn_last_error());
                        ck_assert_int_eq(call(op, ctx, &p, &o, 0, o2, h2), 0);
                        ck_assert_msg(!memcmp(o1, o2, sizeof(float) * no) &&
                                          !memcmp(h1, h2, sizeof(float) * nh),
                                      "%s %s form %d %s H=%lld Hk=%lld T=%lld: shared heads "
                                      "differ from repeated q, k (o %.2e ht %.2e)", OPS[op],
                                      name, form, MAPS[map], (long long)p.H, (long long)p.Hk,
                                      (long long)p.T, tu_relerr(o1, o2, no),
                                      tu_relerr(h1, h2, nh));
                        if (i < 0) {
                            memcpy(ro, o1, sizeof(float) * no);
                            memcpy(rh, h1, sizeof(float) * nh);
                            continue;
                        }
                        const double eo = tu_relerr(o1, ro, no), eh = tu_relerr(h1, rh, nh);
                        const double tol = form ? TOL_CHUNK : TOL_REC;
                        ck_assert_msg(eo < tol && eh < tol, "%s %s form %d %s Hk=%lld: "
                                      "o %.2e ht %.2e vs reference", OPS[op], name, form,
                                      MAPS[map], (long long)p.Hk, eo, eh);
                    }
                    linattn_ctx_destroy(ctx);
                }
                prob_free(&p);
            }
        free(ro); free(rh); free(o1); free(h1); free(o2); free(h2);
    }
}

START_TEST(test_shared_equals_repeated)
{
    check_op(_i, 0);
}
END_TEST

START_TEST(test_shared_with_qk_l2norm)
{
    check_op(_i, 1);
}
END_TEST

/* The two maps read different key heads: an ignored head_map fails here. */
START_TEST(test_maps_differ)
{
    prob p;
    prob_make(&p, 0, 1, 20, 4, 2, 16, 16, NULL, 1);
    const size_t no = 20 * 4 * 16, nh = 4 * 16 * 16;
    float *o1 = tu_alloc(no), *h1 = tu_alloc(nh), *o2 = tu_alloc(no), *h2 = tu_alloc(nh);
    linattn_ctx *ctx = tu_ctx("scalar", 1);
    linattn_delta_opts o;
    linattn_delta_opts_init(&o);
    ck_assert_int_eq(o.head_map, LINATTN_HEADS_GROUPED);
    ck_assert_int_eq(call(0, ctx, &p, &o, 1, o1, h1), 0);
    o.head_map = LINATTN_HEADS_TILED;
    ck_assert_int_eq(call(0, ctx, &p, &o, 1, o2, h2), 0);
    ck_assert(tu_relerr(o1, o2, no) > 1e-2);
    linattn_ctx_destroy(ctx);
    free(o1); free(h1); free(o2); free(h2);
    prob_free(&p);
}
END_TEST

static int untouched(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) return 0;
    return 1;
}

/* H not a multiple of Hk, and head_map out of range: refused, nothing written. */
START_TEST(test_refused)
{
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    for (int i = -1; i < nisa; i++) {
        linattn_ctx *ctx = tu_ctx(i < 0 ? "ref" : isas[i], 1);
        for (int T = 1; T <= 5; T += 4) {
            prob p;
            prob_make(&p, 0, 1, T, 6, 4, 16, 16, NULL, 1);
            const size_t no = T * 6 * 16, nh = 6 * 16 * 16;
            float *o = tu_alloc(no), *h = tu_alloc(nh);
            linattn_delta_opts opts;
            linattn_delta_opts_init(&opts);
            ck_assert_int_eq(call(0, ctx, &p, &opts, 1, o, h), LINATTN_ESHAPE);
            ck_assert_msg(strstr(linattn_last_error(), "4 key heads do not divide v's 6") != NULL,
                          "message: %s", linattn_last_error());
            ck_assert(untouched(o, no));
            if (T > 1) ck_assert(untouched(h, nh));
            else ck_assert(!memcmp(h, p.h0, sizeof(float) * nh));
            p.Hk = 3; /* a valid shape, a bad map */
            for (int m = -1; m <= 2; m += 3) {
                opts.head_map = m;
                ck_assert_int_eq(call(0, ctx, &p, &opts, 1, o, h), LINATTN_ERANGE);
                ck_assert(strstr(linattn_last_error(), "opts.head_map") != NULL);
                ck_assert(untouched(o, no));
                if (T > 1) ck_assert(untouched(h, nh));
                else ck_assert(!memcmp(h, p.h0, sizeof(float) * nh));
            }
            free(o); free(h);
            prob_free(&p);
        }
        linattn_ctx_destroy(ctx);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("heads");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_shared_equals_repeated, 0, 3);
    tcase_add_loop_test(tc, test_shared_with_qk_l2norm, 0, 3);
    tcase_add_test(tc, test_maps_differ);
    tcase_add_test(tc, test_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
