/* linattn - chunkwise delta-rule form (the math is in linattn_gdn(3)).
 *
 * One job = one (sequence, head, block of n value columns).  Inside a chunk
 * of c <= C tokens the c rank-1 writes become one block write (WY form):
 *   A = strict_lower(diag(beta) K K^T o D),  (I + A) [W | U] = diag(beta) [diag(e^G) K | V]
 *   U' = U - W S,  O = scale (diag(e^G) Q S + (Q K^T o D) U'),
 *   S  = e^{G_c} S + (diag(e^{G_c - G}) K)^T U'.
 * gla drops A and W (U' = V).  Products go through cblas.  Each of the nq
 * query heads reading the state gets its own M = Q K^T o D and output.
 *
 * With g per key channel (gk) the decays differ per channel, so D cannot
 * be taken out of the sums over channels: A[r][s] = beta_r sum_i k_ri k_si
 * e^{G_ri - G_si}, M likewise.  Splitting e^{G_r - G_s} into e^{G_r} e^{-G_s}
 * overflows for strong decays, so the chunk is cut into sub-chunks of SUB
 * tokens and every factor used is a decay over a stretch of tokens that
 * runs forward in time, <= 1:
 *   below the diagonal, rows r of sub-chunk a against columns s before it:
 *     (q_r o e^{G_r - G_p}) . (k_s o e^{G_p - G_s}),  p the token before a;
 *   diagonal blocks pairwise, e^{G_r - G_s} as the product of the step
 *   decays e^{g_t}, s < t <= r;
 *   e^{G_r} and e^{G_c - G_s} as products of per-sub-chunk decays.
 * All those factors are products of values in [0, 1] (no exp of a sum over
 * the chunk), so nothing overflows, and what underflows is below FLT_MIN
 * next to terms of the size of the data. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "internal.h"

#ifdef HAVE_CBLAS
#include <cblas.h>

#define SUB 16 /* tokens per sub-chunk of the per-channel form */

#if defined(_OPENMP) || defined(LINATTN_OMP_SIMD)
#define CHUNK_SIMD _Pragma("omp simd")
#define CHUNK_SIMD_SUM(x) _Pragma("omp simd reduction(+:x)")
#else
#define CHUNK_SIMD
#define CHUNK_SIMD_SUM(x)
#endif

static int nsub_of(int C) { return (C + SUB - 1) / SUB; }

size_t linattn_delta_chunk_work(int K, int n, int C, int gk)
{
    size_t w = 3u * C + 3u * (size_t)C * K + 2u * (size_t)C * C + (size_t)C * n;
    if (gk) w += 4u * (size_t)C * K + (size_t)SUB * K + (2u * nsub_of(C) + 2u) * K;
    return w;
}

/* Gather c rows of width w from a strided source into a dense [c, w] array. */
static void gather(float *dst, const float *src, ptrdiff_t stride, int c, int w)
{
    for (int r = 0; r < c; r++) memcpy(dst + (size_t)r * w, src + r * stride, sizeof(float) * w);
}

/* Products of decays stay in [0, 1]; below FLT_MIN they are flushed to 0
 * (their terms are negligible, and denormal arithmetic is slow). */
static inline float ftz(float x) { return x < FLT_MIN ? 0.0f : x; }

/* Per-head g: the decays are scalars per token. */
static void chunk_head(const linattn_delta_rec_job *jb, int C, float *work)
{
    const int K = jb->K, n = jb->n, gdn = jb->beta != NULL;
    float *G = work, *eG = G + C, *eGl = eG + C;
    float *Kc = eGl + C, *Qc = Kc + (size_t)C * K, *W = Qc + (size_t)C * K;
    float *A = W + (size_t)C * K, *M = A + (size_t)C * C, *U = M + (size_t)C * C;

    for (int64_t t0 = 0; t0 < jb->T; t0 += C) {
        const int c = (int)(jb->T - t0 < C ? jb->T - t0 : C);
        const float *q = jb->q + t0 * jb->sq, *k = jb->k + t0 * jb->sk;
        const float *v = jb->v + t0 * jb->sv;
        float *o = jb->o + t0 * jb->so;

        float acc = 0.0f;
        for (int r = 0; r < c; r++) {
            acc += jb->g ? jb->g[(t0 + r) * jb->sg] : 0.0f;
            G[r] = acc;
            eG[r] = expf(acc);
        }
        for (int r = 0; r < c; r++) eGl[r] = expf(G[c - 1] - G[r]);
        gather(Kc, k, jb->sk, c, K);
        gather(U, v, jb->sv, c, n);

        if (gdn) {
            const float *beta = jb->beta + t0 * jb->sb;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, c, K, 1.0f, Kc, K, Kc, K,
                        0.0f, A, C);
            for (int r = 0; r < c; r++) {
                const float br = beta[r * jb->sb];
                for (int s = 0; s < r; s++) A[(size_t)r * C + s] *= br * expf(G[r] - G[s]);
                for (int i = 0; i < K; i++) W[(size_t)r * K + i] = br * eG[r] * Kc[(size_t)r * K + i];
                for (int j = 0; j < n; j++) U[(size_t)r * n + j] *= br;
            }
            /* (I + A) X = RHS, unit lower triangular: X = T RHS */
            cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, c, K,
                        1.0f, A, C, W, K);
            cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, c, n,
                        1.0f, A, C, U, n);
            /* U' = U - W S */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, K, -1.0f, W, K, jb->S,
                        jb->ldS, 1.0f, U, n);
        }

        for (int e = 0; e < jb->nq; e++) {
            float *oe = o + e * jb->soh;
            gather(Qc, q + e * jb->sqh, jb->sq, c, K);
            /* M = (Q K^T) o D, lower triangle with diagonal */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, c, K, 1.0f, Qc, K, Kc, K,
                        0.0f, M, C);
            for (int r = 0; r < c; r++) {
                for (int s = 0; s < r; s++) M[(size_t)r * C + s] *= expf(G[r] - G[s]);
                for (int s = r + 1; s < c; s++) M[(size_t)r * C + s] = 0.0f;
                for (int i = 0; i < K; i++) Qc[(size_t)r * K + i] *= eG[r];
            }
            /* O = scale (diag(e^G) Q S + M U') */
            for (int r = 0; r < c; r++) memset(oe + r * jb->so, 0, sizeof(float) * n);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, K, jb->scale, Qc, K,
                        jb->S, jb->ldS, 0.0f, oe, jb->so);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, c, jb->scale, M, C, U, n,
                        1.0f, oe, jb->so);
        }
        /* S = e^{G_c} S + (diag(e^{G_c - G}) K)^T U' */
        for (int r = 0; r < c; r++)
            for (int i = 0; i < K; i++) Kc[(size_t)r * K + i] *= eGl[r];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, n, c, 1.0f, Kc, K, U, n,
                    eG[c - 1], jb->S, jb->ldS);
    }
}

/* The decays of one chunk of c tokens, g per key channel (rows of K):
 *   Dg[r] = e^{g_r}                          (step decay)
 *   E[r]  = e^{G_r - G_p}, p the token before r's sub-chunk
 *   KF[s] = k_s o e^{G_e - G_s}, e the last token of s's sub-chunk
 *   eT[b] = e^{G_e - G_p} of sub-chunk b (its whole decay)
 *   P[a]  = e^{G_p} of sub-chunk a (a <= nsub: P[nsub] = e^{G_c}) */
typedef struct gk_chunk {
    int c, K, C, ns;
    float *Dg, *E, *KF, *Kp, *Rp, *eT, *P, *vec;
} gk_chunk;

static void gk_decays(gk_chunk *d, const float *g, ptrdiff_t sg, const float *Kc)
{
    const int K = d->K;
    for (int r = 0; r < d->c; r++)
        for (int i = 0; i < K; i++) d->Dg[(size_t)r * K + i] = ftz(expf(g[r * sg + i]));
    for (int i = 0; i < K; i++) d->P[i] = 1.0f;
    for (int b = 0; b < d->ns; b++) {
        const int a0 = b * SUB, a1 = a0 + SUB < d->c ? a0 + SUB : d->c;
        float *E = d->E, *KF = d->KF, *f = d->vec;
        CHUNK_SIMD
        for (int i = 0; i < K; i++) E[(size_t)a0 * K + i] = d->Dg[(size_t)a0 * K + i];
        for (int r = a0 + 1; r < a1; r++)
            CHUNK_SIMD
            for (int i = 0; i < K; i++)
                E[(size_t)r * K + i] = ftz(E[(size_t)(r - 1) * K + i] * d->Dg[(size_t)r * K + i]);
        for (int i = 0; i < K; i++) f[i] = 1.0f;
        for (int s = a1 - 1; s >= a0; s--) {
            CHUNK_SIMD
            for (int i = 0; i < K; i++) KF[(size_t)s * K + i] = Kc[(size_t)s * K + i] * f[i];
            if (s > a0) {
                CHUNK_SIMD
                for (int i = 0; i < K; i++) f[i] = ftz(f[i] * d->Dg[(size_t)s * K + i]);
            }
        }
        CHUNK_SIMD
        for (int i = 0; i < K; i++) {
            d->eT[(size_t)b * K + i] = E[(size_t)(a1 - 1) * K + i];
            d->P[(size_t)(b + 1) * K + i] = ftz(d->P[(size_t)b * K + i] * d->eT[(size_t)b * K + i]);
        }
    }
}

/* X[r][s] = sum_i R_ri k_si e^{G_ri - G_si} for s < r (diag: s <= r), 0 above,
 * X of leading dimension C. */
static void gk_intra(const gk_chunk *d, const float *R, const float *Kc, int diag, float *X)
{
    const int K = d->K, c = d->c, C = d->C;
    for (int a = 1; a * SUB < c; a++) {
        const int a0 = a * SUB, h = c - a0 < SUB ? c - a0 : SUB;
        for (int r = 0; r < h; r++) {
            const float *x = R + (size_t)(a0 + r) * K, *E = d->E + (size_t)(a0 + r) * K;
            CHUNK_SIMD
            for (int i = 0; i < K; i++) d->Rp[(size_t)r * K + i] = x[i] * E[i];
        }
        float *gap = d->vec; /* e^{G_p - G_e}, e the last token of sub-chunk b */
        for (int i = 0; i < K; i++) gap[i] = 1.0f;
        for (int b = a - 1; b >= 0; b--) {
            for (int s = b * SUB; s < (b + 1) * SUB; s++)
                CHUNK_SIMD
                for (int i = 0; i < K; i++)
                    d->Kp[(size_t)s * K + i] = d->KF[(size_t)s * K + i] * gap[i];
            if (b > 0) {
                CHUNK_SIMD
                for (int i = 0; i < K; i++) gap[i] = ftz(gap[i] * d->eT[(size_t)b * K + i]);
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, h, a0, K, 1.0f, d->Rp, K, d->Kp, K,
                    0.0f, X + (size_t)a0 * C, C);
    }
    float *acc = d->vec;
    for (int a0 = 0; a0 < c; a0 += SUB) {
        const int a1 = a0 + SUB < c ? a0 + SUB : c;
        for (int s = a0; s < a1; s++) {
            const float *ks = Kc + (size_t)s * K;
            for (int i = 0; i < K; i++) acc[i] = 1.0f;
            for (int r = s; r < a1; r++) {
                const float *rr = R + (size_t)r * K, *dr = d->Dg + (size_t)r * K;
                float x = 0.0f;
                if (r == s) {
                    if (!diag) continue;
                    CHUNK_SIMD_SUM(x)
                    for (int i = 0; i < K; i++) x += rr[i] * ks[i];
                } else {
                    CHUNK_SIMD_SUM(x)
                    for (int i = 0; i < K; i++) {
                        const float a = ftz(acc[i] * dr[i]);
                        acc[i] = a;
                        x += rr[i] * ks[i] * a;
                    }
                }
                X[(size_t)r * C + s] = x;
            }
        }
        for (int r = a0; r < a1; r++)
            for (int s = diag ? r + 1 : r; s < c; s++) X[(size_t)r * C + s] = 0.0f;
    }
}

/* g per key channel: as chunk_head, with the decays of gk_decays. */
static void chunk_channel(const linattn_delta_rec_job *jb, int C, float *work)
{
    const int K = jb->K, n = jb->n, gdn = jb->beta != NULL, ns = nsub_of(C);
    float *Kc = work + 3 * C, *Qc = Kc + (size_t)C * K, *W = Qc + (size_t)C * K;
    float *A = W + (size_t)C * K, *M = A + (size_t)C * C, *U = M + (size_t)C * C;
    gk_chunk d = {.K = K, .C = C};
    d.Dg = U + (size_t)C * n;
    d.E = d.Dg + (size_t)C * K;
    d.KF = d.E + (size_t)C * K;
    d.Kp = d.KF + (size_t)C * K;
    d.Rp = d.Kp + (size_t)C * K;
    d.eT = d.Rp + (size_t)SUB * K;
    d.P = d.eT + (size_t)ns * K;
    d.vec = d.P + (size_t)(ns + 1) * K;

    for (int64_t t0 = 0; t0 < jb->T; t0 += C) {
        const int c = (int)(jb->T - t0 < C ? jb->T - t0 : C);
        const float *q = jb->q + t0 * jb->sq, *k = jb->k + t0 * jb->sk;
        const float *v = jb->v + t0 * jb->sv;
        float *o = jb->o + t0 * jb->so;
        d.c = c;
        d.ns = nsub_of(c);
        gather(Kc, k, jb->sk, c, K);
        gather(U, v, jb->sv, c, n);
        gk_decays(&d, jb->g + t0 * jb->sg, jb->sg, Kc);

        if (gdn) {
            const float *beta = jb->beta + t0 * jb->sb;
            gk_intra(&d, Kc, Kc, 0, A);
            for (int r = 0; r < c; r++) {
                const float br = beta[r * jb->sb];
                const float *P = d.P + (size_t)(r / SUB) * K, *E = d.E + (size_t)r * K;
                for (int s = 0; s < r; s++) A[(size_t)r * C + s] *= br;
                CHUNK_SIMD
                for (int i = 0; i < K; i++)
                    W[(size_t)r * K + i] = br * (P[i] * E[i]) * Kc[(size_t)r * K + i];
                for (int j = 0; j < n; j++) U[(size_t)r * n + j] *= br;
            }
            cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, c, K,
                        1.0f, A, C, W, K);
            cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, c, n,
                        1.0f, A, C, U, n);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, K, -1.0f, W, K, jb->S,
                        jb->ldS, 1.0f, U, n);
        }

        for (int e = 0; e < jb->nq; e++) {
            float *oe = o + e * jb->soh;
            gather(Qc, q + e * jb->sqh, jb->sq, c, K);
            gk_intra(&d, Qc, Kc, 1, M);
            for (int r = 0; r < c; r++) {
                const float *P = d.P + (size_t)(r / SUB) * K, *E = d.E + (size_t)r * K;
                CHUNK_SIMD
                for (int i = 0; i < K; i++) Qc[(size_t)r * K + i] *= P[i] * E[i];
            }
            for (int r = 0; r < c; r++) memset(oe + r * jb->so, 0, sizeof(float) * n);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, K, jb->scale, Qc, K,
                        jb->S, jb->ldS, 0.0f, oe, jb->so);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, c, jb->scale, M, C, U, n,
                        1.0f, oe, jb->so);
        }
        /* S = diag(e^{G_c}) S + (e^{G_c - G} o K)^T U',
         * e^{G_c - G_s} = e^{G_c - G_e} e^{G_e - G_s} */
        float *tail = d.vec;
        for (int i = 0; i < K; i++) tail[i] = 1.0f;
        for (int b = d.ns - 1; b >= 0; b--) {
            const int a0 = b * SUB, a1 = a0 + SUB < c ? a0 + SUB : c;
            for (int s = a0; s < a1; s++)
                CHUNK_SIMD
                for (int i = 0; i < K; i++)
                    d.Kp[(size_t)s * K + i] = d.KF[(size_t)s * K + i] * tail[i];
            CHUNK_SIMD
            for (int i = 0; i < K; i++) tail[i] = ftz(tail[i] * d.eT[(size_t)b * K + i]);
        }
        const float *eGc = d.P + (size_t)d.ns * K;
        for (int i = 0; i < K; i++) {
            float *Si = jb->S + i * jb->ldS;
            CHUNK_SIMD
            for (int j = 0; j < n; j++) Si[j] *= eGc[i];
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, n, c, 1.0f, d.Kp, K, U, n, 1.0f,
                    jb->S, jb->ldS);
    }
}

void linattn_delta_chunk(const linattn_delta_rec_job *jb, int C, float *work)
{
    if (jb->gk && jb->g) chunk_channel(jb, C, work);
    else chunk_head(jb, C, work);
}
#else
size_t linattn_delta_chunk_work(int K, int n, int C, int gk)
{
    (void)K; (void)n; (void)C; (void)gk;
    return 0;
}
void linattn_delta_chunk(const linattn_delta_rec_job *jb, int C, float *work)
{
    (void)jb; (void)C; (void)work;
}
#endif
