/* gpn_backward_ref.c — scalar reference of the GPN head backward (docs/SPEC.md §4).
 *
 * Per key i, from the forward probabilities pi and dpi = dLoss/dpi:
 *   dz_l = pi_l * (dpi_l - sum_k pi_k dpi_k)          (l < L)
 *   u_j  = relu(P[j][i] + r[j])                         (as in the forward)
 *   du_j = [P[j][i] + r[j] > 0] * sum_l W2[l][j] dz_l
 * Outputs:
 *   dP[j][i]   = du_j                     (overwritten)
 *   dr[j]     += sum_i du_j               (accum)
 *   dW2[l][j] += sum_i dz_l u_j           (accum)
 *   db2[l]    += sum_i dz_l               (accum)
 * A key whose dpi is 0 at every level (a padded key: the threshold backward
 * never adds to it) is excluded: dz = 0, dP[:][i] = 0, and its pi and P
 * column (even NaN or inf) do not reach any output.
 * P [g][ldp], r [g], W2 [L][g], pi, dpi [L][ldpi] -> dP [g][lddp], dr [g],
 * dW2 [L][g], db2 [L].  1 <= L <= 8.
 * Sums over keys run in double; dz is recomputed where needed (clarity over
 * speed), so no temporary buffer is allocated.
 */
#include "internal.h"

/* 1 if key i has dpi == 0 at every level (excluded). */
static int key_idle(const float *dpi, int ldpi, int L, int i)
{
    for (int l = 0; l < L; l++)
        if (dpi[(size_t)l * ldpi + i] != 0.0f)
            return 0;
    return 1;
}

/* dz[l] for key i (L values, double); 0 for an excluded key. */
static void key_dz(const float *pi, const float *dpi, int ldpi, int L, int i,
                   double dz[GA_MAX_LEVELS])
{
    if (key_idle(dpi, ldpi, L, i)) {
        for (int l = 0; l < L; l++)
            dz[l] = 0.0;
        return;
    }
    double dot = 0.0;
    for (int k = 0; k < L; k++)
        dot += (double)pi[(size_t)k * ldpi + i] * dpi[(size_t)k * ldpi + i];
    for (int l = 0; l < L; l++)
        dz[l] = (double)pi[(size_t)l * ldpi + i] *
                ((double)dpi[(size_t)l * ldpi + i] - dot);
}

void ga_ref_gpn_backward(const float *P, int ldp, const float *r, const float *W2,
                         int N, int g, int L, const float *pi, const float *dpi,
                         int ldpi, float *dP, int lddp, float *dr, float *dW2,
                         float *db2)
{
    double dz[GA_MAX_LEVELS];

    /* dP and dr: one hidden unit j at a time */
    for (int j = 0; j < g; j++) {
        double dr_sum = 0.0;
        for (int i = 0; i < N; i++) {
            float pre = P[(size_t)j * ldp + i] + r[j];
            double du = 0.0;
            if (pre > 0.0f && !key_idle(dpi, ldpi, L, i)) {
                key_dz(pi, dpi, ldpi, L, i, dz);
                for (int l = 0; l < L; l++)
                    du += (double)W2[(size_t)l * g + j] * dz[l];
            }
            dP[(size_t)j * lddp + i] = (float)du;
            dr_sum += du;
        }
        dr[j] = (float)(dr[j] + dr_sum);
    }

    /* dW2 and db2: one level l at a time */
    for (int l = 0; l < L; l++) {
        double db_sum = 0.0;
        for (int i = 0; i < N; i++) {
            key_dz(pi, dpi, ldpi, L, i, dz);
            db_sum += dz[l];
        }
        db2[l] = (float)(db2[l] + db_sum);

        for (int j = 0; j < g; j++) {
            double dw_sum = 0.0;
            for (int i = 0; i < N; i++) {
                if (key_idle(dpi, ldpi, L, i))
                    continue;
                float u = P[(size_t)j * ldp + i] + r[j];
                if (u < 0.0f)
                    u = 0.0f; /* relu as in the forward (NaN propagates) */
                key_dz(pi, dpi, ldpi, L, i, dz);
                dw_sum += dz[l] * u;
            }
            dW2[(size_t)l * g + j] = (float)(dW2[(size_t)l * g + j] + dw_sum);
        }
    }
}
