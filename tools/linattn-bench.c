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
#include "benchla.h"
#include "benchserve.h"
#include "benchop.h"
#include "benchsvg.h"
#include "benchsys.h"
#include "toolutil.h"

#include "benchsplit.h"
#define PROG "linattn-bench"
#define MAXL 16

typedef struct list { int n; char s[MAXL][16]; } list;
typedef struct ilist { int n; long v[MAXL]; } ilist;

typedef struct opts {
    list ops, isas, algos, modes, backends;
    ilist T, Bdec, ctxL;
    int ops_set;
    long Bpre, H, K, V, M, S, threads, reps;
    long Hq, Hk;          /* query and key heads of the delta family (0: as the table) */
    int channel, strided; /* --gate channel, --strided */
    linattn_dtype dtype, sdtype; /* --dtype, --state-dtype */
    const char *csv, *svg;
    int quick, limits;
    int la_rule; /* --update-rule of --mode onnx */
    long devices;         /* --devices N: the split prefill over N OpenCL contexts */
    const char *segments; /* --segments: LINATTN_SEGMENTS for the CPU rows */
} opts;

typedef struct result {
    char op[12], mode[8], isa[16], algo[16];
    long B, T, H, K, V, M, S, threads;
    long Hq, Hk;         /* 0 where the operator has no such heads */
    char gate[8], layout[8];
    char dtype[8], state[8]; /* the types made: tensors, states ("-" without) */
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

/* The table's operator names joined by sep, the last by last. */
static void op_names(char *out, size_t cap, const char *sep, const char *last)
{
    int n = 0, k = 0;
    out[0] = 0;
    for (int i = 0; i < linattn_op_count(); i++)
        n += !strcmp(linattn_op_at(i)->entry, "forward");
    for (int i = 0; i < linattn_op_count(); i++) {
        const linattn_op_info *op = linattn_op_at(i);
        if (strcmp(op->entry, "forward")) continue;
        const size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", !k ? "" : k == n - 1 ? last : sep, op->name);
        k++;
    }
}

static void usage(FILE *f)
{
    char names[160];
    op_names(names, sizeof names, ",", ",");
    fprintf(f,
            "usage: " PROG " [--quick] [--op %s]\n"
            "       [--mode prefill,decode,context,onnx,serve] [--update-rule NAME]\n"
            "       [--context 64,256,1024,4096,32768,131072]\n"
            "       [--isa best|all|scalar,avx2,...] [--algo recurrent,chunk] [--backend cpu,ref,opencl]\n"
            "       [--T 512,4096,16384] [--B 1,8,64] [--prefill-B N] [--H N] [--K N] [--V N]\n"
            "       [--Hk N] [--Hq N] [--gate head|channel] [--strided]\n"
            "       [--dtype f32|f16|bf16] [--state-dtype f32|f16|bf16]\n"
            "       [--M N] [--S N] [--threads N] [--reps N] [--no-limits] [--csv FILE] [--svg FILE]\n"
            "       [--set NAME=VALUE ...] [--segments N|auto] [--devices N]\n"
            "See linattn-bench(1).\n", names);
}

/* What the operator table does not tell: one row per operator, read by
 * name; an operator without a row is timed all the same (0 GFLOP/s). */
typedef struct bench_row {
    const char *name;
    /* flops per token over all heads or lanes, with its algo column */
    double (*flops)(const int64_t *d, const char *algo, int cl); /* cl: OpenCL ran it */
    int fma;          /* compared with the FMA peak (elementwise), not sgemm */
    int no_decode;    /* its step is timed by --mode context only */
    const char *form; /* the algo column of its chunk form, or of its only form */
    const char *cl;   /* the algo of its OpenCL prefill rows */
} bench_row;

#define DK ((double)d['K' - 'A'])
#define DV ((double)d['V' - 'A'])
#define DH ((double)d['H' - 'A'])
#define DO ((double)d['O' - 'A'])
#define KALMAN_FLOPS 10.0 /* per lane and token, besides 2 reciprocals (linattn_kalman(3)) */
#define GKA_ITERS 30 /* the default of linattn_gka_opts */

/* per token: gdn/kla 4KV a value head (decay and delta write) and gla 2KV,
 * plus 2KV a read, one per output head (O = H unless query heads share a
 * state); the minimal counts, whatever the form */
static double fl_delta(const int64_t *d, const char *algo, int cl)
{
    (void)cl;
    (void)algo;
    return (DH * 4.0 + DO * 2.0) * DK * DV;
}
static double fl_gla(const int64_t *d, const char *algo, int cl)
{
    (void)cl;
    (void)algo;
    return (DH * 2.0 + DO * 2.0) * DK * DV;
}
/* gka: 2((iters + 2)K^2 + 2KV) for the recurrence and, for its chunk form,
 * the count of its matrix products (linattn_gka(3)) 2(iters(K^2 + 2CK) + K^2 + CK + C^2 + 2KV + CK + CV)
 * with the chunk size that ran: C = 64 on the CPU, 32 on OpenCL (its kernels'
 * chunks, GKA_CL_CHUNK) */
static double fl_gka(const int64_t *d, const char *algo, int cl)
{
    const double k = DK, v = DV, c = cl ? 32.0 : 64.0;
    if (strstr(algo, "chunk")) /* "chunk" or "auto:chunk" */
        return DH * (2.0 * (GKA_ITERS * (k * k + 2 * c * k) + k * k + c * k + c * c + 2 * k * v +
                            c * k + c * v));
    return DH * (2.0 * ((GKA_ITERS + 2.0) * k * k + 2.0 * k * v));
}
static double fl_kalman(const int64_t *d, const char *algo, int cl)
{
    (void)cl;
    (void)algo;
    return (double)d['M' - 'A'] * d['S' - 'A'] * KALMAN_FLOPS;
}
/* ela: S += psi v^T, phi^T S (F = K) */
static double fl_ela(const int64_t *d, const char *algo, int cl)
{
    (void)algo;
    (void)cl;
    return DH * 4.0 * DK * DV;
}
/* softmax, causal: (T+1)/2 keys a token */
static double fl_softmax(const int64_t *d, const char *algo, int cl)
{
    (void)cl;
    (void)algo;
    return DH * ((DK + DV) * ((double)d['T' - 'A'] + 1.0));
}

static const bench_row ROWS[] = {
    {"gdn", fl_delta, 0, 0, "chunk", "chunk"},
    {"kla", fl_delta, 0, 0, "chunk", "chunk"},
    {"gla", fl_gla, 0, 0, "chunk", "chunk"},
    {"gka", fl_gka, 0, 0, "chunk", "chunk"},
    {"kalman", fl_kalman, 1, 0, "scan", "auto"},
    {"ela", fl_ela, 0, 1, "chunk", "chunk"},
    {"softmax", fl_softmax, 0, 1, "blocked", "chunk"},
};

static const bench_row *row_of(const char *name)
{
    static const bench_row none = {NULL, NULL, 0, 0, "chunk", "chunk"};
    for (size_t i = 0; i < sizeof ROWS / sizeof *ROWS; i++)
        if (!strcmp(ROWS[i].name, name)) return &ROWS[i];
    return &none;
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
    if (linattn_ctx_create(&cfg, &ctx)) {
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

/* Median seconds of one call of op on ctx: a forward (prefill) over the
 * prefill shapes, or a decode step. */
static int time_op(const linattn_op_info *op, linattn_ctx *ctx, const int64_t *dims,
                   linattn_algo algo, long reps, double *sec, double *state_bytes)
{
    unsigned seed = 12345;
    bench_op s;
    int rc = bench_op_make(&s, ctx, op, dims, algo, 0, &seed);
    if (!rc)
        rc = strcmp(op->entry, "step") ? bench_time_once(bench_op_call, &s, reps, sec)
                                       : bench_time_repeated(bench_op_call, &s, reps, sec);
    *state_bytes = bench_op_state_bytes(&s);
    bench_op_free(&s);
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
        {"set", required_argument, 0, 'e'},    {"Hk", required_argument, 0, 'k'},
        {"Hq", required_argument, 0, 'Q'},     {"gate", required_argument, 0, 'g'},
        {"strided", no_argument, 0, 'd'},      {"dtype", required_argument, 0, 'y'},
        {"state-dtype", required_argument, 0, 'Y'},
        {"update-rule", required_argument, 0, 'u'}, {"devices", required_argument, 0, 'D'},
        {"segments", required_argument, 0, 'X'}, {0, 0, 0, 0}};
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
    o->la_rule = LINATTN_LA_GATED_DELTA;
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
        case 'k': bad |= tool_parse_int(optarg, 1, 1L << 20, &o->Hk); break;
        case 'Q': bad |= tool_parse_int(optarg, 1, 1L << 20, &o->Hq); break;
        case 'd': o->strided = 1; break;
        case 'D': bad |= tool_parse_int(optarg, 1, 64, &o->devices); break;
        case 'X': {
            long n;
            if (strcmp(optarg, "auto") && tool_parse_int(optarg, 0, 1L << 20, &n)) {
                bad = 1;
                break;
            }
            o->segments = optarg;
            setenv("LINATTN_SEGMENTS", optarg, 1); /* read by every forward call */
            break;
        }
        case 'y':
        case 'Y':
            if (tool_parse_dtype(optarg, c == 'y' ? &o->dtype : &o->sdtype)) {
                tool_error(PROG, "--%s %s: expected f32, f16 or bf16",
                           c == 'y' ? "dtype" : "state-dtype", optarg);
                exit(2);
            }
            break;
        case 'g':
            if (strcmp(optarg, "head") && strcmp(optarg, "channel")) {
                tool_error(PROG, "--gate %s: expected head or channel", optarg);
                exit(2);
            }
            o->channel = !strcmp(optarg, "channel");
            break;
        case 'K': bad |= tool_parse_int(optarg, 1, LINATTN_MAX_HEAD_DIM, &o->K); break;
        case 'V': bad |= tool_parse_int(optarg, 1, LINATTN_MAX_HEAD_DIM, &o->V); break;
        case 'M': bad |= tool_parse_int(optarg, 1, 1L << 24, &o->M); break;
        case 'S': bad |= tool_parse_int(optarg, 1, LINATTN_KALMAN_MAX_STATES, &o->S); break;
        case 't': bad |= tool_parse_int(optarg, 1, 4096, &o->threads); break;
        case 'r': bad |= tool_parse_int(optarg, 1, 64, &o->reps); break;
        case 'c': o->csv = optarg; break;
        case 's': o->svg = optarg; break;
        case 'n': o->limits = 0; break;
        case 'e':
            if (bench_op_set(optarg)) {
                tool_error(PROG, "--set %s: expected NAME=VALUE (an option of linattn_ops(3))",
                           optarg);
                exit(2);
            }
            break;
        case 'u':
            if (linattn_la_rule_parse(optarg, &o->la_rule)) {
                tool_error(PROG, "--update-rule %s: expected linear, gated, delta or gated_delta",
                           optarg);
                exit(2);
            }
            break;
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
        if (!linattn_op_find(o->ops.s[i], "forward")) {
            char names[160];
            op_names(names, sizeof names, ", ", " or ");
            tool_error(PROG, "--op %s: expected %s", o->ops.s[i], names);
            exit(2);
        }
    const long Hk = o->Hk ? o->Hk : o->H, Hq = o->Hq ? o->Hq : Hk;
    if (o->H % Hk || (Hq != Hk && Hq % o->H)) {
        tool_error(PROG, "--Hk %ld, --Hq %ld, --H %ld: key heads must divide --H, and query "
                   "heads be --Hk's or a multiple of --H (linattn_gdn(3))", Hk, Hq, o->H);
        exit(2);
    }
    for (int i = 0; i < o->ops.n && o->strided; i++)
        for (int e = 0; e < 2; e++) {
            const linattn_op_info *op = linattn_op_find(o->ops.s[i], e ? "step" : "forward");
            if (!bench_op_fusable(op)) {
                tool_error(PROG, "--strided: %s %s has no q, k and v of [.., heads, K|V] to view "
                           "in one fused array", op->name, op->entry);
                exit(2);
            }
        }
    const char *opnames[MAXL];
    for (int i = 0; i < o->ops.n; i++) opnames[i] = o->ops.s[i];
    const char *bad_set = bench_op_bad_set(opnames, o->ops.n);
    if (bad_set) {
        tool_error(PROG, "--set %s", bad_set);
        exit(2);
    }
    for (int i = 0; i < o->algos.n; i++)
        if (strcmp(o->algos.s[i], "recurrent") && strcmp(o->algos.s[i], "chunk") &&
            strcmp(o->algos.s[i], "auto")) {
            tool_error(PROG, "--algo %s: expected recurrent, chunk or auto", o->algos.s[i]);
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
            strcmp(o->modes.s[i], "context") && strcmp(o->modes.s[i], "onnx") &&
            strcmp(o->modes.s[i], "serve")) {
            tool_error(PROG, "--mode %s: expected prefill, decode, context, onnx or serve",
                       o->modes.s[i]);
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
    const linattn_op_info *ops[BENCH_CTX_MAXOPS];
    int nops = 0;
    int64_t L[16];
    list names;
    if (o->ops_set) names = o->ops;
    else split("gdn,kla,gka,kalman,ela,softmax", &names);
    for (int i = 0; i < names.n && nops < BENCH_CTX_MAXOPS; i++)
        if ((ops[nops] = linattn_op_find(names.s[i], "step"))) nops++;
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

/* --mode onnx: linattn_linear_attention on ONNX's packed tensors (benchla.c),
 * prefill over --T (B = --prefill-B, per --algo) and decode over --B, on
 * each backend and ISA; q_num_heads --Hq (default --H), kv_num_heads --H. */
static int run_onnx(const opts *o)
{
    const long Hq = o->Hq ? o->Hq : o->H;
    printf("# onnx: linattn_linear_attention (linattn_onnx(3)), update_rule %s, decay per %s;"
           " prefill from a zero state, decode with past_state (present_state in place)\n",
           linattn_la_rule_name(o->la_rule), o->channel ? "key channel" : "head");
    printf("%-7s %-7s %-7s %-9s %5s %6s %4s %4s %4s %4s %3s %10s %12s\n", "entry", "mode", "isa",
           "algo", "B", "T", "Hq", "Hkv", "K", "V", "thr", "median_ms", "tokens/s");
    for (int bk = 0; bk < o->backends.n; bk++) {
        const int one = strcmp(o->backends.s[bk], "cpu") != 0;
        for (int ii = 0; ii < (one ? 1 : o->isas.n); ii++) {
            linattn_ctx *ctx = make_ctx(o->backends.s[bk], o->isas.s[ii], o->threads);
            if (!ctx) return 1;
            const char *isa = one ? o->backends.s[bk] : o->isas.s[ii];
            const int thr = linattn_ctx_threads(ctx);
            for (int dec = 0; dec < 2; dec++) {
                const int shapes = dec ? o->Bdec.n : o->T.n;
                for (int si = 0; si < shapes; si++)
                    for (int ai = 0; ai < (dec ? 1 : o->algos.n); ai++) {
                        const char *an = dec ? "recurrent" : o->algos.s[ai];
                        const bench_la_shape s = {
                            dec ? o->Bdec.v[si] : o->Bpre, dec ? 1 : o->T.v[si], Hq, o->H,
                            o->K, o->V, o->la_rule, o->channel, dec,
                            strcmp(an, "chunk") ? LINATTN_ALGO_RECURRENT : LINATTN_ALGO_CHUNK};
                        double sec = 0;
                        if (bench_la_time(ctx, &s, o->reps, &sec)) {
                            tool_error(PROG, "onnx %s B=%ld T=%ld: %s", dec ? "decode" : "prefill",
                                       s.B, s.T, linattn_last_error());
                            linattn_ctx_destroy(ctx);
                            return 1;
                        }
                        printf("%-7s %-7s %-7s %-9s %5ld %6ld %4ld %4ld %4ld %4ld %3d %10.3f "
                               "%12.0f\n", "onnx", dec ? "decode" : "prefill", isa, an, s.B, s.T,
                               s.Hq, s.Hkv, s.K, s.V, thr, sec * 1e3, (double)(s.B * s.T) / sec);
                        fflush(stdout);
                    }
            }
            linattn_ctx_destroy(ctx);
        }
    }
    return 0;
}

/* --mode serve on each backend but ref (see benchserve.c), for the delta
 * operators of --op (gdn when none is). */
static int run_serve(const opts *o)
{
    static const char *const names[] = {"gdn", "kla", "gla"};
    for (int bk = 0; bk < o->backends.n; bk++) {
        if (!strcmp(o->backends.s[bk], "ref")) continue;
        for (int i = 0; i < 3; i++) {
            if (o->ops_set ? !has(&o->ops, names[i]) : i != 0) continue;
            linattn_ctx *ctx = make_ctx(o->backends.s[bk], NULL, o->threads);
            if (!ctx) return 1;
            const int rc = bench_serve(ctx, o->backends.s[bk], (linattn_delta_op)i, names[i],
                                       o->H, o->K, o->V, o->reps);
            linattn_ctx_destroy(ctx);
            if (rc) return 1;
        }
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
    if (o.segments) printf("# LINATTN_SEGMENTS=%s (linattn_segment(3))\n", o.segments);
    if (o.devices) { /* the split prefill alone */
        int src = 0;
        for (int i = 0; i < o.ops.n && !src; i++)
            for (int t = 0; t < o.T.n && !src; t++)
                src = bench_split(o.ops.s[i], o.Bpre, o.T.v[t], o.H, o.K, o.V, (int)o.devices,
                                  o.reps);
        return src;
    }
    bench_op_print_sets(stdout);
    bench_op_strided(o.strided);
    bench_op_dtypes(o.dtype, o.sdtype);
    if (o.dtype != LINATTN_F32 || o.sdtype != LINATTN_F32)
        printf("# element types: tensors %s, states %s (linattn(3), Half precision)\n",
               linattn_dtype_name(o.dtype), linattn_dtype_name(o.sdtype));
    for (int i = 0; i < o.ops.n && o.sdtype != LINATTN_F32; i++)
        if (linattn_op_find(o.ops.s[i], "forward")->f32_states)
            printf("# note: %s keeps float32 states (f32_states, linattn_ops(3)): its rows use "
                   "f32 states, not --state-dtype %s\n", o.ops.s[i], linattn_dtype_name(o.sdtype));
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
    int table = 0; /* any mode but context, onnx and serve */
    for (int m = 0; m < o.modes.n; m++)
        table |= strcmp(o.modes.s[m], "context") && strcmp(o.modes.s[m], "onnx") &&
                 strcmp(o.modes.s[m], "serve");
    if (table)
        printf("%-7s %-7s %-7s %-14s %5s %6s %-13s %4s %4s %-7s %-7s %-5s %-5s %3s %10s %12s %8s "
               "%7s %8s %6s\n", "op", "mode", "isa", "algo", "B", "T", "shape", "Hq", "Hk",
               "gate", "layout", "dtype", "state", "thr", "median_ms", "tokens/s", "GFLOP/s",
               "%peak", "GB/s", "%bw");

    int total = 0, done = 0;
    const int nbk = o.backends.n;
    for (int m = 0; m < o.modes.n; m++) {
        const int pre = !strcmp(o.modes.s[m], "prefill");
        const int shapes = pre ? o.T.n : o.Bdec.n;
        if (!strcmp(o.modes.s[m], "context") || !strcmp(o.modes.s[m], "onnx") ||
            !strcmp(o.modes.s[m], "serve"))
            continue;
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
        if (!strcmp(o.modes.s[m], "context") || !strcmp(o.modes.s[m], "onnx") ||
            !strcmp(o.modes.s[m], "serve"))
            continue;
        for (int si = 0; si < shapes && !rc; si++) {
            const long B = pre ? o.Bpre : o.Bdec.v[si], T = pre ? o.T.v[si] : 1;
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
                            const linattn_op_info *op =
                                linattn_op_find(o.ops.s[oi], pre ? "forward" : "step");
                            const bench_row *row = row_of(o.ops.s[oi]);
                            const int has_algo = /* the forward has forms to choose */
                                linattn_op_option_index(linattn_op_find(o.ops.s[oi], "forward"), "algo") >= 0;
                            if (!op || (!pre && row->no_decode)) continue; /* --mode context */
                            if (!has_algo && ai > 0) continue; /* one form */
                            snprintf(r->op, sizeof r->op, "%s", o.ops.s[oi]);
                            snprintf(r->mode, sizeof r->mode, "%s", pre ? "prefill" : "decode");
                            snprintf(r->isa, sizeof r->isa, "%s", ref ? "ref" : cl ? "opencl" : o.isas.s[ii]);
                            const double peak = cl ? cl_sgemm : row->fma ? fma : sgemm;
                            snprintf(r->algo, sizeof r->algo, "%s",
                                     ref ? "reference"
                                     : cl ? (pre ? row->cl : "recurrent")
                                     : pre ? o.algos.s[ai] : "recurrent");
                            int64_t dims[LINATTN_OP_LETTERS];
                            bench_op_sizes(dims, B, T, o.H, o.K, o.V, o.M, o.S);
                            bench_op_heads(dims, o.Hq, o.Hk, o.channel);
                            linattn_op_args none;
                            linattn_op_args_init(op, &none);
                            linattn_op_dims(op, &none, dims); /* J, Q, O for the counts */
                            r->B = B; r->T = T;
                            r->Hq = bench_op_uses(op, 'Q') ? (long)dims['Q' - 'A'] : 0;
                            r->Hk = bench_op_uses(op, 'J') ? (long)dims['J' - 'A'] : 0;
                            snprintf(r->gate, sizeof r->gate, "%s",
                                     !bench_op_uses(op, 'G') ? "-" : o.channel ? "channel" : "head");
                            snprintf(r->layout, sizeof r->layout, "%s",
                                     o.strided ? "strided" : "contig");
                            int states = 0;
                            for (int ti = 0; ti < op->ntensors; ti++)
                                states |= bench_op_is_state(&op->tensors[ti]);
                            snprintf(r->dtype, sizeof r->dtype, "%s", linattn_dtype_name(o.dtype));
                            snprintf(r->state, sizeof r->state, "%s",
                                     states ? linattn_dtype_name(bench_op_state_dtype(op)) : "-");
                            r->H = bench_op_uses(op, 'H') ? o.H : 0;
                            r->K = bench_op_uses(op, 'K') ? o.K : 0;
                            r->V = bench_op_uses(op, 'V') ? o.V : 0;
                            r->M = bench_op_uses(op, 'M') ? o.M : 0;
                            r->S = bench_op_uses(op, 'S') ? o.S : 0;
                            r->threads = threads;
                            char what[96];
                            snprintf(what, sizeof what, "%s %s %s %s B=%ld T=%ld", r->op, r->mode,
                                     r->isa, r->algo, B, T);
                            progress(done, total, what);
                            const linattn_algo algo =
                                pre && !strcmp(r->algo, "chunk") ? LINATTN_ALGO_CHUNK
                                : !strcmp(r->algo, "auto")       ? LINATTN_ALGO_AUTO
                                                                 : LINATTN_ALGO_RECURRENT;
                            if (pre && (!has_algo || algo == LINATTN_ALGO_CHUNK))
                                snprintf(r->algo, sizeof r->algo, "%s", row->form);
                            double state_bytes = 0;
                            const int st = time_op(op, ctx, dims, algo, o.reps, &r->sec, &state_bytes);
                            done++;
                            if (st) {
                                if (one || algo != LINATTN_ALGO_CHUNK) {
                                    tool_error(PROG, "%s: %s", what, linattn_last_error());
                                    rc = 1;
                                }
                                continue; /* chunk form not built: nothing to report */
                            }
                            /* the algo column names what ran (auto's choice, OpenCL's form) */
                            if (!ref && *linattn_ctx_last_form(ctx))
                                snprintf(r->algo, sizeof r->algo, "%s%s",
                                         algo == LINATTN_ALGO_AUTO && pre && has_algo ? "auto:" : "",
                                         linattn_ctx_last_form(ctx));
                            const double tokens = (double)B * T;
                            r->tok_s = tokens / r->sec;
                            r->gflops = row->flops ? tokens * row->flops(dims, r->algo, cl) / r->sec * 1e-9 : 0;
                            /* decode reads and writes its state once a step */
                            r->gbs = pre ? 0 : 2.0 * state_bytes / r->sec * 1e-9;
                            char shape[32];
                            bench_op_shape_name(op, dims, shape, sizeof shape);
                            char hq[16] = "-", hk[16] = "-";
                            if (r->Hq) snprintf(hq, sizeof hq, "%ld", r->Hq);
                            if (r->Hk) snprintf(hk, sizeof hk, "%ld", r->Hk);
                            printf("%-7s %-7s %-7s %-14s %5ld %6ld %-13s %4s %4s %-7s %-7s %-5s "
                                   "%-5s %3ld %10.3f %12.0f %8.1f %6.1f%% %8.1f %5.1f%%\n",
                                   r->op, r->mode, r->isa, r->algo, B, T, shape, hq, hk, r->gate,
                                   r->layout, r->dtype, r->state, threads,
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
        }
    }
    progress(total, total, "");
    int ctx_mode = 0, onnx_mode = 0;
    for (int m = 0; m < o.modes.n; m++) ctx_mode |= !strcmp(o.modes.s[m], "context");
    for (int m = 0; m < o.modes.n; m++) onnx_mode |= !strcmp(o.modes.s[m], "onnx");
    if (onnx_mode && !rc) rc = run_onnx(&o);
    bench_op_strided(0); /* --mode context: contiguous q, k, v, float32 */
    bench_op_dtypes(LINATTN_F32, LINATTN_F32);
    if (ctx_mode && !rc) rc = run_context(&o);
    for (int m = 0; m < o.modes.n; m++)
        if (!strcmp(o.modes.s[m], "serve") && !rc) rc = run_serve(&o);

    if (o.csv) {
        FILE *f = fopen(o.csv, "w");
        if (!f) {
            tool_error(PROG, "%s: cannot write", o.csv);
            rc = 1;
        } else {
            fprintf(f, "op,mode,isa,algo,B,T,H,K,V,M,S,threads,median_s,tokens_per_s,gflops,"
                       "peak_gflops,pct_peak,gbs,bw_gbs,pct_bw,Hq,Hk,gate,layout,dtype,"
                       "state_dtype\n");
            for (int i = 0; i < nres; i++) {
                const result *r = &res[i];
                fprintf(f, "%s,%s,%s,%s,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.6g,%.6g,%.6g,%.6g,%.4g,"
                           "%.6g,%.6g,%.4g,%ld,%ld,%s,%s,%s,%s\n",
                        r->op, r->mode, r->isa, r->algo, r->B, r->T, r->H, r->K, r->V, r->M, r->S,
                        r->threads,
                        r->sec, r->tok_s, r->gflops, r->peak, r->peak > 0 ? 100 * r->gflops / r->peak : 0,
                        r->gbs, r->bwl, r->bwl > 0 && r->gbs > 0 ? 100 * r->gbs / r->bwl : 0,
                        r->Hq, r->Hk, r->gate, r->layout, r->dtype, r->state);
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
