/* dense_context_ref.c — scalar reference of the dense context.
 *
 *   c[j] = sum_i a[i] * V[i][j]      V [N][dh], a [N] -> c [dh]  (N == 0 -> c = 0)
 * Sums in double, rounded to float once.
 */
#include "internal.h"

void ga_ref_dense_context(const float *V, int N, int dh, const float *a, float *c)
{
    for (int j = 0; j < dh; j++) {
        double acc = 0.0;
        for (int i = 0; i < N; i++)
            acc += (double)a[i] * V[(size_t)i * dh + j];
        c[j] = (float)acc;
    }
}
