/* linattn - conversions between the 16-bit types and float32 with AArch64
 * Advanced SIMD, four or eight elements at a time, bit for bit those of
 * lib/half.c: f16 by fcvtl / fcvtn (round to nearest even under the
 * default FPCR, exact subnormals), bf16 by shifts (shll; addhn rounds to
 * nearest even with the same add as the scalar code).  The hardware quiets
 * signalling NaNs; a group holding a NaN goes through the scalar code
 * instead, which keeps every payload.  Tails are
 * scalar too. */
#include <arm_neon.h>
#include "internal.h"

void linattn_f16_in_neon(const uint16_t *src, float *dst, size_t n)
{
    const uint16x4_t abs = vdup_n_u16(0x7fff), inf = vdup_n_u16(0x7c00);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint16x4_t h = vld1_u16(src + i);
        if (vmaxv_u16(vcgt_u16(vand_u16(h, abs), inf)))
            linattn_f16_in_scalar(src + i, dst + i, 4); /* a NaN */
        else
            vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(h)));
    }
    linattn_f16_in_scalar(src + i, dst + i, n - i);
}

void linattn_bf16_in_neon(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t h = vld1q_u16(src + i);
        vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
        vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
    }
    linattn_bf16_in_scalar(src + i, dst + i, n - i);
}

void linattn_f16_out_neon(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t x = vld1q_f32(src + i);
        if (vminvq_u32(vceqq_f32(x, x)) == 0)
            linattn_f16_out_scalar(src + i, dst + i, 4); /* a NaN */
        else
            vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(x)));
    }
    linattn_f16_out_scalar(src + i, dst + i, n - i);
}

void linattn_bf16_out_neon(const float *src, uint16_t *dst, size_t n)
{
    const uint32x4_t one = vdupq_n_u32(1), half = vdupq_n_u32(0x7fff),
                     abs = vdupq_n_u32(0x7fffffff), inf = vdupq_n_u32(0x7f800000);
    const uint16x4_t low = vdup_n_u16(0x7f), quiet = vdup_n_u16(0x40);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32x4_t x = vreinterpretq_u32_f32(vld1q_f32(src + i));
        /* round to nearest even: the upper half of x + 0x7fff + the lowest kept bit */
        const uint32x4_t bias = vaddq_u32(half, vandq_u32(vshrq_n_u32(x, 16), one));
        const uint16x4_t r = vaddhn_u32(x, bias);
        /* NaN: its upper half, made quiet when its kept payload is empty */
        const uint16x4_t hi = vshrn_n_u32(x, 16);
        const uint16x4_t nr = vorr_u16(hi, vand_u16(vceq_u16(vand_u16(hi, low), vdup_n_u16(0)), quiet));
        const uint16x4_t nan = vmovn_u32(vcgtq_u32(vandq_u32(x, abs), inf));
        vst1_u16(dst + i, vbsl_u16(nan, nr, r));
    }
    linattn_bf16_out_scalar(src + i, dst + i, n - i);
}
