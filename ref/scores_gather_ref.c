/* scores_gather_ref.c — scalar reference of the gathered scores: the
 * `scores` reference (ref/scores_ref.c) for the keys idx[0..count).
 *
 *   s[k] = scale * (q . K[idx[k]]) + (bias ? bias[idx[k]] : 0)   (double, one rounding)
 *   padded key (bias -inf): exactly -inf; returns max_k s[k] (NaN if any is
 *   NaN, -inf if count == 0).
 * K [*][dh], q [dh], bias [*] or NULL, idx [count] -> s [count].
 */
#include <math.h>

#include "internal.h"

float ga_ref_scores_gather(const float *K, int dh, const int32_t *idx, int count,
                           const float *q, float scale, const float *bias, float *s)
{
    float max = -INFINITY;
    int any_nan = 0;
    for (int k = 0; k < count; k++) {
        const int i = idx[k];
        float m;
        ga_ref_scores(K + (size_t)i * dh, 1, dh, q, 1, dh, scale, bias ? bias + i : NULL,
                      s + k, 1, &m);
        if (isnan(s[k]))
            any_nan = 1;
        else if (s[k] > max)
            max = s[k];
    }
    return any_nan ? NAN : max;
}
