/* linattn - drivers of the delta-rule family (gdn, kla, gla): argument
 * checks, the plan (algorithm, column blocks, scratch), and the jobs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static const char *const op_names[] = {"gdn", "kla", "gla"};
static const char *const op_beta[] = {"beta", "eta", "beta"}; /* gla: absent */

#define DEFAULT_CHUNK 64
#define DEFAULT_EPS 1e-6f
#define COL_ALIGN 16
#define STAGE_T 128

void linattn_delta_opts_init(linattn_delta_opts *opts)
{
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
    opts->eps = DEFAULT_EPS;
    opts->algo = LINATTN_ALGO_AUTO;
}

/* Everything a job needs; decided once per call. */
typedef struct delta_plan {
    const linattn_ctx *ctx;
    int64_t T, H, Hk, nseq;      /* Hk key heads (q, k), H value heads */
    int K, V, map;                /* map: opts.head_map */
    const int64_t *cu;            /* NULL: sequence n is batch row n */
    const float *q, *k, *v, *g, *beta, *h0;
    float *o, *ht;
    float scale;
    linattn_algo algo;
    int C, nblk, blkw;
    int ref;
    int flags;                    /* LINATTN_DELTA_QKNORM, _LOGITS: the options */
    size_t pack_floats;           /* panel scratch for the SIMD kernels */
    size_t stage_floats;          /* staged token block (recurrent prefill) */
    linattn_runner run;           /* per-thread work (and the reference's doubles) */
} delta_plan;

/* The key head that value head h reads (linattn_gdn(3)). */
static int64_t key_head(int64_t h, int64_t H, int64_t Hk, int map)
{
    return map == LINATTN_HEADS_TILED ? h % Hk : h / (H / Hk);
}

/* The recurrent kernels sweep all tokens once per panel of columns.  With
 * H heads interleaved, consecutive tokens of a head lie H*K floats apart, a
 * stride the hardware prefetchers do not follow across pages; so tokens are
 * copied, STAGE_T at a time, into contiguous rows first (and o back).  The
 * kernel restarts on each block from the stored state: no result changes. */
static void run_staged(linattn_delta_rec_fn kern, const linattn_delta_rec_job *jb, float *stage)
{
    if (!stage || jb->T == 1 || (jb->sqk == jb->K && jb->sv == jb->n)) {
        kern(jb);
        return;
    }
    const int K = jb->K, n = jb->n;
    float *q = stage, *k = q + (size_t)STAGE_T * K, *v = k + (size_t)STAGE_T * K;
    float *o = v + (size_t)STAGE_T * n;
    for (int64_t t0 = 0; t0 < jb->T; t0 += STAGE_T) {
        const int c = (int)(jb->T - t0 < STAGE_T ? jb->T - t0 : STAGE_T);
        for (int r = 0; r < c; r++) {
            memcpy(q + (size_t)r * K, jb->q + (t0 + r) * jb->sqk, sizeof(float) * K);
            memcpy(k + (size_t)r * K, jb->k + (t0 + r) * jb->sqk, sizeof(float) * K);
            memcpy(v + (size_t)r * n, jb->v + (t0 + r) * jb->sv, sizeof(float) * n);
        }
        linattn_delta_rec_job b = *jb;
        b.T = c;
        b.q = q; b.k = k; b.sqk = K;
        b.v = v; b.o = o; b.sv = n;
        b.g = jb->g ? jb->g + t0 * jb->sg : NULL;
        b.beta = jb->beta ? jb->beta + t0 * jb->sg : NULL;
        kern(&b);
        for (int r = 0; r < c; r++)
            memcpy(jb->o + (t0 + r) * jb->sv, o + (size_t)r * n, sizeof(float) * n);
    }
}

static void run_job(void *arg, int64_t job, int thread)
{
    const delta_plan *p = arg;
    const int64_t blk = job % p->nblk, unit = job / p->nblk;
    const int64_t h = unit % p->H, n = unit / p->H;
    int64_t row0, len;
    linattn_seq_span(p->cu, p->T, n, &row0, &len);
    const size_t KV = (size_t)p->K * p->V;
    const int64_t tok0 = row0 * p->H + h;   /* index of (b, t0, h) */
    const int64_t kt0 = row0 * p->Hk + key_head(h, p->H, p->Hk, p->map); /* its key row */
    /* per-thread scratch: [panel pack][staged tokens][state if ht absent][chunk work] */
    float *work = linattn_runner_work(&p->run, thread);
    float *pack = p->pack_floats ? work : NULL;
    work += p->pack_floats;
    float *stage = p->stage_floats ? work : NULL;
    work += p->stage_floats;
    float *S = p->ht ? p->ht + (size_t)unit * KV : work;
    const int j0 = (int)blk * p->blkw;
    const int w = p->V - j0 < p->blkw ? p->V - j0 : p->blkw;

    /* initial state of this column block */
    const float *S0 = p->h0 ? p->h0 + (size_t)unit * KV : NULL;
    if (S0 != S)
        for (int i = 0; i < p->K; i++) {
            float *row = S + (size_t)i * p->V + j0;
            if (S0) memcpy(row, S0 + (size_t)i * p->V + j0, sizeof(float) * w);
            else memset(row, 0, sizeof(float) * w);
        }

    linattn_delta_rec_job jb = {
        .T = len, .K = p->K, .n = w,
        .sqk = (ptrdiff_t)(p->Hk * p->K), .sv = (ptrdiff_t)(p->H * p->V), .sg = (ptrdiff_t)p->H,
        .ldS = p->V,
        .q = p->q + kt0 * p->K, .k = p->k + kt0 * p->K, .v = p->v + tok0 * p->V + j0,
        .g = p->g ? p->g + tok0 : NULL, .beta = p->beta ? p->beta + tok0 : NULL,
        .o = p->o + tok0 * p->V + j0, .S = S + j0, .scale = p->scale, .pack = pack,
    };
    if (p->ref)
        linattn_delta_ref_seq(jb.T, p->K, p->V, jb.sqk, jb.sv, jb.sg, jb.q, jb.k, jb.v, jb.g,
                              jb.beta, jb.o, S, p->scale, p->flags,
                              linattn_runner_dwork(&p->run, thread));
    else if (p->algo == LINATTN_ALGO_CHUNK)
        linattn_delta_chunk(&jb, p->C, work + (p->ht ? 0 : KV));
    else
        run_staged(p->ctx->kern.delta_rec, &jb, stage);
}

/* kla: beta = eta / (|k|^2 + eps), one value per (token, value head), from
 * the key head that value head reads, computed in parallel blocks of rows
 * before the gdn kernels run.  norm: k is the raw k of a qk_l2norm call on
 * the reference, |k_hat|^2 = s / (s + 1e-6). */
#define KLA_ROWS 2048
typedef struct kla_arg {
    float *beta;
    const float *eta, *k;
    int64_t rows, H, Hk;
    int K, norm, map;
    float eps;
} kla_arg;

static void kla_rows(void *arg, int64_t blk, int thread)
{
    const kla_arg *a = arg;
    const int64_t r1 = (blk + 1) * KLA_ROWS < a->rows ? (blk + 1) * KLA_ROWS : a->rows;
    (void)thread;
    for (int64_t r = blk * KLA_ROWS; r < r1; r++) {
        const int64_t kr = r / a->H * a->Hk + key_head(r % a->H, a->H, a->Hk, a->map);
        const float *k = a->k + kr * a->K;
        double s[4] = {0.0, 0.0, 0.0, 0.0}; /* four chains: not latency-bound */
        int i = 0;
        for (; i + 4 <= a->K; i += 4)
            for (int j = 0; j < 4; j++) s[j] += (double)k[i + j] * k[i + j];
        for (; i < a->K; i++) s[0] += (double)k[i] * k[i];
        double nn = (s[0] + s[1]) + (s[2] + s[3]);
        if (a->norm) nn /= nn + LINATTN_QK_NORM_EPS;
        a->beta[r] = (float)(a->eta[r] / (nn + a->eps));
    }
}

/* opts.qk_l2norm and opts.beta_logits on the fast paths: normalised q, k
 * rows and sigmoid(beta) into scratch, in parallel blocks of rows, before
 * the kernels (which are unchanged) run on them. */
typedef struct stage_arg {
    const float *q, *k, *beta;  /* given; NULL: not staged */
    float *qn, *kn, *bs;
    int64_t rows, qkrows;       /* (token, value head) and (token, key head) rows */
    int K;
} stage_arg;

static void stage_rows(void *arg, int64_t blk, int thread)
{
    const stage_arg *a = arg;
    const int64_t r0 = blk * KLA_ROWS;
    (void)thread;
    if (a->q && r0 < a->qkrows) {
        const int64_t r1 = r0 + KLA_ROWS < a->qkrows ? r0 + KLA_ROWS : a->qkrows;
        linattn_l2norm_rows(a->q, a->qn, r0, r1, a->K);
        linattn_l2norm_rows(a->k, a->kn, r0, r1, a->K);
    }
    if (a->beta && r0 < a->rows)
        linattn_sigmoid(a->beta, a->bs, r0, r0 + KLA_ROWS < a->rows ? r0 + KLA_ROWS : a->rows);
}

static int check_opts(const linattn_ctx *ctx, int op, const linattn_delta_opts *o)
{
    if (o->beta_logits && op != LINATTN_OP_GDN)
        return linattn_fail(LINATTN_EINVAL, "opts.beta_logits: gdn only (%s takes no logits)",
                            op_names[op]);
    if (!isfinite(o->scale))
        return linattn_fail(LINATTN_ERANGE, "opts.scale: not finite");
    if (!(o->eps >= 0.0f) || !isfinite(o->eps))
        return linattn_fail(LINATTN_ERANGE, "opts.eps: %g (must be finite and >= 0)", o->eps);
    if (o->chunk < 0 || o->chunk > LINATTN_MAX_CHUNK)
        return linattn_fail(LINATTN_ERANGE, "opts.chunk: %d (must be 0..%d)", o->chunk,
                            LINATTN_MAX_CHUNK);
    if (o->algo < LINATTN_ALGO_AUTO || o->algo > LINATTN_ALGO_CHUNK)
        return linattn_fail(LINATTN_EINVAL, "opts.algo: unknown value %d", (int)o->algo);
    if (o->head_map != LINATTN_HEADS_GROUPED && o->head_map != LINATTN_HEADS_TILED)
        return linattn_fail(LINATTN_ERANGE, "opts.head_map: %d (must be 0, grouped, or 1, tiled)",
                            o->head_map);
#ifndef HAVE_CBLAS
    if (o->algo == LINATTN_ALGO_CHUNK && !ctx->cl) /* OpenCL has its own chunk form */
        return linattn_fail(LINATTN_EUNSUPPORTED, "opts.algo: chunk form needs BLAS, "
                                                  "which this build lacks");
#else
    (void)ctx;
#endif
    return LINATTN_OK;
}

/* Check the gate tensors: g optional, beta required except for gla. */
static int check_gates(int op, const linattn_tensor *g, const linattn_tensor *beta, int ndim,
                       const int64_t *shape)
{
    int rc;
    if (linattn_given(g) && (rc = linattn_check_tensor(g, "g", ndim, shape))) return rc;
    if (op == LINATTN_OP_GLA) {
        if (linattn_given(beta)) return linattn_fail(LINATTN_EINVAL, "beta: gla takes no beta");
        return LINATTN_OK;
    }
    return linattn_check_tensor(beta, op == LINATTN_OP_KLA ? "eta" : "beta", ndim, shape);
}

static int check_forward(int op, const linattn_delta_io *io, int64_t *s, int64_t *Hk,
                         int64_t *nseq)
{
    int rc;
    if ((rc = linattn_check_qkv(&io->q, &io->k, &io->v, 4, s, &s[4], Hk))) return rc;
    if ((rc = check_gates(op, &io->g, &io->beta, 3, s))) return rc;
    const int64_t osh[4] = {s[0], s[1], s[2], s[4]};
    if ((rc = linattn_check_tensor(&io->o, "o", 4, osh))) return rc;
    if ((rc = linattn_check_sequences(io->cu_seqlens, io->n_seqs, s[0], s[1], nseq)))
        return rc;
    const int64_t hsh[4] = {*nseq, s[2], s[3], s[4]};
    if (linattn_given(&io->h0) && (rc = linattn_check_tensor(&io->h0, "h0", 4, hsh))) return rc;
    if (linattn_given(&io->hT) && (rc = linattn_check_tensor(&io->hT, "hT", 4, hsh))) return rc;
    return LINATTN_OK;
}

/* Split value columns so that there are at least as many jobs as threads
 * (recurrent form only: a column's result never depends on the split). */
static void plan_blocks(delta_plan *p, int64_t units)
{
    int nt = linattn_max_threads(p->ctx), nblk = 1;
    if (!p->ref && p->algo == LINATTN_ALGO_RECURRENT && units < nt)
        nblk = (int)((nt + units - 1) / units);
    int w = (p->V + nblk - 1) / nblk;
    w = (w + COL_ALIGN - 1) / COL_ALIGN * COL_ALIGN;
    if (w > p->V) w = p->V;
    p->blkw = w;
    p->nblk = (p->V + w - 1) / w;
}

static int execute(int op, delta_plan *p, int64_t rows, int64_t qkrows, int64_t units,
                   float eps, const char *what)
{
    const int nt = linattn_max_threads(p->ctx);
    const size_t KV = (size_t)p->K * p->V;
    plan_blocks(p, units);
    const int rec = !p->ref && p->algo == LINATTN_ALGO_RECURRENT;
    p->pack_floats = rec ? LINATTN_PACK_FLOATS : 0;
    p->stage_floats = rec && p->T > 1 ? (size_t)STAGE_T * (2 * p->K + 2 * p->V) : 0;
    size_t work = p->pack_floats + p->stage_floats + (p->ht ? 0 : KV) +
                  (p->algo == LINATTN_ALGO_CHUNK ? linattn_delta_chunk_work(p->K, p->V, p->C) : 0);
    work = (work + 16) / 16 * 16;
    const int kla = op == LINATTN_OP_KLA;
    /* shared: [beta: kla's, or sigmoid(beta)][q, k normalised] (the last two
     * not on the reference, which applies the options itself in double) */
    const int norm = (p->flags & LINATTN_DELTA_QKNORM) && !p->ref;
    const int logits = (p->flags & LINATTN_DELTA_LOGITS) && !p->ref;
    const size_t nb = kla || logits ? ((size_t)rows + 15) / 16 * 16 : 0;
    const size_t nqk = norm ? (size_t)qkrows * p->K : 0;
    if (nqk && nqk / p->K != (size_t)qkrows)
        return linattn_fail(LINATTN_ENOMEM, "%s: out of memory for scratch", what);
    int rc = linattn_runner_begin(&p->run, p->ctx, work,
                                  p->ref ? linattn_delta_ref_work(p->K, p->V) : 0,
                                  nqk > (SIZE_MAX / sizeof(float) - nb) / 2
                                      ? SIZE_MAX : sizeof(float) * (nb + 2 * nqk), what);
    if (rc) return rc;
    const int64_t nrb = (rows + KLA_ROWS - 1) / KLA_ROWS; /* rows >= qkrows */
    if (norm || logits) {
        float *sh = p->run.shared;
        stage_arg a = {.q = norm ? p->q : NULL, .k = p->k, .beta = logits ? p->beta : NULL,
                       .bs = sh, .qn = sh + nb, .kn = sh + nb + nqk, .rows = rows,
                       .qkrows = qkrows, .K = p->K};
        linattn_runner_jobs(&p->run, nrb, stage_rows, &a, 0);
        if (norm) {
            p->q = a.qn;
            p->k = a.kn;
        }
        if (logits) p->beta = a.bs;
    }
    if (kla) { /* eta into beta; then the call runs as gdn */
        kla_arg a = {.beta = p->run.shared, .eta = p->beta, .k = p->k, .rows = rows, .H = p->H,
                     .Hk = p->Hk, .K = p->K, .map = p->map,
                     .norm = p->ref && (p->flags & LINATTN_DELTA_QKNORM), .eps = eps};
        linattn_runner_jobs(&p->run, nrb, kla_rows, &a, 0);
        p->beta = a.beta;
    }
    if (p->ctx->verbose) {
        char algo[32];
        if (p->algo == LINATTN_ALGO_CHUNK && !p->ref) snprintf(algo, sizeof algo, "chunk C=%d", p->C);
        else snprintf(algo, sizeof algo, "recurrent");
        fprintf(stderr, "linattn: %s T=%lld H=%lld Hk=%lld K=%d V=%d seqs=%lld: %s %s, %d column "
                "block%s, %d thread%s\n", what, (long long)p->T, (long long)p->H,
                (long long)p->Hk, p->K, p->V,
                (long long)p->nseq, p->ref ? "ref" : p->ctx->kern.isa, algo, p->nblk,
                p->nblk == 1 ? "" : "s", nt, nt == 1 ? "" : "s");
    }
    linattn_runner_jobs(&p->run, units * p->nblk, run_job, p, p->algo == LINATTN_ALGO_CHUNK);
    linattn_runner_end(&p->run);
    return LINATTN_OK;
}

/* The checks every entry point starts with; the options with defaults. */
static int begin(const linattn_ctx *ctx, int op, const void *io, const linattn_delta_opts *in,
                 linattn_delta_opts *opts)
{
    const int rc = linattn_check_call(ctx, io);
    if (rc) return rc;
    linattn_delta_opts_init(opts);
    if (in) *opts = *in;
    return check_opts(ctx, op, opts);
}

/* Everything after the shape checks, for forward and step (step: T = 1,
 * sequence n is batch row n, h0 and ht are the state, updated in place).
 * names[] name x's tensors for the buffer checks, in the order below. */
static int run(int op, linattn_ctx *ctx, linattn_delta_io *x, const char *const *names,
               int64_t B, int64_t T, int64_t H, int64_t Hk, int64_t nseq, int64_t K,
               int64_t V, const linattn_delta_opts *opts, int step)
{
    int rc;
    linattn_tensor *const ts[] = {&x->q, &x->k, &x->v, &x->g, &x->beta, &x->h0, &x->o, &x->hT};
    if ((rc = linattn_check_buffers(ctx, ts, names, 8))) return rc;
    const linattn_value_check vc[] = {{&x->g, "g", LINATTN_RANGE_LOGDECAY},
                                      {&x->beta, op_beta[op],
                                       opts->beta_logits ? LINATTN_RANGE_FINITE
                                                         : LINATTN_RANGE_STEP}};
    if ((rc = linattn_check_values(ctx, vc, 2))) return rc;
    linattn_clear_error();
    const float scale = opts->scale != 0.0f ? opts->scale : 1.0f / sqrtf((float)K);
    if (ctx->cl) {
        const int C = opts->chunk && opts->chunk < LINATTN_CL_CHUNK ? opts->chunk : LINATTN_CL_CHUNK;
        linattn_cl_delta a = {
            .op = op, .step = step, .B = B, .T = T, .H = H, .Hk = Hk, .map = opts->head_map,
            .nseq = nseq, .K = (int)K,
            .V = (int)V, .cu = x->cu_seqlens, .scale = scale, .eps = opts->eps,
            .C = step ? LINATTN_CL_CHUNK : C,
            .qk_l2norm = opts->qk_l2norm != 0, .beta_logits = opts->beta_logits != 0,
            .q = linattn_cl_arg_of(&x->q), .k = linattn_cl_arg_of(&x->k),
            .v = linattn_cl_arg_of(&x->v), .g = linattn_cl_arg_of(&x->g),
            .beta = linattn_cl_arg_of(&x->beta), .h0 = linattn_cl_arg_of(&x->h0),
            .o = linattn_cl_arg_of(&x->o), .ht = linattn_cl_arg_of(&x->hT),
        };
        rc = linattn_cl_delta_run(ctx->cl, &a);
        if (!(rc && linattn_cl_fallback(ctx, rc, ts, 8))) return rc;
    }
    delta_plan p = {
        .ctx = ctx, .T = T, .H = H, .Hk = Hk, .nseq = nseq, .K = (int)K, .V = (int)V,
        .map = opts->head_map,
        .cu = x->cu_seqlens, .q = linattn_host(&x->q), .k = linattn_host(&x->k),
        .v = linattn_host(&x->v), .g = linattn_host(&x->g), .beta = linattn_host(&x->beta),
        .h0 = linattn_host(&x->h0), .o = linattn_host(&x->o), .ht = linattn_host(&x->hT),
        .scale = scale, .ref = ctx->backend == LINATTN_BACKEND_REF,
        .flags = (opts->qk_l2norm ? LINATTN_DELTA_QKNORM : 0) |
                 (opts->beta_logits ? LINATTN_DELTA_LOGITS : 0),
        .C = !step && opts->chunk ? opts->chunk : DEFAULT_CHUNK,
    };
    /* Measured (linattn-bench): the SIMD recurrent kernels beat the chunkwise
     * form on the CPU; the portable recurrent kernel does not.  The step
     * always runs the recurrence. */
    p.algo = step ? LINATTN_ALGO_RECURRENT : opts->algo;
    if (p.algo == LINATTN_ALGO_AUTO)
        p.algo = ctx->kern.simd || !linattn_have_blas() || p.T < DEFAULT_CHUNK
                     ? LINATTN_ALGO_RECURRENT : LINATTN_ALGO_CHUNK;
    char what[32];
    snprintf(what, sizeof what, "%s %s", op_names[op], step ? "step" : "forward");
    return execute(op, &p, B * T * H, B * T * Hk, nseq * H, opts->eps, what);
}

static int delta_forward(int op, linattn_ctx *ctx, const linattn_delta_io *io,
                         const linattn_delta_opts *oin)
{
    int rc;
    int64_t s[5], Hk = 0, nseq = 0;
    linattn_delta_opts opts;
    if ((rc = begin(ctx, op, io, oin, &opts))) return rc;
    if ((rc = check_forward(op, io, s, &Hk, &nseq))) return rc;
    static const char *const names[] = {"q", "k", "v", "g", "beta", "h0", "o", "hT"};
    linattn_delta_io x = *io;
    return run(op, ctx, &x, names, s[0], s[1], s[2], Hk, nseq, s[3], s[4], &opts, 0);
}

static int delta_step(int op, linattn_ctx *ctx, const linattn_delta_step_io *io,
                      const linattn_delta_opts *oin)
{
    int rc;
    int64_t s[4], Hk = 0;
    linattn_delta_opts opts;
    if ((rc = begin(ctx, op, io, oin, &opts))) return rc;
    if ((rc = linattn_check_qkv(&io->q, &io->k, &io->v, 3, s, &s[3], &Hk))) return rc;
    if ((rc = check_gates(op, &io->g, &io->beta, 2, s))) return rc;
    const int64_t stsh[4] = {s[0], s[1], s[2], s[3]}, osh[3] = {s[0], s[1], s[3]};
    if ((rc = linattn_check_tensor(&io->state_h, "state_h", 4, stsh))) return rc;
    if ((rc = linattn_check_tensor(&io->o, "o", 3, osh))) return rc;
    static const char *const names[] = {"q", "k", "v", "g", "beta", "state_h", "o", "state_h"};
    /* B sequences of one token: the forward's path with h0 = ht = the state */
    linattn_delta_io x = {.q = io->q, .k = io->k, .v = io->v, .g = io->g, .beta = io->beta,
                          .h0 = io->state_h, .o = io->o, .hT = io->state_h};
    return run(op, ctx, &x, names, s[0], 1, s[1], Hk, s[0], s[2], s[3], &opts, 1);
}

static int op_ok(linattn_delta_op op)
{
    if (op >= LINATTN_OP_GDN && op <= LINATTN_OP_GLA) return LINATTN_OK;
    return linattn_fail(LINATTN_EINVAL, "op: unknown operator %d", (int)op);
}

int linattn_delta_forward(linattn_ctx *c, linattn_delta_op op, const linattn_delta_io *io,
                          const linattn_delta_opts *o)
{
    return op_ok(op) ? LINATTN_EINVAL : delta_forward((int)op, c, io, o);
}
int linattn_delta_step(linattn_ctx *c, linattn_delta_op op, const linattn_delta_step_io *io,
                       const linattn_delta_opts *o)
{
    return op_ok(op) ? LINATTN_EINVAL : delta_step((int)op, c, io, o);
}
int linattn_gdn_forward(linattn_ctx *c, const linattn_delta_io *io, const linattn_delta_opts *o)
{
    return delta_forward(LINATTN_OP_GDN, c, io, o);
}
int linattn_kla_forward(linattn_ctx *c, const linattn_delta_io *io, const linattn_delta_opts *o)
{
    return delta_forward(LINATTN_OP_KLA, c, io, o);
}
int linattn_gla_forward(linattn_ctx *c, const linattn_delta_io *io, const linattn_delta_opts *o)
{
    return delta_forward(LINATTN_OP_GLA, c, io, o);
}
int linattn_gdn_step(linattn_ctx *c, const linattn_delta_step_io *io, const linattn_delta_opts *o)
{
    return delta_step(LINATTN_OP_GDN, c, io, o);
}
int linattn_kla_step(linattn_ctx *c, const linattn_delta_step_io *io, const linattn_delta_opts *o)
{
    return delta_step(LINATTN_OP_KLA, c, io, o);
}
int linattn_gla_step(linattn_ctx *c, const linattn_delta_step_io *io, const linattn_delta_opts *o)
{
    return delta_step(LINATTN_OP_GLA, c, io, o);
}
