/* threshold_avx2.c — keep decision + compress (docs/SPEC.md §2), AVX2 + FMA.
 *
 * keep_i = ga_keep(s[i], m, theta8[levels[i]]) (s[i] - m >= theta, and every
 * finite score for tau = 0); for the kept keys in increasing i: idx[k] = i,
 * p[k] = exp(s[i] - m).  Returns the kept count; *Z is sum_all exp(s[i] - m)
 * (seed) or sum_kept p (renorm).
 * Special cases, checked once at entry (ga_row_case): N == 0 or m == -inf
 * -> 0, *Z = 0; m NaN or +inf -> 0, *Z = NaN.
 * s [N], levels [N] (< 8), theta8 [8] -> idx, p [N + GA_KEEP_PAD], *Z.
 *
 * Branchless per 8 keys: d = s - m (a float subtraction, as in the scalar
 * reference, so decisions match bit for bit); theta per key comes from the
 * 8-entry table held in one register (permutevar8x32 indexed by the levels);
 * keep = d >= theta (when m > 2^100, where s - m may overflow to -inf, the
 * `wide` form (d >= theta') & (s > -inf) with tau = 0 as theta' = -inf, see
 * internal.h); its 8-bit movemask selects a row of a 256-entry table
 * of lane indices that left-packs the kept lanes; the full 8 lanes of idx and
 * p are stored at position `count` (the contract allows writes up to
 * N + GA_KEEP_PAD - 1) and count += popcount(mask).
 * seed: exp of every d (SLEEF), Z over all keys.  renorm: the kept d are
 * packed first, then a second pass takes exp of the packed values only.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include <math.h>
#include <sleef.h>

#include "avx2.h"

/* One pass over the keys; seed != 0 also takes exp and sums it into *zsum.
 * In renorm mode p receives the packed d values (exp comes later). */
GA_AVX2_INLINE int compress(const float *s, int N, float m, const uint8_t *levels,
                            const float *theta8, const int seed, const int wide,
                            int32_t *idx, float *p, __m256 *zsum)
{
    const __m256 vm = _mm256_set1_ps(m);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    float open[GA_MAX_LEVELS];
    if (wide)
        ga_theta_open(theta8, open);
    const __m256 vtheta = _mm256_loadu_ps(wide ? open : theta8);
    const __m256i step = _mm256_set1_epi32(8);
    __m256i key = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 z = _mm256_setzero_ps();
    int count = 0;
    for (int i = 0; i < N; i += 8) {
        int n = N - i < 8 ? N - i : 8;
        __m256 sv = n == 8 ? _mm256_loadu_ps(s + i) : ga_avx2_load_tail(s + i, n);
        __m256 d = _mm256_sub_ps(sv, vm);
        __m256i lv = ga_avx2_load_levels(levels + i, n);
        __m256 theta = _mm256_permutevar8x32_ps(vtheta, lv);
        __m256 keep = _mm256_cmp_ps(d, theta, _CMP_GE_OQ);
        if (wide)
            keep = _mm256_and_ps(keep, _mm256_cmp_ps(sv, ninf, _CMP_GT_OQ));
        int mask = _mm256_movemask_ps(keep) & ((1 << n) - 1);
        __m256i perm = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)ga_avx2_pack[mask]));

        _mm256_storeu_si256((__m256i *)(idx + count), _mm256_permutevar8x32_epi32(key, perm));
        if (seed) {
            __m256 e = Sleef_expf8_u10avx2(d);
            if (n < 8)
                e = _mm256_and_ps(e, _mm256_castsi256_ps(ga_avx2_tail_mask(n)));
            z = _mm256_add_ps(z, e);
            _mm256_storeu_ps(p + count, _mm256_permutevar8x32_ps(e, perm));
        } else {
            _mm256_storeu_ps(p + count, _mm256_permutevar8x32_ps(d, perm));
        }
        count += __builtin_popcount((unsigned)mask);
        key = _mm256_add_epi32(key, step);
    }
    *zsum = z;
    return count;
}

int ga_avx2_threshold(const float *s, int N, float m, const uint8_t *levels,
                      const float *theta8, ga_norm mode, int32_t *idx, float *p,
                      float *Z)
{
    ga_row rc = ga_row_case(N, m);
    if (rc != GA_ROW_OK) {
        *Z = rc == GA_ROW_EMPTY ? 0.0f : NAN;
        return 0;
    }
    ga_avx2_pack_init();

    __m256 z;
    const int wide = ga_theta_wide(m);
    if (mode == GA_NORM_SEED) {
        int count = wide ? compress(s, N, m, levels, theta8, 1, 1, idx, p, &z)
                         : compress(s, N, m, levels, theta8, 1, 0, idx, p, &z);
        *Z = ga_avx2_hsum(z);
        return count;
    }
    int count = wide ? compress(s, N, m, levels, theta8, 0, 1, idx, p, &z)
                     : compress(s, N, m, levels, theta8, 0, 0, idx, p, &z);
    /* renorm: exp of the packed kept d values, Z = their sum. */
    z = _mm256_setzero_ps();
    for (int k = 0; k < count; k += 8) {
        int n = count - k < 8 ? count - k : 8;
        __m256 e = Sleef_expf8_u10avx2(ga_avx2_load_tail(p + k, n));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(ga_avx2_tail_mask(n)));
        z = _mm256_add_ps(z, e);
        ga_avx2_store_tail(p + k, n, e);
    }
    *Z = ga_avx2_hsum(z);
    return count;
}
