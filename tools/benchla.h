/* linattn-bench --mode onnx: times of the ONNX entry point (see benchla.c). */
#ifndef LINATTN_BENCHLA_H
#define LINATTN_BENCHLA_H

#include "linattn.h"

/* One LinearAttention node: B sequences of T tokens, Hq query and Hkv
 * key/value heads of K and V channels, decay per head or per key channel
 * (channel set), update_rule and algo as in linattn_la_attrs.  decode set:
 * T = 1 with past_state, present_state written into it (a decode step);
 * else a prefill from a zero state (past_state absent). */
typedef struct bench_la_shape {
    long B, T, Hq, Hkv, K, V;
    int rule, channel, decode;
    linattn_algo algo;
} bench_la_shape;

/* Median seconds of one linattn_linear_attention call on ctx over reps timed
 * calls (decode: repetitions of about 50 ms each, inputs of 8 tokens used in
 * turn).  0, or -1 with linattn_last_error() telling. */
int bench_la_time(linattn_ctx *ctx, const bench_la_shape *s, long reps, double *sec);

#endif
