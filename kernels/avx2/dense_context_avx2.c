/* dense_context_avx2.c — dense context (dense baseline), AVX2 + FMA.
 *
 *   c[j] = sum_i a[i] * V[i][j].   V [N][dh], a [N] -> c [dh]  (N == 0 -> 0).
 *
 * Streams V (memory-bound).  Rows go in blocks of about 16 KiB so that a
 * block stays in L1 while it is swept once per group of columns: every
 * line of V comes from memory once even when dh > 64.  Within a block,
 * columns go in groups of 64 (8 accumulators in registers, 8 independent
 * FMA chains, enough to hide the FMA latency), then one vector at a time
 * with 4 accumulators over rows (masked load for the last partial vector).
 * The running sums live in c between blocks.  Fixed summation order:
 * bitwise reproducible for any pointer alignment.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

enum { BLOCK_BYTES = 16384 };

void ga_avx2_dense_context(const float *V, int N, int dh, const float *a, float *c)
{
    for (int j = 0; j < dh; j++)
        c[j] = 0.0f;
    const size_t st = (size_t)dh;
    int rows = BLOCK_BYTES / (int)(sizeof(float) * (dh > 0 ? dh : 1));
    if (rows < 4)
        rows = 4;
    for (int i0 = 0; i0 < N; i0 += rows) {
        const int i1 = N - i0 < rows ? N : i0 + rows;
        int j = 0;
        for (; j + 64 <= dh; j += 64) {
            __m256 acc[8];
            for (int v = 0; v < 8; v++)
                acc[v] = _mm256_loadu_ps(c + j + 8 * v);
            const float *row = V + (size_t)i0 * st + j;
            for (int i = i0; i < i1; i++, row += st) {
                __m256 w = _mm256_set1_ps(a[i]);
                for (int v = 0; v < 8; v++)
                    acc[v] = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 8 * v), acc[v]);
            }
            for (int v = 0; v < 8; v++)
                _mm256_storeu_ps(c + j + 8 * v, acc[v]);
        }
        for (; j < dh; j += 8) {
            __m256i mask = ga_avx2_tail_mask(dh - j);
            __m256 a0 = _mm256_maskload_ps(c + j, mask);
            __m256 a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1;
            const float *row = V + (size_t)i0 * st + j;
            int i = i0;
            for (; i + 4 <= i1; i += 4, row += 4 * st) {
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(a[i]), _mm256_maskload_ps(row, mask), a0);
                a1 = _mm256_fmadd_ps(_mm256_set1_ps(a[i + 1]),
                                     _mm256_maskload_ps(row + st, mask), a1);
                a2 = _mm256_fmadd_ps(_mm256_set1_ps(a[i + 2]),
                                     _mm256_maskload_ps(row + 2 * st, mask), a2);
                a3 = _mm256_fmadd_ps(_mm256_set1_ps(a[i + 3]),
                                     _mm256_maskload_ps(row + 3 * st, mask), a3);
            }
            for (; i < i1; i++, row += st)
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(a[i]), _mm256_maskload_ps(row, mask), a0);
            __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
            _mm256_maskstore_ps(c + j, mask, sum);
        }
    }
}
