/* linattn tests - random data, poisoning, error measures, contexts. */
#ifndef LINATTN_TESTUTIL_H
#define LINATTN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include "linattn.h"

/* The seed of this run: LINATTN_TEST_SEED if set, else fresh; printed once. */
uint64_t tu_seed(void);
double tu_uniform(double lo, double hi);
float *tu_alloc(size_t n);                 /* aborts the test on failure */
void tu_fill(float *x, size_t n, double lo, double hi);
void tu_poison(float *x, size_t n);        /* NaN everywhere */
void tu_l2norm_rows(float *x, size_t rows, int d);
/* ||x - ref|| / ||ref||; +inf when x holds a NaN or Inf. */
double tu_relerr(const float *x, const float *ref, size_t n);

/* Usable kernel ISAs of this build on this CPU ("scalar", "avx2", ...);
 * prints (once) the compiled ones this CPU cannot run. */
int tu_isas(const char **names, int max);
/* Print (once, from a child process) which ISAs and devices are tested. */
void tu_report(void);
/* 1 if the OpenCL backend has a usable device (then tu_isas lists "opencl"). */
int tu_opencl(void);
/* A context for an ISA name ("opencl" = the OpenCL backend, "ref" = reference backend) and thread count. */
linattn_ctx *tu_ctx(const char *isa, int threads);

/* A delta-rule problem with owned buffers. */
typedef struct tu_delta {
    int64_t B, T, H, K, V, N;
    float *q, *k, *v, *g, *beta, *h0, *o, *ht;
    int64_t *cu;
} tu_delta;

/* op: 0 gdn, 1 kla, 2 gla.  g in [glo, 0]; keys L2-normalised for gdn/gla. */
void tu_delta_make(tu_delta *p, int op, int64_t B, int64_t T, int64_t H, int64_t K,
                   int64_t V, int with_h0, double glo);
void tu_delta_free(tu_delta *p);
linattn_delta_io tu_delta_io(const tu_delta *p, float *o, float *ht);
int tu_delta_run(int op, linattn_ctx *ctx, const linattn_delta_io *io,
                 const linattn_delta_opts *opts);
int tu_delta_step(int op, linattn_ctx *ctx, const linattn_delta_step_io *io,
                  const linattn_delta_opts *opts);

/* Tokens [t0, t0+len) of a B = 1 problem (views, not copies), starting
 * from state h0 (may be NULL). */
tu_delta tu_delta_slice(const tu_delta *p, int64_t t0, int64_t len, float *h0);

/* Run a suite, print the seed first; the exit status of a test program. */
#include <check.h>
int tu_main(Suite *s);

#endif
