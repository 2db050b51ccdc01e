/* threshold_ref.c — scalar reference of threshold + compress (docs/SPEC.md §2).
 *
 *   d_i    = s[i] - m                     (float subtraction)
 *   keep_i = d_i >= theta8[levels[i]]     (float compare, bit-reproducible)
 *            except theta8 == -FLT_MAX (tau = 0): keep_i = s[i] > -inf, so a
 *            finite score is kept even when d_i overflows to -inf (ga_keep)
 *   p_i    = (float)exp((double)d_i)
 * Kept keys in increasing i: idx[k] = i, p[k] = p_i; returns the kept count.
 *   seed:   *Z = sum over all keys of p_i (padding -inf keys give 0)
 *   renorm: *Z = sum over kept keys of p_i
 * (sums in double, rounded to float).
 * Special cases: N == 0 or m == -inf -> 0, *Z = 0;  m NaN or +inf -> 0, *Z = NaN.
 * s [N], levels [N] (< 8), theta8 [8] -> idx, p (only [0, count) written), *Z.
 */
#include <math.h>

#include "internal.h"

int ga_ref_threshold(const float *s, int N, float m, const uint8_t *levels,
                     const float *theta8, ga_norm mode, int32_t *idx, float *p,
                     float *Z)
{
    ga_row rc = ga_row_case(N, m);
    if (rc != GA_ROW_OK) {
        *Z = rc == GA_ROW_EMPTY ? 0.0f : NAN;
        return 0;
    }
    int count = 0;
    double sum_all = 0.0, sum_kept = 0.0;
    for (int i = 0; i < N; i++) {
        float d = s[i] - m;
        int keep = ga_keep(s[i], m, theta8[levels[i]]);
        float pi = (float)exp((double)d);
        sum_all += pi;
        if (keep) {
            idx[count] = i;
            p[count] = pi;
            sum_kept += pi;
            count++;
        }
    }
    *Z = (float)(mode == GA_NORM_SEED ? sum_all : sum_kept);
    return count;
}
