/* sparse_context_avx2.c — context from gathered rows (docs/SPEC.md §2), AVX2 + FMA.
 *
 *   c[j] = scale * sum_{k < count} p[k] * V[idx[k]][j];  count == 0 -> c = 0.
 * V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh].
 *
 * Kept rows go in blocks of about 16 KiB so that a block stays in L1 while
 * it is swept once per group of columns: each gathered row comes from
 * memory once even when dh > 64.  Within a block, columns go in groups of 64
 * (8 accumulators in registers, 8 independent FMA chains), then one vector
 * at a time with 4 accumulators over k (masked load for the last partial
 * vector).  The 64-column groups prefetch their part of the row PREFETCH
 * keys ahead (only valid rows and columns): the rows are scattered, so the
 * hardware prefetcher does not see them coming.
 * The running sums live in c between blocks; c is scaled at the end.
 * Fixed summation order: bitwise reproducible for any alignment.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

enum { BLOCK_BYTES = 16384, PREFETCH = 8 };

void ga_avx2_sparse_context(const float *V, int dh, const int32_t *idx,
                            const float *p, int count, float scale, float *c)
{
    for (int j = 0; j < dh; j++)
        c[j] = 0.0f;
    if (count <= 0)
        return;
    const size_t st = (size_t)dh;
    int rows = BLOCK_BYTES / (int)(sizeof(float) * (dh > 0 ? dh : 1));
    if (rows < 4)
        rows = 4;
    for (int k0 = 0; k0 < count; k0 += rows) {
        const int k1 = count - k0 < rows ? count : k0 + rows;
        int j = 0;
        for (; j + 64 <= dh; j += 64) {
            __m256 acc[8];
            for (int v = 0; v < 8; v++)
                acc[v] = _mm256_loadu_ps(c + j + 8 * v);
            for (int k = k0; k < k1; k++) {
                const float *row = V + (size_t)idx[k] * st + j;
                const int kf = k + PREFETCH < count ? k + PREFETCH : count - 1;
                const char *ahead = (const char *)(V + (size_t)idx[kf] * st + j);
                for (int line = 0; line < 256; line += 64)
                    _mm_prefetch(ahead + line, _MM_HINT_T0);
                __m256 w = _mm256_set1_ps(p[k]);
                for (int v = 0; v < 8; v++)
                    acc[v] = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 8 * v), acc[v]);
            }
            for (int v = 0; v < 8; v++)
                _mm256_storeu_ps(c + j + 8 * v, acc[v]);
        }
        for (; j < dh; j += 8) {
            __m256i mask = ga_avx2_tail_mask(dh - j);
            const float *Vj = V + j;
            __m256 a0 = _mm256_maskload_ps(c + j, mask);
            __m256 a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1;
            int k = k0;
            for (; k + 4 <= k1; k += 4) {
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[k]),
                                     _mm256_maskload_ps(Vj + (size_t)idx[k] * st, mask), a0);
                a1 = _mm256_fmadd_ps(_mm256_set1_ps(p[k + 1]),
                                     _mm256_maskload_ps(Vj + (size_t)idx[k + 1] * st, mask), a1);
                a2 = _mm256_fmadd_ps(_mm256_set1_ps(p[k + 2]),
                                     _mm256_maskload_ps(Vj + (size_t)idx[k + 2] * st, mask), a2);
                a3 = _mm256_fmadd_ps(_mm256_set1_ps(p[k + 3]),
                                     _mm256_maskload_ps(Vj + (size_t)idx[k + 3] * st, mask), a3);
            }
            for (; k < k1; k++)
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[k]),
                                     _mm256_maskload_ps(Vj + (size_t)idx[k] * st, mask), a0);
            __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
            _mm256_maskstore_ps(c + j, mask, sum);
        }
    }
    const __m256 vs = _mm256_set1_ps(scale);
    for (int j = 0; j < dh; j += 8) {
        __m256i mask = ga_avx2_tail_mask(dh - j);
        _mm256_maskstore_ps(c + j, mask, _mm256_mul_ps(_mm256_maskload_ps(c + j, mask), vs));
    }
}
