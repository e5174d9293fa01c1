/* linattn - the gka recurrence for the baseline ISA (see gka_kernel.h). */
#define GKA_KERNEL_NAME linattn_gka_rec_portable
#include "gka_kernel.h"
