/* linattn tests - threads: many threads share one context (a CPU one, the
 * reference one and, when a device is usable, an OpenCL one) and each runs
 * a different mix of operators, shapes and algorithms, forward and step,
 * concurrently; every result must equal, bit for bit, the same call made
 * single-threaded beforehand.  A race on shared state (a scratch buffer, a
 * plan, a cache, a device queue) shows up as a mismatch.
 *
 * The loop runs for LINATTN_STRESS_SECONDS (default 3; it bounds the loop,
 * nothing is timed) with LINATTN_STRESS_THREADS threads (default 8; 0 runs
 * the jobs on the test's own thread, for emulators that cannot start
 * threads).  Each thread makes at least one pass over every job.  Built with
 * -fsanitize=thread this is the ThreadSanitizer test of the library. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "testutil.h"

enum { OP_GDN, OP_KLA, OP_GLA, OP_GKA, OP_KALMAN, OP_ELA, OP_SOFTMAX };
static const char *const OPNAME[] = {"gdn", "kla", "gla", "gka", "kalman", "ela", "softmax"};

#define MAXCTX 3
#define MAXIN 10

/* One call (forward over T tokens, or T steps) and its expected outputs.
 * kalman: K is S (states), V is M (channels), H is 1.  softmax step: P
 * tokens are appended to a fresh cache (capacity cap) before the T steps. */
typedef struct job {
    char name[96];
    int op, step, algo, chunk;
    int64_t B, T, H, K, V, P, cap;
    float *in[MAXIN];
    size_t nin[MAXIN];
    size_t nout;
    float *want[MAXCTX];
} job;

static float *fresh(job *j, int i, size_t n, double lo, double hi)
{
    j->in[i] = tu_alloc(n);
    j->nin[i] = n;
    tu_fill(j->in[i], n, lo, hi);
    return j->in[i];
}

static void job_make(job *j, int op, int step, int algo, int64_t B, int64_t T, int64_t H,
                     int64_t K, int64_t V)
{
    memset(j, 0, sizeof *j);
    j->op = op; j->step = step; j->algo = algo;
    j->B = B; j->T = T; j->H = H; j->K = K; j->V = V;
    snprintf(j->name, sizeof j->name, "%s %s%s B=%lld T=%lld H=%lld K=%lld V=%lld", OPNAME[op],
             step ? "step" : "forward",
             step ? "" : algo == LINATTN_ALGO_CHUNK ? " chunk" : algo ? " recurrent" : " auto",
             (long long)B, (long long)T, (long long)H, (long long)K, (long long)V);
    const size_t nqk = B * T * H * K, nv = B * T * H * V, ng = B * T * H, ns = B * H * K * V;
    switch (op) {
    case OP_GDN: case OP_KLA: case OP_GLA:
        fresh(j, 0, nqk, -1, 1);
        fresh(j, 1, nqk, -1, 1);
        tu_l2norm_rows(j->in[0], B * T * H, (int)K);
        if (op != OP_KLA) tu_l2norm_rows(j->in[1], B * T * H, (int)K);
        fresh(j, 2, nv, -1, 1);
        fresh(j, 3, ng, -0.5, 0);     /* g */
        fresh(j, 4, ng, 0.05, 1);     /* beta (kla: eta) */
        fresh(j, 5, ns, -0.5, 0.5);   /* h0 */
        j->nout = nv + ns;
        break;
    case OP_GKA:
        fresh(j, 0, nqk, -1, 1);
        fresh(j, 1, nqk, -1, 1);
        tu_l2norm_rows(j->in[1], B * T * H, (int)K);
        fresh(j, 2, nv, -1, 1);
        fresh(j, 3, ng, -0.3, 0);     /* g */
        fresh(j, 4, ng, 0.2, 1);      /* beta */
        fresh(j, 5, ng, 0, 1);        /* alpha */
        fresh(j, 6, B * H * K * K, -0.02, 0.02); /* h0_kk: made symmetric PSD below */
        fresh(j, 7, ns, -0.5, 0.5);   /* h0_kv */
        for (int64_t m = 0; m < B * H; m++) {
            float *h = j->in[6] + m * K * K;
            for (int64_t a = 0; a < K; a++)
                for (int64_t b = 0; b < a; b++) h[b * K + a] = h[a * K + b];
            for (int64_t a = 0; a < K; a++) h[a * K + a] = 1.0f + (float)tu_uniform(0, 1);
        }
        j->nout = nv + B * H * K * K + ns;
        break;
    case OP_KALMAN: {
        const size_t ny = B * T * V, nk = B * T * K, ms = V * K, nst = B * V * K;
        fresh(j, 0, ny, -1, 1);                                /* v */
        float *lv = fresh(j, 1, ny, 0, 1);                     /* lam_v */
        for (size_t i = 0; i < ny; i++) lv[i] = (float)pow(10.0, tu_uniform(-1, 3));
        fresh(j, 2, nk, -1, 1);                                /* k */
        fresh(j, 3, nk, -1, 1);                                /* q */
        tu_l2norm_rows(j->in[2], B * T, (int)K);
        tu_l2norm_rows(j->in[3], B * T, (int)K);
        fresh(j, 4, ms, 0.5, 0.9999);                          /* decay */
        float *p = fresh(j, 5, ms, 0, 1);                      /* noise */
        for (size_t i = 0; i < ms; i++) p[i] = (float)exp(tu_uniform(log(1e-6), log(1e-1)));
        fresh(j, 6, nst, 0.5, 50);                             /* lam0 */
        fresh(j, 7, nst, -5, 5);                               /* eta0 */
        j->nout = 2 * ny + 2 * nst;
        break;
    }
    case OP_ELA:
        fresh(j, 0, nqk, -1, 1);
        fresh(j, 1, nqk, -1, 1);
        fresh(j, 2, nv, -1, 1);
        fresh(j, 3, ns, 0, 1);                 /* s0 (F = K: the exp map) */
        fresh(j, 4, B * H * K, 0.5, 2);        /* z0 */
        fresh(j, 5, B * H * K, -1, 1);         /* c0 */
        j->nout = nv + ns + 2 * B * H * K;
        break;
    case OP_SOFTMAX:
        fresh(j, 0, nqk, -1, 1);
        fresh(j, 1, nqk, -1, 1);
        fresh(j, 2, nv, -1, 1);
        j->nout = nv;
        break;
    }
}

/* softmax step: a prefill of P tokens (k [B,P,H,K], v [B,P,H,V]) into a cache
 * created with capacity cap (0: it grows while stepping). */
static void job_prefill(job *j, int64_t P, int64_t cap)
{
    j->P = P;
    j->cap = cap;
    fresh(j, 3, j->B * P * j->H * j->K, -1, 1);
    fresh(j, 4, j->B * P * j->H * j->V, -1, 1);
    snprintf(j->name + strlen(j->name), sizeof j->name - strlen(j->name),
             " prefill %lld cap %lld", (long long)P, (long long)cap);
}

static void job_free(job *j)
{
    for (int i = 0; i < MAXIN; i++) free(j->in[i]);
    for (int i = 0; i < MAXCTX; i++) free(j->want[i]);
}

static int delta_call(linattn_ctx *ctx, const job *j, float *out)
{
    const int64_t B = j->B, T = j->T, H = j->H, K = j->K, V = j->V;
    float *const *in = j->in;
    linattn_delta_opts opts;
    linattn_delta_opts_init(&opts);
    opts.algo = (linattn_algo)j->algo;
    opts.chunk = j->chunk;
    const linattn_delta_op op = (linattn_delta_op)j->op;
    float *state = out + B * T * H * V;
    if (!j->step) {
        linattn_delta_io io;
        memset(&io, 0, sizeof io);
        io.q = linattn_tensor_4d(in[0], B, T, H, K);
        io.k = linattn_tensor_4d(in[1], B, T, H, K);
        io.v = linattn_tensor_4d(in[2], B, T, H, V);
        io.g = linattn_tensor_3d(in[3], B, T, H);
        if (op != LINATTN_OP_GLA) io.beta = linattn_tensor_3d(in[4], B, T, H);
        io.h0 = linattn_tensor_4d(in[5], B, H, K, V);
        io.o = linattn_tensor_4d(out, B, T, H, V);
        io.ht = linattn_tensor_4d(state, B, H, K, V);
        return linattn_delta_forward(ctx, op, &io, &opts);
    }
    /* T steps, token t of every row at t*B*H*... (the arrays read as [T,B,H,*]) */
    memcpy(state, in[5], sizeof(float) * B * H * K * V);
    for (int64_t t = 0; t < T; t++) {
        linattn_delta_step_io s;
        memset(&s, 0, sizeof s);
        s.q = linattn_tensor_3d(in[0] + t * B * H * K, B, H, K);
        s.k = linattn_tensor_3d(in[1] + t * B * H * K, B, H, K);
        s.v = linattn_tensor_3d(in[2] + t * B * H * V, B, H, V);
        s.g = linattn_tensor_2d(in[3] + t * B * H, B, H);
        if (op != LINATTN_OP_GLA) s.beta = linattn_tensor_2d(in[4] + t * B * H, B, H);
        s.state = linattn_tensor_4d(state, B, H, K, V);
        s.o = linattn_tensor_3d(out + t * B * H * V, B, H, V);
        const int rc = linattn_delta_step(ctx, op, &s, &opts);
        if (rc) return rc;
    }
    return 0;
}

static int gka_call(linattn_ctx *ctx, const job *j, float *out)
{
    const int64_t B = j->B, T = j->T, H = j->H, K = j->K, V = j->V;
    float *const *in = j->in;
    linattn_gka_opts opts;
    linattn_gka_opts_init(&opts);
    opts.algo = (linattn_algo)j->algo;
    opts.chunk = j->chunk;
    float *kk = out + B * T * H * V, *kv = kk + B * H * K * K;
    if (!j->step) {
        linattn_gka_io io;
        memset(&io, 0, sizeof io);
        io.q = linattn_tensor_4d(in[0], B, T, H, K);
        io.k = linattn_tensor_4d(in[1], B, T, H, K);
        io.v = linattn_tensor_4d(in[2], B, T, H, V);
        io.g = linattn_tensor_3d(in[3], B, T, H);
        io.beta = linattn_tensor_3d(in[4], B, T, H);
        io.alpha = linattn_tensor_3d(in[5], B, T, H);
        io.h0_kk = linattn_tensor_4d(in[6], B, H, K, K);
        io.h0_kv = linattn_tensor_4d(in[7], B, H, K, V);
        io.o = linattn_tensor_4d(out, B, T, H, V);
        io.ht_kk = linattn_tensor_4d(kk, B, H, K, K);
        io.ht_kv = linattn_tensor_4d(kv, B, H, K, V);
        return linattn_gka_forward(ctx, &io, &opts);
    }
    memcpy(kk, in[6], sizeof(float) * B * H * K * K);
    memcpy(kv, in[7], sizeof(float) * B * H * K * V);
    for (int64_t t = 0; t < T; t++) {
        linattn_gka_step_io s;
        memset(&s, 0, sizeof s);
        s.q = linattn_tensor_3d(in[0] + t * B * H * K, B, H, K);
        s.k = linattn_tensor_3d(in[1] + t * B * H * K, B, H, K);
        s.v = linattn_tensor_3d(in[2] + t * B * H * V, B, H, V);
        s.g = linattn_tensor_2d(in[3] + t * B * H, B, H);
        s.beta = linattn_tensor_2d(in[4] + t * B * H, B, H);
        s.alpha = linattn_tensor_2d(in[5] + t * B * H, B, H);
        s.state_kk = linattn_tensor_4d(kk, B, H, K, K);
        s.state_kv = linattn_tensor_4d(kv, B, H, K, V);
        s.o = linattn_tensor_3d(out + t * B * H * V, B, H, V);
        const int rc = linattn_gka_step(ctx, &s, &opts);
        if (rc) return rc;
    }
    return 0;
}

static int kalman_call(linattn_ctx *ctx, const job *j, float *out)
{
    const int64_t B = j->B, T = j->T, M = j->V, S = j->K;
    float *const *in = j->in;
    linattn_kalman_opts opts;
    linattn_kalman_opts_init(&opts);
    opts.algo = (linattn_algo)j->algo;
    opts.chunk = j->chunk;
    float *y = out, *yv = y + B * T * M, *lam = yv + B * T * M, *eta = lam + B * M * S;
    if (!j->step) {
        linattn_kalman_io io;
        memset(&io, 0, sizeof io);
        io.v = linattn_tensor_3d(in[0], B, T, M);
        io.lam_v = linattn_tensor_3d(in[1], B, T, M);
        io.k = linattn_tensor_3d(in[2], B, T, S);
        io.q = linattn_tensor_3d(in[3], B, T, S);
        io.decay = linattn_tensor_2d(in[4], M, S);
        io.noise = linattn_tensor_2d(in[5], M, S);
        io.lam0 = linattn_tensor_3d(in[6], B, M, S);
        io.eta0 = linattn_tensor_3d(in[7], B, M, S);
        io.y = linattn_tensor_3d(y, B, T, M);
        io.yvar = linattn_tensor_3d(yv, B, T, M);
        io.lamT = linattn_tensor_3d(lam, B, M, S);
        io.etaT = linattn_tensor_3d(eta, B, M, S);
        return linattn_kalman_forward(ctx, &io, &opts);
    }
    memcpy(lam, in[6], sizeof(float) * B * M * S);
    memcpy(eta, in[7], sizeof(float) * B * M * S);
    for (int64_t t = 0; t < T; t++) {
        linattn_kalman_step_io s;
        memset(&s, 0, sizeof s);
        s.v = linattn_tensor_2d(in[0] + t * B * M, B, M);
        s.lam_v = linattn_tensor_2d(in[1] + t * B * M, B, M);
        s.k = linattn_tensor_2d(in[2] + t * B * S, B, S);
        s.q = linattn_tensor_2d(in[3] + t * B * S, B, S);
        s.decay = linattn_tensor_2d(in[4], M, S);
        s.noise = linattn_tensor_2d(in[5], M, S);
        s.state_lam = linattn_tensor_3d(lam, B, M, S);
        s.state_eta = linattn_tensor_3d(eta, B, M, S);
        s.y = linattn_tensor_2d(y + t * B * M, B, M);
        s.yvar = linattn_tensor_2d(yv + t * B * M, B, M);
        const int rc = linattn_kalman_step(ctx, &s, &opts);
        if (rc) return rc;
    }
    return 0;
}

static int ela_call(linattn_ctx *ctx, const job *j, float *out)
{
    const int64_t B = j->B, T = j->T, H = j->H, K = j->K, V = j->V, F = K;
    float *const *in = j->in;
    linattn_ela_opts opts;
    linattn_ela_opts_init(&opts);
    opts.algo = (linattn_algo)j->algo;
    opts.chunk = j->chunk;
    float *st = out + B * T * H * V, *zt = st + B * H * F * V, *ct = zt + B * H * F;
    if (!j->step) {
        linattn_ela_io io;
        memset(&io, 0, sizeof io);
        io.q = linattn_tensor_4d(in[0], B, T, H, K);
        io.k = linattn_tensor_4d(in[1], B, T, H, K);
        io.v = linattn_tensor_4d(in[2], B, T, H, V);
        io.s0 = linattn_tensor_4d(in[3], B, H, F, V);
        io.z0 = linattn_tensor_3d(in[4], B, H, F);
        io.c0 = linattn_tensor_3d(in[5], B, H, F);
        io.o = linattn_tensor_4d(out, B, T, H, V);
        io.st = linattn_tensor_4d(st, B, H, F, V);
        io.zt = linattn_tensor_3d(zt, B, H, F);
        io.ct = linattn_tensor_3d(ct, B, H, F);
        return linattn_ela_forward(ctx, &io, &opts);
    }
    memcpy(st, in[3], sizeof(float) * B * H * F * V);
    memcpy(zt, in[4], sizeof(float) * B * H * F);
    memcpy(ct, in[5], sizeof(float) * B * H * F);
    for (int64_t t = 0; t < T; t++) {
        linattn_ela_step_io s;
        memset(&s, 0, sizeof s);
        s.q = linattn_tensor_3d(in[0] + t * B * H * K, B, H, K);
        s.k = linattn_tensor_3d(in[1] + t * B * H * K, B, H, K);
        s.v = linattn_tensor_3d(in[2] + t * B * H * V, B, H, V);
        s.state_s = linattn_tensor_4d(st, B, H, F, V);
        s.state_z = linattn_tensor_3d(zt, B, H, F);
        s.state_c = linattn_tensor_3d(ct, B, H, F);
        s.o = linattn_tensor_3d(out + t * B * H * V, B, H, V);
        const int rc = linattn_ela_step(ctx, &s, &opts);
        if (rc) return rc;
    }
    return 0;
}

static int softmax_call(linattn_ctx *ctx, const job *j, float *out)
{
    const int64_t B = j->B, T = j->T, H = j->H, K = j->K, V = j->V;
    float *const *in = j->in;
    linattn_softmax_opts opts;
    linattn_softmax_opts_init(&opts);
    opts.block = j->chunk;
    if (!j->step) {
        linattn_softmax_io io;
        memset(&io, 0, sizeof io);
        io.q = linattn_tensor_4d(in[0], B, T, H, K);
        io.k = linattn_tensor_4d(in[1], B, T, H, K);
        io.v = linattn_tensor_4d(in[2], B, T, H, V);
        io.o = linattn_tensor_4d(out, B, T, H, V);
        return linattn_softmax_forward(ctx, &io, &opts);
    }
    /* a cache of this call's own: one call at a time per cache (linattn_softmax(3)) */
    linattn_kvcache *c = NULL;
    int rc = linattn_kvcache_create(ctx, &c, B, H, K, V, j->cap);
    if (rc) return rc;
    const linattn_tensor pk = linattn_tensor_4d(in[3], B, j->P, H, K);
    const linattn_tensor pv = linattn_tensor_4d(in[4], B, j->P, H, V);
    if (j->P) rc = linattn_kvcache_append(ctx, c, &pk, &pv);
    for (int64_t t = 0; t < T && !rc; t++) {
        linattn_softmax_step_io s;
        memset(&s, 0, sizeof s);
        s.q = linattn_tensor_3d(in[0] + t * B * H * K, B, H, K);
        s.k = linattn_tensor_3d(in[1] + t * B * H * K, B, H, K);
        s.v = linattn_tensor_3d(in[2] + t * B * H * V, B, H, V);
        s.o = linattn_tensor_3d(out + t * B * H * V, B, H, V);
        rc = linattn_softmax_step(ctx, c, &s, &opts);
    }
    if (!rc && linattn_kvcache_length(c) != j->P + T) rc = LINATTN_EINVAL;
    linattn_kvcache_destroy(c);
    return rc;
}

/* Run job j on ctx into out (poisoned first, so unwritten elements differ). */
static int job_run(linattn_ctx *ctx, const job *j, float *out)
{
    tu_poison(out, j->nout);
    switch (j->op) {
    case OP_GDN: case OP_KLA: case OP_GLA: return delta_call(ctx, j, out);
    case OP_GKA: return gka_call(ctx, j, out);
    case OP_KALMAN: return kalman_call(ctx, j, out);
    case OP_ELA: return ela_call(ctx, j, out);
    default: return softmax_call(ctx, j, out);
    }
}

/* Same bits, NaN for NaN (the poison is a NaN; memcmp, not ==). */
static int same_bits(const float *x, const float *y, size_t n)
{
    return memcmp(x, y, n * sizeof(float)) == 0;
}

/* ---- the job list -------------------------------------------------------- */

#define MAXJOBS 64

static int make_jobs(job *jobs)
{
    int n = 0;
    static const int ALGOS[] = {LINATTN_ALGO_RECURRENT, LINATTN_ALGO_CHUNK, LINATTN_ALGO_AUTO};
    /* the delta family: two shapes per operator and algorithm, and steps */
    for (int op = OP_GDN; op <= OP_GLA; op++) {
        for (int a = 0; a < 3; a++) {
            job_make(&jobs[n++], op, 0, ALGOS[a], 2, 100, 2, 32, 16);
            job_make(&jobs[n++], op, 0, ALGOS[a], 1, 65, 3, 16, 64);
        }
        jobs[n - 2].chunk = 16;
        job_make(&jobs[n++], op, 1, 0, 2, 5, 2, 32, 48);
    }
    for (int a = 0; a < 2; a++) {
        job_make(&jobs[n++], OP_GKA, 0, ALGOS[a], 1, 70, 2, 16, 16);
        job_make(&jobs[n++], OP_GKA, 0, ALGOS[a], 2, 33, 1, 32, 8);
        job_make(&jobs[n++], OP_KALMAN, 0, ALGOS[a], 1, 300, 1, 8, 20);
        jobs[n - 1].chunk = a ? 64 : 0;
        job_make(&jobs[n++], OP_KALMAN, 0, ALGOS[a], 2, 90, 1, 16, 40);
        job_make(&jobs[n++], OP_ELA, 0, ALGOS[a], 2, 70, 2, 16, 16);
        job_make(&jobs[n++], OP_ELA, 0, ALGOS[a], 1, 130, 1, 32, 24);
    }
    job_make(&jobs[n++], OP_GKA, 1, 0, 2, 4, 2, 16, 24);
    job_make(&jobs[n++], OP_KALMAN, 1, 0, 2, 6, 1, 16, 33);
    job_make(&jobs[n++], OP_ELA, 1, 0, 2, 5, 2, 16, 32);
    job_make(&jobs[n++], OP_SOFTMAX, 0, 0, 1, 130, 2, 32, 32);
    job_make(&jobs[n++], OP_SOFTMAX, 0, 0, 2, 70, 1, 16, 48);
    jobs[n - 1].chunk = 16;
    job_make(&jobs[n], OP_SOFTMAX, 1, 0, 2, 6, 2, 32, 16);
    job_prefill(&jobs[n++], 50, 0);   /* grows while appending and stepping */
    job_make(&jobs[n], OP_SOFTMAX, 1, 0, 1, 4, 3, 16, 16);
    job_prefill(&jobs[n++], 300, 304);
    ck_assert_int_le(n, MAXJOBS);
    return n;
}

/* ---- the threads --------------------------------------------------------- */

typedef struct shared {
    linattn_ctx *ctx[MAXCTX];
    const char *ctxname[MAXCTX];
    int nctx;
    job *jobs;
    int njobs;
    double deadline; /* CLOCK_MONOTONIC seconds */
} shared;

typedef struct worker {
    const shared *sh;
    int id;
    pthread_t tid;
    long iters, fails;
    char first[256]; /* the first failure */
} worker;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void *work(void *arg)
{
    worker *w = arg;
    const shared *sh = w->sh;
    const long pass = (long)sh->njobs * sh->nctx;
    size_t most = 0;
    for (int i = 0; i < sh->njobs; i++)
        if (sh->jobs[i].nout > most) most = sh->jobs[i].nout;
    float *out = malloc(sizeof(float) * most);
    if (!out) {
        snprintf(w->first, sizeof w->first, "thread %d: out of memory", w->id);
        w->fails = 1;
        return NULL;
    }
    /* each thread walks the (context, job) pairs from its own start with its
     * own stride, so different operators run side by side */
    const long stride = (w->id % 2) ? pass - 1 : 1, start = (long)w->id * 7 % pass;
    for (long it = 0; it < pass || now() < sh->deadline; it++) {
        const long pick = (start + it * stride) % pass;
        const int c = (int)(pick % sh->nctx);
        const job *j = &sh->jobs[pick / sh->nctx];
        const int rc = job_run(sh->ctx[c], j, out);
        w->iters++;
        if (rc || !same_bits(out, j->want[c], j->nout)) {
            if (!w->fails++)
                snprintf(w->first, sizeof w->first, "thread %d, %s on %s: %s", w->id, j->name,
                         sh->ctxname[c], rc ? linattn_last_error() : "result differs from "
                         "the single-threaded call");
        }
    }
    free(out);
    return NULL;
}

static int env_int(const char *name, int dflt, int lo, int hi)
{
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    char *end;
    const long n = strtol(s, &end, 10);
    ck_assert_msg(!*end && n >= lo && n <= hi, "%s=%s: expected %d..%d", name, s, lo, hi);
    return (int)n;
}

/* All threads on the contexts of sh; the expected results made first. */
static void stress(shared *sh)
{
    const int seconds = env_int("LINATTN_STRESS_SECONDS", 3, 0, 86400);
    const int nthreads = env_int("LINATTN_STRESS_THREADS", 8, 0, 256);
    job jobs[MAXJOBS];
    sh->jobs = jobs;
    sh->njobs = make_jobs(jobs);
    /* expected: each job alone on the test's thread; twice, as a check
     * that a call is deterministic at all (else the comparison means nothing) */
    for (int c = 0; c < sh->nctx; c++)
        for (int i = 0; i < sh->njobs; i++) {
            job *j = &jobs[i];
            float *again = tu_alloc(j->nout);
            j->want[c] = tu_alloc(j->nout);
            ck_assert_msg(job_run(sh->ctx[c], j, j->want[c]) == 0, "%s on %s: %s", j->name,
                          sh->ctxname[c], linattn_last_error());
            ck_assert_int_eq(job_run(sh->ctx[c], j, again), 0);
            ck_assert_msg(same_bits(again, j->want[c], j->nout),
                          "%s on %s: two single-threaded calls differ", j->name,
                          sh->ctxname[c]);
            size_t e = 0; /* (one assertion: Check logs each one) */
            while (e < j->nout && isfinite(j->want[c][e])) e++;
            ck_assert_msg(e == j->nout, "%s on %s: output %zu not finite", j->name,
                          sh->ctxname[c], e);
            free(again);
        }
    worker w[256];
    const int nw = nthreads ? nthreads : 1;
    memset(w, 0, sizeof w);
    sh->deadline = now() + seconds;
    for (int t = 0; t < nw; t++) {
        w[t].sh = sh;
        w[t].id = t;
        if (nthreads)
            ck_assert_int_eq(pthread_create(&w[t].tid, NULL, work, &w[t]), 0);
        else
            work(&w[t]);
    }
    long iters = 0, fails = 0;
    for (int t = 0; t < nw; t++) {
        if (nthreads) pthread_join(w[t].tid, NULL);
        iters += w[t].iters;
        fails += w[t].fails;
    }
    fprintf(stderr, "stress:");
    for (int c = 0; c < sh->nctx; c++) fprintf(stderr, " %s", sh->ctxname[c]);
    fprintf(stderr, ": %d threads (%s), %d jobs, %ld calls in %d s budget, %ld failed\n", nw,
            nthreads ? "concurrent" : "one after another", sh->njobs, iters, seconds, fails);
    for (int t = 0; t < nw; t++)
        if (w[t].fails) fprintf(stderr, "  %s (%ld failures)\n", w[t].first, w[t].fails);
    for (int t = 0; t < nw; t++)
        ck_assert_msg(!w[t].fails, "%s (%ld failures in this thread, %ld in all)", w[t].first,
                      w[t].fails, fails);
    for (int i = 0; i < sh->njobs; i++) job_free(&jobs[i]);
}

static linattn_ctx *cpu_ctx(int threads)
{
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.backend = LINATTN_BACKEND_CPU;
    cfg.threads = threads;
    ck_assert_msg(linattn_ctx_create(&ctx, &cfg) == 0, "cpu context: %s", linattn_last_error());
    return ctx;
}

/* One CPU context (the best ISA, 2 threads of its own) and one reference
 * context, shared by every thread. */
START_TEST(test_shared_cpu)
{
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.ctx[0] = cpu_ctx(2);
    sh.ctxname[0] = linattn_ctx_isa(sh.ctx[0]);
    sh.ctx[1] = tu_ctx("ref", 2);
    sh.ctxname[1] = "ref";
    sh.nctx = 2;
    stress(&sh);
    linattn_ctx_destroy(sh.ctx[0]);
    linattn_ctx_destroy(sh.ctx[1]);
}
END_TEST

/* The same with an OpenCL context shared as well, the threads going back
 * and forth between it and the CPU one (calls on one OpenCL context are
 * serialised by the library; calls on the two run side by side). */
START_TEST(test_shared_opencl)
{
    if (!tu_opencl()) {
        fprintf(stderr, "stress: no usable OpenCL device; the OpenCL pass is skipped\n");
        return;
    }
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.ctx[0] = cpu_ctx(1);
    sh.ctxname[0] = "cpu (1 thread)";
    sh.ctx[1] = tu_ctx("opencl", 0);
    sh.ctxname[1] = "opencl";
    sh.nctx = 2;
    stress(&sh);
    linattn_ctx_destroy(sh.ctx[0]);
    linattn_ctx_destroy(sh.ctx[1]);
}
END_TEST

/* Contexts created, used and destroyed by many threads at once: the one-time
 * probes (CPU, OpenCL runtime and devices) run once and every context makes
 * the same choice. */
typedef struct maker {
    pthread_t tid;
    int with_cl, fails;
    const job *j;
    const float *want;
    char isa[32];
} maker;

static void *make_ctx(void *arg)
{
    maker *m = arg;
    for (int round = 0; round < 4; round++) {
        linattn_config cfg;
        linattn_ctx *ctx = NULL;
        linattn_config_init(&cfg);
        cfg.backend = (m->with_cl && round % 2) ? LINATTN_BACKEND_OPENCL : LINATTN_BACKEND_CPU;
        cfg.threads = 2;
        if (linattn_ctx_create(&ctx, &cfg)) {
            m->fails++;
            continue;
        }
        if (cfg.backend == LINATTN_BACKEND_CPU) {
            snprintf(m->isa, sizeof m->isa, "%s", linattn_ctx_isa(ctx));
            float *out = malloc(sizeof(float) * m->j->nout);
            if (!out || job_run(ctx, m->j, out) || !same_bits(out, m->want, m->j->nout))
                m->fails++;
            free(out);
        }
        linattn_ctx_destroy(ctx);
    }
    return NULL;
}

START_TEST(test_create_concurrently)
{
    const int nthreads = env_int("LINATTN_STRESS_THREADS", 8, 0, 256);
    if (!nthreads) return;
    maker m[256];
    job j;
    memset(m, 0, sizeof m);
    job_make(&j, OP_GDN, 0, LINATTN_ALGO_CHUNK, 1, 70, 2, 16, 16);
    linattn_ctx *ctx = cpu_ctx(2);
    j.want[0] = tu_alloc(j.nout);
    ck_assert_int_eq(job_run(ctx, &j, j.want[0]), 0);
    const char *isa = linattn_ctx_isa(ctx);
    const int cl = tu_opencl();
    for (int t = 0; t < nthreads; t++) {
        m[t].with_cl = cl;
        m[t].j = &j;
        m[t].want = j.want[0];
        ck_assert_int_eq(pthread_create(&m[t].tid, NULL, make_ctx, &m[t]), 0);
    }
    for (int t = 0; t < nthreads; t++) pthread_join(m[t].tid, NULL);
    for (int t = 0; t < nthreads; t++) {
        ck_assert_msg(!m[t].fails, "thread %d: %d failures", t, m[t].fails);
        ck_assert_str_eq(m[t].isa, isa);
    }
    linattn_ctx_destroy(ctx);
    job_free(&j);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 1800); /* the budget bounds the loop; this only catches a hang */
    tcase_add_test(tc, test_shared_cpu);
    tcase_add_test(tc, test_shared_opencl);
    tcase_add_test(tc, test_create_concurrently);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tu_report();
    return tu_main(suite());
}
