/* linattn - the scalar kernels: the portable C ones, compiled for the
 * baseline ISA, that fill every slot of the kernel table before an ISA
 * overrides the slots it has (dispatch.c).  The token-recurrent delta
 * kernel is written out in delta_rec.c; the others are the generic bodies
 * of *_kernel.h, compiled here. */
#include "internal.h"

#define GKA_KERNEL_NAME linattn_gka_rec_scalar
#include "gka_kernel.h"

#define ELA_KERNEL_NAME linattn_ela_rec_scalar
#include "ela_kernel.h"

#define SOFTMAX_FWD_NAME linattn_softmax_fwd_scalar
#define SOFTMAX_DEC_NAME linattn_softmax_dec_scalar
#include "softmax_kernel.h"

/* kalman: one lane per "vector", exact division */
#define KALMAN_REC_NAME linattn_kalman_rec_scalar
#define KALMAN_SUM_NAME linattn_kalman_sum_scalar
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

void linattn_register_scalar(linattn_kernels *k)
{
    k->isa = "scalar";
    k->simd = 0;
    k->delta_rec = linattn_delta_rec_scalar;
    k->gka_rec = linattn_gka_rec_scalar;
    k->kalman_rec = linattn_kalman_rec_scalar;
    k->kalman_sum = linattn_kalman_sum_scalar;
    k->ela_rec = linattn_ela_rec_scalar;
    k->softmax_fwd = linattn_softmax_fwd_scalar;
    k->softmax_dec = linattn_softmax_dec_scalar;
    k->f16_in = linattn_f16_in_scalar;
    k->bf16_in = linattn_bf16_in_scalar;
    k->f16_out = linattn_f16_out_scalar;
    k->bf16_out = linattn_bf16_out_scalar;
}
