/* gpn_backward_avx512.c — GPN head backward (docs/SPEC.md §4), AVX-512.
 *
 * Per key i, from the forward pi and dpi = dLoss/dpi:
 *   dz_l = pi_l * (dpi_l - sum_k pi_k dpi_k)            (l < L)
 *   u_j  = relu(P[j][i] + r[j])                          (NaN propagates)
 *   du_j = [P[j][i] + r[j] > 0] * sum_l W2[l][j] dz_l
 *   dP[j][i] = du_j (overwritten);  dr[j] += sum_i du_j;
 *   dW2[l][j] += sum_i dz_l u_j;    db2[l] += sum_i dz_l    (accum)
 * P [g][ldp], r [g], W2 [L][g], pi, dpi [L][ldpi] -> dP [g][lddp], dr [g],
 * dW2 [L][g], db2 [L].  1 <= L <= 8.
 *
 * Lanes run across 16 keys.  The sums over keys are kept per lane in float
 * vector accumulators (in a fixed stack array, hidden units taken 16 at a
 * time) and reduced once at the end; dz is recomputed per group of 16 hidden
 * units (once for g <= 16).  Tail lanes are masked out of every sum.
 * Alignment: none required.  Bytes read past the end: 0 (masked tails).
 */
#include "avx512.h"

/* dz of the 16 keys at i0 (lanes in k; other lanes 0).  Returns the live
 * lanes: in k and with a nonzero dpi at some level.  A key whose dpi is 0 at
 * every level (padding) is excluded: dz = 0 and the callers mask u and du
 * with the live lanes, so its pi and P column never reach an output. */
static inline __mmask16 block_dz(const float *pi, const float *dpi, int ldpi, int L,
                                 int i0, __mmask16 k, __m512 dz[GA_MAX_LEVELS])
{
    __m512 pv[GA_MAX_LEVELS], dv[GA_MAX_LEVELS];
    __m512 dot = _mm512_setzero_ps();
    __mmask16 live = 0;
    for (int l = 0; l < L; l++) {
        pv[l] = _mm512_maskz_loadu_ps(k, pi + (size_t)l * ldpi + i0);
        dv[l] = _mm512_maskz_loadu_ps(k, dpi + (size_t)l * ldpi + i0);
        dot = _mm512_fmadd_ps(pv[l], dv[l], dot);
        live |= _mm512_mask_cmp_ps_mask(k, dv[l], _mm512_setzero_ps(), _CMP_NEQ_UQ);
    }
    for (int l = 0; l < L; l++)
        dz[l] = _mm512_maskz_mul_ps(live, pv[l], _mm512_sub_ps(dv[l], dot));
    return live;
}

void ga_avx512_gpn_backward(const float *P, int ldp, const float *r,
                            const float *W2, int N, int g, int L, const float *pi,
                            const float *dpi, int ldpi, float *dP, int lddp,
                            float *dr, float *dW2, float *db2)
{
    const __m512 zero = _mm512_setzero_ps();
    __m512 dz[GA_MAX_LEVELS];

    /* db2 */
    __m512 accb[GA_MAX_LEVELS];
    for (int l = 0; l < L; l++)
        accb[l] = zero;
    for (int i0 = 0; i0 < N; i0 += 16) {
        block_dz(pi, dpi, ldpi, L, i0, ga_avx512_mask(N - i0), dz);
        for (int l = 0; l < L; l++)
            accb[l] = _mm512_add_ps(accb[l], dz[l]);
    }
    for (int l = 0; l < L; l++)
        db2[l] += _mm512_reduce_add_ps(accb[l]);

    /* dP, dr, dW2: hidden units in groups of 16 */
    for (int j0 = 0; j0 < g; j0 += 16) {
        int nj = g - j0 < 16 ? g - j0 : 16;
        __m512 accr[16], accw[GA_MAX_LEVELS][16];
        for (int jj = 0; jj < nj; jj++) {
            accr[jj] = zero;
            for (int l = 0; l < L; l++)
                accw[l][jj] = zero;
        }
        for (int i0 = 0; i0 < N; i0 += 16) {
            __mmask16 k = ga_avx512_mask(N - i0);
            __mmask16 live = block_dz(pi, dpi, ldpi, L, i0, k, dz);
            for (int jj = 0; jj < nj; jj++) {
                int j = j0 + jj;
                __m512 x = _mm512_add_ps(
                    _mm512_maskz_loadu_ps(k, P + (size_t)j * ldp + i0),
                    _mm512_set1_ps(r[j]));
                __m512 u = _mm512_max_ps(zero, x); /* x if x is NaN */
                __mmask16 act = _mm512_mask_cmp_ps_mask(live, x, zero, _CMP_GT_OQ);
                __m512 du = zero;
                for (int l = 0; l < L; l++) {
                    du = _mm512_fmadd_ps(_mm512_set1_ps(W2[(size_t)l * g + j]), dz[l],
                                         du);
                    accw[l][jj] = _mm512_mask3_fmadd_ps(dz[l], u, accw[l][jj], live);
                }
                du = _mm512_maskz_mov_ps(act, du);
                _mm512_mask_storeu_ps(dP + (size_t)j * lddp + i0, k, du);
                accr[jj] = _mm512_add_ps(accr[jj], du);
            }
        }
        for (int jj = 0; jj < nj; jj++) {
            dr[j0 + jj] += _mm512_reduce_add_ps(accr[jj]);
            for (int l = 0; l < L; l++)
                dW2[(size_t)l * g + j0 + jj] += _mm512_reduce_add_ps(accw[l][jj]);
        }
    }
}
