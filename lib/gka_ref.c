/* linattn - reference gka recurrence (the oracle): double state and sums,
 * written as linattn_gka(3) states it. */
#include <math.h>
#include "internal.h"

size_t linattn_gka_ref_work(int K, int V)
{
    return (size_t)K * K + (size_t)K * V + 5u * K + (size_t)V;
}

void linattn_gka_ref_seq(const linattn_gka_job *jb, double *work)
{
    const int K = jb->K, V = jb->V;
    const size_t KK = (size_t)K * K, KV = (size_t)K * V;
    double *H = work, *U = H + KK, *kh = U + KV, *x = kh + K, *xp = x + K, *xn = xp + K;
    double *r = xn + K, *o = r + K;
    const double a = jb->ridge;
    for (size_t i = 0; i < KK; i++) H[i] = jb->Hs[i];
    for (size_t i = 0; i < KV; i++) U[i] = jb->Us[i];
    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * jb->sqk, *k = jb->k + t * jb->sqk, *v = jb->v + t * jb->sv;
        const double beta = jb->beta ? jb->beta[t * jb->sg] : 1.0;
        const double gam = jb->g ? exp((double)jb->g[t * jb->sg]) : 1.0;
        const double alpha = jb->alpha ? jb->alpha[t * jb->sg] : 1.0;
        for (int i = 0; i < K; i++) kh[i] = beta * k[i];
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) H[(size_t)i * K + j] = gam * H[(size_t)i * K + j] + kh[i] * kh[j];
        for (int i = 0; i < K; i++)
            for (int j = 0; j < V; j++)
                U[(size_t)i * V + j] = gam * U[(size_t)i * V + j] + kh[i] * (beta * v[j]);
        double f = 0.0;
        for (size_t i = 0; i < KK; i++) f += H[i] * H[i];
        f = sqrt(f);
        if (f < 1e-30) {
            for (int i = 0; i < K; i++) x[i] = 0.0;
        } else {
            const double lam = a * f, tau = 2.0 / ((1.0 + 2.0 * a) * f);
            const double rho = 1.0 / (1.0 + 2.0 * a);
            double w = 2.0;
            for (int i = 0; i < K; i++) {
                xp[i] = 0.0;
                x[i] = tau * q[i];
            }
            for (int n = 0; n < jb->iters; n++) {
                w = 1.0 / (1.0 - rho * rho / 4.0 * w);
                for (int i = 0; i < K; i++) {
                    double s = lam * x[i] - q[i];
                    for (int j = 0; j < K; j++) s += H[(size_t)i * K + j] * x[j];
                    r[i] = s;
                }
                for (int i = 0; i < K; i++) xn[i] = w * (x[i] - tau * r[i]) + (1.0 - w) * xp[i];
                for (int i = 0; i < K; i++) {
                    xp[i] = x[i];
                    x[i] = xn[i];
                }
            }
        }
        for (int j = 0; j < V; j++) o[j] = 0.0;
        for (int i = 0; i < K; i++) {
            const double qt = (1.0 - alpha) * q[i] + alpha * x[i];
            for (int j = 0; j < V; j++) o[j] += qt * U[(size_t)i * V + j];
        }
        for (int j = 0; j < V; j++) jb->o[t * jb->sv + j] = (float)(jb->scale * o[j]);
    }
    for (size_t i = 0; i < KK; i++) jb->Hs[i] = (float)H[i];
    for (size_t i = 0; i < KV; i++) jb->Us[i] = (float)U[i];
}
