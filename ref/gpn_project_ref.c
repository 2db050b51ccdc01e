/* gpn_project_ref.c — scalar reference of the GPN projections (docs/SPEC.md §3).
 *
 *   keys:  P[j][i] = b1[j] + sum_k U[j][k] * E[i][k]
 *          E [N][d], U [g][d], b1 [g] -> P [g][ldp] (transposed), ldp >= N
 *   query: r[j] = sum_k W[j][k] * x[k]
 *          x [d], W [g][d] -> r [g]
 * Dot products accumulate in double and are rounded to float once.
 */
#include "internal.h"

void ga_ref_gpn_project_keys(const float *E, int N, int d, const float *U,
                             const float *b1, int g, float *P, int ldp)
{
    for (int j = 0; j < g; j++) {
        for (int i = 0; i < N; i++) {
            double acc = b1[j];
            for (int k = 0; k < d; k++)
                acc += (double)U[(size_t)j * d + k] * E[(size_t)i * d + k];
            P[(size_t)j * ldp + i] = (float)acc;
        }
    }
}

void ga_ref_gpn_project_query(const float *x, int d, const float *W, int g, float *r)
{
    for (int j = 0; j < g; j++) {
        double acc = 0.0;
        for (int k = 0; k < d; k++)
            acc += (double)W[(size_t)j * d + k] * x[k];
        r[j] = (float)acc;
    }
}
