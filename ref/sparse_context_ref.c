/* sparse_context_ref.c — scalar reference of the gathered (sparse) context.
 *
 *   c[j] = scale * sum_{k < count} p[k] * V[idx[k]][j];   count == 0 -> c = 0
 * A term with p[k] == 0 is excluded: its V row (even NaN or inf) does not
 * influence c.
 * V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh].
 * Sums in double, rounded to float once: a finite exact result stays finite
 * (the SIMD variants fall back to this code when their float sums overflow).
 */
#include <math.h>

#include "internal.h"

/* A zero-weight term adds exactly 0 to a finite sum, so the exclusion (the
 * test in the loop) is needed only when the plain sum is not finite (a
 * zero weight times an inf/NaN V element: double products of floats and
 * their sums do not overflow). */
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
        if (!isfinite(acc)) {
            acc = 0.0;
            for (int k = 0; k < count; k++)
                if (p[k] != 0.0f)
                    acc += (double)p[k] * V[(size_t)idx[k] * dh + j];
        }
        c[j] = (float)((double)scale * acc);
    }
}
