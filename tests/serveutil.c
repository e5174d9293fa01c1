/* linattn tests - problem builders shared by the serving suites. */
#include <stdlib.h>
#include <string.h>
#include "serveutil.h"
#include "testutil.h"

int tu_backends(const char **b)
{
    b[0] = "ref";
    return 1 + tu_isas(b + 1, 7);
}

void tu_kalman_make(tu_kalman *p, size_t T)
{
    p->v = tu_alloc(T * TU_KM); p->lv = tu_alloc(T * TU_KM);
    p->k = tu_alloc(T * TU_KS); p->q = tu_alloc(T * TU_KS);
    p->a = tu_alloc(TU_KMS); p->p = tu_alloc(TU_KMS);
    tu_fill(p->v, T * TU_KM, -1, 1);
    tu_fill(p->lv, T * TU_KM, 0.5, 2);
    tu_fill(p->k, T * TU_KS, -1, 1);
    tu_fill(p->q, T * TU_KS, -1, 1);
    tu_fill(p->a, TU_KMS, 0.5, 0.99);
    tu_fill(p->p, TU_KMS, 0, 0.1);
}

void tu_kalman_free(tu_kalman *p)
{
    free(p->v); free(p->lv); free(p->k); free(p->q); free(p->a); free(p->p);
}

linattn_kalman_io tu_kalman_io(const tu_kalman *p, int64_t t0, int64_t len, float *y, float *yv)
{
    linattn_kalman_io io = {
        .v = linattn_tensor_3d(p->v + t0 * TU_KM, 1, len, TU_KM),
        .lam_v = linattn_tensor_3d(p->lv + t0 * TU_KM, 1, len, TU_KM),
        .k = linattn_tensor_3d(p->k + t0 * TU_KS, 1, len, TU_KS),
        .q = linattn_tensor_3d(p->q + t0 * TU_KS, 1, len, TU_KS),
        .decay = linattn_tensor_2d(p->a, TU_KM, TU_KS),
        .noise = linattn_tensor_2d(p->p, TU_KM, TU_KS),
        .y = linattn_tensor_3d(y, 1, len, TU_KM), .yvar = linattn_tensor_3d(yv, 1, len, TU_KM)};
    return io;
}

void tu_kalman_pools_fill(float *lam, float *eta, size_t n)
{
    tu_fill(lam, n * TU_KMS, 0.5, 50);
    tu_fill(eta, n * TU_KMS, -5, 5);
}

void tu_kalman_pools(linattn_kalman_io *io, float *lam, float *eta, int64_t P,
                     const int64_t *cu, int64_t n, const int64_t *slots)
{
    io->lam0 = io->lamT = linattn_tensor_3d(lam, P, TU_KM, TU_KS);
    io->eta0 = io->etaT = linattn_tensor_3d(eta, P, TU_KM, TU_KS);
    io->cu_seqlens = cu;
    io->n_seqs = n;
    io->state_indices = slots;
}

void tu_ela_pools_fill(float *s, float *z, float *c, size_t n, size_t ns, size_t nz)
{
    tu_fill(s, n * ns, -1, 1);
    tu_fill(z, n * nz, 0.5, 1);
    tu_fill(c, n * nz, -1, 1);
}

void tu_ela_pools_copy(float *s, float *z, float *c, const float *s0, const float *z0,
                       const float *c0, size_t n, size_t ns, size_t nz)
{
    memcpy(s, s0, n * ns * sizeof(float));
    memcpy(z, z0, n * nz * sizeof(float));
    memcpy(c, c0, n * nz * sizeof(float));
}
