/* linattn - segment summaries inside the library (segment.c, delta_seg.c). */
#ifndef LINATTN_SEGMENT_H
#define LINATTN_SEGMENT_H

#include "internal.h"

/* Row-major C[M,N] = alpha A[M,K] B[K,N] + beta C (leading dimensions
 * given): BLAS when the build has it, else plain loops. */
void linattn_seg_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, ptrdiff_t lda,
                      const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc);

/* The forward of io split into P segments of its tokens: segment s runs on
 * ctxs[s] (all at once, on nthreads threads), the summaries are joined on
 * host's threads.  io's tensors are host memory, cu_seqlens NULL or one
 * sequence; o float32 rows at unit stride, hT float32 C order or absent
 * (the caller checked). */
int linattn_delta_seg_run(linattn_ctx *host, linattn_ctx *const *ctxs, int P, int nthreads,
                          int op, const linattn_delta_io *io, const linattn_delta_opts *opts);

/* The CPU forward's choice (delta.c): how many segments to split each
 * sequence of io into (1: none).  LINATTN_SEGMENTS unset or 0: none; N:
 * N; "auto": the shape decides. */
int linattn_delta_seg_count(const linattn_ctx *ctx, const linattn_delta_io *io,
                            const linattn_delta_opts *opts, int64_t B, int64_t T, int64_t units,
                            int64_t V);
/* The forward of io in P segments on ctx's threads (each segment on one). */
int linattn_delta_seg_forward(linattn_ctx *ctx, int op, const linattn_delta_io *io,
                              const linattn_delta_opts *opts, int P);

#endif
