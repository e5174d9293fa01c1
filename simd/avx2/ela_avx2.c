/* linattn - the ela recurrence compiled for avx2 (see lib/ela_kernel.h). */
#define ELA_KERNEL_NAME linattn_ela_rec_avx2
#include "ela_kernel.h"
