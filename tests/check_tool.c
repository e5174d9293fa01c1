/* linattn tests - linattn-run end to end: .npy in, .npy out, against an
 * independent float64 recurrence written here from spec/delta.md. */
#include <check.h>
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
static const tcase_shape CASES[] = {
    {1, 1, 1, 16, 16, 0}, {2, 65, 4, 32, 24, 1}, {1, 1000, 2, 64, 64, 1}, {2, 130, 3, 48, 64, 0},
};

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
        const int rc = sh("%s %s --in %s/in --out %s/out %s", tool(), ops[op], dir, dir, modes[m]);
        ck_assert_msg(rc == 0, "linattn-run %s %s exited %d", ops[op], modes[m], rc);
        float *o = load("out", "o", no), *ht = load("out", "ht", nh);
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

START_TEST(test_run_rejects)
{
    const int64_t s4[4] = {1, 3, 1, 4}, s3[3] = {1, 3, 1}, s4b[4] = {1, 3, 1, 5};
    float x[64] = {0};
    save("in", "q", x, 4, s4);
    save("in", "k", x, 4, s4);
    save("in", "v", x, 4, s4);
    save("in", "g", x, 3, s3);
    save("in", "beta", x, 3, s3);
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
    ck_assert_int_eq(sh("grep -q 'k: dimension 3' %s/err", dir), 0);
    ck_assert_int_ne(sh("test -e %s/o4/o.npy", dir), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tool");
    TCase *tc = tcase_create("tool");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_run_matches_float64, 0, 3 * (int)(sizeof CASES / sizeof *CASES));
    tcase_add_test(tc, test_run_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_main(suite()); }
