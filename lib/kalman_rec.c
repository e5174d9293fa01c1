/* linattn - the kalman kernels for the baseline ISA: one lane per "vector",
 * exact division (see kalman_kernel.h). */
#define KALMAN_REC_NAME linattn_kalman_rec_portable
#define KALMAN_SUM_NAME linattn_kalman_sum_portable
#define KF_W 1
#define KF_T float
#define KF_LD(p) (*(p))
#define KF_ST(p, x) (*(p) = (x))
#define KF_SET(x) (x)
#define KF_ADD(a, b) ((a) + (b))
#define KF_MUL(a, b) ((a) * (b))
#define KF_FMA(a, b, c) ((a) * (b) + (c))
#define KF_MAX(a, b) ((a) > (b) ? (a) : (b))
#define KF_RCP(x) (1.0f / (x))
#include "kalman_kernel.h"
