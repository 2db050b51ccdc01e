/* gpn_probs_avx2.c — GPN probabilities and levels (docs/SPEC.md §3, training), AVX2.
 *
 * As gpn_levels (u = relu(P[:,i] + r), z = W2 u + b2, levels[i] = running
 * strict-">" argmax from level 0), plus pi[l][i] = softmax_l(z):
 * mx = max_l z_l, e_l = exp(z_l - mx), pi_l = e_l / sum_l e_l
 * (a NaN logit makes every pi of that key NaN).  Returns the NaN flag.
 * P [g][ldp], r [g], W2 [L][g], b2 [L] -> pi [L][ldpi] (ldpi >= N),
 * levels [N];  1 <= L <= 8.
 *
 * Lanes run across keys, 16 per step (see ga_avx2_gpn_logits16); exp is
 * SLEEF's Sleef_expf8_u10avx2.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include <sleef.h>

#include "avx2.h"

/* pi of 8 keys (n valid) from their logits z[0..L): pi[l][0..n). */
GA_AVX2_INLINE void softmax8(__m256 *z, const int L, float *pi, size_t ldpi, int n)
{
    /* max_ps(z, mx) returns mx when z is NaN: NaN reaches pi via e. */
    __m256 mx = z[0];
    for (int l = 1; l < L; l++)
        mx = _mm256_max_ps(z[l], mx);
    __m256 sum = _mm256_setzero_ps();
    for (int l = 0; l < L; l++) {
        z[l] = Sleef_expf8_u10avx2(_mm256_sub_ps(z[l], mx));
        sum = _mm256_add_ps(sum, z[l]);
    }
    for (int l = 0; l < L; l++) {
        __m256 v = _mm256_div_ps(z[l], sum);
        if (n == 8)
            _mm256_storeu_ps(pi + (size_t)l * ldpi, v);
        else
            ga_avx2_store_tail(pi + (size_t)l * ldpi, n, v);
    }
}

GA_AVX2_INLINE int probs_L(const float *P, int ldp, const float *r,
                           const float *W2, const float *b2, int N, int g,
                           const int L, float *pi, int ldpi, uint8_t *levels)
{
    int nan = 0;
    for (int i = 0; i < N; i += 16) {
        int n = N - i < 16 ? N - i : 16;
        __m256 z[16];
        ga_avx2_gpn_logits16(P + i, (size_t)ldp, r, W2, b2, g, L, n, z);
        for (int half = 0; half < 2 && 8 * half < n; half++) {
            int nh = n - 8 * half < 8 ? n - 8 * half : 8;
            __m256 *zh = z + 8 * half;
            nan |= ga_avx2_any_nan8(zh, L, nh);
            ga_avx2_store_levels(levels + i + 8 * half, ga_avx2_argmax8(zh, L), nh);
            softmax8(zh, L, pi + i + 8 * half, (size_t)ldpi, nh);
        }
    }
    return nan;
}

int ga_avx2_gpn_probs(const float *P, int ldp, const float *r, const float *W2,
                      const float *b2, int N, int g, int L, float *pi, int ldpi,
                      uint8_t *levels)
{
    switch (L) {
    case 1: return probs_L(P, ldp, r, W2, b2, N, g, 1, pi, ldpi, levels);
    case 2: return probs_L(P, ldp, r, W2, b2, N, g, 2, pi, ldpi, levels);
    case 3: return probs_L(P, ldp, r, W2, b2, N, g, 3, pi, ldpi, levels);
    case 4: return probs_L(P, ldp, r, W2, b2, N, g, 4, pi, ldpi, levels);
    case 5: return probs_L(P, ldp, r, W2, b2, N, g, 5, pi, ldpi, levels);
    case 6: return probs_L(P, ldp, r, W2, b2, N, g, 6, pi, ldpi, levels);
    case 7: return probs_L(P, ldp, r, W2, b2, N, g, 7, pi, ldpi, levels);
    default: return probs_L(P, ldp, r, W2, b2, N, g, 8, pi, ldpi, levels);
    }
}
