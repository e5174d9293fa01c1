/* linattn - chunkwise delta-rule form (the math is in linattn_gdn(3)).
 *
 * One job = one (sequence, head, block of n value columns).  Inside a chunk
 * of c <= C tokens the c rank-1 writes become one block write (WY form):
 *   A = strict_lower(diag(beta) K K^T o D),  (I + A) [W | U] = diag(beta) [diag(e^G) K | V]
 *   U' = U - W S,  O = scale (diag(e^G) Q S + (Q K^T o D) U'),
 *   S  = e^{G_c} S + (diag(e^{G_c - G}) K)^T U'.
 * gla drops A and W (U' = V).  Products go through cblas. */
#include <math.h>
#include <string.h>
#include "internal.h"

#ifdef HAVE_CBLAS
#include <cblas.h>

size_t linattn_delta_chunk_work(int K, int n, int C)
{
    return 3u * C + 3u * (size_t)C * K + 2u * (size_t)C * C + (size_t)C * n;
}

/* Gather c rows of width w from a strided source into a dense [c, w] array. */
static void gather(float *dst, const float *src, ptrdiff_t stride, int c, int w)
{
    for (int r = 0; r < c; r++) memcpy(dst + (size_t)r * w, src + r * stride, sizeof(float) * w);
}

void linattn_delta_chunk(const linattn_delta_rec_job *jb, int C, float *work)
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
        gather(Qc, q, jb->sq, c, K);
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

        /* M = (Q K^T) o D, lower triangle with diagonal */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, c, K, 1.0f, Qc, K, Kc, K, 0.0f,
                    M, C);
        for (int r = 0; r < c; r++) {
            for (int s = 0; s < r; s++) M[(size_t)r * C + s] *= expf(G[r] - G[s]);
            for (int s = r + 1; s < c; s++) M[(size_t)r * C + s] = 0.0f;
            for (int i = 0; i < K; i++) Qc[(size_t)r * K + i] *= eG[r];
        }
        /* O = scale (diag(e^G) Q S + M U') */
        for (int r = 0; r < c; r++) memset(o + r * jb->so, 0, sizeof(float) * n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, K, jb->scale, Qc, K, jb->S,
                    jb->ldS, 0.0f, o, jb->so);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, c, jb->scale, M, C, U, n,
                    1.0f, o, jb->so);
        /* S = e^{G_c} S + (diag(e^{G_c - G}) K)^T U' */
        for (int r = 0; r < c; r++)
            for (int i = 0; i < K; i++) Kc[(size_t)r * K + i] *= eGl[r];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, n, c, 1.0f, Kc, K, U, n,
                    eG[c - 1], jb->S, jb->ldS);
    }
}
#else
size_t linattn_delta_chunk_work(int K, int n, int C)
{
    (void)K; (void)n; (void)C;
    return 0;
}
void linattn_delta_chunk(const linattn_delta_rec_job *jb, int C, float *work)
{
    (void)jb; (void)C; (void)work;
}
#endif
