/* gpn_levels_neon.c — GPN level decision (inference, docs/SPEC.md §3), AArch64 NEON.
 *
 * Per key i (4 keys per vector, lanes across keys since P is [g][ldp]):
 *   u_j = relu(P[j][i] + r[j]),  z_l = b2[l] + sum_j W2[l][j] u_j
 *   levels[i] = argmax_l z_l: running strict '>' compare + select from
 *   level 0, so ties go to the lower level and a NaN logit never wins.
 * Returns nonzero iff any logit of any key is NaN (compare-based flag).
 * No exp needed.  P [g][ldp], r [g], W2 [L][g], b2 [L] -> levels [N];
 * 1 <= L <= 8.  Alignment: none.  Bytes read past the end: 0 (the last
 * N % 4 keys use zero-padded copies).
 */
#include "neon.h"

int ga_neon_gpn_levels(const float *P, int ldp, const float *r, const float *W2,
                       const float *b2, int N, int g, int L, uint8_t *levels)
{
    uint32x4_t nan_any = vdupq_n_u32(0);
    for (int i = 0; i < N; i += 4) {
        int n = N - i < 4 ? N - i : 4;
        float32x4_t z[GA_MAX_LEVELS];
        ga_neon_gpn_logits4(P, ldp, r, W2, b2, g, L, i, n, z);

        float32x4_t zbest = z[0];
        uint32x4_t best = vdupq_n_u32(0);
        uint32x4_t nan = vmvnq_u32(vceqq_f32(z[0], z[0]));
        for (int l = 1; l < L; l++) {
            uint32x4_t gt = vcgtq_f32(z[l], zbest);
            zbest = vbslq_f32(gt, z[l], zbest);
            best = vbslq_u32(gt, vdupq_n_u32((uint32_t)l), best);
            nan = vorrq_u32(nan, vmvnq_u32(vceqq_f32(z[l], z[l])));
        }
        nan_any = vorrq_u32(nan_any, vandq_u32(nan, ga_neon_lane_mask(n)));

        uint16x4_t b16 = vmovn_u32(best);
        uint8_t tmp[8];
        vst1_u8(tmp, vmovn_u16(vcombine_u16(b16, b16)));
        for (int k = 0; k < n; k++)
            levels[i + k] = tmp[k];
    }
    return vmaxvq_u32(nan_any) != 0;
}
