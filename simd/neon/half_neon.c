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
#include "half_neon.h"

void linattn_f16_in_neon(const uint16_t *src, float *dst, size_t n)
{
    const uint16x4_t abs = vdup_n_u16(0x7fff), inf = vdup_n_u16(0x7c00);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint16x4_t h = vld1_u16(src + i);
        if (vmaxv_u16(vcgt_u16(vand_u16(h, abs), inf)))
            linattn_f16_in_scalar(src + i, dst + i, 4); /* a NaN */
        else
            vst1q_f32(dst + i, linattn_f16x4_in(h));
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
            vst1_u16(dst + i, linattn_f16x4_out(x));
    }
    linattn_f16_out_scalar(src + i, dst + i, n - i);
}

void linattn_bf16_out_neon(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(dst + i, linattn_bf16x4_out(vld1q_f32(src + i)));
    linattn_bf16_out_scalar(src + i, dst + i, n - i);
}
