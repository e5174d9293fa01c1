/* linattn - reference delta-rule recurrence (the oracle).
 * Plain C, state and sums in double, written as linattn_gdn(3) states it:
 * decay (per head or per key channel), delta write, read after the write by
 * each query head sharing the state. */
#include <math.h>
#include "internal.h"

size_t linattn_delta_ref_work(int K, int V) { return (size_t)K * V + 2u * V + 3u * K; }

/* x, or x / sqrt(|x|^2 + 1e-6) (flag QKNORM), into y in double */
static void row_in(const float *x, int K, int norm, double *y)
{
    double s = 0.0;
    for (int i = 0; i < K; i++) s += (double)x[i] * x[i];
    const double d = norm ? sqrt(s + LINATTN_QK_NORM_EPS) : 1.0;
    for (int i = 0; i < K; i++) y[i] = x[i] / d;
}

/* The job's whole state (jb->n = V columns, ldS = V), over its tokens. */
void linattn_delta_ref_seq(const linattn_delta_rec_job *jb, int flags, double *work)
{
    const int K = jb->K, V = jb->n;
    double *Sd = work, *kv = work + (size_t)K * V, *u = kv + V, *qt = u + V, *kt = qt + K;
    double *gam = kt + K;
    const int norm = flags & LINATTN_DELTA_QKNORM;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < V; j++) Sd[(size_t)i * V + j] = jb->S[i * jb->ldS + j];

    for (int64_t t = 0; t < jb->T; t++) {
        const float *vt = jb->v + t * jb->sv;
        row_in(jb->k + t * jb->sk, K, norm, kt);
        for (int i = 0; i < K; i++)
            gam[i] = !jb->g ? 1.0 : exp((double)jb->g[t * jb->sg + (jb->gk ? i : 0)]);
        for (int i = 0; i < K; i++)
            for (int j = 0; j < V; j++) Sd[(size_t)i * V + j] *= gam[i];
        if (jb->beta) { /* u = beta (v - S'^T k) */
            for (int j = 0; j < V; j++) kv[j] = 0.0;
            for (int i = 0; i < K; i++)
                for (int j = 0; j < V; j++) kv[j] += Sd[(size_t)i * V + j] * kt[i];
            double b = jb->beta[t * jb->sb];
            if (flags & LINATTN_DELTA_LOGITS) b = 1.0 / (1.0 + exp(-b));
            for (int j = 0; j < V; j++) u[j] = b * (vt[j] - kv[j]);
        } else {
            for (int j = 0; j < V; j++) u[j] = vt[j];
        }
        for (int i = 0; i < K; i++)
            for (int j = 0; j < V; j++) Sd[(size_t)i * V + j] += kt[i] * u[j];
        for (int r = 0; r < jb->nq; r++) {
            row_in(jb->q + t * jb->sq + r * jb->sqh, K, norm, qt);
            for (int j = 0; j < V; j++) kv[j] = 0.0;
            for (int i = 0; i < K; i++)
                for (int j = 0; j < V; j++) kv[j] += Sd[(size_t)i * V + j] * qt[i];
            float *o = jb->o + t * jb->so + r * jb->soh;
            for (int j = 0; j < V; j++) o[j] = (float)(jb->scale * kv[j]);
        }
    }
    for (int i = 0; i < K; i++)
        for (int j = 0; j < V; j++) jb->S[i * jb->ldS + j] = (float)Sd[(size_t)i * V + j];
}
