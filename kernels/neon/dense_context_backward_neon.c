/* dense_context_backward_neon.c — backward of dense_context, AArch64 NEON.
 *
 *   dV[i][j] += a[i] * dc[j]      (accum; dV may be NULL)
 *   ga[i]     = V[i] . dc         (overwritten; ga may be NULL)
 * V, dV [N][dh], a [N], dc [dh] -> ga [N].
 *
 * dV: one axpy per row.  ga: 4 rows at a time (ga_neon_dot4, pairwise-tree
 * reduction, one vector store); in the last block lanes past N repeat row
 * N-1 and are not stored.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

void ga_neon_dense_context_backward(const float *V, int N, int dh, const float *a,
                                    const float *dc, float *dV, float *ga)
{
    if (dV)
        for (int i = 0; i < N; i++)
            ga_neon_axpy(dV + (size_t)i * dh, dc, a[i], dh);
    if (ga) {
        for (int i = 0; i < N; i += 4) {
            int n = N - i < 4 ? N - i : 4;
            const float *rows[4];
            for (int r = 0; r < 4; r++)
                rows[r] = V + (size_t)(i + (r < n ? r : n - 1)) * dh;
            float32x4_t v = ga_neon_dot4(rows, dc, dh);
            if (n == 4)
                vst1q_f32(ga + i, v);
            else
                ga_neon_store_tail(ga + i, n, v);
        }
    }
}
