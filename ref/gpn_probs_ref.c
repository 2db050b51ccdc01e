/* gpn_probs_ref.c — scalar reference of the GPN probabilities (training, docs/SPEC.md §3).
 *
 * Per key i: the logits z_l exactly as in gpn_levels_ref.c, then
 *   pi[l][i] = exp(z_l - max z) / sum_k exp(z_k - max z)   (in double)
 *   levels[i] = argmax z (running strict '>', ties to the lower level).
 * A NaN logit makes that key's pi all NaN.
 * P [g][ldp], r [g], W2 [L][g], b2 [L] -> pi [L][ldpi] (ldpi >= N), levels [N].
 * Returns nonzero iff any logit of any key is NaN.
 */
#include <math.h>

#include "internal.h"

int ga_ref_gpn_probs(const float *P, int ldp, const float *r, const float *W2,
                     const float *b2, int N, int g, int L, float *pi, int ldpi,
                     uint8_t *levels)
{
    int any_nan = 0;
    for (int i = 0; i < N; i++) {
        float z[GA_MAX_LEVELS];
        int key_nan = 0;
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
                key_nan = 1;
        }
        any_nan |= key_nan;

        int best = 0;
        for (int l = 1; l < L; l++)
            if (z[l] > z[best])
                best = l;
        levels[i] = (uint8_t)best;

        if (key_nan) {
            for (int l = 0; l < L; l++)
                pi[(size_t)l * ldpi + i] = NAN;
            continue;
        }
        /* numerically stable softmax: subtract the max logit */
        double zmax = z[0];
        for (int l = 1; l < L; l++)
            if (z[l] > zmax)
                zmax = z[l];
        double e[GA_MAX_LEVELS];
        double sum = 0.0;
        for (int l = 0; l < L; l++) {
            e[l] = exp((double)z[l] - zmax);
            sum += e[l];
        }
        for (int l = 0; l < L; l++)
            pi[(size_t)l * ldpi + i] = (float)(e[l] / sum);
    }
    return any_nan;
}
