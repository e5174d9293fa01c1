/* linattn - reference delta-rule recurrence (the oracle).
 * Plain C, state and sums in double, written as linattn_gdn(3) states it:
 * decay, delta write, read after the write. */
#include <math.h>
#include "internal.h"

size_t linattn_delta_ref_work(int K, int V) { return (size_t)K * V + 2u * V + 2u * K; }

/* x, or x / sqrt(|x|^2 + 1e-6) (flag QKNORM), into y in double */
static void row_in(const float *x, int K, int norm, double *y)
{
    double s = 0.0;
    for (int i = 0; i < K; i++) s += (double)x[i] * x[i];
    const double d = norm ? sqrt(s + LINATTN_QK_NORM_EPS) : 1.0;
    for (int i = 0; i < K; i++) y[i] = x[i] / d;
}

void linattn_delta_ref_seq(int64_t T, int K, int V, ptrdiff_t sqk, ptrdiff_t sv,
                           ptrdiff_t sg, const float *q, const float *k, const float *v,
                           const float *g, const float *beta, float *o, float *S,
                           float scale, int flags, double *work)
{
    double *Sd = work, *kv = work + (size_t)K * V, *u = kv + V, *qt = u + V, *kt = qt + K;
    const int norm = flags & LINATTN_DELTA_QKNORM;
    for (size_t i = 0; i < (size_t)K * V; i++) Sd[i] = S[i];

    for (int64_t t = 0; t < T; t++) {
        const float *vt = v + t * sv;
        row_in(q + t * sqk, K, norm, qt);
        row_in(k + t * sqk, K, norm, kt);
        const double gamma = g ? exp((double)g[t * sg]) : 1.0;
        for (size_t i = 0; i < (size_t)K * V; i++) Sd[i] *= gamma;
        if (beta) { /* u = beta (v - S'^T k) */
            for (int j = 0; j < V; j++) kv[j] = 0.0;
            for (int i = 0; i < K; i++)
                for (int j = 0; j < V; j++) kv[j] += Sd[(size_t)i * V + j] * kt[i];
            double b = beta[t * sg];
            if (flags & LINATTN_DELTA_LOGITS) b = 1.0 / (1.0 + exp(-b));
            for (int j = 0; j < V; j++) u[j] = b * (vt[j] - kv[j]);
        } else {
            for (int j = 0; j < V; j++) u[j] = vt[j];
        }
        for (int i = 0; i < K; i++)
            for (int j = 0; j < V; j++) Sd[(size_t)i * V + j] += kt[i] * u[j];
        for (int j = 0; j < V; j++) kv[j] = 0.0;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < V; j++) kv[j] += Sd[(size_t)i * V + j] * qt[i];
        for (int j = 0; j < V; j++) o[t * sv + j] = (float)(scale * kv[j]);
    }
    for (size_t i = 0; i < (size_t)K * V; i++) S[i] = (float)Sd[i];
}
