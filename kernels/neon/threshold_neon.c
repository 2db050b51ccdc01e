/* threshold_neon.c — threshold + compress (docs/SPEC.md §2), AArch64 NEON.
 *
 * Per 4 keys, branchless:
 *   d     = s - m                       (float subtraction, as the reference)
 *   theta = theta8[levels[i]]           (byte table lookup, vqtbl2q_u8)
 *   keep  = d >= theta                  (NaN d is never kept)
 *           when m > 2^100 (s - m may overflow to -inf): the `wide` form
 *           (d >= theta') & (s > -inf), tau = 0 as theta' = -inf, so tau = 0
 *           keeps every finite score (ga_keep in internal.h)
 *   mask  = 4-bit lane mask; a 16-entry byte-shuffle table left-packs the
 *           kept lanes (vqtbl1q_u8); all 4 lanes are stored at idx + count
 *           and p + count, then count += popcount(mask).
 * seed:   p = exp(d) for every key (SLEEF expf, 1 ulp), Z = sum of all p.
 * renorm: the packed d values are stored first; exp runs afterwards only on
 *         the count kept values, Z = their sum.
 * Special cases (ga_row_case, once at entry): N == 0 or m == -inf -> 0, *Z = 0;
 * m NaN or +inf -> 0, *Z = NaN.
 * s [N], levels [N] (< 8), theta8 [8] -> idx, p [N + GA_KEEP_PAD] (writes up
 * to index N + 2), *Z; returns the kept count.
 * Alignment: none.  Bytes read past the end: 0 (the last N % 4 keys use a
 * copy padded with s = -inf, never kept, exp = 0).
 */
#include <math.h>
#include <sleef.h>

#include "neon.h"

/* compress[mask]: byte indices that move the lanes set in mask (bit k =
 * lane k) to the front, in increasing lane order; 255 selects 0. */
static const uint8_t compress[16][16] = {
    {255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255},
    {0, 1, 2, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255},
    {4, 5, 6, 7, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255},
    {0, 1, 2, 3, 4, 5, 6, 7, 255, 255, 255, 255, 255, 255, 255, 255},
    {8, 9, 10, 11, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255},
    {0, 1, 2, 3, 8, 9, 10, 11, 255, 255, 255, 255, 255, 255, 255, 255},
    {4, 5, 6, 7, 8, 9, 10, 11, 255, 255, 255, 255, 255, 255, 255, 255},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255, 255, 255, 255},
    {12, 13, 14, 15, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255},
    {0, 1, 2, 3, 12, 13, 14, 15, 255, 255, 255, 255, 255, 255, 255, 255},
    {4, 5, 6, 7, 12, 13, 14, 15, 255, 255, 255, 255, 255, 255, 255, 255},
    {0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 255, 255, 255, 255},
    {8, 9, 10, 11, 12, 13, 14, 15, 255, 255, 255, 255, 255, 255, 255, 255},
    {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 255, 255, 255, 255},
    {4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255, 255, 255, 255},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
};

/* popcount of the 4-bit mask */
static const uint8_t kept_count[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};

static inline __attribute__((always_inline)) int
run(const float *s, int N, float m, const uint8_t *levels, const float *theta8,
    ga_norm mode, int32_t *idx, float *p, float *Z, const int wide)
{
    const float32x4_t ninf = vdupq_n_f32(-INFINITY);
    const uint8x16x2_t table = ga_neon_theta_table(theta8);
    const uint32_t bits[4] = {1, 2, 4, 8};
    const int32_t lanes[4] = {0, 1, 2, 3};
    const uint32x4_t bit = vld1q_u32(bits);
    const int32x4_t lane = vld1q_s32(lanes);
    const float32x4_t vm = vdupq_n_f32(m);
    const int seed = mode == GA_NORM_SEED;
    float32x4_t zsum = vdupq_n_f32(0.0f);
    int count = 0;

    for (int i = 0; i < N; i += 4) {
        int n = N - i < 4 ? N - i : 4;
        float32x4_t sv;
        uint8_t lv[4];
        if (n == 4) {
            sv = vld1q_f32(s + i);
            memcpy(lv, levels + i, 4);
        } else {
            sv = ga_neon_load_tail(s + i, n, -INFINITY);
            ga_neon_levels_tail(levels + i, n, lv);
        }
        float32x4_t d = vsubq_f32(sv, vm);
        uint32x4_t keep = vcgeq_f32(d, ga_neon_theta4(table, lv));
        if (wide)
            keep = vandq_u32(keep, vcgtq_f32(sv, ninf));
        unsigned mask = vaddvq_u32(vandq_u32(keep, bit));
        uint8x16_t shuffle = vld1q_u8(compress[mask]);

        int32x4_t iv = vaddq_s32(vdupq_n_s32(i), lane);
        vst1q_s32(idx + count, vreinterpretq_s32_u8(
                                   vqtbl1q_u8(vreinterpretq_u8_s32(iv), shuffle)));
        float32x4_t val = d;
        if (seed) {
            val = Sleef_expf4_u10advsimd(d);
            zsum = vaddq_f32(zsum, val);
        }
        vst1q_f32(p + count, vreinterpretq_f32_u8(
                                 vqtbl1q_u8(vreinterpretq_u8_f32(val), shuffle)));
        count += kept_count[mask];
    }

    if (!seed) {
        /* renorm: exp of the packed kept d values only */
        for (int k = 0; k < count; k += 4) {
            int n = count - k < 4 ? count - k : 4;
            if (n == 4) {
                float32x4_t e = Sleef_expf4_u10advsimd(vld1q_f32(p + k));
                zsum = vaddq_f32(zsum, e);
                vst1q_f32(p + k, e);
            } else {
                float32x4_t e = Sleef_expf4_u10advsimd(ga_neon_load_tail(p + k, n, -INFINITY));
                zsum = vaddq_f32(zsum, e);
                ga_neon_store_tail(p + k, n, e);
            }
        }
    }
    *Z = vaddvq_f32(zsum);
    return count;
}

int ga_neon_threshold(const float *s, int N, float m, const uint8_t *levels,
                      const float *theta8, ga_norm mode, int32_t *idx, float *p,
                      float *Z)
{
    ga_row rc = ga_row_case(N, m);
    if (rc != GA_ROW_OK) {
        *Z = rc == GA_ROW_EMPTY ? 0.0f : NAN;
        return 0;
    }
    if (ga_theta_wide(m)) {
        float open[GA_MAX_LEVELS];
        ga_theta_open(theta8, open);
        return run(s, N, m, levels, open, mode, idx, p, Z, 1);
    }
    return run(s, N, m, levels, theta8, mode, idx, p, Z, 0);
}
