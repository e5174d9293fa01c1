/* linattn-bench - the operands of any entry point, built from the operator
 * table: shapes from its symbolic dimensions, values from its fill ranges,
 * called through linattn_op_call.  No operator is named here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "benchop.h"
#include "benchsys.h"

#define FILL 1024 /* tokens per append while filling a KV cache */
#define D(c) dims[(c) - 'A']

void bench_op_sizes(int64_t dims[LINATTN_OP_LETTERS], long B, long T, long H, long K, long V,
                    long M, long S)
{
    memset(dims, 0, sizeof(int64_t) * LINATTN_OP_LETTERS);
    D('B') = B; D('T') = T; D('H') = H; D('K') = K; D('V') = V; D('M') = M; D('S') = S;
}

void bench_op_heads(int64_t dims[LINATTN_OP_LETTERS], long Hq, long Hk, int channel)
{
    D('Q') = Hq;
    D('J') = Hk;
    D('G') = channel ? D('K') : 0;
}

static int strided;
void bench_op_strided(int on) { strided = on; }

static linattn_dtype tensor_dtype = LINATTN_F32, state_dtype = LINATTN_F32;
void bench_op_dtypes(linattn_dtype dtype, linattn_dtype state)
{
    tensor_dtype = dtype;
    state_dtype = state;
}

int bench_op_is_state(const linattn_op_tensor *t)
{
    return t->role == LINATTN_ROLE_INOUT || t->dims[0] == 'N';
}

linattn_dtype bench_op_state_dtype(const linattn_op_info *op)
{
    return op->f32_states ? LINATTN_F32 : state_dtype;
}

/* The type tensor i of op is made in. */
static linattn_dtype dtype_of(const linattn_op_info *op, int i)
{
    return bench_op_is_state(&op->tensors[i]) ? bench_op_state_dtype(op) : tensor_dtype;
}

/* The n floats of *h rounded to dt in place of them (a new array; *h is
 * freed); 0 or -1. */
static int narrow(float **h, size_t n, linattn_dtype dt)
{
    if (dt == LINATTN_F32) return 0;
    void *p = malloc(n ? n * linattn_dtype_size(dt) : 1);
    if (!p) return -1;
    linattn_convert(*h, LINATTN_F32, p, dt, n);
    free(*h);
    *h = p;
    return 0;
}

static const char *const QKV_NAMES[3] = {"q", "k", "v"};

int bench_op_fusable(const linattn_op_info *op)
{
    const linattn_op_tensor *t[3];
    for (int j = 0; j < 3; j++) {
        const int i = linattn_op_tensor_index(op, QKV_NAMES[j]);
        if (i < 0) return 0;
        t[j] = &op->tensors[i];
        const int n = t[j]->ndim;
        if (n < 2 || t[j]->tail || t[j]->dims[n - 1] != (j < 2 ? 'K' : 'V') ||
            n != t[0]->ndim || strncmp(t[j]->dims, t[0]->dims, (size_t)(n - 2)))
            return 0;
    }
    return 1;
}

int bench_op_uses(const linattn_op_info *op, char c)
{
    for (int i = 0; i < op->ntensors; i++)
        if (strchr(op->tensors[i].dims, c) || op->tensors[i].tail == c) return 1;
    return 0;
}

void bench_op_shape_name(const linattn_op_info *op, const int64_t dims[LINATTN_OP_LETTERS],
                         char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (const char *c = "HKVMS"; *c && n < cap; c++)
        if (bench_op_uses(op, *c))
            n += (size_t)snprintf(out + n, cap - n, "%s%c%lld", n ? "x" : "", *c, (long long)D(*c));
}

/* rows of d floats scaled to unit length */
static void unit_rows(float *x, size_t rows, int64_t d)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t i = 0; i < d; i++) s += (double)x[r * d + i] * x[r * d + i];
        s = 1.0 / sqrt(s + 1e-6);
        for (int64_t i = 0; i < d; i++) x[r * d + i] = (float)(x[r * d + i] * s);
    }
}

static int on_device(linattn_ctx *ctx) { return linattn_ctx_backend(ctx) == LINATTN_BACKEND_OPENCL; }

/* h (n elements of dt, shape sh) as a tensor of ctx: itself, or a device
 * buffer (which counts floats: two 16-bit elements a float). */
static int place(linattn_ctx *ctx, void *h, linattn_dtype dt, int nd, const int64_t *sh,
                 size_t n, linattn_buffer **b, linattn_tensor *t)
{
    *t = linattn_tensor_nd(h, dt, nd, sh);
    if (!on_device(ctx)) return 0;
    const size_t words = (n * linattn_dtype_size(dt) + 3) / 4;
    if (linattn_buffer_create(ctx, words, b) || linattn_buffer_write(*b, 0, h, words)) return -1;
    *t = linattn_tensor_buffer(*b, nd, sh);
    t->dtype = dt;
    return 0;
}

/* A step on the CPU takes its per-token inputs in turn from BENCH_ROT
 * tokens' worth (benchop.h); on a device the offsets would make the library
 * gather them, which the GPU, without a subnormal penalty, does not need. */
static int rotates(linattn_ctx *ctx, const linattn_op_info *op)
{
    return !strcmp(op->entry, "step") && !on_device(ctx);
}

/* q, k and v (table indices idx) as views of one array [lead.., W] with W
 * = Q*K + J*K + H*V, random in [-1, 1] with q's and k's rows of unit
 * length; held by s->h / s->b of q. */
static int make_fused(bench_op *s, const int64_t *dims, const int *idx, unsigned *seed)
{
    const int nd = s->op->tensors[idx[0]].ndim;
    int64_t sh[3][LINATTN_MAX_DIMS], W = 0, rows = 1;
    for (int j = 0; j < 3; j++) {
        if (linattn_op_shape(s->op, idx[j], dims, sh[j])) return -1;
        W += sh[j][nd - 2] * sh[j][nd - 1];
    }
    for (int d = 0; d < nd - 2; d++) rows *= sh[0][d];
    const int64_t R = rotates(s->ctx, s->op) ? BENCH_ROT : 1, one = rows * W;
    rows *= R;
    float *h = s->h[idx[0]] = bench_randbuf((size_t)(rows * W), -1, 1, seed);
    if (!h) return -1;
    for (int64_t r = 0; r < rows; r++) {
        unit_rows(h + r * W, (size_t)sh[0][nd - 2], sh[0][nd - 1]);
        unit_rows(h + r * W + sh[0][nd - 2] * sh[0][nd - 1], (size_t)sh[1][nd - 2], sh[1][nd - 1]);
    }
    if (narrow(&s->h[idx[0]], (size_t)(rows * W), tensor_dtype)) return -1;
    const int64_t whole[2] = {rows, W};
    linattn_tensor base;
    if (place(s->ctx, s->h[idx[0]], tensor_dtype, 2, whole, (size_t)(rows * W), &s->b[idx[0]],
              &base))
        return -1;
    int64_t off = 0;
    for (int j = 0; j < 3; j++) {
        linattn_tensor t = base;
        t.ndim = nd;
        int64_t stride = W;
        for (int d = nd - 3; d >= 0; d--) {
            t.strides[d] = stride;
            stride *= sh[j][d];
        }
        for (int d = 0; d < nd; d++) t.shape[d] = sh[j][d];
        t.strides[nd - 2] = sh[j][nd - 1];
        t.strides[nd - 1] = 1;
        t.offset = off;
        s->off0[idx[j]] = off;
        s->rot[idx[j]] = R > 1 ? one : 0;
        off += sh[j][nd - 2] * sh[j][nd - 1];
        s->a.t[idx[j]] = t;
    }
    return 0;
}

/* A KV cache of L tokens [B,H,K|V], filled by appends of random keys and
 * values in [-1, 1]. */
static int fill_cache(bench_op *s, const int64_t dims[LINATTN_OP_LETTERS], int64_t L,
                      unsigned *seed)
{
    const int64_t B = D('B'), H = D('J'), K = D('K'), V = D('V'); /* key/value heads */
    if (linattn_kvcache_create(s->ctx, B, H, K, V, L + 1, &s->a.cache)) return -1;
    int rc = 0;
    for (int64_t t0 = 0; t0 < L && !rc; t0 += FILL) {
        const int64_t n = L - t0 < FILL ? L - t0 : FILL;
        const int64_t sh[2][4] = {{B, n, H, K}, {B, n, H, V}};
        float *h[2] = {NULL, NULL};
        linattn_buffer *b[2] = {NULL, NULL};
        linattn_tensor t[2];
        for (int i = 0; i < 2 && !rc; i++) {
            const size_t cnt = (size_t)(B * n * H * sh[i][3]);
            rc = !(h[i] = bench_randbuf(cnt, -1, 1, seed)) ||
                 place(s->ctx, h[i], LINATTN_F32, 4, sh[i], cnt, &b[i], &t[i]);
        }
        if (!rc) rc = linattn_kvcache_append(s->ctx, s->a.cache, &t[0], &t[1]);
        for (int i = 0; i < 2; i++) {
            free(h[i]);
            linattn_buffer_destroy(b[i]);
        }
    }
    s->L = L;
    return rc ? -1 : 0;
}

#define MAX_SET 16
static struct { char name[48]; char value[48]; } sets[MAX_SET];
static int nsets;

int bench_op_set(const char *nv)
{
    const char *eq = strchr(nv, '=');
    if (!eq || eq == nv || !eq[1] || nsets == MAX_SET || (size_t)(eq - nv) >= sizeof sets[0].name ||
        strlen(eq + 1) >= sizeof sets[0].value)
        return -1;
    snprintf(sets[nsets].name, sizeof sets[nsets].name, "%.*s", (int)(eq - nv), nv);
    snprintf(sets[nsets].value, sizeof sets[nsets].value, "%s", eq + 1);
    nsets++;
    return 0;
}

void bench_op_print_sets(FILE *f)
{
    if (!nsets) return;
    fprintf(f, "# options set (--set):");
    for (int i = 0; i < nsets; i++) fprintf(f, " %s=%s", sets[i].name, sets[i].value);
    fprintf(f, "\n");
}

const char *bench_op_bad_set(const char *const *ops, int n)
{
    /* a set's name and value (bounded: gcc's -Wformat-truncation otherwise
     * sizes sets[i].name by the whole table) and the library's message */
    static char bad[sizeof sets[0].name + sizeof sets[0].value + 512];
    const int nl = (int)sizeof sets[0].name, vl = (int)sizeof sets[0].value;
    for (int i = 0; i < nsets; i++) {
        int used = 0;
        for (int o = 0; o < n && !used; o++)
            for (int e = 0; e < 2 && !used; e++) {
                const linattn_op_info *op = linattn_op_find(ops[o], e ? "step" : "forward");
                const int j = op ? linattn_op_option_index(op, sets[i].name) : -1;
                double x;
                if (j < 0) continue;
                if (linattn_op_option_parse(op, j, sets[i].value, &x)) {
                    snprintf(bad, sizeof bad, "%.*s=%.*s: %s", nl, sets[i].name, vl,
                             sets[i].value, linattn_last_error());
                    return bad;
                }
                used = 1;
            }
        if (!used) {
            snprintf(bad, sizeof bad, "%.*s=%.*s: no operator measured takes %.*s", nl,
                     sets[i].name, vl, sets[i].value, nl, sets[i].name);
            return bad;
        }
    }
    return NULL;
}

/* The --set options that op takes, into args; 0 or -1 (message recorded). */
static int apply_sets(const linattn_op_info *op, linattn_op_args *a)
{
    for (int i = 0; i < nsets; i++) {
        const int j = linattn_op_option_index(op, sets[i].name);
        if (j >= 0 && linattn_op_option_parse(op, j, sets[i].value, &a->opt[j])) return -1;
    }
    return 0;
}

int bench_op_make(bench_op *s, linattn_ctx *ctx, const linattn_op_info *op,
                  const int64_t dims_in[LINATTN_OP_LETTERS], linattn_algo algo, int64_t L,
                  unsigned *seed)
{
    int64_t dims[LINATTN_OP_LETTERS];
    memset(s, 0, sizeof *s);
    s->op = op;
    s->ctx = ctx;
    linattn_op_args_init(op, &s->a);
    if (apply_sets(op, &s->a)) return -1;
    const int ai = linattn_op_option_index(op, "algo");
    if (ai >= 0) s->a.opt[ai] = (double)algo;
    memcpy(dims, dims_in, sizeof dims);
    linattn_op_dims(op, &s->a, dims);
    int fused[3] = {-1, -1, -1};
    if (strided) {
        if (!bench_op_fusable(op)) return -1; /* linattn-bench refuses it first */
        for (int j = 0; j < 3; j++) fused[j] = linattn_op_tensor_index(op, QKV_NAMES[j]);
        if (make_fused(s, dims, fused, seed)) return -1;
    }
    for (int i = 0; i < op->ntensors; i++) {
        const linattn_op_tensor *d = &op->tensors[i];
        if (d->optional && d->role == LINATTN_ROLE_IN && d->dims[0] == 'N') continue;
        if (i == fused[0] || i == fused[1] || i == fused[2]) continue;
        int64_t sh[LINATTN_MAX_DIMS];
        const int nd = linattn_op_rank(op, i, dims);
        if (linattn_op_shape(op, i, dims, sh)) {
            if (d->optional) continue; /* nothing sizes it (the serving rows hW, hC) */
            return -1;
        }
        size_t n = 1;
        for (int j = 0; j < nd; j++) n *= (size_t)sh[j];
        const int rotate = rotates(ctx, op) && d->role == LINATTN_ROLE_IN && d->dims[0] == 'B';
        if (rotate) { /* BENCH_ROT tokens' worth, the tensor over the first */
            s->rot[i] = (int64_t)n;
            n *= BENCH_ROT;
            sh[0] *= BENCH_ROT;
        }
        if (!(s->h[i] = bench_randbuf(n, d->fill_lo, d->fill_hi, seed))) return -1;
        if (d->role == LINATTN_ROLE_IN && d->dims[0] == 'B' && nd == d->ndim &&
            d->dims[d->ndim - 1] == 'K')
            unit_rows(s->h[i], n / (size_t)D('K'), D('K'));
        const linattn_dtype dt = dtype_of(op, i);
        if (narrow(&s->h[i], n, dt) || place(ctx, s->h[i], dt, nd, sh, n, &s->b[i], &s->a.t[i]))
            return -1;
        if (rotate) s->a.t[i].shape[0] /= BENCH_ROT;
    }
    if (op->cache && fill_cache(s, dims, L, seed)) return -1;
    return 0;
}

int bench_op_call(void *arg)
{
    bench_op *s = arg;
    const int64_t c = s->calls++ % BENCH_ROT;
    for (int i = 0; i < s->op->ntensors; i++)
        if (s->rot[i]) s->a.t[i].offset = s->off0[i] + c * s->rot[i];
    const int rc = linattn_op_call(s->ctx, s->op, &s->a);
    return rc || !s->a.cache ? rc : linattn_kvcache_truncate(s->a.cache, s->L);
}

double bench_op_state_bytes(const bench_op *s)
{
    if (s->a.cache)
        return (double)linattn_kvcache_bytes(s->a.cache) * (double)s->L / (double)(s->L + 1);
    double bytes = 0;
    for (int i = 0; i < s->op->ntensors; i++) {
        const linattn_tensor *t = &s->a.t[i];
        if (s->op->tensors[i].role != LINATTN_ROLE_INOUT || !s->h[i]) continue;
        double n = (double)linattn_dtype_size(t->dtype);
        for (int j = 0; j < t->ndim; j++) n *= (double)t->shape[j];
        bytes += n;
    }
    return bytes;
}

void bench_op_free(bench_op *s)
{
    for (int i = 0; i < LINATTN_OP_MAX_TENSORS; i++) {
        free(s->h[i]);
        linattn_buffer_destroy(s->b[i]);
    }
    linattn_kvcache_destroy(s->a.cache);
    memset(s, 0, sizeof *s);
}
