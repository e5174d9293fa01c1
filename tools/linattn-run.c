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
#define FUSED "qkv" /* --fused reads INDIR/qkv.npy */

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
    /* not the delta family's serving rows hW [W,..], hC [C,..]: nothing here sizes them */
    return t->role == LINATTN_ROLE_OUT && t->needs < 0 && t->dims[0] != 'W' && t->dims[0] != 'C';
}

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " OP --in INDIR --out OUTDIR [--backend auto|ref|cpu|opencl]\n"
               "       [--threads N] [--fused HQ,HK,H,K,V] [--dtype f32|f16|bf16]\n"
               "       [--state-dtype f32|f16|bf16] [operator options]\n"
               "OP is one of %s.  Inputs are INDIR/<name>.npy ('<f4' or '<f2', C order;\n"
               "[optional]), outputs OUTDIR/<name>.npy; head counts come from the shapes.\n"
               "--fused: q, k, v are views of INDIR/" FUSED ".npy [B,T,HQ*K+HK*K+H*V].\n"
               "--dtype: the tensors the library gets (outputs: f16 as '<f2', bf16 as '<f4'\n"
               "holding bf16 values); --state-dtype: the same for the states (over N).\n",
            ops_list(NULL));
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
    int fused;        /* --fused given: q, k, v from INDIR/qkv.npy */
    long fz[5];       /* its HQ, HK, H, K, V */
    linattn_dtype dtype, sdtype; /* --dtype, --state-dtype */
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
    add_long(L, "fused", required_argument, 'f');
    add_long(L, "dtype", required_argument, 'd');
    add_long(L, "state-dtype", required_argument, 's');
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
        case 'd':
        case 's':
            if (tool_parse_dtype(optarg, c == 'd' ? &a->dtype : &a->sdtype)) {
                tool_error(PROG, "--%s %s: expected f32, f16 or bf16",
                           c == 'd' ? "dtype" : "state-dtype", optarg);
                return 2;
            }
            break;
        case 'f': {
            char buf[128], *save = NULL, *tok;
            int n = 0;
            snprintf(buf, sizeof buf, "%s", optarg);
            for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                if (n == 5 || tool_parse_int(tok, 1, 1L << 20, &a->fz[n++])) n = 6;
            if (n != 5) {
                tool_error(PROG, "--fused %s: expected HQ,HK,H,K,V (five integers > 0: query, "
                           "key and value heads, key and value head sizes)", optarg);
                return 2;
            }
            a->fused = 1;
            break;
        }
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
        double x = 0;
        const int bad = linattn_op_option_parse(op, j, a->text[i], &x) != 0;
        if (bad || (zero_is_default && x == 0)) {
            tool_error(PROG, "--%s %s: %s", fl, a->text[i],
                       !bad ? "0 means the default: leave the option out"
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

/* Fused into qkv.npy by --fused: q, k and v (0 for other names). */
static int fused_name(const char *name)
{
    return !strcmp(name, "q") || !strcmp(name, "k") || !strcmp(name, "v");
}

/* Every .npy file of dir must be an input of op (with --fused, qkv.npy in
 * place of q, k, v); 0 or -1 (said). */
static int check_files(const linattn_op_info *op, const char *dir, int fused)
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
        if (fused && fused_name(name)) {
            tool_error(PROG, "%s/%s: --fused reads %s from " FUSED ".npy: give one or the other",
                       dir, e->d_name, name);
            rc = -1;
            continue;
        }
        if (fused && !strcmp(name, FUSED)) continue;
        if (i >= 0 && op->tensors[i].role != LINATTN_ROLE_OUT) continue;
        const char *hint = sibling_hint(op, name);
        char extra[96] = "";
        if (hint) snprintf(extra, sizeof extra, "; %s takes %s.npy in its place", op->name, hint);
        else if (!strcmp(name, FUSED))
            snprintf(extra, sizeof extra, "; --fused reads q, k and v from it");
        tool_error(PROG, "%s/%s: %s takes no input '%s' (its inputs: %s)%s", dir, e->d_name,
                   op->name, name, inputs_list(op), extra);
        rc = -1;
    }
    closedir(d);
    return rc;
}

/* A tensor's letters, its tail appended when given: "BTH" or "BTHG". */
static const char *letters(const linattn_op_tensor *t, int with_tail)
{
    static char buf[LINATTN_MAX_DIMS + 2];
    snprintf(buf, sizeof buf, "%s", t->dims);
    if (with_tail && t->tail) buf[t->ndim] = t->tail, buf[t->ndim + 1] = 0;
    return buf;
}

/* Every dimension of the array at path above 0; 0 or -1 (said). */
static int check_nonzero(const char *path, const linattn_array *a, const char *dims)
{
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] == 0) {
            tool_error(PROG, "%s: dimension %d (%c of [%s]) is 0: every size must be > 0", path,
                       d, d < (int)strlen(dims) ? dims[d] : '?', dims);
            return -1;
        }
    return 0;
}

/* --fused applies to forwards whose q, k and v are [B,T,heads,K|V]. */
static int fused_takes(const linattn_op_info *op)
{
    static const char *const names[3] = {"q", "k", "v"};
    for (int j = 0; j < 3; j++) {
        const int i = linattn_op_tensor_index(op, names[j]);
        if (i < 0) return 0;
        const linattn_op_tensor *t = &op->tensors[i];
        if (t->ndim != 4 || strncmp(t->dims, "BT", 2) || t->dims[3] != (j < 2 ? 'K' : 'V'))
            return 0;
    }
    return 1;
}

/* q, k and v as views of the fused array f [B,T,HQ*K+HK*K+H*V] read from
 * path, no copies; 0 or -1 (said). */
static int fused_views(const args *a, const linattn_op_info *op, const linattn_array *f,
                       const char *path, linattn_op_args *oa)
{
    static const char *const names[3] = {"q", "k", "v"};
    const int64_t heads[3] = {a->fz[0], a->fz[1], a->fz[2]}, size[3] = {a->fz[3], a->fz[3], a->fz[4]};
    const int64_t W = heads[0] * size[0] + heads[1] * size[1] + heads[2] * size[2];
    if (f->ndim != 3) {
        tool_error(PROG, "%s: %d dimensions (--fused takes 3: [B,T,HQ*K+HK*K+H*V])", path,
                   f->ndim);
        return -1;
    }
    if (check_nonzero(path, f, "BTW")) return -1;
    if (f->shape[2] != W) {
        tool_error(PROG, "%s: last dimension %lld is not HQ*K + HK*K + H*V = %ld*%ld + %ld*%ld + "
                   "%ld*%ld = %lld (--fused %ld,%ld,%ld,%ld,%ld)", path, (long long)f->shape[2],
                   a->fz[0], a->fz[3], a->fz[1], a->fz[3], a->fz[2], a->fz[4], (long long)W,
                   a->fz[0], a->fz[1], a->fz[2], a->fz[3], a->fz[4]);
        return -1;
    }
    int64_t off = 0;
    for (int j = 0; j < 3; j++) {
        linattn_tensor t = linattn_tensor_4d(f->data, f->shape[0], f->shape[1], heads[j], size[j]);
        t.strides[0] = f->shape[1] * W;
        t.strides[1] = W;
        t.strides[2] = size[j];
        t.strides[3] = 1;
        t.offset = off;
        off += heads[j] * size[j];
        oa->t[linattn_op_tensor_index(op, names[j])] = t;
    }
    return 0;
}

static int load_inputs(const args *a, const linattn_op_info *op, linattn_array *arr,
                       linattn_array *fused, linattn_op_args *oa, const char **from)
{
    char path[4096];
    if (a->fused) {
        if (tool_npy_path(path, sizeof path, a->indir, FUSED)) {
            tool_error(PROG, "%s: path too long", a->indir);
            return -1;
        }
        if (!tool_exists(path)) {
            tool_error(PROG, "%s: missing (--fused reads q, k and v from it)", path);
            return -1;
        }
        if (linattn_npy_load(path, fused)) {
            tool_error(PROG, "%s", linattn_last_error());
            return -1;
        }
        if (fused_views(a, op, fused, path, oa)) return -1;
    }
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *t = &op->tensors[i];
        if (t->role == LINATTN_ROLE_OUT) continue;
        if (a->fused && fused_name(t->name)) {
            from[i] = FUSED;
            continue;
        }
        if (tool_npy_path(path, sizeof path, a->indir, t->name)) {
            tool_error(PROG, "%s: path too long", a->indir);
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
        const int tail = t->tail && arr[i].ndim == t->ndim + 1;
        if ((arr[i].ndim != t->ndim && !tail) || linattn_array_tensor(&arr[i], &oa->t[i])) {
            char also[64] = "";
            if (t->tail)
                snprintf(also, sizeof also, " or %d: [%s]", t->ndim + 1, letters(t, 1));
            tool_error(PROG, "%s: %d dimensions (%s takes %d: [%s]%s)", path, arr[i].ndim,
                       t->name, t->ndim, t->dims, also);
            return -1;
        }
        if (check_nonzero(path, &arr[i], letters(t, tail))) return -1;
        from[i] = t->name;
    }
    return 0;
}

static int letter_of(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' : -1; }

/* Every input must have the table's shape under the dimensions that the
 * inputs before it bound (linattn_op_dims: q binds B, T, Q and K, k binds
 * J, v H and V, ...): 0, or -1 naming the first file that disagrees, the
 * dimension and the file that bound it. */
static int check_shapes(const args *a, const linattn_op_info *op, const linattn_op_args *oa,
                        const char *const *from)
{
    int64_t dims[LINATTN_OP_LETTERS] = {0}, sh[LINATTN_MAX_DIMS];
    int by[LINATTN_OP_LETTERS];
    for (int l = 0; l < LINATTN_OP_LETTERS; l++) by[l] = -1;
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *d = &op->tensors[i];
        const linattn_tensor *t = &oa->t[i];
        if (!from[i]) continue;
        for (int j = 0; j < t->ndim; j++) {
            const int l = letter_of(j < d->ndim ? d->dims[j] : d->tail);
            if (l >= 0 && dims[l] <= 0) dims[l] = t->shape[j], by[l] = i;
        }
    }
    linattn_op_dims(op, oa, dims);
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *d = &op->tensors[i];
        const linattn_tensor *t = &oa->t[i];
        if (!from[i] || linattn_op_shape(op, i, dims, sh)) continue;
        for (int j = 0; j < t->ndim; j++) {
            const char c = j < d->ndim ? d->dims[j] : d->tail;
            const int l = letter_of(c);
            if (t->shape[j] == sh[j] || l < 0 || by[l] < 0) continue;
            tool_error(PROG, "%s/%s.npy: %s: dimension %d (%c of [%s]) is %lld, but %s.npy "
                       "gives %c = %lld", a->indir, from[i], d->name, j, c,
                       letters(d, t->ndim > d->ndim), (long long)t->shape[j], from[by[l]], c,
                       (long long)sh[j]);
            return -1;
        }
    }
    return 0;
}

/* ---- element types ----------------------------------------------------------- */

/* A forward's states are its tensors over N (initial and final states). */
static int is_state(const linattn_op_tensor *t)
{
    return t->dims[0] == 'N' || t->role == LINATTN_ROLE_INOUT;
}

/* The dtype the library gets tensor t in: --state-dtype for states, else --dtype. */
static linattn_dtype dtype_of(const args *a, const linattn_op_tensor *t)
{
    return is_state(t) ? a->sdtype : a->dtype;
}

/* The states of op, "h0, hT". */
static const char *states_list(const linattn_op_info *op)
{
    static char buf[128];
    buf[0] = 0;
    for (int i = 0; i < op->ntensors; i++)
        if (is_state(&op->tensors[i])) append(buf, sizeof buf, ", ", op->tensors[i].name);
    return buf;
}

/* n float32 values of src rounded to dt (to nearest, ties to even: exact
 * for values of that type) in a new array, or NULL (said). */
static void *narrow(const float *src, size_t n, linattn_dtype dt, const char *what)
{
    void *p = malloc(n ? n * linattn_dtype_size(dt) : 1);
    if (!p) tool_error(PROG, "%s: out of memory for %zu bytes", what, n * linattn_dtype_size(dt));
    else linattn_convert(src, LINATTN_F32, p, dt, n);
    return p;
}

/* Every input the library gets in a 16-bit type: its array (loaded as
 * float32) rounded into conv[i] (the fused array into conv[MAX]), the
 * tensor pointed there; 0 or -1 (said). */
static int narrow_inputs(const args *a, const linattn_op_info *op, const linattn_array *arr,
                         const linattn_array *fused, linattn_op_args *oa,
                         const char *const *from, void **conv)
{
    if (a->fused && a->dtype != LINATTN_F32) {
        void *p = conv[LINATTN_OP_MAX_TENSORS] = narrow(fused->data, fused->count, a->dtype, FUSED);
        if (!p) return -1;
        for (int i = 0; i < op->ntensors; i++)
            if (from[i] && !strcmp(from[i], FUSED)) {
                oa->t[i].data = p;
                oa->t[i].dtype = a->dtype;
            }
    }
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_dtype dt = dtype_of(a, &op->tensors[i]);
        if (!from[i] || !strcmp(from[i], FUSED) || dt == LINATTN_F32) continue;
        if (!(conv[i] = narrow(arr[i].data, arr[i].count, dt, op->tensors[i].name))) return -1;
        oa->t[i].data = conv[i];
        oa->t[i].dtype = dt;
    }
    return 0;
}

/* ---- outputs ---------------------------------------------------------------- */

static int alloc_outputs(const args *a, const linattn_op_info *op, linattn_op_args *oa,
                         void **data)
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
        const linattn_dtype dt = dtype_of(a, t);
        const size_t es = linattn_dtype_size(dt);
        const int nd = linattn_op_rank(op, i, dims);
        for (int d = 0; d < nd; d++) {
            if ((uint64_t)shape[d] > SIZE_MAX / sizeof(float) / n) {
                tool_error(PROG, "%s: shape [%s] too large for this machine", t->name, t->dims);
                return -1;
            }
            n *= (size_t)shape[d];
        }
        if (!(data[i] = malloc(es * n))) {
            tool_error(PROG, "%s: out of memory for %zu bytes", t->name, es * n);
            return -1;
        }
        oa->t[i] = linattn_tensor_nd(data[i], dt, nd, shape);
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
            o[n++] = (tool_output){op->tensors[i].name, oa->t[i].data, oa->t[i].dtype,
                                   oa->t[i].ndim, oa->t[i].shape};
    return tool_save_outputs(PROG, dir, o, n);
}

/* ---- running ---------------------------------------------------------------- */

/* Load, run, save; 0 or -1 (the message printed).  Nothing is written
 * unless the operator succeeds. */
static int run(const args *a, const linattn_op_info *op, linattn_op_args *oa)
{
    linattn_array arr[LINATTN_OP_MAX_TENSORS], fused;
    void *out[LINATTN_OP_MAX_TENSORS] = {0}, *conv[LINATTN_OP_MAX_TENSORS + 1] = {0};
    const char *from[LINATTN_OP_MAX_TENSORS] = {0}; /* the file of each input given */
    linattn_ctx *ctx = NULL;
    int rc = -1;
    memset(arr, 0, sizeof arr);
    memset(&fused, 0, sizeof fused);
    if (check_files(op, a->indir, a->fused) || load_inputs(a, op, arr, &fused, oa, from) ||
        check_shapes(a, op, oa, from) || narrow_inputs(a, op, arr, &fused, oa, from, conv))
        goto done;
    if (linattn_ctx_create(&a->cfg, &ctx)) {
        tool_error(PROG, "%s", linattn_last_error());
        goto done;
    }
    if (alloc_outputs(a, op, oa, out)) goto done;
    if (linattn_op_call(ctx, op, oa)) {
        tool_error(PROG, "%s: %s", op->name, linattn_last_error());
        goto done;
    }
    rc = save_outputs(op, oa, a->outdir);
done:
    for (int i = 0; i < LINATTN_OP_MAX_TENSORS; i++) {
        linattn_array_free(&arr[i]);
        free(out[i]);
        free(conv[i]);
    }
    free(conv[LINATTN_OP_MAX_TENSORS]);
    linattn_array_free(&fused);
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
    if (a.fused && !fused_takes(op)) {
        tool_error(PROG, "--fused: %s has no q, k and v of [B,T,heads,K|V] to read from "
                   FUSED ".npy", op->name);
        return 2;
    }
    if (op->f32_states && a.sdtype != LINATTN_F32) {
        tool_error(PROG, "--state-dtype %s: %s keeps its states (%s) in float32 (f32_states "
                   "in linattn_ops(3): a 16-bit state loses the small writes of a long memory; "
                   "see linattn(3), Half precision)", linattn_dtype_name(a.sdtype), op->name,
                   states_list(op));
        return 2;
    }
    linattn_op_args_init(op, &oa);
    if (apply_options(&a, op, &oa)) return 2;
    return run(&a, op, &oa) ? 1 : 0;
}
