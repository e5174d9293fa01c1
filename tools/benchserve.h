/* linattn-bench --mode serve: serving shapes of the delta family (see benchserve.c). */
#ifndef LINATTN_BENCHSERVE_H
#define LINATTN_BENCHSERVE_H

#include "linattn.h"

/* On ctx, for the delta operator op: (1) 8 decode rows and one prompt of
 * 512 tokens as one forward with slots against a step plus a forward,
 * (2) a forward of 8 tokens for 8 sequences with W = 0, 4, 8 rollback
 * states.  Medians of reps (>= 3) alternated runs; prints a table.  0 or -1. */
int bench_serve(linattn_ctx *ctx, const char *backend, linattn_delta_op op, const char *name,
                long H, long K, long V, long reps);

#endif
