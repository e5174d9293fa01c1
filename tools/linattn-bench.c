/* linattn-bench - time forward (prefill) and step (decode) for each operator,
 * backend, ISA and algorithm over a grid of shapes, and print every figure
 * also as a fraction of this machine's limits measured in the same run.
 * See linattn-bench(1). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "benchctx.h"
#include "benchkalman.h"
#include "benchsvg.h"
#include "benchsys.h"
#include "toolutil.h"

#define PROG "linattn-bench"
#define MAXL 16

typedef struct list { int n; char s[MAXL][16]; } list;
typedef struct ilist { int n; long v[MAXL]; } ilist;

typedef struct opts {
    list ops, isas, algos, modes, backends;
    ilist T, Bdec, ctxL;
    int ops_set;
    long Bpre, H, K, V, M, S, threads, reps;
    const char *csv, *svg;
    int quick, limits;
} opts;

typedef struct result {
    char op[12], mode[8], isa[16], algo[16];
    long B, T, H, K, V, M, S, threads;
    double sec, tok_s, gflops, gbs;
    double peak, bwl; /* the limits this row is compared with */
} result;

static int split(const char *s, list *l)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    l->n = 0;
    for (char *t = strtok(buf, ", "); t; t = strtok(NULL, ", ")) {
        if (l->n == MAXL || strlen(t) >= sizeof l->s[0]) return -1;
        strcpy(l->s[l->n++], t);
    }
    return l->n ? 0 : -1;
}

static int isplit(const char *s, ilist *l, long lo, long hi)
{
    list t;
    if (split(s, &t)) return -1;
    l->n = t.n;
    for (int i = 0; i < t.n; i++)
        if (tool_parse_int(t.s[i], lo, hi, &l->v[i])) return -1;
    return 0;
}

static int has(const list *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->s[i], s)) return 1;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [--quick] [--op gdn,kla,gla,gka,kalman,ela,softmax]\n"
            "       [--mode prefill,decode,context] [--context 64,256,1024,4096,32768,131072]\n"
            "       [--isa best|all|scalar,avx2,...] [--algo recurrent,chunk] [--backend cpu,ref,opencl]\n"
            "       [--T 512,4096,16384] [--B 1,8,64] [--prefill-B N] [--H N] [--K N] [--V N]\n"
            "       [--M N] [--S N] [--threads N] [--reps N] [--no-limits] [--csv FILE] [--svg FILE]\n"
            "See linattn-bench(1).\n");
}

#define OP_GKA 3
#define OP_KALMAN 4
#define OP_ELA 5
#define OP_SOFTMAX 6
#define KALMAN_FLOPS 10.0 /* per lane and token, besides 2 reciprocals (linattn_kalman(3)) */
#define KALMAN_BYTES 16.0 /* per lane and decode step: lam and eta read and written */
#define GKA_ITERS 30 /* the default of linattn_gka_opts */

/* flops per token and head: gdn/kla 6KV (two passes), gla 4KV (the
 * minimal counts, whatever the form); gka 2((iters + 2)K^2 + 2KV) for the
 * recurrence (A.1) and, for its chunk form, the count of its matrix products
 * 2(iters(K^2 + 2CK) + K^2 + CK + C^2 + 2KV + CK + CV) with C = 64 */
static double flops_per_token(const char *op, const char *algo, long K, long V, long T)
{
    const double k = (double)K, v = (double)V, c = 64.0;
    if (!strcmp(op, "gka") && !strcmp(algo, "chunk"))
        return 2.0 * (GKA_ITERS * (k * k + 2 * c * k) + k * k + c * k + c * c + 2 * k * v +
                      c * k + c * v);
    if (!strcmp(op, "gka")) return 2.0 * ((GKA_ITERS + 2.0) * k * k + 2.0 * k * v);
    if (!strcmp(op, "ela")) return 4.0 * k * v; /* S += psi v^T, phi^T S (F = K) */
    if (!strcmp(op, "softmax")) return (k + v) * ((double)T + 1.0); /* causal: (T+1)/2 keys */
    return (strcmp(op, "gla") ? 6.0 : 4.0) * k * v;
}

static int opnum(const char *op)
{
    return !strcmp(op, "gdn") ? 0 : !strcmp(op, "kla") ? 1 : !strcmp(op, "gla") ? 2
           : !strcmp(op, "gka") ? OP_GKA : !strcmp(op, "kalman") ? OP_KALMAN
           : !strcmp(op, "ela") ? OP_ELA : OP_SOFTMAX;
}

/* The operands of one timed call: prefill shapes ([B,T,H,..]) or decode
 * shapes ([B,H,..]); st is the state [B,H,K,V], stkk gka's [B,H,K,K]. */
enum { Q, KK, VV, G, BETA, ALPHA, O, ST, STKK, NSET };
typedef struct opset { linattn_tensor t[NSET]; } opset;

static int call_forward(int op, linattn_ctx *ctx, const opset *s, linattn_algo algo)
{
    const linattn_tensor *t = s->t;
    if (op == OP_ELA) {
        linattn_ela_io io = {.q = t[Q], .k = t[KK], .v = t[VV], .o = t[O]};
        linattn_ela_opts e;
        linattn_ela_opts_init(&e);
        e.algo = algo;
        return linattn_ela_forward(ctx, &io, &e);
    }
    if (op == OP_SOFTMAX) {
        linattn_softmax_io io = {.q = t[Q], .k = t[KK], .v = t[VV], .o = t[O]};
        return linattn_softmax_forward(ctx, &io, NULL);
    }
    if (op == OP_GKA) {
        linattn_gka_io io = {.q = t[Q], .k = t[KK], .v = t[VV], .g = t[G], .beta = t[BETA],
                             .alpha = t[ALPHA], .o = t[O], .ht_kk = t[STKK], .ht_kv = t[ST]};
        linattn_gka_opts g;
        linattn_gka_opts_init(&g);
        g.algo = algo;
        return linattn_gka_forward(ctx, &io, &g);
    }
    linattn_delta_opts o;
    linattn_delta_opts_init(&o);
    o.algo = algo;
    linattn_delta_io io = {.q = t[Q], .k = t[KK], .v = t[VV], .g = t[G], .o = t[O], .ht = t[ST],
                           .beta = op == LINATTN_OP_GLA ? linattn_tensor_none() : t[BETA]};
    return linattn_delta_forward(ctx, (linattn_delta_op)op, &io, &o);
}

static int call_step(int op, linattn_ctx *ctx, const opset *s)
{
    const linattn_tensor *t = s->t;
    if (op == OP_GKA) {
        linattn_gka_step_io io = {.q = t[Q], .k = t[KK], .v = t[VV], .g = t[G], .beta = t[BETA],
                                  .alpha = t[ALPHA], .o = t[O], .state_kk = t[STKK],
                                  .state_kv = t[ST]};
        return linattn_gka_step(ctx, &io, NULL);
    }
    linattn_delta_step_io io = {.q = t[Q], .k = t[KK], .v = t[VV], .g = t[G], .o = t[O],
                                .state = t[ST],
                                .beta = op == LINATTN_OP_GLA ? linattn_tensor_none() : t[BETA]};
    return linattn_delta_step(ctx, (linattn_delta_op)op, &io, NULL);
}

/* keys of unit norm, as the models feed them */
static void normalise(float *x, size_t rows, long d)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (long i = 0; i < d; i++) s += (double)x[r * d + i] * x[r * d + i];
        s = 1.0 / sqrt(s + 1e-6);
        for (long i = 0; i < d; i++) x[r * d + i] = (float)(x[r * d + i] * s);
    }
}

typedef struct bufs { float *q, *k, *v, *g, *beta, *alpha, *o, *st, *stkk; } bufs;

static void free_bufs(bufs *b)
{
    free(b->q); free(b->k); free(b->v); free(b->g); free(b->beta); free(b->alpha); free(b->o);
    free(b->st); free(b->stkk);
    memset(b, 0, sizeof *b);
}

/* Inputs for B x T tokens of H heads. */
static int make_bufs(bufs *b, long B, long T, long H, long K, long V)
{
    unsigned seed = 12345;
    const size_t rows = (size_t)B * T * H;
    memset(b, 0, sizeof *b);
    b->q = bench_randbuf(rows * K, -1, 1, &seed);
    b->k = bench_randbuf(rows * K, -1, 1, &seed);
    b->v = bench_randbuf(rows * V, -1, 1, &seed);
    b->g = bench_randbuf(rows, -0.1f, 0.0f, &seed);
    b->beta = bench_randbuf(rows, 0.1f, 0.9f, &seed);
    b->o = bench_randbuf(rows * V, 0, 0, &seed);
    b->st = bench_randbuf((size_t)B * H * K * V, -0.01f, 0.01f, &seed);
    b->alpha = bench_randbuf(rows, 0.0f, 1.0f, &seed);
    b->stkk = bench_randbuf((size_t)B * H * K * K, 0.0f, 0.0f, &seed);
    if (!b->q || !b->k || !b->v || !b->g || !b->beta || !b->o || !b->st || !b->alpha || !b->stkk)
        return -1;
    normalise(b->q, rows, K);
    normalise(b->k, rows, K);
    return 0;
}

static linattn_ctx *make_ctx(const char *backend, const char *isa, long threads)
{
    linattn_config cfg;
    linattn_ctx *ctx = NULL;
    linattn_config_init(&cfg);
    cfg.threads = (int)threads;
    if (!strcmp(backend, "ref")) cfg.backend = LINATTN_BACKEND_REF;
    else if (!strcmp(backend, "opencl")) cfg.backend = LINATTN_BACKEND_OPENCL;
    else {
        cfg.backend = LINATTN_BACKEND_CPU;
        cfg.isa = isa;
    }
    if (linattn_ctx_create(&ctx, &cfg)) {
        tool_error(PROG, "%s", linattn_last_error());
        return NULL;
    }
    return ctx;
}

static void progress(int done, int total, const char *what)
{
    if (!isatty(2)) return;
    const int w = 30, f = total ? done * w / total : w;
    fprintf(stderr, "\r[%.*s%*s] %d/%d %-40.40s", f, "##############################", w - f, "",
            done, total, what);
    if (done == total) fprintf(stderr, "\r%*s\r", w + 60, "");
}

/* On an OpenCL context the operands live in device buffers (made once per
 * shape, outside the timing): rows measure the device, not the bus. */
typedef struct devbufs { linattn_buffer *b[NSET]; } devbufs;

static void dev_free(devbufs *d)
{
    for (int i = 0; i < NSET; i++) linattn_buffer_destroy(d->b[i]);
    memset(d, 0, sizeof *d);
}

/* t's data copied into a new buffer of ctx; t then refers to the buffer. */
static int dev_put(linattn_ctx *ctx, linattn_tensor *t, linattn_buffer **slot)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    if (linattn_buffer_create(ctx, n, slot) || linattn_buffer_write(*slot, 0, t->data, n))
        return -1;
    *t = linattn_tensor_buffer(*slot, t->ndim, t->shape);
    return 0;
}

static int on_device(linattn_ctx *ctx) { return linattn_ctx_backend(ctx) == LINATTN_BACKEND_OPENCL; }

/* The operands with T tokens (T = 0: decode shapes); on an OpenCL context
 * copied into device buffers. */
static int make_set(linattn_ctx *ctx, const bufs *b, long B, long T, long H, long K, long V,
                    opset *s, devbufs *d)
{
    const int pre = T > 0;
    const int64_t lead[3] = {B, pre ? T : H, H};
    const int nl = pre ? 3 : 2;
    const int64_t st[4] = {B, H, K, V}, stkk[4] = {B, H, K, K};
    float *data[NSET] = {b->q, b->k, b->v, b->g, b->beta, b->alpha, b->o, b->st, b->stkk};
    const long last[NSET] = {K, K, V, 0, 0, 0, V, 0, 0};
    memset(d, 0, sizeof *d);
    for (int i = 0; i < NSET; i++) {
        int64_t sh[4];
        int nd = 0;
        if (i == ST || i == STKK) {
            memcpy(sh, i == ST ? st : stkk, sizeof sh);
            nd = 4;
        } else {
            for (; nd < nl; nd++) sh[nd] = lead[nd];
            if (last[i]) sh[nd++] = last[i];
        }
        s->t[i] = linattn_tensor_4d(data[i], sh[0], sh[1], nd > 2 ? sh[2] : 0, nd > 3 ? sh[3] : 0);
        s->t[i].ndim = nd;
        if (on_device(ctx) && dev_put(ctx, &s->t[i], &d->b[i])) return -1;
    }
    return 0;
}

/* One timed call of an operator on its operands. */
typedef struct timed { int op; linattn_ctx *ctx; const opset *s; linattn_algo algo; } timed;
static int timed_forward(void *a)
{
    const timed *x = a;
    return call_forward(x->op, x->ctx, x->s, x->algo);
}
static int timed_step(void *a)
{
    const timed *x = a;
    return call_step(x->op, x->ctx, x->s);
}

/* Median seconds of one forward over the prefill shape. */
static int time_prefill(int op, linattn_ctx *ctx, const bufs *b, long B, long T, long H, long K,
                        long V, linattn_algo algo, long reps, double *sec)
{
    opset s;
    devbufs d;
    int rc = make_set(ctx, b, B, T, H, K, V, &s, &d);
    timed x = {op, ctx, &s, algo};
    if (!rc) rc = bench_time_once(timed_forward, &x, reps, sec);
    dev_free(&d);
    return rc ? -1 : 0;
}

/* Median seconds of one decode step for B sequences. */
static int time_decode(int op, linattn_ctx *ctx, const bufs *b, long B, long H, long K, long V,
                       long reps, double *sec)
{
    opset s;
    devbufs d;
    int rc = make_set(ctx, b, B, 0, H, K, V, &s, &d);
    timed x = {op, ctx, &s, LINATTN_ALGO_AUTO};
    if (!rc) rc = bench_time_repeated(timed_step, &x, reps, sec);
    dev_free(&d);
    return rc ? -1 : 0;
}

static void parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"quick", no_argument, 0, 'q'},        {"op", required_argument, 0, 'o'},
        {"mode", required_argument, 0, 'm'},   {"isa", required_argument, 0, 'i'},
        {"algo", required_argument, 0, 'a'},   {"backend", required_argument, 0, 'b'},
        {"T", required_argument, 0, 'T'},      {"B", required_argument, 0, 'B'},
        {"prefill-B", required_argument, 0, 'P'}, {"H", required_argument, 0, 'H'},
        {"K", required_argument, 0, 'K'},      {"V", required_argument, 0, 'V'},
        {"threads", required_argument, 0, 't'}, {"reps", required_argument, 0, 'r'},
        {"csv", required_argument, 0, 'c'},    {"svg", required_argument, 0, 's'},
        {"no-limits", no_argument, 0, 'n'},    {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'v'},      {"M", required_argument, 0, 'M'},
        {"S", required_argument, 0, 'S'},      {"context", required_argument, 0, 'C'},
        {0, 0, 0, 0}};
    int c, bad = 0, quick_T = 1, quick_B = 1;
    memset(o, 0, sizeof *o);
    split("gdn,kla,gla", &o->ops);
    split("best", &o->isas);
    split("recurrent,chunk", &o->algos);
    split("prefill,decode", &o->modes);
    split("cpu", &o->backends);
    isplit("512,4096,16384", &o->T, 1, 1L << 30);
    isplit("1,8,64", &o->Bdec, 1, 1L << 20);
    isplit("64,256,1024,4096,32768,131072", &o->ctxL, 1, 1L << 30);
    o->Bpre = 1; o->H = 16; o->K = 128; o->V = 128; o->reps = 5; o->limits = 1;
    o->M = 1024; o->S = 16;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'q': o->quick = 1; break;
        case 'o': bad |= split(optarg, &o->ops); o->ops_set = 1; break;
        case 'C': bad |= isplit(optarg, &o->ctxL, 1, 1L << 30); break;
        case 'm': bad |= split(optarg, &o->modes); break;
        case 'i': bad |= split(optarg, &o->isas); break;
        case 'a': bad |= split(optarg, &o->algos); break;
        case 'b': bad |= split(optarg, &o->backends); break;
        case 'T': bad |= isplit(optarg, &o->T, 1, 1L << 30); quick_T = 0; break;
        case 'B': bad |= isplit(optarg, &o->Bdec, 1, 1L << 20); quick_B = 0; break;
        case 'P': bad |= tool_parse_int(optarg, 1, 1L << 20, &o->Bpre); break;
        case 'H': bad |= tool_parse_int(optarg, 1, 1L << 20, &o->H); break;
        case 'K': bad |= tool_parse_int(optarg, 1, LINATTN_MAX_HEAD_DIM, &o->K); break;
        case 'V': bad |= tool_parse_int(optarg, 1, LINATTN_MAX_HEAD_DIM, &o->V); break;
        case 'M': bad |= tool_parse_int(optarg, 1, 1L << 24, &o->M); break;
        case 'S': bad |= tool_parse_int(optarg, 1, LINATTN_KALMAN_MAX_STATES, &o->S); break;
        case 't': bad |= tool_parse_int(optarg, 1, 4096, &o->threads); break;
        case 'r': bad |= tool_parse_int(optarg, 1, 64, &o->reps); break;
        case 'c': o->csv = optarg; break;
        case 's': o->svg = optarg; break;
        case 'n': o->limits = 0; break;
        case 'h': usage(stdout); exit(0);
        case 'v': printf(PROG " (linattn) %s\n", linattn_version_string()); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (bad || optind != argc) {
        tool_error(PROG, "bad arguments");
        usage(stderr);
        exit(2);
    }
    for (int i = 0; i < o->ops.n; i++)
        if (strcmp(o->ops.s[i], "gdn") && strcmp(o->ops.s[i], "kla") && strcmp(o->ops.s[i], "gla") &&
            strcmp(o->ops.s[i], "gka") && strcmp(o->ops.s[i], "kalman") &&
            strcmp(o->ops.s[i], "ela") && strcmp(o->ops.s[i], "softmax")) {
            tool_error(PROG, "--op %s: expected gdn, kla, gla, gka, kalman, ela or softmax",
                       o->ops.s[i]);
            exit(2);
        }
    for (int i = 0; i < o->algos.n; i++)
        if (strcmp(o->algos.s[i], "recurrent") && strcmp(o->algos.s[i], "chunk")) {
            tool_error(PROG, "--algo %s: expected recurrent or chunk", o->algos.s[i]);
            exit(2);
        }
    for (int i = 0; i < o->backends.n; i++)
        if (strcmp(o->backends.s[i], "cpu") && strcmp(o->backends.s[i], "ref") &&
            strcmp(o->backends.s[i], "opencl")) {
            tool_error(PROG, "--backend %s: expected cpu, ref or opencl", o->backends.s[i]);
            exit(2);
        }
    for (int i = 0; i < o->modes.n; i++)
        if (strcmp(o->modes.s[i], "prefill") && strcmp(o->modes.s[i], "decode") &&
            strcmp(o->modes.s[i], "context")) {
            tool_error(PROG, "--mode %s: expected prefill, decode or context", o->modes.s[i]);
            exit(2);
        }
    if (o->quick) {
        if (quick_T) isplit("512,4096", &o->T, 1, 1L << 30);
        if (quick_B) isplit("1,64", &o->Bdec, 1, 1L << 20);
        if (o->reps == 5) o->reps = 3;
    }
}

static void add(list *l, const char *s)
{
    if (!has(l, s) && l->n < MAXL) snprintf(l->s[l->n++], sizeof l->s[0], "%s", s);
}

/* Resolve "best" (what a default context picks) and "all" (every compiled
 * ISA this CPU runs) into ISA names. */
static void resolve_isas(list *l)
{
    list out = {0}, all;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", linattn_isa_compiled());
    split(buf, &all);
    for (int i = 0; i < l->n; i++) {
        if (!strcmp(l->s[i], "all")) {
            for (int j = 0; j < all.n; j++)
                if (linattn_isa_usable(all.s[j])) add(&out, all.s[j]);
        } else if (!strcmp(l->s[i], "best")) {
            linattn_ctx *c = make_ctx("cpu", NULL, 1);
            if (c) add(&out, linattn_ctx_isa(c));
            linattn_ctx_destroy(c);
        } else {
            add(&out, l->s[i]);
        }
    }
    *l = out;
}

/* --mode context on each backend but ref (see benchctx.c); --op given or
 * the operators the long-context comparison is about. */
static int run_context(const opts *o)
{
    int ops[BENCH_CTX_NOPS], nops = 0;
    int64_t L[16];
    list names;
    if (o->ops_set) names = o->ops;
    else split("gdn,kla,gka,kalman,ela,softmax", &names);
    for (int i = 0; i < names.n; i++)
        for (int j = 0; j < BENCH_CTX_NOPS; j++)
            if (!strcmp(names.s[i], bench_ctx_names[j])) ops[nops++] = j;
    for (int i = 0; i < o->ctxL.n; i++) L[i] = o->ctxL.v[i];
    const bench_ctx_shape g = {o->H, o->K, o->V, o->M, o->S};
    static svg_series ser[BENCH_CTX_MAXSER];
    int nser = 0;
    for (int bk = 0; bk < o->backends.n; bk++) {
        if (!strcmp(o->backends.s[bk], "ref")) continue;
        linattn_ctx *ctx = make_ctx(o->backends.s[bk], NULL, o->threads);
        if (!ctx) return 1;
        const int rc = bench_context(ctx, o->backends.s[bk], ops, nops, L, o->ctxL.n, &g,
                                     o->reps, ser, &nser);
        linattn_ctx_destroy(ctx);
        if (rc) return 1;
    }
    char title[160];
    snprintf(title, sizeof title, "linattn decode after L tokens of context, B=1 H=%ld K=%ld V=%ld",
             o->H, o->K, o->V);
    if (o->svg && svg_write(o->svg, title, "context length L (tokens)", "decode tokens / s", ser,
                            nser)) {
        tool_error(PROG, "%s: cannot write", o->svg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    tool_progname(argc, argv, PROG);
    parse(argc, argv, &o);
    resolve_isas(&o.isas);
    linattn_ctx *probe = make_ctx("cpu", NULL, o.threads);
    if (!probe) return 1;
    const long threads = linattn_ctx_threads(probe);
    linattn_ctx_destroy(probe);

    printf("# linattn %s  cpu features: %s  isas compiled: %s  threads: %ld\n",
           linattn_version_string(), linattn_cpu_features(), linattn_isa_compiled(), threads);
    printf("# BLAS: %s\n", linattn_blas_info());
    double sgemm = 0, bw = 0, fma = 0;
    if (o.limits) {
        progress(0, 1, "machine limits");
        sgemm = bench_sgemm_gflops(1024, (int)threads, o.reps);
        bw = bench_rmw_gbs((size_t)1 << 30, (int)threads, o.reps);
        fma = bench_fma_gflops((int)threads, o.reps);
        printf("# limits (same run): sgemm 1024^3 %.1f GFLOP/s (%ld threads); "
               "memory bandwidth %.1f GB/s (1 GiB read+written in place); "
               "FMA peak %.1f GFLOP/s\n", sgemm, threads, bw, fma);
    }
    double cl_sgemm = 0, cl_bw = 0;
    if (has(&o.backends, "opencl")) {
        linattn_ctx *c = make_ctx("opencl", NULL, 1);
        if (!c) return 1;
        printf("# OpenCL device: %s\n", linattn_ctx_device(c));
        if (o.limits) {
            progress(0, 1, "device limits");
            if (linattn_opencl_limits(c, &cl_sgemm, &cl_bw)) {
                tool_error(PROG, "device limits: %s", linattn_last_error());
                linattn_ctx_destroy(c);
                return 1;
            }
            printf("# device limits (same run, our kernels): sgemm %.1f GFLOP/s; copy bandwidth "
                   "%.1f GB/s (read+written); opencl rows keep every operand in device buffers\n",
                   cl_sgemm, cl_bw);
        }
        linattn_ctx_destroy(c);
    }
    int table = 0; /* any mode but context */
    for (int m = 0; m < o.modes.n; m++) table |= strcmp(o.modes.s[m], "context") != 0;
    if (table)
        printf("%-7s %-7s %-7s %-9s %5s %6s %-13s %3s %10s %12s %8s %7s %8s %6s\n", "op",
               "mode", "isa", "algo", "B", "T", "shape", "thr", "median_ms", "tokens/s",
               "GFLOP/s", "%peak", "GB/s", "%bw");

    int total = 0, done = 0;
    const int nbk = o.backends.n;
    for (int m = 0; m < o.modes.n; m++) {
        const int pre = !strcmp(o.modes.s[m], "prefill");
        const int shapes = pre ? o.T.n : o.Bdec.n;
        if (!strcmp(o.modes.s[m], "context")) continue;
        for (int bk = 0; bk < nbk; bk++) {
            const int one = strcmp(o.backends.s[bk], "cpu") != 0; /* ref, opencl */
            total += o.ops.n * (one ? 1 : o.isas.n) * (pre && !one ? o.algos.n : 1) * shapes;
        }
    }
    result *res = calloc((size_t)total + 1, sizeof *res);
    if (!res) return 1;
    int nres = 0, rc = 0;

    for (int m = 0; m < o.modes.n && !rc; m++) {
        const int pre = !strcmp(o.modes.s[m], "prefill");
        const int shapes = pre ? o.T.n : o.Bdec.n;
        if (!strcmp(o.modes.s[m], "context")) continue;
        for (int si = 0; si < shapes && !rc; si++) {
            const long B = pre ? o.Bpre : o.Bdec.v[si], T = pre ? o.T.v[si] : 1;
            bufs b;
            if (make_bufs(&b, B, T, o.H, o.K, o.V)) {
                tool_error(PROG, "out of memory for B=%ld T=%ld", B, T);
                free_bufs(&b);
                rc = 1;
                break;
            }
            for (int bk = 0; bk < nbk && !rc; bk++) {
                const int ref = !strcmp(o.backends.s[bk], "ref");
                const int cl = !strcmp(o.backends.s[bk], "opencl"), one = ref || cl;
                const double bwl = cl ? cl_bw : bw;
                for (int ii = 0; ii < (one ? 1 : o.isas.n) && !rc; ii++) {
                    linattn_ctx *ctx = make_ctx(o.backends.s[bk], o.isas.s[ii], o.threads);
                    if (!ctx) { rc = 1; break; }
                    for (int oi = 0; oi < o.ops.n && !rc; oi++)
                        for (int ai = 0; ai < (pre && !one ? o.algos.n : 1) && !rc; ai++) {
                            result *r = &res[nres];
                            if (!pre && opnum(o.ops.s[oi]) >= OP_ELA) continue; /* --mode context */
                            if (opnum(o.ops.s[oi]) == OP_SOFTMAX && ai > 0) continue; /* one form */
                            snprintf(r->op, sizeof r->op, "%s", o.ops.s[oi]);
                            snprintf(r->mode, sizeof r->mode, "%s", pre ? "prefill" : "decode");
                            snprintf(r->isa, sizeof r->isa, "%s", ref ? "ref" : cl ? "opencl" : o.isas.s[ii]);
                            const int kal = opnum(r->op) == OP_KALMAN;
                            const double peak = cl ? cl_sgemm : kal ? fma : sgemm;
                            snprintf(r->algo, sizeof r->algo, "%s",
                                     ref ? "reference"
                                     : cl && kal ? (pre ? "auto" : "recurrent")
                                     : cl ? (pre && strcmp(r->op, "gka") ? "chunk" : "recurrent")
                                     : pre ? o.algos.s[ai] : "recurrent");
                            r->B = B; r->T = T; r->H = o.H; r->K = o.K; r->V = o.V;
                            if (kal) { r->H = r->K = r->V = 0; r->M = o.M; r->S = o.S; }
                            r->threads = threads;
                            char what[96];
                            snprintf(what, sizeof what, "%s %s %s %s B=%ld T=%ld", r->op, r->mode,
                                     r->isa, r->algo, B, T);
                            progress(done, total, what);
                            const linattn_algo algo =
                                pre && !strcmp(r->algo, "chunk") ? LINATTN_ALGO_CHUNK
                                : !strcmp(r->algo, "auto")       ? LINATTN_ALGO_AUTO
                                                                 : LINATTN_ALGO_RECURRENT;
                            if (kal && algo == LINATTN_ALGO_CHUNK) snprintf(r->algo, sizeof r->algo, "scan");
                            if (opnum(r->op) == OP_SOFTMAX) snprintf(r->algo, sizeof r->algo, "blocked");
                            const int st =
                                kal ? (pre ? bench_kalman_prefill(ctx, B, T, o.M, o.S, algo, o.reps, &r->sec)
                                           : bench_kalman_decode(ctx, B, o.M, o.S, o.reps, &r->sec))
                                : pre ? time_prefill(opnum(r->op), ctx, &b, B, T, o.H, o.K, o.V, algo,
                                                     o.reps, &r->sec)
                                      : time_decode(opnum(r->op), ctx, &b, B, o.H, o.K, o.V, o.reps,
                                                    &r->sec);
                            done++;
                            if (st) {
                                if (one || algo != LINATTN_ALGO_CHUNK) {
                                    tool_error(PROG, "%s: %s", what, linattn_last_error());
                                    rc = 1;
                                }
                                continue; /* chunk form not built: nothing to report */
                            }
                            const double tokens = (double)B * T;
                            r->tok_s = tokens / r->sec;
                            const double lanes = (double)o.M * o.S;
                            r->gflops = kal ? tokens * lanes * KALMAN_FLOPS / r->sec * 1e-9
                                            : tokens * o.H * flops_per_token(r->op, r->algo, o.K, o.V, T) /
                                                  r->sec * 1e-9;
                            r->gbs = pre ? 0
                                     : kal ? B * lanes * KALMAN_BYTES / r->sec * 1e-9
                                           : 8.0 * B * o.H * o.K *
                                                 (o.V + (opnum(r->op) == OP_GKA ? o.K : 0)) /
                                                 r->sec * 1e-9;
                            char shape[32];
                            if (kal) snprintf(shape, sizeof shape, "M%ldxS%ld", o.M, o.S);
                            else snprintf(shape, sizeof shape, "H%ldxK%ldxV%ld", o.H, o.K, o.V);
                            printf("%-7s %-7s %-7s %-9s %5ld %6ld %-13s %3ld %10.3f %12.0f "
                                   "%8.1f %6.1f%% %8.1f %5.1f%%\n",
                                   r->op, r->mode, r->isa, r->algo, B, T, shape, threads,
                                   r->sec * 1e3, r->tok_s, r->gflops,
                                   peak > 0 ? 100.0 * r->gflops / peak : 0.0, r->gbs,
                                   bwl > 0 && !pre ? 100.0 * r->gbs / bwl : 0.0);
                            r->peak = peak;
                            r->bwl = bwl;
                            fflush(stdout);
                            nres++;
                        }
                    linattn_ctx_destroy(ctx);
                }
            }
            free_bufs(&b);
        }
    }
    progress(total, total, "");
    int ctx_mode = 0;
    for (int m = 0; m < o.modes.n; m++) ctx_mode |= !strcmp(o.modes.s[m], "context");
    if (ctx_mode && !rc) rc = run_context(&o);

    if (o.csv) {
        FILE *f = fopen(o.csv, "w");
        if (!f) {
            tool_error(PROG, "%s: cannot write", o.csv);
            rc = 1;
        } else {
            fprintf(f, "op,mode,isa,algo,B,T,H,K,V,M,S,threads,median_s,tokens_per_s,gflops,"
                       "peak_gflops,pct_peak,gbs,bw_gbs,pct_bw\n");
            for (int i = 0; i < nres; i++) {
                const result *r = &res[i];
                fprintf(f, "%s,%s,%s,%s,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.6g,%.6g,%.6g,%.6g,%.4g,%.6g,%.6g,%.4g\n",
                        r->op, r->mode, r->isa, r->algo, r->B, r->T, r->H, r->K, r->V, r->M, r->S,
                        r->threads,
                        r->sec, r->tok_s, r->gflops, r->peak, r->peak > 0 ? 100 * r->gflops / r->peak : 0,
                        r->gbs, r->bwl, r->bwl > 0 && r->gbs > 0 ? 100 * r->gbs / r->bwl : 0);
            }
            if (fclose(f)) rc = 1;
        }
    }
    if (o.svg && !ctx_mode) {
        svg_series *s = calloc(MAXL * 8, sizeof *s);
        int ns = 0;
        for (int i = 0; s && i < nres; i++) {
            const result *r = &res[i];
            if (strcmp(r->mode, "prefill")) continue;
            char name[96];
            snprintf(name, sizeof name, "%s %s %s", r->op, r->isa, r->algo);
            int j = 0;
            while (j < ns && strcmp(s[j].name, name)) j++;
            if (j == ns) {
                if (ns == MAXL * 8) continue;
                snprintf(s[ns++].name, sizeof s->name, "%s", name);
            }
            if (s[j].n < 32) { s[j].x[s[j].n] = (double)r->T; s[j].y[s[j].n++] = r->tok_s; }
        }
        char title[160];
        snprintf(title, sizeof title, "linattn prefill, B=%ld H=%ld K=%ld V=%ld, %ld threads",
                 o.Bpre, o.H, o.K, o.V, threads);
        if (!s || svg_write(o.svg, title, "sequence length T (tokens)", "tokens / s", s, ns)) {
            tool_error(PROG, "%s: cannot write", o.svg);
            rc = 1;
        }
        free(s);
    }
    free(res);
    return rc;
}
