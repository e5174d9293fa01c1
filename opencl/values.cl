/* linattn - OpenCL C 1.2 kernel of the value policy (lib/values.c): flag
 * buffers holding a value outside [lo, hi] (either end open; NaN always
 * fails).  One launch checks up to four buffers: group row get_group_id(1)
 * = b takes buffer xb with count nb and range rb = (lo, hi, lo_open,
 * hi_open); its work-items stride over it, and any that finds a culprit
 * sets flag[0] (some buffer is bad: the kernels that run next read it and
 * write nothing) and flag[1 + at + b]. */

static int any_bad(__global const float *x, long n, float4 r)
{
    int bad = 0;
    const int lo_open = r.z != 0.0f, hi_open = r.w != 0.0f;
    for (long i = get_global_id(0); i < n; i += get_global_size(0)) {
        const float e = x[i];
        const int okl = lo_open ? e > r.x : e >= r.x, okh = hi_open ? e < r.y : e <= r.y;
        bad |= !(okl && okh);
    }
    return bad;
}

__kernel void values_check(__global const float *x0, long n0, float4 r0,
                           __global const float *x1, long n1, float4 r1,
                           __global const float *x2, long n2, float4 r2,
                           __global const float *x3, long n3, float4 r3,
                           __global int *flag, int at)
{
    const int b = (int)get_group_id(1);
    const int bad = b == 0 ? any_bad(x0, n0, r0)
                  : b == 1 ? any_bad(x1, n1, r1)
                  : b == 2 ? any_bad(x2, n2, r2)
                           : any_bad(x3, n3, r3);
    if (bad) {
        atomic_or(flag, 1);
        atomic_or(flag + 1 + at + b, 1);
    }
}
