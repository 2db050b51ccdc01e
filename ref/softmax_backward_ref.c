/* softmax_backward_ref.c — scalar reference of the softmax backward.
 *
 *   ds[i] = a[i] * (da[i] - sum_j a[j] * da[j])
 * A key with a[i] == 0 (padding) is excluded: ds[i] = 0 and its da[i] (even
 * NaN or inf) is not part of the sum.
 * a, da [N] -> ds [N] (overwritten).  The sum is in double.
 */
#include "internal.h"

/* sum_j a[j] da[j] over a[j] != 0 (also the SIMD variants' exact fallback). */
double ga_ref_softmax_backward_dot(const float *a, const float *da, int N)
{
    double dot = 0.0;
    for (int j = 0; j < N; j++)
        if (a[j] != 0.0f)
            dot += (double)a[j] * da[j];
    return dot;
}

void ga_ref_softmax_backward(const float *a, const float *da, int N, float *ds)
{
    double dot = ga_ref_softmax_backward_dot(a, da, N);
    for (int i = 0; i < N; i++)
        ds[i] = a[i] == 0.0f ? 0.0f : (float)((double)a[i] * ((double)da[i] - dot));
}
