/* softmax.c — dense softmax of one score row and its backward, written once
 * against the SIMD vocabulary (simd.h) and compiled per ISA as ga_<isa>_*.
 *
 * softmax:  a[i] = exp(s[i] - m) / Z,  Z = sum_i exp(s[i] - m);  returns Z.
 *   N == 0 or m == -inf -> a = 0, returns 0;  m NaN or +inf -> a = NaN,
 *   returns NaN (checked once at entry, ga_row_case).   s [N] -> a [N]  (a may alias s).
 *   Pass 1 stores p = exp(s - m) (gav_exp, SLEEF 1 ulp) into a and sums Z in
 *   one vector accumulator; pass 2 multiplies by 1/Z in place (p * (1/Z) is
 *   within ~1 ulp of p / Z and a divide costs several times a multiply).
 *   With m = max s (as `scores` gives it) Z >= 1; for a smaller Z (m above
 *   every score) it divides, so that 1/Z cannot overflow.
 * softmax_backward:  ds[i] = a[i] * (da[i] - sum_j a[j] da[j]).
 *   a, da [N] -> ds [N] (ds may alias a or da: each element is read before
 *   it is written).  Pass 1: the dot product (gav_dot); pass 2: elementwise.
 *   A key with a[i] == 0 (padding) is excluded.  A finite float dot means no
 *   zero-weight key has a NaN/inf da (0 * NaN/inf would make it NaN), so
 *   there ds[i] = 0 * (da[i] - dot) = 0 already; only a non-finite dot (such
 *   a term, or overflow) takes the exact path: the dot over the nonzero
 *   weights (ga_ref_softmax_backward_dot) and ds[i] = 0 by a select.
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
    ga_row rc = ga_row_case(N, m);
    if (rc != GA_ROW_OK) {
        const float v = rc == GA_ROW_EMPTY ? 0.0f : NAN;
        fill(a, N, v);
        return v;
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

/* ds = a * (da - d); `excl`: lanes with a == 0 get 0 (selected). */
GAV_INLINE void softmax_bwd_pass(const float *a, const float *da, int N, float d, float *ds,
                                 const int excl)
{
    const gav_t dot = gav_set1(d), zero = gav_zero();
    int i = 0;
    for (; i + GAV_W <= N; i += GAV_W) {
        const gav_t av = gav_load(a + i);
        gav_t v = gav_mul(av, gav_sub(gav_load(da + i), dot));
        gav_store(ds + i, excl ? gav_select_eq(av, zero, zero, v) : v);
    }
    if (i < N) {
        gav_mask_t k = gav_mask(N - i);
        const gav_t av = gav_load_mask(a + i, k);
        gav_t v = gav_mul(av, gav_sub(gav_load_mask(da + i, k), dot));
        gav_store_mask(ds + i, k, excl ? gav_select_eq(av, zero, zero, v) : v);
    }
}

void GA_FN(softmax_backward)(const float *a, const float *da, int N, float *ds)
{
    const float d = gav_dot(a, da, N);
    if (isfinite(d))
        softmax_bwd_pass(a, da, N, d, ds, 0);
    else /* rare: exact dot, zero weights excluded */
        softmax_bwd_pass(a, da, N, (float)ga_ref_softmax_backward_dot(a, da, N), ds, 1);
}
