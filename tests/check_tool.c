/* linattn tests - linattn-run end to end: .npy in, .npy out, against
 * independent float64 recurrences written here from linattn_gdn(3),
 * linattn_gka(3), linattn_kalman(3) and linattn_ela(3), and causal softmax
 * attention from its definition. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

static char dir[64];

static const char *tool(void)
{
    const char *t = getenv("LINATTN_RUN");
    return t ? t : "../tools/linattn-run";
}

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void save(const char *sub, const char *name, const float *x, int nd, const int64_t *s)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s/%s.npy", dir, sub, name);
    ck_assert_msg(linattn_npy_save(p, x, nd, s) == 0, "%s", linattn_last_error());
}

static float *load(const char *sub, const char *name, size_t count)
{
    char p[256];
    linattn_array a;
    snprintf(p, sizeof p, "%s/%s/%s.npy", dir, sub, name);
    ck_assert_msg(linattn_npy_load(p, &a) == 0, "%s", linattn_last_error());
    ck_assert_uint_eq(a.count, count);
    return a.data;
}

/* float64 recurrence straight from the definition: decay, write, read. */
static void oracle(int op, int64_t B, int64_t T, int64_t H, int64_t K, int64_t V,
                   const float *q, const float *k, const float *v, const float *g,
                   const float *beta, const float *h0, double eps, double *o, double *ht)
{
    double *S = malloc(sizeof(double) * K * V), *d = malloc(sizeof(double) * V);
    ck_assert_ptr_nonnull(S);
    ck_assert_ptr_nonnull(d);
    const double scale = 1.0 / sqrt((double)K);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t x = 0; x < K * V; x++) S[x] = h0 ? h0[((b * H + h) * K * V) + x] : 0.0;
            for (int64_t t = 0; t < T; t++) {
                const int64_t r = (b * T + t) * H + h;
                const float *qt = q + r * K, *kt = k + r * K, *vt = v + r * V;
                const double decay = exp((double)g[r]);
                double bt = 1.0;
                if (op == 1) {
                    double nn = 0;
                    for (int64_t i = 0; i < K; i++) nn += (double)kt[i] * kt[i];
                    bt = beta[r] / (nn + eps);
                } else if (op == 0) {
                    bt = beta[r];
                }
                for (int64_t x = 0; x < K * V; x++) S[x] *= decay;
                for (int64_t j = 0; j < V; j++) {
                    double pred = 0;
                    if (op != 2)
                        for (int64_t i = 0; i < K; i++) pred += S[i * V + j] * kt[i];
                    d[j] = bt * (vt[j] - pred);
                }
                for (int64_t i = 0; i < K; i++)
                    for (int64_t j = 0; j < V; j++) S[i * V + j] += kt[i] * d[j];
                for (int64_t j = 0; j < V; j++) {
                    double acc = 0;
                    for (int64_t i = 0; i < K; i++) acc += S[i * V + j] * qt[i];
                    o[r * V + j] = scale * acc;
                }
            }
            for (int64_t x = 0; x < K * V; x++) ht[(b * H + h) * K * V + x] = S[x];
        }
    free(S);
    free(d);
}

static double rms_rel(const float *x, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return INFINITY;
        num += (x[i] - ref[i]) * (x[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return sqrt(num / den);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/linattn-tool-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(sh("mkdir -p %s/in", dir), 0);
}

static void teardown(void) { sh("rm -rf %s", dir); }

typedef struct tcase_shape { int64_t B, T, H, K, V; int h0; } tcase_shape;
/* T = 1 over 8 heads: with no state all of a head's outputs carry one k.q,
 * which may cancel; the error is measured over all heads at once */
static const tcase_shape CASES[] = {
    {1, 1, 8, 16, 16, 0}, {2, 65, 4, 32, 24, 1}, {1, 1000, 2, 64, 64, 1}, {2, 130, 3, 48, 64, 0},
};

/* 1 if this build has BLAS, which the chunkwise CPU forms need; without it
 * the tool must refuse them (exit 1, LINATTN_EUNSUPPORTED). */
static int have_chunk_form(void) { return strncmp(linattn_blas_info(), "none", 4) != 0; }

START_TEST(test_run_matches_float64)
{
    static const char *const ops[] = {"gdn", "kla", "gla"};
    static const char *const modes[] = {"--backend ref", "--backend cpu",
                                        "--backend cpu --algo chunk", "--chunk 16"};
    const int op = _i % 3;
    const tcase_shape *c = &CASES[_i / 3];
    const int64_t B = c->B, T = c->T, H = c->H, K = c->K, V = c->V;
    tu_delta p;
    tu_delta_make(&p, op, B, T, H, K, V, c->h0, -0.5);
    const int64_t s4q[4] = {B, T, H, K}, s4v[4] = {B, T, H, V}, s3[3] = {B, T, H},
                  s4h[4] = {B, H, K, V};
    save("in", "q", p.q, 4, s4q);
    save("in", "k", p.k, 4, s4q);
    save("in", "v", p.v, 4, s4v);
    save("in", "g", p.g, 3, s3);
    if (op != 2) save("in", op == 1 ? "eta" : "beta", p.beta, 3, s3);
    if (c->h0) save("in", "h0", p.h0, 4, s4h);
    const size_t no = B * T * H * V, nh = B * H * K * V;
    double *ro = malloc(sizeof(double) * no), *rh = malloc(sizeof(double) * nh);
    ck_assert_ptr_nonnull(ro);
    ck_assert_ptr_nonnull(rh);
    oracle(op, B, T, H, K, V, p.q, p.k, p.v, p.g, p.beta, p.h0, 1e-6, ro, rh);
    for (int m = 0; m < 4; m++) {
        sh("rm -rf %s/out", dir);
        const int rc = sh("%s %s --in %s/in --out %s/out %s%s", tool(), ops[op], dir, dir, modes[m],
                          m >= 2 && !have_chunk_form() ? " 2>/dev/null" : "");
        if (m >= 2 && !have_chunk_form()) { /* modes 2 and 3 ask for the chunk form */
            ck_assert_msg(rc == 1, "linattn-run %s %s without BLAS exited %d", ops[op], modes[m], rc);
            continue;
        }
        ck_assert_msg(rc == 0, "linattn-run %s %s exited %d", ops[op], modes[m], rc);
        float *o = load("out", "o", no), *ht = load("out", "hT", nh);
        const double eo = rms_rel(o, ro, no), eh = rms_rel(ht, rh, nh);
        ck_assert_msg(eo < 1e-4 && eh < 1e-4, "%s %s T=%lld: o %.2e ht %.2e", ops[op],
                      modes[m], (long long)T, eo, eh);
        free(o);
        free(ht);
    }
    free(ro);
    free(rh);
    tu_delta_free(&p);
}
END_TEST

/* Zero inputs of B=1, T=3, H=1, K=V=4 into in/: q k v g beta (gka: and alpha). */
static void save_tiny(int gka)
{
    const int64_t s4[4] = {1, 3, 1, 4}, s3[3] = {1, 3, 1};
    static const float x[64] = {0};
    save("in", "q", x, 4, s4);
    save("in", "k", x, 4, s4);
    save("in", "v", x, 4, s4);
    save("in", "g", x, 3, s3);
    save("in", "beta", x, 3, s3);
    if (gka) save("in", "alpha", x, 3, s3);
}

START_TEST(test_run_rejects)
{
    const int64_t s3[3] = {1, 3, 1}, s4b[4] = {1, 3, 1, 5};
    float x[64] = {0};
    save_tiny(0);
    /* valid baseline */
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/out 2>/dev/null", tool(), dir, dir), 0);
    /* usage errors: exit 2 */
    ck_assert_int_eq(sh("%s bogus --in %s/in --out %s/out 2>/dev/null", tool(), dir, dir), 2);
    ck_assert_int_eq(sh("%s gdn --in %s/in 2>/dev/null", tool(), dir), 2);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --threads 0 2>/dev/null", tool(), dir, dir), 2);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --eps -1 2>/dev/null", tool(), dir, dir), 2);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --backend gpu 2>/dev/null", tool(), dir, dir), 2);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --chunk x 2>/dev/null", tool(), dir, dir), 2);
    ck_assert_int_eq(sh("%s --help >/dev/null", tool()), 0);
    /* missing input: kla wants eta */
    ck_assert_int_eq(sh("%s kla --in %s/in --out %s/o2 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'eta.npy' %s/err", dir), 0);
    /* wrong dtype: a float64 file */
    ck_assert_int_eq(sh("printf '\\223NUMPY\\001\\000\\106\\000{\"descr\": \"<f8\", "
                        "\"fortran_order\": False, \"shape\": (1,3,1,1), }' > %s/in/g.npy; "
                        "head -c 24 /dev/zero >> %s/in/g.npy", dir, dir), 0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o3 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'float32' %s/err", dir), 0);
    ck_assert_int_ne(sh("test -e %s/o3/o.npy", dir), 0);
    save("in", "g", x, 3, s3);
    /* mismatched shapes: k with another key size */
    save("in", "k", x, 4, s4b);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o4 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'k.npy: k: dimension 3 (K of \\[BTJK\\]) is 5, but q.npy gives K = 4' "
                        "%s/err", dir), 0);
    ck_assert_int_ne(sh("test -e %s/o4/o.npy", dir), 0);
}
END_TEST

/* Files in the input directory that the operator does not take are errors
 * (a typo must not silently run from a zero state). */
START_TEST(test_run_unknown_files)
{
    const int64_t s4[4] = {1, 3, 1, 1};
    float x[4] = {0};
    save_tiny(0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/out 2>/dev/null", tool(), dir, dir), 0);
    save("in", "h_0", x, 4, s4); /* a typo of h0 */
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o1 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q \"h_0.npy: gdn takes no input 'h_0'\" %s/err", dir), 0);
    ck_assert_int_eq(sh("grep -q 'q k v \\[g\\] beta \\[h0\\]' %s/err", dir), 0);
    ck_assert_int_ne(sh("test -e %s/o1", dir), 0);
    sh("rm -f %s/in/h_0.npy", dir);
    /* eta given to gdn, beta given to gla: refused */
    sh("cp %s/in/beta.npy %s/in/eta.npy", dir, dir);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o2 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q \"gdn takes no input 'eta'.*gdn takes beta.npy in its place\" %s/err",
                        dir), 0);
    sh("rm -f %s/in/eta.npy", dir);
    ck_assert_int_eq(sh("%s gla --in %s/in --out %s/o2 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q \"gla takes no input 'beta'\" %s/err", dir), 0);
    /* kla given beta hints that kla takes eta */
    ck_assert_int_eq(sh("%s kla --in %s/in --out %s/o2 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'kla takes eta.npy in its place' %s/err", dir), 0);
    ck_assert_int_ne(sh("test -e %s/o2", dir), 0);
}
END_TEST

/* Messages as exact as the library's: a zero-size dimension is named with
 * its letter, getopt errors carry the tool's name (not its path). */
START_TEST(test_run_messages)
{
    const int64_t s0[4] = {1, 0, 1, 1};
    float x[4] = {0};
    save_tiny(0);
    save("in", "q", x, 4, s0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'q.npy: dimension 1 (T of \\[BTQK\\]) is 0' %s/err", dir), 0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --bogus 2>%s/err", tool(), dir, dir, dir), 2);
    ck_assert_int_eq(sh("grep -q '^linattn-run: --bogus' %s/err", dir), 0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --scale 2>%s/err", tool(), dir, dir, dir), 2);
    ck_assert_int_eq(sh("grep -q '^linattn-run: ' %s/err", dir), 0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --chunk 0 2>%s/err", tool(), dir, dir, dir), 2);
    ck_assert_int_eq(sh("grep -q -- '--chunk 0' %s/err", dir), 0);
}
END_TEST

/* Outputs: all or none, their directory created with its parents, and
 * every failure saying why. */
START_TEST(test_outputs_atomic)
{
    save_tiny(0);
    /* getopt's messages name the tool, not the path it was run by */
    ck_assert_int_eq(sh("%s --bogus 2>%s/err", tool(), dir), 2);
    ck_assert_int_eq(sh("head -n 1 %s/err | grep -q '^linattn-run: '", dir), 0);
    /* --out with missing parents, then again over the outputs written */
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/a/b/c 2>%s/err", tool(), dir, dir, dir), 0);
    ck_assert_int_eq(sh("test -f %s/a/b/c/o.npy && test -f %s/a/b/c/hT.npy", dir, dir), 0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/a/b/c/ 2>%s/err", tool(), dir, dir, dir), 0);
    ck_assert_int_eq(sh("test \"$(ls -A %s/a/b/c | tr '\\n' ' ')\" = 'hT.npy o.npy '", dir), 0);
    /* a parent that is a file: the message names it and says why */
    ck_assert_int_eq(sh("touch %s/f", dir), 0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/f/x/y 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q '%s/f: %s' %s/err", dir, strerror(ENOTDIR), dir), 0);
    /* an output directory that cannot be written (root writes anyway) */
    if (geteuid() != 0) {
        ck_assert_int_eq(sh("mkdir %s/ro && chmod 555 %s/ro", dir, dir), 0);
        ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/ro 2>%s/err", tool(), dir, dir, dir), 1);
        ck_assert_int_eq(sh("grep -q '%s' %s/err", strerror(EACCES), dir), 0);
        ck_assert_int_eq(sh("test \"$(ls -A %s/ro)\" = ''", dir), 0);
    }
    /* the second output cannot be written (a directory has its name): no
     * o.npy, no temporary file left */
    ck_assert_int_eq(sh("mkdir -p %s/o5/hT.npy", dir), 0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o5 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'hT.npy: %s' %s/err", strerror(EISDIR), dir), 0);
    ck_assert_int_eq(sh("test \"$(ls -A %s/o5)\" = hT.npy", dir), 0);
}
END_TEST

/* ---- gka (Gated KalmaNet), as linattn_gka(3) states it --------------- */

typedef struct gka_case {
    int64_t B, T, H, K, V;
    int h0, zero0;        /* initial state files; zero0: see gka_make */
    const char *opts;     /* extra options, with what they set: */
    int iters;
    double ridge, scale;  /* scale 0: 1/sqrt(K) */
} gka_case;

static const gka_case GKA_CASES[] = {
    {4, 1, 8, 16, 16, 0, 0, "", 30, 0.02, 0},
    {2, 65, 3, 32, 24, 0, 0, "", 30, 0.02, 0},
    {1, 130, 2, 48, 64, 1, 1, "", 30, 0.02, 0},
    {2, 40, 2, 32, 16, 1, 0, "--iters 10 --ridge 0.05 --scale 0.3", 10, 0.05, 0.3},
};
#define NGKA ((int)(sizeof GKA_CASES / sizeof *GKA_CASES))

typedef struct gka_data {
    float *q, *k, *v, *g, *beta, *alpha, *hkk, *hkv;
} gka_data;

/* an initial state a previous run could have left: H a sum of outer products */
static void gka_make_h0(const gka_case *c, gka_data *p)
{
    const int64_t K = c->K, n = c->B * c->H;
    p->hkk = tu_alloc(n * K * K);
    p->hkv = tu_alloc(n * K * c->V);
    float *w = tu_alloc(K);
    memset(p->hkk, 0, sizeof(float) * n * K * K);
    for (int64_t u = 0; u < n; u++)
        for (int r = 0; r < 4; r++) {
            tu_fill(w, K, -1, 1);
            tu_l2norm_rows(w, 1, (int)K);
            for (int64_t i = 0; i < K; i++)
                for (int64_t j = 0; j < K; j++) p->hkk[(u * K + i) * K + j] += w[i] * w[j];
        }
    free(w);
    tu_fill(p->hkv, n * K * c->V, -0.5, 0.5);
}

static void gka_make(const gka_case *c, gka_data *p)
{
    const int64_t rows = c->B * c->T * c->H;
    memset(p, 0, sizeof *p);
    p->q = tu_alloc(rows * c->K);
    p->k = tu_alloc(rows * c->K);
    p->v = tu_alloc(rows * c->V);
    p->g = tu_alloc(rows);
    p->beta = tu_alloc(rows);
    p->alpha = tu_alloc(rows);
    tu_fill(p->q, rows * c->K, -1, 1);
    tu_fill(p->k, rows * c->K, -1, 1);
    tu_l2norm_rows(p->q, rows, (int)c->K);
    tu_l2norm_rows(p->k, rows, (int)c->K);
    tu_fill(p->v, rows * c->V, -1, 1);
    tu_fill(p->g, rows, -0.5, 0);
    tu_fill(p->beta, rows, 0.05, 1);
    tu_fill(p->alpha, rows, 0, 1);
    if (c->h0) gka_make_h0(c, p);
    if (c->zero0) { /* batch 0 sees H = 0 at t = 0 but U != 0: the A.6 guard */
        memset(p->k, 0, sizeof(float) * c->H * c->K);
        memset(p->hkk, 0, sizeof(float) * c->H * c->K * c->K);
    }
}

static void gka_free(gka_data *p)
{
    free(p->q); free(p->k); free(p->v); free(p->g); free(p->beta); free(p->alpha);
    free(p->hkk); free(p->hkv);
}

/* x ~ (Hm + a f I)^-1 q, f = |Hm|_F: x(-1) = 0, x(0) = tau q, then `iters`
 * Chebyshev steps with omega_0 = 2, omega_n = 1 / (1 - rho^2/4 omega_{n-1});
 * x = 0 when f < 1e-30.  xp and xn are scratch. */
static void gka_solve(const double *Hm, int64_t K, const float *q, double a, int iters,
                      double *x, double *xp, double *xn)
{
    double f = 0;
    for (int64_t i = 0; i < K * K; i++) f += Hm[i] * Hm[i];
    f = sqrt(f);
    for (int64_t i = 0; i < K; i++) x[i] = xp[i] = 0;
    if (f < 1e-30) return;
    const double lam = a * f, tau = 2 / ((1 + 2 * a) * f), rho = 1 / (1 + 2 * a);
    double w = 2;
    for (int64_t i = 0; i < K; i++) x[i] = tau * q[i];
    for (int n = 1; n <= iters; n++) {
        w = 1 / (1 - rho * rho / 4 * w);
        for (int64_t i = 0; i < K; i++) {
            double r = lam * x[i] - q[i];
            for (int64_t j = 0; j < K; j++) r += Hm[i * K + j] * x[j];
            xn[i] = w * (x[i] - tau * r) + (1 - w) * xp[i];
        }
        memcpy(xp, x, sizeof(double) * K);
        memcpy(x, xn, sizeof(double) * K);
    }
}

/* One (sequence, head) in float64: state Hm [K,K], U [K,V] in, final out. */
static void gka_oracle_head(const gka_case *c, const gka_data *p, int64_t b, int64_t h,
                            double *Hm, double *U, double *o, double *x)
{
    const int64_t K = c->K, V = c->V;
    const double scale = c->scale != 0 ? c->scale : 1 / sqrt((double)K);
    double *kh = x + K, *vh = kh + K, *xp = vh + V, *xn = xp + K;
    for (int64_t t = 0; t < c->T; t++) {
        const int64_t r = (b * c->T + t) * c->H + h;
        const double gam = exp((double)p->g[r]), beta = p->beta[r], al = p->alpha[r];
        for (int64_t i = 0; i < K; i++) kh[i] = beta * p->k[r * K + i];
        for (int64_t j = 0; j < V; j++) vh[j] = beta * p->v[r * V + j];
        for (int64_t i = 0; i < K; i++) {
            for (int64_t j = 0; j < K; j++) Hm[i * K + j] = gam * Hm[i * K + j] + kh[i] * kh[j];
            for (int64_t j = 0; j < V; j++) U[i * V + j] = gam * U[i * V + j] + kh[i] * vh[j];
        }
        const float *q = p->q + r * K;
        gka_solve(Hm, K, q, c->ridge, c->iters, x, xp, xn);
        for (int64_t j = 0; j < V; j++) {
            double acc = 0;
            for (int64_t i = 0; i < K; i++) acc += U[i * V + j] * ((1 - al) * q[i] + al * x[i]);
            o[r * V + j] = scale * acc;
        }
    }
}

static void gka_oracle(const gka_case *c, const gka_data *p, double *o, double *hkk,
                       double *hkv)
{
    const int64_t K = c->K, V = c->V;
    double *x = malloc(sizeof(double) * (4 * K + V));
    ck_assert_ptr_nonnull(x);
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->H; h++) {
            const int64_t u = b * c->H + h;
            double *Hm = hkk + u * K * K, *U = hkv + u * K * V;
            for (int64_t i = 0; i < K * K; i++) Hm[i] = p->hkk ? p->hkk[u * K * K + i] : 0.0;
            for (int64_t i = 0; i < K * V; i++) U[i] = p->hkv ? p->hkv[u * K * V + i] : 0.0;
            gka_oracle_head(c, p, b, h, Hm, U, o, x);
        }
    free(x);
}

static void gka_save(const gka_case *c, const gka_data *p)
{
    const int64_t B = c->B, T = c->T, H = c->H, K = c->K, V = c->V;
    const int64_t sq[4] = {B, T, H, K}, sv[4] = {B, T, H, V}, s3[3] = {B, T, H},
                  skk[4] = {B, H, K, K}, skv[4] = {B, H, K, V};
    save("in", "q", p->q, 4, sq);
    save("in", "k", p->k, 4, sq);
    save("in", "v", p->v, 4, sv);
    save("in", "g", p->g, 3, s3);
    save("in", "beta", p->beta, 3, s3);
    save("in", "alpha", p->alpha, 3, s3);
    if (c->h0) {
        save("in", "kk0", p->hkk, 4, skk);
        save("in", "kv0", p->hkv, 4, skv);
    }
}

START_TEST(test_gka_matches_float64)
{
    static const char *const modes[] = {"--backend ref", "--backend cpu --algo recurrent",
                                        "--backend cpu --chunk 16 --threads 3", ""};
    const gka_case *c = &GKA_CASES[_i];
    gka_data p;
    gka_make(c, &p);
    gka_save(c, &p);
    const size_t no = c->B * c->T * c->H * c->V, nkk = c->B * c->H * c->K * c->K,
                 nkv = c->B * c->H * c->K * c->V;
    double *ro = malloc(sizeof(double) * no), *rkk = malloc(sizeof(double) * nkk),
           *rkv = malloc(sizeof(double) * nkv);
    ck_assert(ro && rkk && rkv);
    gka_oracle(c, &p, ro, rkk, rkv);
    for (int m = 0; m < 4; m++) {
        sh("rm -rf %s/out", dir);
        const int rc = sh("%s gka --in %s/in --out %s/out %s %s%s", tool(), dir, dir, modes[m],
                          c->opts, m == 2 && !have_chunk_form() ? " 2>/dev/null" : "");
        if (m == 2 && !have_chunk_form()) { /* mode 2 asks for the chunk form */
            ck_assert_msg(rc == 1, "linattn-run gka %s without BLAS exited %d", modes[m], rc);
            continue;
        }
        ck_assert_msg(rc == 0, "linattn-run gka %s %s exited %d", modes[m], c->opts, rc);
        float *o = load("out", "o", no), *kk = load("out", "kkT", nkk),
              *kv = load("out", "kvT", nkv);
        const double eo = rms_rel(o, ro, no), ek = rms_rel(kk, rkk, nkk),
                     ev = rms_rel(kv, rkv, nkv);
        ck_assert_msg(eo < 1e-4 && ek < 1e-4 && ev < 1e-4,
                      "gka case %d '%s %s': o %.2e kkT %.2e kvT %.2e", _i, modes[m], c->opts,
                      eo, ek, ev);
        free(o);
        free(kk);
        free(kv);
    }
    free(ro);
    free(rkk);
    free(rkv);
    gka_free(&p);
}
END_TEST

START_TEST(test_gka_rejects)
{
    const int64_t skk[4] = {1, 1, 4, 4};
    float x[64] = {0};
    save_tiny(1);
    /* valid baseline */
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/out 2>/dev/null", tool(), dir, dir), 0);
    ck_assert_int_eq(sh("test -e %s/out/kkT.npy && test -e %s/out/kvT.npy", dir, dir), 0);
    /* usage errors: exit 2, with a message naming the option */
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o --ridge 0 2>%s/err", tool(), dir, dir,
                        dir), 2);
    ck_assert_int_eq(sh("grep -q -- '--ridge' %s/err", dir), 0);
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o --ridge inf 2>/dev/null", tool(), dir,
                        dir), 2);
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o --iters 0 2>/dev/null", tool(), dir, dir), 2);
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o --iters 1001 2>/dev/null", tool(), dir,
                        dir), 2);
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o --chunk 0 2>/dev/null", tool(), dir,
                        dir), 2);
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o --eps 1e-6 2>%s/err", tool(), dir, dir,
                        dir), 2);
    ck_assert_int_eq(sh("grep -q -- '--eps' %s/err", dir), 0);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --ridge 0.1 2>%s/err", tool(), dir, dir,
                        dir), 2);
    ck_assert_int_eq(sh("grep -q -- '--ridge' %s/err", dir), 0);
    ck_assert_int_eq(sh("%s gla --in %s/in --out %s/o --iters 5 2>/dev/null", tool(), dir, dir), 2);
    ck_assert_int_ne(sh("test -e %s/o", dir), 0);
    /* half a state pair: rejected by the operator, nothing written */
    save("in", "kk0", x, 4, skk);
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o2 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'kv0' %s/err", dir), 0);
    ck_assert_int_ne(sh("test -e %s/o2/o.npy", dir), 0);
    sh("rm -f %s/in/kk0.npy", dir);
    /* a misspelt optional input is refused, naming the file and the inputs */
    sh("mv %s/in/alpha.npy %s/in/alpah.npy", dir, dir);
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o3 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'alpah.npy: gka takes no input' %s/err", dir), 0);
    ck_assert_int_eq(sh("grep -q '\\[alpha\\]' %s/err", dir), 0);
    ck_assert_int_ne(sh("test -e %s/o3/o.npy", dir), 0);
    /* alpha absent is alpha = 1 (linattn_gka(3)): the run succeeds */
    sh("rm -f %s/in/alpah.npy", dir);
    ck_assert_int_eq(sh("%s gka --in %s/in --out %s/o3 2>/dev/null", tool(), dir, dir), 0);
}
END_TEST


/* ---- kalman (Kalman linear attention), as linattn_kalman(3) states it --- */

/* The information-form filter of every lane in double, written from the
 * spec: outputs y, yvar [B,T,M] and the final state [B,M,S]. */
static void kalman_oracle(int64_t B, int64_t T, int64_t M, int64_t S, const float *v,
                          const float *lv, const float *k, const float *q, const float *a,
                          const float *p, double *y, double *yv, double *lam, double *eta)
{
    for (int64_t i = 0; i < B * M * S; i++) {
        lam[i] = 1.0;
        eta[i] = 0.0;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t m = 0; m < M; m++) {
                const int64_t r = (b * T + t) * M + m, kr = (b * T + t) * S;
                double sy = 0.0, sv = 0.0;
                for (int64_t s = 0; s < S; s++) {
                    double *l = &lam[(b * M + m) * S + s], *e = &eta[(b * M + m) * S + s];
                    const double aa = a[m * S + s], pp = p[m * S + s], ks = k[kr + s];
                    const double den = aa * aa + pp * *l;
                    *l = *l / den + lv[r] * ks * ks;
                    *e = aa / den * *e + lv[r] * v[r] * ks;
                    sy += q[kr + s] * *e / *l;
                    sv += (double)q[kr + s] * q[kr + s] / *l;
                }
                y[r] = sy;
                yv[r] = sv;
            }
}

START_TEST(test_kalman_matches_float64)
{
    static const char *const modes[] = {"--backend ref", "--backend cpu",
                                        "--backend cpu --algo chunk --chunk 7",
                                        "--backend cpu --threads 3 --algo recurrent"};
    const int64_t B = 2, T = 40, M = 19, S = 8;
    const int64_t s3[3] = {B, T, M}, sk[3] = {B, T, S}, sms[2] = {M, S};
    const size_t ny = B * T * M, nk = B * T * S, ns = B * M * S;
    float *v = tu_alloc(ny), *lv = tu_alloc(ny), *k = tu_alloc(nk), *q = tu_alloc(nk),
          *a = tu_alloc(M * S), *p = tu_alloc(M * S);
    tu_fill(v, ny, -1, 1);
    tu_fill(lv, ny, 0.1, 100);
    tu_fill(k, nk, -0.5, 0.5);
    tu_fill(q, nk, -0.5, 0.5);
    tu_fill(a, M * S, 0.1, 0.9999);
    tu_fill(p, M * S, 1e-6, 1);
    save("in", "v", v, 3, s3);
    save("in", "lam_v", lv, 3, s3);
    save("in", "k", k, 3, sk);
    save("in", "q", q, 3, sk);
    save("in", "decay", a, 2, sms);
    save("in", "noise", p, 2, sms);
    double *y = malloc(sizeof(double) * ny), *yv = malloc(sizeof(double) * ny),
           *l = malloc(sizeof(double) * ns), *e = malloc(sizeof(double) * ns);
    ck_assert(y && yv && l && e);
    kalman_oracle(B, T, M, S, v, lv, k, q, a, p, y, yv, l, e);
    for (int m = 0; m < 4; m++) {
        sh("rm -rf %s/out", dir);
        ck_assert_int_eq(sh("%s kalman --in %s/in --out %s/out %s", tool(), dir, dir, modes[m]), 0);
        float *oy = load("out", "y", ny), *ov = load("out", "yvar", ny),
              *ol = load("out", "lamT", ns), *oe = load("out", "etaT", ns);
        const double ey = rms_rel(oy, y, ny), ev = rms_rel(ov, yv, ny), el = rms_rel(ol, l, ns),
                     ee = rms_rel(oe, e, ns);
        ck_assert_msg(ey < 1e-5 && ev < 1e-5 && el < 1e-5 && ee < 1e-5,
                      "kalman '%s': y %.2e yvar %.2e lamT %.2e etaT %.2e", modes[m], ey, ev, el,
                      ee);
        free(oy); free(ov); free(ol); free(oe);
    }
    /* usage errors exit 2; a decay out of (0,1) is the operator's error, exit 1 */
    ck_assert_int_eq(sh("%s kalman --in %s/in --out %s/o --ridge 0.1 2>%s/err", tool(), dir, dir,
                        dir), 2);
    ck_assert_int_eq(sh("grep -q -- '--ridge' %s/err", dir), 0);
    ck_assert_int_eq(sh("%s kalman --in %s/in --out %s/o --scale 2 2>/dev/null", tool(), dir,
                        dir), 2);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o --chunk 5000 2>/dev/null", tool(), dir,
                        dir), 2);
    a[5] = 1.0f;
    save("in", "decay", a, 2, sms);
    ck_assert_int_eq(sh("%s kalman --in %s/in --out %s/o 2>%s/err", tool(), dir, dir, dir), 1);
    ck_assert_int_eq(sh("grep -q 'decay\\[0,5\\]' %s/err", dir), 0);
    ck_assert_int_ne(sh("test -e %s/o", dir), 0);
    free(v); free(lv); free(k); free(q); free(a); free(p);
    free(y); free(yv); free(l); free(e);
}
END_TEST

/* ---- ela (exact linear attention), as linattn_ela(3) states it ------------ */

typedef struct ela_case {
    const char *feature; /* --feature value */
    int bidir, state;    /* --bidirectional; s0.npy and z0.npy given */
    int64_t T, K, V;     /* B = 2, H = 2 */
} ela_case;

static const ela_case ELA_CASES[] = {
    {"exp", 0, 0, 37, 16, 24},       {"exp", 1, 1, 70, 8, 12},
    {"exp", 0, 1, 1, 16, 8},         {"sqdist_sum", 0, 1, 70, 16, 24},
    {"sqdist_sum", 1, 0, 1, 8, 12},  {"sqdist_sub", 1, 0, 37, 8, 12},
    {"sqdist_sub", 0, 1, 70, 16, 8}, {"elu1", 0, 0, 70, 8, 12},
    {"elu1", 1, 1, 37, 16, 24},      {"identity", 0, 1, 37, 16, 24},
    {"identity", 1, 0, 70, 8, 12},   {"identity", 0, 0, 1, 16, 8},
};
#define NELA ((int)(sizeof ELA_CASES / sizeof *ELA_CASES))

/* F of a map for key size K (sqdist_*: K + 2) */
static int64_t ela_fdim(const char *feature, int64_t K)
{
    return strncmp(feature, "sqdist", 6) ? K : K + 2;
}

/* phi (key = 0) or psi (key = 1) of x [K] into f [F], in double from the
 * definitions: exp; [x, |x|^2, 1] and [+-2x, 1, |x|^2]; elu(x) + 1; x. */
static void ela_phi(const char *feature, int key, int64_t K, const float *x, double *f)
{
    if (!strcmp(feature, "exp")) {
        for (int64_t i = 0; i < K; i++) f[i] = exp((double)x[i]);
    } else if (!strcmp(feature, "elu1")) {
        for (int64_t i = 0; i < K; i++) f[i] = x[i] > 0 ? x[i] + 1.0 : exp((double)x[i]);
    } else if (!strcmp(feature, "identity")) {
        for (int64_t i = 0; i < K; i++) f[i] = x[i];
    } else {
        const double m = !key ? 1.0 : !strcmp(feature, "sqdist_sum") ? 2.0 : -2.0;
        double n2 = 0;
        for (int64_t i = 0; i < K; i++) {
            f[i] = m * x[i];
            n2 += (double)x[i] * x[i];
        }
        f[K] = key ? 1.0 : n2;
        f[K + 1] = key ? n2 : 1.0;
    }
}

/* o[r] = phi(q[r])^T S / max(phi(q[r])^T z, 1e-8); f is scratch [F] */
static void ela_read(const char *feature, int64_t K, int64_t F, int64_t V, const float *q,
                     const double *S, const double *z, double *o, double *f)
{
    double den = 0;
    ela_phi(feature, 0, K, q, f);
    for (int64_t i = 0; i < F; i++) den += f[i] * z[i];
    den = den > 1e-8 ? den : 1e-8;
    for (int64_t j = 0; j < V; j++) {
        double num = 0;
        for (int64_t i = 0; i < F; i++) num += f[i] * S[i * V + j];
        o[j] = num / den;
    }
}

/* y_i = phi(q_i)^T S / max(phi(q_i)^T z, 1e-8) with S = s0 + sum psi(k_j) v_j^T,
 * z = z0 + sum psi(k_j) over j <= i (bidirectional: every j); st, zt final. */
static void ela_oracle(const ela_case *c, int64_t B, int64_t H, const float *q, const float *k,
                       const float *v, const float *s0, const float *z0, double *o, double *st,
                       double *zt)
{
    const int64_t T = c->T, K = c->K, V = c->V, F = ela_fdim(c->feature, K);
    double *f = malloc(sizeof(double) * F);
    ck_assert_ptr_nonnull(f);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t u = b * H + h;
            double *S = st + u * F * V, *z = zt + u * F;
            for (int64_t x = 0; x < F * V; x++) S[x] = s0 ? s0[u * F * V + x] : 0.0;
            for (int64_t x = 0; x < F; x++) z[x] = z0 ? z0[u * F + x] : 0.0;
            for (int64_t t = 0; t < T; t++) { /* write token t; causal: then read it */
                const int64_t r = (b * T + t) * H + h;
                ela_phi(c->feature, 1, K, k + r * K, f);
                for (int64_t i = 0; i < F; i++) {
                    z[i] += f[i];
                    for (int64_t j = 0; j < V; j++) S[i * V + j] += f[i] * v[r * V + j];
                }
                if (!c->bidir) ela_read(c->feature, K, F, V, q + r * K, S, z, o + r * V, f);
            }
            for (int64_t t = 0; c->bidir && t < T; t++) { /* every token reads the final sums */
                const int64_t r = (b * T + t) * H + h;
                ela_read(c->feature, K, F, V, q + r * K, S, z, o + r * V, f);
            }
        }
    free(f);
}

START_TEST(test_ela_matches_float64)
{
    static const char *const modes[] = {"--backend ref", "--backend cpu",
                                        "--backend cpu --algo chunk --chunk 16",
                                        "--backend cpu --threads 3 --algo recurrent",
                                        "--backend opencl"}; /* where a device is usable */
    const ela_case *c = &ELA_CASES[_i];
    const int64_t B = 2, H = 2, T = c->T, K = c->K, V = c->V, F = ela_fdim(c->feature, K);
    const int ident = !strcmp(c->feature, "identity");
    const size_t nq = B * T * H * K, nv = B * T * H * V, nst = B * H * F * V, nzt = B * H * F;
    float *q = tu_alloc(nq), *k = tu_alloc(nq), *v = tu_alloc(nv);
    float *s0 = NULL, *z0 = NULL;
    /* identity: positive q and k, so every denominator is well above 1e-8 */
    tu_fill(q, nq, ident ? 0.1 : -1, 1);
    tu_fill(k, nq, ident ? 0.1 : -1, 1);
    tu_fill(v, nv, -1, 1);
    const int64_t sq[4] = {B, T, H, K}, sv[4] = {B, T, H, V}, ss[4] = {B, H, F, V},
                  sz[3] = {B, H, F};
    save("in", "q", q, 4, sq);
    save("in", "k", k, 4, sq);
    save("in", "v", v, 4, sv);
    if (c->state) { /* the state 5 earlier tokens would have left */
        const int64_t P = 5;
        float *kp = tu_alloc(K), *vp = tu_alloc(V);
        double *f = malloc(sizeof(double) * F);
        ck_assert_ptr_nonnull(f);
        s0 = tu_alloc(nst);
        z0 = tu_alloc(nzt);
        memset(s0, 0, sizeof(float) * nst);
        memset(z0, 0, sizeof(float) * nzt);
        for (int64_t u = 0; u < B * H; u++)
            for (int64_t p = 0; p < P; p++) {
                tu_fill(kp, K, ident ? 0.1 : -1, 1);
                tu_fill(vp, V, -1, 1);
                ela_phi(c->feature, 1, K, kp, f);
                for (int64_t i = 0; i < F; i++) {
                    z0[u * F + i] += (float)f[i];
                    for (int64_t j = 0; j < V; j++)
                        s0[(u * F + i) * V + j] += (float)(f[i] * vp[j]);
                }
            }
        save("in", "s0", s0, 4, ss);
        save("in", "z0", z0, 3, sz);
        free(kp);
        free(vp);
        free(f);
    }
    double *ro = malloc(sizeof(double) * nv), *rs = malloc(sizeof(double) * nst),
           *rz = malloc(sizeof(double) * nzt);
    ck_assert(ro && rs && rz);
    ela_oracle(c, B, H, q, k, v, s0, z0, ro, rs, rz);
    for (int m = 0; m < 4 + tu_opencl(); m++) {
        sh("rm -rf %s/out", dir);
        const int rc = sh("%s ela --in %s/in --out %s/out --feature %s%s %s", tool(), dir, dir,
                          c->feature, c->bidir ? " --bidirectional" : "", modes[m]);
        ck_assert_msg(rc == 0, "linattn-run ela case %d %s exited %d", _i, modes[m], rc);
        float *o = load("out", "o", nv), *st = load("out", "sT", nst), *zt = load("out", "zT", nzt);
        const double eo = rms_rel(o, ro, nv), es = rms_rel(st, rs, nst), ez = rms_rel(zt, rz, nzt);
        ck_assert_msg(eo < 1e-4 && es < 1e-4 && ez < 1e-4,
                      "ela case %d (%s%s%s T=%lld K=%lld V=%lld) '%s': o %.2e st %.2e zt %.2e",
                      _i, c->feature, c->bidir ? " bidirectional" : "", c->state ? " s0/z0" : "",
                      (long long)T, (long long)K, (long long)V, modes[m], eo, es, ez);
        free(o);
        free(st);
        free(zt);
    }
    free(q); free(k); free(v); free(s0); free(z0);
    free(ro); free(rs); free(rz);
}
END_TEST

/* ---- softmax (causal softmax attention) ----------------------------------- */

/* o_t = sum_{j<=t} exp(s_j - max s) v_j / sum_{j<=t} exp(s_j - max s),
 * s_j = scale q_t . k_j, in double. */
static void softmax_oracle(int64_t B, int64_t T, int64_t H, int64_t K, int64_t V, double scale,
                           const float *q, const float *k, const float *v, double *o)
{
    double *s = malloc(sizeof(double) * T);
    ck_assert_ptr_nonnull(s);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                const int64_t r = (b * T + t) * H + h;
                double mx = -INFINITY, den = 0;
                for (int64_t j = 0; j <= t; j++) {
                    const int64_t rj = (b * T + j) * H + h;
                    double d = 0;
                    for (int64_t i = 0; i < K; i++) d += (double)q[r * K + i] * k[rj * K + i];
                    s[j] = scale * d;
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int64_t j = 0; j <= t; j++) den += s[j] = exp(s[j] - mx);
                for (int64_t x = 0; x < V; x++) {
                    double acc = 0;
                    for (int64_t j = 0; j <= t; j++) acc += s[j] * v[((b * T + j) * H + h) * V + x];
                    o[r * V + x] = acc / den;
                }
            }
    free(s);
}

typedef struct sm_case { int64_t B, T, H, K, V; } sm_case;
static const sm_case SM_CASES[] = {{2, 1, 3, 16, 8}, {1, 300, 2, 32, 48}, {2, 70, 2, 8, 12}};
#define NSM ((int)(sizeof SM_CASES / sizeof *SM_CASES))

START_TEST(test_softmax_matches_float64)
{
    static const char *const modes[] = {"--backend ref", "--backend cpu", "--chunk 7",
                                        "--scale 0.3", "--backend ref --scale 0.3 --chunk 5",
                                        "--backend opencl"}; /* where a device is usable */
    const sm_case *c = &SM_CASES[_i];
    const int64_t B = c->B, T = c->T, H = c->H, K = c->K, V = c->V;
    const size_t nq = B * T * H * K, nv = B * T * H * V;
    float *q = tu_alloc(nq), *k = tu_alloc(nq), *v = tu_alloc(nv);
    tu_fill(q, nq, -2, 2); /* scores of a few units: far from uniform weights */
    tu_fill(k, nq, -2, 2);
    tu_fill(v, nv, -1, 1);
    const int64_t sq[4] = {B, T, H, K}, sv[4] = {B, T, H, V};
    save("in", "q", q, 4, sq);
    save("in", "k", k, 4, sq);
    save("in", "v", v, 4, sv);
    double *r1 = malloc(sizeof(double) * nv), *r2 = malloc(sizeof(double) * nv);
    ck_assert(r1 && r2);
    softmax_oracle(B, T, H, K, V, 1 / sqrt((double)K), q, k, v, r1);
    softmax_oracle(B, T, H, K, V, 0.3, q, k, v, r2);
    for (int m = 0; m < 5 + tu_opencl(); m++) {
        sh("rm -rf %s/out", dir);
        const int rc = sh("%s softmax --in %s/in --out %s/out %s", tool(), dir, dir, modes[m]);
        ck_assert_msg(rc == 0, "linattn-run softmax %s exited %d", modes[m], rc);
        ck_assert_int_ne(sh("test -e %s/out/sT.npy || test -e %s/out/hT.npy", dir, dir), 0);
        float *o = load("out", "o", nv);
        const double e = rms_rel(o, strstr(modes[m], "--scale") ? r2 : r1, nv);
        ck_assert_msg(e < 1e-4, "softmax T=%lld K=%lld V=%lld '%s': o %.2e", (long long)T,
                      (long long)K, (long long)V, modes[m], e);
        free(o);
    }
    free(q); free(k); free(v); free(r1); free(r2);
}
END_TEST

/* The exit status of linattn-run OP --in DIR/in --out DIR/OUT OPTS, its
 * stderr in DIR/err. */
static int run_err(const char *op, const char *out, const char *opts)
{
    return sh("%s %s --in %s/in --out %s/%s %s 2>%s/err", tool(), op, dir, dir, out, opts, dir);
}

static int err_has(const char *what) { return sh("grep -q -- '%s' %s/err", what, dir) == 0; }

START_TEST(test_ela_softmax_rejects)
{
    const int64_t sq[4] = {2, 5, 2, 4}, sv[4] = {2, 5, 2, 3}, ss[4] = {2, 2, 4, 3},
                  sz[3] = {2, 2, 4}, ss6[4] = {2, 2, 6, 3}, sz6[3] = {2, 2, 6},
                  sk3[4] = {2, 5, 2, 3}, sv6[4] = {2, 6, 2, 3};
    float x[256];
    tu_fill(x, 256, 0.1, 1);
    save("in", "q", x, 4, sq);
    save("in", "k", x, 4, sq);
    save("in", "v", x, 4, sv);
    /* valid baselines, with the outputs' shapes */
    ck_assert_int_eq(run_err("ela", "ok", ""), 0);
    ck_assert_int_eq(sh("test -e %s/ok/o.npy && test -e %s/ok/sT.npy && test -e %s/ok/zT.npy",
                        dir, dir, dir), 0);
    free(load("ok", "sT", 2 * 2 * 4 * 3));
    ck_assert_int_eq(run_err("ela", "ok2", "--feature sqdist_sub --bidirectional"), 0);
    free(load("ok2", "sT", 2 * 2 * 6 * 3));
    free(load("ok2", "zT", 2 * 2 * 6));
    ck_assert_int_eq(run_err("softmax", "ok3", "--scale 0.5 --chunk 2"), 0);
    free(load("ok3", "o", 2 * 5 * 2 * 3));
    ck_assert_int_ne(sh("test -e %s/ok3/sT.npy", dir), 0);
    /* usage errors: exit 2, the message names the option, nothing written */
    static const struct { const char *op, *opts, *named; } usage[] = {
        {"softmax", "--feature exp", "--feature"},
        {"softmax", "--bidirectional", "--bidirectional"},
        {"softmax", "--algo chunk", "--algo"},
        {"softmax", "--algo recurrent", "--algo"},
        {"softmax", "--eps 1e-6", "--eps"},
        {"softmax", "--ridge 0.1", "--ridge"},
        {"softmax", "--iters 3", "--iters"},
        {"softmax", "--scale 0", "--scale"},
        {"softmax", "--scale nan", "--scale"},
        {"softmax", "--chunk 0", "--chunk"},
        {"softmax", "--chunk 100000000", "--chunk"},
        {"ela", "--ridge 0.1", "--ridge"},
        {"ela", "--iters 3", "--iters"},
        {"ela", "--eps 1e-6", "--eps"},
        {"ela", "--scale 0.5", "--scale"},
        {"ela", "--feature bogus", "--feature"},
        {"ela", "--feature", "feature"},
        {"ela", "--feature EXP", "--feature"},
        {"ela", "--algo fast", "--algo"},
        {"ela", "--chunk 0", "--chunk"},
        {"ela", "--chunk 100000000", "--chunk"},
        {"gdn", "--feature exp", "--feature"},
        {"gka", "--bidirectional", "--bidirectional"},
        {"kalman", "--feature elu1", "--feature"},
    };
    for (size_t i = 0; i < sizeof usage / sizeof *usage; i++) {
        sh("rm -rf %s/o", dir);
        const int rc = run_err(usage[i].op, "o", usage[i].opts);
        ck_assert_msg(rc == 2, "linattn-run %s %s exited %d, not 2", usage[i].op, usage[i].opts,
                      rc);
        ck_assert_msg(err_has(usage[i].named), "linattn-run %s %s: message does not name %s",
                      usage[i].op, usage[i].opts, usage[i].named);
        ck_assert_int_ne(sh("test -e %s/o", dir), 0);
    }
    /* operator errors: exit 1, the message names the argument, nothing written */
    save("in", "s0", x, 4, ss); /* half a state pair */
    ck_assert_int_eq(run_err("ela", "o1", ""), 1);
    ck_assert(err_has("z0"));
    ck_assert_int_ne(sh("test -e %s/o1", dir), 0);
    sh("rm -f %s/in/s0.npy", dir);
    save("in", "z0", x, 3, sz);
    ck_assert_int_eq(run_err("ela", "o1", ""), 1);
    ck_assert(err_has("s0"));
    ck_assert_int_ne(sh("test -e %s/o1", dir), 0);
    save("in", "s0", x, 4, ss); /* a full pair of the exp map's F = K ... */
    ck_assert_int_eq(run_err("ela", "o1", ""), 0);
    sh("rm -rf %s/o1", dir);
    ck_assert_int_eq(run_err("ela", "o1", "--feature sqdist_sum"), 1); /* ... not K + 2 */
    ck_assert(err_has("s0"));
    ck_assert_int_ne(sh("test -e %s/o1", dir), 0);
    save("in", "s0", x, 4, ss6);
    save("in", "z0", x, 3, sz6);
    ck_assert_int_eq(run_err("ela", "o1", "--feature sqdist_sum"), 0);
    sh("rm -rf %s/o1", dir);
    save("in", "z0", x, 3, sz); /* z0 of F = K with s0 of K + 2 */
    ck_assert_int_eq(run_err("ela", "o1", "--feature sqdist_sum"), 1);
    ck_assert(err_has("z0"));
    ck_assert_int_ne(sh("test -e %s/o1", dir), 0);
    sh("rm -f %s/in/s0.npy %s/in/z0.npy", dir, dir);
    /* k with another key size, v with another length: both operators */
    save("in", "k", x, 4, sk3);
    ck_assert_int_eq(run_err("ela", "o2", ""), 1);
    ck_assert(err_has("k:"));
    ck_assert_int_ne(sh("test -e %s/o2", dir), 0);
    ck_assert_int_eq(run_err("softmax", "o2", ""), 1);
    ck_assert(err_has("k:"));
    ck_assert_int_ne(sh("test -e %s/o2", dir), 0);
    save("in", "k", x, 4, sq);
    save("in", "v", x, 4, sv6);
    ck_assert_int_eq(run_err("ela", "o3", ""), 1);
    ck_assert(err_has("v:"));
    ck_assert_int_ne(sh("test -e %s/o3", dir), 0);
    ck_assert_int_eq(run_err("softmax", "o3", ""), 1);
    ck_assert(err_has("v:"));
    ck_assert_int_ne(sh("test -e %s/o3", dir), 0);
    /* a missing input */
    sh("rm -f %s/in/v.npy", dir);
    ck_assert_int_eq(run_err("softmax", "o4", ""), 1);
    ck_assert(err_has("v.npy"));
    ck_assert_int_eq(run_err("ela", "o4", ""), 1);
    ck_assert(err_has("v.npy"));
    ck_assert_int_ne(sh("test -e %s/o4", dir), 0);
}
END_TEST

/* LINATTN_TOOL_SMOKE=1: one case of each test (CI runs every tool call of
 * that set under valgrind through LINATTN_RUN). */
/* ---- head counts and per-channel gates from the shapes; --fused ------------ */

/* Query, key and value heads, and whether g is per key channel. */
typedef struct heads_case { int64_t Hq, Hk, H; int gk; const char *backend; } heads_case;
static const heads_case HEADS[] = {
    {2, 2, 4, 0, "cpu"}, /* key heads shared by value heads (the CPU paths take it) */
    {2, 2, 4, 1, "ref"}, /* ... with g per key channel */
    {8, 2, 4, 0, "ref"}, /* query heads sharing a state: o has 8 heads */
    {3, 3, 3, 1, "ref"}, /* one of each, g per channel */
};
#define NHEADS ((int)(sizeof HEADS / sizeof *HEADS))

typedef struct heads_data { float *q, *k, *v, *g, *beta; int64_t B, T, K, V; } heads_data;

static void heads_make(const heads_case *c, heads_data *d)
{
    d->B = 2, d->T = 9, d->K = 8, d->V = 6;
    const size_t bt = (size_t)(d->B * d->T);
    d->q = tu_alloc(bt * c->Hq * d->K);
    d->k = tu_alloc(bt * c->Hk * d->K);
    d->v = tu_alloc(bt * c->H * d->V);
    d->g = tu_alloc(bt * c->H * (c->gk ? d->K : 1));
    d->beta = tu_alloc(bt * c->H);
    tu_fill(d->q, bt * c->Hq * d->K, -1, 1);
    tu_fill(d->k, bt * c->Hk * d->K, -1, 1);
    tu_l2norm_rows(d->k, bt * c->Hk, (int)d->K);
    tu_fill(d->v, bt * c->H * d->V, -1, 1);
    tu_fill(d->g, bt * c->H * (c->gk ? d->K : 1), -0.5, 0);
    tu_fill(d->beta, bt * c->H, 0, 1);
}

static void heads_free(heads_data *d)
{
    free(d->q), free(d->k), free(d->v), free(d->g), free(d->beta);
}

/* g and beta into in/ (q, k and v are the caller's). */
static void heads_save_gates(const heads_case *c, const heads_data *d)
{
    const int64_t sg[4] = {d->B, d->T, c->H, d->K}, sb[3] = {d->B, d->T, c->H};
    save("in", "g", d->g, c->gk ? 4 : 3, sg);
    save("in", "beta", d->beta, 3, sb);
}

/* q, k, v as one array [B,T,Hq*K + Hk*K + H*V], as a fused projection. */
static float *heads_fuse(const heads_case *c, const heads_data *d, int64_t *W)
{
    const int64_t nq = c->Hq * d->K, nk = c->Hk * d->K, nv = c->H * d->V;
    float *f = tu_alloc((size_t)(d->B * d->T * (nq + nk + nv)));
    *W = nq + nk + nv;
    for (int64_t r = 0; r < d->B * d->T; r++) {
        memcpy(f + r * *W, d->q + r * nq, sizeof(float) * nq);
        memcpy(f + r * *W + nq, d->k + r * nk, sizeof(float) * nk);
        memcpy(f + r * *W + nq + nk, d->v + r * nv, sizeof(float) * nv);
    }
    return f;
}

/* linattn-run infers Hq, Hk, H and the gate kind from the files' shapes:
 * its outputs equal the library's own call on the same backend bit for
 * bit (o with Hq heads when query heads share a state), and the fused
 * input (q, k, v as views of one qkv.npy) gives the same bits again. */
START_TEST(test_run_heads_from_shapes)
{
    const heads_case *c = &HEADS[_i];
    heads_data d;
    heads_make(c, &d);
    const int64_t B = d.B, T = d.T, K = d.K, V = d.V;
    const int64_t Ho = c->Hq != c->Hk ? c->Hq : c->H;
    const int64_t sq[4] = {B, T, c->Hq, K}, sk[4] = {B, T, c->Hk, K}, sv[4] = {B, T, c->H, V};
    save("in", "q", d.q, 4, sq);
    save("in", "k", d.k, 4, sk);
    save("in", "v", d.v, 4, sv);
    heads_save_gates(c, &d);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/out --backend %s", tool(), dir, dir,
                        c->backend), 0);
    const size_t no = (size_t)(B * T * Ho * V), nh = (size_t)(B * c->H * K * V);
    float *o = load("out", "o", no), *hT = load("out", "hT", nh);
    /* the library called directly, outputs poisoned first */
    float *ro = tu_alloc(no), *rh = tu_alloc(nh);
    tu_poison(ro, no);
    tu_poison(rh, nh);
    linattn_delta_io io = {0};
    io.q = linattn_tensor_4d(d.q, B, T, c->Hq, K);
    io.k = linattn_tensor_4d(d.k, B, T, c->Hk, K);
    io.v = linattn_tensor_4d(d.v, B, T, c->H, V);
    io.g = c->gk ? linattn_tensor_4d(d.g, B, T, c->H, K) : linattn_tensor_3d(d.g, B, T, c->H);
    io.beta = linattn_tensor_3d(d.beta, B, T, c->H);
    io.o = linattn_tensor_4d(ro, B, T, Ho, V);
    io.hT = linattn_tensor_4d(rh, B, c->H, K, V);
    linattn_config cfg; /* as --backend ref or cpu makes it */
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.backend = strcmp(c->backend, "ref") ? LINATTN_BACKEND_CPU : LINATTN_BACKEND_REF;
    ck_assert_int_eq(linattn_ctx_create(&cfg, &ctx), 0);
    ck_assert_msg(linattn_gdn_forward(ctx, &io, NULL) == 0, "%s", linattn_last_error());
    ck_assert_msg(!memcmp(o, ro, no * sizeof *o) && !memcmp(hT, rh, nh * sizeof *hT),
                  "case %d: linattn-run differs from the library's call", _i);
    /* fused: the same bits */
    int64_t W;
    float *f = heads_fuse(c, &d, &W);
    const int64_t sf[3] = {B, T, W};
    sh("rm -f %s/in/q.npy %s/in/k.npy %s/in/v.npy", dir, dir, dir);
    save("in", "qkv", f, 3, sf);
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/fused --backend %s --fused %lld,%lld,%lld,%lld,%lld",
                        tool(), dir, dir, c->backend, (long long)c->Hq, (long long)c->Hk,
                        (long long)c->H, (long long)K, (long long)V), 0);
    float *fo = load("fused", "o", no), *fh = load("fused", "hT", nh);
    ck_assert_msg(!memcmp(o, fo, no * sizeof *o) && !memcmp(hT, fh, nh * sizeof *hT),
                  "case %d: --fused differs from q, k, v given apart", _i);
    linattn_ctx_destroy(ctx);
    free(o), free(hT), free(ro), free(rh), free(f), free(fo), free(fh);
    heads_free(&d);
}
END_TEST

/* Shapes that disagree, and fused widths that do not add up: refused with
 * a message naming the file and the dimension, nothing written. */
START_TEST(test_run_heads_rejects)
{
    const heads_case *c = &HEADS[2];
    heads_data d;
    heads_make(c, &d);
    const int64_t B = d.B, T = d.T, K = d.K, V = d.V;
    const int64_t sq[4] = {B, T, c->Hq, K}, sk[4] = {B, T, c->Hk, K}, sv[4] = {B, T, c->H, V},
                  sv3[4] = {B, T, 3, V}, sk5[4] = {B, T, c->Hk, 5};
    save("in", "q", d.q, 4, sq);
    save("in", "k", d.k, 4, sk5);
    save("in", "v", d.v, 4, sv);
    heads_save_gates(c, &d);
    ck_assert_int_eq(run_err("gdn", "o1", "--backend ref"), 1);
    ck_assert(err_has("k.npy: k: dimension 3 (K of \\[BTJK\\]) is 5, but q.npy gives K = 8"));
    save("in", "k", d.k, 4, sk);
    save("in", "v", d.v, 4, sv3); /* 3 value heads: g's 4 disagree */
    ck_assert_int_eq(run_err("gdn", "o1", "--backend ref"), 1);
    ck_assert(err_has("g.npy: g: dimension 2 (H of \\[BTH\\]) is 4, but v.npy gives H = 3"));
    ck_assert_int_ne(sh("test -e %s/o1", dir), 0);
    /* the fused width */
    int64_t W;
    float *f = heads_fuse(c, &d, &W);
    const int64_t sf[3] = {B, T, W};
    sh("rm -f %s/in/q.npy %s/in/k.npy %s/in/v.npy", dir, dir, dir);
    save("in", "qkv", f, 3, sf);
    ck_assert_int_eq(run_err("gdn", "o2", "--backend ref --fused 8,2,4,8,6"), 0);
    ck_assert_int_eq(run_err("gdn", "o3", "--backend ref --fused 8,2,4,8,5"), 1);
    ck_assert(err_has("qkv.npy: last dimension 104 is not HQ\\*K + HK\\*K + H\\*V = "
                      "8\\*8 + 2\\*8 + 4\\*5 = 100 (--fused 8,2,4,8,5)"));
    ck_assert_int_eq(run_err("gdn", "o3", "--backend ref --fused 8,2,4,8"), 2);
    ck_assert(err_has("--fused 8,2,4,8: expected HQ,HK,H,K,V"));
    ck_assert_int_eq(run_err("gdn", "o3", "--backend ref"), 1); /* qkv.npy without --fused */
    ck_assert(err_has("--fused reads q, k and v from it"));
    save("in", "q", d.q, 4, sq); /* q given twice */
    ck_assert_int_eq(run_err("gdn", "o3", "--backend ref --fused 8,2,4,8,6"), 1);
    ck_assert(err_has("q.npy: --fused reads q from qkv.npy"));
    ck_assert_int_eq(run_err("kalman", "o3", "--fused 8,2,4,8,6"), 2);
    ck_assert(err_has("--fused: kalman has no q, k and v"));
    ck_assert_int_ne(sh("test -e %s/o3", dir), 0);
    free(f);
    heads_free(&d);
}
END_TEST

/* ---- half precision: '<f2' files, --dtype, --state-dtype ------------------ */

/* n values of x rounded to dt and widened back: the values a dt tensor holds. */
static void round_to(float *x, size_t n, linattn_dtype dt)
{
    uint16_t *h = malloc(n * sizeof *h + 1);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(linattn_convert(x, LINATTN_F32, h, dt, n), 0);
    ck_assert_int_eq(linattn_convert(h, dt, x, LINATTN_F32, n), 0);
    free(h);
}

/* in/ (or another subdirectory) written in dtype: f16 as '<f2', else '<f4'. */
static void save_as(const char *sub, const char *name, const float *x, size_t n,
                    linattn_dtype dt, int nd, const int64_t *s)
{
    char p[256];
    uint16_t *h = malloc(n * sizeof *h + 1);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(linattn_convert(x, LINATTN_F32, h, LINATTN_F16, n), 0);
    snprintf(p, sizeof p, "%s/%s/%s.npy", dir, sub, name);
    ck_assert_msg(dt == LINATTN_F16 ? linattn_npy_save_dtype(p, h, LINATTN_F16, nd, s) == 0
                                    : linattn_npy_save(p, x, nd, s) == 0,
                  "%s", linattn_last_error());
    free(h);
}

/* An output file, checked to be of the file type dt travels as ('<f2' for
 * f16, '<f4' holding dt's values for bf16 and f32), as float32. */
static float *load_typed(const char *sub, const char *name, size_t count, linattn_dtype dt)
{
    char p[256];
    linattn_array a;
    snprintf(p, sizeof p, "%s/%s/%s.npy", dir, sub, name);
    ck_assert_msg(linattn_npy_load(p, &a) == 0, "%s", linattn_last_error());
    ck_assert_uint_eq(a.count, count);
    ck_assert_msg(a.file_dtype == (dt == LINATTN_F16 ? LINATTN_F16 : LINATTN_F32),
                  "%s: file type %d for %s", p, (int)a.file_dtype, linattn_dtype_name(dt));
    if (dt == LINATTN_BF16)
        for (size_t i = 0; i < count; i++) {
            uint32_t u;
            memcpy(&u, &a.data[i], sizeof u);
            ck_assert_msg(!(u & 0xffff), "%s[%zu]: %.9g is not a bf16 value", p, i, a.data[i]);
        }
    return a.data;
}

/* gdn's inputs, random: q, k (unit rows), v, g, beta and h0. */
typedef struct half_data { float *q, *k, *v, *g, *beta, *h0; int64_t B, T, H, K, V; } half_data;

static void half_make(half_data *d)
{
    d->B = 2, d->T = 11, d->H = 3, d->K = 8, d->V = 5;
    const size_t nk = (size_t)(d->B * d->T * d->H * d->K), nv = (size_t)(d->B * d->T * d->H * d->V),
                 nh = (size_t)(d->B * d->T * d->H), ns = (size_t)(d->B * d->H * d->K * d->V);
    d->q = tu_alloc(nk), d->k = tu_alloc(nk), d->v = tu_alloc(nv);
    d->g = tu_alloc(nh), d->beta = tu_alloc(nh), d->h0 = tu_alloc(ns);
    tu_fill(d->q, nk, -1, 1);
    tu_fill(d->k, nk, -1, 1);
    tu_l2norm_rows(d->k, nk / (size_t)d->K, (int)d->K);
    tu_fill(d->v, nv, -1, 1);
    tu_fill(d->g, nh, -0.5, 0);
    tu_fill(d->beta, nh, 0, 1);
    tu_fill(d->h0, ns, -1, 1);
}

static void half_free(half_data *d)
{
    free(d->q), free(d->k), free(d->v), free(d->g), free(d->beta), free(d->h0);
}

/* All of d into sub/ as dt's files; h0 only when with_h0. */
static void half_save(const half_data *d, const char *sub, linattn_dtype dt, int with_h0)
{
    const int64_t B = d->B, T = d->T, H = d->H, K = d->K, V = d->V;
    const int64_t sk[4] = {B, T, H, K}, sv[4] = {B, T, H, V}, sg[3] = {B, T, H},
                  sh0[4] = {B, H, K, V};
    sh("mkdir -p %s/%s", dir, sub);
    save_as(sub, "q", d->q, (size_t)(B * T * H * K), dt, 4, sk);
    save_as(sub, "k", d->k, (size_t)(B * T * H * K), dt, 4, sk);
    save_as(sub, "v", d->v, (size_t)(B * T * H * V), dt, 4, sv);
    save_as(sub, "g", d->g, (size_t)(B * T * H), dt, 3, sg);
    save_as(sub, "beta", d->beta, (size_t)(B * T * H), dt, 3, sg);
    if (with_h0) save_as(sub, "h0", d->h0, (size_t)(B * H * K * V), dt, 4, sh0);
}

/* '<f2' input files give the same outputs, bit for bit, as '<f4' files of
 * the same values, under every --dtype (fails on a tool that refuses '<f2'). */
START_TEST(test_run_f16_files)
{
    half_data d;
    half_make(&d);
    const size_t nk = (size_t)(d.B * d.T * d.H * d.K), nv = (size_t)(d.B * d.T * d.H * d.V),
                 nh = (size_t)(d.B * d.T * d.H), ns = (size_t)(d.B * d.H * d.K * d.V);
    round_to(d.q, nk, LINATTN_F16), round_to(d.k, nk, LINATTN_F16);
    round_to(d.v, nv, LINATTN_F16), round_to(d.g, nh, LINATTN_F16);
    round_to(d.beta, nh, LINATTN_F16), round_to(d.h0, ns, LINATTN_F16);
    half_save(&d, "in", LINATTN_F32, 1);
    half_save(&d, "in16", LINATTN_F16, 1);
    static const char *const dts[3] = {"f32", "f16", "bf16"};
    for (int i = 0; i < 3; i++) {
        const linattn_dtype dt = (linattn_dtype)i;
        ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/o32 --backend cpu --dtype %s", tool(),
                            dir, dir, dts[i]), 0);
        ck_assert_int_eq(sh("%s gdn --in %s/in16 --out %s/o16 --backend cpu --dtype %s", tool(),
                            dir, dir, dts[i]), 0);
        float *a = load_typed("o32", "o", nv, dt), *b = load_typed("o16", "o", nv, dt);
        float *ha = load_typed("o32", "hT", ns, LINATTN_F32),
              *hb = load_typed("o16", "hT", ns, LINATTN_F32);
        ck_assert_msg(!memcmp(a, b, nv * sizeof *a) && !memcmp(ha, hb, ns * sizeof *ha),
                      "--dtype %s: '<f2' inputs differ from '<f4' ones of the same values",
                      dts[i]);
        free(a), free(b), free(ha), free(hb);
    }
    half_free(&d);
}
END_TEST

/* --dtype and --state-dtype: the outputs equal, bit for bit, the library's
 * call with the inputs rounded to those types (as linattn_convert rounds)
 * and 16-bit tensors, written as the files that type travels as. */
typedef struct dtype_case { linattn_dtype dt, st; int h0, fused; const char *backend; } dtype_case;
static const dtype_case DTYPES[] = { /* the first: the smoke set's */
    {LINATTN_BF16, LINATTN_F16, 1, 1, "cpu"}, {LINATTN_F16, LINATTN_F32, 1, 0, "cpu"},
    {LINATTN_BF16, LINATTN_F32, 1, 0, "ref"}, {LINATTN_F16, LINATTN_F16, 1, 0, "ref"},
    {LINATTN_F32, LINATTN_BF16, 1, 0, "cpu"}, {LINATTN_BF16, LINATTN_BF16, 0, 0, "cpu"},
    {LINATTN_BF16, LINATTN_BF16, 1, 1, "cpu"},
};
#define NDTYPES ((int)(sizeof DTYPES / sizeof *DTYPES))

/* x (n values) in dt, a new array. */
static void *narrowed(const float *x, size_t n, linattn_dtype dt)
{
    void *p = malloc(n * linattn_dtype_size(dt) + 1);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(linattn_convert(x, LINATTN_F32, p, dt, n), 0);
    return p;
}

/* n elements of dt widened to float32 (a new array). */
static float *widened(const void *x, size_t n, linattn_dtype dt)
{
    float *p = tu_alloc(n + 1);
    ck_assert_int_eq(linattn_convert(x, dt, p, LINATTN_F32, n), 0);
    return p;
}

START_TEST(test_run_dtype_matches_library)
{
    const dtype_case *c = &DTYPES[_i];
    half_data d;
    half_make(&d);
    const int64_t B = d.B, T = d.T, H = d.H, K = d.K, V = d.V;
    const size_t nk = (size_t)(B * T * H * K), nv = (size_t)(B * T * H * V),
                 nh = (size_t)(B * T * H), ns = (size_t)(B * H * K * V);
    half_save(&d, "in", LINATTN_F32, c->h0);
    const char *fused = "";
    char fz[64];
    if (c->fused) { /* q, k, v from one qkv.npy */
        const heads_case hc = {H, H, H, 0, c->backend};
        heads_data hd = {d.q, d.k, d.v, d.g, d.beta, B, T, K, V};
        int64_t W;
        float *f = heads_fuse(&hc, &hd, &W);
        const int64_t sf[3] = {B, T, W};
        sh("rm -f %s/in/q.npy %s/in/k.npy %s/in/v.npy", dir, dir, dir);
        save("in", "qkv", f, 3, sf);
        free(f);
        snprintf(fz, sizeof fz, "--fused %lld,%lld,%lld,%lld,%lld", (long long)H, (long long)H,
                 (long long)H, (long long)K, (long long)V);
        fused = fz;
    }
    ck_assert_int_eq(sh("%s gdn --in %s/in --out %s/out --backend %s --dtype %s "
                        "--state-dtype %s %s", tool(), dir, dir, c->backend,
                        linattn_dtype_name(c->dt), linattn_dtype_name(c->st), fused), 0);
    float *o = load_typed("out", "o", nv, c->dt), *hT = load_typed("out", "hT", ns, c->st);
    /* the library called directly with 16-bit tensors, outputs poisoned */
    const int64_t sk[4] = {B, T, H, K}, sv[4] = {B, T, H, V}, sg[3] = {B, T, H},
                  sh0[4] = {B, H, K, V};
    void *q = narrowed(d.q, nk, c->dt), *k = narrowed(d.k, nk, c->dt),
         *v = narrowed(d.v, nv, c->dt), *g = narrowed(d.g, nh, c->dt),
         *beta = narrowed(d.beta, nh, c->dt), *h0 = narrowed(d.h0, ns, c->st);
    void *ro = malloc(nv * 4), *rh = malloc(ns * 4);
    ck_assert(ro && rh);
    memset(ro, 0xff, nv * 4); /* NaN in every type */
    memset(rh, 0xff, ns * 4);
    linattn_delta_io io = {0};
    io.q = linattn_tensor_nd(q, c->dt, 4, sk);
    io.k = linattn_tensor_nd(k, c->dt, 4, sk);
    io.v = linattn_tensor_nd(v, c->dt, 4, sv);
    io.g = linattn_tensor_nd(g, c->dt, 3, sg);
    io.beta = linattn_tensor_nd(beta, c->dt, 3, sg);
    if (c->h0) io.h0 = linattn_tensor_nd(h0, c->st, 4, sh0);
    io.o = linattn_tensor_nd(ro, c->dt, 4, sv);
    io.hT = linattn_tensor_nd(rh, c->st, 4, sh0);
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.backend = strcmp(c->backend, "ref") ? LINATTN_BACKEND_CPU : LINATTN_BACKEND_REF;
    ck_assert_int_eq(linattn_ctx_create(&cfg, &ctx), 0);
    ck_assert_msg(linattn_gdn_forward(ctx, &io, NULL) == 0, "%s", linattn_last_error());
    float *wo = widened(ro, nv, c->dt), *wh = widened(rh, ns, c->st);
    ck_assert_msg(!memcmp(o, wo, nv * sizeof *o), "case %d (--dtype %s): o differs from the "
                  "library's call", _i, linattn_dtype_name(c->dt));
    ck_assert_msg(!memcmp(hT, wh, ns * sizeof *hT), "case %d (--state-dtype %s): hT differs "
                  "from the library's call", _i, linattn_dtype_name(c->st));
    linattn_ctx_destroy(ctx);
    free(q), free(k), free(v), free(g), free(beta), free(h0), free(ro), free(rh);
    free(o), free(hT), free(wo), free(wh);
    half_free(&d);
}
END_TEST

/* 16-bit states for gla, gka and ela (the table's f32_states), and dtypes
 * that do not exist: usage errors that say why, nothing written. */
START_TEST(test_run_dtype_rejects)
{
    half_data d;
    half_make(&d);
    half_save(&d, "in", LINATTN_F32, 0);
    sh("rm -f %s/in/beta.npy", dir); /* gla takes no beta */
    ck_assert_int_eq(run_err("gla", "o1", "--backend ref --state-dtype bf16"), 2);
    ck_assert(err_has("--state-dtype bf16: gla keeps its states (h0, hT) in float32"));
    ck_assert(err_has("f32_states"));
    ck_assert_int_eq(run_err("gla", "o1", "--backend ref --dtype f16 --state-dtype f16"), 2);
    ck_assert(err_has("gla keeps its states"));
    ck_assert_int_ne(sh("test -e %s/o1", dir), 0);
    /* its other tensors may be 16-bit */
    ck_assert_int_eq(run_err("gla", "o2", "--backend ref --dtype bf16"), 0);
    ck_assert_int_eq(run_err("gla", "o3", "--dtype f8"), 2);
    ck_assert(err_has("--dtype f8: expected f32, f16 or bf16"));
    ck_assert_int_eq(run_err("gla", "o3", "--state-dtype F16"), 2);
    ck_assert(err_has("--state-dtype F16: expected f32, f16 or bf16"));
    ck_assert_int_ne(sh("test -e %s/o3", dir), 0);
    half_free(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tool");
    TCase *tc = tcase_create("tool");
    const char *smoke = getenv("LINATTN_TOOL_SMOKE");
    const int one = smoke && *smoke && strcmp(smoke, "0");
    tcase_set_timeout(tc, one ? 1800 : 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_run_matches_float64, 0,
                        one ? 3 : 3 * (int)(sizeof CASES / sizeof *CASES));
    tcase_add_test(tc, test_run_rejects);
    tcase_add_test(tc, test_run_unknown_files);
    tcase_add_test(tc, test_run_messages);
    tcase_add_test(tc, test_outputs_atomic);
    tcase_add_loop_test(tc, test_gka_matches_float64, 0, one ? 1 : NGKA);
    tcase_add_test(tc, test_gka_rejects);
    tcase_add_test(tc, test_kalman_matches_float64);
    tcase_add_loop_test(tc, test_ela_matches_float64, 0, one ? 1 : NELA);
    tcase_add_loop_test(tc, test_softmax_matches_float64, 0, one ? 1 : NSM);
    tcase_add_test(tc, test_ela_softmax_rejects);
    tcase_add_loop_test(tc, test_run_heads_from_shapes, 0, NHEADS);
    tcase_add_test(tc, test_run_heads_rejects);
    tcase_add_test(tc, test_run_f16_files);
    tcase_add_loop_test(tc, test_run_dtype_matches_library, 0, one ? 1 : NDTYPES);
    tcase_add_test(tc, test_run_dtype_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_seed();
    tu_report(); /* says once whether the OpenCL modes run */
    return tu_main(suite());
}
