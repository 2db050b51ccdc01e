/* softmax_backward_ref.c — scalar reference of the softmax backward.
 *
 *   ds[i] = a[i] * (da[i] - sum_j a[j] * da[j])
 * A key with a[i] == 0 (padding) is excluded: ds[i] = 0 and its da[i] (even
 * NaN or inf) is not part of the sum.
 * a, da [N] -> ds [N] (overwritten).  The sum is in double.
 *
 * Products of floats are finite in double and N of them cannot overflow, so
 * the plain sum is finite iff every a[j] * da[j] is; then a zero weight adds
 * exactly 0 and gives ds = 0 by itself, and the exclusion (a second pass)
 * is needed only when some da is inf or NaN.
 */
#include <math.h>

#include "internal.h"

static double masked_dot(const float *a, const float *da, int N)
{
    double dot = 0.0;
    for (int j = 0; j < N; j++)
        if (a[j] != 0.0f)
            dot += (double)a[j] * da[j];
    return dot;
}

static double plain_dot(const float *a, const float *da, int N)
{
    double dot = 0.0;
    for (int j = 0; j < N; j++)
        dot += (double)a[j] * da[j];
    return dot;
}

/* sum_j a[j] da[j] over a[j] != 0 (also the SIMD variants' exact fallback). */
double ga_ref_softmax_backward_dot(const float *a, const float *da, int N)
{
    double dot = plain_dot(a, da, N);
    return isfinite(dot) ? dot : masked_dot(a, da, N);
}

void ga_ref_softmax_backward(const float *a, const float *da, int N, float *ds)
{
    double dot = plain_dot(a, da, N);
    if (isfinite(dot)) {
        for (int i = 0; i < N; i++)
            ds[i] = (float)((double)a[i] * ((double)da[i] - dot));
        return;
    }
    dot = masked_dot(a, da, N);
    for (int i = 0; i < N; i++)
        ds[i] = a[i] == 0.0f ? 0.0f : (float)((double)a[i] * ((double)da[i] - dot));
}
