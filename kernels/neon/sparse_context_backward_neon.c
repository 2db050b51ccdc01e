/* sparse_context_backward_neon.c — backward of sparse_context, AArch64 NEON.
 *
 * With weights w_k = scale * p[k]:
 *   dV[idx[k]][j] += w_k * dc[j]          (accum; dV may be NULL)
 *   gk[k]          = V[idx[k]] . dc       (overwritten; gk may be NULL)
 * V, dV [*][dh] (rows idx[k] valid), idx, p [count] (idx never repeats), dc [dh].
 *
 * dV: one axpy per kept row.  gk: 4 kept rows at a time (ga_neon_dot4,
 * pairwise-tree reduction, one vector store); in the last block lanes past
 * count repeat the last row and are not stored.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

void ga_neon_sparse_context_backward(const float *V, int dh, const int32_t *idx,
                                     const float *p, int count, float scale,
                                     const float *dc, float *dV, float *gk)
{
    if (dV)
        for (int k = 0; k < count; k++)
            ga_neon_axpy(dV + (size_t)idx[k] * dh, dc, scale * p[k], dh);
    if (gk) {
        for (int k = 0; k < count; k += 4) {
            int n = count - k < 4 ? count - k : 4;
            const float *rows[4];
            for (int r = 0; r < 4; r++)
                rows[r] = V + (size_t)idx[k + (r < n ? r : n - 1)] * dh;
            float32x4_t v = ga_neon_dot4(rows, dc, dh);
            if (n == 4)
                vst1q_f32(gk + k, v);
            else
                ga_neon_store_tail(gk + k, n, v);
        }
    }
}
