/* gpn_project_backward_avx512.c — backward of the GPN projections, AVX-512.
 *
 * keys (P[j][i] = b1[j] + sum_k U[j][k] E[i][k]), with dP [g][lddp]:
 *   dU[j][k] += sum_i dP[j][i] E[i][k]     dU [g][d]   (accum; may be NULL)
 *   db1[j]   += sum_i dP[j][i]             db1 [g]     (accum; may be NULL)
 *   dE[i][k] += sum_j dP[j][i] U[j][k]     dE [N][d]   (accum; may be NULL)
 * query (r[j] = sum_k W[j][k] x[k]), with dr [g]:
 *   dW[j][k] += dr[j] x[k]                 dW [g][d]   (accum; may be NULL)
 *   dx[k]    += sum_j W[j][k] dr[j]        dx [d]      (accum; may be NULL)
 *
 * The weighted row sums (dU rows, dE rows, dx) use ga512_wsum (float
 * register accumulators, columns in blocks of up to 128); the rest are plain
 * masked vector loops.  Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx512.h"

void ga_avx512_gpn_project_keys_backward(const float *E, int N, int d,
                                         const float *U, int g, const float *dP,
                                         int lddp, float *dU, float *db1,
                                         float *dE)
{
    if (dU) {
        /* dU[j] += sum_i dP[j][i] * E[i] */
        for (int j = 0; j < g; j++)
            ga512_wsum(E, (size_t)d, d, NULL, dP + (size_t)j * lddp, 1, N, 1.0f, 1,
                       dU + (size_t)j * d);
    }
    if (db1) {
        for (int j = 0; j < g; j++) {
            const float *row = dP + (size_t)j * lddp;
            __m512 acc = _mm512_setzero_ps();
            for (int i = 0; i < N; i += 16)
                acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(ga512_mask(N - i),
                                                               row + i));
            db1[j] += _mm512_reduce_add_ps(acc);
        }
    }
    if (dE) {
        /* dE[i] += sum_j dP[j][i] * U[j]  (weights strided by lddp) */
        for (int i = 0; i < N; i++)
            ga512_wsum(U, (size_t)d, d, NULL, dP + i, (size_t)lddp, g, 1.0f, 1,
                       dE + (size_t)i * d);
    }
}

void ga_avx512_gpn_project_query_backward(const float *x, int d, const float *W,
                                          int g, const float *dr, float *dW,
                                          float *dx)
{
    if (dW) {
        for (int j = 0; j < g; j++) {
            __m512 w = _mm512_set1_ps(dr[j]);
            float *row = dW + (size_t)j * d;
            for (int k = 0; k < d; k += 16) {
                __mmask16 m = ga512_mask(d - k);
                __m512 acc = _mm512_maskz_loadu_ps(m, row + k);
                acc = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + k), acc);
                _mm512_mask_storeu_ps(row + k, m, acc);
            }
        }
    }
    if (dx)
        ga512_wsum(W, (size_t)d, d, NULL, dr, 1, g, 1.0f, 1, dx);
}
