/* linattn - a fully static program (gcc -static ... $(pkg-config --static
 * --libs linattn)).  There is no dynamic loader in such a process, so the
 * OpenCL runtime must count as absent: the auto backend runs on the CPU, a
 * forced OpenCL device fails with LINATTN_ENODEV and says why, and the CPU
 * result of a small gdn forward matches the reference backend.  Uses only the
 * public API; "make check" builds it with -all-static (tests/static.sh) and CI
 * builds it against an installed copy.  Exit status 0 when all holds. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linattn.h>

enum { B = 2, T = 37, H = 2, K = 16, V = 8 };

static uint64_t rng;

static float uniform(float lo, float hi)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (float)((rng >> 40) * (1.0 / 16777216.0));
}

static void fill(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = uniform(lo, hi);
}

static int failed(const char *what)
{
    fprintf(stderr, "static_demo: FAIL: %s\n", what);
    return 1;
}

static int run_gdn(linattn_backend backend, float *q, float *k, float *v, float *g,
                   float *beta, float *o)
{
    linattn_config cfg;
    linattn_ctx *ctx;
    linattn_config_init(&cfg);
    cfg.backend = backend;
    int rc = linattn_ctx_create(&cfg, &ctx);
    if (rc) return rc;
    linattn_delta_io io = {0};
    io.q = linattn_tensor_4d(q, B, T, H, K);
    io.k = linattn_tensor_4d(k, B, T, H, K);
    io.v = linattn_tensor_4d(v, B, T, H, V);
    io.g = linattn_tensor_3d(g, B, T, H);
    io.beta = linattn_tensor_3d(beta, B, T, H);
    io.o = linattn_tensor_4d(o, B, T, H, V);
    for (size_t i = 0; i < (size_t)B * T * H * V; i++) o[i] = NAN; /* poison */
    rc = linattn_gdn_forward(ctx, &io, NULL);
    linattn_ctx_destroy(ctx);
    return rc;
}

int main(void)
{
    static float q[B * T * H * K], k[B * T * H * K], v[B * T * H * V], g[B * T * H],
        beta[B * T * H], o[B * T * H * V], ref[B * T * H * V];
    const char *seed = getenv("LINATTN_TEST_SEED");
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    int bad = 0, count = -1, rc;

    rng = seed && *seed ? strtoull(seed, NULL, 10) : (uint64_t)time(NULL);
    printf("static_demo: linattn %s, seed %llu\n", linattn_version_string(),
           (unsigned long long)rng);
    unsetenv("LINATTN_DEVICE"); /* the auto backend decides by itself */

    /* auto: the CPU, without touching OpenCL */
    if ((rc = linattn_ctx_create(NULL, &ctx)))
        bad |= failed(linattn_last_error());
    else {
        printf("static_demo: auto backend runs on %s\n", linattn_ctx_device(ctx));
        if (strcmp(linattn_ctx_device(ctx), "cpu")) bad |= failed("auto did not pick the CPU");
        linattn_ctx_destroy(ctx);
    }

    /* a forced OpenCL device: ENODEV, and the message says why */
    if (linattn_opencl_built()) {
        linattn_config_init(&cfg);
        cfg.device = "opencl";
        ctx = NULL;
        rc = linattn_ctx_create(&cfg, &ctx);
        printf("static_demo: forced OpenCL: %s: %s\n", linattn_strerror(rc),
               linattn_last_error());
        if (rc != LINATTN_ENODEV || ctx) bad |= failed("forced OpenCL did not give ENODEV");
        else if (!strstr(linattn_last_error(), "statically linked"))
            bad |= failed("the ENODEV message does not mention static linking");
        if (ctx) linattn_ctx_destroy(ctx);
        if (linattn_opencl_devices(NULL, 0, &count) != LINATTN_ENODEV || count != 0)
            bad |= failed("linattn_opencl_devices did not give ENODEV and no device");
    }

    /* the CPU path computes: gdn forward against the reference backend */
    fill(q, sizeof q / sizeof *q, -1, 1);
    fill(k, sizeof k / sizeof *k, -1, 1);
    for (int i = 0; i < B * T * H; i++) { /* L2-normalised keys, as gdn expects */
        double s = 0;
        for (int d = 0; d < K; d++) s += (double)k[i * K + d] * k[i * K + d];
        for (int d = 0; d < K; d++) k[i * K + d] = (float)(k[i * K + d] / sqrt(s));
    }
    fill(v, sizeof v / sizeof *v, -1, 1);
    fill(g, sizeof g / sizeof *g, -0.5f, 0);
    fill(beta, sizeof beta / sizeof *beta, 0, 1);
    if (run_gdn(LINATTN_BACKEND_REF, q, k, v, g, beta, ref) ||
        run_gdn(LINATTN_BACKEND_CPU, q, k, v, g, beta, o))
        bad |= failed(linattn_last_error());
    else {
        double num = 0, den = 0;
        for (size_t i = 0; i < sizeof o / sizeof *o; i++) {
            num += ((double)o[i] - ref[i]) * ((double)o[i] - ref[i]);
            den += (double)ref[i] * ref[i];
        }
        double err = isfinite(num) ? sqrt(num / den) : INFINITY;
        printf("static_demo: gdn cpu vs ref relative error %.3g\n", err);
        if (!(err < 1e-4)) bad |= failed("gdn on the CPU differs from the reference");
    }
    printf("static_demo: %s\n", bad ? "FAILED" : "ok");
    return bad;
}
