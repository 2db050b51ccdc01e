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
    if (N == 0 || m == -INFINITY) {
        for (int i = 0; i < N; i++)
            a[i] = 0.0f;
        return 0.0f;
    }
    if (isnan(m) || m == INFINITY) {
        for (int i = 0; i < N; i++)
            a[i] = NAN;
        return NAN;
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
