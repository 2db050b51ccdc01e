/* quantize.c — int8 row quantisation of the prepared keys' preview
 * (docs/SPEC.md §7), plain C compiled per ISA (the ISA's flags let the
 * compiler vectorise the loops; no intrinsics are needed).
 *
 * Row x [dh] -> a = max |x_d|, s = a/127, y_d = x_d * (127/a), c_d =
 * round-even(y_d) clamped to [-127, 127] -> codes (panel slot for lanes 16,
 * contiguous for lanes 1), scale = s, csum = sum c_d, and the bounds
 * norm >= max(|x|, |s c|), err >= |x - s c| of ref/quantize_rows_ref.c
 * (where their derivation is).  The per-element operations are the
 * reference's, so codes, scale and csum are the same bits; the sums run in
 * 16 independent partial sums (vectorisable) and are combined at the end,
 * so norm and err may differ from the reference in the last bits (the bound
 * holds for any summation order).
 * X [n][ldx] -> codes, scale [n], csum [n], norm [n], err [n].
 * Alignment: none required.  Writes: the rows' code slots (dh4 bytes each)
 * and one element of each per-row output.
 */
#include <math.h>
#include <string.h>

#include "simd.h"

enum { QW = 16, QMAX = 1024 };

void GA_FN(quantize_rows)(const float *X, int n, int ldx, int dh, int dh4, int lanes,
                          int8_t *codes, float *scale, int32_t *csum, float *norm, float *err)
{
    const float big = 0x1.8p23f;
    for (int r = 0; r < n; r++) {
        const float *x = X + (size_t)r * ldx;
        int8_t *c0 = codes + (size_t)(r / lanes) * dh4 * lanes + (size_t)(r % lanes) * 4;
        float am[QW] = {0}, fz[QW] = {0};
        int d = 0;
        for (; d + QW <= dh; d += QW)
            for (int j = 0; j < QW; j++) {
                const float v = x[d + j], av = v < 0.0f ? -v : v;
                am[j] = av > am[j] ? av : am[j];
                fz[j] += v - v; /* NaN iff some v is inf or NaN */
            }
        for (; d < dh; d++) {
            const float v = x[d], av = v < 0.0f ? -v : v;
            am[0] = av > am[0] ? av : am[0];
            fz[0] += v - v;
        }
        float a = 0.0f, z = 0.0f;
        for (int j = 0; j < QW; j++) {
            a = am[j] > a ? am[j] : a;
            z += fz[j];
        }
        if (z != 0.0f || (a > 0.0f && a < 0x1p-120f) || a == 0.0f) {
            for (int g = 0; g < dh4 / 4; g++)
                memset(c0 + (size_t)g * 4 * lanes, 0, 4);
            const int bad = z != 0.0f || a > 0.0f;
            scale[r] = 0.0f;
            csum[r] = 0;
            norm[r] = err[r] = bad ? INFINITY : 0.0f;
            continue;
        }
        const float s = a / 127.0f, inv = 127.0f / a;
        int8_t cb[QMAX];
        float sy[QW] = {0}, sr[QW] = {0}, cs[QW] = {0}, c2[QW] = {0};
        d = 0;
        for (; d + QW <= dh; d += QW)
            for (int j = 0; j < QW; j++) {
                const float y = x[d + j] * inv;
                float c = (y + big) - big;
                c = c > 127.0f ? 127.0f : c < -127.0f ? -127.0f : c;
                const float rr = y - c;
                sy[j] += y * y;
                sr[j] += rr * rr;
                cs[j] += c;
                c2[j] += c * c;
                cb[d + j] = (int8_t)c;
            }
        for (; d < dh; d++) {
            const float y = x[d] * inv;
            float c = (y + big) - big;
            c = c > 127.0f ? 127.0f : c < -127.0f ? -127.0f : c;
            const float rr = y - c;
            sy[0] += y * y;
            sr[0] += rr * rr;
            cs[0] += c;
            c2[0] += c * c;
            cb[d] = (int8_t)c;
        }
        for (; d < dh4; d++)
            cb[d] = 0;
        for (int g = 0; g < dh4 / 4; g++)
            memcpy(c0 + (size_t)g * 4 * lanes, cb + 4 * g, 4);
        float Sy = 0.0f, Sr = 0.0f, Cs = 0.0f, C2 = 0.0f;
        for (int j = 0; j < QW; j++) {
            Sy += sy[j];
            Sr += sr[j];
            Cs += cs[j];
            C2 += c2[j];
        }
        const double k = 1.0 + (dh + 8) * 0x1p-24, tiny = dh * 0x1p-126, fin = 1.0 + 0x1p-21;
        const double ua = (double)a / 127.0;
        const double nx = ua * sqrt(Sy * k + tiny), nh = (double)s * sqrt((double)C2);
        scale[r] = s;
        csum[r] = (int32_t)Cs;
        norm[r] = ga_round_up_f((nx > nh ? nx : nh) * fin);
        err[r] = ga_round_up_f(ua * (sqrt(Sr * k + tiny) + 400.0 * sqrt((double)dh) * 0x1p-24) * fin);
    }
}
