/* scores_neon.c — attention scores and their row max, AArch64 NEON.
 *
 *   S[t][i] = scale * (Q[t] . K[i]) + (bias ? bias[i] : 0)
 *   m[t]    = max_i S[t][i]; NaN if any S[t][i] is NaN (explicit flag);
 *             -inf if N == 0 or every score is -inf.
 * K [N][dh], Q [T][ldq] (ldq >= dh), bias [N] or NULL -> S [T][lds], m [T].
 *
 * 4 keys at a time (ga_neon_dot4: 8 FMA chains, pairwise-tree reduction to
 * one vector of 4 scores), bias added with one FMA.  In the last block the
 * lanes past N repeat key N-1 (same score, so max and NaN flag are
 * unaffected) and are not stored.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include <math.h>

#include "neon.h"

void ga_neon_scores(const float *K, int N, int dh, const float *Q, int T, int ldq,
                    float scale, const float *bias, float *S, int lds, float *m)
{
    for (int t = 0; t < T; t++) {
        const float *q = Q + (size_t)t * ldq;
        float *s = S + (size_t)t * lds;
        float32x4_t vmax = vdupq_n_f32(-INFINITY);
        uint32x4_t nan = vdupq_n_u32(0);
        for (int i = 0; i < N; i += 4) {
            int n = N - i < 4 ? N - i : 4;
            const float *rows[4];
            float b[4];
            for (int r = 0; r < 4; r++) {
                int row = i + (r < n ? r : n - 1);
                rows[r] = K + (size_t)row * dh;
                b[r] = bias ? bias[row] : 0.0f;
            }
            float32x4_t dot = ga_neon_dot4(rows, q, dh);
            float32x4_t v = bias ? vfmaq_n_f32(vld1q_f32(b), dot, scale)
                                 : vmulq_n_f32(dot, scale);
            if (n == 4)
                vst1q_f32(s + i, v);
            else
                ga_neon_store_tail(s + i, n, v);
            nan = vorrq_u32(nan, vmvnq_u32(vceqq_f32(v, v)));
            vmax = vmaxq_f32(vmax, v);
        }
        m[t] = vmaxvq_u32(nan) ? NAN : vmaxvq_f32(vmax);
    }
}
