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

/* delta_seg.c's later segments on an OpenCL context (delta_segdev.c):
 * what stays on the device between the summary and the completion, and
 * the seconds each phase took (for verbose). */
typedef struct linattn_segdev {
    linattn_buffer *in[6]; /* q, k, v, g, beta, the zero values */
    linattn_buffer *o, *oA, *S;
    int64_t Bt, len, H, Ho, K, V;
    double up, sum, fix, out;
} linattn_segdev;
/* The segment x (host views, h0 and hT absent) summarised on ctx: its
 * inputs uploaded, o0 and oA kept on the device, A [Bt,H,K,K] and
 * B [Bt,H,K,V] written to host memory. */
int linattn_segdev_summarise(linattn_segdev *d, linattn_ctx *ctx, int op,
                             const linattn_delta_io *x, const linattn_delta_opts *opts, float *A,
                             float *B);
/* o0 + oA S on the device for the entering state S (host, [Bt,H,K,V]),
 * then into the host view o (float32, rows at unit stride). */
int linattn_segdev_finish(linattn_segdev *d, linattn_ctx *ctx, const float *S,
                          const linattn_tensor *o);
void linattn_segdev_free(linattn_segdev *d);
double linattn_segdev_now(void);

#endif
