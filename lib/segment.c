/* linattn - segment summaries of the delta family (linattn_segment(3)):
 * summarise a segment, combine two summaries, apply one to a state.
 *
 * Over a segment every column of the state evolves by the same affine map
 * (the delta rule's write is linear in S with v entering additively), so
 * S_out = A S_in + B.  A is the final state of the segment run from the
 * identity with zero values (K columns), B the final state of the segment
 * run from zero with its values (the V columns of the forward itself); the
 * first run's outputs are oA_t = scale q_t^T A_t, so that the true outputs
 * are o_t = o0_t + oA_t S_in.  Both runs are ordinary forwards (views: the
 * identity and the zero values broadcast with zero strides), so every
 * backend and every input layout the forward takes works here too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "segment.h"
#ifdef HAVE_CBLAS
#include <cblas.h>
#endif

void linattn_seg_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, ptrdiff_t lda,
                      const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc)
{
#ifdef HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, alpha, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
#else
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (int64_t j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        for (int64_t p = 0; p < K; p++) {
            const float a = alpha * A[i * lda + p];
            const float *b = B + p * ldb;
            for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
#endif
}

/* A summary or state tensor: float32 host memory in C order, of shape sh. */
static int check_host(const linattn_tensor *t, const char *name, const int64_t *sh)
{
    int rc = linattn_check_tensor(t, name, 4, sh);
    if (rc) return rc;
    if (t->buf || t->dtype != LINATTN_F32 || !linattn_dense(t))
        return linattn_fail(LINATTN_EUNSUPPORTED,
                            "%s: summaries and states take float32 host memory in C order", name);
    return LINATTN_OK;
}

static const float *host_of(const linattn_tensor *t) { return t->data + t->offset; }

/* gla's write does not read the state: A is diagonal, the product of the
 * segment's decays, and oA_t = scale q_t * (the decays up to t), computed
 * here from q and g (one pass) instead of a second forward.  Taken for
 * host float32 q, g and oA with one head count and no qk_l2norm. */
static int gla_direct(const linattn_delta_io *io, const linattn_delta_opts *opts,
                      const linattn_segment *sum)
{
    const linattn_tensor *q = &io->q, *g = &io->g, *oA = &sum->oA;
    return !opts->qk_l2norm && !q->buf && q->dtype == LINATTN_F32 && !g->buf &&
           g->dtype == LINATTN_F32 && (!linattn_given(oA) || (!oA->buf && oA->dtype == LINATTN_F32)) &&
           q->shape[2] == io->v.shape[2] && io->k.shape[2] == io->v.shape[2];
}

static void gla_summary(const linattn_delta_io *io, const linattn_delta_opts *opts,
                        const linattn_segment *sum, int64_t N, double *cum)
{
    const int64_t T = io->v.shape[1], H = io->v.shape[2], K = io->q.shape[3];
    const int gk = linattn_given(&io->g) && io->g.ndim == 4;
    const linattn_rows q = linattn_rows_of(&io->q, 1, 1), g = linattn_rows_of(&io->g, 1, gk);
    const linattn_rows oA = linattn_rows_of(&sum->oA, 1, 1);
    const double scale = opts->scale != 0.0f ? opts->scale : 1.0 / sqrt((double)K);
    float *A = (float *)(uintptr_t)host_of(&sum->A);
    memset(A, 0, sizeof(float) * (size_t)(N * H * K * K));
    for (int64_t n = 0; n < N; n++) {
        int64_t row0, len;
        linattn_seq_span(io->cu_seqlens, T, n, &row0, &len);
        const int64_t b = io->cu_seqlens ? 0 : n, t0 = io->cu_seqlens ? row0 : 0;
        for (int64_t h = 0; h < H; h++) {
            /* per-head gates: one decay for every channel (cum[0]) */
            const int64_t nc = gk ? K : 1;
            for (int64_t i = 0; i < nc; i++) cum[i] = 0.0;
            for (int64_t t = t0; t < t0 + len; t++) {
                if (g.p) {
                    const float *gr = linattn_row(&g, b, t, h);
                    for (int64_t i = 0; i < nc; i++) cum[i] += gr[i * g.sx];
                }
                if (!oA.p) continue;
                const float *qr = linattn_row(&q, b, t, h);
                float *orow = linattn_row(&oA, b, t, h);
                const double d = scale * exp(cum[0]);
                for (int64_t i = 0; i < K; i++)
                    orow[i * oA.sx] = (float)(qr[i * q.sx] * (gk ? scale * exp(cum[i]) : d));
            }
            for (int64_t i = 0; i < K; i++)
                A[((n * H + h) * K + i) * K + i] = (float)exp(cum[gk ? i : 0]);
        }
    }
}

int linattn_delta_summarise(linattn_ctx *ctx, linattn_delta_op op, const linattn_delta_io *io,
                            const linattn_delta_opts *opts, const linattn_segment *sum)
{
    int rc;
    if ((rc = linattn_check_call(ctx, io))) return rc;
    if (!sum) return linattn_fail(LINATTN_ENULL, "sum: NULL");
    if (op < LINATTN_OP_GDN || op > LINATTN_OP_GLA)
        return linattn_fail(LINATTN_EINVAL, "op: unknown operator %d", (int)op);
    if (linattn_given(&io->h0) || linattn_given(&io->hT))
        return linattn_fail(LINATTN_EINVAL, "h0, hT: a summary describes the segment alone "
                                            "(both must be absent)");
    if (io->q.ndim != 4 || io->v.ndim != 4 || io->o.ndim != 4)
        return linattn_fail(LINATTN_ESHAPE, "q, v, o: rank 4 expected");
    const int64_t Bt = io->v.shape[0], T = io->v.shape[1], H = io->v.shape[2];
    const int64_t K = io->q.shape[3], V = io->v.shape[3], Ho = io->o.shape[2];
    const int64_t N = io->cu_seqlens ? io->n_seqs : Bt;
    if (K <= 0 || K > LINATTN_MAX_HEAD_DIM || N <= 0 || H <= 0)
        return linattn_fail(LINATTN_ESIZE, "q, v: bad sizes (K %lld, H %lld, N %lld)",
                            (long long)K, (long long)H, (long long)N);
    const int64_t ash[4] = {N, H, K, K}, bsh[4] = {N, H, K, V}, osh[4] = {Bt, T, Ho, K};
    if ((rc = check_host(&sum->A, "sum.A", ash)) || (rc = check_host(&sum->B, "sum.B", bsh)))
        return rc;
    if (linattn_given(&sum->oA) && (rc = linattn_check_tensor(&sum->oA, "sum.oA", 4, osh)))
        return rc;
    linattn_delta_opts o;
    linattn_delta_opts_init(&o);
    if (opts) o = *opts;
    if (linattn_given(&sum->oA) && (rc = linattn_check_written(&sum->oA, "sum.oA"))) return rc;
    if (op == LINATTN_OP_GLA && gla_direct(io, &o, sum)) {
        double *cum = linattn_malloc(sizeof(double) * (size_t)K);
        if (!cum) return linattn_fail(LINATTN_ENOMEM, "summarise: out of memory for scratch");
        linattn_delta_io x = *io;
        x.hT = sum->B;
        if (!(rc = linattn_delta_forward(ctx, op, &x, opts))) gla_summary(io, &o, sum, N, cum);
        free(cum);
        return rc;
    }
    /* the identity and a zero value row, broadcast by zero strides */
    const size_t n_oa = linattn_given(&sum->oA) ? 0 : (size_t)(Bt * T * Ho * K);
    float *eye = linattn_calloc((size_t)(K * K + K) + n_oa, sizeof(float));
    if (!eye) return linattn_fail(LINATTN_ENOMEM, "summarise: out of memory for scratch");
    for (int64_t i = 0; i < K; i++) eye[i * K + i] = 1.0f;
    /* B and the outputs for a zero entering state: the forward itself */
    linattn_delta_io x = *io;
    x.hT = sum->B;
    rc = linattn_delta_forward(ctx, op, &x, opts);
    if (!rc) { /* A and oA: K columns from the identity, values zero */
        x = *io;
        x.v = linattn_tensor_4d(eye + K * K, Bt, T, H, K);
        x.v.strides[0] = x.v.strides[1] = x.v.strides[2] = 0;
        x.v.strides[3] = 1;
        x.h0 = linattn_tensor_4d(eye, N, H, K, K);
        x.h0.strides[0] = x.h0.strides[1] = 0;
        x.h0.strides[2] = K;
        x.h0.strides[3] = 1;
        x.hT = sum->A;
        x.o = n_oa ? linattn_tensor_4d(eye + K * K + K, Bt, T, Ho, K) : sum->oA;
        rc = linattn_delta_forward(ctx, op, &x, opts);
    }
    free(eye);
    return rc;
}

/* ---- combine ------------------------------------------------------------ */

typedef struct comb_arg {
    const float *A1, *B1, *A2, *B2;
    float *A, *B, *tmp;
    int64_t K, V;
} comb_arg;

static void comb_job(void *arg, int64_t u, int thread)
{
    const comb_arg *a = arg;
    const int64_t KK = a->K * a->K, KV = a->K * a->V;
    float *tA = a->tmp + (size_t)thread * (KK + KV), *tB = tA + KK;
    memcpy(tB, a->B2 + u * KV, sizeof(float) * KV);
    linattn_seg_gemm(a->K, a->K, a->K, 1.0f, a->A2 + u * KK, a->K, a->A1 + u * KK, a->K, 0.0f,
                     tA, a->K);
    linattn_seg_gemm(a->K, a->V, a->K, 1.0f, a->A2 + u * KK, a->K, a->B1 + u * KV, a->V, 1.0f,
                     tB, a->V);
    memcpy(a->A + u * KK, tA, sizeof(float) * KK);
    memcpy(a->B + u * KV, tB, sizeof(float) * KV);
}

int linattn_segment_combine(linattn_ctx *ctx, const linattn_segment *first,
                            const linattn_segment *second, const linattn_segment *out)
{
    int rc;
    if (!ctx || !first || !second || !out)
        return linattn_fail(LINATTN_ENULL, "ctx, first, second and out are required");
    if ((rc = linattn_check_present(&first->A, "first.A")) ||
        (rc = linattn_check_present(&first->B, "first.B")))
        return rc;
    if (first->A.ndim != 4 || first->B.ndim != 4)
        return linattn_fail(LINATTN_ESHAPE, "first.A, first.B: rank 4 expected");
    const int64_t ash[4] = {first->A.shape[0], first->A.shape[1], first->A.shape[2],
                            first->A.shape[2]};
    const int64_t bsh[4] = {ash[0], ash[1], ash[2], first->B.shape[3]};
    if ((rc = check_host(&first->A, "first.A", ash)) ||
        (rc = check_host(&first->B, "first.B", bsh)) ||
        (rc = check_host(&second->A, "second.A", ash)) ||
        (rc = check_host(&second->B, "second.B", bsh)) ||
        (rc = check_host(&out->A, "out.A", ash)) || (rc = check_host(&out->B, "out.B", bsh)))
        return rc;
    comb_arg a = {.A1 = host_of(&first->A), .B1 = host_of(&first->B),
                  .A2 = host_of(&second->A), .B2 = host_of(&second->B),
                  .A = (float *)(uintptr_t)host_of(&out->A),
                  .B = (float *)(uintptr_t)host_of(&out->B), .K = ash[2], .V = bsh[3]};
    const int nt = linattn_max_threads(ctx) > 0 ? linattn_max_threads(ctx) : 1;
    a.tmp = linattn_malloc(sizeof(float) * (size_t)nt * (size_t)(a.K * a.K + a.K * a.V));
    if (!a.tmp) return linattn_fail(LINATTN_ENOMEM, "combine: out of memory for scratch");
    const int blas = linattn_blas_serial_begin(1);
    linattn_parallel_for(ctx, ash[0] * ash[1], comb_job, &a);
    linattn_blas_serial_end(blas);
    free(a.tmp);
    return LINATTN_OK;
}

/* ---- apply --------------------------------------------------------------- */

typedef struct apply_arg {
    const float *A, *B, *S;      /* S: entering state, NULL for zeros */
    float *hT, *tmp;
    linattn_rows o, oA;
    const int64_t *cu;
    int64_t T, H, Ho, K, V;
} apply_arg;

/* o += oA S, one (sequence, output head) */
static void out_job(void *arg, int64_t j, int thread)
{
    const apply_arg *a = arg;
    const int64_t r = j % a->Ho, n = j / a->Ho, h = r / (a->Ho / a->H);
    int64_t row0, len;
    (void)thread;
    linattn_seq_span(a->cu, a->T, n, &row0, &len);
    const int64_t b = a->cu ? 0 : n, t0 = a->cu ? row0 : 0;
    linattn_seg_gemm(len, a->V, a->K, 1.0f, linattn_row(&a->oA, b, t0, r), a->oA.st,
                     a->S + (n * a->H + h) * a->K * a->V, a->V, 1.0f,
                     linattn_row(&a->o, b, t0, r), a->o.st);
}

/* hT = A S + B, one (sequence, head) */
static void state_job(void *arg, int64_t u, int thread)
{
    const apply_arg *a = arg;
    const int64_t KK = a->K * a->K, KV = a->K * a->V;
    float *t = a->tmp + (size_t)thread * KV;
    memcpy(t, a->B + u * KV, sizeof(float) * KV);
    if (a->S) linattn_seg_gemm(a->K, a->V, a->K, 1.0f, a->A + u * KK, a->K, a->S + u * KV, a->V,
                               1.0f, t, a->V);
    memcpy(a->hT + u * KV, t, sizeof(float) * KV);
}

int linattn_segment_apply(linattn_ctx *ctx, const linattn_segment_apply_io *io)
{
    int rc;
    if ((rc = linattn_check_call(ctx, io))) return rc;
    const linattn_segment *s = &io->sum;
    if ((rc = linattn_check_present(&s->A, "sum.A")) ||
        (rc = linattn_check_present(&s->B, "sum.B")))
        return rc;
    if (s->A.ndim != 4 || s->B.ndim != 4)
        return linattn_fail(LINATTN_ESHAPE, "sum.A, sum.B: rank 4 expected");
    const int64_t N = s->A.shape[0], H = s->A.shape[1], K = s->A.shape[2], V = s->B.shape[3];
    const int64_t ash[4] = {N, H, K, K}, bsh[4] = {N, H, K, V};
    if ((rc = check_host(&s->A, "sum.A", ash)) || (rc = check_host(&s->B, "sum.B", bsh)))
        return rc;
    if (linattn_given(&io->h0) && (rc = check_host(&io->h0, "h0", bsh))) return rc;
    if (linattn_given(&io->hT) && (rc = check_host(&io->hT, "hT", bsh))) return rc;
    const int outs = linattn_given(&io->o) && linattn_given(&s->oA) && linattn_given(&io->h0);
    apply_arg a = {.A = host_of(&s->A), .B = host_of(&s->B),
                   .S = linattn_given(&io->h0) ? host_of(&io->h0) : NULL,
                   .hT = linattn_given(&io->hT) ? (float *)(uintptr_t)host_of(&io->hT) : NULL,
                   .cu = io->cu_seqlens, .H = H, .K = K, .V = V};
    if (linattn_given(&io->o) != linattn_given(&s->oA))
        return linattn_fail(LINATTN_EINVAL, "o, sum.oA: give both or neither");
    if (linattn_given(&io->o)) {
        if (io->o.ndim != 4 || s->oA.ndim != 4)
            return linattn_fail(LINATTN_ESHAPE, "o, sum.oA: rank 4 expected");
        const int64_t Bt = io->o.shape[0], T = io->o.shape[1], Ho = io->o.shape[2];
        const int64_t osh[4] = {Bt, T, Ho, V}, oash[4] = {Bt, T, Ho, K};
        int64_t nseq;
        if ((rc = linattn_check_tensor(&io->o, "o", 4, osh)) ||
            (rc = linattn_check_tensor(&s->oA, "sum.oA", 4, oash)) ||
            (rc = linattn_check_written(&io->o, "o")) ||
            (rc = linattn_check_sequences(io->cu_seqlens, io->n_seqs, Bt, T, &nseq)))
            return rc;
        if (nseq != N)
            return linattn_fail(LINATTN_ESHAPE, "o: %lld sequences, the summary has %lld",
                                (long long)nseq, (long long)N);
        if (Ho % H)
            return linattn_fail(LINATTN_ESHAPE, "o: %lld heads, not a multiple of H = %lld",
                                (long long)Ho, (long long)H);
        if (io->o.buf || s->oA.buf || !linattn_unit_rows(&io->o) || !linattn_unit_rows(&s->oA))
            return linattn_fail(LINATTN_EUNSUPPORTED,
                                "o, sum.oA: float32 host memory with rows at unit stride");
        a.o = linattn_rows_of(&io->o, 1, 1);
        a.oA = linattn_rows_of(&s->oA, 1, 1);
        a.T = T;
        a.Ho = Ho;
    }
    const int nt = linattn_max_threads(ctx) > 0 ? linattn_max_threads(ctx) : 1;
    if (a.hT && !(a.tmp = linattn_malloc(sizeof(float) * (size_t)nt * (size_t)(K * V))))
        return linattn_fail(LINATTN_ENOMEM, "apply: out of memory for scratch");
    const int blas = linattn_blas_serial_begin(1);
    if (outs) linattn_parallel_for(ctx, N * a.Ho, out_job, &a); /* reads h0 before hT */
    if (a.hT) linattn_parallel_for(ctx, N * H, state_job, &a);
    linattn_blas_serial_end(blas);
    free(a.tmp);
    return LINATTN_OK;
}
