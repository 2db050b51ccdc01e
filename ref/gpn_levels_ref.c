/* gpn_levels_ref.c — scalar reference of the GPN level decision (docs/SPEC.md §3).
 *
 * Per key i:
 *   u_j = relu(P[j][i] + r[j])           (float sum, then relu; NaN stays NaN)
 *   z_l = b2[l] + sum_j W2[l][j] * u_j   (accumulated in double, rounded to float)
 *   levels[i] = argmax_l z_l, a running strict '>' from level 0, so ties go to
 *               the lower level, a NaN logit never wins and a NaN z_0 keeps 0.
 * P [g][ldp], r [g], W2 [L][g], b2 [L] -> levels [N]; 1 <= L <= 8.
 * Returns nonzero iff any logit of any key is NaN.
 */
#include <math.h>

#include "internal.h"

int ga_ref_gpn_levels(const float *P, int ldp, const float *r, const float *W2,
                      const float *b2, int N, int g, int L, uint8_t *levels)
{
    int any_nan = 0;
    for (int i = 0; i < N; i++) {
        float z[GA_MAX_LEVELS];
        for (int l = 0; l < L; l++) {
            double acc = b2[l];
            for (int j = 0; j < g; j++) {
                float u = P[(size_t)j * ldp + i] + r[j];
                if (u < 0.0f)
                    u = 0.0f; /* relu; a NaN u is kept (propagates) */
                acc += (double)W2[(size_t)l * g + j] * u;
            }
            z[l] = (float)acc;
            if (isnan(z[l]))
                any_nan = 1;
        }
        int best = 0;
        for (int l = 1; l < L; l++)
            if (z[l] > z[best])
                best = l;
        levels[i] = (uint8_t)best;
    }
    return any_nan;
}
