/* linattn - chunkwise ela (linattn_ela(3), IMPLEMENTATION) for one (sequence, head).
 * With Phi, Psi [c,F] the features of a chunk's c rows, V_c its values,
 * M the lower triangle (diagonal included) and (S, z) the state entering it:
 *   A = (Phi Psi^T) o M,  Y = (Phi S + A V_c) / max(Phi z + A 1, 1e-8)
 *   S += Psi^T V_c,  z += Psi^T 1
 * Safe exp: before the chunk c_d rises to the chunk's largest key (S, z
 * rescaled), then Psi = e^(b - c) and Phi_r = e^(a_r + c - M_r) for all rows.
 * Bidirectional: every chunk is written first, then every chunk reads
 * Y = Phi S / max(Phi z, 1e-8).  The products go through cblas where the
 * build has it, else through the plain C loops below. */
#include <math.h>
#include <string.h>
#include "internal.h"
#include "ela_feature.h"

#ifdef HAVE_CBLAS
#include <cblas.h>
#endif

size_t linattn_ela_chunk_work(int F, int V, int C)
{
    (void)V;
    return 2u * (size_t)C * F + (size_t)C * C + (size_t)C;
}

/* C = A B + beta C (row-major; A [m,k], B [k,n]) */
static void mm(int m, int n, int k, const float *A, int lda, const float *B, int ldb, float beta,
               float *Cm, int ldc)
{
#ifdef HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, A, lda, B, ldb, beta,
                Cm, ldc);
#else
    for (int i = 0; i < m; i++) {
        float *c = Cm + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * n);
        for (int p = 0; p < k; p++) {
            const float a = A[(size_t)i * lda + p];
            const float *b = B + (size_t)p * ldb;
            ELA_SIMD for (int j = 0; j < n; j++) c[j] += a * b[j];
        }
    }
#endif
}

/* C = A^T B + C (A [k,m], B [k,n]) */
static void mtm(int m, int n, int k, const float *A, int lda, const float *B, int ldb, float *Cm,
                int ldc)
{
#ifdef HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0f, A, lda, B, ldb, 1.0f, Cm,
                ldc);
#else
    for (int p = 0; p < k; p++) {
        const float *b = B + (size_t)p * ldb;
        for (int i = 0; i < m; i++) {
            const float a = A[(size_t)p * lda + i];
            float *c = Cm + (size_t)i * ldc;
            ELA_SIMD for (int j = 0; j < n; j++) c[j] += a * b[j];
        }
    }
#endif
}

/* C = A B^T (A [m,k], B [n,k]), C overwritten */
static void mmt(int m, int n, int k, const float *A, int lda, const float *B, int ldb, float *Cm,
                int ldc)
{
#ifdef HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, Cm,
                ldc);
#else
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            const float *a = A + (size_t)i * lda, *b = B + (size_t)j * ldb;
            float acc = 0.0f;
            for (int p = 0; p < k; p++) acc += a[p] * b[p];
            Cm[(size_t)i * ldc + j] = acc;
        }
#endif
}

/* Key features of rows [t0, t0+c) into Psi; the safe form first raises c
 * to the chunk's maximum and rescales the state. */
static void key_features(const linattn_ela_job *jb, int64_t t0, int c, float *Psi)
{
    const int K = jb->K, V = jb->V, F = jb->F;
    const float s = jb->qk_scale;
    if (!jb->safe) {
        for (int r = 0; r < c; r++)
            ela_map(jb->feature, 1, K, s, jb->k + (t0 + r) * jb->sqk, Psi + (size_t)r * F);
        return;
    }
    for (int d = 0; d < F; d++) {
        float m = jb->c[d];
        for (int r = 0; r < c; r++) {
            const float b = s * jb->k[(t0 + r) * jb->sqk + d];
            m = b > m ? b : m;
        }
        if (m > jb->c[d]) {
            const float sc = ela_expf(jb->c[d] - m);
            float *row = jb->S + (size_t)d * V;
            ELA_SIMD for (int j = 0; j < V; j++) row[j] *= sc;
            jb->z[d] *= sc;
            jb->c[d] = m;
        }
    }
    for (int r = 0; r < c; r++) {
        const float *k = jb->k + (t0 + r) * jb->sqk, *cd = jb->c;
        float *psi = Psi + (size_t)r * F;
        ELA_SIMD for (int d = 0; d < F; d++) psi[d] = ela_expf(s * k[d] - cd[d]);
    }
}

static void query_features(const linattn_ela_job *jb, int64_t t0, int c, float *Phi)
{
    const int F = jb->F;
    const float s = jb->qk_scale;
    for (int r = 0; r < c; r++) {
        const float *q = jb->q + (t0 + r) * jb->sqk;
        float *ph = Phi + (size_t)r * F;
        if (!jb->safe) {
            ela_map(jb->feature, 0, jb->K, s, q, ph);
            continue;
        }
        float M = -INFINITY;
        for (int d = 0; d < F; d++) {
            ph[d] = s * q[d] + jb->c[d];
            M = ph[d] > M ? ph[d] : M;
        }
        ELA_SIMD for (int d = 0; d < F; d++) ph[d] = ela_expf(ph[d] - M);
    }
}

/* S += Psi^T V_c, z += Psi^T 1 */
static void write_state(const linattn_ela_job *jb, int64_t t0, int c, const float *Psi)
{
    const int F = jb->F, V = jb->V;
    mtm(F, V, c, Psi, F, jb->v + t0 * jb->sv, (int)jb->sv, jb->S, V);
    for (int r = 0; r < c; r++) {
        const float *p = Psi + (size_t)r * F;
        ELA_SIMD for (int d = 0; d < F; d++) jb->z[d] += p[d];
    }
}

void linattn_ela_chunk(const linattn_ela_job *jb, int C, float *work)
{
    const int F = jb->F, V = jb->V;
    float *Phi = work, *Psi = Phi + (size_t)C * F, *A = Psi + (size_t)C * F;
    float *den = A + (size_t)C * C;
    for (int pass = 0; pass < (jb->bidir ? 2 : 1); pass++)
        for (int64_t t0 = 0; t0 < jb->T; t0 += C) {
            const int c = (int)(jb->T - t0 < C ? jb->T - t0 : C);
            const int write = pass == 0, read = !jb->bidir || pass == 1;
            if (write) key_features(jb, t0, c, Psi);
            float *o = jb->o + t0 * jb->sv;
            if (read) {
                query_features(jb, t0, c, Phi);
                for (int r = 0; r < c; r++) {
                    const float *ph = Phi + (size_t)r * F;
                    float d = 0.0f;
                    for (int f = 0; f < F; f++) d += ph[f] * jb->z[f];
                    den[r] = d;
                }
                mm(c, V, F, Phi, F, jb->S, V, 0.0f, o, (int)jb->sv);         /* Phi S */
                if (!jb->bidir) {
                    mmt(c, c, F, Phi, F, Psi, F, A, C);                         /* Phi Psi^T */
                    for (int r = 0; r < c; r++) {
                        float *a = A + (size_t)r * C, d = 0.0f;
                        for (int s = 0; s <= r; s++) d += a[s];
                        for (int s = r + 1; s < c; s++) a[s] = 0.0f;
                        den[r] += d;
                    }
                    mm(c, V, c, A, C, jb->v + t0 * jb->sv, (int)jb->sv, 1.0f, o, (int)jb->sv);
                }
                for (int r = 0; r < c; r++) {
                    const float d = den[r] > LINATTN_ELA_EPS ? den[r] : LINATTN_ELA_EPS;
                    float *y = o + r * jb->sv;
                    for (int j = 0; j < V; j++) y[j] /= d;
                }
            }
            if (write) write_state(jb, t0, c, Psi);
        }
}
