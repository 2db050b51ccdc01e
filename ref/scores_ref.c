/* scores_ref.c — scalar reference of the attention scores and their row max.
 *
 *   S[t][i] = scale * (Q[t] . K[i]) + (bias ? bias[i] : 0)
 *   S[t][i] = -inf exactly for a padded key (bias[i] == -inf), whatever its
 *             K row holds (NaN, inf, a q.k that overflows): padded keys are
 *             excluded, not computed.
 *   m[t]    = max_i S[t][i]; NaN if any S[t][i] is NaN (checked explicitly,
 *             fmax would hide it); -inf if N == 0 or every score is -inf.
 * K [N][dh], Q [T][ldq] (ldq >= dh), bias [N] or NULL -> S [T][lds], m [T].
 * The dot product accumulates in double; S is rounded to float once.
 */
#include <math.h>

#include "internal.h"

void ga_ref_scores(const float *K, int N, int dh, const float *Q, int T, int ldq,
                   float scale, const float *bias, float *S, int lds, float *m)
{
    for (int t = 0; t < T; t++) {
        const float *q = Q + (size_t)t * ldq;
        float *s = S + (size_t)t * lds;
        float max = -INFINITY;
        int any_nan = 0;
        for (int i = 0; i < N; i++) {
            double dot = 0.0;
            for (int j = 0; j < dh; j++)
                dot += (double)q[j] * K[(size_t)i * dh + j];
            double v = (double)scale * dot;
            if (bias)
                v += bias[i];
            if (bias && bias[i] == -INFINITY)
                v = -INFINITY; /* padded: excluded whatever K[i] holds */
            s[i] = (float)v;
            if (isnan(s[i]))
                any_nan = 1;
            else if (s[i] > max)
                max = s[i];
        }
        m[t] = any_nan ? NAN : max;
    }
}
