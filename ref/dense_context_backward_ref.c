/* dense_context_backward_ref.c — scalar reference of the backward of
 * dense_context.
 *
 *   dV[i][j] += a[i] * dc[j]      (accum; dV may be NULL)
 *   ga[i]     = V[i] . dc         (overwritten; ga may be NULL)
 * V, dV [N][dh], a [N], dc [dh] -> ga [N].
 */
#include "internal.h"

void ga_ref_dense_context_backward(const float *V, int N, int dh, const float *a,
                                   const float *dc, float *dV, float *ga)
{
    for (int i = 0; i < N; i++) {
        size_t row = (size_t)i * dh;
        if (dV) {
            for (int j = 0; j < dh; j++)
                dV[row + j] = (float)(dV[row + j] + (double)a[i] * dc[j]);
        }
        if (ga) {
            double dot = 0.0;
            for (int j = 0; j < dh; j++)
                dot += (double)V[row + j] * dc[j];
            ga[i] = (float)dot;
        }
    }
}
