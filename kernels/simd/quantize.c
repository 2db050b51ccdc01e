/* quantize.c — int8 row quantisation of the prepared keys' preview
 * (docs/SPEC.md §7), written once against the SIMD vocabulary (simd.h).
 *
 * Row x [dh] -> a = max |x_d|, s = a/127, y_d = x_d * (127/a), c_d =
 * round-even(y_d) clamped to [-127, 127] -> codes (panel slot for lanes 16,
 * contiguous for lanes 1), scale = s, csum = sum c_d, and the bounds
 * norm >= max(|x|, |s c|), err >= |x - s c| of ref/quantize_rows_ref.c
 * (where their derivation is).
 * Rows go in blocks of QR (4; 2 on AVX2) whose chains interleave; per
 * block, two passes over the rows in vectors (the last one masked: its zero
 * lanes add nothing to any sum and give the codes 0 of channels >= dh):
 *   1. |x| = max(x, 0 - x) into a max vector, x - x into NaN flags; a
 *      block with a special row (non-finite, tiny, zero) is redone row by row;
 *   2. y = x * inv, c = (y + 1.5*2^23) - 1.5*2^23, clamp with max(c, -127)
 *      and -max(-c, -127), then y*y, (y - c)^2, c, c*c accumulated (mul and
 *      add, no FMA) and c stored as int8 (gav_store_i8) to a row buffer,
 *      copied to the row's 4-byte code slots; the block's 4 QR accumulators
 *      are summed by gav_reduce_rows.
 * The per-element operations are the reference's, so codes, scale and csum
 * are the same bits (c sums are exact integers in any order); Sy and Sr are
 * summed in vector lanes and a fixed tree, so norm and err may differ from
 * the reference in the last bits (the bound holds for any summation order).
 * The final bounds are the reference's double expressions, rounded up with
 * ga_round_up_f (no libm call).
 * X [n][ldx] -> codes, scale [n], csum [n], norm [n], err [n].
 * Alignment: none required.  Writes: the rows' code slots (dh4 bytes each)
 * and one element of each per-row output.
 * Speed (granattn-bench --family=quantize_rows --dh=64, one core of a shared
 * 2-core AVX-512 box under load, hot cache, ranges of 3+ runs interleaved
 * with the previous version): AVX-512 N 256 / 1024 / 4096: 13-19 / 56-73 /
 * 240-380 us, 4.7-7 GB/s (plain C loops compiled per ISA: 75-97 / 320-362 /
 * 1360-1530 us, ~1.1 GB/s); AVX2 18-27 / 77-100 / 380-450 us (104-145 /
 * 454-544 / 1690-2135 us).
 */
#include <math.h>
#include <string.h>

#include "simd.h"

enum { QMAX = 1024 };
/* Rows per block: their dependency chains (max, division, sums, square
 * roots) interleave; AVX2 has 16 registers for the 4 accumulators per row. */
#define QR (GAV_W == 8 ? 2 : 4)
/* The 4 QR accumulators of a block go through gav_reduce_rows in chunks of
 * GAV_W (one chunk on AVX-512 and AVX2, four on NEON). */
#define QCH (4 * QR / GAV_W)

/* Rows r0 .. r0+R-1 (R a constant at each call).  Returns 0 without writing
 * anything when R > 1 and one of the rows is special (non-finite, tiny or
 * zero): the caller then takes them one at a time. */
GAV_INLINE int quantize_block_(const float *X, int r0, int ldx, int dh, int dh4, int lanes,
                               int8_t *codes, float *scale, int32_t *csum, float *norm,
                               float *err, const int R)
{
    const gav_t big = gav_set1(0x1.8p23f), lo = gav_set1(-127.0f), zero = gav_zero();
    const int nfull = dh / GAV_W * GAV_W;
    const gav_mask_t mt = gav_mask(dh - nfull);
    const float *x[QR];
    gav_t am[QR];
    gav_flags_t fl[QR];
    for (int i = 0; i < R; i++) {
        x[i] = X + (size_t)(r0 + i) * ldx;
        am[i] = zero;
        fl[i] = gav_flags_none();
    }
    for (int d = 0; d < dh; d += GAV_W)
        for (int i = 0; i < R; i++) {
            const gav_t v = d < nfull ? gav_load(x[i] + d) : gav_load_mask(x[i] + d, mt);
            am[i] = gav_max(am[i], gav_max(v, gav_sub(zero, v)));
            fl[i] = gav_flags_nan(fl[i], gav_sub(v, v)); /* NaN iff v is inf or NaN */
        }
    float a[QR];
    for (int i = 0; i < R; i++) {
        a[i] = gav_hmax(am[i]);
        const int bad = gav_flags_any(fl[i]) || (a[i] > 0.0f && a[i] < 0x1p-120f);
        if (bad || a[i] == 0.0f) {
            if (R > 1)
                return 0;
            int8_t *c0 = codes + (size_t)(r0 / lanes) * dh4 * lanes + (size_t)(r0 % lanes) * 4;
            for (int g = 0; g < dh4 / 4; g++)
                memset(c0 + (size_t)g * 4 * lanes, 0, 4);
            scale[r0] = 0.0f;
            csum[r0] = 0;
            norm[r0] = err[r0] = bad ? INFINITY : 0.0f;
            return 1;
        }
    }
    gav_t inv[QR], acc[4 * QR]; /* row i: Sy, Sr, sum c, sum c^2 in acc[4i .. 4i+3] */
    for (int i = 0; i < R; i++)
        inv[i] = gav_set1(127.0f / a[i]);
    for (int j = 0; j < 4 * QR; j++)
        acc[j] = zero;
    int8_t cb[QR][QMAX + GAV_W];
    for (int d = 0; d < dh; d += GAV_W)
        for (int i = 0; i < R; i++) {
            const gav_t v = d < nfull ? gav_load(x[i] + d) : gav_load_mask(x[i] + d, mt);
            const gav_t y = gav_mul(v, inv[i]);
            gav_t c = gav_sub(gav_add(y, big), big);
            c = gav_max(c, lo);                               /* c >= -127 */
            c = gav_sub(zero, gav_max(gav_sub(zero, c), lo)); /* c <= 127 */
            const gav_t rr = gav_sub(y, c);
            acc[4 * i] = gav_add(acc[4 * i], gav_mul(y, y));
            acc[4 * i + 1] = gav_add(acc[4 * i + 1], gav_mul(rr, rr));
            acc[4 * i + 2] = gav_add(acc[4 * i + 2], c);
            acc[4 * i + 3] = gav_add(acc[4 * i + 3], gav_mul(c, c));
            gav_store_i8(cb[i] + d, c);
        }
    float sums[4 * QR];
    if (R == QR)
        for (int j = 0; j < QCH; j++)
            gav_store(sums + j * GAV_W, gav_reduce_rows(acc + j * GAV_W));
    else
        for (int j = 0; j < 4; j++)
            sums[j] = gav_hsum(acc[j]);
    const double k = 1.0 + (dh + 8) * 0x1p-24, tiny = dh * 0x1p-126, fin = 1.0 + 0x1p-21;
    const double eabs = 400.0 * sqrt((double)dh) * 0x1p-24;
    for (int i = 0; i < R; i++) {
        const int r = r0 + i;
        int8_t *c0 = codes + (size_t)(r / lanes) * dh4 * lanes + (size_t)(r % lanes) * 4;
        for (int d = (dh + GAV_W - 1) / GAV_W * GAV_W; d < dh4; d++) /* dh4 may exceed dh + 3 */
            cb[i][d] = 0;
        if (lanes == 1)
            memcpy(c0, cb[i], (size_t)dh4);
        else { /* 4-byte slots 4 lanes apart, 4 per iteration */
            int g = 0;
            for (; g + 4 <= dh4 / 4; g += 4)
                for (int u = 0; u < 4; u++)
                    memcpy(c0 + (size_t)(g + u) * 4 * lanes, cb[i] + 4 * (g + u), 4);
            for (; g < dh4 / 4; g++)
                memcpy(c0 + (size_t)g * 4 * lanes, cb[i] + 4 * g, 4);
        }
        const float s = a[i] / 127.0f;
        const float Sy = sums[4 * i], Sr = sums[4 * i + 1], C2 = sums[4 * i + 3];
        const double ua = (double)a[i] / 127.0;
        const double nx = ua * sqrt(Sy * k + tiny), nh = (double)s * sqrt((double)C2);
        scale[r] = s;
        csum[r] = (int32_t)sums[4 * i + 2];
        norm[r] = ga_round_up_f((nx > nh ? nx : nh) * fin);
        err[r] = ga_round_up_f(ua * (sqrt(Sr * k + tiny) + eabs) * fin);
    }
    return 1;
}

void GA_FN(quantize_rows)(const float *X, int n, int ldx, int dh, int dh4, int lanes,
                          int8_t *codes, float *scale, int32_t *csum, float *norm, float *err)
{
    int r = 0;
    for (; r + QR <= n; r += QR)
        if (!quantize_block_(X, r, ldx, dh, dh4, lanes, codes, scale, csum, norm, err, QR))
            for (int i = 0; i < QR; i++)
                quantize_block_(X, r + i, ldx, dh, dh4, lanes, codes, scale, csum, norm, err, 1);
    for (; r < n; r++)
        quantize_block_(X, r, ldx, dh, dh4, lanes, codes, scale, csum, norm, err, 1);
}
