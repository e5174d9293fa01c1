/* linattn - the ela recurrence compiled for neon (see lib/ela_kernel.h). */
#define ELA_KERNEL_NAME linattn_ela_rec_neon
#include "ela_kernel.h"
