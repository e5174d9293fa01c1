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

/* One job of the token-recurrent delta-rule kernel: one (sequence, value
 * head) and a block of n value columns of its state, over T consecutive
 * tokens, read by nq query heads (query heads sharing a state; usually 1).
 *
 * All pointers are already offset to token 0 of this sequence and head
 * (q and o to the first of the nq query heads), and the value-side pointers
 * (v, o, S) to the first column of the block.  Every row is contiguous:
 *
 *   q[t*sq + r*sqh + i]   i < K, r < nq  query r of token t
 *   k[t*sk + i]           i < K          key of token t
 *   v[t*sv + j]           j < n          value in
 *   o[t*so + r*soh + j]   j < n, r < nq  output of query r
 *   g[t*sg] (gk == 0), g[t*sg + i] (gk)  log-decay per head or per key channel
 *   beta[t*sb]                           write strength
 *   S[i*ldS + j]          i < K, j < n   state, updated in place
 *
 * g == NULL means no decay.  beta == NULL selects the plain
 * linear-attention write of gla (S += k v^T, no delta); otherwise the
 * Gated DeltaNet write.  Per token t, with D = diag(gamma), gamma_i =
 * exp(g_t) (per head: the same for every i) or exp(g_t,i) (gk):
 *
 *   gdn:  u = beta_t (v_t - (D S)^T k_t);  S = D S + k_t u^T
 *   gla:  S = D S + k_t v_t^T
 *   both: o_t,r = scale * S^T q_t,r   (read after the write)
 *
 * The results of one column must not depend on n or on the other columns
 * (bit for bit), so that splitting the columns over threads never changes
 * the answer. */
typedef struct linattn_delta_rec_job {
    int64_t T;
    int K, n, nq, gk;
    ptrdiff_t sq, sk, sv, so, sg, sb, sqh, soh, ldS;
    const float *q, *k, *v, *g, *beta;
    float *o, *S;
    float scale;
    /* Scratch of LINATTN_PACK_FLOATS floats (64-byte aligned) where a kernel
     * may keep a contiguous copy of its panel of S, or NULL (then it works
     * on S in place).  Using it must not change any result bit. */
    float *pack;
    /* A 16-bit state (hdt LINATTN_KH_F16 or LINATTN_KH_BF16; 0: S is the
     * state).  Then S is unused: the kernel reads row i of its columns from
     * h0[i*ld0 + j] once, at token 0, widening it into registers and its
     * float32 panel in pack, and stores the final state rounded once (to
     * nearest even, the bits of lib/half.c) into ht[i*ldt + j].  Only with
     * pack set, K <= LINATTN_KH_KMAX and T <= LINATTN_KH_TMAX; the result
     * bits are those of the float32 kernel on the widened state, rounded. */
    int hdt;
    ptrdiff_t ld0, ldt;
    const uint16_t *h0;
    uint16_t *ht;
} linattn_delta_rec_job;

#define LINATTN_PACK_FLOATS 16384
#define LINATTN_KH_F16 1
#define LINATTN_KH_BF16 2
#define LINATTN_KH_KMAX 256 /* a panel of 64 columns fits pack */
#define LINATTN_KH_TMAX 128 /* one token chunk of the NEON kernel */

typedef void (*linattn_delta_rec_fn)(const linattn_delta_rec_job *job);

/* One job of the gka recurrence (linattn_gka(3)): one (sequence,
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

/* One job of the kalman filter (linattn_kalman(3)): one sequence and a
 * block of n channels with their S lanes each, over T tokens.
 *
 *   v[t*sm + c], lv[t*sm + c]    c < n   observation, its precision
 *   k[t*S + s], q[t*S + s]       s < S   observation map, readout
 *   a[c*S + s], p[c*S + s]               decay, noise (as given)
 *   ct[(i*S + s)*BLOCK + c]              the same, transposed and floored:
 *                                        i = 0 a, 1 a2 = max(a^2, 1e-12),
 *                                        2 max(p, 1e-12)
 *   lam_in, eta_in [c*S + s]             entering state (NULL: 1 and 0)
 *   lam, eta [c*S + s]                   final state (may be lam_in, eta_in)
 *   y[t*sm + c], yvar[t*sm + c]          outputs (yvar NULL: skipped)
 *
 * Per lane and token:
 *   den = a2 + p lam;  lam = lam/den + lv k^2;  eta = (a/den) eta + lv v k
 *   r = 1/max(lam, 1e-12);  y += q eta r;  yvar += q^2 r   (sums over s in order)
 * The result of a lane does not depend on n or on the other channels, so
 * blocking never changes the answer.  work: LINATTN_KALMAN_WORK floats,
 * 64-byte aligned. */
typedef struct linattn_kalman_job {
    int64_t T;
    int S, n;
    ptrdiff_t sm;
    const float *v, *lv, *k, *q, *a, *p, *ct, *lam_in, *eta_in;
    float *lam, *eta, *y, *yvar, *work;
} linattn_kalman_job;

#define LINATTN_KALMAN_BLOCK 32 /* channels per job */
#define LINATTN_KALMAN_WORK(S) ((size_t)(S) * (2 * LINATTN_KALMAN_BLOCK + 4))

typedef void (*linattn_kalman_rec_fn)(const linattn_kalman_job *job);
/* The scan form's first pass: the composed map of the job's T tokens for
 * each lane, seven numbers (P11 P12 P21 P22 q1 q2 s, see linattn_kalman(3), trace
 * normalised) as sum[(i*S + s)*LINATTN_KALMAN_BLOCK + c], i < 7; lam and
 * eta are not touched. */
typedef void (*linattn_kalman_sum_fn)(const linattn_kalman_job *job, float *sum);

/* One job of ela (linattn_ela(3)): one (sequence, head) over T tokens.
 * Pointers are offset to token 0 of the sequence and head; strides as for
 * the delta family.  S [F*V] (row d = feature d), z [F] are the state,
 * updated in place; with safe (the exp map with the running max shift) they
 * are shifted by c [F], the running per-dimension maximum of the scaled keys
 * (-inf before any key), also updated in place; else c is unused.
 * bidir: first every token is added to the state, then every token reads it.
 * work holds 2*F floats.  Per token, causal (read after the write):
 *   S += psi(b) v^T, z += psi(b);  o = phi(a)^T S / max(phi(a)^T z, 1e-8) */
typedef struct linattn_ela_job {
    int64_t T;
    int K, V, F, feature, safe, bidir;
    ptrdiff_t sqk, sv;
    const float *q, *k, *v;
    float *o, *S, *z, *c, *work;
    float qk_scale;
} linattn_ela_job;

#define LINATTN_ELA_EPS 1e-8f

typedef void (*linattn_ela_rec_fn)(const linattn_ela_job *job);

/* One job of the blocked causal softmax forward: nq query rows of one
 * (sequence, query head), at positions q0 .. q0+nq-1 of the sequence; row i
 * attends to keys 0 .. q0+i.  Pointers are offset to this sequence, q and o
 * to the query head, k and v to the key/value head it reads (grouped query
 * heads share one); every row is contiguous:
 *   q[i*sq + c], o[i*so + c]   the job's rows (q and o already at row q0)
 *   k[j*sk + c], v[j*sv + c]   key and value j of the sequence (from 0)
 * Key blocks of bk tokens; an online softmax per row.  work holds
 * linattn_softmax_fwd_work(K, V, nq, bk) floats, 64-byte aligned. */
typedef struct linattn_softmax_fwd_job {
    int64_t q0;
    int nq, K, V, bk;
    ptrdiff_t sq, sk, sv, so;
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

/* Conversions of n elements between a 16-bit type (f16 or bf16) and
 * float32, bit for bit those of lib/half.c for every input (NaN included). */
typedef void (*linattn_cvt_in_fn)(const uint16_t *src, float *dst, size_t n);
typedef void (*linattn_cvt_out_fn)(const float *src, uint16_t *dst, size_t n);

/* The scalar kernels (lib/scalar.c, lib/delta_rec.c): portable C for the
 * baseline ISA, one for every slot of the kernel table. */
void linattn_delta_rec_scalar(const linattn_delta_rec_job *job);
void linattn_gka_rec_scalar(const linattn_gka_job *job);
void linattn_kalman_rec_scalar(const linattn_kalman_job *job);
void linattn_kalman_sum_scalar(const linattn_kalman_job *job, float *sum);
void linattn_ela_rec_scalar(const linattn_ela_job *job);
void linattn_softmax_fwd_scalar(const linattn_softmax_fwd_job *job);
void linattn_softmax_dec_scalar(const linattn_softmax_dec_job *job);
void linattn_f16_in_scalar(const uint16_t *src, float *dst, size_t n);  /* lib/half.c */
void linattn_bf16_in_scalar(const uint16_t *src, float *dst, size_t n);
void linattn_f16_out_scalar(const float *src, uint16_t *dst, size_t n);
void linattn_bf16_out_scalar(const float *src, uint16_t *dst, size_t n);

/* The kernels of an ISA (simd/<isa>/), only those it really has; each
 * exists only when its ISA is compiled in. */
void linattn_delta_rec_avx2(const linattn_delta_rec_job *job);
void linattn_gka_rec_avx2(const linattn_gka_job *job);
void linattn_kalman_rec_avx2(const linattn_kalman_job *job);
void linattn_kalman_sum_avx2(const linattn_kalman_job *job, float *sum);
void linattn_ela_rec_avx2(const linattn_ela_job *job);
void linattn_softmax_fwd_avx2(const linattn_softmax_fwd_job *job);
void linattn_softmax_dec_avx2(const linattn_softmax_dec_job *job);
void linattn_f16_in_avx2(const uint16_t *src, float *dst, size_t n);
void linattn_bf16_in_avx2(const uint16_t *src, float *dst, size_t n);
void linattn_f16_out_avx2(const float *src, uint16_t *dst, size_t n);
void linattn_bf16_out_avx2(const float *src, uint16_t *dst, size_t n);

void linattn_delta_rec_avx512(const linattn_delta_rec_job *job);
/* the same kernel storing a bf16 state by AVX512_BF16 (delta_avx512bf16.c) */
void linattn_delta_rec_avx512bf16(const linattn_delta_rec_job *job);
void linattn_gka_rec_avx512(const linattn_gka_job *job);
void linattn_kalman_rec_avx512(const linattn_kalman_job *job);
void linattn_kalman_sum_avx512(const linattn_kalman_job *job, float *sum);
void linattn_ela_rec_avx512(const linattn_ela_job *job);
void linattn_softmax_fwd_avx512(const linattn_softmax_fwd_job *job);
void linattn_softmax_dec_avx512(const linattn_softmax_dec_job *job);
void linattn_f16_in_avx512(const uint16_t *src, float *dst, size_t n);
void linattn_bf16_in_avx512(const uint16_t *src, float *dst, size_t n);
void linattn_f16_out_avx512(const float *src, uint16_t *dst, size_t n);
void linattn_bf16_out_avx512(const float *src, uint16_t *dst, size_t n);

void linattn_delta_rec_neon(const linattn_delta_rec_job *job);
void linattn_kalman_rec_neon(const linattn_kalman_job *job);
void linattn_kalman_sum_neon(const linattn_kalman_job *job, float *sum);
void linattn_f16_in_neon(const uint16_t *src, float *dst, size_t n);
void linattn_bf16_in_neon(const uint16_t *src, float *dst, size_t n);
void linattn_f16_out_neon(const float *src, uint16_t *dst, size_t n);
void linattn_bf16_out_neon(const float *src, uint16_t *dst, size_t n);

#endif
