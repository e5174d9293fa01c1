/* linattn - exp in float for ela's feature maps, written so that a loop of
 * them vectorises (no branches, no calls, no tables): compiled per ISA with
 * the kernels that include it (AVX2, AVX-512 lanes; the scalar build's SSE2
 * lanes on x86-64).  On AArch64, GCC 12 keeps such loops scalar (it will not
 * if-convert the NaN-preserving clamps; fminf/fmaxf would vectorise but turn
 * exp(NaN) into 0), so NEON builds run it one lane at a time, still without
 * a libm call.
 *
 *   x clamped to [-110, 100] (NaN passes), n = round(x / ln 2),
 *   r = x - n ln2 (two-part ln 2, |r| <= ln2/2),
 *   e^r = 1 + r + r^2 P(r), P of degree 4 (coefficients fitted here for the
 *   smallest largest relative error on |r| <= ln2/2: 3.1e-9 in exact
 *   arithmetic), times 2^n as 2^(n/2) 2^(n - n/2) so that results that
 *   overflow give inf and results below FLT_MIN round once into the
 *   subnormals (and to 0 below 2^-150).
 *
 * Accuracy (tests/check_ela.c, against double exp over the whole float
 * range): relative error at most LINATTN_ELA_EXP_RELERR (2^-23) where the
 * result is a normal float (measured over every 7th float: 8.1e-8 without
 * FMA, 8.5e-8 with it; libm's expf is within 0.5 ulp, about 6e-8);
 * subnormal results within one subnormal step (2^-149; measured 0.75);
 * inf for x > ln(FLT_MAX) (88.72284), 0 for x below -103.98, inf and 0 for
 * +-inf, NaN for NaN. */
#ifndef LINATTN_ELA_EXP_H
#define LINATTN_ELA_EXP_H

#include <stdint.h>
#include <string.h>

#define LINATTN_ELA_EXP_RELERR 1.2e-7 /* 2^-23; measured at most 8.5e-8 */

static inline float ela_expf(float x)
{
    x = x > 100.0f ? 100.0f : x; /* e^100 is inf in float already */
    x = x < -110.0f ? -110.0f : x; /* e^-110 is 0 */
    const float big = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const float t = x * 1.44269504088896341f + big;
    const float n = t - big;
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-6f;
    float p = 1.381459297e-03f;
    p = p * r + 8.368708193e-03f;
    p = p * r + 4.166838899e-02f;
    p = p * r + 1.666652113e-01f;
    p = p * r + 4.999999404e-01f;
    p = 1.0f + (r + r * r * p);
    uint32_t tb, b1, b2;
    memcpy(&tb, &t, sizeof tb);
    const int32_t ni = (int32_t)(tb - 0x4B400000u); /* n as an integer, |n| <= 159 */
    const int32_t n1 = ni / 2, n2 = ni - n1;
    b1 = (uint32_t)(n1 + 127) << 23;
    b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}

#endif
