/* linattn - causal softmax attention in float, as function bodies compiled
 * once per ISA: lib/scalar.c (scalar) and simd/<isa>/<isa>.c
 * include this file with SOFTMAX_FWD_NAME and SOFTMAX_DEC_NAME set and their
 * own -m flags; the compiler vectorises the loops (see gka_kernel.h).
 * Every vector loop is an axpy over contiguous floats or a reduction into a
 * fixed number of lanes combined in a fixed order, so a result never depends
 * on how the work is spread over threads.
 *
 * Forward (one block of query rows): per key block, the keys transposed
 * into Kt so that a row's scores are axpys over the block; an online
 * softmax per row (running max m, running sum l, unnormalised O rescaled
 * when the max grows); O / l at the end.
 * Decode (one split of the cache): scores of every key of the split, their
 * max, p = exp(s - max), and the unnormalised sum of p v; the driver merges
 * the splits (log-sum-exp).                                               */
#include <math.h>
#include "kernels.h"

#if defined(_OPENMP) || defined(LINATTN_OMP_SIMD)
#define SM_SIMD _Pragma("omp simd")
#else
#define SM_SIMD
#endif

#if !defined(SOFTMAX_FWD_NAME) || !defined(SOFTMAX_DEC_NAME)
#error "define SOFTMAX_FWD_NAME and SOFTMAX_DEC_NAME before including softmax_kernel.h"
#endif

#define SM_LANES 16
#define SM_R16(x) (((size_t)(x) + 15) / 16 * 16)

/* 16 partial sums to one, pairwise in a fixed order */
static inline float sm_hsum(float *p)
{
    SM_SIMD for (int l = 0; l < 8; l++) p[l] += p[l + 8];
    SM_SIMD for (int l = 0; l < 4; l++) p[l] += p[l + 4];
    return ((p[0] + p[2]) + (p[1] + p[3]));
}

/* dot products of q with four rows k0..k3 (K floats each), four
 * independent accumulators of 16 lanes */
static inline void sm_dot4(const float *q, const float *k0, const float *k1, const float *k2,
                           const float *k3, int K, float *out)
{
    float a[SM_LANES] = {0}, b[SM_LANES] = {0}, c[SM_LANES] = {0}, d[SM_LANES] = {0};
    int i = 0;
    for (; i + SM_LANES <= K; i += SM_LANES)
        SM_SIMD for (int l = 0; l < SM_LANES; l++) {
            const float x = q[i + l];
            a[l] += x * k0[i + l];
            b[l] += x * k1[i + l];
            c[l] += x * k2[i + l];
            d[l] += x * k3[i + l];
        }
    for (int l = 0; i < K; i++, l++) {
        a[l] += q[i] * k0[i];
        b[l] += q[i] * k1[i];
        c[l] += q[i] * k2[i];
        d[l] += q[i] * k3[i];
    }
    out[0] = sm_hsum(a);
    out[1] = sm_hsum(b);
    out[2] = sm_hsum(c);
    out[3] = sm_hsum(d);
}

/* o[0..V) += sum_{j<n} p[j] v[j*sv ..], four rows per pass */
static inline void sm_accum(float *o, const float *p, const float *v, ptrdiff_t sv, int64_t n,
                            int V)
{
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float p0 = p[j], p1 = p[j + 1], p2 = p[j + 2], p3 = p[j + 3];
        const float *v0 = v + j * sv, *v1 = v0 + sv, *v2 = v1 + sv, *v3 = v2 + sv;
        SM_SIMD for (int c = 0; c < V; c++)
            o[c] += p0 * v0[c] + p1 * v1[c] + p2 * v2[c] + p3 * v3[c];
    }
    for (; j < n; j++) {
        const float p0 = p[j], *v0 = v + j * sv;
        SM_SIMD for (int c = 0; c < V; c++) o[c] += p0 * v0[c];
    }
}

void SOFTMAX_FWD_NAME(const linattn_softmax_fwd_job *jb)
{
    const int K = jb->K, V = jb->V, nq = jb->nq, bk = jb->bk;
    const int64_t q0 = jb->q0, kend = q0 + nq;
    float *Kt = jb->work, *s = Kt + SM_R16((size_t)K * bk), *O = s + SM_R16(bk);
    float *m = O + SM_R16((size_t)nq * V), *l = m + SM_R16(nq);
    for (int i = 0; i < nq; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
        for (int c = 0; c < V; c++) O[(size_t)i * V + c] = 0.0f;
    }
    for (int64_t j0 = 0; j0 < kend; j0 += bk) {
        const int nb = (int)(kend - j0 < bk ? kend - j0 : bk);
        for (int j = 0; j < nb; j++) {
            const float *kr = jb->k + (j0 + j) * jb->sk;
            for (int c = 0; c < K; c++) Kt[(size_t)c * bk + j] = kr[c];
        }
        /* row i sees keys up to q0 + i: the first row that sees key j0 */
        for (int i = j0 > q0 ? (int)(j0 - q0) : 0; i < nq; i++) {
            const int64_t vis = q0 + i - j0 + 1;
            const int nv = (int)(vis < nb ? vis : nb);
            const float *qr = jb->q + i * jb->sq;
            for (int j = 0; j < nv; j++) s[j] = 0.0f;
            for (int c = 0; c < K; c++) {
                const float a = qr[c], *kt = Kt + (size_t)c * bk;
                SM_SIMD for (int j = 0; j < nv; j++) s[j] += a * kt[j];
            }
            float mx = m[i];
            for (int j = 0; j < nv; j++) {
                s[j] *= jb->scale;
                mx = fmaxf(mx, s[j]);
            }
            float sum = 0.0f;
            for (int j = 0; j < nv; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            float *o = O + (size_t)i * V;
            const float corr = expf(m[i] - mx); /* 0 on the first block */
            if (corr != 1.0f)
                SM_SIMD for (int c = 0; c < V; c++) o[c] *= corr;
            l[i] = l[i] * corr + sum;
            m[i] = mx;
            sm_accum(o, s, jb->v + j0 * jb->sv, jb->sv, nv, V);
        }
    }
    for (int i = 0; i < nq; i++) {
        const float r = 1.0f / l[i];
        float *out = jb->o + i * jb->so;
        const float *o = O + (size_t)i * V;
        SM_SIMD for (int c = 0; c < V; c++) out[c] = o[c] * r;
    }
}

void SOFTMAX_DEC_NAME(const linattn_softmax_dec_job *jb)
{
    const int K = jb->K, V = jb->V;
    const int64_t n = jb->n;
    float *s = jb->work, mx = -INFINITY;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *k0 = jb->k + j * K;
        sm_dot4(jb->q, k0, k0 + K, k0 + 2 * K, k0 + 3 * K, K, s + j);
    }
    for (; j < n; j++) { /* the last rows, one at a time (same sums) */
        const float *k0 = jb->k + j * K;
        float t[4];
        sm_dot4(jb->q, k0, k0, k0, k0, K, t);
        s[j] = t[0];
    }
    for (j = 0; j < n; j++) {
        s[j] *= jb->scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    float sum = 0.0f;
    for (j = 0; j < n; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    float *o = jb->part;
    for (int c = 0; c < V; c++) o[c] = 0.0f;
    sm_accum(o, s, jb->v, V, n, V);
    o[V] = mx;
    o[V + 1] = sum;
}
