/* linattn tests - serving (linattn_gdn(3), SERVING) for gdn, kla and gla on
 * every backend (reference, each ISA, OpenCL when present): a mixed call
 * (decode rows and prompts packed, states in a pool named by slots) equals
 * separate calls bit for bit; the step with slots likewise; bad slots are
 * refused with nothing written; rollback rows hold the final states of the
 * truncated calls, and so do the checkpoint rows (bit for bit on the
 * recurrent form, within tolerance on the chunk form and OpenCL). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "serveutil.h"
#include "testutil.h"

#define H 2
#define K 32
#define V 32
#define HKV ((size_t)H * K * V)
#define TOL 1e-4

typedef struct prob {
    int op;
    int64_t N, T, cu[8];
    float *q, *k, *v, *g, *beta;
} prob;

static void make(prob *p, int op, const int64_t *lens, int N)
{
    memset(p, 0, sizeof *p);
    p->op = op;
    p->N = N;
    for (int n = 0; n < N; n++) p->cu[n + 1] = p->cu[n] + lens[n];
    p->T = p->cu[N];
    const size_t T = (size_t)p->T;
    p->q = tu_alloc(T * H * K);
    p->k = tu_alloc(T * H * K);
    p->v = tu_alloc(T * H * V);
    p->g = tu_alloc(T * H);
    tu_fill(p->q, T * H * K, -1, 1);
    tu_fill(p->k, T * H * K, -1, 1);
    tu_l2norm_rows(p->q, T * H, K);
    tu_l2norm_rows(p->k, T * H, K);
    tu_fill(p->v, T * H * V, -1, 1);
    tu_fill(p->g, T * H, -0.5, 0);
    if (op != LINATTN_OP_GLA) {
        p->beta = tu_alloc(T * H);
        tu_fill(p->beta, T * H, 0, 1);
    }
}

static void unmake(prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->g); free(p->beta);
}

/* io over tokens t0 .. t0+len of the packed problem as one batch row. */
static linattn_delta_io io_of(const prob *p, int64_t t0, int64_t len, float *o)
{
    linattn_delta_io io = {
        .q = linattn_tensor_4d(p->q + t0 * H * K, 1, len, H, K),
        .k = linattn_tensor_4d(p->k + t0 * H * K, 1, len, H, K),
        .v = linattn_tensor_4d(p->v + t0 * H * V, 1, len, H, V),
        .g = linattn_tensor_3d(p->g + t0 * H, 1, len, H),
        .o = linattn_tensor_4d(o, 1, len, H, V)};
    if (p->beta) io.beta = linattn_tensor_3d(p->beta + t0 * H, 1, len, H);
    return io;
}

/* The first len tokens of sequence n alone from h0 (NULL: zeros). */
static int run_seq(linattn_ctx *ctx, const prob *p, int n, int64_t len, const float *h0,
                   float *o, float *hT, const linattn_delta_opts *opts)
{
    linattn_delta_io io = io_of(p, p->cu[n], len, o);
    if (h0) io.h0 = linattn_tensor_4d(h0, 1, H, K, V);
    io.hT = linattn_tensor_4d(hT, 1, H, K, V);
    return linattn_delta_forward(ctx, (linattn_delta_op)p->op, &io, opts);
}

static void opts_of(linattn_delta_opts *o, int algo)
{
    linattn_delta_opts_init(o);
    o->algo = algo ? LINATTN_ALGO_CHUNK : LINATTN_ALGO_RECURRENT;
    o->chunk = 8;
}

static void same_bits(const float *a, const float *b, size_t n, const char *what, const char *be,
                      int op, int algo)
{
    ck_assert_msg(!memcmp(a, b, n * sizeof(float)), "%s differs (%s, op %d, %s)", what, be, op,
                  algo ? "chunk" : "recurrent");
}

static void close_to(const float *a, const float *b, size_t n, int exact, const char *what,
                     const char *be, int op, int algo)
{
    if (exact) {
        same_bits(a, b, n, what, be, op, algo);
        return;
    }
    const double e = tu_relerr(a, b, n);
    ck_assert_msg(e < TOL, "%s: relative error %g (%s, op %d, %s)", what, e, be, op,
                  algo ? "chunk" : "recurrent");
}

/* Decode rows and prompts in one packed call, states in a pool. */
START_TEST(test_mixed)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {1, 1, 37, 1, 70};
    static const int64_t slot[] = {4, 0, 2, -1, 5};
    static const unsigned char init[] = {1, 1, 0, 1, 1};
    enum { N = 5, P = 6 };
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    for (int op = 0; op < 3; op++)
        for (int algo = 0; algo < 2; algo++) {
            prob p;
            make(&p, op, lens, N);
            linattn_delta_opts opts;
            opts_of(&opts, algo);
            const size_t nout = (size_t)p.T * H * V;
            float *pool = tu_alloc(P * HKV), *pool0 = tu_alloc(P * HKV);
            float *o = tu_alloc(nout), *ref_o = tu_alloc(nout), *ref_h = tu_alloc(N * HKV);
            tu_fill(pool0, P * HKV, -1, 1);
            memcpy(pool, pool0, P * HKV * sizeof(float));
            tu_poison(o, nout);
            linattn_delta_io io = io_of(&p, 0, p.T, o);
            io.h0 = io.hT = linattn_tensor_4d(pool, P, H, K, V);
            io.cu_seqlens = p.cu;
            io.n_seqs = N;
            io.state_indices = slot;
            io.has_initial_state = init;
            int rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &io, &opts);
            if (rc == LINATTN_EUNSUPPORTED) goto next; /* the chunk form without BLAS */
            ck_assert_msg(rc == 0, "%s: %s", be[_i], linattn_last_error());
            for (int n = 0; n < N; n++) {
                const float *h0 = slot[n] >= 0 && init[n] ? pool0 + slot[n] * HKV : NULL;
                rc = run_seq(ctx, &p, n, lens[n], h0, ref_o + p.cu[n] * H * V, ref_h + n * HKV,
                             &opts);
                ck_assert_msg(rc == 0, "%s", linattn_last_error());
                if (slot[n] >= 0)
                    same_bits(pool + slot[n] * HKV, ref_h + n * HKV, HKV, "slot state", be[_i],
                              op, algo);
            }
            same_bits(o, ref_o, nout, "o", be[_i], op, algo);
            same_bits(pool + 1 * HKV, pool0 + 1 * HKV, HKV, "unnamed slot 1", be[_i], op, algo);
            same_bits(pool + 3 * HKV, pool0 + 3 * HKV, HKV, "unnamed slot 3", be[_i], op, algo);
        next:
            free(pool); free(pool0); free(o); free(ref_o); free(ref_h);
            unmake(&p);
        }
    linattn_ctx_destroy(ctx);
}
END_TEST

/* A bf16 pool: the slots are widened and rounded as a bf16 h0/hT would be. */
START_TEST(test_half_pool)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {1, 21, 1};
    static const int64_t slot[] = {2, 0, -1};
    enum { N = 3, P = 3 };
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    prob p;
    make(&p, LINATTN_OP_GDN, lens, N);
    const size_t nout = (size_t)p.T * H * V;
    float *f = tu_alloc(P * HKV), *o = tu_alloc(nout), *ro = tu_alloc(nout);
    uint16_t *pool = malloc(P * HKV * 2), *pool0 = malloc(P * HKV * 2), *rh = malloc(HKV * 2);
    ck_assert(pool && pool0 && rh);
    tu_fill(f, P * HKV, -1, 1);
    ck_assert_int_eq(linattn_convert(f, LINATTN_F32, pool0, LINATTN_BF16, P * HKV), 0);
    memcpy(pool, pool0, P * HKV * 2);
    const int64_t psh[4] = {P, H, K, V}, ssh[4] = {1, H, K, V};
    linattn_delta_io io = io_of(&p, 0, p.T, o);
    io.h0 = io.hT = linattn_tensor_nd(pool, LINATTN_BF16, 4, psh);
    io.cu_seqlens = p.cu;
    io.n_seqs = N;
    io.state_indices = slot;
    ck_assert_msg(linattn_delta_forward(ctx, LINATTN_OP_GDN, &io, NULL) == 0, "%s: %s", be[_i],
                  linattn_last_error());
    for (int n = 0; n < N; n++) {
        linattn_delta_io r = io_of(&p, p.cu[n], lens[n], ro + p.cu[n] * H * V);
        if (slot[n] >= 0) {
            memcpy(rh, pool0 + slot[n] * HKV, HKV * 2);
            r.h0 = r.hT = linattn_tensor_nd(rh, LINATTN_BF16, 4, ssh);
        }
        ck_assert_int_eq(linattn_delta_forward(ctx, LINATTN_OP_GDN, &r, NULL), 0);
        if (slot[n] >= 0)
            ck_assert_msg(!memcmp(pool + slot[n] * HKV, rh, HKV * 2), "bf16 slot differs (%s)",
                          be[_i]);
    }
    same_bits(o, ro, nout, "o, bf16 pool", be[_i], 0, 0);
    ck_assert_msg(!memcmp(pool + HKV, pool0 + HKV, HKV * 2), "unnamed bf16 slot written");
    free(f); free(o); free(ro); free(pool); free(pool0); free(rh);
    unmake(&p);
    linattn_ctx_destroy(ctx);
}
END_TEST

/* The step with slots equals the step on each row's own state. */
START_TEST(test_step)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t slot[] = {3, -1, 0, 1};
    static const unsigned char init[] = {1, 1, 0, 1};
    enum { B = 4, P = 5 };
    const int cl = !strcmp(be[_i], "opencl");
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    for (int op = 0; op < 3; op++) {
        static const int64_t ones[] = {1, 1, 1, 1};
        prob p;
        make(&p, op, ones, B);
        float *pool = tu_alloc(P * HKV), *pool0 = tu_alloc(P * HKV), *st = tu_alloc(HKV);
        float *o = tu_alloc(B * H * V), *ro = tu_alloc(H * V);
        tu_fill(pool0, P * HKV, -1, 1);
        memcpy(pool, pool0, P * HKV * sizeof(float));
        tu_poison(o, B * H * V);
        linattn_delta_step_io io = {
            .q = linattn_tensor_3d(p.q, B, H, K), .k = linattn_tensor_3d(p.k, B, H, K),
            .v = linattn_tensor_3d(p.v, B, H, V), .g = linattn_tensor_2d(p.g, B, H),
            .beta = p.beta ? linattn_tensor_2d(p.beta, B, H) : linattn_tensor_none(),
            .state_h = linattn_tensor_4d(pool, P, H, K, V), .o = linattn_tensor_3d(o, B, H, V),
            .state_indices = slot, .has_initial_state = init};
        int rc = linattn_delta_step(ctx, (linattn_delta_op)op, &io, NULL);
        ck_assert_msg(rc == 0, "%s: %s", be[_i], linattn_last_error());
        for (int b = 0; b < B; b++) {
            const int fresh = slot[b] < 0 || !init[b];
            if (fresh) memset(st, 0, HKV * sizeof(float));
            else memcpy(st, pool0 + slot[b] * HKV, HKV * sizeof(float));
            linattn_delta_step_io r = {
                .q = linattn_tensor_3d(p.q + b * H * K, 1, H, K),
                .k = linattn_tensor_3d(p.k + b * H * K, 1, H, K),
                .v = linattn_tensor_3d(p.v + b * H * V, 1, H, V),
                .g = linattn_tensor_2d(p.g + b * H, 1, H),
                .beta = p.beta ? linattn_tensor_2d(p.beta + b * H, 1, H) : linattn_tensor_none(),
                .state_h = linattn_tensor_4d(st, 1, H, K, V), .o = linattn_tensor_3d(ro, 1, H, V)};
            ck_assert_int_eq(linattn_delta_step(ctx, (linattn_delta_op)op, &r, NULL), 0);
            /* OpenCL runs a row from zeros as a one-token forward */
            close_to(o + b * H * V, ro, H * V, !(cl && fresh), "step o", be[_i], op, 0);
            if (slot[b] >= 0)
                close_to(pool + slot[b] * HKV, st, HKV, !(cl && fresh), "step slot", be[_i], op, 0);
        }
        same_bits(pool + 2 * HKV, pool0 + 2 * HKV, HKV, "unnamed slot 2", be[_i], op, 0);
        same_bits(pool + 4 * HKV, pool0 + 4 * HKV, HKV, "unnamed slot 4", be[_i], op, 0);
        free(pool); free(pool0); free(st); free(o); free(ro);
        unmake(&p);
    }
    linattn_ctx_destroy(ctx);
}
END_TEST

/* Duplicate and out-of-range slots: refused, nothing written. */
START_TEST(test_bad_slots)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {3, 1, 4};
    static const int64_t bad[][3] = {{0, 2, 0}, {1, 3, 0}, {-2, 0, 1}, {2, -1, 2}};
    static const int want[] = {LINATTN_EINVAL, LINATTN_ERANGE, LINATTN_ERANGE, LINATTN_EINVAL};
    enum { N = 3, P = 3, W = 1 };
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    prob p;
    make(&p, LINATTN_OP_GDN, lens, N);
    const size_t nout = (size_t)p.T * H * V;
    float *pool = tu_alloc(P * HKV), *pool0 = tu_alloc(P * HKV), *o = tu_alloc(nout);
    float *o0 = tu_alloc(nout), *hw = tu_alloc(N * W * HKV), *hw0 = tu_alloc(N * W * HKV);
    tu_fill(pool0, P * HKV, -1, 1);
    tu_poison(o0, nout);
    tu_poison(hw0, N * W * HKV);
    for (int c = 0; c < 4; c++) {
        memcpy(pool, pool0, P * HKV * sizeof(float));
        memcpy(o, o0, nout * sizeof(float));
        memcpy(hw, hw0, N * W * HKV * sizeof(float));
        linattn_delta_io io = io_of(&p, 0, p.T, o);
        io.h0 = io.hT = linattn_tensor_4d(pool, P, H, K, V);
        io.hW = linattn_tensor_4d(hw, N * W, H, K, V);
        io.cu_seqlens = p.cu;
        io.n_seqs = N;
        io.state_indices = bad[c];
        const int rc = linattn_delta_forward(ctx, LINATTN_OP_GDN, &io, NULL);
        ck_assert_msg(rc == want[c], "case %d on %s: %d (%s)", c, be[_i], rc, linattn_last_error());
        same_bits(pool, pool0, P * HKV, "pool after a refusal", be[_i], 0, 0);
        same_bits(o, o0, nout, "o after a refusal", be[_i], 0, 0);
        same_bits(hw, hw0, N * W * HKV, "hW after a refusal", be[_i], 0, 0);
        /* the step likewise, on its first three tokens as rows */
        linattn_delta_step_io s = {
            .q = linattn_tensor_3d(p.q, N, H, K), .k = linattn_tensor_3d(p.k, N, H, K),
            .v = linattn_tensor_3d(p.v, N, H, V), .beta = linattn_tensor_2d(p.beta, N, H),
            .state_h = linattn_tensor_4d(pool, P, H, K, V), .o = linattn_tensor_3d(o, N, H, V),
            .state_indices = bad[c]};
        ck_assert_int_eq(linattn_delta_step(ctx, LINATTN_OP_GDN, &s, NULL), want[c]);
        same_bits(pool, pool0, P * HKV, "pool after a refused step", be[_i], 0, 0);
        same_bits(o, o0, nout, "o after a refused step", be[_i], 0, 0);
    }
    /* a window longer than a sequence, checkpoints without a period */
    linattn_delta_io io = io_of(&p, 0, p.T, o);
    io.cu_seqlens = p.cu;
    io.n_seqs = N;
    io.hW = linattn_tensor_4d(hw, N, H, K, V); /* W = 1: fine */
    ck_assert_int_eq(linattn_delta_forward(ctx, LINATTN_OP_GDN, &io, NULL), 0);
    float *hw2 = tu_alloc(2 * N * HKV);
    io.hW = linattn_tensor_4d(hw2, 2 * N, H, K, V); /* W = 2 > 1 token */
    ck_assert_int_eq(linattn_delta_forward(ctx, LINATTN_OP_GDN, &io, NULL), LINATTN_ESHAPE);
    io.hW = linattn_tensor_none();
    io.hC = linattn_tensor_4d(hw2, 2 * N, H, K, V);
    ck_assert_int_eq(linattn_delta_forward(ctx, LINATTN_OP_GDN, &io, NULL), LINATTN_ERANGE);
    free(hw2);
    free(pool); free(pool0); free(o); free(o0); free(hw); free(hw0);
    unmake(&p);
    linattn_ctx_destroy(ctx);
}
END_TEST

/* Rollback rows and checkpoints against truncated calls. */
START_TEST(test_rollback)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {9, 12, 20};
    enum { N = 3, W = 4, C = 3, EVERY = 5 };
    const int cl = !strcmp(be[_i], "opencl");
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    /* pooled: the states in a pool of N+1 slots, h0 = hT, read and written in place */
    static const int64_t slots[] = {2, 3, 0};
    for (int op = 0; op < 3; op++)
        for (int k = 0; k < 4; k++) {
            const int algo = k & 1, pooled = k >> 1;
            prob p;
            make(&p, op, lens, N);
            linattn_delta_opts opts;
            opts_of(&opts, algo);
            const size_t nout = (size_t)p.T * H * V;
            float *h0 = tu_alloc((N + 1) * HKV), *hT = tu_alloc(N * HKV), *o = tu_alloc(nout);
            float *hw = tu_alloc(N * W * HKV), *hc = tu_alloc(N * C * HKV);
            float *ro = tu_alloc(nout), *rh = tu_alloc(HKV), *init = tu_alloc((N + 1) * HKV);
            tu_fill(h0, (N + 1) * HKV, -1, 1);
            memcpy(init, h0, (N + 1) * HKV * sizeof(float));
            tu_poison(hw, N * W * HKV);
            tu_poison(hc, N * C * HKV);
            linattn_delta_io io = io_of(&p, 0, p.T, o);
            io.h0 = linattn_tensor_4d(h0, pooled ? N + 1 : N, H, K, V);
            io.hT = pooled ? io.h0 : linattn_tensor_4d(hT, N, H, K, V);
            if (pooled) io.state_indices = slots;
            io.hW = linattn_tensor_4d(hw, N * W, H, K, V);
            io.hC = linattn_tensor_4d(hc, N * C, H, K, V);
            io.checkpoint_every = EVERY;
            io.cu_seqlens = p.cu;
            io.n_seqs = N;
            int rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &io, &opts);
            if (rc == LINATTN_EUNSUPPORTED) goto next;
            ck_assert_msg(rc == 0, "%s: %s", be[_i], linattn_last_error());
            /* bit for bit on the recurrent kernels; the chunk form's chunks and
             * the reference's double state restart at each cut */
            const int exact = !cl && algo == 0 && strcmp(be[_i], "ref");
            for (int n = 0; n < N; n++) {
                const float *s0 = init + (pooled ? slots[n] : n) * HKV;
                const float *fin = pooled ? h0 + slots[n] * HKV : hT + n * HKV;
                for (int w = 0; w < W; w++) {
                    const int64_t t = lens[n] - W + 1 + w;
                    ck_assert_int_eq(run_seq(ctx, &p, n, t, s0, ro, rh, &opts), 0);
                    close_to(hw + (n * W + w) * HKV, rh, HKV, exact, "rollback state", be[_i],
                             op, algo);
                }
                same_bits(hw + (n * W + W - 1) * HKV, fin, HKV, "last window row", be[_i], op,
                          algo);
                for (int c = 0; c < C; c++) {
                    const int64_t t = (int64_t)(c + 1) * EVERY;
                    float *row = hc + (n * C + c) * HKV;
                    if (t > lens[n]) { /* past the sequence: not written */
                        for (size_t e = 0; e < HKV; e++)
                            ck_assert_msg(isnan(row[e]), "checkpoint row past the end written");
                        continue;
                    }
                    ck_assert_int_eq(run_seq(ctx, &p, n, t, s0, ro, rh, &opts), 0);
                    close_to(row, rh, HKV, exact, "checkpoint", be[_i], op, algo);
                }
                /* the outputs: as the whole sequence alone */
                ck_assert_int_eq(run_seq(ctx, &p, n, lens[n], s0, ro, rh, &opts), 0);
                close_to(o + p.cu[n] * H * V, ro, (size_t)lens[n] * H * V, exact, "o", be[_i],
                         op, algo);
            }
        next:
            if (pooled) same_bits(h0 + HKV, init + HKV, HKV, "unnamed slot", be[_i], op, algo);
            free(h0); free(hT); free(o); free(hw); free(hc); free(ro); free(rh); free(init);
            unmake(&p);
        }
    linattn_ctx_destroy(ctx);
}
END_TEST

/* Checkpoints at listed token counts (checkpoint_offsets, per sequence)
 * against truncated calls; bad lists refused with nothing written. */
START_TEST(test_offsets)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {9, 12, 20};
    enum { N = 3, C = 3 };
    static const int64_t offs[N * C] = {3, 9, 0, 1, 7, 12, 4, 5, 19};
    static const int64_t bad[][N * C] = {{3, 3, 0, 1, 7, 12, 4, 5, 19},  /* not ascending */
                                         {3, 9, 0, 1, 7, 13, 4, 5, 19},  /* past sequence 1 */
                                         {3, 9, 0, 0, 7, 12, 4, 5, 19},  /* a 0 before a count */
                                         {-1, 9, 0, 1, 7, 12, 4, 5, 19}};
    static const int want[] = {LINATTN_EINVAL, LINATTN_ERANGE, LINATTN_EINVAL, LINATTN_ERANGE};
    const int cl = !strcmp(be[_i], "opencl");
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    for (int op = 0; op < 3; op++)
        for (int algo = 0; algo < 2; algo++) {
            prob p;
            make(&p, op, lens, N);
            linattn_delta_opts opts;
            opts_of(&opts, algo);
            const size_t nout = (size_t)p.T * H * V;
            float *h0 = tu_alloc(N * HKV), *o = tu_alloc(nout), *hc = tu_alloc(N * C * HKV);
            float *ro = tu_alloc(nout), *rh = tu_alloc(HKV);
            tu_fill(h0, N * HKV, -1, 1);
            tu_poison(o, nout);
            tu_poison(hc, N * C * HKV);
            linattn_delta_io io = io_of(&p, 0, p.T, o);
            io.h0 = linattn_tensor_4d(h0, N, H, K, V);
            io.hC = linattn_tensor_4d(hc, N * C, H, K, V);
            io.cu_seqlens = p.cu;
            io.n_seqs = N;
            for (int c = 0; c < 4; c++) {
                io.checkpoint_offsets = bad[c];
                const int rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &io, &opts);
                ck_assert_msg(rc == want[c], "bad offsets %d on %s: %d", c, be[_i], rc);
            }
            io.checkpoint_offsets = offs;
            io.checkpoint_every = 4; /* one or the other */
            ck_assert_int_eq(linattn_delta_forward(ctx, (linattn_delta_op)op, &io, &opts),
                             LINATTN_EINVAL);
            for (size_t e = 0; e < N * C * HKV; e++)
                ck_assert_msg(isnan(hc[e]), "hC written by a refused call");
            for (size_t e = 0; e < nout; e++)
                ck_assert_msg(isnan(o[e]), "o written by a refused call");
            io.checkpoint_every = 0;
            int rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &io, &opts);
            ck_assert_msg(rc == 0, "%s: %s", be[_i], linattn_last_error());
            const int exact = !cl && algo == 0 && strcmp(be[_i], "ref");
            for (int n = 0; n < N; n++) {
                for (int c = 0; c < C; c++) {
                    float *row = hc + (n * C + c) * HKV;
                    if (!offs[n * C + c]) { /* an unused row: not written */
                        for (size_t e = 0; e < HKV; e++)
                            ck_assert_msg(isnan(row[e]), "unused checkpoint row written");
                        continue;
                    }
                    ck_assert_int_eq(run_seq(ctx, &p, n, offs[n * C + c], h0 + n * HKV, ro, rh,
                                             &opts), 0);
                    close_to(row, rh, HKV, exact, "listed checkpoint", be[_i], op, algo);
                }
                ck_assert_int_eq(run_seq(ctx, &p, n, lens[n], h0 + n * HKV, ro, rh, &opts), 0);
                close_to(o + p.cu[n] * H * V, ro, (size_t)lens[n] * H * V, exact, "o", be[_i],
                         op, algo);
            }
            free(h0); free(o); free(hc); free(ro); free(rh);
            unmake(&p);
        }
    linattn_ctx_destroy(ctx);
}
END_TEST

/* The operator table lists hW and hC for the delta forwards, and a call
 * through it with slots and rollback rows equals the direct call. */
START_TEST(test_table)
{
    static const char *const ops[] = {"gdn", "kla", "gla"};
    static const int64_t lens[] = {1, 6};
    static const int64_t slot[] = {1, 0};
    enum { N = 2, P = 2, W = 1 };
    linattn_ctx *ctx = tu_ctx("ref", 1);
    for (int op = 0; op < 3; op++) {
        const linattn_op_info *info = linattn_op_find(ops[op], "forward");
        ck_assert(info != NULL);
        const int iw = linattn_op_tensor_index(info, "hW"), ic = linattn_op_tensor_index(info, "hC");
        ck_assert_msg(iw >= 0 && ic == iw + 1, "%s forward: no hW, hC", ops[op]);
        ck_assert_str_eq(info->tensors[iw].dims, "WHKV");
        ck_assert_str_eq(info->tensors[ic].dims, "CHKV");
        ck_assert(info->tensors[iw].optional && info->tensors[iw].role == LINATTN_ROLE_OUT);
        ck_assert(linattn_op_tensor_index(linattn_op_find(ops[op], "step"), "hW") < 0);
        prob p;
        make(&p, op, lens, N);
        const size_t nout = (size_t)p.T * H * V;
        float *pool = tu_alloc(2 * P * HKV), *o = tu_alloc(2 * nout), *hw = tu_alloc(2 * N * HKV);
        tu_fill(pool, P * HKV, -1, 1);
        memcpy(pool + P * HKV, pool, P * HKV * sizeof(float));
        linattn_op_args a;
        linattn_op_args_init(info, &a);
        const int w = op != LINATTN_OP_GLA;
        linattn_delta_io io = io_of(&p, 0, p.T, o);
        a.t[0] = io.q; a.t[1] = io.k; a.t[2] = io.v; a.t[3] = io.g;
        if (w) a.t[4] = io.beta;
        a.t[4 + w] = a.t[6 + w] = linattn_tensor_4d(pool, P, H, K, V);
        a.t[5 + w] = io.o;
        a.t[iw] = linattn_tensor_4d(hw, N * W, H, K, V);
        a.cu_seqlens = p.cu;
        a.n_seqs = N;
        a.state_indices = slot;
        ck_assert_msg(linattn_op_call(ctx, info, &a) == 0, "%s", linattn_last_error());
        io = io_of(&p, 0, p.T, o + nout);
        io.h0 = io.hT = linattn_tensor_4d(pool + P * HKV, P, H, K, V);
        io.hW = linattn_tensor_4d(hw + N * HKV, N * W, H, K, V);
        io.cu_seqlens = p.cu;
        io.n_seqs = N;
        io.state_indices = slot;
        ck_assert_int_eq(linattn_delta_forward(ctx, (linattn_delta_op)op, &io, NULL), 0);
        same_bits(o, o + nout, nout, "o through the table", "ref", op, 0);
        same_bits(pool, pool + P * HKV, P * HKV, "pool through the table", "ref", op, 0);
        same_bits(hw, hw + N * HKV, N * HKV, "hW through the table", "ref", op, 0);
        free(pool); free(o); free(hw);
        unmake(&p);
    }
    linattn_ctx_destroy(ctx);
}
END_TEST

/* Through the table: ela's slots (a pool of 3 for 2 sequences) and gdn's
 * checkpoint_offsets reach the entry points, equal to the direct calls. */
START_TEST(test_table_fields)
{
    static const int64_t lens[] = {2, 6};
    static const int64_t slot[] = {2, 0};
    static const int64_t offs[] = {1, 0, 2, 5};
    enum { N = 2, P = 3, C = 2 };
    linattn_ctx *ctx = tu_ctx("ref", 1);
    prob p;
    make(&p, LINATTN_OP_GDN, lens, N);
    const size_t nout = (size_t)p.T * H * V, F = (size_t)H * K;
    float *o = tu_alloc(2 * nout), *ps = tu_alloc(2 * P * HKV), *pz = tu_alloc(2 * P * F);
    float *hc = tu_alloc(2 * N * C * HKV);
    tu_fill(ps, P * HKV, -1, 1);
    tu_fill(pz, P * F, 0.5, 1);
    memcpy(ps + P * HKV, ps, P * HKV * sizeof(float));
    memcpy(pz + P * F, pz, P * F * sizeof(float));
    const linattn_op_info *info = linattn_op_find("ela", "forward");
    ck_assert(info != NULL);
    linattn_op_args a;
    linattn_op_args_init(info, &a);
    linattn_delta_io d = io_of(&p, 0, p.T, o);
    a.t[0] = d.q; a.t[1] = d.k; a.t[2] = d.v; a.t[6] = d.o;
    a.t[3] = a.t[7] = linattn_tensor_4d(ps, P, H, K, V);
    a.t[4] = a.t[8] = linattn_tensor_3d(pz, P, H, K);
    a.cu_seqlens = p.cu;
    a.n_seqs = N;
    a.state_indices = slot;
    ck_assert_msg(linattn_op_call(ctx, info, &a) == 0, "ela through the table: %s",
                  linattn_last_error());
    linattn_delta_io d2 = io_of(&p, 0, p.T, o + nout);
    linattn_ela_io e = {.q = d2.q, .k = d2.k, .v = d2.v, .o = d2.o,
                        .s0 = linattn_tensor_4d(ps + P * HKV, P, H, K, V),
                        .z0 = linattn_tensor_3d(pz + P * F, P, H, K), .cu_seqlens = p.cu,
                        .n_seqs = N, .state_indices = slot};
    e.sT = e.s0;
    e.zT = e.z0;
    ck_assert_int_eq(linattn_ela_forward(ctx, &e, NULL), 0);
    same_bits(o, o + nout, nout, "ela o through the table", "ref", 0, 0);
    same_bits(ps, ps + P * HKV, P * HKV, "ela pool through the table", "ref", 0, 0);
    /* gdn's checkpoint_offsets */
    info = linattn_op_find("gdn", "forward");
    linattn_op_args_init(info, &a);
    d = io_of(&p, 0, p.T, o);
    a.t[0] = d.q; a.t[1] = d.k; a.t[2] = d.v; a.t[3] = d.g; a.t[4] = d.beta; a.t[6] = d.o;
    const int ic = linattn_op_tensor_index(info, "hC");
    a.t[ic] = linattn_tensor_4d(hc, N * C, H, K, V);
    a.cu_seqlens = p.cu;
    a.n_seqs = N;
    a.checkpoint_offsets = offs;
    tu_poison(hc, 2 * N * C * HKV);
    ck_assert_msg(linattn_op_call(ctx, info, &a) == 0, "gdn through the table: %s",
                  linattn_last_error());
    d2 = io_of(&p, 0, p.T, o + nout);
    d2.hC = linattn_tensor_4d(hc + N * C * HKV, N * C, H, K, V);
    d2.cu_seqlens = p.cu;
    d2.n_seqs = N;
    d2.checkpoint_offsets = offs;
    ck_assert_int_eq(linattn_delta_forward(ctx, LINATTN_OP_GDN, &d2, NULL), 0);
    same_bits(hc, hc + N * C * HKV, N * C * HKV, "hC through the table", "ref", 0, 0);
    free(o); free(ps); free(pz); free(hc);
    unmake(&p);
    linattn_ctx_destroy(ctx);
}
END_TEST

/* gka: state pools [P,H,K,K] and [P,H,K,V] with slots, forward and step,
 * against separate calls bit for bit; bad slots refused, nothing written. */
static void spd_states(float *kk, size_t n)
{
    for (size_t m = 0; m < n; m++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j <= i; j++) {
                const float x = i == j ? 1.0f + (float)tu_uniform(0, 1) : (float)tu_uniform(-0.02, 0.02);
                kk[m * K * K + i * K + j] = kk[m * K * K + j * K + i] = x;
            }
}

static linattn_gka_io gka_io(const prob *p, const float *alpha, int64_t t0, int64_t len, float *o)
{
    linattn_delta_io d = io_of(p, t0, len, o);
    linattn_gka_io io = {.q = d.q, .k = d.k, .v = d.v, .g = d.g, .beta = d.beta, .o = d.o,
                         .alpha = linattn_tensor_3d(alpha + t0 * H, 1, len, H)};
    return io;
}

START_TEST(test_gka)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {1, 17, 1, 1};
    static const int64_t slot[] = {2, 0, -1, 3};
    static const unsigned char init[] = {1, 0, 1, 1};
    static const int64_t bad[] = {1, 1, 0, 2};
    enum { N = 4, P = 4 };
    const size_t KK = (size_t)H * K * K;
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    prob p;
    make(&p, LINATTN_OP_GDN, lens, N);
    const size_t nout = (size_t)p.T * H * V;
    float *alpha = tu_alloc((size_t)p.T * H), *o = tu_alloc(nout), *ro = tu_alloc(nout);
    float *pk = tu_alloc(P * KK), *pv = tu_alloc(P * HKV), *pk0 = tu_alloc(P * KK);
    float *pv0 = tu_alloc(P * HKV), *rk = tu_alloc(KK), *rv = tu_alloc(HKV);
    tu_fill(alpha, (size_t)p.T * H, 0, 1);
    spd_states(pk0, P * H);
    tu_fill(pv0, P * HKV, -1, 1);
    for (int step = 0; step < 2; step++) {
        memcpy(pk, pk0, P * KK * sizeof(float));
        memcpy(pv, pv0, P * HKV * sizeof(float));
        tu_poison(o, nout);
        const linattn_tensor tk = linattn_tensor_4d(pk, P, H, K, K);
        const linattn_tensor tv = linattn_tensor_4d(pv, P, H, K, V);
        int rc;
        if (!step) {
            linattn_gka_io io = gka_io(&p, alpha, 0, p.T, o);
            io.kk0 = io.kkT = tk;
            io.kv0 = io.kvT = tv;
            io.cu_seqlens = p.cu;
            io.n_seqs = N;
            io.state_indices = bad; /* refused first, nothing written */
            ck_assert_int_eq(linattn_gka_forward(ctx, &io, NULL), LINATTN_EINVAL);
            same_bits(pk, pk0, P * KK, "gka pool after a refusal", be[_i], 0, 0);
            io.state_indices = slot;
            io.has_initial_state = init;
            rc = linattn_gka_forward(ctx, &io, NULL);
        } else { /* the first N tokens as N rows */
            linattn_gka_step_io io = {
                .q = linattn_tensor_3d(p.q, N, H, K), .k = linattn_tensor_3d(p.k, N, H, K),
                .v = linattn_tensor_3d(p.v, N, H, V), .g = linattn_tensor_2d(p.g, N, H),
                .beta = linattn_tensor_2d(p.beta, N, H), .alpha = linattn_tensor_2d(alpha, N, H),
                .state_kk = tk, .state_kv = tv, .o = linattn_tensor_3d(o, N, H, V),
                .state_indices = slot, .has_initial_state = init};
            rc = linattn_gka_step(ctx, &io, NULL);
        }
        ck_assert_msg(rc == 0, "gka %s on %s: %s", step ? "step" : "forward", be[_i],
                      linattn_last_error());
        for (int n = 0; n < N; n++) {
            const int64_t t0 = step ? n : p.cu[n], len = step ? 1 : lens[n];
            const int fresh = slot[n] < 0 || !init[n];
            if (fresh) {
                memset(rk, 0, KK * sizeof(float));
                memset(rv, 0, HKV * sizeof(float));
            } else {
                memcpy(rk, pk0 + slot[n] * KK, KK * sizeof(float));
                memcpy(rv, pv0 + slot[n] * HKV, HKV * sizeof(float));
            }
            linattn_gka_io r = gka_io(&p, alpha, t0, len, ro);
            r.kk0 = r.kkT = linattn_tensor_4d(rk, 1, H, K, K);
            r.kv0 = r.kvT = linattn_tensor_4d(rv, 1, H, K, V);
            ck_assert_int_eq(linattn_gka_forward(ctx, &r, NULL), 0);
            /* the step against a one-token forward: the same recurrence, exact on the
             * CPU; OpenCL's step and forward kernels differ in rounding */
            const int exact = !(step && !strcmp(be[_i], "opencl"));
            close_to(o + t0 * H * V, ro, (size_t)len * H * V, exact, "gka o", be[_i], step, 0);
            if (slot[n] >= 0) {
                close_to(pk + slot[n] * KK, rk, KK, exact, "gka kk slot", be[_i], step, 0);
                close_to(pv + slot[n] * HKV, rv, HKV, exact, "gka kv slot", be[_i], step, 0);
            }
        }
        same_bits(pk + KK, pk0 + KK, KK, "gka unnamed slot", be[_i], step, 0);
    }
    free(alpha); free(o); free(ro); free(pk); free(pv); free(pk0); free(pv0); free(rk); free(rv);
    unmake(&p);
    linattn_ctx_destroy(ctx);
}
END_TEST

/* gka's rollback and checkpoint pairs (kkW/kvW, kkC/kvC) against truncated
 * calls, with checkpoint_every and with checkpoint_offsets, states in a
 * pool with slots; bad row pairs refused with nothing written. */
START_TEST(test_gka_rows)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {9, 12, 20};
    static const int64_t slot[] = {2, 3, 0};
    static const int64_t offs[] = {3, 9, 0, 1, 7, 12, 4, 5, 19};
    enum { N = 3, P = 4, W = 3, C = 3, EVERY = 5 };
    const size_t KK = (size_t)H * K * K;
    const int cl = !strcmp(be[_i], "opencl");
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    for (int k = 0; k < 4; k++) {
        const int algo = k & 1, listed = k >> 1;
        prob p;
        make(&p, LINATTN_OP_GDN, lens, N);
        linattn_gka_opts opts;
        linattn_gka_opts_init(&opts);
        opts.algo = algo ? LINATTN_ALGO_CHUNK : LINATTN_ALGO_RECURRENT;
        opts.chunk = 4;
        const size_t nout = (size_t)p.T * H * V;
        float *alpha = tu_alloc((size_t)p.T * H), *o = tu_alloc(nout), *ro = tu_alloc(nout);
        float *pk = tu_alloc(P * KK), *pv = tu_alloc(P * HKV), *pk0 = tu_alloc(P * KK);
        float *pv0 = tu_alloc(P * HKV), *rk = tu_alloc(KK), *rv = tu_alloc(HKV);
        float *wk = tu_alloc(N * W * KK), *wv = tu_alloc(N * W * HKV);
        float *ck = tu_alloc(N * C * KK), *cv = tu_alloc(N * C * HKV);
        tu_fill(alpha, (size_t)p.T * H, 0, 1);
        spd_states(pk0, P * H);
        tu_fill(pv0, P * HKV, -1, 1);
        memcpy(pk, pk0, P * KK * sizeof(float));
        memcpy(pv, pv0, P * HKV * sizeof(float));
        tu_poison(o, nout);
        tu_poison(wk, N * W * KK);
        tu_poison(wv, N * W * HKV);
        tu_poison(ck, N * C * KK);
        tu_poison(cv, N * C * HKV);
        linattn_gka_io io = gka_io(&p, alpha, 0, p.T, o);
        io.kk0 = io.kkT = linattn_tensor_4d(pk, P, H, K, K);
        io.kv0 = io.kvT = linattn_tensor_4d(pv, P, H, K, V);
        io.cu_seqlens = p.cu;
        io.n_seqs = N;
        io.state_indices = slot;
        io.kkW = linattn_tensor_4d(wk, N * W, H, K, K);
        io.kvW = linattn_tensor_4d(wv, N * W, H, K, V);
        io.kkC = linattn_tensor_4d(ck, N * C, H, K, K);
        /* refusals first: a pair without its half, no period, a wrong kk row shape */
        ck_assert_int_eq(linattn_gka_forward(ctx, &io, &opts), LINATTN_EINVAL);
        io.kvC = linattn_tensor_4d(cv, N * C, H, K, V);
        ck_assert_int_eq(linattn_gka_forward(ctx, &io, &opts), LINATTN_ERANGE);
        io.checkpoint_every = EVERY;
        io.kkW = linattn_tensor_4d(wk, N * W, H, K, K / 2);
        ck_assert_int_eq(linattn_gka_forward(ctx, &io, &opts), LINATTN_ESHAPE);
        io.kkW = linattn_tensor_4d(wk, N * W, H, K, K);
        io.checkpoint_every = 0;
        same_bits(pk, pk0, P * KK, "gka pool after a refusal", be[_i], k, algo);
        for (size_t e = 0; e < N * W * KK; e++)
            ck_assert_msg(isnan(wk[e]), "kkW written by a refused call");
        if (listed) io.checkpoint_offsets = offs;
        else io.checkpoint_every = EVERY;
        const int rc = linattn_gka_forward(ctx, &io, &opts);
        ck_assert_msg(rc == 0, "gka rows on %s: %s", be[_i], linattn_last_error());
        /* bit for bit on the recurrent kernels; the chunk form's chunks and the
         * reference's double state restart at each cut */
        const int exact = !cl && algo == 0 && strcmp(be[_i], "ref");
        for (int n = 0; n < N; n++) {
            int64_t at[W + C];
            float *rowk[W + C], *rowv[W + C];
            int m = 0;
            for (int w = 0; w < W; w++, m++) {
                at[m] = lens[n] - W + 1 + w;
                rowk[m] = wk + (n * W + w) * KK;
                rowv[m] = wv + (n * W + w) * HKV;
            }
            for (int c = 0; c < C; c++, m++) {
                at[m] = listed ? offs[n * C + c] : (int64_t)(c + 1) * EVERY;
                rowk[m] = ck + (n * C + c) * KK;
                rowv[m] = cv + (n * C + c) * HKV;
                if (!at[m] || at[m] > lens[n]) { /* not wanted, or past the end: not written */
                    for (size_t e = 0; e < KK; e++)
                        ck_assert_msg(isnan(rowk[m][e]), "gka checkpoint row written");
                    at[m] = 0;
                }
            }
            for (int r = 0; r <= m; r++) { /* the rows, then the whole sequence */
                const int64_t len = r < m ? at[r] : lens[n];
                if (!len) continue;
                memcpy(rk, pk0 + slot[n] * KK, KK * sizeof(float));
                memcpy(rv, pv0 + slot[n] * HKV, HKV * sizeof(float));
                linattn_gka_io t = gka_io(&p, alpha, p.cu[n], len, ro);
                t.kk0 = t.kkT = linattn_tensor_4d(rk, 1, H, K, K);
                t.kv0 = t.kvT = linattn_tensor_4d(rv, 1, H, K, V);
                ck_assert_int_eq(linattn_gka_forward(ctx, &t, &opts), 0);
                if (r < m) {
                    close_to(rowk[r], rk, KK, exact, "gka kk row", be[_i], k, algo);
                    close_to(rowv[r], rv, HKV, exact, "gka kv row", be[_i], k, algo);
                } else {
                    close_to(o + p.cu[n] * H * V, ro, (size_t)len * H * V, exact, "gka o",
                             be[_i], k, algo);
                    same_bits(pk + slot[n] * KK, wk + (n * W + W - 1) * KK, KK,
                              "gka last window row", be[_i], k, algo);
                }
            }
        }
        same_bits(pk + KK, pk0 + KK, KK, "gka unnamed slot", be[_i], k, algo);
        free(alpha); free(o); free(ro); free(pk); free(pv); free(pk0); free(pv0); free(rk);
        free(rv); free(wk); free(wv); free(ck); free(cv);
        unmake(&p);
    }
    linattn_ctx_destroy(ctx);
}
END_TEST

/* kalman: pools [P,M,S] with slots, forward (recurrence and scan) and step,
 * against separate calls bit for bit (the step against a one-token forward:
 * within tolerance on OpenCL, whose step and forward kernels round apart);
 * bad slots refused with nothing written. */
#define KM TU_KM
#define KS TU_KS
#define MS TU_KMS

static linattn_kalman_step_io kstep(const tu_kalman *p, int64_t B, float *y, float *yv,
                                    float *lam, float *eta, int64_t P)
{
    linattn_kalman_step_io io = {
        .v = linattn_tensor_2d(p->v, B, KM), .lam_v = linattn_tensor_2d(p->lv, B, KM),
        .k = linattn_tensor_2d(p->k, B, KS), .q = linattn_tensor_2d(p->q, B, KS),
        .decay = linattn_tensor_2d(p->a, KM, KS), .noise = linattn_tensor_2d(p->p, KM, KS),
        .y = linattn_tensor_2d(y, B, KM), .yvar = linattn_tensor_2d(yv, B, KM),
        .state_lam = linattn_tensor_3d(lam, P, KM, KS),
        .state_eta = linattn_tensor_3d(eta, P, KM, KS)};
    return io;
}

START_TEST(test_kalman)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {1, 17, 1, 1};
    static const int64_t cu[] = {0, 1, 18, 19, 20};
    static const int64_t slot[] = {2, 0, -1, 3};
    static const unsigned char init[] = {1, 0, 1, 1};
    static const int64_t bad[][4] = {{1, 1, 0, 2}, {0, 1, 2, 4}};
    static const int want[] = {LINATTN_EINVAL, LINATTN_ERANGE};
    enum { N = 4, P = 4, T = 20 };
    const int cl = !strcmp(be[_i], "opencl");
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    tu_kalman p;
    tu_kalman_make(&p, T);
    const size_t ny = (size_t)T * KM;
    float *y = tu_alloc(ny), *yv = tu_alloc(ny), *ry = tu_alloc(ny), *ryv = tu_alloc(ny);
    float *y0 = tu_alloc(ny), *pl = tu_alloc(P * MS), *pe = tu_alloc(P * MS);
    float *pl0 = tu_alloc(P * MS), *pe0 = tu_alloc(P * MS), *rl = tu_alloc(MS), *re = tu_alloc(MS);
    tu_kalman_pools_fill(pl0, pe0, P);
    tu_poison(y0, ny);
    for (int run = 0; run < 3; run++) { /* forward recurrent, forward scan, step */
        const int step = run == 2;
        linattn_kalman_opts opts;
        linattn_kalman_opts_init(&opts);
        opts.algo = run == 1 ? LINATTN_ALGO_CHUNK : LINATTN_ALGO_RECURRENT;
        opts.chunk = 4;
        for (int c = 0; c < 3; c++) { /* two refusals, then the call */
            memcpy(pl, pl0, P * MS * sizeof(float));
            memcpy(pe, pe0, P * MS * sizeof(float));
            memcpy(y, y0, ny * sizeof(float));
            tu_poison(yv, ny);
            const int64_t *sl = c < 2 ? bad[c] : slot;
            int rc;
            if (!step) {
                linattn_kalman_io io = tu_kalman_io(&p, 0, T, y, yv);
                tu_kalman_pools(&io, pl, pe, P, cu, N, sl);
                io.has_initial_state = init;
                rc = linattn_kalman_forward(ctx, &io, &opts);
            } else { /* the first N tokens as N rows */
                linattn_kalman_step_io io = kstep(&p, N, y, yv, pl, pe, P);
                io.state_indices = sl;
                io.has_initial_state = init;
                rc = linattn_kalman_step(ctx, &io, &opts);
            }
            if (c < 2) {
                ck_assert_msg(rc == want[c], "kalman bad slots %d on %s: %d", c, be[_i], rc);
                same_bits(pl, pl0, P * MS, "kalman lam pool after a refusal", be[_i], run, 0);
                same_bits(pe, pe0, P * MS, "kalman eta pool after a refusal", be[_i], run, 0);
                same_bits(y, y0, ny, "kalman y after a refusal", be[_i], run, 0);
                continue;
            }
            ck_assert_msg(rc == 0, "kalman run %d on %s: %s", run, be[_i], linattn_last_error());
        }
        for (int n = 0; n < N; n++) {
            const int64_t t0 = step ? n : cu[n], len = step ? 1 : lens[n];
            const int fresh = slot[n] < 0 || !init[n];
            memcpy(rl, pl0 + (slot[n] < 0 ? 0 : slot[n]) * MS, MS * sizeof(float));
            memcpy(re, pe0 + (slot[n] < 0 ? 0 : slot[n]) * MS, MS * sizeof(float));
            linattn_kalman_io r = tu_kalman_io(&p, t0, len, ry, ryv);
            if (!fresh) {
                r.lam0 = linattn_tensor_3d(rl, 1, KM, KS);
                r.eta0 = linattn_tensor_3d(re, 1, KM, KS);
            }
            r.lamT = linattn_tensor_3d(rl, 1, KM, KS);
            r.etaT = linattn_tensor_3d(re, 1, KM, KS);
            ck_assert_int_eq(linattn_kalman_forward(ctx, &r, &opts), 0);
            const int exact = !(step && cl);
            close_to(y + t0 * KM, ry, (size_t)len * KM, exact, "kalman y", be[_i], run, 0);
            close_to(yv + t0 * KM, ryv, (size_t)len * KM, exact, "kalman yvar", be[_i], run, 0);
            if (slot[n] >= 0) {
                close_to(pl + slot[n] * MS, rl, MS, exact, "kalman lam slot", be[_i], run, 0);
                close_to(pe + slot[n] * MS, re, MS, exact, "kalman eta slot", be[_i], run, 0);
            }
        }
        same_bits(pl + MS, pl0 + MS, MS, "kalman unnamed lam slot", be[_i], run, 0);
        same_bits(pe + MS, pe0 + MS, MS, "kalman unnamed eta slot", be[_i], run, 0);
    }
    free(y); free(yv); free(ry); free(ryv); free(y0);
    free(pl); free(pe); free(pl0); free(pe0); free(rl); free(re);
    tu_kalman_free(&p);
    linattn_ctx_destroy(ctx);
}
END_TEST

/* ela: pools s [P,H,F,V], z and c [P,H,F] with slots, forward (recurrent
 * and chunk form) and step, against separate calls bit for bit; bad slots
 * refused with nothing written. */
#define HF ((size_t)H * K)
#define HFV ((size_t)H * K * V)
START_TEST(test_ela)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {1, 17, 1, 1};
    static const int64_t slot[] = {2, 0, -1, 3};
    static const unsigned char init[] = {1, 0, 1, 1};
    static const int64_t bad[][4] = {{3, 0, 0, 2}, {0, 1, -3, 2}};
    static const int want[] = {LINATTN_EINVAL, LINATTN_ERANGE};
    enum { N = 4, P = 4 };
    const int cl = !strcmp(be[_i], "opencl");
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    prob p;
    make(&p, LINATTN_OP_GLA, lens, N);
    const size_t nout = (size_t)p.T * H * V;
    float *o = tu_alloc(nout), *ro = tu_alloc(nout), *o0 = tu_alloc(nout);
    float *ps = tu_alloc(P * HFV), *pz = tu_alloc(P * HF), *pc = tu_alloc(P * HF);
    float *ps0 = tu_alloc(P * HFV), *pz0 = tu_alloc(P * HF), *pc0 = tu_alloc(P * HF);
    float *rs = tu_alloc(HFV), *rz = tu_alloc(HF), *rc_ = tu_alloc(HF);
    tu_ela_pools_fill(ps0, pz0, pc0, P, HFV, HF);
    tu_poison(o0, nout);
    for (int run = 0; run < 3; run++) { /* forward recurrent, forward chunk, step */
        const int step = run == 2;
        linattn_ela_opts opts;
        linattn_ela_opts_init(&opts);
        opts.algo = run == 1 ? LINATTN_ALGO_CHUNK : LINATTN_ALGO_RECURRENT;
        opts.chunk = 8;
        for (int c = 0; c < 3; c++) { /* two refusals, then the call */
            tu_ela_pools_copy(ps, pz, pc, ps0, pz0, pc0, P, HFV, HF);
            memcpy(o, o0, nout * sizeof(float));
            const int64_t *sl = c < 2 ? bad[c] : slot;
            const linattn_tensor ts = linattn_tensor_4d(ps, P, H, K, V);
            const linattn_tensor tz = linattn_tensor_3d(pz, P, H, K);
            const linattn_tensor tc = linattn_tensor_3d(pc, P, H, K);
            int rc;
            if (!step) {
                linattn_delta_io d = io_of(&p, 0, p.T, o);
                linattn_ela_io io = {.q = d.q, .k = d.k, .v = d.v, .o = d.o, .s0 = ts,
                                     .z0 = tz, .c0 = tc, .sT = ts, .zT = tz, .cT = tc,
                                     .cu_seqlens = p.cu, .n_seqs = N, .state_indices = sl,
                                     .has_initial_state = init};
                rc = linattn_ela_forward(ctx, &io, &opts);
            } else {
                linattn_ela_step_io io = {
                    .q = linattn_tensor_3d(p.q, N, H, K), .k = linattn_tensor_3d(p.k, N, H, K),
                    .v = linattn_tensor_3d(p.v, N, H, V), .o = linattn_tensor_3d(o, N, H, V),
                    .state_s = ts, .state_z = tz, .state_c = tc, .state_indices = sl,
                    .has_initial_state = init};
                rc = linattn_ela_step(ctx, &io, &opts);
            }
            if (c < 2) {
                ck_assert_msg(rc == want[c], "ela bad slots %d on %s: %d", c, be[_i], rc);
                same_bits(ps, ps0, P * HFV, "ela s pool after a refusal", be[_i], run, 0);
                same_bits(pz, pz0, P * HF, "ela z pool after a refusal", be[_i], run, 0);
                same_bits(pc, pc0, P * HF, "ela c pool after a refusal", be[_i], run, 0);
                same_bits(o, o0, nout, "ela o after a refusal", be[_i], run, 0);
                continue;
            }
            ck_assert_msg(rc == 0, "ela run %d on %s: %s", run, be[_i], linattn_last_error());
        }
        for (int n = 0; n < N; n++) {
            const int64_t t0 = step ? n : p.cu[n], len = step ? 1 : lens[n];
            const int fresh = slot[n] < 0 || !init[n];
            const int64_t from = slot[n] < 0 ? 0 : slot[n];
            tu_ela_pools_copy(rs, rz, rc_, ps0 + from * HFV, pz0 + from * HF,
                              pc0 + from * HF, 1, HFV, HF);
            linattn_delta_io d = io_of(&p, t0, len, ro);
            linattn_ela_io r = {.q = d.q, .k = d.k, .v = d.v, .o = d.o,
                                .sT = linattn_tensor_4d(rs, 1, H, K, V),
                                .zT = linattn_tensor_3d(rz, 1, H, K),
                                .cT = linattn_tensor_3d(rc_, 1, H, K)};
            if (!fresh) {
                r.s0 = r.sT;
                r.z0 = r.zT;
                r.c0 = r.cT;
            }
            ck_assert_int_eq(linattn_ela_forward(ctx, &r, &opts), 0);
            const int exact = !(step && cl);
            close_to(o + t0 * H * V, ro, (size_t)len * H * V, exact, "ela o", be[_i], run, 0);
            if (slot[n] >= 0) {
                close_to(ps + slot[n] * HFV, rs, HFV, exact, "ela s slot", be[_i], run, 0);
                close_to(pz + slot[n] * HF, rz, HF, exact, "ela z slot", be[_i], run, 0);
                close_to(pc + slot[n] * HF, rc_, HF, exact, "ela c slot", be[_i], run, 0);
            }
        }
        same_bits(ps + HFV, ps0 + HFV, HFV, "ela unnamed s slot", be[_i], run, 0);
        same_bits(pz + HF, pz0 + HF, HF, "ela unnamed z slot", be[_i], run, 0);
    }
    free(o); free(ro); free(o0); free(ps); free(pz); free(pc); free(ps0); free(pz0); free(pc0);
    free(rs); free(rz); free(rc_);
    unmake(&p);
    linattn_ctx_destroy(ctx);
}
END_TEST

/* A final-state pool given as a strided view apart from the initial pool
 * (packed for the call): the slots no sequence names keep their values,
 * padding included, for gka, kalman and ela on every backend. */
#define PAD 8
static linattn_tensor padded(float *x, int nd, int64_t P, int64_t a, int64_t b, int64_t c)
{
    linattn_tensor t = nd == 3 ? linattn_tensor_3d(x, P, a, b) : linattn_tensor_4d(x, P, a, b, c);
    const int64_t row = nd == 3 ? a * b : a * b * c;
    t.strides[0] = row + PAD;
    t.strides[1] = nd == 3 ? b : b * c;
    t.strides[2] = nd == 3 ? 1 : c;
    t.strides[3] = nd == 3 ? 0 : 1;
    return t;
}

START_TEST(test_strided_pool)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {5};
    static const int64_t slot[] = {1};
    enum { P = 3, T = 5 };
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    prob p;
    make(&p, LINATTN_OP_GDN, lens, 1);
    const size_t nout = (size_t)T * H * V, KK = (size_t)H * K * K, big = P * (KK + PAD);
    float *o = tu_alloc(nout), *ro = tu_alloc(nout), *alpha = tu_alloc((size_t)T * H);
    float *a0 = tu_alloc(big), *b0 = tu_alloc(big), *c0 = tu_alloc(big);
    float *a = tu_alloc(big), *b = tu_alloc(big), *c = tu_alloc(big);
    float *ra = tu_alloc(big), *rb = tu_alloc(big), *rc_ = tu_alloc(big);
    float *in_a = tu_alloc(big), *in_b = tu_alloc(big), *in_c = tu_alloc(big);
    tu_fill(alpha, (size_t)T * H, 0, 1);
    spd_states(in_a, P * H);
    tu_fill(in_b, big, -1, 1);
    tu_fill(in_c, big, 0.5, 1);
    for (int op = 0; op < 3; op++) { /* gka, kalman, ela */
        tu_fill(a0, big, 0.5, 2);
        tu_fill(b0, big, 0.5, 2);
        tu_fill(c0, big, 0.5, 2);
        memcpy(a, a0, big * sizeof(float));
        memcpy(b, b0, big * sizeof(float));
        memcpy(c, c0, big * sizeof(float));
        int rc, r2;
        size_t rows[3]; /* floats per slot of each state */
        if (op == 0) {
            rows[0] = KK; rows[1] = HKV; rows[2] = 0;
            linattn_gka_io io = gka_io(&p, alpha, 0, T, o);
            io.kk0 = linattn_tensor_4d(in_a, P, H, K, K);
            io.kv0 = linattn_tensor_4d(in_b, P, H, K, V);
            io.kkT = padded(a, 4, P, H, K, K);
            io.kvT = padded(b, 4, P, H, K, V);
            io.state_indices = slot;
            rc = linattn_gka_forward(ctx, &io, NULL);
            linattn_gka_io r = gka_io(&p, alpha, 0, T, ro);
            r.kk0 = linattn_tensor_4d(in_a + KK, 1, H, K, K);
            r.kv0 = linattn_tensor_4d(in_b + HKV, 1, H, K, V);
            r.kkT = linattn_tensor_4d(ra, 1, H, K, K);
            r.kvT = linattn_tensor_4d(rb, 1, H, K, V);
            r2 = linattn_gka_forward(ctx, &r, NULL);
        } else if (op == 1) {
            rows[0] = rows[1] = 2 * K; rows[2] = 0; /* M = 2K channels, S = 1 */
            float *lv = tu_alloc((size_t)T * 2 * K), *dec = tu_alloc(2 * K), *noi = tu_alloc(2 * K);
            tu_fill(lv, (size_t)T * 2 * K, 0.5, 2);
            tu_fill(dec, 2 * K, 0.5, 0.99);
            tu_fill(noi, 2 * K, 0, 0.1);
            linattn_kalman_io io = {
                .v = linattn_tensor_3d(p.v, 1, T, 2 * K), .lam_v = linattn_tensor_3d(lv, 1, T, 2 * K),
                .k = linattn_tensor_3d(p.k, 1, T, 1), .q = linattn_tensor_3d(p.q, 1, T, 1),
                .decay = linattn_tensor_2d(dec, 2 * K, 1), .noise = linattn_tensor_2d(noi, 2 * K, 1),
                .y = linattn_tensor_3d(o, 1, T, 2 * K),
                .lam0 = linattn_tensor_3d(in_c, P, 2 * K, 1),
                .eta0 = linattn_tensor_3d(in_b, P, 2 * K, 1),
                .lamT = padded(a, 3, P, 2 * K, 1, 0), .etaT = padded(b, 3, P, 2 * K, 1, 0),
                .state_indices = slot};
            rc = linattn_kalman_forward(ctx, &io, NULL);
            linattn_kalman_io r = io;
            r.y = linattn_tensor_3d(ro, 1, T, 2 * K);
            r.lam0 = linattn_tensor_3d(in_c + 2 * K, 1, 2 * K, 1);
            r.eta0 = linattn_tensor_3d(in_b + 2 * K, 1, 2 * K, 1);
            r.lamT = linattn_tensor_3d(ra, 1, 2 * K, 1);
            r.etaT = linattn_tensor_3d(rb, 1, 2 * K, 1);
            r.state_indices = NULL;
            r2 = linattn_kalman_forward(ctx, &r, NULL);
            free(lv); free(dec); free(noi);
        } else {
            rows[0] = HKV; rows[1] = rows[2] = (size_t)H * K;
            linattn_delta_io d = io_of(&p, 0, T, o);
            linattn_ela_io io = {.q = d.q, .k = d.k, .v = d.v, .o = d.o,
                                 .s0 = linattn_tensor_4d(in_b, P, H, K, V),
                                 .z0 = linattn_tensor_3d(in_c, P, H, K),
                                 .sT = padded(a, 4, P, H, K, V), .zT = padded(b, 3, P, H, K, 0),
                                 .cT = padded(c, 3, P, H, K, 0), .state_indices = slot};
            rc = linattn_ela_forward(ctx, &io, NULL);
            linattn_ela_io r = io;
            r.o = linattn_tensor_4d(ro, 1, T, H, V);
            r.s0 = linattn_tensor_4d(in_b + HKV, 1, H, K, V);
            r.z0 = linattn_tensor_3d(in_c + H * K, 1, H, K);
            r.sT = linattn_tensor_4d(ra, 1, H, K, V);
            r.zT = linattn_tensor_3d(rb, 1, H, K);
            r.cT = linattn_tensor_3d(rc_, 1, H, K);
            r.state_indices = NULL;
            r2 = linattn_ela_forward(ctx, &r, NULL);
        }
        ck_assert_msg(rc == 0 && r2 == 0, "op %d on %s: %s", op, be[_i], linattn_last_error());
        float *got[3] = {a, b, c}, *was[3] = {a0, b0, c0}, *ref[3] = {ra, rb, rc_};
        for (int i = 0; i < 3 && rows[i]; i++) {
            const size_t st = rows[i] + PAD;
            same_bits(got[i], was[i], st, "slot 0 of a strided pool", be[_i], op, 0);
            same_bits(got[i] + 2 * st, was[i] + 2 * st, P * st - 2 * st, "slot 2 of a strided pool",
                      be[_i], op, 0);
            same_bits(got[i] + st + rows[i], was[i] + st + rows[i], PAD, "padding", be[_i], op, 0);
            same_bits(got[i] + st, ref[i], rows[i], "slot 1 of a strided pool", be[_i], op, 0);
        }
        same_bits(o, ro, op == 1 ? (size_t)T * 2 * K : nout, "output", be[_i], op, 0);
    }
    free(o); free(ro); free(alpha); free(a0); free(b0); free(c0); free(a); free(b); free(c);
    free(ra); free(rb); free(rc_); free(in_a); free(in_b); free(in_c);
    unmake(&p);
    linattn_ctx_destroy(ctx);
}
END_TEST

/* The delta family's pool and checkpoint rows as views without unit rows
 * (every other float: packed for the CPU call): unnamed slots and rows no
 * sequence reaches keep their values. */
static linattn_tensor interleaved(float *x, int64_t P)
{
    linattn_tensor t = linattn_tensor_4d(x, P, H, K, V);
    t.strides[0] = 2 * (int64_t)HKV;
    t.strides[1] = 2 * (int64_t)K * V;
    t.strides[2] = 2 * V;
    t.strides[3] = 2;
    return t;
}

START_TEST(test_interleaved_pool)
{
    const char *be[8];
    if (_i >= tu_backends(be)) return;
    static const int64_t lens[] = {6, 3};
    static const int64_t slot[] = {2, 0};
    enum { N = 2, P = 3, C = 2, EVERY = 4 };
    linattn_ctx *ctx = tu_ctx(be[_i], 2);
    prob p;
    make(&p, LINATTN_OP_GDN, lens, N);
    const size_t nout = (size_t)p.T * H * V;
    float *h0 = tu_alloc(P * HKV), *pool = tu_alloc(2 * P * HKV), *pool0 = tu_alloc(2 * P * HKV);
    float *hc = tu_alloc(2 * N * C * HKV), *hc0 = tu_alloc(2 * N * C * HKV);
    float *o = tu_alloc(nout), *ro = tu_alloc(nout), *rh = tu_alloc(HKV);
    tu_fill(h0, P * HKV, -1, 1);
    tu_fill(pool0, 2 * P * HKV, -1, 1);
    tu_fill(hc0, 2 * N * C * HKV, -1, 1);
    memcpy(pool, pool0, 2 * P * HKV * sizeof(float));
    memcpy(hc, hc0, 2 * N * C * HKV * sizeof(float));
    linattn_delta_io io = io_of(&p, 0, p.T, o);
    io.h0 = linattn_tensor_4d(h0, P, H, K, V);
    io.hT = interleaved(pool, P);
    io.hC = interleaved(hc, N * C);
    io.checkpoint_every = EVERY;
    io.cu_seqlens = p.cu;
    io.n_seqs = N;
    io.state_indices = slot;
    linattn_delta_opts opts;
    opts_of(&opts, 0);
    ck_assert_msg(linattn_delta_forward(ctx, LINATTN_OP_GDN, &io, &opts) == 0, "%s: %s", be[_i],
                  linattn_last_error());
    /* slot 1 and the floats between the elements: as they were */
    same_bits(pool + 2 * HKV, pool0 + 2 * HKV, 2 * HKV, "unnamed slot", be[_i], 0, 0);
    for (size_t e = 1; e < 2 * P * HKV; e += 2)
        ck_assert_msg(!memcmp(pool + e, pool0 + e, sizeof(float)), "pool gap written (%s)",
                      be[_i]);
    /* sequence 1 (3 tokens) reaches no checkpoint: rows 2 and 3 as they were */
    same_bits(hc + 2 * 2 * HKV, hc0 + 2 * 2 * HKV, 2 * 2 * HKV, "unreached rows", be[_i], 0, 0);
    /* the named slots: the separate calls' final states (the reference's
     * double state and OpenCL's calls restart at the checkpoint cut) */
    const int exact = strcmp(be[_i], "ref") && strcmp(be[_i], "opencl");
    float *got = tu_alloc(HKV);
    for (int n = 0; n < N; n++) {
        ck_assert_int_eq(run_seq(ctx, &p, n, lens[n], h0 + slot[n] * HKV, ro, rh, &opts), 0);
        for (size_t e = 0; e < HKV; e++) got[e] = pool[2 * (slot[n] * HKV + e)];
        close_to(got, rh, HKV, exact, "named slot", be[_i], 0, 0);
    }
    free(got);
    free(h0); free(pool); free(pool0); free(hc); free(hc0); free(o); free(ro); free(rh);
    unmake(&p);
    linattn_ctx_destroy(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("serve");
    TCase *tc = tcase_create("serve");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_mixed, 0, 8);
    tcase_add_loop_test(tc, test_step, 0, 8);
    tcase_add_loop_test(tc, test_half_pool, 0, 8);
    tcase_add_loop_test(tc, test_bad_slots, 0, 8);
    tcase_add_loop_test(tc, test_rollback, 0, 8);
    tcase_add_loop_test(tc, test_offsets, 0, 8);
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_table_fields);
    tcase_add_loop_test(tc, test_gka, 0, 8);
    tcase_add_loop_test(tc, test_gka_rows, 0, 8);
    tcase_add_loop_test(tc, test_kalman, 0, 8);
    tcase_add_loop_test(tc, test_ela, 0, 8);
    tcase_add_loop_test(tc, test_strided_pool, 0, 8);
    tcase_add_loop_test(tc, test_interleaved_pool, 0, 8);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_report();
    return tu_main(suite());
}
