/* linattn - driver of Kalman linear attention (kalman): argument and value
 * checks, the plan (recurrence, or the chunked scan for few lanes), one job
 * per (sequence, block of channels[, piece of time]) on the context's
 * threads, or the OpenCL backend.  The value checks are values.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "serve.h"

#define BLK LINATTN_KALMAN_BLOCK
#define SUM_FLOATS(S) (7u * (size_t)(S) * BLK) /* one block's map (kernels.h) */

void linattn_kalman_opts_init(linattn_kalman_opts *opts)
{
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
    opts->algo = LINATTN_ALGO_AUTO;
}

/* ---- the plan --------------------------------------------------------------- */

typedef struct kalman_plan {
    const linattn_ctx *ctx;
    int64_t T, M, nseq, L; /* L: tokens per piece of the scan; 0: the recurrence */
    int S, nb, ref;
    int64_t G, ngroups;    /* recurrence: blocks per job, jobs per sequence */
    const int64_t *cu;
    const int64_t *slot;       /* NULL: sequence n uses state n; -1: padding */
    const unsigned char *init; /* NULL: every sequence reads its state */
    const float *v, *lv, *k, *q, *a, *p, *lam0, *eta0;
    float *y, *yvar, *lamT, *etaT;
    linattn_serve sv;      /* rollback and checkpoint rows (W, C: none) */
    float *lamW, *etaW, *lamC, *etaC;
    int64_t npieces;       /* scan: pieces of every sequence */
    int64_t *first;        /* scan: [nseq + 1] first piece of each sequence */
    int64_t *seq_of;       /* scan: [npieces] the sequence of each piece */
    float *sums;           /* scan: [npieces * nb] maps of SUM_FLOATS(S) */
    float *ct;             /* [nb][3][S][BLK]: decay, its square, noise (kernels.h) */
    linattn_runner run;    /* per-thread work; ct is its shared part */
} kalman_plan;

static size_t state_off(const kalman_plan *p, int64_t slot, int64_t blk)
{
    return ((size_t)slot * p->M + (size_t)blk * BLK) * p->S;
}

/* A job over tokens [from, from + len) of sequence n, channel block blk;
 * the state in from lam0/eta0 (or the prior) and out to lamT/etaT, or to
 * st (lam then eta, BLK * S floats each) when they are absent. */
static linattn_kalman_job make_job(const kalman_plan *p, int64_t n, int64_t blk, int64_t from,
                                   int64_t len, float *st, float *work)
{
    int64_t row0, slen;
    linattn_seq_span(p->cu, p->T, n, &row0, &slen);
    const int64_t c0 = blk * BLK, row = row0 + from;
    /* the state's slot: -1 a padding row, from the prior and not stored */
    const int64_t slot = p->slot ? p->slot[n] : n;
    const int fresh = slot < 0 || (p->init && !p->init[n]);
    const size_t ls = (size_t)c0 * p->S, so = state_off(p, slot < 0 ? 0 : slot, blk);
    return (linattn_kalman_job){
        .T = len, .S = p->S, .n = (int)(p->M - c0 < BLK ? p->M - c0 : BLK), .sm = (ptrdiff_t)p->M,
        .v = p->v + row * p->M + c0, .lv = p->lv + row * p->M + c0, .k = p->k + row * p->S,
        .q = p->q + row * p->S, .a = p->a + ls, .p = p->p + ls,
        .ct = p->ct + (size_t)blk * 3 * p->S * BLK,
        .lam_in = p->lam0 && !fresh ? p->lam0 + so : NULL,
        .eta_in = p->eta0 && !fresh ? p->eta0 + so : NULL,
        .lam = p->lamT && slot >= 0 ? p->lamT + so : st,
        .eta = p->etaT && slot >= 0 ? p->etaT + so : st + (size_t)BLK * p->S,
        .y = p->y + row * p->M + c0, .yvar = p->yvar ? p->yvar + row * p->M + c0 : NULL,
        .work = work,
    };
}

static void run_kernel(const kalman_plan *p, const linattn_kalman_job *jb, int thread)
{
    if (p->ref)
        linattn_kalman_ref(jb, linattn_runner_dwork(&p->run, thread));
    else
        p->ctx->kern.kalman_rec(jb);
}

/* The recurrence: one job per (sequence, group of G channel blocks).  It
 * walks time in tiles of TILE tokens and runs every block of the group over
 * a tile before the next: a token's row of v, lam_v, y, yvar is M floats, a
 * page or more when M is large, and one block alone would touch a new page
 * per token and array (TLB misses cost more than the arithmetic).  A lane's
 * arithmetic is the same whatever the tiling, so results do not depend on
 * G.  The reference keeps its double state over the whole sequence. */
#define TILE 16

/* The rows due after e tokens of sequence n: block blk's state (lam, eta,
 * n lanes of S states each) copied into them. */
static void store_rows(const kalman_plan *p, int64_t n, int64_t blk, int64_t len, int64_t e,
                       const linattn_kalman_job *jb)
{
    const size_t cnt = sizeof(float) * (size_t)jb->n * p->S;
    const int64_t c = linattn_serve_ckpt_row(&p->sv, n, e);
    if (p->sv.W && e >= len - p->sv.W + 1) {
        const size_t o = state_off(p, n * p->sv.W + e - (len - p->sv.W + 1), blk);
        memcpy(p->lamW + o, jb->lam, cnt);
        memcpy(p->etaW + o, jb->eta, cnt);
    }
    if (c >= 0) {
        memcpy(p->lamC + state_off(p, c, blk), jb->lam, cnt);
        memcpy(p->etaC + state_off(p, c, blk), jb->eta, cnt);
    }
}

static void rec_job(void *arg, int64_t unit, int thread)
{
    const kalman_plan *p = arg;
    const int64_t n = unit / p->ngroups, b0 = unit % p->ngroups * p->G;
    const int64_t b1 = b0 + p->G < p->nb ? b0 + p->G : p->nb;
    int64_t row0, len;
    linattn_seq_span(p->cu, p->T, n, &row0, &len);
    float *w = linattn_runner_work(&p->run, thread), *st = w + LINATTN_KALMAN_WORK(p->S);
    const int64_t tile = p->ref ? len : TILE;
    for (int64_t t0 = 0, t1; t0 < len; t0 = t1) {
        t1 = len - t0 < tile ? len : t0 + tile;
        /* with rows a tile ends at the next cut: the state is copied there */
        const int64_t e = p->sv.on ? linattn_serve_next_cut(&p->sv, n, len, t0) : len;
        if (e < t1) t1 = e;
        for (int64_t blk = b0; blk < b1; blk++) {
            linattn_kalman_job jb = make_job(p, n, blk, t0, t1 - t0,
                                             st + (size_t)(blk - b0) * 2 * BLK * p->S, w);
            if (t0) { /* on from where the last tile left the state */
                jb.lam_in = jb.lam;
                jb.eta_in = jb.eta;
            }
            run_kernel(p, &jb, thread);
            if (p->sv.on) store_rows(p, n, blk, len, t1, &jb);
        }
    }
}

/* The transposed, floored constants every job of a block shares. */
static void const_job(void *arg, int64_t blk, int thread)
{
    const kalman_plan *p = arg;
    const int S = p->S;
    const int64_t c0 = blk * BLK, n = p->M - c0 < BLK ? p->M - c0 : BLK;
    float *ct = p->ct + (size_t)blk * 3 * S * BLK, *a2 = ct + (size_t)S * BLK,
          *pp = a2 + (size_t)S * BLK;
    (void)thread;
    for (int s = 0; s < S; s++) /* written in order: the reads stride by S */
        for (int64_t c = 0; c < n; c++) {
            const size_t i = (size_t)s * BLK + (size_t)c, j = (size_t)(c0 + c) * S + s;
            const float a = p->a[j], sq = a * a, q = p->p[j];
            ct[i] = a;
            a2[i] = sq > 1e-12f ? sq : 1e-12f;
            pp[i] = q > 1e-12f ? q : 1e-12f;
        }
}

/* Piece g of the scan: its sequence n, its tokens [from, from + len). */
static void piece_span(const kalman_plan *p, int64_t g, int64_t *n, int64_t *from, int64_t *len)
{
    int64_t row0, slen;
    *n = p->seq_of[g];
    linattn_seq_span(p->cu, p->T, *n, &row0, &slen);
    *from = (g - p->first[*n]) * p->L;
    *len = slen - *from < p->L ? slen - *from : p->L;
}

/* Scan pass 1: the composed map of every piece but each sequence's last. */
static void sum_job(void *arg, int64_t unit, int thread)
{
    const kalman_plan *p = arg;
    const int64_t g = unit / p->nb, blk = unit % p->nb;
    int64_t n, from, len;
    piece_span(p, g, &n, &from, &len);
    if (g + 1 == p->first[n + 1]) return;
    float *w = linattn_runner_work(&p->run, thread);
    linattn_kalman_job jb = make_job(p, n, blk, from, len, w, w + 2u * BLK * p->S);
    p->ctx->kern.kalman_sum(&jb, p->sums + (size_t)unit * SUM_FLOATS(p->S));
}

/* (lam, eta) through a piece's map: lam = (P11 lam + P12) / (P21 lam + P22),
 * eta = (q1 lam + q2 + s eta) / (P21 lam + P22)   (linattn_kalman(3)). */
static void apply_map(const float *m, int n, int S, float *lam, float *eta)
{
    const size_t sz = (size_t)S * BLK;
    for (int c = 0; c < n; c++)
        for (int s = 0; s < S; s++) {
            const size_t i = (size_t)s * BLK + c, j = (size_t)c * S + s;
            const float l = lam[j], den = m[2 * sz + i] * l + m[3 * sz + i];
            lam[j] = (m[i] * l + m[sz + i]) / den;
            eta[j] = (m[4 * sz + i] * l + m[5 * sz + i] + m[6 * sz + i] * eta[j]) / den;
        }
}

/* Scan pass 2: the entering state from the maps of the earlier pieces (in
 * this thread's copy st), then the recurrence over the piece.  Two calls:
 * piece_job every piece but the sequences' last, then last_job those.  Only
 * a last piece writes the final state, which may be the initial state every
 * piece reads (lamT = lam0): no write may come before the last read. */
static void piece_run(const kalman_plan *p, int64_t g, int64_t blk, int thread)
{
    int64_t n, from, len;
    piece_span(p, g, &n, &from, &len);
    float *w = linattn_runner_work(&p->run, thread), *st = w, *ste = w + (size_t)BLK * p->S;
    linattn_kalman_job jb = make_job(p, n, blk, from, len, st, w + 2u * BLK * p->S);
    const size_t cnt = (size_t)jb.n * p->S;
    for (size_t i = 0; i < cnt; i++) {
        st[i] = jb.lam_in ? jb.lam_in[i] : 1.0f;
        ste[i] = jb.eta_in ? jb.eta_in[i] : 0.0f;
    }
    for (int64_t j = p->first[n]; j < g; j++)
        apply_map(p->sums + (size_t)(j * p->nb + blk) * SUM_FLOATS(p->S), jb.n, p->S, st, ste);
    jb.lam_in = st;
    jb.eta_in = ste;
    if (g + 1 < p->first[n + 1]) { /* not the last piece: the final state is not wanted */
        jb.lam = st;
        jb.eta = ste;
    }
    p->ctx->kern.kalman_rec(&jb);
}

static void piece_job(void *arg, int64_t unit, int thread)
{
    const kalman_plan *p = arg;
    const int64_t g = unit / p->nb;
    if (g + 1 < p->first[p->seq_of[g] + 1]) piece_run(p, g, unit % p->nb, thread);
}

static void last_job(void *arg, int64_t unit, int thread)
{
    const kalman_plan *p = arg;
    const int64_t n = unit / p->nb;
    if (p->first[n + 1] > p->first[n]) piece_run(p, p->first[n + 1] - 1, unit % p->nb, thread);
}

/* The scan's tables: pieces of L tokens per sequence. */
static int scan_tables(kalman_plan *p)
{
    int64_t row0, len;
    if (!(p->first = linattn_malloc(sizeof(int64_t) * (size_t)(p->nseq + 1))))
        return linattn_fail(LINATTN_ENOMEM, "kalman forward: out of memory for the scan");
    p->first[0] = 0;
    for (int64_t n = 0; n < p->nseq; n++) {
        linattn_seq_span(p->cu, p->T, n, &row0, &len);
        p->first[n + 1] = p->first[n] + (len + p->L - 1) / p->L;
    }
    p->npieces = p->first[p->nseq];
    const size_t maps = (size_t)p->npieces * (size_t)p->nb;
    if ((size_t)p->npieces > SIZE_MAX / sizeof(int64_t) ||
        maps > SIZE_MAX / sizeof(float) / SUM_FLOATS(p->S))
        return linattn_fail(LINATTN_EOVERFLOW, "kalman forward: scan tables overflow");
    p->seq_of = linattn_malloc(sizeof(int64_t) * (size_t)p->npieces);
    p->sums = linattn_aligned_alloc(64, sizeof(float) * maps * SUM_FLOATS(p->S));
    if (!p->seq_of || !p->sums)
        return linattn_fail(LINATTN_ENOMEM, "kalman forward: out of memory for the scan");
    for (int64_t n = 0; n < p->nseq; n++)
        for (int64_t g = p->first[n]; g < p->first[n + 1]; g++) p->seq_of[g] = n;
    return LINATTN_OK;
}

static int execute(kalman_plan *p, const char *what)
{
    int rc = LINATTN_OK;
    const int nt = linattn_max_threads(p->ctx);
    /* recurrence: groups of G blocks, as many jobs as threads at least */
    p->G = p->nb * p->nseq <= nt ? 1 : (p->nb * p->nseq + nt - 1) / nt;
    if (p->G > p->nb) p->G = p->nb;
    p->ngroups = (p->nb + p->G - 1) / p->G;
    if ((rc = linattn_runner_begin(&p->run, p->ctx,
                                   LINATTN_KALMAN_WORK(p->S) + 2u * BLK * p->S * (size_t)p->G,
                                   p->ref ? linattn_kalman_ref_work(p->S) : 0,
                                   sizeof(float) * 3 * (size_t)p->S * BLK * (size_t)p->nb, what)))
        goto done;
    p->ct = p->run.shared;
    if (p->L && (rc = scan_tables(p))) goto done;
    if (p->M * p->S <= 65536) /* a decode step's worth: not worth waking threads */
        for (int64_t blk = 0; blk < p->nb; blk++) const_job(p, blk, 0);
    else
        linattn_runner_jobs(&p->run, p->nb, const_job, p, 0);
    if (p->ctx->verbose)
        fprintf(stderr, "linattn: %s T=%lld M=%lld S=%d: %s %s", what, (long long)p->T,
                (long long)p->M, p->S, p->ref ? "ref" : p->ctx->kern.isa,
                p->L ? "scan" : "recurrent");
    if (p->ctx->verbose && p->L)
        fprintf(stderr, ", %lld pieces of %lld tokens", (long long)p->npieces, (long long)p->L);
    if (p->ctx->verbose) fprintf(stderr, ", %d thread%s\n", nt, nt == 1 ? "" : "s");
    if (!p->L) {
        linattn_runner_jobs(&p->run, p->nseq * p->ngroups, rec_job, p, 0);
    } else {
        linattn_runner_jobs(&p->run, p->npieces * p->nb, sum_job, p, 0);
        linattn_runner_jobs(&p->run, p->npieces * p->nb, piece_job, p, 0);
        linattn_runner_jobs(&p->run, p->nseq * p->nb, last_job, p, 0);
    }
done:
    linattn_runner_end(&p->run);
    free(p->first);
    free(p->seq_of);
    free(p->sums);
    return rc;
}

/* ---- entry points -------------------------------------------------------- */

static int check_opts(const linattn_kalman_opts *o)
{
    if (o->algo < LINATTN_ALGO_AUTO || o->algo > LINATTN_ALGO_CHUNK)
        return linattn_fail(LINATTN_EINVAL, "opts.algo: unknown value %d", (int)o->algo);
    if (o->chunk < 0) return linattn_fail(LINATTN_ERANGE, "opts.chunk: %d (must be >= 0)", o->chunk);
    return LINATTN_OK;
}

static int begin(const linattn_ctx *ctx, const void *io, const linattn_kalman_opts *in,
                 linattn_kalman_opts *opts)
{
    const int rc = linattn_check_call(ctx, io);
    if (rc) return rc;
    linattn_kalman_opts_init(opts);
    if (in) *opts = *in;
    return check_opts(opts);
}

/* v, lam_v of rank nd with shape lead (its last = M), k and q with lead's
 * leading dims and S last; decay and noise [M,S]; y (and yvar) like v. */
static int check_inputs(const linattn_tensor *const *t, const char *const *names, int nd,
                        int64_t *lead, int64_t *S)
{
    int rc;
    int64_t sh[LINATTN_MAX_DIMS];
    if ((rc = linattn_check_lead(t[0], names[0], nd, lead))) return rc;
    if ((rc = linattn_check_tensor(t[1], names[1], nd, lead))) return rc;
    if ((rc = linattn_check_lead(t[2], names[2], nd, sh))) return rc;
    for (int d = 0; d < nd - 1; d++)
        if (sh[d] != lead[d])
            return linattn_fail(LINATTN_ESHAPE, "%s: dimension %d is %lld, v's is %lld",
                                names[2], d, (long long)sh[d], (long long)lead[d]);
    *S = sh[nd - 1];
    if (*S > LINATTN_KALMAN_MAX_STATES)
        return linattn_fail(LINATTN_EHEADDIM, "%s: %lld states (at most %d)", names[2],
                            (long long)*S, LINATTN_KALMAN_MAX_STATES);
    if ((rc = linattn_check_tensor(t[3], names[3], nd, sh))) return rc;
    const int64_t ms[2] = {lead[nd - 1], *S};
    if ((rc = linattn_check_tensor(t[4], names[4], 2, ms))) return rc;
    if ((rc = linattn_check_tensor(t[5], names[5], 2, ms))) return rc;
    if ((rc = linattn_check_tensor(t[6], names[6], nd, lead))) return rc;
    if (linattn_given(t[7]) && (rc = linattn_check_tensor(t[7], names[7], nd, lead))) return rc;
    return LINATTN_OK;
}

/* The state pairs (lam, eta) [N,M,S], or with slots pools [P,M,S] (P from
 * the pair's first tensor) and the slots checked against them; step: (a, b)
 * the required in-place state, c and d unused. */
static int check_states(const linattn_tensor *a, const linattn_tensor *b,
                        const linattn_tensor *c, const linattn_tensor *d, const int64_t *slot,
                        int64_t nseq, int64_t M, int64_t S, int step)
{
    int rc;
    const linattn_tensor *pr[2][2] = {{a, b}, {c, d}};
    static const char *const nm[3][2] = {{"lam0", "eta0"}, {"lamT", "etaT"},
                                         {"state_lam", "state_eta"}};
    int64_t P = -1;
    for (int i = 0; i < (step ? 1 : 2); i++) {
        const linattn_tensor *x = pr[i][0];
        const int64_t n = slot && linattn_given(x) && x->ndim == 3 && x->shape[0] >= 1
                              ? x->shape[0] : nseq;
        const int64_t st[3] = {n, M, S};
        const char *const *name = nm[step ? 2 : i];
        if ((rc = linattn_check_pair(pr[i][0], pr[i][1], name[0], name[1], 3, st, 3, st, step)))
            return rc;
        if (linattn_given(x) && (P < 0 || n < P)) P = n;
    }
    if (!slot) return LINATTN_OK;
    if (P < 0) return linattn_fail(LINATTN_EINVAL, "state_indices: given without a pool");
    return linattn_serve_slots(slot, nseq, P);
}

/* Tokens a .. e of the sequence at batch row b from token t0, from the
 * state src into dst (lam, eta each). */
static int stretch(linattn_ctx *ctx, const linattn_kalman_io *x, const linattn_kalman_opts *opts,
                   int64_t b, int64_t t0, int64_t a, int64_t e, const linattn_tensor *src,
                   const linattn_tensor *dst)
{
#define TOKS(t) linattn_serve_sub(&x->t, b, 1, t0 + a, e - a)
    const linattn_kalman_io f = {
        .v = TOKS(v), .lam_v = TOKS(lam_v), .k = TOKS(k), .q = TOKS(q), .decay = x->decay,
        .noise = x->noise, .y = TOKS(y), .yvar = TOKS(yvar), .lam0 = src[0], .eta0 = src[1],
        .lamT = dst[0], .etaT = dst[1]};
#undef TOKS
    return linattn_kalman_forward(ctx, &f, opts);
}

/* OpenCL with slots: plain calls on views of the pools, one per sequence
 * (forward) or row (step; a row from the prior as a one-token forward),
 * after every check passed (linattn_kalman(3), SERVING). */
static int kalman_split(linattn_ctx *ctx, const linattn_kalman_io *x,
                        const linattn_kalman_opts *opts, const linattn_serve *sv, int64_t nseq,
                        int64_t T, int step)
{
    const linattn_tensor none = linattn_tensor_none();
    const int64_t *cu = x->cu_seqlens;
    int rc = LINATTN_OK;
    for (int64_t n = 0; n < nseq && !rc; n++) {
        const int64_t slot = x->state_indices ? x->state_indices[n] : n;
        const int fresh = slot < 0 || (x->has_initial_state && !x->has_initial_state[n]);
#define SUB(t, i0, n0, i1, n1) linattn_serve_sub(&x->t, i0, n0, i1, n1)
        const linattn_tensor lamT = slot >= 0 ? SUB(lamT, slot, 1, 0, -1) : none;
        const linattn_tensor etaT = slot >= 0 ? SUB(etaT, slot, 1, 0, -1) : none;
        if (step && !fresh) {
            const linattn_kalman_step_io s = {
                .v = SUB(v, n, 1, 0, -1), .lam_v = SUB(lam_v, n, 1, 0, -1),
                .k = SUB(k, n, 1, 0, -1), .q = SUB(q, n, 1, 0, -1), .decay = x->decay,
                .noise = x->noise, .y = SUB(y, n, 1, 0, -1), .yvar = SUB(yvar, n, 1, 0, -1),
                .state_lam = lamT, .state_eta = etaT};
            rc = linattn_kalman_step(ctx, &s, opts);
        } else if (step) {
#define TOK(t) linattn_serve_tok(&x->t, n)
            const linattn_kalman_io f = {
                .v = TOK(v), .lam_v = TOK(lam_v), .k = TOK(k), .q = TOK(q), .decay = x->decay,
                .noise = x->noise, .y = TOK(y), .yvar = TOK(yvar), .lamT = lamT, .etaT = etaT};
#undef TOK
            rc = linattn_kalman_forward(ctx, &f, opts);
        } else { /* one stretch between cuts at a time, again for each destination */
            const int64_t b = cu ? 0 : n, t0 = cu ? cu[n] : 0, len = cu ? cu[n + 1] - t0 : T;
            const int rd = !fresh && linattn_given(&x->lam0);
            linattn_tensor src[2] = {rd ? SUB(lam0, slot, 1, 0, -1) : none,
                                     rd ? SUB(eta0, slot, 1, 0, -1) : none};
            for (int64_t t = 0, e; t < len && !rc; t = e) {
                e = linattn_serve_next_cut(sv, n, len, t);
                const int64_t c = linattn_serve_ckpt_row(sv, n, e);
                linattn_tensor d[3][2];
                int nd = 0;
                if (sv->W && e >= len - sv->W + 1) {
                    const int64_t r = n * sv->W + e - (len - sv->W + 1);
                    d[nd][0] = SUB(lamW, r, 1, 0, -1);
                    d[nd++][1] = SUB(etaW, r, 1, 0, -1);
                }
                if (c >= 0) {
                    d[nd][0] = SUB(lamC, c, 1, 0, -1);
                    d[nd++][1] = SUB(etaC, c, 1, 0, -1);
                }
                if (e == len && slot >= 0 && linattn_given(&x->lamT)) { /* may be src's */
                    d[nd][0] = lamT;
                    d[nd++][1] = etaT;
                }
                if (!nd) {
                    d[0][0] = d[0][1] = none;
                    nd = 1;
                }
                for (int i = 0; i < nd && !rc; i++)
                    rc = stretch(ctx, x, opts, b, t0, t, e, src, d[i]);
                src[0] = d[0][0];
                src[1] = d[0][1];
            }
        }
#undef SUB
    }
    return rc;
}

/* Everything after the shape checks, for forward and step (step: T = 1,
 * sequence n is batch row n, lam0 = lamT = the state).  The order of x's
 * tensors below is the order of names[]. */
static int run(linattn_ctx *ctx, linattn_kalman_io *x, const char *const *names, int64_t T,
               int64_t M, int64_t S, int64_t nseq, const linattn_kalman_opts *opts,
               const linattn_serve *sv, int step)
{
    int rc;
    linattn_tensor *const ts[] = {&x->v, &x->lam_v, &x->k, &x->q, &x->decay, &x->noise,
                                  &x->y, &x->yvar, &x->lam0, &x->eta0, &x->lamT, &x->etaT,
                                  &x->lamW, &x->etaW, &x->lamC, &x->etaC};
    linattn_packset ps;
    /* with slots a packed final-state pool is read in too: the slots no
     * sequence names are written back as they were; checkpoint rows no
     * sequence reaches likewise */
    const int slots = x->state_indices || x->has_initial_state;
    if ((rc = linattn_views_begin(&ps, ctx, ts, names, 16, (slots ? 0xF3Fu : 0x33Fu) | 0xC000u,
                                  0xFCC0u, 0, 0, 0)))
        return rc;
    const linattn_value_check vc[] = {{&x->decay, names[4], LINATTN_RANGE_OPEN_UNIT},
                                      {&x->noise, names[5], LINATTN_RANGE_NONNEG},
                                      {&x->lam_v, names[1], LINATTN_RANGE_POS},
                                      {&x->lam0, names[8], LINATTN_RANGE_POS}};
    if ((rc = linattn_check_values(ctx, vc, 4))) return linattn_pack_end(&ps, rc);
    if (ctx->cl && (slots || sv->on)) /* plain calls on views */
        return linattn_pack_end(&ps, kalman_split(ctx, x, opts, sv, nseq, T, step));
    linattn_clear_error();
    const int64_t nb = (M + BLK - 1) / BLK;
    const int nt = linattn_max_threads(ctx);
    int64_t L = 0;
    if (!step && ctx->backend != LINATTN_BACKEND_REF && !sv->on) {
        /* auto: the scan only when the recurrence's jobs leave most threads
         * idle and the sequences are long; pieces follow T only */
        const int scan = opts->algo == LINATTN_ALGO_CHUNK ||
                         (opts->algo == LINATTN_ALGO_AUTO && 4 * nseq * nb <= nt && T >= 4096);
        if (scan) L = opts->chunk ? opts->chunk : (T + 63) / 64 > 256 ? (T + 63) / 64 : 256;
    }
    linattn_cl_kalman a = {
        .step = step, .T = T, .M = M, .S = (int)S, .nseq = nseq, .cu = x->cu_seqlens,
        .L = opts->algo == LINATTN_ALGO_RECURRENT ? T : L,
        .v = linattn_cl_arg_of(&x->v), .lv = linattn_cl_arg_of(&x->lam_v),
        .k = linattn_cl_arg_of(&x->k), .q = linattn_cl_arg_of(&x->q),
        .a = linattn_cl_arg_of(&x->decay), .p = linattn_cl_arg_of(&x->noise),
        .lam0 = linattn_cl_arg_of(&x->lam0), .eta0 = linattn_cl_arg_of(&x->eta0),
        .y = linattn_cl_arg_of(&x->y), .yvar = linattn_cl_arg_of(&x->yvar),
        .lamT = linattn_cl_arg_of(&x->lamT), .etaT = linattn_cl_arg_of(&x->etaT),
    };
    if (ctx->cl) {
        int scan = 0;
        a.scan = &scan;
        rc = linattn_cl_kalman_run(ctx->cl, &a);
        if (!(rc && linattn_cl_fallback(ctx, rc, ts, 12)))
            return linattn_form_ran(ctx, linattn_pack_end(&ps, rc), "kalman", step,
                                    scan ? "scan" : "recurrent",
                                    step ? "a step runs the recurrence"
                                    : opts->algo ? "forced by opts.algo"
                                    : "auto: OpenCL splits sequences into pieces (the scan) "
                                      "when they are too few for its work-items");
    }
    kalman_plan p = {
        .ctx = ctx, .T = T, .M = M, .nseq = nseq, .L = L, .S = (int)S, .nb = (int)nb,
        .ref = ctx->backend == LINATTN_BACKEND_REF, .cu = x->cu_seqlens,
        .slot = x->state_indices, .init = x->has_initial_state,
        .v = linattn_host(&x->v), .lv = linattn_host(&x->lam_v), .k = linattn_host(&x->k),
        .q = linattn_host(&x->q), .a = linattn_host(&x->decay), .p = linattn_host(&x->noise),
        .lam0 = linattn_host(&x->lam0), .eta0 = linattn_host(&x->eta0),
        .y = linattn_host(&x->y), .yvar = linattn_host(&x->yvar),
        .lamT = linattn_host(&x->lamT), .etaT = linattn_host(&x->etaT), .sv = *sv,
        .lamW = linattn_host(&x->lamW), .etaW = linattn_host(&x->etaW),
        .lamC = linattn_host(&x->lamC), .etaC = linattn_host(&x->etaC),
    };
    rc = linattn_pack_end(&ps, execute(&p, step ? "kalman step" : "kalman forward"));
    const char *why = linattn_form_why(opts->algo, step, p.ref);
    if (!why && sv->on) why = "rollback or checkpoint rows: the recurrence, cut at the rows";
    else if (sv->on && opts->algo == LINATTN_ALGO_CHUNK && !p.ref)
        why = "rollback or checkpoint rows: the recurrence, cut at the rows (not the scan)";
    return linattn_form_ran(ctx, rc, "kalman", step, p.ref ? "reference" : L ? "scan" : "recurrent",
                            why ? why : L ? "auto: scan, the recurrence would leave most threads "
                                             "idle on long sequences"
                                           : "auto: recurrent, enough sequences and lanes for "
                                             "the threads, or short sequences");
}

int linattn_kalman_forward(linattn_ctx *ctx, const linattn_kalman_io *io,
                           const linattn_kalman_opts *oin)
{
    int rc;
    int64_t s[3], S, nseq;
    linattn_kalman_opts opts;
    if ((rc = begin(ctx, io, oin, &opts))) return rc;
    static const char *const names[] = {"v", "lam_v", "k", "q", "decay", "noise",
                                        "y", "yvar", "lam0", "eta0", "lamT", "etaT",
                                        "lamW", "etaW", "lamC", "etaC"};
    const linattn_tensor *in[] = {&io->v, &io->lam_v, &io->k, &io->q, &io->decay, &io->noise,
                                  &io->y, &io->yvar};
    if ((rc = check_inputs(in, names, 3, s, &S))) return rc;
    if ((rc = linattn_check_sequences(io->cu_seqlens, io->n_seqs, s[0], s[1], &nseq)))
        return rc;
    if ((rc = check_states(&io->lam0, &io->eta0, &io->lamT, &io->etaT, io->state_indices, nseq,
                           s[2], S, 0)))
        return rc;
    linattn_serve sv;
    const linattn_rows_spec rs = {
        .n = 2, .w = {&io->lamW, &io->etaW}, .c = {&io->lamC, &io->etaC},
        .wn = {"lamW", "etaW"}, .cn = {"lamC", "etaC"}, .nd = {3, 3},
        .sh = {{0, s[2], S}, {0, s[2], S}}};
    if ((rc = linattn_serve_rows_check(&rs, nseq, io->cu_seqlens, s[1], io->checkpoint_every,
                                       io->checkpoint_offsets, &sv)))
        return rc;
    linattn_kalman_io x = *io;
    return run(ctx, &x, names, s[1], s[2], S, nseq, &opts, &sv, 0);
}

int linattn_kalman_step(linattn_ctx *ctx, const linattn_kalman_step_io *io,
                        const linattn_kalman_opts *oin)
{
    int rc;
    int64_t s[2], S;
    linattn_kalman_opts opts;
    if ((rc = begin(ctx, io, oin, &opts))) return rc;
    static const char *const names[] = {"v", "lam_v", "k", "q", "decay", "noise", "y", "yvar",
                                        "state_lam", "state_eta", "state_lam", "state_eta",
                                        "", "", "", ""};
    const linattn_tensor *in[] = {&io->v, &io->lam_v, &io->k, &io->q, &io->decay, &io->noise,
                                  &io->y, &io->yvar};
    if ((rc = check_inputs(in, names, 2, s, &S))) return rc;
    if ((rc = check_states(&io->state_lam, &io->state_eta, NULL, NULL, io->state_indices, s[0],
                           s[1], S, 1)))
        return rc;
    /* B sequences of one token: the forward's path with the state as both
     * lam0/eta0 and lamT/etaT, the [B,M] tensors read as [B,1,M] */
    linattn_kalman_io x = {.v = io->v, .lam_v = io->lam_v, .k = io->k, .q = io->q,
                           .decay = io->decay, .noise = io->noise, .y = io->y, .yvar = io->yvar,
                           .lam0 = io->state_lam, .eta0 = io->state_eta,
                           .lamT = io->state_lam, .etaT = io->state_eta,
                           .state_indices = io->state_indices,
                           .has_initial_state = io->has_initial_state};
    linattn_serve sv;
    memset(&sv, 0, sizeof sv);
    return run(ctx, &x, names, 1, s[1], S, s[0], &opts, &sv, 1);
}
