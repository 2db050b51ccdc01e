/* softmax_backward_neon.c — softmax backward, AArch64 NEON.
 *
 *   ds[i] = a[i] * (da[i] - sum_j a[j] * da[j])
 * a, da [N] -> ds [N] (overwritten).  The dot product uses two vector
 * accumulators and one final lane sum.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

void ga_neon_softmax_backward(const float *a, const float *da, int N, float *ds)
{
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 8 <= N; i += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(da + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(da + i + 4));
    }
    for (; i < N; i += 4) {
        int n = N - i < 4 ? N - i : 4;
        acc0 = vfmaq_f32(acc0, ga_neon_load_tail(a + i, n, 0.0f),
                         ga_neon_load_tail(da + i, n, 0.0f));
    }
    float dot = vaddvq_f32(vaddq_f32(acc0, acc1));

    const float32x4_t vdot = vdupq_n_f32(dot);
    for (i = 0; i + 4 <= N; i += 4)
        vst1q_f32(ds + i, vmulq_f32(vld1q_f32(a + i), vsubq_f32(vld1q_f32(da + i), vdot)));
    for (; i < N; i++)
        ds[i] = a[i] * (da[i] - dot);
}
