/* linattn - the gka recurrence compiled for neon (see lib/gka_kernel.h). */
#define GKA_KERNEL_NAME linattn_gka_rec_neon
#include "gka_kernel.h"
