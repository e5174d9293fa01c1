/* linattn-bench --mode onnx: linattn_linear_attention (linattn_onnx(3)) on
 * the packed [B,T,H*D] tensors ONNX's LinearAttention takes, so that its
 * figures compare with a runtime timing the same node (tools/peers/). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <math.h>
#include <stdlib.h>
#include "benchla.h"
#include "benchsys.h"

#define ROT 8 /* a decode step's inputs: 8 tokens' worth used in turn */

typedef struct la_run {
    linattn_ctx *ctx;
    linattn_la_attrs attrs;
    linattn_la_io io;
    float *q, *k, *v, *g, *beta, *out, *state;
    long nq, nk, nv, ng, nb; /* elements of one call's inputs */
    int decode;
    long calls;
} la_run;

/* Each row of d channels scaled to unit length, as models feed keys. */
static void unit_rows(float *x, long rows, long d)
{
    for (long r = 0; r < rows; r++) {
        double s = 0;
        for (long i = 0; i < d; i++) s += (double)x[r * d + i] * x[r * d + i];
        const float f = s > 0 ? (float)(1 / sqrt(s)) : 1;
        for (long i = 0; i < d; i++) x[r * d + i] *= f;
    }
}

static int la_call(void *arg)
{
    la_run *r = arg;
    const long c = r->decode ? r->calls++ % ROT : 0;
    r->io.query.data = r->q + c * r->nq;
    r->io.key.data = r->k + c * r->nk;
    r->io.value.data = r->v + c * r->nv;
    if (r->io.decay.ndim) r->io.decay.data = r->g + c * r->ng;
    if (r->io.beta.ndim) r->io.beta.data = r->beta + c * r->nb;
    return linattn_linear_attention(r->ctx, &r->io, &r->attrs);
}

int bench_la_time(linattn_ctx *ctx, const bench_la_shape *s, long reps, double *sec)
{
    la_run r = {0};
    unsigned seed = 12345;
    const long B = s->B, T = s->decode ? 1 : s->T, n = s->decode ? ROT : 1;
    const long gw = s->channel ? s->Hkv * s->K : s->Hkv;
    int rc = -1;
    r.ctx = ctx;
    r.decode = s->decode;
    r.nq = B * T * s->Hq * s->K;
    r.nk = B * T * s->Hkv * s->K;
    r.nv = B * T * s->Hkv * s->V;
    r.ng = B * T * gw;
    r.nb = B * T * s->Hkv;
    r.q = bench_randbuf((size_t)(n * r.nq), -1, 1, &seed);
    r.k = bench_randbuf((size_t)(n * r.nk), -1, 1, &seed);
    r.v = bench_randbuf((size_t)(n * r.nv), -1, 1, &seed);
    r.g = bench_randbuf((size_t)(n * r.ng), -1, 0, &seed);
    r.beta = bench_randbuf((size_t)(n * r.nb), 0, 1, &seed);
    r.out = calloc((size_t)(B * T * s->Hq * s->V), sizeof *r.out);
    r.state = bench_randbuf((size_t)(B * s->Hkv * s->K * s->V), -0.1f, 0.1f, &seed);
    if (!r.q || !r.k || !r.v || !r.g || !r.beta || !r.out || !r.state) goto done;
    unit_rows(r.q, n * r.nq / s->K, s->K);
    unit_rows(r.k, n * r.nk / s->K, s->K);
    linattn_la_attrs_init(&r.attrs);
    r.attrs.q_num_heads = (int)s->Hq;
    r.attrs.kv_num_heads = (int)s->Hkv;
    r.attrs.update_rule = s->rule;
    r.attrs.algo = s->algo;
    const int gated = s->rule == LINATTN_LA_GATED || s->rule == LINATTN_LA_GATED_DELTA;
    const int delta = s->rule == LINATTN_LA_DELTA || s->rule == LINATTN_LA_GATED_DELTA;
    r.io.query = linattn_tensor_3d(r.q, B, T, s->Hq * s->K);
    r.io.key = linattn_tensor_3d(r.k, B, T, s->Hkv * s->K);
    r.io.value = linattn_tensor_3d(r.v, B, T, s->Hkv * s->V);
    r.io.decay = gated ? linattn_tensor_3d(r.g, B, T, gw) : linattn_tensor_none();
    r.io.beta = delta ? linattn_tensor_3d(r.beta, B, T, s->Hkv) : linattn_tensor_none();
    r.io.output = linattn_tensor_3d(r.out, B, T, s->Hq * s->V);
    r.io.present_state = linattn_tensor_4d(r.state, B, s->Hkv, s->K, s->V);
    r.io.past_state = s->decode ? r.io.present_state : linattn_tensor_none();
    rc = s->decode ? bench_time_repeated(la_call, &r, reps, sec)
                   : bench_time_once(la_call, &r, reps, sec);
    rc = rc ? -1 : 0;
done:
    free(r.q); free(r.k); free(r.v); free(r.g); free(r.beta); free(r.out); free(r.state);
    return rc;
}
