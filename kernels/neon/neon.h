/* neon.h — private header of the hand-written AArch64 NEON kernels (kernels/neon/).
 *
 * Helpers shared by the kernels whose algorithm is specific to the ISA
 * (threshold, threshold_backward, gpn_levels, gpn_probs, gpn_backward):
 * the GPN logits of 4 keys (common_neon.c), tail loads and stores that never
 * touch memory past the end, the lane mask and the per-key threshold lookup.
 * The streaming kernels are generic (kernels/simd/, against simd_neon.h);
 * simd.h declares every ga_neon_<op>.  Advanced SIMD is baseline on
 * AArch64: no extra compiler flags.
 */
#ifndef GA_NEON_H
#define GA_NEON_H

#include <arm_neon.h>
#include <string.h>

#include "simd.h" /* GA_SIMD_ISA = 3: declares ga_neon_<op> for every kernel */

/* ---- shared helpers (common_neon.c) ---- */

/* GPN logits of keys i .. i+n-1 (1 <= n <= 4) in the lanes of z[0..L):
 *   z[l] = b2[l] + sum_j W2[l][j] * u_j,  u_j = relu(P[j][i..] + r[j])
 * (relu keeps NaN).  Lanes >= n are computed from zero P values; callers
 * ignore them.  Reads only P[j][i .. i+n-1]. */
void ga_neon_gpn_logits4(const float *P, int ldp, const float *r,
                         const float *W2, const float *b2, int g, int L, int i,
                         int n, float32x4_t z[GA_MAX_LEVELS]);

/* ---- inline helpers ---- */

/* Loads p[0..n) (0 <= n <= 4) with `fill` in lanes >= n; reads nothing past
 * p[n-1]. */
static inline float32x4_t ga_neon_load_tail(const float *p, int n, float fill)
{
    float tmp[4] = {fill, fill, fill, fill};
    for (int k = 0; k < n; k++)
        tmp[k] = p[k];
    return vld1q_f32(tmp);
}

/* Stores lanes [0, n) of v to p[0..n) (0 <= n <= 4); writes nothing else. */
static inline void ga_neon_store_tail(float *p, int n, float32x4_t v)
{
    float tmp[4];
    vst1q_f32(tmp, v);
    for (int k = 0; k < n; k++)
        p[k] = tmp[k];
}

/* All-ones in lanes [0, n), zero elsewhere. */
static inline uint32x4_t ga_neon_lane_mask(int n)
{
    const uint32_t lane[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(lane), vdupq_n_u32((uint32_t)n));
}

/* The 8-entry threshold table as 32 bytes for vqtbl2q_u8. */
static inline uint8x16x2_t ga_neon_theta_table(const float *theta8)
{
    uint8x16x2_t t;
    t.val[0] = vreinterpretq_u8_f32(vld1q_f32(theta8));
    t.val[1] = vreinterpretq_u8_f32(vld1q_f32(theta8 + 4));
    return t;
}

/* theta8[lv[k]] in lane k for the 4 levels lv[0..4) (each < 8), by a byte
 * table lookup: lane k takes bytes 4*lv[k] + {0,1,2,3} of the table. */
static inline float32x4_t ga_neon_theta4(uint8x16x2_t table, const uint8_t lv[4])
{
    static const uint8_t spread[16] = {0, 0, 0, 0, 1, 1, 1, 1,
                                       2, 2, 2, 2, 3, 3, 3, 3};
    static const uint8_t byte_in_lane[16] = {0, 1, 2, 3, 0, 1, 2, 3,
                                             0, 1, 2, 3, 0, 1, 2, 3};
    uint32_t four;
    memcpy(&four, lv, 4);
    uint8x16_t lvb = vreinterpretq_u8_u32(vdupq_n_u32(four));
    uint8x16_t sel = vqtbl1q_u8(lvb, vld1q_u8(spread));   /* lv[k] x4 per lane */
    sel = vaddq_u8(vshlq_n_u8(sel, 2), vld1q_u8(byte_in_lane));
    return vreinterpretq_f32_u8(vqtbl2q_u8(table, sel));
}

/* The 4 level bytes at lv[0..n) (0 <= n <= 4), zero-padded (level 0). */
static inline void ga_neon_levels_tail(const uint8_t *lv, int n, uint8_t out[4])
{
    out[0] = out[1] = out[2] = out[3] = 0;
    for (int k = 0; k < n; k++)
        out[k] = lv[k];
}

#endif
