/* linattn-bench --mode context: decode one token after L tokens of context,
 * for each step entry point of the operator table, against those that
 * attend over a KV cache of L tokens (softmax); the bytes each keeps (state,
 * or KV cache) and where the cache stops being faster.  Operands (see
 * benchop.c) live in device buffers on an OpenCL context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "benchctx.h"
#include "benchop.h"
#include "benchsvg.h"
#include "benchsys.h"

static unsigned seed = 777;

static void human(double bytes, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB"};
    int i = 0;
    while (bytes >= 1024.0 && i < 3) {
        bytes /= 1024.0;
        i++;
    }
    snprintf(out, cap, "%.4g %s", bytes, u[i]);
}

/* Where softmax's step time meets an operator's (lin): the context below
 * which softmax is faster.  Linear between the measured lengths, and below
 * the first along the line through the first two.  Returns the length, 0
 * when softmax is slower even with an empty cache, -1 when it is faster at
 * every measured length. */
static double crossover(const int64_t *L, const double *soft, int n, double lin)
{
    int i = 0;
    while (i < n && soft[i] <= lin) i++;
    if (i == n) return -1;
    const int j = i ? i - 1 : 0, k = i ? i : (n > 1 ? 1 : 0);
    if (j == k) return 0;
    const double b = (soft[k] - soft[j]) / (double)(L[k] - L[j]);
    if (b <= 0) return i ? (double)L[j] : 0;
    const double x = (double)L[j] + (lin - soft[j]) / b;
    return x > 0 ? x : 0;
}

int bench_context(linattn_ctx *ctx, const char *backend, const linattn_op_info *const *ops,
                  int nops, const int64_t *L, int nl, const bench_ctx_shape *g, long reps,
                  svg_series *ser, int *nser)
{
    double sec[BENCH_CTX_MAXOPS][16], bytes[BENCH_CTX_MAXOPS][16];
    int base = -1; /* the first with a KV cache: the one the others are compared with */
    if (nops > BENCH_CTX_MAXOPS) nops = BENCH_CTX_MAXOPS;
    if (nl > 16) nl = 16;
    for (int oi = 0; oi < nops && base < 0; oi++)
        if (ops[oi]->cache) base = oi;
    int64_t dims[LINATTN_OP_LETTERS];
    bench_op_sizes(dims, 1, 0, (long)g->H, (long)g->K, (long)g->V, (long)g->M, (long)g->S);
    printf("# context decode: B=1, H=%ld, K=%ld, V=%ld (kalman M=%ld, S=%ld, ela exp), one token "
           "after L of context; softmax attends over a KV cache of L tokens\n",
           (long)g->H, (long)g->K, (long)g->V, (long)g->M, (long)g->S);
    printf("%-8s %-7s %8s %10s %11s %12s %9s\n", "op", "backend", "L", "ms/token", "tokens/s",
           "state/KV", "speedup");
    for (int li = 0; li < nl; li++) {
        for (int oi = 0; oi < nops; oi++) {
            bench_op s;
            int rc = bench_op_make(&s, ctx, ops[oi], dims, LINATTN_ALGO_AUTO, L[li], &seed);
            if (!rc && li == 0 && oi == 0) { /* wake the threads (ours, BLAS's) untimed */
                const double t0 = bench_now();
                while (!rc && bench_now() - t0 < 0.2) rc = bench_op_call(&s);
            }
            if (rc || bench_time_repeated(bench_op_call, &s, reps, &sec[oi][li])) {
                fprintf(stderr, "linattn-bench: %s L=%lld: %s\n", ops[oi]->name,
                        (long long)L[li], linattn_last_error());
                bench_op_free(&s);
                return -1;
            }
            bytes[oi][li] = bench_op_state_bytes(&s);
            bench_op_free(&s);
        }
        for (int oi = 0; oi < nops; oi++) {
            char hb[32], rel[32] = "";
            human(bytes[oi][li], hb, sizeof hb);
            if (base >= 0 && !ops[oi]->cache)
                snprintf(rel, sizeof rel, "%.2fx", sec[base][li] / sec[oi][li]);
            printf("%-8s %-7s %8lld %10.4f %11.1f %12s %9s\n", ops[oi]->name, backend,
                   (long long)L[li], sec[oi][li] * 1e3, 1.0 / sec[oi][li], hb, rel);
        }
        fflush(stdout);
    }
    if (base >= 0)
        for (int oi = 0; oi < nops; oi++) {
            const char *name = ops[oi]->name, *bn = ops[base]->name;
            if (ops[oi]->cache) continue;
            double tl[16]; /* its step does not depend on L: the median over L */
            memcpy(tl, sec[oi], sizeof(double) * (size_t)nl);
            const double lin = bench_median(tl, nl);
            const double x = crossover(L, sec[base], nl, lin);
            if (x < 0)
                printf("# crossover %s: %s decode is faster at every measured length\n", name, bn);
            else if (x == 0)
                printf("# crossover %s: %s decode is slower at every length, even with an "
                       "empty cache\n", name, bn);
            else
                printf("# crossover %s: %s decode is faster below about %.0f tokens of "
                       "context\n", name, bn, x);
        }
    for (int oi = 0; oi < nops && *nser < BENCH_CTX_MAXSER; oi++) {
        svg_series *e = &ser[(*nser)++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s %s", ops[oi]->name, backend);
        for (int li = 0; li < nl && li < 32; li++) {
            e->x[e->n] = (double)L[li];
            e->y[e->n++] = 1.0 / sec[oi][li];
        }
    }
    return 0;
}
