/* linattn-bench - timers, medians, and this machine's limits. */
#ifndef LINATTN_BENCHSYS_H
#define LINATTN_BENCHSYS_H

#include <stddef.h>

double bench_now(void);                        /* seconds, monotonic */
double bench_median(double *x, int n);         /* sorts x */
/* n floats uniform in [lo, hi) from a linear congruential generator (the
 * same numbers for the same *seed, which advances); NULL when out of memory. */
float *bench_randbuf(size_t n, float lo, float hi, unsigned *seed);

/* A timed call: returns a linattn status. */
typedef int (*bench_call_fn)(void *arg);
/* Median seconds of one call over reps timed calls, after one untimed
 * (prefill).  Returns fn's first failure, else 0. */
int bench_time_once(bench_call_fn fn, void *arg, long reps, double *sec);
/* Median seconds of one call, each of reps repetitions running enough calls
 * to last about 50 ms (decode: one call alone is too short to time). */
int bench_time_repeated(bench_call_fn fn, void *arg, long reps, double *sec);
/* sgemm GFLOP/s (n x n x n, median of reps) with the given thread count;
 * 0 when the build has no BLAS. */
double bench_sgemm_gflops(int n, int threads, int reps);
/* Memory bandwidth in GB/s of an in-place read-modify-write of 'bytes'
 * bytes (bytes read + written, as a decode step treats its state), median
 * of reps. */
double bench_rmw_gbs(size_t bytes, int threads, int reps);
/* FMA peak in GFLOP/s (an FMA counts 2 flops) of the widest vector ISA
 * this CPU runs, on the given thread count, median of reps. */
double bench_fma_gflops(int threads, int reps);

#endif
