/* preview_select_avx2.c — candidate selection of the prepared step
 * (docs/SPEC.md §7), AVX2.
 *
 *   cand = { i : ub[i] >= T8[levels[i]] } in increasing i; returns the count
 *   (float compare, ordered: a NaN ub is never a candidate).
 * ub [N], levels [N] (< 8), T8 [8] -> cand [N + GA_KEEP_PAD].
 *
 * Branchless, 8 keys per step: the thresholds come from the 8-entry table
 * held in one register (vpermps indexed by the widened levels), the
 * candidate mask from one compare; its 8-bit movemask selects a row of a
 * 256-entry table of lane indices that left-packs the candidate lanes
 * (vpermd), as in threshold_avx2.c; the full 8 indices are stored at the
 * running count (writes reach at most index N + 6 < N + GA_KEEP_PAD, as the
 * contract allows) and count += popcount(mask).  The last N % 8 keys use a
 * masked load of ub and a copy of their levels (nothing past ub[N-1] or
 * levels[N-1] is read).  Alignment: none required.
 * Measured (one core of the 2-core Xeon VM, shared; min of trials, density
 * 0.05-0.9): N = 64 / 256 / 1024 / 4096: 26-29 / 65-78 / 227-256 /
 * 936-1095 ns, against 47 / 188 / 700-920 / 2750 ns for the generic
 * one-key-at-a-time loop (1.7x at N = 64, 2.5-3.5x from N = 256).
 */
#include "avx2.h"

/* Packs the candidate lanes of the 8 keys at i (keys >= i + n excluded)
 * to cand + count; returns the new count. */
GA_AVX2_INLINE int step8(__m256 u, __m256i lv, __m256 table, __m256i key, int n,
                         int32_t *cand, int count)
{
    const __m256 ge = _mm256_cmp_ps(u, _mm256_permutevar8x32_ps(table, lv), _CMP_GE_OQ);
    const int mask = _mm256_movemask_ps(ge) & ((1 << n) - 1);
    const __m256i perm = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)ga_avx2_pack[mask]));
    _mm256_storeu_si256((__m256i *)(cand + count), _mm256_permutevar8x32_epi32(key, perm));
    return count + __builtin_popcount((unsigned)mask);
}

int ga_avx2_preview_select(const float *ub, int N, const uint8_t *levels, const float *T8,
                           int32_t *cand)
{
    ga_avx2_pack_init();
    const __m256 table = _mm256_loadu_ps(T8);
    const __m256i step = _mm256_set1_epi32(8);
    __m256i key = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int count = 0, i = 0;
    for (; i + 8 <= N; i += 8) {
        const __m256 u = _mm256_loadu_ps(ub + i);
        const __m256i lv = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(levels + i)));
        count = step8(u, lv, table, key, 8, cand, count);
        key = _mm256_add_epi32(key, step);
    }
    if (i < N)
        count = step8(ga_avx2_load_tail(ub + i, N - i), ga_avx2_load_levels(levels + i, N - i),
                      table, key, N - i, cand, count);
    return count;
}
