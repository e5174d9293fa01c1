/* linattn - the gka recurrence in float (linattn_gka(3)), as a
 * function body compiled once per ISA: lib/scalar.c (scalar) and
 * simd/<isa>/<isa>.c include this file with GKA_KERNEL_NAME set and
 * their own -m flags, and the compiler vectorises the loops.  Every loop
 * is an axpy over contiguous floats (no reassociated reduction), so the
 * result is the same for every ISA up to FMA contraction.
 *
 * Per token: kh = beta k, vh = beta v, gamma = exp(g)
 *   H = gamma H + kh kh^T,  U = gamma U + kh vh^T,  f = |H|_F
 *   Chebyshev on (H + a f I) x = q: lambda = a f, tau = 2 / ((1 + 2a) f),
 *     x(-1) = 0, x(0) = tau q, x(n) = w_n (x - tau (H x + lambda x - q)) + (1 - w_n) x(n-2)
 *   o = scale U^T ((1 - alpha) q + alpha x)                               */
#include <math.h>
#include "kernels.h"

/* The loops are vectorised on request (-fopenmp-simd, no runtime needed):
 * their trip counts are only known at run time, which GCC's default cost
 * model at -O2 refuses to vectorise.  Without the flag the pragmas are
 * skipped and the loops stay correct. */
#if defined(_OPENMP) || defined(LINATTN_OMP_SIMD)
#define GKA_SIMD _Pragma("omp simd")
#else
#define GKA_SIMD
#endif

#ifndef GKA_KERNEL_NAME
#error "define GKA_KERNEL_NAME before including gka_kernel.h"
#endif

/* sum of squares in 16 independent partial sums (vectorisable, fixed order) */
static float gka_sumsq(const float *a, size_t n)
{
    float p[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        GKA_SIMD for (int l = 0; l < 16; l++) p[l] += a[i + l] * a[i + l];
    for (int l = 0; i < n; i++, l++) p[l] += a[i] * a[i];
    float s = 0.0f;
    for (int l = 0; l < 16; l++) s += p[l];
    return s;
}

void GKA_KERNEL_NAME(const linattn_gka_job *jb)
{
    const int K = jb->K, V = jb->V;
    /* work: kh [K], x [K], xp [K], then r [K] (Chebyshev) or vh [V] (write) */
    float *kh = jb->work, *x = kh + K, *xp = x + K, *r = jb->work + 3 * K, *vh = r;
    float *Hs = jb->Hs, *Us = jb->Us;
    const float a = jb->ridge;
    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * jb->sqk, *k = jb->k + t * jb->sqk, *v = jb->v + t * jb->sv;
        const float beta = jb->beta ? jb->beta[t * jb->sg] : 1.0f;
        const float gam = jb->g ? expf(jb->g[t * jb->sg]) : 1.0f;
        const float alpha = jb->alpha ? jb->alpha[t * jb->sg] : 1.0f;
        for (int i = 0; i < K; i++) kh[i] = beta * k[i];
        for (int i = 0; i < K; i++) {
            float *h = Hs + (size_t)i * K;
            const float c = kh[i];
            GKA_SIMD for (int j = 0; j < K; j++) h[j] = gam * h[j] + c * kh[j];
        }
        for (int j = 0; j < V; j++) vh[j] = beta * v[j];
        for (int i = 0; i < K; i++) {
            float *u = Us + (size_t)i * V;
            const float c = kh[i];
            GKA_SIMD for (int j = 0; j < V; j++) u[j] = gam * u[j] + c * vh[j];
        }
        const float f = sqrtf(gka_sumsq(Hs, (size_t)K * K));
        if (f < 1e-30f) {
            for (int i = 0; i < K; i++) x[i] = 0.0f;
        } else {
            const float lam = a * f, tau = 2.0f / ((1.0f + 2.0f * a) * f);
            for (int i = 0; i < K; i++) {
                xp[i] = 0.0f;
                x[i] = tau * q[i];
            }
            for (int n = 0; n < jb->iters; n++) {
                const float w = jb->omega[n];
                GKA_SIMD for (int i = 0; i < K; i++) r[i] = lam * x[i] - q[i];
                for (int j = 0; j < K; j++) { /* r += H x, H symmetric: rows as columns */
                    const float *h = Hs + (size_t)j * K;
                    const float c = x[j];
                    GKA_SIMD for (int i = 0; i < K; i++) r[i] += c * h[i];
                }
                GKA_SIMD for (int i = 0; i < K; i++)
                    xp[i] = w * (x[i] - tau * r[i]) + (1.0f - w) * xp[i];
                float *tmp = x; x = xp; xp = tmp;
            }
        }
        /* q~ into xp (free now), then o = scale U^T q~ */
        for (int i = 0; i < K; i++) xp[i] = (1.0f - alpha) * q[i] + alpha * x[i];
        float *o = jb->o + t * jb->sv;
        for (int j = 0; j < V; j++) o[j] = 0.0f;
        for (int i = 0; i < K; i++) {
            const float *u = Us + (size_t)i * V;
            const float c = xp[i];
            GKA_SIMD for (int j = 0; j < V; j++) o[j] += c * u[j];
        }
        for (int j = 0; j < V; j++) o[j] *= jb->scale;
    }
}
