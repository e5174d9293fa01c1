/* linattn - the feature maps of ela (linattn_ela(3)) in float, shared by
 * the recurrent kernels (compiled per ISA) and the chunk form; exps through
 * ela_exp.h, in loops that vectorise.  x is the
 * scaled query or key (K floats), f receives F floats.  The safe exp form
 * (2.7) shifts by the running key maximum and is written out where used. */
#ifndef LINATTN_ELA_FEATURE_H
#define LINATTN_ELA_FEATURE_H

#include <math.h>
#include "linattn.h"
#include "ela_exp.h"

#if defined(_OPENMP) || defined(LINATTN_OMP_SIMD)
#define ELA_SIMD _Pragma("omp simd")
#else
#define ELA_SIMD
#endif

static inline float ela_sumsq(const float *x, int K)
{
    float s = 0.0f;
    for (int i = 0; i < K; i++) s += x[i] * x[i];
    return s;
}

/* query side phi: key = 0; key side psi: key = 1 */
static inline void ela_map(int feature, int key, int K, float s, const float *x, float *f)
{
    switch (feature) {
    case LINATTN_FEATURE_EXP:
        ELA_SIMD for (int i = 0; i < K; i++) f[i] = ela_expf(s * x[i]);
        break;
    case LINATTN_FEATURE_SQDIST_SUM:
    case LINATTN_FEATURE_SQDIST_SUB: {
        const float m = !key ? 1.0f : feature == LINATTN_FEATURE_SQDIST_SUM ? 2.0f : -2.0f;
        for (int i = 0; i < K; i++) f[i] = s * x[i];
        const float n2 = ela_sumsq(f, K);
        for (int i = 0; i < K; i++) f[i] *= m;
        f[K] = key ? 1.0f : n2;
        f[K + 1] = key ? n2 : 1.0f;
        break;
    }
    case LINATTN_FEATURE_ELU1:
        ELA_SIMD for (int i = 0; i < K; i++) {
            const float a = s * x[i];
            f[i] = a > 0.0f ? a + 1.0f : ela_expf(a);
        }
        break;
    default: /* identity */
        for (int i = 0; i < K; i++) f[i] = s * x[i];
        break;
    }
}

#endif
