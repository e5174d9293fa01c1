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

/* CHAINS independent accumulators in named variables (an array of vectors
 * is kept in memory by some compilers, which measures store forwarding). */
#define FMA_BODY(T, SET, FMA, ADD, n, x)                                                  \
    T a0 = SET(x), a1 = SET(x + 1), a2 = SET(x + 2), a3 = SET(x + 3), a4 = SET(x + 4),    \
      a5 = SET(x + 5), a6 = SET(x + 6), a7 = SET(x + 7), a8 = SET(x + 8), a9 = SET(x + 9), \
      a10 = SET(x + 10), a11 = SET(x + 11);                                               \
    const T b = SET(0.999999f), c = SET(1e-7f);                                           \
    for (long i = 0; i < (n); i++) {                                                      \
        a0 = FMA(a0, b, c); a1 = FMA(a1, b, c); a2 = FMA(a2, b, c); a3 = FMA(a3, b, c);   \
        a4 = FMA(a4, b, c); a5 = FMA(a5, b, c); a6 = FMA(a6, b, c); a7 = FMA(a7, b, c);   \
        a8 = FMA(a8, b, c); a9 = FMA(a9, b, c); a10 = FMA(a10, b, c);                     \
        a11 = FMA(a11, b, c);                                                             \
    }                                                                                     \
    a0 = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));               \
    a0 = ADD(a0, ADD(ADD(a8, a9), ADD(a10, a11)))

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static float fma512(long n, float x)
{
    FMA_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, n, x);
    return _mm512_reduce_add_ps(a0);
}

__attribute__((target("avx2,fma"))) static float fma256(long n, float x)
{
    float out[8], s = 0.0f;
    FMA_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, n, x);
    _mm256_storeu_ps(out, a0);
    for (int j = 0; j < 8; j++) s += out[j];
    return s;
}
#elif defined(__aarch64__)
#include <arm_neon.h>
static inline float32x4_t neon_fma(float32x4_t a, float32x4_t b, float32x4_t c)
{
    return vfmaq_f32(c, a, b);
}
static float fma128(long n, float x)
{
    FMA_BODY(float32x4_t, vdupq_n_f32, neon_fma, vaddq_f32, n, x);
    return vaddvq_f32(a0);
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
