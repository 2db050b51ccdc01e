/* sparse_context_backward_ref.c — scalar reference of the backward of
 * sparse_context (weights w_k = scale * p[k]).
 *
 *   dV[idx[k]][j] += w_k * dc[j]          (accum; dV may be NULL)
 *   gk[k]          = V[idx[k]] . dc       (overwritten; gk may be NULL)
 * V, dV [*][dh] (rows idx[k] valid), idx, p [count] (idx never repeats), dc [dh].
 */
#include "internal.h"

void ga_ref_sparse_context_backward(const float *V, int dh, const int32_t *idx,
                                    const float *p, int count, float scale,
                                    const float *dc, float *dV, float *gk)
{
    for (int k = 0; k < count; k++) {
        size_t row = (size_t)idx[k] * dh;
        if (dV) {
            double w = (double)scale * p[k];
            for (int j = 0; j < dh; j++)
                dV[row + j] = (float)(dV[row + j] + w * dc[j]);
        }
        if (gk) {
            double dot = 0.0;
            for (int j = 0; j < dh; j++)
                dot += (double)V[row + j] * dc[j];
            gk[k] = (float)dot;
        }
    }
}
