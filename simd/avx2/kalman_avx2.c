/* linattn - the kalman kernels for AVX2: 8 channels per vector; 1/x is the
 * 12-bit estimate and one Newton step (see lib/kalman_kernel.h). */
#include <immintrin.h>

static inline __m256 kf_rcp(__m256 x)
{
    const __m256 r = _mm256_rcp_ps(x);
    return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(x, r, _mm256_set1_ps(1.0f)), r);
}

#define KALMAN_REC_NAME linattn_kalman_rec_avx2
#define KALMAN_SUM_NAME linattn_kalman_sum_avx2
#define KF_W 8
#define KF_T __m256
#define KF_LD(p) _mm256_loadu_ps(p)
#define KF_ST(p, x) _mm256_storeu_ps((p), (x))
#define KF_SET(x) _mm256_set1_ps(x)
#define KF_ADD(a, b) _mm256_add_ps((a), (b))
#define KF_MUL(a, b) _mm256_mul_ps((a), (b))
#define KF_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define KF_MAX(a, b) _mm256_max_ps((a), (b))
#define KF_RCP(x) kf_rcp(x)
#include "kalman_kernel.h"
