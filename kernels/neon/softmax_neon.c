/* softmax_neon.c — dense softmax (the dense baseline), AArch64 NEON.
 *
 *   p_i = exp(s[i] - m) (SLEEF expf, 1 ulp),  Z = sum_i p_i,  a[i] = p_i / Z;
 *   returns Z.
 * Special cases (checked once): N == 0 or m == -inf -> a = 0, returns 0;
 * m NaN or +inf -> a = NaN, returns NaN.
 * Pass 1 stores p into a and sums it (4 lanes); pass 2 divides by Z.
 * s [N] -> a [N].  Alignment: none.  Bytes read past the end: 0.
 */
#include <math.h>
#include <sleef.h>

#include "neon.h"

static void fill(float *a, int N, float v)
{
    for (int i = 0; i < N; i++)
        a[i] = v;
}

float ga_neon_softmax(const float *s, int N, float m, float *a)
{
    if (N == 0 || m == -INFINITY) {
        fill(a, N, 0.0f);
        return 0.0f;
    }
    if (isnan(m) || m == INFINITY) {
        fill(a, N, NAN);
        return NAN;
    }
    const float32x4_t vm = vdupq_n_f32(m);
    float32x4_t zsum = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= N; i += 4) {
        float32x4_t e = Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(s + i), vm));
        zsum = vaddq_f32(zsum, e);
        vst1q_f32(a + i, e);
    }
    if (i < N) {
        float32x4_t d = vsubq_f32(ga_neon_load_tail(s + i, N - i, -INFINITY), vm);
        float32x4_t e = Sleef_expf4_u10advsimd(d); /* padded lanes: exp(-inf) = 0 */
        zsum = vaddq_f32(zsum, e);
        ga_neon_store_tail(a + i, N - i, e);
    }
    float Z = vaddvq_f32(zsum);
    const float32x4_t vz = vdupq_n_f32(Z);
    for (i = 0; i + 4 <= N; i += 4)
        vst1q_f32(a + i, vdivq_f32(vld1q_f32(a + i), vz));
    for (; i < N; i++)
        a[i] = a[i] / Z;
    return Z;
}
