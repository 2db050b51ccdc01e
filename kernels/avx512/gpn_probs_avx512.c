/* gpn_probs_avx512.c — GPN probabilities and levels (training), AVX-512.
 *
 * Per key i: the logits z exactly as in gpn_levels (bitwise those of the
 * reference), levels[i] = argmax z, and pi[l][i] = exp(z_l - max z) /
 * sum_k exp(z_k - max z) (stable softmax, float, SLEEF
 * Sleef_expf16_u10avx512f).  A NaN logit makes that key's pi all NaN (it
 * propagates through the sum).  Returns nonzero iff any logit is NaN.
 * P [g][ldp], r [g], W2 [L][g], b2 [L] -> pi [L][ldpi], levels [N]; 1 <= L <= 8.
 *
 * Lanes run across 16 keys; L is a compile-time constant via the switch.
 * Alignment: none required.  Bytes read past the end: 0 (masked tails).
 */
#include <sleef.h>

#include "avx512.h"

GA_AVX512_INLINE int probs_run(const float *P, int ldp, const float *r,
                           const float *W2, const float *b2, int N, int g,
                           const int L, float *pi, int ldpi, uint8_t *levels)
{
    __mmask16 nan = 0;
    for (int i0 = 0; i0 < N; i0 += 16) {
        __mmask16 k = ga_avx512_mask(N - i0);
        __m512 z[8], e[8], best;
        ga_avx512_gpn_logits(P, (size_t)ldp, r, W2, b2, i0, k, g, L, z);
        for (int l = 0; l < L; l++)
            nan |= _mm512_mask_cmp_ps_mask(k, z[l], z[l], _CMP_UNORD_Q);
        __m512i lvl = ga_avx512_argmax(z, L, &best);
        _mm512_mask_cvtepi32_storeu_epi8(levels + i0, k, lvl);

        /* best is the max logit (z_0 if NaN, so NaN keys stay NaN) */
        __m512 sum = _mm512_setzero_ps();
        for (int l = 0; l < L; l++) {
            e[l] = Sleef_expf16_u10avx512f(_mm512_sub_ps(z[l], best));
            sum = _mm512_add_ps(sum, e[l]);
        }
        for (int l = 0; l < L; l++)
            _mm512_mask_storeu_ps(pi + (size_t)l * ldpi + i0, k,
                                  _mm512_div_ps(e[l], sum));
    }
    return nan != 0;
}

int ga_avx512_gpn_probs(const float *P, int ldp, const float *r, const float *W2,
                        const float *b2, int N, int g, int L, float *pi, int ldpi,
                        uint8_t *levels)
{
    switch (L) {
    case 1: return probs_run(P, ldp, r, W2, b2, N, g, 1, pi, ldpi, levels);
    case 2: return probs_run(P, ldp, r, W2, b2, N, g, 2, pi, ldpi, levels);
    case 3: return probs_run(P, ldp, r, W2, b2, N, g, 3, pi, ldpi, levels);
    case 4: return probs_run(P, ldp, r, W2, b2, N, g, 4, pi, ldpi, levels);
    case 5: return probs_run(P, ldp, r, W2, b2, N, g, 5, pi, ldpi, levels);
    case 6: return probs_run(P, ldp, r, W2, b2, N, g, 6, pi, ldpi, levels);
    case 7: return probs_run(P, ldp, r, W2, b2, N, g, 7, pi, ldpi, levels);
    default: return probs_run(P, ldp, r, W2, b2, N, g, 8, pi, ldpi, levels);
    }
}
