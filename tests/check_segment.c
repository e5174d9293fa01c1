/* linattn tests - segment summaries (linattn_segment(3)): summarise +
 * combine + apply against the double reference of the whole sequence, the
 * CPU forward split into segments, and the split over several contexts. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define TOL 5e-4 /* the chunk form's tolerance against the double reference */
static const char *const OPS[] = {"gdn", "kla", "gla"};

/* A problem of the delta family with owned arrays; packed: B = 1 holding
 * two sequences (cu); gk: g per key channel. */
typedef struct prob {
    int op, gk, packed;
    int64_t B, T, H, K, V, N;
    float *q, *k, *v, *g, *beta, *h0;
    int64_t cu[3];
} prob;

static int64_t gw(const prob *p) { return p->H * (p->gk ? p->K : 1); }

static void prob_alloc(prob *p)
{
    const int64_t bt = p->B * p->T;
    p->q = tu_alloc(bt * p->H * p->K);
    p->k = tu_alloc(bt * p->H * p->K);
    p->v = tu_alloc(bt * p->H * p->V);
    p->g = tu_alloc(bt * gw(p));
    p->beta = p->op == 2 ? NULL : tu_alloc(bt * p->H);
}

static void prob_make(prob *p, int op, int64_t B, int64_t T, int64_t H, int64_t K, int64_t V,
                      int gk, int with_h0, int packed)
{
    memset(p, 0, sizeof *p);
    p->op = op; p->gk = gk; p->packed = packed;
    p->B = packed ? 1 : B; p->T = T; p->H = H; p->K = K; p->V = V;
    p->N = packed ? 2 : p->B;
    if (packed) {
        p->cu[0] = 0; p->cu[1] = T / 3 + 5; p->cu[2] = T;
    }
    prob_alloc(p);
    const int64_t nqk = p->B * T * H * K;
    tu_fill(p->q, nqk, -1, 1);
    tu_fill(p->k, nqk, -1, 1);
    tu_fill(p->v, p->B * T * H * V, -1, 1);
    tu_fill(p->g, p->B * T * gw(p), -0.4, 0);
    if (p->beta) tu_fill(p->beta, p->B * T * H, 0.05, 1);
    tu_l2norm_rows(p->q, p->B * T * H, (int)K);
    tu_l2norm_rows(p->k, p->B * T * H, (int)K);
    if (op == 1)
        for (int64_t i = 0; i < nqk; i++) p->k[i] *= (float)tu_uniform(0.3, 1.5);
    if (with_h0) {
        const int64_t n = p->N * H * K * V;
        p->h0 = tu_alloc(n);
        tu_fill(p->h0, n, -0.5, 0.5);
    }
}

static void prob_free(prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->g); free(p->beta); free(p->h0);
}

static linattn_delta_io prob_io(const prob *p, float *o, float *hT)
{
    linattn_delta_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(p->q, p->B, p->T, p->H, p->K);
    io.k = linattn_tensor_4d(p->k, p->B, p->T, p->H, p->K);
    io.v = linattn_tensor_4d(p->v, p->B, p->T, p->H, p->V);
    io.g = p->gk ? linattn_tensor_4d(p->g, p->B, p->T, p->H, p->K)
                 : linattn_tensor_3d(p->g, p->B, p->T, p->H);
    if (p->beta) io.beta = linattn_tensor_3d(p->beta, p->B, p->T, p->H);
    if (p->h0) io.h0 = linattn_tensor_4d(p->h0, p->N, p->H, p->K, p->V);
    io.o = linattn_tensor_4d(o, p->B, p->T, p->H, p->V);
    if (hT) io.hT = linattn_tensor_4d(hT, p->N, p->H, p->K, p->V);
    if (p->packed) {
        io.cu_seqlens = p->cu;
        io.n_seqs = p->N;
    }
    return io;
}

/* The token spans (flat row r0 of B*T, length) of part 0 or 1 of each sequence. */
static int spans(const prob *p, int part, int64_t *r0, int64_t *len)
{
    const int n = (int)p->N;
    for (int s = 0; s < n; s++) {
        const int64_t a = p->packed ? p->cu[s] : s * p->T;
        const int64_t l = p->packed ? p->cu[s + 1] - p->cu[s] : p->T;
        const int64_t m = l * 2 / 5 + 1; /* the split point */
        r0[s] = part ? a + m : a;
        len[s] = part ? l - m : m;
    }
    return n;
}

static void gather(float *dst, const float *src, int n, const int64_t *r0, const int64_t *len,
                   int64_t w)
{
    for (int s = 0; s < n; s++) {
        memcpy(dst, src + r0[s] * w, sizeof(float) * len[s] * w);
        dst += len[s] * w;
    }
}

/* Part 0 or 1 of every sequence as a problem of its own (copies, no h0). */
static void prob_part(const prob *p, int part, prob *s)
{
    int64_t r0[2], len[2];
    const int n = spans(p, part, r0, len);
    *s = *p;
    s->h0 = NULL;
    s->T = p->packed ? len[0] + len[1] : len[0];
    if (p->packed) {
        s->cu[1] = len[0];
        s->cu[2] = len[0] + len[1];
    }
    prob_alloc(s);
    gather(s->q, p->q, n, r0, len, p->H * p->K);
    gather(s->k, p->k, n, r0, len, p->H * p->K);
    gather(s->v, p->v, n, r0, len, p->H * p->V);
    gather(s->g, p->g, n, r0, len, gw(p));
    if (p->beta) gather(s->beta, p->beta, n, r0, len, p->H);
}

/* The part's outputs back into the whole problem's layout. */
static void scatter(float *dst, const float *src, const prob *p, int part)
{
    int64_t r0[2], len[2];
    const int n = spans(p, part, r0, len);
    const int64_t w = p->H * p->V;
    for (int s = 0; s < n; s++) {
        memcpy(dst + r0[s] * w, src, sizeof(float) * len[s] * w);
        src += len[s] * w;
    }
}

static void reference(const prob *p, float *ro, float *rh)
{
    linattn_ctx *ref = tu_ctx("ref", 1);
    tu_poison(ro, p->B * p->T * p->H * p->V);
    tu_poison(rh, p->N * p->H * p->K * p->V);
    linattn_delta_io io = prob_io(p, ro, rh);
    ck_assert_msg(linattn_delta_forward(ref, (linattn_delta_op)p->op, &io, NULL) == 0, "ref: %s",
                  linattn_last_error());
    linattn_ctx_destroy(ref);
}

/* A summary with owned arrays for part s of p. */
typedef struct summ {
    float *A, *Bm, *oA, *o;
    linattn_segment seg;
} summ;

static void summ_make(summ *m, const prob *s)
{
    const int64_t N = s->N, H = s->H, K = s->K, V = s->V;
    m->A = tu_alloc(N * H * K * K);
    m->Bm = tu_alloc(N * H * K * V);
    m->oA = tu_alloc(s->B * s->T * H * K);
    m->o = tu_alloc(s->B * s->T * H * V);
    tu_poison(m->A, N * H * K * K);
    tu_poison(m->Bm, N * H * K * V);
    tu_poison(m->oA, s->B * s->T * H * K);
    tu_poison(m->o, s->B * s->T * H * V);
    m->seg.A = linattn_tensor_4d(m->A, N, H, K, K);
    m->seg.B = linattn_tensor_4d(m->Bm, N, H, K, V);
    m->seg.oA = linattn_tensor_4d(m->oA, s->B, s->T, H, K);
}

static void summ_free(summ *m) { free(m->A); free(m->Bm); free(m->oA); free(m->o); }

/* Loop index: op, per-channel g, h0 given, packed sequences. */
START_TEST(test_summaries)
{
    const int op = _i % 3, gk = _i / 3 % 2, with_h0 = _i / 6 % 2, packed = _i / 12 % 2;
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    prob p, s[2];
    prob_make(&p, op, 2, 150, 2, 32, 24, gk, with_h0, packed);
    const size_t no = p.B * p.T * p.H * p.V, nh = p.N * p.H * p.K * p.V;
    float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
    float *h1 = tu_alloc(nh);
    reference(&p, ro, rh);
    prob_part(&p, 0, &s[0]);
    prob_part(&p, 1, &s[1]);
    for (int i = 0; i < nisa; i++)
        for (int threads = 1; threads <= 4; threads++) {
            if (!strcmp(isas[i], "opencl") && threads > 1) continue;
            linattn_ctx *ctx = tu_ctx(isas[i], threads);
            summ m[2];
            for (int j = 0; j < 2; j++) {
                summ_make(&m[j], &s[j]);
                linattn_delta_io io = prob_io(&s[j], m[j].o, NULL);
                ck_assert_msg(linattn_delta_summarise(ctx, (linattn_delta_op)op, &io, NULL,
                                                      &m[j].seg) == 0,
                              "summarise: %s", linattn_last_error());
            }
            /* the state: combine, then apply to h0 */
            summ c;
            summ_make(&c, &s[0]);
            ck_assert_int_eq(linattn_segment_combine(ctx, &m[0].seg, &m[1].seg, &c.seg), 0);
            linattn_segment_apply_io ap;
            memset(&ap, 0, sizeof ap);
            ap.sum = c.seg;
            ap.sum.oA = linattn_tensor_none();
            if (p.h0) ap.h0 = linattn_tensor_4d(p.h0, p.N, p.H, p.K, p.V);
            tu_poison(h, nh);
            ap.hT = linattn_tensor_4d(h, p.N, p.H, p.K, p.V);
            ck_assert_msg(linattn_segment_apply(ctx, &ap) == 0, "%s", linattn_last_error());
            double eh = tu_relerr(h, rh, nh);
            ck_assert_msg(eh < TOL, "%s %s %d threads gk %d h0 %d packed %d: combined state %.2e",
                          OPS[op], isas[i], threads, gk, with_h0, packed, eh);
            /* the outputs: apply part 0 to h0, then part 1 to its result */
            tu_poison(o, no);
            for (int j = 0; j < 2; j++) {
                memset(&ap, 0, sizeof ap);
                ap.sum = m[j].seg;
                const float *in = j ? h1 : p.h0;
                if (in) ap.h0 = linattn_tensor_4d(in, p.N, p.H, p.K, p.V);
                else ap.sum.oA = linattn_tensor_none();
                ap.hT = linattn_tensor_4d(j ? h : h1, p.N, p.H, p.K, p.V);
                if (in) ap.o = linattn_tensor_4d(m[j].o, s[j].B, s[j].T, p.H, p.V);
                if (p.packed) {
                    ap.cu_seqlens = s[j].cu;
                    ap.n_seqs = 2;
                }
                ck_assert_msg(linattn_segment_apply(ctx, &ap) == 0, "%s", linattn_last_error());
                scatter(o, m[j].o, &p, j);
            }
            const double eo = tu_relerr(o, ro, no);
            eh = tu_relerr(h, rh, nh);
            ck_assert_msg(eo < TOL && eh < TOL,
                          "%s %s %d threads gk %d h0 %d packed %d: o %.2e state %.2e", OPS[op],
                          isas[i], threads, gk, with_h0, packed, eo, eh);
            summ_free(&m[0]); summ_free(&m[1]); summ_free(&c);
            linattn_ctx_destroy(ctx);
        }
    prob_free(&s[0]); prob_free(&s[1]); prob_free(&p);
    free(ro); free(rh); free(o); free(h); free(h1);
}
END_TEST

/* The CPU forward split into segments (LINATTN_SEGMENTS forces it; Check
 * runs each test in a child, so the setting stays here).  Loop index: op,
 * per-channel g, h0 given, one packed sequence. */
START_TEST(test_segmented_forward)
{
    const int op = _i % 3, gk = _i / 3 % 2, with_h0 = _i / 6 % 2, packed1 = _i / 12 % 2;
    const char *isas[8];
    const int nisa = tu_isas(isas, 8);
    prob p;
    prob_make(&p, op, packed1 ? 1 : 2, 700, 2, 32, 40, gk, with_h0, 0);
    if (packed1) { /* cu_seqlens with one sequence */
        p.packed = 1;
        p.N = 1;
        p.cu[1] = p.T;
    }
    const size_t no = p.B * p.T * p.H * p.V, nh = p.N * p.H * p.K * p.V;
    float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
    float *o1 = tu_alloc(no);
    reference(&p, ro, rh);
    for (int i = 0; i < nisa; i++) {
        if (!strcmp(isas[i], "opencl")) continue;
        for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++)
            for (int threads = 1; threads <= 4; threads++) {
                linattn_ctx *ctx = tu_ctx(isas[i], threads);
                linattn_delta_opts opts;
                linattn_delta_opts_init(&opts);
                opts.algo = (linattn_algo)algo;
                setenv("LINATTN_SEGMENTS", "0", 1);
                tu_poison(o1, no);
                linattn_delta_io io = prob_io(&p, o1, NULL);
                int rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &io, &opts);
                if (rc == LINATTN_EUNSUPPORTED) { /* chunk form without BLAS */
                    linattn_ctx_destroy(ctx);
                    continue;
                }
                ck_assert_int_eq(rc, 0);
                setenv("LINATTN_SEGMENTS", threads == 1 ? "2" : threads == 2 ? "3" : "5", 1);
                tu_poison(o, no);
                tu_poison(h, nh);
                io = prob_io(&p, o, h);
                rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &io, &opts);
                ck_assert_msg(rc == 0, "%s", linattn_last_error());
                const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
                ck_assert_msg(eo < TOL && eh < TOL,
                              "%s %s algo %d %d threads gk %d h0 %d: o %.2e state %.2e",
                              OPS[op], isas[i], algo, threads, gk, with_h0, eo, eh);
                /* the segments did run: their joins round differently */
                ck_assert_msg(memcmp(o, o1, sizeof(float) * no) != 0,
                              "%s: segmented forward equals the plain one bit for bit", OPS[op]);
                linattn_ctx_destroy(ctx);
            }
    }
    unsetenv("LINATTN_SEGMENTS"); /* CK_FORK=no runs the next test in this process */
    prob_free(&p);
    free(ro); free(rh); free(o); free(h); free(o1);
}
END_TEST

/* LINATTN_SEGMENTS: unset is the plain forward, bit for bit; auto splits
 * when the units of work (one head of 16 value columns) leave threads idle. */
START_TEST(test_auto)
{
    prob p;
    prob_make(&p, _i, 1, 4096, 1, 16, 16, 0, 1, 0);
    const size_t no = p.T * p.V, nh = p.K * p.V;
    float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o0 = tu_alloc(no), *o = tu_alloc(no);
    float *h = tu_alloc(nh);
    reference(&p, ro, rh);
    linattn_ctx *ctx = tu_ctx("scalar", 4);
    linattn_delta_opts opts;
    linattn_delta_opts_init(&opts);
    opts.algo = LINATTN_ALGO_RECURRENT;
    setenv("LINATTN_SEGMENTS", "0", 1);
    linattn_delta_io io = prob_io(&p, o0, NULL);
    ck_assert_int_eq(linattn_delta_forward(ctx, (linattn_delta_op)_i, &io, &opts), 0);
    unsetenv("LINATTN_SEGMENTS");
    tu_poison(o, no);
    io = prob_io(&p, o, NULL);
    ck_assert_int_eq(linattn_delta_forward(ctx, (linattn_delta_op)_i, &io, &opts), 0);
    ck_assert_msg(memcmp(o, o0, sizeof(float) * no) == 0, "unset: not the plain forward");
    setenv("LINATTN_SEGMENTS", "auto", 1);
    tu_poison(o, no);
    tu_poison(h, nh);
    io = prob_io(&p, o, h);
    ck_assert_int_eq(linattn_delta_forward(ctx, (linattn_delta_op)_i, &io, &opts), 0);
    ck_assert_msg(memcmp(o, o0, sizeof(float) * no) != 0, "auto: no split");
    const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
    ck_assert_msg(eo < TOL && eh < TOL, "%s auto: o %.2e state %.2e", OPS[_i], eo, eh);
    unsetenv("LINATTN_SEGMENTS");
    linattn_ctx_destroy(ctx);
    prob_free(&p);
    free(ro); free(rh); free(o0); free(o); free(h);
}
END_TEST

/* The split over several contexts: CPU contexts, and on OpenCL two contexts
 * on one device against that device alone. */
START_TEST(test_split_contexts)
{
    const int op = _i;
    prob p;
    prob_make(&p, op, 1, 500, 3, 32, 32, 0, 1, 0);
    const size_t no = p.B * p.T * p.H * p.V, nh = p.N * p.H * p.K * p.V;
    float *ro = tu_alloc(no), *rh = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
    reference(&p, ro, rh);
    const int cl = tu_opencl();
    for (int dev = 0; dev <= cl; dev++) {
        for (int n = 1; n <= 3; n++) {
            linattn_ctx *ctxs[3];
            for (int i = 0; i < n; i++) ctxs[i] = tu_ctx(dev ? "opencl" : "scalar", 1 + i % 2);
            tu_poison(o, no);
            tu_poison(h, nh);
            linattn_delta_io io = prob_io(&p, o, h);
            const int rc = linattn_delta_forward_split(ctxs, n, (linattn_delta_op)op, &io, NULL);
            ck_assert_msg(rc == 0, "%s", linattn_last_error());
            const double eo = tu_relerr(o, ro, no), eh = tu_relerr(h, rh, nh);
            ck_assert_msg(eo < TOL && eh < TOL, "%s %s x%d: o %.2e state %.2e", OPS[op],
                          dev ? "opencl" : "cpu", n, eo, eh);
            for (int i = 0; i < n; i++) linattn_ctx_destroy(ctxs[i]);
        }
    }
    prob_free(&p);
    free(ro); free(rh); free(o); free(h);
}
END_TEST

/* The split over OpenCL contexts (two or three on one device) against that
 * device alone: the later segments stay on their devices (o += oA S there,
 * segment.cl).  Loop index: op, h0 given, hT given, B = 1 or 2 (then the
 * segments' rows are not contiguous; with hT also twice as many query heads
 * as states, Ho = 2H); K = 24 and V = 80 (tiles cut at the kernel's
 * edges). */
START_TEST(test_split_devices)
{
    const int op = _i % 3, with_h0 = _i / 3 % 2, with_hT = _i / 6 % 2, B = 1 + _i / 12;
    if (!tu_opencl()) return;
    if (_i % 4 == 1) setenv("LINATTN_SPLIT_FIRST", "1", 1); /* equal segments */
    else unsetenv("LINATTN_SPLIT_FIRST");
    prob p;
    prob_make(&p, op, B, 300, 2, 24, 80, 0, with_h0, 0);
    const int64_t Ho = _i >= 18 ? 2 * p.H : p.H; /* query heads sharing a state */
    const size_t no = p.B * p.T * Ho * p.V, nh = p.N * p.H * p.K * p.V;
    float *o1 = tu_alloc(no), *h1 = tu_alloc(nh), *o = tu_alloc(no), *h = tu_alloc(nh);
    float *q2 = tu_alloc(p.B * p.T * Ho * p.K);
    tu_fill(q2, p.B * p.T * Ho * p.K, -1, 1);
    tu_l2norm_rows(q2, p.B * p.T * Ho, (int)p.K);
    linattn_ctx *ctxs[3];
    for (int i = 0; i < 3; i++) {
        linattn_config cfg;
        linattn_config_init(&cfg);
        cfg.backend = LINATTN_BACKEND_OPENCL;
        cfg.verbose = _i == 0; /* the per-phase times once */
        ck_assert_msg(linattn_ctx_create(&cfg, &ctxs[i]) == 0, "%s", linattn_last_error());
    }
    tu_poison(o1, no);
    tu_poison(h1, nh);
    linattn_delta_io io = prob_io(&p, o1, with_hT ? h1 : NULL);
    if (Ho != p.H) {
        io.q = linattn_tensor_4d(q2, p.B, p.T, Ho, p.K);
        io.o = linattn_tensor_4d(o1, p.B, p.T, Ho, p.V);
    }
    ck_assert_msg(linattn_delta_forward(ctxs[0], (linattn_delta_op)op, &io, NULL) == 0, "%s",
                  linattn_last_error());
    for (int n = 2; n <= 3; n++) {
        tu_poison(o, no);
        tu_poison(h, nh);
        io = prob_io(&p, o, with_hT ? h : NULL);
        if (Ho != p.H) {
            io.q = linattn_tensor_4d(q2, p.B, p.T, Ho, p.K);
            io.o = linattn_tensor_4d(o, p.B, p.T, Ho, p.V);
        }
        const int rc = linattn_delta_forward_split(ctxs, n, (linattn_delta_op)op, &io, NULL);
        ck_assert_msg(rc == 0, "%s", linattn_last_error());
        const double eo = tu_relerr(o, o1, no), eh = with_hT ? tu_relerr(h, h1, nh) : 0.0;
        ck_assert_msg(eo < TOL && eh < TOL, "%s x%d B=%d Ho=%d h0 %d: o %.2e state %.2e", OPS[op],
                      n, B, (int)Ho, with_h0, eo, eh);
    }
    for (int i = 0; i < 3; i++) linattn_ctx_destroy(ctxs[i]);
    prob_free(&p);
    free(o1); free(h1); free(o); free(h); free(q2);
}
END_TEST

START_TEST(test_arguments)
{
    prob p;
    prob_make(&p, 0, 1, 20, 1, 8, 8, 0, 1, 0);
    float *o = tu_alloc(20 * 8), *A = tu_alloc(64), *Bm = tu_alloc(64), *oA = tu_alloc(20 * 8);
    linattn_ctx *ctx = tu_ctx("scalar", 1);
    linattn_segment sum = {.A = linattn_tensor_4d(A, 1, 1, 8, 8),
                           .B = linattn_tensor_4d(Bm, 1, 1, 8, 8),
                           .oA = linattn_tensor_4d(oA, 1, 20, 1, 8)};
    tu_poison(o, 20 * 8);
    linattn_delta_io io = prob_io(&p, o, NULL);
    /* h0 given: refused, nothing written */
    ck_assert_int_eq(linattn_delta_summarise(ctx, LINATTN_OP_GDN, &io, NULL, &sum), LINATTN_EINVAL);
    ck_assert(o[0] != o[0]);
    io.h0 = linattn_tensor_none();
    linattn_segment bad = sum;
    bad.A = linattn_tensor_4d(A, 1, 1, 8, 4);
    ck_assert_int_eq(linattn_delta_summarise(ctx, LINATTN_OP_GDN, &io, NULL, &bad), LINATTN_ESHAPE);
    ck_assert(o[0] != o[0]);
    ck_assert_int_eq(linattn_delta_summarise(ctx, LINATTN_OP_GDN, &io, NULL, &sum), 0);
    ck_assert_int_eq(linattn_segment_combine(ctx, &sum, &bad, &sum), LINATTN_ESHAPE);
    ck_assert_int_eq(linattn_segment_combine(ctx, NULL, &sum, &sum), LINATTN_ENULL);
    linattn_segment_apply_io ap = {.sum = sum, .o = linattn_tensor_4d(o, 1, 20, 1, 8)};
    ap.sum.oA = linattn_tensor_none();
    ck_assert_int_eq(linattn_segment_apply(ctx, &ap), LINATTN_EINVAL);
    ck_assert_int_eq(linattn_delta_forward_split(&ctx, 0, LINATTN_OP_GDN, &io, NULL),
                     LINATTN_ERANGE);
    linattn_ctx *two[2] = {ctx, ctx};
    io.cu_seqlens = p.cu;
    ck_assert_int_eq(linattn_delta_forward_split(two, 2, LINATTN_OP_GDN, &io, NULL),
                     LINATTN_EINVAL);
    linattn_ctx_destroy(ctx);
    prob_free(&p);
    free(o); free(A); free(Bm); free(oA);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("segment");
    TCase *tc = tcase_create("segment");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_summaries, 0, 24);
    tcase_add_loop_test(tc, test_segmented_forward, 0, 24);
    tcase_add_loop_test(tc, test_auto, 0, 3);
    tcase_add_loop_test(tc, test_split_contexts, 0, 3);
    tcase_add_loop_test(tc, test_split_devices, 0, 24);
    tcase_add_test(tc, test_arguments);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
