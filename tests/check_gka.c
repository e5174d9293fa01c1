/* linattn tests - Gated KalmaNet (gka): every ISA against the double
 * reference, properties that need no oracle, and the solve's accuracy
 * against a direct Cholesky solve written here. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

#define TOL 1e-4

typedef struct gka_prob {
    int64_t B, T, H, K, V;
    float *q, *k, *v, *g, *beta, *alpha, *hkk, *hkv;
} gka_prob;

static void prob_make(gka_prob *p, int64_t B, int64_t T, int64_t H, int64_t K, int64_t V,
                      int with_h0)
{
    memset(p, 0, sizeof *p);
    p->B = B; p->T = T; p->H = H; p->K = K; p->V = V;
    const size_t nk = B * T * H * K, nv = B * T * H * V, ng = B * T * H;
    p->q = tu_alloc(nk); p->k = tu_alloc(nk); p->v = tu_alloc(nv);
    p->g = tu_alloc(ng); p->beta = tu_alloc(ng); p->alpha = tu_alloc(ng);
    tu_fill(p->q, nk, -1, 1);
    tu_fill(p->k, nk, -1, 1);
    tu_l2norm_rows(p->q, B * T * H, (int)K);
    tu_l2norm_rows(p->k, B * T * H, (int)K);
    tu_fill(p->v, nv, -1, 1);
    tu_fill(p->g, ng, -0.3, 0);
    tu_fill(p->beta, ng, 0.05, 1);
    tu_fill(p->alpha, ng, 0, 1);
    if (with_h0) { /* a state a previous run could have left: H = sum of outer products */
        const size_t nkk = B * H * K * K, nkv = B * H * K * V;
        p->hkk = tu_alloc(nkk);
        p->hkv = tu_alloc(nkv);
        float *w = tu_alloc(K);
        for (int64_t u = 0; u < B * H; u++) {
            float *Hm = p->hkk + u * K * K;
            memset(Hm, 0, sizeof(float) * K * K);
            for (int r = 0; r < 4; r++) {
                tu_fill(w, K, -1, 1);
                tu_l2norm_rows(w, 1, (int)K);
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < K; j++) Hm[i * K + j] += w[i] * w[j];
            }
        }
        free(w);
        tu_fill(p->hkv, nkv, -0.5, 0.5);
    }
}

/* 1 if this build has the chunk form (BLAS) */
static int linattn_have_blas_chunk(void) { return strncmp(linattn_blas_info(), "none", 4) != 0; }

static void prob_free(gka_prob *p)
{
    free(p->q); free(p->k); free(p->v); free(p->g); free(p->beta); free(p->alpha);
    free(p->hkk); free(p->hkv);
}

/* Forward into o [B,T,H,V], hkk/hkv final state (poisoned first). */
static int run(linattn_ctx *ctx, const gka_prob *p, const linattn_gka_opts *opts, float *o,
               float *hkk, float *hkv)
{
    linattn_gka_opts rec;
    if (!opts) { /* the default here is the recurrence: properties below are bit for bit */
        linattn_gka_opts_init(&rec);
        rec.algo = LINATTN_ALGO_RECURRENT;
        opts = &rec;
    }
    const int64_t B = p->B, T = p->T, H = p->H, K = p->K, V = p->V;
    tu_poison(o, B * T * H * V);
    tu_poison(hkk, B * H * K * K);
    tu_poison(hkv, B * H * K * V);
    linattn_gka_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(p->q, B, T, H, K);
    io.k = linattn_tensor_4d(p->k, B, T, H, K);
    io.v = linattn_tensor_4d(p->v, B, T, H, V);
    io.g = p->g ? linattn_tensor_3d(p->g, B, T, H) : linattn_tensor_none();
    io.beta = p->beta ? linattn_tensor_3d(p->beta, B, T, H) : linattn_tensor_none();
    io.alpha = p->alpha ? linattn_tensor_3d(p->alpha, B, T, H) : linattn_tensor_none();
    if (p->hkk) {
        io.kk0 = linattn_tensor_4d(p->hkk, B, H, K, K);
        io.kv0 = linattn_tensor_4d(p->hkv, B, H, K, V);
    }
    io.o = linattn_tensor_4d(o, B, T, H, V);
    io.kkT = linattn_tensor_4d(hkk, B, H, K, K);
    io.kvT = linattn_tensor_4d(hkv, B, H, K, V);
    return linattn_gka_forward(ctx, &io, opts);
}

typedef struct shape { int64_t B, T, H, K, V; int h0; } shape;
static const shape SHAPES[] = {
    {4, 1, 8, 16, 16, 0}, {1, 63, 3, 32, 48, 1}, {2, 65, 2, 64, 64, 0},
    {1, 130, 1, 128, 128, 1}, {1, 40, 2, 48, 24, 1},
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof *SHAPES))

/* every ISA and OpenCL, each form, vs ref */
START_TEST(test_vs_reference)
{
    const shape *s = &SHAPES[_i];
    gka_prob p;
    prob_make(&p, s->B, s->T, s->H, s->K, s->V, s->h0);
    const size_t no = s->B * s->T * s->H * s->V, nkk = s->B * s->H * s->K * s->K,
                 nkv = s->B * s->H * s->K * s->V;
    float *o0 = tu_alloc(no), *kk0 = tu_alloc(nkk), *kv0 = tu_alloc(nkv);
    float *o1 = tu_alloc(no), *kk1 = tu_alloc(nkk), *kv1 = tu_alloc(nkv);
    linattn_ctx *ref = tu_ctx("ref", 2);
    ck_assert_int_eq(run(ref, &p, NULL, o0, kk0, kv0), 0);
    linattn_ctx_destroy(ref);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i < n; i++)
        for (int algo = LINATTN_ALGO_RECURRENT; algo <= LINATTN_ALGO_CHUNK; algo++) {
            if (algo == LINATTN_ALGO_CHUNK && !linattn_have_blas_chunk()) continue;
            linattn_ctx *c = tu_ctx(isas[i], 2);
            linattn_gka_opts opts;
            linattn_gka_opts_init(&opts);
            opts.algo = (linattn_algo)algo;
            ck_assert_int_eq(run(c, &p, &opts, o1, kk1, kv1), 0);
            const double eo = tu_relerr(o1, o0, no), ek = tu_relerr(kk1, kk0, nkk),
                         ev = tu_relerr(kv1, kv0, nkv);
            ck_assert_msg(eo < TOL && ek < TOL && ev < TOL, "%s algo %d shape %d: o %g H %g U %g",
                          isas[i], algo, _i, eo, ek, ev);
            linattn_ctx_destroy(c);
        }
    free(o0); free(kk0); free(kv0); free(o1); free(kk1); free(kv1);
    prob_free(&p);
}
END_TEST

/* the chunk form for chunk sizes around the sequence length, against the
 * recurrence (linattn_gka(3): they agree to float rounding) */
START_TEST(test_chunk_sizes)
{
    static const int sizes[] = {1, 7, 16, 64, 100, 200};
    gka_prob p;
    prob_make(&p, 2, 150, 2, 32, 40, 1);
    const size_t no = 2 * 150 * 2 * 40, nkk = 2 * 2 * 32 * 32, nkv = 2 * 2 * 32 * 40;
    float *o0 = tu_alloc(no), *kk0 = tu_alloc(nkk), *kv0 = tu_alloc(nkv);
    float *o1 = tu_alloc(no), *kk1 = tu_alloc(nkk), *kv1 = tu_alloc(nkv);
    linattn_ctx *c = tu_ctx("scalar", 2);
    linattn_gka_opts opts;
    linattn_gka_opts_init(&opts);
    opts.algo = LINATTN_ALGO_RECURRENT;
    ck_assert_int_eq(run(c, &p, &opts, o0, kk0, kv0), 0);
    opts.algo = LINATTN_ALGO_CHUNK;
    if (!linattn_have_blas_chunk()) /* a build without BLAS has no chunk form: it says so */
        ck_assert_int_eq(run(c, &p, &opts, o1, kk1, kv1), LINATTN_EUNSUPPORTED);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes && linattn_have_blas_chunk(); i++) {
        opts.chunk = sizes[i];
        ck_assert_int_eq(run(c, &p, &opts, o1, kk1, kv1), 0);
        const double eo = tu_relerr(o1, o0, no), ek = tu_relerr(kk1, kk0, nkk),
                     ev = tu_relerr(kv1, kv0, nkv);
        ck_assert_msg(eo < TOL && ek < TOL && ev < TOL, "chunk %d: o %g H %g U %g", sizes[i], eo,
                      ek, ev);
    }
    linattn_ctx_destroy(c);
    free(o0); free(kk0); free(kv0); free(o1); free(kk1); free(kv1);
    prob_free(&p);
}
END_TEST

/* a sequence split in two with the state carried equals the whole, bit for bit;
 * T steps equal the forward, bit for bit; threads do not change a bit */
START_TEST(test_split_step_threads)
{
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    const int64_t T = 37, H = 3, K = 32, V = 24, t1 = 15;
    gka_prob p;
    prob_make(&p, 1, T, H, K, V, 1);
    const size_t no = T * H * V, nkk = H * K * K, nkv = H * K * V;
    float *o = tu_alloc(no), *kk = tu_alloc(nkk), *kv = tu_alloc(nkv);
    float *o2 = tu_alloc(no), *kk2 = tu_alloc(nkk), *kv2 = tu_alloc(nkv);
    for (int i = 0; i <= n; i++) {
        const char *isa = i < n ? isas[i] : "ref";
        linattn_ctx *c = tu_ctx(isa, 2);
        ck_assert_int_eq(run(c, &p, NULL, o, kk, kv), 0);
        /* split: [0, t1) from h0, then [t1, T) from the carried state */
        gka_prob a = p, b = p;
        a.T = t1;
        b.T = T - t1;
        b.q += t1 * H * K; b.k += t1 * H * K; b.v += t1 * H * V;
        b.g += t1 * H; b.beta += t1 * H; b.alpha += t1 * H;
        float *kkm = tu_alloc(nkk), *kvm = tu_alloc(nkv);
        ck_assert_int_eq(run(c, &a, NULL, o2, kkm, kvm), 0);
        b.hkk = kkm;
        b.hkv = kvm;
        ck_assert_int_eq(run(c, &b, NULL, o2 + t1 * H * V, kk2, kv2), 0);
        if (i < n) /* float kernels carry the state in float: bit for bit */
            ck_assert_msg(!memcmp(o, o2, sizeof(float) * no) &&
                          !memcmp(kk, kk2, sizeof(float) * nkk) &&
                          !memcmp(kv, kv2, sizeof(float) * nkv), "%s: split differs", isa);
        else /* the reference rounds its double state to float at the split */
            ck_assert_msg(tu_relerr(o2, o, no) < 1e-6 && tu_relerr(kk2, kk, nkk) < 1e-6,
                          "ref: split differs");
        /* steps */
        memcpy(kkm, p.hkk, sizeof(float) * nkk);
        memcpy(kvm, p.hkv, sizeof(float) * nkv);
        for (int64_t t = 0; t < T; t++) {
            linattn_gka_step_io s = {
                .q = linattn_tensor_3d(p.q + t * H * K, 1, H, K),
                .k = linattn_tensor_3d(p.k + t * H * K, 1, H, K),
                .v = linattn_tensor_3d(p.v + t * H * V, 1, H, V),
                .g = linattn_tensor_2d(p.g + t * H, 1, H),
                .beta = linattn_tensor_2d(p.beta + t * H, 1, H),
                .alpha = linattn_tensor_2d(p.alpha + t * H, 1, H),
                .state_kk = linattn_tensor_4d(kkm, 1, H, K, K),
                .state_kv = linattn_tensor_4d(kvm, 1, H, K, V),
                .o = linattn_tensor_3d(o2 + t * H * V, 1, H, V)};
            tu_poison(o2 + t * H * V, H * V);
            ck_assert_int_eq(linattn_gka_step(c, &s, NULL), 0);
        }
        if (i < n)
            ck_assert_msg(!memcmp(o, o2, sizeof(float) * no) &&
                          !memcmp(kk, kkm, sizeof(float) * nkk) &&
                          !memcmp(kv, kvm, sizeof(float) * nkv), "%s: steps differ", isa);
        else
            ck_assert_msg(tu_relerr(o2, o, no) < 1e-6 && tu_relerr(kkm, kk, nkk) < 1e-6,
                          "ref: steps differ");
        free(kkm);
        free(kvm);
        linattn_ctx_destroy(c);
        /* thread counts */
        for (int nt = 1; nt <= 4; nt += 3) {
            c = tu_ctx(isa, nt);
            ck_assert_int_eq(run(c, &p, NULL, o2, kk2, kv2), 0);
            ck_assert_msg(!memcmp(o, o2, sizeof(float) * no), "%s: %d threads differ", isa, nt);
            linattn_ctx_destroy(c);
        }
    }
    free(o); free(kk); free(kv); free(o2); free(kk2); free(kv2);
    prob_free(&p);
}
END_TEST

/* OpenCL's chunk form against the double reference: packed sequences of
 * lengths around its chunk (T < C, odd T, several chunks) from given states,
 * chunk sizes, windows of a few chunks; the form each call ran.  K = 18 takes
 * the kernel's one-column tiles (K not a multiple of 4), K = 160 a smaller
 * chunk (32 would not fit in local memory). */
static const int64_t CL_KV[][2] = {{32, 24}, {18, 10}, {160, 40}};

START_TEST(test_opencl_chunk)
{
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    int have = 0;
    for (int i = 0; i < n; i++) have |= !strcmp(isas[i], "opencl");
    if (!have) return;
    static const int64_t cu[] = {0, 1, 32, 64, 97, 167, 172};
    const int64_t N = 6, T = 172, H = 2, K = CL_KV[_i][0], V = CL_KV[_i][1];
    gka_prob p;
    prob_make(&p, 1, T, H, K, V, 0);
    gka_prob st;
    prob_make(&st, N, 1, H, K, V, 1); /* its hkk/hkv: N initial states */
    const size_t no = T * H * V, nkk = N * H * K * K, nkv = N * H * K * V;
    float *o0 = tu_alloc(no), *kk0 = tu_alloc(nkk), *kv0 = tu_alloc(nkv);
    float *o1 = tu_alloc(no), *kk1 = tu_alloc(nkk), *kv1 = tu_alloc(nkv);
    linattn_gka_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(p.q, 1, T, H, K);
    io.k = linattn_tensor_4d(p.k, 1, T, H, K);
    io.v = linattn_tensor_4d(p.v, 1, T, H, V);
    io.g = linattn_tensor_3d(p.g, 1, T, H);
    io.beta = linattn_tensor_3d(p.beta, 1, T, H);
    io.alpha = linattn_tensor_3d(p.alpha, 1, T, H);
    io.kk0 = linattn_tensor_4d(st.hkk, N, H, K, K);
    io.kv0 = linattn_tensor_4d(st.hkv, N, H, K, V);
    io.cu_seqlens = cu;
    io.n_seqs = N;
    io.o = linattn_tensor_4d(o0, 1, T, H, V);
    io.kkT = linattn_tensor_4d(kk0, N, H, K, K);
    io.kvT = linattn_tensor_4d(kv0, N, H, K, V);
    linattn_ctx *ref = tu_ctx("ref", 2);
    ck_assert_int_eq(linattn_gka_forward(ref, &io, NULL), 0);
    linattn_ctx_destroy(ref);
    io.o.data = o1;
    io.kkT.data = kk1;
    io.kvT.data = kv1;
    linattn_ctx *c = tu_ctx("opencl", 1);
    static const struct { int algo, chunk; const char *win, *form; } runs[] = {
        {LINATTN_ALGO_AUTO, 0, NULL, NULL}, {LINATTN_ALGO_CHUNK, 0, "2", "chunk"},
        {LINATTN_ALGO_CHUNK, 7, NULL, "chunk"}, {LINATTN_ALGO_CHUNK, 16, "1", "chunk"},
        {LINATTN_ALGO_CHUNK, 1, "3", "chunk"}, {LINATTN_ALGO_RECURRENT, 0, NULL, "recurrent"},
    };
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        linattn_gka_opts opts;
        linattn_gka_opts_init(&opts);
        opts.algo = (linattn_algo)runs[r].algo;
        opts.chunk = runs[r].chunk;
        if (runs[r].win) setenv("LINATTN_CL_GKA_WINDOW", runs[r].win, 1);
        else unsetenv("LINATTN_CL_GKA_WINDOW");
        tu_poison(o1, no);
        tu_poison(kk1, nkk);
        tu_poison(kv1, nkv);
        ck_assert_int_eq(linattn_gka_forward(c, &io, &opts), 0);
        if (runs[r].form) /* auto: either, by the device (linattn_gka(3)) */
            ck_assert_str_eq(linattn_ctx_last_form(c), runs[r].form);
        const double eo = tu_relerr(o1, o0, no), ek = tu_relerr(kk1, kk0, nkk),
                     ev = tu_relerr(kv1, kv0, nkv);
        ck_assert_msg(eo < TOL && ek < TOL && ev < TOL, "K %d run %d: o %g H %g U %g", (int)K,
                      (int)r, eo, ek, ev);
    }
    unsetenv("LINATTN_CL_GKA_WINDOW");
    /* auto: a sequence shorter than a chunk runs the recurrence */
    io.cu_seqlens = NULL;
    io.n_seqs = 0;
    io.q.shape[1] = io.k.shape[1] = io.v.shape[1] = io.o.shape[1] = 20;
    io.g.shape[1] = io.beta.shape[1] = io.alpha.shape[1] = 20;
    io.kk0 = io.kv0 = linattn_tensor_none();
    io.kkT = linattn_tensor_4d(kk1, 1, H, K, K);
    io.kvT = linattn_tensor_4d(kv1, 1, H, K, V);
    ck_assert_int_eq(linattn_gka_forward(c, &io, NULL), 0);
    ck_assert_str_eq(linattn_ctx_last_form(c), "recurrent");
    linattn_ctx_destroy(c);
    free(o0); free(kk0); free(kv0); free(o1); free(kk1); free(kv1);
    prob_free(&p);
    prob_free(&st);
}
END_TEST

/* with alpha = 0 gka is gla on the keys and values scaled by beta */
START_TEST(test_alpha0_is_gla)
{
    const int64_t T = 50, H = 2, K = 32, V = 40;
    gka_prob p;
    prob_make(&p, 1, T, H, K, V, 0);
    memset(p.alpha, 0, sizeof(float) * T * H);
    const size_t no = T * H * V, nkk = H * K * K, nkv = H * K * V;
    float *o = tu_alloc(no), *kk = tu_alloc(nkk), *kv = tu_alloc(nkv), *o2 = tu_alloc(no);
    float *kb = tu_alloc(T * H * K), *vb = tu_alloc(T * H * V);
    for (int64_t r = 0; r < T * H; r++) {
        for (int i = 0; i < K; i++) kb[r * K + i] = p.beta[r] * p.k[r * K + i];
        for (int j = 0; j < V; j++) vb[r * V + j] = p.beta[r] * p.v[r * V + j];
    }
    linattn_ctx *c = tu_ctx("ref", 1);
    ck_assert_int_eq(run(c, &p, NULL, o, kk, kv), 0);
    linattn_delta_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(p.q, 1, T, H, K);
    io.k = linattn_tensor_4d(kb, 1, T, H, K);
    io.v = linattn_tensor_4d(vb, 1, T, H, V);
    io.g = linattn_tensor_3d(p.g, 1, T, H);
    io.o = linattn_tensor_4d(o2, 1, T, H, V);
    tu_poison(o2, no);
    ck_assert_int_eq(linattn_gla_forward(c, &io, NULL), 0);
    const double e = tu_relerr(o, o2, no);
    ck_assert_msg(e < 1e-6, "alpha = 0 vs gla: %g", e);
    linattn_ctx_destroy(c);
    free(o); free(kk); free(kv); free(o2); free(kb); free(vb);
    prob_free(&p);
}
END_TEST

/* The solve against a direct Cholesky solve (double, written here) of the
 * same system, one token at a time on the state the reference returns:
 * with iters = 80 the output matches to 1e-4; at 30 the solution's error in
 * the A-norm stays within the Chebyshev bound of linattn_gka(3) (3.2e-4 at
 * a = 0.02), measured on the test's own double iterate, which the library's
 * output must also match. */
static void cholesky_solve(const double *A, int n, const double *b, double *x, double *L)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double s = A[i * n + j];
            for (int k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
            L[i * n + j] = i == j ? sqrt(s) : s / L[j * n + j];
        }
    for (int i = 0; i < n; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++) s -= L[i * n + k] * x[k];
        x[i] = s / L[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = x[i];
        for (int k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
        x[i] = s / L[i * n + i];
    }
}

static double anorm(const double *A, const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) s += x[i] * A[i * n + j] * x[j];
    return sqrt(s);
}

START_TEST(test_solve_accuracy)
{
    const int K = 32, V = 16, T = 24;
    const double a = 0.02;
    gka_prob p;
    prob_make(&p, 1, T, 1, K, V, 0);
    /* correlated keys make the system harder: mix each key with the first */
    for (int t = 1; t < T; t++)
        for (int i = 0; i < K; i++) p.k[t * K + i] = 0.7f * p.k[i] + 0.3f * p.k[t * K + i];
    tu_l2norm_rows(p.k, T, K);
    for (int t = 0; t < T; t++) p.alpha[t] = 1.0f;
    double *A = malloc(sizeof(double) * K * K), *L = malloc(sizeof(double) * K * K);
    double *U = malloc(sizeof(double) * K * V), *xs = malloc(sizeof(double) * K);
    double *xc = malloc(sizeof(double) * K), *xp = malloc(sizeof(double) * K);
    double *xn = malloc(sizeof(double) * K), *b = malloc(sizeof(double) * K);
    float *o = tu_alloc(T * V), *kk = tu_alloc(K * K), *kv = tu_alloc(K * V);
    ck_assert(A && L && U && xs && xc && xp && xn && b);
    for (int it = 30; it <= 80; it += 50) {
        linattn_gka_opts opts;
        linattn_gka_opts_init(&opts);
        opts.iters = it;
        for (int pass = 0; pass < 2; pass++) {
            linattn_ctx *c = tu_ctx(pass ? "scalar" : "ref", 1);
            ck_assert_int_eq(run(c, &p, &opts, o, kk, kv), 0);
            linattn_ctx_destroy(c);
            /* the state after the last token: A = H + a|H| I, U */
            double f = 0;
            for (int i = 0; i < K * K; i++) f += (double)kk[i] * kk[i];
            f = sqrt(f);
            for (int i = 0; i < K * K; i++) A[i] = kk[i] + (i % (K + 1) == 0 ? a * f : 0.0);
            for (int i = 0; i < K * V; i++) U[i] = kv[i];
            const float *q = p.q + (T - 1) * K;
            for (int i = 0; i < K; i++) b[i] = q[i];
            cholesky_solve(A, K, b, xs, L);
            /* the test's own Chebyshev iterate in double */
            const double rho = 1 / (1 + 2 * a), tau = 2 / ((1 + 2 * a) * f), lam = a * f;
            double w = 2;
            for (int i = 0; i < K; i++) { xp[i] = 0; xc[i] = tau * b[i]; }
            for (int n = 0; n < it; n++) {
                w = 1 / (1 - rho * rho / 4 * w);
                for (int i = 0; i < K; i++) {
                    double r = -b[i];
                    for (int j = 0; j < K; j++) r += (A[i * K + j]) * xc[j];
                    xn[i] = w * (xc[i] - tau * r) + (1 - w) * xp[i];
                }
                memcpy(xp, xc, sizeof(double) * K);
                memcpy(xc, xn, sizeof(double) * K);
            }
            (void)lam;
            for (int i = 0; i < K; i++) xn[i] = xc[i] - xs[i];
            const double err = anorm(A, xn, K) / anorm(A, xs, K);
            const double r = (sqrt(1 + 1 / a) - 1) / (sqrt(1 + 1 / a) + 1);
            const double bound = 2 * pow(r, it + 1) / (1 + pow(r, 2 * (it + 1)));
            ck_assert_msg(err <= bound * 1.01 + 1e-12, "iters %d: A-norm error %g above bound %g",
                          it, err, bound);
            /* the library's last output against U^T x for both solutions */
            const float *ol = o + (T - 1) * V;
            double dc = 0, ds = 0, nn = 0;
            const double sc = 1 / sqrt((double)K);
            for (int j = 0; j < V; j++) {
                double yc = 0, ys = 0;
                for (int i = 0; i < K; i++) {
                    yc += U[i * V + j] * xc[i];
                    ys += U[i * V + j] * xs[i];
                }
                yc *= sc;
                ys *= sc;
                dc += (ol[j] - yc) * (ol[j] - yc);
                ds += (ol[j] - ys) * (ol[j] - ys);
                nn += ys * ys;
            }
            ck_assert_msg(sqrt(dc / nn) < 1e-4, "iters %d pass %d: output vs own iterate %g", it,
                          pass, sqrt(dc / nn));
            if (it == 80)
                ck_assert_msg(sqrt(ds / nn) < 1e-4, "iters 80 pass %d: output vs Cholesky %g",
                              pass, sqrt(ds / nn));
        }
    }
    free(A); free(L); free(U); free(xs); free(xc); free(xp); free(xn); free(b);
    free(o); free(kk); free(kv);
    prob_free(&p);
}
END_TEST

/* all-zero keys leave H = 0; x = 0 and the output is finite */
START_TEST(test_zero_keys)
{
    const int64_t T = 5, H = 1, K = 16, V = 8;
    gka_prob p;
    prob_make(&p, 1, T, H, K, V, 0);
    memset(p.k, 0, sizeof(float) * T * K);
    float *o = tu_alloc(T * V), *kk = tu_alloc(K * K), *kv = tu_alloc(K * V);
    const char *isas[8];
    const int n = tu_isas(isas, 8);
    for (int i = 0; i <= n; i++) {
        linattn_ctx *c = tu_ctx(i < n ? isas[i] : "ref", 1);
        ck_assert_int_eq(run(c, &p, NULL, o, kk, kv), 0);
        for (int j = 0; j < T * V; j++) ck_assert_msg(o[j] == 0.0f, "o[%d] = %g", j, o[j]);
        linattn_ctx_destroy(c);
    }
    free(o); free(kk); free(kv);
    prob_free(&p);
}
END_TEST

/* bad arguments: distinct codes, the argument named, outputs untouched */
START_TEST(test_bad_args)
{
    const int64_t T = 4, H = 2, K = 8, V = 8;
    gka_prob p;
    prob_make(&p, 1, T, H, K, V, 1);
    float *o = tu_alloc(T * H * V), *kk = tu_alloc(H * K * K), *kv = tu_alloc(H * K * V);
    linattn_ctx *c = tu_ctx("scalar", 1);
    linattn_gka_opts opts;
    linattn_gka_opts_init(&opts);
    opts.ridge = 0;
    ck_assert_int_eq(run(c, &p, &opts, o, kk, kv), LINATTN_ERANGE);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "ridge"));
    opts.ridge = 0.02f;
    opts.iters = 0;
    ck_assert_int_eq(run(c, &p, &opts, o, kk, kv), LINATTN_ERANGE);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "iters"));
    for (size_t i = 0; i < (size_t)(T * H * V); i++) ck_assert(o[i] != o[i]);
    gka_prob q = p;
    q.hkv = NULL; /* kk0 without kv0 */
    ck_assert_int_eq(run(c, &q, NULL, o, kk, kv), LINATTN_EINVAL);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "kv0"));
    ck_assert_int_eq(linattn_gka_forward(c, NULL, NULL), LINATTN_ENULL);
    linattn_gka_step_io s;
    memset(&s, 0, sizeof s);
    s.q = linattn_tensor_3d(p.q, 1, H, K);
    s.k = linattn_tensor_3d(p.k, 1, H, K);
    s.v = linattn_tensor_3d(p.v, 1, H, V);
    s.o = linattn_tensor_3d(o, 1, H, V);
    ck_assert_int_eq(linattn_gka_step(c, &s, NULL), LINATTN_ENULL);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "state_kk"));
    s.state_kk = linattn_tensor_4d(kk, 1, H, K, K + 1);
    s.state_kv = linattn_tensor_4d(kv, 1, H, K, V);
    ck_assert_int_eq(linattn_gka_step(c, &s, NULL), LINATTN_ESHAPE);
    ck_assert_ptr_nonnull(strstr(linattn_last_error(), "state_kk"));
    linattn_ctx_destroy(c);
    free(o); free(kk); free(kv);
    prob_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gka");
    TCase *tc = tcase_create("gka");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_vs_reference, 0, NSHAPES);
    tcase_add_test(tc, test_chunk_sizes);
    tcase_add_loop_test(tc, test_opencl_chunk, 0, 3);
    tcase_add_test(tc, test_split_step_threads);
    tcase_add_test(tc, test_alpha0_is_gla);
    tcase_add_test(tc, test_solve_accuracy);
    tcase_add_test(tc, test_zero_keys);
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
