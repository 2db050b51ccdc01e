/* scores_packed_ref.c — scalar reference of the scores over keys packed
 * across lanes (docs/SPEC.md §7).
 *
 *   s[i] = scale * sum_d q[d] * Kp[i/16][d][i%16] + (bias ? bias[i] : 0)
 * in double, rounded once; a padded key (bias -inf) gets exactly -inf.
 * Returns max_i s[i] (NaN if any is NaN, -inf if N == 0).
 * Kp [ceil(N/16)][dh][16], q [dh], bias [N] or NULL -> s [N].
 * The SIMD variants also call ga_ref_scores_packed_range to recompute keys
 * whose float result is not finite.
 */
#include <math.h>

#include "internal.h"

void ga_ref_scores_packed_range(const float *Kp, int dh, const float *q, float scale,
                                const float *bias, int i0, int i1, float *s)
{
    for (int i = i0; i < i1; i++) {
        const float *col = Kp + (size_t)(i / 16) * dh * 16 + i % 16;
        double dot = 0.0;
        for (int d = 0; d < dh; d++)
            dot += (double)q[d] * col[(size_t)d * 16];
        double v = (double)scale * dot;
        if (bias)
            v += bias[i];
        if (bias && bias[i] == -INFINITY)
            v = -INFINITY;
        s[i] = (float)v;
    }
}

float ga_ref_scores_packed(const float *Kp, int N, int dh, const float *q, float scale,
                           const float *bias, float *s)
{
    ga_ref_scores_packed_range(Kp, dh, q, scale, bias, 0, N, s);
    float max = -INFINITY;
    int any_nan = 0;
    for (int i = 0; i < N; i++) {
        if (isnan(s[i]))
            any_nan = 1;
        else if (s[i] > max)
            max = s[i];
    }
    return any_nan ? NAN : max;
}
