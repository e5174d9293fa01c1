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
#include "testop.h"
#include "testutil.h"

#define MAXCTX 3

/* One call (forward over T tokens, or T steps) of an entry point of the
 * operator table, and its expected outputs.  Every tensor is given.  Steps:
 * token t of each per-token tensor at t times its size (the arrays read as
 * [T,B,...]); the in-place state starts from p's and ends in out.  A step
 * with a KV cache: P tokens are appended to a fresh cache (capacity cap)
 * before the T steps. */
typedef struct job {
    char name[128];
    tu_op p;
    int step;
    int64_t T, P, cap;
    float *pk, *pv; /* the cache's prefill [B,P,H,K] and [B,P,H,V] */
    size_t off[LINATTN_OP_MAX_TENSORS]; /* where each written tensor goes in out */
    size_t nout;
    float *want[MAXCTX];
} job;

/* Sizes: kalman's M channels and S states are V and K. */
static void job_make(job *j, const linattn_op_info *op, int algo, int64_t B, int64_t T,
                     int64_t H, int64_t K, int64_t V)
{
    memset(j, 0, sizeof *j);
    j->step = !strcmp(op->entry, "step");
    j->T = T;
    int64_t dims[LINATTN_OP_LETTERS];
    tu_op_sizes(dims, B, T, H, K, V, V, K);
    tu_op_make(&j->p, op, dims, TU_OP_ALL, j->step ? T : 1, 0);
    const int has_algo = tu_op_set(&j->p, "algo", algo);
    snprintf(j->name, sizeof j->name, "%s%s B=%lld T=%lld H=%lld K=%lld V=%lld",
             tu_op_name(op),
             !has_algo ? "" : algo == LINATTN_ALGO_CHUNK ? " chunk" : algo ? " recurrent" : " auto",
             (long long)B, (long long)T, (long long)H, (long long)K, (long long)V);
    for (int i = 0; i < op->ntensors; i++) {
        if (op->tensors[i].role == LINATTN_ROLE_IN) continue;
        j->off[i] = j->nout;
        j->nout += j->p.count[i] * (size_t)(tu_op_per_token(&j->p, i) ? T : 1);
    }
}

/* The option "chunk" (softmax's block) where there is one. */
static void job_chunk(job *j, int chunk)
{
    if (tu_op_set(&j->p, "chunk", chunk))
        snprintf(j->name + strlen(j->name), sizeof j->name - strlen(j->name), " chunk=%d",
                 chunk);
}

/* A step with a KV cache: a prefill of P tokens into a cache created with
 * capacity cap (0: it grows while stepping). */
static void job_prefill(job *j, int64_t P, int64_t cap)
{
    const int64_t *d = j->p.dims, B = d['B' - 'A'], H = d['J' - 'A']; /* key/value heads */
    j->P = P;
    j->cap = cap;
    j->pk = tu_alloc(B * P * H * d['K' - 'A']);
    j->pv = tu_alloc(B * P * H * d['V' - 'A']);
    tu_fill(j->pk, B * P * H * d['K' - 'A'], -1, 1);
    tu_fill(j->pv, B * P * H * d['V' - 'A'], -1, 1);
    snprintf(j->name + strlen(j->name), sizeof j->name - strlen(j->name),
             " prefill %lld cap %lld", (long long)P, (long long)cap);
}

static void job_free(job *j)
{
    tu_op_free(&j->p);
    free(j->pk);
    free(j->pv);
    for (int i = 0; i < MAXCTX; i++) free(j->want[i]);
}

/* Run job j on ctx into out (poisoned first, so unwritten elements differ). */
static int job_run(linattn_ctx *ctx, const job *j, float *out)
{
    const linattn_op_info *op = j->p.op;
    linattn_op_args a = j->p.a;
    tu_poison(out, j->nout);
    for (int i = 0; i < op->ntensors; i++) {
        /* inputs, and outputs left absent (the serving rows hW, hC) */
        if (op->tensors[i].role == LINATTN_ROLE_IN || !j->p.data[i]) continue;
        a.t[i].data = out + j->off[i];
        if (op->tensors[i].role == LINATTN_ROLE_INOUT)
            memcpy(out + j->off[i], j->p.data[i], sizeof(float) * j->p.count[i]);
    }
    if (!j->step) return linattn_op_call(ctx, op, &a);
    /* a cache of this call's own: one call at a time per cache (linattn_softmax(3)) */
    int rc = 0;
    if (op->cache) {
        const int64_t *d = j->p.dims, B = d['B' - 'A'], H = d['J' - 'A'];
        rc = linattn_kvcache_create(ctx, B, H, d['K' - 'A'], d['V' - 'A'], j->cap, &a.cache);
        if (rc) return rc;
        const linattn_tensor pk = linattn_tensor_4d(j->pk, B, j->P, H, d['K' - 'A']);
        const linattn_tensor pv = linattn_tensor_4d(j->pv, B, j->P, H, d['V' - 'A']);
        if (j->P) rc = linattn_kvcache_append(ctx, a.cache, &pk, &pv);
    }
    for (int64_t t = 0; t < j->T && !rc; t++) {
        linattn_op_args s = a;
        for (int i = 0; i < op->ntensors; i++)
            if (s.t[i].data && tu_op_per_token(&j->p, i)) s.t[i].data += t * j->p.count[i];
        rc = linattn_op_call(ctx, op, &s);
    }
    if (op->cache) {
        if (!rc && linattn_kvcache_length(a.cache) != j->P + j->T) rc = LINATTN_EINVAL;
        linattn_kvcache_destroy(a.cache);
    }
    return rc;
}

/* Same bits, NaN for NaN (the poison is a NaN; memcmp, not ==). */
static int same_bits(const float *x, const float *y, size_t n)
{
    return memcmp(x, y, n * sizeof(float)) == 0;
}

/* ---- the job list -------------------------------------------------------- */

#define MAXJOBS 96

/* Every entry point of the operator table: a forward in each of its
 * algorithms on two shapes (the second, where an algorithm is chosen, also
 * with a small chunk), a step over a few tokens; a step with a KV cache
 * from a growing cache and from one with room. */
static int make_jobs(job *jobs)
{
    int n = 0;
    static const int ALGOS[] = {LINATTN_ALGO_RECURRENT, LINATTN_ALGO_CHUNK, LINATTN_ALGO_AUTO};
    for (int e = 0; e < linattn_op_count(); e++) {
        const linattn_op_info *op = linattn_op_at(e);
        ck_assert_int_le(n + 6, MAXJOBS);
        if (!strcmp(op->entry, "step")) {
            job_make(&jobs[n], op, 0, 2, 5, 2, 16, 32);
            if (op->cache) {
                job_prefill(&jobs[n++], 50, 0); /* grows while appending and stepping */
                job_make(&jobs[n], op, 0, 1, 4, 3, 16, 16);
                job_prefill(&jobs[n], 300, 304);
            }
            n++;
            continue;
        }
        const int nalgo = linattn_op_option_index(op, "algo") >= 0 ? 3 : 1;
        for (int a = 0; a < nalgo; a++) {
            job_make(&jobs[n++], op, ALGOS[a], 2, 100, 2, 32, 16);
            job_make(&jobs[n++], op, ALGOS[a], 1, 65, 3, 16, 48);
            if (nalgo == 1 || ALGOS[a] == LINATTN_ALGO_CHUNK) job_chunk(&jobs[n - 1], 16);
        }
    }
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
    ck_assert_msg(linattn_ctx_create(&cfg, &ctx) == 0, "cpu context: %s", linattn_last_error());
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
        if (linattn_ctx_create(&cfg, &ctx)) {
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
    job_make(&j, linattn_op_at(0), LINATTN_ALGO_CHUNK, 1, 70, 2, 16, 16);
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
