/* simd_avx512.h — the SIMD vocabulary for AVX-512 F/BW/VL/DQ (16 float lanes).
 *
 * Same names in simd_avx2.h, simd_avx512.h and simd_neon.h; kernels/simd/
 * kernels are written once against them (see simd.h for the list and the
 * contract of each name).  Included only through simd.h, in files compiled
 * with the AVX-512 flags.  Masked loads/stores never touch memory outside
 * the mask's lanes (masked-off lanes do not fault).  Summation orders depend
 * only on the sizes, never on pointer alignment.
 */
#ifndef GA_SIMD_AVX512_H
#define GA_SIMD_AVX512_H

#include <immintrin.h>
#include <sleef.h>
#include <stddef.h>

#define GAV_W 16           /* lanes */
#define GAV_WSUM_NV 8      /* vectors per column block of gav_wsum (128 columns) */
#define GAV_NACC 16        /* accumulator budget of gav_wsum (of 32 zmm) */
#if defined(GAV_SPLIT_LOADS) && GAV_SPLIT_LOADS
#define GAV_WSUM_PREFETCH 16 /* loads:halves (AMD): gathered rows prefetched 16 ahead */
#else
#define GAV_WSUM_PREFETCH 0 /* no software prefetch of gathered rows */
#endif
#define GAV_CTX_BWD_FUSED 0 /* context backward: one pass per row (1) or axpy + row dot (0) */
#define GAV_DOT_SPLIT 1    /* accumulators per row in gav_dot_rows */
#define GAV_HAVE_DOT_ROWS_FULL 1 /* gav_dot_rows_full_: x in registers (d_h 32, 64) */
#define GAV_HAVE_TRANSPOSE 1 /* gav_transpose is defined here (64 shuffles) */
/* 1: every full-vector load as two 256-bit loads (the "loads:halves" tuning,
 * chosen at run time on AMD: on the Zen 4 VM 512-bit loads stream from DRAM
 * ~10 % slower than 256-bit ones, results/epyc-2c/streaming/; src/dispatch.c).
 * Same values. */
#ifndef GAV_SPLIT_LOADS
#define GAV_SPLIT_LOADS 0
#endif

typedef __m512 gav_t;
typedef __mmask16 gav_mask_t;
typedef __mmask16 gav_flags_t;

#define GAV_INLINE static inline __attribute__((always_inline))

GAV_INLINE gav_t gav_zero(void) { return _mm512_setzero_ps(); }
GAV_INLINE gav_t gav_set1(float x) { return _mm512_set1_ps(x); }
GAV_INLINE gav_t gav_load(const float *p)
{
#if GAV_SPLIT_LOADS
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p)), _mm256_loadu_ps(p + 8), 1);
#else
    return _mm512_loadu_ps(p);
#endif
}
GAV_INLINE void gav_store(float *p, gav_t v) { _mm512_storeu_ps(p, v); }
/* Lanes [0, n) (n <= 0: none, n >= 16: all). */
GAV_INLINE gav_mask_t gav_mask(int n)
{
    if (n <= 0)
        return 0;
    if (n >= 16)
        return 0xFFFF;
    return (__mmask16)((1u << n) - 1u);
}
GAV_INLINE gav_t gav_load_mask(const float *p, gav_mask_t m) { return _mm512_maskz_loadu_ps(m, p); }
GAV_INLINE void gav_store_mask(float *p, gav_mask_t m, gav_t v) { _mm512_mask_storeu_ps(p, m, v); }
GAV_INLINE gav_t gav_select(gav_mask_t m, gav_t v, gav_t fill) { return _mm512_mask_mov_ps(fill, m, v); }
/* Lanes where a == b (ordered compare) from x, the others from y. */
GAV_INLINE gav_t gav_select_eq(gav_t a, gav_t b, gav_t x, gav_t y)
{
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), x);
}
GAV_INLINE gav_t gav_add(gav_t a, gav_t b) { return _mm512_add_ps(a, b); }
GAV_INLINE gav_t gav_sub(gav_t a, gav_t b) { return _mm512_sub_ps(a, b); }
GAV_INLINE gav_t gav_mul(gav_t a, gav_t b) { return _mm512_mul_ps(a, b); }
GAV_INLINE gav_t gav_div(gav_t a, gav_t b) { return _mm512_div_ps(a, b); }
/* max(a, b); a NaN in either gives b (callers track NaN with gav_flags_nan). */
GAV_INLINE gav_t gav_max(gav_t a, gav_t b) { return _mm512_max_ps(a, b); }
GAV_INLINE gav_t gav_fma(gav_t a, gav_t b, gav_t c) { return _mm512_fmadd_ps(a, b, c); }
/* Lanes (integers in [-128, 127]) as int8 to p[0..16): vcvtps2dq + vpmovdb. */
GAV_INLINE void gav_store_i8(int8_t *p, gav_t v)
{
    _mm512_mask_cvtepi32_storeu_epi8(p, 0xFFFF, _mm512_cvtps_epi32(v));
}
/* SLEEF expf, max error 1.0 ulp. */
GAV_INLINE gav_t gav_exp(gav_t x) { return Sleef_expf16_u10avx512f(x); }
GAV_INLINE float gav_hsum(gav_t v) { return _mm512_reduce_add_ps(v); }
GAV_INLINE float gav_hmax(gav_t v) { return _mm512_reduce_max_ps(v); }

GAV_INLINE gav_flags_t gav_flags_none(void) { return 0; }
GAV_INLINE gav_flags_t gav_flags_nan(gav_flags_t f, gav_t v)
{
    return f | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}
GAV_INLINE int gav_flags_any(gav_flags_t f) { return f != 0; }

GAV_INLINE void gav_prefetch(const void *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }

/* In-register transpose of the 16 x 16 block r (r[i] lane j -> r[j] lane i):
 * pairs of rows interleaved (unpack ps), pairs of pairs (unpack pd), then
 * 128-bit lanes regrouped twice (shuffle_f32x4 0x88: lanes 0,2 | 0,2 and
 * 0xdd: 1,3 | 1,3).  Moves bits only. */
GAV_INLINE void gav_transpose(gav_t r[16])
{
    __m512 a[16], b[16], c[16];
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* b[4i + k]: per 128-bit lane j, column 4j + k of rows 4i .. 4i+3 */
    for (int i = 0; i < 4; i++) {
        const __m512d a0 = _mm512_castps_pd(a[4 * i]), a1 = _mm512_castps_pd(a[4 * i + 1]);
        const __m512d a2 = _mm512_castps_pd(a[4 * i + 2]), a3 = _mm512_castps_pd(a[4 * i + 3]);
        b[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        b[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        b[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        b[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    for (int k = 0; k < 4; k++) {
        c[4 * k] = _mm512_shuffle_f32x4(b[k], b[4 + k], 0x88);
        c[4 * k + 1] = _mm512_shuffle_f32x4(b[k], b[4 + k], 0xdd);
        c[4 * k + 2] = _mm512_shuffle_f32x4(b[8 + k], b[12 + k], 0x88);
        c[4 * k + 3] = _mm512_shuffle_f32x4(b[8 + k], b[12 + k], 0xdd);
    }
    for (int k = 0; k < 4; k++) {
        r[k] = _mm512_shuffle_f32x4(c[4 * k], c[4 * k + 2], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(c[4 * k], c[4 * k + 2], 0xdd);
        r[4 + k] = _mm512_shuffle_f32x4(c[4 * k + 1], c[4 * k + 3], 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(c[4 * k + 1], c[4 * k + 3], 0xdd);
    }
}

/* ---- row reductions: a transpose-and-add tree ---- */

/* Per 128-bit chunk: [a0+a2, b0+b2, a1+a3, b1+b3]. */
GAV_INLINE __m512 gav_fold_pair_(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}
/* Same one level up, on 64-bit pairs: per chunk [a01, b01, c01, d01]. */
GAV_INLINE __m512 gav_fold_quad_(__m512 ab, __m512 cd)
{
    __m512d x = _mm512_castps_pd(ab), y = _mm512_castps_pd(cd);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
}
/* Adds 128-bit chunks pairwise: [x0+x1, x2+x3, y0+y1, y2+y3]. */
GAV_INLINE __m512 gav_fold_chunks_(__m512 x, __m512 y)
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88),  /* x0 x2 y0 y2 */
                         _mm512_shuffle_f32x4(x, y, 0xDD)); /* x1 x3 y1 y3 */
}
/* Lane r of the result = horizontal sum of v[r], r < 16 (15 adds and 30
 * shuffles for 16 sums). */
GAV_INLINE gav_t gav_reduce_rows(const gav_t v[GAV_W])
{
    __m512 p[8], q[4];
    for (int r = 0; r < 8; r++)
        p[r] = gav_fold_pair_(v[2 * r], v[2 * r + 1]);
    for (int r = 0; r < 4; r++)
        q[r] = gav_fold_quad_(p[2 * r], p[2 * r + 1]);
    /* q[r]: chunk c holds the partial sums of rows 4r..4r+3 over chunk c */
    __m512 lo = gav_fold_chunks_(q[0], q[1]);
    __m512 hi = gav_fold_chunks_(q[2], q[3]);
    return gav_fold_chunks_(lo, hi);
}

/* Full block of 16 rows, exactly nch 16-column chunks (nch constant after
 * inlining, 1..8): x is held in nch registers, the last chunk masked to n.
 * Rows are walked one after the other, each over its chunks in order, so
 * memory is read in address order (a 256-byte stride across the 16 rows
 * per chunk, the order used before 2026-12-04, ran at half the DRAM and L2
 * bandwidth on AMD Zen 4; the arithmetic is the same either way). */
GAV_INLINE __m512 gav_dot16_row_(const float *p, const __m512 *xv, __mmask16 kl, int full,
                                 const int nch)
{
    __m512 a = _mm512_setzero_ps();
    for (int c = 0; c + 1 < nch; c++)
        a = _mm512_fmadd_ps(gav_load(p + 16 * c), xv[c], a);
    const float *pl = p + 16 * (nch - 1);
    return _mm512_fmadd_ps(full ? gav_load(pl) : _mm512_maskz_loadu_ps(kl, pl),
                           xv[nch - 1], a);
}
GAV_INLINE __m512 gav_dot16_rows_(const float *A, size_t lda, const float *x, int n,
                                  const int nch)
{
    __m512 xv[8];
    for (int c = 0; c < nch; c++)
        xv[c] = _mm512_maskz_loadu_ps(gav_mask(n - 16 * c), x + 16 * c);
    const __mmask16 kl = gav_mask(n - 16 * (nch - 1));
    const int full = n == 16 * nch;
    /* gav_reduce_rows' tree, folded as the rows arrive (4 rows per quad),
     * so that only x, one quad and the finished quads are live */
    __m512 q[4];
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        const float *p = A + (size_t)(4 * g) * lda;
        const __m512 v0 = gav_dot16_row_(p, xv, kl, full, nch);
        const __m512 v1 = gav_dot16_row_(p + lda, xv, kl, full, nch);
        const __m512 p0 = gav_fold_pair_(v0, v1);
        const __m512 v2 = gav_dot16_row_(p + 2 * lda, xv, kl, full, nch);
        const __m512 v3 = gav_dot16_row_(p + 3 * lda, xv, kl, full, nch);
        q[g] = gav_fold_quad_(p0, gav_fold_pair_(v2, v3));
    }
    return gav_fold_chunks_(gav_fold_chunks_(q[0], q[1]), gav_fold_chunks_(q[2], q[3]));
}

/* Fast path of gav_dot_rows (simd.h) for a full block of 16 rows: d_h 32
 * and 64 (n in 17..32, 49..64) with x in registers; returns 0 for other n
 * (the generic row dot then reloads x per chunk: same operations, same
 * bits).  Only the usual head sizes: each case is a fully unrolled copy,
 * and more cases cost minutes of sanitizer builds. */
GAV_INLINE int gav_dot_rows_full_(const float *A, size_t lda, const float *x, int n,
                                  gav_t *out)
{
    switch ((n + 15) / 16) {
    case 2: *out = gav_dot16_rows_(A, lda, x, n, 2); return 1;
    case 4: *out = gav_dot16_rows_(A, lda, x, n, 4); return 1;
    default: return 0;
    }
}

#endif
