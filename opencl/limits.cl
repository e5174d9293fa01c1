/* linattn - kernels that measure what an OpenCL device can do: a tiled
 * float32 matrix product (C = A B, N x N, N a multiple of 64) and a copy.
 * They set the reference points linattn-bench reports against. */

#define TK 16
#define LDX (TK + 1)

__kernel __attribute__((reqd_work_group_size(256, 1, 1)))
void limits_sgemm(__global const float *A, __global const float *B, __global float *C, int N)
{
    __local float la[64 * LDX], lb[TK * 64];
    const int lid = get_local_id(0), ty = lid / 16, tx = lid % 16;
    const int r0 = get_group_id(1) * 64, c0 = get_group_id(0) * 64;
    float acc[4][4];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) acc[a][b] = 0.0f;
    for (int k0 = 0; k0 < N; k0 += TK) {
        for (int e = lid; e < 64 * TK; e += 256) {
            const int r = e / TK, kk = e % TK;
            la[r * LDX + kk] = A[(long)(r0 + r) * N + k0 + kk];
            const int kb = e / 64, j = e % 64;
            lb[kb * 64 + j] = B[(long)(k0 + kb) * N + c0 + j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; kk++) {
            float xa[4], yb[4];
            for (int a = 0; a < 4; a++) xa[a] = la[(ty + 16 * a) * LDX + kk];
            for (int b = 0; b < 4; b++) yb[b] = lb[kk * 64 + tx + 16 * b];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) acc[a][b] = mad(xa[a], yb[b], acc[a][b]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) C[(long)(r0 + ty + 16 * a) * N + c0 + tx + 16 * b] = acc[a][b];
}

__kernel void limits_copy(__global const float4 *src, __global float4 *dst, long n)
{
    for (long i = get_global_id(0); i < n; i += get_global_size(0)) dst[i] = src[i];
}
