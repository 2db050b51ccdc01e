/* sparse_context_neon.c — gathered (sparse) context, AArch64 NEON.
 *
 *   c[j] = scale * sum_{k < count} p[k] * V[idx[k]][j];   count == 0 -> c = 0
 * V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh].
 *
 * ga_neon_wsum_rows: lanes across j, 16 columns per pass with 8 accumulators
 * (two kept keys in flight), scale applied once at the end.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

void ga_neon_sparse_context(const float *V, int dh, const int32_t *idx,
                            const float *p, int count, float scale, float *c)
{
    if (count == 0) { /* c = 0 even when scale is inf (1/Z with Z == 0) */
        for (int j = 0; j < dh; j++)
            c[j] = 0.0f;
        return;
    }
    ga_neon_wsum_rows(V, (size_t)dh, idx, count, p, 1, dh, scale, 0, c);
}
