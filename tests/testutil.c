/* linattn tests - random data, poisoning, error measures, contexts. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"

static uint64_t state;
static int seeded;

uint64_t tu_seed(void)
{
    static uint64_t seed;
    if (!seeded) {
        const char *s = getenv("LINATTN_TEST_SEED");
        seed = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
        state = seed;
        seeded = 1;
        fprintf(stderr, "test seed: LINATTN_TEST_SEED=%llu\n", (unsigned long long)seed);
    }
    return seed;
}

static uint64_t next(void)
{
    if (!seeded) tu_seed();
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double tu_uniform(double lo, double hi)
{
    return lo + (hi - lo) * ((next() >> 11) * (1.0 / 9007199254740992.0));
}

float *tu_alloc(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    ck_assert_msg(p != NULL, "test: out of memory");
    return p;
}

void tu_fill(float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)tu_uniform(lo, hi);
}

void tu_poison(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

void tu_l2norm_rows(float *x, size_t rows, int d)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (int i = 0; i < d; i++) s += (double)x[r * d + i] * x[r * d + i];
        s = 1.0 / sqrt(s + 1e-6);
        for (int i = 0; i < d; i++) x[r * d + i] = (float)(x[r * d + i] * s);
    }
}

double tu_relerr(const float *x, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return INFINITY;
        const double d = (double)x[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (den == 0) return sqrt(num);
    return sqrt(num / den);
}

static int reported; /* the ISAs and devices were reported (tu_report) */

int tu_isas(const char **names, int max)
{
    static char buf[256];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", linattn_isa_compiled());
    for (char *tok = strtok(buf, " "); tok && n < max; tok = strtok(NULL, " ")) {
        if (linattn_isa_usable(tok)) names[n++] = tok;
        else if (!reported)
            fprintf(stderr, "note: ISA %s is compiled in but this CPU cannot run it; "
                            "it is not tested on this machine\n", tok);
    }
    if (!reported) {
        fprintf(stderr, "kernel ISAs tested on this CPU:");
        for (int i = 0; i < n; i++) fprintf(stderr, " %s", names[i]);
        fprintf(stderr, " (and the ref backend)\n");
    }
    if (n < max && tu_opencl()) names[n++] = "opencl";
    reported = 1;
    return n;
}

/* Say once whether OpenCL is tested, from a child process: an OpenCL runtime
 * started in the parent would not survive the fork of each Check test.
 * With CK_FORK=no there is no fork to protect (and none is made). */
void tu_report(void)
{
    const char *isas[8];
    const char *nofork = getenv("CK_FORK");
    if (nofork && !strcmp(nofork, "no")) { /* one process (qemu-user cannot fork) */
        tu_isas(isas, 8);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tu_isas(isas, 8);
        fflush(NULL);
        _exit(0);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
    reported = 1; /* the test processes forked from here stay quiet */
}

/* The OpenCL backend joins every test when a device is usable.  The device
 * is LINATTN_DEVICE's when that names one ("opencl" or "opencl:P.D"), else
 * the best device of any type (PoCL's CPU device counts).  LINATTN_DEVICE=
 * opencl with no usable device fails the tests: the run was meant to cover
 * OpenCL.  LINATTN_DEVICE=cpu leaves OpenCL out. */
int tu_opencl(void)
{
    static int known, have;
    if (known) return have;
    known = 1;
    const char *env = getenv("LINATTN_DEVICE");
    if (env && !strcmp(env, "cpu")) {
        if (!reported) fprintf(stderr, "OpenCL backend: not tested (LINATTN_DEVICE=cpu)\n");
        return have = 0;
    }
    if (!linattn_opencl_built()) {
        if (!reported) fprintf(stderr, "OpenCL backend: not in this build\n");
        if (env && !strncmp(env, "opencl", 6)) /* (no ck_assert on success: this may run */
            ck_abort_msg("LINATTN_DEVICE=%s but this build has no OpenCL backend", env);
        return have = 0;
    }
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.backend = LINATTN_BACKEND_OPENCL;
    int rc = linattn_ctx_create(&cfg, &ctx);
    if (rc) {
        if (!reported) fprintf(stderr, "OpenCL backend: not tested (%s)\n", linattn_last_error());
        if (env && !strncmp(env, "opencl", 6)) /* outside a test, where it may not report) */
            ck_abort_msg("LINATTN_DEVICE=%s but no OpenCL device: %s", env, linattn_last_error());
        return have = 0;
    }
    if (!reported) fprintf(stderr, "OpenCL backend tested on %s\n", linattn_ctx_device(ctx));
    linattn_ctx_destroy(ctx);
    return have = 1;
}

linattn_ctx *tu_ctx(const char *isa, int threads)
{
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.threads = threads;
    if (!strcmp(isa, "ref")) cfg.backend = LINATTN_BACKEND_REF;
    else if (!strcmp(isa, "opencl")) cfg.backend = LINATTN_BACKEND_OPENCL;
    else {
        cfg.backend = LINATTN_BACKEND_CPU;
        cfg.isa = isa;
    }
    int rc = linattn_ctx_create(&cfg, &ctx);
    ck_assert_msg(rc == 0, "context for %s: %s", isa, linattn_last_error());
    return ctx;
}

void tu_delta_make(tu_delta *p, int op, int64_t B, int64_t T, int64_t H, int64_t K,
                   int64_t V, int with_h0, double glo)
{
    memset(p, 0, sizeof *p);
    p->B = B; p->T = T; p->H = H; p->K = K; p->V = V; p->N = B;
    const size_t nqk = B * T * H * K, nv = B * T * H * V, ng = B * T * H, ns = B * H * K * V;
    p->q = tu_alloc(nqk); p->k = tu_alloc(nqk); p->v = tu_alloc(nv);
    p->g = tu_alloc(ng); p->beta = tu_alloc(ng);
    p->o = tu_alloc(nv); p->ht = tu_alloc(ns);
    tu_fill(p->q, nqk, -1, 1);
    tu_fill(p->k, nqk, -1, 1);
    tu_fill(p->v, nv, -1, 1);
    tu_fill(p->g, ng, glo, 0);
    tu_fill(p->beta, ng, 0.05, 1);
    if (op == 1) { /* kla: keys keep their norm; eta in (0, 1] */
        for (size_t i = 0; i < nqk; i++) p->k[i] *= (float)tu_uniform(0.2, 2.0);
    } else {
        tu_l2norm_rows(p->k, B * T * H, (int)K);
    }
    tu_l2norm_rows(p->q, B * T * H, (int)K);
    if (with_h0) {
        p->h0 = tu_alloc(ns);
        tu_fill(p->h0, ns, -0.5, 0.5);
    }
    tu_poison(p->o, nv);
    tu_poison(p->ht, ns);
}

void tu_delta_free(tu_delta *p)
{
    free(p->q); free(p->k); free(p->v); free(p->g); free(p->beta);
    free(p->h0); free(p->o); free(p->ht); free(p->cu);
    memset(p, 0, sizeof *p);
}

linattn_delta_io tu_delta_io(const tu_delta *p, float *o, float *ht)
{
    linattn_delta_io io;
    memset(&io, 0, sizeof io);
    io.q = linattn_tensor_4d(p->q, p->B, p->T, p->H, p->K);
    io.k = linattn_tensor_4d(p->k, p->B, p->T, p->H, p->K);
    io.v = linattn_tensor_4d(p->v, p->B, p->T, p->H, p->V);
    io.g = linattn_tensor_3d(p->g, p->B, p->T, p->H);
    io.beta = linattn_tensor_3d(p->beta, p->B, p->T, p->H);
    io.h0 = p->h0 ? linattn_tensor_4d(p->h0, p->N, p->H, p->K, p->V) : linattn_tensor_none();
    io.o = linattn_tensor_4d(o, p->B, p->T, p->H, p->V);
    io.hT = ht ? linattn_tensor_4d(ht, p->N, p->H, p->K, p->V) : linattn_tensor_none();
    return io;
}

int tu_delta_run(int op, linattn_ctx *ctx, const linattn_delta_io *io,
                 const linattn_delta_opts *opts)
{
    linattn_delta_io j = *io;
    if (op == LINATTN_OP_GLA) j.beta = linattn_tensor_none();
    return linattn_delta_forward(ctx, (linattn_delta_op)op, &j, opts);
}

int tu_delta_step(int op, linattn_ctx *ctx, const linattn_delta_step_io *io,
                  const linattn_delta_opts *opts)
{
    linattn_delta_step_io j = *io;
    if (op == LINATTN_OP_GLA) j.beta = linattn_tensor_none();
    return linattn_delta_step(ctx, (linattn_delta_op)op, &j, opts);
}

tu_delta tu_delta_slice(const tu_delta *p, int64_t t0, int64_t len, float *h0)
{
    tu_delta s = *p;
    s.T = len;
    s.q += t0 * p->H * p->K;
    s.k += t0 * p->H * p->K;
    s.v += t0 * p->H * p->V;
    s.g += t0 * p->H;
    s.beta += t0 * p->H;
    s.h0 = h0;
    return s;
}

int tu_main(Suite *s)
{
    tu_seed();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
