/* linattn-run - run one operator's forward on .npy files (see linattn-run(1)).
 * Driven by the library's operator table (linattn_ops(3)): the inputs an
 * operator reads, the outputs it writes and the options it takes all come
 * from there, so this file names no operator. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "toolutil.h"

#define PROG "linattn-run"
#define MAX_LONGOPTS 64
#define MAX_GIVEN 32

/* ---- the operators and their options, from the table ------------------------- */

static const linattn_op_info *forward_of(const char *name)
{
    for (int i = 0; i < linattn_op_count(); i++) {
        const linattn_op_info *op = linattn_op_at(i);
        if (!strcmp(op->name, name) && !strcmp(op->entry, "forward")) return op;
    }
    return NULL;
}

/* Append s to buf (cap bytes), separated by sep after the first. */
static void append(char *buf, size_t cap, const char *sep, const char *s)
{
    const size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s", n ? sep : "", s);
}

/* The forwards' names, or those taking option `opt` (NULL: all). */
static const char *ops_list(const char *opt)
{
    static char buf[256];
    buf[0] = 0;
    for (int i = 0; i < linattn_op_count(); i++) {
        const linattn_op_info *op = linattn_op_at(i);
        if (strcmp(op->entry, "forward")) continue;
        if (!opt || linattn_op_option_index(op, opt) >= 0) append(buf, sizeof buf, ", ", op->name);
    }
    return buf;
}

/* An option's command-line name: "--qk-scale" for the field qk_scale. */
static void flag_name(char *buf, size_t cap, const char *field)
{
    snprintf(buf, cap, "%s", field);
    for (char *p = buf; *p; p++)
        if (*p == '_') *p = '-';
}

/* The inputs of a forward as the usage shows them: "q k v g beta [h0]". */
static const char *inputs_list(const linattn_op_info *op)
{
    static char buf[256];
    char item[64];
    buf[0] = 0;
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *t = &op->tensors[i];
        if (t->role == LINATTN_ROLE_OUT) continue;
        snprintf(item, sizeof item, t->optional ? "[%s]" : "%s", t->name);
        append(buf, sizeof buf, " ", item);
    }
    return buf;
}

/* The outputs written: every output but those that need another tensor. */
static int written(const linattn_op_tensor *t)
{
    return t->role == LINATTN_ROLE_OUT && t->needs < 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " OP --in INDIR --out OUTDIR [--backend auto|ref|cpu|opencl]\n"
               "       [--threads N] [operator options]\n"
               "OP is one of %s.  Inputs are INDIR/<name>.npy (float32, C order;\n"
               "[optional]), outputs OUTDIR/<name>.npy:\n", ops_list(NULL));
    for (int i = 0; i < linattn_op_count(); i++) {
        const linattn_op_info *op = linattn_op_at(i);
        if (strcmp(op->entry, "forward")) continue;
        char outs[128] = "", opts[256] = "", fl[64], item[96];
        for (int j = 0; j < op->ntensors; j++)
            if (written(&op->tensors[j])) append(outs, sizeof outs, " ", op->tensors[j].name);
        for (int j = 0; j < op->noptions; j++) {
            const linattn_op_option *o = &op->options[j];
            flag_name(fl, sizeof fl, o->name);
            snprintf(item, sizeof item, o->type == LINATTN_OPT_FLAG ? "--%s" : "--%s X", fl);
            append(opts, sizeof opts, " ", item);
        }
        fprintf(f, "  %-8s in: %s\n           out: %s\n           options: %s\n", op->name,
                inputs_list(op), outs, opts[0] ? opts : "(none)");
    }
    fprintf(f, "See linattn-run(1).\n");
}

/* ---- arguments ------------------------------------------------------------ */

typedef struct args {
    const char *indir, *outdir, *opname;
    linattn_config cfg;
    int ngiven;
    const char *given[MAX_GIVEN]; /* option fields given, with their text */
    const char *text[MAX_GIVEN];
} args;

/* Long options: the tool's own, then every operator option of the table
 * (val 256 + its number in `fields`). */
typedef struct longopts {
    struct option lo[MAX_LONGOPTS];
    char names[MAX_LONGOPTS][48];
    const char *fields[MAX_LONGOPTS];
    int n, nfields;
} longopts;

static void add_long(longopts *L, const char *name, int has_arg, int val)
{
    if (L->n >= MAX_LONGOPTS - 1) return;
    snprintf(L->names[L->n], sizeof L->names[L->n], "%s", name);
    L->lo[L->n] = (struct option){L->names[L->n], has_arg, 0, val};
    L->n++;
}

static void build_longopts(longopts *L)
{
    memset(L, 0, sizeof *L);
    add_long(L, "in", required_argument, 'i');
    add_long(L, "out", required_argument, 'o');
    add_long(L, "backend", required_argument, 'b');
    add_long(L, "threads", required_argument, 't');
    add_long(L, "help", no_argument, 'h');
    add_long(L, "version", no_argument, 'V');
    for (int i = 0; i < linattn_op_count(); i++) {
        const linattn_op_info *op = linattn_op_at(i);
        if (strcmp(op->entry, "forward")) continue;
        for (int j = 0; j < op->noptions; j++) {
            const linattn_op_option *o = &op->options[j];
            int k = 0;
            while (k < L->nfields && strcmp(L->fields[k], o->name)) k++;
            if (k < L->nfields) continue;
            char fl[48];
            flag_name(fl, sizeof fl, o->name);
            L->fields[L->nfields++] = o->name;
            add_long(L, fl, o->type == LINATTN_OPT_FLAG ? no_argument : required_argument, 256 + k);
        }
    }
}

/* Returns -1 to go on, else the exit status (--help, --version, errors). */
static int parse_args(int argc, char **argv, args *a)
{
    longopts L;
    long lv;
    int c;
    build_longopts(&L);
    memset(a, 0, sizeof *a);
    linattn_config_init(&a->cfg);
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hV", L.lo, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " (linattn) %s\n", linattn_version_string()); return 0;
        case 'i': a->indir = optarg; break;
        case 'o': a->outdir = optarg; break;
        case 'b':
            if (tool_parse_backend(optarg, &a->cfg.backend)) {
                tool_error(PROG, "--backend %s: expected auto, ref, cpu or opencl", optarg);
                return 2;
            }
            break;
        case 't':
            if (tool_parse_int(optarg, 1, 4096, &lv)) {
                tool_error(PROG, "--threads %s: expected an integer 1..4096", optarg);
                return 2;
            }
            a->cfg.threads = (int)lv;
            break;
        case '?':
        case ':':
            if (optopt && optopt < 256) tool_error(PROG, "-%c: unknown option", optopt);
            else tool_error(PROG, "%s: unknown option or missing value", argv[optind - 1]);
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return 2;
        default:
            if (a->ngiven == MAX_GIVEN) {
                tool_error(PROG, "too many options");
                return 2;
            }
            a->given[a->ngiven] = L.fields[c - 256];
            a->text[a->ngiven++] = optarg ? optarg : "1";
        }
    }
    if (optind + 1 != argc || !a->indir || !a->outdir) {
        tool_error(PROG, "%s", optind >= argc ? "no operator given"
                               : optind + 1 < argc ? "one operator at a time"
                                                   : "--in and --out are required");
        fprintf(stderr, "Try '" PROG " --help'.\n");
        return 2;
    }
    a->opname = argv[optind];
    return -1;
}

/* The options given, parsed for op into args; 0 or exit status 2. */
static int apply_options(const args *a, const linattn_op_info *op, linattn_op_args *oa)
{
    char fl[48];
    int algo_given = 0, chunk = -1;
    for (int i = 0; i < a->ngiven; i++) {
        const int j = linattn_op_option_index(op, a->given[i]);
        flag_name(fl, sizeof fl, a->given[i]);
        if (j < 0) {
            tool_error(PROG, "--%s: applies to %s, not %s", fl, ops_list(a->given[i]), op->name);
            return 2;
        }
        const linattn_op_option *o = &op->options[j];
        /* 0 means "the library's default" for these: leave the option out instead */
        const int zero_is_default = (o->type == LINATTN_OPT_FLOAT || o->type == LINATTN_OPT_INT) &&
                                    o->def == 0 && o->lo <= 0;
        double x;
        if (linattn_op_option_parse(op, j, a->text[i], &x) || (zero_is_default && x == 0)) {
            tool_error(PROG, "--%s %s: %s", fl, a->text[i],
                       zero_is_default && x == 0 ? "0 means the default: leave the option out"
                                                 : strchr(linattn_last_error(), ':') + 2);
            return 2;
        }
        oa->opt[j] = x;
        algo_given |= o->type == LINATTN_OPT_ALGO;
        if (!strcmp(o->name, "chunk")) chunk = j;
    }
    /* --chunk alone asks for the chunked form */
    const int ai = linattn_op_option_index(op, "algo");
    if (chunk >= 0 && !algo_given && ai >= 0) oa->opt[ai] = LINATTN_ALGO_CHUNK;
    return 0;
}

/* ---- inputs ---------------------------------------------------------------- */

/* A file name that is another operator's input where this one has another
 * (kla's eta where gdn has beta): that name, else NULL. */
static const char *sibling_hint(const linattn_op_info *op, const char *name)
{
    for (int i = 0; i < linattn_op_count(); i++) {
        const linattn_op_info *s = linattn_op_at(i);
        if (s == op || strcmp(s->family, op->family) || strcmp(s->entry, op->entry)) continue;
        const int j = linattn_op_tensor_index(s, name);
        if (j < 0 || j >= op->ntensors) continue;
        const linattn_op_tensor *mine = &op->tensors[j], *theirs = &s->tensors[j];
        if (mine->role == theirs->role && !strcmp(mine->dims, theirs->dims)) return mine->name;
    }
    return NULL;
}

/* Every .npy file of dir must be an input of op; 0 or -1 (said). */
static int check_files(const linattn_op_info *op, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    if (!d) {
        tool_error(PROG, "%s: %s", dir, strerror(errno));
        return -1;
    }
    while (!rc && (e = readdir(d))) {
        const size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".npy")) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 4), e->d_name);
        const int i = linattn_op_tensor_index(op, name);
        if (i >= 0 && op->tensors[i].role != LINATTN_ROLE_OUT) continue;
        const char *hint = sibling_hint(op, name);
        char extra[96] = "";
        if (hint) snprintf(extra, sizeof extra, "; %s takes %s.npy in its place", op->name, hint);
        tool_error(PROG, "%s/%s: %s takes no input '%s' (its inputs: %s)%s", dir, e->d_name,
                   op->name, name, inputs_list(op), extra);
        rc = -1;
    }
    closedir(d);
    return rc;
}

static int load_inputs(const linattn_op_info *op, const char *dir, linattn_array *arr,
                       linattn_op_args *oa)
{
    char path[4096];
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *t = &op->tensors[i];
        if (t->role == LINATTN_ROLE_OUT) continue;
        if (tool_npy_path(path, sizeof path, dir, t->name)) {
            tool_error(PROG, "%s: path too long", dir);
            return -1;
        }
        if (t->optional && !tool_exists(path)) continue;
        if (!tool_exists(path)) {
            tool_error(PROG, "%s: missing (%s needs %s)", path, op->name, inputs_list(op));
            return -1;
        }
        if (linattn_npy_load(path, &arr[i])) {
            tool_error(PROG, "%s", linattn_last_error());
            return -1;
        }
        if (linattn_array_tensor(&arr[i], &oa->t[i])) {
            tool_error(PROG, "%s: %d dimensions (%s takes %d: [%s])", path, arr[i].ndim, t->name,
                       t->ndim, t->dims);
            return -1;
        }
        for (int d = 0; d < arr[i].ndim; d++)
            if (arr[i].shape[d] == 0) {
                tool_error(PROG, "%s: dimension %d (%c of [%s]) is 0: every size must be > 0",
                           path, d, d < t->ndim ? t->dims[d] : '?', t->dims);
                return -1;
            }
    }
    return 0;
}

/* ---- outputs ---------------------------------------------------------------- */

static int alloc_outputs(const linattn_op_info *op, linattn_op_args *oa, float **data)
{
    int64_t dims[LINATTN_OP_LETTERS] = {0}, shape[LINATTN_MAX_DIMS];
    linattn_op_dims(op, oa, dims);
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *t = &op->tensors[i];
        if (!written(t)) continue;
        if (linattn_op_shape(op, i, dims, shape)) {
            tool_error(PROG, "%s: %s", op->name, linattn_last_error());
            return -1;
        }
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++) {
            if ((uint64_t)shape[d] > SIZE_MAX / sizeof(float) / n) {
                tool_error(PROG, "%s: shape [%s] too large for this machine", t->name, t->dims);
                return -1;
            }
            n *= (size_t)shape[d];
        }
        if (!(data[i] = malloc(sizeof(float) * n))) {
            tool_error(PROG, "%s: out of memory for %zu bytes", t->name, sizeof(float) * n);
            return -1;
        }
        linattn_tensor x = linattn_tensor_4d(data[i], shape[0], shape[1], shape[2], shape[3]);
        x.ndim = t->ndim;
        oa->t[i] = x;
    }
    return 0;
}

/* All outputs or none (see tool_save_outputs). */
static int save_outputs(const linattn_op_info *op, const linattn_op_args *oa, const char *dir)
{
    tool_output o[LINATTN_OP_MAX_TENSORS];
    int n = 0;
    for (int i = 0; i < op->ntensors; i++)
        if (written(&op->tensors[i]))
            o[n++] = (tool_output){op->tensors[i].name, oa->t[i].data, oa->t[i].ndim,
                                   oa->t[i].shape};
    return tool_save_outputs(PROG, dir, o, n);
}

/* ---- running ---------------------------------------------------------------- */

/* Load, run, save; 0 or -1 (the message printed).  Nothing is written
 * unless the operator succeeds. */
static int run(const args *a, const linattn_op_info *op, linattn_op_args *oa)
{
    linattn_array arr[LINATTN_OP_MAX_TENSORS];
    float *out[LINATTN_OP_MAX_TENSORS] = {0};
    linattn_ctx *ctx = NULL;
    int rc = -1;
    memset(arr, 0, sizeof arr);
    if (check_files(op, a->indir) || load_inputs(op, a->indir, arr, oa)) goto done;
    if (linattn_ctx_create(&a->cfg, &ctx)) {
        tool_error(PROG, "%s", linattn_last_error());
        goto done;
    }
    if (alloc_outputs(op, oa, out)) goto done;
    if (linattn_op_call(ctx, op, oa)) {
        tool_error(PROG, "%s: %s", op->name, linattn_last_error());
        goto done;
    }
    rc = save_outputs(op, oa, a->outdir);
done:
    for (int i = 0; i < LINATTN_OP_MAX_TENSORS; i++) {
        linattn_array_free(&arr[i]);
        free(out[i]);
    }
    linattn_ctx_destroy(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    args a;
    linattn_op_args oa;
    tool_progname(argc, argv, PROG);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    const linattn_op_info *op = forward_of(a.opname);
    if (!op) {
        tool_error(PROG, "unknown operator '%s' (expected %s)", a.opname, ops_list(NULL));
        return 2;
    }
    linattn_op_args_init(op, &oa);
    if (apply_options(&a, op, &oa)) return 2;
    return run(&a, op, &oa) ? 1 : 0;
}
