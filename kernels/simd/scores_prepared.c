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
 *   key with a non-finite float result (unpadded) is recomputed exactly by
 *   the reference, that key alone, as `scores` does: the same bits for
 *   every key, overflowing ones and their neighbours included.
 * scores_packed: scores from keys packed across lanes,
 *   s[i] = scale * sum_d q[d] * Kp[i/16][d][i%16] + (bias ? bias[i] : 0).
 *   Kp [ceil(N/16)][dh][16], q [dh], bias [N] or NULL -> s [N]; returns max.
 *   No horizontal reduction: one broadcast of q[d] feeds GAV_W keys per
 *   FMA.  PB panels of 16 keys are in flight at once (8 accumulators: PB =
 *   8, 4, 2 for AVX-512, AVX2, NEON) to cover the FMA latency; the panels
 *   left over go in groups of PB/2, PB/4, ..., 1 (before: one at a time,
 *   one FMA chain: latency-bound, 0.4-0.6 of the bound at N = 64 on
 *   AVX-512).  Each key is one FMA chain over d in order, whatever N or the
 *   group (GAV_PACKED_DS = 1), so its bits depend on dh only.  The last
 *   panel is computed whole (its lanes past N are readable) and stored
 *   masked.  Non-finite float results of unpadded keys are recomputed
 *   exactly (ga_ref_scores_packed_range).
 *   Measured (dh 64, one core of the 2-core Xeon VM, shared; min of
 *   trials; bound = results/xeon-2c/limits.json read bandwidth, measured
 *   with AVX-512 loads): AVX-512 N = 64 / 256 / 1024 / 4096: 0.99-1.05 /
 *   1.1-1.4 / 0.9-1.04 / 0.9-1.05 of the bound (98 ns / 0.4 us / 2.1 us /
 *   8.5 us); AVX2 0.86 / 0.88 / 0.79 / 0.79 (95-97 GB/s at 1024-4096 =
 *   a plain AVX2 read loop's 95-100 GB/s).  Tried and not kept (no gain or
 *   slower): chains over d per key (DS 2-16, single sequential stream),
 *   PB 2/4/8/16 per ISA, software prefetch 4-32 lines ahead.
 *   Kp must be 64-byte aligned for this speed: 16 bytes off, every 64-byte
 *   load splits a cache line (AVX-512 0.55x, AVX2 0.65x at N >= 256).
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
#if GAV_WSUM_PREFETCH > 0
        /* the next group's rows: scattered, so the hardware prefetcher does
         * not fetch them (where the ISA prefetches gathered V rows too) */
        for (int r = k0 + GAV_W; r < count && r < k0 + 2 * GAV_W; r++)
            gav_prefetch_bytes(K + (size_t)idx[r] * dh, dh * (int)sizeof(float));
#endif
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
        gav_store_mask(s + k0, m, v);
        if (!lanes_finite(gav_select(m, chk, zero))) {
            /* rare: the keys whose float result is not finite, exactly, key
             * by key (as `scores` does: the others keep their float bits) */
            float c[GAV_W];
            gav_store(c, chk);
            for (int r = 0; r < n; r++) {
                if (c[r] - c[r] == 0.0f)
                    continue;
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

/* Tuning (per ISA, overridable with -D for measurements):
 *   GAV_PACKED_DS  independent FMA chains over d per key (d mod DS): the
 *                  per-key summation order, fixed by dh alone;
 *   GAV_PACKED_PB  panels of 16 keys in flight in the main loop; the
 *                  remaining panels go in groups of PB/2, PB/4, ..., 1
 *                  (at most one group of each size), same arithmetic. */
#ifndef GAV_PACKED_DS
#define GAV_PACKED_DS 1
#endif
#ifndef GAV_PACKED_PB
#define GAV_PACKED_PB (GAV_W == 16 ? 8 : GAV_W == 8 ? 4 : 2)
#endif

enum {
    VPP = 16 / GAV_W,  /* vectors per panel of 16 keys */
    DS = GAV_PACKED_DS, /* chains over d per vector */
    PB = GAV_PACKED_PB  /* panels in flight */
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
        gav_store_mask(s + i, m, x);
        if (!lanes_finite(gav_select(m, chk, zero))) { /* rare: exact, key by key */
            const int n = N - i < GAV_W ? N - i : GAV_W;
            float c[GAV_W];
            gav_store(c, chk);
            for (int r = 0; r < n; r++)
                if (!(c[r] - c[r] == 0.0f))
                    ga_ref_scores_packed_range(Kp, dh, q, scale, bias, i + r, i + r + 1, s);
            x = gav_load_mask(s + i, m);
        }
        x = gav_select(m, x, ninf);
        *vmax = gav_max(*vmax, x);
        *nan = gav_flags_nan(*nan, x);
    }
}

/* Dot products of nb (a constant: PB or 1) panels starting at `base` (panel
 * stride pstride floats): out[b][v] = lane sums over d of q[d] Kp[..][d][..].
 * Chain j of a key takes d = j (mod DS) in increasing d (the last dh mod DS
 * channels go to chains 0, 1, ...); the chains are added in a fixed tree. */
GAV_INLINE void panel_dots(const float *base, size_t pstride, int dh, const float *q,
                           const int nb, gav_t out[][VPP])
{
    gav_t acc[PB][VPP][DS];
    for (int b = 0; b < nb; b++)
        for (int v = 0; v < VPP; v++)
            for (int j = 0; j < DS; j++)
                acc[b][v][j] = gav_zero();
    int d = 0;
    for (; d + DS <= dh; d += DS)
        for (int j = 0; j < DS; j++) {
            const gav_t qd = gav_set1(q[d + j]);
            for (int b = 0; b < nb; b++)
                for (int v = 0; v < VPP; v++)
                    acc[b][v][j] = gav_fma(gav_load(base + b * pstride + (size_t)(d + j) * 16 +
                                                    v * GAV_W),
                                           qd, acc[b][v][j]);
        }
    for (int j = 0; d + j < dh; j++) {
        const gav_t qd = gav_set1(q[d + j]);
        for (int b = 0; b < nb; b++)
            for (int v = 0; v < VPP; v++)
                acc[b][v][j] = gav_fma(gav_load(base + b * pstride + (size_t)(d + j) * 16 +
                                                v * GAV_W),
                                       qd, acc[b][v][j]);
    }
    for (int b = 0; b < nb; b++)
        for (int v = 0; v < VPP; v++) {
            for (int w = 1; w < DS; w *= 2) /* pairwise tree: (0+1)+(2+3), ... */
                for (int j = 0; j + w < DS; j += 2 * w)
                    acc[b][v][j] = gav_add(acc[b][v][j], acc[b][v][j + w]);
            out[b][v] = acc[b][v][0];
        }
}

/* Panels p .. p + nb - 1 (nb <= PB, a constant at every call site, so that
 * the accumulators stay in registers): dot products, then finish_panel. */
GAV_INLINE void panel_group(const float *Kp, int N, int dh, const float *q, float scale,
                            const float *bias, float *s, int p, const int nb, gav_t *vmax,
                            gav_flags_t *nan)
{
    const size_t pstride = (size_t)dh * 16;
    gav_t acc[PB][VPP];
    panel_dots(Kp + (size_t)p * pstride, pstride, dh, q, nb, acc);
    for (int b = 0; b < nb; b++)
        finish_panel(Kp, N, dh, q, scale, bias, s, p + b, acc[b], vmax, nan);
}

float GA_FN(scores_packed)(const float *Kp, int N, int dh, const float *q, float scale,
                           const float *bias, float *s)
{
    const int P = (N + 15) / 16;
    gav_t vmax = gav_set1(-INFINITY);
    gav_flags_t nan = gav_flags_none();
    int p = 0;
    for (; p + PB <= P; p += PB)
        panel_group(Kp, N, dh, q, scale, bias, s, p, PB, &vmax, &nan);
    /* the rest (< PB panels): at most one group each of PB/2, PB/4, PB/8
     * panels, then single panels (PB = 16 or not a power of 2 only) */
    if (PB / 2 >= 1 && p + PB / 2 <= P) {
        panel_group(Kp, N, dh, q, scale, bias, s, p, PB / 2, &vmax, &nan);
        p += PB / 2;
    }
    if (PB / 4 >= 1 && p + PB / 4 <= P) {
        panel_group(Kp, N, dh, q, scale, bias, s, p, PB / 4, &vmax, &nan);
        p += PB / 4;
    }
    if (PB / 8 >= 1 && p + PB / 8 <= P) {
        panel_group(Kp, N, dh, q, scale, bias, s, p, PB / 8, &vmax, &nan);
        p += PB / 8;
    }
    for (; p < P; p++)
        panel_group(Kp, N, dh, q, scale, bias, s, p, 1, &vmax, &nan);
    return gav_flags_any(nan) ? NAN : gav_hmax(vmax);
}
