/* scores_avx512.c — attention scores and their row max, AVX-512.
 *
 *   S[t][i] = scale * (Q[t] . K[i]) + (bias ? bias[i] : 0),  m[t] = max_i S[t][i]
 * K [N][dh], Q [T][ldq], bias [N] or NULL -> S [T][lds], m [T].
 * m[t] is NaN if any S[t][i] is NaN, -inf if N == 0 (or all -inf).
 *
 * Keys go in blocks of 16: ga512_dot16 runs 16 independent accumulators (one
 * per key, lanes along dh) and folds them with a shuffle/add tree into one
 * vector of 16 scores.  For T > 1 the query loop sits inside the key block,
 * so each block of K rows (16 * dh floats) is fetched from memory once and
 * re-read from L1 by the other queries.  The max is kept in a register for
 * T == 1 (the decode step) and computed by a pass over S otherwise.
 * Alignment: none required.  Bytes read past the end: 0 (masked tails; a
 * partial key block re-reads its last row instead of reading past K).
 */
#include <math.h>

#include "avx512.h"

/* Running max and NaN flag over the lanes in k. */
static inline void track_max(__m512 s, __mmask16 k, __m512 *vmax, __mmask16 *nan)
{
    *vmax = _mm512_mask_max_ps(*vmax, k, *vmax, s);
    *nan |= _mm512_mask_cmp_ps_mask(k, s, s, _CMP_UNORD_Q);
}

static inline float finish_max(__m512 vmax, __mmask16 nan)
{
    return nan ? NAN : _mm512_reduce_max_ps(vmax);
}

/* 16 scores of keys i0..i0+nk-1 (nk <= 16) for query q; lanes >= nk junk. */
GA512_INLINE __m512 block_scores(const float *K, int i0, int nk, int dh,
                                  const float *q, __m512 vscale, const float *bias)
{
    const float *Kb = K + (size_t)i0 * dh;
    __m512 d = ga512_dot16(Kb, (size_t)dh, nk, q, dh);
    __m512 s = _mm512_mul_ps(d, vscale);
    if (bias)
        s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(ga512_mask(nk), bias + i0));
    return s;
}

void ga_avx512_scores(const float *K, int N, int dh, const float *Q, int T,
                      int ldq, float scale, const float *bias, float *S, int lds,
                      float *m)
{
    const __m512 vscale = _mm512_set1_ps(scale);

    if (T == 1) {
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        __mmask16 nan = 0;
        for (int i0 = 0; i0 < N; i0 += 16) {
            int nk = N - i0 < 16 ? N - i0 : 16;
            __mmask16 k = ga512_mask(nk);
            __m512 s = block_scores(K, i0, nk, dh, Q, vscale, bias);
            _mm512_mask_storeu_ps(S + i0, k, s);
            track_max(s, k, &vmax, &nan);
        }
        m[0] = finish_max(vmax, nan);
        return;
    }

    for (int i0 = 0; i0 < N; i0 += 16) {
        int nk = N - i0 < 16 ? N - i0 : 16;
        __mmask16 k = ga512_mask(nk);
        for (int t = 0; t < T; t++) {
            __m512 s = block_scores(K, i0, nk, dh, Q + (size_t)t * ldq, vscale,
                                    bias);
            _mm512_mask_storeu_ps(S + (size_t)t * lds + i0, k, s);
        }
    }
    for (int t = 0; t < T; t++) {
        const float *s = S + (size_t)t * lds;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        __mmask16 nan = 0;
        for (int i0 = 0; i0 < N; i0 += 16) {
            __mmask16 k = ga512_mask(N - i0);
            track_max(_mm512_maskz_loadu_ps(k, s + i0), k, &vmax, &nan);
        }
        m[t] = finish_max(vmax, nan);
    }
}
