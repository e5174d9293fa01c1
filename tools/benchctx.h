/* linattn-bench - decode after a long context (see benchctx.c). */
#ifndef LINATTN_BENCHCTX_H
#define LINATTN_BENCHCTX_H

#include <stdint.h>
#include "benchsvg.h"
#include "linattn.h"

#define BENCH_CTX_MAXOPS 16

typedef struct bench_ctx_shape { int64_t H, K, V, M, S; } bench_ctx_shape;

#define BENCH_CTX_MAXSER 32
/* Time one decode step of each step entry point ops[] (at most
 * BENCH_CTX_MAXOPS) after each context length L[i] (at most 16) on ctx,
 * print a table, the state / KV-cache bytes and the crossover with the
 * first that keeps a KV cache (softmax),
 * and append one plot series per op (tokens/s against L) to ser[*nser..]
 * (at most BENCH_CTX_MAXSER in all).  0 or -1. */
int bench_context(linattn_ctx *ctx, const char *backend, const linattn_op_info *const *ops,
                  int nops, const int64_t *L, int nl, const bench_ctx_shape *g, long reps,
                  svg_series *ser, int *nser);

#endif
