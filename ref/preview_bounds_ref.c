/* preview_bounds_ref.c — scalar reference of the preview scores and their
 * bounds (docs/SPEC.md §7), one query.
 *
 *   shat[i] = fma(w * kscale_i, dot[i], b_i)
 *   E_i     = fma(alpha, knorm_i, fma(beta, kerr_i, 2^-22 |b_i|))
 *   ub[i]   = shat[i] + E_i,   returns m_lb = max_i (shat[i] - E_i)
 * meta [4][ldm]: rows kscale, knorm, kerr, bias (b_i); qk = {w, alpha, beta}.
 * A padded key (b_i = -inf): shat = ub = -inf, not part of m_lb (-inf if no
 * key is left).  dot [N] -> shat [N], ub [N].
 * Every operation is one float rounding in a fixed order (fmaf is fused), so
 * the SIMD variants give the same bits; this is the definition the bound's
 * proof (docs/SPEC.md §7) is written for.
 */
#include <math.h>

#include "internal.h"

float ga_ref_preview_bounds(const float *dot, const float *meta, int ldm, int N,
                            const float *qk, float *shat, float *ub)
{
    const float *ks = meta, *kn = meta + ldm, *ke = meta + 2 * (size_t)ldm;
    const float *kb = meta + 3 * (size_t)ldm;
    const float w = qk[0], alpha = qk[1], beta = qk[2];
    float mlb = -INFINITY;
    for (int i = 0; i < N; i++) {
        const float b = kb[i];
        if (b == -INFINITY) {
            shat[i] = ub[i] = -INFINITY;
            continue;
        }
        const float s = fmaf(w * ks[i], dot[i], b);
        const float e = fmaf(alpha, kn[i], fmaf(beta, ke[i], 0x1p-22f * fabsf(b)));
        shat[i] = s;
        ub[i] = s + e;
        const float lb = s - e;
        if (lb > mlb)
            mlb = lb;
    }
    return mlb;
}
