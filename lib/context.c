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

/* Decide the device: cfg.device, else LINATTN_DEVICE; "cpu", "opencl" or
 * "opencl:P.D".  With the auto backend and nothing said, an OpenCL GPU or
 * accelerator if there is one (the probe runs once per process), unless an
 * ISA was forced. */
static int choose_device(linattn_ctx *ctx, const linattn_config *cfg, const char *isa)
{
    const char *spec = cfg->device ? cfg->device : getenv("LINATTN_DEVICE");
    int rc;
    if (spec && !*spec) spec = NULL;
    if (spec && strcmp(spec, "cpu") && strncmp(spec, "opencl", 6))
        return linattn_fail(LINATTN_EINVAL, "device %s: expected cpu or opencl[:P.D]", spec);
    if (ctx->backend == LINATTN_BACKEND_OPENCL) {
        if (spec && !strcmp(spec, "cpu"))
            return linattn_fail(LINATTN_EINVAL, "device cpu: the OpenCL backend was asked for");
        return linattn_cl_open(spec ? spec : "opencl", ctx->verbose, &ctx->cl);
    }
    if (ctx->backend != LINATTN_BACKEND_AUTO || (spec && !strcmp(spec, "cpu"))) return LINATTN_OK;
    if (spec) return linattn_cl_open(spec, ctx->verbose, &ctx->cl); /* forced: errors count */
    if (isa) return LINATTN_OK; /* a forced ISA means the CPU */
    if ((rc = linattn_cl_open(NULL, ctx->verbose, &ctx->cl)) && ctx->verbose)
        fprintf(stderr, "linattn: no OpenCL GPU used (%s); running on the CPU\n",
                linattn_last_error());
    ctx->cl_auto = ctx->cl != NULL;
    return LINATTN_OK;
}

int linattn_ctx_create(const linattn_config *cfg_in, linattn_ctx **out)
{
    linattn_config cfg;
    int rc;
    if (!out) return linattn_fail(LINATTN_ENULL, "ctx: output pointer is NULL");
    *out = NULL;
    linattn_config_init(&cfg);
    if (cfg_in) cfg = *cfg_in;
    if (cfg.backend < LINATTN_BACKEND_AUTO || cfg.backend > LINATTN_BACKEND_OPENCL)
        return linattn_fail(LINATTN_EINVAL, "config.backend: unknown value %d", (int)cfg.backend);
    if (cfg.threads < 0)
        return linattn_fail(LINATTN_ERANGE, "config.threads: %d (must be >= 0)", cfg.threads);

    const char *isa = cfg.isa ? cfg.isa : getenv("LINATTN_ISA");
    const char *verbose = getenv("LINATTN_VERBOSE");
    linattn_ctx *ctx = linattn_calloc(1, sizeof *ctx);
    if (!ctx) return linattn_fail(LINATTN_ENOMEM, "ctx: out of memory");
    ctx->verbose = cfg.verbose || (verbose && *verbose && strcmp(verbose, "0"));
    if ((rc = linattn_wspool_create(&ctx->ws))) goto fail;

    ctx->backend = cfg.backend;
    if (ctx->backend == LINATTN_BACKEND_AUTO && isa && !strcmp(isa, "ref"))
        ctx->backend = LINATTN_BACKEND_REF;
    if ((rc = choose_device(ctx, &cfg, isa && *isa ? isa : NULL))) goto fail;
    if (ctx->backend == LINATTN_BACKEND_AUTO)
        ctx->backend = ctx->cl ? LINATTN_BACKEND_OPENCL : LINATTN_BACKEND_CPU;
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
        fprintf(stderr, "linattn: backend %s, isa %s, %d thread%s%s%s\n",
                ctx->backend == LINATTN_BACKEND_REF ? "ref" : ctx->cl ? "opencl" : "cpu",
                ctx->kern.isa, ctx->threads, ctx->threads == 1 ? "" : "s",
                ctx->cl ? ", device " : "", ctx->cl ? linattn_cl_describe(ctx->cl) : "");
    *out = ctx;
    return LINATTN_OK;
fail:
    linattn_ctx_destroy(ctx);
    return rc;
}

void linattn_ctx_destroy(linattn_ctx *ctx)
{
    if (!ctx) return;
    linattn_cl_close(ctx->cl);
    linattn_wspool_destroy(ctx->ws);
    free(ctx);
}

const char *linattn_ctx_device(const linattn_ctx *ctx)
{
    if (!ctx) return "";
    return ctx->cl ? linattn_cl_describe(ctx->cl) : "cpu";
}

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

static linattn_tensor make(const float *data, int ndim, const int64_t *shape)
{
    linattn_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    return t;
}

linattn_tensor linattn_tensor_1d(const float *data, int64_t d0)
{
    return make(data, 1, (int64_t[]){d0});
}
linattn_tensor linattn_tensor_2d(const float *data, int64_t d0, int64_t d1)
{
    return make(data, 2, (int64_t[]){d0, d1});
}
linattn_tensor linattn_tensor_3d(const float *data, int64_t d0, int64_t d1, int64_t d2)
{
    return make(data, 3, (int64_t[]){d0, d1, d2});
}
linattn_tensor linattn_tensor_4d(const float *data, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    return make(data, 4, (int64_t[]){d0, d1, d2, d3});
}
linattn_tensor linattn_tensor_none(void) { return make(NULL, 0, NULL); }

linattn_tensor linattn_tensor_nd(const void *data, linattn_dtype dtype, int ndim,
                                 const int64_t *shape)
{
    linattn_tensor t;
    memset(&t, 0, sizeof t);
    t.data = (const float *)data; /* read as dtype (linattn.h) */
    t.dtype = dtype;
    t.ndim = ndim;
    for (int i = 0; i < ndim && i < LINATTN_MAX_DIMS && shape; i++) t.shape[i] = shape[i];
    return t;
}
