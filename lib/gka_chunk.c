/* linattn - chunkwise gka (linattn_gka(3), IMPLEMENTATION) for one (sequence, head):
 * the Chebyshev iteration runs on all c <= C tokens of a chunk at once, as
 * matrix products through cblas.  With rows r, s of the chunk,
 * G = cumsum(g), D_rs = exp(G_r - G_s) (s <= r), Kh = diag(beta) K,
 * Vh = diag(beta) V and (Hc, Uc) the state entering the chunk:
 *   |H_r|^2 = e^{2G_r}|Hc|^2 + 2 e^{G_r} sum_s D_rs kh_s'Hc kh_s + (D (Gamma o Gamma) D')_rr,
 *             Gamma = Kh Kh'
 *   R = diag(e^G) X Hc + ((X Kh') o D) Kh + diag(lambda) X - Q
 *   X <- w (X - diag(tau) R) + (1 - w) X_prev
 *   O = scale (diag(e^G) Qm Uc + ((Qm Kh') o D) Vh),  Qm = Q + diag(alpha)(X - Q)
 *   Hc <- e^{G_c} Hc + Kh' diag(e^{G_c - G}) Kh,  Uc likewise with Vh. */
#include <math.h>
#include <string.h>
#include "internal.h"

#ifdef HAVE_CBLAS
#include <cblas.h>

size_t linattn_gka_chunk_work(int K, int V, int C)
{
    return 8u * C + 6u * (size_t)C * K + (size_t)C * V + 4u * (size_t)C * C;
}

#define GEMM(ta, tb, m, n, k, al, A, lda, B, ldb, be, Cm, ldc)                                   \
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, al, A, lda, B, ldb, be, Cm, ldc)
#define NO CblasNoTrans
#define TR CblasTrans

void linattn_gka_chunk(const linattn_gka_job *jb, int C, float *work)
{
    const int K = jb->K, V = jb->V;
    float *G = work, *eG = G + C, *dl = eG + C, *lam = dl + C, *tau = lam + C, *al = tau + C;
    float *fro = al + C, *z = fro + C;
    float *Kh = z + C, *Qc = Kh + (size_t)C * K, *X = Qc + (size_t)C * K, *Xp = X + (size_t)C * K;
    float *R = Xp + (size_t)C * K, *Y = R + (size_t)C * K, *Vh = Y + (size_t)C * K;
    float *D = Vh + (size_t)C * V, *Gm = D + (size_t)C * C, *P = Gm + (size_t)C * C;
    float *B = P + (size_t)C * C;
    float *Hc = jb->Hs, *Uc = jb->Us;
    const float a = jb->ridge;

    for (int64_t t0 = 0; t0 < jb->T; t0 += C) {
        const int c = (int)(jb->T - t0 < C ? jb->T - t0 : C);
        float acc = 0.0f;
        for (int r = 0; r < c; r++) {
            const int64_t t = t0 + r;
            const float b = jb->beta ? jb->beta[t * jb->sg] : 1.0f;
            acc += jb->g ? jb->g[t * jb->sg] : 0.0f;
            G[r] = acc;
            eG[r] = expf(acc);
            al[r] = jb->alpha ? jb->alpha[t * jb->sg] : 1.0f;
            for (int i = 0; i < K; i++) {
                Kh[(size_t)r * K + i] = b * jb->k[t * jb->sqk + i];
                Qc[(size_t)r * K + i] = jb->q[t * jb->sqk + i];
            }
            for (int j = 0; j < V; j++) Vh[(size_t)r * V + j] = b * jb->v[t * jb->sv + j];
        }
        for (int r = 0; r < c; r++) {
            dl[r] = expf(G[c - 1] - G[r]);
            for (int s = 0; s < c; s++) D[(size_t)r * C + s] = s <= r ? expf(G[r] - G[s]) : 0.0f;
        }
        /* |H_r|_F for every token of the chunk */
        double hc2 = 0.0;
        for (size_t i = 0; i < (size_t)K * K; i++) hc2 += (double)Hc[i] * Hc[i];
        GEMM(NO, TR, c, c, K, 1.0f, Kh, K, Kh, K, 0.0f, Gm, C);                 /* Gamma */
        for (int r = 0; r < c; r++)
            for (int s = 0; s < c; s++) Gm[(size_t)r * C + s] *= Gm[(size_t)r * C + s];
        GEMM(NO, NO, c, c, c, 1.0f, D, C, Gm, C, 0.0f, P, C);                   /* D Gamma^2 */
        GEMM(NO, NO, c, K, K, 1.0f, Kh, K, Hc, K, 0.0f, Y, K);                  /* Kh Hc */
        for (int s = 0; s < c; s++) {
            double d = 0.0;
            for (int i = 0; i < K; i++) d += (double)Y[(size_t)s * K + i] * Kh[(size_t)s * K + i];
            z[s] = (float)d;
        }
        for (int r = 0; r < c; r++) {
            double f2 = (double)eG[r] * eG[r] * hc2, cross = 0.0, intra = 0.0;
            for (int s = 0; s <= r; s++) {
                cross += (double)D[(size_t)r * C + s] * z[s];
                intra += (double)D[(size_t)r * C + s] * P[(size_t)r * C + s];
            }
            f2 += 2.0 * eG[r] * cross + intra;
            fro[r] = (float)sqrt(f2 > 0.0 ? f2 : 0.0);
            const int zero = fro[r] < 1e-30f;
            lam[r] = a * fro[r];
            tau[r] = zero ? 0.0f : 2.0f / ((1.0f + 2.0f * a) * fro[r]);
            for (int i = 0; i < K; i++) {
                Xp[(size_t)r * K + i] = 0.0f;
                X[(size_t)r * K + i] = tau[r] * Qc[(size_t)r * K + i];
            }
        }
        /* Chebyshev on all rows at once */
        for (int n = 0; n < jb->iters; n++) {
            const float w = jb->omega[n];
            GEMM(NO, NO, c, K, K, 1.0f, X, K, Hc, K, 0.0f, R, K);               /* X Hc */
            GEMM(NO, TR, c, c, K, 1.0f, X, K, Kh, K, 0.0f, B, C);               /* X Kh' */
            for (int r = 0; r < c; r++) {
                for (int i = 0; i < K; i++) R[(size_t)r * K + i] *= eG[r];
                for (int s = 0; s < c; s++) B[(size_t)r * C + s] *= D[(size_t)r * C + s];
            }
            GEMM(NO, NO, c, K, c, 1.0f, B, C, Kh, K, 1.0f, R, K);               /* + (.. o D) Kh */
            for (int r = 0; r < c; r++)
                for (int i = 0; i < K; i++) {
                    const size_t e = (size_t)r * K + i;
                    const float res = R[e] + lam[r] * X[e] - Qc[e];
                    const float xn = w * (X[e] - tau[r] * res) + (1.0f - w) * Xp[e];
                    Xp[e] = X[e];
                    X[e] = xn;
                }
        }
        /* the mixed query, the readout */
        for (int r = 0; r < c; r++)
            for (int i = 0; i < K; i++) {
                const size_t e = (size_t)r * K + i;
                X[e] = Qc[e] + al[r] * (X[e] - Qc[e]);   /* Qm */
                Xp[e] = eG[r] * X[e];                     /* diag(e^G) Qm */
            }
        float *o = jb->o + t0 * jb->sv;
        GEMM(NO, TR, c, c, K, 1.0f, X, K, Kh, K, 0.0f, B, C);
        for (int r = 0; r < c; r++)
            for (int s = 0; s < c; s++) B[(size_t)r * C + s] *= D[(size_t)r * C + s];
        for (int r = 0; r < c; r++) memset(o + r * jb->sv, 0, sizeof(float) * V);
        GEMM(NO, NO, c, V, K, jb->scale, Xp, K, Uc, V, 0.0f, o, (int)jb->sv);
        GEMM(NO, NO, c, V, c, jb->scale, B, C, Vh, V, 1.0f, o, (int)jb->sv);
        /* the state leaving the chunk */
        for (int r = 0; r < c; r++)
            for (int i = 0; i < K; i++) Y[(size_t)r * K + i] = dl[r] * Kh[(size_t)r * K + i];
        GEMM(TR, NO, K, K, c, 1.0f, Y, K, Kh, K, eG[c - 1], Hc, K);
        GEMM(TR, NO, K, V, c, 1.0f, Y, K, Vh, V, eG[c - 1], Uc, V);
    }
}
#else
size_t linattn_gka_chunk_work(int K, int V, int C)
{
    (void)K; (void)V; (void)C;
    return 0;
}
void linattn_gka_chunk(const linattn_gka_job *jb, int C, float *work)
{
    (void)jb; (void)C; (void)work;
}
#endif
