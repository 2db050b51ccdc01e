/* scores_backward_avx2.c — backward of scores for one query, AVX2 + FMA.
 *
 *   dq[j]    += sum_i (scale * ds[i]) * K[i][j]    (accum; dq may be NULL)
 *   dK[i][j] += (scale * ds[i]) * q[j]             (accum; dK may be NULL)
 * K [N][dh], q [dh], ds [N] -> dq [dh], dK [N][dh].
 *
 * dq: rows in blocks of about 16 KiB; within a block, columns in groups of
 * 64 (8 accumulators over rows), then one vector at a time (4 accumulators
 * over rows, masked last vector); the running sums live in dq.  dK: one
 * broadcast FMA per vector of each row, masked tail.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

enum { BLOCK_BYTES = 16384 };

/* dq[j] += sum_i (scale * ds[i]) K[i][j], rows in blocks of about 16 KiB
 * (each swept once per group of columns while it is in L1), the running
 * sums kept in dq between blocks. */
static void grad_q(const float *K, int N, int dh, const float *ds, float scale,
                   float *dq)
{
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
                acc[v] = _mm256_loadu_ps(dq + j + 8 * v);
            const float *row = K + (size_t)i0 * st + j;
            for (int i = i0; i < i1; i++, row += st) {
                __m256 w = _mm256_set1_ps(scale * ds[i]);
                for (int v = 0; v < 8; v++)
                    acc[v] = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 8 * v), acc[v]);
            }
            for (int v = 0; v < 8; v++)
                _mm256_storeu_ps(dq + j + 8 * v, acc[v]);
        }
        for (; j < dh; j += 8) {
            __m256i mask = ga_avx2_tail_mask(dh - j);
            __m256 a0 = _mm256_maskload_ps(dq + j, mask);
            __m256 a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1;
            const float *row = K + (size_t)i0 * st + j;
            int i = i0;
            for (; i + 4 <= i1; i += 4, row += 4 * st) {
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(scale * ds[i]),
                                     _mm256_maskload_ps(row, mask), a0);
                a1 = _mm256_fmadd_ps(_mm256_set1_ps(scale * ds[i + 1]),
                                     _mm256_maskload_ps(row + st, mask), a1);
                a2 = _mm256_fmadd_ps(_mm256_set1_ps(scale * ds[i + 2]),
                                     _mm256_maskload_ps(row + 2 * st, mask), a2);
                a3 = _mm256_fmadd_ps(_mm256_set1_ps(scale * ds[i + 3]),
                                     _mm256_maskload_ps(row + 3 * st, mask), a3);
            }
            for (; i < i1; i++, row += st)
                a0 = _mm256_fmadd_ps(_mm256_set1_ps(scale * ds[i]),
                                     _mm256_maskload_ps(row, mask), a0);
            __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
            _mm256_maskstore_ps(dq + j, mask, sum);
        }
    }
}

void ga_avx2_scores_backward(const float *K, int N, int dh, const float *q,
                             float scale, const float *ds, float *dq, float *dK)
{
    if (dq)
        grad_q(K, N, dh, ds, scale, dq);
    if (!dK)
        return;
    for (int i = 0; i < N; i++) {
        __m256 w = _mm256_set1_ps(scale * ds[i]);
        float *row = dK + (size_t)i * dh;
        int j = 0;
        for (; j + 8 <= dh; j += 8)
            _mm256_storeu_ps(row + j, _mm256_fmadd_ps(w, _mm256_loadu_ps(q + j),
                                                      _mm256_loadu_ps(row + j)));
        if (j < dh) {
            __m256i mask = ga_avx2_tail_mask(dh - j);
            _mm256_maskstore_ps(row + j, mask,
                                _mm256_fmadd_ps(w, _mm256_maskload_ps(q + j, mask),
                                                _mm256_maskload_ps(row + j, mask)));
        }
    }
}
