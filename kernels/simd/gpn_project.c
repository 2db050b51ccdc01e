/* gpn_project.c — the GPN projections (SPEC §3) and their backward, written
 * once against the SIMD vocabulary (simd.h), compiled per ISA.
 *
 * gpn_project_keys:   P[j][i] = b1[j] + sum_k U[j][k] * E[i][k]
 *   E [N][d], U [g][d], b1 [g] -> P [g][ldp] (transposed), ldp >= N.
 *   Keys go GAV_W at a time: for each j, gav_dot_rows of the GAV_W rows of E
 *   with U[j] gives GAV_W consecutive keys of P[j] (one contiguous masked
 *   store); the E rows of a block stay in L1 across j.
 * gpn_project_query:  r[j] = sum_k W[j][k] * x[k]     x [d], W [g][d] -> r [g]
 *   GAV_W rows of W at a time (gav_dot_rows), one masked store.
 * gpn_project_keys_backward, with dP [g][lddp] (all accum; each may be NULL):
 *   dU[j][k] += sum_i dP[j][i] E[i][k]     -> dU [g][d]    (gav_wsum per j)
 *   db1[j]   += sum_i dP[j][i]             -> db1 [g]      (gav_sum per j)
 *   dE[i][k] += sum_j dP[j][i] U[j][k]     -> dE [N][d]    (gav_wsum per i,
 *                                             weights strided by lddp)
 * gpn_project_query_backward (accum; each may be NULL):
 *   dW[j][k] += dr[j] x[k]                 -> dW [g][d]    (gav_axpy per j)
 *   dx[k]    += sum_j W[j][k] dr[j]        -> dx [d]       (gav_wsum)
 * Alignment: none required.  Bytes read or written past the end: 0.
 */
#include "simd.h"

void GA_FN(gpn_project_keys)(const float *E, int N, int d, const float *U,
                             const float *b1, int g, float *P, int ldp)
{
    for (int i0 = 0; i0 < N; i0 += GAV_W) {
        const int nk = N - i0 < GAV_W ? N - i0 : GAV_W;
        const gav_mask_t k = gav_mask(nk);
        const float *Eb = E + (size_t)i0 * d;
        for (int j = 0; j < g; j++) {
            gav_t v = gav_dot_rows(Eb, (size_t)d, nk, U + (size_t)j * d, d);
            v = gav_add(v, gav_set1(b1[j]));
            gav_store_mask(P + (size_t)j * ldp + i0, k, v);
        }
    }
}

void GA_FN(gpn_project_query)(const float *x, int d, const float *W, int g, float *r)
{
    for (int j0 = 0; j0 < g; j0 += GAV_W) {
        const int nr = g - j0 < GAV_W ? g - j0 : GAV_W;
        gav_t v = gav_dot_rows(W + (size_t)j0 * d, (size_t)d, nr, x, d);
        gav_store_mask(r + j0, gav_mask(nr), v);
    }
}

void GA_FN(gpn_project_keys_backward)(const float *E, int N, int d, const float *U,
                                      int g, const float *dP, int lddp, float *dU,
                                      float *db1, float *dE)
{
    if (dU) /* dU[j] += sum_i dP[j][i] * E[i] */
        for (int j = 0; j < g; j++)
            gav_wsum(E, (size_t)d, d, NULL, dP + (size_t)j * lddp, 1, N, 1.0f, 1,
                     dU + (size_t)j * d);
    if (db1)
        for (int j = 0; j < g; j++)
            db1[j] += gav_sum(dP + (size_t)j * lddp, N);
    if (dE) /* dE[i] += sum_j dP[j][i] * U[j] */
        for (int i = 0; i < N; i++)
            gav_wsum(U, (size_t)d, d, NULL, dP + i, (size_t)lddp, g, 1.0f, 1,
                     dE + (size_t)i * d);
}

void GA_FN(gpn_project_query_backward)(const float *x, int d, const float *W, int g,
                                       const float *dr, float *dW, float *dx)
{
    if (dW)
        for (int j = 0; j < g; j++)
            gav_axpy(dW + (size_t)j * d, x, dr[j], d);
    if (dx)
        gav_wsum(W, (size_t)d, d, NULL, dr, 1, g, 1.0f, 1, dx);
}
