/* preview_select_avx512.c — candidate selection of the prepared step
 * (docs/SPEC.md §7), AVX-512.
 *
 *   cand = { i : ub[i] >= T8[levels[i]] } in increasing i; returns the count
 *   (float compare, ordered: a NaN ub is never a candidate).
 * ub [N], levels [N] (< 8), T8 [8] -> cand [N + GA_KEEP_PAD].
 *
 * Branchless, 16 keys per step: the thresholds come from the 8-entry table
 * held in one register (vpermps on the widened levels, as in
 * threshold_avx512.c), the candidate mask from one compare, and the key
 * indices are packed with vpcompressd into a register and stored as a full
 * 16-lane vector at the running count (so writes reach at most index
 * N + 14 < N + GA_KEEP_PAD, as the contract allows); count += popcount.
 * The last N % 16 keys use masked loads (nothing past ub[N-1] or
 * levels[N-1] is read).  Alignment: none required.
 * Measured (one core of the 2-core Xeon VM, shared; min of trials, density
 * 0.05-0.9): N = 64 / 256 / 1024 / 4096: 16-19 / 34-37 / 119-142 /
 * 530-640 ns, against 47 / 188 / 700-920 / 2750 ns for the generic
 * one-key-at-a-time loop (2.5x at N = 64, 5-6x from N = 256).  About 7.5
 * cycles per 16 keys: port 5 carries the widening, vpermps, the compare
 * and vpcompressd.  A masked compress-store (vpcompressd to memory) was as
 * fast; a masked store of the popcount lanes and two 8-lane halves slower.
 */
#include "avx512.h"

int ga_avx512_preview_select(const float *ub, int N, const uint8_t *levels, const float *T8,
                             int32_t *cand)
{
    const __m512 table = _mm512_maskz_loadu_ps(0x00FF, T8); /* lanes 0..7 */
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                           14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    __m512i key = iota;
    int count = 0, i = 0;
    for (; i + 16 <= N; i += 16) {
        const __m512 u = _mm512_loadu_ps(ub + i);
        const __m512i lv = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(levels + i)));
        const __mmask16 k = _mm512_cmp_ps_mask(u, _mm512_permutexvar_ps(lv, table), _CMP_GE_OQ);
        _mm512_storeu_si512(cand + count, _mm512_maskz_compress_epi32(k, key));
        count += __builtin_popcount((unsigned)k);
        key = _mm512_add_epi32(key, step);
    }
    if (i < N) {
        const __mmask16 m = ga_avx512_mask(N - i);
        const __m512 u = _mm512_maskz_loadu_ps(m, ub + i);
        const __m512i lv = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, levels + i));
        const __mmask16 k =
            _mm512_mask_cmp_ps_mask(m, u, _mm512_permutexvar_ps(lv, table), _CMP_GE_OQ);
        _mm512_storeu_si512(cand + count, _mm512_maskz_compress_epi32(k, key));
        count += __builtin_popcount((unsigned)k);
    }
    return count;
}
