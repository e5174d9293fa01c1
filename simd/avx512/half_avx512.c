/* linattn - conversions between the 16-bit types and float32 with AVX-512
 * (F, BW, VL), sixteen elements at a time, bit for bit those of
 * lib/half.c: f16 by vcvtph2ps / vcvtps2ph (round to nearest even, exact
 * subnormals), bf16 by integer shifts and the same rounding add as the
 * scalar code (not AVX512_BF16's vcvtneps2bf16, which flushes subnormal
 * inputs to zero).  The hardware quiets signalling NaNs; a group of
 * sixteen holding a NaN goes through the scalar code instead, which keeps
 * every payload.  Tails are masked. */
#include <immintrin.h>
#include "internal.h"
#include "half_avx512.h"

static __mmask16 tail(size_t m) { return (__mmask16)((1u << m) - 1u); }

void linattn_f16_in_avx512(const uint16_t *src, float *dst, size_t n)
{
    const __m256i abs = _mm256_set1_epi16(0x7fff), inf = _mm256_set1_epi16(0x7c00);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : tail(n - i);
        const __m256i h = _mm256_maskz_loadu_epi16(k, src + i);
        if (_mm256_mask_cmpgt_epi16_mask(k, _mm256_and_si256(h, abs), inf))
            linattn_f16_in_scalar(src + i, dst + i, n - i < 16 ? n - i : 16); /* a NaN */
        else
            _mm512_mask_storeu_ps(dst + i, k, _mm512_cvtph_ps(h));
    }
}

void linattn_bf16_in_avx512(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : tail(n - i);
        _mm512_mask_storeu_ps(dst + i, k, linattn_bf16x16_in(_mm256_maskz_loadu_epi16(k, src + i)));
    }
}

void linattn_f16_out_avx512(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : tail(n - i);
        const __m512 x = _mm512_maskz_loadu_ps(k, src + i);
        if (_mm512_mask_cmp_ps_mask(k, x, x, _CMP_UNORD_Q))
            linattn_f16_out_scalar(src + i, dst + i, n - i < 16 ? n - i : 16); /* a NaN */
        else
            _mm256_mask_storeu_epi16(dst + i, k, linattn_f16x16_out(x));
    }
}

void linattn_bf16_out_avx512(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : tail(n - i);
        _mm256_mask_storeu_epi16(dst + i, k,
                                 linattn_bf16x16_out(_mm512_maskz_loadu_epi32(k, src + i)));
    }
}
