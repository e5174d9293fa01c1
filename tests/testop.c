/* linattn tests - an entry point's arguments built from the operator table. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testop.h"
#include "testutil.h"

void tu_op_sizes(int64_t dims[LINATTN_OP_LETTERS], int64_t B, int64_t T, int64_t H, int64_t K,
                 int64_t V, int64_t M, int64_t S)
{
    memset(dims, 0, sizeof(int64_t) * LINATTN_OP_LETTERS);
    dims['B' - 'A'] = B; dims['T' - 'A'] = T; dims['H' - 'A'] = H; dims['K' - 'A'] = K;
    dims['V' - 'A'] = V; dims['M' - 'A'] = M; dims['S' - 'A'] = S;
}

int tu_op_per_token(const tu_op *p, int i)
{
    const linattn_op_tensor *d = &p->op->tensors[i];
    return !strcmp(p->op->entry, "step") && d->dims[0] == 'B' && d->role != LINATTN_ROLE_INOUT;
}

int tu_op_set(tu_op *p, const char *option, double value)
{
    const int i = linattn_op_option_index(p->op, option);
    if (i >= 0) p->a.opt[i] = value;
    return i >= 0;
}

void tu_op_cache_data(const tu_op *p, float **kb, float **vb)
{
    const int64_t *d = p->dims;
    const size_t nk = (size_t)(d['B' - 'A'] * 3 * d['J' - 'A']);
    *kb = tu_alloc(nk * (size_t)d['K' - 'A']);
    *vb = tu_alloc(nk * (size_t)d['V' - 'A']);
    tu_fill(*kb, nk * (size_t)d['K' - 'A'], -1, 1);
    tu_fill(*vb, nk * (size_t)d['V' - 'A'], -1, 1);
}

linattn_kvcache *tu_op_cache(linattn_ctx *ctx, const tu_op *p, const float *kb, const float *vb)
{
    const int64_t *d = p->dims, B = d['B' - 'A'], J = d['J' - 'A'];
    const int64_t K = d['K' - 'A'], V = d['V' - 'A'];
    linattn_kvcache *cache;
    ck_assert_int_eq(linattn_kvcache_create(ctx, B, J, K, V, 8, &cache), 0);
    const linattn_tensor kt = linattn_tensor_4d(kb, B, 3, J, K);
    const linattn_tensor vt = linattn_tensor_4d(vb, B, 3, J, V);
    ck_assert_int_eq(linattn_kvcache_append(ctx, cache, &kt, &vt), 0);
    return cache;
}

const char *tu_op_name(const linattn_op_info *op)
{
    static _Thread_local char s[64];
    snprintf(s, sizeof s, "%s %s", op->name, op->entry);
    return s;
}

/* symmetric, diagonal 1 + U(0, 1) over off-diagonal values of the fill */
static void make_spd(float *x, size_t n, int64_t d)
{
    for (size_t m = 0; m + (size_t)(d * d) <= n; m += (size_t)(d * d)) {
        float *h = x + m;
        for (int64_t a = 0; a < d; a++) {
            for (int64_t b = 0; b < a; b++) h[b * d + a] = h[a * d + b] = 0.02f * h[a * d + b];
            h[a * d + a] = 1.0f + (float)tu_uniform(0, 1);
        }
    }
}

void tu_op_make(tu_op *p, const linattn_op_info *op, const int64_t dims[LINATTN_OP_LETTERS],
                int which, int64_t reps, int64_t split)
{
    memset(p, 0, sizeof *p);
    p->op = op;
    p->reps = reps > 0 ? reps : 1;
    linattn_op_args_init(op, &p->a);
    memcpy(p->dims, dims, sizeof p->dims);
    if (split > 0) {
        ck_assert_msg(op->packed, "%s: not packed", tu_op_name(op));
        p->dims['B' - 'A'] = 1;
        p->cu[0] = 0, p->cu[1] = split, p->cu[2] = dims['T' - 'A'];
        p->a.cu_seqlens = p->cu;
        p->a.n_seqs = 2;
        p->dims['N' - 'A'] = 2;
    }
    linattn_op_dims(op, &p->a, p->dims);
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *d = &op->tensors[i];
        if (d->optional && which == TU_OP_REQUIRED) continue;
        int64_t sh[LINATTN_MAX_DIMS];
        /* optional tensors that nothing sizes (the serving rows hW, hC) stay absent */
        if (d->optional && linattn_op_shape(op, i, p->dims, sh) != LINATTN_OK) continue;
        ck_assert_msg(linattn_op_shape(op, i, p->dims, sh) == LINATTN_OK, "%s: %s",
                      tu_op_name(op), linattn_last_error());
        size_t n = 1;
        for (int j = 0; j < d->ndim; j++) n *= (size_t)sh[j];
        const size_t all = n * (size_t)(tu_op_per_token(p, i) ? p->reps : 1);
        float *x = p->data[i] = tu_alloc(all);
        p->count[i] = n;
        if (d->role == LINATTN_ROLE_OUT) {
            tu_poison(x, all);
        } else {
            const int64_t last = sh[d->ndim - 1];
            tu_fill(x, all, d->fill_lo, d->fill_hi);
            if (d->role == LINATTN_ROLE_IN && (!strcmp(d->name, "q") || !strcmp(d->name, "k")))
                tu_l2norm_rows(x, all / (size_t)last, (int)last);
            if (d->ndim >= 2 && d->dims[d->ndim - 1] == d->dims[d->ndim - 2])
                make_spd(x, all, last);
        }
        p->a.t[i] = linattn_tensor_4d(x, sh[0], sh[1], sh[2], sh[3]);
        p->a.t[i].ndim = d->ndim;
    }
}

void tu_op_free(tu_op *p)
{
    for (int i = 0; i < LINATTN_OP_MAX_TENSORS; i++) free(p->data[i]);
    memset(p, 0, sizeof *p);
}
