/* linattn - OpenCL C 1.2: the completion of a summarised segment on its
 * device (linattn_segment(3)): o += oA S, a [len,K] x [K,V] product per
 * (sequence b, output head r):
 *   o [Bt,len,Ho,V] += oA [Bt,len,Ho,K] . S [Bt,H,K,V] (head r / (Ho/H))
 * all dense.  A work-group of 256 computes a 64 x 64 tile of o (tokens by
 * value columns), 4 x 4 per work-item, over K in slices of 16 staged in
 * local memory; the tile is staged again in local memory and added to o by
 * a loop whose bounds are the tile's valid part (no per-item guard). */

#define TK 16
#define LDA (TK + 1)
#define LDO 65

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void seg_addmul(__global float *o, __global const float *oA, __global const float *S, long len,
                int Ho, int H, int K, int V)
{
    __local float la[64 * LDA], lb[TK * 64], lo[64 * LDO];
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const long i0 = (long)get_group_id(1) * 64;
    const int j0 = get_group_id(0) * 64;
    const long br = get_group_id(2); /* b * Ho + r */
    const long b = br / Ho;
    const int r = (int)(br % Ho), h = r / (Ho / H);
    __global const float *a = oA + (b * len * Ho + r) * (long)K;    /* row i: + i Ho K */
    __global const float *s = S + (b * H + h) * (long)K * V;         /* row k: + k V */
    __global float *c = o + (b * len * Ho + r) * (long)V;            /* row i: + i Ho V */
    float acc[4][4];
    for (int x = 0; x < 4; x++)
        for (int y = 0; y < 4; y++) acc[x][y] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TK) {
        for (int e = lid; e < 64 * TK; e += 256) {
            const int ri = e / TK, kk = e % TK;
            const long i = i0 + ri;
            la[ri * LDA + kk] = i < len && k0 + kk < K ? a[i * Ho * K + k0 + kk] : 0.0f;
            const int kb = e / 64, j = e % 64;
            lb[kb * 64 + j] = k0 + kb < K && j0 + j < V ? s[(long)(k0 + kb) * V + j0 + j] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; kk++) {
            float xa[4], yb[4];
            for (int x = 0; x < 4; x++) xa[x] = la[(ty + 16 * x) * LDA + kk];
            for (int y = 0; y < 4; y++) yb[y] = lb[kk * 64 + tx + 16 * y];
            for (int x = 0; x < 4; x++)
                for (int y = 0; y < 4; y++) acc[x][y] = mad(xa[x], yb[y], acc[x][y]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int x = 0; x < 4; x++)
        for (int y = 0; y < 4; y++) lo[(ty + 16 * x) * LDO + tx + 16 * y] = acc[x][y];
    barrier(CLK_LOCAL_MEM_FENCE);
    const int nr = (int)(len - i0 < 64 ? len - i0 : 64), nc = V - j0 < 64 ? V - j0 : 64;
    for (int e = lid; e < nr * nc; e += 256) {
        const int ri = e / nc, j = e % nc;
        c[(i0 + ri) * Ho * V + j0 + j] += lo[ri * LDO + j];
    }
}
