/* linattn - one sequence over several threads or devices: the forward of
 * the delta family split into segments of tokens joined by their summaries
 * (segment.c, linattn_segment(3)).
 *
 * Segment 0 runs the plain forward from the caller's h0 (one forward of
 * work); every later segment s is summarised (A_s, B_s, its outputs for a
 * zero entering state and oA_s: (K+V)/V forwards) at the same time.  Then
 * the entering states follow in order on the host, S_{s+1} = A_s S_s + B_s
 * (K^2 V per head and segment), and every later segment's outputs get
 * oA_s S_s added (a [len,K] x [K,V] product per head).  Segment 0 is made
 * (K+V)/V times as long as the others so that all finish together (less
 * on GPUs fed from host memory: first_weight).  A later segment on an
 * OpenCL context keeps its outputs on the device and completes them there
 * (delta_segdev.c): only A_s, B_s come down and S_s goes up; one host
 * thread per segment drives its device. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "segment.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define SEG_MIN_T 1024 /* the shortest segment the shape alone chooses */
#define MSG_LEN 256

/* Tokens [t0, t0+len) of a [B,T,...] tensor (absent stays absent). */
static linattn_tensor seg_view(const linattn_tensor *t, int64_t t0, int64_t len)
{
    if (!linattn_given(t)) return *t;
    linattn_tensor s = *t;
    int64_t st[LINATTN_MAX_DIMS];
    linattn_strides(t, st);
    for (int d = 0; d < t->ndim; d++) s.strides[d] = st[d];
    s.offset += t0 * st[1];
    s.shape[1] = len;
    return s;
}

typedef struct seg_job {
    linattn_ctx *ctx;
    int op, rc;
    const linattn_delta_io *io;
    const linattn_delta_opts *opts;
    int64_t t0, len;
    linattn_tensor hT;       /* segment 0: where its final state goes */
    linattn_segment sum;     /* later segments */
    int dev;                 /* a later segment on an OpenCL context */
    linattn_segdev d;
    double sec;              /* segment 0: its forward */
    char msg[MSG_LEN];
} seg_job;

static void run_segment(seg_job *j, int first)
{
    const linattn_delta_io *io = j->io;
    linattn_delta_io x = {.q = seg_view(&io->q, j->t0, j->len), .k = seg_view(&io->k, j->t0, j->len),
                          .v = seg_view(&io->v, j->t0, j->len), .g = seg_view(&io->g, j->t0, j->len),
                          .beta = seg_view(&io->beta, j->t0, j->len),
                          .o = seg_view(&io->o, j->t0, j->len)};
    if (first) {
        const double t = linattn_segdev_now();
        x.h0 = io->h0;
        x.hT = j->hT;
        j->rc = linattn_delta_forward(j->ctx, (linattn_delta_op)j->op, &x, j->opts);
        j->sec = linattn_segdev_now() - t;
    } else if (j->dev) {
        j->rc = linattn_segdev_summarise(&j->d, j->ctx, j->op, &x, j->opts,
                                         (float *)(uintptr_t)j->sum.A.data,
                                         (float *)(uintptr_t)j->sum.B.data);
    } else {
        j->rc = linattn_delta_summarise(j->ctx, (linattn_delta_op)j->op, &x, j->opts, &j->sum);
    }
    if (j->rc) snprintf(j->msg, sizeof j->msg, "%s", linattn_last_error());
}

/* A later segment on its device: o0 + oA S there, then o down. */
static void finish_segment(seg_job *j, const float *S)
{
    const linattn_tensor o = seg_view(&j->io->o, j->t0, j->len);
    j->rc = linattn_segdev_finish(&j->d, j->ctx, S, &o);
    if (j->rc) snprintf(j->msg, sizeof j->msg, "%s", linattn_last_error());
}

/* One phase of the split for segment s: its summary or forward (S NULL),
 * or the completion on its device. */
static void seg_phase(seg_job *jobs, int s, float *const *S)
{
    if (!S) run_segment(&jobs[s], s == 0);
    else if (jobs[s].dev) finish_segment(&jobs[s], S[s]);
}

typedef struct seg_thr {
    seg_job *jobs;
    float *const *S;
    int s;
} seg_thr;

static void *seg_thread(void *arg)
{
    const seg_thr *t = arg;
    seg_phase(t->jobs, t->s, t->S);
    return NULL;
}

/* A phase for every segment, all at once: with OpenCL contexts one host
 * thread per segment of our own (each waits on its device; OpenMP would
 * give fewer inside a parallel region or under OMP_THREAD_LIMIT), else on
 * nthreads OpenMP threads.  A thread that cannot start runs its segment
 * here, after the others have started. */
static void each_segment(seg_job *jobs, int P, int nthreads, int own, float *const *S)
{
    seg_thr *t = own ? linattn_calloc((size_t)P, sizeof *t) : NULL;
    pthread_t *tid = own ? linattn_calloc((size_t)P, sizeof *tid) : NULL;
    if (t && tid) {
        int *started = (int *)linattn_calloc((size_t)P, sizeof *started);
        for (int s = 1; s < P && started; s++) {
            t[s] = (seg_thr){.jobs = jobs, .S = S, .s = s};
            started[s] = pthread_create(&tid[s], NULL, seg_thread, &t[s]) == 0;
        }
        seg_phase(jobs, 0, S);
        for (int s = 1; s < P; s++) {
            if (started && started[s]) pthread_join(tid[s], NULL);
            else seg_phase(jobs, s, S);
        }
        free(started);
    } else {
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
#endif
        for (int s = 0; s < P; s++) seg_phase(jobs, s, S);
    }
    (void)nthreads;
    free(t);
    free(tid);
}

static void say_phases(const seg_job *jobs, int P, double w0, double scan, double total)
{
    fprintf(stderr, "linattn: split over %d contexts (segment 0 %.3g times as long as the others, "
                    "LINATTN_SPLIT_FIRST): segment 0 (%lld tokens) forward %.1f ms\n",
            P, w0, (long long)jobs[0].len, jobs[0].sec * 1e3);
    for (int s = 1; s < P; s++)
        if (jobs[s].dev)
            fprintf(stderr, "linattn:   segment %d (%lld tokens) on %s: inputs up %.1f ms, "
                            "summary %.1f ms, S up + o += oA S %.1f ms, o down %.1f ms\n",
                    s, (long long)jobs[s].len, linattn_ctx_device(jobs[s].ctx), jobs[s].d.up * 1e3,
                    jobs[s].d.sum * 1e3, jobs[s].d.fix * 1e3, jobs[s].d.out * 1e3);
    fprintf(stderr, "linattn:   scan over the summaries %.1f ms; split total %.1f ms\n",
            scan * 1e3, total * 1e3);
}

typedef struct fix_arg {
    linattn_rows o;
    float **oA, **S;
    const int64_t *t0;
    int64_t Bt, H, Ho, K, V;
    int P;
    const int *host;          /* the segments completed here, in order */
} fix_arg;

/* o += oA_s S_s for one (segment s >= 1, batch row, output head) */
static void fix_job(void *arg, int64_t j, int thread)
{
    const fix_arg *a = arg;
    const int64_t r = j % a->Ho, b = j / a->Ho % a->Bt, s = a->host[j / (a->Ho * a->Bt)];
    const int64_t h = r / (a->Ho / a->H), len = a->t0[s + 1] - a->t0[s];
    (void)thread;
    linattn_seg_gemm(len, a->V, a->K, 1.0f, a->oA[s] + (b * len * a->Ho + r) * a->K, a->Ho * a->K,
                     a->S[s] + (b * a->H + h) * a->K * a->V, a->V, 1.0f,
                     linattn_row(&a->o, b, a->t0[s], r), a->o.st);
}

/* Segment 0's length over a later segment's.  In arithmetic a later token
 * costs w = (K+V)/V tokens of segment 0.  On GPUs fed from host memory the
 * copies dominate (an H200: 1008 ms for a forward of T=262144, H=16,
 * K=V=128 from host tensors, where its device-buffer rate, 2.5 M tokens/s
 * at T=16384, gives about 105 ms): there a token's cost is a share
 * R = 0.9 of copies, a fraction u of them up (q, k, v, g, beta) and the
 * rest down (o), and 1 - R of arithmetic.  A later segment's outputs go
 * down only after segment 0 has ended (they need its final state), so the
 * split ends soonest when segment 0 takes as long as a later segment's
 * work before that: w0 = R u + (1 - R) w (0.88 for K = V).
 * LINATTN_SPLIT_FIRST (a number > 0) overrides. */
#define SEG_BUS_SHARE 0.9

static double first_weight(linattn_ctx *const *ctxs, int P, const linattn_delta_io *io)
{
    const int64_t K = io->q.shape[3], V = io->v.shape[3], H = io->v.shape[2];
    const double w = (double)(K + V) / (double)V;
    const char *env = getenv("LINATTN_SPLIT_FIRST");
    if (env && *env) {
        char *end;
        const double x = strtod(env, &end);
        if (!*end && x > 0.0 && x < 1e6) return x;
    }
    int gpus = 1;
    for (int s = 0; s < P; s++) gpus &= ctxs[s]->cl && linattn_cl_is_gpu(ctxs[s]->cl);
    if (!gpus) return w;
    /* floats per token up and down */
    const double g = linattn_given(&io->g) ? (io->g.ndim == 4 ? (double)(H * K) : (double)H) : 0.0;
    const double up = (double)((io->q.shape[2] + io->k.shape[2]) * K + H * V) + g +
                      (linattn_given(&io->beta) ? (double)H : 0.0);
    const double down = (double)(io->o.shape[2] * V);
    return SEG_BUS_SHARE * up / (up + down) + (1.0 - SEG_BUS_SHARE) * w;
}

int linattn_delta_seg_run(linattn_ctx *host, linattn_ctx *const *ctxs, int P, int nthreads,
                          int op, const linattn_delta_io *io, const linattn_delta_opts *opts)
{
    const int64_t Bt = io->v.shape[0], T = io->v.shape[1], H = io->v.shape[2];
    const int64_t K = io->q.shape[3], V = io->v.shape[3], Ho = io->o.shape[2];
    const int64_t KK = H * K * K * Bt, KV = H * K * V * Bt; /* per segment, all sequences */
    int64_t *t0 = linattn_calloc((size_t)P + 1, sizeof *t0);
    seg_job *jobs = linattn_calloc((size_t)P, sizeof *jobs);
    float **oA = linattn_calloc((size_t)P + 1, sizeof *oA), **S = linattn_calloc((size_t)P + 1, sizeof *S);
    float **A = linattn_calloc((size_t)P, sizeof *A), **Bs = linattn_calloc((size_t)P, sizeof *Bs);
    int *host_segs = linattn_calloc((size_t)P, sizeof *host_segs);
    float *mem = NULL;
    int rc = LINATTN_OK, nhost = 0;
    const double start = linattn_segdev_now();
    if (!t0 || !jobs || !oA || !S || !A || !Bs || !host_segs) {
        rc = linattn_fail(LINATTN_ENOMEM, "split forward: out of memory");
        goto out;
    }
    /* boundaries: segment 0 is w0 units long, the others one unit */
    const double w0 = first_weight(ctxs, P, io), unit = (double)T / (w0 + P - 1);
    t0[P] = T;
    for (int s = P - 1; s >= 1; s--) {
        int64_t b = T - (int64_t)((P - s) * unit + 0.5);
        if (b > t0[s + 1] - 1) b = t0[s + 1] - 1;
        t0[s] = b;
    }
    t0[0] = 0;
    if (t0[1] < 1) {
        rc = linattn_fail(LINATTN_ERANGE, "split forward: %lld tokens for %d segments",
                          (long long)T, P);
        goto out;
    }
    /* A_s, B_s, the entering states S_s (s >= 1), oA_s of the segments
     * completed on the host (the others keep theirs on their devices) */
    size_t total = (size_t)(P - 1) * (size_t)(KK + 2 * KV);
    for (int s = 1; s < P; s++)
        if (!ctxs[s]->cl) {
            total += (size_t)(t0[s + 1] - t0[s]) * (size_t)(Bt * Ho * K);
            host_segs[nhost++] = s;
        }
    if (!(mem = linattn_malloc(sizeof(float) * (total ? total : 1)))) {
        rc = linattn_fail(LINATTN_ENOMEM, "split forward: out of memory for %zu floats of "
                                          "summaries", total);
        goto out;
    }
    float *p = mem;
    for (int s = 1; s < P; s++) {
        A[s] = p; p += KK;
        Bs[s] = p; p += KV;
        S[s] = p; p += KV;
    }
    for (int s = 1; s < P; s++)
        if (!ctxs[s]->cl) {
            oA[s] = p;
            p += (t0[s + 1] - t0[s]) * Bt * Ho * K;
        }
    for (int s = 0; s < P; s++) {
        seg_job *j = &jobs[s];
        j->ctx = ctxs[s];
        j->op = op;
        j->io = io;
        j->opts = opts;
        j->t0 = t0[s];
        j->len = t0[s + 1] - t0[s];
        if (s == 0) {
            j->hT = P > 1 ? linattn_tensor_4d(S[1], Bt, H, K, V) : io->hT;
        } else {
            j->sum.A = linattn_tensor_4d(A[s], Bt, H, K, K);
            j->sum.B = linattn_tensor_4d(Bs[s], Bt, H, K, V);
            j->dev = ctxs[s]->cl != NULL;
            if (!j->dev) j->sum.oA = linattn_tensor_4d(oA[s], Bt, j->len, Ho, K);
        }
    }
    const int blas = linattn_blas_serial_begin(1);
    int own = 0; /* a thread per segment: any context on OpenCL */
    for (int s = 0; s < P; s++) own |= ctxs[s]->cl != NULL;
    each_segment(jobs, P, nthreads, own, NULL);
    linattn_blas_serial_end(blas);
    for (int s = 0; s < P; s++)
        if (jobs[s].rc) {
            rc = linattn_fail(jobs[s].rc, "segment %d of %d (tokens %lld..%lld): %s", s, P,
                              (long long)jobs[s].t0, (long long)(jobs[s].t0 + jobs[s].len - 1),
                              jobs[s].msg);
            goto out;
        }
    /* the entering states in order, the final one into hT */
    const double scan0 = linattn_segdev_now();
    for (int s = 1; s < P && rc == LINATTN_OK; s++) {
        linattn_segment_apply_io ap = {.sum = jobs[s].sum,
                                       .h0 = linattn_tensor_4d(S[s], Bt, H, K, V)};
        ap.sum.oA = linattn_tensor_none();
        if (s + 1 < P) ap.hT = linattn_tensor_4d(S[s + 1], Bt, H, K, V);
        else if (linattn_given(&io->hT)) ap.hT = io->hT;
        else break;
        rc = linattn_segment_apply(host, &ap);
    }
    const double scan = linattn_segdev_now() - scan0;
    if (rc == LINATTN_OK && nhost < P - 1) { /* the later segments on their devices */
        each_segment(jobs, P, P, 1, S);
        for (int s = 1; s < P && rc == LINATTN_OK; s++)
            if (jobs[s].rc)
                rc = linattn_fail(jobs[s].rc, "segment %d of %d (tokens %lld..%lld): %s", s, P,
                                  (long long)jobs[s].t0,
                                  (long long)(jobs[s].t0 + jobs[s].len - 1), jobs[s].msg);
    }
    if (rc == LINATTN_OK && nhost) { /* the later segments' outputs on the host */
        fix_arg fa = {.o = linattn_rows_of(&io->o, 1, 1), .oA = oA, .S = S, .t0 = t0, .Bt = Bt,
                      .H = H, .Ho = Ho, .K = K, .V = V, .P = P, .host = host_segs};
        /* BLAS on one thread even on one of ours: its own threads spin against
         * other work (measured: the completion took 2-3x as long) */
        const int bl = linattn_blas_serial_begin(1);
        linattn_parallel_for(host, (int64_t)nhost * Bt * Ho, fix_job, &fa);
        linattn_blas_serial_end(bl);
    }
    if (rc == LINATTN_OK && host->verbose && nhost < P - 1)
        say_phases(jobs, P, w0, scan, linattn_segdev_now() - start);
out:
    for (int s = 0; jobs && s < P; s++) linattn_segdev_free(&jobs[s].d);
    free(host_segs);
    free(mem);
    free(t0);
    free(jobs);
    free(oA);
    free(S);
    free(A);
    free(Bs);
    return rc;
}

/* The layouts the split takes: host memory; o float32 rows at unit stride,
 * hT float32 C order (or absent), g and beta float32. */
static int seg_layout_ok(const linattn_delta_io *io)
{
    const linattn_tensor *t[] = {&io->q, &io->k, &io->v, &io->g, &io->beta, &io->h0, &io->o,
                                 &io->hT};
    for (int i = 0; i < 8; i++)
        if (t[i]->buf) return 0;
    if (!linattn_unit_rows(&io->o)) return 0;
    if (linattn_given(&io->hT) && (io->hT.dtype != LINATTN_F32 || !linattn_dense(&io->hT)))
        return 0;
    if (io->g.dtype != LINATTN_F32 || io->beta.dtype != LINATTN_F32) return 0;
    /* serving fields (slots, rollback rows, checkpoints): the plain forward */
    if (io->state_indices || io->has_initial_state || linattn_given(&io->hW) ||
        linattn_given(&io->hC))
        return 0;
    return !io->cu_seqlens || io->n_seqs == 1;
}

int linattn_delta_seg_count(const linattn_ctx *ctx, const linattn_delta_io *io,
                            const linattn_delta_opts *opts, int64_t B, int64_t T, int64_t units,
                            int64_t V)
{
    (void)B;
    if (ctx->backend != LINATTN_BACKEND_CPU || ctx->cl || ctx->seg_child) return 1;
    if (!seg_layout_ok(io)) return 1;
    /* off unless asked: a split changes the last bits, and the CPU forward
     * promises the same bits for every thread count and for a sequence
     * carried over several calls (linattn(3)) */
    const char *env = getenv("LINATTN_SEGMENTS");
    int64_t P;
    if (!env || !*env) return 1;
    if (strcmp(env, "auto")) {
        char *end;
        P = strtol(env, &end, 10);
        if (*end || P < 2) return 1;
        if (P > T / 2) P = T / 2;
    } else {
        const int nt = linattn_max_threads(ctx);
        const int rec = opts->algo == LINATTN_ALGO_RECURRENT ||
                        (opts->algo == LINATTN_ALGO_AUTO &&
                         (ctx->kern.simd || !linattn_have_blas() || T < 64));
        /* the recurrent form already splits value columns (blocks of 16) */
        const int64_t jobs = rec ? units * ((V + 15) / 16) : units;
        if (jobs >= nt) return 1;
        P = nt;
        if (P > T / SEG_MIN_T - 1) P = T / SEG_MIN_T - 1;
    }
    return P < 2 ? 1 : (int)P;
}

int linattn_delta_seg_forward(linattn_ctx *ctx, int op, const linattn_delta_io *io,
                              const linattn_delta_opts *opts, int P)
{
    int rc;
    /* the checks that the segments' own would make too late (after o is
     * partly written): values and the outputs' views */
    const linattn_value_check vc[] = {
        {&io->g, "g", LINATTN_RANGE_LOGDECAY},
        {&io->beta, op == LINATTN_OP_KLA ? "eta" : "beta",
         opts->beta_logits ? LINATTN_RANGE_FINITE : LINATTN_RANGE_STEP}};
    if ((rc = linattn_check_values(ctx, vc, 2)) || (rc = linattn_check_written(&io->o, "o")) ||
        (linattn_given(&io->hT) && (rc = linattn_check_written(&io->hT, "hT"))))
        return rc;
    linattn_ctx *kids = linattn_calloc((size_t)P, sizeof *kids);
    linattn_ctx **ptrs = linattn_calloc((size_t)P, sizeof *ptrs);
    int made = 0;
    rc = kids && ptrs ? LINATTN_OK : linattn_fail(LINATTN_ENOMEM, "split forward: out of memory");
    for (; rc == LINATTN_OK && made < P; made++) {
        kids[made] = *ctx;
        kids[made].threads = 1;
        kids[made].verbose = 0;
        kids[made].seg_child = 1;
        if ((rc = linattn_wspool_create(&kids[made].ws))) break;
        ptrs[made] = &kids[made];
    }
    if (rc == LINATTN_OK) {
        if (ctx->verbose)
            fprintf(stderr, "linattn: %s forward T=%lld in %d segments on %d thread%s\n",
                    op == LINATTN_OP_GDN ? "gdn" : op == LINATTN_OP_KLA ? "kla" : "gla",
                    (long long)io->v.shape[1], P, ctx->threads, ctx->threads == 1 ? "" : "s");
        linattn_delta_io x = *io;
        if (x.cu_seqlens) { /* one packed sequence: the whole row */
            x.cu_seqlens = NULL;
            x.n_seqs = 0;
        }
        rc = linattn_delta_seg_run(ctx, ptrs, P, P < ctx->threads ? P : ctx->threads, op, &x,
                                   opts);
    }
    for (int i = 0; i < made && kids; i++)
        if (kids[i].ws) linattn_wspool_destroy(kids[i].ws);
    free(kids);
    free(ptrs);
    return rc;
}

int linattn_delta_forward_split(linattn_ctx *const *ctxs, int n, linattn_delta_op op,
                                const linattn_delta_io *io, const linattn_delta_opts *opts)
{
    int rc;
    if (!ctxs || !io) return linattn_fail(LINATTN_ENULL, "ctxs and io are required");
    if (n < 1) return linattn_fail(LINATTN_ERANGE, "n: %d (must be >= 1)", n);
    for (int i = 0; i < n; i++)
        if (!ctxs[i]) return linattn_fail(LINATTN_ENULL, "ctxs[%d]: NULL", i);
    if (op < LINATTN_OP_GDN || op > LINATTN_OP_GLA)
        return linattn_fail(LINATTN_EINVAL, "op: unknown operator %d", (int)op);
    if (n == 1) return linattn_delta_forward(ctxs[0], op, io, opts);
    if (io->cu_seqlens) return linattn_fail(LINATTN_EINVAL, "cu_seqlens: the split takes none");
    if (io->q.ndim != 4 || io->v.ndim != 4 || io->o.ndim != 4)
        return linattn_fail(LINATTN_ESHAPE, "q, v, o: rank 4 expected");
    if (!seg_layout_ok(io))
        return linattn_fail(LINATTN_EUNSUPPORTED, "split forward: host tensors, o float32 with "
                                                  "rows at unit stride, hT float32 C order, "
                                                  "g and beta float32");
    if (io->v.shape[1] < 2 * (int64_t)n)
        return linattn_fail(LINATTN_ERANGE, "split forward: %lld tokens for %d segments",
                            (long long)io->v.shape[1], n);
    if ((rc = linattn_check_written(&io->o, "o"))) return rc;
    return linattn_delta_seg_run(ctxs[0], ctxs, n, n, (int)op, io, opts);
}
