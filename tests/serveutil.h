/* linattn tests - problem builders shared by the serving suites
 * (check_serve, check_rows): the backends they loop over, a kalman problem
 * with its state pools, ela state pools. */
#ifndef LINATTN_SERVEUTIL_H
#define LINATTN_SERVEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include "linattn.h"

/* The backends: "ref", then tu_isas (each ISA, "opencl"); b holds 8. */
int tu_backends(const char **b);

/* A kalman problem of M = TU_KM channels and S = TU_KS: T tokens of v and
 * lam_v [T,M] (lam_v in [0.5, 2]), k and q [T,S], decay [M,S] in
 * [0.5, 0.99] and noise [M,S] in [0, 0.1]. */
#define TU_KM 8
#define TU_KS 4
#define TU_KMS ((size_t)TU_KM * TU_KS)
typedef struct tu_kalman {
    float *v, *lv, *k, *q, *a, *p;
} tu_kalman;

void tu_kalman_make(tu_kalman *p, size_t T);
void tu_kalman_free(tu_kalman *p);
/* Tokens t0 .. t0+len as one batch row; y and yvar [1,len,M]. */
linattn_kalman_io tu_kalman_io(const tu_kalman *p, int64_t t0, int64_t len, float *y, float *yv);
/* n slots of lam in [0.5, 50] and eta in [-5, 5]. */
void tu_kalman_pools_fill(float *lam, float *eta, size_t n);
/* io's states: the pools lam and eta [P,M,S], updated in place, named by
 * slots over the n packed sequences cu. */
void tu_kalman_pools(linattn_kalman_io *io, float *lam, float *eta, int64_t P,
                     const int64_t *cu, int64_t n, const int64_t *slots);

/* ela state pools of n slots, ns floats of s and nz of z and of c a slot:
 * s in [-1, 1], z in [0.5, 1], c in [-1, 1]; and their copies. */
void tu_ela_pools_fill(float *s, float *z, float *c, size_t n, size_t ns, size_t nz);
void tu_ela_pools_copy(float *s, float *z, float *c, const float *s0, const float *z0,
                       const float *c0, size_t n, size_t ns, size_t nz);

#endif
