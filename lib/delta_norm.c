/* linattn - the delta family's input options on the CPU: q and k rows
 * L2-normalised (opts.qk_l2norm) and beta given as logits
 * (opts.beta_logits), written into scratch before the unchanged kernels.
 * The formulas are the ones linattn_gdn(3) states; a caller who applies
 * them on the host gets the same bits as the option. */
#include <math.h>
#include "internal.h"

/* y = x / sqrt(|x|^2 + 1e-6) per row: the sum of squares in double in four
 * interleaved partial sums ((s0 + s1) + (s2 + s3)), r = 1 / sqrt(sum + 1e-6)
 * in double, y_i = (float)(x_i * r). */
void linattn_l2norm_rows(const float *x, float *y, int64_t r0, int64_t r1, int n)
{
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        double s[4] = {0.0, 0.0, 0.0, 0.0};
        int i = 0;
        for (; i + 4 <= n; i += 4)
            for (int j = 0; j < 4; j++) s[j] += (double)xr[i + j] * xr[i + j];
        for (; i < n; i++) s[0] += (double)xr[i] * xr[i];
        const double inv = 1.0 / sqrt(((s[0] + s[1]) + (s[2] + s[3])) + LINATTN_QK_NORM_EPS);
        for (i = 0; i < n; i++) yr[i] = (float)(xr[i] * inv);
    }
}

/* y = 1 / (1 + exp(-x)) in double, rounded to float: in [0, 1], finite for
 * every finite x (exp overflowing to Inf gives 0). */
void linattn_sigmoid(const float *x, float *y, int64_t i0, int64_t i1)
{
    for (int64_t i = i0; i < i1; i++) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}
