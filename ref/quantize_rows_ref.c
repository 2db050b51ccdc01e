/* quantize_rows_ref.c — scalar reference of the int8 row quantisation of
 * the prepared keys' preview (docs/SPEC.md §7).
 *
 * Row x [dh] -> a = max |x_d|, s = a/127, y_d = x_d * (127/a), c_d =
 * round-even(y_d) clamped to [-127, 127], stored at the panel slot of the
 * row (lanes 16) or contiguously (lanes 1); scale = s; csum = sum c_d;
 *   norm = max( (a/127) sqrt(Sy (1 + (dh+8) 2^-24) + dh 2^-126),
 *               s sqrt(sum c_d^2) ) (1 + 2^-21), rounded up to float
 *   err  = (a/127) (sqrt(Sr (1 + (dh+8) 2^-24) + dh 2^-126) + 400 sqrt(dh) 2^-24)
 *          (1 + 2^-21), rounded up
 * with Sy = sum y_d^2, Sr = sum (y_d - c_d)^2 summed in float in any order.
 * Why these bound |x| and |x - s c| (u = 2^-24): y_d = x_d (127/a)(1+d1)(1+d2)
 * (the float 127/a and the product), so |x| <= (a/127)|y| (1 + 2.01u); the
 * float sums are within (dh + 8)u of the exact ones except for squares that
 * underflow (each < 2^-126, hence + dh 2^-126); y_d - c_d is exact (two
 * floats within 1 of each other below 128); x_d - s c_d = (a/127)((y_d - c_d)
 * + y_d (theta - 1) - c_d d3) with |y_d|, |c_d| <= 128, |theta - 1| <= 2.01u,
 * |d3| <= u, so |x - s c| <= (a/127)(|y - c| + 400 u sqrt(dh)); the factor
 * (1 + 2^-21) covers the square roots and the double evaluation.  Sums of
 * c_d and c_d^2 are integers below 2^24: exact in float.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

/* Round to nearest even for |y| <= 2^22: one rounding of y + 1.5*2^23. */
static float round_even(float y)
{
    const float b = 0x1.8p23f;
    return (y + b) - b;
}

void ga_ref_quantize_rows(const float *X, int n, int ldx, int dh, int dh4, int lanes,
                          int8_t *codes, float *scale, int32_t *csum, float *norm, float *err)
{
    for (int r = 0; r < n; r++) {
        const float *x = X + (size_t)r * ldx;
        int8_t *c0 = codes + (size_t)(r / lanes) * dh4 * lanes + (size_t)(r % lanes) * 4;
        float a = 0.0f;
        int finite = 1;
        for (int d = 0; d < dh; d++) {
            finite &= x[d] - x[d] == 0.0f;
            float ax = fabsf(x[d]);
            a = ax > a ? ax : a;
        }
        for (int g = 0; g < dh4 / 4; g++)
            memset(c0 + (size_t)g * 4 * lanes, 0, 4);
        if (!finite || (a > 0.0f && a < 0x1p-120f)) {
            scale[r] = 0.0f;
            csum[r] = 0;
            norm[r] = err[r] = INFINITY;
            continue;
        }
        if (a == 0.0f) {
            scale[r] = norm[r] = err[r] = 0.0f;
            csum[r] = 0;
            continue;
        }
        const float s = a / 127.0f, inv = 127.0f / a;
        float sy = 0.0f, sr = 0.0f, cs = 0.0f, c2 = 0.0f;
        for (int d = 0; d < dh; d++) {
            const float y = x[d] * inv;
            float c = round_even(y);
            c = c > 127.0f ? 127.0f : c < -127.0f ? -127.0f : c;
            const float rr = y - c;
            sy += y * y;
            sr += rr * rr;
            cs += c;
            c2 += c * c;
            c0[(size_t)(d / 4) * 4 * lanes + d % 4] = (int8_t)c;
        }
        const double k = 1.0 + (dh + 8) * 0x1p-24, tiny = dh * 0x1p-126, fin = 1.0 + 0x1p-21;
        const double ua = (double)a / 127.0;
        const double nx = ua * sqrt(sy * k + tiny), nh = (double)s * sqrt((double)c2);
        scale[r] = s;
        csum[r] = (int32_t)cs;
        norm[r] = ga_round_up_f((nx > nh ? nx : nh) * fin);
        err[r] = ga_round_up_f(ua * (sqrt(sr * k + tiny) + 400.0 * sqrt((double)dh) * 0x1p-24) * fin);
    }
}
