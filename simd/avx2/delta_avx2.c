/* linattn - token-recurrent delta-rule kernel, AVX2 + FMA.
 *
 * Same algorithm as lib/delta_rec.c: one fused sweep over the state per
 * token (write of token t fused with the reads S^T k, S^T q of token t+1),
 * with the columns in panels of PW = 32 (4 ymm vectors) so that a K x 32
 * slice of the state (16 KiB at K = 128) stays in L1 across all T tokens.
 * The accumulators a = S^T k_next, b = S^T q_next and u stay in registers.
 *
 * Column independence (bit for bit): every column goes through exactly the
 * same sequence of vector operations whatever lane or panel it lands in; the
 * tail panel runs the same code with masked loads/stores only.  The scalars
 * gamma = expf(g_t) and kq = k_t . q_t are computed by the same code in every
 * panel (kq by a fixed-shape vector reduction that depends on K only).
 *
 * g per key channel (GK) and query heads sharing the state (NQ in registers,
 * more by read passes): see lib/delta_rec.c; the per-channel gamma come
 * from exp8 (lane by lane), computed by the same code in every panel.
 *
 * A 16-bit state (jb->hdt, always packed): the token-0 read pass loads it
 * straight into registers (vcvtph2ps, or a shift for bf16) and the last
 * token's write rounds it there (vcvtps2ph, or the integer rounding of
 * lib/half.c for bf16; a vector holding a NaN goes through the scalar code),
 * so that a decode step moves half the bytes and touches no other scratch;
 * with one token (and no read passes) the write widens the state again from
 * cache rather than keep a float32 copy in the pack; a full panel of such a
 * step on a bf16 state takes its vectors in pairs (step_bf16: one 32-byte
 * load widens 16 columns, even and odd, by a shift and an and).
 * AVX2 has no masked 16-bit moves: a tail vector goes through eight
 * halves on the stack.
 *
 * Compile with -mavx2 -mfma -mf16c. */
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "kernels.h"
#include "linattn.h"
#include "half_avx2.h"

#define VL 8                /* floats per ymm */
#define NVMAX 4             /* vectors per panel */
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

/* Mask with the first r (0..8) lanes on. */
static __m256i lane_mask(int r)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), iota);
}

INLINE __m256 ld(const float *p, __m256i m, int masked)
{
    return masked ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}

INLINE void st(float *p, __m256i m, int masked, __m256 x)
{
    if (masked) _mm256_maskstore_ps(p, m, x);
    else _mm256_storeu_ps(p, x);
}

/* A vector of the state: float32 at p, or (hdt) c <= 8 16-bit values at h,
 * widened (the lanes beyond c zero, as a masked load's). */
INLINE __m256 ld_state(int hdt, const float *p, const uint16_t *h, __m256i m, int c, int masked)
{
    if (!hdt) return ld(p, m, masked);
    __m128i x;
    if (masked && c < VL) {
        uint16_t tmp[VL] = {0};
        memcpy(tmp, h, sizeof(uint16_t) * (size_t)c);
        x = _mm_loadu_si128((const __m128i *)tmp);
    } else {
        x = _mm_loadu_si128((const __m128i *)h);
    }
    return hdt == LINATTN_KH_F16 ? _mm256_cvtph_ps(x) : linattn_bf16x8_in(x);
}

/* Store a vector of the state: float32 at p, or (hdt) c <= 8 lanes rounded
 * once to h. */
INLINE void st_state(int hdt, float *p, uint16_t *h, __m256i m, int c, int masked, __m256 x)
{
    __m128i r;
    if (!hdt) {
        st(p, m, masked, x);
        return;
    }
    if (!masked) c = VL;
    if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) & ((1 << c) - 1)) {
        float tmp[VL]; /* a NaN: its payload */
        _mm256_storeu_ps(tmp, x);
        (hdt == LINATTN_KH_F16 ? linattn_f16_out_scalar : linattn_bf16_out_scalar)(tmp, h,
                                                                                 (size_t)c);
        return;
    }
    r = hdt == LINATTN_KH_F16 ? linattn_f16x8_out(x) : linattn_bf16x8_out_num(_mm256_castps_si256(x));
    if (c == VL) {
        _mm_storeu_si128((__m128i *)h, r);
    } else {
        uint16_t tmp[VL];
        _mm_storeu_si128((__m128i *)tmp, r);
        memcpy(h, tmp, sizeof(uint16_t) * (size_t)c);
    }
}

/* x . y over K floats: 4 accumulators over blocks of 32, then blocks of 8,
 * then a masked block, then a fixed horizontal sum.  Depends on K only. */
static float dot(const float *x, const float *y, int K)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= K; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    for (; i + 8 <= K; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    if (i < K) {
        const __m256i m = lane_mask(K - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m), s1);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* exp of 8 lanes, each on its own (Cephes-style: x = n ln2 + r, a degree-5
 * polynomial in r, times 2^n); below ln(FLT_MIN) it is 0.  Within 2 ulp of
 * expf; used for g per key channel only. */
static __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    const __m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
    const __m256 fx = _mm256_floor_ps(
        _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(x, x), x), _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(keep, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

/* gamma of token t per key channel: exp of its g row into gam[0..K) */
static void decay_row(const linattn_delta_rec_job *jb, int64_t t, float *gam)
{
    const float *g = jb->g + t * jb->sg;
    for (int i = 0; i < jb->K; i += VL) {
        const __m256i m = lane_mask(jb->K - i < VL ? jb->K - i : VL);
        _mm256_maskstore_ps(gam + i, m, exp8(_mm256_maskload_ps(g + i, m)));
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
        const __m256i m = lane_mask(jb->K - i < VL ? jb->K - i : VL);
        const __m256 gi = _mm256_maskload_ps(gam + i, m);
        _mm256_maskstore_ps(ck + i, m, _mm256_mul_ps(gi, _mm256_maskload_ps(k + i, m)));
        for (int r = 0; r < nq; r++)
            _mm256_maskstore_ps(cq + r * LINATTN_MAX_HEAD_DIM + i, m,
                                _mm256_mul_ps(gi, _mm256_maskload_ps(q + r * jb->sqh + i, m)));
    }
}

/* The read vector's entry of row i: gamma'_i x_i (GK) or x_i, broadcast. */
INLINE __m256 rdv(const float *gn, const float *x, int i, const int GK)
{
    return _mm256_set1_ps(GK ? gn[i] * x[i] : x[i]);
}

/* A further query's read (beyond the NQ of the sweep): dst = sum_i W_i c_i,
 * c from rdv, the same arithmetic as the sweep's b; dst is the query's
 * output row of the token, finished when that token is. */
INLINE void read_pass(const float *W, ptrdiff_t ldW, int K, const float *x, const float *gn,
                      float *dst, const __m256i *m, const int NV, const int WM,
                      const int MASKED, const int GK)
{
    __m256 p[NVMAX];
    UNROLL
    for (int v = 0; v < NV; v++) p[v] = _mm256_setzero_ps();
    for (int i = 0; i < K; i++) {
        const float *row = W + (ptrdiff_t)i * ldW;
        const __m256 ci = rdv(gn, x, i, GK);
        UNROLL
        for (int v = 0; v < NV; v++) p[v] = _mm256_fmadd_ps(ld(row + v * VL, m[v], WM), ci, p[v]);
    }
    UNROLL
    for (int v = 0; v < NV; v++) st(dst + v * VL, m[v], MASKED, p[v]);
}

/* ---- the decode step on a bf16 state, two vectors at a time ---------------
 * As the AVX-512 kernel's step_bf16: a full panel of a one-token call with a
 * bf16 state read by the sweep's queries only (panel()'s `direct` case) is
 * bound by widening and rounding, not bytes.  A pair of vectors covers 16
 * columns in an even/odd layout: one 32-byte load holds 16 bf16, the even
 * columns widen by one shift (w << 16) and the odd ones by one and (w &
 * 0xffff0000); rounded back, the odd columns keep their upper halves in
 * place and the even ones shift down into the lower halves, one or merging
 * the two.  v is split into that layout and o merged back (shuffles and
 * lane permutes); every column goes through the same arithmetic as in
 * panel(), so the results are bit for bit the same.  The rounding is
 * lib/half.c's (+ 0x7fff + the lowest kept bit); a pair holding a NaN goes
 * through the scalar code. */

/* Split 16 floats at p (columns 0..15) into even and odd columns. */
INLINE void split_eo(const float *p, __m256 *e, __m256 *o)
{
    const __m256 x0 = _mm256_loadu_ps(p), x1 = _mm256_loadu_ps(p + VL);
    /* per 128-bit lane x0[0,2] x1[0,2] (0x88) or x0[1,3] x1[1,3] (0xdd); then the
     * 64-bit quarters in the order 0, 2, 1, 3 */
    *e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(x0, x1, 0x88)), 0xd8));
    *o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(x0, x1, 0xdd)), 0xd8));
}

/* Store even and odd columns as 16 floats at p. */
INLINE void merge_eo(float *p, __m256 e, __m256 o)
{
    const __m256 lo = _mm256_unpacklo_ps(e, o); /* columns 0..3 | 8..11 */
    const __m256 hi = _mm256_unpackhi_ps(e, o); /* columns 4..7 | 12..15 */
    _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(p + VL, _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* 16 bf16 at h, widened into even and odd columns. */
INLINE void ld_bf16_eo(const uint16_t *h, __m256 *e, __m256 *o)
{
    const __m256i w = _mm256_loadu_si256((const __m256i *)h);
    *e = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    *o = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int)0xffff0000u)));
}

/* The 16 columns of a pair holding a NaN rounded to bf16 at h, lib/half.c's bits. */
static __attribute__((noinline)) void st_bf16_eo_nan(uint16_t *h, __m256 e, __m256 o)
{
    float fe[VL], fo[VL], x[2 * VL];
    _mm256_storeu_ps(fe, e);
    _mm256_storeu_ps(fo, o);
    for (int l = 0; l < VL; l++) {
        x[2 * l] = fe[l];
        x[2 * l + 1] = fo[l];
    }
    linattn_bf16_out_scalar(x, h, 2 * VL);
}

/* x + 0x7fff + its lowest kept bit (no NaN) */
INLINE __m256i round_bf16(__m256 x)
{
    const __m256i i = _mm256_castps_si256(x);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(i, 16), _mm256_set1_epi32(1));
    return _mm256_add_epi32(_mm256_add_epi32(i, _mm256_set1_epi32(0x7fff)), lsb);
}

INLINE void st_bf16_eo(uint16_t *h, __m256 e, __m256 o)
{
    if (_mm256_movemask_ps(_mm256_cmp_ps(e, o, _CMP_UNORD_Q))) { /* a NaN in either */
        st_bf16_eo_nan(h, e, o);
        return;
    }
    const __m256i hi = _mm256_and_si256(round_bf16(o), _mm256_set1_epi32((int)0xffff0000u));
    _mm256_storeu_si256((__m256i *)h, _mm256_or_si256(hi, _mm256_srli_epi32(round_bf16(e), 16)));
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
    __m256 a[NVMAX], b[NQMAX][NVMAX], u[NVMAX];

    if (GK) {
        decay_row(jb, 0, gc);
        scaled_reads(jb, 0, gc, NQ, ck, cq);
    }
    UNROLL
    for (int v = 0; v < NV; v++) {
        a[v] = _mm256_setzero_ps();
        UNROLL
        for (int r = 0; r < NQ; r++) b[r][v] = _mm256_setzero_ps();
    }
    for (int i = 0; i < K; i++) {
        const uint16_t *hrow = h0 + (ptrdiff_t)i * jb->ld0;
        const __m256 ki = GK ? _mm256_set1_ps(ck[i]) : _mm256_set1_ps(jb->k[i]);
        __m256 qi[NQMAX];
        UNROLL
        for (int r = 0; r < NQ; r++)
            qi[r] = GK ? _mm256_set1_ps(cq[r * LINATTN_MAX_HEAD_DIM + i]) : _mm256_set1_ps(jb->q[r * sqh + i]);
        UNROLL
        for (int v = 0; v < NV; v += 2) {
            __m256 s[2];
            ld_bf16_eo(hrow + v * VL, &s[0], &s[1]);
            UNROLL
            for (int x = 0; x < 2; x++) {
                if (GDN) a[v + x] = _mm256_fmadd_ps(s[x], ki, a[v + x]);
                UNROLL
                for (int r = 0; r < NQ; r++) b[r][v + x] = _mm256_fmadd_ps(s[x], qi[r], b[r][v + x]);
            }
        }
    }

    const float *q = jb->q, *k = jb->k;
    const float gs = jb->g && !GK ? expf(jb->g[0]) : 1.0f;
    const __m256 gam = _mm256_set1_ps(gs), scale = _mm256_set1_ps(jb->scale);
    UNROLL
    for (int v = 0; v < NV; v += 2) split_eo(jb->v + j0 + v * VL, &u[v], &u[v + 1]);
    if (GDN) {
        const __m256 beta = _mm256_set1_ps(jb->beta[0]);
        UNROLL
        for (int v = 0; v < NV; v++)
            u[v] = GK ? _mm256_mul_ps(beta, _mm256_sub_ps(u[v], a[v]))
                      : _mm256_mul_ps(beta, _mm256_fnmadd_ps(gam, a[v], u[v]));
    }
    for (int r = 0; r < nq; r++) {
        const __m256 kq = _mm256_set1_ps(dot(k, q + r * sqh, K));
        __m256 y[NVMAX];
        UNROLL
        for (int v = 0; v < NV; v++) {
            const __m256 br = b[r < NQ ? r : 0][v];
            y[v] = _mm256_mul_ps(scale, _mm256_fmadd_ps(kq, u[v], GK ? br : _mm256_mul_ps(gam, br)));
        }
        UNROLL
        for (int v = 0; v < NV; v += 2) merge_eo(jb->o + r * soh + j0 + v * VL, y[v], y[v + 1]);
    }
    for (int i = 0; i < K; i++) {
        const uint16_t *grow = h0 + (ptrdiff_t)i * jb->ld0;
        uint16_t *hrow = ht + (ptrdiff_t)i * jb->ldt;
        const __m256 ki = _mm256_set1_ps(k[i]);
        const __m256 gi = GK ? _mm256_set1_ps(gc[i]) : gam;
        UNROLL
        for (int v = 0; v < NV; v += 2) {
            __m256 s[2];
            ld_bf16_eo(grow + v * VL, &s[0], &s[1]);
            st_bf16_eo(hrow + v * VL, _mm256_fmadd_ps(gi, s[0], _mm256_mul_ps(ki, u[v])),
                       _mm256_fmadd_ps(gi, s[1], _mm256_mul_ps(ki, u[v + 1])));
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
    __m256i m[NVMAX];
    int cnt[NVMAX]; /* lanes of vector v in the panel */
    __m256 a[NVMAX], b[NQMAX][NVMAX], u[NVMAX];

    if (direct && hdt == LINATTN_KH_BF16 && !MASKED && NV % 2 == 0) {
        step_bf16(jb, j0, gbuf, NV, GDN, GK, NQ); /* the decode step, in pairs */
        return;
    }
    UNROLL
    for (int v = 0; v < NV; v++) {
        const int r = w - v * VL;
        cnt[v] = r < 0 ? 0 : r > VL ? VL : r;
        m[v] = lane_mask(cnt[v]);
    }

    /* reads for token 0: a = S^T k_0, b = S^T q_0 (and copy S into buf) */
    if (GK) {
        decay_row(jb, 0, gc);
        scaled_reads(jb, 0, gc, NQ, ck, cq);
    }
    UNROLL
    for (int v = 0; v < NV; v++) {
        a[v] = _mm256_setzero_ps();
        UNROLL
        for (int r = 0; r < NQ; r++) b[r][v] = _mm256_setzero_ps();
    }
    for (int i = 0; i < K; i++) {
        const float *row = S + (ptrdiff_t)i * ldS;
        const uint16_t *hrow = hdt ? h0 + (ptrdiff_t)i * jb->ld0 : NULL;
        const __m256 ki = GK ? _mm256_set1_ps(ck[i]) : _mm256_set1_ps(jb->k[i]);
        __m256 qi[NQMAX];
        UNROLL
        for (int r = 0; r < NQ; r++)
            qi[r] = GK ? _mm256_set1_ps(cq[r * LINATTN_MAX_HEAD_DIM + i]) : _mm256_set1_ps(jb->q[r * sqh + i]);
        UNROLL
        for (int v = 0; v < NV; v++) {
            const __m256 s = ld_state(hdt, row + v * VL, hdt ? hrow + v * VL : NULL, m[v], cnt[v],
                                      MASKED);
            if (PACKED && !direct) _mm256_storeu_ps(W + (ptrdiff_t)i * ldW + v * VL, s);
            if (GDN) a[v] = _mm256_fmadd_ps(s, ki, a[v]);
            UNROLL
            for (int r = 0; r < NQ; r++) b[r][v] = _mm256_fmadd_ps(s, qi[r], b[r][v]);
        }
    }
    for (int r = NQ; r < nq; r++)
        read_pass(W, ldW, K, jb->q + r * sqh, gc, jb->o + r * soh + j0, m, NV, WM, MASKED, GK);

    const __m256 scale = _mm256_set1_ps(jb->scale);
    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * sq, *k = jb->k + t * sk;
        const float *vin = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        /* per head: gamma scales the reads here; GK: folded into them */
        const float gs = jb->g && !GK ? expf(jb->g[t * jb->sg]) : 1.0f;
        const __m256 gam = _mm256_set1_ps(gs);

        /* u = beta (v - gamma a)  (gdn; GK: beta (v - a))  or  u = v  (gla) */
        if (GDN) {
            const __m256 beta = _mm256_set1_ps(jb->beta[t * jb->sb]);
            UNROLL
            for (int v = 0; v < NV; v++)
                u[v] = GK ? _mm256_mul_ps(beta, _mm256_sub_ps(ld(vin + v * VL, m[v], MASKED), a[v]))
                          : _mm256_mul_ps(beta, _mm256_fnmadd_ps(gam, a[v], ld(vin + v * VL, m[v], MASKED)));
        } else {
            UNROLL
            for (int v = 0; v < NV; v++) u[v] = ld(vin + v * VL, m[v], MASKED);
        }
        /* o = scale (gamma b + kq u) (GK: scale (b + kq u)) = scale S_t^T q_t */
        for (int r = 0; r < nq; r++) {
            const __m256 kq = _mm256_set1_ps(dot(k, q + r * sqh, K));
            float *orow = o + r * soh;
            UNROLL
            for (int v = 0; v < NV; v++) {
                const __m256 br = r < NQ ? b[r < NQ ? r : 0][v] : ld(orow + v * VL, m[v], MASKED);
                st(orow + v * VL, m[v], MASKED,
                   _mm256_mul_ps(scale, _mm256_fmadd_ps(kq, u[v], GK ? br : _mm256_mul_ps(gam, br))));
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
                a[v] = _mm256_setzero_ps();
                UNROLL
                for (int r = 0; r < NQ; r++) b[r][v] = _mm256_setzero_ps();
            }
            _Pragma("GCC unroll 2")   /* loop unrolling only: same arithmetic */
            for (int i = 0; i < K; i++) {
                float *row = W + (ptrdiff_t)i * ldW;
                const __m256 ki = _mm256_set1_ps(k[i]);
                const __m256 gi = GK ? _mm256_set1_ps(gc[i]) : gam;
                const __m256 kni = GK ? _mm256_set1_ps(ck[i]) : _mm256_set1_ps(kn[i]);
                __m256 qni[NQMAX];
                UNROLL
                for (int r = 0; r < NQ; r++)
                    qni[r] = GK ? _mm256_set1_ps(cq[r * LINATTN_MAX_HEAD_DIM + i]) : _mm256_set1_ps(qn[r * sqh + i]);
                UNROLL
                for (int v = 0; v < NV; v++) {
                    const __m256 s = _mm256_fmadd_ps(gi, ld(row + v * VL, m[v], WM),
                                                     _mm256_mul_ps(ki, u[v]));
                    st(row + v * VL, m[v], WM, s);
                    if (GDN) a[v] = _mm256_fmadd_ps(s, kni, a[v]);
                    UNROLL
                    for (int r = 0; r < NQ; r++) b[r][v] = _mm256_fmadd_ps(s, qni[r], b[r][v]);
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
                const __m256 ki = _mm256_set1_ps(k[i]);
                const __m256 gi = GK ? _mm256_set1_ps(gc[i]) : gam;
                UNROLL
                for (int v = 0; v < NV; v++)
                    st_state(hdt, row + v * VL, hdt ? hrow + v * VL : NULL, m[v], cnt[v], MASKED,
                             _mm256_fmadd_ps(gi, direct ? ld_state(hdt, NULL, grow + v * VL, m[v], cnt[v], MASKED)
                                                     : ld(wrow + v * VL, m[v], WM),
                                             _mm256_mul_ps(ki, u[v])));
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
VARIANT(0, 1, 1, 4) VARIANT(0, 0, 2, 2) VARIANT(0, 1, 2, 2) VARIANT(0, 0, 4, 1) VARIANT(0, 1, 4, 1)
VARIANT(1, 1, 1, 4) VARIANT(1, 0, 2, 2) VARIANT(1, 1, 2, 2) VARIANT(1, 0, 4, 1) VARIANT(1, 1, 4, 1)

static void variant(const linattn_delta_rec_job *job, int gdn, int gk)
{
    typedef void (*var_fn)(const linattn_delta_rec_job *, float *, float *);
    static const var_fn vars[2][2][3] = {
        {{NULL, var_002, var_004}, {var_011, var_012, var_014}},
        {{NULL, var_102, var_104}, {var_111, var_112, var_114}}};
    float gbuf[GBUF];
    vars[gdn][gk][job->nq < 2 ? 0 : job->nq < NQMAX ? 1 : 2](job, job->pack, gbuf);
}


void linattn_delta_rec_avx2(const linattn_delta_rec_job *job)
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
