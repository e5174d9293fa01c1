/* linattn - softmax attention kernels compiled for avx2 (see lib/softmax_kernel.h). */
#define SOFTMAX_FWD_NAME linattn_softmax_fwd_avx2
#define SOFTMAX_DEC_NAME linattn_softmax_dec_avx2
#include "softmax_kernel.h"
