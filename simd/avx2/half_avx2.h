/* linattn - the AVX2/F16C conversions of eight lanes, shared by
 * half_avx2.c and the kernels that keep a 16-bit state in registers
 * (delta_avx2.c): bit for bit those of lib/half.c except where noted.
 * Compile with -mavx2 -mf16c. */
#ifndef LINATTN_HALF_AVX2_H
#define LINATTN_HALF_AVX2_H

#include <immintrin.h>

/* bf16 to float32: the bits shifted up (exact, NaN payloads kept). */
static inline __m256 linattn_bf16x8_in(__m128i h)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* float32 to bf16, round to nearest even by the scalar code's add; a NaN
 * keeps its upper half, made quiet when its kept payload is empty. */
static inline __m128i linattn_bf16x8_out(__m256i x)
{
    const __m256i hi = _mm256_srli_epi32(x, 16);
    /* round to nearest even: + 0x7fff + the lowest kept bit */
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)),
                                                   _mm256_and_si256(hi, _mm256_set1_epi32(1))),
                                  16);
    /* NaN: its upper half, made quiet when its kept payload is empty */
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
    const __m256i empty = _mm256_cmpeq_epi32(_mm256_and_si256(hi, _mm256_set1_epi32(0x7f)),
                                             _mm256_setzero_si256());
    const __m256i nr = _mm256_or_si256(hi, _mm256_and_si256(empty, _mm256_set1_epi32(0x40)));
    r = _mm256_blendv_epi8(r, nr, nan);
    /* 32-bit lanes (all below 2^16) to 16 bits: pack, then the two 64-bit
     * halves of each 128-bit lane in order */
    r = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xd8);
    return _mm256_castsi256_si128(r);
}

/* float32 to bf16 when no lane is a NaN: the rounding add alone. */
static inline __m128i linattn_bf16x8_out_num(__m256i x)
{
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb), 16);
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

/* float32 to f16 (vcvtps2ph: round to nearest even, exact subnormals,
 * overflow to Inf); NaN lanes need the scalar code (their payloads). */
static inline __m128i linattn_f16x8_out(__m256 x)
{
    return _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

#endif
