/* linattn - the KV cache of softmax attention: keys [B,H,cap,K] and values
 * [B,H,cap,V], each (batch row, head) contiguous so that a decode step
 * streams it; host memory on CPU and reference contexts, device memory on
 * OpenCL ones.  Growth doubles the capacity and moves the tokens held; it
 * either succeeds or leaves the cache as it was. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define MIN_CAPACITY 16

/* Bytes of one of k (d = K) or v (d = V) at capacity cap; 0 on overflow. */
static size_t part_bytes(const linattn_kvcache *c, int64_t cap, int64_t d)
{
    const int64_t f[4] = {c->B, c->H, d, cap};
    uint64_t n = sizeof(float);
    for (int i = 0; i < 4; i++) {
        if (f[i] <= 0 || (uint64_t)f[i] > (uint64_t)PTRDIFF_MAX / n) return 0;
        n *= (uint64_t)f[i];
    }
    return (size_t)n;
}

/* k and v bytes at capacity cap, or LINATTN_EOVERFLOW. */
static int cache_bytes(const linattn_kvcache *c, int64_t cap, size_t *bk, size_t *bv)
{
    *bk = part_bytes(c, cap, c->K);
    *bv = part_bytes(c, cap, c->V);
    if (!*bk || !*bv || *bk > (size_t)PTRDIFF_MAX - *bv)
        return linattn_fail(LINATTN_EOVERFLOW, "cache: %lld tokens of B=%lld H=%lld K=%lld V=%lld "
                            "overflow the address space", (long long)cap, (long long)c->B,
                            (long long)c->H, (long long)c->K, (long long)c->V);
    return LINATTN_OK;
}

static float *alloc64(size_t bytes)
{
    return linattn_aligned_alloc(64, (bytes + 63) / 64 * 64);
}

static int resize(linattn_kvcache *c, int64_t cap)
{
    size_t bk, bv;
    int rc;
    if ((rc = cache_bytes(c, cap, &bk, &bv))) return rc;
    const int64_t rows = c->B * c->H;
    if (c->ctx->cl)
        return linattn_cl_kv_resize(c->ctx->cl, &c->dev, rows, (int)c->K, (int)c->V, c->len,
                                    c->cap, cap);
    float *nk = alloc64(bk), *nv = alloc64(bv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return linattn_fail(LINATTN_ENOMEM, "cache: out of memory for %lld tokens (%zu bytes)",
                            (long long)cap, bk + bv);
    }
    for (int64_t r = 0; r < rows && c->len; r++) {
        memcpy(nk + r * cap * c->K, c->hk + r * c->cap * c->K, sizeof(float) * c->len * c->K);
        memcpy(nv + r * cap * c->V, c->hv + r * c->cap * c->V, sizeof(float) * c->len * c->V);
    }
    free(c->hk);
    free(c->hv);
    c->hk = nk;
    c->hv = nv;
    return LINATTN_OK;
}

int linattn_kvcache_reserve(linattn_kvcache *c, int64_t n)
{
    int rc;
    if (n > INT64_MAX / 2 - c->len)
        return linattn_fail(LINATTN_EOVERFLOW, "cache: %lld + %lld tokens overflow",
                            (long long)c->len, (long long)n);
    const int64_t need = c->len + n;
    if (need <= c->cap) return LINATTN_OK;
    int64_t cap = c->cap > INT64_MAX / 4 ? need : 2 * c->cap;
    if (cap < need) cap = need;
    if (cap < MIN_CAPACITY) cap = MIN_CAPACITY;
    if ((rc = resize(c, cap))) return rc;
    c->cap = cap;
    return LINATTN_OK;
}

typedef struct put_job {
    linattn_kvcache *c;
    int64_t T;
    const linattn_rows *k, *v;
} put_job;

static void put_row(void *arg, int64_t row, int thread)
{
    (void)thread;
    const put_job *p = arg;
    const linattn_kvcache *c = p->c;
    const int64_t b = row / c->H, h = row % c->H, K = c->K, V = c->V;
    float *dk = c->hk + (row * c->cap + c->len) * K, *dv = c->hv + (row * c->cap + c->len) * V;
    for (int64_t t = 0; t < p->T; t++) {
        memcpy(dk + t * K, linattn_row(p->k, b, t, h), sizeof(float) * K);
        memcpy(dv + t * V, linattn_row(p->v, b, t, h), sizeof(float) * V);
    }
}

void linattn_kvcache_put(const linattn_ctx *ctx, linattn_kvcache *c, int64_t T,
                         const linattn_rows *k, const linattn_rows *v)
{
    put_job p = {.c = c, .T = T, .k = k, .v = v};
    if (T == 1 || c->B * c->H == 1) { /* a step: too little to share out */
        for (int64_t r = 0; r < c->B * c->H; r++) put_row(&p, r, 0);
        return;
    }
    linattn_parallel_for(ctx, c->B * c->H, put_row, &p);
}

static int check_size(int64_t n, const char *name)
{
    if (n <= 0)
        return linattn_fail(LINATTN_ESIZE, "%s: %lld (must be > 0)", name, (long long)n);
    return LINATTN_OK;
}

int linattn_kvcache_create(linattn_ctx *ctx, int64_t B, int64_t H, int64_t K, int64_t V,
                           int64_t capacity, linattn_kvcache **out)
{
    int rc;
    if (!out) return linattn_fail(LINATTN_ENULL, "out: NULL");
    *out = NULL;
    if (!ctx) return linattn_fail(LINATTN_ENULL, "ctx: NULL");
    if ((rc = check_size(B, "B")) || (rc = check_size(H, "H")) || (rc = check_size(K, "K")) ||
        (rc = check_size(V, "V")))
        return rc;
    if (capacity < 0)
        return linattn_fail(LINATTN_ESIZE, "capacity: %lld (must be >= 0)", (long long)capacity);
    if (K > LINATTN_MAX_HEAD_DIM)
        return linattn_fail(LINATTN_EHEADDIM, "K: key head size %lld above %d", (long long)K,
                            LINATTN_MAX_HEAD_DIM);
    if (V > LINATTN_MAX_HEAD_DIM)
        return linattn_fail(LINATTN_EHEADDIM, "V: value head size %lld above %d", (long long)V,
                            LINATTN_MAX_HEAD_DIM);
    linattn_kvcache *c = linattn_calloc(1, sizeof *c);
    if (!c) return linattn_fail(LINATTN_ENOMEM, "cache: out of memory");
    *c = (linattn_kvcache){.ctx = ctx, .B = B, .H = H, .K = K, .V = V};
    size_t bk, bv;
    if ((rc = cache_bytes(c, 1, &bk, &bv)) ||
        (capacity && ((rc = cache_bytes(c, capacity, &bk, &bv)) || (rc = resize(c, capacity))))) {
        free(c);
        return rc;
    }
    c->cap = capacity;
    *out = c;
    return LINATTN_OK;
}

void linattn_kvcache_destroy(linattn_kvcache *c)
{
    if (!c) return;
    free(c->hk);
    free(c->hv);
    linattn_cl_kv_free(&c->dev);
    free(c);
}

int64_t linattn_kvcache_length(const linattn_kvcache *c) { return c ? c->len : 0; }
int64_t linattn_kvcache_capacity(const linattn_kvcache *c) { return c ? c->cap : 0; }

size_t linattn_kvcache_bytes(const linattn_kvcache *c)
{
    size_t bk, bv;
    if (!c || !c->cap || cache_bytes(c, c->cap, &bk, &bv)) return 0;
    return bk + bv;
}

int linattn_kvcache_reset(linattn_kvcache *c) { return linattn_kvcache_truncate(c, 0); }

int linattn_kvcache_truncate(linattn_kvcache *c, int64_t length)
{
    if (!c) return linattn_fail(LINATTN_ENULL, "cache: NULL");
    if (length < 0 || length > c->len)
        return linattn_fail(LINATTN_ERANGE, "length: %lld (must be 0..%lld, the length held)",
                            (long long)length, (long long)c->len);
    c->len = length;
    return LINATTN_OK;
}

int linattn_kvcache_append(linattn_ctx *ctx, linattn_kvcache *c, const linattn_tensor *k,
                           const linattn_tensor *v)
{
    int rc;
    int64_t sk[4], sv[4];
    if (!ctx) return linattn_fail(LINATTN_ENULL, "ctx: NULL");
    if (!c) return linattn_fail(LINATTN_ENULL, "cache: NULL");
    if (!k) return linattn_fail(LINATTN_ENULL, "k: NULL");
    if (!v) return linattn_fail(LINATTN_ENULL, "v: NULL");
    if (c->ctx != ctx)
        return linattn_fail(LINATTN_EINVAL, "cache: belongs to another context");
    if ((rc = linattn_check_lead(k, "k", 4, sk)) || (rc = linattn_check_lead(v, "v", 4, sv)))
        return rc;
    const int64_t want_k[4] = {c->B, sk[1], c->H, c->K}, want_v[4] = {c->B, sk[1], c->H, c->V};
    static const char *const dims[4] = {"B", "T", "H", "K"};
    for (int d = 0; d < 4; d++) {
        if (sk[d] != want_k[d])
            return linattn_fail(LINATTN_ESHAPE, "k: dimension %d (%s) is %lld, the cache's is %lld",
                                d, dims[d], (long long)sk[d], (long long)want_k[d]);
        if (sv[d] != want_v[d])
            return linattn_fail(LINATTN_ESHAPE, "v: dimension %d (%s) is %lld, %s is %lld", d,
                                d == 3 ? "V" : dims[d], (long long)sv[d],
                                d == 1 ? "k's" : "the cache's", (long long)want_v[d]);
    }
    linattn_tensor kx = *k, vx = *v;
    linattn_tensor *const ts[] = {&kx, &vx};
    static const char *const names[] = {"k", "v"};
    linattn_packset ps;
    if ((rc = linattn_views_begin(&ps, ctx, ts, names, 2, 0x3u, 0, 0x3u, 0, 0))) return rc;
    linattn_clear_error();
    if ((rc = linattn_kvcache_reserve(c, sk[1]))) return linattn_pack_end(&ps, rc);
    if (ctx->cl) {
        const linattn_cl_kvstep a = {.B = c->B, .T = sk[1], .H = c->H, .len = c->len,
                                     .cap = c->cap, .K = (int)c->K, .V = (int)c->V,
                                     .k = linattn_cl_arg_of(&kx), .v = linattn_cl_arg_of(&vx)};
        if ((rc = linattn_cl_kv_run(ctx->cl, &c->dev, &a))) return linattn_pack_end(&ps, rc);
    } else {
        const linattn_rows rk = linattn_rows_of(&kx, 1, 1), rv = linattn_rows_of(&vx, 1, 1);
        linattn_kvcache_put(ctx, c, sk[1], &rk, &rv);
    }
    c->len += sk[1];
    return linattn_pack_end(&ps, LINATTN_OK);
}
