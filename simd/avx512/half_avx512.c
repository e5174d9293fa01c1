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
        const __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, src + i));
        _mm512_mask_storeu_epi32(dst + i, k, _mm512_slli_epi32(h, 16));
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
            _mm256_mask_storeu_epi16(
                dst + i, k, _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

void linattn_bf16_out_avx512(const float *src, uint16_t *dst, size_t n)
{
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff),
                  abs = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000),
                  low = _mm512_set1_epi32(0x7f), quiet = _mm512_set1_epi32(0x40);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : tail(n - i);
        const __m512i x = _mm512_maskz_loadu_epi32(k, src + i);
        const __m512i hi = _mm512_srli_epi32(x, 16);
        /* round to nearest even: + 0x7fff + the lowest kept bit */
        __m512i r = _mm512_srli_epi32(
            _mm512_add_epi32(_mm512_add_epi32(x, half), _mm512_and_si512(hi, one)), 16);
        /* NaN: its upper half, made quiet when its kept payload is empty */
        const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(x, abs), inf);
        const __mmask16 empty = _mm512_testn_epi32_mask(hi, low);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_mask_or_epi32(hi, empty, hi, quiet));
        _mm256_mask_storeu_epi16(dst + i, k, _mm512_cvtepi32_epi16(r));
    }
}
