/* linattn-bench - decode after a long context (see benchctx.c). */
#ifndef LINATTN_BENCHCTX_H
#define LINATTN_BENCHCTX_H

#include <stdint.h>
#include "benchsvg.h"
#include "linattn.h"

enum { BENCH_CTX_GDN, BENCH_CTX_KLA, BENCH_CTX_GLA, BENCH_CTX_GKA, BENCH_CTX_KALMAN,
       BENCH_CTX_ELA, BENCH_CTX_SOFTMAX, BENCH_CTX_NOPS };
extern const char *const bench_ctx_names[BENCH_CTX_NOPS];

typedef struct bench_ctx_shape { int64_t H, K, V, M, S; } bench_ctx_shape;

#define BENCH_CTX_MAXSER 32
/* Time one decode step of each op after each context length L[i] on ctx,
 * print a table, the state / KV-cache bytes and the crossover with softmax,
 * and append one plot series per op (tokens/s against L) to ser[*nser..]
 * (at most BENCH_CTX_MAXSER in all).  0 or -1. */
int bench_context(linattn_ctx *ctx, const char *backend, const int *ops, int nops,
                  const int64_t *L, int nl, const bench_ctx_shape *g, long reps,
                  svg_series *ser, int *nser);

#endif
