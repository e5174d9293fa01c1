/* linattn - the kalman kernels for NEON (AArch64): 4 channels per vector;
 * 1/x is the 8-bit estimate and two Newton steps (see lib/kalman_kernel.h). */
#include <arm_neon.h>

static inline float32x4_t kf_rcp(float32x4_t x)
{
    float32x4_t r = vrecpeq_f32(x);
    r = vmulq_f32(r, vrecpsq_f32(x, r));
    return vmulq_f32(r, vrecpsq_f32(x, r));
}

#define KALMAN_REC_NAME linattn_kalman_rec_neon
#define KALMAN_SUM_NAME linattn_kalman_sum_neon
#define KF_W 4
#define KF_T float32x4_t
#define KF_LD(p) vld1q_f32(p)
#define KF_ST(p, x) vst1q_f32((p), (x))
#define KF_SET(x) vdupq_n_f32(x)
#define KF_ADD(a, b) vaddq_f32((a), (b))
#define KF_MUL(a, b) vmulq_f32((a), (b))
#define KF_FMA(a, b, c) vfmaq_f32((c), (a), (b))
#define KF_MAX(a, b) vmaxq_f32((a), (b))
#define KF_RCP(x) kf_rcp(x)
#include "kalman_kernel.h"
