/* softmax_backward_avx2.c — backward of the dense softmax, AVX2 + FMA.
 *
 *   ds[i] = a[i] * (da[i] - sum_j a[j] * da[j]).   a, da [N] -> ds [N]
 * (ds may alias a or da: each element is read before it is written).
 *
 * Pass 1: the dot product with 2 vector accumulators; pass 2: elementwise.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

void ga_avx2_softmax_backward(const float *a, const float *da, int N, float *ds)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 16 <= N; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(da + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(da + i + 8), s1);
    }
    for (; i < N; i += 8) {
        int n = N - i < 8 ? N - i : 8;
        s0 = _mm256_fmadd_ps(ga_avx2_load_tail(a + i, n), ga_avx2_load_tail(da + i, n), s0);
    }
    const __m256 dot = _mm256_set1_ps(ga_avx2_hsum(_mm256_add_ps(s0, s1)));

    for (i = 0; i + 8 <= N; i += 8) {
        __m256 av = _mm256_loadu_ps(a + i);
        _mm256_storeu_ps(ds + i, _mm256_mul_ps(av, _mm256_sub_ps(_mm256_loadu_ps(da + i), dot)));
    }
    if (i < N) {
        int n = N - i;
        __m256 av = ga_avx2_load_tail(a + i, n);
        ga_avx2_store_tail(ds + i, n,
                           _mm256_mul_ps(av, _mm256_sub_ps(ga_avx2_load_tail(da + i, n), dot)));
    }
}
