/* linattn - portable linear-attention operators.
 *
 * Public API.  Installed as <linattn.h>.  See linattn(3) for the overview,
 * linattn_gdn(3) for the delta-rule family (gdn, kla, gla), linattn_gka(3),
 * linattn_onnx(3) for ONNX's LinearAttention,
 * linattn_kalman(3), linattn_ela(3), linattn_softmax(3) for softmax attention
 * with a KV cache, and linattn_opencl(3) for buffers and OpenCL devices.
 *
 * Conventions
 *   - float32 everywhere, C order, sequence-first layout:
 *       q, k [B,T,H,K]   v, o [B,T,H,V]   gates [B,T,H]   state [B,H,K,V]
 *   - gates are log-space: decay factor exp(g), g <= 0.
 *   - scale defaults to 1/sqrt(K); q and k are used as given.
 *   - every function returns LINATTN_OK (0) or a negative linattn_status;
 *     linattn_strerror() names the code, linattn_last_error() gives the
 *     message of the last failure in the calling thread.
 *   - when an argument check fails nothing is written to any output.
 */
#ifndef LINATTN_H
#define LINATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported functions: the library is built with
 * -fvisibility=hidden, so everything else stays internal. */
#if defined(__GNUC__) || defined(__clang__)
#define LINATTN_API __attribute__((visibility("default")))
#else
#define LINATTN_API
#endif

#define LINATTN_VERSION_MAJOR 0
#define LINATTN_VERSION_MINOR 1
#define LINATTN_VERSION_PATCH 0

/* Largest key or value head size accepted by every backend. */
#define LINATTN_MAX_HEAD_DIM 1024
/* Largest chunk size accepted by the chunkwise algorithm. */
#define LINATTN_MAX_CHUNK 1024
/* Most dimensions a linattn_tensor may have. */
#define LINATTN_MAX_DIMS 4

typedef enum linattn_status {
    LINATTN_OK = 0,
    LINATTN_ENULL = -1,        /* a required pointer is NULL */
    LINATTN_ESHAPE = -2,       /* wrong rank or shapes that do not agree */
    LINATTN_ESIZE = -3,        /* a size is zero or negative */
    LINATTN_EOVERFLOW = -4,    /* a byte count does not fit in size_t */
    LINATTN_EHEADDIM = -5,     /* head size above LINATTN_MAX_HEAD_DIM */
    LINATTN_ESEQLENS = -6,     /* cu_seqlens malformed */
    LINATTN_ERANGE = -7,       /* an option or value outside its range */
    LINATTN_ENOMEM = -8,       /* memory allocation failed */
    LINATTN_EUNSUPPORTED = -9, /* backend, ISA or feature not available */
    LINATTN_EIO = -10,         /* file could not be opened, read or written */
    LINATTN_EFORMAT = -11,     /* file is not a '<f4' or '<f2' C-order .npy */
    LINATTN_EINVAL = -12,      /* any other invalid argument */
    LINATTN_ENODEV = -13,      /* no OpenCL runtime or no usable OpenCL device */
    LINATTN_EDEVICE = -14      /* an OpenCL call failed (program build, launch,
                                  transfer, lost device); the message says which */
} linattn_status;

/* Name of a status code ("LINATTN_ESHAPE: ..."); never NULL. */
LINATTN_API const char *linattn_strerror(int status);
/* Message of the last failed call made by this thread (never NULL; "" if none). */
LINATTN_API const char *linattn_last_error(void);

/* Version of the library actually linked ("0.1.0"), and as a number
 * major*10000 + minor*100 + patch. */
LINATTN_API const char *linattn_version_string(void);
LINATTN_API int linattn_version(void);

/* ---- context ---------------------------------------------------------- */

typedef enum linattn_backend {
    LINATTN_BACKEND_AUTO = 0, /* best available; honours LINATTN_DEVICE */
    LINATTN_BACKEND_REF = 1,  /* plain C reference, double accumulation */
    LINATTN_BACKEND_CPU = 2,  /* fast CPU path (SIMD, threads, BLAS) */
    LINATTN_BACKEND_OPENCL = 3 /* an OpenCL device (linattn_opencl(3)) */
} linattn_backend;

typedef struct linattn_config {
    linattn_backend backend;
    int threads;  /* 0: LINATTN_NUM_THREADS, else OpenMP's default */
    int verbose;  /* nonzero: log decisions to stderr (also LINATTN_VERBOSE=1) */
    const char *isa; /* NULL: LINATTN_ISA, else the best the CPU runs;
                        "ref", "scalar", "avx2", "avx512" or "neon" forces one */
    const char *device; /* NULL: LINATTN_DEVICE.  "cpu", "opencl" (the best
                        OpenCL device) or "opencl:P.D" (platform P, device D).
                        With the auto backend, unset means: an OpenCL GPU or
                        accelerator if there is one, else the CPU. */
} linattn_config;

typedef struct linattn_ctx linattn_ctx;

/* Fill cfg with the defaults (auto backend, default threads, quiet). */
LINATTN_API void linattn_config_init(linattn_config *cfg);
/* Create a context; cfg may be NULL for the defaults.  The context holds the
 * dispatch decisions and thread count; it may be shared by threads. */
LINATTN_API int linattn_ctx_create(const linattn_config *cfg, linattn_ctx **out);
LINATTN_API void linattn_ctx_destroy(linattn_ctx *ctx);
/* What the context chose. */
LINATTN_API linattn_backend linattn_ctx_backend(const linattn_ctx *ctx);
LINATTN_API int linattn_ctx_threads(const linattn_ctx *ctx);
LINATTN_API const char *linattn_ctx_isa(const linattn_ctx *ctx);
/* "cpu", or the OpenCL device in use ("opencl:0.0 NVIDIA H100 ..."). */
LINATTN_API const char *linattn_ctx_device(const linattn_ctx *ctx);
/* The form the context's last successful operator call ran ("recurrent",
 * "chunk", "scan", "blocked", "split" or "reference"; "" before any) and why
 * ("forced by opts.algo", auto's reason, ...): static strings.  Per
 * context; while threads share one, it names one of the calls in flight. */
LINATTN_API const char *linattn_ctx_last_form(const linattn_ctx *ctx);
LINATTN_API const char *linattn_ctx_last_reason(const linattn_ctx *ctx);

/* Kernel ISAs compiled into this build, space-separated ("scalar avx2 avx512"). */
LINATTN_API const char *linattn_isa_compiled(void);
/* 1 if this build has the ISA and this CPU (and OS) can run it, else 0.
 * "ref" and "scalar" are always available. */
LINATTN_API int linattn_isa_usable(const char *isa);
/* Space-separated CPU features the probe found ("avx2 fma avx512" ...). */
LINATTN_API const char *linattn_cpu_features(void);
/* The BLAS this build uses ("OpenBLAS 0.3.21 ...; core Haswell"), or "none". */
LINATTN_API const char *linattn_blas_info(void);
/* 1 if built with OpenMP.  Without it a context's threads still decide how the
 * work is split (so results are the same) but the parts run one by one. */
LINATTN_API int linattn_have_openmp(void);
/* sizeof the public struct named ("linattn_delta_io", ...) in this build of
 * the library, 0 for a name it does not know: bindings that mirror the
 * structs (ctypes, FFI) check their layout against it. */
LINATTN_API size_t linattn_struct_size(const char *name);

/* ---- tensors ---------------------------------------------------------- */

typedef struct linattn_buffer linattn_buffer;

/* Element types (linattn(3), HALF PRECISION): every input, output and
 * state may be one of them; the arithmetic is float32 whatever they are. */
typedef enum linattn_dtype {
    LINATTN_F32 = 0,  /* float32: the default (a zeroed tensor) */
    LINATTN_F16 = 1,  /* IEEE 754 binary16 */
    LINATTN_BF16 = 2  /* bfloat16: the upper 16 bits of a float32 */
} linattn_dtype;

/* A description of an array, not owned: either host memory (data) or a
 * library buffer (buf, see below), never both.  A tensor with neither is
 * "absent" (allowed only where documented).  data is const so that inputs
 * take const arrays, in C and C++, without casts; the library writes
 * through it only for the tensors an entry point documents as outputs or
 * in-place states, whose memory must then be writable.  Elements are
 * float32 unless dtype says otherwise (then data points to the 16-bit
 * values, cast to const float *; linattn_tensor_nd does it); strides and
 * offset count elements.  data stays a float pointer so that arithmetic on
 * it keeps counting floats in existing code. */
typedef struct linattn_tensor {
    const float *data;  /* 16-bit types: their elements (linattn_tensor_nd casts) */
    int ndim;
    int64_t shape[LINATTN_MAX_DIMS];
    linattn_buffer *buf; /* NULL for host tensors */
    /* A view (linattn(3), STRIDED TENSORS): strides[d] floats between
     * neighbours along dimension d, each >= 0, or all zero for C order;
     * element [i0,..] is at offset + sum_d i_d strides[d] floats from data
     * (or from the buffer's start).  Inputs may repeat elements (a stride of
     * 0 broadcasts); outputs and states written may not overlap themselves. */
    int64_t strides[LINATTN_MAX_DIMS];
    int64_t offset;
    linattn_dtype dtype;
} linattn_tensor;

LINATTN_API linattn_tensor linattn_tensor_1d(const float *data, int64_t d0);
LINATTN_API linattn_tensor linattn_tensor_2d(const float *data, int64_t d0, int64_t d1);
LINATTN_API linattn_tensor linattn_tensor_3d(const float *data, int64_t d0, int64_t d1, int64_t d2);
LINATTN_API linattn_tensor linattn_tensor_4d(const float *data, int64_t d0, int64_t d1, int64_t d2,
                                             int64_t d3);
/* Any rank (1..4) and element type: data holds elements of dtype. */
LINATTN_API linattn_tensor linattn_tensor_nd(const void *data, linattn_dtype dtype, int ndim,
                                             const int64_t *shape);
/* Bytes of one element (4 or 2); 0 for an unknown dtype. */
LINATTN_API size_t linattn_dtype_size(linattn_dtype dtype);
/* "f32", "f16", "bf16"; NULL for an unknown dtype. */
LINATTN_API const char *linattn_dtype_name(linattn_dtype dtype);
/* Convert n elements: to a half type by rounding to nearest, ties to even
 * (overflow to Inf, subnormals exact, NaN kept NaN with its sign); to
 * float32 exactly; the same type: a copy.  src and dst must not overlap.
 * LINATTN_EINVAL for an unknown dtype, LINATTN_ENULL for NULL with n > 0. */
LINATTN_API int linattn_convert(const void *src, linattn_dtype src_dtype, void *dst,
                                linattn_dtype dst_dtype, size_t n);
/* The absent tensor (all zero). */
LINATTN_API linattn_tensor linattn_tensor_none(void);
/* A tensor held in a buffer (its first prod(shape) floats). */
LINATTN_API linattn_tensor linattn_tensor_buffer(linattn_buffer *buf, int ndim,
                                                 const int64_t *shape);

/* ---- buffers: memory that lives where the context computes ------------ *
 * On an OpenCL context a buffer is device memory: tensors in buffers are not
 * copied by the operators, so a decode loop keeps its state (and, if it
 * likes, q/k/v/o) on the device.  Host tensors given to an OpenCL context
 * are copied in and out on every call.  On a CPU context a buffer is plain
 * host memory.  A buffer belongs to the context that made it and must be
 * destroyed before it.  New buffers hold zeros. */
LINATTN_API int linattn_buffer_create(linattn_ctx *ctx, size_t count, linattn_buffer **out);
LINATTN_API void linattn_buffer_destroy(linattn_buffer *buf);
LINATTN_API size_t linattn_buffer_count(const linattn_buffer *buf);
/* Copy count floats between host memory and the buffer at float offset. */
LINATTN_API int linattn_buffer_write(linattn_buffer *buf, size_t offset, const float *src,
                                     size_t count);
LINATTN_API int linattn_buffer_read(const linattn_buffer *buf, size_t offset, float *dst,
                                    size_t count);

/* ---- OpenCL devices (linattn_opencl(3)) -------------------------------- */

typedef struct linattn_device_info {
    int platform, device;      /* LINATTN_DEVICE=opencl:P.D picks this one */
    char name[128], vendor[128], platform_name[128], version[128];
    int is_gpu;                /* GPU or accelerator (auto may choose it) */
    int compute_units, clock_mhz;
    uint64_t global_mem, local_mem, max_alloc;
    double score;              /* higher is preferred */
    int usable;                /* 0: fails a requirement, see note */
    char note[128];
} linattn_device_info;

/* 1 if this build has the OpenCL backend (the runtime is looked up when
 * first needed: libOpenCL.so.1, or the file named by LINATTN_OPENCL_LIB). */
LINATTN_API int linattn_opencl_built(void);
/* Probe the OpenCL devices (once per process) and copy up to max of them into
 * out (may be NULL); *count receives how many there are.  No runtime, no
 * platform registered with it, or a build without OpenCL: LINATTN_ENODEV
 * with *count = 0 and the reason in linattn_last_error().  Platforms with no
 * device: LINATTN_OK, *count = 0. */
LINATTN_API int linattn_opencl_devices(linattn_device_info *out, int max, int *count);
/* Measure the OpenCL device of ctx with kernels of our own: float32 matrix
 * product GFLOP/s (median of 5, N up to 4096) and copy bandwidth GB/s (bytes
 * read + written, median of 5).  Takes about a second on a GPU.  A context
 * on the CPU: LINATTN_EUNSUPPORTED (linattn-bench measures the CPU itself). */
LINATTN_API int linattn_opencl_limits(linattn_ctx *ctx, double *sgemm_gflops, double *copy_gbs);

/* ---- delta-rule family: gdn, kla, gla (linattn_gdn(3)) ------------------ */

typedef enum linattn_algo {
    LINATTN_ALGO_AUTO = 0,      /* the plan chooses by shape */
    LINATTN_ALGO_RECURRENT = 1, /* token-recurrent, state in cache */
    LINATTN_ALGO_CHUNK = 2      /* chunkwise, matrix products */
} linattn_algo;

/* Options share one order across operators: algo, chunk, then the
 * operator's own (scale first where there is one). */
/* Value head h (of H) reads key head h / (H / Hk) (grouped: flash-linear-
 * attention, transformers) or h % Hk (tiled: ggml); Hk = H: head h. */
typedef enum linattn_head_map {
    LINATTN_HEADS_GROUPED = 0,
    LINATTN_HEADS_TILED = 1
} linattn_head_map;

typedef struct linattn_delta_opts {
    linattn_algo algo; /* forward: recurrent, chunk, or auto (the plan chooses) */
    int chunk;         /* chunk size for LINATTN_ALGO_CHUNK; 0: default (64) */
    float scale;       /* output scale; 0 means 1/sqrt(K) */
    float eps;         /* kla: beta = eta / (|k|^2 + eps); >= 0, default 1e-6 */
    int qk_l2norm;     /* nonzero: each q and k row (per token and head) is first
                          divided by sqrt(|row|^2 + 1e-6); kla's eta then uses that k */
    int beta_logits;   /* gdn only, nonzero: beta holds logits, the write strength
                          is sigmoid(beta); kla, gla: LINATTN_EINVAL */
    int head_map;      /* linattn_head_map: the key head a value head reads when
                          q and k have fewer heads (Hk) than v (H); default grouped */
} linattn_delta_opts;

LINATTN_API void linattn_delta_opts_init(linattn_delta_opts *opts);

/* Forward over whole sequences.
 *   q [B,T,Hq,K], k [B,T,Hk,K]; v [B,T,H,V]; o [B,T,Ho,V] (written).
 *   H (value heads, one state each) is a multiple of Hk: value head h
 *   reads key head opts.head_map of h (Hk = H: head h).  Hq = Hk: query
 *   head = key head, Ho = H; or Hq a multiple of H (query heads sharing a
 *   state): query head r reads state r / (Hq / H), Ho = Hq.
 *   g [B,T,H] log-decay per head, or [B,T,H,K] per key channel (the
 *   state's row i decays by exp(g[..,i])); finite and <= 0 (absent: no
 *   decay)
 *   beta [B,T,H]: gdn write strength; kla: eta; in [0, 2]; gla: must be absent
 *   (values out of range, NaN and Inf included: LINATTN_ERANGE; with
 *   opts.beta_logits any finite value)
 *   h0 [N,H,K,V] initial state (absent: zeros); hT [N,H,K,V] final state
 *   (absent: not returned).  h0 and hT may be the same buffer.
 *   cu_seqlens: NULL, or N+1 strictly increasing offsets from 0 to T that
 *   split a packed batch (B must then be 1); N = B otherwise.
 */
typedef struct linattn_delta_io {
    linattn_tensor q, k, v, g, beta, h0, o, hT;
    const int64_t *cu_seqlens;
    int64_t n_seqs; /* number of sequences in cu_seqlens (N) */
    /* Serving (linattn_gdn(3), SERVING); all zero: none of it.
     *   state_indices: NULL, or N slots: h0 and hT are then pools [P,H,K,V]
     *   (P >= 1 slots, each may be absent as before) and sequence n reads
     *   h0[state_indices[n]] and writes hT[state_indices[n]] in place (the
     *   pool may be h0 and hT at once).  A slot of -1 is a padding row: it
     *   starts from zeros and its final state is not stored.  Slots must
     *   be -1 .. P-1 (else LINATTN_ERANGE) and the others distinct (else
     *   LINATTN_EINVAL); on either nothing is written.
     *   has_initial_state: NULL, or N flags: 0 starts sequence n from zeros
     *   (a new prompt whose slot holds an old state), whatever h0 holds.
     *   hW [N*W,H,K,V] (optional, written): rollback states; row n*W + w
     *   holds the state after the first len_n - W + 1 + w tokens of
     *   sequence n (the last row is its final state).  W = rows / N; every
     *   sequence needs at least W tokens (else LINATTN_ESHAPE).
     *   hC [N*C,H,K,V] (optional, written): prefix checkpoints; row n*C + c
     *   holds the state after the first (c+1)*checkpoint_every tokens of
     *   sequence n, rows past the sequence's length are not written.
     *   checkpoint_every: tokens between checkpoints (>= 1 with hC, else 0).
     *   checkpoint_offsets: NULL, or instead of checkpoint_every N*C token
     *   counts, each sequence its own: row n*C + c holds the state after the
     *   first checkpoint_offsets[n*C + c] tokens of sequence n.  Per
     *   sequence the counts are 1 .. len_n and strictly ascending, then 0
     *   for rows not wanted (not written); else LINATTN_ERANGE or
     *   LINATTN_EINVAL, nothing written. */
    linattn_tensor hW, hC;
    const int64_t *state_indices;
    const unsigned char *has_initial_state;
    int64_t checkpoint_every;
    const int64_t *checkpoint_offsets;
} linattn_delta_io;

/* The three operators as one entry point, for callers that pick at run time. */
typedef enum linattn_delta_op {
    LINATTN_OP_GDN = 0,
    LINATTN_OP_KLA = 1,
    LINATTN_OP_GLA = 2
} linattn_delta_op;

LINATTN_API int linattn_delta_forward(linattn_ctx *ctx, linattn_delta_op op,
                                      const linattn_delta_io *io,
                                      const linattn_delta_opts *opts);
LINATTN_API int linattn_gdn_forward(linattn_ctx *ctx, const linattn_delta_io *io,
                                    const linattn_delta_opts *opts);
LINATTN_API int linattn_kla_forward(linattn_ctx *ctx, const linattn_delta_io *io,
                                    const linattn_delta_opts *opts);
LINATTN_API int linattn_gla_forward(linattn_ctx *ctx, const linattn_delta_io *io,
                                    const linattn_delta_opts *opts);

/* One decode step for B sequences on a carried state.
 *   q [B,Hq,K], k [B,Hk,K]; v [B,H,V], o [B,Ho,V]; g [B,H] or [B,H,K],
 *   beta [B,H] (as in forward);
 *   state_h [B,H,K,V], read and updated in place (required);
 *   state_indices: NULL, or B slots: state_h is then a pool [P,H,K,V] and
 *   row b updates state_h[state_indices[b]] (-1: a padding row from zeros,
 *   nothing stored); has_initial_state: NULL, or B flags (0: row b starts
 *   from zeros and stores into its slot).  Checks as for the forward. */
typedef struct linattn_delta_step_io {
    linattn_tensor q, k, v, g, beta, state_h, o;
    const int64_t *state_indices;
    const unsigned char *has_initial_state;
} linattn_delta_step_io;

LINATTN_API int linattn_delta_step(linattn_ctx *ctx, linattn_delta_op op,
                                   const linattn_delta_step_io *io,
                                   const linattn_delta_opts *opts);
LINATTN_API int linattn_gdn_step(linattn_ctx *ctx, const linattn_delta_step_io *io,
                                 const linattn_delta_opts *opts);
LINATTN_API int linattn_kla_step(linattn_ctx *ctx, const linattn_delta_step_io *io,
                                 const linattn_delta_opts *opts);
LINATTN_API int linattn_gla_step(linattn_ctx *ctx, const linattn_delta_step_io *io,
                                 const linattn_delta_opts *opts);

/* ---- segment summaries (linattn_segment(3)) ----------------------------- *
 * Over a segment of tokens the delta family's state map is affine in the
 * entering state: S_out = A S_in + B, A [K,K], B [K,V], and each output
 * o_t = o0_t + oA_t S_in, with o0_t the output for a zero entering state.
 * A summary lets segments of one sequence run apart (threads, devices,
 * processes) and be joined afterwards.  Summary tensors are float32
 * host memory (no buffers); A, B, and the states are C order. */
typedef struct linattn_segment {
    linattn_tensor A;  /* [N,H,K,K] */
    linattn_tensor B;  /* [N,H,K,V] */
    linattn_tensor oA; /* [Bt,T,Ho,K]: the outputs' dependence on S_in, or absent */
} linattn_segment;

/* Summarise the segment io (as the forward takes it; h0 and hT absent):
 * writes io->o (the outputs for a zero entering state), sum->A, sum->B and
 * sum->oA when given.  Costs (K+V)/V forwards. */
LINATTN_API int linattn_delta_summarise(linattn_ctx *ctx, linattn_delta_op op,
                                        const linattn_delta_io *io,
                                        const linattn_delta_opts *opts,
                                        const linattn_segment *sum);
/* out = second after first: (A2 A1, A2 B1 + B2); out may be either input
 * (oA is not used). */
LINATTN_API int linattn_segment_combine(linattn_ctx *ctx, const linattn_segment *first,
                                        const linattn_segment *second,
                                        const linattn_segment *out);
/* Apply a summary to an entering state h0 [N,H,K,V] (absent: zeros):
 * hT = A h0 + B (hT absent: not written; may be h0), and, when o and
 * sum.oA are given, o += oA h0 for every token of every sequence (o
 * [Bt,T,Ho,V] with rows at unit stride, cu_seqlens as in the forward). */
typedef struct linattn_segment_apply_io {
    linattn_segment sum;
    linattn_tensor h0, hT, o;
    const int64_t *cu_seqlens;
    int64_t n_seqs;
} linattn_segment_apply_io;

LINATTN_API int linattn_segment_apply(linattn_ctx *ctx, const linattn_segment_apply_io *io);

/* The forward of io split into n segments of its tokens, segment i run on
 * ctxs[i] (one context per device; they run at once, from one thread
 * each) and joined with the summaries on the host: equal to the forward
 * within the chunk form's tolerance.  io's tensors in host memory,
 * cu_seqlens NULL; o float32 with rows at unit stride, hT float32 C order
 * or absent.  On a failure of one segment o and hT may be partly written. */
LINATTN_API int linattn_delta_forward_split(linattn_ctx *const *ctxs, int n,
                                            linattn_delta_op op, const linattn_delta_io *io,
                                            const linattn_delta_opts *opts);

/* ---- ONNX LinearAttention (linattn_onnx(3)) ---------------------------- *
 * The operator of ONNX opset 27 on the delta family: linear and gated run
 * as gla, delta and gated_delta as gdn, on views of the packed tensors. */
typedef enum linattn_la_rule {
    LINATTN_LA_LINEAR = 0,      /* S = S + k v^T */
    LINATTN_LA_GATED = 1,       /* S = exp(g) S + k v^T */
    LINATTN_LA_DELTA = 2,       /* S = S + beta k (v - S^T k)^T */
    LINATTN_LA_GATED_DELTA = 3  /* S = exp(g) S, then the delta write (default) */
} linattn_la_rule;

typedef struct linattn_la_attrs {
    int q_num_heads, kv_num_heads; /* required: > 0, q a multiple of kv */
    int update_rule;    /* linattn_la_rule; default gated_delta, as ONNX */
    float scale;        /* output scale; 0 (default) means 1/sqrt(d_k) */
    int chunk_size;     /* ONNX's hint (default 64): the chunk form's chunk size,
                           clamped to 1..LINATTN_MAX_CHUNK; < 1: the default */
    linattn_algo algo;  /* not ONNX's: the delta family's algo; default auto */
} linattn_la_attrs;

/* Defaults: heads 0 (to be set), gated_delta, scale 0, chunk_size 64, auto. */
LINATTN_API void linattn_la_attrs_init(linattn_la_attrs *attrs);
/* ONNX's update_rule strings "linear", "gated", "delta", "gated_delta" to
 * the enum: LINATTN_OK, or LINATTN_EINVAL (*out untouched). */
LINATTN_API int linattn_la_rule_parse(const char *name, int *out);
/* The ONNX name of a rule, or NULL for an unknown value. */
LINATTN_API const char *linattn_la_rule_name(int rule);

/* ONNX's inputs and outputs, d_k = query's last / q_num_heads, d_v =
 * value's last / kv_num_heads:
 *   query [B,T,Hq*d_k], key [B,T,Hkv*d_k], value [B,T,Hkv*d_v];
 *   past_state [B,Hkv,d_k,d_v] (absent: zeros);
 *   decay [B,T,Hkv] or [B,T,Hkv*d_k], log-space (gated rules only);
 *   beta [B,T,Hkv] or [B,T,1] (delta rules only);
 *   output [B,T,Hq*d_v] (written); present_state [B,Hkv,d_k,d_v] (written;
 *   absent: not returned; may be the past_state memory).
 * Query head r reads state r / (Hq / Hkv).  query, key, value, decay, beta
 * and output share one dtype, the two states another (may differ). */
typedef struct linattn_la_io {
    linattn_tensor query, key, value, past_state, decay, beta, output, present_state;
} linattn_la_io;

LINATTN_API int linattn_linear_attention(linattn_ctx *ctx, const linattn_la_io *io,
                                         const linattn_la_attrs *attrs);

/* ---- Gated KalmaNet: gka (linattn_gka(3)) ------------------------------ */

/* Per token (linattn_gka(3)):  kh = beta k, vh = beta v,
 *   H = exp(g) H + kh kh^T  [K,K];   U = exp(g) U + kh vh^T  [K,V]
 *   x ~ (H + ridge |H|_F I)^-1 q  by `iters` Chebyshev steps
 *   o = scale U^T ((1 - alpha) q + alpha x)
 * If |H|_F < 1e-30 (all-zero keys so far) x = 0. */
typedef struct linattn_gka_opts {
    linattn_algo algo; /* forward on the CPU: recurrent, chunk (BLAS), or auto */
    int chunk;    /* chunk size of LINATTN_ALGO_CHUNK; 0: default (64) */
    float scale;  /* 0 means 1/sqrt(K) */
    float ridge;  /* a in lambda = a |H|_F: finite, > 0; default 0.02 */
    int iters;    /* Chebyshev iterations, 1..1000; default 30 */
} linattn_gka_opts;

LINATTN_API void linattn_gka_opts_init(linattn_gka_opts *opts);

/*   q, k [B,T,H,K]; v, o [B,T,H,V]; g, beta, alpha [B,T,H]
 *   g absent: no decay; beta absent: 1; alpha absent: 1 (all ridge readout)
 *   g finite and <= 0, beta finite, alpha in [0, 1] (else LINATTN_ERANGE)
 *   kk0 [N,H,K,K], kv0 [N,H,K,V] initial state (absent: zeros; both or
 *   neither); kkT, kvT final state (absent: not returned; both or
 *   neither; may be the h0 buffers).  cu_seqlens as for the delta family. */
typedef struct linattn_gka_io {
    linattn_tensor q, k, v, g, beta, alpha, kk0, kv0, o, kkT, kvT;
    const int64_t *cu_seqlens;
    int64_t n_seqs;
    /* State slots as the delta family's (linattn_gdn(3), SERVING): NULL, or
     * N slots; the states are then pools [P,H,K,K] and [P,H,K,V] (each pair
     * with its own P) and sequence n reads and writes slot state_indices[n]
     * (-1: padding, from zeros, not stored; duplicates LINATTN_EINVAL, out
     * of range LINATTN_ERANGE, nothing written); has_initial_state: NULL,
     * or N flags (0: from zeros). */
    const int64_t *state_indices;
    const unsigned char *has_initial_state;
    /* Rollback and checkpoint states as the delta family's hW and hC
     * (linattn_gdn(3), SERVING), each a pair: kkW [N*W,H,K,K] with kvW
     * [N*W,H,K,V], kkC [N*C,H,K,K] with kvC [N*C,H,K,V] (optional, written;
     * both of a pair or neither), rows as hW's and hC's; checkpoint_every
     * or checkpoint_offsets as the delta forward's. */
    linattn_tensor kkW, kvW, kkC, kvC;
    int64_t checkpoint_every;
    const int64_t *checkpoint_offsets;
} linattn_gka_io;

LINATTN_API int linattn_gka_forward(linattn_ctx *ctx, const linattn_gka_io *io,
                                    const linattn_gka_opts *opts);

/* One decode step: q, k [B,H,K]; v, o [B,H,V]; g, beta, alpha [B,H];
 * state_kk [B,H,K,K] and state_kv [B,H,K,V] updated in place (required). */
typedef struct linattn_gka_step_io {
    linattn_tensor q, k, v, g, beta, alpha, state_kk, state_kv, o;
    const int64_t *state_indices;           /* B slots of pools [P,..], as the forward's */
    const unsigned char *has_initial_state;
} linattn_gka_step_io;

LINATTN_API int linattn_gka_step(linattn_ctx *ctx, const linattn_gka_step_io *io,
                                 const linattn_gka_opts *opts);

/* ---- Kalman linear attention: kalman (linattn_kalman(3)) --------------- */

/* M channels x S states = M*S lanes, each an independent scalar Kalman
 * filter in information form (precision lam, information eta);
 * linattn_kalman(3).  S is at most LINATTN_KALMAN_MAX_STATES. */
#define LINATTN_KALMAN_MAX_STATES 256

typedef struct linattn_kalman_opts {
    /* forward on the CPU: LINATTN_ALGO_RECURRENT (the token recurrence),
     * LINATTN_ALGO_CHUNK (the chunked associative scan: time split into
     * pieces), or AUTO: the scan only when lanes are too few to keep the
     * threads busy and the sequence is long */
    linattn_algo algo;
    int chunk; /* tokens per piece of the scan; 0: chosen from T */
} linattn_kalman_opts;

LINATTN_API void linattn_kalman_opts_init(linattn_kalman_opts *opts);

/*   v, lam_v [B,T,M]: observation and its precision (finite, > 0)
 *   k, q [B,T,S]: observation map and readout, shared by the channels
 *   decay [M,S] in (0,1), noise [M,S] finite and >= 0 (floored at 1e-12)
 *   lam0 [N,M,S] (finite, > 0), eta0 [N,M,S]: initial state (absent: 1
 *   and 0; both or neither); y [B,T,M] mean; yvar [B,T,M] variance
 *   (absent: not computed); lamT, etaT [N,M,S] final state (absent: not
 *   returned; both or neither; may be lam0, eta0).  N: B, or n_seqs with
 *   cu_seqlens (as for the delta family). */
typedef struct linattn_kalman_io {
    linattn_tensor v, lam_v, k, q, decay, noise, lam0, eta0, y, yvar, lamT, etaT;
    const int64_t *cu_seqlens;
    int64_t n_seqs;
    /* State slots as the delta family's (linattn_kalman(3), SERVING): NULL,
     * or N slots; the states are then pools [P,M,S] (each pair with its own
     * P; every slot of lam0 must hold lam > 0) and sequence n reads and
     * writes slot state_indices[n] (-1: padding, from the prior lam = 1,
     * eta = 0, not stored; duplicates LINATTN_EINVAL, out of range
     * LINATTN_ERANGE, nothing written); has_initial_state: NULL, or N
     * flags (0: from the prior). */
    const int64_t *state_indices;
    const unsigned char *has_initial_state;
    /* Rollback and checkpoint rows as the delta family's hW, hC
     * (linattn_kalman(3), SERVING): lamW, etaW [N*W,M,S] the state after
     * each of the last W tokens of each sequence (row n*W+w: after token
     * len-W+w; both or neither); lamC, etaC [N*C,M,S] the state after every
     * checkpoint_every tokens, or after the token counts checkpoint_offsets
     * [N*C] (ascending, then zeros; both or neither; rows not reached are
     * left as they were).  The CPU runs the recurrence with them. */
    linattn_tensor lamW, etaW, lamC, etaC;
    int64_t checkpoint_every;
    const int64_t *checkpoint_offsets;
} linattn_kalman_io;

LINATTN_API int linattn_kalman_forward(linattn_ctx *ctx, const linattn_kalman_io *io,
                                       const linattn_kalman_opts *opts);

/* One decode step: v, lam_v, y, yvar [B,M]; k, q [B,S]; decay, noise
 * [M,S]; state_lam, state_eta [B,M,S] updated in place (required;
 * state_lam finite and > 0). */
typedef struct linattn_kalman_step_io {
    linattn_tensor v, lam_v, k, q, decay, noise, state_lam, state_eta, y, yvar;
    const int64_t *state_indices;           /* B slots of pools [P,M,S], as the forward's */
    const unsigned char *has_initial_state;
} linattn_kalman_step_io;

LINATTN_API int linattn_kalman_step(linattn_ctx *ctx, const linattn_kalman_step_io *io,
                                    const linattn_kalman_opts *opts);
/* ---- exact (feature-map) linear attention: ela (linattn_ela(3)) -------- */

/* Per (sequence, head), with a = qk_scale q_i, b_j = qk_scale k_j and
 * feature maps phi (query side), psi (key side), both R^K -> R^F:
 *   y_i = phi(a_i)^T S / max(phi(a_i)^T z, 1e-8),
 *   S = sum_j psi(b_j) v_j^T [F,V],  z = sum_j psi(b_j) [F]
 * over j <= i (causal, prefix sums) or over every j (bidirectional). */
typedef enum linattn_ela_feature {
    LINATTN_FEATURE_EXP = 0,        /* phi = psi = exp, elementwise; F = K (default) */
    LINATTN_FEATURE_SQDIST_SUM = 1, /* |a+b|^2: phi = [a,|a|^2,1], psi = [2b,1,|b|^2]; F = K+2 */
    LINATTN_FEATURE_SQDIST_SUB = 2, /* |a-b|^2: phi = [a,|a|^2,1], psi = [-2b,1,|b|^2]; F = K+2 */
    LINATTN_FEATURE_ELU1 = 3,       /* phi = psi = elu(x) + 1; F = K */
    LINATTN_FEATURE_IDENTITY = 4    /* phi = psi = x; F = K (the denominator may be <= 0) */
} linattn_ela_feature;

/* F, the feature size of a map for key head size K; LINATTN_EINVAL (< 0) for
 * an unknown map or K < 1. */
LINATTN_API int64_t linattn_ela_feature_dim(linattn_ela_feature feature, int64_t K);
/* "exp", "sqdist_sum", "sqdist_sub", "elu1", "identity" to the enum:
 * LINATTN_OK, or LINATTN_EINVAL (message lists the names) and *out untouched. */
LINATTN_API int linattn_ela_feature_parse(const char *name, linattn_ela_feature *out);
/* The name of a map ("exp" ...), or NULL for an unknown value. */
LINATTN_API const char *linattn_ela_feature_name(linattn_ela_feature feature);

typedef struct linattn_ela_opts {
    linattn_algo algo;  /* forward on the CPU: recurrent, chunk, or auto */
    int chunk;          /* chunk size of LINATTN_ALGO_CHUNK; 0: default (64) */
    float qk_scale;     /* q and k are multiplied by it before the maps; 0 means 1
                           (none, as the paper's language model); finite */
    linattn_ela_feature feature; /* default LINATTN_FEATURE_EXP */
    int bidirectional;  /* nonzero: every token reads the whole sequence's S, z */
    int plain_exp;      /* nonzero: the exp map without the running max shift
                           (overflows in float once q_d + k_d passes about 88) */
} linattn_ela_opts;

LINATTN_API void linattn_ela_opts_init(linattn_ela_opts *opts);

/* State.  S [N,H,F,V] and z [N,H,F].  With the exp map in its default safe
 * form the library keeps S and z shifted by a per-dimension log-offset c
 * [N,H,F] (the running maximum of the scaled keys): the true sums are
 * exp(c_d) S[d,:] and exp(c_d) z_d.  c is optional:
 *   - c0 given: s0, z0 are shifted by c0 (as a previous cT returned them);
 *     c0 absent: s0, z0 are the true (unshifted) sums.
 *   - cT given: sT, zT are returned shifted with the offset in cT (exact and
 *     never overflows); cT absent: sT, zT are the true sums (may overflow to
 *     inf when keys are large).
 * c0 and cT exist only for the safe exp form (else LINATTN_EINVAL).
 *
 *   q, k [B,T,H,K]; v, o [B,T,H,V]
 *   s0 [N,H,F,V], z0 [N,H,F] initial state (both or neither; absent: zeros),
 *   c0 [N,H,F] (needs s0); sT, zT final state (both or neither; absent: not
 *   returned; may be the s0, z0 buffers), cT [N,H,F] (needs sT; may be c0).
 *   cu_seqlens and n_seqs as for the delta family.
 * Bidirectional: the final state is the same as the causal one (initial
 * state plus every token) and every token reads it. */
typedef struct linattn_ela_io {
    linattn_tensor q, k, v, s0, z0, c0, o, sT, zT, cT;
    const int64_t *cu_seqlens;
    int64_t n_seqs;
    /* State slots as the delta family's (linattn_ela(3), SERVING): NULL, or
     * N slots; the states are then pools [P,H,F,V], [P,H,F] (the initial
     * and the final state each with its own P) and sequence n reads and
     * writes slot state_indices[n] (-1: padding, from zeros, not stored;
     * duplicates LINATTN_EINVAL, out of range LINATTN_ERANGE, nothing
     * written); has_initial_state: NULL, or N flags (0: from zeros). */
    const int64_t *state_indices;
    const unsigned char *has_initial_state;
    /* Rollback and checkpoint rows as the delta family's hW, hC
     * (linattn_ela(3), SERVING): sW [N*W,H,F,V], zW [N*W,H,F] the state
     * after each of the last W tokens of each sequence (row n*W+w: after
     * token len-W+w; both or neither); sC [N*C,H,F,V], zC [N*C,H,F] the
     * state after every checkpoint_every tokens, or after the token counts
     * checkpoint_offsets [N*C] (ascending, then zeros; both or neither;
     * rows not reached are left as they were).  cW, cC [N*R,H,F]: optional,
     * as cT (safe exp form only): given, the rows are shifted by them;
     * absent, the rows are the true sums.  Not with bidirectional. */
    linattn_tensor sW, zW, cW, sC, zC, cC;
    int64_t checkpoint_every;
    const int64_t *checkpoint_offsets;
} linattn_ela_io;

LINATTN_API int linattn_ela_forward(linattn_ctx *ctx, const linattn_ela_io *io,
                                    const linattn_ela_opts *opts);

/* One decode step (the forward with T = 1; bidirectional makes no difference):
 * q, k [B,H,K]; v, o [B,H,V]; state_s [B,H,F,V] and state_z [B,H,F], required,
 * updated in place; state_c [B,H,F] optional as c0 = cT above. */
typedef struct linattn_ela_step_io {
    linattn_tensor q, k, v, state_s, state_z, state_c, o;
    const int64_t *state_indices;           /* B slots of pools [P,..], as the forward's */
    const unsigned char *has_initial_state;
} linattn_ela_step_io;

LINATTN_API int linattn_ela_step(linattn_ctx *ctx, const linattn_ela_step_io *io,
                                 const linattn_ela_opts *opts);
/* ---- softmax attention with a KV cache (linattn_softmax(3)) ------------- */

/* Causal softmax attention, the quadratic baseline:
 *   o_t = sum_{j<=t} softmax_j(scale q_t . k_j) v_j
 * computed blockwise with an online softmax (no T x T matrix is formed). */
typedef struct linattn_softmax_opts {
    int chunk;   /* CPU forward: query and key block size, 1..LINATTN_MAX_CHUNK;
                    0: default (64).  The OpenCL kernels size their own blocks. */
    float scale; /* 0 means 1/sqrt(K) */
} linattn_softmax_opts;

LINATTN_API void linattn_softmax_opts_init(linattn_softmax_opts *opts);

/*   q [B,T,Hq,K], k [B,T,Hkv,K], v [B,T,Hkv,V], o [B,T,Hq,V] with Hq a
 *   multiple of Hkv: query head h reads key/value head h / (Hq/Hkv) (grouped
 *   query heads, as PyTorch SDPA enable_gqa); cu_seqlens as for the delta
 *   family (each packed sequence attends only to itself). */
typedef struct linattn_softmax_io {
    linattn_tensor q, k, v, o;
    const int64_t *cu_seqlens;
    int64_t n_seqs;
} linattn_softmax_io;

LINATTN_API int linattn_softmax_forward(linattn_ctx *ctx, const linattn_softmax_io *io,
                                        const linattn_softmax_opts *opts);

/* A KV cache owned by the library: keys [B,H,capacity,K] and values
 * [B,H,capacity,V] in float32 (H: the key/value heads, Hkv above), in host memory on CPU and reference contexts
 * and in device memory on an OpenCL context.  capacity (tokens) is a hint:
 * 0 allocates nothing until the first append; when an append needs more
 * room the capacity doubles (at least to what is needed), so a caller that
 * knows the final length passes it and never pays a regrowth.  A cache
 * belongs to the context that made it (other contexts are refused) and must
 * be destroyed before it; one call at a time per cache. */
typedef struct linattn_kvcache linattn_kvcache;

LINATTN_API int linattn_kvcache_create(linattn_ctx *ctx, int64_t B, int64_t H, int64_t K,
                                       int64_t V, int64_t capacity, linattn_kvcache **out);
LINATTN_API void linattn_kvcache_destroy(linattn_kvcache *cache);
/* Tokens held (per batch row), and tokens that fit before the next regrowth. */
LINATTN_API int64_t linattn_kvcache_length(const linattn_kvcache *cache);
LINATTN_API int64_t linattn_kvcache_capacity(const linattn_kvcache *cache);
/* Bytes of key and value storage held: B*H*capacity*(K+V)*4 (the cache
 * proper; the step's small split scratch is not counted). */
LINATTN_API size_t linattn_kvcache_bytes(const linattn_kvcache *cache);
/* Append T tokens without attending (prefill): k [B,T,H,K], v [B,T,H,V]
 * with the cache's B, H, K, V.  On any failure the cache keeps its length
 * and contents; when it cannot grow (LINATTN_ENOMEM) also its capacity (a
 * device failure after a growth leaves the room grown). */
LINATTN_API int linattn_kvcache_append(linattn_ctx *ctx, linattn_kvcache *cache,
                                       const linattn_tensor *k,
                                       const linattn_tensor *v);
/* Forget every token (keeps the memory). */
LINATTN_API int linattn_kvcache_reset(linattn_kvcache *cache);
/* Keep the first length tokens (0 <= length <= the length held; keeps the
 * memory): rolls back steps, or holds a benchmark's cache at one length. */
LINATTN_API int linattn_kvcache_truncate(linattn_kvcache *cache, int64_t length);

/* One decode step: append k [B,H,K] and v [B,H,V] as the next token of each
 * batch row, then attend with q [B,Hq,K] over the whole cache (the new token
 * included) into o [B,Hq,V]; Hq a multiple of the cache's H, grouped as in
 * the forward.  On failure nothing is written to o and the
 * cache keeps its length and contents. */
typedef struct linattn_softmax_step_io {
    linattn_tensor q, k, v, o;
} linattn_softmax_step_io;

LINATTN_API int linattn_softmax_step(linattn_ctx *ctx, linattn_kvcache *cache,
                                     const linattn_softmax_step_io *io,
                                     const linattn_softmax_opts *opts);

/* ---- the operator table (linattn_ops(3)) ------------------------------ *
 * Every entry point described once, for callers that pick an operator at
 * run time (tools, bindings, test harnesses): its tensors in a fixed order,
 * their ranks and symbolic dimensions, which are read or written, which are
 * optional, their value ranges, and its options.  linattn_op_call() runs an
 * entry point on tensors given in the table's order. */
#define LINATTN_OP_MAX_TENSORS 12 /* the delta forwards use 10 */
#define LINATTN_OP_MAX_OPTIONS 8
/* Symbolic dimensions are letters A..Z: B batch, T tokens, H heads, K key
 * and V value head size, N sequences (B, or n_seqs with cu_seqlens), M
 * channels and S states (kalman), F features (ela); J key heads of the
 * delta family and softmax's key/value heads (H when nothing binds it); for
 * the delta family Q query heads (J when unbound), O output heads (Q when
 * Q != J, query heads sharing a state; else H) and G the channels of a
 * per-key-channel gate (K; unbound: one gate a head).  Serving (the delta
 * forwards): W the rows of hW (N times the rollback window), C the rows of
 * hC (N times the checkpoints per sequence); nothing derives them, so a
 * caller that sizes tensors from the table leaves hW and hC absent unless
 * it binds W or C itself.  With args.state_indices the states' first
 * dimension (N in the table) is the pool's P slots. */
#define LINATTN_OP_LETTERS 26

typedef enum linattn_op_role {
    LINATTN_ROLE_IN = 0,   /* read */
    LINATTN_ROLE_OUT = 1,  /* written */
    LINATTN_ROLE_INOUT = 2 /* read and updated in place (a step's state) */
} linattn_op_role;

typedef struct linattn_op_tensor {
    const char *name;     /* the field of the entry point's io struct */
    int ndim;
    char dims[LINATTN_MAX_DIMS + 1]; /* a letter per dimension, e.g. "BTHK" */
    char tail;            /* 0, or the letter of an optional trailing dimension,
                             present when that letter is bound (g: [B,T,H] or
                             [B,T,H,K] with G = K); ndim does not count it */
    linattn_op_role role;
    int optional;         /* may be absent */
    int pair;             /* index of the tensor given with this one, or -1 */
    int needs;            /* index of a tensor this one needs, or -1 */
    int ranged;           /* values checked: finite and within [lo, hi] */
    float lo, hi;         /* the range (ranged inputs); inclusive unless open */
    int lo_open, hi_open;
    float fill_lo, fill_hi; /* typical values, for tests and benchmarks */
} linattn_op_tensor;

typedef enum linattn_op_type {
    LINATTN_OPT_FLOAT = 0,
    LINATTN_OPT_INT = 1,
    LINATTN_OPT_FLAG = 2,    /* 0 or 1 */
    LINATTN_OPT_ALGO = 3,    /* linattn_algo: "auto", "recurrent", "chunk" */
    LINATTN_OPT_FEATURE = 4  /* linattn_ela_feature, by its name */
} linattn_op_type;

typedef struct linattn_op_option {
    const char *name;     /* the field of the entry point's opts struct */
    linattn_op_type type;
    double lo, hi;        /* accepted values, inclusive */
    double def;           /* the default (0 often means "chosen by the library") */
    int nonzero;          /* 0 is refused, though within [lo, hi] */
} linattn_op_option;

typedef struct linattn_op_info {
    const char *name;     /* "gdn", "kla", "gla", "gka", "kalman", "ela", "softmax" */
    const char *entry;    /* "forward" or "step" */
    const char *family;   /* entry points sharing io structs: "delta" for gdn, kla, gla */
    const char *page;     /* its manual page, e.g. "linattn_gdn(3)" */
    int packed;           /* takes cu_seqlens and n_seqs (forwards) */
    int cache;            /* needs a linattn_kvcache (softmax's step) */
    int f32_states;       /* its states (in-place ones, and a forward's over N)
                             must be float32 (linattn(3), HALF PRECISION) */
    int ntensors, noptions;
    linattn_op_tensor tensors[LINATTN_OP_MAX_TENSORS];
    linattn_op_option options[LINATTN_OP_MAX_OPTIONS];
} linattn_op_info;

/* The arguments of one call, in the table's order.  Absent tensors are the
 * absent tensor (linattn_tensor_none). */
typedef struct linattn_op_args {
    linattn_tensor t[LINATTN_OP_MAX_TENSORS];
    double opt[LINATTN_OP_MAX_OPTIONS];
    const int64_t *cu_seqlens;
    int64_t n_seqs;
    linattn_kvcache *cache; /* softmax's step */
    /* serving fields: the slots for the delta family, gka, kalman and ela
     * (softmax ignores them); checkpoint_every and checkpoint_offsets for
     * the delta forwards (linattn_delta_io), else ignored */
    const int64_t *state_indices;
    const unsigned char *has_initial_state;
    int64_t checkpoint_every;
    const int64_t *checkpoint_offsets;
} linattn_op_args;

/* The entry points: linattn_op_at(i) for 0 <= i < linattn_op_count(). */
LINATTN_API int linattn_op_count(void);
LINATTN_API const linattn_op_info *linattn_op_at(int i);
/* By operator name and entry ("forward" or "step"); NULL (and a message
 * listing the names) when there is none. */
LINATTN_API const linattn_op_info *linattn_op_find(const char *name, const char *entry);
/* The index of a tensor or option by name, or -1. */
LINATTN_API int linattn_op_tensor_index(const linattn_op_info *op, const char *name);
LINATTN_API int linattn_op_option_index(const linattn_op_info *op, const char *name);
/* Every tensor absent, every option its default, no sequences, no cache. */
LINATTN_API void linattn_op_args_init(const linattn_op_info *op, linattn_op_args *args);
/* Parse an option's value from text (numbers; algo and feature names; a
 * flag takes "0" or "1"): LINATTN_OK, or LINATTN_ERANGE / LINATTN_EINVAL
 * with a message that names the option and what it takes. */
LINATTN_API int linattn_op_option_parse(const linattn_op_info *op, int i, const char *text,
                                        double *out);
/* Bind the symbolic dimensions: dims[letter - 'A'] entries above 0 are
 * kept, the others are taken from the given tensors of args (in table
 * order), then the derived ones (N, F) follow.  0 stays where nothing tells. */
LINATTN_API void linattn_op_dims(const linattn_op_info *op, const linattn_op_args *args,
                                 int64_t dims[LINATTN_OP_LETTERS]);
/* The shape of tensor i under bound dims: LINATTN_OK, or LINATTN_ESHAPE
 * when one of its dimensions is unbound (its tail, when unbound, is left
 * out: see linattn_op_rank). */
LINATTN_API int linattn_op_shape(const linattn_op_info *op, int i,
                                 const int64_t dims[LINATTN_OP_LETTERS],
                                 int64_t shape[LINATTN_MAX_DIMS]);
/* The rank of tensor i under dims: its ndim, plus 1 when it has a tail
 * whose letter is bound; 0 for a bad op or i. */
LINATTN_API int linattn_op_rank(const linattn_op_info *op, int i,
                                const int64_t dims[LINATTN_OP_LETTERS]);
/* Run the entry point (its own checks apply, as when called directly). */
LINATTN_API int linattn_op_call(linattn_ctx *ctx, const linattn_op_info *op,
                                const linattn_op_args *args);

/* ---- .npy files (float32 or float16, little-endian, C order) ---------- */

/* An array owned by the library (free with linattn_array_free).  data is
 * float32 whatever the file held: '<f2' elements are widened exactly. */
typedef struct linattn_array {
    float *data;
    int ndim;
    int64_t shape[8];
    size_t count; /* number of elements */
    linattn_dtype file_dtype; /* the file's elements: LINATTN_F32 ('<f4') or LINATTN_F16 ('<f2') */
} linattn_array;

/* Parse a .npy image held in memory / read a .npy file.  Anything but
 * '<f4' (little-endian float32) or '<f2' (little-endian float16),
 * fortran_order False, at most 8 dimensions whose nonzero ones multiply to
 * at most SIZE_MAX/4 elements, exact payload size, is rejected with
 * LINATTN_EFORMAT.  On failure *out is left zeroed.  Safe on untrusted
 * bytes (fuzzed: make fuzz). */
LINATTN_API int linattn_npy_parse(const void *buf, size_t len, linattn_array *out);
LINATTN_API int linattn_npy_load(const char *path, linattn_array *out);
/* Write data with the given shape as a version 1.0 .npy file ('<f4'). */
LINATTN_API int linattn_npy_save(const char *path, const float *data, int ndim,
                                 const int64_t *shape);
/* The same for data of any dtype: f16 as '<f2' (its bits unchanged), f32
 * as '<f4', bf16 as '<f4' holding its values exactly (NumPy has no
 * bfloat16; linattn(3), .npy files). */
LINATTN_API int linattn_npy_save_dtype(const char *path, const void *data, linattn_dtype dtype,
                                       int ndim, const int64_t *shape);
LINATTN_API void linattn_array_free(linattn_array *a);
/* View an array as a tensor (fails with LINATTN_ESHAPE past 4 dims). */
LINATTN_API int linattn_array_tensor(const linattn_array *a, linattn_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
