/* linattn-bench - timing of kalman (see benchkalman.c). */
#ifndef LINATTN_BENCHKALMAN_H
#define LINATTN_BENCHKALMAN_H

#include "linattn.h"

/* Median seconds of one forward over B x T tokens of M x S lanes. */
int bench_kalman_prefill(linattn_ctx *ctx, long B, long T, long M, long S, linattn_algo algo,
                         long reps, double *sec);
/* Median seconds of one decode step of B sequences. */
int bench_kalman_decode(linattn_ctx *ctx, long B, long M, long S, long reps, double *sec);

#endif
