/* linattn - driver of causal softmax attention: argument checks; the
 * blocked forward, one job per (block of query rows, head); the decode step
 * over a KV cache, split-K: one job per (batch row, head, split of the
 * cache), then a log-sum-exp merge of the splits per (batch row, head).
 * The splits depend on the cache length only, so the result bits do not
 * depend on the thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define DEFAULT_BLOCK 64
#define SPLIT_MIN 128   /* keys in a split of the CPU step: at least */
#define SPLIT_MAX 4096  /* and at most; about 64 splits in between */

void linattn_softmax_opts_init(linattn_softmax_opts *opts)
{
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
}

static int check_opts(const linattn_softmax_opts *o)
{
    if (!isfinite(o->scale)) return linattn_fail(LINATTN_ERANGE, "opts.scale: not finite");
    if (o->chunk < 0 || o->chunk > LINATTN_MAX_CHUNK)
        return linattn_fail(LINATTN_ERANGE, "opts.chunk: %d (must be 0..%d)", o->chunk,
                            LINATTN_MAX_CHUNK);
    return LINATTN_OK;
}

static int begin(const linattn_ctx *ctx, const void *io, const linattn_softmax_opts *in,
                 linattn_softmax_opts *opts)
{
    const int rc = linattn_check_call(ctx, io);
    if (rc) return rc;
    linattn_softmax_opts_init(opts);
    if (in) *opts = *in;
    return check_opts(opts);
}

/* q [.., Hq, K], k [.., Hkv, K], v [.., Hkv, V] with Hq a multiple of Hkv
 * (grouped query heads): s receives v's leading dimensions and K. */
static int check_qkv(const linattn_tensor *q, const linattn_tensor *k, const linattn_tensor *v,
                     int ndim, int64_t *s, int64_t *V, linattn_heads *hd)
{
    const int rc = linattn_check_qkv(q, k, v, ndim, s, V, hd);
    if (rc) return rc;
    if (hd->v != hd->k)
        return linattn_fail(LINATTN_ESHAPE, "v: %lld heads, k's are %lld (k and v must have the "
                            "same heads)", (long long)hd->v, (long long)hd->k);
    return LINATTN_OK;
}

static float scale_of(const linattn_softmax_opts *o, int64_t K)
{
    return o->scale != 0.0f ? o->scale : 1.0f / sqrtf((float)K);
}

/* ---- forward ------------------------------------------------------------ */

typedef struct fwd_plan {
    const linattn_ctx *ctx;
    int64_t T, H, G, nblk;   /* H query heads, G of them per key/value head */
    int K, V, QB, ref;
    const int64_t *cu, *blk; /* blk: per block {sequence, first row} */
    linattn_rows q, k, v, o;
    linattn_runner run;      /* per-thread work (or doubles); blk is its shared part */
    float scale;
} fwd_plan;

static void fwd_job(void *arg, int64_t job, int thread)
{
    const fwd_plan *p = arg;
    const int64_t h = job % p->H, kh = h / p->G, bi = p->nblk - 1 - job / p->H; /* longest first */
    const int64_t n = p->blk[2 * bi], i0 = p->blk[2 * bi + 1];
    const int64_t b = p->cu ? 0 : n, t0 = p->cu ? p->cu[n] : 0;
    const int64_t len = p->cu ? p->cu[n + 1] - p->cu[n] : p->T;
    const int nq = (int)(len - i0 < p->QB ? len - i0 : p->QB);
    const float *q = linattn_row(&p->q, b, t0 + i0, h), *k = linattn_row(&p->k, b, t0, kh);
    const float *v = linattn_row(&p->v, b, t0, kh);
    float *o = linattn_row(&p->o, b, t0 + i0, h);
    if (p->ref) {
        double *w = linattn_runner_dwork(&p->run, thread);
        for (int i = 0; i < nq; i++)
            linattn_softmax_ref_row(i0 + i + 1, p->K, p->V, p->k.st, p->v.st, q + i * p->q.st, k,
                                    v, o + i * p->o.st, p->scale, w);
        return;
    }
    const linattn_softmax_fwd_job jb = {
        .q0 = i0, .nq = nq, .K = p->K, .V = p->V, .bk = p->QB, .sq = p->q.st, .sk = p->k.st,
        .sv = p->v.st, .so = p->o.st, .q = q, .k = k, .v = v, .o = o,
        .work = linattn_runner_work(&p->run, thread), .scale = p->scale,
    };
    p->ctx->kern.softmax_fwd(&jb);
}

static int forward_cpu(fwd_plan *p, int64_t nseq)
{
    const int nt = linattn_max_threads(p->ctx);
    int64_t maxlen = 0, tok0, len;
    p->nblk = 0;
    for (int64_t n = 0; n < nseq; n++) {
        linattn_seq_span(p->cu, p->T, n, &tok0, &len);
        p->nblk += (len + p->QB - 1) / p->QB;
        if (len > maxlen) maxlen = len;
    }
    const int rc = linattn_runner_begin(
        &p->run, p->ctx, p->ref ? 0 : linattn_softmax_fwd_work(p->K, p->V, p->QB, p->QB),
        p->ref ? (size_t)(maxlen + p->V) : 0, sizeof(int64_t) * 2 * (size_t)p->nblk,
        "softmax forward");
    if (rc) return rc;
    int64_t *blk = p->run.shared, nb = 0;
    for (int64_t n = 0; n < nseq; n++) {
        linattn_seq_span(p->cu, p->T, n, &tok0, &len);
        for (int64_t i0 = 0; i0 < len; i0 += p->QB) {
            blk[2 * nb] = n;
            blk[2 * nb + 1] = i0;
            nb++;
        }
    }
    p->blk = blk;
    if (p->ctx->verbose)
        fprintf(stderr, "linattn: softmax forward T=%lld H=%lld (%lld per k/v head) K=%d V=%d: "
                "%s, blocks of %d, %d thread%s\n", (long long)p->T, (long long)p->H,
                (long long)p->G, p->K, p->V,
                p->ref ? "ref" : p->ctx->kern.isa, p->QB, nt, nt == 1 ? "" : "s");
    linattn_runner_jobs(&p->run, p->nblk * p->H, fwd_job, p, 0);
    linattn_runner_end(&p->run);
    return LINATTN_OK;
}

int linattn_softmax_forward(linattn_ctx *ctx, const linattn_softmax_io *io,
                            const linattn_softmax_opts *oin)
{
    int rc;
    int64_t s[4], V, nseq;
    linattn_heads hd;
    linattn_softmax_opts opts;
    if ((rc = begin(ctx, io, oin, &opts))) return rc;
    if ((rc = check_qkv(&io->q, &io->k, &io->v, 4, s, &V, &hd))) return rc;
    const int64_t K = s[3], osh[4] = {s[0], s[1], hd.q, V};
    if ((rc = linattn_check_tensor(&io->o, "o", 4, osh))) return rc;
    if ((rc = linattn_check_sequences(io->cu_seqlens, io->n_seqs, s[0], s[1], &nseq)))
        return rc;
    linattn_softmax_io x = *io;
    linattn_tensor *const ts[] = {&x.q, &x.k, &x.v, &x.o};
    static const char *const names[] = {"q", "k", "v", "o"};
    linattn_packset ps;
    if ((rc = linattn_views_begin(&ps, ctx, ts, names, 4, 0x7u, 0x8u, 0xFu, 0, 0))) return rc;
    linattn_clear_error();
    const float scale = scale_of(&opts, K);
    if (ctx->cl) {
        const linattn_cl_softmax a = {
            .T = s[1], .H = hd.q, .Hk = hd.k, .nseq = nseq, .K = (int)K, .V = (int)V, .cu = io->cu_seqlens,
            .scale = scale, .q = linattn_cl_arg_of(&x.q), .k = linattn_cl_arg_of(&x.k),
            .v = linattn_cl_arg_of(&x.v), .o = linattn_cl_arg_of(&x.o),
        };
        rc = linattn_cl_softmax_run(ctx->cl, &a);
        if (!(rc && linattn_cl_fallback(ctx, rc, ts, 4)))
            return linattn_form_ran(ctx, linattn_pack_end(&ps, rc), "softmax", 0, "blocked",
                                    "its only form (online softmax over key blocks)");
    }
    fwd_plan p = {
        .ctx = ctx, .T = s[1], .H = hd.q, .G = hd.q / hd.k, .K = (int)K, .V = (int)V,
        .QB = opts.chunk ? opts.chunk : DEFAULT_BLOCK, .ref = ctx->backend == LINATTN_BACKEND_REF,
        .cu = io->cu_seqlens, .q = linattn_rows_of(&x.q, 1, 1), .k = linattn_rows_of(&x.k, 1, 1),
        .v = linattn_rows_of(&x.v, 1, 1), .o = linattn_rows_of(&x.o, 1, 1), .scale = scale,
    };
    return linattn_form_ran(ctx, linattn_pack_end(&ps, forward_cpu(&p, nseq)), "softmax", 0,
                            p.ref ? "reference" : "blocked",
                            p.ref ? linattn_form_why(0, 0, 1)
                                  : "its only form (online softmax over key blocks)");
}

/* ---- decode step over the cache ----------------------------------------- */

/* Keys per split for a cache of L tokens (a function of L alone). */
static int64_t split_len(int64_t L)
{
    int64_t s = (L + 63) / 64;
    s = (s + 63) / 64 * 64;
    return s < SPLIT_MIN ? SPLIT_MIN : s > SPLIT_MAX ? SPLIT_MAX : s;
}

typedef struct dec_plan {
    const linattn_ctx *ctx;
    const linattn_kvcache *c;
    int64_t H, G, L, S, nsplit; /* H query heads, G of them per cache head */
    linattn_rows q, o;
    float *part;                /* the runner's shared part */
    linattn_runner run;         /* per-thread work (or the reference's doubles) */
    float scale;
} dec_plan;

/* Query row (batch row b, query head h) = b*H + h reads cache row b*c->H + h/G. */
static int64_t cache_row(const dec_plan *p, int64_t row)
{
    return row / p->H * p->c->H + row % p->H / p->G;
}

static void dec_job(void *arg, int64_t job, int thread)
{
    const dec_plan *p = arg;
    const linattn_kvcache *c = p->c;
    const int64_t row = job / p->nsplit, j0 = job % p->nsplit * p->S, cr = cache_row(p, row);
    const linattn_softmax_dec_job jb = {
        .n = p->L - j0 < p->S ? p->L - j0 : p->S, .K = (int)c->K, .V = (int)c->V,
        .q = linattn_row(&p->q, row / p->H, 0, row % p->H), .k = c->hk + (cr * c->cap + j0) * c->K,
        .v = c->hv + (cr * c->cap + j0) * c->V, .part = p->part + job * (c->V + 2),
        .work = linattn_runner_work(&p->run, thread), .scale = p->scale,
    };
    p->ctx->kern.softmax_dec(&jb);
}

/* o = sum_s w_s part_s / sum_s w_s l_s, w_s = exp(m_s - max m), s in order */
static void merge_row(void *arg, int64_t row, int thread)
{
    (void)thread;
    const dec_plan *p = arg;
    const int V = (int)p->c->V;
    const float *part = p->part + row * p->nsplit * (V + 2);
    float *o = linattn_row(&p->o, row / p->H, 0, row % p->H), M = -INFINITY, den = 0.0f;
    for (int64_t s = 0; s < p->nsplit; s++) M = fmaxf(M, part[s * (V + 2) + V]);
    for (int c = 0; c < V; c++) o[c] = 0.0f;
    for (int64_t s = 0; s < p->nsplit; s++) {
        const float *ps = part + s * (V + 2), w = expf(ps[V] - M);
        den += w * ps[V + 1];
        for (int c = 0; c < V; c++) o[c] += w * ps[c];
    }
    const float r = 1.0f / den;
    for (int c = 0; c < V; c++) o[c] *= r;
}

static void ref_row_job(void *arg, int64_t row, int thread)
{
    const dec_plan *p = arg;
    const linattn_kvcache *c = p->c;
    const int64_t cr = cache_row(p, row), b = row / p->H, h = row % p->H;
    linattn_softmax_ref_row(p->L, (int)c->K, (int)c->V, (ptrdiff_t)c->K, (ptrdiff_t)c->V,
                            linattn_row(&p->q, b, 0, h), c->hk + cr * c->cap * c->K,
                            c->hv + cr * c->cap * c->V, linattn_row(&p->o, b, 0, h), p->scale,
                            linattn_runner_dwork(&p->run, thread));
}

/* The step on the CPU (fast kernels or the reference) for H query heads;
 * room for the new token is reserved.  Scratch first: once the token is in,
 * nothing fails. */
static int step_cpu(linattn_ctx *ctx, linattn_kvcache *c, const linattn_softmax_step_io *x,
                    int64_t H, float scale)
{
    const int nt = linattn_max_threads(ctx), ref = ctx->backend == LINATTN_BACKEND_REF;
    const int64_t rows = c->B * H, L = c->len + 1;
    dec_plan p = {.ctx = ctx, .c = c, .H = H, .G = H / c->H, .L = L, .S = split_len(L),
                  .q = linattn_rows_of(&x->q, 0, 1), .o = linattn_rows_of(&x->o, 0, 1),
                  .scale = scale};
    p.nsplit = (L + p.S - 1) / p.S;
    const int rc = linattn_runner_begin(&p.run, ctx, ref ? 0 : (size_t)p.S,
                                        ref ? (size_t)(L + c->V) : 0,
                                        ref ? 0 : sizeof(float) * (size_t)(rows * p.nsplit * (c->V + 2)),
                                        "softmax step");
    if (rc) return rc;
    p.part = p.run.shared;
    const linattn_rows k = linattn_rows_of(&x->k, 0, 1), v = linattn_rows_of(&x->v, 0, 1);
    linattn_kvcache_put(ctx, c, 1, &k, &v);
    if (ctx->verbose)
        fprintf(stderr, "linattn: softmax step B=%lld H=%lld (%lld per k/v head) K=%lld V=%lld "
                "over %lld tokens: %s, %lld split%s of %lld, %d thread%s\n", (long long)c->B,
                (long long)H, (long long)p.G, (long long)c->K, (long long)c->V, (long long)L,
                ref ? "ref" : ctx->kern.isa, (long long)p.nsplit, p.nsplit == 1 ? "" : "s",
                (long long)p.S, nt, nt == 1 ? "" : "s");
    if (ref) {
        linattn_runner_jobs(&p.run, rows, ref_row_job, &p, 0);
    } else {
        linattn_runner_jobs(&p.run, rows * p.nsplit, dec_job, &p, 0);
        linattn_runner_jobs(&p.run, rows, merge_row, &p, 0);
    }
    linattn_runner_end(&p.run);
    return LINATTN_OK;
}

int linattn_softmax_step(linattn_ctx *ctx, linattn_kvcache *c, const linattn_softmax_step_io *io,
                         const linattn_softmax_opts *oin)
{
    int rc;
    int64_t s[3], V;
    linattn_heads hd;
    linattn_softmax_opts opts;
    if (!ctx) return linattn_fail(LINATTN_ENULL, "ctx: NULL");
    if (!c) return linattn_fail(LINATTN_ENULL, "cache: NULL");
    if ((rc = begin(ctx, io, oin, &opts))) return rc;
    if (c->ctx != ctx) return linattn_fail(LINATTN_EINVAL, "cache: belongs to another context");
    if ((rc = check_qkv(&io->q, &io->k, &io->v, 3, s, &V, &hd))) return rc;
    /* s: B and the key/value heads of k and v, q's K */
    const int64_t want[3] = {c->B, c->H, c->K};
    static const char *const what[3] = {"q: dimension 0 (B)", "k: dimension 1 (heads)",
                                        "q: dimension 2 (K)"};
    for (int d = 0; d < 3; d++)
        if (s[d] != want[d])
            return linattn_fail(LINATTN_ESHAPE, "%s is %lld, the cache's is %lld", what[d],
                                (long long)s[d], (long long)want[d]);
    if (V != c->V)
        return linattn_fail(LINATTN_ESHAPE, "v: dimension 2 (V) is %lld, the cache's is %lld",
                            (long long)V, (long long)c->V);
    const int64_t osh[3] = {s[0], hd.q, V};
    if ((rc = linattn_check_tensor(&io->o, "o", 3, osh))) return rc;
    linattn_softmax_step_io x = *io;
    linattn_tensor *const ts[] = {&x.q, &x.k, &x.v, &x.o};
    static const char *const names[] = {"q", "k", "v", "o"};
    linattn_packset ps;
    if ((rc = linattn_views_begin(&ps, ctx, ts, names, 4, 0x7u, 0x8u, 0xFu, 0, 0))) return rc;
    linattn_clear_error();
    if ((rc = linattn_kvcache_reserve(c, 1))) return linattn_pack_end(&ps, rc);
    const float scale = scale_of(&opts, c->K);
    if (ctx->cl) {
        const linattn_cl_kvstep a = {
            .B = c->B, .T = 1, .H = c->H, .Hq = hd.q, .len = c->len, .cap = c->cap,
            .K = (int)c->K, .V = (int)c->V, .scale = scale, .q = linattn_cl_arg_of(&x.q),
            .k = linattn_cl_arg_of(&x.k), .v = linattn_cl_arg_of(&x.v), .o = linattn_cl_arg_of(&x.o),
        };
        rc = linattn_cl_kv_run(ctx->cl, &c->dev, &a);
    } else {
        rc = step_cpu(ctx, c, &x, hd.q, scale);
    }
    if (!rc) c->len++;
    const int ref = ctx->backend == LINATTN_BACKEND_REF;
    return linattn_form_ran(ctx, linattn_pack_end(&ps, rc), "softmax", 1,
                            ref ? "reference" : "split",
                            ref ? linattn_form_why(0, 1, 1)
                                : "its only form (the cache's keys in splits, merged)");
}
