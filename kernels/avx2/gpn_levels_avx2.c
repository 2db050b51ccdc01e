/* gpn_levels_avx2.c — GPN level choice per key (docs/SPEC.md §3, inference), AVX2.
 *
 * Per key i:  u = relu(P[:,i] + r)  (g values),  z = W2 u + b2  (L logits),
 *             levels[i] = argmax_l z_l, running strict ">" from level 0, so
 *             ties go to the lower level and a NaN logit never wins.
 * Returns nonzero iff any logit of any key is NaN.
 * P [g][ldp], r [g], W2 [L][g], b2 [L] -> levels [N];  1 <= L <= 8.
 *
 * Lanes run across keys, 16 keys (two vectors, one cache line of each P row)
 * per step: for each j two loads of P[j][i..], adds, maxes and 2 L FMAs into
 * the logit accumulators.  The kernel body is inlined once per value of L so
 * the accumulators live in registers.
 * relu is max(0, x) with x as the second operand, so a NaN in P or r
 * propagates into the logits (and the NaN flag).
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

GA_AVX2_INLINE int levels_L(const float *P, int ldp, const float *r,
                            const float *W2, const float *b2, int N, int g,
                            const int L, uint8_t *levels)
{
    int nan = 0;
    for (int i = 0; i < N; i += 16) {
        int n = N - i < 16 ? N - i : 16;
        __m256 z[16];
        ga_avx2_gpn_logits16(P + i, (size_t)ldp, r, W2, b2, g, L, n, z);
        nan |= ga_avx2_any_nan8(z, L, n);
        ga_avx2_store_levels(levels + i, ga_avx2_argmax8(z, L), n < 8 ? n : 8);
        if (n > 8) {
            nan |= ga_avx2_any_nan8(z + 8, L, n - 8);
            ga_avx2_store_levels(levels + i + 8, ga_avx2_argmax8(z + 8, L), n - 8);
        }
    }
    return nan;
}

int ga_avx2_gpn_levels(const float *P, int ldp, const float *r, const float *W2,
                       const float *b2, int N, int g, int L, uint8_t *levels)
{
    switch (L) {
    case 1: return levels_L(P, ldp, r, W2, b2, N, g, 1, levels);
    case 2: return levels_L(P, ldp, r, W2, b2, N, g, 2, levels);
    case 3: return levels_L(P, ldp, r, W2, b2, N, g, 3, levels);
    case 4: return levels_L(P, ldp, r, W2, b2, N, g, 4, levels);
    case 5: return levels_L(P, ldp, r, W2, b2, N, g, 5, levels);
    case 6: return levels_L(P, ldp, r, W2, b2, N, g, 6, levels);
    case 7: return levels_L(P, ldp, r, W2, b2, N, g, 7, levels);
    default: return levels_L(P, ldp, r, W2, b2, N, g, 8, levels);
    }
}
