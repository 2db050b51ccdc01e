/* gpn_project_backward_neon.c — backward of the GPN projections
 * (gpn_project_keys and gpn_project_query), AArch64 NEON.
 *
 * keys (P[j][i] = b1[j] + sum_k U[j][k] E[i][k]), with dP [g][lddp]:
 *   dU[j][k] += sum_i dP[j][i] E[i][k]     dU [g][d]   (accum; may be NULL)
 *   db1[j]   += sum_i dP[j][i]             db1 [g]     (accum; may be NULL)
 *   dE[i][k] += sum_j dP[j][i] U[j][k]     dE [N][d]   (accum; may be NULL)
 * query (r[j] = sum_k W[j][k] x[k]), with dr [g]:
 *   dW[j][k] += dr[j] x[k]                 dW [g][d]   (accum; may be NULL)
 *   dx[k]    += sum_j W[j][k] dr[j]        dx [d]      (accum; may be NULL)
 *
 * The row-weighted sums (dU, dE, dx) use ga_neon_wsum_rows (lanes across k,
 * 8 accumulators); dW is one axpy per row; db1 a 4-lane sum per row.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

/* sum of x[0..n) */
static float sum_row(const float *x, int n)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        acc = vaddq_f32(acc, vld1q_f32(x + i));
    if (i < n)
        acc = vaddq_f32(acc, ga_neon_load_tail(x + i, n - i, 0.0f));
    return vaddvq_f32(acc);
}

void ga_neon_gpn_project_keys_backward(const float *E, int N, int d,
                                       const float *U, int g, const float *dP,
                                       int lddp, float *dU, float *db1, float *dE)
{
    if (dU)
        for (int j = 0; j < g; j++)
            ga_neon_wsum_rows(E, (size_t)d, NULL, N, dP + (size_t)j * lddp, 1, d,
                              1.0f, 1, dU + (size_t)j * d);
    if (db1)
        for (int j = 0; j < g; j++)
            db1[j] += sum_row(dP + (size_t)j * lddp, N);
    if (dE)
        for (int i = 0; i < N; i++)
            ga_neon_wsum_rows(U, (size_t)d, NULL, g, dP + i, (size_t)lddp, d,
                              1.0f, 1, dE + (size_t)i * d);
}

void ga_neon_gpn_project_query_backward(const float *x, int d, const float *W,
                                        int g, const float *dr, float *dW,
                                        float *dx)
{
    if (dW)
        for (int j = 0; j < g; j++)
            ga_neon_axpy(dW + (size_t)j * d, x, dr[j], d);
    if (dx)
        ga_neon_wsum_rows(W, (size_t)d, NULL, g, dr, 1, d, 1.0f, 1, dx);
}
