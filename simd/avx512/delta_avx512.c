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
 * g per key channel (GK) and query heads sharing the state (NQ in registers,
 * more by read passes): see lib/delta_rec.c; the per-channel gamma come
 * from exp16 (lane by lane), computed by the same code in every panel.
 *
 * A 16-bit state (jb->hdt, always packed): the token-0 read pass loads it
 * straight into registers (vcvtph2ps, or a shift for bf16) and the last
 * token's write rounds it there (vcvtps2ph, or the integer rounding of
 * lib/half.c for bf16; a vector holding a NaN goes through the scalar code),
 * so that a decode step moves half the bytes and touches no other scratch;
 * with one token (and no read passes) the write widens the state again from
 * cache rather than keep a float32 copy in the pack.
 *
 * Compile with -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma. */
#include <immintrin.h>
#include <math.h>
#include "kernels.h"
#include "linattn.h"
#include "half_avx512.h"

#define VL 16               /* floats per zmm */
#define NVMAX 4             /* vectors per panel (64 columns: measured best) */
#define PW (VL * NVMAX)     /* panel width in columns */
#define NQMAX 4             /* query heads read in the sweep */
#define GBUF ((3 + NQMAX) * LINATTN_MAX_HEAD_DIM) /* GK scratch (panel) */

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

/* A vector of the state: float32 at p, or (hdt) 16-bit at h, widened. */
INLINE __m512 ld_state(int hdt, const float *p, const uint16_t *h, __mmask16 m, int masked)
{
    if (!hdt) return ld(p, m, masked);
    const __m256i x = masked ? _mm256_maskz_loadu_epi16(m, h) : _mm256_loadu_si256((const __m256i *)h);
    return hdt == LINATTN_KH_F16 ? _mm512_cvtph_ps(x) : linattn_bf16x16_in(x);
}

/* Store a vector of the state: float32 at p, or (hdt) rounded once to h. */
INLINE void st_state(int hdt, float *p, uint16_t *h, __mmask16 m, int masked, __m512 x)
{
    __m256i r;
    if (!hdt) {
        st(p, m, masked, x);
        return;
    }
    if (_mm512_mask_cmp_ps_mask(m, x, x, _CMP_UNORD_Q)) { /* a NaN: its payload */
        float tmp[VL];
        _mm512_storeu_ps(tmp, x);
        (hdt == LINATTN_KH_F16 ? linattn_f16_out_scalar : linattn_bf16_out_scalar)(
            tmp, h, (size_t)__builtin_popcount((unsigned)m));
        return;
    }
    r = hdt == LINATTN_KH_F16 ? linattn_f16x16_out(x)
                              : linattn_bf16x16_out_num(_mm512_castps_si512(x));
    if (masked) _mm256_mask_storeu_epi16(h, m, r);
    else _mm256_storeu_si256((__m256i *)h, r);
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

/* exp of 16 lanes, each on its own (Cephes-style: x = n ln2 + r, a degree-5
 * polynomial in r, times 2^n); below ln(FLT_MIN) it is 0.  Within 2 ulp of
 * expf; used for g per key channel only. */
static __m512 exp16(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-87.33654f);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.0f));
    const __m512 fx = _mm512_roundscale_ps(
        _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, _mm512_mul_ps(x, x), x), _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvttps_epi32(fx), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mov_ps(keep, _mm512_mul_ps(y, _mm512_castsi512_ps(e)));
}

/* gamma of token t per key channel: exp of its g row into gam[0..K) */
static void decay_row(const linattn_delta_rec_job *jb, int64_t t, float *gam)
{
    const float *g = jb->g + t * jb->sg;
    for (int i = 0; i < jb->K; i += VL) {
        const __mmask16 m = lane_mask(jb->K - i);
        _mm512_mask_storeu_ps(gam + i, m, exp16(_mm512_maskz_loadu_ps(m, g + i)));
    }
}

/* The read vectors of token t with its decays gam folded in: ck = gam o k_t,
 * cq[r] = gam o q_t,r (r < nq, rows LINATTN_MAX_HEAD_DIM apart); the same
 * products as rdv's, a vector at a time. */
static void scaled_reads(const linattn_delta_rec_job *jb, int64_t t, const float *gam, int nq,
                         float *ck, float *cq)
{
    const float *k = jb->k + t * jb->sk, *q = jb->q + t * jb->sq;
    for (int i = 0; i < jb->K; i += VL) {
        const __mmask16 m = lane_mask(jb->K - i);
        const __m512 gi = _mm512_maskz_loadu_ps(m, gam + i);
        _mm512_mask_storeu_ps(ck + i, m, _mm512_mul_ps(gi, _mm512_maskz_loadu_ps(m, k + i)));
        for (int r = 0; r < nq; r++)
            _mm512_mask_storeu_ps(cq + r * LINATTN_MAX_HEAD_DIM + i, m,
                                  _mm512_mul_ps(gi, _mm512_maskz_loadu_ps(m, q + r * jb->sqh + i)));
    }
}

/* The read vector's entry of row i: gamma'_i x_i (GK) or x_i, broadcast. */
INLINE __m512 rdv(const float *gn, const float *x, int i, const int GK)
{
    return _mm512_set1_ps(GK ? gn[i] * x[i] : x[i]);
}

/* A further query's read (beyond the NQ of the sweep): dst = sum_i W_i c_i,
 * c from rdv, the same arithmetic as the sweep's b; dst is the query's
 * output row of the token, finished when that token is. */
INLINE void read_pass(const float *W, ptrdiff_t ldW, int K, const float *x, const float *gn,
                      float *dst, const __mmask16 *m, const int NV, const int WM,
                      const int MASKED, const int GK)
{
    __m512 p[NVMAX];
    UNROLL
    for (int v = 0; v < NV; v++) p[v] = _mm512_setzero_ps();
    for (int i = 0; i < K; i++) {
        const float *row = W + (ptrdiff_t)i * ldW;
        const __m512 ci = rdv(gn, x, i, GK);
        UNROLL
        for (int v = 0; v < NV; v++) p[v] = _mm512_fmadd_ps(ld(row + v * VL, m[v], WM), ci, p[v]);
    }
    UNROLL
    for (int v = 0; v < NV; v++) st(dst + v * VL, m[v], MASKED, p[v]);
}

/* ---- the decode step on a bf16 state, two vectors at a time ---------------
 * A full panel of a one-token call with a bf16 state (the decode step) reads
 * the state twice and writes it once; widening and rounding, not bytes, set
 * its speed.  Here a pair of vectors covers 32 columns in an even/odd
 * layout: one 64-byte load holds 32 bf16, the even columns widen by one
 * shift (w << 16) and the odd ones by one and (w & 0xffff0000); rounded
 * back, the odd columns keep their upper halves in place and the even ones
 * shift down into the lower halves, one ternary logic op merging the two.
 * v is split into that layout and o merged back per token (permutes on
 * 2 x 16 floats); every column goes through the same arithmetic as in
 * panel(), so results are bit for bit the same.  The rounding is lib/half.c's
 * (+ 0x7fff + the lowest kept bit); a pair holding a NaN goes through the
 * scalar code.  With AVX512_BF16 (LINATTN_AVX512_BF16, a second build of
 * this file) vcvtne2ps2bf16 rounds instead, which treats subnormal inputs
 * as zero and quiets every NaN: a pair holding either goes the integer way
 * (one vfpclassps a vector finds both; the kernels run with FTZ, so a
 * subnormal never reaches it today, but the check costs nothing more). */

/* Split 32 floats at p (columns 0..31) into even and odd columns. */
INLINE void split_eo(const float *p, __m512 *e, __m512 *o)
{
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 x0 = _mm512_loadu_ps(p), x1 = _mm512_loadu_ps(p + VL);
    *e = _mm512_permutex2var_ps(x0, ie, x1);
    *o = _mm512_permutex2var_ps(x0, io, x1);
}

/* Store even and odd columns as 32 floats at p. */
INLINE void merge_eo(float *p, __m512 e, __m512 o)
{
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    _mm512_storeu_ps(p, _mm512_permutex2var_ps(e, lo, o));
    _mm512_storeu_ps(p + VL, _mm512_permutex2var_ps(e, hi, o));
}

/* 32 bf16 at h, widened into even and odd columns. */
INLINE void ld_bf16_eo(const uint16_t *h, __m512 *e, __m512 *o)
{
    const __m512i w = _mm512_loadu_si512((const void *)h);
    *e = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    *o = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xffff0000u)));
}

/* The 32 columns of a pair rounded to bf16 at h, lib/half.c's bits. */
static __attribute__((noinline)) void st_bf16_eo_nan(uint16_t *h, __m512 e, __m512 o)
{
    float fe[VL], fo[VL], x[2 * VL];
    _mm512_storeu_ps(fe, e);
    _mm512_storeu_ps(fo, o);
    for (int l = 0; l < VL; l++) {
        x[2 * l] = fe[l];
        x[2 * l + 1] = fo[l];
    }
    linattn_bf16_out_scalar(x, h, 2 * VL);
}

/* x + 0x7fff + its lowest kept bit (no NaN) */
INLINE __m512i round_bf16(__m512 x)
{
    const __m512i i = _mm512_castps_si512(x);
    const __m512i t = _mm512_add_epi32(i, _mm512_set1_epi32(0x7fff));
    return _mm512_mask_add_epi32(t, _mm512_test_epi32_mask(i, _mm512_set1_epi32(0x10000)), t,
                                 _mm512_set1_epi32(1));
}

INLINE void st_bf16_eo(uint16_t *h, __m512 e, __m512 o)
{
#ifdef LINATTN_AVX512_BF16
    /* 0xa1: QNaN, SNaN, denormal: the lanes vcvtne2ps2bf16 would round otherwise */
    if (!(_mm512_fpclass_ps_mask(e, 0xa1) | _mm512_fpclass_ps_mask(o, 0xa1))) {
        const __m512i r = (__m512i)_mm512_cvtne2ps_pbh(o, e); /* e's 16, then o's */
        const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                             24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17,
                                             1, 16, 0);
        _mm512_storeu_si512((void *)h, _mm512_permutexvar_epi16(mix, r));
        return;
    }
#endif
    if (_mm512_cmp_ps_mask(e, o, _CMP_UNORD_Q)) { /* a NaN in either: its payload */
        st_bf16_eo_nan(h, e, o);
        return;
    }
    _mm512_storeu_si512((void *)h,
                        _mm512_ternarylogic_epi32(round_bf16(o), _mm512_srli_epi32(round_bf16(e), 16),
                                                  _mm512_set1_epi32((int)0xffff0000u), 0xe4));
}

/* panel() for a full panel (NV even) of a one-token call with a bf16 state
 * read by the sweep's queries only (its `direct` case): the same steps,
 * vectors in pairs. */
INLINE void step_bf16(const linattn_delta_rec_job *jb, int j0, float *gbuf, const int NV,
                      const int GDN, const int GK, const int NQ)
{
    const int K = jb->K, nq = NQ == 1 ? 1 : jb->nq;
    const ptrdiff_t sqh = jb->sqh, soh = jb->soh;
    const uint16_t *const h0 = jb->h0 + j0;
    uint16_t *const ht = jb->ht + j0;
    float *const gc = GK ? gbuf : NULL;
    float *const ck = GK ? gbuf + 2 * LINATTN_MAX_HEAD_DIM : NULL;
    float *const cq = GK ? gbuf + 3 * LINATTN_MAX_HEAD_DIM : NULL;
    __m512 a[NVMAX], b[NQMAX][NVMAX], u[NVMAX];

    if (GK) {
        decay_row(jb, 0, gc);
        scaled_reads(jb, 0, gc, NQ, ck, cq);
    }
    UNROLL
    for (int v = 0; v < NV; v++) {
        a[v] = _mm512_setzero_ps();
        UNROLL
        for (int r = 0; r < NQ; r++) b[r][v] = _mm512_setzero_ps();
    }
    for (int i = 0; i < K; i++) {
        const uint16_t *hrow = h0 + (ptrdiff_t)i * jb->ld0;
        const __m512 ki = GK ? _mm512_set1_ps(ck[i]) : _mm512_set1_ps(jb->k[i]);
        __m512 qi[NQMAX];
        UNROLL
        for (int r = 0; r < NQ; r++)
            qi[r] = GK ? _mm512_set1_ps(cq[r * LINATTN_MAX_HEAD_DIM + i]) : _mm512_set1_ps(jb->q[r * sqh + i]);
        UNROLL
        for (int v = 0; v < NV; v += 2) {
            __m512 s[2];
            ld_bf16_eo(hrow + v * VL, &s[0], &s[1]);
            UNROLL
            for (int x = 0; x < 2; x++) {
                if (GDN) a[v + x] = _mm512_fmadd_ps(s[x], ki, a[v + x]);
                UNROLL
                for (int r = 0; r < NQ; r++) b[r][v + x] = _mm512_fmadd_ps(s[x], qi[r], b[r][v + x]);
            }
        }
    }

    const float *q = jb->q, *k = jb->k;
    const float gs = jb->g && !GK ? expf(jb->g[0]) : 1.0f;
    const __m512 gam = _mm512_set1_ps(gs), scale = _mm512_set1_ps(jb->scale);
    UNROLL
    for (int v = 0; v < NV; v += 2) split_eo(jb->v + j0 + v * VL, &u[v], &u[v + 1]);
    if (GDN) {
        const __m512 beta = _mm512_set1_ps(jb->beta[0]);
        UNROLL
        for (int v = 0; v < NV; v++)
            u[v] = GK ? _mm512_mul_ps(beta, _mm512_sub_ps(u[v], a[v]))
                      : _mm512_mul_ps(beta, _mm512_fnmadd_ps(gam, a[v], u[v]));
    }
    for (int r = 0; r < nq; r++) {
        const __m512 kq = _mm512_set1_ps(dot(k, q + r * sqh, K));
        __m512 y[NVMAX];
        UNROLL
        for (int v = 0; v < NV; v++) {
            const __m512 br = b[r < NQ ? r : 0][v];
            y[v] = _mm512_mul_ps(scale, _mm512_fmadd_ps(kq, u[v], GK ? br : _mm512_mul_ps(gam, br)));
        }
        UNROLL
        for (int v = 0; v < NV; v += 2) merge_eo(jb->o + r * soh + j0 + v * VL, y[v], y[v + 1]);
    }
    for (int i = 0; i < K; i++) {
        const uint16_t *grow = h0 + (ptrdiff_t)i * jb->ld0;
        uint16_t *hrow = ht + (ptrdiff_t)i * jb->ldt;
        const __m512 ki = _mm512_set1_ps(k[i]);
        const __m512 gi = GK ? _mm512_set1_ps(gc[i]) : gam;
        UNROLL
        for (int v = 0; v < NV; v += 2) {
            __m512 s[2];
            ld_bf16_eo(grow + v * VL, &s[0], &s[1]);
            st_bf16_eo(hrow + v * VL, _mm512_fmadd_ps(gi, s[0], _mm512_mul_ps(ki, u[v])),
                       _mm512_fmadd_ps(gi, s[1], _mm512_mul_ps(ki, u[v + 1])));
        }
    }
}

/* One panel of NV vectors (columns j0 .. j0+w-1).  NV, MASKED, GDN,
 * PACKED, GK and NQ are compile-time constants at every call site, so each
 * instantiation is specialised; MASKED = 0 requires w == NV*VL.
 *
 * PACKED: the panel is copied into buf (K rows of NV*VL floats, contiguous)
 * during the token-0 read pass and written back during the last token's
 * write pass, so the T-1 fused sweeps run on a contiguous array.  With the
 * state's own row stride (e.g. ldS = 128 floats = 512 B) the panel's rows
 * fall into a fraction of the L1 sets and thrash; packed they spread over
 * all sets.  Lanes of buf beyond w hold zeros (masked loads), so the sweeps
 * on buf need no masks.  Packing changes no arithmetic.
 *
 * GK: g per key channel; gbuf holds GBUF floats: the decays of the current
 * and the next token, and the next token's reads (scaled_reads).  NQ: query heads read in the
 * sweep (1 only when jb->nq is 1); queries NQ .. nq-1 by read_pass. */
INLINE void panel(const linattn_delta_rec_job *jb, int j0, int w, float *buf, float *gbuf,
                  const int NV, const int MASKED, const int GDN, const int PACKED,
                  const int GK, const int NQ)
{
    const int K = jb->K, nq = NQ == 1 ? 1 : jb->nq;
    const ptrdiff_t ldS = jb->ldS, sq = jb->sq, sk = jb->sk, sqh = jb->sqh, soh = jb->soh;
    float *const S = jb->S + j0;
    /* 16-bit state: read at token 0, written after the last (then PACKED) */
    const int hdt = jb->hdt;
    const uint16_t *const h0 = hdt ? jb->h0 + j0 : NULL;
    uint16_t *const ht = hdt ? jb->ht + j0 : NULL;
    /* one token (a decode step) read by the sweep's queries only: the write
     * widens the 16-bit state again (from cache) instead of a float32 copy */
    const int direct = hdt && jb->T == 1 && nq <= NQ;
    /* work array of the sweeps: buf (stride NV*VL, no masks) or S itself */
    float *const W = PACKED ? buf : S;
    const ptrdiff_t ldW = PACKED ? NV * VL : ldS;
    const int WM = MASKED && !PACKED;
    float *gc = GK ? gbuf : NULL, *gn = GK ? gbuf + LINATTN_MAX_HEAD_DIM : NULL;
    /* GK: the reads of the next token (the sweep's broadcasts), decay folded in */
    float *const ck = GK ? gbuf + 2 * LINATTN_MAX_HEAD_DIM : NULL;
    float *const cq = GK ? gbuf + 3 * LINATTN_MAX_HEAD_DIM : NULL;
    __mmask16 m[NVMAX];
    __m512 a[NVMAX], b[NQMAX][NVMAX], u[NVMAX];

    if (direct && hdt == LINATTN_KH_BF16 && !MASKED && NV % 2 == 0) {
        step_bf16(jb, j0, gbuf, NV, GDN, GK, NQ); /* the decode step, in pairs */
        return;
    }
    UNROLL
    for (int v = 0; v < NV; v++) {
        m[v] = lane_mask(w - v * VL);
    }

    /* reads for token 0: a = S^T k_0, b = S^T q_0 (and copy S into buf) */
    if (GK) {
        decay_row(jb, 0, gc);
        scaled_reads(jb, 0, gc, NQ, ck, cq);
    }
    UNROLL
    for (int v = 0; v < NV; v++) {
        a[v] = _mm512_setzero_ps();
        UNROLL
        for (int r = 0; r < NQ; r++) b[r][v] = _mm512_setzero_ps();
    }
    for (int i = 0; i < K; i++) {
        const float *row = S + (ptrdiff_t)i * ldS;
        const uint16_t *hrow = hdt ? h0 + (ptrdiff_t)i * jb->ld0 : NULL;
        const __m512 ki = GK ? _mm512_set1_ps(ck[i]) : _mm512_set1_ps(jb->k[i]);
        __m512 qi[NQMAX];
        UNROLL
        for (int r = 0; r < NQ; r++)
            qi[r] = GK ? _mm512_set1_ps(cq[r * LINATTN_MAX_HEAD_DIM + i]) : _mm512_set1_ps(jb->q[r * sqh + i]);
        UNROLL
        for (int v = 0; v < NV; v++) {
            const __m512 s = ld_state(hdt, row + v * VL, hdt ? hrow + v * VL : NULL, m[v], MASKED);
            if (PACKED && !direct) _mm512_storeu_ps(W + (ptrdiff_t)i * ldW + v * VL, s);
            if (GDN) a[v] = _mm512_fmadd_ps(s, ki, a[v]);
            UNROLL
            for (int r = 0; r < NQ; r++) b[r][v] = _mm512_fmadd_ps(s, qi[r], b[r][v]);
        }
    }
    for (int r = NQ; r < nq; r++)
        read_pass(W, ldW, K, jb->q + r * sqh, gc, jb->o + r * soh + j0, m, NV, WM, MASKED, GK);

    const __m512 scale = _mm512_set1_ps(jb->scale);
    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * sq, *k = jb->k + t * sk;
        const float *vin = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        /* per head: gamma scales the reads here; GK: folded into them */
        const float gs = jb->g && !GK ? expf(jb->g[t * jb->sg]) : 1.0f;
        const __m512 gam = _mm512_set1_ps(gs);

        /* u = beta (v - gamma a)  (gdn; GK: beta (v - a))  or  u = v  (gla) */
        if (GDN) {
            const __m512 beta = _mm512_set1_ps(jb->beta[t * jb->sb]);
            UNROLL
            for (int v = 0; v < NV; v++)
                u[v] = GK ? _mm512_mul_ps(beta, _mm512_sub_ps(ld(vin + v * VL, m[v], MASKED), a[v]))
                          : _mm512_mul_ps(beta, _mm512_fnmadd_ps(gam, a[v], ld(vin + v * VL, m[v], MASKED)));
        } else {
            UNROLL
            for (int v = 0; v < NV; v++) u[v] = ld(vin + v * VL, m[v], MASKED);
        }
        /* o = scale (gamma b + kq u) (GK: scale (b + kq u)) = scale S_t^T q_t */
        for (int r = 0; r < nq; r++) {
            const __m512 kq = _mm512_set1_ps(dot(k, q + r * sqh, K));
            float *orow = o + r * soh;
            UNROLL
            for (int v = 0; v < NV; v++) {
                const __m512 br = r < NQ ? b[r < NQ ? r : 0][v] : ld(orow + v * VL, m[v], MASKED);
                st(orow + v * VL, m[v], MASKED,
                   _mm512_mul_ps(scale, _mm512_fmadd_ps(kq, u[v], GK ? br : _mm512_mul_ps(gam, br))));
            }
        }

        if (t + 1 < jb->T) {
            /* fused sweep: s = gamma_i S + k_i u; store s; a += s kn_i; b += s qn_i
             * (GK: kn_i, qn_i times the next token's gamma_i) */
            const float *qn = q + sq, *kn = k + sk;
            if (GK) {
                decay_row(jb, t + 1, gn);
                scaled_reads(jb, t + 1, gn, NQ, ck, cq);
            }
            UNROLL
            for (int v = 0; v < NV; v++) {
                a[v] = _mm512_setzero_ps();
                UNROLL
                for (int r = 0; r < NQ; r++) b[r][v] = _mm512_setzero_ps();
            }
            _Pragma("GCC unroll 2")   /* loop unrolling only: same arithmetic */
            for (int i = 0; i < K; i++) {
                float *row = W + (ptrdiff_t)i * ldW;
                const __m512 ki = _mm512_set1_ps(k[i]);
                const __m512 gi = GK ? _mm512_set1_ps(gc[i]) : gam;
                const __m512 kni = GK ? _mm512_set1_ps(ck[i]) : _mm512_set1_ps(kn[i]);
                __m512 qni[NQMAX];
                UNROLL
                for (int r = 0; r < NQ; r++)
                    qni[r] = GK ? _mm512_set1_ps(cq[r * LINATTN_MAX_HEAD_DIM + i]) : _mm512_set1_ps(qn[r * sqh + i]);
                UNROLL
                for (int v = 0; v < NV; v++) {
                    const __m512 s = _mm512_fmadd_ps(gi, ld(row + v * VL, m[v], WM),
                                                     _mm512_mul_ps(ki, u[v]));
                    st(row + v * VL, m[v], WM, s);
                    if (GDN) a[v] = _mm512_fmadd_ps(s, kni, a[v]);
                    UNROLL
                    for (int r = 0; r < NQ; r++) b[r][v] = _mm512_fmadd_ps(s, qni[r], b[r][v]);
                }
            }
            for (int r = NQ; r < nq; r++)
                read_pass(W, ldW, K, qn + r * sqh, gn, o + jb->so + r * soh, m, NV, WM, MASKED, GK);
            if (GK) { float *x = gc; gc = gn; gn = x; }
        } else {
            /* last token: write only, from the work array back to S */
            for (int i = 0; i < K; i++) {
                const float *wrow = W + (ptrdiff_t)i * ldW;
                float *row = S + (ptrdiff_t)i * ldS;
                uint16_t *hrow = hdt ? ht + (ptrdiff_t)i * jb->ldt : NULL;
                const uint16_t *grow = direct ? h0 + (ptrdiff_t)i * jb->ld0 : NULL;
                const __m512 ki = _mm512_set1_ps(k[i]);
                const __m512 gi = GK ? _mm512_set1_ps(gc[i]) : gam;
                if (direct && hdt == LINATTN_KH_F16 && !MASKED && NV % 2 == 0) {
                    /* f16 decode step: one NaN compare for two vectors */
                    UNROLL
                    for (int v = 0; v < NV; v += 2) {
                        const __m512 x0 = _mm512_fmadd_ps(gi, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grow + v * VL))),
                                                          _mm512_mul_ps(ki, u[v]));
                        const __m512 x1 = _mm512_fmadd_ps(gi, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grow + v * VL + VL))),
                                                          _mm512_mul_ps(ki, u[v + 1]));
                        if (_mm512_cmp_ps_mask(x0, x1, _CMP_UNORD_Q)) {
                            st_state(hdt, NULL, hrow + v * VL, m[v], 0, x0);
                            st_state(hdt, NULL, hrow + v * VL + VL, m[v + 1], 0, x1);
                        } else {
                            _mm256_storeu_si256((__m256i *)(hrow + v * VL), linattn_f16x16_out(x0));
                            _mm256_storeu_si256((__m256i *)(hrow + v * VL + VL), linattn_f16x16_out(x1));
                        }
                    }
                    continue;
                }
                UNROLL
                for (int v = 0; v < NV; v++)
                    st_state(hdt, row + v * VL, hdt ? hrow + v * VL : NULL, m[v], MASKED,
                             _mm512_fmadd_ps(gi, direct ? ld_state(hdt, NULL, grow + v * VL, m[v], MASKED)
                                                     : ld(wrow + v * VL, m[v], WM),
                                             _mm512_mul_ps(ki, u[v])));
            }
        }
    }
}

/* Instantiations (GDN = g, PACKED = p):
 *   full panels: unmasked, NVMAX vectors;
 *   packed tail: masked v/o only, 1..NVMAX vectors (just what w needs);
 *   unpacked tail (K too large for buf, rare): NVMAX masked vectors. */
#define FULL(g, p) static void full_##g##p(const linattn_delta_rec_job *jb, int j0, float *buf) \
    { panel(jb, j0, PW, buf, NULL, NVMAX, 0, g, p, 0, 1); }
FULL(0, 0) FULL(0, 1) FULL(1, 0) FULL(1, 1)

#define TAIL(g, nv) static void tail_##g##nv(const linattn_delta_rec_job *jb, int j0, int w, float *buf) \
    { panel(jb, j0, w, buf, NULL, nv, 1, g, 1, 0, 1); }
#if NVMAX != 4
#error "the tail table below assumes NVMAX == 4"
#endif
TAIL(0, 1) TAIL(0, 2) TAIL(0, 3) TAIL(0, 4)
TAIL(1, 1) TAIL(1, 2) TAIL(1, 3) TAIL(1, 4)

static void tail_unpacked(const linattn_delta_rec_job *jb, int j0, int w, int gdn)
{
    if (gdn) panel(jb, j0, w, NULL, NULL, NVMAX, 1, 1, 0, 0, 1);
    else panel(jb, j0, w, NULL, NULL, NVMAX, 1, 0, 0, 0, 1);
}

/* g per key channel or query heads sharing the state: a variant per (GDN
 * g, GK c, NQ q) with panels of NV vectors (fewer for more queries, so that
 * the b's stay in registers), each packed full, packed tail and unpacked. */
#define VARIANT(g, c, q, NV) \
    static void var_##g##c##q(const linattn_delta_rec_job *jb, float *buf, float *gbuf) \
    { \
        const int pw = NV * VL, n = jb->n; \
        int j0 = 0; \
        if (!buf || (long)jb->K * pw > LINATTN_PACK_FLOATS) { \
            for (; j0 < n; j0 += pw) \
                panel(jb, j0, n - j0 < pw ? n - j0 : pw, NULL, gbuf, NV, 1, g, 0, c, q); \
            return; \
        } \
        for (; j0 + pw <= n; j0 += pw) panel(jb, j0, pw, buf, gbuf, NV, 0, g, 1, c, q); \
        if (j0 < n) panel(jb, j0, n - j0, buf, gbuf, NV, 1, g, 1, c, q); \
    }
VARIANT(0, 1, 1, 4) VARIANT(0, 0, 2, 4) VARIANT(0, 1, 2, 4) VARIANT(0, 0, 4, 2) VARIANT(0, 1, 4, 2)
VARIANT(1, 1, 1, 4) VARIANT(1, 0, 2, 4) VARIANT(1, 1, 2, 4) VARIANT(1, 0, 4, 2) VARIANT(1, 1, 4, 2)

static void variant(const linattn_delta_rec_job *job, int gdn, int gk)
{
    typedef void (*var_fn)(const linattn_delta_rec_job *, float *, float *);
    static const var_fn vars[2][2][3] = {
        {{NULL, var_002, var_004}, {var_011, var_012, var_014}},
        {{NULL, var_102, var_104}, {var_111, var_112, var_114}}};
    float gbuf[GBUF];
    vars[gdn][gk][job->nq < 2 ? 0 : job->nq < NQMAX ? 1 : 2](job, job->pack, gbuf);
}


#ifndef DELTA_AVX512_NAME
#define DELTA_AVX512_NAME linattn_delta_rec_avx512
#endif
void DELTA_AVX512_NAME(const linattn_delta_rec_job *job)
{
    float *const buf = job->pack;
    const int gdn = job->beta != NULL, gk = job->g && job->gk;
    if (gk || job->nq > 1) {
        variant(job, gdn, gk);
        return;
    }
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
