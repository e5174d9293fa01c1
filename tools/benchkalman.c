/* linattn-bench - operands and timed calls of kalman (lanes M x S rather
 * than heads), in host memory or, on an OpenCL context, device buffers. */
#include <stdlib.h>
#include <string.h>
#include "benchkalman.h"
#include "benchsys.h"

enum { V, LV, KK, Q, A, P, Y, YV, LAM, ETA, N };

typedef struct kset {
    float *h[N];
    linattn_buffer *b[N];
    linattn_tensor t[N];
} kset;

static void kset_free(kset *s)
{
    for (int i = 0; i < N; i++) {
        free(s->h[i]);
        linattn_buffer_destroy(s->b[i]);
    }
}

static float *fill(size_t n, float lo, float hi, unsigned *seed)
{
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; p && i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * (float)(*seed >> 8) * (1.0f / 16777216.0f);
    }
    return p;
}

/* T = 0: decode shapes [B,M] and [B,S]. */
static int kset_make(linattn_ctx *ctx, kset *s, long B, long T, long M, long S)
{
    unsigned seed = 4242;
    const int pre = T > 0;
    const size_t rows = (size_t)B * (pre ? T : 1);
    const size_t count[N] = {rows * M, rows * M, rows * S, rows * S, (size_t)M * S, (size_t)M * S,
                             rows * M, rows * M, (size_t)B * M * S, (size_t)B * M * S};
    static const float lo[N] = {-1, 0.1f, -0.25f, -0.25f, 0.9f, 1e-4f, 0, 0, 1, 0};
    static const float hi[N] = {1, 100, 0.25f, 0.25f, 0.999f, 1e-2f, 0, 0, 1, 0};
    memset(s, 0, sizeof *s);
    for (int i = 0; i < N; i++) {
        if (!(s->h[i] = fill(count[i], lo[i], hi[i], &seed))) return -1;
        const int64_t lead = pre ? T : 0;
        int64_t sh[3];
        int nd;
        if (i == A || i == P) { sh[0] = M; sh[1] = S; nd = 2; }
        else if (i == LAM || i == ETA) { sh[0] = B; sh[1] = M; sh[2] = S; nd = 3; }
        else {
            const int64_t last = (i == KK || i == Q) ? S : M;
            nd = 0;
            sh[nd++] = B;
            if (lead) sh[nd++] = lead;
            sh[nd++] = last;
        }
        s->t[i] = linattn_tensor_3d(s->h[i], sh[0], sh[1], nd > 2 ? sh[2] : 0);
        s->t[i].ndim = nd;
        if (linattn_ctx_backend(ctx) == LINATTN_BACKEND_OPENCL) {
            if (linattn_buffer_create(ctx, count[i], &s->b[i]) ||
                linattn_buffer_write(s->b[i], 0, s->h[i], count[i]))
                return -1;
            s->t[i] = linattn_tensor_buffer(s->b[i], nd, sh);
        }
    }
    return 0;
}

static int forward(linattn_ctx *ctx, const kset *s, linattn_algo algo)
{
    const linattn_tensor *t = s->t;
    linattn_kalman_io io = {.v = t[V], .lam_v = t[LV], .k = t[KK], .q = t[Q], .decay = t[A],
                            .noise = t[P], .y = t[Y], .yvar = t[YV], .lamT = t[LAM],
                            .etaT = t[ETA]};
    linattn_kalman_opts o;
    linattn_kalman_opts_init(&o);
    o.algo = algo;
    return linattn_kalman_forward(ctx, &io, &o);
}

static int step(linattn_ctx *ctx, const kset *s)
{
    const linattn_tensor *t = s->t;
    linattn_kalman_step_io io = {.v = t[V], .lam_v = t[LV], .k = t[KK], .q = t[Q],
                                 .decay = t[A], .noise = t[P], .y = t[Y], .yvar = t[YV],
                                 .state_lam = t[LAM], .state_eta = t[ETA]};
    return linattn_kalman_step(ctx, &io, NULL);
}

int bench_kalman_prefill(linattn_ctx *ctx, long B, long T, long M, long S, linattn_algo algo,
                         long reps, double *sec)
{
    double t[64];
    kset s;
    int rc = kset_make(ctx, &s, B, T, M, S);
    for (long r = -1; r < reps && !rc; r++) {
        const double t0 = bench_now();
        if ((rc = forward(ctx, &s, algo))) break;
        if (r >= 0) t[r] = bench_now() - t0;
    }
    kset_free(&s);
    if (rc) return -1;
    *sec = bench_median(t, (int)reps);
    return 0;
}

int bench_kalman_decode(linattn_ctx *ctx, long B, long M, long S, long reps, double *sec)
{
    double t[64];
    kset s;
    int rc = kset_make(ctx, &s, B, 0, M, S);
    double t0 = bench_now();
    if (!rc) rc = step(ctx, &s);
    const double one = bench_now() - t0;
    long n = (long)(0.05 / (one > 1e-7 ? one : 1e-7));
    if (n < 1) n = 1;
    if (n > 100000) n = 100000;
    for (long r = 0; r < reps && !rc; r++) {
        t0 = bench_now();
        for (long i = 0; i < n && !rc; i++) rc = step(ctx, &s);
        t[r] = (bench_now() - t0) / n;
    }
    kset_free(&s);
    if (rc) return -1;
    *sec = bench_median(t, (int)reps);
    return 0;
}
