/* linattn - the kalman filter in double (linattn_kalman(3)): the oracle
 * the float kernels are tested against.  Same job as the kernels, same
 * floors (see kernels.h); every lane is carried in double for the whole
 * job and the outputs are rounded once. */
#include "internal.h"

#define EPS 1e-12

size_t linattn_kalman_ref_work(int S)
{
    return 2u * (size_t)S * LINATTN_KALMAN_BLOCK;
}

void linattn_kalman_ref(const linattn_kalman_job *jb, double *work)
{
    const int S = jb->S, n = jb->n;
    const size_t lanes = (size_t)n * S;
    double *lam = work, *eta = work + lanes;
    for (size_t i = 0; i < lanes; i++) {
        lam[i] = jb->lam_in ? jb->lam_in[i] : 1.0;
        eta[i] = jb->eta_in ? jb->eta_in[i] : 0.0;
    }
    for (int64_t t = 0; t < jb->T; t++) {
        const float *k = jb->k + t * S, *q = jb->q + t * S;
        for (int c = 0; c < n; c++) {
            const double lv = jb->lv[t * jb->sm + c], v = jb->v[t * jb->sm + c];
            double y = 0.0, yv = 0.0;
            for (int s = 0; s < S; s++) {
                const size_t i = (size_t)c * S + s;
                const double a = jb->a[i], a2 = a * a > EPS ? a * a : EPS;
                const double p = jb->p[i] > EPS ? jb->p[i] : EPS;
                const double ks = k[s], den = a2 + p * lam[i];
                lam[i] = lam[i] / den + lv * ks * ks;
                eta[i] = a / den * eta[i] + lv * v * ks;
                const double r = 1.0 / (lam[i] > EPS ? lam[i] : EPS);
                y += (double)q[s] * eta[i] * r;
                yv += (double)q[s] * q[s] * r;
            }
            jb->y[t * jb->sm + c] = (float)y;
            if (jb->yvar) jb->yvar[t * jb->sm + c] = (float)yv;
        }
    }
    for (size_t i = 0; i < lanes; i++) {
        jb->lam[i] = (float)lam[i];
        jb->eta[i] = (float)eta[i];
    }
}
