/* linattn - the one place that spreads jobs over threads. */
#include "internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int linattn_max_threads(const linattn_ctx *ctx) { return ctx->threads; }

void linattn_parallel_for(const linattn_ctx *ctx, int64_t njobs, linattn_job_fn fn, void *arg)
{
#ifdef _OPENMP
    int nt = ctx->threads;
    if (nt > njobs) nt = (int)njobs;
    if (nt > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int64_t j = 0; j < njobs; j++) fn(arg, j, omp_get_thread_num());
        return;
    }
#else
    (void)ctx;
#endif
    for (int64_t j = 0; j < njobs; j++) fn(arg, j, 0);
}
