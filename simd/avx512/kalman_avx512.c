/* linattn - the kalman kernels for AVX-512: 16 channels per vector; 1/x is
 * the 14-bit estimate and one Newton step (see lib/kalman_kernel.h). */
#include <immintrin.h>

static inline __m512 kf_rcp(__m512 x)
{
    const __m512 r = _mm512_rcp14_ps(x);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(1.0f)), r);
}

#define KALMAN_REC_NAME linattn_kalman_rec_avx512
#define KALMAN_SUM_NAME linattn_kalman_sum_avx512
#define KF_W 16
#define KF_T __m512
#define KF_LD(p) _mm512_loadu_ps(p)
#define KF_ST(p, x) _mm512_storeu_ps((p), (x))
#define KF_SET(x) _mm512_set1_ps(x)
#define KF_ADD(a, b) _mm512_add_ps((a), (b))
#define KF_MUL(a, b) _mm512_mul_ps((a), (b))
#define KF_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define KF_MAX(a, b) _mm512_max_ps((a), (b))
#define KF_RCP(x) kf_rcp(x)
#include "kalman_kernel.h"
