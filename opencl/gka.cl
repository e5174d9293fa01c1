/* linattn - OpenCL C 1.2 kernel of Gated KalmaNet (gka), linattn_gka(3)
 * A.1-A.2: the token recurrence with the state in device memory, one
 * work-group of WG work-items per (sequence, head).  Built per (K, V).
 * Every barrier is in the kernel body and unconditional (see README.md). */

#define WG 256
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
