/* linattn - serving fields of the delta family: slot checks, the cuts a
 * sequence runs in for its rollback and checkpoint states, and the OpenCL
 * path (plain calls on views of the pool, the rows and the tokens). */
#include <stdlib.h>
#include <string.h>
#include "serve.h"

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Slots in -1 .. P-1, the others distinct. */
int linattn_serve_slots(const int64_t *slot, int64_t n, int64_t P)
{
    for (int64_t i = 0; i < n; i++)
        if (slot[i] < -1 || slot[i] >= P)
            return linattn_fail(LINATTN_ERANGE, "state_indices[%lld] = %lld: must be -1 "
                                "(padding) or a slot 0..%lld of the pool",
                                (long long)i, (long long)slot[i], (long long)(P - 1));
    int64_t *s = malloc(sizeof *s * (size_t)n);
    if (!s) return linattn_fail(LINATTN_ENOMEM, "state_indices: out of memory");
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (slot[i] >= 0) s[m++] = slot[i];
    qsort(s, (size_t)m, sizeof *s, cmp_i64);
    int64_t dup = -1;
    for (int64_t i = 1; i < m && dup < 0; i++)
        if (s[i] == s[i - 1]) dup = s[i];
    free(s);
    if (dup >= 0)
        return linattn_fail(LINATTN_EINVAL, "state_indices: slot %lld named twice in one call",
                            (long long)dup);
    return LINATTN_OK;
}

/* hW or hC: [N*R,H,K,V] with R >= 1 rows per sequence; *R receives R. */
static int check_rows(const linattn_tensor *t, const char *name, const int64_t hsh[4],
                      int64_t *R)
{
    const int64_t N = hsh[0];
    if (t->ndim != 4 || t->shape[0] < N || t->shape[0] % N)
        return linattn_fail(LINATTN_ESHAPE, "%s: needs [N*R,H,K,V] with R >= 1 rows for each "
                            "of the N = %lld sequences", name, (long long)N);
    *R = t->shape[0] / N;
    const int64_t s[4] = {t->shape[0], hsh[1], hsh[2], hsh[3]};
    return linattn_check_tensor(t, name, 4, s);
}

/* checkpoint_offsets: per sequence 1 .. len ascending, then zeros. */
int linattn_serve_offsets(const int64_t *o, int64_t nseq, int64_t C, const int64_t *cu,
                         int64_t T)
{
    for (int64_t n = 0; n < nseq; n++) {
        const int64_t len = cu ? cu[n + 1] - cu[n] : T;
        for (int64_t c = 0; c < C; c++) {
            const int64_t v = o[n * C + c], prev = c ? o[n * C + c - 1] : 0;
            if (v < 0 || v > len)
                return linattn_fail(LINATTN_ERANGE, "checkpoint_offsets[%lld] = %lld: must be "
                                    "0 (no checkpoint) or 1..%lld (the tokens of sequence %lld)",
                                    (long long)(n * C + c), (long long)v, (long long)len,
                                    (long long)n);
            if (v && (c && prev == 0))
                return linattn_fail(LINATTN_EINVAL, "checkpoint_offsets[%lld] = %lld follows "
                                    "a 0 (unused rows come last)", (long long)(n * C + c),
                                    (long long)v);
            if (v && v <= prev)
                return linattn_fail(LINATTN_EINVAL, "checkpoint_offsets[%lld] = %lld: not "
                                    "above the one before (%lld)", (long long)(n * C + c),
                                    (long long)v, (long long)prev);
        }
    }
    return LINATTN_OK;
}

int linattn_serve_check(const linattn_delta_io *x, int64_t nseq, const int64_t *cu, int64_t T,
                        const int64_t hsh[4], int step, linattn_serve *sv)
{
    int rc;
    const char *const names[2] = {step ? "state_h" : "h0", step ? "state_h" : "hT"};
    const linattn_tensor *st[2] = {&x->h0, &x->hT};
    memset(sv, 0, sizeof *sv);
    sv->slot = x->state_indices;
    sv->init = x->has_initial_state;
    int64_t P = -1;
    for (int i = 0; i < 2; i++) {
        if (!linattn_given(st[i])) continue;
        int64_t s[4] = {hsh[0], hsh[1], hsh[2], hsh[3]};
        if (sv->slot && st[i]->ndim == 4 && st[i]->shape[0] >= 1) s[0] = st[i]->shape[0];
        if ((rc = linattn_check_tensor(st[i], names[i], 4, s))) return rc;
        if (P < 0 || s[0] < P) P = s[0];
    }
    if (sv->slot) {
        if (P < 0)
            return linattn_fail(LINATTN_EINVAL, "state_indices: given without a pool (h0 or hT)");
        if ((rc = linattn_serve_slots(sv->slot, nseq, P))) return rc;
    }
    const int offs = x->checkpoint_offsets != NULL;
    if (offs && step)
        return linattn_fail(LINATTN_EINVAL, "checkpoint_offsets: a forward's field");
    if (offs && x->checkpoint_every)
        return linattn_fail(LINATTN_EINVAL, "checkpoint_offsets and checkpoint_every: one "
                                            "or the other");
    if (offs && !linattn_given(&x->hC))
        return linattn_fail(LINATTN_EINVAL, "checkpoint_offsets: given without hC");
    if (x->checkpoint_every < 0 ||
        (linattn_given(&x->hC) && !offs && x->checkpoint_every < 1))
        return linattn_fail(LINATTN_ERANGE, "checkpoint_every: %lld (must be >= 1 with hC, "
                            "or checkpoint_offsets given)", (long long)x->checkpoint_every);
    if (!linattn_given(&x->hC) && x->checkpoint_every)
        return linattn_fail(LINATTN_EINVAL, "checkpoint_every: given without hC");
    if (linattn_given(&x->hW)) {
        if ((rc = check_rows(&x->hW, "hW", hsh, &sv->W))) return rc;
        for (int64_t n = 0; n < nseq; n++) {
            const int64_t len = cu ? cu[n + 1] - cu[n] : T;
            if (len < sv->W)
                return linattn_fail(LINATTN_ESHAPE, "hW: sequence %lld has %lld tokens, fewer "
                                    "than the window of %lld states", (long long)n,
                                    (long long)len, (long long)sv->W);
        }
    }
    if (linattn_given(&x->hC)) {
        if ((rc = check_rows(&x->hC, "hC", hsh, &sv->C))) return rc;
        sv->every = x->checkpoint_every;
        if (offs && (rc = linattn_serve_offsets(x->checkpoint_offsets, nseq, sv->C, cu, T))) return rc;
        sv->offs = x->checkpoint_offsets;
    }
    sv->on = sv->slot || sv->init || sv->W || sv->C;
    return LINATTN_OK;
}

int64_t linattn_serve_next_cut(const linattn_serve *sv, int64_t n, int64_t len, int64_t t)
{
    int64_t e = len;
    if (sv->W) {
        const int64_t w0 = len - sv->W + 1; /* the first window row's token count */
        const int64_t c = t < w0 ? w0 : t + 1;
        if (c < e) e = c;
    }
    if (sv->C && sv->offs) { /* the first listed count past t (ascending, then zeros) */
        for (int64_t c = 0; c < sv->C && sv->offs[n * sv->C + c]; c++)
            if (sv->offs[n * sv->C + c] > t) {
                if (sv->offs[n * sv->C + c] < e) e = sv->offs[n * sv->C + c];
                break;
            }
    } else if (sv->C) {
        const int64_t c = (t / sv->every + 1) * sv->every;
        if (c <= sv->C * sv->every && c < e) e = c;
    }
    return e;
}

int64_t linattn_serve_ckpt_row(const linattn_serve *sv, int64_t n, int64_t e)
{
    if (!sv->C) return -1;
    if (sv->offs) {
        for (int64_t c = 0; c < sv->C && sv->offs[n * sv->C + c]; c++)
            if (sv->offs[n * sv->C + c] == e) return n * sv->C + c;
        return -1;
    }
    return e % sv->every == 0 && e / sv->every <= sv->C ? n * sv->C + e / sv->every - 1 : -1;
}

static void store_rows(const linattn_rows *r, int64_t row, int64_t h, const float *S,
                       ptrdiff_t ldS, int K, int j0, int w)
{
    float *d = linattn_row(r, row, h, 0) + j0;
    for (int i = 0; i < K; i++) memcpy(d + i * r->sh, S + i * ldS + j0, sizeof(float) * w);
}

void linattn_serve_store(const linattn_serve *sv, int64_t n, int64_t h, int64_t len, int64_t e,
                         const float *S, ptrdiff_t ldS, int K, int j0, int w)
{
    if (sv->W && e >= len - sv->W + 1)
        store_rows(&sv->w, n * sv->W + e - (len - sv->W + 1), h, S, ldS, K, j0, w);
    const int64_t c = linattn_serve_ckpt_row(sv, n, e);
    if (c >= 0) store_rows(&sv->c, c, h, S, ldS, K, j0, w);
}

/* ---- OpenCL: plain calls on views ---------------------------------------- */

/* Indices i0 .. i0+n0 of dimension 0 and, when n1 >= 0, i1 .. i1+n1 of
 * dimension 1 (absent stays absent). */
linattn_tensor linattn_serve_sub(const linattn_tensor *t, int64_t i0, int64_t n0, int64_t i1,
                                 int64_t n1)
{
    if (!linattn_given(t)) return *t;
    linattn_tensor v = *t;
    int64_t s[LINATTN_MAX_DIMS];
    linattn_strides(t, s);
    for (int d = 0; d < t->ndim; d++) v.strides[d] = s[d];
    v.shape[0] = n0;
    v.offset += i0 * s[0];
    if (n1 >= 0) {
        v.shape[1] = n1;
        v.offset += i1 * s[1];
    }
    return v;
}

/* Row b of a step's [B,..] tensor as one token of a forward's [1,1,..]. */
linattn_tensor linattn_serve_tok(const linattn_tensor *t, int64_t b)
{
    if (!linattn_given(t)) return *t;
    linattn_tensor v = *t;
    int64_t s[LINATTN_MAX_DIMS];
    linattn_strides(t, s);
    v.ndim = t->ndim + 1;
    v.shape[0] = v.shape[1] = 1;
    v.strides[0] = v.strides[1] = s[0];
    for (int d = 1; d < t->ndim; d++) {
        v.shape[d + 1] = t->shape[d];
        v.strides[d + 1] = s[d];
    }
    v.offset += b * s[0];
    return v;
}

static int step_rows(linattn_ctx *ctx, int op, const linattn_delta_io *x,
                     const linattn_delta_opts *opts, const linattn_serve *sv, int64_t B)
{
    const linattn_tensor none = linattn_tensor_none();
    int rc = LINATTN_OK;
    for (int64_t b = 0; b < B && !rc; b++) {
        const int64_t slot = sv->slot ? sv->slot[b] : b;
        if (slot >= 0 && !(sv->init && !sv->init[b])) {
#define ROW(t) linattn_serve_sub(&x->t, b, 1, 0, -1)
            const linattn_delta_step_io s = {
                .q = ROW(q), .k = ROW(k), .v = ROW(v), .g = ROW(g), .beta = ROW(beta), .o = ROW(o),
                .state_h = linattn_serve_sub(&x->hT, slot, 1, 0, -1)};
#undef ROW
            rc = linattn_delta_step(ctx, (linattn_delta_op)op, &s, opts);
        } else { /* from zeros: a forward over one token */
#define TOK(t) linattn_serve_tok(&x->t, b)
            const linattn_delta_io f = {
                .q = TOK(q), .k = TOK(k), .v = TOK(v), .g = TOK(g), .beta = TOK(beta), .o = TOK(o),
                .h0 = none, .hT = slot >= 0 ? linattn_serve_sub(&x->hT, slot, 1, 0, -1) : none};
#undef TOK
            rc = linattn_delta_forward(ctx, (linattn_delta_op)op, &f, opts);
        }
    }
    return rc;
}

/* Tokens a .. e of sequence n (batch row b, from token t0) from state src into dst. */
static int stretch(linattn_ctx *ctx, int op, const linattn_delta_io *x,
                   const linattn_delta_opts *opts, int64_t b, int64_t t0, int64_t a, int64_t e,
                   const linattn_tensor *src, const linattn_tensor *dst)
{
#define TOKS(t) linattn_serve_sub(&x->t, b, 1, t0 + a, e - a)
    const linattn_delta_io f = {.q = TOKS(q), .k = TOKS(k), .v = TOKS(v), .g = TOKS(g),
                                .beta = TOKS(beta), .o = TOKS(o), .h0 = *src, .hT = *dst};
#undef TOKS
    return linattn_delta_forward(ctx, (linattn_delta_op)op, &f, opts);
}

int linattn_serve_split(linattn_ctx *ctx, int op, const linattn_delta_io *x,
                        const linattn_delta_opts *opts, const linattn_serve *sv, int64_t nseq,
                        int64_t T, int step)
{
    if (step) return step_rows(ctx, op, x, opts, sv, nseq);
    const linattn_tensor none = linattn_tensor_none();
    const int64_t *cu = x->cu_seqlens;
    for (int64_t n = 0; n < nseq; n++) {
        const int64_t b = cu ? 0 : n, t0 = cu ? cu[n] : 0;
        const int64_t len = cu ? cu[n + 1] - cu[n] : T;
        const int64_t slot = sv->slot ? sv->slot[n] : n;
        linattn_tensor src = none;
        if (linattn_given(&x->h0) && slot >= 0 && !(sv->init && !sv->init[n]))
            src = linattn_serve_sub(&x->h0, slot, 1, 0, -1);
        for (int64_t t = 0; t < len;) {
            const int64_t e = linattn_serve_next_cut(sv, n, len, t);
            const int64_t c = linattn_serve_ckpt_row(sv, n, e);
            linattn_tensor d[3];
            int nd = 0;
            if (sv->W && e >= len - sv->W + 1)
                d[nd++] = linattn_serve_sub(&x->hW, n * sv->W + e - (len - sv->W + 1), 1, 0, -1);
            if (c >= 0) d[nd++] = linattn_serve_sub(&x->hC, c, 1, 0, -1);
            if (e == len && linattn_given(&x->hT) && slot >= 0)
                d[nd++] = linattn_serve_sub(&x->hT, slot, 1, 0, -1); /* last: may be src's */
            if (!nd) d[nd++] = none;
            for (int i = 0; i < nd; i++) { /* each destination: the stretch again */
                const int rc = stretch(ctx, op, x, opts, b, t0, t, e, &src, &d[i]);
                if (rc) return rc;
            }
            src = d[0];
            t = e;
        }
    }
    return LINATTN_OK;
}
