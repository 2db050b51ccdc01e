/* gpn_levels_avx512.c — GPN level decision for one query (inference), AVX-512.
 *
 * Per key i: u = relu(P[:,i] + r), z = W2 u + b2 (L logits), levels[i] =
 * argmax z (running strict '>' from level 0: ties to the lower level, a NaN
 * logit never wins, a NaN z_0 keeps 0).  Returns nonzero iff any logit is NaN.
 * P [g][ldp], r [g], W2 [L][g], b2 [L] -> levels [N] (uint8); 1 <= L <= 8.
 *
 * Lanes run across 16 keys (P is transposed).  The logits are accumulated in
 * double exactly like the reference (see ga_avx512_gpn_logits), so the levels
 * are bitwise those of ga_ref_gpn_levels.  L is made a compile-time constant
 * by a switch so that the 2L accumulators stay in registers.  No exp.
 * Alignment: none required.  Bytes read past the end: 0 (masked tails).
 */
#include "avx512.h"

GA_AVX512_INLINE int levels_run(const float *P, int ldp, const float *r,
                            const float *W2, const float *b2, int N, int g,
                            const int L, uint8_t *levels)
{
    __mmask16 nan = 0;
    for (int i0 = 0; i0 < N; i0 += 16) {
        __mmask16 k = ga_avx512_mask(N - i0);
        __m512 z[8], best;
        ga_avx512_gpn_logits(P, (size_t)ldp, r, W2, b2, i0, k, g, L, z);
        for (int l = 0; l < L; l++)
            nan |= _mm512_mask_cmp_ps_mask(k, z[l], z[l], _CMP_UNORD_Q);
        __m512i lvl = ga_avx512_argmax(z, L, &best);
        _mm512_mask_cvtepi32_storeu_epi8(levels + i0, k, lvl);
    }
    return nan != 0;
}

int ga_avx512_gpn_levels(const float *P, int ldp, const float *r, const float *W2,
                         const float *b2, int N, int g, int L, uint8_t *levels)
{
    switch (L) {
    case 1: return levels_run(P, ldp, r, W2, b2, N, g, 1, levels);
    case 2: return levels_run(P, ldp, r, W2, b2, N, g, 2, levels);
    case 3: return levels_run(P, ldp, r, W2, b2, N, g, 3, levels);
    case 4: return levels_run(P, ldp, r, W2, b2, N, g, 4, levels);
    case 5: return levels_run(P, ldp, r, W2, b2, N, g, 5, levels);
    case 6: return levels_run(P, ldp, r, W2, b2, N, g, 6, levels);
    case 7: return levels_run(P, ldp, r, W2, b2, N, g, 7, levels);
    default: return levels_run(P, ldp, r, W2, b2, N, g, 8, levels); /* L == 8 */
    }
}
