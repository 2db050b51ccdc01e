/* gpn_project_backward_ref.c — scalar references of the backward of the GPN
 * projections (gpn_project_keys and gpn_project_query).
 *
 * keys (P[j][i] = b1[j] + sum_k U[j][k] E[i][k]), with dP [g][lddp]:
 *   dU[j][k] += sum_i dP[j][i] E[i][k]     dU [g][d]   (accum; may be NULL)
 *   db1[j]   += sum_i dP[j][i]             db1 [g]     (accum; may be NULL)
 *   dE[i][k] += sum_j dP[j][i] U[j][k]     dE [N][d]   (accum; may be NULL)
 * query (r[j] = sum_k W[j][k] x[k]), with dr [g]:
 *   dW[j][k] += dr[j] x[k]                 dW [g][d]   (accum; may be NULL)
 *   dx[k]    += sum_j W[j][k] dr[j]        dx [d]      (accum; may be NULL)
 * Sums in double, each output rounded to float once.
 */
#include "internal.h"

void ga_ref_gpn_project_keys_backward(const float *E, int N, int d,
                                      const float *U, int g, const float *dP,
                                      int lddp, float *dU, float *db1, float *dE)
{
    if (dU) {
        for (int j = 0; j < g; j++) {
            for (int k = 0; k < d; k++) {
                double acc = 0.0;
                for (int i = 0; i < N; i++)
                    acc += (double)dP[(size_t)j * lddp + i] * E[(size_t)i * d + k];
                dU[(size_t)j * d + k] = (float)(dU[(size_t)j * d + k] + acc);
            }
        }
    }
    if (db1) {
        for (int j = 0; j < g; j++) {
            double acc = 0.0;
            for (int i = 0; i < N; i++)
                acc += dP[(size_t)j * lddp + i];
            db1[j] = (float)(db1[j] + acc);
        }
    }
    if (dE) {
        for (int i = 0; i < N; i++) {
            for (int k = 0; k < d; k++) {
                double acc = 0.0;
                for (int j = 0; j < g; j++)
                    acc += (double)dP[(size_t)j * lddp + i] * U[(size_t)j * d + k];
                dE[(size_t)i * d + k] = (float)(dE[(size_t)i * d + k] + acc);
            }
        }
    }
}

void ga_ref_gpn_project_query_backward(const float *x, int d, const float *W,
                                       int g, const float *dr, float *dW, float *dx)
{
    if (dW) {
        for (int j = 0; j < g; j++)
            for (int k = 0; k < d; k++)
                dW[(size_t)j * d + k] =
                    (float)(dW[(size_t)j * d + k] + (double)dr[j] * x[k]);
    }
    if (dx) {
        for (int k = 0; k < d; k++) {
            double acc = 0.0;
            for (int j = 0; j < g; j++)
                acc += (double)W[(size_t)j * d + k] * dr[j];
            dx[k] = (float)(dx[k] + acc);
        }
    }
}
