/* gpn_probs_neon.c — GPN probabilities and levels (training, docs/SPEC.md §3),
 * AArch64 NEON.
 *
 * Per key i (4 keys per vector, lanes across keys): the logits z_l exactly as
 * in gpn_levels_neon.c, then
 *   pi[l][i] = exp(z_l - max z) / sum_k exp(z_k - max z)   (SLEEF expf, 1 ulp)
 *   levels[i] = argmax z (running strict '>', ties to the lower level).
 * A NaN logit makes that key's pi all NaN; returns nonzero iff any logit of
 * any key is NaN.
 * P [g][ldp], r [g], W2 [L][g], b2 [L] -> pi [L][ldpi] (ldpi >= N), levels [N].
 * Alignment: none.  Bytes read past the end: 0.  Writes only pi[l][0..N)
 * and levels[0..N).
 */
#include <math.h>
#include <sleef.h>

#include "neon.h"

int ga_neon_gpn_probs(const float *P, int ldp, const float *r, const float *W2,
                      const float *b2, int N, int g, int L, float *pi, int ldpi,
                      uint8_t *levels)
{
    const float32x4_t vnan = vdupq_n_f32(NAN);
    uint32x4_t nan_any = vdupq_n_u32(0);
    for (int i = 0; i < N; i += 4) {
        int n = N - i < 4 ? N - i : 4;
        float32x4_t z[GA_MAX_LEVELS];
        ga_neon_gpn_logits4(P, ldp, r, W2, b2, g, L, i, n, z);

        /* argmax (strict '>') and NaN flag per lane */
        float32x4_t zbest = z[0], zmax = z[0];
        uint32x4_t best = vdupq_n_u32(0);
        uint32x4_t nan = vmvnq_u32(vceqq_f32(z[0], z[0]));
        for (int l = 1; l < L; l++) {
            uint32x4_t gt = vcgtq_f32(z[l], zbest);
            zbest = vbslq_f32(gt, z[l], zbest);
            best = vbslq_u32(gt, vdupq_n_u32((uint32_t)l), best);
            nan = vorrq_u32(nan, vmvnq_u32(vceqq_f32(z[l], z[l])));
            zmax = vmaxq_f32(zmax, z[l]);
        }
        nan_any = vorrq_u32(nan_any, vandq_u32(nan, ga_neon_lane_mask(n)));

        uint16x4_t b16 = vmovn_u32(best);
        uint8_t tmp[8];
        vst1_u8(tmp, vmovn_u16(vcombine_u16(b16, b16)));
        for (int k = 0; k < n; k++)
            levels[i + k] = tmp[k];

        /* stable softmax over the L logits of each lane */
        float32x4_t e[GA_MAX_LEVELS];
        float32x4_t sum = vdupq_n_f32(0.0f);
        for (int l = 0; l < L; l++) {
            e[l] = Sleef_expf4_u10advsimd(vsubq_f32(z[l], zmax));
            sum = vaddq_f32(sum, e[l]);
        }
        for (int l = 0; l < L; l++) {
            float32x4_t pl = vbslq_f32(nan, vnan, vdivq_f32(e[l], sum));
            float *dst = pi + (size_t)l * ldpi + i;
            if (n == 4)
                vst1q_f32(dst, pl);
            else
                ga_neon_store_tail(dst, n, pl);
        }
    }
    return vmaxvq_u32(nan_any) != 0;
}
