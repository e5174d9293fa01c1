/* linattn - OpenCL C 1.2 kernels of Gated KalmaNet (gka), linattn_gka(3):
 * gka_seq, the token recurrence with the state in device memory, one
 * work-group of WG work-items per (sequence, head); the chunk form in two
 * kernels, gka_chunk_walk (the states entering each chunk, a sequential walk
 * over the chunks of a window per (column tile, sequence, head)) and
 * gka_chunk_out (the Chebyshev iterations on all tokens of a chunk at once
 * and the readout, per (chunk, sequence, head)).  Built per (K, V, CH).
 * Every barrier is in the kernel body and unconditional (see README.md). */

#define WG 256
#ifndef CH
#define CH 32 /* tokens per chunk (the host picks it to fit local memory) */
#endif
#ifndef TW
#define TW 32 /* state columns per work-group of gka_chunk_walk (the host passes it) */
#endif
#if K % 4 == 0 /* gka_chunk_out's register tiles of the iterates: CW columns */
#define CW 4
#else
#define CW 1
#endif
#define LDX (K + 1) /* row stride of gka_chunk_out's lX: rows in distinct banks */
#define NCG (K / CW)                 /* column groups (the host keeps NCG <= WG) */
#define NRG (WG / NCG)               /* row groups */
#define RPI ((CH + NRG - 1) / NRG)   /* rows per work-item */
#define MI ((K + WG - 1) / WG) /* solution entries per work-item */

/* stab: per sequence {first token (b*T + t), tokens}.  Skk [N,H,K,K] and
 * Skv [N,H,K,V] are the state, updated in place. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gka_seq(__global const long *stab, __global const float *q, __global const float *k,
             __global const float *v, __global const float *g, __global const float *beta,
             __global const float *alpha, int H, int has_g, int has_beta, int has_alpha,
             __global float *Skk, __global float *Skv, __global float *o,
             __global const float *omega, int iters, float scale, float ridge)
{
    __local float lq[K], lk[K], lx[K], lxp[K], lv[V], red[WG];
    const int lid = get_local_id(0);
    const int n = get_group_id(0), h = get_group_id(1);
    const long tok0 = stab[2 * n], len = stab[2 * n + 1];
    __global float *Hs = Skk + ((long)n * H + h) * K * K;
    __global float *Us = Skv + ((long)n * H + h) * K * V;
    for (long t = 0; t < len; t++) {
        const long row = (tok0 + t) * H + h;
        for (int i = lid; i < K; i += WG) {
            lq[i] = q[row * K + i];
            lk[i] = k[row * K + i];
        }
        for (int j = lid; j < V; j += WG) lv[j] = v[row * V + j];
        const float b = has_beta ? beta[row] : 1.0f, bb = b * b;
        const float gam = has_g ? exp(g[row]) : 1.0f;
        const float al = has_alpha ? alpha[row] : 1.0f;
        barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
        /* H = gamma H + kh kh^T (and its squared norm), U = gamma U + kh vh^T */
        float ss = 0.0f;
        for (int e = lid; e < K * K; e += WG) {
            const float hv = gam * Hs[e] + bb * lk[e / K] * lk[e % K];
            Hs[e] = hv;
            ss += hv * hv;
        }
        for (int e = lid; e < K * V; e += WG) Us[e] = gam * Us[e] + bb * lk[e / V] * lv[e % V];
        red[lid] = ss;
        for (int w = WG / 2; w > 0; w /= 2) {
            barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
            if (lid < w) red[lid] += red[lid + w];
        }
        barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
        const float f = sqrt(red[0]);
        const int zero = f < 1e-30f; /* zero Hessian: x = 0 */
        const float lam = ridge * f, tau = zero ? 0.0f : 2.0f / ((1.0f + 2.0f * ridge) * f);
        for (int i = lid; i < K; i += WG) {
            lxp[i] = 0.0f;
            lx[i] = tau * lq[i];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int it = 0; it < (zero ? 0 : iters); it++) {
            const float w = omega[it];
            float xn[MI];
            for (int m = 0; m < MI; m++) {
                const int i = lid + WG * m;
                if (i >= K) break;
                float r = lam * lx[i] - lq[i];
                for (int j = 0; j < K; j++) r = mad(Hs[j * K + i], lx[j], r); /* H symmetric */
                xn[m] = w * (lx[i] - tau * r) + (1.0f - w) * lxp[i];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int m = 0; m < MI; m++) {
                const int i = lid + WG * m;
                if (i >= K) break;
                lxp[i] = lx[i];
                lx[i] = xn[m];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        /* q~ = (1 - alpha) q + alpha x, then o = scale U^T q~ */
        for (int i = lid; i < K; i += WG) lxp[i] = (1.0f - al) * lq[i] + al * lx[i];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int j = lid; j < V; j += WG) {
            float acc = 0.0f;
            for (int i = 0; i < K; i++) acc = mad(lxp[i], Us[i * V + j], acc);
            o[row * V + j] = scale * acc;
        }
        barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
    }
}

/* ---- the chunk form (the math: lib/gka_chunk.c, linattn_gka(3)) ----------
 * St holds, per (sequence, head) and chunk of the window, the state entering
 * the chunk: Hc [K,K] then Uc [K,V].  Rows of a chunk past the sequence's end
 * read a clamped row and are zeroed through beta (kh = vh = 0) and q = 0. */

/* the row of token t of the chunk starting at token t0, clamped to the last */
#define ROWC(t) ((tok0 + t0 + min((int)(t), c - 1)) * (long)H + h)

/* The states: work-group (tile, sh) owns TW columns of Hc (tiles below
 * ceil(K/TW)) or of Uc; Skk/Skv hold the running state (h0 in, hT out). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gka_chunk_walk(__global const long *stab, __global const float *k,
                    __global const float *v, __global const float *g,
                    __global const float *beta, int H, int has_g, int has_beta,
                    __global float *Skk, __global float *Skv, __global float *St, int w0, int W)
{
    __local float lkh[CH * K], lw[CH * TW], lG[CH], lbt[CH];
    const int lid = get_local_id(0), blk = get_group_id(0), sh = get_group_id(1);
    const int n = sh / H, h = sh % H;
    const long tok0 = stab[2 * n], len = stab[2 * n + 1];
    const int nch = (int)((len + CH - 1) / CH), nbk = (K + TW - 1) / TW;
    const int isu = blk >= nbk, ld = isu ? V : K;
    const int j0 = (isu ? blk - nbk : blk) * TW, tw = min(TW, ld - j0);
    __global float *S = isu ? Skv + (long)sh * K * V : Skk + (long)sh * K * K;
    __global const float *src = isu ? v : k;
    const long stoff = isu ? (long)K * K : 0;
    const int cend = min(w0 + W, nch);
    for (int ci = w0; ci < cend; ci++) {
        const long t0 = (long)ci * CH;
        const int c = (int)min((long)CH, len - t0);
        for (int r = lid; r < CH; r += WG) {
            lG[r] = r < c && has_g ? g[ROWC(r)] : 0.0f;
            lbt[r] = r >= c ? 0.0f : has_beta ? beta[ROWC(r)] : 1.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int x = lid; x < 1; x += WG) {
            float acc = 0.0f;
            for (int r = 0; r < CH; r++) lG[r] = acc += lG[r];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const float Gl = lG[CH - 1]; /* G of the chunk's last token (g = 0 past it) */
        for (int e = lid; e < CH * K; e += WG) {
            const int r = e / K, i = e % K;
            lkh[e] = exp(Gl - lG[r]) * lbt[r] * k[ROWC(r) * K + i];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int e = lid; e < CH * TW; e += WG) {
            const int r = e / TW, j = e % TW;
            lw[e] = (j < tw ? lbt[r] : 0.0f) * src[ROWC(r) * ld + j0 + min(j, tw - 1)];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        __global float *Sc = St + ((long)sh * W + (ci - w0)) * ((long)K * (K + V)) + stoff;
        const float eg = exp(Gl);
        for (int e = lid; e < K * tw; e += WG) {
            const int i = e / tw, j = e % tw, a = i * ld + j0 + j;
            const float s = S[a];
            float acc = eg * s;
            Sc[a] = s;
            for (int r = 0; r < CH; r++) acc = mad(lkh[r * K + i], lw[r * TW + j], acc);
            S[a] = acc;
        }
        barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
    }
}

/* One chunk (group 0: chunk of the window, group 1: sequence * H + head):
 * |H_r|_F of every row, the Chebyshev iterations on all rows at once, the
 * mixed query and the readout o = scale (diag(e^G) Qm Uc + ((Qm Kh') o D) Vh). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void gka_chunk_out(__global const long *stab, __global const float *q, __global const float *k,
                   __global const float *v, __global const float *g, __global const float *beta,
                   __global const float *alpha, int H, int has_g, int has_beta, int has_alpha,
                   __global const float *St, __global float *o, __global const float *omega,
                   int iters, float scale, float ridge, int w0, int W)
{
    __local float lX[CH * LDX], lB[CH * CH], lD[CH * CH], lP[CH * CH];
    __local float lG[CH], leG[CH], lbt[CH], lal[CH], llam[CH], ltau[CH], lz[CH], red[WG];
    const int lid = get_local_id(0), wi = get_group_id(0), sh = get_group_id(1);
    const int n = sh / H, h = sh % H;
    const long tok0 = stab[2 * n], len = stab[2 * n + 1];
    const int ci = w0 + wi;
    if ((long)ci * CH >= len) return; /* the whole group: past this sequence's chunks */
    const long t0 = (long)ci * CH;
    const int c = (int)min((long)CH, len - t0);
    __global const float *Hc = St + ((long)sh * W + wi) * ((long)K * (K + V));
    __global const float *Uc = Hc + K * K;
#define QV(r, i) ((r) < c ? q[ROWC(r) * K + (i)] : 0.0f)
    for (int r = lid; r < CH; r += WG) {
        lG[r] = r < c && has_g ? g[ROWC(r)] : 0.0f;
        lbt[r] = r >= c ? 0.0f : has_beta ? beta[ROWC(r)] : 1.0f;
        lal[r] = r < c && has_alpha ? alpha[ROWC(r)] : 1.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int x = lid; x < 1; x += WG) {
        float acc = 0.0f;
        for (int r = 0; r < CH; r++) {
            lG[r] = acc += lG[r];
            leG[r] = exp(acc); /* here: a loop of its own stored nothing on PoCL */
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < CH * CH; e += WG) {
        const int r = e / CH, s = e % CH;
        lD[e] = s <= r ? exp(lG[r] - lG[s]) : 0.0f;
    }
    /* a barrier after every store loop: PoCL lost stores of work-items with no
     * iteration in loops that followed one another without one */
    barrier(CLK_LOCAL_MEM_FENCE);
    /* Gamma o Gamma into lB, Y = Kh Hc into lX, |Hc|^2 */
    for (int e = lid; e < CH * CH; e += WG) {
        const int r = e / CH, s = e % CH;
        const long ar = ROWC(r) * K, as = ROWC(s) * K;
        float acc = 0.0f;
        for (int j = 0; j < K; j++) acc = mad(k[ar + j], k[as + j], acc);
        acc *= lbt[r] * lbt[s];
        lB[e] = acc * acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < CH * K; e += WG) {
        const int r = e / K, i = e % K;
        const long ar = ROWC(r) * K;
        float acc = 0.0f;
        for (int j = 0; j < K; j++) acc = mad(k[ar + j], Hc[j * K + i], acc);
        lX[r * LDX + i] = lbt[r] * acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float ss = 0.0f;
    for (int e = lid; e < K * K; e += WG) ss = mad(Hc[e], Hc[e], ss);
    red[lid] = ss;
    for (int w = WG / 2; w > 0; w /= 2) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < w) red[lid] += red[lid + w];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* P = D (Gamma o Gamma), z_s = kh_s' Hc kh_s */
    for (int e = lid; e < CH * CH; e += WG) {
        const int r = e / CH, s = e % CH;
        float acc = 0.0f;
        for (int t = 0; t <= r; t++) acc = mad(lD[r * CH + t], lB[t * CH + s], acc);
        lP[e] = acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = lid; s < CH; s += WG) {
        const long as = ROWC(s) * K;
        float acc = 0.0f;
        for (int i = 0; i < K; i++) acc = mad(lX[s * LDX + i], k[as + i], acc);
        lz[s] = lbt[s] * acc;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float hc2 = red[0];
    for (int r = lid; r < CH; r += WG) {
        float cross = 0.0f, intra = 0.0f;
        for (int s = 0; s <= r; s++) {
            cross = mad(lD[r * CH + s], lz[s], cross);
            intra = mad(lD[r * CH + s], lP[r * CH + s], intra);
        }
        const float f2 = leG[r] * leG[r] * hc2 + 2.0f * leG[r] * cross + intra;
        const float f = sqrt(max(f2, 0.0f));
        llam[r] = ridge * f;
        ltau[r] = f < 1e-30f ? 0.0f : 2.0f / ((1.0f + 2.0f * ridge) * f);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* the iterates in register tiles: work-item (rg, cg) owns rows rg + NRG m
     * (m < RPI) and columns cg CW .. cg CW + CW - 1 of X; items past NCG NRG and
     * rows past CH compute a clamped copy and store nothing */
    const int cg = lid % NCG, rg = lid / NCG, i0 = cg * CW, rgc = min(rg, NRG - 1);
    float xp[RPI * CW], xn[RPI * CW];
    for (int a = 0; a < RPI * CW; a++) xp[a] = 0.0f;
    for (int m = 0; m < RPI; m++) {
        const int r = rg + NRG * m;
        if (r >= CH || rg >= NRG) break;
        for (int u = 0; u < CW; u++) lX[r * LDX + i0 + u] = ltau[r] * QV(r, i0 + u);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int it = 0; it < iters; it++) {
        const float w = omega[it];
        /* B = (X Kh') o D */
        for (int e = lid; e < CH * CH; e += WG) {
            const int s = e / CH, r = e % CH; /* neighbours: one key row, X rows */
            const long as = ROWC(s) * K;
            float acc = 0.0f;
            for (int j = 0; j < K; j++) acc = mad(lX[r * LDX + j], k[as + j], acc);
            lB[r * CH + s] = acc * lbt[s] * lD[r * CH + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* R = diag(e^G) X Hc + B Kh + diag(lambda) X - Q, then the step */
        float acc[RPI * CW];
        for (int a = 0; a < RPI * CW; a++) acc[a] = 0.0f;
        for (int j = 0; j < K; j++) {
            float hv[CW];
            for (int u = 0; u < CW; u++) hv[u] = Hc[j * K + i0 + u];
            for (int m = 0; m < RPI; m++) {
                const float x = lX[min(rgc + NRG * m, CH - 1) * LDX + j];
                for (int u = 0; u < CW; u++) acc[m * CW + u] = mad(x, hv[u], acc[m * CW + u]);
            }
        }
        for (int m = 0; m < RPI; m++) {
            const float eg = leG[min(rgc + NRG * m, CH - 1)];
            for (int u = 0; u < CW; u++) acc[m * CW + u] *= eg;
        }
        for (int s = 0; s < CH; s++) { /* B is zero above its diagonal */
            float kv[CW];
            for (int u = 0; u < CW; u++) kv[u] = lbt[s] * k[ROWC(s) * K + i0 + u];
            for (int m = 0; m < RPI; m++) {
                const float b = lB[min(rgc + NRG * m, CH - 1) * CH + s];
                for (int u = 0; u < CW; u++) acc[m * CW + u] = mad(b, kv[u], acc[m * CW + u]);
            }
        }
        for (int m = 0; m < RPI; m++) {
            const int r = min(rgc + NRG * m, CH - 1);
            for (int u = 0; u < CW; u++) {
                const int a = m * CW + u, e = r * LDX + i0 + u;
                const float res = acc[a] + llam[r] * lX[e] - QV(r, i0 + u);
                xn[a] = w * (lX[e] - ltau[r] * res) + (1.0f - w) * xp[a];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int m = 0; m < RPI; m++) {
            const int r = rg + NRG * m;
            if (r >= CH || rg >= NRG) break;
            for (int u = 0; u < CW; u++) {
                xp[m * CW + u] = lX[r * LDX + i0 + u];
                lX[r * LDX + i0 + u] = xn[m * CW + u];
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    /* Qm = Q + diag(alpha) (X - Q), B = (Qm Kh') o D, the readout */
    for (int e = lid; e < CH * K; e += WG) {
        const int r = e / K, i = e % K;
        const float qv = QV(r, i);
        lX[r * LDX + i] = qv + lal[r] * (lX[r * LDX + i] - qv);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < CH * CH; e += WG) {
        const int s = e / CH, r = e % CH;
        const long as = ROWC(s) * K;
        float acc = 0.0f;
        for (int j = 0; j < K; j++) acc = mad(lX[r * LDX + j], k[as + j], acc);
        lB[r * CH + s] = acc * lbt[s] * lD[r * CH + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < c * V; e += WG) {
        const int r = e / V, j = e % V;
        float a1 = 0.0f, a2 = 0.0f;
        for (int i = 0; i < K; i++) a1 = mad(lX[r * LDX + i], Uc[i * V + j], a1);
        for (int s = 0; s <= r; s++) a2 = mad(lB[r * CH + s] * lbt[s], v[ROWC(s) * V + j], a2);
        o[ROWC(r) * V + j] = scale * (leG[r] * a1 + a2);
    }
#undef QV
}
