/* linattn - what this build and this machine offer, for tools and users. */
#include <stdio.h>
#include "internal.h"
#ifdef HAVE_CBLAS
#include <cblas.h>
#endif

const char *linattn_blas_info(void)
{
#if defined(HAVE_CBLAS) && defined(HAVE_OPENBLAS_GET_CONFIG)
    static _Thread_local char buf[256];
    const char *core = "?";
#ifdef HAVE_OPENBLAS_GET_CORENAME
    core = openblas_get_corename();
#endif
    snprintf(buf, sizeof buf, "%s; core %s", openblas_get_config(), core);
    return buf;
#elif defined(HAVE_CBLAS)
    return "cblas (not OpenBLAS)";
#else
    return "none (built without BLAS: no chunkwise CPU form)";
#endif
}

int linattn_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int linattn_have_blas(void)
{
#ifdef HAVE_CBLAS
    return 1;
#else
    return 0;
#endif
}

int linattn_blas_serial_begin(int parallel)
{
#if defined(HAVE_CBLAS) && defined(HAVE_OPENBLAS_SET_NUM_THREADS)
    if (parallel) {
        const int n = openblas_get_num_threads();
        openblas_set_num_threads(1);
        return n;
    }
#else
    (void)parallel;
#endif
    return 0;
}

void linattn_blas_serial_end(int saved)
{
#if defined(HAVE_CBLAS) && defined(HAVE_OPENBLAS_SET_NUM_THREADS)
    if (saved > 1) openblas_set_num_threads(saved);
#else
    (void)saved;
#endif
}
