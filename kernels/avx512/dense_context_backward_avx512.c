/* dense_context_backward_avx512.c — backward of dense_context, AVX-512.
 *
 *   dV[i][j] += a[i] * dc[j]     (accum; dV may be NULL)
 *   ga[i]     = V[i] . dc        (overwritten; ga may be NULL)
 * V, dV [N][dh], a [N], dc [dh] -> ga [N].
 *
 * dV: rank-1 update row by row; ga: 16 rows at a time with ga512_dot16.
 * Alignment: none required.  Bytes read past the end: 0 (masked tails).
 */
#include "avx512.h"

void ga_avx512_dense_context_backward(const float *V, int N, int dh,
                                      const float *a, const float *dc, float *dV,
                                      float *ga)
{
    if (dV) {
        for (int i = 0; i < N; i++) {
            __m512 w = _mm512_set1_ps(a[i]);
            float *row = dV + (size_t)i * dh;
            for (int j = 0; j < dh; j += 16) {
                __mmask16 m = ga512_mask(dh - j);
                __m512 acc = _mm512_maskz_loadu_ps(m, row + j);
                acc = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, dc + j), acc);
                _mm512_mask_storeu_ps(row + j, m, acc);
            }
        }
    }
    if (ga) {
        for (int i0 = 0; i0 < N; i0 += 16) {
            int nr = N - i0 < 16 ? N - i0 : 16;
            __m512 v = ga512_dot16(V + (size_t)i0 * dh, (size_t)dh, nr, dc, dh);
            _mm512_mask_storeu_ps(ga + i0, ga512_mask(nr), v);
        }
    }
}
