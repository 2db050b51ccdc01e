/* simd_avx2.h — the SIMD vocabulary for AVX2 + FMA (8 float lanes).
 *
 * Same names in simd_avx2.h, simd_avx512.h and simd_neon.h; kernels/simd/
 * kernels are written once against them (see simd.h for the list and the
 * contract of each name).  Included only through simd.h, in files compiled
 * with -mavx2 -mfma.  Masked loads/stores never touch memory outside the
 * mask's lanes (vmaskmovps does not fault on masked-off lanes).
 */
#ifndef GA_SIMD_AVX2_H
#define GA_SIMD_AVX2_H

#include <immintrin.h>
#include <sleef.h>

#define GAV_W 8            /* lanes */
#define GAV_HAVE_TRANSPOSE 1 /* gav_transpose is defined here (24 shuffles) */
#define GAV_WSUM_NV 8      /* vectors per column block of gav_wsum (64 columns) */
#define GAV_NACC 8         /* accumulator budget of gav_wsum (of 16 ymm) */
#define GAV_WSUM_PREFETCH 8 /* gathered rows prefetched this many rows ahead */
#define GAV_CTX_BWD_FUSED 1 /* context backward: one pass per row (1) or axpy + row dot (0) */
#define GAV_DOT_SPLIT 1    /* accumulators per row in gav_dot_rows */
#define GAV_HAVE_DOT_ROWS_FULL 1 /* gav_dot_rows_full_: x in registers (d_h 32, 64) */

typedef __m256 gav_t;
typedef __m256i gav_mask_t;  /* all-ones int32 lanes = selected */
typedef __m256 gav_flags_t;  /* per-lane flags (all-ones = set) */

#define GAV_INLINE static inline __attribute__((always_inline))

GAV_INLINE gav_t gav_zero(void) { return _mm256_setzero_ps(); }
GAV_INLINE gav_t gav_set1(float x) { return _mm256_set1_ps(x); }
GAV_INLINE gav_t gav_load(const float *p) { return _mm256_loadu_ps(p); }
GAV_INLINE void gav_store(float *p, gav_t v) { _mm256_storeu_ps(p, v); }
/* Lanes [0, n) (n <= 0: none, n >= 8: all). */
GAV_INLINE gav_mask_t gav_mask(int n)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
}
GAV_INLINE gav_t gav_load_mask(const float *p, gav_mask_t m) { return _mm256_maskload_ps(p, m); }
GAV_INLINE void gav_store_mask(float *p, gav_mask_t m, gav_t v) { _mm256_maskstore_ps(p, m, v); }
/* Lanes in m from v, the others `fill`. */
GAV_INLINE gav_t gav_select(gav_mask_t m, gav_t v, gav_t fill)
{
    return _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(m));
}
/* Lanes where a == b (ordered compare) from x, the others from y. */
GAV_INLINE gav_t gav_select_eq(gav_t a, gav_t b, gav_t x, gav_t y)
{
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
}
GAV_INLINE gav_t gav_add(gav_t a, gav_t b) { return _mm256_add_ps(a, b); }
GAV_INLINE gav_t gav_sub(gav_t a, gav_t b) { return _mm256_sub_ps(a, b); }
GAV_INLINE gav_t gav_mul(gav_t a, gav_t b) { return _mm256_mul_ps(a, b); }
GAV_INLINE gav_t gav_div(gav_t a, gav_t b) { return _mm256_div_ps(a, b); }
/* max(a, b); a NaN in either gives b (callers track NaN with gav_flags_nan). */
GAV_INLINE gav_t gav_max(gav_t a, gav_t b) { return _mm256_max_ps(a, b); }
/* a * b + c, one rounding. */
GAV_INLINE gav_t gav_fma(gav_t a, gav_t b, gav_t c) { return _mm256_fmadd_ps(a, b, c); }
/* Lanes (integers in [-128, 127]) as int8 to p[0..8): convert, pack twice
 * with signed saturation, one 8-byte store. */
GAV_INLINE void gav_store_i8(int8_t *p, gav_t v)
{
    __m256i i = _mm256_cvtps_epi32(v);
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i *)(void *)p, _mm_packs_epi16(w, w));
}
/* SLEEF expf, max error 1.0 ulp. */
GAV_INLINE gav_t gav_exp(gav_t x) { return Sleef_expf8_u10avx2(x); }

/* Sum of the 8 lanes: ((0+4)+(2+6)) + ((1+5)+(3+7)). */
GAV_INLINE float gav_hsum(gav_t v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}
/* Max of the 8 lanes (no NaN handling). */
GAV_INLINE float gav_hmax(gav_t v)
{
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

GAV_INLINE gav_flags_t gav_flags_none(void) { return _mm256_setzero_ps(); }
/* Adds the lanes of v that are NaN. */
GAV_INLINE gav_flags_t gav_flags_nan(gav_flags_t f, gav_t v)
{
    return _mm256_or_ps(f, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}
GAV_INLINE int gav_flags_any(gav_flags_t f) { return _mm256_movemask_ps(f) != 0; }

GAV_INLINE void gav_prefetch(const void *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }

/* In-register transpose of the 8 x 8 block r (r[i] lane j -> r[j] lane i):
 * unpack ps, shuffle ps (pairs of pairs), then permute2f128 of the 128-bit
 * halves.  Moves bits only. */
GAV_INLINE void gav_transpose(gav_t r[8])
{
    __m256 a[8], b[8];
    for (int i = 0; i < 4; i++) {
        a[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        b[4 * i] = _mm256_shuffle_ps(a[4 * i], a[4 * i + 2], 0x44);
        b[4 * i + 1] = _mm256_shuffle_ps(a[4 * i], a[4 * i + 2], 0xee);
        b[4 * i + 2] = _mm256_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0x44);
        b[4 * i + 3] = _mm256_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0xee);
    }
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(b[k], b[4 + k], 0x20);
        r[4 + k] = _mm256_permute2f128_ps(b[k], b[4 + k], 0x31);
    }
}

/* Lane r of the result = sum of the lanes of a[r], r < 8: a hadd tree
 * (6 hadds + 2 cross-lane permutes + 1 add) instead of eight reductions. */
GAV_INLINE gav_t gav_reduce_rows(const gav_t a[GAV_W])
{
    /* h01 = [a0 01, a0 23, a1 01, a1 23 | a0 45, a0 67, a1 45, a1 67] */
    __m256 h01 = _mm256_hadd_ps(a[0], a[1]);
    __m256 h23 = _mm256_hadd_ps(a[2], a[3]);
    __m256 h45 = _mm256_hadd_ps(a[4], a[5]);
    __m256 h67 = _mm256_hadd_ps(a[6], a[7]);
    /* q0 = [a0 0-3, a1 0-3, a2 0-3, a3 0-3 | the same over lanes 4-7] */
    __m256 q0 = _mm256_hadd_ps(h01, h23);
    __m256 q1 = _mm256_hadd_ps(h45, h67);
    __m256 lo = _mm256_permute2f128_ps(q0, q1, 0x20);
    __m256 hi = _mm256_permute2f128_ps(q0, q1, 0x31);
    return _mm256_add_ps(lo, hi);
}

/* Fast path of gav_dot_rows (simd.h) for a full block of 8 rows with x in
 * registers: one accumulator per row, 8-column chunks in order (the last
 * masked), gav_reduce_rows' hadd tree folded as rows arrive (h01, then
 * q0 = hadd(h01, h23), ...): the same operations as the generic row dot.
 * Rows one after the other (memory in address order). */
GAV_INLINE __m256 gav_dot8_row_(const float *p, const __m256 *xv, __m256i kl, int full,
                                const int nch)
{
    __m256 a = _mm256_setzero_ps();
    for (int c = 0; c + 1 < nch; c++)
        a = _mm256_fmadd_ps(_mm256_loadu_ps(p + 8 * c), xv[c], a);
    const float *pl = p + 8 * (nch - 1);
    return _mm256_fmadd_ps(full ? _mm256_loadu_ps(pl) : _mm256_maskload_ps(pl, kl),
                           xv[nch - 1], a);
}
GAV_INLINE __m256 gav_dot8_rows_(const float *A, size_t lda, const float *x, int n,
                                 const int nch)
{
    __m256 xv[8];
    for (int c = 0; c < nch; c++)
        xv[c] = _mm256_maskload_ps(x + 8 * c, gav_mask(n - 8 * c));
    const __m256i kl = gav_mask(n - 8 * (nch - 1));
    const int full = n == 8 * nch;
    __m256 q[2];
    for (int g = 0; g < 2; g++) {
        const float *p = A + (size_t)(4 * g) * lda;
        const __m256 a0 = gav_dot8_row_(p, xv, kl, full, nch);
        const __m256 a1 = gav_dot8_row_(p + lda, xv, kl, full, nch);
        const __m256 h01 = _mm256_hadd_ps(a0, a1);
        const __m256 a2 = gav_dot8_row_(p + 2 * lda, xv, kl, full, nch);
        const __m256 a3 = gav_dot8_row_(p + 3 * lda, xv, kl, full, nch);
        q[g] = _mm256_hadd_ps(h01, _mm256_hadd_ps(a2, a3));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(q[0], q[1], 0x20),
                         _mm256_permute2f128_ps(q[0], q[1], 0x31));
}
/* d_h 32 and 64 (n in 25..32, 57..64); 0 for other n (the generic row dot
 * reloads x per chunk). */
GAV_INLINE int gav_dot_rows_full_(const float *A, size_t lda, const float *x, int n,
                                  gav_t *out)
{
    switch ((n + 7) / 8) {
    case 4: *out = gav_dot8_rows_(A, lda, x, n, 4); return 1;
    case 8: *out = gav_dot8_rows_(A, lda, x, n, 8); return 1;
    default: return 0;
    }
}

#endif
