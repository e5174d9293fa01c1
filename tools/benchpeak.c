/* linattn-bench - the FMA peak of this CPU, measured: every thread runs
 * chains of independent vector FMAs of the widest ISA the CPU has (the one
 * our kernels use), long enough to hide their latency. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <stdlib.h>
#include "benchsys.h"
#include "linattn.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define CHAINS 12
#define ROUNDS 4000000L

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static float fma512(long n, float x)
{
    __m512 acc[CHAINS];
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps(x + (float)j);
    for (long i = 0; i < n; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_fmadd_ps(acc[j], b, c);
    for (int j = 1; j < CHAINS; j++) acc[0] = _mm512_add_ps(acc[0], acc[j]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float fma256(long n, float x)
{
    __m256 acc[CHAINS];
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm256_set1_ps(x + (float)j);
    for (long i = 0; i < n; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm256_fmadd_ps(acc[j], b, c);
    float out[8], s = 0.0f;
    for (int j = 1; j < CHAINS; j++) acc[0] = _mm256_add_ps(acc[0], acc[j]);
    _mm256_storeu_ps(out, acc[0]);
    for (int j = 0; j < 8; j++) s += out[j];
    return s;
}
#elif defined(__aarch64__)
#include <arm_neon.h>
static float fma128(long n, float x)
{
    float32x4_t acc[CHAINS];
    const float32x4_t b = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
    for (int j = 0; j < CHAINS; j++) acc[j] = vdupq_n_f32(x + (float)j);
    for (long i = 0; i < n; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = vfmaq_f32(c, acc[j], b);
    for (int j = 1; j < CHAINS; j++) acc[0] = vaddq_f32(acc[0], acc[j]);
    return vaddvq_f32(acc[0]);
}
#endif

/* flops of one call of the kernel for the best ISA: 2 * lanes * CHAINS * n */
static double run_best(long n, float *sink)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (linattn_isa_usable("avx512")) {
        *sink += fma512(n, *sink);
        return 2.0 * 16 * CHAINS * n;
    }
    if (linattn_isa_usable("avx2")) {
        *sink += fma256(n, *sink);
        return 2.0 * 8 * CHAINS * n;
    }
#elif defined(__aarch64__)
    *sink += fma128(n, *sink);
    return 2.0 * 4 * CHAINS * n;
#endif
    float a[CHAINS];
    for (int j = 0; j < CHAINS; j++) a[j] = *sink + (float)j;
    for (long i = 0; i < n; i++)
        for (int j = 0; j < CHAINS; j++) a[j] = a[j] * 0.999999f + 1e-7f;
    for (int j = 0; j < CHAINS; j++) *sink += a[j];
    return 2.0 * CHAINS * n;
}

double bench_fma_gflops(int threads, int reps)
{
    double t[64], flops = 0.0;
    float sink = 0.0f;
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        const double t0 = bench_now();
        double f = 0.0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : f)
#endif
        {
            float s = 0.0f;
            f += run_best(ROUNDS, &s);
            if (s == 12345.0f) abort(); /* keeps the result alive */
        }
        t[r] = bench_now() - t0;
        flops = f;
    }
    (void)threads;
    (void)sink;
    return flops / bench_median(t, reps) * 1e-9;
}
