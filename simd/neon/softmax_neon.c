/* linattn - softmax attention kernels compiled for neon (see lib/softmax_kernel.h). */
#define SOFTMAX_FWD_NAME linattn_softmax_fwd_neon
#define SOFTMAX_DEC_NAME linattn_softmax_dec_neon
#include "softmax_kernel.h"
