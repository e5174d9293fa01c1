/* linattn-run - run one operator on .npy files (see linattn-run(1)).
 * Thin: parse arguments, load inputs, call the API, save outputs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "toolutil.h"

#define PROG "linattn-run"
#define NIN 8
#define NOUT 3
#define GKA_MAX_ITERS 1000 /* as linattn_gka_opts.iters allows */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " OP --in INDIR --out OUTDIR [--backend auto|ref|cpu|opencl]\n"
            "       [--threads N] [--scale S] [--chunk C] [--algo auto|recurrent|chunk]\n"
            "       gdn, kla, gla: [--eps E]    gka: [--ridge A] [--iters N]\n"
            "OP is gdn, kla, gla or gka.  Inputs are INDIR/<name>.npy (float32, C order):\n"
            "  gdn: q k v g beta [h0]    kla: q k v g eta [h0]    gla: q k v g [h0]\n"
            "  gka: q k v g beta alpha [h0_kk h0_kv]\n"
            "Outputs: OUTDIR/o.npy and OUTDIR/ht.npy (gka: ht_kk.npy ht_kv.npy).\n"
            "See linattn-run(1).\n");
}

/* ---- operators ---------------------------------------------------------- */

/* An operator: its input files, in the order the run functions read them;
 * in[0..nreq) are required, the rest optional. */
typedef struct opdef {
    const char *name;
    int gka;              /* 1: gka; 0: the delta family, with dop */
    linattn_delta_op dop;
    int nreq;
    const char *in[NIN];
} opdef;

static const opdef OPS[] = {
    {.name = "gdn", .dop = LINATTN_OP_GDN, .nreq = 5, .in = {"q", "k", "v", "g", "beta", "h0"}},
    {.name = "kla", .dop = LINATTN_OP_KLA, .nreq = 5, .in = {"q", "k", "v", "g", "eta", "h0"}},
    {.name = "gla", .dop = LINATTN_OP_GLA, .nreq = 4, .in = {"q", "k", "v", "g", "h0"}},
    {.name = "gka", .gka = 1, .nreq = 6,
     .in = {"q", "k", "v", "g", "beta", "alpha", "h0_kk", "h0_kv"}},
};

static const opdef *find_op(const char *name)
{
    for (size_t i = 0; i < sizeof OPS / sizeof *OPS; i++)
        if (!strcmp(OPS[i].name, name)) return &OPS[i];
    return NULL;
}

/* ---- arguments ---------------------------------------------------------- */

typedef struct args {
    const char *indir, *outdir, *op;
    linattn_config cfg;
    linattn_delta_opts delta;
    linattn_gka_opts gka;
    int algo_set, chunk_set;
    const char *delta_only, *gka_only; /* an option given that only they take */
} args;

static int bad_value(const char *opt, const char *val, const char *expected)
{
    tool_error(PROG, "%s %s: expected %s", opt, val, expected);
    return 2;
}

static int bad_int(const char *opt, const char *val, long hi)
{
    tool_error(PROG, "%s %s: expected an integer 1..%ld", opt, val, hi);
    return 2;
}

/* --chunk and --algo, which every operator takes. */
static int parse_algo_option(args *a, int c, const char *val)
{
    long lv;
    if (c == 'c') {
        if (tool_parse_int(val, 1, LINATTN_MAX_CHUNK, &lv))
            return bad_int("--chunk", val, LINATTN_MAX_CHUNK);
        a->delta.chunk = a->gka.chunk = (int)lv;
        a->chunk_set = 1;
    } else {
        if (tool_parse_algo(val, &a->delta.algo))
            return bad_value("--algo", val, "auto, recurrent or chunk");
        a->gka.algo = a->delta.algo;
        a->algo_set = 1;
    }
    return 0;
}

/* Options of one family: --eps (gdn, kla, gla); --ridge, --iters (gka). */
static int parse_family_option(args *a, int c, const char *val)
{
    long lv;
    if (c == 'e') {
        if (tool_parse_float(val, &a->delta.eps) || a->delta.eps < 0.0f)
            return bad_value("--eps", val, "a finite number >= 0");
        a->delta_only = "--eps";
    } else if (c == 'r') {
        if (tool_parse_float(val, &a->gka.ridge) || !(a->gka.ridge > 0.0f))
            return bad_value("--ridge", val, "a finite number > 0");
        a->gka_only = "--ridge";
    } else {
        if (tool_parse_int(val, 1, GKA_MAX_ITERS, &lv))
            return bad_int("--iters", val, GKA_MAX_ITERS);
        a->gka.iters = (int)lv;
        a->gka_only = "--iters";
    }
    return 0;
}

/* One option that every operator takes, or one of a family; 0 or exit 2. */
static int parse_option(args *a, int c, const char *val)
{
    long lv;
    switch (c) {
    case 'i': a->indir = val; return 0;
    case 'o': a->outdir = val; return 0;
    case 'b':
        if (tool_parse_backend(val, &a->cfg.backend))
            return bad_value("--backend", val, "auto, ref, cpu or opencl");
        return 0;
    case 't':
        if (tool_parse_int(val, 1, 4096, &lv)) return bad_int("--threads", val, 4096);
        a->cfg.threads = (int)lv;
        return 0;
    case 's':
        if (tool_parse_float(val, &a->delta.scale) || a->delta.scale == 0.0f)
            return bad_value("--scale", val, "a finite nonzero number");
        a->gka.scale = a->delta.scale;
        return 0;
    case 'c': case 'a': return parse_algo_option(a, c, val);
    case 'e': case 'r': case 'n': return parse_family_option(a, c, val);
    default: usage(stderr); return 2;
    }
}

/* Returns -1 to go on, else the exit status (--help, --version, errors). */
static int parse_args(int argc, char **argv, args *a)
{
    static const struct option lo[] = {
        {"in", required_argument, 0, 'i'},      {"out", required_argument, 0, 'o'},
        {"backend", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"scale", required_argument, 0, 's'},   {"eps", required_argument, 0, 'e'},
        {"chunk", required_argument, 0, 'c'},   {"algo", required_argument, 0, 'a'},
        {"ridge", required_argument, 0, 'r'},   {"iters", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c, rc;
    memset(a, 0, sizeof *a);
    linattn_config_init(&a->cfg);
    linattn_delta_opts_init(&a->delta);
    linattn_gka_opts_init(&a->gka);
    while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c == 'V') {
            printf(PROG " (linattn) %s\n", linattn_version_string());
            return 0;
        }
        if ((rc = parse_option(a, c, optarg))) return rc;
    }
    if (optind + 1 != argc || !a->indir || !a->outdir) {
        usage(stderr);
        return 2;
    }
    a->op = argv[optind];
    if (a->chunk_set && !a->algo_set) a->delta.algo = a->gka.algo = LINATTN_ALGO_CHUNK;
    return -1;
}

/* The options given must belong to the operator's family; 0 or exit 2. */
static int check_family(const args *a, const opdef *op)
{
    if (op->gka && a->delta_only) {
        tool_error(PROG, "%s: applies to gdn, kla and gla, not gka", a->delta_only);
        return 2;
    }
    if (!op->gka && a->gka_only) {
        tool_error(PROG, "%s: applies to gka only, not %s", a->gka_only, op->name);
        return 2;
    }
    return 0;
}

/* ---- inputs and outputs ------------------------------------------------- */

typedef struct inputs {
    linattn_array arr[NIN];
    int n;
} inputs;

static int load(inputs *in, const opdef *op, const char *dir)
{
    char path[4096];
    for (in->n = 0; in->n < NIN && op->in[in->n]; in->n++) {
        const int i = in->n;
        if (tool_npy_path(path, sizeof path, dir, op->in[i])) {
            tool_error(PROG, "%s: path too long", dir);
            return -1;
        }
        if (i >= op->nreq && !tool_exists(path)) continue;
        if (linattn_npy_load(path, &in->arr[i])) {
            tool_error(PROG, "%s", linattn_last_error());
            return -1;
        }
    }
    return 0;
}

/* Input i as a tensor (absent: the absent tensor). */
static linattn_tensor input(const inputs *in, int i)
{
    const linattn_array *a = &in->arr[i];
    linattn_tensor t = linattn_tensor_none();
    if (a->data && linattn_array_tensor(a, &t)) {
        /* rank above 4: keep the pointer and report the rank; the operator's
         * own check names the argument */
        t.data = a->data;
        t.ndim = a->ndim;
    }
    return t;
}

typedef struct dims { int64_t B, T, H, K, V; } dims;

/* The sizes the outputs follow, from q and v; the operator checks every input. */
static int get_dims(const inputs *in, dims *d)
{
    const linattn_tensor q = input(in, 0), v = input(in, 2);
    if (q.ndim != 4 || v.ndim != 4) {
        tool_error(PROG, "q and v must be 4-dimensional ([B,T,H,K] and [B,T,H,V])");
        return -1;
    }
    *d = (dims){q.shape[0], q.shape[1], q.shape[2], q.shape[3], v.shape[3]};
    if (d->B <= 0 || d->T <= 0 || d->H <= 0 || d->K <= 0 || d->V <= 0 ||
        d->K > LINATTN_MAX_HEAD_DIM || d->V > LINATTN_MAX_HEAD_DIM) {
        tool_error(PROG, "q/v: unsupported shape");
        return -1;
    }
    return 0;
}

typedef struct outputs {
    const char *names[NOUT];
    int64_t shape[NOUT][4];
    float *data[NOUT];
    int n;
} outputs;

static void plan_output(outputs *out, const char *name, int64_t d0, int64_t d1, int64_t d2,
                        int64_t d3)
{
    const int i = out->n++;
    out->names[i] = name;
    out->shape[i][0] = d0;
    out->shape[i][1] = d1;
    out->shape[i][2] = d2;
    out->shape[i][3] = d3;
}

/* o, then the final state: ht (delta family) or ht_kk and ht_kv (gka). */
static int alloc_outputs(outputs *out, const opdef *op, const dims *d)
{
    plan_output(out, "o", d->B, d->T, d->H, d->V);
    if (op->gka) {
        plan_output(out, "ht_kk", d->B, d->H, d->K, d->K);
        plan_output(out, "ht_kv", d->B, d->H, d->K, d->V);
    } else {
        plan_output(out, "ht", d->B, d->H, d->K, d->V);
    }
    for (int i = 0; i < out->n; i++) {
        const int64_t *s = out->shape[i];
        if (!(out->data[i] = malloc(sizeof(float) * (size_t)(s[0] * s[1] * s[2] * s[3])))) {
            tool_error(PROG, "out of memory");
            return -1;
        }
    }
    return 0;
}

static linattn_tensor output(const outputs *out, int i)
{
    const int64_t *s = out->shape[i];
    return linattn_tensor_4d(out->data[i], s[0], s[1], s[2], s[3]);
}

static int save_outputs(const outputs *out, const char *dir)
{
    char path[4096];
    if (tool_mkdir(dir)) {
        tool_error(PROG, "%s: cannot create output directory", dir);
        return -1;
    }
    for (int i = 0; i < out->n; i++)
        if (tool_npy_path(path, sizeof path, dir, out->names[i]) ||
            linattn_npy_save(path, out->data[i], 4, out->shape[i])) {
            tool_error(PROG, "%s", linattn_last_error());
            return -1;
        }
    return 0;
}

/* ---- running ------------------------------------------------------------ */

static int run_delta(linattn_ctx *ctx, const opdef *op, const inputs *in, const outputs *out,
                     const linattn_delta_opts *opts)
{
    linattn_delta_io io;
    memset(&io, 0, sizeof io);
    io.q = input(in, 0);
    io.k = input(in, 1);
    io.v = input(in, 2);
    io.g = input(in, 3);
    if (op->nreq > 4) io.beta = input(in, 4); /* gdn's beta, kla's eta */
    io.h0 = input(in, op->nreq);
    io.o = output(out, 0);
    io.ht = output(out, 1);
    return linattn_delta_forward(ctx, op->dop, &io, opts);
}

static int run_gka(linattn_ctx *ctx, const inputs *in, const outputs *out,
                   const linattn_gka_opts *opts)
{
    linattn_gka_io io;
    memset(&io, 0, sizeof io);
    io.q = input(in, 0);
    io.k = input(in, 1);
    io.v = input(in, 2);
    io.g = input(in, 3);
    io.beta = input(in, 4);
    io.alpha = input(in, 5);
    io.h0_kk = input(in, 6); /* half a pair is the operator's error */
    io.h0_kv = input(in, 7);
    io.o = output(out, 0);
    io.ht_kk = output(out, 1);
    io.ht_kv = output(out, 2);
    return linattn_gka_forward(ctx, &io, opts);
}

/* Load, run, save; 0 or -1 (the message printed).  Nothing is written
 * unless the operator succeeds. */
static int run(const args *a, const opdef *op)
{
    inputs in;
    outputs out;
    dims d;
    linattn_ctx *ctx = NULL;
    int rc = -1;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    if (load(&in, op, a->indir)) goto done;
    if (linattn_ctx_create(&ctx, &a->cfg)) {
        tool_error(PROG, "%s", linattn_last_error());
        goto done;
    }
    if (get_dims(&in, &d) || alloc_outputs(&out, op, &d)) goto done;
    if (op->gka ? run_gka(ctx, &in, &out, &a->gka) : run_delta(ctx, op, &in, &out, &a->delta)) {
        tool_error(PROG, "%s: %s", op->name, linattn_last_error());
        goto done;
    }
    rc = save_outputs(&out, a->outdir);
done:
    for (int i = 0; i < NIN; i++) linattn_array_free(&in.arr[i]);
    for (int i = 0; i < out.n; i++) free(out.data[i]);
    linattn_ctx_destroy(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    const opdef *op = find_op(a.op);
    if (!op) {
        tool_error(PROG, "unknown operator '%s' (expected gdn, kla, gla or gka)", a.op);
        return 2;
    }
    if (check_family(&a, op)) return 2;
    return run(&a, op) ? 1 : 0;
}
