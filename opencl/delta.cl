/* linattn - OpenCL C 1.2 kernels of the delta-rule family (gdn, kla, gla).
 *
 * Built once per (K, V, CH, BV, GK) with -D K=.. -D V=.. -D CH=.. (CH <= 64,
 * chunk size) -D BV=.. (columns per group of the sequential kernels) -D GK=..
 * (1: g [.., H, K], a log-decay per key channel; 0: per head); work-groups
 * are WG = 256 work-items.  The chunkwise form of linattn_gdn(3) runs in three
 * kernels per window of chunks:
 *   delta_prep   one group per (chunk, head): G = cumsum(g), M = (Q K^T) o D
 *                (per query head), T = (I + A)^-1 with
 *                A = strict_lower(diag(beta) K K^T o D),
 *                W = T diag(beta) (e^G o K),  U = T diag(beta) V
 *                (gla: G and M only; U' = V is read in place from v)
 *   delta_state  one group per (sequence, head, BV value columns): walks the
 *                chunks in order with the state in registers; saves the state
 *                entering each chunk, U' = U - W S, S = e^{G_c} S + Kd^T U'
 *                (delta_walk: the same, the state over the whole group)
 *   gla_sum,     gla instead of the walk: per-chunk Kd^T V in parallel, then
 *   gla_scan     a scaled prefix sum over the chunks per state element
 *   delta_out    one group per (chunk, query head, 128 value columns, 64
 *                where V <= 64): O = scale ((e^G o Q) S_in + M U')
 *   gla_out,     gla with a gate per head, the scan: the output forming M
 *   gla_gates    itself; G alone, a work-item per (chunk, head)
 * Per head, D[r][s] = e^{G_r - G_s} and e^G scales rows.  Per key channel
 * (GK) the products are sum_i x_ri y_si e^{G_ri - G_si} and e^G, Kd scale
 * elements; e^{-G} over a chunk would overflow, so the 16-row sub-chunks
 * a > b factor through R_b, G at the last row of b (both exponents <= 0),
 * and the diagonal sub-chunks take e^{G_ri - G_si} pairwise.
 * delta_stepw is the fused recurrent step (decode) with CW adjacent value
 * columns per work-item (V % CW == 0), delta_step the same one column per
 * work-item (any V; the host's fallback), kla_beta turns eta
 * into beta, qk_l2norm and beta_sigmoid stage the options' inputs.
 * Everything accumulates in float; no extension is required.
 * k has Hk key heads, v, g, beta and the state H value heads; value head h
 * reads key head key_head(h) (map 0 grouped, 1 tiled).  q has Hq heads: the
 * key heads (share 0: o has H heads), or nq = Hq / H query heads per state
 * (share 1: query head h * nq + e reads state h, o has Hq heads). */

#define WG 256
#ifndef GK
#define GK 0
#endif
#define GS (GK ? CH * K : CH) /* floats of G per (chunk, head) */
#define TK 16           /* depth of a slab in the tiled products */
#ifndef BV
#define BV 32           /* value columns per group in delta_state/delta_step (8, 16 or 32) */
#endif
#define RG (WG / BV)    /* row groups sharing those columns */
#define NR ((K + RG - 1) / RG) /* state rows held by one work-item */
#define RB 8            /* rows of U' reduced at a time in delta_state */
/* Slabs of the tiled products are [TK][LDS]: depth kk, then the 64 rows
 * (A operand, X^T) or columns (B operand, Y) in the order pos(i) =
 * 4 (i % 16) + i / 16, so that the four rows ty + 16a (columns tx + 16b)
 * of a work-item's outputs are one aligned float4 at 4 ty (4 tx).  The row
 * of 64 is padded to 68 (16-byte aligned rows; the stores of the staging
 * below then hit 32 distinct banks per 32 work-items). */
#define LDS 68
#define POS(i) (4 * ((i) % 16) + (i) / 16)
#define UNPOS(p) ((p) / 4 + 16 * ((p) % 4)) /* the i of pos(i) = p */

/* #pragma unroll n with n a macro */
#define PRAGMA_(x) _Pragma(#x)
#define UNROLL_(n) PRAGMA_(unroll n)
#define UNROLL(n) UNROLL_(n)

static int key_head(int h, int H, int Hk, int map)
{
    return map ? h % Hk : h / (H / Hk);
}

/* One 64 x 64 output tile, 4 x 4 per work-item: rows ty + 16a, cols tx + 16b.
 * acc += X[64][TK] * Y[TK][64] from the slabs lxt = X^T and ly in local
 * memory, both [TK][LDS] in pos order: two float4 loads per kk.  The rows
 * of a < a0 are left alone (a caller whose X is zero there: a0 a constant
 * where the caller is compiled, so that the loops stay unrolled). */
static void tile_mac(__local const float *lxt, __local const float *ly, float acc[4][4],
                     int a0, int ty, int tx)
{
    for (int kk = 0; kk < TK; kk++) {
        const float4 x4 = vload4(0, lxt + kk * LDS + 4 * ty);
        const float4 y4 = vload4(0, ly + kk * LDS + 4 * tx);
        const float xa[4] = {x4.x, x4.y, x4.z, x4.w}, yb[4] = {y4.x, y4.y, y4.z, y4.w};
        for (int a = a0; a < 4; a++)
            for (int b = 0; b < 4; b++) acc[a][b] = mad(xa[a], yb[b], acc[a][b]);
    }
}

/* Two tiles sharing an operand, three float4 loads per kk for 32 FMAs:
 * tile_mac_x: acc0 += X Y0, acc1 += X Y1 (one X^T slab, two Y slabs; rows
 * from a0, as tile_mac's);
 * tile_mac_y: acc0 += X0 Y, acc1 += X1 Y (two X^T slabs, one Y slab). */
static void tile_mac_x(__local const float *lxt, __local const float *ly0,
                       __local const float *ly1, float acc0[4][4], float acc1[4][4], int a0,
                       int ty, int tx)
{
    for (int kk = 0; kk < TK; kk++) {
        const float4 x4 = vload4(0, lxt + kk * LDS + 4 * ty);
        const float4 y0 = vload4(0, ly0 + kk * LDS + 4 * tx), y1 = vload4(0, ly1 + kk * LDS + 4 * tx);
        const float xa[4] = {x4.x, x4.y, x4.z, x4.w};
        const float yb[4] = {y0.x, y0.y, y0.z, y0.w}, yc[4] = {y1.x, y1.y, y1.z, y1.w};
        for (int a = a0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                acc0[a][b] = mad(xa[a], yb[b], acc0[a][b]);
                acc1[a][b] = mad(xa[a], yc[b], acc1[a][b]);
            }
    }
}

static void tile_mac_y(__local const float *lx0, __local const float *lx1,
                       __local const float *ly, float acc0[4][4], float acc1[4][4], int ty,
                       int tx)
{
    for (int kk = 0; kk < TK; kk++) {
        const float4 x0 = vload4(0, lx0 + kk * LDS + 4 * ty), x1 = vload4(0, lx1 + kk * LDS + 4 * ty);
        const float4 y4 = vload4(0, ly + kk * LDS + 4 * tx);
        const float xa[4] = {x0.x, x0.y, x0.z, x0.w}, xc[4] = {x1.x, x1.y, x1.z, x1.w};
        const float yb[4] = {y4.x, y4.y, y4.z, y4.w};
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                acc0[a][b] = mad(xa[a], yb[b], acc0[a][b]);
                acc1[a][b] = mad(xc[a], yb[b], acc1[a][b]);
            }
    }
}

static void tile_zero(float acc[4][4])
{
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) acc[a][b] = 0.0f;
}

/* p[0..3] where the index is below n (zeros past it; nothing read there).
 * GALIGN (the host's -DGALIGN=1 where K, V and CH are multiples of 4, so
 * that every row the products read starts 16-byte aligned): a whole float4
 * through a pointer to it, which vload4 may not assume (on the H200 a vload4
 * of global floats compiled to four scalar accesses: gla 1.52 -> 1.20-1.30 ms
 * a call at B = 1, T = 16384). */
#ifndef GALIGN
#define GALIGN 0
#endif
/* a whole vector of type T at an address known to be aligned for it */
#define GVEC(T, p) (*(__global T *)(p))
#if GALIGN
#define GVL(p) GVEC(const float4, p)
#else
#define GVL(p) vload4(0, (p))
#endif
static float4 ld4(__global const float *p, int n)
{
    if (n >= 4) return GVL(p);
    return (float4)(n > 0 ? p[0] : 0.0f, n > 1 ? p[1] : 0.0f, n > 2 ? p[2] : 0.0f, 0.0f);
}

/* The staged slabs of the tiled products go global -> registers -> local:
 * a work-item's float4s of slab p + 1 are loaded before slab p's products
 * (the prefetch), so that the loads' latency hides behind arithmetic
 * instead of serialising the staging loops.  From rows (fetch_x: X[64][TK],
 * or Y^T) a work-item loads one float4, row XROW of 64 at depths XCOL ..;
 * from columns (fetch_y: Y[TK][64], or X^T) one float4 at depth YROW,
 * columns YCOL ... .  Any bijection would do; these keep the two work-items
 * of a 32-byte segment of global memory adjacent and make the four stores
 * to a [TK][LDS] slab (store_rows, store_cols) hit 32 distinct banks per
 * 32 consecutive work-items (bits of lid: XROW from 1-4 and 6-7, XCOL from
 * 0 and 5; YROW from 3-4 and 6-7, YCOL from 0-2 and 5). */
#define XROW(lid) (4 * ((lid) / 64) + ((lid) / 2) % 4 + 16 * (((lid) % 32) / 8))
#define XCOL(lid) (8 * (((lid) / 32) % 2) + 4 * ((lid) % 2))
#define YROW(lid) (4 * ((lid) / 64) + ((lid) % 32) / 8)
#define YCOL(lid) (4 * (2 * (((lid) / 32) % 2) + (lid) % 2 + 4 * (((lid) / 2) % 4)))

/* x4 of the row XROW (r < c) of x at columns i0 + XCOL (< n) */
static float4 fetch_x(__global const float *x, long ldx, int c, int i0, int n, int lid)
{
    const int r = XROW(lid), i = i0 + XCOL(lid);
    return r < c ? ld4(x + r * ldx + i, n - i) : (float4)(0.0f);
}

/* A fetch_x, stored transposed into a slab: s[XCOL + j][pos(XROW)] */
static void store_rows(float4 t, __local float *s, int lid)
{
    __local float *p = s + XCOL(lid) * LDS + POS(XROW(lid));
    p[0] = t.x;
    p[LDS] = t.y;
    p[2 * LDS] = t.z;
    p[3 * LDS] = t.w;
}

/* y4 of Y[TK][64]: row s0 + YROW (< c) of y, columns col0 + YCOL (< n) */
static float4 fetch_y(__global const float *y, long ldy, int c, int s0, int col0, int n, int lid)
{
    const int s = s0 + YROW(lid), col = col0 + YCOL(lid);
    return s < c ? ld4(y + s * ldy + col, n - col) : (float4)(0.0f);
}

/* A fetch_y into a slab: s[YROW][pos(YCOL + j)] (YCOL % 4 == 0, so
 * pos(YCOL + j) = pos(YCOL) + 4 j) */
static void store_cols(float4 t, __local float *s, int lid)
{
    __local float *p = s + YROW(lid) * LDS + POS(YCOL(lid));
    p[0] = t.x;
    p[4] = t.y;
    p[8] = t.z;
    p[12] = t.w;
}

#if GK
/* Slab i0 for the sub-chunks off the diagonal, [TK][LDS] slabs like
 * tile_mac's: Y'^T with y_si e^{R_bi - G_si} (s in sub-chunk b) in ly,
 * X'_b^T with x_ri e^{G_ri - R_bi} in xb + b * TK * LDS for b < 3 and rows
 * past b.  Element e is depth e % TK of row UNPOS(e / TK). */
static void load_off(__global const float *x, long ldx, __global const float *y, long ldy,
                     __global const float *G, int c, int i0, __local float *xb,
                     __local float *ly, int lid)
{
    for (int e = lid; e < 64 * TK; e += WG) {
        const int p = e / TK, r = UNPOS(p), kk = e % TK, i = i0 + kk, a = r / 16;
        const int ok = r < c && i < K;
        const float Gr = ok ? G[r * K + i] : 0.0f, xr = ok ? x[r * ldx + i] : 0.0f;
        ly[kk * LDS + p] = ok && a < 3 && 16 * a + 15 < c
                               ? y[r * ldy + i] * exp(G[(16 * a + 15) * K + i] - Gr) : 0.0f;
        for (int b = 0; b < 3; b++)
            xb[(b * TK + kk) * LDS + p] = ok && a > b ? xr * exp(Gr - G[(16 * b + 15) * K + i])
                                                      : 0.0f;
    }
}

/* Slab i0 for the diagonal sub-chunks: X^T of x in lx, Y^T of y in ly and
 * G^T in lg, all [TK][LDS] */
static void load_diag(__global const float *x, long ldx, __global const float *y, long ldy,
                      __global const float *G, int c, int i0, __local float *lx,
                      __local float *ly, __local float *lg, int lid)
{
    for (int e = lid; e < 64 * TK; e += WG) {
        const int p = e / TK, r = UNPOS(p), kk = e % TK, i = i0 + kk;
        const int ok = r < c && i < K;
        lx[kk * LDS + p] = ok ? x[r * ldx + i] : 0.0f;
        ly[kk * LDS + p] = ok ? y[r * ldy + i] : 0.0f;
        lg[kk * LDS + p] = ok ? G[r * K + i] : 0.0f;
    }
}
#endif

/* delta_prep's W and U slabs: rows s0 .. of 64-column block blk (W's nbk
 * blocks of k's columns, then U's of v's), zeros past the nb blocks. */
static float4 wu_fetch(__global const float *kc, long ldk, __global const float *vc, long ldv,
                       int c, int s0, int blk, int nbk, int nb, int lid)
{
    if (blk >= nb) return (float4)(0.0f);
    return blk >= nbk ? fetch_y(vc, ldv, c, s0, (blk - nbk) * 64, V, lid)
                      : fetch_y(kc, ldk, c, s0, blk * 64, K, lid);
}

/* Chunk table: per chunk of the window {first token (b*T + t), length, seq}.
 * M of query head oh of chunk w at Mout + (w * Ho + oh) * CH * CH. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void delta_prep(__global const long *ctab, __global const float *q,
                __global const float *k, __global const float *v,
                __global const float *g, __global const float *beta, int H,
                int Hk, int Hq, int nq, int share, int map, int has_g, int gdn,
                __global float *Gout, __global float *Mout, __global float *Wout,
                __global float *Uout)
{
    /* A and T row-major (rows of 64), then T^T in pos order (rows of LDS);
     * GK: scratch of the products first */
    __local float lA[64 * LDS] __attribute__((aligned(16)));
    __local float lxy[2 * TK * LDS] __attribute__((aligned(16)));
    __local float *lx = lxy, *ly = lxy + TK * LDS;
    __local float lG[64], lb[64];
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int w = get_group_id(0), h = get_group_id(1);
    const long tok0 = ctab[3 * w];
    const int c = (int)ctab[3 * w + 1];
    const long ldk = (long)Hk * K, ldq = (long)Hq * K, ldv = (long)H * V;
    const long kh = key_head(h, H, Hk, map), Ho = share ? Hq : H;
    __global const float *kc = k + (tok0 * Hk + kh) * K;
    __global const float *vc = v + (tok0 * H + h) * V;
    const long wh = (long)w * H + h;
    float acc[4][4], acc1[4][4];

#if GK
    __global float *Gw = Gout + wh * GS; /* G[r][i], rows r < c */
    for (int i = lid; i < K; i += WG) {
        float s = 0.0f;
        for (int r = 0; r < c; r++) {
            if (has_g) s += g[((tok0 + r) * H + h) * K + i];
            Gw[r * K + i] = s;
        }
    }
    if (lid < 64) lb[lid] = lid < c && gdn ? beta[(tok0 + lid) * H + h] : 1.0f;
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
#else
    if (lid < 64) { /* loaded in parallel, summed by one work-item */
        lG[lid] = lid < c && has_g ? g[(tok0 + lid) * H + h] : 0.0f;
        lb[lid] = lid < c && gdn ? beta[(tok0 + lid) * H + h] : 1.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0)
        for (int r = 1; r < 64; r++) lG[r] += lG[r - 1];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < CH) Gout[wh * CH + lid] = lG[lid];
#endif

#if GK
    /* e < nq: M = (Q K^T) o D of query head e with the diagonal, zero above
     * it and past c; e = nq (gdn): A = strict_lower(diag(beta) K K^T o D) */
    for (int e = 0; e < nq + gdn; e++) {
        const long qh = share ? h * nq + e : kh;
        __global const float *xc = e < nq ? q + (tok0 * Hq + qh) * K : kc;
        const long ldx = e < nq ? ldq : ldk;
        tile_zero(acc);
        for (int i0 = 0; i0 < K; i0 += TK) {
            load_off(xc, ldx, kc, ldk, Gw, c, i0, lA, ly, lid);
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int kk = 0; kk < TK; kk++) {
                const float4 y4 = vload4(0, ly + kk * LDS + 4 * tx);
                const float yb[3] = {y4.x, y4.y, y4.z};
                for (int b = 0; b < 3; b++) {
                    const float4 x4 = vload4(0, lA + (b * TK + kk) * LDS + 4 * ty);
                    const float xa[4] = {x4.x, x4.y, x4.z, x4.w};
                    for (int a = b + 1; a < 4; a++) acc[a][b] = mad(xa[a], yb[b], acc[a][b]);
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        for (int i0 = 0; i0 < K; i0 += TK) {
            load_diag(xc, ldx, kc, ldk, Gw, c, i0, lx, ly, lA, lid);
            barrier(CLK_LOCAL_MEM_FENCE);
            if (tx <= ty) /* rows ty + 16a, columns tx + 16a */
                for (int kk = 0; kk < TK; kk++) {
                    const int o = kk * LDS;
                    const float4 xy = vload4(0, lx + o + 4 * ty) * vload4(0, ly + o + 4 * tx);
                    const float4 d = exp(vload4(0, lA + o + 4 * ty) - vload4(0, lA + o + 4 * tx));
                    acc[0][0] = mad(xy.x, d.x, acc[0][0]);
                    acc[1][1] = mad(xy.y, d.y, acc[1][1]);
                    acc[2][2] = mad(xy.z, d.z, acc[2][2]);
                    acc[3][3] = mad(xy.w, d.w, acc[3][3]);
                }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                const int r = ty + 16 * a, s = tx + 16 * b;
                const float x = r < c && (e < nq ? s <= r : s < r) ? acc[a][b] : 0.0f;
                if (e < nq) {
                    if (r < CH && s < CH) Mout[((w * Ho + (share ? qh : h)) * CH + r) * CH + s] = x;
                } else {
                    lA[r * 64 + s] = lb[r] * x;
                }
            }
    }
#else
    /* M = (Q K^T) o D of query head e with the diagonal, zero above it and
     * past c; with e = 0 (gdn) A = strict_lower(diag(beta) K K^T o D) from
     * the same slabs of K (lx: K^T, ly: Q^T) */
    for (int e = 0; e < nq; e++) {
        const long qh = share ? h * nq + e : kh;
        __global const float *qe = q + (tok0 * Hq + qh) * K;
        const int wa = gdn && e == 0;
        tile_zero(acc);
        tile_zero(acc1);
        float4 fx = fetch_x(kc, ldk, c, 0, K, lid), fy = fetch_x(qe, ldq, c, 0, K, lid);
        for (int i0 = 0; i0 < K; i0 += TK) {
            store_rows(fx, lx, lid);
            store_rows(fy, ly, lid);
            barrier(CLK_LOCAL_MEM_FENCE);
            if (i0 + TK < K) {
                fx = fetch_x(kc, ldk, c, i0 + TK, K, lid);
                fy = fetch_x(qe, ldq, c, i0 + TK, K, lid);
            }
            if (wa) tile_mac_y(ly, lx, lx, acc, acc1, ty, tx);
            else tile_mac(ly, lx, acc, 0, ty, tx);
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                const int r = ty + 16 * a, s = tx + 16 * b;
                const float d = exp(lG[r] - lG[s]); /* used where s <= r only */
                if (r < CH && s < CH)
                    Mout[((w * Ho + (share ? qh : h)) * CH + r) * CH + s] =
                        r < c && s <= r ? acc[a][b] * d : 0.0f;
                if (wa) lA[r * 64 + s] = r < c && s < r ? lb[r] * acc1[a][b] * d : 0.0f;
            }
    }
#endif

    if (!gdn) return; /* gla: U' = V (read in place by the next kernels), no W */
    barrier(CLK_LOCAL_MEM_FENCE);
    /* T = (I + A)^-1 (unit lower) by 16 x 16 blocks, 8 barriers: first the
     * diagonal blocks T_dd = (I + A_dd)^-1 by forward substitution, one
     * column j per work-item (64 of them), over A_dd; then the blocks below
     * the diagonal by their distance L = a - b,
     *   T_ab = -T_aa X_ab,  X_ab = sum_{b <= m < a} A_am T_mb,
     * each stored as it is in the free block (b, a) above the diagonal
     * (T[16a + i][16b + j] at lA[(16b + i) 64 + 16a + j]), so that A's
     * blocks below it stay for the later distances and T_mb (m >= b) is
     * always at lA[(16b + u) 64 + 16m + j].  X goes through lx. */
    {
        const int d = lid / 16, j = lid % 16;
        float x[16];
        if (lid < 64) {
#pragma unroll
            for (int i = 0; i < 16; i++) {
                float t = 0.0f;
#pragma unroll
                for (int s = 0; s < i; s++) t = mad(lA[(16 * d + i) * 64 + 16 * d + s], x[s], t);
                x[i] = i == j ? 1.0f : -t; /* x[i < j] = 0 */
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < 64)
#pragma unroll
            for (int i = 0; i < 16; i++) lA[(16 * d + i) * 64 + 16 * d + j] = x[i];
    }
    for (int L = 1; L < 4; L++) {
        const int i = lid / 16, j = lid % 16;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int b = 0; b + L < 4; b++) {
            const int a = b + L;
            float t = 0.0f;
            for (int m = b; m < a; m++)
#pragma unroll
                for (int u = 0; u < 16; u++)
                    t = mad(lA[(16 * a + i) * 64 + 16 * m + u], lA[(16 * b + u) * 64 + 16 * m + j], t);
            lx[b * 256 + lid] = t;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int b = 0; b + L < 4; b++) {
            const int a = b + L;
            float t = 0.0f;
#pragma unroll
            for (int u = 0; u < 16; u++)
                t = mad(lA[(16 * a + i) * 64 + 16 * a + u], lx[b * 256 + 16 * u + j], t);
            lA[(16 * b + i) * 64 + 16 * a + j] = -t;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* T^T in pos order over lA (T's blocks where the inversion left them),
     * the unit diagonal and zeros above it included: the X^T slab of phase
     * s0 below is lA + s0 LDS.  Each
     * work-item holds 16 elements between the barriers; of 32 consecutive
     * ones, lane j of 8 in group a of 4 takes row m + 16a, column
     * 8 (u + a) + j mod 64 (distinct banks on both sides). */
    {
        float tv[64 * 64 / WG];
        for (int i = 0; i < 64 * 64 / WG; i++) {
            const int e = lid + WG * i, l = e % 32, m = e / 32 % 16, u = e / 512;
            const int r = m + 16 * (l / 8), s = (8 * (u + l / 8) + l % 8) % 64;
            tv[i] = s < r ? lA[(16 * (s / 16) + r % 16) * 64 + 16 * (r / 16) + s % 16]
                          : (s == r ? 1.0f : 0.0f);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < 64 * 64 / WG; i++) {
            const int e = lid + WG * i, l = e % 32, m = e / 32 % 16, u = e / 512;
            const int r = m + 16 * (l / 8), s = (8 * (u + l / 8) + l % 8) % 64;
            lA[s * LDS + POS(r)] = tv[i];
        }
    } /* the first phase's barrier orders these stores before tile_mac */

    /* W = T diag(beta) (e^G o K) and U = T diag(beta) V, 128 columns at a
     * time: blocks of 64 columns (W's, then U's) in pairs, the pair's two
     * Y slabs in lx and ly; phase p is slab s0 of pair pb, the next phase's
     * slabs prefetched across pairs */
    const int ns = (c + TK - 1) / TK, nbk = (K + 63) / 64, nb = nbk + (V + 63) / 64;
    const int nph = (nb + 1) / 2 * ns;
    float4 fy[2];
#if GK
    float4 fg[2];
#endif
    for (int u = 0; u < 2; u++) { /* blocks 0 and 1, slab 0 */
        fy[u] = wu_fetch(kc, ldk, vc, ldv, c, 0, u, nbk, nb, lid);
#if GK
        fg[u] = u < nbk ? fetch_y(Gw, K, c, 0, u * 64, K, lid) : (float4)(0.0f);
#endif
    }
    for (int p = 0; p < nph; p++) {
        const int pb = p / ns, s0 = (p % ns) * TK;
        if (s0 == 0) {
            tile_zero(acc);
            tile_zero(acc1);
        }
        for (int u = 0; u < 2; u++) { /* rows s of the slab scaled by beta_s (and e^G_s for W) */
            const int pass = 2 * pb + u >= nbk, s = s0 + YROW(lid);
            const float b = s < c ? lb[s] : 0.0f;
#if GK
            const float4 coef = pass ? (float4)(b) : b * exp(fg[u]);
#else
            const float4 coef = (float4)(s < c && !pass ? b * exp(lG[s]) : b);
#endif
            store_cols(coef * fy[u], u ? ly : lx, lid);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (p + 1 < nph) {
            const int n0 = ((p + 1) % ns) * TK;
            for (int u = 0; u < 2; u++) {
                const int nbl = (p + 1) / ns * 2 + u;
                fy[u] = wu_fetch(kc, ldk, vc, ldv, c, n0, nbl, nbk, nb, lid);
#if GK
                if (nbl < nbk) fg[u] = fetch_y(Gw, K, c, n0, nbl * 64, K, lid);
#endif
            }
        }
        tile_mac_x(lA + s0 * LDS, lx, ly, acc, acc1, 0, ty, tx);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (s0 + TK >= c)
            for (int u = 0; u < 2 && 2 * pb + u < nb; u++) {
                const int blk = 2 * pb + u, pass = blk >= nbk;
                const int col0 = (pass ? blk - nbk : blk) * 64, ncol = pass ? V : K;
                __global float *out = pass ? Uout + wh * CH * V : Wout + wh * CH * K;
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) {
                        const int r = ty + 16 * a, col = col0 + tx + 16 * b;
                        if (r < c && col < ncol) out[r * ncol + col] = u ? acc1[a][b] : acc[a][b];
                    }
            }
    }
}

/* Sequence table: per sequence {first chunk of the window, chunks in it}.
 * St [N,H,K,V] holds the state between windows.  Rows of W and k are staged
 * through local memory (coalesced loads) so that the walk over the chunks is
 * not bound by the latency of scattered global reads. */
#define KC (K < 256 ? K : 256)  /* columns of W staged at a time (RB rows) */
#define KR (2048 / K)           /* rows of k staged at a time */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void delta_state(__global const long *stab, __global const long *ctab,
                 __global const float *k, __global const float *Gin,
                 __global const float *Win, __global float *Uio, __global float *St,
                 __global float *Sbuf, int H, int Hk, int map, int gdn)
{
    __local float red[RG * RB * BV];
    __local float lU[64 * BV];
    __local float lX[2048]; /* W slab [RB][KC], then k slab [KR][K] */
    __local float lD[64];
    const int lid = get_local_id(0), jj = lid % BV, rg = lid / BV;
    const int j = get_group_id(0) * BV + jj, h = get_group_id(1), n = get_group_id(2);
    const int jok = j < V;
    const long w0 = stab[2 * n], nw = stab[2 * n + 1];
    const long ldk = (long)Hk * K, kh = key_head(h, H, Hk, map), ldu = gdn ? V : (long)H * V;
    float s[NR];
    __global float *S = St + ((long)n * H + h) * K * V;
    for (int m = 0; m < NR; m++) {
        const int i = rg + RG * m;
        s[m] = (i < K && jok) ? S[(long)i * V + j] : 0.0f;
    }
    for (long w = w0; w < w0 + nw; w++) {
        const long tok0 = ctab[3 * w];
        const int c = (int)ctab[3 * w + 1];
        const long wh = w * H + h;
        __global const float *kc = k + (tok0 * Hk + kh) * K;
        __global const float *G = Gin + wh * GS;
        __global float *U = gdn ? Uio + wh * CH * V : Uio + (tok0 * H + h) * V;
        __global float *Sout = Sbuf + wh * K * V;
        __global const float *Wc = Win + wh * CH * K;
#if !GK
        if (lid < 64) lD[lid] = lid < c ? exp(G[c - 1] - G[lid]) : 0.0f;
#endif
        for (int m = 0; m < NR; m++) {
            const int i = rg + RG * m;
            if (i < K && jok) Sout[(long)i * V + j] = s[m];
        }
        /* U' = U - W S, RB rows at a time */
        for (int r0 = 0; r0 < c; r0 += RB) {
            float p[RB];
            for (int rr = 0; rr < RB; rr++) p[rr] = 0.0f;
            if (gdn) {
                for (int i0 = 0; i0 < K; i0 += KC) {
                    for (int e = lid; e < RB * KC; e += WG) {
                        const int rr = e / KC, i = i0 + e % KC;
                        lX[e] = (r0 + rr < c && i < K) ? Wc[(r0 + rr) * K + i] : 0.0f;
                    }
                    barrier(CLK_LOCAL_MEM_FENCE);
                    for (int m = 0; m < NR; m++) {
                        const int i = rg + RG * m;
                        if (i >= i0 && i < i0 + KC && i < K)
                            for (int rr = 0; rr < RB; rr++)
                                p[rr] = mad(lX[rr * KC + i - i0], s[m], p[rr]);
                    }
                    barrier(CLK_LOCAL_MEM_FENCE);
                }
            }
            for (int rr = 0; rr < RB; rr++) red[(rg * RB + rr) * BV + jj] = p[rr];
            barrier(CLK_LOCAL_MEM_FENCE);
            {
                const int rr = rg, r = r0 + rr; /* row groups 0..RB-1 reduce rows r0.. */
                if (rr < RB && r < c) {
                    float u = jok ? U[r * ldu + j] : 0.0f;
                    if (gdn) {
                        float q = 0.0f;
                        for (int x = 0; x < RG; x++) q += red[(x * RB + rr) * BV + jj];
                        u -= q;
                        if (jok) U[r * V + j] = u;
                    }
                    lU[r * BV + jj] = u;
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        /* S = e^{G_c} S + (e^{G_c - G} o K)^T U', KR rows of k at a time */
#if GK
        for (int m = 0; m < NR; m++) {
            const int i = rg + RG * m;
            if (i < K) s[m] *= exp(G[(c - 1) * K + i]);
        }
#else
        const float eGc = exp(G[c - 1]);
        for (int m = 0; m < NR; m++) s[m] *= eGc;
#endif
        for (int r0 = 0; r0 < c; r0 += KR) {
            for (int e = lid; e < KR * K; e += WG) {
                const int rr = e / K, i = e % K, r = r0 + rr;
#if GK
                lX[e] = r < c ? exp(G[(c - 1) * K + i] - G[r * K + i]) * kc[r * ldk + i] : 0.0f;
#else
                lX[e] = r < c ? lD[r] * kc[r * ldk + i] : 0.0f;
#endif
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int rr = 0; rr < KR && r0 + rr < c; rr++) {
                const float u = lU[(r0 + rr) * BV + jj];
                for (int m = 0; m < NR; m++) {
                    const int i = rg + RG * m;
                    if (i < K) s[m] = mad(lX[rr * K + i], u, s[m]);
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }
    for (int m = 0; m < NR; m++) {
        const int i = rg + RG * m;
        if (i < K && jok) S[(long)i * V + j] = s[m];
    }
}

#ifndef WALK
#define WALK 0
#endif
#if WALK
#if K % 32 || BV > 32 || K * BV > 4096
#error "delta_walk: K a multiple of 32, BV <= 32, K * BV <= 4096"
#endif
/* delta_walk: delta_state's walk for K a multiple of 32, BV <= 32 and
 * K * BV <= 4096 (the host: BV 16 and K * BV <= 2048, or BV 32 where the
 * device's local memory holds it), with the state split over the whole work-group:
 * work-item (srg, scg) holds rows srg * SR .. + SR of columns scg * SC ..
 * + SC in registers, a copy of the state sits in local memory (lS) for
 * U' = U - W S, whose tile per work-item is UR rows x UC columns (BV = 16:
 * 4 x 4 of a quarter of the depth, WTILE below); U' goes through local
 * memory (lU) to the update.  Each chunk is a sequence of phases over slabs
 * staged in lX: W, WCOLS columns at a time (gdn), then (WTILE) the phase
 * that sums the quarters of U', then k, KROWS rows at a time; the next slab's
 * loads (float4s into registers) are issued before the current slab's
 * products, across chunks too, and the chunk table's rows a chunk before
 * their use, so that memory latency hides behind arithmetic. */
#define SC (BV / 8)
#define SR (K / 32)
#define UC 1
#define UG BV
#define UR (UG / 4)
#ifndef WCOLS
#define WCOLS 64         /* columns of W per slab (the host: 128 where K % 128 == 0) */
#endif
#define XN (64 * WCOLS)  /* floats of the staging slab: the chunk's 64 rows of W's columns */
#define XM (XN / 4 / WG) /* float4s a work-item stages */
#define KROWS (XN / K)   /* rows of k per slab */
/* WTILE (BV = 16): U' = U - W S in 4 x 4 tiles, rows r + 16 a and columns
 * 4 c .. 4 c + 3 of work-item (r, c) of each of four depth quarters (a
 * slab's columns of W split four ways), so that a depth step is 8 float4
 * reads of local memory for 64 FMAs (one work-item's 4 rows x 1 column
 * read 8 for 16); W slabs are staged with rows of WLD = WCOLS + 4 floats
 * (conflict-free float4 reads of 8 rows), and a reduction phase between the
 * W and the k phases sums the quarters through lX into lU. */
#ifndef WTILE
#define WTILE (BV == 16 && WCOLS % 16 == 0)
#endif
#if WTILE
#define WLD (WCOLS + 4)
#else
#define WLD WCOLS
#endif
#define LXN (64 * WLD > XN ? 64 * WLD : XN) /* floats of lX */
/* Unrolling of the two inner loops (-DWALK_WU=n, -DWALK_KU=n override it):
 * fully unrolled, they let NVIDIA's compiler hoist every local load of a
 * slab into registers (221 of them a work-item, one group per SM); with
 * 2 and 32 it takes 128 (measured on an H200: B=8 T=4096 H=16 K=V=128
 * walks in 2.55 ms a window against 3.0-3.35 ms). */
#ifndef WALK_WU
#define WALK_WU 2
#endif
#ifndef WALK_KU
#define WALK_KU 32
#endif

/* Slab p of chunk (Wc, kc, c): p < nwp W's columns p * WCOLS .., else k's
 * rows (p - nwp) * KROWS ..; zeros past the chunk. */
static void fetch(float4 *t, __global const float *Wc, __global const float *kc, long ldk, int c,
                  int p, int nwp, int lid)
{
    if (p < nwp) {
        for (int m = 0; m < XM; m++) {
            const int e = 4 * (lid + m * WG), r = e / WCOLS, i = p * WCOLS + e % WCOLS;
            t[m] = r < c && i < K ? GVL(Wc + r * K + i) : (float4)(0.0f);
        }
    } else {
        for (int m = 0; m < XM; m++) {
            const int e = 4 * (lid + m * WG), r = (p - nwp) * KROWS + e / K, i = e % K;
            t[m] = r < c ? GVL(kc + r * ldk + i) : (float4)(0.0f);
        }
    }
}

/* The next chunk's rows of U (ur0 + urs * a < c, column ju) and, per head
 * g, its G[lid] (lid < 64) and G[c - 1]: loaded a chunk ahead, so that no
 * chunk starts by waiting for global memory. */
static void walk_next(float *un, float *gn, float *gl, __global const float *Uio,
                      __global const float *Gin, long wh, long tok, int c, int H, int h, int gdn,
                      int ur0, int urs, int ju, int lid)
{
    __global const float *U = gdn ? Uio + wh * CH * V : Uio + (tok * H + h) * V;
#pragma unroll
    for (int a = 0; a < UR; a++) {
        const int r = ur0 + urs * a;
        un[a] = r < c && ju < V ? U[r * (gdn ? V : (long)H * V) + ju] : 0.0f;
    }
#if !GK
    __global const float *G = Gin + wh * GS;
    *gn = lid < c ? G[lid] : 0.0f;
    *gl = c > 0 ? G[c - 1] : 0.0f;
#endif
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void delta_walk(__global const long *stab, __global const long *ctab,
                __global const float *k, __global const float *Gin,
                __global const float *Win, __global float *Uio, __global float *St,
                __global float *Sbuf, int H, int Hk, int map, int gdn)
{
    __local float lS[K * BV];
    __local float lU[64 * BV];
    __local float lX[LXN] __attribute__((aligned(16)));
    __local float lD[64];
    const int lid = get_local_id(0);
    const int scg = lid % 8, srg = lid / 8;
    const int j0 = get_group_id(0) * BV, h = get_group_id(1), n = get_group_id(2);
    const long w0 = stab[2 * n], nw = stab[2 * n + 1];
    const long ldk = (long)Hk * K, kh = key_head(h, H, Hk, map);
    const int i0 = srg * SR, nwp = gdn ? (K + WCOLS - 1) / WCOLS : 0;
#if WTILE
    /* depth quarter, row group and column group of the W products; U rows
     * wrg + 16 a at column 4 wcg + wdg (each quarter adds its column of U) */
    const int wdg = lid / 64, wrg = lid % 64 / 4, wcg = lid % 4;
    const int ur0 = wrg, urs = 16, uc = 4 * wcg + wdg;
    const int nr = nwp > 0; /* the reduction phase */
    float4 acc[UR];
#else
    const int ucg = lid % UG, urg = lid / UG;
    const int ur0 = urg * UR, urs = 1, uc = ucg * UC;
    int nr = 0; /* (not const: clang warns of the constant in nr && ..) */
#endif
    const int ju = j0 + uc, kp0 = nwp + nr; /* the first k phase */
    float s[SR][SC];
    float4 t[XM];
    __global float *S = St + ((long)n * H + h) * K * V;
    /* (global state rows move through lS in whole rows: coalesced, and
     * PoCL mishandled the per-item guarded stores) */
    for (int e = lid; e < K * BV; e += WG) {
        const int jj = e % BV;
        lS[e] = j0 + jj < V ? S[(long)(e / BV) * V + j0 + jj] : 0.0f;
    }
    /* the chunk table's rows a chunk ahead of their use: this chunk's and
     * the next one's in registers, the one after loaded during this one */
    long tok1 = nw > 0 ? ctab[3 * w0] : 0, tok2 = nw > 1 ? ctab[3 * (w0 + 1)] : 0;
    int c1 = nw > 0 ? (int)ctab[3 * w0 + 1] : 0, c2 = nw > 1 ? (int)ctab[3 * (w0 + 1) + 1] : 0;
    float un[UR], gn = 0.0f, gln = 0.0f;
    if (nw > 0) {
        fetch(t, Win + w0 * H * CH * K + (long)h * CH * K, k + (tok1 * Hk + kh) * K, ldk, c1, 0,
              nwp, lid);
        walk_next(un, &gn, &gln, Uio, Gin, w0 * H + h, tok1, c1, H, h, gdn, ur0, urs, ju, lid);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int a = 0; a < SR; a++)
#pragma unroll
        for (int b = 0; b < SC; b++) s[a][b] = lS[(i0 + a) * BV + scg * SC + b];
    for (long w = w0; w < w0 + nw; w++) {
        const long tok0 = tok1;
        const int c = c1, np = kp0 + (c + KROWS - 1) / KROWS;
        tok1 = tok2;
        c1 = c2;
        if (w + 2 < w0 + nw) {
            tok2 = ctab[3 * (w + 2)];
            c2 = (int)ctab[3 * (w + 2) + 1];
        }
        const long wh = w * H + h;
        __global const float *kc = k + (tok0 * Hk + kh) * K;
        __global const float *G = Gin + wh * GS;
        __global float *U = gdn ? Uio + wh * CH * V : Uio + (tok0 * H + h) * V;
        __global float *Sout = Sbuf + wh * K * V;
        __global const float *Wc = Win + wh * CH * K;
        /* the next chunk (tok1, c1), for the prefetch of its first slab */
        const int more = w + 1 < w0 + nw;
        barrier(CLK_LOCAL_MEM_FENCE); /* lS is this chunk's entering state; lU, lD free */
        for (int e = lid; e < K * BV; e += WG) { /* the state entering the chunk */
            const int jj = e % BV;
            if (j0 + jj < V) Sout[(long)(e / BV) * V + j0 + jj] = lS[e];
        }
        const float gl = gln; /* G[c - 1] */
#if !GK
        if (lid < 64) lD[lid] = lid < c ? exp(gl - gn) : 0.0f;
#endif
        float u[UR];
#pragma unroll
        for (int a = 0; a < UR; a++) u[a] = un[a];
#if WTILE
#pragma unroll
        for (int a = 0; a < UR; a++)
            acc[a] = (float4)(wdg == 0 ? u[a] : 0.0f, wdg == 1 ? u[a] : 0.0f, wdg == 2 ? u[a] : 0.0f,
                              wdg == 3 ? u[a] : 0.0f);
#endif
        if (more) walk_next(un, &gn, &gln, Uio, Gin, wh + H, tok1, c1, H, h, gdn, ur0, urs, ju, lid);
        for (int p = 0; p < np; p++) {
            const int isr = nr && p == nwp; /* WTILE's reduction phase */
            if (p == kp0 && !nr) /* U' = U - W S is complete (gla: U' = V): publish it */
#pragma unroll
                for (int a = 0; a < UR; a++) lU[(ur0 + urs * a) * BV + uc] = u[a];
            barrier(CLK_LOCAL_MEM_FENCE);
#if WTILE
            if (isr && wdg > 0) /* quarters 1-3 of U' into lX (its last W slab is read) */
#pragma unroll
                for (int a = 0; a < UR; a++)
                    vstore4(acc[a], 0, lX + (wdg - 1) * 64 * BV + (wrg + 16 * a) * BV + 4 * wcg);
#endif
#pragma unroll
            for (int m = 0; m < XM && !isr; m++) {
                if (p >= kp0) { /* rows of k scaled by e^{G_c - G_r} */
                    const int e = 4 * (lid + m * WG), r = (p - kp0) * KROWS + e / K;
#if GK
                    const int i = e % K;
                    if (r < c)
                        t[m] *= exp(vload4(0, G + (c - 1) * K + i) - vload4(0, G + r * K + i));
#else
                    t[m] *= r < c ? lD[r] : 0.0f;
#endif
                    vstore4(t[m], lid + m * WG, lX);
                } else { /* W's rows WLD floats apart */
                    const int e = 4 * (lid + m * WG);
                    vstore4(t[m], 0, lX + e / WCOLS * WLD + e % WCOLS);
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            /* the next phase's slab (past the reduction phase, which stages none) */
            const int q = p + 1 + (nr && p + 1 == nwp);
            if (!isr && q < np)
                fetch(t, Wc, kc, ldk, c, q < nwp ? q : q - nr, nwp, lid);
            else if (!isr && more)
                fetch(t, Win + (wh + H) * CH * K, k + (tok1 * Hk + kh) * K, ldk, c1, 0, nwp, lid);
#if WTILE
            if (isr) { /* quarter 0 adds the others: U' to lU */
                if (wdg == 0)
#pragma unroll
                    for (int a = 0; a < UR; a++) {
                        const int o = (wrg + 16 * a) * BV + 4 * wcg;
                        vstore4(acc[a] + vload4(0, lX + o) + vload4(0, lX + 64 * BV + o) +
                                    vload4(0, lX + 2 * 64 * BV + o),
                                0, lU + o);
                    }
            } else if (p < nwp) { /* acc -= W[rows, quarter of the slab] S[.., cols] */
                for (int d = 0; d < WCOLS / 4; d += 4) {
                    const int dd = wdg * (WCOLS / 4) + d, ii = p * WCOLS + dd;
                    if (ii < K) {
                        const float4 s0 = vload4(0, lS + ii * BV + 4 * wcg);
                        const float4 s1 = vload4(0, lS + (ii + 1) * BV + 4 * wcg);
                        const float4 s2 = vload4(0, lS + (ii + 2) * BV + 4 * wcg);
                        const float4 s3 = vload4(0, lS + (ii + 3) * BV + 4 * wcg);
#pragma unroll
                        for (int a = 0; a < UR; a++) {
                            const float4 wv = vload4(0, lX + (wrg + 16 * a) * WLD + dd);
                            acc[a] -= wv.x * s0 + wv.y * s1 + wv.z * s2 + wv.w * s3;
                        }
                    }
                }
            }
#else /* (no reduction phase) */
            if (p < nwp) { /* u -= W[:, slab] S[slab, :] */
                UNROLL(WALK_WU)
                for (int i = 0; i < WCOLS && p * WCOLS + i < K; i += 4) {
                    const int ii = p * WCOLS + i;
                    const float s0 = lS[ii * BV + ucg], s1 = lS[(ii + 1) * BV + ucg];
                    const float s2 = lS[(ii + 2) * BV + ucg], s3 = lS[(ii + 3) * BV + ucg];
#pragma unroll
                    for (int a = 0; a < UR; a++) {
                        const float4 wv = vload4(0, lX + (urg * UR + a) * WCOLS + i);
                        u[a] -= wv.x * s0 + wv.y * s1 + wv.z * s2 + wv.w * s3;
                    }
                }
            }
#endif
            else { /* S += (scaled k rows)^T U' */
                if (p == kp0) { /* the state decays over the chunk first */
#pragma unroll
                    for (int a = 0; a < SR; a++) {
#if GK
                        const float d = exp(G[(c - 1) * K + i0 + a]);
#else
                        const float d = exp(gl);
#endif
#pragma unroll
                        for (int b = 0; b < SC; b++) s[a][b] *= d;
                    }
                }
                const int r0 = (p - kp0) * KROWS;
                UNROLL(WALK_KU)
                for (int rr = 0; rr < KROWS && r0 + rr < c; rr++) {
                    float uv[SC], kd[SR];
#pragma unroll
                    for (int b = 0; b < SC; b++) uv[b] = lU[(r0 + rr) * BV + scg * SC + b];
#if SR % 4 == 0
#pragma unroll
                    for (int a = 0; a < SR; a += 4) {
                        const float4 k4 = vload4(0, lX + rr * K + i0 + a);
                        kd[a] = k4.x;
                        kd[a + 1] = k4.y;
                        kd[a + 2] = k4.z;
                        kd[a + 3] = k4.w;
                    }
#else
#pragma unroll
                    for (int a = 0; a < SR; a++) kd[a] = lX[rr * K + i0 + a];
#endif
#pragma unroll
                    for (int a = 0; a < SR; a++)
#pragma unroll
                        for (int b = 0; b < SC; b++) s[a][b] = mad(kd[a], uv[b], s[a][b]);
                }
            }
        }
        if (gdn) /* U' for delta_out (lU is stable until the next chunk's first phase) */
            for (int e = lid; e < c * BV; e += WG) {
                const int jj = e % BV;
                if (j0 + jj < V) U[(e / BV) * V + j0 + jj] = lU[e];
            }
#pragma unroll
        for (int a = 0; a < SR; a++)
#pragma unroll
            for (int b = 0; b < SC; b++) lS[(i0 + a) * BV + scg * SC + b] = s[a][b];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < K * BV; e += WG) {
        const int jj = e % BV;
        if (j0 + jj < V) S[(long)(e / BV) * V + j0 + jj] = lS[e];
    }
}
#endif

/* gla without the walk: U' = V needs nothing of the state, so the chunk
 * states are a scaled prefix sum, S_w = e^{G_c} S_{w-1} + P_w with
 * P_w = (e^{G_c - G} o K)^T V over chunk w.  gla_sum: P_w into Sbuf, one
 * group per (chunk, head, GT x GT tile of the state); gla_scan: one
 * work-item per (state element, head, sequence) walks the window's chunks,
 * writes the state entering each over its P and carries St.
 * gla_sum's tile: GT = 128 (the host's -DGT where K or V is over 64) or 64;
 * work-item (ty, tx) of 16 x 16 sums rows 4 ty + 64 a + j and columns
 * 4 tx + 64 b + j (j < 4, a, b < GT / 64) of it, so that its operands per
 * token are whole float4s of local memory: at GT = 128, 8 x 8 sums for four
 * float4 reads (measured on an H200, B = 1, T = 16384, H = 16, K = V = 128:
 * 0.26 ms against 0.32 by 64 x 64 tiles of 4 x 4; B = 8, T = 4096: 0.51
 * against 0.62; 127 registers).  Both operands are rows of
 * tokens (k's, scaled, and v's), staged TK tokens at a time as they lie in
 * memory ([TK][GT] slabs), each work-item's next float4s loaded before the
 * current slab's products. */
#ifndef GT
#define GT 64
#endif
#define GTU (GT / 64)         /* float4s of a work-item per token and operand */
#define GTM (TK * GT / 4 / WG) /* float4s a work-item stages per operand and slab */
#define GSR(lid, m) ((lid) / (GT / 4) + (m) * (WG / (GT / 4))) /* its tokens of a slab */
#define GSC(lid) (4 * ((lid) % (GT / 4)))                        /* its column of the tile */
/* A work-item's float4s of slab s0: rows of k (x), v (y) and G (g: GK) */
static void gla_sum_fetch(float4 *x, float4 *y, float4 *g, __global const float *kc, long ldk,
                          __global const float *vc, long ldv, __global const float *G, int c,
                          int s0, int i0, int col0, int lid)
{
    const int i = i0 + GSC(lid), col = col0 + GSC(lid);
#pragma unroll
    for (int m = 0; m < GTM; m++) {
        const int r = s0 + GSR(lid, m);
        x[m] = r < c ? ld4(kc + r * ldk + i, K - i) : (float4)(0.0f);
        y[m] = r < c ? ld4(vc + r * ldv + col, V - col) : (float4)(0.0f);
#if GK
        g[m] = r < c ? ld4(G + r * K + i, K - i) : (float4)(0.0f);
#endif
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gla_sum(__global const long *ctab, __global const float *k, __global const float *v,
             __global const float *Gin, __global float *Sbuf, int H, int Hk, int map)
{
    __local float lx[TK * GT] __attribute__((aligned(16)));
    __local float ly[TK * GT] __attribute__((aligned(16)));
#if !GK
    __local float lD[64];
#endif
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int w = get_group_id(0), h = get_group_id(1), nvt = (V + GT - 1) / GT;
    const int i0 = get_group_id(2) / nvt * GT, col0 = get_group_id(2) % nvt * GT;
    const long tok0 = ctab[3 * w];
    const int c = (int)ctab[3 * w + 1];
    const long wh = (long)w * H + h, ldk = (long)Hk * K, ldv = (long)H * V;
    __global const float *kc = k + (tok0 * Hk + key_head(h, H, Hk, map)) * K;
    __global const float *vc = v + (tok0 * H + h) * V, *G = Gin + wh * GS;
    const int sc = GSC(lid), ns = (c + TK - 1) / TK;
    float4 acc[4 * GTU][GTU];
    float4 fx[GTM], fy[GTM], fg[GTM]; /* (fg: GK only) */
#if GK
    const float4 gc = ld4(G + (c - 1) * K + i0 + sc, K - i0 - sc); /* G at the chunk's end */
#else
    if (lid < 64) lD[lid] = lid < c ? exp(G[c - 1] - G[lid]) : 0.0f;
#endif
#pragma unroll
    for (int a = 0; a < 4 * GTU; a++)
#pragma unroll
        for (int b = 0; b < GTU; b++) acc[a][b] = (float4)(0.0f);
    gla_sum_fetch(fx, fy, fg, kc, ldk, vc, ldv, G, c, 0, i0, col0, lid);
    for (int p = 0; p < ns; p++) {
        barrier(CLK_LOCAL_MEM_FENCE); /* lD written; lx, ly free */
#pragma unroll
        for (int m = 0; m < GTM; m++) {
            const int kk = GSR(lid, m);
#if GK
            vstore4(fx[m] * exp(gc - fg[m]), 0, lx + kk * GT + sc);
#else
            vstore4(fx[m] * lD[p * TK + kk], 0, lx + kk * GT + sc);
#endif
            vstore4(fy[m], 0, ly + kk * GT + sc);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (p + 1 < ns)
            gla_sum_fetch(fx, fy, fg, kc, ldk, vc, ldv, G, c, (p + 1) * TK, i0, col0, lid);
        for (int kk = 0; kk < TK; kk++) {
            float xa[4 * GTU];
            float4 yb[GTU];
#pragma unroll
            for (int a = 0; a < GTU; a++) {
                const float4 x4 = vload4(0, lx + kk * GT + 4 * ty + 64 * a);
                xa[4 * a] = x4.x;
                xa[4 * a + 1] = x4.y;
                xa[4 * a + 2] = x4.z;
                xa[4 * a + 3] = x4.w;
                yb[a] = vload4(0, ly + kk * GT + 4 * tx + 64 * a);
            }
#pragma unroll
            for (int a = 0; a < 4 * GTU; a++)
#pragma unroll
                for (int b = 0; b < GTU; b++) acc[a][b] = mad((float4)(xa[a]), yb[b], acc[a][b]);
        }
    }
    __global float *P = Sbuf + wh * K * V;
#pragma unroll
    for (int a = 0; a < 4 * GTU; a++) {
        const int i = i0 + 4 * ty + 64 * (a / 4) + a % 4;
#pragma unroll
        for (int b = 0; b < GTU; b++) {
            const int col = col0 + 4 * tx + 64 * b;
#if GALIGN
            if (i < K && col < V) /* (V % 4 == 0: all four columns in) */
                GVEC(float4, P + (long)i * V + col) = acc[a][b];
#else
            const float t[4] = {acc[a][b].x, acc[a][b].y, acc[a][b].z, acc[a][b].w};
            for (int j = 0; j < 4; j++)
                if (i < K && col + j < V) P[(long)i * V + col + j] = t[j];
#endif
        }
    }
}

#if !GK
/* gla_walk's pieces: gla_sum's staging, products and stores (a gate per
 * head).  gla_sum keeps its own copy of them: through these it took 161
 * registers on an NVIDIA H200 against 127 (one group a compute unit, not
 * two: the scan's call at B = 8, T = 4096 1.82-1.88 -> 1.97-2.01 ms).
 * A slab's staging: the work-item's float4s of k, scaled to the chunk's
 * end (lD[token]), into lx, of v into ly */
static void gla_walk_stage(__local float *lx, __local float *ly, const float4 *fx,
                           const float4 *fy, __local const float *lD, int s0, int lid)
{
    const int sc = GSC(lid);
#pragma unroll
    for (int m = 0; m < GTM; m++) {
        const int kk = GSR(lid, m);
        vstore4(fx[m] * lD[s0 + kk], 0, lx + kk * GT + sc);
        vstore4(fy[m], 0, ly + kk * GT + sc);
    }
}

/* acc += lx^T ly over a staged slab of TK tokens */
static void gla_walk_mac(__local const float *lx, __local const float *ly,
                         float4 acc[4 * GTU][GTU], int ty, int tx)
{
    for (int kk = 0; kk < TK; kk++) {
        float xa[4 * GTU];
        float4 yb[GTU];
#pragma unroll
        for (int a = 0; a < GTU; a++) {
            const float4 x4 = vload4(0, lx + kk * GT + 4 * ty + 64 * a);
            xa[4 * a] = x4.x;
            xa[4 * a + 1] = x4.y;
            xa[4 * a + 2] = x4.z;
            xa[4 * a + 3] = x4.w;
            yb[a] = vload4(0, ly + kk * GT + 4 * tx + 64 * a);
        }
#pragma unroll
        for (int a = 0; a < 4 * GTU; a++)
#pragma unroll
            for (int b = 0; b < GTU; b++) acc[a][b] = mad((float4)(xa[a]), yb[b], acc[a][b]);
    }
}

/* The work-item's sums of a tile at rows i0, columns col0 of the K x V state
 * P: acc = P (load; zeros past the state), else P = acc */
static void gla_walk_io(__global float *P, float4 acc[4 * GTU][GTU], int i0, int col0, int load,
                        int ty, int tx)
{
#pragma unroll
    for (int a = 0; a < 4 * GTU; a++) {
        const int i = i0 + 4 * ty + 64 * (a / 4) + a % 4;
#pragma unroll
        for (int b = 0; b < GTU; b++) {
            const int col = col0 + 4 * tx + 64 * b;
#if GALIGN
            const int in = i < K && col < V; /* (V % 4 == 0: all four columns in) */
            __global float4 *x = (__global float4 *)(P + (long)i * V + col);
            if (load) acc[a][b] = in ? *x : (float4)(0.0f);
            else if (in) *x = acc[a][b];
#else
            float t[4] = {acc[a][b].x, acc[a][b].y, acc[a][b].z, acc[a][b].w};
            for (int j = 0; j < 4; j++) {
                const int in = i < K && col + j < V;
                if (load) t[j] = in ? P[(long)i * V + col + j] : 0.0f;
                else if (in) P[(long)i * V + col + j] = t[j];
            }
            if (load) acc[a][b] = (float4)(t[0], t[1], t[2], t[3]);
#endif
        }
    }
}

/* The work-item's float4s of the first slab of chunk w (sequence head h,
 * key head kh; gla_sum_fetch's g and G are GK's alone: none here) */
static void gla_walk_first(float4 *fx, float4 *fy, __global const long *ctab, long w,
                           __global const float *k, __global const float *v, int H, int Hk,
                           long kh, int h, int i0, int col0, int lid)
{
    const long tok0 = ctab[3 * w];
    gla_sum_fetch(fx, fy, (float4 *)0, k + (tok0 * Hk + kh) * K, (long)Hk * K,
                  v + (tok0 * H + h) * V, (long)H * V, (__global const float *)0,
                  (int)ctab[3 * w + 1], 0, i0, col0, lid);
}

/* gla_walk: gla_sum and gla_scan in one, for a gate per head: a group
 * carries a GT x GT tile of one sequence's state (one head) in its
 * registers through the window's chunks, storing the tile entering each
 * chunk, then S = e^{G_c} S + P_w, P_w formed as gla_sum forms it; the
 * final tile to St (which held the initial one).  No P goes through memory
 * (gla_sum writes it, gla_scan reads it and writes the states over it),
 * but there is a group only a (sequence, head, tile): the host's choice
 * where those fill the device (NVIDIA H200, B = 8, T = 4096, H = 16,
 * K = V = 128, 64 x 64 tiles: 0.59-0.62 ms against gla_sum's 0.50 and
 * gla_scan's 0.28).  Each chunk's first slab is fetched during the chunk
 * before's last products. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gla_walk(__global const long *stab, __global const long *ctab, __global const float *k,
              __global const float *v, __global const float *Gin, __global float *Sbuf,
              __global float *St, int H, int Hk, int map)
{
    __local float lx[TK * GT] __attribute__((aligned(16)));
    __local float ly[TK * GT] __attribute__((aligned(16)));
    __local float lD[64];
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int h = get_group_id(1), nvt = (V + GT - 1) / GT;
    const int nt = (K + GT - 1) / GT * nvt, n = get_group_id(2) / nt, t = get_group_id(2) % nt;
    const int i0 = t / nvt * GT, col0 = t % nvt * GT;
    const long w0 = stab[2 * n], nw = stab[2 * n + 1], ldk = (long)Hk * K, ldv = (long)H * V;
    const long kh = key_head(h, H, Hk, map);
    __global float *Sn = St + ((long)n * H + h) * K * V;
    float4 acc[4 * GTU][GTU];
    float4 fx[GTM], fy[GTM];
    gla_walk_io(Sn, acc, i0, col0, 1, ty, tx);
    if (nw > 0) gla_walk_first(fx, fy, ctab, w0, k, v, H, Hk, kh, h, i0, col0, lid);
    for (long w = w0; w < w0 + nw; w++) {
        const long wh = w * H + h, tok0 = ctab[3 * w];
        const int c = (int)ctab[3 * w + 1], ns = (c + TK - 1) / TK;
        __global const float *kc = k + (tok0 * Hk + kh) * K, *vc = v + (tok0 * H + h) * V;
        __global const float *G = Gin + wh * GS;
        const float gend = G[c - 1];
        gla_walk_io(Sbuf + wh * K * V, acc, i0, col0, 0, ty, tx); /* entering chunk w */
        const float e = exp(gend);
#pragma unroll
        for (int a = 0; a < 4 * GTU; a++)
#pragma unroll
            for (int b = 0; b < GTU; b++) acc[a][b] *= e;
        /* lD: the last products of chunk w - 1 are past the barrier after
         * which nothing reads it */
        if (lid < 64) lD[lid] = lid < c ? exp(gend - G[lid]) : 0.0f;
        for (int p = 0; p < ns; p++) {
            barrier(CLK_LOCAL_MEM_FENCE); /* lD written; lx, ly free */
            gla_walk_stage(lx, ly, fx, fy, lD, p * TK, lid);
            barrier(CLK_LOCAL_MEM_FENCE);
            if (p + 1 < ns) /* (gla_sum_fetch's g: GK's alone) */
                gla_sum_fetch(fx, fy, (float4 *)0, kc, ldk, vc, ldv, G, c, (p + 1) * TK, i0,
                              col0, lid);
            else if (w + 1 < w0 + nw) /* the next chunk's first slab */
                gla_walk_first(fx, fy, ctab, w + 1, k, v, H, Hk, kh, h, i0, col0, lid);
            gla_walk_mac(lx, ly, acc, ty, tx);
        }
    }
    gla_walk_io(Sn, acc, i0, col0, 0, ty, tx);
}
#endif

/* gla_scan's work-item takes GSV adjacent state elements (the host's
 * -DGSV: 4 where V % 4 == 0, one 16-byte load a chunk; else 1) */
#ifndef GSV
#define GSV 1
#endif
#if GSV == 4
#define gfloat float4
#define GLD(p) GVEC(float4, p) /* (16-byte aligned: whole float4s) */
#define GST(x, p) (GVEC(float4, p) = (x))
#elif GSV == 1
#define gfloat float
#define GLD(p) (*(p))
#define GST(x, p) (*(p) = (x))
#else
#error "GSV is 1 or 4"
#endif
/* GSD: chunks whose loads gla_scan has in flight (-DGSD=n: tuning).  8
 * measured best on an H200 (B = 1, T = 16384, H = 16, K = V = 128: the scan
 * 0.148 ms against 0.20 with 16, whose 196 registers left one group per
 * compute unit; 4: 0.15) */
#ifndef GSD
#define GSD 8
#endif
__kernel void gla_scan(__global const long *stab, __global const long *ctab,
                       __global const float *Gin, __global float *Sbuf, __global float *St,
                       int H)
{
    const long e = get_global_id(0) * GSV;
    const int h = get_global_id(1), n = get_global_id(2);
    if (e >= (long)K * V) return;
    const long w0 = stab[2 * n], nw = stab[2 * n + 1];
    __global float *S = St + ((long)n * H + h) * K * V + e;
    gfloat x = GLD(S);
    /* GSD chunks at a time: their loads all issued before the first update
     * (one chunk at a time, each waited for its load: latency-bound) */
    for (long w1 = w0; w1 < w0 + nw; w1 += GSD) {
        gfloat add[GSD];
        float dec[GSD];
#pragma unroll
        for (int j = 0; j < GSD; j++) {
            const long w = w1 + j, wh = w * H + h;
            const int in = w < w0 + nw, c = in ? (int)ctab[3 * w + 1] : 1;
            add[j] = in ? GLD(Sbuf + wh * K * V + e) : (gfloat)(0.0f);
#if GK
            dec[j] = in ? Gin[wh * GS + (c - 1) * K + e / V] : 0.0f;
#else
            dec[j] = in ? Gin[wh * GS + c - 1] : 0.0f;
#endif
        }
#pragma unroll
        for (int j = 0; j < GSD; j++) {
            const long w = w1 + j;
            if (w >= w0 + nw) break;
            GST(x, Sbuf + (w * H + h) * K * V + e);
            x = mad((gfloat)(exp(dec[j])), x, add[j]);
        }
    }
    GST(x, S);
}

#if !GK
/* gla_gates: the gates' running sums G of each (chunk, head), as delta_prep
 * forms them (rows past the chunk's c tokens: G[c - 1]), for gla with a gate
 * per head on gla_out's path, where delta_prep would form nothing else: one
 * work-item a (chunk, head), n = chunks x H of them (a group of delta_prep's
 * 256 work-items for 64 sums: 0.046 ms at B=8 T=4096 H=16 on the H200) */
__kernel void gla_gates(__global const long *ctab, __global const float *g, int H, int has_g,
                        long n, __global float *Gout)
{
    const long wh = get_global_id(0);
    if (wh >= n) return;
    const long w = wh / H, tok0 = ctab[3 * w];
    const int h = (int)(wh % H), c = (int)ctab[3 * w + 1];
    float s = 0.0f;
#pragma unroll
    for (int r = 0; r < CH; r++) {
        if (r < c && has_g) s += g[(tok0 + r) * H + h];
        Gout[wh * CH + r] = s;
    }
}
#endif

#define OCOLS (V > 64 ? 128 : 64) /* value columns of a delta_out / gla_out group */

/* acc[u] += X Y_u for the group's OCOLS / 64 value tiles, Y_u at ly + u TK
 * LDS (rows from a0, as tile_mac's) */
static void out_mac(__local const float *lxt, __local const float *ly,
                    float acc[OCOLS / 64][4][4], int a0, int ty, int tx)
{
#if OCOLS == 128
    tile_mac_x(lxt, ly, ly + TK * LDS, acc[0], acc[1], a0, ty, tx);
#else
    tile_mac(lxt, ly, acc[0], a0, ty, tx);
#endif
}

/* o's rows tok0 + r (r < c) of output head oh (of Ho), columns col0 .. +
 * OCOLS - 1 (< V): scale acc */
static void out_store(__global float *o, float acc[OCOLS / 64][4][4], long tok0, int c,
                      long Ho, int oh, int col0, float scale, int ty, int tx)
{
#pragma unroll
    for (int u = 0; u < OCOLS / 64; u++)
#pragma unroll
        for (int a = 0; a < 4; a++)
#pragma unroll
            for (int b = 0; b < 4; b++) {
                const int r = ty + 16 * a, col = col0 + 64 * u + tx + 16 * b;
                if (r < c && col < V) o[((tok0 + r) * Ho + oh) * V + col] = scale * acc[u][a][b];
            }
}

/* O = scale ((e^G o Q) S_in + M U') for OCOLS value columns of one chunk
 * and output head oh (a query head reading state h): with OCOLS = 128, two
 * 64-column tiles whose Y slabs (S, then U') sit in ly and ly + TK LDS
 * share each X slab (e^G o Q, then M). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void delta_out(__global const long *ctab, __global const float *q,
               __global const float *Gin, __global const float *Min,
               __global const float *Uin, __global const float *Sbuf,
               __global float *o, int H, int Hk, int Hq, int nq, int share, int map,
               float scale, int gdn)
{
    __local float lx[TK * LDS] __attribute__((aligned(16)));
    __local float ly[OCOLS / 64 * TK * LDS] __attribute__((aligned(16)));
    __local float leG[64];
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int col0 = get_group_id(0) * OCOLS, oh = get_group_id(1), w = get_group_id(2);
    const int h = share ? oh / nq : oh;
    const long tok0 = ctab[3 * w];
    const int c = (int)ctab[3 * w + 1];
    const long wh = (long)w * H + h, ldq = (long)Hq * K, Ho = share ? Hq : H;
    __global const float *qc = q + (tok0 * Hq + (share ? oh : key_head(oh, H, Hk, map))) * K;
    __global const float *S = Sbuf + wh * K * V, *M = Min + ((long)w * Ho + oh) * CH * CH;
    /* U' (gla: V in place) */
    __global const float *U = gdn ? Uin + wh * CH * V : Uin + (tok0 * H + h) * V;
    __global const float *G = Gin + wh * GS;
    const long ldu = gdn ? V : (long)H * V;
    float acc[OCOLS / 64][4][4];
#if !GK
    if (lid < 64) leG[lid] = lid < c ? exp(G[lid]) : 0.0f;
#endif
    for (int u = 0; u < OCOLS / 64; u++) tile_zero(acc[u]);
    /* phase p < nk: slab i0 = p TK of (e^G o Q) and S; after: slab s0 of M
     * and U'; the next phase's float4s prefetched before the products */
    const int nk = (K + TK - 1) / TK, nph = nk + (c + TK - 1) / TK;
    float4 fx = fetch_x(qc, ldq, c, 0, K, lid), fy[OCOLS / 64];
    for (int u = 0; u < OCOLS / 64; u++) fy[u] = fetch_y(S, V, K, 0, col0 + 64 * u, V, lid);
#if GK
    float4 fg = fetch_x(G, K, c, 0, K, lid);
#endif
    for (int p = 0; p < nph; p++) {
        barrier(CLK_LOCAL_MEM_FENCE); /* leG written; lx, ly free */
#if GK
        store_rows(p < nk ? exp(fg) * fx : fx, lx, lid);
#else
        store_rows(p < nk ? leG[XROW(lid)] * fx : fx, lx, lid);
#endif
        for (int u = 0; u < OCOLS / 64; u++) store_cols(fy[u], ly + u * TK * LDS, lid);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (p + 1 < nk) {
            fx = fetch_x(qc, ldq, c, (p + 1) * TK, K, lid);
            for (int u = 0; u < OCOLS / 64; u++)
                fy[u] = fetch_y(S, V, K, (p + 1) * TK, col0 + 64 * u, V, lid);
#if GK
            fg = fetch_x(G, K, c, (p + 1) * TK, K, lid);
#endif
        } else if (p + 1 < nph) {
            const int s0 = (p + 1 - nk) * TK;
            fx = fetch_x(M, CH, c, s0, c, lid);
            for (int u = 0; u < OCOLS / 64; u++)
                fy[u] = fetch_y(U, ldu, c, s0, col0 + 64 * u, V, lid);
        }
        out_mac(lx, ly, acc, 0, ty, tx);
    }
    out_store(o, acc, tok0, c, Ho, oh, col0, scale, ty, tx);
}

#if !GK
/* gla with a gate per head: O = scale (diag(e^G) Q S_in + M V), with
 * M = (Q K^T) o D formed here (D_rs = e^{G_r - G_s} for s <= r < c, else
 * 0), so that delta_prep forms only G for it.  A group: OCOLS value columns
 * of one chunk and output head, as delta_out's.  Phases over K: slabs of
 * Q^T, K^T and S; acc += Q S and am += Q K^T from one float4 of Q a depth.
 * Then the rows of acc take their e^{G_r}, M^T goes to local memory
 * (lb[s LDS + pos(r)], the X^T slabs of the later phases) and phases over
 * the chunk's tokens add M V.  The slabs are double-buffered: a phase
 * stores the next phase's (prefetched before its products) in the other
 * half after its products, one barrier a phase.  M is lower triangular
 * (s <= r), and a work-item's rows r = ty + 16 a, columns s = tx + 16 b:
 * am's blocks b > a are never formed, and the phase over tokens s = 16 p ..
 * 16 p + 15 skips the rows of a < p (out_mac_from): 19% fewer products (NVIDIA H200, B = 8, T = 4096,
 * H = 16, K = V = 128: gla_out 1.03 -> 0.96 ms). */
#define GOB ((2 + OCOLS / 64) * TK * LDS) /* floats of a phase's slabs: Q^T, K^T, S */

/* out_mac from the rows of a0 = min(p, 3) on: each a0 a constant where its
 * products are compiled (a loop from a variable a0 would index acc at run
 * time), chosen here, not by unrolling the caller's loop over the phases,
 * whose barriers PoCL would not unroll */
static void out_mac_from(__local const float *lxt, __local const float *ly,
                         float acc[OCOLS / 64][4][4], int p, int ty, int tx)
{
    if (p == 0) out_mac(lxt, ly, acc, 0, ty, tx);
    else if (p == 1) out_mac(lxt, ly, acc, 1, ty, tx);
    else if (p == 2) out_mac(lxt, ly, acc, 2, ty, tx);
    else out_mac(lxt, ly, acc, 3, ty, tx);
}

/* acc[u] += X Y_u (Y_u at ly + u TK LDS) and am += X Z, one X^T slab (am's
 * blocks b <= a alone) */
static void tile_mac_xm(__local const float *lxt, __local const float *lz,
                        __local const float *ly, float acc[OCOLS / 64][4][4], float am[4][4],
                        int ty, int tx)
{
    UNROLL(TK) /* (NVIDIA: 128 registers, two groups a compute unit; 131 without) */
    for (int kk = 0; kk < TK; kk++) {
        const float4 x4 = vload4(0, lxt + kk * LDS + 4 * ty);
        const float4 z4 = vload4(0, lz + kk * LDS + 4 * tx);
        const float xa[4] = {x4.x, x4.y, x4.z, x4.w}, zb[4] = {z4.x, z4.y, z4.z, z4.w};
#pragma unroll
        for (int u = 0; u < OCOLS / 64; u++) {
            const float4 y4 = vload4(0, ly + u * TK * LDS + kk * LDS + 4 * tx);
            const float yb[4] = {y4.x, y4.y, y4.z, y4.w};
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) acc[u][a][b] = mad(xa[a], yb[b], acc[u][a][b]);
        }
        for (int a = 0; a < 4; a++)
            for (int b = 0; b <= a; b++) am[a][b] = mad(xa[a], zb[b], am[a][b]);
    }
}

/* one phase's slabs of gla_out into buf: Q^T, K^T, then S's OCOLS / 64 */
static void gla_out_store(__local float *buf, float4 fx, float4 fz, const float4 fy[OCOLS / 64],
                          int lid)
{
    store_rows(fx, buf, lid);
    store_rows(fz, buf + TK * LDS, lid);
#pragma unroll
    for (int u = 0; u < OCOLS / 64; u++) store_cols(fy[u], buf + (2 + u) * TK * LDS, lid);
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gla_out(__global const long *ctab, __global const float *q, __global const float *k,
             __global const float *Gin, __global const float *v, __global const float *Sbuf,
             __global float *o, int H, int Hk, int Hq, int nq, int share, int map, float scale)
{
    __local float lb[2 * GOB] __attribute__((aligned(16)));
    __local float lG[64];
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int col0 = get_group_id(0) * OCOLS, oh = get_group_id(1), w = get_group_id(2);
    const int h = share ? oh / nq : oh;
    const long tok0 = ctab[3 * w];
    const int c = (int)ctab[3 * w + 1];
    const long wh = (long)w * H + h, Ho = share ? Hq : H;
    const long ldq = (long)Hq * K, ldk = (long)Hk * K, ldv = (long)H * V;
    __global const float *qc = q + (tok0 * Hq + (share ? oh : key_head(oh, H, Hk, map))) * K;
    __global const float *kc = k + (tok0 * Hk + key_head(h, H, Hk, map)) * K;
    __global const float *vc = v + (tok0 * H + h) * V, *S = Sbuf + wh * K * V;
    __local float *lu = lb + 64 * LDS; /* the M phases' V slabs, after M^T */
    if (lid < 64) lG[lid] = lid < c ? Gin[wh * CH + lid] : 0.0f;
    float acc[OCOLS / 64][4][4], am[4][4];
    for (int u = 0; u < OCOLS / 64; u++) tile_zero(acc[u]);
    tile_zero(am);
    const int nk = (K + TK - 1) / TK, ns = (c + TK - 1) / TK;
    float4 fx = fetch_x(qc, ldq, c, 0, K, lid), fz = fetch_x(kc, ldk, c, 0, K, lid);
    float4 fy[OCOLS / 64];
    for (int u = 0; u < OCOLS / 64; u++) fy[u] = fetch_y(S, V, K, 0, col0 + 64 * u, V, lid);
    gla_out_store(lb, fx, fz, fy, lid);
    for (int p = 0; p < nk; p++) {
        barrier(CLK_LOCAL_MEM_FENCE); /* phase p's slabs stored, phase p - 1's read */
        __local const float *b = lb + (p % 2) * GOB;
        if (p + 1 < nk) {
            const int i0 = (p + 1) * TK;
            fx = fetch_x(qc, ldq, c, i0, K, lid);
            fz = fetch_x(kc, ldk, c, i0, K, lid);
            for (int u = 0; u < OCOLS / 64; u++) fy[u] = fetch_y(S, V, K, i0, col0 + 64 * u, V, lid);
        } else { /* the first M phase's V slabs */
            for (int u = 0; u < OCOLS / 64; u++) fy[u] = fetch_y(vc, ldv, c, 0, col0 + 64 * u, V, lid);
        }
        tile_mac_xm(b, b + TK * LDS, b + 2 * TK * LDS, acc, am, ty, tx);
        if (p + 1 < nk) gla_out_store(lb + ((p + 1) % 2) * GOB, fx, fz, fy, lid);
    }
    barrier(CLK_LOCAL_MEM_FENCE); /* every slab read: lb free */
#pragma unroll
    for (int a = 0; a < 4; a++) {
        const int r = ty + 16 * a;
        const float Gr = lG[r], er = exp(Gr);
        for (int u = 0; u < OCOLS / 64; u++)
            for (int b = 0; b < 4; b++) acc[u][a][b] *= er;
        for (int b = 0; b < 4; b++) {
            const int s = tx + 16 * b;
            lb[s * LDS + POS(r)] = b <= a && r < c && s <= r ? am[a][b] * exp(Gr - lG[s]) : 0.0f;
        }
    }
    for (int u = 0; u < OCOLS / 64; u++) store_cols(fy[u], lu + u * TK * LDS, lid);
    for (int p = 0; p < ns; p++) {
        barrier(CLK_LOCAL_MEM_FENCE); /* M^T and phase p's V slabs stored, p - 1's read */
        __local const float *ub = lu + (p % 2) * (OCOLS / 64) * TK * LDS;
        if (p + 1 < ns)
            for (int u = 0; u < OCOLS / 64; u++)
                fy[u] = fetch_y(vc, ldv, c, (p + 1) * TK, col0 + 64 * u, V, lid);
        out_mac_from(lb + p * TK * LDS, ub, acc, p, ty, tx); /* (rows a < p: M's zeros) */
        if (p + 1 < ns)
            for (int u = 0; u < OCOLS / 64; u++)
                store_cols(fy[u], lu + ((p + 1) % 2) * (OCOLS / 64) * TK * LDS + u * TK * LDS, lid);
    }
    out_store(o, acc, tok0, c, Ho, oh, col0, scale, ty, tx);
}
#endif

/* kla: beta = eta / (|k|^2 + eps) per (token, value head) row, k from the
 * key head that value head reads: four work-items a row, each summing a
 * float4 of every 16 floats (adjacent work-items read adjacent float4s),
 * groups of 64 work-items (16 rows). */
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void kla_beta(__global const float *eta, __global const float *k, __global float *beta,
              long rows, float eps, int H, int Hk, int map)
{
    __local float part[64];
    const int lid = get_local_id(0), j = lid % 4;
    const long r = get_group_id(0) * 16 + lid / 4;
    float s = 0.0f;
    if (r < rows) {
        __global const float *kr = k + (r / H * Hk + key_head((int)(r % H), H, Hk, map)) * K;
        for (int i = 4 * j; i < K; i += 16) {
            const float4 x = ld4(kr + i, K - i);
            s = mad(x.x, x.x, mad(x.y, x.y, mad(x.z, x.z, mad(x.w, x.w, s))));
        }
    }
    part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (j == 0 && r < rows)
        beta[r] = eta[r] / (((part[lid] + part[lid + 1]) + (part[lid + 2] + part[lid + 3])) + eps);
}

/* opts.qk_l2norm: y = x / sqrt(|x|^2 + 1e-6) per row of K floats, one
 * work-item per (token, head) row (float sums, unlike the host's doubles). */
__kernel void qk_l2norm(__global const float *x, __global float *y, long rows)
{
    const long r = get_global_id(0);
    if (r >= rows) return;
    __global const float *xr = x + r * K;
    __global float *yr = y + r * K;
    float s = 0.0f;
    for (int i = 0; i < K; i++) s = mad(xr[i], xr[i], s);
    const float d = sqrt(s + 1e-6f);
    for (int i = 0; i < K; i++) yr[i] = xr[i] / d;
}

/* opts.beta_logits: y = 1 / (1 + exp(-x)) (exp's overflow gives 0). */
__kernel void beta_sigmoid(__global const float *x, __global float *y, long n)
{
    const long i = get_global_id(0);
    if (i < n) y[i] = 1.0f / (1.0f + exp(-x[i]));
}

/* The step's state elements: SDT 0 float, 1 f16 (vload_half / vstore_half_rte,
 * core OpenCL), 2 bf16 (the upper half of a float, rounded to nearest even;
 * NaN kept quiet), 3 bf16 rounded by NVIDIA's conversion instruction where
 * delta_stepw stores it (bf16_roundw; the same bits): widened once, updated
 * in float, rounded once. */
#ifndef SDT
#define SDT 0
#endif
#if SDT == 0
typedef float selt;
#define SLOAD(p, e) ((p)[e])
#define SSTORE(x, p, e) ((p)[e] = (x))
#elif SDT == 1
typedef half selt;
#define SLOAD(p, e) vload_half((e), (p))
#define SSTORE(x, p, e) f16_store((x), (p), (e))
/* x to binary16, rounded to nearest even by vstore_half_rte, a NaN as the
 * library rounds it (its upper payload, or a quiet one if that is empty;
 * vstore_half_rte may give any NaN) */
static ushort f16_nan(float x)
{
    const uint u = as_uint(x), m = (u >> 13) & 0x3ffu;
    return (ushort)(((u >> 16) & 0x8000u) | 0x7c00u | (m ? m : 0x200u));
}
static void f16_store(float x, __global half *p, long e)
{
    if (isnan(x)) ((__global ushort *)p)[e] = f16_nan(x);
    else vstore_half_rte(x, e, p);
}
#else
typedef ushort selt;
#define SLOAD(p, e) as_float((uint)(p)[e] << 16)
#define SSTORE(x, p, e) ((p)[e] = bf16_round(x))
static ushort bf16_round(float x)
{
    const uint u = as_uint(x), h = u >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? (ushort)((h & 0x7fu) ? h : (h | 0x40u))
                                           : (ushort)((u + 0x7fffu + (h & 1u)) >> 16);
}
#endif

/* One decode step: group (BV columns, unit = b*H + h).  mode 0 gdn (beta
 * given), 2 gla (no write correction).  State read and written once; query
 * heads after the first that share it (nq > 1) read the new state.
 * vcheck: vflag[0] is the value check's flag (values.cl, run just before):
 * when set, a value of g or beta is out of range and the step writes
 * nothing, neither o nor the state (the same for every work-item, so the
 * barriers stay unconditional; the stores are guarded, the math runs). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void delta_step(__global const float *q, __global const float *k,
                __global const float *v, __global const float *g,
                __global const float *beta, __global selt *state,
                __global float *o, float scale, int has_g, int gdn, int H, int Hk,
                int Hq, int nq, int share, int map,
                __global const int *vflag, int vcheck)
{
    __local float lq[K], lk[K];
#if GK
    __local float lg[K];
#endif
    __local float ra[RG * BV], rb[RG * BV], rkq[WG];
    const int lid = get_local_id(0), jj = lid % BV, rg = lid / BV;
    const long unit = get_group_id(1), bt = unit / H;
    const int wr = !(vcheck && vflag[0]); /* a value out of range: write nothing */
    const int j = get_group_id(0) * BV + jj, jok = j < V, h = (int)(unit % H);
    __global selt *S = state + unit * K * V;
    const long ku = bt * Hk + key_head(h, H, Hk, map);
    const long qu = share ? bt * Hq + (long)h * nq : ku, ou = share ? qu : unit;
    float p = 0.0f;
    for (int i = lid; i < K; i += WG) {
        lq[i] = q[qu * K + i];
        lk[i] = k[ku * K + i];
#if GK
        lg[i] = has_g ? exp(g[unit * K + i]) : 1.0f;
#endif
        p = mad(lq[i], lk[i], p);
    }
    rkq[lid] = p;
    float s[NR];
    float pa = 0.0f, pb = 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
        for (int m = 0; m < NR; m++) {
        const int i = rg + RG * m;
        s[m] = (i < K && jok) ? SLOAD(S, (long)i * V + j) : 0.0f;
        if (i < K) {
#if GK
            s[m] *= lg[i]; /* the decayed state */
#endif
            pa = mad(s[m], lk[i], pa);
            pb = mad(s[m], lq[i], pb);
        }
    }
    ra[rg * BV + jj] = pa;
    rb[rg * BV + jj] = pb;
    for (int hw = WG / 2; hw > 0; hw /= 2) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < hw) rkq[lid] += rkq[lid + hw];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float a = 0.0f, b = 0.0f;
    for (int x = 0; x < RG; x++) {
        a += ra[x * BV + jj];
        b += rb[x * BV + jj];
    }
#if GK
    const float gam = 1.0f;
#else
    const float gam = has_g ? exp(g[unit]) : 1.0f;
#endif
    const float vj = jok ? v[unit * V + j] : 0.0f;
    const float u = gdn ? beta[unit] * (vj - gam * a) : vj;
    if (wr && rg == 0 && jok) o[ou * V + j] = scale * (gam * b + rkq[0] * u);
        for (int m = 0; m < NR; m++) {
        const int i = rg + RG * m;
        if (i < K) s[m] = mad(gam, s[m], lk[i] * u);
        if (wr && i < K && jok) SSTORE(s[m], S, (long)i * V + j);
    }
    for (int e = 1; e < nq; e++) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < K; i += WG) lq[i] = q[(qu + e) * K + i];
        barrier(CLK_LOCAL_MEM_FENCE);
        float pq = 0.0f;
                for (int m = 0; m < NR; m++) {
            const int i = rg + RG * m;
            if (i < K) pq = mad(s[m], lq[i], pq);
        }
        rb[rg * BV + jj] = pq;
        barrier(CLK_LOCAL_MEM_FENCE);
        if (wr && rg == 0 && jok) {
            float t = 0.0f;
            for (int x = 0; x < RG; x++) t += rb[x * BV + jj];
            o[(ou + e) * V + j] = scale * t;
        }
    }
}

/* ---- delta_stepw: the decode step with CW adjacent columns per work-item ----
 * The same step as delta_step, shaped for the state's bandwidth: the group
 * covers SBV = (WG / SRG) * CW value columns of one unit; work-item
 * (rg = lid / SCG, cg = lid % SCG) owns the CW columns cg * CW .. + CW - 1
 * and the rows rg + SRG m (m < SNR), loads all of them first (whole vectors
 * of CW floats, or of CW ushorts for a 16-bit state, through GVEC), then does
 * the math in registers.  Row sums: partials per row group through local
 * memory, one pass of SBV work-items over the row groups in a fixed order.
 * The order of every sum depends on SRG only, not on CW: f32 (CW 4) and
 * 16-bit states (CW 8) give the same float results.  Needs V % CW == 0.
 * Shape, built in by the host (opencl/README.md):
 *   CW   columns per work-item: 4 or 8 (LINATTN_CL_STEPW; 8 = 16-byte loads
 *        of a 16-bit state, 32-byte ones of float)
 *   SRG  row groups (divides WG): the host takes K / 8 rounded up to a
 *        power of two in [8, 32] (LINATTN_CL_STEPRG forces 4..64), so a
 *        work-item holds SNR = K / SRG rows (8 for K = 64..256) of CW floats
 * E.g. K = V = 128: CW 8, SRG 16: 16 column items x 8 = 128 columns (the
 * whole head) per group, 8 rows x 8 columns = 64 floats per work-item;
 * CW 4, SRG 16: 64 columns, 32 floats.  More bytes in flight per work-item:
 * smaller SRG (more rows each, more registers); more groups: larger SRG.
 * Local memory: 2 * WG * CW floats of partial sums (16 KiB at CW 8).
 * vflag, vcheck: as delta_step's (a set flag: no store). */
#ifndef CW
#define CW 4
#endif
#ifndef SRG
#define SRG 16
#endif
#define SCG (WG / SRG)                 /* column work-items per row group */
#define SBV (SCG * CW)                 /* value columns per group */
#define SNR ((K + SRG - 1) / SRG)      /* rows per work-item */
#if K % SRG == 0 /* every work-item's rows exist: no row guard */
#define SROW(i) 1
#else
#define SROW(i) ((i) < K)
#endif
#define SVFULL (V % SBV == 0)          /* every work-item's columns exist */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define floatw CAT(float, CW)
#define uintw CAT(uint, CW)
#define ushortw CAT(ushort, CW)
#define vloadw CAT(vload, CW)
#define vstorew CAT(vstore, CW)
#if SDT != 0
/* NaN in a lane of x: the lanes' sum is NaN (as it is for +Inf beside -Inf,
 * which then takes the exact lane-by-lane path for nothing): one test of a
 * sum instead of one per lane */
static int nanw(floatw x)
{
#if CW == 8
    const float4 t = x.lo + x.hi;
    return isnan((t.s0 + t.s1) + (t.s2 + t.s3));
#else
    return isnan((x.s0 + x.s1) + (x.s2 + x.s3));
#endif
}
#endif
#if SDT >= 2
/* A bf16 state travels as uint words of two elements (element 2c in the
 * lower half of word c): widened by a shift (lower) and a mask (upper) */
#if CW == 8
#define CWH 4
#else
#define CWH 2
#endif
#define uinth CAT(uint, CWH)
#define as_floatw CAT(as_float, CW)
#define as_uintw CAT(as_uint, CW)
/* bf16_round on CW lanes, packed two a word: rounding alone (integer work is
 * what limits the decode step on an NVIDIA H200), a NaN lane (rare) as
 * bf16_round keeps it.  SDT 3 (the host's choice on NVIDIA devices of
 * compute capability 8.0 and later): two lanes a conversion instruction,
 * cvt.rn.bf16x2.f32, which rounds to nearest even and keeps subnormals and
 * infinities as the integer rounding does (NaN lanes are fixed after it) */
static uinth bf16_roundw(floatw x)
{
    uint pr[CWH];
    float xs[CW];
    vstorew(x, 0, xs);
#if SDT == 3
#pragma unroll
    for (int c = 0; c < CWH; c++)
        __asm__("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(pr[c]) : "f"(xs[2 * c + 1]), "f"(xs[2 * c]));
#else
    const uintw u = as_uintw(x), r = u + 0x7fffu + ((u >> 16) & 1u);
    uint rs[CW];
    CAT(vstore, CW)(r, 0, rs);
#pragma unroll
    for (int c = 0; c < CWH; c++) pr[c] = (rs[2 * c] >> 16) | (rs[2 * c + 1] & 0xffff0000u);
#endif
    if (nanw(x)) {
        ushort t[CW];
        for (int c = 0; c < CW; c++) t[c] = bf16_round(xs[c]);
        return CAT(as_uint, CWH)(vloadw(0, t));
    }
    return CAT(vload, CWH)(0, pr);
}
#endif
/* The state's rows are accessed as whole vectors, through a pointer to the
 * vector type: the rows start CW-aligned (V % CW == 0, a buffer's start is
 * aligned as OpenCL requires), which vloadN may not assume: on the H200
 * vload4 of float compiled to four strided scalar accesses (B = 256, H =
 * 16, K = V = 128: 0.24 ms a step against 0.15 through float4) */
#if SDT == 0
#define SSTOREW(x, p) (GVEC(floatw, p) = (x))
#elif SDT == 1
static void hstore(floatw x, __global half *p)
{
    ushortw r;
    CAT(CAT(vstore_half, CW), _rte)(x, 0, (__private half *)&r);
    if (nanw(x)) { /* (rare) NaN lanes as f16_nan rounds them */
        ushort t[CW];
        float xs[CW];
        vstorew(r, 0, t);
        vstorew(x, 0, xs);
        for (int c = 0; c < CW; c++)
            if (isnan(xs[c])) t[c] = f16_nan(xs[c]);
        r = vloadw(0, t);
    }
    GVEC(ushortw, p) = r;
}
#define SSTOREW(x, p) hstore((x), (p))
#else
#define SSTOREW(x, p) (GVEC(uinth, p) = bf16_roundw(x))
#endif

/* delta_stepw's and delta_stepw2's arguments, and what both set up: local
 * memory, the work-item's place (row group rg, columns j .. j + CW - 1 of
 * unit), its state rows S + i V, the key, query and output rows, and the
 * value and beta of column j0 + lid (loaded with the state: the sums after
 * a barrier use them) */
#define STEPW_ARGS                                                                        \
    __global const float *q, __global const float *k, __global const float *v,            \
        __global const float *g, __global const float *beta, __global selt *state,        \
        __global float *o, float scale, int has_g, int gdn, int H, int Hk, int Hq, int nq, \
        int share, int map, __global const int *vflag, int vcheck
#define STEPW_SETUP                                                                       \
    __local float lq[K], lk[K];                                                           \
    __local float lg[GK ? K : 1]; /* (GK: e^g) */                                         \
    __local float ra[SRG * SBV], rb[SRG * SBV], lu[SBV], rkq[SRG];                        \
    const int lid = get_local_id(0), cg = lid % SCG, rg = lid / SCG;                      \
    const long unit = get_group_id(1), bt = unit / H;                                     \
    const int j0 = get_group_id(0) * SBV, j = j0 + cg * CW, jok = SVFULL ? 1 : j < V;     \
    const int h = (int)(unit % H), wr = !(vcheck && vflag[0]); /* else write nothing */   \
    __global selt *S = state + unit * K * V + j;                                          \
    const long ku = bt * Hk + key_head(h, H, Hk, map);                                   \
    const long qu = share ? bt * Hq + (long)h * nq : ku, ou = share ? qu : unit;          \
    const float vj = lid < SBV && j0 + lid < V ? v[unit * V + j0 + lid] : 0.0f;          \
    const float bu = gdn ? beta[unit] : 1.0f;

/* Row i's share of the row sums: x, its CW (decayed) state elements, into
 * pa += x ki and pb += x qi */
static void stepw_acc(const float x[CW], float ki, float qi, float pa[CW], float pb[CW])
{
#pragma unroll
    for (int c = 0; c < CW; c++) {
        pa[c] = mad(x[c], ki, pa[c]);
        pb[c] = mad(x[c], qi, pb[c]);
    }
}

/* Row i's new state: x (decayed) gam + ki u */
static void stepw_upd(float x[CW], float ki, float gam, const float uw[CW])
{
#pragma unroll
    for (int c = 0; c < CW; c++) x[c] = mad(gam, x[c], ki * uw[c]);
}

#if SDT == 0
typedef floatw srawt;
#define SWIDEN(x) (x)
#elif SDT == 1
typedef ushortw srawt;
static floatw hwiden(ushortw r) { return CAT(vload_half, CW)(0, (__private const half *)&r); }
#define SWIDEN(x) hwiden(x)
#else
typedef uinth srawt;
#if CW == 8
#define SWIDEN(x) as_float8((uint8)((x).s0 << 16, (x).s0 & 0xffff0000u, (x).s1 << 16,       \
                                    (x).s1 & 0xffff0000u, (x).s2 << 16, (x).s2 & 0xffff0000u, \
                                    (x).s3 << 16, (x).s3 & 0xffff0000u))
#else
#define SWIDEN(x) as_float4((uint4)((x).s0 << 16, (x).s0 & 0xffff0000u, (x).s1 << 16,       \
                                    (x).s1 & 0xffff0000u))
#endif
#endif

/* a work-item's SNR rows of CW elements, as stored (zeros past the state) */
static void stepw_rows(__global const selt *S, int rg, int jok, srawt raw[SNR])
{
#pragma unroll
    for (int m = 0; m < SNR; m++) {
        const int i = rg + SRG * m;
        raw[m] = (srawt)(0);
        if (SROW(i) && jok) raw[m] = GVEC(const srawt, S + (long)i * V);
    }
}

/* The work-item's rows widened from raw into s, the decayed state (GK: row
 * i times e^g_i, lg[i]) */
static void stepw_widen(const srawt raw[SNR], float s[SNR][CW], __local const float *lg, int rg)
{
#pragma unroll
    for (int m = 0; m < SNR; m++) {
        vstorew(SWIDEN(raw[m]), 0, s[m]);
#if GK
        const int i = rg + SRG * m;
        if (SROW(i))
#pragma unroll
            for (int c = 0; c < CW; c++) s[m][c] *= lg[i];
#endif
    }
}

/* The first pass over the work-item's rows: s as stepw_widen, pa and pb as
 * stepw_acc; returns q.k over the rows */
static float stepw_first(const srawt raw[SNR], float s[SNR][CW], __local const float *lq,
                         __local const float *lk, __local const float *lg, int rg, float pa[CW],
                         float pb[CW])
{
    float pk = 0.0f;
#pragma unroll
    for (int c = 0; c < CW; c++) pa[c] = pb[c] = 0.0f;
    stepw_widen(raw, s, lg, rg);
#pragma unroll
    for (int m = 0; m < SNR; m++) {
        const int i = rg + SRG * m;
        if (SROW(i)) {
            pk = mad(lq[i], lk[i], pk);
            stepw_acc(s[m], lk[i], lq[i], pa, pb);
        }
    }
    return pk;
}

/* The new state's rows (s decayed) from u (uw: the work-item's columns),
 * stored where st (the value check passed and the columns exist) */
static void stepw_last(float s[SNR][CW], __local const float *lk, float gam, const float uw[CW],
                       int rg, int st, __global selt *S)
{
#pragma unroll
    for (int m = 0; m < SNR; m++) {
        const int i = rg + SRG * m;
        if (SROW(i)) {
            stepw_upd(s[m], lk[i], gam, uw);
            if (st) SSTOREW(vloadw(0, s[m]), S + (long)i * V);
        }
    }
}

/* delta_stepw's and delta_stepw2's inputs: q, k (and GK: e^g) of the unit
 * to local memory; returns the step's scalar decay (1 for GK) */
static float stepw_inputs(__global const float *q, __global const float *k,
                          __global const float *g, long qu, long ku, long unit, int has_g,
                          __local float *lq, __local float *lk, __local float *lg, int lid)
{
    for (int i = lid; i < K; i += WG) {
        lq[i] = q[qu * K + i];
        lk[i] = k[ku * K + i];
#if GK
        lg[i] = has_g ? exp(g[unit * K + i]) : 1.0f;
#endif
    }
#if GK
    const float gam = 1.0f;
#else
    const float gam = has_g ? exp(g[unit]) : 1.0f;
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    return gam;
}

/* The row sums of the step: a work-item's partials pa, pb (its rows of k^T S
 * and q^T S over its CW columns) and pk (q^T k) through local memory, summed
 * over the row groups in a fixed order by SBV work-items, one column each:
 * u (the column's write, from its value vj and beta bu) to lu, and o */
static void stepw_sums(const float pa[CW], const float pb[CW], float pk, float vj, float bu,
                       __global float *o, long ou, int j0, float gam, float scale, int gdn,
                       int wr, __local float *ra, __local float *rb, __local float *rkq,
                       __local float *lu, int lid)
{
    const int cg = lid % SCG, rg = lid / SCG;
    vstorew(vloadw(0, pa), 0, ra + rg * SBV + cg * CW);
    vstorew(vloadw(0, pb), 0, rb + rg * SBV + cg * CW);
    if (cg == 0) rkq[rg] = pk;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < SBV) { /* column j0 + lid: the sums over the row groups, u, o */
        const int jc = j0 + lid;
        float a = 0.0f, b = 0.0f, kq = 0.0f;
        for (int x = 0; x < SRG; x++) {
            a += ra[x * SBV + lid];
            b += rb[x * SBV + lid];
            kq += rkq[x];
        }
        const float u = gdn ? bu * (vj - gam * a) : vj;
        lu[lid] = u;
        if (wr && jc < V) o[ou * V + jc] = scale * (gam * b + kq * u);
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void delta_stepw(STEPW_ARGS)
{
    STEPW_SETUP
    srawt raw[SNR];
    float s[SNR][CW], pa[CW], pb[CW];
    stepw_rows(S, rg, jok, raw); /* the state first: every load in flight before any math */
    const float gam = stepw_inputs(q, k, g, qu, ku, unit, has_g, lq, lk, lg, lid);
    const float pk = stepw_first(raw, s, lq, lk, lg, rg, pa, pb);
    stepw_sums(pa, pb, pk, vj, bu, o, ou, j0, gam, scale, gdn, wr, ra, rb, rkq, lu, lid);
    barrier(CLK_LOCAL_MEM_FENCE);
    float uw[CW];
    vstorew(vloadw(0, lu + cg * CW), 0, uw);
    stepw_last(s, lk, gam, uw, rg, wr & jok, S);
    for (int e = 1; e < nq; e++) { /* query heads sharing the state read the new one */
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = lid; i < K; i += WG) lq[i] = q[(qu + e) * K + i];
        barrier(CLK_LOCAL_MEM_FENCE);
        float pq[CW];
#pragma unroll
        for (int c = 0; c < CW; c++) pq[c] = 0.0f;
#pragma unroll
        for (int m = 0; m < SNR; m++) {
            const int i = rg + SRG * m;
            if (SROW(i)) {
                const float qi = lq[i];
#pragma unroll
                for (int c = 0; c < CW; c++) pq[c] = mad(s[m][c], qi, pq[c]);
            }
        }
        vstorew(vloadw(0, pq), 0, rb + rg * SBV + cg * CW);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (wr && lid < SBV && j0 + lid < V) {
            float t = 0.0f;
            for (int x = 0; x < SRG; x++) t += rb[x * SBV + lid];
            o[(ou + e) * V + j0 + lid] = scale * t;
        }
    }
}

/* ---- delta_stepw2: delta_stepw in two passes over the state ----
 * The same step, sums and roundings as delta_stepw (the same float results),
 * for one query head a state (nq == 1; the host's choice for a 16-bit
 * state): the first pass reads the state and forms the row sums, the second
 * reads it again (from the cache: a group's rows were read microseconds
 * before) and writes the new state, so that no work-item holds its state
 * across the sums, only the loads in flight, as stored (16-bit elements
 * packed): fewer registers (NVIDIA H200, bf16, K = V = 128: 48 against 64),
 * more groups a compute unit. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void delta_stepw2(STEPW_ARGS)
{
    STEPW_SETUP
    srawt raw[SNR];
    float s[SNR][CW], pa[CW], pb[CW]; /* (s: rewritten by the second pass) */
    stepw_rows(S, rg, jok, raw); /* every load in flight before any math */
    const float gam = stepw_inputs(q, k, g, qu, ku, unit, has_g, lq, lk, lg, lid);
    const float pk = stepw_first(raw, s, lq, lk, lg, rg, pa, pb);
    stepw_sums(pa, pb, pk, vj, bu, o, ou, j0, gam, scale, gdn, wr, ra, rb, rkq, lu, lid);
    stepw_rows(S, rg, jok, raw); /* again, issued before the barrier's wait */
    barrier(CLK_LOCAL_MEM_FENCE);
    float uw[CW];
    vstorew(vloadw(0, lu + cg * CW), 0, uw);
    stepw_widen(raw, s, lg, rg); /* as in the first pass */
    stepw_last(s, lk, gam, uw, rg, wr & jok, S);
}
