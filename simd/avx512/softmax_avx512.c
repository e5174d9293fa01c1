/* linattn - softmax attention kernels compiled for avx512 (see lib/softmax_kernel.h). */
#define SOFTMAX_FWD_NAME linattn_softmax_fwd_avx512
#define SOFTMAX_DEC_NAME linattn_softmax_dec_avx512
#include "softmax_kernel.h"
