/* linattn - serving fields of gka (linattn_gka(3), State slots and
 * rollback): the rollback and checkpoint row pairs checked against the
 * call, and the OpenCL path that runs a serving call as plain calls on
 * views of the pools, the rows and the tokens. */
#include "serve.h"

int linattn_gka_serve_check(const linattn_gka_io *x, int64_t nseq, int64_t T, int64_t H,
                            int64_t K, int64_t V, linattn_serve *sv)
{
    int rc;
    const linattn_tensor *pr[2][2] = {{&x->kkW, &x->kvW}, {&x->kkC, &x->kvC}};
    static const char *const nm[2][2] = {{"kkW", "kvW"}, {"kkC", "kvC"}};
    for (int i = 0; i < 2; i++)
        if (linattn_given(pr[i][0]) != linattn_given(pr[i][1]))
            return linattn_fail(LINATTN_EINVAL, "%s and %s: both or neither", nm[i][0],
                                nm[i][1]);
    /* the kv rows and the checkpoint fields through the delta family's checks */
    const linattn_delta_io d = {.hW = x->kvW, .hC = x->kvC, .cu_seqlens = x->cu_seqlens,
                                .checkpoint_every = x->checkpoint_every,
                                .checkpoint_offsets = x->checkpoint_offsets};
    const int64_t hsh[4] = {nseq, H, K, V};
    if ((rc = linattn_serve_check(&d, nseq, x->cu_seqlens, T, hsh, 0, sv))) return rc;
    const int64_t ws[4] = {nseq * sv->W, H, K, K}, cs[4] = {nseq * sv->C, H, K, K};
    if (sv->W && (rc = linattn_check_tensor(&x->kkW, "kkW", 4, ws))) return rc;
    if (sv->C && (rc = linattn_check_tensor(&x->kkC, "kkC", 4, cs))) return rc;
    return LINATTN_OK;
}

/* Tokens a .. e of sequence n (batch row b, from token t0) from state src
 * into dst (kk, kv each). */
static int stretch(linattn_ctx *ctx, const linattn_gka_io *x, const linattn_gka_opts *opts,
                   int64_t b, int64_t t0, int64_t a, int64_t e, const linattn_tensor *src,
                   const linattn_tensor *dst)
{
#define TOKS(t) linattn_serve_sub(&x->t, b, 1, t0 + a, e - a)
    const linattn_gka_io f = {.q = TOKS(q), .k = TOKS(k), .v = TOKS(v), .g = TOKS(g),
                              .beta = TOKS(beta), .alpha = TOKS(alpha), .o = TOKS(o),
                              .kk0 = src[0], .kv0 = src[1], .kkT = dst[0], .kvT = dst[1]};
#undef TOKS
    return linattn_gka_forward(ctx, &f, opts);
}

int linattn_gka_split(linattn_ctx *ctx, const linattn_gka_io *x, const linattn_gka_opts *opts,
                      const linattn_serve *sv, int64_t nseq, int64_t T, int step)
{
    const linattn_tensor none = linattn_tensor_none();
    const int64_t *cu = x->cu_seqlens;
    int rc = LINATTN_OK;
#define SUB(t, i0) linattn_serve_sub(&x->t, i0, 1, 0, -1)
    for (int64_t n = 0; n < nseq && !rc; n++) {
        const int64_t slot = x->state_indices ? x->state_indices[n] : n;
        const int fresh = slot < 0 || (x->has_initial_state && !x->has_initial_state[n]);
        const linattn_tensor fin[2] = {slot >= 0 ? SUB(kkT, slot) : none,
                                       slot >= 0 ? SUB(kvT, slot) : none};
        if (step && !fresh) {
            const linattn_gka_step_io s = {
                .q = SUB(q, n), .k = SUB(k, n), .v = SUB(v, n), .g = SUB(g, n),
                .beta = SUB(beta, n), .alpha = SUB(alpha, n), .o = SUB(o, n),
                .state_kk = fin[0], .state_kv = fin[1]};
            rc = linattn_gka_step(ctx, &s, opts);
            continue;
        }
        if (step) { /* a row from zeros: a forward over one token */
#define TOK(t) linattn_serve_tok(&x->t, n)
            const linattn_gka_io f = {.q = TOK(q), .k = TOK(k), .v = TOK(v), .g = TOK(g),
                                      .beta = TOK(beta), .alpha = TOK(alpha), .o = TOK(o),
                                      .kkT = fin[0], .kvT = fin[1]};
#undef TOK
            rc = linattn_gka_forward(ctx, &f, opts);
            continue;
        }
        const int64_t b = cu ? 0 : n, t0 = cu ? cu[n] : 0, len = cu ? cu[n + 1] - t0 : T;
        const int rd = !fresh && linattn_given(&x->kk0);
        linattn_tensor src[2] = {rd ? SUB(kk0, slot) : none, rd ? SUB(kv0, slot) : none};
        for (int64_t t = 0; t < len && !rc;) { /* one stretch between cuts at a time */
            const int64_t e = linattn_serve_next_cut(sv, n, len, t);
            const int64_t c = linattn_serve_ckpt_row(sv, n, e);
            linattn_tensor d[3][2];
            int nd = 0;
            if (sv->W && e >= len - sv->W + 1) {
                const int64_t r = n * sv->W + e - (len - sv->W + 1);
                d[nd][0] = SUB(kkW, r);
                d[nd++][1] = SUB(kvW, r);
            }
            if (c >= 0) {
                d[nd][0] = SUB(kkC, c);
                d[nd++][1] = SUB(kvC, c);
            }
            if (e == len && slot >= 0 && linattn_given(&x->kkT)) { /* last: may be src's */
                d[nd][0] = fin[0];
                d[nd++][1] = fin[1];
            }
            if (!nd) {
                d[0][0] = d[0][1] = none;
                nd = 1;
            }
            for (int i = 0; i < nd && !rc; i++) /* each destination: the stretch again */
                rc = stretch(ctx, x, opts, b, t0, t, e, src, d[i]);
            src[0] = d[0][0];
            src[1] = d[0][1];
            t = e;
        }
    }
#undef SUB
    return rc;
}
