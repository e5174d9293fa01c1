/* linattn - the avx2 kernel table: the hand-written kernels of this
 * directory (delta_avx2.c, kalman_avx2.c) and the generic bodies of
 * lib/<op>_kernel.h (gka, ela, softmax) compiled here with this ISA's flags
 * (-mavx2 -mfma), which the compiler vectorises for it. */
#include "internal.h"

#define GKA_KERNEL_NAME linattn_gka_rec_avx2
#include "gka_kernel.h"

#define ELA_KERNEL_NAME linattn_ela_rec_avx2
#include "ela_kernel.h"

#define SOFTMAX_FWD_NAME linattn_softmax_fwd_avx2
#define SOFTMAX_DEC_NAME linattn_softmax_dec_avx2
#include "softmax_kernel.h"

void linattn_register_avx2(linattn_kernels *k)
{
    k->isa = "avx2";
    k->simd = 1;
    k->delta_rec = linattn_delta_rec_avx2;
    k->gka_rec = linattn_gka_rec_avx2;
    k->kalman_rec = linattn_kalman_rec_avx2;
    k->kalman_sum = linattn_kalman_sum_avx2;
    k->ela_rec = linattn_ela_rec_avx2;
    k->softmax_fwd = linattn_softmax_fwd_avx2;
    k->softmax_dec = linattn_softmax_dec_avx2;
    k->f16_in = linattn_f16_in_avx2;
    k->bf16_in = linattn_bf16_in_avx2;
    k->f16_out = linattn_f16_out_avx2;
    k->bf16_out = linattn_bf16_out_avx2;
}
