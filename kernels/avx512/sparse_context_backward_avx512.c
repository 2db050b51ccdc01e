/* sparse_context_backward_avx512.c — backward of sparse_context, AVX-512.
 *
 * With w_k = scale * p[k]:
 *   dV[idx[k]][j] += w_k * dc[j]     (accum; dV may be NULL)
 *   gk[k]          = V[idx[k]] . dc  (overwritten; gk may be NULL)
 * V, dV [*][dh] (rows idx[k] valid), idx, p [count] (no repeats), dc [dh].
 *
 * One gathered row at a time, columns in masked vectors of 16.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx512.h"

void ga_avx512_sparse_context_backward(const float *V, int dh, const int32_t *idx,
                                       const float *p, int count, float scale,
                                       const float *dc, float *dV, float *gk)
{
    for (int k = 0; k < count; k++) {
        size_t row = (size_t)idx[k] * dh;
        if (dV) {
            __m512 w = _mm512_set1_ps(scale * p[k]);
            for (int j = 0; j < dh; j += 16) {
                __mmask16 m = ga512_mask(dh - j);
                __m512 acc = _mm512_maskz_loadu_ps(m, dV + row + j);
                acc = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, dc + j), acc);
                _mm512_mask_storeu_ps(dV + row + j, m, acc);
            }
        }
        if (gk) {
            __m512 acc = _mm512_setzero_ps();
            for (int j = 0; j < dh; j += 16) {
                __mmask16 m = ga512_mask(dh - j);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, V + row + j),
                                      _mm512_maskz_loadu_ps(m, dc + j), acc);
            }
            gk[k] = _mm512_reduce_add_ps(acc);
        }
    }
}
