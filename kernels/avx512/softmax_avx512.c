/* softmax_avx512.c — dense softmax (the dense baseline), AVX-512.
 *
 *   p_i = exp(s[i] - m),  Z = sum_i p_i,  a[i] = p_i / Z;  returns Z
 * N == 0 or m == -inf -> a = 0, returns 0;  m NaN or +inf -> a = NaN, NaN.
 * s [N] -> a [N].
 *
 * Pass 1 stores p into a and sums Z (SLEEF Sleef_expf16_u10avx512f); pass 2
 * multiplies by 1/Z in place: a 512-bit divide costs ~16 cycles per 16 keys,
 * and p * (1/Z) is within ~1 ulp of p / Z.  With m = max s (as `scores`
 * gives it) Z >= 1; for a smaller Z (m above every score) it divides, so that
 * 1/Z cannot overflow.  Alignment: none required.  Bytes read past the
 * end: 0 (masked tails).
 */
#include <math.h>
#include <sleef.h>

#include "avx512.h"

static void fill(float *a, int N, float v)
{
    __m512 x = _mm512_set1_ps(v);
    for (int i = 0; i < N; i += 16)
        _mm512_mask_storeu_ps(a + i, ga512_mask(N - i), x);
}

float ga_avx512_softmax(const float *s, int N, float m, float *a)
{
    if (N <= 0 || m == -INFINITY) {
        fill(a, N, 0.0f);
        return 0.0f;
    }
    if (isnan(m) || m == INFINITY) {
        fill(a, N, NAN);
        return NAN;
    }
    const __m512 vm = _mm512_set1_ps(m);
    __m512 zsum = _mm512_setzero_ps();
    for (int i = 0; i < N; i += 16) {
        __mmask16 k = ga512_mask(N - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + i), vm);
        __m512 e = Sleef_expf16_u10avx512f(d);
        zsum = _mm512_mask_add_ps(zsum, k, zsum, e);
        _mm512_mask_storeu_ps(a + i, k, e);
    }
    float Z = _mm512_reduce_add_ps(zsum);
    const __m512 vz = _mm512_set1_ps(Z), rz = _mm512_set1_ps(1.0f / Z);
    const int divide = !(Z >= 1.0f);
    for (int i = 0; i < N; i += 16) {
        __mmask16 k = ga512_mask(N - i);
        __m512 e = _mm512_maskz_loadu_ps(k, a + i);
        e = divide ? _mm512_div_ps(e, vz) : _mm512_mul_ps(e, rz);
        _mm512_mask_storeu_ps(a + i, k, e);
    }
    return Z;
}
