/* sparse_context.c — context from gathered rows (docs/SPEC.md §2) and its backward,
 * written once against the SIMD vocabulary (simd.h), compiled per ISA.
 *
 * sparse_context:  c[j] = scale * sum_{k < count} p[k] * V[idx[k]][j]
 *   count == 0 -> c = 0 (even when scale is inf: 1/Z with Z == 0).
 *   V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh].
 *   gav_wsum over the gathered rows: columns in register blocks, several
 *   accumulator sets over k, rows in L1 blocks when dh spans several column
 *   blocks, prefetch of the rows ahead where the ISA asks for it; scale is
 *   applied once per row block.  A c that comes out non-finite (the float
 *   sum of p V overflowed before the scale 1/Z, or a p = 0 term met a
 *   NaN/inf row) is recomputed exactly by the reference (double, p = 0
 *   terms excluded): a finite exact c stays finite.  The check is one pass
 *   over c.
 * sparse_context_backward, with w_k = scale * p[k]:
 *   dV[idx[k]][j] += w_k * dc[j]     (accum; dV may be NULL)
 *   gk[k]          = V[idx[k]] . dc  (overwritten; gk may be NULL)
 *   V, dV [*][dh], idx, p [count] (idx never repeats), dc [dh] -> gk [count].
 *   GAV_CTX_BWD_FUSED (the ISA's choice): one pass per gathered row
 *   (gav_dot_axpy).  Otherwise dV: one gav_axpy per kept row; gk: GAV_W
 *   gathered rows at a time
 *   (gav_dot_rows_ptr, one vector store); in the last block lanes past count
 *   repeat the last row and are not stored.
 * Alignment: none required.  Bytes read or written past the end: 0.
 */
#include "simd.h"

void GA_FN(sparse_context)(const float *V, int dh, const int32_t *idx,
                           const float *p, int count, float scale, float *c)
{
    gav_wsum(V, (size_t)dh, dh, idx, p, 1, count, scale, 0, c);
    if (count > 0 && !gav_all_finite(c, dh))
        ga_ref_sparse_context(V, dh, idx, p, count, scale, c);
}

void GA_FN(sparse_context_backward)(const float *V, int dh, const int32_t *idx,
                                    const float *p, int count, float scale,
                                    const float *dc, float *dV, float *gk)
{
    if (GAV_CTX_BWD_FUSED) {
        for (int k = 0; k < count; k++) {
            const size_t off = (size_t)idx[k] * dh;
            float g = gav_dot_axpy(V + off, dc, dh, scale * p[k], dV ? dV + off : NULL,
                                   gk != NULL);
            if (gk)
                gk[k] = g;
        }
        return;
    }
    if (dV)
        for (int k = 0; k < count; k++)
            gav_axpy(dV + (size_t)idx[k] * dh, dc, scale * p[k], dh);
    if (gk) {
        for (int k = 0; k < count; k += GAV_W) {
            const int n = count - k < GAV_W ? count - k : GAV_W;
            const float *rows[GAV_W];
            for (int r = 0; r < GAV_W; r++)
                rows[r] = V + (size_t)idx[k + (r < n ? r : n - 1)] * dh;
            gav_t v = gav_dot_rows_ptr(rows, dc, dh);
            if (n == GAV_W)
                gav_store(gk + k, v);
            else
                gav_store_tail(gk + k, n, v);
        }
    }
}
