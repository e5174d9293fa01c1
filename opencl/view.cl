/* linattn - OpenCL C 1.2: copy between two layouts of one 4-D shape (the
 * views of linattn(3)): dst[doff + i . ds] = src[soff + i . ss] for every
 * index i of shape (C order, leading dimensions of size 1 when the tensor
 * has fewer), n = the element count; from16/to16 convert from or to a
 * 16-bit type on the way (bf = 1: bfloat16 by shifts, else binary16 by
 * vload_half/vstore_half_rte: core OpenCL 1.2, no extension; a NaN rounded
 * by the library's rule, as vstore_half_rte may give any NaN).  flat: both
 * layouts are dense, element e at offset + e (no index arithmetic: the
 * 64-bit divisions of at() cost more than the copy on a GPU). */

static long at(long e, long4 shape, long4 s)
{
    const long i3 = e % shape.w;
    e /= shape.w;
    const long i2 = e % shape.z;
    e /= shape.z;
    const long i1 = e % shape.y, i0 = e / shape.y;
    return i0 * s.x + i1 * s.y + i2 * s.z + i3 * s.w;
}

#define SRC(e) (soff + (flat ? (e) : at((e), shape, ss)))
#define DST(e) (doff + (flat ? (e) : at((e), shape, ds)))

__kernel void view_copy(__global const float *src, long soff, long4 ss, __global float *dst,
                        long doff, long4 ds, long4 shape, long n, int flat)
{
    for (long e = get_global_id(0); e < n; e += get_global_size(0)) dst[DST(e)] = src[SRC(e)];
}

__kernel void view_from16(__global const ushort *src, long soff, long4 ss, __global float *dst,
                          long doff, long4 ds, long4 shape, long n, int flat, int bf)
{
    for (long e = get_global_id(0); e < n; e += get_global_size(0)) {
        const long i = SRC(e);
        dst[DST(e)] = bf ? as_float((uint)src[i] << 16) : vload_half(i, (__global const half *)src);
    }
}

__kernel void view_to16(__global const float *src, long soff, long4 ss, __global ushort *dst,
                        long doff, long4 ds, long4 shape, long n, int flat, int bf)
{
    for (long e = get_global_id(0); e < n; e += get_global_size(0)) {
        const float x = src[SRC(e)];
        const long j = DST(e);
        if (bf) {
            const uint u = as_uint(x);
            const uint h = u >> 16;
            dst[j] = (u & 0x7fffffffu) > 0x7f800000u ? (ushort)((h & 0x7fu) ? h : (h | 0x40u))
                                                     : (ushort)((u + 0x7fffu + (h & 1u)) >> 16);
        } else if (isnan(x)) { /* the library's NaN: upper payload, or a quiet one */
            const uint u = as_uint(x), m = (u >> 13) & 0x3ffu;
            dst[j] = (ushort)(((u >> 16) & 0x8000u) | 0x7c00u | (m ? m : 0x200u));
        } else {
            vstore_half_rte(x, j, (__global half *)dst);
        }
    }
}
