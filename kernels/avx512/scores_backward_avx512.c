/* scores_backward_avx512.c — backward of `scores` for one query, AVX-512.
 *
 *   dq[j]    += scale * sum_i ds[i] * K[i][j]     (accum; dq may be NULL)
 *   dK[i][j] += scale * ds[i] * q[j]              (accum; dK may be NULL)
 * K [N][dh], q [dh], ds [N] -> dq [dh], dK [N][dh].
 *
 * dq is a weighted row sum (ga512_wsum, float accumulators); dK a rank-1
 * update row by row with masked column tails.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx512.h"

void ga_avx512_scores_backward(const float *K, int N, int dh, const float *q,
                               float scale, const float *ds, float *dq, float *dK)
{
    if (dq)
        ga512_wsum(K, (size_t)dh, dh, NULL, ds, 1, N, scale, 1, dq);
    if (dK) {
        for (int i = 0; i < N; i++) {
            __m512 w = _mm512_set1_ps(scale * ds[i]);
            float *row = dK + (size_t)i * dh;
            for (int j = 0; j < dh; j += 16) {
                __mmask16 k = ga512_mask(dh - j);
                __m512 acc = _mm512_maskz_loadu_ps(k, row + j);
                acc = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(k, q + j), acc);
                _mm512_mask_storeu_ps(row + j, k, acc);
            }
        }
    }
}
