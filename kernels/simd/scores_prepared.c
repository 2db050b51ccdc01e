/* scores_prepared.c — exact scores for the prepared step (docs/SPEC.md §7),
 * written once against the SIMD vocabulary (simd.h), compiled per ISA.
 *
 * scores_gather: the `scores` of keys idx[0..count) for one query,
 *   s[k] = scale * (q . K[idx[k]]) + (bias ? bias[idx[k]] : 0); returns max.
 *   K [*][dh], q [dh], bias [*] or NULL, idx [count] -> s [count].
 *   GAV_W gathered rows at a time through gav_dot_rows_ptr: each row's
 *   arithmetic (chunks in order, the same FMA chain, the same reduction
 *   tree) is the one `scores` applies to it (gav_dot_rows), so the bits are
 *   the same; lanes past count repeat the last row and are not stored.  A
 *   block with a non-finite float result (of an unpadded key) is recomputed
 *   exactly by the reference, key by key.
 * scores_packed: scores from keys packed across lanes,
 *   s[i] = scale * sum_d q[d] * Kp[i/16][d][i%16] + (bias ? bias[i] : 0).
 *   Kp [ceil(N/16)][dh][16], q [dh], bias [N] or NULL -> s [N]; returns max.
 *   No horizontal reduction: one broadcast of q[d] feeds GAV_W keys per
 *   FMA.  PB panels of 16 keys are in flight at once (8 accumulators) to
 *   cover the FMA latency; then panels one at a time.  The last panel is
 *   computed whole (its lanes past N are readable, zeros) and stored masked.
 *   Non-finite float results of unpadded keys are recomputed exactly
 *   (ga_ref_scores_packed_range).
 * Both: padded keys (bias -inf) get exactly -inf; NaN is sticky in the max.
 * Alignment: none required.  Bytes read past the end: 0 (scores_packed
 * reads whole panels, which the layout provides).
 */
#include <math.h>

#include "simd.h"

/* 1 if every lane of v is finite. */
GAV_INLINE int lanes_finite(gav_t v)
{
    return !gav_flags_any(gav_flags_nan(gav_flags_none(), gav_sub(v, v)));
}

float GA_FN(scores_gather)(const float *K, int dh, const int32_t *idx, int count,
                           const float *q, float scale, const float *bias, float *s)
{
    const gav_t vscale = gav_set1(scale), ninf = gav_set1(-INFINITY), zero = gav_zero();
    gav_t vmax = ninf;
    gav_flags_t nan = gav_flags_none();
    for (int k0 = 0; k0 < count; k0 += GAV_W) {
        const int n = count - k0 < GAV_W ? count - k0 : GAV_W;
        const gav_mask_t m = gav_mask(n);
        const float *rows[GAV_W];
        for (int r = 0; r < GAV_W; r++)
            rows[r] = K + (size_t)idx[k0 + (r < n ? r : n - 1)] * dh;
        gav_t v = gav_mul(gav_dot_rows_ptr(rows, q, dh), vscale);
        gav_t chk = v;
        if (bias) {
            float bb[GAV_W];
            for (int r = 0; r < GAV_W; r++)
                bb[r] = bias[idx[k0 + (r < n ? r : n - 1)]];
            const gav_t b = gav_load(bb);
            chk = gav_select_eq(b, ninf, zero, v);
            v = gav_select_eq(b, ninf, ninf, gav_add(v, b));
        }
        if (lanes_finite(gav_select(m, chk, zero))) {
            gav_store_mask(s + k0, m, v);
        } else { /* rare: exact, key by key */
            for (int r = 0; r < n; r++) {
                const int i = idx[k0 + r];
                float mm;
                ga_ref_scores(K + (size_t)i * dh, 1, dh, q, 1, dh, scale,
                              bias ? bias + i : NULL, s + k0 + r, 1, &mm);
            }
            v = gav_load_mask(s + k0, m);
        }
        v = gav_select(m, v, ninf);
        vmax = gav_max(vmax, v);
        nan = gav_flags_nan(nan, v);
    }
    return gav_flags_any(nan) ? NAN : gav_hmax(vmax);
}

enum {
    VPP = 16 / GAV_W,             /* vectors per panel of 16 keys */
    PB = VPP >= 8 ? 1 : 8 / VPP   /* panels in flight: 8 accumulators */
};

/* Scales, biases, checks and stores the VPP vectors of panel p; folds them
 * into *vmax / *nan. */
GAV_INLINE void finish_panel(const float *Kp, int N, int dh, const float *q, float scale,
                             const float *bias, float *s, int p, const gav_t *acc,
                             gav_t *vmax, gav_flags_t *nan)
{
    const gav_t vscale = gav_set1(scale), ninf = gav_set1(-INFINITY), zero = gav_zero();
    for (int v = 0; v < VPP; v++) {
        const int i = p * 16 + v * GAV_W;
        if (i >= N)
            break;
        const gav_mask_t m = gav_mask(N - i);
        gav_t x = gav_mul(acc[v], vscale);
        gav_t chk = x;
        if (bias) {
            const gav_t b = gav_load_mask(bias + i, m);
            chk = gav_select_eq(b, ninf, zero, x);
            x = gav_select_eq(b, ninf, ninf, gav_add(x, b));
        }
        if (lanes_finite(gav_select(m, chk, zero))) {
            gav_store_mask(s + i, m, x);
        } else {
            const int n = N - i < GAV_W ? N - i : GAV_W;
            ga_ref_scores_packed_range(Kp, dh, q, scale, bias, i, i + n, s);
            x = gav_load_mask(s + i, m);
        }
        x = gav_select(m, x, ninf);
        *vmax = gav_max(*vmax, x);
        *nan = gav_flags_nan(*nan, x);
    }
}

float GA_FN(scores_packed)(const float *Kp, int N, int dh, const float *q, float scale,
                           const float *bias, float *s)
{
    const int P = (N + 15) / 16;
    const size_t pstride = (size_t)dh * 16;
    gav_t vmax = gav_set1(-INFINITY);
    gav_flags_t nan = gav_flags_none();
    int p = 0;
    for (; p + PB <= P; p += PB) {
        gav_t acc[PB][VPP];
        for (int b = 0; b < PB; b++)
            for (int v = 0; v < VPP; v++)
                acc[b][v] = gav_zero();
        const float *base = Kp + (size_t)p * pstride;
        for (int d = 0; d < dh; d++) {
            const gav_t qd = gav_set1(q[d]);
            for (int b = 0; b < PB; b++)
                for (int v = 0; v < VPP; v++)
                    acc[b][v] = gav_fma(gav_load(base + b * pstride + (size_t)d * 16 + v * GAV_W),
                                        qd, acc[b][v]);
        }
        for (int b = 0; b < PB; b++)
            finish_panel(Kp, N, dh, q, scale, bias, s, p + b, acc[b], &vmax, &nan);
    }
    for (; p < P; p++) {
        gav_t acc[VPP];
        for (int v = 0; v < VPP; v++)
            acc[v] = gav_zero();
        const float *base = Kp + (size_t)p * pstride;
        for (int d = 0; d < dh; d++) {
            const gav_t qd = gav_set1(q[d]);
            for (int v = 0; v < VPP; v++)
                acc[v] = gav_fma(gav_load(base + (size_t)d * 16 + v * GAV_W), qd, acc[v]);
        }
        finish_panel(Kp, N, dh, q, scale, bias, s, p, acc, &vmax, &nan);
    }
    return gav_flags_any(nan) ? NAN : gav_hmax(vmax);
}
