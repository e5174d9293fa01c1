/* linattn-run - run one operator on .npy files (see linattn-run(1)).
 * Thin: parse arguments, load inputs, call the API, save outputs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "toolutil.h"

#define PROG "linattn-run"
#define NIN 8
#define NOUT 4
#define GKA_MAX_ITERS 1000 /* as linattn_gka_opts.iters allows */
#define MAX_PIECE 1000000000L /* kalman --chunk: tokens per piece of the scan */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " OP --in INDIR --out OUTDIR [--backend auto|ref|cpu|opencl]\n"
            "       [--threads N] [--chunk C] [--algo auto|recurrent|chunk]\n"
            "       gdn, kla, gla: [--scale S] [--eps E]    gka: [--scale S] [--ridge A] [--iters N]\n"
            "       ela: [--feature exp|sqdist_sum|sqdist_sub|elu1|identity] [--bidirectional]\n"
            "       softmax: [--scale S]\n"
            "OP is gdn, kla, gla, gka, kalman, ela or softmax.  Inputs are INDIR/<name>.npy\n"
            "(float32, C order):\n"
            "  gdn: q k v g beta [h0]    kla: q k v g eta [h0]    gla: q k v g [h0]\n"
            "  gka: q k v g beta alpha [h0_kk h0_kv]\n"
            "  kalman: v lam_v k q decay noise [lam0 eta0]    ela: q k v [s0 z0]\n"
            "  softmax: q k v\n"
            "Outputs: OUTDIR/o.npy and OUTDIR/ht.npy (gka: ht_kk.npy ht_kv.npy;\n"
            "kalman: y.npy yvar.npy lamT.npy etaT.npy; ela: o st zt; softmax: o).\n"
            "See linattn-run(1).\n");
}

/* ---- operators ---------------------------------------------------------- */

/* Operator families: which options apply, how outputs are shaped and run. */
enum { FAM_DELTA = 1, FAM_GKA = 2, FAM_KALMAN = 4, FAM_ELA = 8, FAM_SOFTMAX = 16 };
#define FAM_ALL (FAM_DELTA | FAM_GKA | FAM_KALMAN | FAM_ELA | FAM_SOFTMAX)

/* An operator: its input files, in the order the run functions read them;
 * in[0..nreq) are required, the rest optional. */
typedef struct opdef {
    const char *name;
    int fam;
    linattn_delta_op dop;
    int nreq;
    const char *in[NIN];
} opdef;

static const opdef OPS[] = {
    {.name = "gdn", .fam = FAM_DELTA, .dop = LINATTN_OP_GDN, .nreq = 5,
     .in = {"q", "k", "v", "g", "beta", "h0"}},
    {.name = "kla", .fam = FAM_DELTA, .dop = LINATTN_OP_KLA, .nreq = 5,
     .in = {"q", "k", "v", "g", "eta", "h0"}},
    {.name = "gla", .fam = FAM_DELTA, .dop = LINATTN_OP_GLA, .nreq = 4,
     .in = {"q", "k", "v", "g", "h0"}},
    {.name = "gka", .fam = FAM_GKA, .nreq = 6,
     .in = {"q", "k", "v", "g", "beta", "alpha", "h0_kk", "h0_kv"}},
    {.name = "kalman", .fam = FAM_KALMAN, .nreq = 6,
     .in = {"v", "lam_v", "k", "q", "decay", "noise", "lam0", "eta0"}},
    {.name = "ela", .fam = FAM_ELA, .nreq = 3, .in = {"q", "k", "v", "s0", "z0"}},
    {.name = "softmax", .fam = FAM_SOFTMAX, .nreq = 3, .in = {"q", "k", "v"}},
};

static const opdef *find_op(const char *name)
{
    for (size_t i = 0; i < sizeof OPS / sizeof *OPS; i++)
        if (!strcmp(OPS[i].name, name)) return &OPS[i];
    return NULL;
}

/* ---- arguments ---------------------------------------------------------- */

#define MAX_GIVEN 16
typedef struct args {
    const char *indir, *outdir, *op;
    linattn_config cfg;
    linattn_delta_opts delta;
    linattn_gka_opts gka;
    linattn_kalman_opts kalman;
    linattn_ela_opts ela;
    linattn_softmax_opts softmax;
    int algo_set, chunk_set;
    long chunk;
    /* the options given that not every family takes, with their families */
    int ngiven;
    const char *given[MAX_GIVEN];
    int given_fams[MAX_GIVEN];
} args;

static void note_given(args *a, const char *opt, int fams)
{
    if (a->ngiven < MAX_GIVEN) {
        a->given[a->ngiven] = opt;
        a->given_fams[a->ngiven++] = fams;
    }
}

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

/* --chunk and --algo, which every operator takes (the chunk range is
 * checked against the operator's once it is known). */
static int parse_algo_option(args *a, int c, const char *val)
{
    if (c == 'c') {
        if (tool_parse_int(val, 1, MAX_PIECE, &a->chunk))
            return bad_value("--chunk", val, "an integer 1..1024 (kalman: 1..1000000000)");
        a->chunk_set = 1;
    } else {
        if (tool_parse_algo(val, &a->delta.algo))
            return bad_value("--algo", val, "auto, recurrent or chunk");
        a->gka.algo = a->kalman.algo = a->ela.algo = a->delta.algo;
        a->algo_set = 1;
        note_given(a, "--algo", FAM_ALL & ~FAM_SOFTMAX);
    }
    return 0;
}

/* Options of one family: --eps (gdn, kla, gla); --ridge, --iters (gka);
 * --feature, --bidirectional (ela). */
static int parse_family_option(args *a, int c, const char *val)
{
    long lv;
    if (c == 'f') {
        if (linattn_ela_feature_parse(val, &a->ela.feature))
            return bad_value("--feature", val, "exp, sqdist_sum, sqdist_sub, elu1 or identity");
        note_given(a, "--feature", FAM_ELA);
    } else if (c == 'd') {
        a->ela.bidirectional = 1;
        note_given(a, "--bidirectional", FAM_ELA);
    } else if (c == 'e') {
        if (tool_parse_float(val, &a->delta.eps) || a->delta.eps < 0.0f)
            return bad_value("--eps", val, "a finite number >= 0");
        note_given(a, "--eps", FAM_DELTA);
    } else if (c == 'r') {
        if (tool_parse_float(val, &a->gka.ridge) || !(a->gka.ridge > 0.0f))
            return bad_value("--ridge", val, "a finite number > 0");
        note_given(a, "--ridge", FAM_GKA);
    } else {
        if (tool_parse_int(val, 1, GKA_MAX_ITERS, &lv))
            return bad_int("--iters", val, GKA_MAX_ITERS);
        a->gka.iters = (int)lv;
        note_given(a, "--iters", FAM_GKA);
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
        a->gka.scale = a->softmax.scale = a->delta.scale;
        note_given(a, "--scale", FAM_DELTA | FAM_GKA | FAM_SOFTMAX);
        return 0;
    case 'c': case 'a': return parse_algo_option(a, c, val);
    case 'e': case 'r': case 'n': case 'f': case 'd': return parse_family_option(a, c, val);
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
        {"feature", required_argument, 0, 'f'}, {"bidirectional", no_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c, rc;
    memset(a, 0, sizeof *a);
    linattn_config_init(&a->cfg);
    linattn_delta_opts_init(&a->delta);
    linattn_gka_opts_init(&a->gka);
    linattn_kalman_opts_init(&a->kalman);
    linattn_ela_opts_init(&a->ela);
    linattn_softmax_opts_init(&a->softmax);
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
    if (a->chunk_set && !a->algo_set)
        a->delta.algo = a->gka.algo = a->kalman.algo = a->ela.algo = LINATTN_ALGO_CHUNK;
    return -1;
}

static const char *family_ops(int fams)
{
    static char buf[96];
    buf[0] = 0;
    for (size_t i = 0; i < sizeof OPS / sizeof *OPS; i++)
        if (OPS[i].fam & fams)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? ", " : "",
                     OPS[i].name);
    return buf;
}

/* The options given must belong to the operator's family, --chunk within
 * its range; 0 or exit 2. */
static int check_family(args *a, const opdef *op)
{
    for (int i = 0; i < a->ngiven; i++)
        if (!(a->given_fams[i] & op->fam)) {
            tool_error(PROG, "%s: applies to %s, not %s", a->given[i],
                       family_ops(a->given_fams[i]), op->name);
            return 2;
        }
    if (a->chunk_set) {
        const long hi = op->fam == FAM_KALMAN ? MAX_PIECE : LINATTN_MAX_CHUNK;
        if (a->chunk > hi) {
            char v[32];
            snprintf(v, sizeof v, "%ld", a->chunk);
            return bad_int("--chunk", v, hi);
        }
        a->delta.chunk = a->gka.chunk = a->kalman.chunk = a->ela.chunk = (int)a->chunk;
        a->softmax.block = (int)a->chunk; /* softmax: the block of its forward */
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

typedef struct outputs {
    const char *names[NOUT];
    int ndim[NOUT];
    int64_t shape[NOUT][4];
    float *data[NOUT];
    int n;
} outputs;

static void plan_output(outputs *out, const char *name, int ndim, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3)
{
    const int i = out->n++;
    out->names[i] = name;
    out->ndim[i] = ndim;
    out->shape[i][0] = d0;
    out->shape[i][1] = d1;
    out->shape[i][2] = d2;
    out->shape[i][3] = d3;
}

/* The outputs' shapes follow two inputs (x [lead.., X], y [lead.., Y]):
 * q and v for the attention families, v and k for kalman.  Only the sizes
 * the outputs need are checked here; the operator checks every input. */
static int plan_outputs(outputs *out, const opdef *op, const inputs *in, const args *a)
{
    const int kal = op->fam == FAM_KALMAN, nd = kal ? 3 : 4;
    const linattn_tensor x = input(in, 0), y = input(in, 2); /* q, v or v, k */
    if (x.ndim != nd || y.ndim != nd) {
        tool_error(PROG, kal ? "v and k must be 3-dimensional ([B,T,M] and [B,T,S])"
                             : "q and v must be 4-dimensional ([B,T,H,K] and [B,T,H,V])");
        return -1;
    }
    for (int d = 0; d < nd; d++)
        if (x.shape[d] <= 0 || y.shape[d] <= 0) {
            tool_error(PROG, "%s: unsupported shape", kal ? "v/k" : "q/v");
            return -1;
        }
    if (kal) { /* y, yvar [B,T,M]; lamT, etaT [B,M,S] */
        const int64_t B = x.shape[0], T = x.shape[1], M = x.shape[2], S = y.shape[2];
        if (S > LINATTN_KALMAN_MAX_STATES) {
            tool_error(PROG, "k: %lld states (at most %d)", (long long)S,
                       LINATTN_KALMAN_MAX_STATES);
            return -1;
        }
        plan_output(out, "y", 3, B, T, M, 1);
        plan_output(out, "yvar", 3, B, T, M, 1);
        plan_output(out, "lamT", 3, B, M, S, 1);
        plan_output(out, "etaT", 3, B, M, S, 1);
        return 0;
    }
    const int64_t B = x.shape[0], T = x.shape[1], H = x.shape[2], K = x.shape[3], V = y.shape[3];
    if (K > LINATTN_MAX_HEAD_DIM || V > LINATTN_MAX_HEAD_DIM) {
        tool_error(PROG, "q/v: unsupported shape");
        return -1;
    }
    plan_output(out, "o", 4, B, T, H, V);
    if (op->fam == FAM_SOFTMAX) return 0;
    if (op->fam == FAM_ELA) {
        const int64_t F = linattn_ela_feature_dim(a->ela.feature, K);
        plan_output(out, "st", 4, B, H, F, V);
        plan_output(out, "zt", 3, B, H, F, 1);
        return 0;
    }
    if (op->fam == FAM_GKA) {
        plan_output(out, "ht_kk", 4, B, H, K, K);
        plan_output(out, "ht_kv", 4, B, H, K, V);
    } else {
        plan_output(out, "ht", 4, B, H, K, V);
    }
    return 0;
}

static int alloc_outputs(outputs *out)
{
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
    linattn_tensor t = linattn_tensor_4d(out->data[i], s[0], s[1], s[2], s[3]);
    t.ndim = out->ndim[i];
    return t;
}

/* All outputs or none (see tool_save_outputs). */
static int save_outputs(const outputs *out, const char *dir)
{
    tool_output o[NOUT];
    for (int i = 0; i < out->n; i++)
        o[i] = (tool_output){out->names[i], out->data[i], out->ndim[i], out->shape[i]};
    return tool_save_outputs(PROG, dir, o, out->n);
}

/* ---- running ------------------------------------------------------------ */

static int run_delta(linattn_ctx *ctx, const opdef *op, const inputs *in, const outputs *out,
                     const args *a)
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
    return linattn_delta_forward(ctx, op->dop, &io, &a->delta);
}

static int run_gka(linattn_ctx *ctx, const opdef *op, const inputs *in, const outputs *out,
                   const args *a)
{
    linattn_gka_io io;
    (void)op;
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
    return linattn_gka_forward(ctx, &io, &a->gka);
}

static int run_kalman(linattn_ctx *ctx, const opdef *op, const inputs *in, const outputs *out,
                      const args *a)
{
    linattn_kalman_io io;
    (void)op;
    memset(&io, 0, sizeof io);
    io.v = input(in, 0);
    io.lam_v = input(in, 1);
    io.k = input(in, 2);
    io.q = input(in, 3);
    io.decay = input(in, 4);
    io.noise = input(in, 5);
    io.lam0 = input(in, 6); /* half a pair is the operator's error */
    io.eta0 = input(in, 7);
    io.y = output(out, 0);
    io.yvar = output(out, 1);
    io.lamT = output(out, 2);
    io.etaT = output(out, 3);
    return linattn_kalman_forward(ctx, &io, &a->kalman);
}

static int run_ela(linattn_ctx *ctx, const opdef *op, const inputs *in, const outputs *out,
                   const args *a)
{
    linattn_ela_io io;
    (void)op;
    memset(&io, 0, sizeof io);
    io.q = input(in, 0);
    io.k = input(in, 1);
    io.v = input(in, 2);
    io.s0 = input(in, 3); /* half a pair is the operator's error */
    io.z0 = input(in, 4);
    io.o = output(out, 0);
    io.st = output(out, 1);
    io.zt = output(out, 2);
    return linattn_ela_forward(ctx, &io, &a->ela);
}

static int run_softmax(linattn_ctx *ctx, const opdef *op, const inputs *in,
                       const outputs *out, const args *a)
{
    linattn_softmax_io io;
    (void)op;
    memset(&io, 0, sizeof io);
    io.q = input(in, 0);
    io.k = input(in, 1);
    io.v = input(in, 2);
    io.o = output(out, 0);
    return linattn_softmax_forward(ctx, &io, &a->softmax);
}

typedef int (*run_fn)(linattn_ctx *, const opdef *, const inputs *, const outputs *,
                      const args *);

static run_fn runner(const opdef *op)
{
    switch (op->fam) {
    case FAM_KALMAN: return run_kalman;
    case FAM_GKA: return run_gka;
    case FAM_ELA: return run_ela;
    case FAM_SOFTMAX: return run_softmax;
    default: return run_delta;
    }
}

/* Load, run, save; 0 or -1 (the message printed).  Nothing is written
 * unless the operator succeeds. */
static int run(const args *a, const opdef *op)
{
    inputs in;
    outputs out;
    linattn_ctx *ctx = NULL;
    int rc = -1;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    if (load(&in, op, a->indir)) goto done;
    if (linattn_ctx_create(&ctx, &a->cfg)) {
        tool_error(PROG, "%s", linattn_last_error());
        goto done;
    }
    if (plan_outputs(&out, op, &in, a) || alloc_outputs(&out)) goto done;
    if (runner(op)(ctx, op, &in, &out, a)) {
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
    tool_progname(argc, argv, PROG);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    const opdef *op = find_op(a.op);
    if (!op) {
        tool_error(PROG, "unknown operator '%s' (expected %s)", a.op,
                   family_ops(FAM_ALL));
        return 2;
    }
    if (check_family(&a, op)) return 2;
    return run(&a, op) ? 1 : 0;
}
