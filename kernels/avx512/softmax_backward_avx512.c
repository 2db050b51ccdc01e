/* softmax_backward_avx512.c — softmax backward, AVX-512.
 *
 *   ds[i] = a[i] * (da[i] - sum_j a[j] * da[j])      a, da [N] -> ds [N]
 *
 * Pass 1: the dot product (float vector accumulator); pass 2: the update.
 * Alignment: none required.  Bytes read past the end: 0 (masked tails).
 */
#include "avx512.h"

void ga_avx512_softmax_backward(const float *a, const float *da, int N, float *ds)
{
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < N; i += 16) {
        __mmask16 k = ga512_mask(N - i);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i),
                              _mm512_maskz_loadu_ps(k, da + i), acc);
    }
    const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
    for (int i = 0; i < N; i += 16) {
        __mmask16 k = ga512_mask(N - i);
        __m512 av = _mm512_maskz_loadu_ps(k, a + i);
        __m512 dv = _mm512_maskz_loadu_ps(k, da + i);
        _mm512_mask_storeu_ps(ds + i, k, _mm512_mul_ps(av, _mm512_sub_ps(dv, dot)));
    }
}
