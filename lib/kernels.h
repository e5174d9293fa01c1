/* linattn - internal kernel interface.
 *
 * A kernel does arithmetic only: no argument checks, no allocation, no
 * threading, no policy.  The drivers in lib/ slice the work into jobs and
 * hand each job to the kernel chosen for the running CPU (see dispatch.c).
 */
#ifndef LINATTN_KERNELS_H
#define LINATTN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* One job of the token-recurrent delta-rule kernel: one (sequence, head)
 * and a block of n value columns of its state, over T consecutive tokens.
 *
 * All pointers are already offset to token 0 of this sequence and head, and
 * the value-side pointers (v, o, S) to the first column of the block.
 *
 *   q[t*sqk + i], k[t*sqk + i]      i < K          query, key of token t
 *   v[t*sv + j],  o[t*sv + j]       j < n          value in, output out
 *   g[t*sg], beta[t*sg]                            log-decay, write strength
 *   S[i*ldS + j]                    i < K, j < n   state, updated in place
 *
 * g == NULL means no decay (g_t = 0).  beta == NULL selects the plain
 * linear-attention write of gla (S += k v^T, no delta); otherwise the
 * Gated DeltaNet write.  Per token t (gamma = exp(g_t)):
 *
 *   gdn:  u = beta_t (v_t - gamma S^T k_t);  S = gamma S + k_t u^T
 *   gla:  S = gamma S + k_t v_t^T
 *   both: o_t = scale * S^T q_t   (read after the write)
 *
 * The results of one column must not depend on n or on the other columns
 * (bit for bit), so that splitting the columns over threads never changes
 * the answer. */
typedef struct linattn_delta_rec_job {
    int64_t T;
    int K, n;
    ptrdiff_t sqk, sv, sg, ldS;
    const float *q, *k, *v, *g, *beta;
    float *o, *S;
    float scale;
    /* Scratch of LINATTN_PACK_FLOATS floats (64-byte aligned) where a kernel
     * may keep a contiguous copy of its panel of S, or NULL (then it works
     * on S in place).  Using it must not change any result bit. */
    float *pack;
} linattn_delta_rec_job;

#define LINATTN_PACK_FLOATS 16384

typedef void (*linattn_delta_rec_fn)(const linattn_delta_rec_job *job);

/* Portable C version (compiled for the baseline ISA). */
void linattn_delta_rec_portable(const linattn_delta_rec_job *job);

/* Per-ISA versions; each exists only when its ISA is compiled in. */
void linattn_delta_rec_avx2(const linattn_delta_rec_job *job);
void linattn_delta_rec_avx512(const linattn_delta_rec_job *job);
void linattn_delta_rec_neon(const linattn_delta_rec_job *job);

/* One job of the gka recurrence (spec/kalman.md A.1-A.2): one (sequence,
 * head) over T tokens.  Pointers are offset to token 0 of the sequence and
 * head; strides as for the delta family.  Hs [K*K] and Us [K*V] are the
 * state, updated in place.  omega[n] (n < iters) is the Chebyshev schedule.
 * work holds 3*K + max(K, V) floats. */
typedef struct linattn_gka_job {
    int64_t T;
    int K, V, iters;
    ptrdiff_t sqk, sv, sg;
    const float *q, *k, *v, *g, *beta, *alpha, *omega;
    float *o, *Hs, *Us, *work;
    float scale, ridge;
} linattn_gka_job;

typedef void (*linattn_gka_rec_fn)(const linattn_gka_job *job);

void linattn_gka_rec_portable(const linattn_gka_job *job);
void linattn_gka_rec_avx2(const linattn_gka_job *job);
void linattn_gka_rec_avx512(const linattn_gka_job *job);
void linattn_gka_rec_neon(const linattn_gka_job *job);

/* One job of the blocked causal softmax forward: nq query rows of one
 * (sequence, head), at positions q0 .. q0+nq-1 of the sequence; row i
 * attends to keys 0 .. q0+i.  Pointers are offset to this (sequence, head):
 *   q[i*sqk + c], o[i*sv + c]   the job's rows (q and o already at row q0)
 *   k[j*sqk + c], v[j*sv + c]   key and value j of the sequence (from 0)
 * Key blocks of bk tokens; an online softmax per row.  work holds
 * linattn_softmax_fwd_work(K, V, nq, bk) floats, 64-byte aligned. */
typedef struct linattn_softmax_fwd_job {
    int64_t q0;
    int nq, K, V, bk;
    ptrdiff_t sqk, sv;
    const float *q, *k, *v;
    float *o, *work;
    float scale;
} linattn_softmax_fwd_job;

static inline size_t linattn_softmax_fwd_work(int K, int V, int nq, int bk)
{
    /* Kt [K][bk], s [bk], O [nq][V], m [nq], l [nq], each rounded to 16 */
    const size_t r = 16;
    return ((size_t)K * bk + r - 1) / r * r + ((size_t)bk + r - 1) / r * r +
           ((size_t)nq * V + r - 1) / r * r + 2 * (((size_t)nq + r - 1) / r * r);
}

/* One split of the decode (split-K): one query over n keys k[j*K + c] and
 * values v[j*V + c] (contiguous, the cache's layout).  Writes the split's
 * unnormalised partial: part[c] = sum_j p_j v_j[c] (c < V), part[V] = m,
 * part[V+1] = sum_j p_j, with s_j = scale q.k_j, m = max_j s_j and
 * p_j = exp(s_j - m).  work holds n floats. */
typedef struct linattn_softmax_dec_job {
    int64_t n;
    int K, V;
    const float *q, *k, *v;
    float *part, *work;
    float scale;
} linattn_softmax_dec_job;

typedef void (*linattn_softmax_fwd_fn)(const linattn_softmax_fwd_job *job);
typedef void (*linattn_softmax_dec_fn)(const linattn_softmax_dec_job *job);

void linattn_softmax_fwd_portable(const linattn_softmax_fwd_job *job);
void linattn_softmax_fwd_avx2(const linattn_softmax_fwd_job *job);
void linattn_softmax_fwd_avx512(const linattn_softmax_fwd_job *job);
void linattn_softmax_fwd_neon(const linattn_softmax_fwd_job *job);
void linattn_softmax_dec_portable(const linattn_softmax_dec_job *job);
void linattn_softmax_dec_avx2(const linattn_softmax_dec_job *job);
void linattn_softmax_dec_avx512(const linattn_softmax_dec_job *job);
void linattn_softmax_dec_neon(const linattn_softmax_dec_job *job);

#endif
