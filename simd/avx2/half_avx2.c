/* linattn - conversions between the 16-bit types and float32 with AVX2 and
 * F16C, eight elements at a time, bit for bit those of lib/half.c:
 * f16 by vcvtph2ps / vcvtps2ph (round to nearest even, exact subnormals),
 * bf16 by integer shifts and the same rounding add as the scalar code.
 * The hardware quiets signalling NaNs; a group of eight holding a NaN goes
 * through the scalar code instead, which keeps every payload.  Tails (n % 8) are scalar too. */
#include <immintrin.h>
#include "internal.h"

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
    for (; i + 8 <= n; i += 8) {
        const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(h, 16));
    }
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
            _mm_storeu_si128((__m128i *)(dst + i),
                             _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    linattn_f16_out_scalar(src + i, dst + i, n - i);
}

void linattn_bf16_out_avx2(const float *src, uint16_t *dst, size_t n)
{
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff),
                  abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000),
                  low = _mm256_set1_epi32(0x7f), quiet = _mm256_set1_epi32(0x40);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(src + i));
        const __m256i hi = _mm256_srli_epi32(x, 16);
        /* round to nearest even: + 0x7fff + the lowest kept bit */
        __m256i r = _mm256_srli_epi32(
            _mm256_add_epi32(_mm256_add_epi32(x, half), _mm256_and_si256(hi, one)), 16);
        /* NaN: its upper half, made quiet when its kept payload is empty */
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs), inf);
        const __m256i empty = _mm256_cmpeq_epi32(_mm256_and_si256(hi, low), _mm256_setzero_si256());
        const __m256i nr = _mm256_or_si256(hi, _mm256_and_si256(empty, quiet));
        r = _mm256_blendv_epi8(r, nr, nan);
        /* 32-bit lanes (all below 2^16) to 16 bits: pack, then the two
         * 64-bit halves of each 128-bit lane in order */
        r = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xd8);
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_castsi256_si128(r));
    }
    linattn_bf16_out_scalar(src + i, dst + i, n - i);
}
