/* softmax.c — dense softmax of one score row and its backward, written once
 * against the SIMD vocabulary (simd.h) and compiled per ISA as ga_<isa>_*.
 *
 * softmax:  a[i] = exp(s[i] - m) / Z,  Z = sum_i exp(s[i] - m);  returns Z.
 *   N == 0 or m == -inf -> a = 0, returns 0;  m NaN or +inf -> a = NaN,
 *   returns NaN (checked once at entry).   s [N] -> a [N]  (a may alias s).
 *   Pass 1 stores p = exp(s - m) (gav_exp, SLEEF 1 ulp) into a and sums Z in
 *   one vector accumulator; pass 2 multiplies by 1/Z in place (p * (1/Z) is
 *   within ~1 ulp of p / Z and a divide costs several times a multiply).
 *   With m = max s (as `scores` gives it) Z >= 1; for a smaller Z (m above
 *   every score) it divides, so that 1/Z cannot overflow.
 * softmax_backward:  ds[i] = a[i] * (da[i] - sum_j a[j] da[j]).
 *   a, da [N] -> ds [N] (ds may alias a or da: each element is read before
 *   it is written).  Pass 1: the dot product (gav_dot); pass 2: elementwise.
 * Alignment: none required.  Bytes read or written past the end: 0 (masked
 * tails).
 */
#include <math.h>

#include "simd.h"

static void fill(float *a, int N, float v)
{
    const gav_t x = gav_set1(v);
    for (int i = 0; i < N; i += GAV_W)
        gav_store_tail(a + i, N - i, x);
}

float GA_FN(softmax)(const float *s, int N, float m, float *a)
{
    if (N <= 0 || m == -INFINITY) {
        fill(a, N, 0.0f);
        return 0.0f;
    }
    if (isnan(m) || m == INFINITY) {
        fill(a, N, NAN);
        return NAN;
    }
    const gav_t vm = gav_set1(m);
    gav_t zsum = gav_zero();
    int i = 0;
    for (; i + GAV_W <= N; i += GAV_W) {
        gav_t e = gav_exp(gav_sub(gav_load(s + i), vm));
        zsum = gav_add(zsum, e);
        gav_store(a + i, e);
    }
    if (i < N) {
        gav_mask_t k = gav_mask(N - i);
        gav_t e = gav_exp(gav_sub(gav_load_mask(s + i, k), vm));
        e = gav_select(k, e, gav_zero()); /* lanes past N: exp(0 - m), dropped */
        zsum = gav_add(zsum, e);
        gav_store_mask(a + i, k, e);
    }
    const float Z = gav_hsum(zsum);
    const gav_t vz = gav_set1(Z), rz = gav_set1(1.0f / Z);
    const int divide = !(Z >= 1.0f);
    for (i = 0; i + GAV_W <= N; i += GAV_W) {
        gav_t e = gav_load(a + i);
        gav_store(a + i, divide ? gav_div(e, vz) : gav_mul(e, rz));
    }
    if (i < N) {
        gav_mask_t k = gav_mask(N - i);
        gav_t e = gav_load_mask(a + i, k);
        gav_store_mask(a + i, k, divide ? gav_div(e, vz) : gav_mul(e, rz));
    }
    return Z;
}

void GA_FN(softmax_backward)(const float *a, const float *da, int N, float *ds)
{
    const gav_t dot = gav_set1(gav_dot(a, da, N));
    int i = 0;
    for (; i + GAV_W <= N; i += GAV_W)
        gav_store(ds + i, gav_mul(gav_load(a + i), gav_sub(gav_load(da + i), dot)));
    if (i < N) {
        gav_mask_t k = gav_mask(N - i);
        gav_store_mask(ds + i, k, gav_mul(gav_load_mask(a + i, k),
                                          gav_sub(gav_load_mask(da + i, k), dot)));
    }
}
