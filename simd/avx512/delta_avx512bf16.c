/* linattn - the AVX-512 delta-rule kernel once more, built with
 * -mavx512bf16: the decode step stores a bf16 state by vcvtne2ps2bf16
 * (see step_bf16 in delta_avx512.c); chosen at run time where the CPU has
 * AVX512_BF16 (lib/dispatch.c). */
#define LINATTN_AVX512_BF16 1
#define DELTA_AVX512_NAME linattn_delta_rec_avx512bf16
#include "delta_avx512.c"
