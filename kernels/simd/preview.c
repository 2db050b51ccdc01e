/* preview.c — the float half of the prepared-keys preview (docs/SPEC.md §7),
 * written once against the SIMD vocabulary (simd.h), compiled per ISA.
 *
 * preview_bounds: one query's preview scores, upper bounds and m_lb:
 *   shat[i] = fma(w * kscale_i, dot[i], b_i)
 *   E_i     = fma(alpha, knorm_i, fma(beta, kerr_i, 2^-22 |b_i|))
 *   ub[i]   = shat[i] + E_i;   returns m_lb = max_i (shat[i] - E_i)
 *   meta [4][ldm] rows kscale, knorm, kerr, bias; qk = {w, alpha, beta};
 *   dot [N] -> shat [N], ub [N].  Padded keys (b_i = -inf): shat = ub = -inf,
 *   no part of m_lb; a NaN lower bound is no part of m_lb either.  The same
 *   operations in the same order as the reference: the same bits.
 * preview_select: cand = { i : ub[i] >= T8[levels[i]] } in increasing i.
 *   ub [N], levels [N] (< 8), T8 [8] -> cand; returns the count.  A
 *   branchless compress (store the index, advance by the compare), one key
 *   at a time: writes cand[0 .. N-1] at most.
 * Alignment: none required.  Bytes read or written past the end: 0.
 */
#include <math.h>

#include "simd.h"

float GA_FN(preview_bounds)(const float *dot, const float *meta, int ldm, int N,
                            const float *qk, float *shat, float *ub)
{
    const float *ks = meta, *kn = meta + ldm, *ke = meta + 2 * (size_t)ldm;
    const float *kb = meta + 3 * (size_t)ldm;
    const gav_t vw = gav_set1(qk[0]), va = gav_set1(qk[1]), vb = gav_set1(qk[2]);
    const gav_t c22 = gav_set1(0x1p-22f), zero = gav_zero(), ninf = gav_set1(-INFINITY);
    gav_t vmax = ninf;
    for (int i = 0; i < N; i += GAV_W) {
        const gav_mask_t m = gav_mask(N - i);
        const gav_t d = gav_load_mask(dot + i, m), b = gav_load_mask(kb + i, m);
        const gav_t ab = gav_max(b, gav_sub(zero, b)); /* |b| (b = -inf: selected away) */
        gav_t s = gav_fma(gav_mul(vw, gav_load_mask(ks + i, m)), d, b);
        gav_t e = gav_fma(va, gav_load_mask(kn + i, m),
                          gav_fma(vb, gav_load_mask(ke + i, m), gav_mul(c22, ab)));
        gav_t u = gav_add(s, e), l = gav_sub(s, e);
        s = gav_select_eq(b, ninf, ninf, s);
        u = gav_select_eq(b, ninf, ninf, u);
        l = gav_select_eq(l, l, l, ninf); /* NaN -> -inf */
        l = gav_select_eq(b, ninf, ninf, l);
        gav_store_mask(shat + i, m, s);
        gav_store_mask(ub + i, m, u);
        vmax = gav_max(vmax, gav_select(m, l, ninf));
    }
    return gav_hmax(vmax);
}

int GA_FN(preview_select)(const float *ub, int N, const uint8_t *levels, const float *T8,
                          int32_t *cand)
{
    int count = 0;
    for (int i = 0; i < N; i++) {
        cand[count] = i;
        count += ub[i] >= T8[levels[i]];
    }
    return count;
}
