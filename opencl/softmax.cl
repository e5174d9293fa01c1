/* linattn - OpenCL C 1.2 kernels of causal softmax attention, built per
 * (K, V): the tiled forward (softmax_fwd2 for V <= 128, softmax_fwd), the
 * decode step split over the KV cache (softmax_split, then softmax_merge:
 * log-sum-exp of the splits), and the cache append (kv_append).
 * Work-groups of WG (softmax_fwd2: WG2); every barrier is in a kernel body
 * and unconditional (see README.md). */

#define WG 256

/* ---- forward: a work-group per (block of BQ = 64 query rows, head) ------ *
 * Flash-attention style: the block walks the key/value tiles of BKV = 64
 * keys up to its last row (tiles past it are never read; only the diagonal
 * tile is masked), keeping the running maximum and sum of each row and its
 * output rows in registers.  Work-item (ty, tx) = (lid / 16, lid % 16) owns
 * rows ty + 16 i (i < 4) and, in the scores, keys tx + 16 u (u < 4), in the
 * output columns tx + 16 u (u < MVC).  The products stream through local
 * memory in tiles DT deep; the row statistics take 4 work-items a row. */
#define BQ 64
#define BKV 64
#define DT 16
#define SP (BKV + 1)                          /* score rows, padded */
#define QKT (2 * BQ * (DT + 1))               /* the query and key tiles */
#define VD0 (QKT / V)
#define VD (VD0 > 16 ? 16 : VD0 < 1 ? 1 : VD0) /* keys of a value tile */
#define LT (QKT > VD * V ? QKT : VD * V)
#define MVC0 ((V + 15) / 16)
/* output columns per work-item, rounded up to a power of 2 and at least 4:
 * PoCL 3.1 gave wrong outputs (infinities) with 3, 5, 6 or 7, and with 1 or
 * 2 when built for an AVX2-only CPU (AMD EPYC, its "haswell" target; the
 * columns past V are guarded, so 4 only costs work where V <= 32, which
 * takes softmax_fwd2 unless LINATTN_CL_SOFTMAX asks otherwise) */
#define MVC (MVC0 <= 4 ? 4 : MVC0 <= 8 ? 8 : MVC0 <= 16 ? 16 : MVC0)

/* n scores x[t * stride] of one row replaced by p = exp(x - m) (0 for a
 * masked -inf score); returns their sum. */
static float exp_run(__local float *x, int stride, int n, float m)
{
    float ps = 0.0f;
    for (int t = 0; t < n; t++) {
        const float v = x[t * stride];
        const float p = v == -INFINITY ? 0.0f : exp(v - m);
        x[t * stride] = p;
        ps += p;
    }
    return ps;
}

/* stab: per sequence {first token (b*T + t0), tokens}; btab: per block
 * {sequence, first row}.  q, o [.., H, *], k, v [.., Hk, *]: query head h
 * reads key/value head h / (H / Hk). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void softmax_fwd(__global const long *stab, __global const long *btab, __global const float *q,
                 __global const float *k, __global const float *v, __global float *o, int H,
                 int Hk, float scale)
{
    __local float ls[BQ * SP], lt[LT], lred[WG], lsum[WG], lcorr[BQ], ll[BQ];
    __local float *lq = lt, *lk = lt + BQ * (DT + 1);
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int srow = lid / 4, part = lid % 4; /* the row statistics */
    const int g = get_group_id(0), h = get_group_id(1), kh = h / (H / Hk);
    const long n = btab[2 * g], i0 = btab[2 * g + 1];
    const long tok0 = stab[2 * n], len = stab[2 * n + 1];
    const int nq = (int)min((long)BQ, len - i0);
    const long kend = i0 + nq;
    if (lid < BQ) ll[lid] = 0.0f;
    float acc[4][MVC];
    for (int i = 0; i < 4; i++)
        for (int u = 0; u < MVC; u++) acc[i][u] = 0.0f;
    float mrow = -INFINITY;
    for (long j0 = 0; j0 < kend; j0 += BKV) {
        /* scores of the tile, 4x4 a work-item */
        float sc[4][4] = {{0.0f}};
        for (int d0 = 0; d0 < K; d0 += DT) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int e = lid; e < BQ * DT; e += WG) {
                const int r = e / DT, dd = e % DT, d = d0 + dd;
                lq[r * (DT + 1) + dd] =
                    (r < nq && d < K) ? q[((tok0 + i0 + r) * H + h) * K + d] : 0.0f;
                lk[r * (DT + 1) + dd] =
                    (j0 + r < kend && d < K) ? k[((tok0 + j0 + r) * Hk + kh) * K + d] : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int dd = 0; dd < DT; dd++) {
                float a[4], b[4];
                for (int i = 0; i < 4; i++) a[i] = lq[(ty + 16 * i) * (DT + 1) + dd];
                for (int u = 0; u < 4; u++) b[u] = lk[(tx + 16 * u) * (DT + 1) + dd];
                for (int i = 0; i < 4; i++)
                    for (int u = 0; u < 4; u++) sc[i][u] = mad(a[i], b[u], sc[i][u]);
            }
        }
        for (int i = 0; i < 4; i++)
            for (int u = 0; u < 4; u++) {
                const int r = ty + 16 * i, t = tx + 16 * u;
                ls[r * SP + t] = (r < nq && j0 + t <= i0 + r) ? sc[i][u] * scale : -INFINITY;
            }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* row statistics: the tile's maximum, p = exp(s - m) in place */
        float pm = -INFINITY;
        for (int t = part * 16; t < part * 16 + 16; t++) pm = fmax(pm, ls[srow * SP + t]);
        lred[lid] = pm;
        barrier(CLK_LOCAL_MEM_FENCE);
        const float mnew = fmax(fmax(mrow, fmax(lred[4 * srow], lred[4 * srow + 1])),
                                fmax(lred[4 * srow + 2], lred[4 * srow + 3]));
        lsum[lid] = exp_run(ls + srow * SP + part * 16, 1, 16, mnew);
        if (part == 0) lcorr[srow] = mnew == -INFINITY ? 1.0f : exp(mrow - mnew);
        mrow = mnew;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (part == 0)
            ll[srow] = ll[srow] * lcorr[srow] + (lsum[lid] + lsum[lid + 1]) +
                       (lsum[lid + 2] + lsum[lid + 3]);
        for (int i = 0; i < 4; i++) {
            const float cr = lcorr[ty + 16 * i];
            for (int u = 0; u < MVC; u++) acc[i][u] *= cr;
        }
        /* acc += P V, the values in tiles of VD keys */
        for (int k0 = 0; k0 < BKV; k0 += VD) {
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int e = lid; e < VD * V; e += WG) {
                const int kk = e / V, col = e % V;
                lt[e] = (k0 + kk < BKV && j0 + k0 + kk < kend)
                            ? v[((tok0 + j0 + k0 + kk) * Hk + kh) * V + col] : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int kk = 0; kk < VD && k0 + kk < BKV; kk++) {
                float p[4];
                for (int i = 0; i < 4; i++) p[i] = ls[(ty + 16 * i) * SP + k0 + kk];
                for (int u = 0; u < MVC; u++) {
                    const int col = tx + 16 * u;
                    const float b = col < V ? lt[kk * V + col] : 0.0f;
                    for (int i = 0; i < 4; i++) acc[i][u] = mad(p[i], b, acc[i][u]);
                }
            }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = 0; i < 4; i++) {
        const int r = ty + 16 * i;
        if (r >= nq) continue;
        const float inv = 1.0f / ll[r];
        for (int u = 0; u < MVC; u++) {
            const int col = tx + 16 * u;
            if (col < V) o[((tok0 + i0 + r) * H + h) * V + col] = acc[i][u] * inv;
        }
    }
}

/* ---- forward, second form: a work-group of WG2 per (BQ2 rows, head) ---- *
 * The same walk as softmax_fwd with more products per local-memory load:
 * the query and key tiles are stored d-major ([d][row], rows padded to PP)
 * and the probabilities key-major ([key][row]), so that a work-item reads
 * its rows and keys as float4.  Work-item (ty, tx) = (lid / 16, lid % 16)
 * owns rows 32 (i / 4) + 4 ty + i % 4 (i < 8), in the scores keys 4 tx + u
 * (u < 4), in the output columns 64 c + 4 tx + u (c < NC2, u < 4): 32
 * products per 3 float4 loads in the scores, 32 NC2 per 2 + NC2 in P V.
 * Taken for V <= 128 (softmax_cl.c); the row statistics take 2 work-items
 * a row; the outputs leave through local memory, 32 rows at a time. */
#define WG2 128
#define BQ2 64
#define BK2 64
#define DT2 16
#define PP (BQ2 + 4)                     /* row stride of [d][row] tiles */
#define NC2 ((V + 63) / 64)              /* 1 or 2 */
#define VW (64 * NC2)                    /* value columns held, V padded */
#define VP (VW + 4)                      /* row stride of a value tile */
#define VD2 (NC2 == 1 ? 32 : 16)         /* keys of a value tile */
#define LT2 (2 * DT2 * PP)               /* >= VD2 * VP */
#define NDT ((K + DT2 - 1) / DT2)        /* stages of the scores per key tile */
#define NST (NDT + BK2 / VD2)            /* and of P V */
#define PF 16                            /* floats a work-item stages */
#ifndef STAGE2
#define STAGE2 1                         /* 0: no loads ahead (tuning) */
#endif

/* Staging: stage s of key tile j0 is a query and key tile (s < NDT: rows
 * of DT2 columns from d = DT2 s) or a value tile (VD2 keys from BK2 / VD2
 * (s - NDT)), PF floats a work-item (BQ2 DT2 = VD2 VW = 8 WG2): loaded into
 * registers by fwd2_load while the previous stage's products run, stored to
 * local memory by fwd2_store (with STAGE2 = 0, just before it). */
static void fwd2_load(__global const float *qb, __global const float *kb, __global const float *vb,
                      long sq, long sk, long sv, int nq, int nk, int s, int lid, float *f)
{
    /* qb: the block's first query row, kb and vb the tile's first key and
     * value rows; sq, sk, sv: their row strides; nq, nk: rows there */
    if (s < NDT) {
        const int r0 = lid / DT2, d = DT2 * s + lid % DT2;
        __global const float *qp = qb + r0 * sq + d, *kp = kb + r0 * sk + d;
        for (int j = 0; j < 8; j++, qp += (WG2 / DT2) * sq, kp += (WG2 / DT2) * sk) {
            const int r = r0 + (WG2 / DT2) * j;
            f[j] = (r < nq && d < K) ? *qp : 0.0f;
            f[8 + j] = (r < nk && d < K) ? *kp : 0.0f;
        }
    } else {
        const int k0 = VD2 * (s - NDT) + lid / VW, col = lid % VW;
        __global const float *vp = vb + k0 * sv + col;
        for (int j = 0; j < PF; j++, vp += (WG2 / VW) * sv)
            f[j] = (col < V && k0 + (WG2 / VW) * j < nk) ? *vp : 0.0f;
    }
}

static void fwd2_store(__local float *lt, int s, int lid, const float *f)
{
    if (s < NDT) {
        const int r = lid / DT2, dd = lid % DT2;
        for (int j = 0; j < 8; j++) {
            lt[dd * PP + r + (WG2 / DT2) * j] = f[j];
            lt[DT2 * PP + dd * PP + r + (WG2 / DT2) * j] = f[8 + j];
        }
    } else {
        const int kk = lid / VW, col = lid % VW;
        for (int j = 0; j < PF; j++) lt[(kk + (WG2 / VW) * j) * VP + col] = f[j];
    }
}

__kernel __attribute__((reqd_work_group_size(WG2, 1, 1)))
void softmax_fwd2(__global const long *stab, __global const long *btab, __global const float *q,
                  __global const float *k, __global const float *v, __global float *o, int H,
                  int Hk, float scale)
{
    __local float4 lp4[BK2 * PP / 4], lt4[LT2 / 4];
    __local float lred[WG2], lsum[WG2], lcorr[BQ2], ll[BQ2];
    __local float *lp = (__local float *)lp4, *lt = (__local float *)lt4;
    __local float4 *lq4 = lt4, *lk4 = lt4 + DT2 * PP / 4;
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int srow = lid / 2, part = lid % 2; /* the row statistics */
    const int g = get_group_id(0), h = get_group_id(1), kh = h / (H / Hk);
    const long n = btab[2 * g], i0 = btab[2 * g + 1];
    const long tok0 = stab[2 * n], len = stab[2 * n + 1];
    const int nq = (int)min((long)BQ2, len - i0);
    const long kend = i0 + nq, sq = (long)H * K, sk = (long)Hk * K, sv = (long)Hk * V;
    __global const float *qb = q + (tok0 + i0) * sq + (long)h * K;
    if (lid < BQ2) ll[lid] = 0.0f;
    float acc[8][4 * NC2];
    for (int i = 0; i < 8; i++)
        for (int c = 0; c < 4 * NC2; c++) acc[i][c] = 0.0f;
    float mrow = -INFINITY, f[PF];
#define LOAD(j, s)                                                                                 \
    fwd2_load(qb, k + (tok0 + (j)) * sk + (long)kh * K, v + (tok0 + (j)) * sv + (long)kh * V, sq,   \
              sk, sv, nq, (int)min((long)BK2, kend - (j)), (s), lid, f)
    if (STAGE2) LOAD(0, 0);
    for (long j0 = 0; j0 < kend; j0 += BK2) {
        float sc[8][4];
        for (int i = 0; i < 8; i++)
            for (int u = 0; u < 4; u++) sc[i][u] = 0.0f;
        for (int s = 0; s < NDT; s++) {
            barrier(CLK_LOCAL_MEM_FENCE);
            if (!STAGE2) LOAD(j0, s);
            fwd2_store(lt, s, lid, f);
            barrier(CLK_LOCAL_MEM_FENCE);
            if (STAGE2) LOAD(j0, s + 1);
            for (int dd = 0; dd < DT2; dd++) {
                const float4 a0 = lq4[dd * (PP / 4) + ty], a1 = lq4[dd * (PP / 4) + 8 + ty];
                const float4 b = lk4[dd * (PP / 4) + tx];
                const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                const float bb[4] = {b.x, b.y, b.z, b.w};
                for (int i = 0; i < 8; i++)
                    for (int u = 0; u < 4; u++) sc[i][u] = mad(a[i], bb[u], sc[i][u]);
            }
        }
        /* scaled and masked scores to lp, [key][row] */
        for (int u = 0; u < 4; u++) {
            const long t = j0 + 4 * tx + u;
            for (int hf = 0; hf < 2; hf++) {
                float x[4];
                for (int i = 0; i < 4; i++) {
                    const int r = 32 * hf + 4 * ty + i;
                    x[i] = (r < nq && t <= i0 + r) ? sc[4 * hf + i][u] * scale : -INFINITY;
                }
                lp4[(4 * tx + u) * (PP / 4) + 8 * hf + ty] = (float4)(x[0], x[1], x[2], x[3]);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* row statistics: the tile's maximum, p = exp(s - m) in place */
        float pm = -INFINITY;
        for (int t = part * 32; t < part * 32 + 32; t++) pm = fmax(pm, lp[t * PP + srow]);
        lred[lid] = pm;
        barrier(CLK_LOCAL_MEM_FENCE);
        const float mnew = fmax(mrow, fmax(lred[2 * srow], lred[2 * srow + 1]));
        lsum[lid] = exp_run(lp + part * 32 * PP + srow, PP, 32, mnew);
        if (part == 0) lcorr[srow] = mnew == -INFINITY ? 1.0f : exp(mrow - mnew);
        mrow = mnew;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (part == 0) ll[srow] = ll[srow] * lcorr[srow] + (lsum[lid] + lsum[lid + 1]);
        for (int i = 0; i < 8; i++) {
            const float cr = lcorr[32 * (i / 4) + 4 * ty + i % 4];
            for (int c = 0; c < 4 * NC2; c++) acc[i][c] *= cr;
        }
        /* acc += P V, the values in tiles of VD2 keys */
        for (int k0 = 0; k0 < BK2; k0 += VD2) {
            const int s = NDT + k0 / VD2;
            barrier(CLK_LOCAL_MEM_FENCE);
            if (!STAGE2) LOAD(j0, s);
            fwd2_store(lt, s, lid, f);
            barrier(CLK_LOCAL_MEM_FENCE);
            if (STAGE2 && s + 1 < NST)
                LOAD(j0, s + 1);
            else if (STAGE2 && j0 + BK2 < kend)
                LOAD(j0 + BK2, 0);
            for (int kk = 0; kk < VD2; kk++) {
                const float4 p0 = lp4[(k0 + kk) * (PP / 4) + ty];
                const float4 p1 = lp4[(k0 + kk) * (PP / 4) + 8 + ty];
                const float p[8] = {p0.x, p0.y, p0.z, p0.w, p1.x, p1.y, p1.z, p1.w};
                for (int c = 0; c < NC2; c++) {
                    const float4 b = lt4[kk * (VP / 4) + 16 * c + tx];
                    const float bb[4] = {b.x, b.y, b.z, b.w};
                    for (int i = 0; i < 8; i++)
                        for (int u = 0; u < 4; u++)
                            acc[i][4 * c + u] = mad(p[i], bb[u], acc[i][4 * c + u]);
                }
            }
        }
    }
    /* out: 32 rows at a time through lp, [row][col] */
    for (int hf = 0; hf < 2; hf++) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < 4; i++) {
            const int r = 32 * hf + 4 * ty + i;
            const float inv = r < nq ? 1.0f / ll[r] : 0.0f;
            for (int c = 0; c < NC2; c++)
                lp4[(4 * ty + i) * (VW / 4) + 16 * c + tx] =
                    (float4)(acc[4 * hf + i][4 * c], acc[4 * hf + i][4 * c + 1],
                             acc[4 * hf + i][4 * c + 2], acc[4 * hf + i][4 * c + 3]) * inv;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int rows = clamp(nq - 32 * hf, 0, 32);
        for (int e = lid; e < rows * V; e += WG2) {
            const int rr = e / V, col = e % V;
            o[((tok0 + i0 + 32 * hf + rr) * H + h) * V + col] = lp[rr * VW + col];
        }
    }
}
#undef LOAD

/* ---- decode: a work-group per (split of the cache, head, batch row) ---- */
#define SPLIT_MAX 1024        /* keys in a split, at most (softmax_cl.c) */
#define TPK 16                /* work-items per key in the scores */
#define VT (V < WG ? V : WG)  /* value columns per pass */
#define NG (WG / VT)          /* groups of keys in the weighted sum */
#define MVD ((V + VT - 1) / VT)
#define LO (V > WG ? V : WG)

/* kc [B,H,cap,K], vc [B,H,cap,V]; q [B,Hq,K] (Hq = G H: query head h reads
 * cache head h / G); keys [sp*S, min(L, sp*S+S)).
 * part [B,Hq,nsplit,V+2]: sum p v, then max score m, then sum p. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void softmax_split(__global const float *kc, __global const float *vc, __global const float *q,
                   __global float *part, long cap, long L, int S, int nsplit, int H, int G,
                   float scale)
{
    __local float lq[K], ls[SPLIT_MAX], red[WG], lo[LO];
    const int lid = get_local_id(0), sp = get_group_id(0);
    const long row = (long)get_group_id(2) * get_num_groups(1) + get_group_id(1);
    const long crow = (long)get_group_id(2) * H + get_group_id(1) / G;
    const long j0 = (long)sp * S;
    const int n = (int)min((long)S, L - j0);
    __global const float *kr = kc + (crow * cap + j0) * K;
    __global const float *vr = vc + (crow * cap + j0) * V;
    for (int i = lid; i < K; i += WG) lq[i] = q[row * K + i];
    barrier(CLK_LOCAL_MEM_FENCE);
    /* scores: TPK work-items per key, WG / TPK keys per pass */
    const int t = lid % TPK, kk = lid / TPK;
    for (int jb = 0; jb < n; jb += WG / TPK) {
        const int j = jb + kk;
        float s = 0.0f;
        if (j < n)
            for (int i = t; i < K; i += TPK) s += lq[i] * kr[(long)j * K + i];
        red[lid] = s;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (t == 0 && j < n) {
            float d = 0.0f;
            for (int u = 0; u < TPK; u++) d += red[lid + u];
            ls[j] = d * scale;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    /* max, then p = exp(s - max) in place and its sum */
    float mx = -INFINITY;
    for (int j = lid; j < n; j += WG) mx = fmax(mx, ls[j]);
    red[lid] = mx;
    for (int w = WG / 2; w > 0; w /= 2) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < w) red[lid] = fmax(red[lid], red[lid + w]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float m = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float sum = 0.0f;
    for (int j = lid; j < n; j += WG) {
        const float p = exp(ls[j] - m);
        ls[j] = p;
        sum += p;
    }
    red[lid] = sum;
    for (int w = WG / 2; w > 0; w /= 2) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < w) red[lid] += red[lid + w];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float l = red[0];
    /* sum p v: NG groups of keys, VT columns each (coalesced rows of v) */
    const int grp = lid / VT, c = lid % VT;
    float acc[MVD];
    for (int mm = 0; mm < MVD; mm++) acc[mm] = 0.0f;
    if (grp < NG)
        for (int j = grp; j < n; j += NG) {
            const float p = ls[j];
            for (int mm = 0; mm < MVD; mm++) {
                const int col = c + VT * mm;
                if (col < V) acc[mm] += p * vr[(long)j * V + col];
            }
        }
    if (grp < NG)
        for (int mm = 0; mm < MVD; mm++) {
            const int col = c + VT * mm;
            if (col < V) lo[grp * V + col] = acc[mm];
        }
    barrier(CLK_LOCAL_MEM_FENCE);
    __global float *out = part + (row * nsplit + sp) * (V + 2);
    for (int col = lid; col < V; col += WG) {
        float a = 0.0f;
        for (int gg = 0; gg < NG; gg++) a += lo[gg * V + col];
        out[col] = a;
    }
    if (lid == 0) {
        out[V] = m;
        out[V + 1] = l;
    }
}

/* o [B,Hq,V] = sum_s w_s part_s / sum_s w_s l_s, w_s = exp(m_s - max m) */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void softmax_merge(__global const float *part, __global float *o, int nsplit)
{
    const int lid = get_local_id(0);
    const long row = (long)get_group_id(2) * get_num_groups(1) + get_group_id(1);
    __global const float *pr = part + row * nsplit * (V + 2);
    float M = -INFINITY, den = 0.0f;
    for (int s = 0; s < nsplit; s++) M = fmax(M, pr[s * (V + 2) + V]);
    for (int s = 0; s < nsplit; s++) den += exp(pr[s * (V + 2) + V] - M) * pr[s * (V + 2) + V + 1];
    for (int col = lid; col < V; col += WG) {
        float a = 0.0f;
        for (int s = 0; s < nsplit; s++) a += exp(pr[s * (V + 2) + V] - M) * pr[s * (V + 2) + col];
        o[row * V + col] = a / den;
    }
}

/* k [B,T,H,K], v [B,T,H,V] to tokens len .. len+T-1 of kc, vc; one
 * work-item per float (nk = B*T*H*K of them, then nv = B*T*H*V). */
__kernel void kv_append(__global const float *k, __global const float *v, __global float *kc,
                        __global float *vc, long T, int H, long cap, long len, long nk, long nv)
{
    const long e = get_global_id(0);
    if (e < nk) {
        const long i = e % K, r = e / K, h = r % H, t = (r / H) % T, b = r / (H * T);
        kc[((b * H + h) * cap + len + t) * K + i] = k[e];
    } else if (e < nk + nv) {
        const long f = e - nk, i = f % V, r = f / V, h = r % H, t = (r / H) % T, b = r / (H * T);
        vc[((b * H + h) * cap + len + t) * V + i] = v[f];
    }
}
