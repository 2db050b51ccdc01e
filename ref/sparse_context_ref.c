/* sparse_context_ref.c — scalar reference of the gathered (sparse) context.
 *
 *   c[j] = scale * sum_{k < count} p[k] * V[idx[k]][j];   count == 0 -> c = 0
 * V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh].
 * Sums in double, rounded to float once.
 */
#include "internal.h"

void ga_ref_sparse_context(const float *V, int dh, const int32_t *idx,
                           const float *p, int count, float scale, float *c)
{
    for (int j = 0; j < dh; j++) {
        if (count == 0) {
            c[j] = 0.0f;
            continue;
        }
        double acc = 0.0;
        for (int k = 0; k < count; k++)
            acc += (double)p[k] * V[(size_t)idx[k] * dh + j];
        c[j] = (float)((double)scale * acc);
    }
}
