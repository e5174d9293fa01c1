/* linattn - the neon kernel table: only the hand-written kernels of this
 * directory (delta_neon.c, kalman_neon.c).  Advanced SIMD is the AArch64
 * baseline and this directory gets no extra -m flags, so the generic
 * bodies of lib/<op>_kernel.h (gka, ela, softmax) compiled here would be the
 * scalar ones, instruction for instruction: those slots keep the scalar
 * kernels. */
#include "internal.h"

void linattn_register_neon(linattn_kernels *k)
{
    k->isa = "neon";
    k->simd = 1;
    k->delta_rec = linattn_delta_rec_neon;
    k->kalman_rec = linattn_kalman_rec_neon;
    k->kalman_sum = linattn_kalman_sum_neon;
    k->f16_in = linattn_f16_in_neon;
    k->bf16_in = linattn_bf16_in_neon;
    k->f16_out = linattn_f16_out_neon;
    k->bf16_out = linattn_bf16_out_neon;
}
