/* linattn - the one place that spreads jobs over threads.  Every job runs
 * with subnormal floats flushed to zero (x86 FTZ and DAZ, ARM FZ) and the
 * caller's mode restored after it: a state decaying through the subnormal
 * range (a decode step's directions no key refreshes) would otherwise run
 * the kernels many times slower (linattn(3), Conventions). */
#include "internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define FLUSH_BEGIN() const unsigned csr_ = _mm_getcsr(); _mm_setcsr(csr_ | 0x8040u)
#define FLUSH_END() _mm_setcsr(csr_)
#elif defined(__aarch64__)
static inline unsigned long fpcr_get(void)
{
    unsigned long x;
    __asm__ volatile("mrs %0, fpcr" : "=r"(x));
    return x;
}
static inline void fpcr_set(unsigned long x) { __asm__ volatile("msr fpcr, %0" : : "r"(x)); }
#define FLUSH_BEGIN() const unsigned long fpcr_ = fpcr_get(); fpcr_set(fpcr_ | (1ul << 24))
#define FLUSH_END() fpcr_set(fpcr_)
#else
#define FLUSH_BEGIN() (void)0
#define FLUSH_END() (void)0
#endif

static void run_one(linattn_job_fn fn, void *arg, int64_t j, int thread)
{
    FLUSH_BEGIN();
    fn(arg, j, thread);
    FLUSH_END();
}

int linattn_max_threads(const linattn_ctx *ctx) { return ctx->threads; }

void linattn_parallel_for(const linattn_ctx *ctx, int64_t njobs, linattn_job_fn fn, void *arg)
{
#ifdef _OPENMP
    int nt = ctx->threads;
    if (nt > njobs) nt = (int)njobs;
    if (nt > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int64_t j = 0; j < njobs; j++) run_one(fn, arg, j, omp_get_thread_num());
        return;
    }
#else
    (void)ctx;
#endif
    for (int64_t j = 0; j < njobs; j++) run_one(fn, arg, j, 0);
}
