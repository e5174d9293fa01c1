/* linattn tests - the argument contract of every entry point, table driven:
 * each operator's forward and step is described once (its tensors, their
 * shapes, which are outputs, which come in pairs), and the same mutations
 * are walked over every tensor on every backend.  Each bad argument must
 * give its own status code, a message naming the argument, and leave every
 * output as it was; then the NaN/Inf policy of linattn(3) is checked. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define SENTINEL 12345.0f
#define MAXS 12

/* Sizes of the fixtures: one table of symbolic dimensions. */
enum { DB, DT, DH, DK, DV, DM, DS, DF, D1, NDIMS };
static const int64_t DIM[NDIMS] = {2, 5, 2, 4, 3, 5, 4, 4, 1};

enum { IN = 0, OUT = 1 };
enum { REQ = 0, OPT = 1, PAIR = 2 }; /* PAIR: optional, both of a pair or neither */

typedef struct slot {
    const char *name;
    int nd, dims[4];
    int io, need;
    float lo, hi; /* fill of an input */
} slot;

typedef struct spec {
    const char *name;
    int n;
    slot s[MAXS];
    int (*call)(linattn_ctx *ctx, linattn_tensor *t); /* t in the order of s */
} spec;

/* ---- the entry points, tensors in table order ------------------------------ */

/* Packed sequences the forwards are called with (none unless a case sets them). */
static const int64_t *g_cu;
static int64_t g_nseq;

static int c_gdn(linattn_ctx *c, linattn_tensor *t)
{
    linattn_delta_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .beta = t[4], .h0 = t[5],
                           .o = t[6], .ht = t[7], .cu_seqlens = g_cu, .n_seqs = g_nseq};
    return linattn_delta_forward(c, LINATTN_OP_GDN, &io, NULL);
}
static int c_gdn_step(linattn_ctx *c, linattn_tensor *t)
{
    linattn_delta_step_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .beta = t[4],
                                .state = t[5], .o = t[6]};
    return linattn_delta_step(c, LINATTN_OP_GDN, &io, NULL);
}
static int c_gka(linattn_ctx *c, linattn_tensor *t)
{
    linattn_gka_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .beta = t[4], .alpha = t[5],
                         .h0_kk = t[6], .h0_kv = t[7], .o = t[8], .ht_kk = t[9], .ht_kv = t[10],
                         .cu_seqlens = g_cu, .n_seqs = g_nseq};
    return linattn_gka_forward(c, &io, NULL);
}
static int c_gka_step(linattn_ctx *c, linattn_tensor *t)
{
    linattn_gka_step_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .beta = t[4],
                              .alpha = t[5], .state_kk = t[6], .state_kv = t[7], .o = t[8]};
    return linattn_gka_step(c, &io, NULL);
}
static int c_kalman(linattn_ctx *c, linattn_tensor *t)
{
    linattn_kalman_io io = {.v = t[0], .lam_v = t[1], .k = t[2], .q = t[3], .decay = t[4],
                            .noise = t[5], .lam0 = t[6], .eta0 = t[7], .y = t[8], .yvar = t[9],
                            .lamT = t[10], .etaT = t[11], .cu_seqlens = g_cu, .n_seqs = g_nseq};
    return linattn_kalman_forward(c, &io, NULL);
}
static int c_kalman_step(linattn_ctx *c, linattn_tensor *t)
{
    linattn_kalman_step_io io = {.v = t[0], .lam_v = t[1], .k = t[2], .q = t[3], .decay = t[4],
                                 .noise = t[5], .state_lam = t[6], .state_eta = t[7],
                                 .y = t[8], .yvar = t[9]};
    return linattn_kalman_step(c, &io, NULL);
}
static int c_ela(linattn_ctx *c, linattn_tensor *t)
{
    linattn_ela_io io = {.q = t[0], .k = t[1], .v = t[2], .s0 = t[3], .z0 = t[4], .o = t[5],
                         .st = t[6], .zt = t[7], .cu_seqlens = g_cu, .n_seqs = g_nseq};
    return linattn_ela_forward(c, &io, NULL);
}
static int c_ela_step(linattn_ctx *c, linattn_tensor *t)
{
    linattn_ela_step_io io = {.q = t[0], .k = t[1], .v = t[2], .state_s = t[3], .state_z = t[4],
                              .o = t[5]};
    return linattn_ela_step(c, &io, NULL);
}
static int c_softmax(linattn_ctx *c, linattn_tensor *t)
{
    linattn_softmax_io io = {.q = t[0], .k = t[1], .v = t[2], .o = t[3], .cu_seqlens = g_cu,
                             .n_seqs = g_nseq};
    return linattn_softmax_forward(c, &io, NULL);
}
/* The step of softmax over a fresh cache of 3 tokens (the cache is part of
 * the fixture: its length must not change when the call fails). */
static int c_softmax_step(linattn_ctx *c, linattn_tensor *t)
{
    linattn_kvcache *kv = NULL;
    if (!c) {
        const linattn_softmax_step_io io = {.q = t[0], .k = t[1], .v = t[2], .o = t[3]};
        return linattn_softmax_step(NULL, NULL, &io, NULL);
    }
    int rc = linattn_kvcache_create(c, &kv, DIM[DB], DIM[DH], DIM[DK], DIM[DV], 8);
    ck_assert_int_eq(rc, 0);
    float kb[2 * 3 * 2 * 4], vb[2 * 3 * 2 * 3];
    tu_fill(kb, sizeof kb / sizeof *kb, -1, 1);
    tu_fill(vb, sizeof vb / sizeof *vb, -1, 1);
    const linattn_tensor kt = linattn_tensor_4d(kb, DIM[DB], 3, DIM[DH], DIM[DK]);
    const linattn_tensor vt = linattn_tensor_4d(vb, DIM[DB], 3, DIM[DH], DIM[DV]);
    ck_assert_int_eq(linattn_kvcache_append(c, kv, &kt, &vt), 0);
    linattn_softmax_step_io io = {.q = t[0], .k = t[1], .v = t[2], .o = t[3]};
    rc = linattn_softmax_step(c, kv, &io, NULL);
    ck_assert_int_eq(linattn_kvcache_length(kv), rc ? 3 : 4);
    linattn_kvcache_destroy(kv);
    return rc;
}

#define QKV4 {"q", 4, {DB, DT, DH, DK}, IN, REQ, -1, 1}, {"k", 4, {DB, DT, DH, DK}, IN, REQ, -1, 1}, \
             {"v", 4, {DB, DT, DH, DV}, IN, REQ, -1, 1}
#define QKV3 {"q", 3, {DB, DH, DK}, IN, REQ, -1, 1}, {"k", 3, {DB, DH, DK}, IN, REQ, -1, 1}, \
             {"v", 3, {DB, DH, DV}, IN, REQ, -1, 1}

static const spec SPECS[] = {
    {"gdn forward", 8, {QKV4, {"g", 3, {DB, DT, DH}, IN, OPT, -1, 0},
                        {"beta", 3, {DB, DT, DH}, IN, REQ, 0, 1},
                        {"h0", 4, {DB, DH, DK, DV}, IN, OPT, -1, 1},
                        {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0},
                        {"ht", 4, {DB, DH, DK, DV}, OUT, OPT, 0, 0}}, c_gdn},
    {"gdn step", 7, {QKV3, {"g", 2, {DB, DH}, IN, OPT, -1, 0}, {"beta", 2, {DB, DH}, IN, REQ, 0, 1},
                     {"state", 4, {DB, DH, DK, DV}, OUT, REQ, -1, 1},
                     {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0}}, c_gdn_step},
    {"gka forward", 11, {QKV4, {"g", 3, {DB, DT, DH}, IN, OPT, -1, 0},
                         {"beta", 3, {DB, DT, DH}, IN, OPT, 0, 1},
                         {"alpha", 3, {DB, DT, DH}, IN, OPT, 0, 1},
                         {"h0_kk", 4, {DB, DH, DK, DK}, IN, PAIR, 0, 1},
                         {"h0_kv", 4, {DB, DH, DK, DV}, IN, PAIR, -1, 1},
                         {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0},
                         {"ht_kk", 4, {DB, DH, DK, DK}, OUT, PAIR, 0, 0},
                         {"ht_kv", 4, {DB, DH, DK, DV}, OUT, PAIR, 0, 0}}, c_gka},
    {"gka step", 9, {QKV3, {"g", 2, {DB, DH}, IN, OPT, -1, 0}, {"beta", 2, {DB, DH}, IN, OPT, 0, 1},
                     {"alpha", 2, {DB, DH}, IN, OPT, 0, 1},
                     {"state_kk", 4, {DB, DH, DK, DK}, OUT, REQ, 0, 1},
                     {"state_kv", 4, {DB, DH, DK, DV}, OUT, REQ, -1, 1},
                     {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0}}, c_gka_step},
    {"kalman forward", 12, {{"v", 3, {DB, DT, DM}, IN, REQ, -1, 1},
                            {"lam_v", 3, {DB, DT, DM}, IN, REQ, 0.5f, 2},
                            {"k", 3, {DB, DT, DS}, IN, REQ, -1, 1},
                            {"q", 3, {DB, DT, DS}, IN, REQ, -1, 1},
                            {"decay", 2, {DM, DS}, IN, REQ, 0.5f, 0.99f},
                            {"noise", 2, {DM, DS}, IN, REQ, 0.001f, 0.1f},
                            {"lam0", 3, {DB, DM, DS}, IN, PAIR, 0.5f, 2},
                            {"eta0", 3, {DB, DM, DS}, IN, PAIR, -1, 1},
                            {"y", 3, {DB, DT, DM}, OUT, REQ, 0, 0},
                            {"yvar", 3, {DB, DT, DM}, OUT, OPT, 0, 0},
                            {"lamT", 3, {DB, DM, DS}, OUT, PAIR, 0, 0},
                            {"etaT", 3, {DB, DM, DS}, OUT, PAIR, 0, 0}}, c_kalman},
    {"kalman step", 10, {{"v", 2, {DB, DM}, IN, REQ, -1, 1}, {"lam_v", 2, {DB, DM}, IN, REQ, 0.5f, 2},
                         {"k", 2, {DB, DS}, IN, REQ, -1, 1}, {"q", 2, {DB, DS}, IN, REQ, -1, 1},
                         {"decay", 2, {DM, DS}, IN, REQ, 0.5f, 0.99f},
                         {"noise", 2, {DM, DS}, IN, REQ, 0.001f, 0.1f},
                         {"state_lam", 3, {DB, DM, DS}, OUT, REQ, 0.5f, 2},
                         {"state_eta", 3, {DB, DM, DS}, OUT, REQ, -1, 1},
                         {"y", 2, {DB, DM}, OUT, REQ, 0, 0},
                         {"yvar", 2, {DB, DM}, OUT, OPT, 0, 0}}, c_kalman_step},
    {"ela forward", 8, {QKV4, {"s0", 4, {DB, DH, DF, DV}, IN, PAIR, 0, 1},
                        {"z0", 3, {DB, DH, DF}, IN, PAIR, 1, 2},
                        {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0},
                        {"st", 4, {DB, DH, DF, DV}, OUT, PAIR, 0, 0},
                        {"zt", 3, {DB, DH, DF}, OUT, PAIR, 0, 0}}, c_ela},
    {"ela step", 6, {QKV3, {"state_s", 4, {DB, DH, DF, DV}, OUT, REQ, 0, 1},
                     {"state_z", 3, {DB, DH, DF}, OUT, REQ, 1, 2},
                     {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0}}, c_ela_step},
    {"softmax forward", 4, {QKV4, {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0}}, c_softmax},
    {"softmax step", 4, {QKV3, {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0}}, c_softmax_step},
};
#define NSPECS ((int)(sizeof SPECS / sizeof *SPECS))

/* ---- fixtures ------------------------------------------------------------- */

typedef struct fixture {
    const spec *sp;
    float *data[MAXS];
    size_t count[MAXS];
    linattn_tensor t[MAXS];
} fixture;

static void fixture_make(fixture *f, const spec *sp)
{
    memset(f, 0, sizeof *f);
    f->sp = sp;
    for (int i = 0; i < sp->n; i++) {
        const slot *s = &sp->s[i];
        int64_t sh[4] = {0};
        size_t n = 1;
        for (int d = 0; d < s->nd; d++) n *= (size_t)(sh[d] = DIM[s->dims[d]]);
        f->data[i] = tu_alloc(n);
        f->count[i] = n;
        f->t[i] = linattn_tensor_4d(f->data[i], sh[0], sh[1], sh[2], sh[3]);
        f->t[i].ndim = s->nd;
    }
}

/* Inputs fresh random, outputs (and in-place states) the sentinel. */
static void fixture_fill(fixture *f)
{
    for (int i = 0; i < f->sp->n; i++) {
        const slot *s = &f->sp->s[i];
        if (s->io == OUT && s->hi == 0.0f && s->lo == 0.0f)
            for (size_t j = 0; j < f->count[i]; j++) f->data[i][j] = SENTINEL;
        else
            tu_fill(f->data[i], f->count[i], s->lo, s->hi);
    }
}

static void fixture_free(fixture *f)
{
    for (int i = 0; i < f->sp->n; i++) free(f->data[i]);
}

/* Every tensor the call may write still holds what it held before. */
static int unchanged(const fixture *f, float *const *before)
{
    for (int i = 0; i < f->sp->n; i++)
        if (f->sp->s[i].io == OUT && memcmp(before[i], f->data[i], f->count[i] * sizeof(float)))
            return 0;
    return 1;
}

/* ---- the mutations -------------------------------------------------------- */

enum { MU_NULL, MU_RANK, MU_DIM, MU_ZERO, MU_NEG, MU_HUGE, MU_LAST, NMU };
static const char *const MU_NAME[NMU] = {"NULL data", "rank + 1", "a dimension + 1",
                                         "a zero dimension", "a negative dimension",
                                         "an overflowing dimension", "head size above the limit"};

/* Apply mutation mu to tensor i; the status it must give (0: skip). */
static int mutate(linattn_tensor *t, const slot *s, int i, int mu)
{
    const int lead = i == 0; /* its sizes define the others': a mismatch is named elsewhere */
    switch (mu) {
    case MU_NULL:
        t->data = NULL;
        return s->need == REQ ? LINATTN_ENULL : s->need == PAIR ? LINATTN_EINVAL : 0;
    case MU_RANK:
        if (s->nd == 4) return 0;
        t->shape[t->ndim++] = 1;
        return LINATTN_ESHAPE;
    case MU_DIM:
        if (lead) return 0;
        t->shape[0] += 1;
        return LINATTN_ESHAPE;
    case MU_ZERO:
        t->shape[t->ndim - 1] = 0;
        return LINATTN_ESIZE;
    case MU_NEG:
        t->shape[0] = -3;
        return LINATTN_ESIZE;
    case MU_HUGE:
        t->shape[0] = (int64_t)1 << 62;
        return LINATTN_EOVERFLOW;
    default: /* the head size of q: only where it is the last dim of a lead q */
        if (!lead || strcmp(s->name, "q") || s->dims[s->nd - 1] != DK) return 0;
        return 1; /* set up by the caller: q and k both widened */
    }
}

static linattn_ctx *backend_ctx(int b)
{
    static const char *const names[] = {"ref", "scalar", "opencl"};
    if (b == 2 && !tu_opencl()) return NULL;
    return tu_ctx(names[b], 2);
}

/* Walk every mutation over every tensor of one spec on one backend. */
START_TEST(test_contract)
{
    const spec *sp = &SPECS[_i / 3];
    linattn_ctx *c = backend_ctx(_i % 3);
    if (!c) return; /* no OpenCL device: reported by tu_report */
    fixture f;
    fixture_make(&f, sp);
    float *before[MAXS];
    for (int i = 0; i < sp->n; i++) before[i] = tu_alloc(f.count[i]);
    fixture_fill(&f);
    ck_assert_msg(sp->call(c, f.t) == 0, "%s: the valid fixture fails: %s", sp->name,
                  linattn_last_error());
    int cases = 0;
    for (int i = 0; i < sp->n; i++)
        for (int mu = 0; mu < NMU; mu++) {
            fixture_fill(&f);
            for (int j = 0; j < sp->n; j++)
                memcpy(before[j], f.data[j], f.count[j] * sizeof(float));
            linattn_tensor t[MAXS];
            memcpy(t, f.t, sizeof t);
            int expect = mutate(&t[i], &sp->s[i], i, mu);
            if (expect == 1) { /* K beyond LINATTN_MAX_HEAD_DIM for q and k alike */
                t[0].shape[t[0].ndim - 1] = LINATTN_MAX_HEAD_DIM + 1;
                t[1].shape[t[1].ndim - 1] = LINATTN_MAX_HEAD_DIM + 1;
                expect = LINATTN_EHEADDIM;
            }
            if (!expect) continue;
            const int rc = sp->call(c, t);
            const char *msg = linattn_last_error();
            const char *who = mu == MU_LAST ? "q" : sp->s[i].name;
            ck_assert_msg(rc == expect, "%s, %s with %s: status %d (%s), expected %d", sp->name,
                          sp->s[i].name, MU_NAME[mu], rc, msg, expect);
            ck_assert_msg(strstr(msg, who) != NULL, "%s, %s with %s: message '%s' names no %s",
                          sp->name, sp->s[i].name, MU_NAME[mu], msg, who);
            ck_assert_msg(unchanged(&f, before), "%s, %s with %s: an output was written",
                          sp->name, sp->s[i].name, MU_NAME[mu]);
            cases++;
        }
    /* packed sequences: cu_seqlens with B != 1, n_seqs without cu_seqlens, n_seqs 0 */
    if (strstr(sp->name, "forward")) {
        static const int64_t cu[3] = {0, 2, 5};
        static const struct { const int64_t *cu; int64_t n; int expect; const char *who; } P[] = {
            {cu, 2, LINATTN_ESEQLENS, "cu_seqlens"},
            {NULL, 2, LINATTN_EINVAL, "n_seqs"},
            {cu, 0, LINATTN_ESEQLENS, "n_seqs"},
        };
        for (int j = 0; j < 3; j++) {
            fixture_fill(&f);
            for (int i = 0; i < sp->n; i++) memcpy(before[i], f.data[i], f.count[i] * sizeof(float));
            g_cu = P[j].cu;
            g_nseq = P[j].n;
            const int rc = sp->call(c, f.t);
            g_cu = NULL;
            g_nseq = 0;
            ck_assert_msg(rc == P[j].expect && strstr(linattn_last_error(), P[j].who),
                          "%s, packed case %d: status %d (%s)", sp->name, j, rc,
                          linattn_last_error());
            ck_assert_msg(unchanged(&f, before), "%s, packed case %d: an output was written",
                          sp->name, j);
            cases++;
        }
    }
    /* NULL context and io: never a crash */
    ck_assert_int_eq(sp->call(NULL, f.t), LINATTN_ENULL);
    cases++;
    printf("contract: %s: %d bad-argument cases\n", sp->name, cases);
    for (int i = 0; i < sp->n; i++) free(before[i]);
    fixture_free(&f);
    linattn_ctx_destroy(c);
}
END_TEST

/* The NaN/Inf policy (linattn(3)): a NaN or Inf in q, k or v is propagated,
 * never refused, and never crashes: the call succeeds, and with a NaN some
 * output that depends on it is NaN (an Inf may legitimately vanish, e.g. a
 * score of -inf weighs 0); range-checked arguments (kalman's lam_v, decay,
 * noise, lam0) refuse it with LINATTN_ERANGE (tested in check_kalman). */
START_TEST(test_nan_propagates)
{
    const spec *sp = &SPECS[_i / 3];
    linattn_ctx *c = backend_ctx(_i % 3);
    if (!c) return;
    fixture f;
    fixture_make(&f, sp);
    static const float bad[2] = {NAN, INFINITY};
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < sp->n; i++) {
            const char *nm = sp->s[i].name;
            if (strcmp(nm, "q") && strcmp(nm, "k") && strcmp(nm, "v")) continue;
            fixture_fill(&f);
            f.data[i][0] = bad[b];
            ck_assert_msg(sp->call(c, f.t) == 0, "%s: %s[0] = %g refused: %s", sp->name, nm,
                          (double)bad[b], linattn_last_error());
            int finite = 1;
            for (int j = 0; j < sp->n; j++)
                if (sp->s[j].io == OUT)
                    for (size_t e = 0; e < f.count[j]; e++) finite &= isfinite(f.data[j][e]) != 0;
            ck_assert_msg(b == 1 || !finite, "%s: %s[0] = NaN left every output finite",
                          sp->name, nm);
        }
    fixture_free(&f);
    linattn_ctx_destroy(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("contract");
    TCase *tc = tcase_create("contract");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_contract, 0, 3 * NSPECS);
    tcase_add_loop_test(tc, test_nan_propagates, 0, 3 * NSPECS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
