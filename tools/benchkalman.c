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
        if (!(s->h[i] = bench_randbuf(count[i], lo[i], hi[i], &seed))) return -1;
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

typedef struct timed { linattn_ctx *ctx; const kset *s; linattn_algo algo; } timed;
static int timed_forward(void *a)
{
    const timed *x = a;
    return forward(x->ctx, x->s, x->algo);
}
static int timed_step(void *a)
{
    const timed *x = a;
    return step(x->ctx, x->s);
}

int bench_kalman_prefill(linattn_ctx *ctx, long B, long T, long M, long S, linattn_algo algo,
                         long reps, double *sec)
{
    kset s;
    int rc = kset_make(ctx, &s, B, T, M, S);
    timed x = {ctx, &s, algo};
    if (!rc) rc = bench_time_once(timed_forward, &x, reps, sec);
    kset_free(&s);
    return rc ? -1 : 0;
}

int bench_kalman_decode(linattn_ctx *ctx, long B, long M, long S, long reps, double *sec)
{
    kset s;
    int rc = kset_make(ctx, &s, B, 0, M, S);
    timed x = {ctx, &s, LINATTN_ALGO_AUTO};
    if (!rc) rc = bench_time_repeated(timed_step, &x, reps, sec);
    kset_free(&s);
    return rc ? -1 : 0;
}
