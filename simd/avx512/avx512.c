/* linattn - the avx512 kernel table: the hand-written kernels of this
 * directory (delta_avx512.c, kalman_avx512.c) and the generic bodies of
 * lib/<op>_kernel.h (gka, ela, softmax) compiled here with this ISA's flags
 * (-mavx512f/vl/bw/dq -mfma), which the compiler vectorises for it. */
#include "internal.h"

#define GKA_KERNEL_NAME linattn_gka_rec_avx512
#include "gka_kernel.h"

#define ELA_KERNEL_NAME linattn_ela_rec_avx512
#include "ela_kernel.h"

#define SOFTMAX_FWD_NAME linattn_softmax_fwd_avx512
#define SOFTMAX_DEC_NAME linattn_softmax_dec_avx512
#include "softmax_kernel.h"

void linattn_register_avx512(linattn_kernels *k)
{
    k->isa = "avx512";
    k->simd = 1;
    k->delta_rec = linattn_delta_rec_avx512;
    k->gka_rec = linattn_gka_rec_avx512;
    k->kalman_rec = linattn_kalman_rec_avx512;
    k->kalman_sum = linattn_kalman_sum_avx512;
    k->ela_rec = linattn_ela_rec_avx512;
    k->softmax_fwd = linattn_softmax_fwd_avx512;
    k->softmax_dec = linattn_softmax_dec_avx512;
    k->f16_in = linattn_f16_in_avx512;
    k->bf16_in = linattn_bf16_in_avx512;
    k->f16_out = linattn_f16_out_avx512;
    k->bf16_out = linattn_bf16_out_avx512;
}
