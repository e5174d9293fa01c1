/* linattn-run - run one operator on .npy files (see linattn-run(1)).
 * Thin: parse arguments, load inputs, call the API, save outputs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "toolutil.h"

#define PROG "linattn-run"
#define NIN 8

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " OP --in INDIR --out OUTDIR [--backend auto|ref|cpu|opencl]\n"
            "       [--threads N] [--scale S] [--eps E] [--chunk C]\n"
            "       [--algo auto|recurrent|chunk]\n"
            "OP is gdn, kla or gla.  Inputs are INDIR/<name>.npy (float32, C order):\n"
            "  gdn: q k v g beta [h0]    kla: q k v g eta [h0]    gla: q k v g [h0]\n"
            "Outputs: OUTDIR/o.npy OUTDIR/ht.npy.  See linattn-run(1).\n");
}

typedef struct inputs {
    const char *names[NIN];
    int optional[NIN];
    linattn_array arr[NIN];
    int n;
} inputs;

static int load(inputs *in, const char *dir)
{
    char path[4096];
    for (int i = 0; i < in->n; i++) {
        if (tool_npy_path(path, sizeof path, dir, in->names[i])) {
            tool_error(PROG, "%s: path too long", dir);
            return -1;
        }
        if (in->optional[i] && !tool_exists(path)) continue;
        if (linattn_npy_load(path, &in->arr[i])) {
            tool_error(PROG, "%s", linattn_last_error());
            return -1;
        }
    }
    return 0;
}

static linattn_tensor tensor_of(const linattn_array *a)
{
    linattn_tensor t = linattn_tensor_none();
    if (a->data && linattn_array_tensor(a, &t)) {
        /* rank above 4: keep the pointer and report the rank; the operator's
         * own check names the argument */
        t.data = a->data;
        t.ndim = a->ndim;
    }
    return t;
}

int main(int argc, char **argv)
{
    const char *indir = NULL, *outdir = NULL;
    linattn_config cfg;
    linattn_delta_opts opts;
    int algo_set = 0, chunk_set = 0;
    linattn_config_init(&cfg);
    linattn_delta_opts_init(&opts);

    static const struct option lo[] = {
        {"in", required_argument, 0, 'i'},      {"out", required_argument, 0, 'o'},
        {"backend", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"scale", required_argument, 0, 's'},   {"eps", required_argument, 0, 'e'},
        {"chunk", required_argument, 0, 'c'},   {"algo", required_argument, 0, 'a'},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    long lv;
    while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
        switch (c) {
        case 'i': indir = optarg; break;
        case 'o': outdir = optarg; break;
        case 'b':
            if (tool_parse_backend(optarg, &cfg.backend)) {
                tool_error(PROG, "--backend %s: expected auto, ref, cpu or opencl", optarg);
                return 2;
            }
            break;
        case 't':
            if (tool_parse_int(optarg, 1, 4096, &lv)) {
                tool_error(PROG, "--threads %s: expected an integer 1..4096", optarg);
                return 2;
            }
            cfg.threads = (int)lv;
            break;
        case 's':
            if (tool_parse_float(optarg, &opts.scale) || opts.scale == 0.0f) {
                tool_error(PROG, "--scale %s: expected a finite nonzero number", optarg);
                return 2;
            }
            break;
        case 'e':
            if (tool_parse_float(optarg, &opts.eps) || opts.eps < 0.0f) {
                tool_error(PROG, "--eps %s: expected a finite number >= 0", optarg);
                return 2;
            }
            break;
        case 'c':
            if (tool_parse_int(optarg, 1, LINATTN_MAX_CHUNK, &lv)) {
                tool_error(PROG, "--chunk %s: expected an integer 1..%d", optarg,
                           LINATTN_MAX_CHUNK);
                return 2;
            }
            opts.chunk = (int)lv;
            chunk_set = 1;
            break;
        case 'a':
            if (tool_parse_algo(optarg, &opts.algo)) {
                tool_error(PROG, "--algo %s: expected auto, recurrent or chunk", optarg);
                return 2;
            }
            algo_set = 1;
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " (linattn) %s\n", linattn_version_string()); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc || !indir || !outdir) {
        usage(stderr);
        return 2;
    }
    const char *op = argv[optind];
    if (chunk_set && !algo_set) opts.algo = LINATTN_ALGO_CHUNK;

    inputs in = {.names = {"q", "k", "v", "g"}, .n = 4};
    if (!strcmp(op, "gdn")) in.names[in.n++] = "beta";
    else if (!strcmp(op, "kla")) in.names[in.n++] = "eta";
    else if (strcmp(op, "gla")) {
        tool_error(PROG, "unknown operator '%s' (expected gdn, kla or gla)", op);
        return 2;
    }
    in.optional[in.n] = 1;
    in.names[in.n++] = "h0";

    int rc = 1;
    float *o = NULL, *ht = NULL;
    linattn_ctx *ctx = NULL;
    if (load(&in, indir)) goto out;
    if (linattn_ctx_create(&ctx, &cfg)) {
        tool_error(PROG, "%s", linattn_last_error());
        goto out;
    }

    linattn_delta_io io;
    memset(&io, 0, sizeof io);
    io.q = tensor_of(&in.arr[0]);
    io.k = tensor_of(&in.arr[1]);
    io.v = tensor_of(&in.arr[2]);
    io.g = tensor_of(&in.arr[3]);
    if (strcmp(op, "gla")) io.beta = tensor_of(&in.arr[4]);
    io.h0 = tensor_of(&in.arr[in.n - 1]);
    /* output shapes follow q and v; the operator checks every input */
    if (io.q.ndim != 4 || io.v.ndim != 4) {
        tool_error(PROG, "q and v must be 4-dimensional ([B,T,H,K] and [B,T,H,V])");
        goto out;
    }
    const int64_t B = io.q.shape[0], T = io.q.shape[1], H = io.q.shape[2];
    const int64_t K = io.q.shape[3], V = io.v.shape[3];
    if (B <= 0 || T <= 0 || H <= 0 || K <= 0 || V <= 0 || K > LINATTN_MAX_HEAD_DIM ||
        V > LINATTN_MAX_HEAD_DIM) {
        tool_error(PROG, "q/v: unsupported shape");
        goto out;
    }
    o = malloc(sizeof(float) * (size_t)(B * T * H * V));
    ht = malloc(sizeof(float) * (size_t)(B * H * K * V));
    if (!o || !ht) {
        tool_error(PROG, "out of memory");
        goto out;
    }
    io.o = linattn_tensor_4d(o, B, T, H, V);
    io.ht = linattn_tensor_4d(ht, B, H, K, V);

    const linattn_delta_op dop = !strcmp(op, "gdn") ? LINATTN_OP_GDN
                                 : !strcmp(op, "kla") ? LINATTN_OP_KLA : LINATTN_OP_GLA;
    if (linattn_delta_forward(ctx, dop, &io, &opts)) {
        tool_error(PROG, "%s: %s", op, linattn_last_error());
        goto out;
    }

    char path[4096];
    if (tool_mkdir(outdir)) {
        tool_error(PROG, "%s: cannot create output directory", outdir);
        goto out;
    }
    const int64_t osh[4] = {B, T, H, V}, hsh[4] = {B, H, K, V};
    if (tool_npy_path(path, sizeof path, outdir, "o") || linattn_npy_save(path, o, 4, osh) ||
        tool_npy_path(path, sizeof path, outdir, "ht") || linattn_npy_save(path, ht, 4, hsh)) {
        tool_error(PROG, "%s", linattn_last_error());
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < in.n; i++) linattn_array_free(&in.arr[i]);
    free(o);
    free(ht);
    linattn_ctx_destroy(ctx);
    return rc;
}
