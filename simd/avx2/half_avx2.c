/* linattn - conversions between the 16-bit types and float32 with AVX2 and
 * F16C, eight elements at a time, bit for bit those of lib/half.c:
 * f16 by vcvtph2ps / vcvtps2ph (round to nearest even, exact subnormals),
 * bf16 by integer shifts and the same rounding add as the scalar code.
 * The hardware quiets signalling NaNs; a group of eight holding a NaN goes
 * through the scalar code instead, which keeps every payload.  Tails (n % 8) are scalar too. */
#include <immintrin.h>
#include "internal.h"
#include "half_avx2.h"

void linattn_f16_in_avx2(const uint16_t *src, float *dst, size_t n)
{
    const __m128i abs = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        if (_mm_movemask_epi8(_mm_cmpgt_epi16(_mm_and_si128(h, abs), inf)))
            linattn_f16_in_scalar(src + i, dst + i, 8); /* a NaN */
        else
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    linattn_f16_in_scalar(src + i, dst + i, n - i);
}

void linattn_bf16_in_avx2(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, linattn_bf16x8_in(_mm_loadu_si128((const __m128i *)(src + i))));
    linattn_bf16_in_scalar(src + i, dst + i, n - i);
}

void linattn_f16_out_avx2(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(src + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)))
            linattn_f16_out_scalar(src + i, dst + i, 8); /* a NaN */
        else
            _mm_storeu_si128((__m128i *)(dst + i), linattn_f16x8_out(x));
    }
    linattn_f16_out_scalar(src + i, dst + i, n - i);
}

void linattn_bf16_out_avx2(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         linattn_bf16x8_out(_mm256_loadu_si256((const __m256i *)(src + i))));
    linattn_bf16_out_scalar(src + i, dst + i, n - i);
}
