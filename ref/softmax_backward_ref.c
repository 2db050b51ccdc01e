/* softmax_backward_ref.c — scalar reference of the softmax backward.
 *
 *   ds[i] = a[i] * (da[i] - sum_j a[j] * da[j])
 * a, da [N] -> ds [N] (overwritten).  The sum is in double.
 */
#include "internal.h"

void ga_ref_softmax_backward(const float *a, const float *da, int N, float *ds)
{
    double dot = 0.0;
    for (int j = 0; j < N; j++)
        dot += (double)a[j] * da[j];
    for (int i = 0; i < N; i++)
        ds[i] = (float)((double)a[i] * ((double)da[i] - dot));
}
