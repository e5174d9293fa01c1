/* linattn tests - an entry point's arguments built from the operator table
 * (linattn_op_*), so that suites iterate the table instead of naming the
 * operators. */
#ifndef LINATTN_TESTOP_H
#define LINATTN_TESTOP_H

#include <stddef.h>
#include <stdint.h>
#include "linattn.h"

/* One call's arguments, with owned arrays (absent tensors have none). */
typedef struct tu_op {
    const linattn_op_info *op;
    int64_t dims[LINATTN_OP_LETTERS];
    int64_t reps; /* per-token tensors of a step hold reps calls' worth */
    linattn_op_args a;
    float *data[LINATTN_OP_MAX_TENSORS];
    size_t count[LINATTN_OP_MAX_TENSORS]; /* elements of one call */
    int64_t cu[3];
} tu_op;

/* Which tensors tu_op_make gives. */
enum {
    TU_OP_ALL = 0,      /* every tensor, optional ones too */
    TU_OP_REQUIRED = 1  /* the required ones only */
};

/* dims[] from sizes (0: unbound); N and F follow in tu_op_make. */
void tu_op_sizes(int64_t dims[LINATTN_OP_LETTERS], int64_t B, int64_t T, int64_t H, int64_t K,
                 int64_t V, int64_t M, int64_t S);
/* The arrays of op under dims: the tensors that which selects, each of its
 * shape (a step's per-token tensors, those over B that are not in-place
 * state, reps times over); inputs and in-place states fresh random values
 * in the table's fill range (q and k rows of unit length, square state
 * matrices symmetric with a dominant diagonal), outputs poisoned.  packed:
 * a forward over two packed sequences of one row (B = 1, N = 2, the first
 * split tokens long).  Options are their defaults. */
void tu_op_make(tu_op *p, const linattn_op_info *op, const int64_t dims[LINATTN_OP_LETTERS],
                int which, int64_t reps, int64_t split);
void tu_op_free(tu_op *p);
/* Whether tensor i of a step is per token (has reps copies). */
int tu_op_per_token(const tu_op *p, int i);
/* Set an option by name where op has it (returns whether it does). */
int tu_op_set(tu_op *p, const char *option, double value);
/* A softmax step's KV cache for p on ctx (capacity 8), holding the 3 tokens
 * kb [B,3,J,K], vb [B,3,J,V] that tu_op_cache_data made (fresh in [-1, 1]),
 * so that two calls can start from the same cache. */
void tu_op_cache_data(const tu_op *p, float **kb, float **vb);
linattn_kvcache *tu_op_cache(linattn_ctx *ctx, const tu_op *p, const float *kb, const float *vb);
/* "gdn forward" */
const char *tu_op_name(const linattn_op_info *op);

#endif
