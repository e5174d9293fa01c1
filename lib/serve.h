/* linattn - serving fields of the delta family (linattn_gdn(3), SERVING):
 * state pools with slots, rollback states (hW) and prefix checkpoints (hC).
 * Checks, the cut points a sequence is run in, and the OpenCL path that
 * runs a serving call as plain calls on views. */
#ifndef LINATTN_SERVE_H
#define LINATTN_SERVE_H

#include "internal.h"

typedef struct linattn_serve {
    const int64_t *slot;        /* NULL: sequence n uses state n; -1: padding */
    const unsigned char *init;  /* NULL: every sequence reads its state */
    linattn_rows w, c;          /* hW, hC rows [R,H,K,V] (p NULL: absent); set by the driver */
    int64_t W, C, every;        /* window rows and checkpoints per sequence */
    const int64_t *offs;        /* NULL, or [N*C] checkpoint token counts (0: none) */
    int on;                     /* any serving field given */
} linattn_serve;

/* The serving fields of x (a forward's, or a step's with step set: x->h0 =
 * x->hT = state_h, sequences = batch rows of one token) against the
 * shapes: nseq sequences (cu: packed offsets or NULL with T tokens each),
 * hsh = {nseq, H, K, V}.  Checks h0 and hT (pools when slotted) and
 * fills sv; nothing is written. */
int linattn_serve_check(const linattn_delta_io *x, int64_t nseq, const int64_t *cu, int64_t T,
                        const int64_t hsh[4], int step, linattn_serve *sv);

/* Slots in -1 .. P-1 (else LINATTN_ERANGE), those >= 0 distinct (else
 * LINATTN_EINVAL); every serving operator checks its state_indices so. */
int linattn_serve_slots(const int64_t *slot, int64_t n, int64_t P);
/* checkpoint_offsets o [nseq*C]: per sequence 1 .. len ascending, then
 * zeros (else LINATTN_ERANGE or LINATTN_EINVAL). */
int linattn_serve_offsets(const int64_t *o, int64_t nseq, int64_t C, const int64_t *cu,
                          int64_t T);
/* Views for the OpenCL paths: indices i0 .. i0+n0 of dimension 0 and, when
 * n1 >= 0, i1 .. i1+n1 of dimension 1 (absent stays absent); row b of a
 * step's [B,..] tensor as one token of a forward's [1,1,..]. */
linattn_tensor linattn_serve_sub(const linattn_tensor *t, int64_t i0, int64_t n0, int64_t i1,
                                 int64_t n1);
linattn_tensor linattn_serve_tok(const linattn_tensor *t, int64_t b);

/* The next cut after t tokens of sequence n of len tokens (<= len). */
int64_t linattn_serve_next_cut(const linattn_serve *sv, int64_t n, int64_t len, int64_t t);
/* The hC row due after e tokens of sequence n, or -1. */
int64_t linattn_serve_ckpt_row(const linattn_serve *sv, int64_t n, int64_t e);

/* After e tokens of sequence n: copy rows i < K, columns j0 .. j0+w of the
 * state of head h (S, rows ldS apart) into the hW and hC rows due at e. */
void linattn_serve_store(const linattn_serve *sv, int64_t n, int64_t h, int64_t len, int64_t e,
                         const float *S, ptrdiff_t ldS, int K, int j0, int w);

/* OpenCL: the call as plain forward and step calls on views (one sequence,
 * one stretch between cuts at a time), after every check passed.  step:
 * x holds the step's tensors in the forward's fields ([B,..] without T). */
int linattn_serve_split(linattn_ctx *ctx, int op, const linattn_delta_io *x,
                        const linattn_delta_opts *opts, const linattn_serve *sv, int64_t nseq,
                        int64_t T, int step);

/* gka (lib/gka_serve.c): the row pairs kkW/kvW, kkC/kvC and the
 * checkpoint fields of x checked against nseq sequences (T tokens each
 * without cu_seqlens), sv filled (its slot fields unused); and the OpenCL
 * path as plain calls on views, after every check passed. */
int linattn_gka_serve_check(const linattn_gka_io *x, int64_t nseq, int64_t T, int64_t H,
                            int64_t K, int64_t V, linattn_serve *sv);
int linattn_gka_split(linattn_ctx *ctx, const linattn_gka_io *x, const linattn_gka_opts *opts,
                      const linattn_serve *sv, int64_t nseq, int64_t T, int step);

/* kalman and ela (lib/serve_rows.c): a state of n tensors (at most 3),
 * tensor i of rank nd[i] with the per-sequence shape sh[i] (sh[i][0]
 * unused); its rollback rows w[i] [N*W,..] and checkpoint rows c[i]
 * [N*C,..] (names wn, cn), all given or none, but for those with bit i of
 * opt (given or not, each on its own).  The checkpoint fields checked as
 * the delta family's, sv filled (slot fields unused); nothing written. */
typedef struct linattn_rows_spec {
    int n;
    unsigned opt;
    const linattn_tensor *w[3], *c[3];
    const char *wn[3], *cn[3];
    int nd[3];
    int64_t sh[3][4];
} linattn_rows_spec;
int linattn_serve_rows_check(const linattn_rows_spec *r, int64_t nseq, const int64_t *cu,
                             int64_t T, int64_t every, const int64_t *offs, linattn_serve *sv);

#endif
