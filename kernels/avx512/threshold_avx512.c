/* threshold_avx512.c — threshold + compress (docs/SPEC.md §2), AVX-512.
 *
 *   d_i = s[i] - m (float),  keep_i = ga_keep(s[i], m, theta8[levels[i]])
 *   (d_i >= theta, and every finite s[i] for tau = 0, see internal.h)
 *   kept keys in increasing i: idx[k] = i, p[k] = exp(d_i); returns the count
 *   seed: *Z = sum_all exp(d_i);  renorm: *Z = sum_kept exp(d_i)
 * s [N], levels [N] (< 8), theta8 [8] -> idx, p [N + GA_KEEP_PAD], *Z.
 *
 * Branchless per element: per 16 keys, theta comes from the 8-entry table
 * held in one register (vpermps on the widened levels), the keep mask from
 * one compare, and idx / p are packed with vcompress and stored with a full
 * 16-lane store at the running count (so writes reach at most index
 * N + 14 < N + GA_KEEP_PAD).  exp is SLEEF's Sleef_expf16_u10avx512f:
 * seed mode exponentiates every key; renorm packs d first and exponentiates
 * only the kept values in a second pass over the packed array.
 * Special cases (N == 0, m = -inf / NaN / +inf) are checked once at entry
 * (ga_row_case).  When m > 2^100 (s - m may overflow to -inf) the keep mask
 * uses theta' (tau = 0 as -inf) and is and-ed with s > -inf (`wide`).
 * Alignment: none required.  Bytes read past the end: 0 (masked tails).
 */
#include <math.h>
#include <sleef.h>

#include "avx512.h"

/* keep mask of the 16 keys at i (lanes in k); *d receives s - m. */
static inline __attribute__((always_inline)) __mmask16
keep16(const float *s, const uint8_t *levels, int i, __mmask16 k, __m512 vm, __m512 theta,
       const int wide, __m512 *d)
{
    __m512 sv = _mm512_maskz_loadu_ps(k, s + i);
    __m128i lv8 = _mm_maskz_loadu_epi8(k, levels + i);
    __m512 th = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(lv8), theta);
    *d = _mm512_sub_ps(sv, vm);
    __mmask16 keep = _mm512_mask_cmp_ps_mask(k, *d, th, _CMP_GE_OQ);
    if (wide)
        keep = _mm512_mask_cmp_ps_mask(keep, sv, _mm512_set1_ps(-INFINITY), _CMP_GT_OQ);
    return keep;
}

static inline __attribute__((always_inline)) int
run(const float *s, int N, float m, const uint8_t *levels, const float *theta8,
    ga_norm mode, int32_t *idx, float *p, float *Z, const int wide);

int ga_avx512_threshold(const float *s, int N, float m, const uint8_t *levels,
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

static inline __attribute__((always_inline)) int
run(const float *s, int N, float m, const uint8_t *levels, const float *theta8,
    ga_norm mode, int32_t *idx, float *p, float *Z, const int wide)
{
    const __m512 vm = _mm512_set1_ps(m);
    const __m512 theta = _mm512_maskz_loadu_ps(0x00FF, theta8); /* lanes 0..7 */
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                           12, 13, 14, 15);
    __m512 zsum = _mm512_setzero_ps();
    int count = 0;

    if (mode == GA_NORM_SEED) {
        for (int i = 0; i < N; i += 16) {
            __mmask16 k = ga_avx512_mask(N - i);
            __m512 d;
            __mmask16 keep = keep16(s, levels, i, k, vm, theta, wide, &d);
            __m512 e = Sleef_expf16_u10avx512f(d);
            zsum = _mm512_mask_add_ps(zsum, k, zsum, e);
            __m512i iv = _mm512_add_epi32(_mm512_set1_epi32(i), iota);
            _mm512_storeu_si512(idx + count, _mm512_maskz_compress_epi32(keep, iv));
            _mm512_storeu_ps(p + count, _mm512_maskz_compress_ps(keep, e));
            count += __builtin_popcount(keep);
        }
        *Z = _mm512_reduce_add_ps(zsum);
        return count;
    }

    /* renorm: pack d of the kept keys, then exp over the packed values only */
    for (int i = 0; i < N; i += 16) {
        __mmask16 k = ga_avx512_mask(N - i);
        __m512 d;
        __mmask16 keep = keep16(s, levels, i, k, vm, theta, wide, &d);
        __m512i iv = _mm512_add_epi32(_mm512_set1_epi32(i), iota);
        _mm512_storeu_si512(idx + count, _mm512_maskz_compress_epi32(keep, iv));
        _mm512_storeu_ps(p + count, _mm512_maskz_compress_ps(keep, d));
        count += __builtin_popcount(keep);
    }
    for (int j = 0; j < count; j += 16) {
        __mmask16 k = ga_avx512_mask(count - j);
        __m512 e = Sleef_expf16_u10avx512f(_mm512_maskz_loadu_ps(k, p + j));
        _mm512_mask_storeu_ps(p + j, k, e);
        zsum = _mm512_mask_add_ps(zsum, k, zsum, e);
    }
    *Z = _mm512_reduce_add_ps(zsum);
    return count;
}
