/* avx512.h — private header of the hand-written AVX-512 kernels (kernels/avx512/).
 *
 * Inline helpers shared by the kernels whose algorithm is specific to the
 * ISA (threshold, threshold_backward, gpn_levels, gpn_probs, gpn_backward):
 *   ga_avx512_mask      tail mask of n lanes
 *   ga_avx512_gpn_logits, ga_avx512_argmax   the GPN logits / level of 16 keys
 * The streaming kernels are generic (kernels/simd/, against simd_avx512.h);
 * simd.h declares every ga_avx512_<op>.  All helpers read only inside the
 * stated ranges (masked tails) and need no alignment.  Summation orders
 * depend only on the sizes, never on pointer alignment, so results are
 * bitwise reproducible.  Compiled with -mavx512f/bw/vl/dq -mfma.
 */
#ifndef GA_AVX512_H
#define GA_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "simd.h" /* GA_SIMD_ISA = 2: declares ga_avx512_<op> for every kernel */

#define GA_AVX512_INLINE static inline __attribute__((always_inline))

/* ---- helpers ---- */

/* Mask of the first n lanes (n <= 0 -> none, n >= 16 -> all). */
GA_AVX512_INLINE __mmask16 ga_avx512_mask(int n)
{
    if (n <= 0)
        return 0;
    if (n >= 16)
        return 0xFFFF;
    return (__mmask16)((1u << n) - 1u);
}

/* GPN logits of the 16 keys i0..i0+15 (lanes in k; other lanes give junk):
 *   u_j = relu(P[j][i] + r[j])  (float add; max(0, x) keeps NaN and -0 like
 *                                the reference's "if (u < 0) u = 0")
 *   z_l = b2[l] + sum_j W2[l][j] u_j   for l < L
 * Float FMA, j in order (the order depends only on g, so results are
 * reproducible).  The reference sums in double, so a level can differ from
 * it only where two logits lie within a few float roundings of each other
 * (SPEC §5's boundary band; the tests keep their inputs out of it and test
 * exact ties separately).  An earlier version summed in double to match the
 * reference bitwise; it was 1.7x slower than the AVX2 kernel.
 * L is a constant at every call site. */
GA_AVX512_INLINE void ga_avx512_gpn_logits(const float *P, size_t ldp, const float *r,
                                   const float *W2, const float *b2, int i0,
                                   __mmask16 k, int g, const int L, __m512 z[8])
{
    for (int l = 0; l < L; l++)
        z[l] = _mm512_set1_ps(b2[l]);
    for (int j = 0; j < g; j++) {
        __m512 x = _mm512_add_ps(_mm512_maskz_loadu_ps(k, P + (size_t)j * ldp + i0),
                                 _mm512_set1_ps(r[j]));
        __m512 u = _mm512_max_ps(_mm512_setzero_ps(), x); /* x if x is NaN */
        for (int l = 0; l < L; l++)
            z[l] = _mm512_fmadd_ps(_mm512_set1_ps(W2[(size_t)l * g + j]), u, z[l]);
    }
}

/* Running strict '>' argmax from level 0 (a NaN logit never wins, a NaN z_0
 * keeps level 0).  Returns the levels as epi32 lanes and the best logit. */
GA_AVX512_INLINE __m512i ga_avx512_argmax(const __m512 z[8], const int L, __m512 *best)
{
    __m512 b = z[0];
    __m512i lvl = _mm512_setzero_si512();
    for (int l = 1; l < L; l++) {
        __mmask16 gt = _mm512_cmp_ps_mask(z[l], b, _CMP_GT_OQ);
        b = _mm512_mask_mov_ps(b, gt, z[l]);
        lvl = _mm512_mask_mov_epi32(lvl, gt, _mm512_set1_epi32(l));
    }
    *best = b;
    return lvl;
}

#endif
