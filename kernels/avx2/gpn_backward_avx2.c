/* gpn_backward_avx2.c — backward of the GPN head (docs/SPEC.md §4), AVX2 + FMA.
 *
 * Per key i, from the forward probabilities pi and dpi = dLoss/dpi:
 *   dz_l = pi_l * (dpi_l - sum_k pi_k dpi_k);   u = relu(P[:,i] + r)
 *   dW2[l][j] += sum_i dz_l u_j;   db2[l] += sum_i dz_l          (accum)
 *   du_j = [P[j][i] + r[j] > 0] * sum_l W2[l][j] dz_l
 *   dP[j][i] = du_j (overwritten);  dr[j] += sum_i du_j           (accum)
 * P [g][ldp], r [g], W2 [L][g], pi, dpi [L][ldpi] -> dP [g][lddp],
 * dr [g], dW2 [L][g], db2 [L];  1 <= L <= 8.
 *
 * Lanes run across keys.  Keys go in chunks of 64: first dz of the chunk
 * (L rows of 64) into a local buffer, then for each j one pass over the
 * chunk computes u, du, dP and the dW2/dr partial sums (vector accumulators
 * reduced once per chunk).  relu is max(0, x) (a NaN propagates into dW2).
 * A key whose dpi is 0 at every level (padding) is excluded: its lanes are
 * cleared in the per-chunk lane mask `live`, which replaces the tail mask,
 * so dz, u and du are 0 there whatever pi and P hold.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

enum { CHUNK = 64 }; /* keys per chunk, a multiple of 8 */

void ga_avx2_gpn_backward(const float *P, int ldp, const float *r, const float *W2,
                          int N, int g, int L, const float *pi, const float *dpi,
                          int ldpi, float *dP, int lddp, float *dr, float *dW2,
                          float *db2)
{
    const __m256 zero = _mm256_setzero_ps();
    float dz[GA_MAX_LEVELS][CHUNK];
    float live[CHUNK]; /* all-ones bits: key in range and not excluded */
    __m256 db[GA_MAX_LEVELS];
    for (int l = 0; l < L; l++)
        db[l] = zero;

    for (int i0 = 0; i0 < N; i0 += CHUNK) {
        int nk = N - i0 < CHUNK ? N - i0 : CHUNK;

        /* dz of the chunk; lanes past N are 0. */
        for (int v = 0; 8 * v < nk; v++) {
            int i = i0 + 8 * v;
            __m256i mask = ga_avx2_tail_mask(N - i);
            __m256 pv[GA_MAX_LEVELS], dv[GA_MAX_LEVELS];
            __m256 dot = zero, on = zero;
            for (int l = 0; l < L; l++) {
                pv[l] = _mm256_maskload_ps(pi + (size_t)l * ldpi + i, mask);
                dv[l] = _mm256_maskload_ps(dpi + (size_t)l * ldpi + i, mask);
                dot = _mm256_fmadd_ps(pv[l], dv[l], dot);
                on = _mm256_or_ps(on, _mm256_cmp_ps(dv[l], zero, _CMP_NEQ_UQ));
            }
            on = _mm256_and_ps(on, _mm256_castsi256_ps(mask));
            _mm256_storeu_ps(&live[8 * v], on);
            for (int l = 0; l < L; l++) {
                __m256 z = _mm256_and_ps(on, _mm256_mul_ps(pv[l], _mm256_sub_ps(dv[l], dot)));
                _mm256_storeu_ps(&dz[l][8 * v], z);
                db[l] = _mm256_add_ps(db[l], z);
            }
        }

        for (int j = 0; j < g; j++) {
            const __m256 rj = _mm256_set1_ps(r[j]);
            __m256 dw[GA_MAX_LEVELS];
            for (int l = 0; l < L; l++)
                dw[l] = zero;
            __m256 drv = zero;
            for (int v = 0; 8 * v < nk; v++) {
                int i = i0 + 8 * v;
                __m256i mask = ga_avx2_tail_mask(N - i);
                __m256 fmask = _mm256_loadu_ps(&live[8 * v]);
                __m256 x = _mm256_add_ps(_mm256_maskload_ps(P + (size_t)j * ldp + i, mask), rj);
                __m256 u = _mm256_and_ps(_mm256_max_ps(zero, x), fmask);
                __m256 pos = _mm256_and_ps(_mm256_cmp_ps(x, zero, _CMP_GT_OQ), fmask);
                __m256 du = zero;
                for (int l = 0; l < L; l++) {
                    __m256 z = _mm256_loadu_ps(&dz[l][8 * v]);
                    du = _mm256_fmadd_ps(_mm256_set1_ps(W2[(size_t)l * g + j]), z, du);
                    dw[l] = _mm256_fmadd_ps(z, u, dw[l]);
                }
                du = _mm256_and_ps(du, pos);
                _mm256_maskstore_ps(dP + (size_t)j * lddp + i, mask, du);
                drv = _mm256_add_ps(drv, du);
            }
            dr[j] += ga_avx2_hsum(drv);
            for (int l = 0; l < L; l++)
                dW2[(size_t)l * g + j] += ga_avx2_hsum(dw[l]);
        }
    }
    for (int l = 0; l < L; l++)
        db2[l] += ga_avx2_hsum(db[l]);
}
