/* linattn - what the library core needs from the OpenCL backend (opencl/).
 * In a build without OpenCL, lib/opencl_none.c provides these as stubs that
 * report LINATTN_ENODEV. */
#ifndef LINATTN_OPENCL_H
#define LINATTN_OPENCL_H

#include <stddef.h>
#include <stdint.h>
#include "linattn.h"

typedef struct linattn_cl linattn_cl;

/* Chunk size of the OpenCL forward (the largest its kernels take). */
#define LINATTN_CL_CHUNK 64

/* Open a device for a context.  spec: "opencl" (best usable device of any
 * type) or "opencl:P.D"; NULL means auto: the best GPU or accelerator, and
 * LINATTN_ENODEV (quietly) when there is none. */
int linattn_cl_open(const char *spec, int verbose, linattn_cl **out);
void linattn_cl_close(linattn_cl *cl);
const char *linattn_cl_describe(const linattn_cl *cl);
/* 1 when the device is a GPU or an accelerator (its memory across a bus). */
int linattn_cl_is_gpu(const linattn_cl *cl);

/* Device memory, as an opaque handle (a cl_mem). */
int linattn_cl_alloc(linattn_cl *cl, size_t bytes, int zero, void **mem);
void linattn_cl_free(void *mem);
int linattn_cl_write(linattn_cl *cl, void *mem, size_t off, size_t bytes, const void *src);
int linattn_cl_read(linattn_cl *cl, void *mem, size_t off, size_t bytes, void *dst);

/* A tensor argument as the device sees it: a buffer handle, or host data. */
typedef struct linattn_cl_arg {
    const float *host;   /* host data (copied in/out), or NULL */
    void *mem;           /* device buffer, or NULL */
    size_t count;        /* elements */
    int dtype;           /* linattn_dtype: float32, or a 16-bit state the kernel converts */
} linattn_cl_arg;

/* A value range [lo, hi], either end open (values.c's table). */
typedef struct linattn_cl_range {
    float lo, hi;
    int lo_open, hi_open;
} linattn_cl_range;
/* The tensors of a value check that lie in device buffers (values.c fills
 * it): buffer mem[i] holds count[i] floats that must lie in range[i].
 * linattn_cl_values_check runs it and waits; a device call that takes one
 * (linattn_cl_delta.vcheck) enqueues it before its kernels, hands the flags
 * to them (they write nothing when one is set), reads the flags back once
 * after them and before copying any result out, and then fills bad[] and
 * sets read (values_cl.c). */
#define LINATTN_CL_VCHECK_MAX 8
typedef struct linattn_cl_vcheck {
    int n;
    void *mem[LINATTN_CL_VCHECK_MAX];
    size_t count[LINATTN_CL_VCHECK_MAX];
    linattn_cl_range range[LINATTN_CL_VCHECK_MAX];
    int bad[LINATTN_CL_VCHECK_MAX]; /* out: 1 when a value of mem[i] is out of range */
    int read;                       /* out: 1 once bad[] holds the device's flags */
} linattn_cl_vcheck;
/* Run the check on the device and wait for it: vc->bad[] and vc->read. */
int linattn_cl_values_check(linattn_cl *cl, linattn_cl_vcheck *vc);

/* The delta family on the device, arguments already checked. */
typedef struct linattn_cl_delta {
    int op;              /* linattn_delta_op */
    int step;            /* 1: decode step (T = 1, state in place) */
    int64_t B, T, H, nseq;
    int K, V, C;
    int64_t Hk;          /* key heads of k (divides H) */
    int64_t Hq;          /* query heads: Hk, or a multiple of H (sharing a state) */
    int gk;              /* g [.., H, K]: a log-decay per key channel */
    int map;             /* linattn_head_map: value head h reads key head map(h) */
    const int64_t *cu;   /* NULL: sequence n is batch row n */
    float scale, eps;
    linattn_cl_arg q, k, v, g, beta, h0, o, ht; /* step: h0 = ht = state */
    int qk_l2norm, beta_logits; /* opts: q, k rows normalised; beta through the sigmoid */
    linattn_cl_vcheck *vcheck; /* step: the value check of device g, beta, or NULL; a set
                                  flag: LINATTN_ERANGE, nothing written */
} linattn_cl_delta;

int linattn_cl_delta_run(linattn_cl *cl, const linattn_cl_delta *a);

/* gka on the device, arguments already checked.  step: T = 1, sequence n is
 * batch row n, the state (h0 = ht) updated in place. */
typedef struct linattn_cl_gka {
    int step;
    int64_t T, H, nseq;
    int K, V, iters;
    const int64_t *cu;
    float scale, ridge;
    const float *omega;  /* iters floats */
    linattn_cl_arg q, k, v, g, beta, alpha, h0kk, h0kv, o, htkk, htkv;
    int algo;            /* linattn_algo: AUTO, RECURRENT or CHUNK (forward only) */
    int chunk;           /* opts.chunk: 0 or the most tokens per chunk */
    int *ran_chunk;      /* out, if not NULL: 1 when the chunk form ran */
    const char **why;    /* out, if not NULL: why that form ran */
} linattn_cl_gka;

int linattn_cl_gka_run(linattn_cl *cl, const linattn_cl_gka *a);

/* kalman on the device, arguments already checked.  step: T = 1, sequence
 * n is batch row n, the state (lam0 = lamT) updated in place. */
typedef struct linattn_cl_kalman {
    int step;
    int64_t T, M, nseq;
    int S;
    int64_t L;           /* tokens per piece; 0: the backend chooses */
    const int64_t *cu;
    linattn_cl_arg v, lv, k, q, a, p, lam0, eta0, y, yvar, lamT, etaT;
    int *scan;           /* out, if not NULL: 1 when the scan ran (pieces), else 0 */
} linattn_cl_kalman;

int linattn_cl_kalman_run(linattn_cl *cl, const linattn_cl_kalman *a);
/* ela on the device, arguments already checked.  step: T = 1, sequence n is
 * batch row n, the state (s0 = st, z0 = zt, c0 = ct) updated in place.
 * safe: the exp map with the running max offset c (c0/ct optional, see
 * linattn_ela_io). */
typedef struct linattn_cl_ela {
    int step, feature, safe, bidir;
    int chunk;           /* forward: 0 the recurrence, else the chunk form's chunk (1..64) */
    int *ran_chunk;      /* set to 1 when the chunk form ran (else the recurrence) */
    int64_t T, H, nseq;
    int K, V, F;
    const int64_t *cu;
    float qk_scale;
    linattn_cl_arg q, k, v, s0, z0, c0, o, st, zt, ct;
} linattn_cl_ela;

int linattn_cl_ela_run(linattn_cl *cl, const linattn_cl_ela *a);
/* Softmax attention (softmax.cl).  A KV cache in device memory:
 * k [B,H,cap,K], v [B,H,cap,V] (cl_mem handles; NULL before the first
 * growth) and the split step's scratch, kept between steps. */
typedef struct linattn_cl_kv {
    void *k, *v, *part;
    size_t part_floats;
} linattn_cl_kv;

/* Move the first len tokens of each of the rows (B*H) to fresh buffers of
 * capacity newcap; on failure kv is unchanged. */
int linattn_cl_kv_resize(linattn_cl *cl, linattn_cl_kv *kv, int64_t rows, int K, int V,
                         int64_t len, int64_t oldcap, int64_t newcap);
void linattn_cl_kv_free(linattn_cl_kv *kv);

/* Append T tokens k [B,T,H,K], v [B,T,H,V] at position len (room reserved)
 * and, when q is given (a step: T = 1), attend with q [B,Hq,K] over the
 * len + 1 tokens into o [B,Hq,V]; query head h reads cache head h/(Hq/H). */
typedef struct linattn_cl_kvstep {
    int64_t B, T, H, Hq, len, cap;
    int K, V;
    float scale;
    linattn_cl_arg q, k, v, o;
} linattn_cl_kvstep;

int linattn_cl_kv_run(linattn_cl *cl, linattn_cl_kv *kv, const linattn_cl_kvstep *a);

/* The blocked causal forward, arguments already checked: q, o with H
 * query heads, k, v with Hk (query head h reads h/(H/Hk)). */
typedef struct linattn_cl_softmax {
    int64_t T, H, Hk, nseq;
    int K, V;
    const int64_t *cu;
    float scale;
    linattn_cl_arg q, k, v, o;
} linattn_cl_softmax;

int linattn_cl_softmax_run(linattn_cl *cl, const linattn_cl_softmax *a);

/* Copy the 4-D (or fewer) shape from the view (soff, sstr) of device buffer
 * src to the view (doff, dstr) of dst, offsets and strides in elements;
 * one of sdt, ddt is float32, the other any dtype (converted; to a 16-bit
 * type rounded to nearest even) (view_cl.c); waits for the device.  flat:
 * both views are dense (linattn_dense), copied element for element. */
int linattn_cl_view_copy(linattn_cl *cl, void *src, int64_t soff, const int64_t *sstr,
                         linattn_dtype sdt, void *dst, int64_t doff, const int64_t *dstr,
                         linattn_dtype ddt, const int64_t *shape, int ndim, int flat);

/* A summarised segment's outputs completed on the device (segment_cl.c):
 * o [Bt,len,Ho,V] += oA [Bt,len,Ho,K] . S [Bt,H,K,V] per (b, output head r),
 * state head r / (Ho/H); all dense device buffers; waits for the device. */
int linattn_cl_seg_addmul(linattn_cl *cl, void *o, void *oA, void *S, int64_t Bt, int64_t len,
                          int64_t Ho, int64_t H, int K, int V);

#endif
