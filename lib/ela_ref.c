/* linattn - reference ela (the oracle): double state and sums, written as
 * linattn_ela(3) states it.  The safe exp form keeps S, z
 * shifted by the running key maximum c exactly as the float kernels do, so
 * that the state it returns means the same; the plain form does not shift. */
#include <math.h>
#include "internal.h"

size_t linattn_ela_ref_work(int F, int V)
{
    return (size_t)F * V + 4u * F + (size_t)V;
}

/* phi (key = 0) or psi (key = 1) of x = s q or s k, in double */
static void map(int feature, int key, int K, double s, const float *x, double *f)
{
    double n2 = 0.0;
    for (int i = 0; i < K; i++) n2 += (s * x[i]) * (s * x[i]);
    for (int i = 0; i < K; i++) {
        const double a = s * x[i];
        switch (feature) {
        case LINATTN_FEATURE_EXP: f[i] = exp(a); break;
        case LINATTN_FEATURE_SQDIST_SUM: f[i] = key ? 2.0 * a : a; break;
        case LINATTN_FEATURE_SQDIST_SUB: f[i] = key ? -2.0 * a : a; break;
        case LINATTN_FEATURE_ELU1: f[i] = a > 0.0 ? a + 1.0 : exp(a); break;
        default: f[i] = a; break;
        }
    }
    if (feature == LINATTN_FEATURE_SQDIST_SUM || feature == LINATTN_FEATURE_SQDIST_SUB) {
        f[K] = key ? 1.0 : n2;
        f[K + 1] = key ? n2 : 1.0;
    }
}

void linattn_ela_ref_seq(const linattn_ela_job *jb, double *work)
{
    const int K = jb->K, V = jb->V, F = jb->F;
    const double s = jb->qk_scale;
    double *S = work, *z = S + (size_t)F * V, *c = z + F, *ph = c + F, *ps = ph + F;
    double *o = ps + F;
    for (size_t i = 0; i < (size_t)F * V; i++) S[i] = jb->S[i];
    for (int d = 0; d < F; d++) {
        z[d] = jb->z[d];
        c[d] = jb->safe ? jb->c[d] : 0.0;
    }
    const int64_t T = jb->T;
    for (int64_t u = 0; u < (jb->bidir ? 2 * T : T); u++) {
        const int64_t t = u < T ? u : u - T;
        if (!jb->bidir || u < T) { /* write token t */
            const float *k = jb->k + t * jb->sqk, *v = jb->v + t * jb->sv;
            if (jb->safe)
                for (int d = 0; d < F; d++) {
                    const double b = s * k[d];
                    if (b > c[d]) {
                        const double r = exp(c[d] - b);
                        for (int j = 0; j < V; j++) S[(size_t)d * V + j] *= r;
                        z[d] *= r;
                        c[d] = b;
                    }
                    ps[d] = exp(b - c[d]);
                }
            else
                map(jb->feature, 1, K, s, k, ps);
            for (int d = 0; d < F; d++) {
                for (int j = 0; j < V; j++) S[(size_t)d * V + j] += ps[d] * v[j];
                z[d] += ps[d];
            }
        }
        if (!jb->bidir || u >= T) { /* token t reads */
            const float *q = jb->q + t * jb->sqk;
            if (jb->safe) {
                double M = -INFINITY;
                for (int d = 0; d < F; d++) M = fmax(M, s * q[d] + c[d]);
                for (int d = 0; d < F; d++) ph[d] = exp(s * q[d] + c[d] - M);
            } else {
                map(jb->feature, 0, K, s, q, ph);
            }
            double den = 0.0;
            for (int j = 0; j < V; j++) o[j] = 0.0;
            for (int d = 0; d < F; d++) {
                for (int j = 0; j < V; j++) o[j] += ph[d] * S[(size_t)d * V + j];
                den += ph[d] * z[d];
            }
            den = fmax(den, (double)LINATTN_ELA_EPS);
            for (int j = 0; j < V; j++) jb->o[t * jb->sv + j] = (float)(o[j] / den);
        }
    }
    for (size_t i = 0; i < (size_t)F * V; i++) jb->S[i] = (float)S[i];
    for (int d = 0; d < F; d++) {
        jb->z[d] = (float)z[d];
        if (jb->safe) jb->c[d] = (float)c[d];
    }
}
