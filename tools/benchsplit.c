/* linattn-bench --devices N: one sequence's prefill of the delta family
 * split over N OpenCL contexts (linattn_delta_forward_split) against the
 * whole prefill on the first of them.  Every tensor is in host memory for
 * both (the split copies each segment in and out of its device). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "benchsplit.h"
#include "benchsys.h"

typedef struct split_call {
    linattn_ctx **ctxs;
    int n;
    linattn_delta_op op;
    linattn_delta_io io;
} split_call;

static int call_split(void *arg)
{
    const split_call *c = arg;
    return linattn_delta_forward_split(c->ctxs, c->n, c->op, &c->io, NULL);
}

static void unit_rows(float *x, long rows, long n)
{
    for (long r = 0; r < rows; r++) {
        double s = 0;
        for (long i = 0; i < n; i++) s += (double)x[r * n + i] * x[r * n + i];
        const float f = (float)(1.0 / sqrt(s + 1e-6));
        for (long i = 0; i < n; i++) x[r * n + i] *= f;
    }
}

static double relerr(const float *x, const float *ref, size_t n)
{
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* The OpenCL device of context i: the usable devices in turn ("opencl:P.D"),
 * GPUs and accelerators only when there are any (a CPU device beside GPUs
 * would set the pace). */
static int device_spec(int i, char *spec, size_t len)
{
    linattn_device_info dev[16];
    int n = 0, usable[16], nu = 0, gpus = 0;
    if (linattn_opencl_devices(dev, 16, &n)) return -1;
    for (int d = 0; d < n && d < 16; d++) gpus |= dev[d].usable && dev[d].is_gpu;
    for (int d = 0; d < n && d < 16; d++)
        if (dev[d].usable && (dev[d].is_gpu || !gpus)) usable[nu++] = d;
    if (!nu) return -1;
    const linattn_device_info *x = &dev[usable[i % nu]];
    snprintf(spec, len, "opencl:%d.%d", x->platform, x->device);
    return 0;
}

int bench_split(const char *name, long B, long T, long H, long K, long V, int ndev, long reps)
{
    const linattn_delta_op op = !strcmp(name, "gdn") ? LINATTN_OP_GDN
                                : !strcmp(name, "kla") ? LINATTN_OP_KLA
                                : !strcmp(name, "gla") ? LINATTN_OP_GLA : (linattn_delta_op)-1;
    if ((int)op < 0) {
        printf("# --devices: %s skipped (the split takes gdn, kla, gla)\n", name);
        return 0;
    }
    unsigned seed = 4242;
    const size_t nqk = (size_t)B * T * H * K, nv = (size_t)B * T * H * V, ng = (size_t)B * T * H;
    float *q = bench_randbuf(nqk, -1, 1, &seed), *k = bench_randbuf(nqk, -1, 1, &seed);
    float *v = bench_randbuf(nv, -1, 1, &seed), *g = bench_randbuf(ng, -0.1f, 0, &seed);
    float *beta = bench_randbuf(ng, 0, 1, &seed), *o1 = calloc(nv, sizeof(float));
    float *on = calloc(nv, sizeof(float));
    linattn_ctx *ctxs[64] = {0};
    int rc = 0;
    if (!q || !k || !v || !g || !beta || !o1 || !on || ndev > 64) {
        fprintf(stderr, "linattn-bench: --devices: out of memory\n");
        rc = 1;
        goto out;
    }
    unit_rows(q, (long)(nqk / K), K);
    unit_rows(k, (long)(nqk / K), K);
    for (int i = 0; i < ndev && !rc; i++) {
        char spec[32];
        linattn_config cfg;
        linattn_config_init(&cfg);
        cfg.backend = LINATTN_BACKEND_OPENCL;
        cfg.device = spec;
        if (device_spec(i, spec, sizeof spec) || linattn_ctx_create(&cfg, &ctxs[i])) {
            fprintf(stderr, "linattn-bench: --devices: context %d: %s\n", i, linattn_last_error());
            rc = 1;
        } else if (i == 0 || strcmp(linattn_ctx_device(ctxs[i]), linattn_ctx_device(ctxs[i - 1]))) {
            printf("# --devices: context %d on %s\n", i, linattn_ctx_device(ctxs[i]));
        }
    }
    if (rc) goto out;
    split_call c = {.ctxs = ctxs, .op = op};
    c.io.q = linattn_tensor_4d(q, B, T, H, K);
    c.io.k = linattn_tensor_4d(k, B, T, H, K);
    c.io.v = linattn_tensor_4d(v, B, T, H, V);
    c.io.g = linattn_tensor_3d(g, B, T, H);
    if (op != LINATTN_OP_GLA) c.io.beta = linattn_tensor_3d(beta, B, T, H);
    double sec[2] = {0, 0};
    for (int i = 0; i < 2 && !rc; i++) {
        c.n = i ? ndev : 1;
        c.io.o = linattn_tensor_4d(i ? on : o1, B, T, H, V);
        if (bench_time_once(call_split, &c, reps, &sec[i])) {
            fprintf(stderr, "linattn-bench: --devices %d: %s\n", c.n, linattn_last_error());
            rc = 1;
        }
    }
    if (!rc) {
        const double tok = (double)B * T;
        printf("%-7s split   B=%ld T=%ld H=%ld K=%ld V=%ld  1 device %.3f ms (%.0f tokens/s)  "
               "%d devices %.3f ms (%.0f tokens/s)  speedup %.2fx  o relerr %.1e\n",
               name, B, T, H, K, V, sec[0] * 1e3, tok / sec[0], ndev, sec[1] * 1e3,
               tok / sec[1], sec[0] / sec[1], relerr(on, o1, nv));
    }
out:
    for (int i = 0; i < ndev && i < 64; i++) linattn_ctx_destroy(ctxs[i]);
    free(q); free(k); free(v); free(g); free(beta); free(o1); free(on);
    return rc;
}
