/* softmax_avx2.c — dense softmax of one score row (dense baseline), AVX2.
 *
 *   a[i] = exp(s[i] - m) / Z,  Z = sum_i exp(s[i] - m);  returns Z.
 * m == -inf or N == 0 -> a = 0, returns 0;  m NaN or +inf -> a = NaN,
 * returns NaN (checked once at entry).
 * s [N] -> a [N]  (a may alias s).
 *
 * Two passes: exp (SLEEF Sleef_expf8_u10avx2) into a with the sum in one
 * vector accumulator, then a /= Z.  Tails use masked loads/stores.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include <math.h>
#include <sleef.h>

#include "avx2.h"

static void fill(float *a, int N, float value)
{
    for (int i = 0; i < N; i++)
        a[i] = value;
}

float ga_avx2_softmax(const float *s, int N, float m, float *a)
{
    if (N <= 0)
        return 0.0f;
    if (m == -INFINITY) {
        fill(a, N, 0.0f);
        return 0.0f;
    }
    if (isnan(m) || m == INFINITY) {
        fill(a, N, NAN);
        return NAN;
    }
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= N; i += 8) {
        __m256 e = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(s + i), vm));
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(a + i, e);
    }
    if (i < N) {
        __m256i mask = ga_avx2_tail_mask(N - i);
        __m256 e = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_maskload_ps(s + i, mask), vm));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
        sum = _mm256_add_ps(sum, e);
        _mm256_maskstore_ps(a + i, mask, e);
    }
    float Z = ga_avx2_hsum(sum);
    const __m256 vz = _mm256_set1_ps(Z);
    for (i = 0; i + 8 <= N; i += 8)
        _mm256_storeu_ps(a + i, _mm256_div_ps(_mm256_loadu_ps(a + i), vz));
    if (i < N) {
        __m256i mask = ga_avx2_tail_mask(N - i);
        _mm256_maskstore_ps(a + i, mask, _mm256_div_ps(_mm256_maskload_ps(a + i, mask), vz));
    }
    return Z;
}
