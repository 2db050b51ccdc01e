/* gpn_project_avx512.c — GPN projections (docs/SPEC.md §3), AVX-512.
 *
 *   keys:  P[j][i] = b1[j] + sum_k U[j][k] * E[i][k]
 *          E [N][d], U [g][d], b1 [g] -> P [g][ldp] (transposed), ldp >= N
 *   query: r[j] = sum_k W[j][k] * x[k]       x [d], W [g][d] -> r [g]
 *
 * Both are rows-times-vector products done 16 rows at a time by ga512_dot16
 * (16 independent accumulators folded by a shuffle/add tree).  For the keys
 * the 16 results of one U row are 16 consecutive keys, i.e. one contiguous
 * (masked) store into P[j]; the 16 E rows of a block stay in L1 across j.
 * Alignment: none required.  Bytes read past the end: 0 (masked tails).
 */
#include "avx512.h"

void ga_avx512_gpn_project_keys(const float *E, int N, int d, const float *U,
                                const float *b1, int g, float *P, int ldp)
{
    for (int i0 = 0; i0 < N; i0 += 16) {
        int nk = N - i0 < 16 ? N - i0 : 16;
        __mmask16 k = ga512_mask(nk);
        const float *Eb = E + (size_t)i0 * d;
        for (int j = 0; j < g; j++) {
            __m512 v = ga512_dot16(Eb, (size_t)d, nk, U + (size_t)j * d, d);
            v = _mm512_add_ps(v, _mm512_set1_ps(b1[j]));
            _mm512_mask_storeu_ps(P + (size_t)j * ldp + i0, k, v);
        }
    }
}

void ga_avx512_gpn_project_query(const float *x, int d, const float *W, int g,
                                 float *r)
{
    for (int j0 = 0; j0 < g; j0 += 16) {
        int nr = g - j0 < 16 ? g - j0 : 16;
        __m512 v = ga512_dot16(W + (size_t)j0 * d, (size_t)d, nr, x, d);
        _mm512_mask_storeu_ps(r + j0, ga512_mask(nr), v);
    }
}
