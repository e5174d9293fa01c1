/* linattn - rollback and checkpoint rows of the operators whose state is
 * several tensors of their own ranks (kalman: lam, eta; ela: s, z, c):
 * the checks of the rows and of the checkpoint fields (linattn_kalman(3),
 * linattn_ela(3), SERVING).  The cuts a sequence runs in are the delta
 * family's (linattn_serve_next_cut, linattn_serve_ckpt_row). */
#include <string.h>
#include "serve.h"

/* One set of rows (w or c of r): all given or none (optional ones aside),
 * [N*R, ..] with the same R >= 1 for every tensor; *R receives R (0: none). */
static int check_set(const linattn_rows_spec *r, const linattn_tensor *const *t,
                     const char *const *nm, int64_t nseq, int64_t *R)
{
    int first = -1, rc;
    *R = 0;
    for (int i = 0; i < r->n; i++)
        if (linattn_given(t[i]) && first < 0) first = i;
    if (first < 0) return LINATTN_OK;
    for (int i = 0; i < r->n; i++)
        if (!linattn_given(t[i]) && !(r->opt >> i & 1u))
            return linattn_fail(LINATTN_EINVAL, "%s: needed with %s", nm[i], nm[first]);
    const linattn_tensor *a = t[first];
    if (a->ndim != r->nd[first] || a->shape[0] < nseq || a->shape[0] % nseq)
        return linattn_fail(LINATTN_ESHAPE, "%s: needs %lld*R rows (R >= 1 for each of the "
                            "%lld sequences) of the state's shape", nm[first],
                            (long long)nseq, (long long)nseq);
    *R = a->shape[0] / nseq;
    for (int i = 0; i < r->n; i++) {
        if (!linattn_given(t[i])) continue;
        int64_t s[4];
        memcpy(s, r->sh[i], sizeof s);
        s[0] = nseq * *R;
        if ((rc = linattn_check_tensor(t[i], nm[i], r->nd[i], s))) return rc;
    }
    return LINATTN_OK;
}

int linattn_serve_rows_check(const linattn_rows_spec *r, int64_t nseq, const int64_t *cu,
                             int64_t T, int64_t every, const int64_t *offs, linattn_serve *sv)
{
    int rc;
    memset(sv, 0, sizeof *sv);
    if ((rc = check_set(r, r->w, r->wn, nseq, &sv->W))) return rc;
    if ((rc = check_set(r, r->c, r->cn, nseq, &sv->C))) return rc;
    if (offs && every)
        return linattn_fail(LINATTN_EINVAL, "checkpoint_offsets and checkpoint_every: one or "
                                            "the other");
    if (offs && !sv->C)
        return linattn_fail(LINATTN_EINVAL, "checkpoint_offsets: given without %s", r->cn[0]);
    if (every < 0 || (sv->C && !offs && every < 1))
        return linattn_fail(LINATTN_ERANGE, "checkpoint_every: %lld (must be >= 1 with %s, or "
                            "checkpoint_offsets given)", (long long)every, r->cn[0]);
    if (!sv->C && every)
        return linattn_fail(LINATTN_EINVAL, "checkpoint_every: given without %s", r->cn[0]);
    for (int64_t n = 0; sv->W && n < nseq; n++) {
        const int64_t len = cu ? cu[n + 1] - cu[n] : T;
        if (len < sv->W)
            return linattn_fail(LINATTN_ESHAPE, "%s: sequence %lld has %lld tokens, fewer than "
                                "the window of %lld states", r->wn[0], (long long)n,
                                (long long)len, (long long)sv->W);
    }
    if (offs && (rc = linattn_serve_offsets(offs, nseq, sv->C, cu, T))) return rc;
    sv->every = every;
    sv->offs = offs;
    sv->on = sv->W || sv->C;
    return LINATTN_OK;
}
