/* linattn - the Advanced SIMD conversions of four lanes, shared by
 * half_neon.c and the kernels that keep a 16-bit state in registers
 * (delta_neon.c): bit for bit those of lib/half.c except where noted. */
#ifndef LINATTN_HALF_NEON_H
#define LINATTN_HALF_NEON_H

#include <arm_neon.h>

/* f16 to float32 (fcvtl: exact; quiets a signalling NaN). */
static inline float32x4_t linattn_f16x4_in(uint16x4_t h)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

/* bf16 to float32: the bits shifted up (exact, NaN payloads kept). */
static inline float32x4_t linattn_bf16x4_in(uint16x4_t h)
{
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

/* float32 to f16 (fcvtn: round to nearest even under the default FPCR);
 * NaN lanes need the scalar code (their payloads). */
static inline uint16x4_t linattn_f16x4_out(float32x4_t x)
{
    return vreinterpret_u16_f16(vcvt_f16_f32(x));
}

/* float32 to bf16, round to nearest even by the scalar code's add; a NaN
 * keeps its upper half, made quiet when its kept payload is empty. */
static inline uint16x4_t linattn_bf16x4_out(float32x4_t f)
{
    const uint32x4_t x = vreinterpretq_u32_f32(f);
    /* round to nearest even: the upper half of x + 0x7fff + the lowest kept bit */
    const uint32x4_t bias = vaddq_u32(vdupq_n_u32(0x7fff), vandq_u32(vshrq_n_u32(x, 16), vdupq_n_u32(1)));
    const uint16x4_t r = vaddhn_u32(x, bias);
    const uint16x4_t hi = vshrn_n_u32(x, 16);
    const uint16x4_t nr = vorr_u16(hi, vand_u16(vceq_u16(vand_u16(hi, vdup_n_u16(0x7f)), vdup_n_u16(0)),
                                                vdup_n_u16(0x40)));
    const uint16x4_t nan = vmovn_u32(vcgtq_u32(vandq_u32(x, vdupq_n_u32(0x7fffffff)),
                                               vdupq_n_u32(0x7f800000)));
    return vbsl_u16(nan, nr, r);
}

#endif
