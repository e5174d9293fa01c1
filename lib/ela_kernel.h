/* linattn - the ela recurrence in float (linattn_ela(3)), as a
 * function body compiled once per ISA: lib/scalar.c (scalar) and
 * simd/<isa>/<isa>.c include this file with ELA_KERNEL_NAME set and
 * their own -m flags.  The state loops are axpys over contiguous floats and
 * the denominator is summed in feature order, so no sum is reassociated.
 *
 * Per token (causal), with a = s q, b = s k:
 *   safe exp: for each d with b_d > c_d: S[d,:] *= e^(c_d - b_d), z_d likewise,
 *             c_d = b_d;  psi_d = e^(b_d - c_d)
 *             phi_d = e^(a_d + c_d - M), M = max_d (a_d + c_d)
 *   else psi = psi(b), phi = phi(a) (ela_feature.h)
 *   S += psi v^T, z += psi;  o = phi^T S / max(phi^T z, 1e-8)
 * Bidirectional: every token writes first, then every token reads. */
#include <math.h>
#include "kernels.h"
#include "ela_feature.h"

#ifndef ELA_KERNEL_NAME
#error "define ELA_KERNEL_NAME before including ela_kernel.h"
#endif

void ELA_KERNEL_NAME(const linattn_ela_job *jb)
{
    const int K = jb->K, V = jb->V, F = jb->F;
    const float s = jb->qk_scale;
    float *ph = jb->work, *ps = ph + F;
    float *S = jb->S, *z = jb->z, *c = jb->c;
    const int64_t T = jb->T, steps = jb->bidir ? 2 * T : T;
    for (int64_t u = 0; u < steps; u++) {
        const int write = !jb->bidir || u < T, read = !jb->bidir || u >= T;
        const int64_t t = u < T ? u : u - T;
        if (write) {
            const float *k = jb->k + t * jb->sqk, *v = jb->v + t * jb->sv;
            if (jb->safe) {
                /* e^-|b - c|: the rescale of a new maximum, else psi_d (one
                 * vector loop of exps, then the rows) */
                ELA_SIMD for (int d = 0; d < F; d++) {
                    const float x = s * k[d] - c[d];
                    ps[d] = ela_expf(x > 0.0f ? -x : x);
                }
                for (int d = 0; d < F; d++) {
                    const float b = s * k[d];
                    float *row = S + (size_t)d * V;
                    if (b > c[d]) { /* a new maximum: rescale the row, psi_d = 1 */
                        const float r = ps[d];
                        c[d] = b;
                        ELA_SIMD for (int j = 0; j < V; j++) row[j] = r * row[j] + v[j];
                        z[d] = r * z[d] + 1.0f;
                    } else {
                        const float w = ps[d];
                        ELA_SIMD for (int j = 0; j < V; j++) row[j] += w * v[j];
                        z[d] += w;
                    }
                }
            } else {
                ela_map(jb->feature, 1, K, s, k, ps);
                for (int d = 0; d < F; d++) {
                    float *row = S + (size_t)d * V;
                    const float w = ps[d];
                    ELA_SIMD for (int j = 0; j < V; j++) row[j] += w * v[j];
                    z[d] += w;
                }
            }
        }
        if (read) {
            const float *q = jb->q + t * jb->sqk;
            if (jb->safe) {
                float M = -INFINITY;
                for (int d = 0; d < F; d++) {
                    ph[d] = s * q[d] + c[d];
                    M = ph[d] > M ? ph[d] : M;
                }
                ELA_SIMD for (int d = 0; d < F; d++) ph[d] = ela_expf(ph[d] - M);
            } else {
                ela_map(jb->feature, 0, K, s, q, ph);
            }
            float *o = jb->o + t * jb->sv, den = 0.0f;
            for (int j = 0; j < V; j++) o[j] = 0.0f;
            for (int d = 0; d < F; d++) {
                const float *row = S + (size_t)d * V;
                const float w = ph[d];
                ELA_SIMD for (int j = 0; j < V; j++) o[j] += w * row[j];
                den += w * z[d];
            }
            den = den > LINATTN_ELA_EPS ? den : LINATTN_ELA_EPS;
            for (int j = 0; j < V; j++) o[j] /= den;
        }
    }
}
