/* scores_avx2.c — attention scores and their row max, AVX2 + FMA.
 *
 *   S[t][i] = scale * (Q[t] . K[i]) + (bias ? bias[i] : 0)
 *   m[t]    = max_i S[t][i]; NaN if any S[t][i] is NaN; -inf if N == 0.
 * K [N][dh], Q [T][ldq] (ldq >= dh), bias [N] or NULL -> S [T][lds], m [T].
 *
 * Memory-bound for one query (K is read once).  Keys go 8 at a time with
 * 8 independent accumulators that share each load of q; the 8 dot products
 * are reduced into one vector of 8 scores by the hadd tree, so scale, bias,
 * the store, the max and the NaN check are all 8-wide.  The last block of
 * fewer than 8 keys repeats its last row in the unused lanes (computed, then
 * masked: never stored, never part of the max).  Tails in dh use masked
 * loads.  For T > 1 keys are walked in chunks small enough to stay in L1 and
 * every query is scored against a chunk before the next, so K is read from
 * memory once for the whole block of queries.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include <math.h>

#include "avx2.h"

/* Dot products of q with the 8 rows k[0..8): lane r = q . k[r]. */
static inline __m256 dot8(const float *const k[8], const float *q, int dh)
{
    __m256 acc[8];
    for (int r = 0; r < 8; r++)
        acc[r] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= dh; j += 8) {
        __m256 qv = _mm256_loadu_ps(q + j);
        for (int r = 0; r < 8; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(k[r] + j), qv, acc[r]);
    }
    if (j < dh) {
        __m256i mask = ga_avx2_tail_mask(dh - j);
        __m256 qv = _mm256_maskload_ps(q + j, mask);
        for (int r = 0; r < 8; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_maskload_ps(k[r] + j, mask), qv, acc[r]);
    }
    return ga_avx2_hsum8(acc);
}

/* Scores of one query against keys [i0, i1) into s[i0..i1); returns their
 * max, or NaN if any of them is NaN (-inf if the range is empty). */
static float score_range(const float *K, int dh, const float *q, float scale,
                         const float *bias, int i0, int i1, float *s)
{
    const size_t st = (size_t)dh;
    const __m256 vscale = _mm256_set1_ps(scale);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vmax = ninf;
    __m256 vnan = _mm256_setzero_ps();
    const float *k[8];
    int i = i0;
    for (; i + 8 <= i1; i += 8) {
        for (int r = 0; r < 8; r++)
            k[r] = K + (i + r) * st;
        __m256 v = _mm256_mul_ps(dot8(k, q, dh), vscale);
        if (bias)
            v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(s + i, v);
        vmax = _mm256_max_ps(vmax, v);
        vnan = _mm256_or_ps(vnan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    if (i < i1) {
        /* Last block of n < 8 keys: lanes >= n repeat the last row. */
        const int n = i1 - i;
        for (int r = 0; r < 8; r++)
            k[r] = K + (i + (r < n ? r : n - 1)) * st;
        const __m256i mask = ga_avx2_tail_mask(n);
        __m256 v = _mm256_mul_ps(dot8(k, q, dh), vscale);
        if (bias)
            v = _mm256_add_ps(v, _mm256_maskload_ps(bias + i, mask));
        _mm256_maskstore_ps(s + i, mask, v);
        v = _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(mask));
        vmax = _mm256_max_ps(vmax, v);
        vnan = _mm256_or_ps(vnan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    return _mm256_movemask_ps(vnan) ? NAN : ga_avx2_hmax(vmax);
}

void ga_avx2_scores(const float *K, int N, int dh, const float *Q, int T, int ldq,
                    float scale, const float *bias, float *S, int lds, float *m)
{
    if (T == 1) {
        m[0] = score_range(K, dh, Q, scale, bias, 0, N, S);
        return;
    }
    /* Chunk of keys: about 16 KiB of K, a multiple of 8 keys. */
    int chunk = (4096 / (dh > 0 ? dh : 1)) & ~7;
    if (chunk < 8)
        chunk = 8;
    for (int t = 0; t < T; t++)
        m[t] = -INFINITY;
    for (int i0 = 0; i0 < N; i0 += chunk) {
        int i1 = N - i0 < chunk ? N : i0 + chunk;
        for (int t = 0; t < T; t++) {
            float cm = score_range(K, dh, Q + (size_t)t * ldq, scale, bias, i0, i1,
                                   S + (size_t)t * lds);
            if (!isnan(m[t]) && (isnan(cm) || cm > m[t])) /* NaN is sticky */
                m[t] = cm;
        }
    }
}
