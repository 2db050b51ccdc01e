/* threshold_backward_avx512.c — attention-weight backward through the
 * threshold (docs/SPEC.md §4), both normalisation modes, AVX-512.
 *
 * d_i = s[i] - m (float), p_i = exp(d_i), a_i = p_i / Z,
 * keep_i = ga_keep(s[i], m, theta8[levels[i]]) (the same rule as `threshold`:
 * d_i >= theta, and every finite s[i] for tau = 0; as masks: d >= theta'
 * with tau = 0 as theta' = -inf, and-ed with s > -inf):
 *   seed:   ds[i] = a_i * ((keep_i ? gv[i] : 0) - cdc)
 *   renorm: ds[i] = keep_i ? a_i * (gv[i] - cdc) : 0
 * If dpi != NULL, G_i = a_i * gv[i] (seed) or a_i * (gv[i] - cdc) (renorm) and
 *   dpi[l][i] += G_i + reg   for every l < L with ga_keep(s[i], m, theta8[l]).
 * Seed mode: a dropped key gets ds = -a_i cdc; padding (s = -inf) gets 0.
 * Dropped keys are selected away (masks), never multiplied by 0, so a NaN/inf
 * gv of a dropped key does not leak.  Special cases (ga_row_case_z), in this
 * order, once at entry: m == -inf or Z == 0 -> ds = 0, dpi unchanged; m NaN, m == +inf or
 * Z NaN -> ds = NaN, dpi unchanged.
 * s, gv [N], levels [N] (< 8), theta8 [8] -> ds [N], dpi [L][ldpi] (accum).
 * exp: SLEEF Sleef_expf16_u10avx512f.  Alignment: none required.  Bytes
 * read past the end: 0 (masked tails; dpi is written only where kept).
 */
#include <math.h>
#include <sleef.h>

#include "avx512.h"

static inline __attribute__((always_inline)) void
run(const float *s, int N, float m, float Z, const uint8_t *levels, const float *th8, int L,
    ga_norm mode, const float *gv, float cdc, float *ds, float *dpi, int ldpi, float reg,
    const int wide)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512 vm = _mm512_set1_ps(m), vz = _mm512_set1_ps(Z);
    const __m512 vcdc = _mm512_set1_ps(cdc), vreg = _mm512_set1_ps(reg);
    const __m512 theta = _mm512_maskz_loadu_ps(0x00FF, th8); /* lanes 0..7 */

    for (int i = 0; i < N; i += 16) {
        __mmask16 k = ga_avx512_mask(N - i);
        __m512 sv = _mm512_maskz_loadu_ps(k, s + i);
        /* wide (m > 2^100): every mask also needs s > -inf (ga_keep) */
        __mmask16 fin = wide ? _mm512_mask_cmp_ps_mask(k, sv, ninf, _CMP_GT_OQ) : k;
        __m512 d = _mm512_sub_ps(sv, vm);
        __m512i lv = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, levels + i));
        __m512 th = _mm512_permutexvar_ps(lv, theta);
        __mmask16 keep = _mm512_mask_cmp_ps_mask(fin, d, th, _CMP_GE_OQ);
        __m512 a = _mm512_div_ps(Sleef_expf16_u10avx512f(d), vz);
        __m512 g = _mm512_maskz_loadu_ps(k, gv + i);
        __m512 dsv, G;
        if (mode == GA_NORM_SEED) {
            dsv = _mm512_mul_ps(a, _mm512_sub_ps(_mm512_maskz_mov_ps(keep, g), vcdc));
            G = _mm512_mul_ps(a, g);
        } else {
            G = _mm512_mul_ps(a, _mm512_sub_ps(g, vcdc));
            dsv = _mm512_maskz_mov_ps(keep, G);
        }
        _mm512_mask_storeu_ps(ds + i, k, dsv);

        if (dpi) {
            __m512 add = _mm512_add_ps(G, vreg);
            for (int l = 0; l < L; l++) {
                __mmask16 kl = _mm512_mask_cmp_ps_mask(
                    fin, d, _mm512_set1_ps(th8[l]), _CMP_GE_OQ);
                float *row = dpi + (size_t)l * ldpi + i;
                __m512 cur = _mm512_maskz_loadu_ps(kl, row);
                _mm512_mask_storeu_ps(row, kl, _mm512_add_ps(cur, add));
            }
        }
    }
}

void ga_avx512_threshold_backward(const float *s, int N, float m, float Z,
                                  const uint8_t *levels, const float *theta8,
                                  int L, ga_norm mode, const float *gv, float cdc,
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
