/* threshold_backward_avx512.c — attention-weight backward through the
 * threshold (docs/SPEC.md §4), both normalisation modes, AVX-512.
 *
 * d_i = s[i] - m (float), p_i = exp(d_i), a_i = p_i / Z,
 * keep_i = d_i >= theta8[levels[i]] (the same float compare as `threshold`):
 *   seed:   ds[i] = a_i * ((keep_i ? gv[i] : 0) - cdc)
 *   renorm: ds[i] = keep_i ? a_i * (gv[i] - cdc) : 0
 * If dpi != NULL, G_i = a_i * gv[i] (seed) or a_i * (gv[i] - cdc) (renorm) and
 *   dpi[l][i] += G_i + reg   for every l < L with d_i >= theta8[l].
 * Dropped keys are selected away (masks), never multiplied by 0, so a NaN/inf
 * gv of a dropped key does not leak.  Special cases, in this order, once at
 * entry: m == -inf or Z == 0 -> ds = 0, dpi unchanged; m NaN, m == +inf or
 * Z NaN -> ds = NaN, dpi unchanged.
 * s, gv [N], levels [N] (< 8), theta8 [8] -> ds [N], dpi [L][ldpi] (accum).
 * exp: SLEEF Sleef_expf16_u10avx512f.  Alignment: none required.  Bytes
 * read past the end: 0 (masked tails; dpi is written only where kept).
 */
#include <math.h>
#include <sleef.h>

#include "avx512.h"

static void fill(float *x, int N, float v)
{
    __m512 vv = _mm512_set1_ps(v);
    for (int i = 0; i < N; i += 16)
        _mm512_mask_storeu_ps(x + i, ga_avx512_mask(N - i), vv);
}

void ga_avx512_threshold_backward(const float *s, int N, float m, float Z,
                                  const uint8_t *levels, const float *theta8,
                                  int L, ga_norm mode, const float *gv, float cdc,
                                  float *ds, float *dpi, int ldpi, float reg)
{
    if (m == -INFINITY || Z == 0.0f) {
        fill(ds, N, 0.0f);
        return;
    }
    if (isnan(m) || m == INFINITY || isnan(Z)) {
        fill(ds, N, NAN);
        return;
    }
    const __m512 vm = _mm512_set1_ps(m), vz = _mm512_set1_ps(Z);
    const __m512 vcdc = _mm512_set1_ps(cdc), vreg = _mm512_set1_ps(reg);
    const __m512 theta = _mm512_maskz_loadu_ps(0x00FF, theta8); /* lanes 0..7 */

    for (int i = 0; i < N; i += 16) {
        __mmask16 k = ga_avx512_mask(N - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + i), vm);
        __m512i lv = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, levels + i));
        __m512 th = _mm512_permutexvar_ps(lv, theta);
        __mmask16 keep = _mm512_mask_cmp_ps_mask(k, d, th, _CMP_GE_OQ);
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
                    k, d, _mm512_set1_ps(theta8[l]), _CMP_GE_OQ);
                float *row = dpi + (size_t)l * ldpi + i;
                __m512 cur = _mm512_maskz_loadu_ps(kl, row);
                _mm512_mask_storeu_ps(row, kl, _mm512_add_ps(cur, add));
            }
        }
    }
}
