/* threshold_backward_avx2.c — attention-weight backward through the
 * threshold (docs/SPEC.md §4), both modes, AVX2 + FMA.
 *
 * With d_i = s_i - m, p_i = exp(d_i), a_i = p_i / Z and
 * keep_i = ga_keep(s_i, m, theta8[levels[i]]) exactly as in `threshold`
 * (d_i >= theta, and every finite s_i for tau = 0):
 *   seed:   ds[i] = a_i * (keep_i * gv[i] - cdc)
 *   renorm: ds[i] = keep_i * a_i * (gv[i] - cdc)
 * If dpi != NULL, with G_i = a_i gv[i] (seed) or a_i (gv[i] - cdc) (renorm):
 *   dpi[l][i] += (G_i + reg) * ga_keep(s_i, m, theta8[l])     for l < L.
 * In seed mode a dropped key gets ds = -a_i cdc; padding (s = -inf) gets 0.
 * Special cases (ga_row_case_z, once, in this order): m == -inf or Z == 0 ->
 * ds = 0, dpi unchanged; m NaN, m == +inf or Z NaN -> ds = NaN, dpi unchanged.
 * s, gv [N], levels [N] (< 8), theta8 [8] -> ds [N] (overwritten),
 * dpi [L][ldpi] (accum).
 *
 * 8 keys per step, branchless: theta per key by permutevar8x32 of the
 * 8-entry table, keep and the level indicators as compare masks (when
 * m > 2^100: tau = 0 as -inf (ga_theta_open) and each mask and-ed with
 * s > -inf, see ga_keep), applied with and/blend (a key outside level l leaves dpi[l][i] bitwise unchanged).
 * exp is SLEEF's Sleef_expf8_u10avx2.  Masked tails.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include <math.h>
#include <sleef.h>

#include "avx2.h"

/* The loop; th8 is theta8, or ga_theta_open(theta8) when `wide` (m > 2^100:
 * then every keep mask is and-ed with s > -inf). */
GA_AVX2_INLINE void run(const float *s, int N, float m, float Z, const uint8_t *levels,
                        const float *th8, int L, ga_norm mode, const float *gv, float cdc,
                        float *ds, float *dpi, int ldpi, float reg, const int wide)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    const int seed = mode == GA_NORM_SEED;
    const __m256 vm = _mm256_set1_ps(m);
    const __m256 vz = _mm256_set1_ps(Z);
    const __m256 vcdc = _mm256_set1_ps(cdc);
    const __m256 vreg = _mm256_set1_ps(reg);
    const __m256 vtheta = _mm256_loadu_ps(th8);
    for (int i = 0; i < N; i += 8) {
        int n = N - i < 8 ? N - i : 8;
        __m256i mask = ga_avx2_tail_mask(n);
        __m256 sv = _mm256_maskload_ps(s + i, mask);
        const __m256 fin = wide ? _mm256_cmp_ps(sv, ninf, _CMP_GT_OQ) : ninf; /* unused */
        __m256 d = _mm256_sub_ps(sv, vm);
        __m256 g = _mm256_maskload_ps(gv + i, mask);
        __m256 a = _mm256_div_ps(Sleef_expf8_u10avx2(d), vz);
        __m256 theta = _mm256_permutevar8x32_ps(vtheta, ga_avx2_load_levels(levels + i, n));
        __m256 keep = _mm256_cmp_ps(d, theta, _CMP_GE_OQ);
        if (wide)
            keep = _mm256_and_ps(fin, keep);

        __m256 dsv, G;
        if (seed) {
            dsv = _mm256_mul_ps(a, _mm256_sub_ps(_mm256_and_ps(keep, g), vcdc));
            G = _mm256_mul_ps(a, g);
        } else {
            G = _mm256_mul_ps(a, _mm256_sub_ps(g, vcdc));
            dsv = _mm256_and_ps(keep, G);
        }
        _mm256_maskstore_ps(ds + i, mask, dsv);

        if (dpi) {
            G = _mm256_add_ps(G, vreg);
            for (int l = 0; l < L; l++) {
                float *row = dpi + (size_t)l * ldpi + i;
                __m256 on = _mm256_cmp_ps(d, _mm256_set1_ps(th8[l]), _CMP_GE_OQ);
                if (wide)
                    on = _mm256_and_ps(fin, on);
                __m256 old = _mm256_maskload_ps(row, mask);
                __m256 acc = _mm256_blendv_ps(old, _mm256_add_ps(old, G), on);
                _mm256_maskstore_ps(row, mask, acc);
            }
        }
    }
}

void ga_avx2_threshold_backward(const float *s, int N, float m, float Z,
                                const uint8_t *levels, const float *theta8, int L,
                                ga_norm mode, const float *gv, float cdc,
                                float *ds, float *dpi, int ldpi, float reg)
{
    ga_row rc = ga_row_case_z(N, m, Z);
    if (rc != GA_ROW_OK) {
        ga_fill_f32(ds, N, rc == GA_ROW_EMPTY ? 0.0f : NAN);
        return;
    }
    if (ga_theta_wide(m)) {
        float open[GA_MAX_LEVELS];
        ga_theta_open(theta8, open);
        run(s, N, m, Z, levels, open, L, mode, gv, cdc, ds, dpi, ldpi, reg, 1);
    } else {
        run(s, N, m, Z, levels, theta8, L, mode, gv, cdc, ds, dpi, ldpi, reg, 0);
    }
}
