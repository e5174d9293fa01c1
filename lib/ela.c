/* linattn - driver of exact (feature-map) linear attention (ela): option
 * and argument checks, the state's offset convention, one job per
 * (sequence, head) on the context's threads, OpenCL first where chosen. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "serve.h"

#define DEFAULT_CHUNK 64

static const char *const feature_names[] = {"exp", "sqdist_sum", "sqdist_sub", "elu1",
                                            "identity"};
#define NFEATURES ((int)(sizeof feature_names / sizeof *feature_names))

int64_t linattn_ela_feature_dim(linattn_ela_feature f, int64_t K)
{
    if ((int)f < 0 || (int)f >= NFEATURES || K < 1) return LINATTN_EINVAL;
    return f == LINATTN_FEATURE_SQDIST_SUM || f == LINATTN_FEATURE_SQDIST_SUB ? K + 2 : K;
}

const char *linattn_ela_feature_name(linattn_ela_feature f)
{
    return (int)f >= 0 && (int)f < NFEATURES ? feature_names[f] : NULL;
}

int linattn_ela_feature_parse(const char *name, linattn_ela_feature *out)
{
    if (!name || !out) return linattn_fail(LINATTN_ENULL, "feature name: NULL");
    for (int i = 0; i < NFEATURES; i++)
        if (!strcmp(name, feature_names[i])) {
            *out = (linattn_ela_feature)i;
            return LINATTN_OK;
        }
    return linattn_fail(LINATTN_EINVAL, "feature %s: unknown (exp, sqdist_sum, sqdist_sub, "
                                        "elu1, identity)", name);
}

void linattn_ela_opts_init(linattn_ela_opts *opts)
{
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
    opts->feature = LINATTN_FEATURE_EXP;
    opts->algo = LINATTN_ALGO_AUTO;
}

static int check_opts(const linattn_ela_opts *o)
{
    if (!isfinite(o->qk_scale))
        return linattn_fail(LINATTN_ERANGE, "opts.qk_scale: not finite");
    if (!linattn_ela_feature_name(o->feature))
        return linattn_fail(LINATTN_EINVAL, "opts.feature: unknown value %d", (int)o->feature);
    if (o->chunk < 0 || o->chunk > LINATTN_MAX_CHUNK)
        return linattn_fail(LINATTN_ERANGE, "opts.chunk: %d (must be 0..%d)", o->chunk,
                            LINATTN_MAX_CHUNK);
    if (o->algo < LINATTN_ALGO_AUTO || o->algo > LINATTN_ALGO_CHUNK)
        return linattn_fail(LINATTN_EINVAL, "opts.algo: unknown value %d", (int)o->algo);
    return LINATTN_OK;
}

/* 1 for the exp map in its safe (shifted) form */
static int is_safe(const linattn_ela_opts *o)
{
    return o->feature == LINATTN_FEATURE_EXP && !o->plain_exp;
}

typedef struct ela_plan {
    const linattn_ctx *ctx;
    int64_t T, H;
    int K, V, F, feature, safe, bidir, ref, chunk, C;
    int has_s0, has_c0;
    const int64_t *cu;
    const int64_t *slot;       /* NULL: sequence n uses state n; -1: padding */
    const unsigned char *init; /* NULL: every sequence reads its state */
    const float *q, *k, *v, *s0, *z0, *c0;
    float *o, *st, *zt, *ct;
    linattn_serve sv;          /* rollback and checkpoint rows (W, C: none) */
    float *ws, *wz, *wc, *cs, *cz, *cc; /* their s, z, c (c NULL: true sums) */
    float qk_scale;
    linattn_runner run;
} ela_plan;

static void run_kernel(const ela_plan *p, linattn_ela_job *jb, int thread)
{
    if (p->ref)
        linattn_ela_ref_seq(jb, linattn_runner_dwork(&p->run, thread));
    else if (p->chunk)
        linattn_ela_chunk(jb, p->C, jb->work);
    else
        p->ctx->kern.ela_rec(jb);
}

/* Row r, head h of rows (s, z, c) from the state of jb: shifted with its
 * offset when c is given, else the true sums (as sT without cT). */
static void store_row(const ela_plan *p, const linattn_ela_job *jb, int64_t r, int64_t h,
                      float *s, float *z, float *c)
{
    const size_t FV = (size_t)p->F * p->V, F = (size_t)p->F, u = (size_t)(r * p->H + h);
    s += u * FV;
    z += u * F;
    memcpy(s, jb->S, sizeof(float) * FV);
    memcpy(z, jb->z, sizeof(float) * F);
    if (!p->safe) return;
    if (c) {
        memcpy(c + u * F, jb->c, sizeof(float) * F);
        return;
    }
    for (size_t d = 0; d < F; d++) {
        const float e = expf(jb->c[d]);
        for (int j = 0; j < p->V; j++) s[d * p->V + j] *= e;
        z[d] *= e;
    }
}

/* Sequence n, head h in stretches between the cuts, the state (in place
 * in jb) copied into the rows at each. */
static void run_rows(const ela_plan *p, const linattn_ela_job *jb, int64_t n, int64_t h,
                     int thread)
{
    const int64_t len = jb->T;
    for (int64_t t = 0, e; t < len; t = e) {
        e = linattn_serve_next_cut(&p->sv, n, len, t);
        linattn_ela_job s = *jb;
        s.T = e - t;
        s.q += t * jb->sqk;
        s.k += t * jb->sqk;
        s.v += t * jb->sv;
        s.o += t * jb->sv;
        run_kernel(p, &s, thread);
        const int64_t c = linattn_serve_ckpt_row(&p->sv, n, e);
        if (p->sv.W && e >= len - p->sv.W + 1)
            store_row(p, jb, n * p->sv.W + e - (len - p->sv.W + 1), h, p->ws, p->wz, p->wc);
        if (c >= 0) store_row(p, jb, c, h, p->cs, p->cz, p->cc);
    }
}

static void run_job(void *arg, int64_t unit, int thread)
{
    const ela_plan *p = arg;
    const int64_t h = unit % p->H, n = unit / p->H;
    int64_t row0, len;
    linattn_seq_span(p->cu, p->T, n, &row0, &len);
    const size_t FV = (size_t)p->F * p->V, F = (size_t)p->F;
    const int64_t tok0 = row0 * p->H + h;
    float *work = linattn_runner_work(&p->run, thread);
    /* the state's slot: -1 a padding row, from zeros and not stored */
    const int64_t slot = p->slot ? p->slot[n] : n, su = slot * p->H + h;
    const int fresh = slot < 0 || (p->init && !p->init[n]), out = slot >= 0;
    float *S = p->st && out ? p->st + su * FV : work;
    float *z = p->zt && out ? p->zt + su * F : work + FV;
    float *c = p->ct && out ? p->ct + su * F : work + FV + F;
    const float *S0 = p->s0 && !fresh ? p->s0 + su * FV : NULL;
    const float *z0 = p->z0 && !fresh ? p->z0 + su * F : NULL;
    const float *c0 = p->c0 && !fresh ? p->c0 + su * F : NULL;
    if (S0 != S) {
        if (S0) memcpy(S, S0, sizeof(float) * FV);
        else memset(S, 0, sizeof(float) * FV);
    }
    if (z0 != z) {
        if (z0) memcpy(z, z0, sizeof(float) * F);
        else memset(z, 0, sizeof(float) * F);
    }
    if (p->safe && c0 != c) /* no offset given: the state is the true sums (offset 0),
                               and no state means no key yet (-inf) */
        for (size_t d = 0; d < F; d++) c[d] = c0 ? c0[d] : S0 ? 0.0f : -INFINITY;
    linattn_ela_job jb = {
        .T = len, .K = p->K, .V = p->V, .F = p->F, .feature = p->feature,
        .safe = p->safe, .bidir = p->bidir,
        .sqk = (ptrdiff_t)(p->H * p->K), .sv = (ptrdiff_t)(p->H * p->V),
        .q = p->q + tok0 * p->K, .k = p->k + tok0 * p->K, .v = p->v + tok0 * p->V,
        .o = p->o + tok0 * p->V, .S = S, .z = z, .c = p->safe ? c : NULL,
        .work = work + FV + 2 * F, .qk_scale = p->qk_scale,
    };
    if (p->sv.on)
        run_rows(p, &jb, n, h, thread);
    else
        run_kernel(p, &jb, thread);
    if (p->safe && p->st && out && !p->ct) /* return the true sums */
        for (size_t d = 0; d < F; d++) {
            const float e = expf(c[d]);
            for (int j = 0; j < p->V; j++) S[d * p->V + j] *= e;
            z[d] *= e;
        }
}

static int execute(ela_plan *p, int64_t units, const char *what)
{
    const int nt = linattn_max_threads(p->ctx);
    const size_t FV = (size_t)p->F * p->V;
    size_t kwork = 2u * p->F;
    if (p->chunk && linattn_ela_chunk_work(p->F, p->V, p->C) > kwork)
        kwork = linattn_ela_chunk_work(p->F, p->V, p->C);
    const int rc = linattn_runner_begin(&p->run, p->ctx, FV + 2u * p->F + kwork,
                                        p->ref ? linattn_ela_ref_work(p->F, p->V) : 0, 0, what);
    if (rc) return rc;
    if (p->ctx->verbose)
        fprintf(stderr, "linattn: %s T=%lld H=%lld K=%d V=%d F=%d: %s %s, feature %s%s%s, "
                "%d thread%s\n", what, (long long)p->T, (long long)p->H, p->K, p->V, p->F,
                p->ref ? "ref" : p->ctx->kern.isa, p->chunk ? "chunk" : "recurrent",
                linattn_ela_feature_name((linattn_ela_feature)p->feature),
                p->feature == LINATTN_FEATURE_EXP ? (p->safe ? " (safe)" : " (plain)") : "",
                p->bidir ? ", bidirectional" : "", nt, nt == 1 ? "" : "s");
    linattn_runner_jobs(&p->run, units, run_job, p, p->chunk);
    linattn_runner_end(&p->run);
    return LINATTN_OK;
}

/* Tokens a .. e of the sequence at batch row b from token t0, from the
 * state src into dst (s, z, c each). */
static int stretch(linattn_ctx *ctx, const linattn_ela_io *x, const linattn_ela_opts *opts,
                   int64_t b, int64_t t0, int64_t a, int64_t e, const linattn_tensor *src,
                   const linattn_tensor *dst)
{
#define TOKS(t) linattn_serve_sub(&x->t, b, 1, t0 + a, e - a)
    const linattn_ela_io f = {.q = TOKS(q), .k = TOKS(k), .v = TOKS(v), .o = TOKS(o),
                              .s0 = src[0], .z0 = src[1], .c0 = src[2],
                              .sT = dst[0], .zT = dst[1], .cT = dst[2]};
#undef TOKS
    return linattn_ela_forward(ctx, &f, opts);
}

/* OpenCL with slots: plain calls on views of the pools, one per sequence
 * (forward) or row (step; a row from zeros as a one-token forward), after
 * every check passed (linattn_ela(3), SERVING). */
static int ela_split(linattn_ctx *ctx, const linattn_ela_io *x, const linattn_ela_opts *opts,
                     const linattn_serve *sv, int64_t nseq, int64_t T, int step)
{
    const linattn_tensor none = linattn_tensor_none();
    const int64_t *cu = x->cu_seqlens;
    int rc = LINATTN_OK;
    for (int64_t n = 0; n < nseq && !rc; n++) {
        const int64_t slot = x->state_indices ? x->state_indices[n] : n;
        const int fresh = slot < 0 || (x->has_initial_state && !x->has_initial_state[n]);
#define SUB(t, i0, n0, i1, n1) linattn_serve_sub(&x->t, i0, n0, i1, n1)
        const linattn_tensor sT = slot >= 0 ? SUB(sT, slot, 1, 0, -1) : none;
        const linattn_tensor zT = slot >= 0 ? SUB(zT, slot, 1, 0, -1) : none;
        const linattn_tensor cT = slot >= 0 ? SUB(cT, slot, 1, 0, -1) : none;
        if (step && !fresh) {
            const linattn_ela_step_io s = {
                .q = SUB(q, n, 1, 0, -1), .k = SUB(k, n, 1, 0, -1), .v = SUB(v, n, 1, 0, -1),
                .o = SUB(o, n, 1, 0, -1), .state_s = sT, .state_z = zT, .state_c = cT};
            rc = linattn_ela_step(ctx, &s, opts);
        } else if (step) {
#define TOK(t) linattn_serve_tok(&x->t, n)
            const linattn_ela_io f = {.q = TOK(q), .k = TOK(k), .v = TOK(v), .o = TOK(o),
                                      .sT = sT, .zT = zT, .cT = cT};
#undef TOK
            rc = linattn_ela_forward(ctx, &f, opts);
        } else { /* one stretch between cuts at a time, again for each destination */
            const int64_t b = cu ? 0 : n, t0 = cu ? cu[n] : 0, len = cu ? cu[n + 1] - t0 : T;
            const int rd = !fresh && linattn_given(&x->s0);
            linattn_tensor src[3] = {rd ? SUB(s0, slot, 1, 0, -1) : none,
                                     rd ? SUB(z0, slot, 1, 0, -1) : none,
                                     rd ? SUB(c0, slot, 1, 0, -1) : none};
            for (int64_t t = 0, e; t < len && !rc; t = e) {
                e = linattn_serve_next_cut(sv, n, len, t);
                const int64_t c = linattn_serve_ckpt_row(sv, n, e);
                linattn_tensor d[3][3];
                int nd = 0;
                if (sv->W && e >= len - sv->W + 1) {
                    const int64_t r = n * sv->W + e - (len - sv->W + 1);
                    d[nd][0] = SUB(sW, r, 1, 0, -1);
                    d[nd][1] = SUB(zW, r, 1, 0, -1);
                    d[nd++][2] = SUB(cW, r, 1, 0, -1);
                }
                if (c >= 0) {
                    d[nd][0] = SUB(sC, c, 1, 0, -1);
                    d[nd][1] = SUB(zC, c, 1, 0, -1);
                    d[nd++][2] = SUB(cC, c, 1, 0, -1);
                }
                if (e == len && slot >= 0 && linattn_given(&x->sT)) { /* may be src's */
                    d[nd][0] = sT;
                    d[nd][1] = zT;
                    d[nd++][2] = cT;
                }
                if (!nd) {
                    d[0][0] = d[0][1] = d[0][2] = none;
                    nd = 1;
                }
                for (int i = 0; i < nd && !rc; i++)
                    rc = stretch(ctx, x, opts, b, t0, t, e, src, d[i]);
                memcpy(src, d[0], sizeof src);
            }
        }
#undef SUB
    }
    return rc;
}

/* With slots: the pools' first dimensions (each state its own P) in shs[0]
 * and shz[0] of its shapes; P the smallest of them (-1: none given). */
static void pool_dims(const linattn_tensor *s, int64_t *shs, int64_t *shz, int64_t *P)
{
    if (!linattn_given(s) || s->ndim != 4 || s->shape[0] < 1) return;
    shs[0] = shz[0] = s->shape[0];
    if (*P < 0 || shs[0] < *P) *P = shs[0];
}

/* A state (s, z, c): s and z both or neither, c only with them and only for
 * the safe exp form. */
static int check_state(const linattn_tensor *s, const linattn_tensor *z, const linattn_tensor *c,
                       const char *const *nm, const int64_t *shs, const int64_t *shz,
                       int required, int safe)
{
    int rc;
    if (!linattn_given(s) && !linattn_given(z) && !required) {
        if (linattn_given(c))
            return linattn_fail(LINATTN_EINVAL, "%s: given without %s and %s", nm[2], nm[0],
                                nm[1]);
        return LINATTN_OK;
    }
    if ((rc = linattn_check_pair(s, z, nm[0], nm[1], 4, shs, 3, shz, required))) return rc;
    if (!linattn_given(c)) return LINATTN_OK;
    if (!safe)
        return linattn_fail(LINATTN_EINVAL, "%s: a log-offset exists only for the exp feature "
                                            "in its safe form", nm[2]);
    return linattn_check_tensor(c, nm[2], 3, shz);
}

static int begin(const linattn_ctx *ctx, const void *io, const linattn_ela_opts *in,
                 linattn_ela_opts *opts)
{
    const int rc = linattn_check_call(ctx, io);
    if (rc) return rc;
    linattn_ela_opts_init(opts);
    if (in) *opts = *in;
    return check_opts(opts);
}

/* auto's calibration problem: one head of one chunk of tokens of the call's shape. */
typedef struct ela_cal {
    const ela_plan *p;
    int64_t T;
    float *q, *k, *v, *o, *S, *z, *c, *work;
} ela_cal;

static void cal_run(void *arg, int chunk)
{
    const ela_cal *a = arg;
    const ela_plan *p = a->p;
    memset(a->S, 0, sizeof(float) * (size_t)p->F * p->V);
    memset(a->z, 0, sizeof(float) * (size_t)p->F);
    for (int d = 0; d < p->F; d++) a->c[d] = -INFINITY;
    linattn_ela_job jb = {
        .T = a->T, .K = p->K, .V = p->V, .F = p->F, .feature = p->feature, .safe = p->safe,
        .sqk = p->K, .sv = p->V, .q = a->q, .k = a->k, .v = a->v, .o = a->o,
        .S = a->S, .z = a->z, .c = p->safe ? a->c : NULL, .work = a->work,
        .qk_scale = p->qk_scale,
    };
    if (chunk) linattn_ela_chunk(&jb, p->C, a->work);
    else p->ctx->kern.ela_rec(&jb);
}

/* 1: the chunk form measured faster for p's shape, 0: the recurrence,
 * -1: not measured (no memory). */
static int measure(linattn_ctx *ctx, const ela_plan *p, uint64_t key)
{
    const int64_t T = p->C;
    const size_t K = (size_t)p->K, V = (size_t)p->V, F = (size_t)p->F;
    size_t wk = linattn_ela_chunk_work(p->F, p->V, p->C);
    if (wk < 2 * F) wk = 2 * F;
    const size_t n = (size_t)T * (2 * K + 2 * V) + F * V + 2 * F + wk;
    float *m = linattn_malloc(sizeof(float) * n);
    if (!m) return -1;
    ela_cal a = {.p = p, .T = T, .q = m, .k = m + T * K, .v = m + 2 * T * K,
                 .o = m + 2 * T * K + T * V};
    a.S = a.o + T * V;
    a.z = a.S + F * V;
    a.c = a.z + F;
    a.work = a.c + F;
    linattn_cal_fill(m, (size_t)T * (2 * K + V), -1.0f, 1.0f, (uint32_t)key);
    const int chunk = linattn_cal_pick(ctx, key, "ela forward", (int)T, cal_run, &a);
    free(m);
    return chunk;
}

/* auto's choice for a forward: 1 for the chunk form, 0 for the recurrence,
 * the reason in *why.  The recurrence for sequences shorter than a chunk, else the
 * form measured faster on this context for the shape (measured once per
 * shape, on calls large enough that it costs little); without a
 * measurement the recurrence with a SIMD kernel, the chunk form with BLAS. */
static int choose(linattn_ctx *ctx, const ela_plan *p, int64_t units, const char **why)
{
    if (p->T < p->C) return *why = "auto: recurrent, the sequence is shorter than a chunk", 0;
    const uint64_t key = 1u | (uint64_t)p->K << 4 | (uint64_t)p->V << 15 | (uint64_t)p->F << 26 |
                         (uint64_t)p->C << 37 | (uint64_t)p->feature << 48 |
                         (uint64_t)p->safe << 52 | (uint64_t)p->bidir << 53;
    int m = linattn_cal_cached(ctx, key);
    if (m < 0 && !p->bidir && linattn_cal_worth(ctx, units * p->T, p->C)) m = measure(ctx, p, key);
    if (m == 1) return *why = "auto: chunk form, measured faster at this shape on this context", 1;
    if (m == 0) return *why = "auto: recurrent, measured faster at this shape on this context", 0;
    if (!ctx->kern.simd && linattn_have_blas())
        return *why = "auto: chunk form (small call, not measured: BLAS and no SIMD recurrence)", 1;
    return *why = "auto: recurrent (small call, not measured)", 0;
}

/* Everything after the argument checks, for forward and step (step: T = 1,
 * sequence n is batch row n, s0 = st, z0 = zt, c0 = ct: the state in place). */
static int run(linattn_ctx *ctx, linattn_ela_io *x, const char *const *names, int64_t T,
               int64_t H, int64_t nseq, int64_t K, int64_t V, const linattn_ela_opts *opts,
               const linattn_serve *sv, int step)
{
    int rc;
    linattn_tensor *const ts[] = {&x->q, &x->k, &x->v, &x->s0, &x->z0, &x->c0,
                                  &x->o, &x->sT, &x->zT, &x->cT, &x->sW, &x->zW,
                                  &x->cW, &x->sC, &x->zC, &x->cC};
    if ((rc = linattn_check_f32_states(ts, names, 16, 0xFFB8u, "ela"))) return rc;
    linattn_packset ps;
    /* with slots a packed final-state pool is read in too: the slots no
     * sequence names are written back as they were; checkpoint rows no
     * sequence reaches likewise */
    const int slots = x->state_indices || x->has_initial_state;
    if ((rc = linattn_views_begin(&ps, ctx, ts, names, 16, (slots ? 0x3BFu : 0x3Fu) | 0xE000u,
                                  0xFFC0u, 0, 0, 0)))
        return rc;
    if (ctx->cl && (slots || sv->on)) /* plain calls on views */
        return linattn_pack_end(&ps, ela_split(ctx, x, opts, sv, nseq, T, step));
    linattn_clear_error();
    const int safe = is_safe(opts);
    const int bidir = !step && opts->bidirectional;
    const float s = opts->qk_scale != 0.0f ? opts->qk_scale : 1.0f;
    const int F = (int)linattn_ela_feature_dim(opts->feature, K);
    if (ctx->cl) {
        /* the device runs the chunk form unless the recurrence is asked for
         * (chunks of opts.chunk tokens up to LINATTN_CL_CHUNK) */
        const int cl_chunk = step || opts->algo == LINATTN_ALGO_RECURRENT ? 0
                             : opts->chunk > 0 && opts->chunk < LINATTN_CL_CHUNK ? opts->chunk
                                                                                 : LINATTN_CL_CHUNK;
        int ran_chunk = 0;
        linattn_cl_ela a = {
            .step = step, .feature = opts->feature, .safe = safe, .bidir = bidir,
            .chunk = cl_chunk, .ran_chunk = &ran_chunk,
            .T = T, .H = H, .nseq = nseq, .K = (int)K, .V = (int)V, .F = F,
            .cu = x->cu_seqlens, .qk_scale = s,
            .q = linattn_cl_arg_of(&x->q), .k = linattn_cl_arg_of(&x->k),
            .v = linattn_cl_arg_of(&x->v), .s0 = linattn_cl_arg_of(&x->s0),
            .z0 = linattn_cl_arg_of(&x->z0), .c0 = linattn_cl_arg_of(&x->c0),
            .o = linattn_cl_arg_of(&x->o), .st = linattn_cl_arg_of(&x->sT),
            .zt = linattn_cl_arg_of(&x->zT), .ct = linattn_cl_arg_of(&x->cT),
        };
        rc = linattn_cl_ela_run(ctx->cl, &a);
        if (!(rc && linattn_cl_fallback(ctx, rc, ts, 10)))
            return linattn_form_ran(ctx, linattn_pack_end(&ps, rc), "ela", step,
                                    ran_chunk ? "chunk" : "recurrent",
                                    ran_chunk ? "OpenCL: the chunk form unless the recurrence is "
                                                "asked for"
                                    : step || cl_chunk == 0 ? linattn_form_why(opts->algo, step, 0)
                                    : "OpenCL: the chunk states would not fit in device "
                                      "memory, the recurrence");
    }
    ela_plan p = {
        .ctx = ctx, .T = T, .H = H, .K = (int)K, .V = (int)V, .F = F,
        .feature = opts->feature, .safe = safe, .bidir = bidir,
        .ref = ctx->backend == LINATTN_BACKEND_REF, .cu = x->cu_seqlens,
        .slot = x->state_indices, .init = x->has_initial_state,
        .q = linattn_host(&x->q), .k = linattn_host(&x->k), .v = linattn_host(&x->v),
        .s0 = linattn_host(&x->s0), .z0 = linattn_host(&x->z0), .c0 = linattn_host(&x->c0),
        .o = linattn_host(&x->o), .st = linattn_host(&x->sT), .zt = linattn_host(&x->zT),
        .ct = linattn_host(&x->cT), .qk_scale = s, .sv = *sv,
        .ws = linattn_host(&x->sW), .wz = linattn_host(&x->zW), .wc = linattn_host(&x->cW),
        .cs = linattn_host(&x->sC), .cz = linattn_host(&x->zC), .cc = linattn_host(&x->cC),
        .C = opts->chunk ? opts->chunk : DEFAULT_CHUNK,
    };
    const char *why = linattn_form_why(opts->algo, step, p.ref);
    p.chunk = !step && !p.ref && opts->algo == LINATTN_ALGO_CHUNK;
    if (!why) p.chunk = choose(ctx, &p, nseq * H, &why);
    rc = execute(&p, nseq * H, step ? "ela step" : "ela forward");
    return linattn_form_ran(ctx, linattn_pack_end(&ps, rc), "ela", step,
                            p.ref ? "reference" : p.chunk ? "chunk" : "recurrent", why);
}

int linattn_ela_forward(linattn_ctx *ctx, const linattn_ela_io *io, const linattn_ela_opts *oin)
{
    int rc;
    int64_t s[4], V, nseq;
    linattn_ela_opts opts;
    if ((rc = begin(ctx, io, oin, &opts))) return rc;
    if ((rc = linattn_check_qkv(&io->q, &io->k, &io->v, 4, s, &V, NULL))) return rc;
    const int64_t K = s[3];
    const int64_t osh[4] = {s[0], s[1], s[2], V};
    if ((rc = linattn_check_tensor(&io->o, "o", 4, osh))) return rc;
    if ((rc = linattn_check_sequences(io->cu_seqlens, io->n_seqs, s[0], s[1], &nseq)))
        return rc;
    const int64_t F = linattn_ela_feature_dim(opts.feature, K);
    int64_t s0s[4] = {nseq, s[2], F, V}, s0z[3] = {nseq, s[2], F}, P = -1;
    int64_t sTs[4] = {nseq, s[2], F, V}, sTz[3] = {nseq, s[2], F};
    if (io->state_indices) {
        pool_dims(&io->s0, s0s, s0z, &P);
        pool_dims(&io->sT, sTs, sTz, &P);
    }
    static const char *const n0[] = {"s0", "z0", "c0"}, *const nt[] = {"sT", "zT", "cT"};
    if ((rc = check_state(&io->s0, &io->z0, &io->c0, n0, s0s, s0z, 0, is_safe(&opts))))
        return rc;
    if ((rc = check_state(&io->sT, &io->zT, &io->cT, nt, sTs, sTz, 0, is_safe(&opts))))
        return rc;
    if (io->state_indices && P < 0)
        return linattn_fail(LINATTN_EINVAL, "state_indices: given without a pool (s0 or sT)");
    if (io->state_indices && (rc = linattn_serve_slots(io->state_indices, nseq, P))) return rc;
    linattn_serve sv;
    const linattn_rows_spec rs = {
        .n = 3, .opt = 4u, .w = {&io->sW, &io->zW, &io->cW}, .c = {&io->sC, &io->zC, &io->cC},
        .wn = {"sW", "zW", "cW"}, .cn = {"sC", "zC", "cC"}, .nd = {4, 3, 3},
        .sh = {{0, s[2], F, V}, {0, s[2], F}, {0, s[2], F}}};
    if ((linattn_given(&io->cW) || linattn_given(&io->cC)) && !is_safe(&opts))
        return linattn_fail(LINATTN_EINVAL, "%s: a log-offset exists only for the exp feature "
                            "in its safe form", linattn_given(&io->cW) ? "cW" : "cC");
    if ((rc = linattn_serve_rows_check(&rs, nseq, io->cu_seqlens, s[1], io->checkpoint_every,
                                       io->checkpoint_offsets, &sv)))
        return rc;
    if (sv.on && opts.bidirectional)
        return linattn_fail(LINATTN_EINVAL, "rollback or checkpoint rows: not with "
                                            "bidirectional (every token reads the whole "
                                            "sequence)");
    static const char *const names[] = {"q",  "k",  "v",  "s0", "z0", "c0", "o",  "sT",
                                        "zT", "cT", "sW", "zW", "cW", "sC", "zC", "cC"};
    linattn_ela_io x = *io;
    return run(ctx, &x, names, s[1], s[2], nseq, K, V, &opts, &sv, 0);
}

int linattn_ela_step(linattn_ctx *ctx, const linattn_ela_step_io *io, const linattn_ela_opts *oin)
{
    int rc;
    int64_t s[3], V;
    linattn_ela_opts opts;
    if ((rc = begin(ctx, io, oin, &opts))) return rc;
    if ((rc = linattn_check_qkv(&io->q, &io->k, &io->v, 3, s, &V, NULL))) return rc;
    const int64_t K = s[2], F = linattn_ela_feature_dim(opts.feature, K);
    int64_t shs[4] = {s[0], s[1], F, V}, shz[3] = {s[0], s[1], F}, P = -1;
    const int64_t osh[3] = {s[0], s[1], V};
    if (io->state_indices) pool_dims(&io->state_s, shs, shz, &P);
    static const char *const ns[] = {"state_s", "state_z", "state_c"};
    if ((rc = check_state(&io->state_s, &io->state_z, &io->state_c, ns, shs, shz, 1,
                          is_safe(&opts))))
        return rc;
    if (io->state_indices && (rc = linattn_serve_slots(io->state_indices, s[0], P))) return rc;
    if ((rc = linattn_check_tensor(&io->o, "o", 3, osh))) return rc;
    static const char *const names[] = {"q", "k", "v", "state_s", "state_z", "state_c",
                                        "o", "state_s", "state_z", "state_c",
                                        "", "", "", "", "", ""};
    /* B sequences of one token: the forward's path with s0 = st = the state */
    linattn_ela_io x = {.q = io->q, .k = io->k, .v = io->v, .s0 = io->state_s,
                        .z0 = io->state_z, .c0 = io->state_c, .o = io->o,
                        .sT = io->state_s, .zT = io->state_z, .cT = io->state_c,
                        .state_indices = io->state_indices,
                        .has_initial_state = io->has_initial_state};
    linattn_serve sv;
    memset(&sv, 0, sizeof sv);
    return run(ctx, &x, names, 1, s[1], s[0], K, V, &opts, &sv, 1);
}
