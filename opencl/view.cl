/* linattn - OpenCL C 1.2: copy between two layouts of one 4-D shape (the
 * views of linattn(3)): dst[doff + i . ds] = src[soff + i . ss] for every
 * index i of shape (C order, leading dimensions of size 1 when the tensor
 * has fewer), n = the element count. */
__kernel void view_copy(__global const float *src, long soff, long4 ss, __global float *dst,
                        long doff, long4 ds, long4 shape, long n)
{
    for (long e = get_global_id(0); e < n; e += get_global_size(0)) {
        long r = e;
        const long i3 = r % shape.w;
        r /= shape.w;
        const long i2 = r % shape.z;
        r /= shape.z;
        const long i1 = r % shape.y, i0 = r / shape.y;
        dst[doff + i0 * ds.x + i1 * ds.y + i2 * ds.z + i3 * ds.w] =
            src[soff + i0 * ss.x + i1 * ss.y + i2 * ss.z + i3 * ss.w];
    }
}
