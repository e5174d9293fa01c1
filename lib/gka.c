/* linattn - driver of Gated KalmaNet (gka): argument checks, the Chebyshev
 * schedule, one job per (sequence, head) on the context's threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "serve.h"

#define DEFAULT_RIDGE 0.02f
#define DEFAULT_ITERS 30
#define DEFAULT_CHUNK 64
#define MAX_ITERS 1000

void linattn_gka_opts_init(linattn_gka_opts *opts)
{
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
    opts->ridge = DEFAULT_RIDGE;
    opts->iters = DEFAULT_ITERS;
    opts->algo = LINATTN_ALGO_AUTO;
}

static int check_opts(const linattn_ctx *ctx, const linattn_gka_opts *o)
{
    if (!isfinite(o->scale)) return linattn_fail(LINATTN_ERANGE, "opts.scale: not finite");
    if (!(o->ridge > 0.0f) || !isfinite(o->ridge))
        return linattn_fail(LINATTN_ERANGE, "opts.ridge: %g (must be finite and > 0)", o->ridge);
    if (o->iters < 1 || o->iters > MAX_ITERS)
        return linattn_fail(LINATTN_ERANGE, "opts.iters: %d (must be 1..%d)", o->iters, MAX_ITERS);
    if (o->chunk < 0 || o->chunk > LINATTN_MAX_CHUNK)
        return linattn_fail(LINATTN_ERANGE, "opts.chunk: %d (must be 0..%d)", o->chunk,
                            LINATTN_MAX_CHUNK);
    if (o->algo < LINATTN_ALGO_AUTO || o->algo > LINATTN_ALGO_CHUNK)
        return linattn_fail(LINATTN_EINVAL, "opts.algo: unknown value %d", (int)o->algo);
    if (o->algo == LINATTN_ALGO_CHUNK && !linattn_have_blas() && !ctx->cl)
        return linattn_fail(LINATTN_EUNSUPPORTED, "opts.algo: the chunk form needs BLAS, "
                                                  "which this build lacks");
    return LINATTN_OK;
}

typedef struct gka_plan {
    const linattn_ctx *ctx;
    int64_t T, H;
    int K, V, iters, ref, chunk, C; /* chunk: run the chunkwise form with chunks of C */
    const int64_t *cu;
    const int64_t *slot;            /* NULL: sequence n uses state n; -1 padding */
    const unsigned char *init;      /* NULL: every sequence reads its state */
    const float *q, *k, *v, *g, *beta, *alpha, *h0kk, *h0kv;
    float *o, *htkk, *htkv;
    linattn_serve sv;               /* rollback and checkpoint rows (W, C: none) */
    float *wkk, *wkv, *ckk, *ckv;   /* their pairs */
    float scale, ridge;
    float omega[MAX_ITERS];
    linattn_runner run;
} gka_plan;

/* omega_n = 1 / (1 - rho^2/4 omega_{n-1}), omega_0 = 2, rho = 1/(1+2a) */
static void omega_table(float *om, int iters, float ridge)
{
    const double rho = 1.0 / (1.0 + 2.0 * (double)ridge);
    double w = 2.0;
    for (int n = 0; n < iters; n++) om[n] = (float)(w = 1.0 / (1.0 - rho * rho / 4.0 * w));
}

static void run_kernel(const gka_plan *p, linattn_gka_job *jb, int thread)
{
    if (p->ref)
        linattn_gka_ref_seq(jb, linattn_runner_dwork(&p->run, thread));
    else if (p->chunk)
        linattn_gka_chunk(jb, p->C, jb->work);
    else
        p->ctx->kern.gka_rec(jb);
}

static void run_job(void *arg, int64_t unit, int thread)
{
    const gka_plan *p = arg;
    const int64_t h = unit % p->H, n = unit / p->H;
    int64_t row0, len;
    linattn_seq_span(p->cu, p->T, n, &row0, &len);
    const size_t KK = (size_t)p->K * p->K, KV = (size_t)p->K * p->V;
    const int64_t tok0 = row0 * p->H + h;
    float *work = linattn_runner_work(&p->run, thread);
    /* the state's slot: -1 a padding row, from zeros and not stored */
    const int64_t slot = p->slot ? p->slot[n] : n, su = slot * p->H + h;
    const int fresh = slot < 0 || (p->init && !p->init[n]);
    float *Hs = p->htkk && slot >= 0 ? p->htkk + su * KK : work;
    float *Us = p->htkv && slot >= 0 ? p->htkv + su * KV : work + KK;
    const float *H0 = p->h0kk && !fresh ? p->h0kk + su * KK : NULL;
    const float *U0 = p->h0kv && !fresh ? p->h0kv + su * KV : NULL;
    if (H0 != Hs) {
        if (H0) memcpy(Hs, H0, sizeof(float) * KK);
        else memset(Hs, 0, sizeof(float) * KK);
    }
    if (U0 != Us) {
        if (U0) memcpy(Us, U0, sizeof(float) * KV);
        else memset(Us, 0, sizeof(float) * KV);
    }
    const ptrdiff_t sg = (ptrdiff_t)p->H;
    linattn_gka_job jb = {
        .T = len, .K = p->K, .V = p->V, .iters = p->iters,
        .sqk = (ptrdiff_t)(p->H * p->K), .sv = (ptrdiff_t)(p->H * p->V), .sg = sg,
        .q = p->q + tok0 * p->K, .k = p->k + tok0 * p->K, .v = p->v + tok0 * p->V,
        .g = p->g ? p->g + tok0 : NULL, .beta = p->beta ? p->beta + tok0 : NULL,
        .alpha = p->alpha ? p->alpha + tok0 : NULL, .omega = p->omega,
        .o = p->o + tok0 * p->V, .Hs = Hs, .Us = Us, .work = work + KK + KV,
        .scale = p->scale, .ridge = p->ridge,
    };
    if (!p->sv.W && !p->sv.C) {
        run_kernel(p, &jb, thread);
        return;
    }
    /* rollback and checkpoint rows: the sequence in stretches between the
     * cuts, the state (in place) copied out at each */
    for (int64_t t = 0; t < len;) {
        const int64_t e = linattn_serve_next_cut(&p->sv, n, len, t);
        linattn_gka_job s = jb;
        s.T = e - t;
        s.q += t * jb.sqk; s.k += t * jb.sqk; s.v += t * jb.sv; s.o += t * jb.sv;
        if (s.g) s.g += t * sg;
        if (s.beta) s.beta += t * sg;
        if (s.alpha) s.alpha += t * sg;
        run_kernel(p, &s, thread);
        const int64_t c = linattn_serve_ckpt_row(&p->sv, n, e);
        if (p->sv.W && e >= len - p->sv.W + 1) {
            const int64_t r = (n * p->sv.W + e - (len - p->sv.W + 1)) * p->H + h;
            memcpy(p->wkk + r * KK, Hs, sizeof(float) * KK);
            memcpy(p->wkv + r * KV, Us, sizeof(float) * KV);
        }
        if (c >= 0) {
            memcpy(p->ckk + (c * p->H + h) * KK, Hs, sizeof(float) * KK);
            memcpy(p->ckv + (c * p->H + h) * KV, Us, sizeof(float) * KV);
        }
        t = e;
    }
}

static int execute(gka_plan *p, int64_t units, const char *what)
{
    const int nt = linattn_max_threads(p->ctx);
    const size_t KK = (size_t)p->K * p->K, KV = (size_t)p->K * p->V;
    omega_table(p->omega, p->iters, p->ridge);
    size_t kwork = 3u * p->K + (size_t)(p->K > p->V ? p->K : p->V);
    if (p->chunk && linattn_gka_chunk_work(p->K, p->V, p->C) > kwork)
        kwork = linattn_gka_chunk_work(p->K, p->V, p->C);
    const int rc = linattn_runner_begin(&p->run, p->ctx, KK + KV + kwork,
                                        p->ref ? linattn_gka_ref_work(p->K, p->V) : 0, 0, what);
    if (rc) return rc;
    if (p->ctx->verbose)
        fprintf(stderr, "linattn: %s T=%lld H=%lld K=%d V=%d: %s %s, %d Chebyshev "
                "iterations, %d thread%s\n", what, (long long)p->T, (long long)p->H, p->K, p->V,
                p->ref ? "ref" : p->ctx->kern.isa, p->chunk ? "chunk" : "recurrent", p->iters,
                nt, nt == 1 ? "" : "s");
    linattn_runner_jobs(&p->run, units, run_job, p, p->chunk);
    linattn_runner_end(&p->run);
    return LINATTN_OK;
}

/* Optional gates [.., H]: g, beta, alpha. */
static int check_gates(const linattn_tensor *const *t, int ndim, const int64_t *shape)
{
    static const char *const names[] = {"g", "beta", "alpha"};
    int rc;
    for (int i = 0; i < 3; i++)
        if (linattn_given(t[i]) && (rc = linattn_check_tensor(t[i], names[i], ndim, shape)))
            return rc;
    return LINATTN_OK;
}

/* On an OpenCL context: run there.  Returns 1 when done (status in *rc),
 * 0 when the CPU path should run. */
static int try_cl(const linattn_ctx *ctx, linattn_cl_gka *a, linattn_tensor *const *t, int n,
                  int *rc)
{
    if (!ctx->cl) return 0;
    float om[MAX_ITERS];
    omega_table(om, a->iters, a->ridge);
    a->omega = om;
    *rc = linattn_cl_gka_run(ctx->cl, a);
    return !(*rc && linattn_cl_fallback(ctx, *rc, t, n));
}

/* The checks every entry point starts with; the options with defaults. */
static int begin(const linattn_ctx *ctx, const void *io, const linattn_gka_opts *in,
                 linattn_gka_opts *opts)
{
    const int rc = linattn_check_call(ctx, io);
    if (rc) return rc;
    linattn_gka_opts_init(opts);
    if (in) *opts = *in;
    return check_opts(ctx, opts);
}

/* The state pairs: [N,H,K,K] and [N,H,K,V], or with slots pools [P,..]
 * (P from the pair's first tensor) and the slots checked against them;
 * step: (a, b) the required in-place state, c and d unused. */
static int check_states(const linattn_tensor *a, const linattn_tensor *b,
                        const linattn_tensor *c, const linattn_tensor *d, const int64_t *slot,
                        int64_t nseq, int64_t H, int64_t K, int64_t V, int step)
{
    int rc;
    const linattn_tensor *pr[2][2] = {{a, b}, {c, d}};
    static const char *const nm[2][2] = {{"kk0", "kv0"}, {"kkT", "kvT"}};
    int64_t P = -1;
    for (int i = 0; i < (step ? 1 : 2); i++) {
        const linattn_tensor *x = pr[i][0];
        const int64_t n = slot && linattn_given(x) && x->ndim == 4 && x->shape[0] >= 1
                              ? x->shape[0] : nseq;
        const int64_t kk[4] = {n, H, K, K}, kv[4] = {n, H, K, V};
        if ((rc = linattn_check_pair(pr[i][0], pr[i][1], step ? "state_kk" : nm[i][0],
                                     step ? "state_kv" : nm[i][1], 4, kk, 4, kv, step)))
            return rc;
        if (linattn_given(x) && (P < 0 || n < P)) P = n;
    }
    if (!slot) return LINATTN_OK;
    if (P < 0) return linattn_fail(LINATTN_EINVAL, "state_indices: given without a pool");
    return linattn_serve_slots(slot, nseq, P);
}

/* auto's calibration problem: one head of one chunk of tokens of the call's shape
 * (no gates: the work per token does not depend on them). */
typedef struct gka_cal {
    const gka_plan *p;
    int64_t T;
    float *q, *k, *v, *o, *Hs, *Us, *work;
} gka_cal;

static void cal_run(void *arg, int chunk)
{
    const gka_cal *a = arg;
    const gka_plan *p = a->p;
    memset(a->Hs, 0, sizeof(float) * (size_t)p->K * p->K);
    memset(a->Us, 0, sizeof(float) * (size_t)p->K * p->V);
    linattn_gka_job jb = {
        .T = a->T, .K = p->K, .V = p->V, .iters = p->iters, .sqk = p->K, .sv = p->V, .sg = 1,
        .q = a->q, .k = a->k, .v = a->v, .omega = p->omega, .o = a->o, .Hs = a->Hs,
        .Us = a->Us, .work = a->work, .scale = p->scale, .ridge = p->ridge,
    };
    if (chunk) linattn_gka_chunk(&jb, p->C, a->work);
    else p->ctx->kern.gka_rec(&jb);
}

/* 1: the chunk form measured faster for p's shape, 0: the recurrence,
 * -1: not measured (no memory). */
static int measure(linattn_ctx *ctx, gka_plan *p, uint64_t key)
{
    const int64_t T = p->C;
    const size_t K = (size_t)p->K, V = (size_t)p->V;
    size_t wk = linattn_gka_chunk_work(p->K, p->V, p->C);
    if (wk < 4 * K + V) wk = 4 * K + V;
    const size_t n = (size_t)T * (2 * K + 2 * V) + K * K + K * V + wk;
    float *m = linattn_malloc(sizeof(float) * n);
    if (!m) return -1;
    gka_cal a = {.p = p, .T = T, .q = m, .k = m + T * K, .v = m + 2 * T * K,
                 .o = m + 2 * T * K + T * V};
    a.Hs = a.o + T * V;
    a.Us = a.Hs + K * K;
    a.work = a.Us + K * V;
    linattn_cal_fill(m, (size_t)T * (2 * K + V), -1.0f, 1.0f, (uint32_t)key);
    omega_table(p->omega, p->iters, p->ridge);
    const int chunk = linattn_cal_pick(ctx, key, "gka forward", (int)T, cal_run, &a);
    free(m);
    return chunk;
}

/* auto's choice for a forward: 1 for the chunk form, 0 for the recurrence,
 * the reason in *why.  The recurrence without BLAS or for sequences shorter than a
 * chunk, else the form measured faster on this context for the shape
 * (measured once per shape, on calls large enough that it costs little);
 * without a measurement the chunk form. */
static int choose(linattn_ctx *ctx, gka_plan *p, int64_t units, const char **why)
{
    if (!linattn_have_blas()) return *why = "auto: recurrent, the chunk form needs BLAS", 0;
    if (p->T < p->C) return *why = "auto: recurrent, the sequence is shorter than a chunk", 0;
    const uint64_t key = 2u | (uint64_t)p->K << 4 | (uint64_t)p->V << 15 |
                         (uint64_t)p->C << 26 | (uint64_t)p->iters << 37;
    int m = linattn_cal_cached(ctx, key);
    if (m < 0 && linattn_cal_worth(ctx, units * p->T, p->C)) m = measure(ctx, p, key);
    if (m == 1) return *why = "auto: chunk form, measured faster at this shape on this context", 1;
    if (m == 0) return *why = "auto: recurrent, measured faster at this shape on this context", 0;
    return *why = "auto: chunk form (small call, not measured: BLAS)", 1;
}

/* Everything after the argument checks, for forward and step (step: T = 1,
 * sequence n is batch row n, h0 and ht are the state, updated in place).
 * names[] name x's tensors for the buffer checks, in the order below. */
static int run(linattn_ctx *ctx, linattn_gka_io *x, const char *const *names, int64_t T,
               int64_t H, int64_t nseq, int64_t K, int64_t V, const linattn_gka_opts *opts,
               const linattn_serve *sv, int step)
{
    int rc;
    linattn_tensor *const ts[] = {&x->q, &x->k, &x->v, &x->g, &x->beta, &x->alpha, &x->kk0,
                                  &x->kv0, &x->o, &x->kkT, &x->kvT, &x->kkW, &x->kvW,
                                  &x->kkC, &x->kvC};
    if ((rc = linattn_check_f32_states(ts, names, 15, 0x7EC0u, "gka"))) return rc;
    /* with slots a packed final-state pool is read in too: the slots no
     * sequence names are written back as they were; checkpoint rows no
     * sequence reaches likewise */
    const int slots = x->state_indices || x->has_initial_state;
    linattn_packset ps;
    if ((rc = linattn_views_begin(&ps, ctx, ts, names, 15, (slots ? 0x6FFu : 0xFFu) | 0x6000u,
                                  0x7F00u, 0, 0, 0)))
        return rc;
    const linattn_value_check vc[] = {{&x->g, names[3], LINATTN_RANGE_LOGDECAY},
                                      {&x->beta, names[4], LINATTN_RANGE_FINITE},
                                      {&x->alpha, names[5], LINATTN_RANGE_UNIT}};
    if ((rc = linattn_check_values(ctx, vc, 3))) return linattn_pack_end(&ps, rc);
    if (ctx->cl && (slots || sv->on)) /* plain calls on views */
        return linattn_pack_end(&ps, linattn_gka_split(ctx, x, opts, sv, nseq, T, step));
    linattn_clear_error();
    const float scale = opts->scale != 0.0f ? opts->scale : 1.0f / sqrtf((float)K);
    linattn_cl_gka a = {
        .step = step, .T = T, .H = H, .nseq = nseq, .K = (int)K, .V = (int)V,
        .iters = opts->iters, .cu = x->cu_seqlens, .scale = scale, .ridge = opts->ridge,
        .q = linattn_cl_arg_of(&x->q), .k = linattn_cl_arg_of(&x->k), .v = linattn_cl_arg_of(&x->v),
        .g = linattn_cl_arg_of(&x->g), .beta = linattn_cl_arg_of(&x->beta),
        .alpha = linattn_cl_arg_of(&x->alpha), .h0kk = linattn_cl_arg_of(&x->kk0),
        .h0kv = linattn_cl_arg_of(&x->kv0), .o = linattn_cl_arg_of(&x->o),
        .htkk = linattn_cl_arg_of(&x->kkT), .htkv = linattn_cl_arg_of(&x->kvT),
        .algo = opts->algo, .chunk = opts->chunk,
    };
    int ran_chunk = 0;
    const char *cl_why = NULL;
    a.ran_chunk = &ran_chunk;
    a.why = &cl_why;
    if (try_cl(ctx, &a, ts, 15, &rc))
        return linattn_form_ran(ctx, linattn_pack_end(&ps, rc), "gka", step,
                                ran_chunk ? "chunk" : "recurrent",
                                cl_why ? cl_why : linattn_form_why(opts->algo, step, 0));
    gka_plan p = {
        .ctx = ctx, .T = T, .H = H, .K = (int)K, .V = (int)V, .iters = opts->iters,
        .ref = ctx->backend == LINATTN_BACKEND_REF, .cu = x->cu_seqlens,
        .slot = x->state_indices, .init = x->has_initial_state,
        .q = linattn_host(&x->q), .k = linattn_host(&x->k), .v = linattn_host(&x->v),
        .g = linattn_host(&x->g), .beta = linattn_host(&x->beta),
        .alpha = linattn_host(&x->alpha), .h0kk = linattn_host(&x->kk0),
        .h0kv = linattn_host(&x->kv0), .o = linattn_host(&x->o),
        .htkk = linattn_host(&x->kkT), .htkv = linattn_host(&x->kvT), .sv = *sv,
        .wkk = linattn_host(&x->kkW), .wkv = linattn_host(&x->kvW),
        .ckk = linattn_host(&x->kkC), .ckv = linattn_host(&x->kvC), .scale = scale, .ridge = opts->ridge, .C = opts->chunk ? opts->chunk : DEFAULT_CHUNK,
    };
    const char *why = linattn_form_why(opts->algo, step, p.ref);
    p.chunk = !step && !p.ref && opts->algo == LINATTN_ALGO_CHUNK;
    if (p.chunk && !linattn_have_blas()) /* OpenCL's chunk form fell back to the CPU */
        p.chunk = 0, why = "the chunk form on the CPU needs BLAS, which this build lacks";
    if (!why) p.chunk = choose(ctx, &p, nseq * H, &why);
    rc = execute(&p, nseq * H, step ? "gka step" : "gka forward");
    return linattn_form_ran(ctx, linattn_pack_end(&ps, rc), "gka", step,
                            p.ref ? "reference" : p.chunk ? "chunk" : "recurrent", why);
}

int linattn_gka_forward(linattn_ctx *ctx, const linattn_gka_io *io, const linattn_gka_opts *oin)
{
    int rc;
    int64_t s[4], V, nseq;
    linattn_gka_opts opts;
    if ((rc = begin(ctx, io, oin, &opts))) return rc;
    if ((rc = linattn_check_qkv(&io->q, &io->k, &io->v, 4, s, &V, NULL))) return rc;
    const int64_t K = s[3];
    const linattn_tensor *gates[] = {&io->g, &io->beta, &io->alpha};
    if ((rc = check_gates(gates, 3, s))) return rc;
    const int64_t osh[4] = {s[0], s[1], s[2], V};
    if ((rc = linattn_check_tensor(&io->o, "o", 4, osh))) return rc;
    if ((rc = linattn_check_sequences(io->cu_seqlens, io->n_seqs, s[0], s[1], &nseq)))
        return rc;
    if ((rc = check_states(&io->kk0, &io->kv0, &io->kkT, &io->kvT, io->state_indices, nseq,
                           s[2], K, V, 0)))
        return rc;
    linattn_serve sv;
    if ((rc = linattn_gka_serve_check(io, nseq, s[1], s[2], K, V, &sv))) return rc;
    static const char *const names[] = {"q", "k", "v", "g", "beta", "alpha", "kk0", "kv0",
                                        "o", "kkT", "kvT", "kkW", "kvW", "kkC", "kvC"};
    linattn_gka_io x = *io;
    return run(ctx, &x, names, s[1], s[2], nseq, K, V, &opts, &sv, 0);
}

int linattn_gka_step(linattn_ctx *ctx, const linattn_gka_step_io *io, const linattn_gka_opts *oin)
{
    int rc;
    int64_t s[3], V;
    linattn_gka_opts opts;
    if ((rc = begin(ctx, io, oin, &opts))) return rc;
    if ((rc = linattn_check_qkv(&io->q, &io->k, &io->v, 3, s, &V, NULL))) return rc;
    const int64_t K = s[2];
    const linattn_tensor *gates[] = {&io->g, &io->beta, &io->alpha};
    if ((rc = check_gates(gates, 2, s))) return rc;
    const int64_t osh[3] = {s[0], s[1], V};
    if ((rc = check_states(&io->state_kk, &io->state_kv, NULL, NULL, io->state_indices, s[0],
                           s[1], K, V, 1)))
        return rc;
    if ((rc = linattn_check_tensor(&io->o, "o", 3, osh))) return rc;
    static const char *const names[] = {"q", "k", "v", "g", "beta", "alpha", "state_kk",
                                        "state_kv", "o", "state_kk", "state_kv", "", "", "",
                                        ""};
    linattn_serve sv;
    memset(&sv, 0, sizeof sv);
    /* B sequences of one token: the forward's path with h0 = ht = the state */
    linattn_gka_io x = {.q = io->q, .k = io->k, .v = io->v, .g = io->g, .beta = io->beta,
                        .alpha = io->alpha, .kk0 = io->state_kk, .kv0 = io->state_kv,
                        .o = io->o, .kkT = io->state_kk, .kvT = io->state_kv,
                        .state_indices = io->state_indices,
                        .has_initial_state = io->has_initial_state};
    return run(ctx, &x, names, 1, s[1], s[0], K, V, &opts, &sv, 1);
}
