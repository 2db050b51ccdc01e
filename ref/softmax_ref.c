/* softmax_ref.c — scalar reference of the dense softmax (the dense baseline).
 *
 *   p_i = (float)exp((double)(s[i] - m)),  Z = sum_i p_i (double),
 *   a[i] = p_i / Z;  returns Z (as float).
 * Special cases: N == 0 or m == -inf -> a = 0, returns 0;
 *                m NaN or +inf       -> a = NaN, returns NaN.
 * s [N] -> a [N].
 */
#include <math.h>

#include "internal.h"

float ga_ref_softmax(const float *s, int N, float m, float *a)
{
    ga_row rc = ga_row_case(N, m);
    if (rc != GA_ROW_OK) {
        float v = rc == GA_ROW_EMPTY ? 0.0f : NAN;
        ga_fill_f32(a, N, v);
        return v;
    }
    double Z = 0.0;
    for (int i = 0; i < N; i++)
        Z += (float)exp((double)(s[i] - m));
    for (int i = 0; i < N; i++) {
        float p = (float)exp((double)(s[i] - m));
        a[i] = (float)(p / Z);
    }
    return (float)Z;
}
