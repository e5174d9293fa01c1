/* linattn - host side of the delta family on OpenCL: buffers in and out,
 * the chunk windows, the kernel launches (kernels in delta.cl). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"
#include "delta_cl_src.h" /* generated from delta.cl: linattn_delta_cl_src */

#define A LINATTN_KARG

enum { K_PREP, K_STATE, K_OUT, K_STEP, K_KLA, K_NORM, K_SIGM, K_GSUM, K_GSCAN, NKERN };
static const char *const kernel_names[NKERN] = {"delta_prep", "delta_state", "delta_out",
                                                "delta_step", "kla_beta", "qk_l2norm",
                                                "beta_sigmoid", "gla_sum", "gla_scan"};

/* The kernels of one call and the value columns per group they are built for. */
typedef struct dprog {
    int BV;
    int CW, SRG; /* delta_stepw's shape (CW 0: delta_step) */
    const char *step_name, *state_name; /* the step's and the walk's kernels */
    int gout;              /* gla_out and gla_gates (use_gla_out) */
    int gwalk;             /* gla_walk's tile, 0 for gla_sum and gla_scan */
    cl_kernel k[NKERN];
} dprog;

/* delta_walk at 32 value columns a group: with narrow slabs (below) its
 * local arrays lS (K x 32), lU (64 x 32), lX (4096 floats), lD take
 * 4 (32 K + 2048 + 4096 + 64) bytes and some, 41 KiB at K = 128. */
static int walk32_fits(const linattn_cl *cl, int K)
{
    return K % 32 == 0 && K <= 128 && 4u * (32u * K + 2048 + 4096 + 64) + 512 <= cl->info.local_mem;
}

/* Value columns per group of delta_state / delta_walk / delta_step: 32, or
 * fewer when that leaves over half the compute units without a group (a
 * single long sequence): the sequential kernels then get more, shorter
 * groups.  delta_walk (K % 32 == 0) takes 16 (at most 2048 / K), or 32
 * where its local arrays fit: measured on an NVIDIA H200 (one group per
 * compute unit either way; gdn H=16 K=V=128), B=8 T=4096 4.23-4.32 ms a
 * call at 32 columns against 5.43-5.49 at 16 (the walk 1.63 against 2.68:
 * half as many groups, each 1.3 times as long), while at B=1 T=16384,
 * where 16 columns make 128 groups, one per compute unit, 32 would take
 * 3.78 against 2.81 (the rule above keeps 16 there).
 * LINATTN_CL_BV=8|16|32 forces it (for tuning). */
static int pick_bv(const linattn_cl *cl, int64_t units, int K, int V)
{
    int bv = 32;
    const char *env = getenv("LINATTN_CL_BV"); /* tuning: force 8, 16 or 32 */
    if (env && (!strcmp(env, "8") || !strcmp(env, "16") || !strcmp(env, "32"))) return atoi(env);
    while (bv > 8 && 2 * units * ((V + bv - 1) / bv) < (int64_t)cl->info.compute_units) bv /= 2;
    while (bv > 8 && K > 0 && K % 32 == 0 && !(bv == 32 && walk32_fits(cl, K)) &&
           (bv > 16 || K * bv > 2048))
        bv /= 2; /* delta_walk */
    return bv;
}

/* The step's kernel: delta_stepw with CW = 4 columns per work-item (V a
 * multiple of 4), else delta_step (CW 0).
 * LINATTN_CL_STEPW=1|4|8 forces delta_step or the width (tuning; a width V
 * does not allow falls back to 4, then to delta_step).  The row groups,
 * SRG: K / 8 rounded up to a power of two in [8, 32], K / 16 for a 16-bit
 * state where the groups that makes are at least four a compute unit (half
 * as many bytes a row: more rows a work-item), or LINATTN_CL_STEPRG (4..64,
 * a power of two).  Measured on an NVIDIA H200 (gdn, H=16 K=V=128, the
 * kernel): at B=256 bf16 0.097-0.101 ms at 16 row groups against
 * 0.089-0.093 at 8, f16 0.085-0.087 either way, float32 0.145-0.148 at 16
 * against 0.149-0.152 at 8; at B=64 within noise; at B=1 (16 groups) a
 * bf16 step 0.034 -> 0.041 ms a call, which the group rule avoids.  The width and
 * the row groups set the order of the sums: tests/check_half, which wants
 * a 16-bit state's result to be the float32 one rounded once, forces both.
 * Were K
 * over about 1300 (the API stops at 1024), the width would narrow to keep
 * delta_stepw's local memory within 32 KiB, then take delta_step. */
static void pick_step(const linattn_cl *cl, int64_t units, int K, int V, int half, int *cw,
                      int *srg)
{
    const char *env = getenv("LINATTN_CL_STEPW"); /* tuning: force 1, 4 or 8 */
    int w = 4; /* measured on an H200 (B = 256, H = 16, K = V = 128): width 4 with whole
                  float4 accesses 0.15 ms a step against 0.17 by delta_step, width 8 0.19;
                  16-bit states: width 4 and 8 within noise, delta_step slower */
    if (env && (!strcmp(env, "1") || !strcmp(env, "4") || !strcmp(env, "8"))) w = atoi(env);
    if (w == 8 && V % 8) w = 4;
    if (w == 4 && V % 4) w = 1;
    int rg = 8;
    const int wide = half && w > 1; /* fewer row groups where the groups fill the device */
    const int64_t cols = (int64_t)LINATTN_CL_WG / 8 * w; /* a group's columns at 8 row groups */
    const int fill = units * ((V + cols - 1) / cols) >= 4 * (int64_t)cl->info.compute_units;
    while (rg < 32 && rg * (wide && fill ? 16 : 8) < K) rg *= 2;
    env = getenv("LINATTN_CL_STEPRG"); /* tuning: force the row groups */
    if (env && (!strcmp(env, "4") || !strcmp(env, "8") || !strcmp(env, "16") ||
                !strcmp(env, "32") || !strcmp(env, "64")))
        rg = atoi(env);
    /* local memory within 32 KiB: partial sums 2 WG w, q, k, g, u, row sums */
    while (w > 1 && (2 * LINATTN_CL_WG * w + 3 * K + LINATTN_CL_WG / rg * w + rg) * 4 > 32768)
        w = w == 8 ? 4 : 1;
    *cw = w == 1 ? 0 : w;
    *srg = rg;
}

/* delta_walk (the state spread over the work-group, K % 32 == 0, BV <= 16
 * and K * BV <= 2048: 28 KiB of local memory, or BV 32 where walk32_fits),
 * else delta_state; the host builds it in with -DWALK=1.  The step has its
 * own kernel (and pick_bv's K is 0). */
static int use_walk(const linattn_cl *cl, int K, int bv, int step)
{
    const char *env = getenv("LINATTN_CL_WALK"); /* tuning: 0 forces delta_state */
    const int fits = (bv <= 16 && K * bv <= 2048) || (bv == 32 && walk32_fits(cl, K));
    return !step && K % 32 == 0 && fits && !(env && !strcmp(env, "0"));
}

/* delta_walk's slabs: 128 columns of W (one phase for K = 128) in an
 * 8192-float staging slab where K is a multiple of 128 and the device's
 * local memory holds them (about 46 KiB: measured on an NVIDIA H200, B=1
 * T=16384 H=16 K=V=128 gdn 3.49 against 3.66 ms a call, B=8 T=4096 6.98
 * against 7.26), else 64 in 4096 (28 KiB).  LINATTN_CL_WALK_WIDE=0|1
 * forces it (tuning and tests; 1 only where local memory allows). */
static int walk_wide(const linattn_cl *cl, int K, int bv)
{
    /* delta_walk's local arrays: lX (64 rows of W, 128 + 4 floats apart), lS, lU, lD */
    const uint64_t need = 4u * (64u * (128 + 4) + (uint64_t)K * bv + 64u * bv + 64) + 512;
    const uint64_t lm = cl->info.local_mem;
    const char *env = getenv("LINATTN_CL_WALK_WIDE"); /* tuning and tests */
    if (lm < need) return 0;
    if (env && (!strcmp(env, "0") || !strcmp(env, "1"))) return atoi(env);
    return K % 128 == 0;
}

/* gla's chunk states by gla_sum and gla_scan (parallel over the chunks)
 * rather than the walk: measured faster on an NVIDIA H200 (B=1 T=16384
 * H=16 K=V=128: 1.75-1.83 against 2.31-2.40 ms a call; B=8 T=4096:
 * 3.30-3.35 against 3.93-4.00).  LINATTN_CL_GLA_SCAN=0 takes the walk. */
static int use_gla_scan(const linattn_cl_delta *a)
{
    const char *env = getenv("LINATTN_CL_GLA_SCAN"); /* tuning: 0 forces the walk */
    return a->op == LINATTN_OP_GLA && !(env && !strcmp(env, "0"));
}

/* gla with a gate per head and the scan: gla_out forms M = (Q K^T) o D
 * from the slabs of Q it stages anyway, and gla_gates, a work-item a
 * (chunk, head), forms the gates' sums in delta_prep's place (no M goes
 * through memory; delta_prep's groups for the sums alone took 0.046 ms at
 * B=8 T=4096, gla_gates 0.033).  Measured on an NVIDIA H200
 * (B=1 T=16384 H=16 K=V=128): 1.00-1.04 against 1.09-1.11 ms a call; B=8
 * T=4096: 1.89-1.92 against 2.10-2.15).
 * LINATTN_CL_GLA_OUT=0 takes delta_out and delta_prep's M (tuning). */
static int use_gla_out(const linattn_cl_delta *a)
{
    const char *env = getenv("LINATTN_CL_GLA_OUT"); /* tuning: 0 forces delta_out */
    return !a->step && !a->gk && use_gla_scan(a) && !(env && !strcmp(env, "0"));
}

/* gla_sum's tile of the state: 128 x 128 where K or V is over 64 (8 x 8
 * sums a work-item), else 64 x 64 (4 x 4) */
static int gla_sum_tile(int K, int V) { return K > 64 || V > 64 ? 128 : 64; }

/* gla_walk (gla_sum and gla_scan in one, a group a (sequence, head, state
 * tile)) for a gate per head, where its groups fill the device: its tile
 * (the program's GT), or 0 for gla_sum and gla_scan.  Measured on an NVIDIA
 * H200 (H=16 K=V=128): B=8 T=4096 (512 groups of 64 x 64 tiles) 1.68-1.71 ms
 * a call against 1.88-1.92 by the scan, 128 x 128 tiles 1.64-1.68; B=1
 * T=16384 (64 groups) 1.65-1.72 against 1.0.
 * LINATTN_CL_GLA_WALK=0|64|128 forces the scan or that tile (tuning). */
static int gla_walk_tile(const linattn_cl *cl, const linattn_cl_delta *a)
{
    const char *env = getenv("LINATTN_CL_GLA_WALK"); /* tuning and tests */
    if (a->step || a->gk || !use_gla_scan(a)) return 0;
    if (env && (!strcmp(env, "0") || !strcmp(env, "64") || !strcmp(env, "128"))) return atoi(env);
    const int t = 64;
    const int64_t groups = a->nseq * a->H * ((a->K + t - 1) / t) * ((a->V + t - 1) / t);
    return groups >= 3 * (int64_t)cl->info.compute_units ? t : 0;
}

/* gla_scan's state elements a work-item (its GSV): 4 adjacent value
 * columns where V allows (one 16-byte load a chunk), else 1 */
static int gla_scan_width(int V) { return V % 4 ? 1 : 4; }

static int kla_beta(linattn_clrun *r, const dprog *pr, const linattn_cl_delta *a, cl_mem eta,
                    cl_mem k, cl_long rows, cl_mem *beta)
{
    int rc;
    const float eps = a->eps;
    const cl_int H = (cl_int)a->H, Hk = (cl_int)a->Hk, map = a->map;
    if ((rc = linattn_clrun_alloc(r, (size_t)rows * sizeof(float), 0, beta))) return rc;
    const linattn_karg args[] = {A(eta), A(k), A(*beta), A(rows), A(eps), A(H), A(Hk), A(map)};
    if ((rc = linattn_clrun_args(pr->k[K_KLA], args, 8, "kla_beta"))) return rc;
    const size_t local = 64, global = ((size_t)rows + 15) / 16 * 64; /* 16 rows a group */
    return linattn_clrun_launch(r->cl, pr->k[K_KLA], 1, &global, &local, "kla_beta");
}

/* One row-wise kernel (qk_l2norm, beta_sigmoid) from x into a new temporary *y. */
static int rowwise(linattn_clrun *r, cl_kernel kern, const char *name, cl_mem x, cl_long rows,
                   size_t width, cl_mem *y)
{
    int rc;
    if ((rc = linattn_clrun_alloc(r, (size_t)rows * width * sizeof(float), 0, y))) return rc;
    const linattn_karg args[] = {A(x), A(*y), A(rows)};
    if ((rc = linattn_clrun_args(kern, args, 3, name))) return rc;
    const size_t local = 64, global = ((size_t)rows + 63) / 64 * 64;
    return linattn_clrun_launch(r->cl, kern, 1, &global, &local, name);
}

/* The options' inputs (q, k normalised; beta through the sigmoid), then
 * kla's beta from eta and the (normalised) k: tokens * H (token, value
 * head) rows, tokens * Hq rows of q, tokens * Hk rows of k. */
static int inputs(linattn_clrun *r, const dprog *pr, const linattn_cl_delta *a, cl_long tokens,
                  cl_mem *q, cl_mem *k, cl_mem *beta)
{
    int rc;
    const cl_long rows = tokens * a->H, qrows = tokens * a->Hq, krows = tokens * a->Hk;
    if (a->qk_l2norm && ((rc = rowwise(r, pr->k[K_NORM], "qk_l2norm", *q, qrows, a->K, q)) ||
                         (rc = rowwise(r, pr->k[K_NORM], "qk_l2norm", *k, krows, a->K, k))))
        return rc;
    if (a->beta_logits && (rc = rowwise(r, pr->k[K_SIGM], "beta_sigmoid", *beta, rows, 1, beta)))
        return rc;
    if (a->op == LINATTN_OP_KLA) return kla_beta(r, pr, a, *beta, *k, rows, beta);
    return LINATTN_OK;
}

/* Query heads: share 1 when Hq != Hk (nq = Hq / H of them read each state,
 * o has Hq heads), else the key heads (nq = 1, o has H heads). */
typedef struct qheads { cl_int Hq, nq, share; } qheads;

static qheads qheads_of(const linattn_cl_delta *a)
{
    const int share = a->Hq != a->Hk;
    return (qheads){(cl_int)a->Hq, share ? (cl_int)(a->Hq / a->H) : 1, share};
}

/* The step program's state elements (-DSDT): the state's dtype, and for
 * bf16 on NVIDIA devices of compute capability 8.0 and later 3, which
 * rounds by the device's own conversion instruction (the same bits;
 * LINATTN_CL_BF16CVT=0 keeps the integer rounding) */
static int step_sdt(const linattn_cl *cl, const linattn_cl_delta *a)
{
    if (!a->step) return 0;
    const char *env = getenv("LINATTN_CL_BF16CVT"); /* tuning and tests */
    if (a->h0.dtype == LINATTN_BF16 && cl->nv_cc >= 80 && !(env && !strcmp(env, "0"))) return 3;
    return (int)a->h0.dtype;
}

/* delta_stepw2 (two passes over the state) rather than delta_stepw: for a
 * 16-bit state with one query head a state (nq = 1), measured faster on an
 * NVIDIA H200 (gdn, B=256 H=16 K=V=128, the kernel: bf16 0.140 -> 0.120 ms,
 * f16 0.110 -> 0.092), where a float32 state measured slower (0.150 ->
 * 0.158).  The same sums in the same order: the same results.
 * LINATTN_CL_STEP2=0|1 forces it where nq = 1 (tuning and tests). */
static int step_two(const linattn_cl_delta *a)
{
    const char *env = getenv("LINATTN_CL_STEP2"); /* tuning and tests */
    if (qheads_of(a).nq != 1) return 0;
    if (env && (!strcmp(env, "0") || !strcmp(env, "1"))) return atoi(env);
    return a->h0.dtype != LINATTN_F32;
}

static int step(linattn_clrun *r, const dprog *pr, const linattn_cl_delta *a)
{
    int rc;
    cl_mem q, k, v, g, beta, S, o;
    const cl_long units = a->B * a->H;
    if ((rc = linattn_clrun_resolve(r, &a->q, 1, &q)) || (rc = linattn_clrun_resolve(r, &a->k, 1, &k)) ||
        (rc = linattn_clrun_resolve(r, &a->v, 1, &v)) || (rc = linattn_clrun_resolve(r, &a->g, 1, &g)) ||
        (rc = linattn_clrun_resolve(r, &a->beta, 1, &beta)) ||
        (rc = linattn_clrun_state_in(r, &a->h0, (size_t)units * a->K * a->V, 1, &S)) ||
        (rc = linattn_clrun_resolve(r, &a->o, 0, &o)))
        return rc;
    /* the value check of device g, beta first; the step reads its flag and
     * writes nothing when it is set */
    cl_mem flag = r->cl->dummy;
    const cl_int vcheck = a->vcheck != NULL;
    if (vcheck && (rc = linattn_clrun_values_enqueue(r, a->vcheck, &flag))) return rc;
    if ((rc = inputs(r, pr, a, (cl_long)a->B, &q, &k, &beta))) return rc;
    const cl_int has_g = a->g.host || a->g.mem, gdn = a->op != LINATTN_OP_GLA;
    const cl_int H = (cl_int)a->H, Hk = (cl_int)a->Hk, map = a->map;
    const qheads qh = qheads_of(a);
    const float scale = a->scale;
    const linattn_karg args[] = {A(q), A(k), A(v), A(g), A(beta), A(S), A(o), A(scale), A(has_g),
                                 A(gdn), A(H), A(Hk), A(qh.Hq), A(qh.nq), A(qh.share), A(map),
                                 A(flag), A(vcheck)};
    if ((rc = linattn_clrun_args(pr->k[K_STEP], args, 18, pr->step_name))) return rc;
    const size_t local[2] = {LINATTN_CL_WG, 1};
    const int cols = pr->CW ? LINATTN_CL_WG / pr->SRG * pr->CW : pr->BV; /* per group */
    const size_t global[2] = {(size_t)(a->V + cols - 1) / cols * LINATTN_CL_WG, (size_t)units};
    if ((rc = linattn_clrun_launch(r->cl, pr->k[K_STEP], 2, global, local, pr->step_name)))
        return rc;
    /* the flags back (the call's one wait) before any result leaves */
    if (vcheck && (rc = linattn_clrun_values_read(r, flag, a->vcheck))) return rc;
    if ((rc = linattn_clrun_state_out(r, S, &a->ht, (size_t)units * a->K * a->V, 1))) return rc;
    return linattn_clrun_out(r, o, &a->o);
}

/* Window plan: chunks j0 <= j < j0 + span of every sequence. */
typedef struct seqinfo { cl_long tok0, len, nch; } seqinfo;

/* The pipelined forward's window, in chunks per sequence, or 0 for none:
 * the walk over a window's chunks (one work-group per head and column
 * block, latency-bound when there are few sequences) runs on its own queue
 * while the next window's delta_prep and the previous one's delta_out run
 * beside it on theirs.  Only when asked (LINATTN_CL_PIPE=N: windows of N
 * chunks): with the call's scratch kept between calls (clrun.c) one window
 * measured faster on an NVIDIA H200 (gdn B=1 T=16384: 4.64-4.70 against
 * 4.79-4.86 ms a call; B=8 T=4096 the same within noise), whose OpenCL
 * overlaps little of the three queues' kernels.  Never with
 * LINATTN_CL_PROFILE (one queue) nor gla's scan. */
static int64_t pipe_span(const linattn_cl *cl, int64_t maxnch, int scan)
{
    const char *env = getenv("LINATTN_CL_PIPE"); /* tuning and tests */
    if (scan || cl->profile || !env || !*env) return 0;
    const long n = strtol(env, NULL, 10);
    return n > 0 && n < maxnch ? n : 0;
}

/* One window's scratch: per (chunk, head) G, M, W, U', entering state;
 * the chunk and sequence tables. */
typedef struct wset { cl_mem Gb, Mb, Wb, Ub, Sb, ctab, stab; } wset;

static int forward(linattn_clrun *r, const dprog *pr, const linattn_cl_delta *a, seqinfo *sq,
                   cl_long *ctab, cl_long *stab)
{
    int rc;
    linattn_cl *cl = r->cl;
    const int K = a->K, V = a->V, C = a->C;
    const cl_int H = (cl_int)a->H, Hk = (cl_int)a->Hk, map = a->map;
    const qheads qh = qheads_of(a);
    const size_t Gc = a->gk ? (size_t)C * K : (size_t)C; /* G per (chunk, head) */
    cl_mem q, k, v, g, beta, o, St, Gb, Mb, Wb, Ub, Sb, ctab_m, stab_m;
    if ((rc = linattn_clrun_resolve(r, &a->q, 1, &q)) || (rc = linattn_clrun_resolve(r, &a->k, 1, &k)) ||
        (rc = linattn_clrun_resolve(r, &a->v, 1, &v)) || (rc = linattn_clrun_resolve(r, &a->g, 1, &g)) ||
        (rc = linattn_clrun_resolve(r, &a->beta, 1, &beta)) || (rc = linattn_clrun_resolve(r, &a->o, 0, &o)))
        return rc;
    if ((rc = inputs(r, pr, a, (cl_long)(a->B * a->T), &q, &k, &beta))) return rc;

    /* the state between windows, from h0 or zeros */
    const size_t scount = (size_t)a->nseq * a->H * K * V;
    if ((rc = linattn_clrun_state_in(r, &a->h0, scount, 0, &St))) return rc;

    /* scratch per (chunk, head): entering state, W, U' (gdn, kla: gla reads
     * V in place and has no W), M (per query head), G */
    const cl_int has_g = a->g.host || a->g.mem, gdn = a->op != LINATTN_OP_GLA;
    const int gout = pr->gout;
    const cl_int mq = gout ? 0 : qh.nq; /* query heads whose M is formed before the output */
    const size_t per = (size_t)K * V + (gdn ? (size_t)C * K + (size_t)C * V : 0) +
                       (size_t)mq * C * C + Gc;
    uint64_t budget = cl->info.global_mem / 4;
    if (budget > ((uint64_t)1 << 30)) budget = (uint64_t)1 << 30;
    int64_t maxnch = 1;
    for (int64_t n = 0; n < a->nseq; n++)
        if (sq[n].nch > maxnch) maxnch = sq[n].nch;
    int64_t span = (int64_t)(budget / (per * sizeof(float) * a->H) / a->nseq);
    if (span < 1) span = 1;
    if (span > maxnch) span = maxnch;
    const int scan = use_gla_scan(a);
    const int64_t pspan = pipe_span(cl, maxnch, scan);
    const int pipe = pspan > 0 && 2 * pspan <= span; /* two windows' scratch within the budget */
    if (pipe) span = pspan;
    const int nset = pipe ? 2 : 1;
    const int64_t nwin = (maxnch + span - 1) / span;
    const int64_t cap = a->nseq * span; /* chunks in a window, at most */
    const size_t ch = (size_t)cap * a->H;
    wset ws[2];
    for (int i = 0; i < nset; i++)
        if ((rc = linattn_clrun_alloc(r, ch * Gc * sizeof(float), 0, &ws[i].Gb)) ||
            (rc = linattn_clrun_alloc(r, (mq ? ch * mq * C * C : 1) * sizeof(float), 0,
                                      &ws[i].Mb)) ||
            (rc = linattn_clrun_alloc(r, (gdn ? ch * C * K : 1) * sizeof(float), 0, &ws[i].Wb)) ||
            (rc = linattn_clrun_alloc(r, (gdn ? ch * C * V : 1) * sizeof(float), 0, &ws[i].Ub)) ||
            (rc = linattn_clrun_alloc(r, ch * K * V * sizeof(float), 0, &ws[i].Sb)) ||
            (rc = linattn_clrun_alloc(r, (size_t)cap * 3 * sizeof(cl_long), 0, &ws[i].ctab)) ||
            (rc = linattn_clrun_alloc(r, (size_t)a->nseq * 2 * sizeof(cl_long), 0, &ws[i].stab)))
            return rc;
    /* per window: its sequence table (host, alive until the call ends: the
     * writes do not block); the events of its three kernels */
    cl_long *stabs = pipe ? linattn_malloc(sizeof *stabs * 2 * (size_t)(a->nseq * nwin)) : stab;
    cl_event *ev = pipe ? linattn_calloc((size_t)nwin * 3, sizeof *ev) : NULL;
    cl_command_queue qs[3] = {cl->queue, cl->queue, cl->queue};
    if (pipe && (!stabs || !ev)) rc = linattn_fail(LINATTN_ENOMEM, "OpenCL: out of memory");
    for (int i = 1; pipe && !rc && i < 3; i++) rc = linattn_clrun_queue(cl, i, &qs[i]);

    const float scale = a->scale;
    const linattn_karg pargs[] = {A(ctab_m), A(q), A(k), A(v), A(g), A(beta), A(H), A(Hk),
                          A(qh.Hq), A(qh.nq), A(qh.share), A(map), A(has_g), A(gdn), A(Gb),
                          A(Mb), A(Wb), A(Ub)};
    const linattn_karg sargs[] = {A(stab_m), A(ctab_m), A(k), A(Gb), A(Wb), A(Ub), A(St), A(Sb), A(H),
                          A(Hk), A(map), A(gdn)};
    const linattn_karg oargs[] = {A(ctab_m), A(q), A(Gb), A(Mb), A(Ub), A(Sb), A(o), A(H), A(Hk),
                          A(qh.Hq), A(qh.nq), A(qh.share), A(map), A(scale), A(gdn)};
    const linattn_karg goargs[] = {A(ctab_m), A(q), A(k), A(Gb), A(v), A(Sb), A(o), A(H), A(Hk),
                          A(qh.Hq), A(qh.nq), A(qh.share), A(map), A(scale)};
    const linattn_karg gsargs[] = {A(ctab_m), A(k), A(v), A(Gb), A(Sb), A(H), A(Hk), A(map)};
    const linattn_karg gcargs[] = {A(stab_m), A(ctab_m), A(Gb), A(Sb), A(St), A(H)};
    const linattn_karg gwargs[] = {A(stab_m), A(ctab_m), A(k), A(v), A(Gb), A(Sb), A(St), A(H),
                          A(Hk), A(map)};

    cl_long base = 0; /* the window's rows of the host chunk table */
    for (int64_t j = 0; !rc && j < nwin; j++) {
        const int64_t j0 = j * span;
        const wset *w = &ws[j % nset];
        cl_long *ct = ctab + 3 * base, *st = stabs + (pipe ? 2 * a->nseq * j : 0);
        cl_long nw = 0;
        for (int64_t n = 0; n < a->nseq; n++) {
            st[2 * n] = nw;
            for (int64_t jj = j0; jj < j0 + span && jj < sq[n].nch; jj++, nw++) {
                const cl_long t = jj * C;
                ct[3 * nw] = sq[n].tok0 + t;
                ct[3 * nw + 1] = sq[n].len - t < C ? sq[n].len - t : C;
                ct[3 * nw + 2] = n;
            }
            st[2 * n + 1] = nw - st[2 * n];
        }
        base += nw;
        /* window j's scratch was window j - 2's: its delta_out must be done */
        cl_event *e = pipe ? ev + 3 * j : NULL, *prev = pipe && j >= nset ? ev + 3 * (j - nset) + 2 : NULL;
        LINATTN_CL_CHECK_RC(rc, linattn_clapi.clEnqueueWriteBuffer(qs[0], w->ctab, !pipe, 0,
                                                            (size_t)nw * 3 * sizeof(cl_long), ct,
                                                            prev ? 1 : 0, prev, NULL),
                            "clEnqueueWriteBuffer");
        if (!rc)
            LINATTN_CL_CHECK_RC(rc, linattn_clapi.clEnqueueWriteBuffer(qs[0], w->stab, !pipe, 0,
                                                            (size_t)a->nseq * 2 * sizeof(cl_long),
                                                            st, 0, NULL, NULL),
                                "clEnqueueWriteBuffer");
        if (rc) break;
        Gb = w->Gb; Mb = w->Mb; Wb = w->Wb; Ub = gdn ? w->Ub : v; Sb = w->Sb;
        ctab_m = w->ctab; stab_m = w->stab;
        const size_t l3[3] = {LINATTN_CL_WG, 1, 1};
        const size_t gp[2] = {(size_t)nw * LINATTN_CL_WG, (size_t)H};
        const size_t gs[3] = {(size_t)(V + pr->BV - 1) / pr->BV * LINATTN_CL_WG, (size_t)H,
                                (size_t)a->nseq};
        const int oc = V > 64 ? 128 : 64; /* value columns a group of delta_out, gla_out (OCOLS) */
        const size_t go[3] = {(size_t)(V + oc - 1) / oc * LINATTN_CL_WG,
                              (size_t)(qh.share ? qh.Hq : H), (size_t)nw};
        /* gla_sum per (chunk, head, state tile); gla_scan per
         * (state element, head, sequence) */
        const int gt = gla_sum_tile(K, V);
        const size_t gg[3] = {(size_t)nw * LINATTN_CL_WG, (size_t)H,
                              (size_t)((K + gt - 1) / gt) * ((V + gt - 1) / gt)};
        const size_t gc[3] = {((size_t)K * V / gla_scan_width(V) + LINATTN_CL_WG - 1) /
                                  LINATTN_CL_WG * LINATTN_CL_WG,
                              (size_t)H, (size_t)a->nseq};
        if (gout) { /* the gates' sums alone: gla_gates, a work-item a (chunk, head) */
            const cl_long nwh = nw * H;
            const linattn_karg gtargs[] = {A(ctab_m), A(g), A(H), A(has_g), A(nwh), A(Gb)};
            const size_t l1[1] = {64}, g1[1] = {((size_t)nwh + 63) / 64 * 64};
            if ((rc = linattn_clrun_args(pr->k[K_PREP], gtargs, 6, "gla_gates")) ||
                (rc = linattn_clrun_launch_on(cl, qs[0], pr->k[K_PREP], 1, g1, l1, 0, NULL, e,
                                              "gla_gates")))
                break;
        } else if ((rc = linattn_clrun_args(pr->k[K_PREP], pargs, 18, "delta_prep")) ||
                   (rc = linattn_clrun_launch_on(cl, qs[0], pr->k[K_PREP], 2, gp, l3, 0, NULL,
                                                 e, "delta_prep")))
            break;
        if (pr->gwalk) {
            const int nt = (K + pr->gwalk - 1) / pr->gwalk * ((V + pr->gwalk - 1) / pr->gwalk);
            const size_t gwk[3] = {LINATTN_CL_WG, (size_t)H, (size_t)a->nseq * nt};
            if ((rc = linattn_clrun_args(pr->k[K_GSUM], gwargs, 10, "gla_walk")) ||
                (rc = linattn_clrun_launch(cl, pr->k[K_GSUM], 3, gwk, l3, "gla_walk")))
                break;
        } else if (scan) {
            if ((rc = linattn_clrun_args(pr->k[K_GSUM], gsargs, 8, "gla_sum")) ||
                (rc = linattn_clrun_args(pr->k[K_GSCAN], gcargs, 6, "gla_scan")) ||
                (rc = linattn_clrun_launch(cl, pr->k[K_GSUM], 3, gg, l3, "gla_sum")) ||
                (rc = linattn_clrun_launch(cl, pr->k[K_GSCAN], 3, gc, l3, "gla_scan")))
                break;
        } else if ((rc = linattn_clrun_args(pr->k[K_STATE], sargs, 12, pr->state_name)) ||
                   (rc = linattn_clrun_launch_on(cl, qs[1], pr->k[K_STATE], 3, gs, l3, e ? 1 : 0,
                                                 e, e ? e + 1 : NULL, pr->state_name)))
            break;
        const char *oname = gout ? "gla_out" : "delta_out";
        if ((rc = gout ? linattn_clrun_args(pr->k[K_OUT], goargs, 14, oname)
                       : linattn_clrun_args(pr->k[K_OUT], oargs, 15, oname)) ||
            (rc = linattn_clrun_launch_on(cl, qs[2], pr->k[K_OUT], 3, go, l3, e ? 1 : 0,
                                          e ? e + 1 : NULL, e ? e + 2 : NULL, oname)))
            break;
        for (int i = 0; pipe && i < 3; i++) linattn_clapi.clFlush(qs[i]);
    }
    if (pipe) { /* every queue done (also after a failure: the scratch goes next) */
        for (int i = 0; i < 3; i++) linattn_clapi.clFlush(qs[i]);
        for (int i = 2; i >= 0; i--) {
            const cl_int err = linattn_clapi.clFinish(qs[i]);
            if (!rc && err != CL_SUCCESS) rc = linattn_cl_fail(err, "clFinish");
        }
        for (int64_t i = 0; ev && i < 3 * nwin; i++)
            if (ev[i]) linattn_clapi.clReleaseEvent(ev[i]);
        free(ev);
        free(stabs);
    }
    if (rc) return rc;
    if ((rc = linattn_clrun_state_out(r, St, &a->ht, scount, 0))) return rc;
    return linattn_clrun_out(r, o, &a->o);
}

int linattn_cl_delta_run(linattn_cl *cl, const linattn_cl_delta *a)
{
    int rc;
    linattn_clrun r = {.cl = cl};
    seqinfo *sq = NULL;
    cl_long *ctab = NULL, *stab = NULL;
    const int C = a->step ? LINATTN_CL_CHUNK : a->C;
    pthread_mutex_lock(&cl->lock);
    dprog pr = {.BV = pick_bv(cl, a->nseq * a->H, a->step ? 0 : a->K, a->V)};
    const char *names[NKERN];
    memcpy(names, kernel_names, sizeof names);
    const int walk = use_walk(cl, a->K, pr.BV, a->step);
    if (walk) names[K_STATE] = "delta_walk";
    if (a->step)
        pick_step(cl, a->nseq * a->H, a->K, a->V, a->h0.dtype != LINATTN_F32, &pr.CW, &pr.SRG);
    if (pr.CW) names[K_STEP] = step_two(a) ? "delta_stepw2" : "delta_stepw";
    pr.step_name = names[K_STEP];
    pr.state_name = names[K_STATE];
    pr.gout = use_gla_out(a);
    if (pr.gout) { /* (and its gates' sums by gla_gates) */
        names[K_OUT] = "gla_out";
        names[K_PREP] = "gla_gates";
    }
    pr.gwalk = gla_walk_tile(cl, a);
    if (pr.gwalk) names[K_GSUM] = "gla_walk"; /* (and no gla_scan launched) */
    const int wide = walk && walk_wide(cl, a->K, pr.BV);
    char opts[192];
    snprintf(opts, sizeof opts,
             "-DK=%d -DV=%d -DCH=%d -DBV=%d -DGK=%d -DSDT=%d -DCW=%d -DSRG=%d -DWCOLS=%d "
             "-DGSV=%d -DGALIGN=%d -DGT=%d -DWALK=%d",
             a->K, a->V, C, pr.BV, a->gk != 0, step_sdt(cl, a),
             pr.CW ? pr.CW : 4, pr.CW ? pr.SRG : 16, wide ? 128 : 64,
             gla_scan_width(a->V), a->K % 4 == 0 && a->V % 4 == 0 && C % 4 == 0,
             pr.gwalk ? pr.gwalk : gla_sum_tile(a->K, a->V), walk);
    if ((rc = linattn_cl_kernels(cl, linattn_delta_cl_src, opts, names, NKERN, pr.k)))
        goto done;
    if (a->step) {
        rc = step(&r, &pr, a);
    } else {
        int64_t nch = 0;
        sq = linattn_malloc(sizeof *sq * a->nseq);
        stab = linattn_malloc(sizeof *stab * 2 * a->nseq);
        for (int64_t n = 0; sq && n < a->nseq; n++) {
            const int64_t b = a->cu ? 0 : n, t0 = a->cu ? a->cu[n] : 0;
            const int64_t t1 = a->cu ? a->cu[n + 1] : a->T;
            sq[n].tok0 = b * a->T + t0;
            sq[n].len = t1 - t0;
            sq[n].nch = (t1 - t0 + C - 1) / C;
            nch += sq[n].nch;
        }
        ctab = linattn_malloc(sizeof *ctab * 3 * (size_t)nch);
        if (!sq || !stab || !ctab) rc = linattn_fail(LINATTN_ENOMEM, "OpenCL: out of memory");
        else rc = forward(&r, &pr, a, sq, ctab, stab);
    }
done:
    rc = linattn_clrun_end(&r, rc);
    free(sq);
    free(ctab);
    free(stab);
    return rc;
}
