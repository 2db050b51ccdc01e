/* threshold_backward_neon.c — attention-weight backward through the threshold
 * (docs/SPEC.md §4), both normalisation modes, AArch64 NEON.
 *
 * Per 4 keys, with d = s - m (float), keep = ga_keep(s, m, theta8[levels[i]])
 * as masks: (d >= theta') & (s > -inf) with tau = 0 as theta' = -inf (every
 * finite score kept at tau = 0), p = exp(d) (SLEEF expf) and a = p / Z:
 *   seed:   ds = a * (select(keep, gv, 0) - cdc),   G = a * gv
 *   renorm: ds = select(keep, a * (gv - cdc), 0),   G = a * (gv - cdc)
 *   dpi[l][i] = select(keep_l, dpi[l][i] + (G + reg), dpi[l][i]), l < L
 * Selects, not multiplies: a NaN/inf gv of a dropped key does not leak.
 * Seed mode: a dropped key gets ds = -a cdc; padding (s = -inf) gets 0.
 * Special cases (ga_row_case_z, once, in this order): m == -inf or Z == 0 -> ds = 0,
 * dpi unchanged; m NaN, m == +inf or Z NaN -> ds = NaN, dpi unchanged.
 * s, gv [N], levels [N] (< 8), theta8 [8] -> ds [N] (overwritten),
 * dpi [L][ldpi] (accum).  Alignment: none.  Bytes read past the end: 0.
 */
#include <math.h>
#include <sleef.h>

#include "neon.h"

static inline __attribute__((always_inline)) void
run(const float *s, int N, float m, float Z, const uint8_t *levels, const float *th8, int L,
    ga_norm mode, const float *gv, float cdc, float *ds, float *dpi, int ldpi, float reg,
    const int wide)
{
    const uint8x16x2_t table = ga_neon_theta_table(th8);
    const float32x4_t ninf = vdupq_n_f32(-INFINITY);
    const float32x4_t vm = vdupq_n_f32(m), vz = vdupq_n_f32(Z);
    const float32x4_t vcdc = vdupq_n_f32(cdc), vreg = vdupq_n_f32(reg);
    const float32x4_t zero = vdupq_n_f32(0.0f);
    const int seed = mode == GA_NORM_SEED;

    for (int i = 0; i < N; i += 4) {
        int n = N - i < 4 ? N - i : 4;
        float32x4_t sv, g;
        uint8_t lv[4];
        if (n == 4) {
            sv = vld1q_f32(s + i);
            g = vld1q_f32(gv + i);
            memcpy(lv, levels + i, 4);
        } else {
            sv = ga_neon_load_tail(s + i, n, -INFINITY);
            g = ga_neon_load_tail(gv + i, n, 0.0f);
            ga_neon_levels_tail(levels + i, n, lv);
        }
        float32x4_t d = vsubq_f32(sv, vm);
        /* wide (m > 2^100): every mask also needs s > -inf (ga_keep) */
        uint32x4_t fin = wide ? vcgtq_f32(sv, ninf) : vdupq_n_u32(~0u);
        uint32x4_t keep = vcgeq_f32(d, ga_neon_theta4(table, lv));
        if (wide)
            keep = vandq_u32(fin, keep);
        float32x4_t a = vdivq_f32(Sleef_expf4_u10advsimd(d), vz);

        float32x4_t dsv, G;
        if (seed) {
            dsv = vmulq_f32(a, vsubq_f32(vbslq_f32(keep, g, zero), vcdc));
            G = vmulq_f32(a, g);
        } else {
            G = vmulq_f32(a, vsubq_f32(g, vcdc));
            dsv = vbslq_f32(keep, G, zero);
        }
        if (n == 4)
            vst1q_f32(ds + i, dsv);
        else
            ga_neon_store_tail(ds + i, n, dsv);

        if (dpi) {
            float32x4_t add = vaddq_f32(G, vreg);
            for (int l = 0; l < L; l++) {
                uint32x4_t kl = vcgeq_f32(d, vdupq_n_f32(th8[l]));
                if (wide)
                    kl = vandq_u32(fin, kl);
                float *dst = dpi + (size_t)l * ldpi + i;
                float32x4_t old = n == 4 ? vld1q_f32(dst) : ga_neon_load_tail(dst, n, 0.0f);
                float32x4_t upd = vbslq_f32(kl, vaddq_f32(old, add), old);
                if (n == 4)
                    vst1q_f32(dst, upd);
                else
                    ga_neon_store_tail(dst, n, upd);
            }
        }
    }
}

void ga_neon_threshold_backward(const float *s, int N, float m, float Z,
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
