/* linattn - the ela recurrence compiled for avx512 (see lib/ela_kernel.h). */
#define ELA_KERNEL_NAME linattn_ela_rec_avx512
#include "ela_kernel.h"
