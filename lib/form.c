/* linattn - say what ran: the form of each operator call, recorded per
 * context for linattn_ctx_last_form(3) and printed in verbose mode. */
#include <stdio.h>
#include "internal.h"

int linattn_form_ran(linattn_ctx *ctx, int rc, const char *op, int step, const char *form,
                     const char *why)
{
    if (rc || !ctx) return rc;
    ctx->last_form = form;
    ctx->last_why = why;
    if (ctx->verbose)
        fprintf(stderr, "linattn: %s %s ran on %s (%s): %s, %s\n", op, step ? "step" : "forward",
                ctx->backend == LINATTN_BACKEND_REF ? "ref" : ctx->cl ? "opencl" : "cpu",
                ctx->backend == LINATTN_BACKEND_REF ? "double"
                : ctx->cl ? linattn_cl_describe(ctx->cl) : ctx->kern.isa,
                form, why);
    return rc;
}

const char *linattn_form_why(linattn_algo algo, int step, int ref)
{
    if (ref) return "the reference backend's only form";
    if (step) return "a step runs the recurrence";
    if (algo == LINATTN_ALGO_RECURRENT || algo == LINATTN_ALGO_CHUNK) return "forced by opts.algo";
    return NULL;
}

const char *linattn_ctx_last_form(const linattn_ctx *ctx)
{
    const char *f = ctx ? ctx->last_form : NULL;
    return f ? f : "";
}

const char *linattn_ctx_last_reason(const linattn_ctx *ctx)
{
    const char *w = ctx ? ctx->last_why : NULL;
    return w ? w : "";
}
