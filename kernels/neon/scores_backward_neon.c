/* scores_backward_neon.c — backward of `scores` for one query, AArch64 NEON.
 *
 *   dq[j]    += scale * sum_i ds[i] * K[i][j]     (accum; dq may be NULL)
 *   dK[i][j] += scale * ds[i] * q[j]              (accum; dK may be NULL)
 * K [N][dh], q [dh], ds [N] -> dq [dh], dK [N][dh].
 *
 * dq: ga_neon_wsum_rows (lanes across j, 8 accumulators), added with one FMA.
 * dK: one axpy per row with w = scale * ds[i].
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

void ga_neon_scores_backward(const float *K, int N, int dh, const float *q,
                             float scale, const float *ds, float *dq, float *dK)
{
    if (dq)
        ga_neon_wsum_rows(K, (size_t)dh, NULL, N, ds, 1, dh, scale, 1, dq);
    if (dK)
        for (int i = 0; i < N; i++)
            ga_neon_axpy(dK + (size_t)i * dh, q, scale * ds[i], dh);
}
