/* preview.c — the float half of the prepared-keys preview (docs/SPEC.md §7),
 * written once against the SIMD vocabulary (simd.h), compiled per ISA.
 *
 * preview_bounds: one query's preview scores, upper bounds and m_lb:
 *   shat[i] = fma(w * kscale_i, dot[i], b_i)
 *   E_i     = fma(alpha, knorm_i, fma(beta, kerr_i, 2^-22 |b_i|))
 *   ub[i]   = shat[i] + E_i;   returns m_lb = max_i (shat[i] - E_i) (a zero
 *   lower bound counts as +0: the max of the lanes is then order-free)
 *   meta [4][ldm] rows kscale, knorm, kerr, bias; qk = {w, alpha, beta};
 *   dot [N] -> shat [N], ub [N].  Padded keys (b_i = -inf): shat = ub = -inf,
 *   no part of m_lb; a NaN lower bound is no part of m_lb either.  The same
 *   operations in the same order as the reference: the same bits.
 * preview_select (NEON only; AVX2 and AVX-512: kernels/<isa>/):
 *   cand = { i : ub[i] >= T8[levels[i]] } in increasing i.
 *   ub [N], levels [N] (< 8), T8 [8] -> cand; returns the count.  A
 *   branchless compress (store the index, advance by the compare), one key
 *   at a time: writes cand[0 .. N-1] at most.
 * preview_bounds goes GAV_W keys at a time with plain loads and stores and
 * masks only the last partial vector (masked loads/stores on every block
 * were 15-35% slower, most on AVX2's vmaskmovps).  Measured (dh-free: 28
 * bytes per key; one core of the shared 2-core Xeon VM, min of trials):
 * AVX-512 N = 64 / 256 / 1024 / 4096: 23 / 79 / 284 / 2040 ns (78 / 91 /
 * 101 / 56 GB/s); AVX2: 40 / 141 / 554 / 2255 ns (44-52 GB/s).
 * Alignment: none required.  Bytes read or written past the end: 0.
 */
#include <math.h>

#include "simd.h"

/* The GAV_W keys at i (lanes in m; full: all lanes, plain loads and
 * stores); folds their lower bounds into *vmax. */
GAV_INLINE void bounds_block(const float *dot, const float *ks, const float *kn,
                             const float *ke, const float *kb, int i, gav_mask_t m,
                             const int full, gav_t vw, gav_t va, gav_t vb, float *shat,
                             float *ub, gav_t *vmax)
{
    const gav_t c22 = gav_set1(0x1p-22f), zero = gav_zero(), ninf = gav_set1(-INFINITY);
#define GA_LD(p) (full ? gav_load(p) : gav_load_mask(p, m))
    const gav_t d = GA_LD(dot + i), b = GA_LD(kb + i);
    const gav_t ab = gav_max(b, gav_sub(zero, b)); /* |b| (b = -inf: selected away) */
    gav_t s = gav_fma(gav_mul(vw, GA_LD(ks + i)), d, b);
    gav_t e = gav_fma(va, GA_LD(kn + i), gav_fma(vb, GA_LD(ke + i), gav_mul(c22, ab)));
#undef GA_LD
    gav_t u = gav_add(s, e), l = gav_add(gav_sub(s, e), zero); /* -0 -> +0 */
    s = gav_select_eq(b, ninf, ninf, s);
    u = gav_select_eq(b, ninf, ninf, u);
    l = gav_select_eq(l, l, l, ninf); /* NaN -> -inf */
    l = gav_select_eq(b, ninf, ninf, l);
    if (full) {
        gav_store(shat + i, s);
        gav_store(ub + i, u);
        *vmax = gav_max(*vmax, l);
    } else {
        gav_store_mask(shat + i, m, s);
        gav_store_mask(ub + i, m, u);
        *vmax = gav_max(*vmax, gav_select(m, l, ninf));
    }
}

float GA_FN(preview_bounds)(const float *dot, const float *meta, int ldm, int N,
                            const float *qk, float *shat, float *ub)
{
    const float *ks = meta, *kn = meta + ldm, *ke = meta + 2 * (size_t)ldm;
    const float *kb = meta + 3 * (size_t)ldm;
    const gav_t vw = gav_set1(qk[0]), va = gav_set1(qk[1]), vb = gav_set1(qk[2]);
    gav_t vmax = gav_set1(-INFINITY);
    int i = 0;
    for (; i + GAV_W <= N; i += GAV_W)
        bounds_block(dot, ks, kn, ke, kb, i, gav_mask(GAV_W), 1, vw, va, vb, shat, ub, &vmax);
    if (i < N)
        bounds_block(dot, ks, kn, ke, kb, i, gav_mask(N - i), 0, vw, va, vb, shat, ub, &vmax);
    return gav_hmax(vmax);
}

/* AVX2 and AVX-512 have hand-written versions (compare + compress, 8 or 16
 * keys per step: kernels/<isa>/preview_select_<isa>.c); NEON uses this one. */
#if GA_SIMD_ISA == 3
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
#endif
