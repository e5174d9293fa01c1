/* linattn tests - failure paths, by fault injection (lib/fault.h):
 *   - malloc:N: every library allocation of a call is made to fail in turn
 *     (only the N-th, then the N-th and all later ones); the call must return
 *     LINATTN_ENOMEM, leave its outputs (and in-place states) as they were,
 *     and leak nothing (the suite runs under ASan with detect_leaks=1 in CI);
 *   - cl_build and cl_oom on OpenCL contexts: the documented codes, and the
 *     CPU fallback of a device chosen by the auto backend (cl_auto_any lets
 *     auto take PoCL);
 *   - the missing runtime is in check_opencl.
 * The switch is set with linattn_test_fault_set, so the suite runs the same
 * with CK_FORK=no. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testop.h"
#include "testutil.h"
#include "fault.h"

#define B_ 2
#define T_ 70
#define H_ 2
#define K_ 16
#define V_ 8
#define M_ 4  /* kalman channels */
#define S_ 8  /* kalman states */
#define SENTINEL (-7777.25f)

/* ---- fixtures: arrays that a failed call must leave alone ---------------- */

typedef struct watch {
    float *p, *orig;
    size_t n;
} watch;

typedef struct fx fx;
struct fx {
    const char *name;
    linattn_ctx *ctx;
    int (*run)(fx *f);
    watch w[24];
    int nw;
    float *in[16]; /* inputs, freed with the fixture */
    size_t in_n[16];
    int nin;
    int64_t cu[3];
    int use_cu;
    const linattn_op_info *op; /* an entry point of the operator table, or NULL */
    linattn_algo algo;
    linattn_op_args a;
    linattn_kvcache *cache;
    int64_t cache_len, cache_cap; /* what a failed call must leave */
    int kv;                       /* a cache fixture: */
    int step;                     /* a failed step may leave the cache grown */
    int64_t prep_len, prep_cap;   /* the cache made before each run */
    float *kv_k, *kv_v;           /* kvcache append inputs */
};

static float *input(fx *f, size_t n, double lo, double hi)
{
    float *p = tu_alloc(n);
    tu_fill(p, n, lo, hi);
    ck_assert_int_lt(f->nin, 16);
    f->in_n[f->nin] = n;
    f->in[f->nin++] = p;
    return p;
}

/* An array the call writes (or updates in place), owned by the fixture
 * from now: its content is kept; an output starts as the sentinel. */
static void watched(fx *f, float *p, size_t n, int output)
{
    if (output)
        for (size_t i = 0; i < n; i++) p[i] = SENTINEL;
    ck_assert_int_lt(f->nw, 24);
    watch *w = &f->w[f->nw++];
    w->p = p;
    w->n = n;
    w->orig = tu_alloc(n);
    memcpy(w->orig, p, n * sizeof *p);
}

static void fx_restore(fx *f)
{
    for (int i = 0; i < f->nw; i++) memcpy(f->w[i].p, f->w[i].orig, f->w[i].n * sizeof(float));
}

static int fx_untouched(const fx *f)
{
    for (int i = 0; i < f->nw; i++)
        if (memcmp(f->w[i].p, f->w[i].orig, f->w[i].n * sizeof(float))) return 0;
    return 1;
}

static void fx_free(fx *f)
{
    for (int i = 0; i < f->nw; i++) {
        free(f->w[i].p);
        free(f->w[i].orig);
    }
    for (int i = 0; i < f->nin; i++) free(f->in[i]);
    linattn_kvcache_destroy(f->cache);
    f->cache = NULL;
    f->nw = f->nin = 0;
}

/* ---- the calls --------------------------------------------------------------- */

static int run_op(fx *f)
{
    linattn_op_args a = f->a;
    const int ai = linattn_op_option_index(f->op, "algo");
    if (ai >= 0) a.opt[ai] = f->algo;
    a.cache = f->cache;
    return linattn_op_call(f->ctx, f->op, &a);
}

static int run_append(fx *f)
{
    linattn_tensor k = linattn_tensor_4d(f->kv_k, 1, T_, H_, K_);
    linattn_tensor v = linattn_tensor_4d(f->kv_v, 1, T_, H_, V_);
    return linattn_kvcache_append(f->ctx, f->cache, &k, &v);
}

/* ---- fixtures per operator ----------------------------------------------------- */

/* An entry point of the operator table with every tensor given (tu_op):
 * inputs, outputs watched (a sentinel), in-place states watched.  Forward
 * variant bit 0: two packed sequences of one row. */
static void make_op(fx *f, const linattn_op_info *op, int cu)
{
    int64_t dims[LINATTN_OP_LETTERS];
    tu_op p;
    tu_op_sizes(dims, op->cache ? 1 : B_, T_, H_, K_, V_, M_, S_);
    tu_op_make(&p, op, dims, TU_OP_ALL, 1, cu ? 29 : 0);
    f->op = op;
    f->run = run_op;
    f->a = p.a;
    if (cu) { /* the arrays stay, the offsets move into the fixture */
        memcpy(f->cu, p.cu, sizeof f->cu);
        f->a.cu_seqlens = f->cu;
    }
    for (int i = 0; i < op->ntensors; i++) {
        if (!p.data[i]) continue;
        const linattn_op_role role = op->tensors[i].role;
        if (role == LINATTN_ROLE_IN) {
            ck_assert_int_lt(f->nin, 16);
            f->in_n[f->nin] = p.count[i];
            f->in[f->nin++] = p.data[i];
            continue;
        }
        watched(f, p.data[i], p.count[i], role == LINATTN_ROLE_OUT);
    }
}

/* A cache of B = 1 holding len tokens with room for cap. */
static linattn_kvcache *cache_of(linattn_ctx *ctx, int64_t len, int64_t cap)
{
    linattn_kvcache *c = NULL;
    ck_assert_int_eq(linattn_kvcache_create(ctx, 1, H_, K_, V_, cap, &c), LINATTN_OK);
    if (len) {
        float *k = tu_alloc(len * H_ * K_), *v = tu_alloc(len * H_ * V_);
        tu_fill(k, len * H_ * K_, -1, 1);
        tu_fill(v, len * H_ * V_, -1, 1);
        linattn_tensor tk = linattn_tensor_4d(k, 1, len, H_, K_);
        linattn_tensor tv = linattn_tensor_4d(v, 1, len, H_, V_);
        ck_assert_int_eq(linattn_kvcache_append(ctx, c, &tk, &tv), LINATTN_OK);
        free(k);
        free(v);
    }
    return c;
}

/* A fresh cache before each run (made with no fault). */
static void fx_prepare(fx *f)
{
    if (!f->kv) return;
    linattn_kvcache_destroy(f->cache);
    f->cache = cache_of(f->ctx, f->prep_len, f->prep_cap);
    f->cache_len = linattn_kvcache_length(f->cache);
    f->cache_cap = linattn_kvcache_capacity(f->cache);
}

/* An entry point with a KV cache: a cache of len tokens with room for cap
 * made before each run. */
static void make_cached(fx *f, const linattn_op_info *op, int64_t len, int64_t cap)
{
    f->kv = 1;
    f->step = !strcmp(op->entry, "step");
    f->prep_len = len;
    f->prep_cap = cap;
    fx_prepare(f);
    make_op(f, op, 0);
}

static void make_append(fx *f, int64_t len, int64_t cap)
{
    f->run = run_append;
    f->kv = 1;
    f->prep_len = len;
    f->prep_cap = cap;
    fx_prepare(f);
    f->kv_k = input(f, T_ * H_ * K_, -1, 1);
    f->kv_v = input(f, T_ * H_ * V_, -1, 1);
}

/* ---- the sweep ------------------------------------------------------------------ */

static void set_fault(const char *spec)
{
    ck_assert_msg(linattn_test_fault_set(spec) == LINATTN_OK, "fault %s: %s",
                  spec ? spec : "(none)", linattn_last_error());
}

/* Run f with allocation N failing (alone, or with every later one when
 * plus), N = 1, 2, ... until a run meets no injected failure.  Every run
 * that fails must say LINATTN_ENOMEM and leave the watched arrays and the
 * cache as they were.  Returns the number of failing runs. */
static int sweep1(fx *f, int plus)
{
    int failed = 0;
    for (long long n = 1;; n++) {
        char spec[48];
        snprintf(spec, sizeof spec, "malloc:%lld%s", n, plus ? "+" : "");
        fx_restore(f);
        fx_prepare(f);
        linattn_test_ctx_trim(f->ctx); /* the scratch is allocated again */
        set_fault(spec);
        const int rc = f->run(f);
        const long long hits = linattn_test_fault_hits();
        set_fault(NULL);
        if (rc == LINATTN_OK && hits == 0) break; /* past the last allocation */
        if (rc == LINATTN_OK) continue;           /* the failure was tolerated */
        failed++;
        ck_assert_msg(hits > 0, "%s (%s): failed without an injected failure: %s", f->name,
                      spec, linattn_last_error());
        ck_assert_msg(rc == LINATTN_ENOMEM, "%s (%s): %d, not LINATTN_ENOMEM (%s)", f->name,
                      spec, rc, linattn_last_error());
        ck_assert_msg(linattn_last_error()[0], "%s (%s): no message", f->name, spec);
        ck_assert_msg(fx_untouched(f), "%s (%s): an output was written by a failed call",
                      f->name, spec);
        if (f->cache) {
            ck_assert_int_eq(linattn_kvcache_length(f->cache), f->cache_len);
            if (!f->step) ck_assert_int_eq(linattn_kvcache_capacity(f->cache), f->cache_cap);
        }
        ck_assert_msg(n < 100000, "%s: no end to the allocations", f->name);
    }
    return failed;
}

/* The fixture once without faults (LINATTN_EUNSUPPORTED: skipped, -1), then
 * swept both ways.  Returns the number of failing runs of the first sweep. */
static int sweep(fx *f)
{
    set_fault(NULL);
    fx_prepare(f);
    const int rc = f->run(f); /* a first run, to know that it works */
    if (rc == LINATTN_EUNSUPPORTED) return -1;
    ck_assert_msg(rc == LINATTN_OK, "%s on %s: %s", f->name, linattn_ctx_device(f->ctx),
                  linattn_last_error());
    const int n = sweep1(f, 0);
    sweep1(f, 1);
    return n;
}

/* ---- malloc:N over every operator ---------------------------------------------- */

/* Contexts: 0 reference, 1 CPU (best ISA), 2 OpenCL (when usable). */
#define NCTX 3
static linattn_ctx *ctx_of(int i)
{
    if (i == 0) return tu_ctx("ref", 2);
    if (i == 1) {
        linattn_config cfg;
        linattn_ctx *c = NULL;
        linattn_config_init(&cfg);
        cfg.backend = LINATTN_BACKEND_CPU;
        cfg.threads = 2;
        ck_assert_int_eq(linattn_ctx_create(&cfg, &c), LINATTN_OK);
        return c;
    }
    return tu_opencl() ? tu_ctx("opencl", 2) : NULL;
}

/* The entries swept: the operator table's, then kvcache append. */
#define NOPS (linattn_op_count() + 1)

static const linattn_op_info *op_info(int i) { return i < linattn_op_count() ? linattn_op_at(i) : NULL; }

static const char *op_label(int i) { return op_info(i) ? tu_op_name(op_info(i)) : "kvcache append"; }

/* forwards: variant bit 0 packed sequences; a cache: 4 (see op_make); append 2 */
static int op_variants(int i)
{
    const linattn_op_info *op = op_info(i);
    return !op || op->packed ? 2 : op->cache ? 4 : 1;
}

/* also run recurrent and chunk, not only auto */
static int op_algos(int i)
{
    return op_info(i) && linattn_op_option_index(op_info(i), "algo") >= 0;
}

/* the CPU forwards (and the cache's calls) allocate: a sweep that finds
 * nothing fails */
static int op_must_alloc(int i)
{
    const linattn_op_info *op = op_info(i);
    return !op || op->cache || !strcmp(op->entry, "forward");
}

/* Entries whose device runs may fall back to the CPU (host tensors, no cache). */
static int falls_back(int i)
{
    return op_info(i) && !op_info(i)->cache;
}

/* A cache: a step into an empty cache, into a full one (growth), with room. */
static void op_make(fx *f, int i, int v)
{
    static const int64_t len[2] = {0, 5}, cap[2] = {0, 5};
    const linattn_op_info *op = op_info(i);
    if (!op) make_append(f, len[v & 1], cap[v & 1]);
    else if (!op->cache) make_op(f, op, v & 1);
    else if (v & 1) make_cached(f, op, 3, 8);
    else make_cached(f, op, len[(v >> 1) & 1], cap[(v >> 1) & 1]);
}

START_TEST(test_malloc_sweep)
{
    const int op = _i;
    for (int c = 0; c < NCTX; c++) {
        linattn_ctx *ctx = ctx_of(c);
        if (!ctx) continue;
        static const linattn_algo algos[3] = {LINATTN_ALGO_AUTO, LINATTN_ALGO_RECURRENT,
                                              LINATTN_ALGO_CHUNK};
        for (int a = 0; a < (op_algos(op) ? 3 : 1); a++)
            for (int v = 0; v < op_variants(op); v++) {
                fx f;
                char name[96];
                memset(&f, 0, sizeof f);
                snprintf(name, sizeof name, "%s (variant %d, algo %d, %s)", op_label(op), v,
                         (int)algos[a], c == 0 ? "ref" : c == 1 ? "cpu" : "opencl");
                f.name = name;
                f.ctx = ctx;
                f.algo = algos[a];
                op_make(&f, op, v);
                const int n = sweep(&f);
                /* the reference and CPU forwards allocate their work memory, the
                 * OpenCL ones their tables (a cache lives on the device) */
                if (op_must_alloc(op) && (c < 2 || falls_back(op)) && n == 0)
                    ck_abort_msg("%s: no allocation failed: the switch does not work", name);
                fx_free(&f);
            }
        linattn_ctx_destroy(ctx);
    }
}
END_TEST

/* A decode step allocates nothing once a first step has run: with every
 * allocation made to fail, further steps (on the reference and the CPU
 * backends, 2 threads) still succeed and meet no injected failure. */
START_TEST(test_step_steady)
{
    const linattn_op_info *op = op_info(_i);
    if (!op || strcmp(op->entry, "step")) return;
    for (int c = 0; c < 2; c++) {
        linattn_ctx *ctx = ctx_of(c);
        fx f;
        memset(&f, 0, sizeof f);
        f.name = tu_op_name(op);
        f.ctx = ctx;
        f.algo = LINATTN_ALGO_AUTO;
        if (op->cache) make_cached(&f, op, 3, 64); /* room: no growth */
        else make_op(&f, op, 0);
        set_fault(NULL);
        ck_assert_msg(f.run(&f) == LINATTN_OK, "%s: %s", f.name, linattn_last_error());
        set_fault("malloc:1+");
        for (int i = 0; i < 3; i++) {
            const int rc = f.run(&f);
            const long long allocs = linattn_test_fault_allocs();
            set_fault("malloc:1+");
            ck_assert_msg(rc == LINATTN_OK && allocs == 0,
                          "%s (%s), step %d after the first: rc %d, %lld allocations (%s)",
                          f.name, c ? "cpu" : "ref", i + 2, rc, allocs, linattn_last_error());
        }
        set_fault(NULL);
        fx_free(&f);
        linattn_ctx_destroy(ctx);
    }
}
END_TEST

/* Contexts, buffers, caches. */
START_TEST(test_malloc_objects)
{
    for (int c = 0; c < NCTX; c++) {
        static const char *const isa[NCTX] = {"ref", "cpu", "opencl"};
        if (c == 2 && !tu_opencl()) continue;
        linattn_config cfg;
        linattn_config_init(&cfg);
        cfg.backend = c == 0 ? LINATTN_BACKEND_REF
                      : c == 1 ? LINATTN_BACKEND_CPU
                               : LINATTN_BACKEND_OPENCL;
        int failed = 0;
        for (long long n = 1;; n++) {
            char spec[48];
            snprintf(spec, sizeof spec, "malloc:%lld", n);
            linattn_ctx *ctx = (linattn_ctx *)&failed; /* must be reset */
            set_fault(spec);
            int rc = linattn_ctx_create(&cfg, &ctx);
            const long long hits = linattn_test_fault_hits();
            set_fault(NULL);
            if (!rc) {
                linattn_ctx_destroy(ctx);
                if (!hits) break;
                continue;
            }
            failed++;
            ck_assert_msg(rc == LINATTN_ENOMEM, "%s context (%s): %d %s", isa[c], spec, rc,
                          linattn_last_error());
            ck_assert_ptr_null(ctx);
        }
        ck_assert_int_gt(failed, 0);

        linattn_ctx *ctx = ctx_of(c);
        failed = 0;
        for (long long n = 1;; n++) {
            char spec[48];
            snprintf(spec, sizeof spec, "malloc:%lld", n);
            linattn_buffer *buf = (linattn_buffer *)&failed;
            set_fault(spec);
            int rc = linattn_buffer_create(ctx, 1000, &buf);
            const long long hits = linattn_test_fault_hits();
            set_fault(NULL);
            if (!rc) {
                linattn_buffer_destroy(buf);
                if (!hits) break;
                continue;
            }
            failed++;
            ck_assert_msg(rc == LINATTN_ENOMEM, "%s buffer (%s): %d %s", isa[c], spec, rc,
                          linattn_last_error());
            ck_assert_ptr_null(buf);
        }
        ck_assert_int_gt(failed, 0);

        for (int cap = 0; cap < 2; cap++) {
            failed = 0;
            for (long long n = 1;; n++) {
                char spec[48];
                snprintf(spec, sizeof spec, "malloc:%lld", n);
                linattn_kvcache *kc = (linattn_kvcache *)&failed;
                set_fault(spec);
                int rc = linattn_kvcache_create(ctx, 2, H_, K_, V_, cap ? 100 : 0, &kc);
                const long long hits = linattn_test_fault_hits();
                set_fault(NULL);
                if (!rc) {
                    linattn_kvcache_destroy(kc);
                    if (!hits) break;
                    continue;
                }
                failed++;
                ck_assert_msg(rc == LINATTN_ENOMEM, "%s kvcache (%s): %d %s", isa[c], spec, rc,
                              linattn_last_error());
                ck_assert_ptr_null(kc);
            }
            ck_assert_int_gt(failed, 0);
        }
        linattn_ctx_destroy(ctx);
    }
}
END_TEST

/* .npy: save, load, parse. */
START_TEST(test_malloc_npy)
{
    char path[] = "/tmp/linattn-faults-XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    const int64_t shape[3] = {3, 5, 7};
    float *x = tu_alloc(105);
    tu_fill(x, 105, -1, 1);
    int failed = 0;
    for (long long n = 1;; n++) { /* save */
        char spec[48];
        snprintf(spec, sizeof spec, "malloc:%lld+", n);
        set_fault(spec);
        int rc = linattn_npy_save(path, x, 3, shape);
        const long long hits = linattn_test_fault_hits();
        set_fault(NULL);
        if (!rc && !hits) break;
        if (rc) ck_assert_msg(rc == LINATTN_ENOMEM, "save (%s): %d %s", spec, rc,
                              linattn_last_error());
        failed += rc != 0;
    }
    /* the image, for parse */
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    unsigned char img[4096];
    const size_t len = fread(img, 1, sizeof img, fp);
    fclose(fp);
    ck_assert_uint_gt(len, 105 * 4);
    for (int which = 0; which < 2; which++) {
        for (int plus = 0; plus < 2; plus++) {
            failed = 0;
            for (long long n = 1;; n++) {
                char spec[48];
                snprintf(spec, sizeof spec, "malloc:%lld%s", n, plus ? "+" : "");
                linattn_array a;
                memset(&a, 0x5a, sizeof a);
                set_fault(spec);
                int rc = which ? linattn_npy_parse(img, len, &a) : linattn_npy_load(path, &a);
                const long long hits = linattn_test_fault_hits();
                set_fault(NULL);
                if (!rc) {
                    ck_assert_uint_eq(a.count, 105);
                    ck_assert(!memcmp(a.data, x, 105 * sizeof *x));
                    linattn_array_free(&a);
                    if (!hits) break;
                    continue;
                }
                failed++;
                ck_assert_msg(rc == LINATTN_ENOMEM, "%s (%s): %d %s", which ? "parse" : "load",
                              spec, rc, linattn_last_error());
                ck_assert_ptr_null(a.data); /* left zeroed */
                ck_assert_int_eq(a.ndim, 0);
                ck_assert_uint_eq(a.count, 0);
            }
            ck_assert_int_gt(failed, 0);
        }
    }
    remove(path);
    free(x);
}
END_TEST

START_TEST(test_switch_syntax)
{
    static const char *const good[] = {"", "malloc:1", "malloc:12+", "cl_build,cl_oom",
                                       "cl_auto_any,malloc:3,", "cl_oom"};
    static const char *const bad[] = {"malloc", "malloc:", "malloc:0", "malloc:-1", "malloc:2x",
                                      "malloc:+", "cl_bild", "oom"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(linattn_test_fault_set(good[i]) == LINATTN_OK, "%s refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(linattn_test_fault_set(bad[i]) == LINATTN_EINVAL, "%s taken", bad[i]);
    /* a bad setting changes nothing: malloc:1 is still on */
    ck_assert_int_eq(linattn_test_fault_set("malloc:1"), LINATTN_OK);
    ck_assert_int_eq(linattn_test_fault_set("bogus"), LINATTN_EINVAL);
    linattn_ctx *ctx = (linattn_ctx *)&ctx;
    ck_assert_int_eq(linattn_ctx_create(NULL, &ctx), LINATTN_ENOMEM);
    ck_assert_int_eq(linattn_test_fault_hits(), 1);
    set_fault(NULL);
    ck_assert_int_eq(linattn_ctx_create(NULL, &ctx), LINATTN_OK);
    ck_assert_int_eq(linattn_test_fault_hits(), 0);
    ck_assert_int_gt(linattn_test_fault_allocs(), 0);
    linattn_ctx_destroy(ctx);
}
END_TEST

/* ---- OpenCL faults ------------------------------------------------------------- */


/* Run every operator (variant 0, host tensors) on ctx with the fault on:
 * want is the code expected, or LINATTN_OK for the CPU fallback (then the
 * outputs must match those of a CPU context, and the ops that cannot fall
 * back must fail with code). */
static void every_op(linattn_ctx *ctx, const char *fault, int want, int code, const char *what)
{
    linattn_ctx *cpu = ctx_of(1);
    for (int i = 0; i < NOPS; i++) {
        const int expect = want == LINATTN_OK && !falls_back(i) ? code : want;
        fx f, g;
        char name[96];
        snprintf(name, sizeof name, "%s with %s (%s)", op_label(i), fault, what);
        memset(&f, 0, sizeof f);
        memset(&g, 0, sizeof g);
        f.name = g.name = name;
        f.ctx = ctx;
        g.ctx = cpu;
        op_make(&f, i, 0);
        if (expect == LINATTN_OK) { /* the same problem on the CPU, for the results */
            op_make(&g, i, 0);
            ck_assert(g.nin == f.nin && g.nw == f.nw);
            for (int k = 0; k < f.nin; k++) memcpy(g.in[k], f.in[k], f.in_n[k] * sizeof(float));
            for (int k = 0; k < f.nw; k++) {
                memcpy(g.w[k].orig, f.w[k].orig, f.w[k].n * sizeof(float));
                memcpy(g.w[k].p, f.w[k].orig, f.w[k].n * sizeof(float));
            }
            ck_assert_msg(g.run(&g) == LINATTN_OK, "%s on the CPU: %s", name, linattn_last_error());
        }
        set_fault(fault);
        const int rc = f.run(&f);
        set_fault(NULL);
        if (expect == LINATTN_OK) {
            ck_assert_msg(rc == LINATTN_OK, "%s: %d %s", name, rc, linattn_last_error());
            for (int k = 0; k < f.nw; k++) {
                const double e = tu_relerr(f.w[k].p, g.w[k].p, f.w[k].n);
                ck_assert_msg(e < 1e-5, "%s: output %d differs from the CPU's by %g", name, k, e);
            }
        } else {
            ck_assert_msg(rc == expect, "%s: %d, not %d (%s)", name, rc, expect,
                          linattn_last_error());
            ck_assert_msg(fx_untouched(&f), "%s: an output was written", name);
            if (f.cache) {
                ck_assert_int_eq(linattn_kvcache_length(f.cache), f.cache_len);
                if (!f.step && expect == LINATTN_ENOMEM) /* grown before a device failure */
                    ck_assert_int_eq(linattn_kvcache_capacity(f.cache), f.cache_cap);
            }
        }
        fx_free(&f);
        fx_free(&g);
    }
    linattn_ctx_destroy(cpu);
}

/* The auto backend with no device set: unset LINATTN_DEVICE and LINATTN_ISA
 * for the call (and put them back: with CK_FORK=no other tests follow). */
static linattn_ctx *auto_ctx(void)
{
    char *dev = getenv("LINATTN_DEVICE"), *isa = getenv("LINATTN_ISA");
    dev = dev ? strdup(dev) : NULL;
    isa = isa ? strdup(isa) : NULL;
    unsetenv("LINATTN_DEVICE");
    unsetenv("LINATTN_ISA");
    linattn_ctx *ctx = NULL;
    set_fault("cl_auto_any");
    const int rc = linattn_ctx_create(NULL, &ctx);
    set_fault(NULL);
    if (dev) setenv("LINATTN_DEVICE", dev, 1);
    if (isa) setenv("LINATTN_ISA", isa, 1);
    free(dev);
    free(isa);
    ck_assert_msg(rc == LINATTN_OK, "auto context: %s", linattn_last_error());
    ck_assert_msg(linattn_ctx_backend(ctx) == LINATTN_BACKEND_OPENCL,
                  "cl_auto_any: auto did not take the OpenCL device (%s)",
                  linattn_ctx_device(ctx));
    return ctx;
}

START_TEST(test_cl_build)
{
    if (!tu_opencl()) return;
    /* a forced device: LINATTN_EDEVICE, the build log on stderr */
    linattn_ctx *ctx = tu_ctx("opencl", 2);
    every_op(ctx, "cl_build", LINATTN_EDEVICE, LINATTN_EDEVICE, "forced device");
    set_fault("cl_build");
    double gf, gbs;
    ck_assert_int_eq(linattn_opencl_limits(ctx, &gf, &gbs), LINATTN_EDEVICE);
    ck_assert_msg(strstr(linattn_last_error(), "clBuildProgram"), "%s", linattn_last_error());
    set_fault(NULL);
    linattn_ctx_destroy(ctx);
    /* the device auto chose: host tensors run on the CPU; a tensor in a
     * device buffer (or the cache) cannot, and the error stands */
    ctx = auto_ctx();
    every_op(ctx, "cl_build", LINATTN_OK, LINATTN_EDEVICE, "auto device");
    /* the first step of the table without a cache, its first in-place state
     * in a buffer */
    int e = 0, s = -1;
    for (; e < linattn_op_count() && s < 0; e++) {
        const linattn_op_info *op = linattn_op_at(e);
        if (strcmp(op->entry, "step") || op->cache) continue;
        for (int i = 0; i < op->ntensors && s < 0; i++)
            if (op->tensors[i].role == LINATTN_ROLE_INOUT) s = i;
    }
    ck_assert_int_ge(s, 0);
    fx f;
    char name[96];
    memset(&f, 0, sizeof f);
    snprintf(name, sizeof name, "%s, %s in a buffer", op_label(e - 1), linattn_op_at(e - 1)->tensors[s].name);
    f.name = name;
    f.ctx = ctx;
    op_make(&f, e - 1, 0);
    linattn_tensor *t = &f.a.t[s];
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    linattn_buffer *st = NULL;
    ck_assert_int_eq(linattn_buffer_create(ctx, n, &st), LINATTN_OK);
    *t = linattn_tensor_buffer(st, t->ndim, t->shape);
    set_fault("cl_build");
    ck_assert_int_eq(f.run(&f), LINATTN_EDEVICE);
    set_fault(NULL);
    ck_assert(fx_untouched(&f));
    linattn_buffer_destroy(st);
    fx_free(&f);
    linattn_ctx_destroy(ctx);
}
END_TEST

START_TEST(test_cl_oom)
{
    if (!tu_opencl()) return;
    linattn_ctx *ctx = tu_ctx("opencl", 2);
    every_op(ctx, "cl_oom", LINATTN_ENOMEM, LINATTN_ENOMEM, "forced device");
    set_fault("cl_oom");
    linattn_buffer *buf = (linattn_buffer *)&ctx;
    ck_assert_int_eq(linattn_buffer_create(ctx, 1000, &buf), LINATTN_ENOMEM);
    ck_assert_ptr_null(buf);
    ck_assert_msg(strstr(linattn_last_error(), "CL_MEM_OBJECT_ALLOCATION_FAILURE"), "%s",
                  linattn_last_error());
    linattn_kvcache *kc = (linattn_kvcache *)&ctx;
    ck_assert_int_eq(linattn_kvcache_create(ctx, 1, H_, K_, V_, 16, &kc), LINATTN_ENOMEM);
    ck_assert_ptr_null(kc);
    set_fault(NULL);
    linattn_ctx_destroy(ctx);
    /* auto: the CPU runs what the device could not hold */
    ctx = auto_ctx();
    every_op(ctx, "cl_oom", LINATTN_OK, LINATTN_ENOMEM, "auto device");
    set_fault("cl_oom");
    ck_assert_int_eq(linattn_buffer_create(ctx, 1000, &buf), LINATTN_ENOMEM);
    set_fault(NULL);
    linattn_ctx_destroy(ctx);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_switch_syntax);
    tcase_add_loop_test(tc, test_malloc_sweep, 0, NOPS);
    tcase_add_loop_test(tc, test_step_steady, 0, NOPS);
    tcase_add_test(tc, test_malloc_objects);
    tcase_add_test(tc, test_malloc_npy);
    tcase_add_test(tc, test_cl_build);
    tcase_add_test(tc, test_cl_oom);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_main(suite()); }
