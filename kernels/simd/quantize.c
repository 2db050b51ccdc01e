/* quantize.c — int8 row quantisation of the prepared keys' preview
 * (docs/SPEC.md §7), written once against the SIMD vocabulary (simd.h).
 *
 * Row x [dh] -> a = max |x_d|, s = a/127, y_d = x_d * (127/a), c_d =
 * round-even(y_d) clamped to [-127, 127] -> codes (panel slot for lanes 16,
 * contiguous for lanes 1), scale = s, csum = sum c_d, and the bounds
 * norm >= max(|x|, |s c|), err >= |x - s c| of ref/quantize_rows_ref.c
 * (where their derivation is).
 * Per row, two passes over x in vectors (the last one masked: its zero
 * lanes add nothing to any sum and give the codes 0 of channels >= dh):
 *   1. |x| = max(x, 0 - x) into a max vector, x - x into NaN flags;
 *   2. y = x * inv, c = (y + 1.5*2^23) - 1.5*2^23, clamp with max(c, -127)
 *      and -max(-c, -127), then y*y, (y - c)^2, c, c*c accumulated (mul and
 *      add, no FMA) and c stored as int8 (gav_store_i8) to a row buffer,
 *      copied to the row's 4-byte code slots.
 * The per-element operations are the reference's, so codes, scale and csum
 * are the same bits (c sums are exact integers in any order); Sy and Sr are
 * summed in vector lanes and gav_hsum, so norm and err may differ from the
 * reference in the last bits (the bound holds for any summation order).
 * The final bounds are the reference's double expressions, with
 * ga_round_up_f (no libm call).
 * X [n][ldx] -> codes, scale [n], csum [n], norm [n], err [n].
 * Alignment: none required.  Writes: the rows' code slots (dh4 bytes each)
 * and one element of each per-row output.
 * Speed (AVX-512, dh 64, one core of the shared dev box, hot cache): see
 * the bench family quantize_rows; N 4096: ~0.2 ms (was ~1.35 ms with the
 * plain-C loops, ~1.0 GB/s -> ~6-7 GB/s).
 */
#include <math.h>
#include <string.h>

#include "simd.h"

enum { QMAX = 1024 };

void GA_FN(quantize_rows)(const float *X, int n, int ldx, int dh, int dh4, int lanes,
                          int8_t *codes, float *scale, int32_t *csum, float *norm, float *err)
{
    const gav_t big = gav_set1(0x1.8p23f), lo = gav_set1(-127.0f), zero = gav_zero();
    const int nfull = dh / GAV_W * GAV_W;
    const gav_mask_t mt = gav_mask(dh - nfull);
    const double k = 1.0 + (dh + 8) * 0x1p-24, tiny = dh * 0x1p-126, fin = 1.0 + 0x1p-21;
    const double eabs = 400.0 * sqrt((double)dh) * 0x1p-24;
    int8_t cb[QMAX + GAV_W];
    for (int r = 0; r < n; r++) {
        const float *x = X + (size_t)r * ldx;
        int8_t *c0 = codes + (size_t)(r / lanes) * dh4 * lanes + (size_t)(r % lanes) * 4;
        gav_t am = zero;
        gav_flags_t fl = gav_flags_none();
        int d = 0;
        for (; d < nfull; d += GAV_W) {
            const gav_t v = gav_load(x + d);
            am = gav_max(am, gav_max(v, gav_sub(zero, v)));
            fl = gav_flags_nan(fl, gav_sub(v, v)); /* NaN iff v is inf or NaN */
        }
        if (d < dh) {
            const gav_t v = gav_load_mask(x + d, mt);
            am = gav_max(am, gav_max(v, gav_sub(zero, v)));
            fl = gav_flags_nan(fl, gav_sub(v, v));
        }
        const float a = gav_hmax(am);
        const int bad = gav_flags_any(fl) || (a > 0.0f && a < 0x1p-120f);
        if (bad || a == 0.0f) {
            for (int g = 0; g < dh4 / 4; g++)
                memset(c0 + (size_t)g * 4 * lanes, 0, 4);
            scale[r] = 0.0f;
            csum[r] = 0;
            norm[r] = err[r] = bad ? INFINITY : 0.0f;
            continue;
        }
        const float s = a / 127.0f;
        const gav_t inv = gav_set1(127.0f / a);
        gav_t sy = zero, sr = zero, cs = zero, c2 = zero;
        for (d = 0; d < dh; d += GAV_W) {
            const gav_t v = d < nfull ? gav_load(x + d) : gav_load_mask(x + d, mt);
            const gav_t y = gav_mul(v, inv);
            gav_t c = gav_sub(gav_add(y, big), big);
            c = gav_max(c, lo);                                  /* c >= -127 */
            c = gav_sub(zero, gav_max(gav_sub(zero, c), lo));    /* c <= 127 */
            const gav_t rr = gav_sub(y, c);
            sy = gav_add(sy, gav_mul(y, y));
            sr = gav_add(sr, gav_mul(rr, rr));
            cs = gav_add(cs, c);
            c2 = gav_add(c2, gav_mul(c, c));
            gav_store_i8(cb + d, c);
        }
        for (d = (dh + GAV_W - 1) / GAV_W * GAV_W; d < dh4; d++) /* dh4 may exceed dh + 3 */
            cb[d] = 0;
        if (lanes == 1)
            memcpy(c0, cb, (size_t)dh4);
        else
            for (int g = 0; g < dh4 / 4; g++)
                memcpy(c0 + (size_t)g * 4 * lanes, cb + 4 * g, 4);
        const float Sy = gav_hsum(sy), Sr = gav_hsum(sr), C2 = gav_hsum(c2);
        const double ua = (double)a / 127.0;
        const double nx = ua * sqrt(Sy * k + tiny), nh = (double)s * sqrt((double)C2);
        scale[r] = s;
        csum[r] = (int32_t)gav_hsum(cs);
        norm[r] = ga_round_up_f((nx > nh ? nx : nh) * fin);
        err[r] = ga_round_up_f(ua * (sqrt(Sr * k + tiny) + eabs) * fin);
    }
}
