/* linattn - drivers of the delta-rule family (gdn, kla, gla): argument
 * checks, the plan (algorithm, column blocks, scratch), and the jobs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "serve.h"
#include "internal.h"
#include "segment.h"

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

/* A 16-bit state [N,H,K,V] with contiguous rows: element (n, h, i, j) at
 * b + 2 (n s[0] + h s[1] + i s[2] + j); dt 0 when the tensor is float32 or
 * absent.  A decode step (and a short sequence) hands it to the recurrent
 * kernel, which widens it into registers and rounds the final state once
 * (plan.hk); else the jobs widen their rows into scratch and round them
 * back once.  Either way a step moves half the state's bytes. */
typedef struct half_state {
    char *b;
    int64_t s[4];
    linattn_dtype dt;
} half_state;

static half_state half_of(const linattn_tensor *t)
{
    half_state x = {0};
    if (!linattn_given(t) || t->dtype == LINATTN_F32) return x;
    x.dt = t->dtype;
    linattn_strides(t, x.s);
    char *base = t->buf ? (char *)linattn_host(&(linattn_tensor){.buf = t->buf})
                        : (char *)(uintptr_t)t->data;
    x.b = base + 2 * t->offset;
    return x;
}

/* Element (n, h, i, j) of a 16-bit state. */
static uint16_t *half_at(const half_state *x, int64_t n, int64_t h, int i, int j)
{
    return (uint16_t *)(x->b) + n * x->s[0] + h * x->s[1] + i * x->s[2] + j;
}

/* Row i, columns j0 .. j0+w of state (n, h): widen into dst / round src into it. */
static void half_row_in(const linattn_ctx *ctx, const half_state *x, int64_t n, int64_t h,
                        int i, int j0, int w, float *dst)
{
    (x->dt == LINATTN_F16 ? ctx->kern.f16_in : ctx->kern.bf16_in)(half_at(x, n, h, i, j0), dst,
                                                                    (size_t)w);
}

static void half_row_out(const linattn_ctx *ctx, const half_state *x, int64_t n, int64_t h,
                         int i, int j0, int w, const float *src)
{
    (x->dt == LINATTN_F16 ? ctx->kern.f16_out : ctx->kern.bf16_out)(src, half_at(x, n, h, i, j0),
                                                                      (size_t)w);
}

/* Everything a job needs; decided once per call. */
typedef struct delta_plan {
    const linattn_ctx *ctx;
    int64_t T, nseq;
    linattn_heads hd;             /* q, k, v (H, one state each) and o heads */
    int K, V, map;                /* map: opts.head_map */
    int nq;                       /* query heads per state (Hq / H when they share) */
    int gk;                       /* g per key channel */
    int has_t;                    /* 0: a step's [B,H,X] tensors */
    const int64_t *cu;            /* NULL: sequence n is batch row n */
    linattn_rows q, k, v, g, beta, o;
    linattn_rows h0, ht;          /* [N,H,K,V] read as rows: (n, h) -> p + n*sb + h*st */
    half_state hs0, hst;          /* the same in a 16-bit type (dt != 0), else unused */
    int half;                     /* h0 or ht 16-bit: the state lives in scratch */
    int hk;                       /* h0, ht of one 16-bit type read and written by the kernel */
    float scale;
    linattn_algo algo;
    int C, nblk, blkw;
    int ref;
    int flags;                    /* LINATTN_DELTA_QKNORM, _LOGITS: the options */
    size_t pack_floats;           /* panel scratch for the SIMD kernels */
    size_t stage_floats;          /* staged token block (recurrent prefill) */
    int stage_norm;               /* opts.qk_l2norm applied while staging q, k */
    int scratch_state;            /* per-thread scratch holds a state */
    linattn_serve sv;             /* slots, rollback and checkpoint rows (serve.h) */
    linattn_runner run;           /* per-thread work (and the reference's doubles) */
} delta_plan;

/* The key head that value head h reads (linattn_gdn(3)). */
static int64_t key_head(int64_t h, int64_t H, int64_t Hk, int map)
{
    return map == LINATTN_HEADS_TILED ? h % Hk : h / (H / Hk);
}

/* Row r of n_heads heads per token of a [B,T,..] tensor (T = 1: a step). */
static float *row_at(const linattn_rows *x, int64_t r, int64_t T, int64_t n_heads)
{
    const int64_t h = r % n_heads, bt = r / n_heads;
    return linattn_row(x, bt / T, bt % T, h);
}

/* Contiguous rows [B,T,heads,X] of scratch as a view. */
static linattn_rows dense_rows(float *p, int64_t T, int64_t heads, int64_t X)
{
    return (linattn_rows){.p = p, .sb = (ptrdiff_t)(T * heads * X),
                          .st = (ptrdiff_t)(heads * X), .sh = (ptrdiff_t)X, .sx = 1};
}

/* The recurrent kernels sweep all tokens once per panel of columns.  With
 * heads interleaved, consecutive tokens of a head lie far apart, a stride
 * the hardware prefetchers do not follow across pages; so tokens are
 * copied, STAGE_T at a time, into contiguous rows first (and o back).  The
 * kernel restarts on each block from the stored state: no result changes. */
static void stage_row(float *dst, const float *src, int K, int norm)
{
    if (norm) linattn_l2norm_row(src, dst, K);
    else memcpy(dst, src, sizeof(float) * K);
}

/* norm: q and k are raw, normalised here (opts.qk_l2norm): the same bits as
 * normalising them first, without a pass of their own over memory. */
static void run_staged(linattn_delta_rec_fn kern, const linattn_delta_rec_job *jb, float *stage,
                       int norm)
{
    const int K = jb->K, n = jb->n, nq = jb->nq;
    if (!stage || (!norm && (jb->T == 1 ||
        (jb->sk == K && jb->sq == (ptrdiff_t)nq * K && jb->sv == n &&
         jb->so == (ptrdiff_t)nq * n && (nq == 1 || (jb->sqh == K && jb->soh == n)))))) {
        kern(jb);
        return;
    }
    float *q = stage, *k = q + (size_t)STAGE_T * nq * K, *v = k + (size_t)STAGE_T * K;
    float *o = v + (size_t)STAGE_T * n;
    for (int64_t t0 = 0; t0 < jb->T; t0 += STAGE_T) {
        const int c = (int)(jb->T - t0 < STAGE_T ? jb->T - t0 : STAGE_T);
        for (int r = 0; r < c; r++) {
            for (int e = 0; e < nq; e++)
                stage_row(q + ((size_t)r * nq + e) * K, jb->q + (t0 + r) * jb->sq + e * jb->sqh,
                          K, norm);
            stage_row(k + (size_t)r * K, jb->k + (t0 + r) * jb->sk, K, norm);
            memcpy(v + (size_t)r * n, jb->v + (t0 + r) * jb->sv, sizeof(float) * n);
        }
        linattn_delta_rec_job b = *jb;
        b.T = c;
        b.q = q; b.sq = (ptrdiff_t)nq * K; b.sqh = K;
        b.k = k; b.sk = K;
        b.v = v; b.sv = n;
        b.o = o; b.so = (ptrdiff_t)nq * n; b.soh = n;
        b.g = jb->g ? jb->g + t0 * jb->sg : NULL;
        b.beta = jb->beta ? jb->beta + t0 * jb->sb : NULL;
        kern(&b);
        for (int r = 0; r < c; r++)
            for (int e = 0; e < nq; e++)
                memcpy(jb->o + (t0 + r) * jb->so + e * jb->soh, o + ((size_t)r * nq + e) * n,
                       sizeof(float) * n);
    }
}

static void run_kernel(const delta_plan *p, const linattn_delta_rec_job *jb, int thread,
                       float *cwork, float *stage)
{
    if (p->ref)
        linattn_delta_ref_seq(jb, p->flags, linattn_runner_dwork(&p->run, thread));
    else if (p->algo == LINATTN_ALGO_CHUNK)
        linattn_delta_chunk(jb, p->C, cwork);
    else
        run_staged(p->ctx->kern.delta_rec, jb, stage, p->stage_norm);
}

/* hW, hC: the sequence in stretches between cuts, the state stored at each
 * (the kernels restart from the stored state; the chunk form's chunks
 * restart at each cut). */
static void run_cuts(const delta_plan *p, const linattn_delta_rec_job *jb, int64_t n,
                     int64_t h, const float *S, ptrdiff_t ldS, int j0, int thread, float *cwork,
                     float *stage)
{
    for (int64_t t = 0; t < jb->T;) {
        const int64_t e = linattn_serve_next_cut(&p->sv, n, jb->T, t);
        linattn_delta_rec_job s = *jb;
        s.T = e - t;
        s.q += t * jb->sq; s.k += t * jb->sk; s.v += t * jb->sv; s.o += t * jb->so;
        if (s.g) s.g += t * jb->sg;
        if (s.beta) s.beta += t * jb->sb;
        run_kernel(p, &s, thread, cwork, stage);
        linattn_serve_store(&p->sv, n, h, jb->T, e, S, ldS, p->K, j0, jb->n);
        t = e;
    }
}

static void run_job(void *arg, int64_t job, int thread)
{
    const delta_plan *p = arg;
    const int64_t H = p->hd.v;
    const int64_t blk = job % p->nblk, unit = job / p->nblk;
    const int64_t h = unit % H, n = unit / H;
    const int64_t b = p->cu ? 0 : n, t0 = p->cu ? p->cu[n] : 0;
    const int64_t len = p->cu ? p->cu[n + 1] - p->cu[n] : p->T;
    const size_t KV = (size_t)p->K * p->V;
    const int64_t kh = key_head(h, H, p->hd.k, p->map);
    /* query heads sharing the state: h*nq ..; else the query head goes with the key head */
    const int share = p->hd.q != p->hd.k;
    const int64_t qh = share ? h * p->nq : kh, oh = share ? h * p->nq : h;
    /* per-thread scratch: [panel pack][staged tokens][state if ht absent][chunk work] */
    float *work = linattn_runner_work(&p->run, thread);
    float *pack = p->pack_floats ? work : NULL;
    work += p->pack_floats;
    float *stage = p->stage_floats ? work : NULL;
    work += p->stage_floats;
    /* the state's slot (serve.h): -1 a padding row, from zeros and not stored */
    const int64_t slot = p->sv.slot ? p->sv.slot[n] : n;
    const int fresh = slot < 0 || (p->sv.init && !p->sv.init[n]);
    const int inplace = p->ht.p && !p->half && slot >= 0; /* else the state lives in scratch */
    /* the kernel converts the 16-bit state itself: one kernel call over one
     * token at least, from the stored state, no cuts */
    const int hk = p->hk && len >= 1 && len <= LINATTN_KH_TMAX && !fresh && !p->sv.W && !p->sv.C;
    float *S = inplace ? linattn_row(&p->ht, slot, h, 0) : work;
    float *cwork = work + (p->scratch_state ? KV : 0);
    const ptrdiff_t ldS = inplace ? p->ht.sh : p->V;
    const int j0 = (int)blk * p->blkw;
    const int w = p->V - j0 < p->blkw ? p->V - j0 : p->blkw;

    /* initial state of this column block */
    const float *S0 = p->h0.p && !p->hs0.dt && !fresh ? linattn_row(&p->h0, slot, h, 0) : NULL;
    if (S0 != S && !hk)
        for (int i = 0; i < p->K; i++) {
            float *row = S + i * ldS + j0;
            if (p->hs0.dt && !fresh) half_row_in(p->ctx, &p->hs0, slot, h, i, j0, w, row);
            else if (S0) memcpy(row, S0 + i * p->h0.sh + j0, sizeof(float) * w);
            else memset(row, 0, sizeof(float) * w);
        }

    linattn_delta_rec_job jb = {
        .T = len, .K = p->K, .n = w, .nq = p->nq, .gk = p->gk,
        .sq = p->q.st, .sk = p->k.st, .sv = p->v.st, .so = p->o.st, .sg = p->g.st,
        .sb = p->beta.st, .sqh = p->q.sh, .soh = p->o.sh, .ldS = ldS,
        .q = linattn_row(&p->q, b, t0, qh), .k = linattn_row(&p->k, b, t0, kh),
        .v = linattn_row(&p->v, b, t0, h) + j0,
        .g = p->g.p ? linattn_row(&p->g, b, t0, h) : NULL,
        .beta = p->beta.p ? linattn_row(&p->beta, b, t0, h) : NULL,
        .o = linattn_row(&p->o, b, t0, oh) + j0, .S = S + j0, .scale = p->scale, .pack = pack,
    };
    if (hk) {
        jb.hdt = p->hs0.dt == LINATTN_F16 ? LINATTN_KH_F16 : LINATTN_KH_BF16;
        jb.h0 = half_at(&p->hs0, slot, h, 0, j0);
        jb.ld0 = (ptrdiff_t)p->hs0.s[2];
        jb.ht = half_at(&p->hst, slot, h, 0, j0);
        jb.ldt = (ptrdiff_t)p->hst.s[2];
    }
    if (p->sv.W || p->sv.C) run_cuts(p, &jb, n, h, S, ldS, j0, thread, cwork, stage);
    else run_kernel(p, &jb, thread, cwork, stage);
    if (p->half && p->ht.p && slot >= 0 && !hk) /* the final state, rounded once */
        for (int i = 0; i < p->K; i++) {
            const float *row = S + i * ldS + j0;
            if (p->hst.dt) half_row_out(p->ctx, &p->hst, slot, h, i, j0, w, row);
            else memcpy(linattn_row(&p->ht, slot, h, 0) + i * p->ht.sh + j0, row, sizeof(float) * w);
        }
}

/* kla: beta = eta / (|k|^2 + eps), one value per (token, value head), from
 * the key head that value head reads, computed in parallel blocks of rows
 * before the gdn kernels run.  norm: k is the raw k of a qk_l2norm call on
 * the reference, |k_hat|^2 = s / (s + 1e-6). */
#define KLA_ROWS 2048
typedef struct kla_arg {
    float *beta;
    const linattn_rows *eta, *k;
    int64_t rows, T, H, Hk;
    int K, norm, map;
    int renorm;  /* k is raw: normalise each row first (the fast paths' float rows) */
    float eps;
} kla_arg;

static void kla_rows(void *arg, int64_t blk, int thread)
{
    const kla_arg *a = arg;
    const int64_t r1 = (blk + 1) * KLA_ROWS < a->rows ? (blk + 1) * KLA_ROWS : a->rows;
    (void)thread;
    for (int64_t r = blk * KLA_ROWS; r < r1; r++) {
        const int64_t kr = r / a->H * a->Hk + key_head(r % a->H, a->H, a->Hk, a->map);
        const float *k = row_at(a->k, kr, a->T, a->Hk);
        float kn[LINATTN_MAX_HEAD_DIM];
        if (a->renorm) {
            linattn_l2norm_row(k, kn, a->K);
            k = kn;
        }
        double s[4] = {0.0, 0.0, 0.0, 0.0}; /* four chains: not latency-bound */
        int i = 0;
        for (; i + 4 <= a->K; i += 4)
            for (int j = 0; j < 4; j++) s[j] += (double)k[i + j] * k[i + j];
        for (; i < a->K; i++) s[0] += (double)k[i] * k[i];
        double nn = (s[0] + s[1]) + (s[2] + s[3]);
        if (a->norm) nn /= nn + LINATTN_QK_NORM_EPS;
        a->beta[r] = (float)(*row_at(a->eta, r, a->T, a->H) / (nn + a->eps));
    }
}

/* opts.qk_l2norm and opts.beta_logits on the fast paths: normalised q, k
 * rows and sigmoid(beta) into scratch (contiguous), in parallel blocks of
 * rows, before the kernels (which are unchanged) run on them. */
typedef struct stage_arg {
    const linattn_rows *q, *k, *beta; /* given; NULL: not staged */
    float *qn, *kn, *bs;
    int64_t T, Hq, Hk, H;             /* rows: B*T*Hq of q, B*T*Hk of k, B*T*H of beta */
    int64_t nrq, nrk, nrb;            /* those counts */
    int K;
} stage_arg;

static void stage_rows(void *arg, int64_t blk, int thread)
{
    const stage_arg *a = arg;
    const int64_t r0 = blk * KLA_ROWS, r1 = r0 + KLA_ROWS;
    (void)thread;
    if (a->q) {
        for (int64_t r = r0; r < r1 && r < a->nrq; r++)
            linattn_l2norm_row(row_at(a->q, r, a->T, a->Hq), a->qn + r * a->K, a->K);
        for (int64_t r = r0; r < r1 && r < a->nrk; r++)
            linattn_l2norm_row(row_at(a->k, r, a->T, a->Hk), a->kn + r * a->K, a->K);
    }
    if (a->beta)
        for (int64_t r = r0; r < r1 && r < a->nrb; r++)
            a->bs[r] = linattn_sigmoid(*row_at(a->beta, r, a->T, a->H));
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

/* Check the gate tensors: g optional, per head (lead = shape) or per key
 * channel (lead + K, *gk set); beta required except for gla. */
static int check_gates(int op, const linattn_tensor *g, const linattn_tensor *beta, int ndim,
                       const int64_t *shape, int64_t K, int *gk)
{
    int rc;
    *gk = linattn_given(g) && g->ndim == ndim + 1;
    if (linattn_given(g)) {
        int64_t gsh[LINATTN_MAX_DIMS];
        for (int d = 0; d < ndim; d++) gsh[d] = shape[d];
        gsh[ndim] = K;
        if (g->ndim != ndim + 1) {
            if ((rc = linattn_check_tensor(g, "g", ndim, shape))) return rc;
        } else if ((rc = linattn_check_tensor(g, "g", ndim + 1, gsh))) {
            return rc;
        }
    }
    if (op == LINATTN_OP_GLA) {
        if (linattn_given(beta)) return linattn_fail(LINATTN_EINVAL, "beta: gla takes no beta");
        return LINATTN_OK;
    }
    return linattn_check_tensor(beta, op == LINATTN_OP_KLA ? "eta" : "beta", ndim, shape);
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

static int execute(int op, delta_plan *p, int64_t B, float eps, const char *what)
{
    const int nt = linattn_max_threads(p->ctx);
    const size_t KV = (size_t)p->K * p->V;
    const int64_t units = p->nseq * p->hd.v;
    const int64_t rows = B * p->T * p->hd.v, qrows = B * p->T * p->hd.q;
    const int64_t krows = B * p->T * p->hd.k;
    plan_blocks(p, units);
    const int rec = !p->ref && p->algo == LINATTN_ALGO_RECURRENT;
    p->pack_floats = rec ? LINATTN_PACK_FLOATS : 0;
    p->stage_floats = rec && p->T > 1 ? (size_t)STAGE_T * (p->nq + 1) * (p->K + p->V) : 0;
    p->scratch_state = !(p->ht.p && !p->half) || p->sv.slot;
    size_t work = p->pack_floats + p->stage_floats + (p->scratch_state ? KV : 0) +
                  (p->algo == LINATTN_ALGO_CHUNK
                       ? linattn_delta_chunk_work(p->K, p->V, p->C, p->gk) : 0);
    work = (work + 16) / 16 * 16;
    const int kla = op == LINATTN_OP_KLA;
    /* shared: [beta: kla's, or sigmoid(beta)][q, k normalised] (the last two
     * not on the reference, which applies the options itself in double) */
    /* opts.qk_l2norm: the staged recurrent prefill normalises while staging;
     * the other fast paths in a pass before (the reference in double) */
    p->stage_norm = (p->flags & LINATTN_DELTA_QKNORM) && p->stage_floats;
    const int norm = (p->flags & LINATTN_DELTA_QKNORM) && !p->ref && !p->stage_norm;
    const int logits = (p->flags & LINATTN_DELTA_LOGITS) && !p->ref;
    const size_t nb = kla || logits ? ((size_t)rows + 15) / 16 * 16 : 0;
    const size_t nqf = norm ? (size_t)qrows * p->K : 0, nkf = norm ? (size_t)krows * p->K : 0;
    if (norm && (nqf / p->K != (size_t)qrows || nqf > (SIZE_MAX / sizeof(float) - nb) / 4))
        return linattn_fail(LINATTN_ENOMEM, "%s: out of memory for scratch", what);
    int rc = linattn_runner_begin(&p->run, p->ctx, work,
                                  p->ref ? linattn_delta_ref_work(p->K, p->V) : 0,
                                  sizeof(float) * (nb + nqf + nkf), what);
    if (rc) return rc;
    const int64_t most = rows > qrows ? rows : qrows; /* krows <= rows */
    const int64_t nrb = (most + KLA_ROWS - 1) / KLA_ROWS;
    if (norm || logits) {
        float *sh = p->run.shared;
        stage_arg a = {.q = norm ? &p->q : NULL, .k = &p->k, .beta = logits ? &p->beta : NULL,
                       .bs = sh, .qn = sh + nb, .kn = sh + nb + nqf, .T = p->T,
                       .Hq = p->hd.q, .Hk = p->hd.k, .H = p->hd.v, .nrq = qrows, .nrk = krows,
                       .nrb = rows, .K = p->K};
        linattn_runner_jobs(&p->run, nrb, stage_rows, &a, 0);
        if (norm) {
            p->q = dense_rows(a.qn, p->T, p->hd.q, p->K);
            p->k = dense_rows(a.kn, p->T, p->hd.k, p->K);
        }
        if (logits) p->beta = dense_rows(a.bs, p->T, p->hd.v, 1);
    }
    if (kla) { /* eta into beta; then the call runs as gdn */
        const linattn_rows eta = p->beta;
        kla_arg a = {.beta = p->run.shared, .eta = &eta, .k = &p->k, .rows = rows, .T = p->T,
                     .H = p->hd.v, .Hk = p->hd.k, .K = p->K, .map = p->map,
                     .norm = p->ref && (p->flags & LINATTN_DELTA_QKNORM),
                     .renorm = p->stage_norm, .eps = eps};
        linattn_runner_jobs(&p->run, nrb, kla_rows, &a, 0);
        p->beta = dense_rows(a.beta, p->T, p->hd.v, 1);
    }
    if (p->ctx->verbose) {
        char algo[32];
        if (p->algo == LINATTN_ALGO_CHUNK && !p->ref) snprintf(algo, sizeof algo, "chunk C=%d", p->C);
        else snprintf(algo, sizeof algo, "recurrent");
        fprintf(stderr, "linattn: %s T=%lld H=%lld Hk=%lld Hq=%lld K=%d V=%d%s seqs=%lld: %s %s, "
                "%d column block%s, %d thread%s\n", what, (long long)p->T, (long long)p->hd.v,
                (long long)p->hd.k, (long long)p->hd.q, p->K, p->V, p->gk ? " g per channel" : "",
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

/* Measured (linattn-bench): the SIMD recurrent kernels beat the chunkwise
 * form on the CPU; the portable recurrent kernel does not. */
static linattn_algo choose_algo(const linattn_ctx *ctx, const linattn_delta_opts *o, int64_t T,
                                const char **why)
{
    if (o->algo != LINATTN_ALGO_AUTO) return o->algo;
    if (!*why)
        *why = ctx->kern.simd ? "auto: recurrent, the SIMD recurrence (measured faster)"
           : !linattn_have_blas() ? "auto: recurrent, the chunk form needs BLAS"
           : T < DEFAULT_CHUNK ? "auto: recurrent, the sequence is shorter than a chunk"
                               : "auto: chunk form, no SIMD recurrence (measured faster)";
    return ctx->kern.simd || !linattn_have_blas() || T < DEFAULT_CHUNK
               ? LINATTN_ALGO_RECURRENT : LINATTN_ALGO_CHUNK;
}

/* What the shape checks found. */
typedef struct delta_shape {
    int64_t B, T, nseq, K, V;
    linattn_heads hd;
    int gk;
} delta_shape;

/* Everything after the shape checks, for forward and step (step: T = 1,
 * sequence n is batch row n, h0 and ht are the state, updated in place).
 * names[] name x's tensors for the buffer checks, in the order below. */
static int run_packed(int op, linattn_ctx *ctx, linattn_delta_io *x,
                      linattn_tensor *const *ts, const delta_shape *sh,
                      const linattn_delta_opts *opts, int step, const linattn_serve *sv)
{
    int rc;
    const linattn_value_check vc[] = {{&x->g, "g", LINATTN_RANGE_LOGDECAY},
                                      {&x->beta, op_beta[op],
                                       opts->beta_logits ? LINATTN_RANGE_FINITE
                                                         : LINATTN_RANGE_STEP}};
    /* the OpenCL step checks device g, beta in its own call (no extra wait) */
    linattn_value_pending vp;
    const int defer = step && ctx->cl;
    if ((rc = defer ? linattn_check_values_deferred(ctx, vc, 2, &vp)
                    : linattn_check_values(ctx, vc, 2)))
        return rc;
    const int nq = sh->hd.q != sh->hd.k ? (int)(sh->hd.q / sh->hd.v) : 1;
    const char *why = linattn_form_why(opts->algo, step, ctx->backend == LINATTN_BACKEND_REF);
    const linattn_algo algo = step ? LINATTN_ALGO_RECURRENT : choose_algo(ctx, opts, sh->T, &why);
    linattn_clear_error();
    const float scale = opts->scale != 0.0f ? opts->scale : 1.0f / sqrtf((float)sh->K);
    if (ctx->cl) {
        const int C = opts->chunk && opts->chunk < LINATTN_CL_CHUNK ? opts->chunk : LINATTN_CL_CHUNK;
        linattn_cl_delta a = {
            .op = op, .step = step, .B = sh->B, .T = sh->T, .H = sh->hd.v, .Hk = sh->hd.k,
            .Hq = sh->hd.q, .gk = sh->gk, .map = opts->head_map, .nseq = sh->nseq,
            .K = (int)sh->K, .V = (int)sh->V, .cu = x->cu_seqlens, .scale = scale,
            .eps = opts->eps, .C = step ? LINATTN_CL_CHUNK : C,
            .qk_l2norm = opts->qk_l2norm != 0, .beta_logits = opts->beta_logits != 0,
            .q = linattn_cl_arg_of(&x->q), .k = linattn_cl_arg_of(&x->k),
            .v = linattn_cl_arg_of(&x->v), .g = linattn_cl_arg_of(&x->g),
            .beta = linattn_cl_arg_of(&x->beta), .h0 = linattn_cl_arg_of(&x->h0),
            .o = linattn_cl_arg_of(&x->o), .ht = linattn_cl_arg_of(&x->hT),
            .vcheck = defer && vp.vc.n ? &vp.vc : NULL,
        };
        rc = linattn_cl_delta_run(ctx->cl, &a);
        if (defer) rc = linattn_check_values_finish(&vp, rc);
        /* (no fallback with a device tensor, so none with a deferred check) */
        if (!(rc && linattn_cl_fallback(ctx, rc, ts, 8)))
            return linattn_form_ran(ctx, rc, op_names[op], step, step ? "recurrent" : "chunk",
                                    step ? why : "OpenCL runs the chunk form (its only one)");
    }
    const int ht = !step; /* forward tensors have a T dimension */
    delta_plan p = {
        .ctx = ctx, .T = sh->T, .nseq = sh->nseq, .hd = sh->hd, .K = (int)sh->K,
        .V = (int)sh->V, .map = opts->head_map, .nq = nq, .gk = sh->gk, .has_t = ht,
        .cu = x->cu_seqlens,
        .q = linattn_rows_of(&x->q, ht, 1), .k = linattn_rows_of(&x->k, ht, 1),
        .v = linattn_rows_of(&x->v, ht, 1), .g = linattn_rows_of(&x->g, ht, sh->gk),
        .beta = linattn_rows_of(&x->beta, ht, 0), .o = linattn_rows_of(&x->o, ht, 1),
        .h0 = linattn_rows_of(&x->h0, 1, 1), .ht = linattn_rows_of(&x->hT, 1, 1),
        .hs0 = half_of(&x->h0), .hst = half_of(&x->hT),
        .scale = scale, .ref = ctx->backend == LINATTN_BACKEND_REF,
        .flags = (opts->qk_l2norm ? LINATTN_DELTA_QKNORM : 0) |
                 (opts->beta_logits ? LINATTN_DELTA_LOGITS : 0),
        .C = !step && opts->chunk ? opts->chunk : DEFAULT_CHUNK,
    };
    p.algo = algo;
    p.half = p.hs0.dt || p.hst.dt;
    p.sv = *sv;
    p.sv.w = linattn_rows_of(&x->hW, 1, 1);
    p.sv.c = linattn_rows_of(&x->hC, 1, 1);
    p.hk = p.half && !p.ref && algo == LINATTN_ALGO_RECURRENT && p.hs0.dt == p.hst.dt &&
           p.K <= LINATTN_KH_KMAX;
    char what[32];
    snprintf(what, sizeof what, "%s %s", op_names[op], step ? "step" : "forward");
    const char *form = p.ref ? "reference" : algo == LINATTN_ALGO_CHUNK ? "chunk" : "recurrent";
    return linattn_form_ran(ctx, execute(op, &p, sh->B, opts->eps, what), op_names[op], step,
                            form, why);
}

/* Views checked; those the path cannot read in place packed for the call
 * (q, k, v, o, the states and a per-channel g need contiguous rows; a
 * per-head g and beta any strides). */
static int run(int op, linattn_ctx *ctx, linattn_delta_io *x, const char *const *names,
               const delta_shape *sh, const linattn_delta_opts *opts, int step)
{
    int rc;
    linattn_serve sv;
    const int64_t hsh[4] = {sh->nseq, sh->hd.v, sh->K, sh->V};
    if ((rc = linattn_serve_check(x, sh->nseq, x->cu_seqlens, sh->T, hsh, step, &sv))) return rc;
    /* hW and hC: float32 rows for the CPU path (a 16-bit or strided one is packed) */
    linattn_tensor *const ts[] = {&x->q, &x->k, &x->v, &x->g, &x->beta, &x->h0, &x->o, &x->hT,
                                  &x->hW, &x->hC};
    const char *const nm[] = {names[0], names[1], names[2], names[3], names[4], names[5],
                              names[6], names[7], "hW", "hC"};
    if (op == LINATTN_OP_GLA && (rc = linattn_check_f32_states(ts, nm, 10, 0x3A0u, "gla")))
        return rc;
    if (sv.on && ctx->cl) { /* OpenCL: plain calls on views (serve.h) */
        const linattn_value_check vc[] = {
            {&x->g, "g", LINATTN_RANGE_LOGDECAY},
            {&x->beta, op_beta[op], opts->beta_logits ? LINATTN_RANGE_FINITE : LINATTN_RANGE_STEP}};
        if ((rc = linattn_check_views(ctx, ts, nm, 10, 0x3C0u)) ||
            (rc = linattn_check_values(ctx, vc, 2)))
            return rc;
        return linattn_serve_split(ctx, op, x, opts, &sv, sh->nseq, sh->T, step);
    }
    linattn_packset ps;
    const unsigned any = (sh->gk ? 0u : 0x08u) | 0x10u;
    /* 16-bit states in place: the CPU's jobs; on OpenCL the step's kernel */
    const unsigned half = ctx->cl && !step ? 0u : 0xA0u;
    /* a packed pool (slots) and packed checkpoint rows are read in too: the
     * slots no sequence names and the rows none reaches are written back as
     * they were */
    const unsigned in = 0x3Fu | (sv.slot || sv.init ? 0x80u : 0u) | (sv.C ? 0x200u : 0u);
    if ((rc = linattn_views_begin(&ps, ctx, ts, nm, 10, in, 0x3C0u, 0x3FFu, any, half)))
        return rc;
    return linattn_pack_end(&ps, run_packed(op, ctx, x, ts, sh, opts, step, &sv));
}

static int delta_forward(int op, linattn_ctx *ctx, const linattn_delta_io *io,
                         const linattn_delta_opts *oin)
{
    int rc;
    int64_t s[5];
    delta_shape sh;
    linattn_delta_opts opts;
    if ((rc = begin(ctx, op, io, oin, &opts))) return rc;
    if ((rc = linattn_check_qkv(&io->q, &io->k, &io->v, 4, s, &s[4], &sh.hd))) return rc;
    if ((rc = check_gates(op, &io->g, &io->beta, 3, s, s[3], &sh.gk))) return rc;
    const int64_t osh[4] = {s[0], s[1], sh.hd.o, s[4]};
    if ((rc = linattn_check_tensor(&io->o, "o", 4, osh))) return rc;
    if ((rc = linattn_check_sequences(io->cu_seqlens, io->n_seqs, s[0], s[1], &sh.nseq)))
        return rc;
    /* h0, hT (pools with state_indices), hW and hC: linattn_serve_check in run */
    static const char *const names[] = {"q", "k", "v", "g", "beta", "h0", "o", "hT"};
    linattn_delta_io x = *io;
    sh.B = s[0]; sh.T = s[1]; sh.K = s[3]; sh.V = s[4];
    const int P = linattn_delta_seg_count(ctx, &x, &opts, sh.B, sh.T, sh.nseq * sh.hd.v, sh.V);
    if (P > 1) return linattn_delta_seg_forward(ctx, op, &x, &opts, P); /* delta_seg.c */
    return run(op, ctx, &x, names, &sh, &opts, 0);
}

static int delta_step(int op, linattn_ctx *ctx, const linattn_delta_step_io *io,
                      const linattn_delta_opts *oin)
{
    int rc;
    int64_t s[4];
    delta_shape sh;
    linattn_delta_opts opts;
    if ((rc = begin(ctx, op, io, oin, &opts))) return rc;
    if ((rc = linattn_check_qkv(&io->q, &io->k, &io->v, 3, s, &s[3], &sh.hd))) return rc;
    if ((rc = check_gates(op, &io->g, &io->beta, 2, s, s[2], &sh.gk))) return rc;
    const int64_t stsh[4] = {s[0], s[1], s[2], s[3]}, osh[3] = {s[0], sh.hd.o, s[3]};
    if ((rc = io->state_indices ? linattn_check_present(&io->state_h, "state_h")
                                : linattn_check_tensor(&io->state_h, "state_h", 4, stsh)))
        return rc; /* a pool: linattn_serve_check in run */
    if ((rc = linattn_check_tensor(&io->o, "o", 3, osh))) return rc;
    static const char *const names[] = {"q", "k", "v", "g", "beta", "state_h", "o", "state_h"};
    /* B sequences of one token: the forward's path with h0 = ht = the state */
    linattn_delta_io x = {.q = io->q, .k = io->k, .v = io->v, .g = io->g, .beta = io->beta,
                          .h0 = io->state_h, .o = io->o, .hT = io->state_h,
                          .state_indices = io->state_indices,
                          .has_initial_state = io->has_initial_state};
    sh.B = s[0]; sh.T = 1; sh.nseq = s[0]; sh.K = s[2]; sh.V = s[3];
    return run(op, ctx, &x, names, &sh, &opts, 1);
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
