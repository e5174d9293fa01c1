/* linattn - reference softmax attention (the oracle): one query over n keys
 * in double, naively: every score, their max, the weights, the weighted sum. */
#include <math.h>
#include "internal.h"

void linattn_softmax_ref_row(int64_t n, int K, int V, ptrdiff_t sk, ptrdiff_t sv,
                             const float *q, const float *k, const float *v, float *o,
                             double scale, double *work)
{
    double *s = work, *acc = work + n, mx = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j < n; j++) {
        double d = 0.0;
        for (int c = 0; c < K; c++) d += (double)q[c] * k[j * sk + c];
        s[j] = scale * d;
        if (s[j] > mx) mx = s[j];
    }
    for (int c = 0; c < V; c++) acc[c] = 0.0;
    for (int64_t j = 0; j < n; j++) {
        const double p = exp(s[j] - mx);
        sum += p;
        for (int c = 0; c < V; c++) acc[c] += p * v[j * sv + c];
    }
    for (int c = 0; c < V; c++) o[c] = (float)(acc[c] / sum);
}
