/* preview_select_ref.c — scalar reference of the candidate selection
 * (docs/SPEC.md §7).
 *
 *   cand = { i : ub[i] >= T8[levels[i]] } in increasing i; returns the count
 * ub [N], levels [N] (< 8), T8 [8] -> cand [count] (the SIMD variants may
 * write up to index N + GA_KEEP_PAD - 1).  NaN is never a candidate.
 */
#include "internal.h"

int ga_ref_preview_select(const float *ub, int N, const uint8_t *levels, const float *T8,
                          int32_t *cand)
{
    int count = 0;
    for (int i = 0; i < N; i++)
        if (ub[i] >= T8[levels[i]])
            cand[count++] = i;
    return count;
}
