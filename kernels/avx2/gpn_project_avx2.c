/* gpn_project_avx2.c — GPN projections (docs/SPEC.md §3), AVX2 + FMA.
 *
 *   keys:  P[j][i] = b1[j] + sum_k U[j][k] * E[i][k]
 *          E [N][d], U [g][d], b1 [g] -> P [g][ldp] (transposed), ldp >= N
 *   query: r[j] = sum_k W[j][k] * x[k]       x [d], W [g][d] -> r [g]
 *
 * One row of E is dotted with 8 rows of U at a time (8 accumulators sharing
 * each load of E), then the 8 dot products are reduced together with the
 * hadd tree.  Tails in d use masked loads.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

/* out[j * ldo] = (b ? b[j] : 0) + U[j] . e  for j < g;  e [d], U [g][d]. */
static void dot_rows(const float *e, int d, const float *U, const float *b,
                     int g, float *out, size_t ldo)
{
    for (int jb = 0; jb < g; jb += 8) {
        int nj = g - jb < 8 ? g - jb : 8;
        /* Rows past g repeat the last row: computed, never stored. */
        const float *u[8];
        for (int r = 0; r < 8; r++)
            u[r] = U + (size_t)(jb + (r < nj ? r : nj - 1)) * d;

        __m256 acc[8];
        for (int r = 0; r < 8; r++)
            acc[r] = _mm256_setzero_ps();
        int k = 0;
        for (; k + 8 <= d; k += 8) {
            __m256 ev = _mm256_loadu_ps(e + k);
            for (int r = 0; r < 8; r++)
                acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(u[r] + k), ev, acc[r]);
        }
        if (k < d) {
            __m256i mask = ga_avx2_tail_mask(d - k);
            __m256 ev = _mm256_maskload_ps(e + k, mask);
            for (int r = 0; r < 8; r++)
                acc[r] = _mm256_fmadd_ps(_mm256_maskload_ps(u[r] + k, mask), ev, acc[r]);
        }
        __m256 sums = ga_avx2_hsum8(acc);
        if (b)
            sums = _mm256_add_ps(sums, ga_avx2_load_tail(b + jb, nj));
        float tmp[8];
        _mm256_storeu_ps(tmp, sums);
        for (int r = 0; r < nj; r++)
            out[(size_t)(jb + r) * ldo] = tmp[r];
    }
}

void ga_avx2_gpn_project_keys(const float *E, int N, int d, const float *U,
                              const float *b1, int g, float *P, int ldp)
{
    for (int i = 0; i < N; i++)
        dot_rows(E + (size_t)i * d, d, U, b1, g, P + i, (size_t)ldp);
}

void ga_avx2_gpn_project_query(const float *x, int d, const float *W, int g,
                               float *r)
{
    dot_rows(x, d, W, NULL, g, r, 1);
}
