/* linattn-bench - the operands of any entry point, built from the operator
 * table (see benchop.c). */
#ifndef LINATTN_BENCHOP_H
#define LINATTN_BENCHOP_H

#include <stdint.h>
#include <stdio.h>
#include "linattn.h"

/* One entry point's operands, in host memory or, on an OpenCL context,
 * device buffers; a.cache holds a KV cache of L tokens where it needs one. */
typedef struct bench_op {
    const linattn_op_info *op;
    linattn_ctx *ctx;
    linattn_op_args a;
    float *h[LINATTN_OP_MAX_TENSORS]; /* host arrays, of their tensor's dtype */
    linattn_buffer *b[LINATTN_OP_MAX_TENSORS];
    int64_t L;
    /* a step's per-token inputs hold BENCH_ROT tokens' worth, used in turn
     * (same inputs every step drive the state's untouched directions to
     * subnormal values, which no real decode sees): offset of tensor i at
     * call c = off0[i] + (c % BENCH_ROT) * rot[i] */
    int64_t rot[LINATTN_OP_MAX_TENSORS], off0[LINATTN_OP_MAX_TENSORS];
    long calls;
} bench_op;
#define BENCH_ROT 8

/* The bench's sizes bound to the table's letters; N and F follow from
 * them in bench_op_make. */
void bench_op_sizes(int64_t dims[LINATTN_OP_LETTERS], long B, long T, long H, long K, long V,
                    long M, long S);
/* The delta family's other head counts and gate (linattn_ops(3)): Hq query
 * heads (Q), Hk key heads (J), 0 for the table's default; g per key channel
 * (G = K) when channel is set.  Call after bench_op_sizes. */
void bench_op_heads(int64_t dims[LINATTN_OP_LETTERS], long Hq, long Hk, int channel);
/* Make q, k and v of every later bench_op_make views of one fused array
 * [.., Q*K + J*K + H*V] (a model's fused projection) when on is set. */
void bench_op_strided(int on);
/* The element types of every later bench_op_make: states (a step's
 * in-place tensors, a forward's tensors over N) in state, the others in
 * dtype; an operator whose table entry has f32_states keeps float32 states
 * (a KV cache is float32 whatever they are). */
void bench_op_dtypes(linattn_dtype dtype, linattn_dtype state);
/* Whether t is a state, and the type op's states are made in. */
int bench_op_is_state(const linattn_op_tensor *t);
linattn_dtype bench_op_state_dtype(const linattn_op_info *op);
/* Whether op's q, k and v can be views of one fused array: [lead.., heads,
 * K|V] with the same leading letters. */
int bench_op_fusable(const linattn_op_info *op);
/* Whether any tensor of op has the dimension letter c. */
int bench_op_uses(const linattn_op_info *op, char c);
/* "H16xK128xV128": the sizes of the letters H K V M S that op uses. */
void bench_op_shape_name(const linattn_op_info *op, const int64_t dims[LINATTN_OP_LETTERS],
                         char *out, size_t cap);
/* Every tensor but the optional initial states (inputs over N), filled
 * uniformly in the table's fill range from *seed (token inputs over K are
 * scaled to unit rows, as models feed keys); option "algo", where there is
 * one, set to algo; a KV cache of L tokens where the entry point needs one.
 * 0, or -1 with linattn_last_error() telling. */
int bench_op_make(bench_op *s, linattn_ctx *ctx, const linattn_op_info *op,
                  const int64_t dims[LINATTN_OP_LETTERS], linattn_algo algo, int64_t L,
                  unsigned *seed);
/* Options of the operator table given as "name=value" (--set): every later
 * bench_op_make applies those its entry point takes.  0, or -1 when the text
 * is not name=value or the list is full. */
int bench_op_set(const char *name_value);
/* "# options set: a=1 b=2" (nothing when none was given). */
void bench_op_print_sets(FILE *f);
/* The first --set that none of the n operators' entry points takes, or whose
 * value the first that takes it refuses; NULL when every one applies. */
const char *bench_op_bad_set(const char *const *ops, int n);
/* One call (a bench_call_fn); a KV cache is cut back to L tokens after it. */
int bench_op_call(void *s);
/* Bytes of state one call reads and updates in place (inputs-outputs, at
 * their element sizes), or of the KV cache's L tokens. */
double bench_op_state_bytes(const bench_op *s);
void bench_op_free(bench_op *s);

#endif
