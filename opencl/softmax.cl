/* linattn - OpenCL C 1.2 kernels of causal softmax attention, built per
 * (K, V): the blocked forward (softmax_fwd), the decode step split over the
 * KV cache (softmax_split, then softmax_merge: log-sum-exp of the splits),
 * and the cache append (kv_append).  Work-groups of WG; every barrier is in
 * a kernel body and unconditional (see README.md). */

#define WG 256

/* ---- forward: a work-group per (block of QB query rows, head) ----------- *
 * Local memory: QB query rows and BK keys (rows padded to K + 1 floats
 * against bank conflicts), BK values and the QB x BK scores, within LBUD
 * floats.  QB and BK are functions of K and V (softmax_cl.c mirrors QB). */
#define LBUD 7680
#define KP (K + 1)
#define FITS(qb, bk) ((qb) * KP + (bk) * (KP + V) + (qb) * (bk) <= LBUD)
#define QB (FITS(16, 16) ? 16 : FITS(8, 8) ? 8 : FITS(4, 4) ? 4 : FITS(2, 2) ? 2 : 1)
#define TPR (WG / QB)                      /* work-items per query row */
#define BKMAX ((LBUD - QB * KP) / (KP + V + QB))
#define BK0 (BKMAX < 32 ? BKMAX : 32)
#define BK (BK0 >= TPR ? BK0 / TPR * TPR : BK0)
#define MV ((V + TPR - 1) / TPR)           /* output columns per work-item */
#define MK ((BK + TPR - 1) / TPR)          /* scores per work-item per block */

/* stab: per sequence {first token (b*T + t0), tokens}; btab: per block
 * {sequence, first row}.  q, o [.., H, *], k, v [.., Hk, *]: query head h
 * reads key/value head h / (H / Hk).  Row r of the block is handled by the
 * TPR work-items r*TPR .. r*TPR + TPR-1, each owning columns c, c+TPR, ... */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void softmax_fwd(__global const long *stab, __global const long *btab, __global const float *q,
                 __global const float *k, __global const float *v, __global float *o, int H,
                 int Hk, float scale)
{
    __local float lq[QB * KP], lk[BK * KP], lv[BK * V], ls[QB * BK];
    const int lid = get_local_id(0), r = lid / TPR, c = lid % TPR;
    const int g = get_group_id(0), h = get_group_id(1), kh = h / (H / Hk);
    const long n = btab[2 * g], i0 = btab[2 * g + 1];
    const long tok0 = stab[2 * n], len = stab[2 * n + 1];
    const int nq = (int)min((long)QB, len - i0);
    for (int e = lid; e < QB * K; e += WG) {
        const int rr = e / K, i = e % K;
        lq[rr * KP + i] = rr < nq ? q[((tok0 + i0 + rr) * H + h) * K + i] : 0.0f;
    }
    float acc[MV];
    for (int m = 0; m < MV; m++) acc[m] = 0.0f;
    float mx = -INFINITY, l = 0.0f;
    const long qi = i0 + r, kend = i0 + nq;
    for (long j0 = 0; j0 < kend; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous block is consumed */
        for (int e = lid; e < BK * K; e += WG) {
            const int jj = e / K, i = e % K;
            lk[jj * KP + i] = j0 + jj < kend ? k[((tok0 + j0 + jj) * Hk + kh) * K + i] : 0.0f;
        }
        for (int e = lid; e < BK * V; e += WG) {
            const int jj = e / V, i = e % V;
            lv[e] = j0 + jj < kend ? v[((tok0 + j0 + jj) * Hk + kh) * V + i] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int m = 0; m < MK; m++) {
            const int jj = c + TPR * m;
            if (jj < BK) {
                float s = 0.0f;
                for (int i = 0; i < K; i++) s += lq[r * KP + i] * lk[jj * KP + i];
                ls[r * BK + jj] = (j0 + jj <= qi && r < nq) ? s * scale : -INFINITY;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* online softmax of row r (each of its work-items alike) */
        float bm = mx;
        for (int jj = 0; jj < BK; jj++) bm = fmax(bm, ls[r * BK + jj]);
        const float corr = bm == -INFINITY ? 1.0f : exp(mx - bm);
        l *= corr;
        for (int m = 0; m < MV; m++) acc[m] *= corr;
        for (int jj = 0; jj < BK; jj++) {
            const float sj = ls[r * BK + jj];
            const float p = sj == -INFINITY ? 0.0f : exp(sj - bm);
            l += p;
            for (int m = 0; m < MV; m++) {
                const int col = c + TPR * m;
                if (col < V) acc[m] += p * lv[jj * V + col];
            }
        }
        mx = bm;
    }
    if (r < nq)
        for (int m = 0; m < MV; m++) {
            const int col = c + TPR * m;
            if (col < V) o[((tok0 + qi) * H + h) * V + col] = acc[m] / l;
        }
}

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
