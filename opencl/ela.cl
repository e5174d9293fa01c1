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
