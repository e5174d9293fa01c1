/* linattn tests - the argument contract of every entry point, table driven:
 * each operator's forward and step is described once (its tensors, their
 * shapes, which are outputs, which come in pairs), and the same mutations
 * are walked over every tensor on every backend.  Each bad argument must
 * give its own status code, a message naming the argument, and leave every
 * output as it was; then the NaN/Inf policy of linattn(3) is checked, and
 * the value ranges: a bad value in any ranged input (a slot's rg) on every
 * backend, device buffers included, is LINATTN_ERANGE naming it and its
 * index, with every output untouched; the ends of a closed range pass. */
#include <check.h>
#include <float.h>
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

/* Value ranges of linattn(3): none, log-decay (finite, <= 0), write
 * strength [0, 2], finite, [0, 1], (0, 1), finite >= 0, finite > 0. */
enum { R_NONE, R_LOGDECAY, R_STEP, R_FINITE, R_UNIT, R_OPEN_UNIT, R_NONNEG, R_POS, NR };
static const struct { float lo, hi; int lo_open, hi_open; } RANGE[NR] = {
    [R_LOGDECAY] = {-FLT_MAX, 0, 0, 0}, [R_STEP] = {0, 2, 0, 0},
    [R_FINITE] = {-FLT_MAX, FLT_MAX, 0, 0}, [R_UNIT] = {0, 1, 0, 0},
    [R_OPEN_UNIT] = {0, 1, 1, 1}, [R_NONNEG] = {0, FLT_MAX, 0, 0}, [R_POS] = {0, FLT_MAX, 1, 0},
};

typedef struct slot {
    const char *name;
    int nd, dims[4];
    int io, need;
    float lo, hi; /* fill of an input */
    int rg;       /* its value range (R_NONE: unchecked) */
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
static int c_kla(linattn_ctx *c, linattn_tensor *t)
{
    linattn_delta_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .beta = t[4], .h0 = t[5],
                           .o = t[6], .ht = t[7], .cu_seqlens = g_cu, .n_seqs = g_nseq};
    return linattn_kla_forward(c, &io, NULL);
}
static int c_kla_step(linattn_ctx *c, linattn_tensor *t)
{
    linattn_delta_step_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .beta = t[4],
                                .state = t[5], .o = t[6]};
    return linattn_kla_step(c, &io, NULL);
}
static int c_gla(linattn_ctx *c, linattn_tensor *t)
{
    linattn_delta_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .h0 = t[4], .o = t[5],
                           .ht = t[6], .cu_seqlens = g_cu, .n_seqs = g_nseq};
    return linattn_gla_forward(c, &io, NULL);
}
static int c_gla_step(linattn_ctx *c, linattn_tensor *t)
{
    linattn_delta_step_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .state = t[4],
                                .o = t[5]};
    return linattn_gla_step(c, &io, NULL);
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

#define QKV4 {"q", 4, {DB, DT, DH, DK}, IN, REQ, -1, 1, R_NONE}, \
             {"k", 4, {DB, DT, DH, DK}, IN, REQ, -1, 1, R_NONE}, \
             {"v", 4, {DB, DT, DH, DV}, IN, REQ, -1, 1, R_NONE}
#define QKV3 {"q", 3, {DB, DH, DK}, IN, REQ, -1, 1, R_NONE}, \
             {"k", 3, {DB, DH, DK}, IN, REQ, -1, 1, R_NONE}, \
             {"v", 3, {DB, DH, DV}, IN, REQ, -1, 1, R_NONE}

static const spec SPECS[] = {
    {"gdn forward", 8, {QKV4, {"g", 3, {DB, DT, DH}, IN, OPT, -1, 0, R_LOGDECAY},
                        {"beta", 3, {DB, DT, DH}, IN, REQ, 0, 1, R_STEP},
                        {"h0", 4, {DB, DH, DK, DV}, IN, OPT, -1, 1, R_NONE},
                        {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0, R_NONE},
                        {"ht", 4, {DB, DH, DK, DV}, OUT, OPT, 0, 0, R_NONE}}, c_gdn},
    {"gdn step", 7, {QKV3, {"g", 2, {DB, DH}, IN, OPT, -1, 0, R_LOGDECAY},
                     {"beta", 2, {DB, DH}, IN, REQ, 0, 1, R_STEP},
                     {"state", 4, {DB, DH, DK, DV}, OUT, REQ, -1, 1, R_NONE},
                     {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0, R_NONE}}, c_gdn_step},
    {"kla forward", 8, {QKV4, {"g", 3, {DB, DT, DH}, IN, OPT, -1, 0, R_LOGDECAY},
                        {"eta", 3, {DB, DT, DH}, IN, REQ, 0, 1, R_STEP},
                        {"h0", 4, {DB, DH, DK, DV}, IN, OPT, -1, 1, R_NONE},
                        {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0, R_NONE},
                        {"ht", 4, {DB, DH, DK, DV}, OUT, OPT, 0, 0, R_NONE}}, c_kla},
    {"kla step", 7, {QKV3, {"g", 2, {DB, DH}, IN, OPT, -1, 0, R_LOGDECAY},
                     {"eta", 2, {DB, DH}, IN, REQ, 0, 1, R_STEP},
                     {"state", 4, {DB, DH, DK, DV}, OUT, REQ, -1, 1, R_NONE},
                     {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0, R_NONE}}, c_kla_step},
    {"gla forward", 7, {QKV4, {"g", 3, {DB, DT, DH}, IN, OPT, -1, 0, R_LOGDECAY},
                        {"h0", 4, {DB, DH, DK, DV}, IN, OPT, -1, 1, R_NONE},
                        {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0, R_NONE},
                        {"ht", 4, {DB, DH, DK, DV}, OUT, OPT, 0, 0, R_NONE}}, c_gla},
    {"gla step", 6, {QKV3, {"g", 2, {DB, DH}, IN, OPT, -1, 0, R_LOGDECAY},
                     {"state", 4, {DB, DH, DK, DV}, OUT, REQ, -1, 1, R_NONE},
                     {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0, R_NONE}}, c_gla_step},
    {"gka forward", 11, {QKV4, {"g", 3, {DB, DT, DH}, IN, OPT, -1, 0, R_LOGDECAY},
                         {"beta", 3, {DB, DT, DH}, IN, OPT, 0, 1, R_FINITE},
                         {"alpha", 3, {DB, DT, DH}, IN, OPT, 0, 1, R_UNIT},
                         {"h0_kk", 4, {DB, DH, DK, DK}, IN, PAIR, 0, 1, R_NONE},
                         {"h0_kv", 4, {DB, DH, DK, DV}, IN, PAIR, -1, 1, R_NONE},
                         {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0, R_NONE},
                         {"ht_kk", 4, {DB, DH, DK, DK}, OUT, PAIR, 0, 0, R_NONE},
                         {"ht_kv", 4, {DB, DH, DK, DV}, OUT, PAIR, 0, 0, R_NONE}}, c_gka},
    {"gka step", 9, {QKV3, {"g", 2, {DB, DH}, IN, OPT, -1, 0, R_LOGDECAY},
                     {"beta", 2, {DB, DH}, IN, OPT, 0, 1, R_FINITE},
                     {"alpha", 2, {DB, DH}, IN, OPT, 0, 1, R_UNIT},
                     {"state_kk", 4, {DB, DH, DK, DK}, OUT, REQ, 0, 1, R_NONE},
                     {"state_kv", 4, {DB, DH, DK, DV}, OUT, REQ, -1, 1, R_NONE},
                     {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0, R_NONE}}, c_gka_step},
    {"kalman forward", 12, {{"v", 3, {DB, DT, DM}, IN, REQ, -1, 1, R_NONE},
                            {"lam_v", 3, {DB, DT, DM}, IN, REQ, 0.5f, 2, R_POS},
                            {"k", 3, {DB, DT, DS}, IN, REQ, -1, 1, R_NONE},
                            {"q", 3, {DB, DT, DS}, IN, REQ, -1, 1, R_NONE},
                            {"decay", 2, {DM, DS}, IN, REQ, 0.5f, 0.99f, R_OPEN_UNIT},
                            {"noise", 2, {DM, DS}, IN, REQ, 0.001f, 0.1f, R_NONNEG},
                            {"lam0", 3, {DB, DM, DS}, IN, PAIR, 0.5f, 2, R_POS},
                            {"eta0", 3, {DB, DM, DS}, IN, PAIR, -1, 1, R_NONE},
                            {"y", 3, {DB, DT, DM}, OUT, REQ, 0, 0, R_NONE},
                            {"yvar", 3, {DB, DT, DM}, OUT, OPT, 0, 0, R_NONE},
                            {"lamT", 3, {DB, DM, DS}, OUT, PAIR, 0, 0, R_NONE},
                            {"etaT", 3, {DB, DM, DS}, OUT, PAIR, 0, 0, R_NONE}}, c_kalman},
    {"kalman step", 10, {{"v", 2, {DB, DM}, IN, REQ, -1, 1, R_NONE},
                         {"lam_v", 2, {DB, DM}, IN, REQ, 0.5f, 2, R_POS},
                         {"k", 2, {DB, DS}, IN, REQ, -1, 1, R_NONE},
                         {"q", 2, {DB, DS}, IN, REQ, -1, 1, R_NONE},
                         {"decay", 2, {DM, DS}, IN, REQ, 0.5f, 0.99f, R_OPEN_UNIT},
                         {"noise", 2, {DM, DS}, IN, REQ, 0.001f, 0.1f, R_NONNEG},
                         {"state_lam", 3, {DB, DM, DS}, OUT, REQ, 0.5f, 2, R_POS},
                         {"state_eta", 3, {DB, DM, DS}, OUT, REQ, -1, 1, R_NONE},
                         {"y", 2, {DB, DM}, OUT, REQ, 0, 0, R_NONE},
                         {"yvar", 2, {DB, DM}, OUT, OPT, 0, 0, R_NONE}}, c_kalman_step},
    {"ela forward", 8, {QKV4, {"s0", 4, {DB, DH, DF, DV}, IN, PAIR, 0, 1, R_NONE},
                        {"z0", 3, {DB, DH, DF}, IN, PAIR, 1, 2, R_NONE},
                        {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0, R_NONE},
                        {"st", 4, {DB, DH, DF, DV}, OUT, PAIR, 0, 0, R_NONE},
                        {"zt", 3, {DB, DH, DF}, OUT, PAIR, 0, 0, R_NONE}}, c_ela},
    {"ela step", 6, {QKV3, {"state_s", 4, {DB, DH, DF, DV}, OUT, REQ, 0, 1, R_NONE},
                     {"state_z", 3, {DB, DH, DF}, OUT, REQ, 1, 2, R_NONE},
                     {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0, R_NONE}}, c_ela_step},
    {"softmax forward", 4, {QKV4, {"o", 4, {DB, DT, DH, DV}, OUT, REQ, 0, 0, R_NONE}}, c_softmax},
    {"softmax step", 4, {QKV3, {"o", 3, {DB, DH, DV}, OUT, REQ, 0, 0, R_NONE}}, c_softmax_step},
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
 * score of -inf weighs 0); ranged inputs refuse it (test_values). */
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

/* ---- the value ranges ------------------------------------------------------ */

/* The values a range refuses: NaN, +-Inf, and just outside each finite end
 * (the end itself when it is open); returns how many. */
static int bad_values(int rg, float *out)
{
    int n = 0;
    out[n++] = NAN;
    out[n++] = INFINITY;
    out[n++] = -INFINITY;
    if (RANGE[rg].lo > -FLT_MAX) out[n++] = RANGE[rg].lo_open ? RANGE[rg].lo : RANGE[rg].lo - 0.5f;
    if (RANGE[rg].hi < FLT_MAX) out[n++] = RANGE[rg].hi_open ? RANGE[rg].hi : RANGE[rg].hi + 0.5f;
    return n;
}

/* Call with every tensor copied into a device buffer of c, then every
 * tensor read back into the fixture; the message kept in msg. */
static int call_buffers(linattn_ctx *c, fixture *f, char *msg, size_t len)
{
    linattn_buffer *b[MAXS];
    linattn_tensor t[MAXS];
    for (int i = 0; i < f->sp->n; i++) {
        ck_assert_int_eq(linattn_buffer_create(c, f->count[i], &b[i]), 0);
        ck_assert_int_eq(linattn_buffer_write(b[i], 0, f->data[i], f->count[i]), 0);
        t[i] = linattn_tensor_buffer(b[i], f->t[i].ndim, f->t[i].shape);
    }
    const int rc = f->sp->call(c, t);
    snprintf(msg, len, "%s", linattn_last_error());
    for (int i = 0; i < f->sp->n; i++) {
        ck_assert_int_eq(linattn_buffer_read(b[i], 0, f->data[i], f->count[i]), 0);
        linattn_buffer_destroy(b[i]);
    }
    return rc;
}

/* Backend 0 ref, 1 scalar, 2 OpenCL with host tensors, 3 OpenCL with every
 * tensor in a device buffer. */
static int call_on(linattn_ctx *c, int dev, fixture *f, char *msg, size_t len)
{
    if (dev) return call_buffers(c, f, msg, len);
    const int rc = f->sp->call(c, f->t);
    snprintf(msg, len, "%s", linattn_last_error());
    return rc;
}

START_TEST(test_values)
{
    const spec *sp = &SPECS[_i / 4];
    const int dev = _i % 4 == 3;
    linattn_ctx *c = backend_ctx(_i % 4 < 2 ? _i % 4 : 2);
    if (!c) return;
    fixture f;
    fixture_make(&f, sp);
    float *before[MAXS];
    char msg[256];
    for (int i = 0; i < sp->n; i++) before[i] = tu_alloc(f.count[i]);
    int cases = 0;
    for (int i = 0; i < sp->n; i++) {
        const int rg = sp->s[i].rg;
        if (rg == R_NONE) continue;
        float bad[5];
        const int nb = bad_values(rg, bad);
        for (int v = 0; v < nb; v++) {
            fixture_fill(&f);
            const size_t at = (size_t)tu_uniform(0, (double)f.count[i]) % f.count[i];
            f.data[i][at] = bad[v];
            for (int j = 0; j < sp->n; j++)
                memcpy(before[j], f.data[j], f.count[j] * sizeof(float));
            const int rc = call_on(c, dev, &f, msg, sizeof msg);
            char want[64];
            int len = snprintf(want, sizeof want, "%s[", sp->s[i].name);
            size_t rest = at, sub[4];
            for (int d = f.t[i].ndim - 1; d >= 0; d--) {
                sub[d] = rest % (size_t)f.t[i].shape[d];
                rest /= (size_t)f.t[i].shape[d];
            }
            for (int d = 0; d < f.t[i].ndim; d++)
                len += snprintf(want + len, sizeof want - (size_t)len, "%s%zu", d ? "," : "",
                                sub[d]);
            snprintf(want + len, sizeof want - (size_t)len, "]");
            ck_assert_msg(rc == LINATTN_ERANGE, "%s%s: %s = %g: status %d (%s)", sp->name,
                          dev ? " (buffers)" : "", want, (double)bad[v], rc, msg);
            ck_assert_msg(strstr(msg, want) != NULL, "%s%s: %g: message '%s' does not name %s",
                          sp->name, dev ? " (buffers)" : "", (double)bad[v], msg, want);
            ck_assert_msg(unchanged(&f, before), "%s%s: %s = %g: an output was written", sp->name,
                          dev ? " (buffers)" : "", want, (double)bad[v]);
            cases++;
        }
        /* the ends of a closed range are accepted, over the whole tensor */
        const float ends[2] = {RANGE[rg].lo, RANGE[rg].hi};
        const int open[2] = {RANGE[rg].lo_open, RANGE[rg].hi_open};
        for (int e = 0; e < 2; e++) {
            if (open[e] || fabsf(ends[e]) >= FLT_MAX) continue;
            fixture_fill(&f);
            for (size_t j = 0; j < f.count[i]; j++) f.data[i][j] = ends[e];
            const int rc = call_on(c, dev, &f, msg, sizeof msg);
            ck_assert_msg(rc == 0, "%s%s: %s = %g everywhere refused: %s", sp->name,
                          dev ? " (buffers)" : "", sp->s[i].name, (double)ends[e], msg);
            cases++;
        }
    }
    if (cases) printf("values: %s%s: %d cases\n", sp->name, dev ? " (buffers)" : "", cases);
    for (int i = 0; i < sp->n; i++) free(before[i]);
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
    tcase_add_loop_test(tc, test_values, 0, 4 * NSPECS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report();
    return tu_main(suite());
}
