/* linattn - the gka recurrence compiled for avx2 (see lib/gka_kernel.h). */
#define GKA_KERNEL_NAME linattn_gka_rec_avx2
#include "gka_kernel.h"
