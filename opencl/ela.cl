/* linattn - OpenCL C 1.2 kernel of exact (feature-map) linear attention
 * (ela), linattn_ela(3): the token recurrence, one work-group of WG
 * work-items per (sequence, head); work-item j owns value columns
 * j, j + WG, ... of S (in device memory); z, c and the features live in
 * local memory.  Built per (K, V).  Every barrier is in the kernel body and
 * unconditional (see README.md); the loops around them have trip counts
 * that are the same for the whole work-group. */

#define WG 256
#define FMAX (K + 2)
#define EPS 1e-8f

/* features: 0 exp, 1 sqdist_sum, 2 sqdist_sub, 3 elu1, 4 identity.
 * stab: per sequence {first token (b*T + t), tokens}.  S [N,H,F,V],
 * z [N,H,F], cb [N,H,F] (c_in: read the offset from cb, else start at 0
 * when zero_c, -inf otherwise; c_out: write it back, else (safe) return
 * the true sums exp(c) S, exp(c) z). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void ela_seq(__global const long *stab, __global const float *q, __global const float *k,
             __global const float *v, int H, int feature, int safe, int bidir, int c_in,
             int c_out, int zero_c, float s, __global float *S, __global float *z,
             __global float *cb, __global float *o)
{
    __local float lph[FMAX], lps[FMAX], lr[FMAX], lz[FMAX], lc[FMAX];
    const int lid = get_local_id(0);
    const int n = get_group_id(0), h = get_group_id(1);
    const int F = (feature == 1 || feature == 2) ? K + 2 : K;
    const long tok0 = stab[2 * n], len = stab[2 * n + 1];
    const long unit = (long)n * H + h;
    __global float *Sg = S + unit * F * V;
    __global float *zg = z + unit * F;
    __global float *cg = cb + unit * F;
    for (int d = lid; d < F; d += WG) {
        lz[d] = zg[d];
        lc[d] = c_in ? cg[d] : zero_c ? 0.0f : -INFINITY;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const long steps = bidir ? 2 * len : len;
    for (long u = 0; u < steps; u++) {
        const int write = !bidir || u < len, read = !bidir || u >= len;
        const long t = u < len ? u : u - len;
        const long row = (tok0 + t) * H + h;
        for (int i = lid; i < K; i += WG) {
            lps[i] = s * k[row * K + i];
            lph[i] = s * q[row * K + i];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* norms of the scaled key and query (each work-item, the same order) */
        float nk = 0.0f, nq = 0.0f;
        for (int i = 0; i < ((feature == 1 || feature == 2) ? K : 0); i++) {
            nk = mad(lps[i], lps[i], nk);
            nq = mad(lph[i], lph[i], nq);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* key features psi, row factors r, z update, the offset c */
        for (int d = lid; d < F; d += WG) {
            float r = 1.0f, p;
            if (safe) {
                const float b = lps[d];
                if (write && b > lc[d]) {
                    r = exp(lc[d] - b);
                    lc[d] = b;
                }
                p = exp(b - lc[d]);
            } else if (feature == 0) {
                p = exp(lps[d]);
            } else if (feature == 1 || feature == 2) {
                p = d < K ? (feature == 1 ? 2.0f : -2.0f) * lps[d] : d == K ? 1.0f : nk;
            } else if (feature == 3) {
                p = lps[d] > 0.0f ? lps[d] + 1.0f : exp(lps[d]);
            } else {
                p = lps[d];
            }
            lps[d] = p;
            lr[d] = r;
            if (write) lz[d] = r * lz[d] + p;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* query features phi (safe: shifted by c and by their maximum M) */
        float M = -INFINITY;
        for (int d = 0; d < (safe ? F : 0); d++) M = fmax(M, lph[d] + lc[d]);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int d = lid; d < F; d += WG) {
            float p;
            if (safe) p = exp(lph[d] + lc[d] - M);
            else if (feature == 0) p = exp(lph[d]);
            else if (feature == 1 || feature == 2) p = d < K ? lph[d] : d == K ? nq : 1.0f;
            else if (feature == 3) p = lph[d] > 0.0f ? lph[d] + 1.0f : exp(lph[d]);
            else p = lph[d];
            lph[d] = p;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        float den = 0.0f;
        for (int d = 0; d < (read ? F : 0); d++) den = mad(lph[d], lz[d], den);
        den = fmax(den, EPS);
        /* S = diag(r) S + psi v^T and the readout, column by column */
        for (int j = lid; j < V; j += WG) {
            const float vj = v[row * V + j];
            float acc = 0.0f;
            for (int d = 0; d < F; d++) {
                float x = Sg[d * V + j];
                if (write) {
                    x = mad(lps[d], vj, lr[d] * x);
                    Sg[d * V + j] = x;
                }
                acc = mad(lph[d], x, acc);
            }
            if (read) o[row * V + j] = acc / den;
        }
        barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
    }
    /* the state out: z (and c), or the true sums */
    for (int d = lid; d < F; d += WG) {
        const float e = (safe && !c_out) ? exp(lc[d]) : 1.0f;
        zg[d] = e * lz[d];
        lr[d] = e;
        if (c_out) cg[d] = lc[d];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int j = lid; j < ((safe && !c_out) ? V : 0); j += WG)
        for (int d = 0; d < F; d++) Sg[d * V + j] *= lr[d];
}

/* ---- the chunk form (forward): three passes over chunks of CH <= 64 tokens.
 * Chunk table ct: per chunk {first row (b*T + t), tokens, sequence}; sequence
 * table sq: per sequence {first chunk, chunks}.  Per-chunk arrays are
 * [chunk, H, ...].  Safe exp: m [chunk,H,F] is the chunk's largest scaled key
 * per dimension, the chunk sums P, pz are taken relative to it, and the state
 * entering a chunk (written over P by ela_chunk_scan) relative to the offset
 * cx [chunk,H,F] entering it.  Work-items of a 256 group: ty = lid / 16 and
 * tx = lid % 16 own a 4 x MU register tile: value columns 4 tx + 64 w + u
 * (w < MU / 4, u < 4), rows 4 ty + i (ela_chunk_sum's features) or ty + 16 i
 * (ela_chunk_out's chunk rows, and 4 x 4 of its scores, key rows tx + 16 u).
 * The products read their local slabs as aligned float4s: each operand's
 * four (or MU) numbers of a depth step are one (MU / 4) float4 load(s). */

#ifndef CH
#define CH 64
#endif
#define TR 64 /* rows of a tile (chunk rows or features) */
#define MU (V > 64 ? 8 : 4) /* value columns of a work-item: 4 tx + 64 w + u */
#define TC (16 * MU)         /* columns of a tile (values; ela_cl.c mirrors it) */
#define DT 16                /* depth of the products' local slabs */
#define NSL (MU / 4)         /* float4s of a [DT][TC] slab a work-item stages */
#define NW (MU / 4)          /* float4 column groups of a work-item (w) */
#define LDS 68               /* row stride of the [depth][64 + pad] slabs (16-byte rows) */
/* the aligned float4 at p (p 16-byte aligned: local arrays aligned(16), offsets
 * multiples of 4), one vector load of local memory */
#define LD4L(p) (*(__local const float4 *)(p))

/* a work-item's MU value columns (4 tx + 64 w + u) of a slab row */
inline void slab_cols(__local const float *row, int tx, float b[MU])
{
    for (int w = 0; w < NW; w++) {
        const float4 b4 = LD4L(row + 4 * tx + 64 * w);
        b[4 * w] = b4.x;
        b[4 * w + 1] = b4.y;
        b[4 * w + 2] = b4.z;
        b[4 * w + 3] = b4.w;
    }
}

/* the key feature of x = s k[d] (d < K; x = 0 beyond), nk = |s k|^2 */
inline float ela_psi(int feature, int safe, float x, int d, float nk, float c)
{
    if (safe) return exp(x - c);
    if (feature == 0) return exp(x);
    if (feature == 1 || feature == 2)
        return d < K ? (feature == 1 ? 2.0f : -2.0f) * x : d == K ? 1.0f : nk;
    if (feature == 3) return x > 0.0f ? x + 1.0f : exp(x);
    return x;
}

/* the query feature (safe: shifted by c and the row's maximum M) */
inline float ela_phi(int feature, int safe, float x, int d, float nq, float c, float M)
{
    if (safe) return exp(x + c - M);
    if (feature == 0) return exp(x);
    if (feature == 1 || feature == 2) return d < K ? x : d == K ? nq : 1.0f;
    if (feature == 3) return x > 0.0f ? x + 1.0f : exp(x);
    return x;
}

/* p[0..3] where the index is below n (zeros past it; nothing read there).
 * GALIGN (the host's -DGALIGN=1 where K and V are multiples of 4: every row
 * read or written starts 16-byte aligned): whole float4s through a pointer,
 * which vload4 / vstore4 may not assume (NVIDIA compiled them to four
 * scalar accesses: ela 1.60 -> 1.48 ms a call at B = 1, T = 16384 on the
 * H200). */
#ifndef GALIGN
#define GALIGN 0
#endif
inline float4 ela_ld4(__global const float *p, int n)
{
#if GALIGN
    if (n >= 4) return *(__global const float4 *)p;
#else
    if (n >= 4) return vload4(0, p);
#endif
    return (float4)(n > 0 ? p[0] : 0.0f, n > 1 ? p[1] : 0.0f, n > 2 ? p[2] : 0.0f, 0.0f);
}

/* x to p[0..3] where the index is below n */
inline void ela_st4(float4 x, __global float *p, int n)
{
    if (n >= 4) {
#if GALIGN
        *(__global float4 *)p = x;
#else
        vstore4(x, 0, p);
#endif
        return;
    }
    if (n > 0) p[0] = x.x;
    if (n > 1) p[1] = x.y;
    if (n > 2) p[2] = x.z;
}

/* The [DT][TC] slabs of the products (values, state rows) go global ->
 * registers -> local: a work-item's float4 l holds slab row SROW(l),
 * columns SCOL(l) .. + 3, and the next slab's loads are issued before the
 * current slab's products (the prefetch of delta.cl), so that their latency
 * hides behind arithmetic. */
#define SROW(lid, l) (((lid) + WG * (l)) / (TC / 4))
#define SCOL(lid, l) (4 * (((lid) + WG * (l)) % (TC / 4)))

/* slab rows t0 + SROW (< nr) of x (rows ld apart), columns j0 + SCOL (< V) */
inline void ela_fetch_slab(float4 *w, __global const float *x, long ld, int t0, int nr, int j0,
                           int lid)
{
    for (int l = 0; l < NSL; l++) {
        const int t = t0 + SROW(lid, l), j = j0 + SCOL(lid, l);
        w[l] = t < nr ? ela_ld4(x + t * ld + j, V - j) : (float4)(0.0f);
    }
}

/* Per (chunk, head, feature tile, value tile): P = Psi^T V_c, pz = Psi^T 1,
 * and (safe) m.  Psi is lk [chunk row][feature tile + pad]: a work-item's
 * features 4 ty .. + 3 are one float4 of a row.  Grid (chunks * 256, H,
 * ftiles * vtiles). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void ela_chunk_sum(__global const long *ct, __global const float *k, __global const float *v,
                   int H, int F, int feature, int safe, float s, __global float *P,
                   __global float *pz, __global float *m)
{
    __local float lk[TR * LDS] __attribute__((aligned(16)));
    __local float lv[DT * TC] __attribute__((aligned(16)));
    __local float lm[TR], lnk[TR], lpart[WG];
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int ch = get_group_id(0), h = get_group_id(1);
    const int vtiles = (V + TC - 1) / TC;
    const int d0 = (get_group_id(2) / vtiles) * TR, j0 = (get_group_id(2) % vtiles) * TC;
    const long row0 = ct[3 * ch], len = ct[3 * ch + 1];
    const int c = (int)len;
    /* the first slab of values, in flight while the keys' tile is made */
    __global const float *vc = v + (row0 * H + h) * V;
    const long ldv = (long)H * V;
    float4 w[NSL];
    ela_fetch_slab(w, vc, ldv, 0, c, j0, lid);
    /* the scaled keys of the tile's features, every row of the chunk, a
     * float4 of a row at a time */
    for (int e = lid; e < TR * TR / 4; e += WG) {
        const int r = e / (TR / 4), dd = 4 * (e % (TR / 4)), d = d0 + dd;
        const float4 x =
            r < c ? s * ela_ld4(k + ((row0 + r) * H + h) * K + d, K - d) : (float4)(0.0f);
        vstore4(x, 0, lk + r * LDS + dd);
    }
    /* squared key norms (sqdist): 4 work-items a row */
    {
        float acc = 0.0f;
        const int r = lid / 4;
        for (int d = lid % 4; d < ((feature == 1 || feature == 2) && r < c ? K : 0); d += 4) {
            const float x = s * k[((row0 + r) * H + h) * K + d];
            acc = mad(x, x, acc);
        }
        lpart[lid] = acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < TR) lnk[lid] = lpart[4 * lid] + lpart[4 * lid + 1] + lpart[4 * lid + 2] +
                             lpart[4 * lid + 3];
    if (lid < TR) {
        float mx = -INFINITY;
        for (int r = 0; r < (safe ? c : 0); r++) mx = fmax(mx, lk[r * LDS + lid]);
        lm[lid] = mx;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < TR * TR; e += WG) {
        const int r = e / TR, dd = e % TR, d = d0 + dd;
        lk[r * LDS + dd] =
            (r < c && d < F) ? ela_psi(feature, safe, lk[r * LDS + dd], d, lnk[r], lm[dd]) : 0.0f;
    }
    float acc[4][MU] = {{0.0f}};
    float az[4] = {0.0f};
    for (int r0 = 0; r0 < CH; r0 += DT) {
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int l = 0; l < NSL; l++) vstore4(w[l], 0, lv + SROW(lid, l) * TC + SCOL(lid, l));
        barrier(CLK_LOCAL_MEM_FENCE);
        if (r0 + DT < CH) ela_fetch_slab(w, vc, ldv, r0 + DT, c, j0, lid);
        for (int r = 0; r < DT; r++) {
            const float4 a4 = LD4L(lk + (r0 + r) * LDS + 4 * ty);
            const float a[4] = {a4.x, a4.y, a4.z, a4.w};
            float b[MU];
            slab_cols(lv + r * TC, tx, b);
            for (int i = 0; i < 4; i++) {
                az[i] += a[i];
                for (int u = 0; u < MU; u++) acc[i][u] = mad(a[i], b[u], acc[i][u]);
            }
        }
    }
    const long unit = (long)ch * H + h;
    for (int i = 0; i < 4; i++) {
        const int d = d0 + 4 * ty + i;
        if (d >= F) continue;
        for (int w = 0; w < NW; w++) {
            const int j = j0 + 4 * tx + 64 * w;
            const float4 x = (float4)(acc[i][4 * w], acc[i][4 * w + 1], acc[i][4 * w + 2],
                                      acc[i][4 * w + 3]);
            ela_st4(x, P + (unit * F + d) * V + j, V - j);
        }
        if (j0 == 0 && tx == 0) {
            pz[unit * F + d] = az[i];
            if (safe) m[unit * F + d] = lm[4 * ty + i];
        }
    }
}

/* Per (sequence, head), one work-item per SV adjacent state elements of a
 * row of S (F*V/SV of them), then one per element of z (F): the walk over
 * the sequence's chunks writes the state entering each chunk over its sum
 * (and cx), the final state into S, z and its offset into cf (not over cb,
 * which other work-items of S may still read).  SV (the host's -DSV) is 4
 * where V % 4 == 0: one 16-byte load a chunk and one offset update for four
 * elements (H200: 1.4 TB/s of P traffic with one float a work-item).  c_in,
 * zero_c as ela_seq.  Grid (ceil((F*V/SV + F) / 256) * 256, H, N). */
#ifndef SV
#define SV 1
#endif
#if SV == 4
#define floatv float4
#define LDV(p) (*(__global float4 *)(p)) /* (16-byte aligned: whole float4s) */
#define STV(x, p) (*(__global float4 *)(p) = (x))
#define LANE0(x) ((x).x)
#elif SV == 1
#define floatv float
#define LDV(p) (*(p))
#define STV(x, p) (*(p) = (x))
#define LANE0(x) (x)
#else
#error "SV is 1 or 4"
#endif
#define SD 16 /* chunks whose loads ela_chunk_scan has in flight */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void ela_chunk_scan(__global const long *sq, int H, int F, int safe, int c_in, int zero_c,
                    __global float *P, __global float *pz, __global const float *m,
                    __global float *cx, __global float *S, __global float *z,
                    __global const float *cb, __global float *cf)
{
    const long g = get_global_id(0);
    const int h = get_group_id(1), n = get_group_id(2);
    const long unit = (long)n * H + h;
    const long FV = (long)F * V, nv = FV / SV;
    if (g >= nv + F) return;
    const int isz = g >= nv;
    const long e = isz ? g - nv : g * SV; /* z's element, else S's first */
    const int d = isz ? (int)e : (int)(e / V);
    const long ch0 = sq[2 * n], nch = sq[2 * n + 1];
    float c = !safe ? 0.0f : c_in ? cb[unit * F + d] : zero_c ? 0.0f : -INFINITY;
    floatv x = isz ? (floatv)(z[unit * F + d]) : LDV(S + unit * FV + e);
    /* SD chunks at a time: their loads all issued before the first update
     * (one chunk at a time, each waited for its load: latency-bound) */
    for (long i0 = ch0; i0 < ch0 + nch; i0 += SD) {
        floatv add[SD];
        float mi[SD];
#pragma unroll
        for (int j = 0; j < SD; j++) {
            const long i = i0 + j, u = i * H + h;
            const int in = i < ch0 + nch;
            add[j] = !in ? (floatv)(0.0f) : isz ? (floatv)(pz[u * F + d]) : LDV(P + u * FV + e);
            mi[j] = in && safe ? m[u * F + d] : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < SD; j++) {
            const long i = i0 + j, u = i * H + h;
            if (i >= ch0 + nch) break;
            if (isz) pz[u * F + d] = LANE0(x);
            else STV(x, P + u * FV + e);
            if (safe) {
                const float cn = fmax(c, mi[j]);
                if (isz) cx[u * F + d] = c;
                x = x * exp(c - cn) + add[j] * exp(mi[j] - cn);
                c = cn;
            } else {
                x += add[j];
            }
        }
    }
    if (isz) {
        z[unit * F + d] = LANE0(x);
        if (safe) cf[unit * F + d] = c;
    } else {
        STV(x, S + unit * FV + e);
    }
}

/* Per (chunk, head, value tile): the outputs of the chunk's rows,
 * Y = (Phi~ S_in + A V_c) / max(Phi~ z_in + A 1, eps), A = (Phi Psi^T) o M,
 * with (safe) c' = max(cx, m) the offset after the chunk, Psi = e^(b - c'),
 * Phi = e^(a + c' - M_r) and Phi~ = Phi e^(cx - c') (the state is relative to
 * cx).  bidir: S_in, z_in, cx are the final state (Sf, zf, cf) and A = 0.
 * The slabs of q and k (row QR, features QD .. + 3 of a work-item), S_in and
 * then V_c are prefetched: the next slab's loads are issued before the
 * current slab's products.  Phi, Psi (lq, lk) and then A (la) are stored
 * transposed, [depth][LDS], with the chunk rows in the order POS(r) =
 * 4 (r % 16) + r / 16, so that rows ty + 16 i (tx + 16 u) are the float4 at
 * 4 ty (4 tx): delta.cl's layout, and its loaders' QR, QD (XROW, XCOL
 * there), whose transposed stores hit 32 distinct banks per 32 work-items.
 * Grid (chunks * 256, H, vtiles). */
#define POS(r) (4 * ((r) % 16) + (r) / 16)
#define QR(lid) (4 * ((lid) / 64) + ((lid) / 2) % 4 + 16 * (((lid) % 32) / 8))
#define QD(lid) (8 * (((lid) / 32) % 2) + 4 * ((lid) % 2))
#if TR * DT != 4 * WG
#error "ela_chunk_out stages its q, k slabs as one float4 a work-item"
#endif
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void ela_chunk_out(__global const long *ct, __global const float *q, __global const float *k,
                   __global const float *v, int H, int F, int feature, int safe, int bidir,
                   float s, __global const float *P, __global const float *pz,
                   __global const float *m, __global const float *cx,
                   __global const float *Sf, __global const float *zf,
                   __global const float *cf, __global float *o)
{
    /* la: first the row partials, then the slabs of Phi and Psi (lq, lk:
     * [DT][LDS] each), then A^T ([TR][LDS]) */
    __local float la[TR * LDS] __attribute__((aligned(16)));
    __local float ls[DT * TC] __attribute__((aligned(16))); /* S_in, then V_c */
    __local float lc[FMAX], le[FMAX], lz[FMAX], lM[TR], lnq[TR], lnk[TR], lden[TR];
    __local float *const lq = la, *const lk = la + DT * LDS;
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int ch = get_group_id(0), h = get_group_id(1), j0 = get_group_id(2) * TC;
    const long row0 = ct[3 * ch], c = ct[3 * ch + 1], n = ct[3 * ch + 2];
    const long cu = (long)ch * H + h, nu = n * H + h;
    __global const float *Sin = bidir ? Sf + nu * F * V : P + cu * F * V;
    __global const float *zin = bidir ? zf + nu * F : pz + cu * F;
    /* the first slabs in flight while the offsets and row maxima are made */
    const int qr = QR(lid), qd = QD(lid);
    const long qrow = ((row0 + qr) * H + h) * K + qd;
    float4 wq = qr < c ? ela_ld4(q + qrow, K - qd) : (float4)(0.0f);
    float4 wk = qr < c && !bidir ? ela_ld4(k + qrow, K - qd) : (float4)(0.0f);
    float4 ws[NSL];
    ela_fetch_slab(ws, Sin, V, 0, F, j0, lid);
    for (int d = lid; d < F; d += WG) {
        float cc = 0.0f, e = 1.0f;
        if (safe) {
            const float x = bidir ? cf[nu * F + d] : cx[cu * F + d];
            cc = bidir ? x : fmax(x, m[cu * F + d]);
            e = exp(x - cc);
        }
        lc[d] = cc;
        le[d] = e;
        lz[d] = e * zin[d];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* per row: M (safe), |a|^2 and |b|^2 (sqdist); 4 work-items a row, a
     * float4 at a time */
    {
        const int r = lid / 4;
        const int sq = feature == 1 || feature == 2;
        const long row = (row0 + r) * H + h;
        float mx = -INFINITY, aq = 0.0f, ak = 0.0f;
        for (int d = 4 * (lid % 4); d < (r < c && (safe || sq) ? K : 0); d += 16) {
            const float4 a = s * ela_ld4(q + row * K + d, K - d);
            const float4 b = s * ela_ld4(k + row * K + d, K - d);
            mx = fmax(mx, a.x + lc[d]);
            if (d + 1 < K) mx = fmax(mx, a.y + lc[d + 1]);
            if (d + 2 < K) mx = fmax(mx, a.z + lc[d + 2]);
            if (d + 3 < K) mx = fmax(mx, a.w + lc[d + 3]);
            aq = mad(a.x, a.x, aq);
            aq = mad(a.y, a.y, aq);
            aq = mad(a.z, a.z, aq);
            aq = mad(a.w, a.w, aq);
            ak = mad(b.x, b.x, ak);
            ak = mad(b.y, b.y, ak);
            ak = mad(b.z, b.z, ak);
            ak = mad(b.w, b.w, ak);
        }
        la[lid] = mx;
        la[WG + lid] = aq;
        la[2 * WG + lid] = ak;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < TR) {
        const int b = 4 * lid;
        lM[lid] = fmax(fmax(la[b], la[b + 1]), fmax(la[b + 2], la[b + 3]));
        lnq[lid] = la[WG + b] + la[WG + b + 1] + la[WG + b + 2] + la[WG + b + 3];
        lnk[lid] = la[2 * WG + b] + la[2 * WG + b + 1] + la[2 * WG + b + 2] + la[2 * WG + b + 3];
    }
    float y[4][MU] = {{0.0f}}, A[4][4] = {{0.0f}}, dz[4] = {0.0f};
    for (int f0 = 0; f0 < F; f0 += DT) {
        barrier(CLK_LOCAL_MEM_FENCE);
        /* the staged slab to local memory: the features of q and k (zero
         * past the chunk's rows and F), S_in's rows times e^(cx - c') */
        {
            const float nq = lnq[qr], nk = lnk[qr], M = lM[qr];
            const float xq[4] = {wq.x, wq.y, wq.z, wq.w}, xk[4] = {wk.x, wk.y, wk.z, wk.w};
            for (int j = 0; j < 4; j++) {
                const int d = f0 + qd + j, ok = qr < c && d < F;
                lq[(qd + j) * LDS + POS(qr)] =
                    ok ? ela_phi(feature, safe, s * xq[j], d, nq, lc[d], M) : 0.0f;
                lk[(qd + j) * LDS + POS(qr)] =
                    ok && !bidir ? ela_psi(feature, safe, s * xk[j], d, nk, lc[d]) : 0.0f;
            }
        }
        for (int l = 0; l < NSL; l++) {
            const int d = f0 + SROW(lid, l);
            vstore4(ws[l] * (d < F ? le[d] : 0.0f), 0, ls + SROW(lid, l) * TC + SCOL(lid, l));
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (f0 + DT < F) { /* the next slab */
            const int d = f0 + DT + qd;
            wq = qr < c ? ela_ld4(q + qrow + f0 + DT, K - d) : (float4)(0.0f);
            wk = qr < c && !bidir ? ela_ld4(k + qrow + f0 + DT, K - d) : (float4)(0.0f);
            ela_fetch_slab(ws, Sin, V, f0 + DT, F, j0, lid);
        } else { /* the first slab of values */
            ela_fetch_slab(ws, v + (row0 * H + h) * V, (long)H * V, 0, bidir ? 0 : (int)c, j0,
                           lid);
        }
        for (int dd = 0; dd < DT; dd++) {
            const int d = f0 + dd;
            const float ez = d < F ? lz[d] : 0.0f;
            const float4 a4 = LD4L(lq + dd * LDS + 4 * ty), k4 = LD4L(lk + dd * LDS + 4 * tx);
            const float a[4] = {a4.x, a4.y, a4.z, a4.w}, kk[4] = {k4.x, k4.y, k4.z, k4.w};
            float b[MU];
            for (int w = 0; w < NW; w++) {
                const float4 b4 = LD4L(ls + dd * TC + 4 * tx + 64 * w);
                b[4 * w] = b4.x;
                b[4 * w + 1] = b4.y;
                b[4 * w + 2] = b4.z;
                b[4 * w + 3] = b4.w;
            }
            for (int i = 0; i < 4; i++) {
                dz[i] = mad(a[i], ez, dz[i]);
                for (int u = 0; u < MU; u++) y[i][u] = mad(a[i], b[u], y[i][u]);
                for (int u = 0; u < 4; u++) A[i][u] = mad(a[i], kk[u], A[i][u]);
            }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE); /* lq, lk (in la) and ls read */
    /* A, masked, to local memory as A^T (la[t * LDS + POS(r)]: a work-item's
     * rows ty + 16 i of column t are one float4); its row sums to the
     * denominators */
    for (int u = 0; u < 4; u++) {
        const int t = tx + 16 * u, ok = !bidir;
        const float4 x =
            (float4)(ok && t <= ty ? A[0][u] : 0.0f, ok && t <= ty + 16 ? A[1][u] : 0.0f,
                     ok && t <= ty + 32 ? A[2][u] : 0.0f, ok && t <= ty + 48 ? A[3][u] : 0.0f);
        vstore4(x, 0, la + t * LDS + 4 * ty);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < TR) {
        float acc = 0.0f;
        for (int t = 0; t < TR; t++) acc += la[t * LDS + POS(lid)];
        lden[lid] = acc;
    }
    /* Y += A V_c, the values in slabs of DT rows (ls) */
    for (int t0 = 0; t0 < CH; t0 += DT) {
        for (int l = 0; l < NSL; l++) vstore4(ws[l], 0, ls + SROW(lid, l) * TC + SCOL(lid, l));
        barrier(CLK_LOCAL_MEM_FENCE);
        if (t0 + DT < CH)
            ela_fetch_slab(ws, v + (row0 * H + h) * V, (long)H * V, t0 + DT, bidir ? 0 : (int)c,
                           j0, lid);
        for (int tt = 0; tt < DT; tt++) {
            const float4 a4 = LD4L(la + (t0 + tt) * LDS + 4 * ty);
            const float a[4] = {a4.x, a4.y, a4.z, a4.w};
            float b[MU];
            slab_cols(ls + tt * TC, tx, b);
            for (int i = 0; i < 4; i++)
                for (int u = 0; u < MU; u++) y[i][u] = mad(a[i], b[u], y[i][u]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < 4; i++) {
        const int r = ty + 16 * i;
        if (r >= c) continue;
        const float den = fmax(dz[i] + lden[r], EPS);
        for (int w = 0; w < NW; w++) {
            const int j = j0 + 4 * tx + 64 * w;
            const float4 x = (float4)(y[i][4 * w], y[i][4 * w + 1], y[i][4 * w + 2],
                                      y[i][4 * w + 3]) / den;
            ela_st4(x, o + ((row0 + r) * H + h) * V + j, V - j);
        }
    }
}

/* The true sums of a safe state kept relative to cb: S, z times exp(cb).
 * Grid (ceil((F*V + F) / 256) * 256, N*H). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void ela_chunk_unshift(int F, __global float *S, __global float *z, __global const float *cb)
{
    const long e = get_global_id(0), unit = get_group_id(1), FV = (long)F * V;
    if (e < FV) S[unit * FV + e] *= exp(cb[unit * F + e / V]);
    else if (e < FV + F) z[unit * F + e - FV] *= exp(cb[unit * F + e - FV]);
}
