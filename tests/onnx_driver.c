/* linattn tests - a tiny driver of linattn_linear_attention() (linattn_onnx(3)) for
 * tests/onnx_conformance.py: reads DIR/query.npy, key.npy, value.npy and,
 * when present, past_state.npy, decay.npy, beta.npy (float32), writes
 * DIR/output.npy and DIR/present_state.npy.
 *
 *   onnx_driver DIR Q_HEADS KV_HEADS RULE SCALE CHUNK_SIZE [BACKEND]
 *
 * BACKEND: ref (default), cpu, opencl, or a kernel ISA (scalar, avx2 ...).
 * Exit status: 0 done; 2 usage or file error; 3 the call answered
 * LINATTN_EUNSUPPORTED; 4 any other refusal (the message on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "linattn.h"

static int load(const char *dir, const char *name, linattn_array *a, linattn_tensor *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return 0; /* absent: an optional input not given */
    fclose(f);
    if (linattn_npy_load(path, a) || linattn_array_tensor(a, t)) {
        fprintf(stderr, "onnx_driver: %s: %s\n", path, linattn_last_error());
        exit(2);
    }
    return 1;
}

static float *out_tensor(const linattn_tensor *like, int ndim, const int64_t *shape,
                         linattn_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d] > 0 ? (size_t)shape[d] : 1;
    float *p = calloc(n, sizeof *p);
    if (!p) exit(2);
    *t = *like;
    t->data = p;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc > 8) {
        fprintf(stderr, "usage: onnx_driver DIR Q_HEADS KV_HEADS RULE SCALE CHUNK_SIZE "
                        "[BACKEND]\n");
        return 2;
    }
    const char *dir = argv[1], *backend = argc > 7 ? argv[7] : "ref";
    linattn_la_attrs attrs;
    linattn_la_attrs_init(&attrs);
    attrs.q_num_heads = atoi(argv[2]);
    attrs.kv_num_heads = atoi(argv[3]);
    if (linattn_la_rule_parse(argv[4], &attrs.update_rule)) {
        fprintf(stderr, "onnx_driver: %s\n", linattn_last_error());
        return 4;
    }
    attrs.scale = strtof(argv[5], NULL);
    attrs.chunk_size = atoi(argv[6]);

    linattn_config cfg;
    linattn_config_init(&cfg);
    if (!strcmp(backend, "ref")) cfg.backend = LINATTN_BACKEND_REF;
    else if (!strcmp(backend, "opencl")) cfg.backend = LINATTN_BACKEND_OPENCL;
    else cfg.backend = LINATTN_BACKEND_CPU;
    if (cfg.backend == LINATTN_BACKEND_CPU && strcmp(backend, "cpu")) cfg.isa = backend;
    linattn_ctx *ctx = NULL;
    if (linattn_ctx_create(&cfg, &ctx)) {
        fprintf(stderr, "onnx_driver: context %s: %s\n", backend, linattn_last_error());
        return 2;
    }

    linattn_array a[6];
    memset(a, 0, sizeof a);
    linattn_la_io io;
    memset(&io, 0, sizeof io);
    if (!load(dir, "query", &a[0], &io.query) || !load(dir, "key", &a[1], &io.key) ||
        !load(dir, "value", &a[2], &io.value)) {
        fprintf(stderr, "onnx_driver: %s: query, key and value are required\n", dir);
        for (int i = 0; i < 3; i++) linattn_array_free(&a[i]);
        linattn_ctx_destroy(ctx);
        return 2;
    }
    load(dir, "past_state", &a[3], &io.past_state);
    load(dir, "decay", &a[4], &io.decay);
    load(dir, "beta", &a[5], &io.beta);

    /* outputs sized as ONNX infers them (the call checks the rest) */
    const int64_t Hq = attrs.q_num_heads > 0 ? attrs.q_num_heads : 1;
    const int64_t H = attrs.kv_num_heads > 0 ? attrs.kv_num_heads : 1;
    const int64_t B = io.query.shape[0], T = io.query.shape[1];
    const int64_t dk = io.query.shape[2] / Hq, dv = io.value.shape[2] / H;
    const int64_t osh[3] = {B, T, Hq * dv}, ssh[4] = {B, H, dk, dv};
    float *o = out_tensor(&io.query, 3, osh, &io.output);
    float *s = out_tensor(&io.query, 4, ssh, &io.present_state);

    const int rc = linattn_linear_attention(ctx, &io, &attrs);
    int status = 0;
    if (rc) {
        fprintf(stderr, "onnx_driver: %s: %s\n", linattn_strerror(rc), linattn_last_error());
        status = rc == LINATTN_EUNSUPPORTED ? 3 : 4;
    } else {
        char path[4096];
        snprintf(path, sizeof path, "%s/output.npy", dir);
        int e = linattn_npy_save(path, o, 3, osh);
        snprintf(path, sizeof path, "%s/present_state.npy", dir);
        if (!e) e = linattn_npy_save(path, s, 4, ssh);
        if (e) fprintf(stderr, "onnx_driver: %s\n", linattn_last_error());
        status = e ? 2 : 0;
    }
    /* everything freed on every path (the sanitizer builds check for leaks) */
    for (int i = 0; i < 6; i++) linattn_array_free(&a[i]);
    free(o);
    free(s);
    linattn_ctx_destroy(ctx);
    return status;
}
