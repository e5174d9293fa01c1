/* linattn - the delta family's input options on the CPU: q and k rows
 * L2-normalised (opts.qk_l2norm) and beta given as logits
 * (opts.beta_logits), written into scratch before the unchanged kernels.
 * The formulas are the ones linattn_gdn(3) states; a caller who applies
 * them on the host gets the same bits as the option. */
#include <math.h>
#include "internal.h"

/* y = x / sqrt(|x|^2 + 1e-6) for one row of n floats: the sum of squares
 * in double in four interleaved partial sums ((s0 + s1) + (s2 + s3)),
 * r = 1 / sqrt(sum + 1e-6) in double, y_i = (float)(x_i * r). */
void linattn_l2norm_row(const float *x, float *y, int n)
{
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += (double)x[i + j] * x[i + j];
    for (; i < n; i++) s[0] += (double)x[i] * x[i];
    const double inv = 1.0 / sqrt(((s[0] + s[1]) + (s[2] + s[3])) + LINATTN_QK_NORM_EPS);
    for (i = 0; i < n; i++) y[i] = (float)(x[i] * inv);
}

/* 1 / (1 + exp(-x)) in double, rounded to float: in [0, 1], finite for
 * every finite x (exp overflowing to Inf gives 0). */
float linattn_sigmoid(float x) { return (float)(1.0 / (1.0 + exp(-(double)x))); }
