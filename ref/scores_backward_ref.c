/* scores_backward_ref.c — scalar reference of the backward of `scores`
 * for one query (s_i = scale * q . K[i] (+ bias)).
 *
 *   dq[j]    += scale * sum_i ds[i] * K[i][j]     (accum; dq may be NULL)
 *   dK[i][j] += scale * ds[i] * q[j]              (accum; dK may be NULL)
 * A key with ds[i] == 0 (padding) is excluded from dq: its K row (even NaN
 * or inf) is not used.
 * K [N][dh], q [dh], ds [N] -> dq [dh], dK [N][dh].
 * Sums in double, each output rounded to float once.
 */
#include "internal.h"

/* dq over the columns [j0, j1) (also the SIMD variants' exact fallback). */
void ga_ref_scores_backward_dq(const float *K, int N, int dh, int j0, int j1,
                               float scale, const float *ds, float *dq)
{
    for (int j = j0; j < j1; j++) {
        double acc = 0.0;
        for (int i = 0; i < N; i++)
            if (ds[i] != 0.0f)
                acc += (double)ds[i] * K[(size_t)i * dh + j];
        dq[j] = (float)(dq[j] + (double)scale * acc);
    }
}

void ga_ref_scores_backward(const float *K, int N, int dh, const float *q,
                            float scale, const float *ds, float *dq, float *dK)
{
    if (dq)
        ga_ref_scores_backward_dq(K, N, dh, 0, dh, scale, ds, dq);
    if (dK) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < dh; j++)
                dK[(size_t)i * dh + j] =
                    (float)(dK[(size_t)i * dh + j] + (double)scale * ds[i] * q[j]);
    }
}
