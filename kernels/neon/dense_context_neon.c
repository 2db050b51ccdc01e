/* dense_context_neon.c — dense context (the dense baseline), AArch64 NEON.
 *
 *   c[j] = sum_i a[i] * V[i][j]      V [N][dh], a [N] -> c [dh]  (N == 0 -> c = 0)
 *
 * ga_neon_wsum_rows: lanes across j, 16 columns per pass with 8 accumulators
 * (two keys in flight).
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

void ga_neon_dense_context(const float *V, int N, int dh, const float *a, float *c)
{
    ga_neon_wsum_rows(V, (size_t)dh, NULL, N, a, 1, dh, 1.0f, 0, c);
}
