/* linattn - token-recurrent delta-rule kernel, portable C.
 *
 * One sweep over the state per token: the write of token t is fused with the
 * reads (S^T k, S^T q) that token t+1 needs, so the state is read and written
 * once per token (6*K*n flops).  Columns are processed in panels of PANEL so
 * that a K x PANEL slice of the state stays in L1 across all T tokens.
 * Written so that the compiler can vectorise the inner loops over columns.
 *
 * g per key channel (gk): row i of S decays by gamma_i, a per-row scalar of
 * the sweep, and the reads fold in the next token's decay:
 * a = S^T (gamma' o k'), b = S^T (gamma' o q'), so u = beta (v - a) and
 * o = scale (b + kq u).
 *
 * Query heads sharing the state (nq > 1): query 0 is read in the sweep;
 * each further query r by a read pass over the panel right after it, into
 * its output row of the next token (o is written there before it is final),
 * which the next token finishes.  Both reads are the same arithmetic
 * (acc += s * c over the rows in order), so a query's result does not
 * depend on nq.
 *
 * A 16-bit state (jb->hdt): each row of the panel is widened into pack at
 * token 0, the sweeps run there, and the last token's write rounds each row
 * back into the state once. */
#include <math.h>
#include "kernels.h"
#include "linattn.h"

#define PANEL 16

/* panel() is instantiated for g per head and per channel (GK constant) */
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

/* gamma of token t: exp of its g row (per channel) into gam[0..K) */
static void decay_row(const linattn_delta_rec_job *jb, int64_t t, float *gam)
{
    const float *g = jb->g + t * jb->sg;
    for (int i = 0; i < jb->K; i++) gam[i] = expf(g[i]);
}

/* c_i = gamma_i x_i (gk) or x_i: the read vector's entry of row i */
static inline float rd(const float *gn, const float *x, int i)
{
    return gn ? gn[i] * x[i] : x[i];
}

/* pend[j] = sum_i S[i][j] c_i for query r of token t, c from rd() */
static void read_pass(const linattn_delta_rec_job *jb, const float *S, ptrdiff_t ldS, int w,
                      int64_t t, int r, const float *gn, float *pend)
{
    const float *q = jb->q + t * jb->sq + r * jb->sqh;
    for (int j = 0; j < w; j++) pend[j] = 0.0f;
    for (int i = 0; i < jb->K; i++) {
        const float ci = rd(gn, q, i);
        const float *row = S + (ptrdiff_t)i * ldS;
        for (int j = 0; j < w; j++) pend[j] += row[j] * ci;
    }
}

INLINE void panel(const linattn_delta_rec_job *jb, int j0, int w, float *gbuf, const int gk)
{
    const int K = jb->K;
    const int gdn = jb->beta != NULL;
    float a[PANEL], b[PANEL], u[PANEL];
    /* the state's panel, or (16-bit state) its float32 copy in pack */
    float *S = jb->hdt ? jb->pack : jb->S + j0;
    const ptrdiff_t ldS = jb->hdt ? PANEL : jb->ldS;
    const uint16_t *h0 = jb->h0 ? jb->h0 + j0 : NULL;
    uint16_t *ht = jb->ht ? jb->ht + j0 : NULL;
    /* gk: decay of the current and of the next token */
    float *gc = gk ? gbuf : NULL, *gn = gk ? gbuf + K : NULL;

    /* reads for token 0 */
    if (gk) decay_row(jb, 0, gc);
    for (int j = 0; j < w; j++) { a[j] = 0.0f; b[j] = 0.0f; }
    for (int i = 0; i < K; i++) {
        const float ki = rd(gc, jb->k, i), qi = rd(gc, jb->q, i);
        float *row = S + (ptrdiff_t)i * ldS;
        if (jb->hdt == LINATTN_KH_F16) linattn_f16_in_scalar(h0 + i * jb->ld0, row, (size_t)w);
        else if (jb->hdt) linattn_bf16_in_scalar(h0 + i * jb->ld0, row, (size_t)w);
        for (int j = 0; j < w; j++) { a[j] += row[j] * ki; b[j] += row[j] * qi; }
    }
    for (int r = 1; r < jb->nq; r++) read_pass(jb, S, ldS, w, 0, r, gc, jb->o + r * jb->soh + j0);

    for (int64_t t = 0; t < jb->T; t++) {
        const float *q = jb->q + t * jb->sq, *k = jb->k + t * jb->sk;
        const float *v = jb->v + t * jb->sv + j0;
        float *o = jb->o + t * jb->so + j0;
        /* per head: gamma scales the reads here; gk: folded into them */
        const float gamma = jb->g && !gk ? expf(jb->g[t * jb->sg]) : 1.0f;

        if (gdn) {
            const float beta = jb->beta[t * jb->sb];
            if (gk)
                for (int j = 0; j < w; j++) u[j] = beta * (v[j] - a[j]);
            else
                for (int j = 0; j < w; j++) u[j] = beta * (v[j] - gamma * a[j]);
        } else {
            for (int j = 0; j < w; j++) u[j] = v[j];
        }
        for (int r = 0; r < jb->nq; r++) {
            const float *qr = q + r * jb->sqh;
            float *orow = o + r * jb->soh;
            const float *br = r ? orow : b;
            float kq = 0.0f;
            for (int i = 0; i < K; i++) kq += k[i] * qr[i];
            if (gk)
                for (int j = 0; j < w; j++) orow[j] = jb->scale * (br[j] + kq * u[j]);
            else
                for (int j = 0; j < w; j++) orow[j] = jb->scale * (gamma * br[j] + kq * u[j]);
        }

        if (t + 1 < jb->T) {
            const float *qn = q + jb->sq, *kn = k + jb->sk;
            if (gk) decay_row(jb, t + 1, gn);
            for (int j = 0; j < w; j++) { a[j] = 0.0f; b[j] = 0.0f; }
            for (int i = 0; i < K; i++) {
                const float gi = gk ? gc[i] : gamma;
                const float ki = k[i], kni = rd(gn, kn, i), qni = rd(gn, qn, i);
                float *row = S + (ptrdiff_t)i * ldS;
                for (int j = 0; j < w; j++) {
                    const float s = gi * row[j] + ki * u[j];
                    row[j] = s;
                    a[j] += s * kni;
                    b[j] += s * qni;
                }
            }
            for (int r = 1; r < jb->nq; r++)
                read_pass(jb, S, ldS, w, t + 1, r, gn, o + jb->so + r * jb->soh);
            if (gk) { float *x = gc; gc = gn; gn = x; }
        } else {
            for (int i = 0; i < K; i++) {
                const float gi = gk ? gc[i] : gamma;
                const float ki = k[i];
                float *row = S + (ptrdiff_t)i * ldS;
                for (int j = 0; j < w; j++) row[j] = gi * row[j] + ki * u[j];
                if (jb->hdt == LINATTN_KH_F16) linattn_f16_out_scalar(row, ht + i * jb->ldt, (size_t)w);
                else if (jb->hdt) linattn_bf16_out_scalar(row, ht + i * jb->ldt, (size_t)w);
            }
        }
    }
}

static void panel_head(const linattn_delta_rec_job *jb, int j0, int w, float *gbuf)
{
    panel(jb, j0, w, gbuf, 0);
}

static void panel_channel(const linattn_delta_rec_job *jb, int j0, int w, float *gbuf)
{
    panel(jb, j0, w, gbuf, 1);
}

void linattn_delta_rec_scalar(const linattn_delta_rec_job *job)
{
    float gbuf[2 * LINATTN_MAX_HEAD_DIM];
    const int gk = job->g && job->gk;
    for (int j0 = 0; j0 < job->n; j0 += PANEL) {
        const int w = job->n - j0 < PANEL ? job->n - j0 : PANEL;
        if (gk) panel_channel(job, j0, w, gbuf);
        else panel_head(job, j0, w, gbuf);
    }
}
