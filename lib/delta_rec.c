/* linattn - token-recurrent delta-rule kernel, portable C.
 *
 * One sweep over the state per token: the write of token t is fused with the
 * reads (S^T k, S^T q) that token t+1 needs, so the state is read and written
 * once per token (6*K*n flops).  Columns are processed in panels of PANEL so
 * that a K x PANEL slice of the state stays in L1 across all T tokens.
 * Written so that the compiler can vectorise the inner loops over columns. */
#include <math.h>
#include "kernels.h"

#define PANEL 16

static void panel(const linattn_delta_rec_job *jb, int j0, int w)
{
    const int K = jb->K;
    const int gdn = jb->beta != NULL;
    float a[PANEL], b[PANEL], u[PANEL];
    float *S = jb->S + j0;

    /* reads for token 0 */
    for (int j = 0; j < w; j++) { a[j] = 0.0f; b[j] = 0.0f; }
    for (int i = 0; i < K; i++) {
        const float ki = jb->k[i], qi = jb->q[i];
        const float *row = S + (ptrdiff_t)i * jb->ldS;
        for (int j = 0; j < w; j++) { a[j] += row[j] * ki; b[j] += row[j] * qi; }
    }

    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * jb->sq, *k = jb->k + t * jb->sk;
        const float *v = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        const float gamma = jb->g ? expf(jb->g[t * jb->sg]) : 1.0f;
        float kq = 0.0f;
        for (int i = 0; i < K; i++) kq += k[i] * q[i];

        if (gdn) {
            const float beta = jb->beta[t * jb->sb];
            for (int j = 0; j < w; j++) u[j] = beta * (v[j] - gamma * a[j]);
        } else {
            for (int j = 0; j < w; j++) u[j] = v[j];
        }
        for (int j = 0; j < w; j++) o[j] = jb->scale * (gamma * b[j] + kq * u[j]);

        if (t + 1 < jb->T) {
            const float *qn = q + jb->sq, *kn = k + jb->sk;
            for (int j = 0; j < w; j++) { a[j] = 0.0f; b[j] = 0.0f; }
            for (int i = 0; i < K; i++) {
                const float ki = k[i], kni = kn[i], qni = qn[i];
                float *row = S + (ptrdiff_t)i * jb->ldS;
                for (int j = 0; j < w; j++) {
                    const float s = gamma * row[j] + ki * u[j];
                    row[j] = s;
                    a[j] += s * kni;
                    b[j] += s * qni;
                }
            }
        } else {
            for (int i = 0; i < K; i++) {
                const float ki = k[i];
                float *row = S + (ptrdiff_t)i * jb->ldS;
                for (int j = 0; j < w; j++) row[j] = gamma * row[j] + ki * u[j];
            }
        }
    }
}

void linattn_delta_rec_scalar(const linattn_delta_rec_job *job)
{
    for (int j0 = 0; j0 < job->n; j0 += PANEL) {
        const int w = job->n - j0 < PANEL ? job->n - j0 : PANEL;
        panel(job, j0, w);
    }
}
