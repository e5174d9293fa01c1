/* linattn - 16-bit element types (linattn(3), HALF PRECISION): conversions
 * to and from float32 in portable C, bit by bit.  To a half type: round to
 * nearest, ties to even; overflow gives Inf; subnormals exact; NaN stays NaN
 * with its sign and the upper bits of its payload (quiet when they are all
 * zero), so that every 16-bit pattern survives a trip through float32. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static uint32_t bits_of(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float float_of(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

uint16_t linattn_f32_to_f16(float f)
{
    const uint32_t x = bits_of(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) { /* NaN: its upper payload, or a quiet one if that is empty */
        const uint32_t m = (ax >> 13) & 0x3ffu;
        return (uint16_t)(sign | 0x7c00u | (m ? m : 0x200u));
    }
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520: Inf (ties to even) */
    if (ax < 0x38800000u) { /* below 2^-14: a multiple of 2^-24, rounded by the add */
        const float t = float_of(ax) + 0.5f; /* 0.5's ulp is 2^-24 */
        return (uint16_t)(sign | (bits_of(t) - 0x3f000000u));
    }
    /* rebias the exponent (127 -> 15), round 13 mantissa bits to even */
    const uint32_t r = ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

float linattn_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return float_of(sign | 0x7f800000u | (m << 13));
    if (e) return float_of(sign | ((e + 112u) << 23) | (m << 13));
    return float_of(sign | bits_of((float)m * 0x1p-24f)); /* zero or subnormal: exact */
}

uint16_t linattn_f32_to_bf16(float f)
{
    const uint32_t x = bits_of(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) { /* NaN: as for f16 */
        const uint32_t h = x >> 16;
        return (uint16_t)(h & 0x7fu ? h : h | 0x40u);
    }
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float linattn_bf16_to_f32(uint16_t h) { return float_of((uint32_t)h << 16); }

size_t linattn_dtype_size(linattn_dtype dtype)
{
    switch (dtype) {
    case LINATTN_F32: return 4;
    case LINATTN_F16:
    case LINATTN_BF16: return 2;
    }
    return 0;
}

const char *linattn_dtype_name(linattn_dtype dtype)
{
    switch (dtype) {
    case LINATTN_F32: return "f32";
    case LINATTN_F16: return "f16";
    case LINATTN_BF16: return "bf16";
    }
    return NULL;
}

/* The scalar conversion slots of the kernel table (lib/scalar.c); the
 * vector ones (simd/<isa>/half_<isa>.c) give the same bits. */
void linattn_f16_in_scalar(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = linattn_f16_to_f32(src[i]);
}

void linattn_bf16_in_scalar(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = linattn_bf16_to_f32(src[i]);
}

void linattn_f16_out_scalar(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = linattn_f32_to_f16(src[i]);
}

void linattn_bf16_out_scalar(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = linattn_f32_to_bf16(src[i]);
}

/* n elements of src (dtype s) to float32, or float32 to dst (dtype d) */
void linattn_to_f32(const linattn_kernels *k, const void *src, linattn_dtype s, float *dst,
                    size_t n)
{
    if (s == LINATTN_F32) memcpy(dst, src, n * sizeof(float));
    else (s == LINATTN_F16 ? k->f16_in : k->bf16_in)(src, dst, n);
}

void linattn_from_f32(const linattn_kernels *k, const float *src, void *dst, linattn_dtype d,
                      size_t n)
{
    if (d == LINATTN_F32) memcpy(dst, src, n * sizeof(float));
    else (d == LINATTN_F16 ? k->f16_out : k->bf16_out)(src, dst, n);
}

/* linattn_convert's table: the best ISA of this CPU (or LINATTN_ISA's),
 * chosen at its first call like a context's. */
static pthread_once_t cvt_once = PTHREAD_ONCE_INIT;
static linattn_kernels cvt_kern;
static int cvt_rc;
static char cvt_msg[200]; /* why LINATTN_ISA cannot be used */

static void cvt_select(void)
{
    const char *isa = getenv("LINATTN_ISA");
    if (isa && !strcmp(isa, "ref")) isa = NULL;
    cvt_rc = linattn_kernels_select(&cvt_kern, isa);
    if (cvt_rc) snprintf(cvt_msg, sizeof cvt_msg, "%s", linattn_last_error());
}

int linattn_convert(const void *src, linattn_dtype sd, void *dst, linattn_dtype dd, size_t n)
{
    if (!linattn_dtype_size(sd))
        return linattn_fail(LINATTN_EINVAL, "src_dtype: unknown element type %d", (int)sd);
    if (!linattn_dtype_size(dd))
        return linattn_fail(LINATTN_EINVAL, "dst_dtype: unknown element type %d", (int)dd);
    if (!n) return LINATTN_OK;
    if (!src) return linattn_fail(LINATTN_ENULL, "src: NULL");
    if (!dst) return linattn_fail(LINATTN_ENULL, "dst: NULL");
    pthread_once(&cvt_once, cvt_select);
    if (cvt_rc)
        return linattn_fail(cvt_rc, "LINATTN_ISA: %s", cvt_msg);
    if (sd == dd) {
        memcpy(dst, src, n * linattn_dtype_size(sd));
        return LINATTN_OK;
    }
    float buf[256];
    const size_t es = linattn_dtype_size(sd), ed = linattn_dtype_size(dd);
    for (size_t i = 0; i < n; i += 256) { /* via float32: exact from a half type */
        const size_t m = n - i < 256 ? n - i : 256;
        linattn_to_f32(&cvt_kern, (const char *)src + i * es, sd, buf, m);
        linattn_from_f32(&cvt_kern, buf, (char *)dst + i * ed, dd, m);
    }
    return LINATTN_OK;
}
