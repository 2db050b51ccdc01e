/* simd_neon.h — the SIMD vocabulary for AArch64 Advanced SIMD (4 float lanes).
 *
 * Same names in simd_avx2.h, simd_avx512.h and simd_neon.h; kernels/simd/
 * kernels are written once against them (see simd.h for the list and the
 * contract of each name).  Included only through simd.h.  NEON has no
 * masked loads: a mask is the lane count n, and partial vectors go through
 * a zero-padded copy, so nothing outside the n lanes is read or written.
 */
#ifndef GA_SIMD_NEON_H
#define GA_SIMD_NEON_H

#include <arm_neon.h>
#include <sleef.h>
#include <stddef.h>

#define GAV_W 4            /* lanes */
#define GAV_WSUM_NV 4      /* vectors per column block of gav_wsum (16 columns) */
#define GAV_NACC 8         /* accumulator budget of gav_wsum */
#define GAV_WSUM_PREFETCH 0 /* no software prefetch of gathered rows */
#define GAV_CTX_BWD_FUSED 0 /* context backward: one pass per row (1) or axpy + row dot (0) */
#define GAV_DOT_SPLIT 2    /* accumulators per row in gav_dot_rows (8 FMA chains) */

typedef float32x4_t gav_t;
typedef int gav_mask_t;       /* lanes [0, n) */
typedef uint32x4_t gav_flags_t;

#define GAV_INLINE static inline __attribute__((always_inline))

GAV_INLINE gav_t gav_zero(void) { return vdupq_n_f32(0.0f); }
GAV_INLINE gav_t gav_set1(float x) { return vdupq_n_f32(x); }
GAV_INLINE gav_t gav_load(const float *p) { return vld1q_f32(p); }
GAV_INLINE void gav_store(float *p, gav_t v) { vst1q_f32(p, v); }
/* Lanes [0, n) (n <= 0: none, n >= 4: all). */
GAV_INLINE gav_mask_t gav_mask(int n) { return n < 0 ? 0 : n > 4 ? 4 : n; }
GAV_INLINE gav_t gav_load_mask(const float *p, gav_mask_t m)
{
    if (m >= 4)
        return vld1q_f32(p);
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k = 0; k < m; k++)
        tmp[k] = p[k];
    return vld1q_f32(tmp);
}
GAV_INLINE void gav_store_mask(float *p, gav_mask_t m, gav_t v)
{
    if (m >= 4) {
        vst1q_f32(p, v);
        return;
    }
    float tmp[4];
    vst1q_f32(tmp, v);
    for (int k = 0; k < m; k++)
        p[k] = tmp[k];
}
GAV_INLINE gav_t gav_select(gav_mask_t m, gav_t v, gav_t fill)
{
    const uint32_t lane[4] = {0, 1, 2, 3};
    uint32x4_t sel = vcltq_u32(vld1q_u32(lane), vdupq_n_u32((uint32_t)m));
    return vbslq_f32(sel, v, fill);
}
/* Lanes where a == b (ordered compare) from x, the others from y. */
GAV_INLINE gav_t gav_select_eq(gav_t a, gav_t b, gav_t x, gav_t y)
{
    return vbslq_f32(vceqq_f32(a, b), x, y);
}
GAV_INLINE gav_t gav_add(gav_t a, gav_t b) { return vaddq_f32(a, b); }
GAV_INLINE gav_t gav_sub(gav_t a, gav_t b) { return vsubq_f32(a, b); }
GAV_INLINE gav_t gav_mul(gav_t a, gav_t b) { return vmulq_f32(a, b); }
GAV_INLINE gav_t gav_div(gav_t a, gav_t b) { return vdivq_f32(a, b); }
/* max(a, b) (NaN propagates; callers track NaN with gav_flags_nan anyway). */
GAV_INLINE gav_t gav_max(gav_t a, gav_t b) { return vmaxq_f32(a, b); }
GAV_INLINE gav_t gav_fma(gav_t a, gav_t b, gav_t c) { return vfmaq_f32(c, a, b); }
/* Lanes (integers in [-128, 127]) as int8 to p[0..4): convert, narrow
 * twice, one 4-byte lane store. */
GAV_INLINE void gav_store_i8(int8_t *p, gav_t v)
{
    int16x4_t h = vmovn_s32(vcvtnq_s32_f32(v));
    int8x8_t b = vmovn_s16(vcombine_s16(h, h));
    vst1_lane_s32((int32_t *)(void *)p, vreinterpret_s32_s8(b), 0);
}
/* SLEEF expf, max error 1.0 ulp. */
GAV_INLINE gav_t gav_exp(gav_t x) { return Sleef_expf4_u10advsimd(x); }
GAV_INLINE float gav_hsum(gav_t v) { return vaddvq_f32(v); }
GAV_INLINE float gav_hmax(gav_t v) { return vmaxvq_f32(v); }

GAV_INLINE gav_flags_t gav_flags_none(void) { return vdupq_n_u32(0); }
GAV_INLINE gav_flags_t gav_flags_nan(gav_flags_t f, gav_t v)
{
    return vorrq_u32(f, vmvnq_u32(vceqq_f32(v, v)));
}
GAV_INLINE int gav_flags_any(gav_flags_t f) { return vmaxvq_u32(f) != 0; }

GAV_INLINE void gav_prefetch(const void *p) { __builtin_prefetch(p); }

/* Lane r of the result = sum of the lanes of a[r], r < 4: pairwise tree
 * [a0 01, a0 23, a1 01, a1 23], then the 4 row sums. */
GAV_INLINE gav_t gav_reduce_rows(const gav_t a[GAV_W])
{
    float32x4_t s01 = vpaddq_f32(a[0], a[1]);
    float32x4_t s23 = vpaddq_f32(a[2], a[3]);
    return vpaddq_f32(s01, s23);
}

#endif
