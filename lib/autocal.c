/* linattn - auto's measured choice between two forms of one shape: both
 * run on a small problem of the caller's (one head, a few chunks of
 * tokens) on the calling thread, alternately, the faster of the best of
 * three wins; the choice is kept in the context by shape.  This measures
 * what a model of flop counts cannot know: a BLAS that misdetects the CPU,
 * the speed of the exps, the cache sizes. */
#include <stdio.h>
#include <stdatomic.h>
#include <time.h>
#include "internal.h"

#define REPS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void linattn_cal_fill(float *x, size_t n, float lo, float hi, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)(s >> 8) * (1.0f / 16777216.0f);
    }
}

int linattn_cal_worth(const linattn_ctx *ctx, int64_t work, int tokens)
{
    return work >= 8 * (int64_t)(2 + 2 * REPS) * tokens * linattn_max_threads(ctx);
}

int linattn_cal_cached(const linattn_ctx *ctx, uint64_t key)
{
    for (int i = 0; i < LINATTN_CAL_SLOTS; i++) {
        const uint64_t k = ctx->cal_key[i];
        if (!k) break;
        if (k == key) {
            const int p = ctx->cal_pick[i];
            return p ? p - 1 : -1; /* 0: slot taken, result not stored yet */
        }
    }
    return -1;
}

static void store(linattn_ctx *ctx, uint64_t key, int chunk)
{
    for (int i = 0; i < LINATTN_CAL_SLOTS; i++) {
        uint64_t k = 0;
        if (atomic_compare_exchange_strong(&ctx->cal_key[i], &k, key) || k == key) {
            ctx->cal_pick[i] = chunk + 1;
            return;
        }
    }
    /* table full: not kept, measured again next time */
}

int linattn_cal_pick(linattn_ctx *ctx, uint64_t key, const char *what, int tokens,
                     linattn_cal_fn run, void *arg)
{
    const int have = linattn_cal_cached(ctx, key);
    if (have >= 0) return have;
    /* the chunk jobs call BLAS on one thread, as they do when they run */
    const int began = linattn_blas_serial_begin(1);
    double best[2] = {1e30, 1e30};
    run(arg, 0); /* warm-up: caches, first-touch pages, BLAS's buffers */
    run(arg, 1);
    for (int r = 0; r < REPS; r++)
        for (int f = 0; f < 2; f++) {
            const int form = r & 1 ? 1 - f : f; /* alternate which runs first */
            const double t0 = now();
            run(arg, form);
            const double dt = now() - t0;
            if (dt < best[form]) best[form] = dt;
        }
    linattn_blas_serial_end(began);
    const int chunk = best[1] < best[0];
    store(ctx, key, chunk);
    if (ctx->verbose)
        fprintf(stderr, "linattn: %s auto measured %d tokens of one head: recurrent %.3g us, "
                "chunk %.3g us per token: %s\n", what, tokens, 1e6 * best[0] / tokens,
                1e6 * best[1] / tokens, chunk ? "chunk" : "recurrent");
    return chunk;
}
