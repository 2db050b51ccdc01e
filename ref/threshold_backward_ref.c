/* threshold_backward_ref.c — scalar reference of the attention-weight backward
 * through the threshold (docs/SPEC.md §4), both normalisation modes.
 *
 * With d_i = s[i] - m (float), p_i = (float)exp((double)d_i), a_i = p_i / Z and
 * keep_i = ga_keep(s[i], m, theta8[levels[i]]) (exactly as in `threshold`:
 * d_i >= theta, and every finite s for theta = -FLT_MAX, tau = 0):
 *   seed:   ds[i] = a_i * ((keep_i ? gv[i] : 0) - cdc)
 *   renorm: ds[i] = keep_i ? a_i * (gv[i] - cdc) : 0
 * If dpi != NULL (straight-through GPN gradient plus regulariser):
 *   G_i = a_i * gv[i] (seed)  or  a_i * (gv[i] - cdc) (renorm)
 *   dpi[l][i] += G_i + reg     for every l < L with ga_keep(s[i], m, theta8[l])
 * In seed mode a dropped key gets ds = -a_i * cdc (the gradient through Z);
 * its gv is selected away, not multiplied by 0, so a NaN/inf gv of a dropped
 * key does not leak.  A key with weight a_i == 0 (padding, s = -inf) gets
 * ds = 0 and never touches dpi.
 * Special cases (in this order): m == -inf or Z == 0 -> ds = 0, dpi unchanged;
 * m NaN, m == +inf or Z NaN -> ds = NaN, dpi unchanged.
 * s, gv [N], levels [N] (< 8), theta8 [8] -> ds [N] (overwritten),
 * dpi [L][ldpi] (accum).
 */
#include <math.h>

#include "internal.h"

void ga_ref_threshold_backward(const float *s, int N, float m, float Z,
                               const uint8_t *levels, const float *theta8, int L,
                               ga_norm mode, const float *gv, float cdc,
                               float *ds, float *dpi, int ldpi, float reg)
{
    ga_row rc = ga_row_case_z(N, m, Z);
    if (rc != GA_ROW_OK) {
        ga_fill_f32(ds, N, rc == GA_ROW_EMPTY ? 0.0f : NAN);
        return;
    }
    for (int i = 0; i < N; i++) {
        float d = s[i] - m;
        int keep = ga_keep(s[i], m, theta8[levels[i]]);
        float p = (float)exp((double)d);
        double a = (double)p / Z;

        double G;
        if (mode == GA_NORM_SEED) {
            double g = keep ? (double)gv[i] : 0.0;
            ds[i] = (float)(a * (g - cdc));
            G = a * gv[i];
        } else {
            ds[i] = keep ? (float)(a * ((double)gv[i] - cdc)) : 0.0f;
            G = a * ((double)gv[i] - cdc);
        }

        if (dpi) {
            for (int l = 0; l < L; l++) {
                if (ga_keep(s[i], m, theta8[l])) {
                    float *dst = &dpi[(size_t)l * ldpi + i];
                    *dst = (float)(*dst + (G + reg));
                }
            }
        }
    }
}
