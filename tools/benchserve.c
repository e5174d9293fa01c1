/* linattn-bench --mode serve: the serving shapes of linattn_gdn(3), SERVING.
 * (1) Continuous batching: 8 decode rows and one prompt of 512 tokens, each
 * with its state in a pool of 9 slots, as one packed forward with
 * state_indices, against the two calls an engine makes without slots (a
 * step over the 8 rows' states, a forward over the prompt).  (2) The verify
 * step of speculative decoding: a forward of 8 tokens for 8 sequences with
 * W = 0, 4 and 8 rollback states (hW) per sequence.  The variants of each
 * are run alternately, reps times, and the medians reported.  Host tensors
 * (on OpenCL they are copied in and out on every call). */
#include <stdio.h>
#include <stdlib.h>
#include "benchserve.h"
#include "benchsys.h"

#define NDEC 8
#define PROMPT 512
#define NSPEC 8
#define TSPEC 8

typedef struct serve_data {
    linattn_ctx *ctx;
    linattn_delta_op op;
    long H, K, V;
    float *q, *k, *v, *g, *beta, *o, *pool, *hw;
    int64_t cu[NDEC + 2], slots[NDEC + 1];
    int W; /* rollback rows per sequence in the verify forward */
} serve_data;

static int mixed_call(void *arg)
{
    serve_data *d = arg;
    const int64_t T = NDEC + PROMPT;
    linattn_delta_io io = {
        .q = linattn_tensor_4d(d->q, 1, T, d->H, d->K), .k = linattn_tensor_4d(d->k, 1, T, d->H, d->K),
        .v = linattn_tensor_4d(d->v, 1, T, d->H, d->V), .g = linattn_tensor_3d(d->g, 1, T, d->H),
        .o = linattn_tensor_4d(d->o, 1, T, d->H, d->V),
        .h0 = linattn_tensor_4d(d->pool, NDEC + 1, d->H, d->K, d->V),
        .hT = linattn_tensor_4d(d->pool, NDEC + 1, d->H, d->K, d->V),
        .cu_seqlens = d->cu, .n_seqs = NDEC + 1, .state_indices = d->slots};
    if (d->op != LINATTN_OP_GLA) io.beta = linattn_tensor_3d(d->beta, 1, T, d->H);
    return linattn_delta_forward(d->ctx, d->op, &io, NULL);
}

/* The same work as a step over the first NDEC slots and a forward. */
static int separate_calls(void *arg)
{
    serve_data *d = arg;
    const size_t HK = (size_t)d->H * d->K, HV = (size_t)d->H * d->V;
    linattn_delta_step_io s = {
        .q = linattn_tensor_3d(d->q, NDEC, d->H, d->K), .k = linattn_tensor_3d(d->k, NDEC, d->H, d->K),
        .v = linattn_tensor_3d(d->v, NDEC, d->H, d->V), .g = linattn_tensor_2d(d->g, NDEC, d->H),
        .o = linattn_tensor_3d(d->o, NDEC, d->H, d->V),
        .state_h = linattn_tensor_4d(d->pool, NDEC, d->H, d->K, d->V)};
    if (d->op != LINATTN_OP_GLA) s.beta = linattn_tensor_2d(d->beta, NDEC, d->H);
    int rc = linattn_delta_step(d->ctx, d->op, &s, NULL);
    if (rc) return rc;
    float *h = d->pool + (size_t)NDEC * d->H * d->K * d->V;
    linattn_delta_io io = {
        .q = linattn_tensor_4d(d->q + NDEC * HK, 1, PROMPT, d->H, d->K),
        .k = linattn_tensor_4d(d->k + NDEC * HK, 1, PROMPT, d->H, d->K),
        .v = linattn_tensor_4d(d->v + NDEC * HV, 1, PROMPT, d->H, d->V),
        .g = linattn_tensor_3d(d->g + NDEC * d->H, 1, PROMPT, d->H),
        .o = linattn_tensor_4d(d->o + NDEC * HV, 1, PROMPT, d->H, d->V),
        .h0 = linattn_tensor_4d(h, 1, d->H, d->K, d->V), .hT = linattn_tensor_4d(h, 1, d->H, d->K, d->V)};
    if (d->op != LINATTN_OP_GLA)
        io.beta = linattn_tensor_3d(d->beta + NDEC * d->H, 1, PROMPT, d->H);
    return linattn_delta_forward(d->ctx, d->op, &io, NULL);
}

static int verify_call(void *arg)
{
    serve_data *d = arg;
    linattn_delta_io io = {
        .q = linattn_tensor_4d(d->q, NSPEC, TSPEC, d->H, d->K),
        .k = linattn_tensor_4d(d->k, NSPEC, TSPEC, d->H, d->K),
        .v = linattn_tensor_4d(d->v, NSPEC, TSPEC, d->H, d->V),
        .g = linattn_tensor_3d(d->g, NSPEC, TSPEC, d->H),
        .o = linattn_tensor_4d(d->o, NSPEC, TSPEC, d->H, d->V),
        .h0 = linattn_tensor_4d(d->pool, NSPEC, d->H, d->K, d->V),
        .hT = linattn_tensor_4d(d->pool, NSPEC, d->H, d->K, d->V)};
    if (d->op != LINATTN_OP_GLA) io.beta = linattn_tensor_3d(d->beta, NSPEC, TSPEC, d->H);
    if (d->W) io.hW = linattn_tensor_4d(d->hw, (int64_t)NSPEC * d->W, d->H, d->K, d->V);
    return linattn_delta_forward(d->ctx, d->op, &io, NULL);
}

/* Seconds per call over enough calls to last about 20 ms (n found once). */
static int time_calls(bench_call_fn fn, void *arg, long *n, double *sec)
{
    int rc;
    if (*n <= 0) {
        const double t0 = bench_now();
        if ((rc = fn(arg))) return rc;
        const double t = bench_now() - t0;
        *n = t > 0.02 ? 1 : (long)(0.02 / (t > 1e-6 ? t : 1e-6)) + 1;
    }
    const double t0 = bench_now();
    for (long i = 0; i < *n; i++)
        if ((rc = fn(arg))) return rc;
    *sec = (bench_now() - t0) / (double)*n;
    return 0;
}

int bench_serve(linattn_ctx *ctx, const char *backend, linattn_delta_op op, const char *name,
                long H, long K, long V, long reps)
{
    unsigned seed = 4242;
    const size_t T = NDEC + PROMPT > NSPEC * TSPEC ? NDEC + PROMPT : NSPEC * TSPEC;
    serve_data d = {.ctx = ctx, .op = op, .H = H, .K = K, .V = V};
    const size_t S = (size_t)H * K * V;
    d.q = bench_randbuf(T * H * K, -0.08f, 0.08f, &seed);
    d.k = bench_randbuf(T * H * K, -0.08f, 0.08f, &seed);
    d.v = bench_randbuf(T * H * V, -1.0f, 1.0f, &seed);
    d.g = bench_randbuf(T * H, -0.1f, 0.0f, &seed);
    d.beta = bench_randbuf(T * H, 0.0f, 1.0f, &seed);
    d.o = bench_randbuf(T * H * V, 0.0f, 0.0f, &seed);
    d.pool = bench_randbuf(S * (NDEC + 1 > NSPEC ? NDEC + 1 : NSPEC), 0.0f, 0.0f, &seed);
    d.hw = bench_randbuf(S * NSPEC * TSPEC, 0.0f, 0.0f, &seed);
    int rc = !d.q || !d.k || !d.v || !d.g || !d.beta || !d.o || !d.pool || !d.hw;
    if (rc) fprintf(stderr, "linattn-bench: out of memory\n");
    for (int i = 0; i <= NDEC; i++) {
        d.cu[i + 1] = i < NDEC ? i + 1 : NDEC + PROMPT;
        d.slots[i] = NDEC - i; /* any order: the prompt takes slot 0 */
    }
    if (reps < 3) reps = 3;
    double *tm = calloc((size_t)reps * 5, sizeof *tm);
    if (!tm) rc = 1;
    long nc[5] = {0, 0, 0, 0, 0};
    static const int Ws[3] = {0, 4, 8};
    for (long r = 0; r < reps && !rc; r++) { /* alternated */
        rc = time_calls(mixed_call, &d, &nc[0], &tm[0 * reps + r]);
        if (!rc) rc = time_calls(separate_calls, &d, &nc[1], &tm[1 * reps + r]);
        for (int w = 0; w < 3 && !rc; w++) {
            d.W = Ws[w];
            rc = time_calls(verify_call, &d, &nc[2 + w], &tm[(2 + w) * reps + r]);
        }
    }
    if (rc) {
        fprintf(stderr, "linattn-bench: serve %s on %s: %s\n", name, backend,
                linattn_last_error());
    } else {
        const double mx = bench_median(tm, (int)reps), sp = bench_median(tm + reps, (int)reps);
        printf("# serve %s on %s (%s), H=%ld K=%ld V=%ld, medians of %ld alternated runs\n", name,
               backend, linattn_ctx_device(ctx), H, K, V, reps);
        printf("%-44s %10s %12s\n", "call", "median_ms", "tokens/s");
        printf("%-44s %10.3f %12.0f\n", "8 decode + 512 prompt, one call with slots", mx * 1e3,
               (NDEC + PROMPT) / mx);
        printf("%-44s %10.3f %12.0f\n", "8 decode + 512 prompt, step + forward", sp * 1e3,
               (NDEC + PROMPT) / sp);
        const double v0 = bench_median(tm + 2 * reps, (int)reps);
        for (int w = 0; w < 3; w++) {
            const double v = w ? bench_median(tm + (2 + w) * reps, (int)reps) : v0;
            char what[64];
            snprintf(what, sizeof what, "verify B=8 T=8, W=%d rollback states", Ws[w]);
            printf("%-44s %10.3f %12.0f  (x%.2f)\n", what, v * 1e3, NSPEC * TSPEC / v, v / v0);
        }
    }
    free(tm);
    free(d.q); free(d.k); free(d.v); free(d.g); free(d.beta); free(d.o); free(d.pool); free(d.hw);
    return rc ? -1 : 0;
}
