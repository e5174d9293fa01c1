/* linattn - token-recurrent delta-rule kernel, AVX-512.
 *
 * Mirror of simd/avx2/delta_avx2.c with zmm vectors: one fused sweep over the
 * state per token (write of token t fused with the reads S^T k, S^T q of
 * token t+1), columns in panels of PW = NVMAX*16 so that a K x PW slice of
 * the state stays in L1 across all T tokens; the accumulators a = S^T k_next,
 * b = S^T q_next and u stay in registers.
 *
 * Column independence (bit for bit): every column goes through exactly the
 * same sequence of vector operations whatever lane or panel it lands in; the
 * tail panel runs the same code with masked loads/stores (__mmask16) only.
 * gamma = expf(g_t) and kq = k_t . q_t are computed by the same code in every
 * panel (kq by a fixed-shape vector reduction that depends on K only).
 *
 * Compile with -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma. */
#include <immintrin.h>
#include <math.h>
#include "kernels.h"

#define VL 16               /* floats per zmm */
#define NVMAX 4             /* vectors per panel (64 columns: measured best) */
#define PW (VL * NVMAX)     /* panel width in columns */

#define INLINE static inline __attribute__((always_inline))
/* fully unroll the loops over the vectors of a panel (keeps a, b, u in registers) */
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 8")
#endif

/* Mask with the first r (0..16) lanes on. */
static __mmask16 lane_mask(int r)
{
    return r >= VL ? (__mmask16)0xFFFF : (__mmask16)((1u << (r < 0 ? 0 : r)) - 1u);
}

INLINE __m512 ld(const float *p, __mmask16 m, int masked)
{
    return masked ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p);
}

INLINE void st(float *p, __mmask16 m, int masked, __m512 x)
{
    if (masked) _mm512_mask_storeu_ps(p, m, x);
    else _mm512_storeu_ps(p, x);
}

/* x . y over K floats: 4 accumulators over blocks of 64, then blocks of 16,
 * then a masked block, then a fixed horizontal sum.  Depends on K only. */
static float dot(const float *x, const float *y, int K)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= K; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), s3);
    }
    for (; i + 16 <= K; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
    if (i < K) {
        const __mmask16 m = lane_mask(K - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), s1);
    }
    const __m512 s = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
    __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* One panel of NV vectors (columns j0 .. j0+w-1).  NV, MASKED, GDN and
 * PACKED are compile-time constants at every call site, so each
 * instantiation is specialised; MASKED = 0 requires w == NV*VL.
 *
 * PACKED: the panel is copied into buf (K rows of NV*VL floats, contiguous)
 * during the token-0 read pass and written back during the last token's
 * write pass, so the T-1 fused sweeps run on a contiguous array.  With the
 * state's own row stride (e.g. ldS = 128 floats = 512 B) the panel's rows
 * fall into a fraction of the L1 sets and thrash; packed they spread over
 * all sets.  Lanes of buf beyond w hold zeros (masked loads), so the sweeps
 * on buf need no masks.  Packing changes no arithmetic. */
INLINE void panel(const linattn_delta_rec_job *jb, int j0, int w, float *buf,
                  const int NV, const int MASKED, const int GDN, const int PACKED)
{
    const int K = jb->K;
    const ptrdiff_t ldS = jb->ldS, sq = jb->sq, sk = jb->sk;
    float *const S = jb->S + j0;
    /* work array of the sweeps: buf (stride NV*VL, no masks) or S itself */
    float *const W = PACKED ? buf : S;
    const ptrdiff_t ldW = PACKED ? NV * VL : ldS;
    const int WM = MASKED && !PACKED;
    __mmask16 m[NVMAX];
    __m512 a[NVMAX], b[NVMAX], u[NVMAX];

    UNROLL
    for (int v = 0; v < NV; v++) {
        m[v] = lane_mask(w - v * VL);
    }

    /* reads for token 0: a = S^T k_0, b = S^T q_0 (and copy S into buf) */
    UNROLL
    for (int v = 0; v < NV; v++) { a[v] = _mm512_setzero_ps(); b[v] = _mm512_setzero_ps(); }
    for (int i = 0; i < K; i++) {
        const float *row = S + (ptrdiff_t)i * ldS;
        const __m512 ki = _mm512_set1_ps(jb->k[i]), qi = _mm512_set1_ps(jb->q[i]);
        UNROLL
        for (int v = 0; v < NV; v++) {
            const __m512 s = ld(row + v * VL, m[v], MASKED);
            if (PACKED) _mm512_storeu_ps(W + (ptrdiff_t)i * ldW + v * VL, s);
            if (GDN) a[v] = _mm512_fmadd_ps(s, ki, a[v]);
            b[v] = _mm512_fmadd_ps(s, qi, b[v]);
        }
    }

    const __m512 scale = _mm512_set1_ps(jb->scale);
    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * sq, *k = jb->k + t * sk;
        const float *vin = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        const float gs = jb->g ? expf(jb->g[t * jb->sg]) : 1.0f;
        const __m512 gam = _mm512_set1_ps(gs);
        const __m512 kq = _mm512_set1_ps(dot(k, q, K));

        /* u = beta (v - gamma a)  (gdn)  or  u = v  (gla) */
        if (GDN) {
            const __m512 beta = _mm512_set1_ps(jb->beta[t * jb->sb]);
            UNROLL
            for (int v = 0; v < NV; v++)
                u[v] = _mm512_mul_ps(beta, _mm512_fnmadd_ps(gam, a[v], ld(vin + v * VL, m[v], MASKED)));
        } else {
            UNROLL
            for (int v = 0; v < NV; v++) u[v] = ld(vin + v * VL, m[v], MASKED);
        }
        /* o = scale (gamma b + kq u) = scale S_t^T q_t */
        UNROLL
        for (int v = 0; v < NV; v++)
            st(o + v * VL, m[v], MASKED,
               _mm512_mul_ps(scale, _mm512_fmadd_ps(kq, u[v], _mm512_mul_ps(gam, b[v]))));

        if (t + 1 < jb->T) {
            /* fused sweep: s = gamma S + k_i u; store s; a += s kn_i; b += s qn_i */
            const float *qn = q + sq, *kn = k + sk;
            UNROLL
            for (int v = 0; v < NV; v++) { a[v] = _mm512_setzero_ps(); b[v] = _mm512_setzero_ps(); }
            _Pragma("GCC unroll 2")   /* loop unrolling only: same arithmetic */
            for (int i = 0; i < K; i++) {
                float *row = W + (ptrdiff_t)i * ldW;
                const __m512 ki = _mm512_set1_ps(k[i]);
                const __m512 kni = _mm512_set1_ps(kn[i]), qni = _mm512_set1_ps(qn[i]);
                UNROLL
                for (int v = 0; v < NV; v++) {
                    const __m512 s = _mm512_fmadd_ps(gam, ld(row + v * VL, m[v], WM),
                                                     _mm512_mul_ps(ki, u[v]));
                    st(row + v * VL, m[v], WM, s);
                    if (GDN) a[v] = _mm512_fmadd_ps(s, kni, a[v]);
                    b[v] = _mm512_fmadd_ps(s, qni, b[v]);
                }
            }
        } else {
            /* last token: write only, from the work array back to S */
            for (int i = 0; i < K; i++) {
                const float *wrow = W + (ptrdiff_t)i * ldW;
                float *row = S + (ptrdiff_t)i * ldS;
                const __m512 ki = _mm512_set1_ps(k[i]);
                UNROLL
                for (int v = 0; v < NV; v++)
                    st(row + v * VL, m[v], MASKED,
                       _mm512_fmadd_ps(gam, ld(wrow + v * VL, m[v], WM), _mm512_mul_ps(ki, u[v])));
            }
        }
    }
}

/* Instantiations (GDN = g, PACKED = p):
 *   full panels: unmasked, NVMAX vectors;
 *   packed tail: masked v/o only, 1..NVMAX vectors (just what w needs);
 *   unpacked tail (K too large for buf, rare): NVMAX masked vectors. */
#define FULL(g, p) static void full_##g##p(const linattn_delta_rec_job *jb, int j0, float *buf) \
    { panel(jb, j0, PW, buf, NVMAX, 0, g, p); }
FULL(0, 0) FULL(0, 1) FULL(1, 0) FULL(1, 1)

#define TAIL(g, nv) static void tail_##g##nv(const linattn_delta_rec_job *jb, int j0, int w, float *buf) \
    { panel(jb, j0, w, buf, nv, 1, g, 1); }
#if NVMAX != 4
#error "the tail table below assumes NVMAX == 4"
#endif
TAIL(0, 1) TAIL(0, 2) TAIL(0, 3) TAIL(0, 4)
TAIL(1, 1) TAIL(1, 2) TAIL(1, 3) TAIL(1, 4)

static void tail_unpacked(const linattn_delta_rec_job *jb, int j0, int w, int gdn)
{
    if (gdn) panel(jb, j0, w, NULL, NVMAX, 1, 1, 0);
    else panel(jb, j0, w, NULL, NVMAX, 1, 0, 0);
}


void linattn_delta_rec_avx512(const linattn_delta_rec_job *job)
{
    float *const buf = job->pack;
    const int gdn = job->beta != NULL;
    const int packed = buf && (long)job->K * PW <= LINATTN_PACK_FLOATS;
    int j0 = 0;
    for (; j0 + PW <= job->n; j0 += PW) {
        if (gdn) { if (packed) full_11(job, j0, buf); else full_10(job, j0, buf); }
        else     { if (packed) full_01(job, j0, buf); else full_00(job, j0, buf); }
    }
    if (j0 < job->n) {
        const int w = job->n - j0, nv = (w + VL - 1) / VL;
        if (!packed) { tail_unpacked(job, j0, w, gdn); return; }
        static void (*const tails[2][NVMAX])(const linattn_delta_rec_job *, int, int, float *) = {
            { tail_01, tail_02, tail_03, tail_04 }, { tail_11, tail_12, tail_13, tail_14 } };
        tails[gdn][nv - 1](job, j0, w, buf);
    }
}
