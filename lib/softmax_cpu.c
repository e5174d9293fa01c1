/* linattn - softmax attention kernels for the baseline ISA (see softmax_kernel.h). */
#define SOFTMAX_FWD_NAME linattn_softmax_fwd_portable
#define SOFTMAX_DEC_NAME linattn_softmax_dec_portable
#include "softmax_kernel.h"
