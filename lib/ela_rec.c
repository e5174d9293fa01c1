/* linattn - the ela recurrence for the baseline ISA (see ela_kernel.h). */
#define ELA_KERNEL_NAME linattn_ela_rec_portable
#include "ela_kernel.h"
