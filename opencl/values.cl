/* linattn - OpenCL C 1.2 kernel of the value policy (lib/values.c): flag
 * a buffer holding a value outside [lo, hi] (either end open; NaN always
 * fails).  Work-items stride over the buffer; flag[at] gets 1 if any did. */

__kernel void values_check(__global const float *x, long n, float lo, float hi, int lo_open,
                           int hi_open, __global int *flag, int at)
{
    int bad = 0;
    for (long i = get_global_id(0); i < n; i += get_global_size(0)) {
        const float e = x[i];
        const int okl = lo_open ? e > lo : e >= lo, okh = hi_open ? e < hi : e <= hi;
        bad |= !(okl && okh);
    }
    if (bad) atomic_or(flag + at, 1);
}
