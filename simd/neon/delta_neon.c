/* linattn - token-recurrent delta-rule kernel, AArch64 Advanced SIMD.
 *
 * Same fused sweep as lib/delta_rec.c: per token one pass over the state
 * that writes token t and accumulates a = S^T k_{t+1}, b = S^T q_{t+1} for
 * the next token.
 *
 * Blocking: tokens in chunks of up to TC; per chunk gamma_t = exp(g_t) and
 * kq_t = k_t . q_t are computed once (on the stack) for all panels, then each
 * panel of 16 columns (4 vectors; tails 8, 4, then scalar) sweeps the chunk
 * with its K x 16 slice of S in L1 and u, a, b in registers.  a and b are
 * accumulated in two chains (even and odd rows) so that 16 independent FMA
 * chains cover the FMA latency; 20 vector registers live, no spills.  Each
 * chunk starts with a read pass that recomputes a, b from the stored state.
 *
 * Bit-for-bit column independence: every column, whatever panel or lane it
 * lands in (vector or scalar tail), gets the same IEEE operations:
 *
 *   chunk start: a0 = fma(S_i, k_i, a0) (i even), a1 likewise (i odd),
 *                a = a0 + a1; b the same with q
 *   per token:   gdn: u = fma(-gamma, a, v) * beta       gla: u = v
 *                o = fma(u, kq, b * gamma) * scale
 *                s = fma(u, k_i, S_i * gamma);  S_i = s
 *                a0/a1 = fma(s, kn_i, a0/a1), b0/b1 = fma(s, qn_i, b0/b1),
 *                a = a0 + a1, b = b0 + b1      (not after the chunk's last token)
 *
 * g per key channel (GK): row i is scaled by gamma_i (S_i * gamma_i), the
 * reads use c_i = gamma'_i k'_i and gamma'_i q'_i (products in float, the
 * next token's decay folded in), then u = (v - a) * beta and
 * o = fma(u, kq, b) * scale; gamma_i from exp4 (lane by lane), computed by
 * the same code in every panel.  Query heads sharing the state: NQ of them
 * read in the sweep (narrower panels for more), the others by read passes
 * with the same two chains, into their output row of the next token, which
 * that token finishes (lib/delta_rec.c).
 *
 * The scalar tail uses fmaf in the same form.  No product feeds a plain add,
 * so -ffp-contract settings cannot change the arithmetic.
 *
 * A 16-bit state (jb->hdt; then T <= TC, one chunk): each panel's first
 * read pass loads it straight into registers (fcvtl, or a shift for bf16)
 * and keeps its float32 copy in jb->pack, where the sweeps run; the last
 * token's write rounds it there (fcvtn, or the integer rounding of
 * lib/half.c for bf16; a vector holding a NaN goes through the scalar
 * code).  The arithmetic is that of a float32 state. */
#include <arm_neon.h>
#include <math.h>
#include "kernels.h"
#include "linattn.h"
#include "half_neon.h"

#define TC 128  /* tokens per chunk (stack: 2*TC floats) */
#define MAXV 4  /* vectors per panel: 16 columns */
#define NQMAX 4 /* query heads read in the sweep */

/* The loops over the NV vectors of a panel must be unrolled fully, so that
 * a, b, u stay in registers. */
#if defined(__clang__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 4")
#else
#define ALWAYS_INLINE static inline
#define UNROLL
#endif

/* Four values of the state: the 16-bit ones at h, widened. */
static inline float32x4_t ld_half(int hdt, const uint16_t *h)
{
    return hdt == LINATTN_KH_F16 ? linattn_f16x4_in(vld1_u16(h)) : linattn_bf16x4_in(vld1_u16(h));
}

/* Four values of the state rounded once to h. */
static inline void st_half(int hdt, uint16_t *h, float32x4_t x)
{
    if (hdt == LINATTN_KH_BF16) {
        vst1_u16(h, linattn_bf16x4_out(x));
    } else if (vminvq_u32(vceqq_f32(x, x)) == 0) { /* a NaN: its payload */
        float tmp[4];
        vst1q_f32(tmp, x);
        linattn_f16_out_scalar(tmp, h, 4);
    } else {
        vst1_u16(h, linattn_f16x4_out(x));
    }
}

/* k . q: a fixed function of (k, q, K), computed once per token. */
static float dot(const float *k, const float *q, int K)
{
    float32x4_t c0 = vdupq_n_f32(0.0f), c1 = c0, c2 = c0, c3 = c0;
    int i = 0;
    for (; i + 16 <= K; i += 16) {
        c0 = vfmaq_f32(c0, vld1q_f32(k + i), vld1q_f32(q + i));
        c1 = vfmaq_f32(c1, vld1q_f32(k + i + 4), vld1q_f32(q + i + 4));
        c2 = vfmaq_f32(c2, vld1q_f32(k + i + 8), vld1q_f32(q + i + 8));
        c3 = vfmaq_f32(c3, vld1q_f32(k + i + 12), vld1q_f32(q + i + 12));
    }
    for (; i + 4 <= K; i += 4)
        c0 = vfmaq_f32(c0, vld1q_f32(k + i), vld1q_f32(q + i));
    float r = vaddvq_f32(vaddq_f32(vaddq_f32(c0, c1), vaddq_f32(c2, c3)));
    for (; i < K; i++) r = fmaf(k[i], q[i], r);
    return r;
}

/* exp of 4 lanes, each on its own (Cephes-style: x = n ln2 + r, a degree-5
 * polynomial in r, times 2^n); below ln(FLT_MIN) it is 0. */
static float32x4_t exp4(float32x4_t x)
{
    const float32x4_t lo = vdupq_n_f32(-87.33654f);
    const uint32x4_t keep = vcgeq_f32(x, lo);
    x = vminq_f32(vmaxq_f32(x, lo), vdupq_n_f32(88.0f));
    const float32x4_t fx =
        vrndmq_f32(vfmaq_f32(vdupq_n_f32(0.5f), x, vdupq_n_f32(1.44269504088896341f)));
    x = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    x = vfmsq_f32(x, fx, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, x);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, x);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, x);
    y = vaddq_f32(vfmaq_f32(x, y, vmulq_f32(x, x)), vdupq_n_f32(1.0f));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)), 23);
    y = vmulq_f32(y, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vandq_u32(keep, vreinterpretq_u32_f32(y)));
}

/* gamma of token t per key channel: exp of its g row into gam[0..K) */
static void decay_row(const linattn_delta_rec_job *jb, int64_t t, float *gam)
{
    const float *g = jb->g + t * jb->sg;
    int i = 0;
    for (; i + 4 <= jb->K; i += 4) vst1q_f32(gam + i, exp4(vld1q_f32(g + i)));
    if (i < jb->K) {
        float x[4] = {0.0f, 0.0f, 0.0f, 0.0f}, y[4];
        for (int j = i; j < jb->K; j++) x[j - i] = g[j];
        vst1q_f32(y, exp4(vld1q_f32(x)));
        for (int j = i; j < jb->K; j++) gam[j] = y[j - i];
    }
}

/* The read vector's entries of rows i, i+1: gamma'_i x_i (GK) or x_i */
ALWAYS_INLINE float32x2_t rd2(const float *gn, const float *x, int i, const int GK)
{
    return GK ? vmul_f32(vld1_f32(gn + i), vld1_f32(x + i)) : vld1_f32(x + i);
}
static inline float rd1(const float *gn, const float *x, int i)
{
    return gn ? gn[i] * x[i] : x[i];
}

/* A further query's read (beyond the NQ of the sweep) over NV vectors, in
 * the sweep's two chains: dst = sum_i S_i c_i, c from rd2 / rd1. */
ALWAYS_INLINE void read_pass(const float *S, ptrdiff_t ldS, int K, const float *x,
                             const float *gn, float *dst, const int NV, const int GK)
{
    float32x4_t p[MAXV], p1[MAXV];
    UNROLL for (int c = 0; c < NV; c++) { p[c] = vdupq_n_f32(0.0f); p1[c] = p[c]; }
    int i = 0;
    for (; i + 2 <= K; i += 2) {
        const float32x2_t x2 = rd2(gn, x, i, GK);
        const float *r0 = S + (ptrdiff_t)i * ldS, *r1 = r0 + ldS;
        UNROLL for (int c = 0; c < NV; c++) {
            p[c] = vfmaq_lane_f32(p[c], vld1q_f32(r0 + 4 * c), x2, 0);
            p1[c] = vfmaq_lane_f32(p1[c], vld1q_f32(r1 + 4 * c), x2, 1);
        }
    }
    if (i < K) {
        const float xi = rd1(GK ? gn : NULL, x, i);
        const float *r0 = S + (ptrdiff_t)i * ldS;
        UNROLL for (int c = 0; c < NV; c++) p[c] = vfmaq_n_f32(p[c], vld1q_f32(r0 + 4 * c), xi);
    }
    UNROLL for (int c = 0; c < NV; c++) vst1q_f32(dst + 4 * c, vaddq_f32(p[c], p1[c]));
}

/* One panel of NV vectors (4*NV columns at S, v, o already offset) over the
 * T tokens of jb (one chunk); gam[t], kq[t] per token of the chunk (GK:
 * gam unused, the decays per channel in gbuf, 2 * LINATTN_MAX_HEAD_DIM
 * floats); NQ queries in the sweep (1 only when jb->nq is 1). */
ALWAYS_INLINE void panel_vec(const linattn_delta_rec_job *jb, const float *gam,
                             const float *kq, float *gbuf, int j0, const int NV,
                             const int GK, const int NQ)
{
    const int K = jb->K, nq = NQ == 1 ? 1 : jb->nq;
    const ptrdiff_t sqh = jb->sqh, soh = jb->soh;
    const float scale = jb->scale;
    /* the state's panel, or (16-bit state) its float32 copy in pack */
    const int hdt = jb->hdt;
    float *S = hdt ? jb->pack : jb->S + j0;
    const ptrdiff_t ldS = hdt ? 4 * NV : jb->ldS;
    const uint16_t *h0 = hdt ? jb->h0 + j0 : NULL;
    uint16_t *ht = hdt ? jb->ht + j0 : NULL;
    float *gc = GK ? gbuf : NULL, *gn = GK ? gbuf + LINATTN_MAX_HEAD_DIM : NULL;
    float32x4_t a[MAXV], a1[MAXV], b[NQMAX][MAXV], b1[NQMAX][MAXV], u[MAXV];

    /* reads for the chunk's first token */
    if (GK) decay_row(jb, 0, gc);
    UNROLL for (int c = 0; c < NV; c++) {
        a[c] = vdupq_n_f32(0.0f); a1[c] = a[c];
        UNROLL for (int r = 0; r < NQ; r++) { b[r][c] = a[c]; b1[r][c] = a[c]; }
    }
    {
        int i = 0;
        for (; i + 2 <= K; i += 2) {
            const float32x2_t k2 = rd2(gc, jb->k, i, GK);
            float32x2_t q2[NQMAX];
            UNROLL for (int r = 0; r < NQ; r++) q2[r] = rd2(gc, jb->q + r * sqh, i, GK);
            float *r0 = S + (ptrdiff_t)i * ldS, *r1 = r0 + ldS;
            const uint16_t *g0 = hdt ? h0 + (ptrdiff_t)i * jb->ld0 : NULL;
            UNROLL for (int c = 0; c < NV; c++) {
                float32x4_t s0, s1;
                if (hdt) {
                    s0 = ld_half(hdt, g0 + 4 * c);
                    s1 = ld_half(hdt, g0 + jb->ld0 + 4 * c);
                    vst1q_f32(r0 + 4 * c, s0);
                    vst1q_f32(r1 + 4 * c, s1);
                } else {
                    s0 = vld1q_f32(r0 + 4 * c);
                    s1 = vld1q_f32(r1 + 4 * c);
                }
                a[c] = vfmaq_lane_f32(a[c], s0, k2, 0);
                a1[c] = vfmaq_lane_f32(a1[c], s1, k2, 1);
                UNROLL for (int r = 0; r < NQ; r++) {
                    b[r][c] = vfmaq_lane_f32(b[r][c], s0, q2[r], 0);
                    b1[r][c] = vfmaq_lane_f32(b1[r][c], s1, q2[r], 1);
                }
            }
        }
        if (i < K) {
            const float ki = rd1(gc, jb->k, i);
            float *r0 = S + (ptrdiff_t)i * ldS;
            UNROLL for (int c = 0; c < NV; c++) {
                float32x4_t s0;
                if (hdt) {
                    s0 = ld_half(hdt, h0 + (ptrdiff_t)i * jb->ld0 + 4 * c);
                    vst1q_f32(r0 + 4 * c, s0);
                } else {
                    s0 = vld1q_f32(r0 + 4 * c);
                }
                a[c] = vfmaq_n_f32(a[c], s0, ki);
                UNROLL for (int r = 0; r < NQ; r++)
                    b[r][c] = vfmaq_n_f32(b[r][c], s0, rd1(gc, jb->q + r * sqh, i));
            }
        }
        UNROLL for (int c = 0; c < NV; c++) {
            a[c] = vaddq_f32(a[c], a1[c]);
            UNROLL for (int r = 0; r < NQ; r++) b[r][c] = vaddq_f32(b[r][c], b1[r][c]);
        }
    }
    for (int r = NQ; r < nq; r++)
        read_pass(S, ldS, K, jb->q + r * sqh, gc, jb->o + r * soh + j0, NV, GK);

    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * jb->sq, *k = jb->k + t * jb->sk;
        const float *v = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        const float gamma = gam[t];

        if (jb->beta) {
            const float beta = jb->beta[t * jb->sb];
            UNROLL for (int c = 0; c < NV; c++)
                u[c] = GK ? vmulq_n_f32(vsubq_f32(vld1q_f32(v + 4 * c), a[c]), beta)
                          : vmulq_n_f32(vfmsq_n_f32(vld1q_f32(v + 4 * c), a[c], gamma), beta);
        } else {
            UNROLL for (int c = 0; c < NV; c++) u[c] = vld1q_f32(v + 4 * c);
        }
        for (int r = 0; r < nq; r++) {
            const float kqt = r ? dot(k, q + r * sqh, K) : kq[t];
            float *orow = o + r * soh;
            UNROLL for (int c = 0; c < NV; c++) {
                const float32x4_t br = r < NQ ? b[r < NQ ? r : 0][c] : vld1q_f32(orow + 4 * c);
                vst1q_f32(orow + 4 * c,
                          vmulq_n_f32(vfmaq_n_f32(GK ? br : vmulq_n_f32(br, gamma), u[c], kqt),
                                      scale));
            }
        }

        if (t + 1 < jb->T) {
            /* write token t, read for token t+1 */
            const float *qn = q + jb->sq, *kn = k + jb->sk;
            if (GK) decay_row(jb, t + 1, gn);
            UNROLL for (int c = 0; c < NV; c++) {
                a[c] = vdupq_n_f32(0.0f); a1[c] = a[c];
                UNROLL for (int r = 0; r < NQ; r++) { b[r][c] = a[c]; b1[r][c] = a[c]; }
            }
            int i = 0;
            for (; i + 2 <= K; i += 2) {
                const float32x2_t k2 = vld1_f32(k + i), kn2 = rd2(gn, kn, i, GK);
                const float32x2_t g2 = GK ? vld1_f32(gc + i) : vdup_n_f32(gamma);
                float32x2_t qn2[NQMAX];
                UNROLL for (int r = 0; r < NQ; r++) qn2[r] = rd2(gn, qn + r * sqh, i, GK);
                float *r0 = S + (ptrdiff_t)i * ldS, *r1 = r0 + ldS;
                UNROLL for (int c = 0; c < NV; c++) {
                    float32x4_t s0 = vmulq_lane_f32(vld1q_f32(r0 + 4 * c), g2, 0);
                    float32x4_t s1 = vmulq_lane_f32(vld1q_f32(r1 + 4 * c), g2, 1);
                    s0 = vfmaq_lane_f32(s0, u[c], k2, 0);
                    s1 = vfmaq_lane_f32(s1, u[c], k2, 1);
                    vst1q_f32(r0 + 4 * c, s0);
                    vst1q_f32(r1 + 4 * c, s1);
                    a[c] = vfmaq_lane_f32(a[c], s0, kn2, 0);
                    a1[c] = vfmaq_lane_f32(a1[c], s1, kn2, 1);
                    UNROLL for (int r = 0; r < NQ; r++) {
                        b[r][c] = vfmaq_lane_f32(b[r][c], s0, qn2[r], 0);
                        b1[r][c] = vfmaq_lane_f32(b1[r][c], s1, qn2[r], 1);
                    }
                }
            }
            if (i < K) {
                const float ki = k[i], kni = rd1(gn, kn, i), gi = GK ? gc[i] : gamma;
                float *r0 = S + (ptrdiff_t)i * ldS;
                UNROLL for (int c = 0; c < NV; c++) {
                    float32x4_t s0 = vmulq_n_f32(vld1q_f32(r0 + 4 * c), gi);
                    s0 = vfmaq_n_f32(s0, u[c], ki);
                    vst1q_f32(r0 + 4 * c, s0);
                    a[c] = vfmaq_n_f32(a[c], s0, kni);
                    UNROLL for (int r = 0; r < NQ; r++)
                        b[r][c] = vfmaq_n_f32(b[r][c], s0, rd1(gn, qn + r * sqh, i));
                }
            }
            UNROLL for (int c = 0; c < NV; c++) {
                a[c] = vaddq_f32(a[c], a1[c]);
                UNROLL for (int r = 0; r < NQ; r++) b[r][c] = vaddq_f32(b[r][c], b1[r][c]);
            }
            for (int r = NQ; r < nq; r++)
                read_pass(S, ldS, K, qn + r * sqh, gn, o + jb->so + r * soh, NV, GK);
            if (GK) { float *x = gc; gc = gn; gn = x; }
        } else {
            /* the chunk's last token: write only */
            for (int i = 0; i < K; i++) {
                const float ki = k[i], gi = GK ? gc[i] : gamma;
                float *r0 = S + (ptrdiff_t)i * ldS;
                UNROLL for (int c = 0; c < NV; c++) {
                    const float32x4_t s0 = vmulq_n_f32(vld1q_f32(r0 + 4 * c), gi);
                    if (hdt) st_half(hdt, ht + (ptrdiff_t)i * jb->ldt + 4 * c, vfmaq_n_f32(s0, u[c], ki));
                    else vst1q_f32(r0 + 4 * c, vfmaq_n_f32(s0, u[c], ki));
                }
            }
        }
    }
}

typedef void (*panel_fn)(const linattn_delta_rec_job *, const float *, const float *, float *,
                         int);
#define PANEL(nv, gk, nq) \
    static void panel_##nv##gk##nq(const linattn_delta_rec_job *jb, const float *gam, \
                                   const float *kq, float *gbuf, int j0) \
    { panel_vec(jb, gam, kq, gbuf, j0, nv, gk, nq); }
PANEL(4, 0, 1) PANEL(2, 0, 1) PANEL(1, 0, 1) PANEL(4, 1, 1) PANEL(2, 1, 1) PANEL(1, 1, 1)
PANEL(2, 0, 2) PANEL(1, 0, 2) PANEL(2, 1, 2) PANEL(1, 1, 2) PANEL(1, 0, 4) PANEL(1, 1, 4)

/* Scalar tail of w <= 3 columns: the vector lanes' arithmetic, with fmaf;
 * query 0 in the sweep, the others by read passes (as the vector panels'
 * pending queries). */
static void scalar_read(const linattn_delta_rec_job *jb, const float *S, ptrdiff_t ldS, int w,
                        const float *x, const float *gn, float *dst)
{
    float p[3] = {0.0f, 0.0f, 0.0f}, p1[3] = {0.0f, 0.0f, 0.0f};
    for (int i = 0; i < jb->K; i++) {
        const float xi = rd1(gn, x, i);
        const float *r = S + (ptrdiff_t)i * ldS;
        float *pp = (i & 1) ? p1 : p;
        for (int j = 0; j < w; j++) pp[j] = fmaf(r[j], xi, pp[j]);
    }
    for (int j = 0; j < w; j++) dst[j] = p[j] + p1[j];
}

static void panel_scalar(const linattn_delta_rec_job *jb, const float *gam,
                         const float *kq, float *gbuf, int j0, int w)
{
    const int K = jb->K, gk = jb->g && jb->gk;
    const ptrdiff_t sqh = jb->sqh, soh = jb->soh;
    const float scale = jb->scale;
    /* the state's columns, or (16-bit state) their float32 copy in pack */
    float *S = jb->hdt ? jb->pack : jb->S + j0;
    const ptrdiff_t ldS = jb->hdt ? 4 : jb->ldS;
    const uint16_t *h0 = jb->hdt ? jb->h0 + j0 : NULL;
    uint16_t *ht = jb->hdt ? jb->ht + j0 : NULL;
    float *gc = gk ? gbuf : NULL, *gn = gk ? gbuf + LINATTN_MAX_HEAD_DIM : NULL;
    float a[3], b[3], a1[3], b1[3], u[3];

    if (gk) decay_row(jb, 0, gc);
    for (int j = 0; j < 3; j++) { a[j] = 0.0f; b[j] = 0.0f; a1[j] = 0.0f; b1[j] = 0.0f; }
    for (int i = 0; i < K; i++) {
        const float ki = rd1(gc, jb->k, i), qi = rd1(gc, jb->q, i);
        float *r = S + (ptrdiff_t)i * ldS;
        if (jb->hdt == LINATTN_KH_F16) linattn_f16_in_scalar(h0 + i * jb->ld0, r, (size_t)w);
        else if (jb->hdt) linattn_bf16_in_scalar(h0 + i * jb->ld0, r, (size_t)w);
        float *pa = (i & 1) ? a1 : a, *pb = (i & 1) ? b1 : b;
        for (int j = 0; j < w; j++) { pa[j] = fmaf(r[j], ki, pa[j]); pb[j] = fmaf(r[j], qi, pb[j]); }
    }
    for (int j = 0; j < w; j++) { a[j] = a[j] + a1[j]; b[j] = b[j] + b1[j]; }
    for (int r = 1; r < jb->nq; r++) scalar_read(jb, S, ldS, w, jb->q + r * sqh, gc, jb->o + r * soh + j0);

    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * jb->sq, *k = jb->k + t * jb->sk;
        const float *v = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        const float gamma = gam[t];

        if (jb->beta) {
            const float beta = jb->beta[t * jb->sb];
            for (int j = 0; j < w; j++) {
                const float d = gk ? v[j] - a[j] : fmaf(-gamma, a[j], v[j]);
                u[j] = d * beta;
            }
        } else {
            for (int j = 0; j < w; j++) u[j] = v[j];
        }
        for (int r = 0; r < jb->nq; r++) {
            const float kqt = r ? dot(k, q + r * sqh, K) : kq[t];
            float *orow = o + r * soh;
            const float *br = r ? orow : b;
            for (int j = 0; j < w; j++) {
                const float gb = gk ? br[j] : br[j] * gamma;
                const float x = fmaf(u[j], kqt, gb);
                orow[j] = x * scale;
            }
        }

        if (t + 1 < jb->T) {
            const float *qn = q + jb->sq, *kn = k + jb->sk;
            if (gk) decay_row(jb, t + 1, gn);
            for (int j = 0; j < 3; j++) { a[j] = 0.0f; b[j] = 0.0f; a1[j] = 0.0f; b1[j] = 0.0f; }
            for (int i = 0; i < K; i++) {
                const float ki = k[i], kni = rd1(gn, kn, i), qni = rd1(gn, qn, i);
                const float gi = gk ? gc[i] : gamma;
                float *r = S + (ptrdiff_t)i * ldS;
                float *pa = (i & 1) ? a1 : a, *pb = (i & 1) ? b1 : b;
                for (int j = 0; j < w; j++) {
                    const float gs = r[j] * gi;
                    const float s = fmaf(u[j], ki, gs);
                    r[j] = s;
                    pa[j] = fmaf(s, kni, pa[j]);
                    pb[j] = fmaf(s, qni, pb[j]);
                }
            }
            for (int j = 0; j < w; j++) { a[j] = a[j] + a1[j]; b[j] = b[j] + b1[j]; }
            for (int r = 1; r < jb->nq; r++)
                scalar_read(jb, S, ldS, w, qn + r * sqh, gn, o + jb->so + r * soh);
            if (gk) { float *x = gc; gc = gn; gn = x; }
        } else {
            for (int i = 0; i < K; i++) {
                const float ki = k[i], gi = gk ? gc[i] : gamma;
                float *r = S + (ptrdiff_t)i * ldS;
                for (int j = 0; j < w; j++) {
                    const float gs = r[j] * gi;
                    r[j] = fmaf(u[j], ki, gs);
                }
                if (jb->hdt == LINATTN_KH_F16) linattn_f16_out_scalar(r, ht + i * jb->ldt, (size_t)w);
                else if (jb->hdt) linattn_bf16_out_scalar(r, ht + i * jb->ldt, (size_t)w);
            }
        }
    }
}

void linattn_delta_rec_neon(const linattn_delta_rec_job *job)
{
    float gam[TC], kq[TC], gbuf[2 * LINATTN_MAX_HEAD_DIM];
    const int n = job->n, gk = job->g && job->gk;
    /* panels by width (16, 8, 4 columns) for g per head / channel and NQ 1, 2, 4 */
    static const panel_fn panels[2][3][3] = {
        {{panel_401, panel_201, panel_101}, {NULL, panel_202, panel_102}, {NULL, NULL, panel_104}},
        {{panel_411, panel_211, panel_111}, {NULL, panel_212, panel_112}, {NULL, NULL, panel_114}}};
    const int nqi = job->nq < 2 ? 0 : job->nq < NQMAX ? 1 : 2;
    const panel_fn *pf = panels[gk][nqi];

    for (int64_t t0 = 0; t0 < job->T; t0 += TC) {
        /* the chunk as a job of its own */
        linattn_delta_rec_job c = *job;
        c.T = job->T - t0 < TC ? job->T - t0 : TC;
        c.q = job->q + t0 * job->sq;
        c.k = job->k + t0 * job->sk;
        c.v = job->v + t0 * job->sv;
        c.o = job->o + t0 * job->so;
        if (job->g) c.g = job->g + t0 * job->sg;
        if (job->beta) c.beta = job->beta + t0 * job->sb;

        for (int64_t t = 0; t < c.T; t++) {
            gam[t] = c.g && !gk ? expf(c.g[t * c.sg]) : 1.0f;
            kq[t] = dot(c.k + t * c.sk, c.q + t * c.sq, c.K);
        }

        int j0 = 0;
        for (int p = nqi; p < 3; p++) {
            const int width = 16 >> p;
            /* the widest panel repeats; each narrower one takes at most one step */
            if (p == nqi)
                for (; n - j0 >= width; j0 += width) pf[p](&c, gam, kq, gbuf, j0);
            else if (n - j0 >= width) { pf[p](&c, gam, kq, gbuf, j0); j0 += width; }
        }
        if (n - j0 > 0) panel_scalar(&c, gam, kq, gbuf, j0, n - j0);
    }
}
