/* dense_context.c — dense context (the dense baseline) and its backward,
 * written once against the SIMD vocabulary (simd.h), compiled per ISA.
 *
 * dense_context:  c[j] = sum_i a[i] * V[i][j]
 *   V [N][dh], a [N] -> c [dh]  (N == 0 -> c = 0).
 *   gav_wsum over rows 0..N-1 (streams V once: columns in register blocks,
 *   rows in L1 blocks when dh spans several column blocks).  A c that comes
 *   out non-finite (an overflowing float partial sum, or a zero weight, e.g.
 *   padding, meeting a NaN/inf row) is recomputed exactly by the reference
 *   (double, zero weights excluded): a finite exact c stays finite.
 * dense_context_backward:
 *   dV[i][j] += a[i] * dc[j]     (accum; dV may be NULL)
 *   ga[i]     = V[i] . dc        (overwritten; ga may be NULL)
 *   V, dV [N][dh], a [N], dc [dh] -> ga [N].
 *   GAV_CTX_BWD_FUSED (the ISA's choice): one pass per row (gav_dot_axpy:
 *   each load of dc feeds the dot product and the dV update).  Otherwise
 *   dV: one gav_axpy per row; ga: GAV_W rows at a time with gav_dot_rows
 *   (one vector of dot products, one store); in the last block lanes past N
 *   repeat row N-1 and are not stored.
 * Alignment: none required.  Bytes read or written past the end: 0.
 */
#include "simd.h"

void GA_FN(dense_context)(const float *V, int N, int dh, const float *a, float *c)
{
    gav_wsum(V, (size_t)dh, dh, NULL, a, 1, N, 1.0f, 0, c);
    if (N > 0 && !gav_all_finite(c, dh))
        ga_ref_dense_context(V, N, dh, a, c);
}

void GA_FN(dense_context_backward)(const float *V, int N, int dh, const float *a,
                                   const float *dc, float *dV, float *ga)
{
    if (GAV_CTX_BWD_FUSED) {
        for (int i = 0; i < N; i++) {
            const size_t off = (size_t)i * dh;
            float g = gav_dot_axpy(V + off, dc, dh, a[i], dV ? dV + off : NULL, ga != NULL);
            if (ga)
                ga[i] = g;
        }
        return;
    }
    if (dV)
        for (int i = 0; i < N; i++)
            gav_axpy(dV + (size_t)i * dh, dc, a[i], dh);
    if (ga) {
        for (int i0 = 0; i0 < N; i0 += GAV_W) {
            const int nr = N - i0 < GAV_W ? N - i0 : GAV_W;
            gav_t v = gav_dot_rows(V + (size_t)i0 * dh, (size_t)dh, nr, dc, dh);
            if (nr == GAV_W)
                gav_store(ga + i0, v);
            else
                gav_store_tail(ga + i0, nr, v);
        }
    }
}
