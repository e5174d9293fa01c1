/* linattn - what this build and this machine offer, for tools and users. */
#include <stdio.h>
#include <string.h>
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

size_t linattn_struct_size(const char *name)
{
    static const struct {
        const char *name;
        size_t size;
    } tab[] = {
        {"linattn_config", sizeof(linattn_config)},
        {"linattn_tensor", sizeof(linattn_tensor)},
        {"linattn_device_info", sizeof(linattn_device_info)},
        {"linattn_delta_opts", sizeof(linattn_delta_opts)},
        {"linattn_delta_io", sizeof(linattn_delta_io)},
        {"linattn_delta_step_io", sizeof(linattn_delta_step_io)},
        {"linattn_segment", sizeof(linattn_segment)},
        {"linattn_segment_apply_io", sizeof(linattn_segment_apply_io)},
        {"linattn_la_attrs", sizeof(linattn_la_attrs)},
        {"linattn_la_io", sizeof(linattn_la_io)},
        {"linattn_gka_opts", sizeof(linattn_gka_opts)},
        {"linattn_gka_io", sizeof(linattn_gka_io)},
        {"linattn_gka_step_io", sizeof(linattn_gka_step_io)},
        {"linattn_kalman_opts", sizeof(linattn_kalman_opts)},
        {"linattn_kalman_io", sizeof(linattn_kalman_io)},
        {"linattn_kalman_step_io", sizeof(linattn_kalman_step_io)},
        {"linattn_ela_opts", sizeof(linattn_ela_opts)},
        {"linattn_ela_io", sizeof(linattn_ela_io)},
        {"linattn_ela_step_io", sizeof(linattn_ela_step_io)},
        {"linattn_softmax_opts", sizeof(linattn_softmax_opts)},
        {"linattn_softmax_io", sizeof(linattn_softmax_io)},
        {"linattn_softmax_step_io", sizeof(linattn_softmax_step_io)},
        {"linattn_op_tensor", sizeof(linattn_op_tensor)},
        {"linattn_op_option", sizeof(linattn_op_option)},
        {"linattn_op_info", sizeof(linattn_op_info)},
        {"linattn_op_args", sizeof(linattn_op_args)},
        {"linattn_array", sizeof(linattn_array)},
    };
    if (!name) return 0;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(tab[i].name, name)) return tab[i].size;
    return 0;
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

/* openblas_set_num_threads is process-wide, and contexts may be shared by
 * threads: calls that overlap must not each save and restore it (one could
 * save another's 1 and restore it last, or restore N while another call's
 * parallel region still runs, multiplying the threads).  The first call in
 * sets one thread and keeps the count it found; the last call out restores it. */
#if defined(HAVE_CBLAS) && defined(HAVE_OPENBLAS_SET_NUM_THREADS)
#include <pthread.h>
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_users, blas_saved;
#endif

int linattn_blas_serial_begin(int parallel)
{
#if defined(HAVE_CBLAS) && defined(HAVE_OPENBLAS_SET_NUM_THREADS)
    if (parallel) {
        pthread_mutex_lock(&blas_lock);
        if (!blas_users++) {
            blas_saved = openblas_get_num_threads();
            openblas_set_num_threads(1);
        }
        pthread_mutex_unlock(&blas_lock);
        return 1;
    }
#else
    (void)parallel;
#endif
    return 0;
}

void linattn_blas_serial_end(int began)
{
#if defined(HAVE_CBLAS) && defined(HAVE_OPENBLAS_SET_NUM_THREADS)
    if (!began) return;
    pthread_mutex_lock(&blas_lock);
    if (!--blas_users && blas_saved > 1) openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_lock);
#else
    (void)began;
#endif
}
