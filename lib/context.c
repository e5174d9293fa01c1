/* linattn - contexts: backend, ISA and thread decisions, made once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void linattn_config_init(linattn_config *cfg)
{
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->backend = LINATTN_BACKEND_AUTO;
}

static int env_threads(int *out)
{
    const char *s = getenv("LINATTN_NUM_THREADS");
    *out = 0;
    if (!s || !*s) return LINATTN_OK;
    char *end;
    long n = strtol(s, &end, 10);
    if (*end || n < 1 || n > 4096)
        return linattn_fail(LINATTN_ERANGE, "LINATTN_NUM_THREADS=%s: expected 1..4096", s);
    *out = (int)n;
    return LINATTN_OK;
}

static int default_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* LINATTN_DEVICE: only "cpu" exists until the OpenCL backend is built. */
static int check_device_env(void)
{
    const char *s = getenv("LINATTN_DEVICE");
    if (!s || !*s || !strcmp(s, "cpu")) return LINATTN_OK;
    if (!strncmp(s, "opencl", 6))
        return linattn_fail(LINATTN_EUNSUPPORTED,
                            "LINATTN_DEVICE=%s: this build has no OpenCL backend", s);
    return linattn_fail(LINATTN_EINVAL, "LINATTN_DEVICE=%s: expected cpu or opencl[:P.D]", s);
}

int linattn_ctx_create(linattn_ctx **out, const linattn_config *cfg_in)
{
    linattn_config cfg;
    int rc;
    if (!out) return linattn_fail(LINATTN_ENULL, "ctx: output pointer is NULL");
    *out = NULL;
    linattn_config_init(&cfg);
    if (cfg_in) cfg = *cfg_in;
    if (cfg.backend < LINATTN_BACKEND_AUTO || cfg.backend > LINATTN_BACKEND_CPU)
        return linattn_fail(LINATTN_EINVAL, "config.backend: unknown value %d", (int)cfg.backend);
    if (cfg.threads < 0)
        return linattn_fail(LINATTN_ERANGE, "config.threads: %d (must be >= 0)", cfg.threads);

    const char *isa = cfg.isa ? cfg.isa : getenv("LINATTN_ISA");
    const char *verbose = getenv("LINATTN_VERBOSE");
    linattn_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return linattn_fail(LINATTN_ENOMEM, "ctx: out of memory");
    ctx->verbose = cfg.verbose || (verbose && *verbose && strcmp(verbose, "0"));

    ctx->backend = cfg.backend;
    if (ctx->backend == LINATTN_BACKEND_AUTO) {
        if ((rc = check_device_env())) goto fail;
        ctx->backend = (isa && !strcmp(isa, "ref")) ? LINATTN_BACKEND_REF : LINATTN_BACKEND_CPU;
    }
    if ((rc = linattn_kernels_select(&ctx->kern, (isa && strcmp(isa, "ref")) ? isa : NULL)))
        goto fail;

    ctx->threads = cfg.threads;
    if (!ctx->threads) {
        if ((rc = env_threads(&ctx->threads))) goto fail;
        if (!ctx->threads) ctx->threads = default_threads();
    }
    /* Without OpenMP the work is split the same way (so results are the same)
     * but the parts run one after another on the calling thread. */
    if (ctx->verbose)
        fprintf(stderr, "linattn: backend %s, isa %s, %d thread%s\n",
                ctx->backend == LINATTN_BACKEND_REF ? "ref" : "cpu", ctx->kern.isa,
                ctx->threads, ctx->threads == 1 ? "" : "s");
    *out = ctx;
    return LINATTN_OK;
fail:
    free(ctx);
    return rc;
}

void linattn_ctx_destroy(linattn_ctx *ctx) { free(ctx); }

linattn_backend linattn_ctx_backend(const linattn_ctx *ctx)
{
    return ctx ? ctx->backend : LINATTN_BACKEND_AUTO;
}

int linattn_ctx_threads(const linattn_ctx *ctx) { return ctx ? ctx->threads : 0; }

const char *linattn_ctx_isa(const linattn_ctx *ctx)
{
    if (!ctx) return "";
    return ctx->backend == LINATTN_BACKEND_REF ? "ref" : ctx->kern.isa;
}

static linattn_tensor make(float *data, int ndim, const int64_t *shape)
{
    linattn_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    return t;
}

linattn_tensor linattn_tensor_1d(float *data, int64_t d0)
{
    return make(data, 1, (int64_t[]){d0});
}
linattn_tensor linattn_tensor_2d(float *data, int64_t d0, int64_t d1)
{
    return make(data, 2, (int64_t[]){d0, d1});
}
linattn_tensor linattn_tensor_3d(float *data, int64_t d0, int64_t d1, int64_t d2)
{
    return make(data, 3, (int64_t[]){d0, d1, d2});
}
linattn_tensor linattn_tensor_4d(float *data, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    return make(data, 4, (int64_t[]){d0, d1, d2, d3});
}
linattn_tensor linattn_tensor_none(void) { return make(NULL, 0, NULL); }
