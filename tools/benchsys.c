/* linattn-bench - timers, medians, and this machine's limits measured in the
 * same run as the operators (sgemm rate, memory bandwidth). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "benchsys.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef HAVE_CBLAS
#include <cblas.h>
#endif

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

float *bench_randbuf(size_t n, float lo, float hi, unsigned *seed)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; p && i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * (float)(*seed >> 8) * (1.0f / 16777216.0f);
    }
    return p;
}

int bench_time_once(bench_call_fn fn, void *arg, long reps, double *sec)
{
    double t[64];
    int rc = 0;
    if (reps > 64) reps = 64;
    for (long r = -1; r < reps && !rc; r++) {
        const double t0 = bench_now();
        if ((rc = fn(arg))) break;
        if (r >= 0) t[r] = bench_now() - t0;
    }
    if (!rc) *sec = bench_median(t, (int)reps);
    return rc;
}

int bench_time_repeated(bench_call_fn fn, void *arg, long reps, double *sec)
{
    double t[64];
    if (reps > 64) reps = 64;
    double t0 = bench_now();
    int rc = fn(arg);
    const double one = bench_now() - t0;
    long n = (long)(0.05 / (one > 1e-7 ? one : 1e-7));
    if (n < 1) n = 1;
    if (n > 100000) n = 100000;
    for (long r = 0; r < reps && !rc; r++) {
        t0 = bench_now();
        for (long i = 0; i < n && !rc; i++) rc = fn(arg);
        t[r] = (bench_now() - t0) / n;
    }
    if (!rc) *sec = bench_median(t, (int)reps);
    return rc;
}

double bench_sgemm_gflops(int n, int threads, int reps)
{
#ifdef HAVE_CBLAS
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    double t[64], r = 0;
    if (reps > 64) reps = 64;
    if (a && b && c) {
        for (int i = 0; i < n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
        openblas_set_num_threads(threads);
#else
        (void)threads;
#endif
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        for (int i = 0; i < reps; i++) {
            const double t0 = bench_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                        0.0f, c, n);
            t[i] = bench_now() - t0;
        }
        r = 2.0 * n * n * (double)n / bench_median(t, reps) * 1e-9;
    }
    free(a); free(b); free(c);
    return r;
#else
    (void)n; (void)threads; (void)reps;
    return 0.0;
#endif
}

/* Read-modify-write of one buffer in place, as a decode step treats its
 * state: every byte is read once and written once (2 x bytes of traffic). */
double bench_rmw_gbs(size_t bytes, int threads, int reps)
{
    const size_t n = bytes / sizeof(float);
    float *a = malloc(bytes);
    double t[64], r = 0;
    if (reps > 64) reps = 64;
    if (a) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
        for (size_t i = 0; i < n; i++) a[i] = 1.0f; /* first touch by the same threads */
        for (int rep = 0; rep < reps; rep++) {
            const double t0 = bench_now();
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) num_threads(threads)
#endif
            for (size_t i = 0; i < n; i++) a[i] = a[i] * 0.999f + 1e-7f;
            t[rep] = bench_now() - t0;
        }
        r = 2.0 * (double)bytes / bench_median(t, reps) * 1e-9;
    }
    (void)threads;
    free(a);
    return r;
}
