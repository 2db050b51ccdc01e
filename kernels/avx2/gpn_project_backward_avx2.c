/* gpn_project_backward_avx2.c — backward of the GPN projections, AVX2 + FMA.
 *
 * keys, with dP [g][lddp] (all accum; each output may be NULL):
 *   dU[j][k] += sum_i dP[j][i] E[i][k]     E [N][d] -> dU [g][d]
 *   db1[j]   += sum_i dP[j][i]                      -> db1 [g]
 *   dE[i][k] += sum_j dP[j][i] U[j][k]     U [g][d] -> dE [N][d]
 * query (accum; each may be NULL):
 *   dW[j][k] += dr[j] x[k];   dx[k] += sum_j W[j][k] dr[j]
 *   x [d], W [g][d], dr [g] -> dW [g][d], dx [d].
 *
 * dU is updated 4 keys at a time (4 FMAs per load/store of dU); dE and dx
 * keep one vector of the output in a register while summing over j.  All
 * loops over k use a masked last vector.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

/* out[k] += sum_{t < n} w[t] * rows[t][k] for k < d;  n <= 4 (inlined with
 * n = 4 for the full blocks). */
GA_AVX2_INLINE void axpy_rows(float *out, int d, const float *const rows[4],
                              const float w[4], const int n)
{
    for (int k = 0; k < d; k += 8) {
        __m256i mask = ga_avx2_tail_mask(d - k);
        __m256 acc = _mm256_maskload_ps(out + k, mask);
        for (int t = 0; t < n; t++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(w[t]),
                                  _mm256_maskload_ps(rows[t] + k, mask), acc);
        _mm256_maskstore_ps(out + k, mask, acc);
    }
}

/* out[k] += sum_{j < g} c[j * ldc] * M[j][k] for k < d;  M [g][d]. */
static void gemv_t(float *out, int d, const float *M, int g, const float *c,
                   size_t ldc)
{
    for (int k = 0; k < d; k += 8) {
        __m256i mask = ga_avx2_tail_mask(d - k);
        __m256 acc = _mm256_maskload_ps(out + k, mask);
        for (int j = 0; j < g; j++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(c[(size_t)j * ldc]),
                                  _mm256_maskload_ps(M + (size_t)j * d + k, mask), acc);
        _mm256_maskstore_ps(out + k, mask, acc);
    }
}

void ga_avx2_gpn_project_keys_backward(const float *E, int N, int d,
                                       const float *U, int g, const float *dP,
                                       int lddp, float *dU, float *db1, float *dE)
{
    if (db1) {
        for (int j = 0; j < g; j++) {
            const float *row = dP + (size_t)j * lddp;
            __m256 acc = _mm256_setzero_ps();
            for (int i = 0; i < N; i += 8)
                acc = _mm256_add_ps(acc, ga_avx2_load_tail(row + i, N - i));
            db1[j] += ga_avx2_hsum(acc);
        }
    }
    if (dU) {
        for (int i = 0; i < N; i += 4) {
            int n = N - i < 4 ? N - i : 4;
            const float *rows[4];
            for (int t = 0; t < 4; t++)
                rows[t] = E + (size_t)(i + (t < n ? t : 0)) * d;
            for (int j = 0; j < g; j++) {
                float w[4];
                for (int t = 0; t < 4; t++)
                    w[t] = t < n ? dP[(size_t)j * lddp + i + t] : 0.0f;
                if (n == 4)
                    axpy_rows(dU + (size_t)j * d, d, rows, w, 4);
                else
                    axpy_rows(dU + (size_t)j * d, d, rows, w, n);
            }
        }
    }
    if (dE) {
        for (int i = 0; i < N; i++)
            gemv_t(dE + (size_t)i * d, d, U, g, dP + i, (size_t)lddp);
    }
}

void ga_avx2_gpn_project_query_backward(const float *x, int d, const float *W,
                                        int g, const float *dr, float *dW,
                                        float *dx)
{
    if (dW) {
        for (int j = 0; j < g; j++) {
            const __m256 w = _mm256_set1_ps(dr[j]);
            float *row = dW + (size_t)j * d;
            for (int k = 0; k < d; k += 8) {
                __m256i mask = ga_avx2_tail_mask(d - k);
                __m256 acc = _mm256_fmadd_ps(w, _mm256_maskload_ps(x + k, mask),
                                             _mm256_maskload_ps(row + k, mask));
                _mm256_maskstore_ps(row + k, mask, acc);
            }
        }
    }
    if (dx)
        gemv_t(dx, d, W, g, dr, 1);
}
