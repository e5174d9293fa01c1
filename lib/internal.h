/* linattn - internal declarations shared by the library's files. */
#ifndef LINATTN_INTERNAL_H
#define LINATTN_INTERNAL_H

#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stddef.h>
#include <stdint.h>
#include "linattn.h"
#include "kernels.h"
#include "opencl.h"
#include "fault.h" /* linattn_malloc & co., fault injection for tests */

/* Kernel table: filled with the scalar kernels first, then the best ISA
 * compiled in and supported by the CPU overrides the slots it has
 * (dispatch.c). */
typedef struct linattn_kernels {
    const char *isa;
    int simd; /* vector kernels (not the portable C ones) */
    linattn_delta_rec_fn delta_rec;
    linattn_gka_rec_fn gka_rec;
    linattn_kalman_rec_fn kalman_rec;
    linattn_kalman_sum_fn kalman_sum;
    linattn_ela_rec_fn ela_rec;
    linattn_softmax_fwd_fn softmax_fwd;
    linattn_softmax_dec_fn softmax_dec;
    linattn_cvt_in_fn f16_in, bf16_in;    /* 16-bit type to float32 */
    linattn_cvt_out_fn f16_out, bf16_out; /* float32 to a 16-bit type */
} linattn_kernels;
/* Fill every slot (lib/scalar.c); an ISA's function (simd/<isa>/<isa>.c)
 * overrides only the slots of the kernels it has, and sets isa and simd. */
void linattn_register_scalar(linattn_kernels *k);
void linattn_register_avx2(linattn_kernels *k);
void linattn_register_avx512(linattn_kernels *k);
void linattn_register_neon(linattn_kernels *k);

/* info.c */
int linattn_have_blas(void);
/* BLAS runs single-threaded inside every call that uses it, whatever the
 * context's threads (one thread or many): the context's threads are the
 * only parallelism, so that a one-thread context uses one core and every
 * thread count gives the same bits (OpenBLAS's own threads change the
 * order of its sums on some CPUs: seen on an AMD EPYC with AVX2 only).
 * When parallel is nonzero set OpenBLAS to one thread (process-wide,
 * counted over the calls in progress: the last one out restores the count)
 * and return what to pass to linattn_blas_serial_end. */
int linattn_blas_serial_begin(int parallel);
void linattn_blas_serial_end(int began);

typedef struct linattn_wspool linattn_wspool;
#define LINATTN_CAL_SLOTS 32

struct linattn_ctx {
    linattn_backend backend; /* resolved: never AUTO */
    int threads;
    int verbose;
    linattn_kernels kern;
    linattn_cl *cl;          /* OpenCL backend: the device */
    int cl_auto;             /* device chosen by auto: may fall back to the CPU */
    linattn_wspool *ws;      /* scratch kept between calls (runner.c) */
    /* form.c: what the last call ran (static strings; atomic: a context may
     * be shared by threads) */
    _Atomic(const char *) last_form, last_why;
    /* autocal.c: forms measured on this context, by shape (0: free slot) */
    _Atomic(uint64_t) cal_key[LINATTN_CAL_SLOTS];
    _Atomic(int) cal_pick[LINATTN_CAL_SLOTS];
    int seg_child;           /* a segment's context of a split forward (delta_seg.c) */
};

/* form.c: record that a call of operator op (its forward, or its step)
 * ran form ("recurrent", "chunk", "scan", "blocked", "split", "reference")
 * chosen for reason why (static strings); with verbose, one line on stderr
 * naming them and the backend.  Returns rc; records nothing unless rc is 0. */
int linattn_form_ran(linattn_ctx *ctx, int rc, const char *op, int step, const char *form,
                     const char *why);
/* The reason of a forced or default algo (NULL: auto, the caller says why). */
const char *linattn_form_why(linattn_algo algo, int step, int ref);

/* autocal.c: auto's choice between the recurrent and the chunk form of one
 * shape, measured once per context.  run(arg, chunk) runs one form once on
 * the caller's small calibration problem (about tokens tokens of one head);
 * key packs the shape (op and sizes, never 0).  Returns 1 for the chunk
 * form, 0 for the recurrence; a second call with the key reuses the
 * measurement.  Verbose: one line with both rates. */
typedef void (*linattn_cal_fn)(void *arg, int chunk);
int linattn_cal_pick(linattn_ctx *ctx, uint64_t key, const char *what, int tokens,
                     linattn_cal_fn run, void *arg);
/* The measured choice already cached for key: 1 chunk, 0 recurrent, -1 none. */
int linattn_cal_cached(const linattn_ctx *ctx, uint64_t key);
/* Fill n floats with a reproducible pseudo-random pattern in [lo, hi). */
void linattn_cal_fill(float *x, size_t n, float lo, float hi, uint32_t seed);
/* 1 when a call of work (sequence, head, token) triples on ctx's threads
 * is large enough to measure with tokens tokens: the one-off measurement
 * then costs at most about an eighth of the call. */
int linattn_cal_worth(const linattn_ctx *ctx, int64_t work, int tokens);

/* buffer.c: a tensor's buffer must belong to ctx and hold its shape. */
int linattn_check_buffer(const linattn_ctx *ctx, const linattn_tensor *t, const char *name);
/* Each of n tensors (names for the messages): its buffer, where it has
 * one, belongs to ctx and holds its view; those with bit i of written set
 * do not revisit an element (linattn_check_written). */
int linattn_check_views(const linattn_ctx *ctx, linattn_tensor *const *t,
                        const char *const *names, int n, unsigned written);
/* Host memory of a tensor on a CPU context: its data, or its buffer's. */
float *linattn_host(const linattn_tensor *t);
/* A tensor as the OpenCL backend takes it (host data or device buffer). */
linattn_cl_arg linattn_cl_arg_of(const linattn_tensor *t);
/* After an OpenCL run that returned rc: 1 if the caller should run the CPU
 * path instead (the device failed, auto chose it, every tensor is in host
 * memory; said on stderr when verbose). */
int linattn_cl_fallback(const linattn_ctx *ctx, int rc, linattn_tensor *const *t, int n);

/* view.c: the element strides of t (C order when all are zero). */
void linattn_strides(const linattn_tensor *t, int64_t *s);
/* A [B,T,H,X] tensor (has_t; else a step's [B,H,X]; has_x 0: no X, as
 * the gates [B,T,H]) in host memory by rows: row (b, t, h) starts at
 * p + b*sb + t*st + h*sh, its floats sx apart (1 when has_x is 0). */
typedef struct linattn_rows {
    float *p;
    ptrdiff_t sb, st, sh, sx;
} linattn_rows;
linattn_rows linattn_rows_of(const linattn_tensor *t, int has_t, int has_x);
static inline float *linattn_row(const linattn_rows *r, int64_t b, int64_t t, int64_t h)
{
    return r->p + b * r->sb + t * r->st + h * r->sh;
}

/* pack.c: views a path cannot address in place, as dense copies.
 * dense: C order (at any offset); unit_rows: the last dimension at stride 1. */
int linattn_dense(const linattn_tensor *t);
int linattn_unit_rows(const linattn_tensor *t);       /* and float32 */
int linattn_dense_f32_rows(const linattn_tensor *t);  /* whatever the dtype */
#define LINATTN_PACK_MAX 16
typedef struct linattn_pack_entry {
    linattn_tensor *slot;     /* the caller's tensor, pointed at the copy meanwhile */
    linattn_tensor orig, dense;
    float *host;              /* host copy (NULL: a device buffer, or an alias) */
    int out, alias;
} linattn_pack_entry;
typedef struct linattn_packset {
    linattn_ctx *ctx;
    int n, slot;
    char *mem;                /* the host copies, one block of the context's pool */
    linattn_pack_entry e[LINATTN_PACK_MAX];
} linattn_packset;
/* Replace each given ts[i] with bit i of need by a dense copy (device memory
 * for a device buffer on OpenCL, else host memory), filled from the view
 * when bit i of in is set; the same view twice (an in-place state) gets one
 * copy.  end: the copies with bit i of out go back to their views when rc
 * is 0; the tensors are restored, the copies freed; returns rc (or the
 * copy's failure). */
int linattn_pack_begin(linattn_packset *ps, linattn_ctx *ctx, linattn_tensor *const *ts, int n,
                       unsigned need, unsigned in, unsigned out);
int linattn_pack_end(linattn_packset *ps, int rc);
/* Which of ts[0..n) a path needs packed: on OpenCL every view that is not
 * dense float32 at the start of its memory; on the CPU every one that is
 * not dense float32, except those with bit i of any_ok (read at any
 * strides) and those with bit i of rows_ok whose rows are contiguous
 * (linattn_unit_rows); a 16-bit one only with bit i of half_ok (the path
 * converts its contiguous rows itself). */
unsigned linattn_pack_need(const linattn_ctx *ctx, linattn_tensor *const *ts, int n,
                           unsigned rows_ok, unsigned any_ok, unsigned half_ok);
/* A driver's views, before its value checks: linattn_check_views (out =
 * the tensors written), then the packing the path needs (rows_ok, any_ok
 * as for linattn_pack_need; in = the tensors read).  Pair with
 * linattn_pack_end(ps, rc) after the call. */
int linattn_views_begin(linattn_packset *ps, linattn_ctx *ctx, linattn_tensor *const *ts,
                        const char *const *names, int n, unsigned in, unsigned out,
                        unsigned rows_ok, unsigned any_ok, unsigned half_ok);
/* buffer.c: a buffer's device memory (NULL on a CPU context). */
void *linattn_buffer_mem(const linattn_buffer *b);
/* linattn_buffer_create, whose device memory is zeroed only when zero is
 * set (host memory always is): for scratch the caller fills completely. */
int linattn_buffer_make(linattn_ctx *ctx, size_t count, int zero, linattn_buffer **out);

/* half.c: one element to or from a 16-bit type (round to nearest even,
 * linattn_convert(3)), and n elements of a dtype to float32 or back
 * through the conversion slots of the kernel table k. */
uint16_t linattn_f32_to_f16(float f);
float linattn_f16_to_f32(uint16_t h);
uint16_t linattn_f32_to_bf16(float f);
float linattn_bf16_to_f32(uint16_t h);
void linattn_to_f32(const linattn_kernels *k, const void *src, linattn_dtype s, float *dst,
                    size_t n);
void linattn_from_f32(const linattn_kernels *k, const float *src, void *dst, linattn_dtype d,
                      size_t n);

/* errors.c: record a message for this thread and return the code. */
int linattn_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void linattn_clear_error(void);

/* check.c: argument checks.  Each returns LINATTN_OK or records an error. */
int linattn_check_tensor(const linattn_tensor *t, const char *name, int ndim,
                         const int64_t *shape);
int linattn_check_present(const linattn_tensor *t, const char *name);
/* The state tensors (bit i of states) of an operator whose states stay
 * float32 (gla, gka, ela): LINATTN_EUNSUPPORTED naming the first in a
 * 16-bit type. */
int linattn_check_f32_states(linattn_tensor *const *ts, const char *const *names, int n,
                             unsigned states, const char *op);
/* A tensor the call writes: its strides must not map two indices to one
 * float (LINATTN_EINVAL naming it). */
int linattn_check_written(const linattn_tensor *t, const char *name);
/* An optional tensor is given when it has data or a buffer. */
static inline int linattn_given(const linattn_tensor *t) { return t->data || t->buf; }
/* Validate q (rank 'ndim'), recording its shape into out[]. */
int linattn_check_lead(const linattn_tensor *t, const char *name, int ndim,
                       int64_t *out);
int linattn_check_seqlens(const int64_t *cu, int64_t n, int64_t B, int64_t T);
/* Packed sequences or not: *nseq = n after checking cu, or B when cu is NULL
 * (then n must be 0). */
int linattn_check_sequences(const int64_t *cu, int64_t n, int64_t B, int64_t T, int64_t *nseq);
/* The context and the io struct of an entry point: LINATTN_ENULL if NULL. */
int linattn_check_call(const void *ctx, const void *io);
/* Key and value head sizes against LINATTN_MAX_HEAD_DIM. */
int linattn_check_heads(int64_t K, int64_t V);
/* A pair of tensors given both or neither (required: both), with their
 * ranks and shapes; a half pair is LINATTN_EINVAL naming the missing one
 * (LINATTN_ENULL when required). */
int linattn_check_pair(const linattn_tensor *a, const linattn_tensor *b, const char *na,
                       const char *nb, int nda, const int64_t *sha, int ndb,
                       const int64_t *shb, int required);
/* Head counts of a call with shared heads: q's, k's, v's (one state each)
 * and o's (Hq when query heads share a state, else H). */
typedef struct linattn_heads {
    int64_t q, k, v, o;
} linattn_heads;
/* q, k and v of rank ndim with one set of leading dimensions: s receives
 * v's leading dimensions and q's head size K, *V v's.  heads NULL: q, k and
 * v have the same heads; else q [.., Hq, K], k [.., Hk, K], v [.., H, V]
 * with Hk dividing H and Hq = Hk or a multiple of H, into *heads. */
int linattn_check_qkv(const linattn_tensor *q, const linattn_tensor *k, const linattn_tensor *v,
                      int ndim, int64_t *s, int64_t *V, linattn_heads *heads);

/* values.c: the value policy of the ranged inputs (linattn(3)). */
typedef enum linattn_range {
    LINATTN_RANGE_LOGDECAY,  /* log-decays g: finite and <= 0 */
    LINATTN_RANGE_STEP,      /* delta-rule write strengths: in [0, 2] */
    LINATTN_RANGE_FINITE,    /* finite */
    LINATTN_RANGE_UNIT,      /* mix gates: in [0, 1] */
    LINATTN_RANGE_OPEN_UNIT, /* kalman's decay: in (0, 1) */
    LINATTN_RANGE_NONNEG,    /* finite and >= 0 */
    LINATTN_RANGE_POS,       /* finite and > 0 */
    LINATTN_NRANGES
} linattn_range;
/* The numbers of each range: lo, hi, lo_open, hi_open (values.c checks them,
 * the operator table publishes them: one source for both). */
#define LINATTN_RANGE_LOGDECAY_NUMS -FLT_MAX, 0.0f, 0, 0
#define LINATTN_RANGE_STEP_NUMS 0.0f, 2.0f, 0, 0
#define LINATTN_RANGE_FINITE_NUMS -FLT_MAX, FLT_MAX, 0, 0
#define LINATTN_RANGE_UNIT_NUMS 0.0f, 1.0f, 0, 0
#define LINATTN_RANGE_OPEN_UNIT_NUMS 0.0f, 1.0f, 1, 1
#define LINATTN_RANGE_NONNEG_NUMS 0.0f, FLT_MAX, 0, 0
#define LINATTN_RANGE_POS_NUMS 0.0f, FLT_MAX, 1, 0
typedef struct linattn_value_check {
    const linattn_tensor *t; /* absent: skipped; shape and buffer already checked */
    const char *name;
    linattn_range range;
} linattn_value_check;
#define LINATTN_MAX_VALUE_CHECKS 8
/* Every value of c[0..n) in its range, tensor by tensor in table order:
 * else LINATTN_ERANGE naming the first culprit ("g[0,3,1] = 0.5: must be
 * finite and <= 0").  Device buffers are checked on the device, all with
 * one wait. */
int linattn_check_values(const linattn_ctx *ctx, const linattn_value_check *c, int n);
/* The same with the device tensors' check left to the device call: host
 * tensors are checked now (a culprit: LINATTN_ERANGE as above), the device
 * ones listed in p->vc, which the call takes (linattn_cl_delta.vcheck: it
 * runs the check before its kernels, which write nothing on a culprit, and
 * reads the flags back once after them); then check_values_finish(p, rc)
 * with the call's rc names the culprit the flags found (LINATTN_ERANGE),
 * else returns rc.  c[] must outlive p. */
typedef struct linattn_value_pending {
    const linattn_value_check *c;
    int n;
    int dev[LINATTN_MAX_VALUE_CHECKS]; /* 1: c[i] lies in a device buffer */
    linattn_cl_vcheck vc;
} linattn_value_pending;
int linattn_check_values_deferred(const linattn_ctx *ctx, const linattn_value_check *c, int n,
                                  linattn_value_pending *p);
int linattn_check_values_finish(linattn_value_pending *p, int rc);

/* dispatch.c */
int linattn_kernels_select(linattn_kernels *k, const char *forced);

/* parallel.c: run fn(arg, job, thread) for job in [0, njobs) on the context's
 * threads (static schedule does not matter: jobs are independent). */
typedef void (*linattn_job_fn)(void *arg, int64_t job, int thread);
void linattn_parallel_for(const linattn_ctx *ctx, int64_t njobs,
                          linattn_job_fn fn, void *arg);
int linattn_max_threads(const linattn_ctx *ctx);

/* Sequence n of a batch of T-token rows, or of the packed batch cu
 * (cu_seqlens, NULL when not packed): the row (b * T + t) of its first
 * token and its number of tokens. */
static inline void linattn_seq_span(const int64_t *cu, int64_t T, int64_t n, int64_t *row0,
                                    int64_t *len)
{
    *row0 = cu ? cu[n] : n * T;
    *len = cu ? cu[n + 1] - cu[n] : T;
}

/* runner.c: the scratch of one call, taken from the blocks the context
 * keeps (a decode step allocates nothing once they are grown), and its jobs
 * on the context's threads.  begin: per thread work_floats floats (64-byte
 * aligned slices, the count rounded up to 16) and dwork_n doubles, plus
 * shared_bytes (64-byte aligned) for the call; LINATTN_ENOMEM naming what.
 * end gives the scratch back (also after a failed begin). */
typedef struct linattn_runner {
    const linattn_ctx *ctx;
    int threads;
    size_t work_floats, dwork_n; /* per thread, as rounded */
    float *work;
    double *dwork;
    void *shared;
    void *mem;
    int slot;
} linattn_runner;
int linattn_runner_begin(linattn_runner *r, const linattn_ctx *ctx, size_t work_floats,
                         size_t dwork_n, size_t shared_bytes, const char *what);
static inline float *linattn_runner_work(const linattn_runner *r, int thread)
{
    return r->work + (size_t)thread * r->work_floats;
}
static inline double *linattn_runner_dwork(const linattn_runner *r, int thread)
{
    return r->dwork + (size_t)thread * r->dwork_n;
}
/* fn(arg, job, thread) for job in [0, njobs); blas: the jobs call BLAS
 * (kept single-threaded while several threads run). */
void linattn_runner_jobs(const linattn_runner *r, int64_t njobs, linattn_job_fn fn, void *arg,
                         int blas);
void linattn_runner_end(linattn_runner *r);
/* A block of the context's pool (kept between calls), or of the call's own
 * when every block is busy; give it back with the slot take set. */
void *linattn_ws_take(const linattn_ctx *ctx, size_t bytes, int *slot);
void linattn_ws_give(const linattn_ctx *ctx, void *mem, int slot);
int linattn_wspool_create(linattn_wspool **out);
void linattn_wspool_destroy(linattn_wspool *p);

/* delta_ref.c: double-accumulation reference for one (sequence, head).
 * flags: LINATTN_DELTA_QKNORM (q, k rows over sqrt(|row|^2 + 1e-6), in
 * double), LINATTN_DELTA_LOGITS (beta through the sigmoid, in double). */
#define LINATTN_DELTA_QKNORM 1
#define LINATTN_DELTA_LOGITS 2
#define LINATTN_QK_NORM_EPS 1e-6 /* opts.qk_l2norm's epsilon, as fla's l2norm */
void linattn_delta_ref_seq(const linattn_delta_rec_job *jb, int flags, double *work);
/* delta_norm.c: opts.qk_l2norm and opts.beta_logits on the CPU (the
 * float formulas linattn_gdn(3) states): y = x / sqrt(|x|^2 + 1e-6) for a
 * row of n floats, and sigmoid(x). */
void linattn_l2norm_row(const float *x, float *y, int n);
float linattn_sigmoid(float x);
/* doubles of work the reference needs */
size_t linattn_delta_ref_work(int K, int V);

/* gka_ref.c: double reference for one (sequence, head); gka_kernel.h: float */
size_t linattn_gka_ref_work(int K, int V);
void linattn_gka_ref_seq(const linattn_gka_job *job, double *work);
/* gka_chunk.c: chunkwise form (needs BLAS) for one (sequence, head). */
size_t linattn_gka_chunk_work(int K, int V, int C);
void linattn_gka_chunk(const linattn_gka_job *job, int C, float *work);

/* kalman_ref.c: the double reference of one kalman job (doubles of work). */
size_t linattn_kalman_ref_work(int S);
void linattn_kalman_ref(const linattn_kalman_job *job, double *work);

/* delta_chunk.c: chunkwise form for one (sequence, head, column block). */
size_t linattn_delta_chunk_work(int K, int n, int C, int gk);
void linattn_delta_chunk(const linattn_delta_rec_job *job, int C, float *work);

/* ela_ref.c: double reference for one (sequence, head); ela_kernel.h: float */
size_t linattn_ela_ref_work(int F, int V);
void linattn_ela_ref_seq(const linattn_ela_job *job, double *work);
/* ela_chunk.c: chunkwise form (BLAS, else plain C products) for one
 * (sequence, head); work of linattn_ela_chunk_work floats. */
size_t linattn_ela_chunk_work(int F, int V, int C);
void linattn_ela_chunk(const linattn_ela_job *job, int C, float *work);
/* softmax_ref.c: one query q over n keys k[j*sk], values v[j*sv], in double
 * (work: n + V doubles). */
void linattn_softmax_ref_row(int64_t n, int K, int V, ptrdiff_t sk, ptrdiff_t sv,
                             const float *q, const float *k, const float *v, float *o,
                             double scale, double *work);

/* kvcache.c: the cache as the operators see it. */
struct linattn_kvcache {
    const linattn_ctx *ctx;
    int64_t B, H, K, V; /* H: key/value heads (query heads may share them) */
    int64_t len, cap;   /* tokens held, tokens that fit */
    float *hk, *hv;     /* host: k [B,H,cap,K], v [B,H,cap,V] (CPU and ref contexts) */
    linattn_cl_kv dev;  /* device memory (OpenCL contexts) */
};
/* Make room for len + n tokens (doubling); the cache is unchanged on failure. */
int linattn_kvcache_reserve(linattn_kvcache *c, int64_t n);
/* Copy T tokens, rows (b, t, h) of k [B,T,H,K] and v [B,T,H,V] (host
 * memory; a step's [B,H,*] with T = 1), to positions len .. len+T-1 of the
 * host cache, room reserved; len is not changed. */
void linattn_kvcache_put(const linattn_ctx *ctx, linattn_kvcache *c, int64_t T,
                         const linattn_rows *k, const linattn_rows *v);

#endif
