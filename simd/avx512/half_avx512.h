/* linattn - the AVX-512 conversions of sixteen lanes, shared by
 * half_avx512.c and the kernels that keep a 16-bit state in registers
 * (delta_avx512.c): bit for bit those of lib/half.c except where noted.
 * Compile with -mavx512f -mavx512vl -mavx512bw. */
#ifndef LINATTN_HALF_AVX512_H
#define LINATTN_HALF_AVX512_H

#include <immintrin.h>

/* bf16 to float32: the bits shifted up (exact, NaN payloads kept). */
static inline __m512 linattn_bf16x16_in(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* float32 to bf16, round to nearest even by the scalar code's add; a NaN
 * keeps its upper half, made quiet when its kept payload is empty. */
static inline __m256i linattn_bf16x16_out(__m512i x)
{
    const __m512i hi = _mm512_srli_epi32(x, 16);
    /* round to nearest even: + 0x7fff + the lowest kept bit */
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)),
                                                   _mm512_and_si512(hi, _mm512_set1_epi32(1))),
                                  16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(
        _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    const __mmask16 empty = _mm512_testn_epi32_mask(hi, _mm512_set1_epi32(0x7f));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_mask_or_epi32(hi, empty, hi, _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

/* float32 to bf16 when no lane is a NaN: the rounding add alone. */
static inline __m256i linattn_bf16x16_out_num(__m512i x)
{
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    return _mm512_cvtepi32_epi16(
        _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)), lsb), 16));
}

/* float32 to f16 (vcvtps2ph: round to nearest even, exact subnormals,
 * overflow to Inf); NaN lanes need the scalar code (their payloads). */
static inline __m256i linattn_f16x16_out(__m512 x)
{
    return _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

#endif
