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
 * The scalar tail uses fmaf in the same form.  No product feeds a plain add,
 * so -ffp-contract settings cannot change the arithmetic. */
#include <arm_neon.h>
#include <math.h>
#include "kernels.h"

#define TC 128  /* tokens per chunk (stack: 2*TC floats) */
#define MAXV 4  /* vectors per panel: 16 columns */

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

/* One panel of NV vectors (4*NV columns at S, v, o already offset) over the
 * T tokens of jb (one chunk); gam[t], kq[t] per token of the chunk. */
ALWAYS_INLINE void panel_vec(const linattn_delta_rec_job *jb, const float *gam,
                             const float *kq, int j0, const int NV)
{
    const int K = jb->K;
    const ptrdiff_t ldS = jb->ldS;
    const float scale = jb->scale;
    float *S = jb->S + j0;
    float32x4_t a[MAXV], b[MAXV], a1[MAXV], b1[MAXV], u[MAXV];

    /* reads for the chunk's first token */
    UNROLL for (int c = 0; c < NV; c++) {
        a[c] = vdupq_n_f32(0.0f); b[c] = a[c]; a1[c] = a[c]; b1[c] = a[c];
    }
    {
        int i = 0;
        for (; i + 2 <= K; i += 2) {
            const float32x2_t k2 = vld1_f32(jb->k + i), q2 = vld1_f32(jb->q + i);
            const float *r0 = S + (ptrdiff_t)i * ldS, *r1 = r0 + ldS;
            UNROLL for (int c = 0; c < NV; c++) {
                const float32x4_t s0 = vld1q_f32(r0 + 4 * c), s1 = vld1q_f32(r1 + 4 * c);
                a[c] = vfmaq_lane_f32(a[c], s0, k2, 0);
                b[c] = vfmaq_lane_f32(b[c], s0, q2, 0);
                a1[c] = vfmaq_lane_f32(a1[c], s1, k2, 1);
                b1[c] = vfmaq_lane_f32(b1[c], s1, q2, 1);
            }
        }
        if (i < K) {
            const float ki = jb->k[i], qi = jb->q[i];
            const float *r0 = S + (ptrdiff_t)i * ldS;
            UNROLL for (int c = 0; c < NV; c++) {
                const float32x4_t s0 = vld1q_f32(r0 + 4 * c);
                a[c] = vfmaq_n_f32(a[c], s0, ki);
                b[c] = vfmaq_n_f32(b[c], s0, qi);
            }
        }
        UNROLL for (int c = 0; c < NV; c++) {
            a[c] = vaddq_f32(a[c], a1[c]); b[c] = vaddq_f32(b[c], b1[c]);
        }
    }

    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * jb->sq, *k = jb->k + t * jb->sk;
        const float *v = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        const float gamma = gam[t], kqt = kq[t];

        if (jb->beta) {
            const float beta = jb->beta[t * jb->sb];
            UNROLL for (int c = 0; c < NV; c++)
                u[c] = vmulq_n_f32(vfmsq_n_f32(vld1q_f32(v + 4 * c), a[c], gamma), beta);
        } else {
            UNROLL for (int c = 0; c < NV; c++) u[c] = vld1q_f32(v + 4 * c);
        }
        UNROLL for (int c = 0; c < NV; c++)
            vst1q_f32(o + 4 * c,
                      vmulq_n_f32(vfmaq_n_f32(vmulq_n_f32(b[c], gamma), u[c], kqt), scale));

        if (t + 1 < jb->T) {
            /* write token t, read for token t+1 */
            const float *qn = q + jb->sq, *kn = k + jb->sk;
            UNROLL for (int c = 0; c < NV; c++) {
                a[c] = vdupq_n_f32(0.0f); b[c] = a[c]; a1[c] = a[c]; b1[c] = a[c];
            }
            int i = 0;
            for (; i + 2 <= K; i += 2) {
                const float32x2_t k2 = vld1_f32(k + i), kn2 = vld1_f32(kn + i),
                                  qn2 = vld1_f32(qn + i);
                float *r0 = S + (ptrdiff_t)i * ldS, *r1 = r0 + ldS;
                UNROLL for (int c = 0; c < NV; c++) {
                    float32x4_t s0 = vmulq_n_f32(vld1q_f32(r0 + 4 * c), gamma);
                    float32x4_t s1 = vmulq_n_f32(vld1q_f32(r1 + 4 * c), gamma);
                    s0 = vfmaq_lane_f32(s0, u[c], k2, 0);
                    s1 = vfmaq_lane_f32(s1, u[c], k2, 1);
                    vst1q_f32(r0 + 4 * c, s0);
                    vst1q_f32(r1 + 4 * c, s1);
                    a[c] = vfmaq_lane_f32(a[c], s0, kn2, 0);
                    b[c] = vfmaq_lane_f32(b[c], s0, qn2, 0);
                    a1[c] = vfmaq_lane_f32(a1[c], s1, kn2, 1);
                    b1[c] = vfmaq_lane_f32(b1[c], s1, qn2, 1);
                }
            }
            if (i < K) {
                const float ki = k[i], kni = kn[i], qni = qn[i];
                float *r0 = S + (ptrdiff_t)i * ldS;
                UNROLL for (int c = 0; c < NV; c++) {
                    float32x4_t s0 = vmulq_n_f32(vld1q_f32(r0 + 4 * c), gamma);
                    s0 = vfmaq_n_f32(s0, u[c], ki);
                    vst1q_f32(r0 + 4 * c, s0);
                    a[c] = vfmaq_n_f32(a[c], s0, kni);
                    b[c] = vfmaq_n_f32(b[c], s0, qni);
                }
            }
            UNROLL for (int c = 0; c < NV; c++) {
                a[c] = vaddq_f32(a[c], a1[c]); b[c] = vaddq_f32(b[c], b1[c]);
            }
        } else {
            /* the chunk's last token: write only */
            for (int i = 0; i < K; i++) {
                const float ki = k[i];
                float *r0 = S + (ptrdiff_t)i * ldS;
                UNROLL for (int c = 0; c < NV; c++) {
                    const float32x4_t s0 = vmulq_n_f32(vld1q_f32(r0 + 4 * c), gamma);
                    vst1q_f32(r0 + 4 * c, vfmaq_n_f32(s0, u[c], ki));
                }
            }
        }
    }
}

static void panel4(const linattn_delta_rec_job *jb, const float *gam, const float *kq, int j0)
{
    panel_vec(jb, gam, kq, j0, 4);
}
static void panel2(const linattn_delta_rec_job *jb, const float *gam, const float *kq, int j0)
{
    panel_vec(jb, gam, kq, j0, 2);
}
static void panel1(const linattn_delta_rec_job *jb, const float *gam, const float *kq, int j0)
{
    panel_vec(jb, gam, kq, j0, 1);
}

/* Scalar tail of w <= 3 columns: the vector lanes' arithmetic, with fmaf. */
static void panel_scalar(const linattn_delta_rec_job *jb, const float *gam,
                         const float *kq, int j0, int w)
{
    const int K = jb->K;
    const ptrdiff_t ldS = jb->ldS;
    const float scale = jb->scale;
    float *S = jb->S + j0;
    float a[3], b[3], a1[3], b1[3], u[3];

    for (int j = 0; j < 3; j++) { a[j] = 0.0f; b[j] = 0.0f; a1[j] = 0.0f; b1[j] = 0.0f; }
    for (int i = 0; i < K; i++) {
        const float ki = jb->k[i], qi = jb->q[i];
        const float *r = S + (ptrdiff_t)i * ldS;
        float *pa = (i & 1) ? a1 : a, *pb = (i & 1) ? b1 : b;
        for (int j = 0; j < w; j++) { pa[j] = fmaf(r[j], ki, pa[j]); pb[j] = fmaf(r[j], qi, pb[j]); }
    }
    for (int j = 0; j < w; j++) { a[j] = a[j] + a1[j]; b[j] = b[j] + b1[j]; }

    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * jb->sq, *k = jb->k + t * jb->sk;
        const float *v = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        const float gamma = gam[t], kqt = kq[t];

        if (jb->beta) {
            const float beta = jb->beta[t * jb->sb];
            for (int j = 0; j < w; j++) {
                const float d = fmaf(-gamma, a[j], v[j]);
                u[j] = d * beta;
            }
        } else {
            for (int j = 0; j < w; j++) u[j] = v[j];
        }
        for (int j = 0; j < w; j++) {
            const float gb = b[j] * gamma;
            const float r = fmaf(u[j], kqt, gb);
            o[j] = r * scale;
        }

        if (t + 1 < jb->T) {
            const float *qn = q + jb->sq, *kn = k + jb->sk;
            for (int j = 0; j < 3; j++) { a[j] = 0.0f; b[j] = 0.0f; a1[j] = 0.0f; b1[j] = 0.0f; }
            for (int i = 0; i < K; i++) {
                const float ki = k[i], kni = kn[i], qni = qn[i];
                float *r = S + (ptrdiff_t)i * ldS;
                float *pa = (i & 1) ? a1 : a, *pb = (i & 1) ? b1 : b;
                for (int j = 0; j < w; j++) {
                    const float gs = r[j] * gamma;
                    const float s = fmaf(u[j], ki, gs);
                    r[j] = s;
                    pa[j] = fmaf(s, kni, pa[j]);
                    pb[j] = fmaf(s, qni, pb[j]);
                }
            }
            for (int j = 0; j < w; j++) { a[j] = a[j] + a1[j]; b[j] = b[j] + b1[j]; }
        } else {
            for (int i = 0; i < K; i++) {
                const float ki = k[i];
                float *r = S + (ptrdiff_t)i * ldS;
                for (int j = 0; j < w; j++) {
                    const float gs = r[j] * gamma;
                    r[j] = fmaf(u[j], ki, gs);
                }
            }
        }
    }
}

void linattn_delta_rec_neon(const linattn_delta_rec_job *job)
{
    float gam[TC], kq[TC];
    const int n = job->n;
    if ((job->g && job->gk) || job->nq > 1) { /* not vectorised here yet */
        linattn_delta_rec_scalar(job);
        return;
    }

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
            gam[t] = c.g ? expf(c.g[t * c.sg]) : 1.0f;
            kq[t] = dot(c.k + t * c.sk, c.q + t * c.sq, c.K);
        }

        int j0 = 0;
        for (; n - j0 >= 16; j0 += 16) panel4(&c, gam, kq, j0);
        if (n - j0 >= 8) { panel2(&c, gam, kq, j0); j0 += 8; }
        if (n - j0 >= 4) { panel1(&c, gam, kq, j0); j0 += 4; }
        if (n - j0 > 0) panel_scalar(&c, gam, kq, j0, n - j0);
    }
}
