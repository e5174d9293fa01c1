/* linattn-bench --mode context: decode one token after L tokens of context,
 * for each operator, against softmax attention over a KV cache of L tokens;
 * the bytes each keeps (state, or KV cache) and where softmax stops being
 * faster.  Operands live in device buffers on an OpenCL context. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "benchctx.h"
#include "benchsvg.h"
#include "benchsys.h"

#define MAXT 12 /* tensors of one step */
#define FILL 1024 /* tokens per append while filling a cache */

/* The operands of one decode step (host memory, and buffers on OpenCL). */
typedef struct stepper {
    linattn_ctx *ctx;
    int op, n;
    float *h[MAXT];
    linattn_buffer *b[MAXT];
    linattn_tensor t[MAXT];
    linattn_kvcache *cache;
    int64_t L;
    double state_bytes;
} stepper;

static unsigned seed = 777;


/* Tensor i of shape sh (nd dims) filled in [lo, hi]; a buffer on OpenCL. */
static int tens(stepper *s, int i, int nd, const int64_t *sh, float lo, float hi)
{
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= (size_t)sh[d];
    if (!(s->h[i] = bench_randbuf(n, lo, hi, &seed))) return -1;
    s->t[i] = linattn_tensor_4d(s->h[i], sh[0], nd > 1 ? sh[1] : 0, nd > 2 ? sh[2] : 0,
                                nd > 3 ? sh[3] : 0);
    s->t[i].ndim = nd;
    if (linattn_ctx_backend(s->ctx) == LINATTN_BACKEND_OPENCL) {
        if (linattn_buffer_create(s->ctx, n, &s->b[i]) ||
            linattn_buffer_write(s->b[i], 0, s->h[i], n))
            return -1;
        s->t[i] = linattn_tensor_buffer(s->b[i], nd, sh);
    }
    if (i >= s->n) s->n = i + 1;
    return 0;
}

static void stepper_free(stepper *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->h[i]);
        linattn_buffer_destroy(s->b[i]);
    }
    linattn_kvcache_destroy(s->cache);
    memset(s, 0, sizeof *s);
}

/* A softmax cache of L tokens, filled by appends of random keys and values. */
static int fill_cache(stepper *s, const bench_ctx_shape *g, int64_t L)
{
    const int64_t B = 1, H = g->H, K = g->K, V = g->V;
    if (linattn_kvcache_create(s->ctx, &s->cache, B, H, K, V, L + 1)) return -1;
    stepper tmp = {.ctx = s->ctx};
    int rc = 0;
    for (int64_t t0 = 0; t0 < L && !rc; t0 += FILL) {
        const int64_t n = L - t0 < FILL ? L - t0 : FILL;
        const int64_t sk[4] = {B, n, H, K}, sv[4] = {B, n, H, V};
        rc = tens(&tmp, 0, 4, sk, -1, 1) || tens(&tmp, 1, 4, sv, -1, 1) ||
             linattn_kvcache_append(s->ctx, s->cache, &tmp.t[0], &tmp.t[1]);
        stepper_free(&tmp);
        tmp.ctx = s->ctx;
    }
    s->state_bytes = (double)linattn_kvcache_bytes(s->cache) * (double)L / (double)(L + 1);
    return rc ? -1 : 0;
}

/* q k v [B,H,K|V], gates [B,H], o, and the op's state. */
static int stepper_make(stepper *s, linattn_ctx *ctx, int op, const bench_ctx_shape *g, int64_t L)
{
    const int64_t B = 1, H = g->H, K = g->K, V = g->V, M = g->M, S = g->S;
    const int64_t q[3] = {B, H, K}, v[3] = {B, H, V}, gt[2] = {B, H};
    memset(s, 0, sizeof *s);
    s->ctx = ctx;
    s->op = op;
    s->L = L;
    switch (op) {
    case BENCH_CTX_GDN: case BENCH_CTX_KLA: case BENCH_CTX_GLA: {
        const int64_t st[4] = {B, H, K, V};
        s->state_bytes = 4.0 * H * K * V;
        return tens(s, 0, 3, q, -0.09f, 0.09f) || tens(s, 1, 3, q, -0.09f, 0.09f) ||
               tens(s, 2, 3, v, -1, 1) || tens(s, 3, 2, gt, -0.1f, 0) ||
               tens(s, 4, 2, gt, 0.1f, 0.9f) || tens(s, 5, 4, st, -0.01f, 0.01f) ||
               tens(s, 6, 3, v, 0, 0) ? -1 : 0;
    }
    case BENCH_CTX_GKA: {
        const int64_t kk[4] = {B, H, K, K}, kv[4] = {B, H, K, V};
        s->state_bytes = 4.0 * H * K * (K + V);
        return tens(s, 0, 3, q, -0.09f, 0.09f) || tens(s, 1, 3, q, -0.09f, 0.09f) ||
               tens(s, 2, 3, v, -1, 1) || tens(s, 3, 2, gt, -0.1f, 0) ||
               tens(s, 4, 2, gt, 0.1f, 0.9f) || tens(s, 5, 2, gt, 0, 1) ||
               tens(s, 6, 4, kk, 0, 0.01f) || tens(s, 7, 4, kv, -0.01f, 0.01f) ||
               tens(s, 8, 3, v, 0, 0) ? -1 : 0;
    }
    case BENCH_CTX_KALMAN: {
        const int64_t bm[2] = {B, M}, bs[2] = {B, S}, ms[2] = {M, S}, st[3] = {B, M, S};
        s->state_bytes = 8.0 * M * S;
        return tens(s, 0, 2, bm, -1, 1) || tens(s, 1, 2, bm, 0.1f, 100) ||
               tens(s, 2, 2, bs, -0.25f, 0.25f) || tens(s, 3, 2, bs, -0.25f, 0.25f) ||
               tens(s, 4, 2, ms, 0.9f, 0.999f) || tens(s, 5, 2, ms, 1e-4f, 1e-2f) ||
               tens(s, 6, 3, st, 1, 10) || tens(s, 7, 3, st, -1, 1) || tens(s, 8, 2, bm, 0, 0) ||
               tens(s, 9, 2, bm, 0, 0) ? -1 : 0;
    }
    case BENCH_CTX_ELA: {
        const int64_t F = linattn_ela_feature_dim(LINATTN_FEATURE_EXP, K);
        const int64_t sv[4] = {B, H, F, V}, sz[3] = {B, H, F};
        s->state_bytes = 4.0 * H * F * (V + 2);
        return tens(s, 0, 3, q, -1, 1) || tens(s, 1, 3, q, -1, 1) || tens(s, 2, 3, v, -1, 1) ||
               tens(s, 3, 4, sv, 0, 1) || tens(s, 4, 3, sz, 1, 2) || tens(s, 5, 3, sz, 0, 0) ||
               tens(s, 6, 3, v, 0, 0) ? -1 : 0;
    }
    default: /* softmax */
        return tens(s, 0, 3, q, -1, 1) || tens(s, 1, 3, q, -1, 1) || tens(s, 2, 3, v, -1, 1) ||
               tens(s, 3, 3, v, 0, 0) || fill_cache(s, g, L) ? -1 : 0;
    }
}

static int stepper_step(void *arg)
{
    stepper *s = arg;
    const linattn_tensor *t = s->t;
    switch (s->op) {
    case BENCH_CTX_GDN: case BENCH_CTX_KLA: case BENCH_CTX_GLA: {
        const linattn_delta_step_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3],
                                          .beta = s->op == BENCH_CTX_GLA ? linattn_tensor_none() : t[4],
                                          .state = t[5], .o = t[6]};
        const linattn_delta_op op = s->op == BENCH_CTX_GDN ? LINATTN_OP_GDN
                                    : s->op == BENCH_CTX_KLA ? LINATTN_OP_KLA : LINATTN_OP_GLA;
        return linattn_delta_step(s->ctx, op, &io, NULL);
    }
    case BENCH_CTX_GKA: {
        const linattn_gka_step_io io = {.q = t[0], .k = t[1], .v = t[2], .g = t[3], .beta = t[4],
                                        .alpha = t[5], .state_kk = t[6], .state_kv = t[7],
                                        .o = t[8]};
        return linattn_gka_step(s->ctx, &io, NULL);
    }
    case BENCH_CTX_KALMAN: {
        const linattn_kalman_step_io io = {.v = t[0], .lam_v = t[1], .k = t[2], .q = t[3],
                                           .decay = t[4], .noise = t[5], .state_lam = t[6],
                                           .state_eta = t[7], .y = t[8], .yvar = t[9]};
        return linattn_kalman_step(s->ctx, &io, NULL);
    }
    case BENCH_CTX_ELA: {
        const linattn_ela_step_io io = {.q = t[0], .k = t[1], .v = t[2], .state_s = t[3],
                                        .state_z = t[4], .state_c = t[5], .o = t[6]};
        return linattn_ela_step(s->ctx, &io, NULL);
    }
    default: { /* softmax: attend over L + 1 tokens, then back to L */
        const linattn_softmax_step_io io = {.q = t[0], .k = t[1], .v = t[2], .o = t[3]};
        const int rc = linattn_softmax_step(s->ctx, s->cache, &io, NULL);
        return rc ? rc : linattn_kvcache_truncate(s->cache, s->L);
    }
    }
}

const char *const bench_ctx_names[BENCH_CTX_NOPS] = {"gdn", "kla", "gla", "gka", "kalman",
                                                     "ela", "softmax"};

static void human(double bytes, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB"};
    int i = 0;
    while (bytes >= 1024.0 && i < 3) {
        bytes /= 1024.0;
        i++;
    }
    snprintf(out, cap, "%.4g %s", bytes, u[i]);
}

/* Where softmax's step time meets an operator's (lin): the context below
 * which softmax is faster.  Linear between the measured lengths, and below
 * the first along the line through the first two.  Returns the length, 0
 * when softmax is slower even with an empty cache, -1 when it is faster at
 * every measured length. */
static double crossover(const int64_t *L, const double *soft, int n, double lin)
{
    int i = 0;
    while (i < n && soft[i] <= lin) i++;
    if (i == n) return -1;
    const int j = i ? i - 1 : 0, k = i ? i : (n > 1 ? 1 : 0);
    if (j == k) return 0;
    const double b = (soft[k] - soft[j]) / (double)(L[k] - L[j]);
    if (b <= 0) return i ? (double)L[j] : 0;
    const double x = (double)L[j] + (lin - soft[j]) / b;
    return x > 0 ? x : 0;
}

int bench_context(linattn_ctx *ctx, const char *backend, const int *ops, int nops,
                  const int64_t *L, int nl, const bench_ctx_shape *g, long reps,
                  svg_series *ser, int *nser)
{
    double sec[BENCH_CTX_NOPS][16], bytes[BENCH_CTX_NOPS][16];
    int have[BENCH_CTX_NOPS] = {0};
    printf("# context decode: B=1, H=%ld, K=%ld, V=%ld (kalman M=%ld, S=%ld, ela exp), one token "
           "after L of context; softmax attends over a KV cache of L tokens\n",
           (long)g->H, (long)g->K, (long)g->V, (long)g->M, (long)g->S);
    printf("%-8s %-7s %8s %10s %11s %12s %9s\n", "op", "backend", "L", "ms/token", "tokens/s",
           "state/KV", "speedup");
    for (int li = 0; li < nl; li++) {
        for (int oi = 0; oi < nops; oi++) {
            const int op = ops[oi];
            stepper s;
            int rc = stepper_make(&s, ctx, op, g, L[li]);
            if (!rc && li == 0 && oi == 0) { /* wake the threads (ours, BLAS's) untimed */
                const double t0 = bench_now();
                while (!rc && bench_now() - t0 < 0.2) rc = stepper_step(&s);
            }
            if (rc || bench_time_repeated(stepper_step, &s, reps, &sec[op][li])) {
                fprintf(stderr, "linattn-bench: %s L=%lld: %s\n", bench_ctx_names[op],
                        (long long)L[li], linattn_last_error());
                stepper_free(&s);
                return -1;
            }
            bytes[op][li] = s.state_bytes;
            have[op] = 1;
            stepper_free(&s);
        }
        for (int oi = 0; oi < nops; oi++) {
            const int op = ops[oi];
            char hb[32], rel[32] = "";
            human(bytes[op][li], hb, sizeof hb);
            if (have[BENCH_CTX_SOFTMAX] && op != BENCH_CTX_SOFTMAX)
                snprintf(rel, sizeof rel, "%.2fx", sec[BENCH_CTX_SOFTMAX][li] / sec[op][li]);
            printf("%-8s %-7s %8lld %10.4f %11.1f %12s %9s\n", bench_ctx_names[op], backend,
                   (long long)L[li], sec[op][li] * 1e3, 1.0 / sec[op][li], hb, rel);
        }
        fflush(stdout);
    }
    if (have[BENCH_CTX_SOFTMAX])
        for (int oi = 0; oi < nops; oi++) {
            const int op = ops[oi];
            if (op == BENCH_CTX_SOFTMAX) continue;
            double tl[16]; /* its step does not depend on L: the median over L */
            memcpy(tl, sec[op], sizeof(double) * (size_t)nl);
            const double lin = bench_median(tl, nl);
            const double x = crossover(L, sec[BENCH_CTX_SOFTMAX], nl, lin);
            if (x < 0)
                printf("# crossover %s: softmax decode is faster at every measured length\n",
                       bench_ctx_names[op]);
            else if (x == 0)
                printf("# crossover %s: softmax decode is slower at every length, even with an "
                       "empty cache\n", bench_ctx_names[op]);
            else
                printf("# crossover %s: softmax decode is faster below about %.0f tokens of "
                       "context\n", bench_ctx_names[op], x);
        }
    for (int oi = 0; oi < nops && *nser < BENCH_CTX_MAXSER; oi++) {
        const int op = ops[oi];
        svg_series *e = &ser[(*nser)++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s %s", bench_ctx_names[op], backend);
        for (int li = 0; li < nl && li < 32; li++) {
            e->x[e->n] = (double)L[li];
            e->y[e->n++] = 1.0 / sec[op][li];
        }
    }
    return 0;
}
