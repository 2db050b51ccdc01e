/* dense_context_ref.c — scalar reference of the dense context.
 *
 *   c[j] = sum_i a[i] * V[i][j]      V [N][dh], a [N] -> c [dh]  (N == 0 -> c = 0)
 * A row with a[i] == 0 (padding) is excluded: its V row (even NaN or inf)
 * does not influence c.
 * Sums in double, rounded to float once: a finite exact result stays finite
 * (the SIMD variants fall back to this code when their float sums overflow).
 */
#include "internal.h"

void ga_ref_dense_context(const float *V, int N, int dh, const float *a, float *c)
{
    for (int j = 0; j < dh; j++) {
        double acc = 0.0;
        for (int i = 0; i < N; i++)
            if (a[i] != 0.0f)
                acc += (double)a[i] * V[(size_t)i * dh + j];
        c[j] = (float)acc;
    }
}
