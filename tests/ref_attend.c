/* ref_attend.c — naive reference of the fused decode step (ga_attend),
 * written as plain loops without the kernel table or the other references,
 * so that it checks the composition independently (docs/SPEC.md §2-§3).
 *
 * For each query t (levels shared by all heads):
 *   u_j = relu(P[j][i] + R[t][j]),  z_l = b2[l] + sum_j W2[l][j] u_j,
 *   level_i = argmax z (running strict '>'); a NaN logit of a key that is
 *   not padded -> C[t] all NaN (a padded key's GPN column never matters).
 * For each head h (q = Q[t][h*dh..], K_h, V_h = K, V + h*N*dh):
 *   s_i = (q . K_h[i]) / sqrt(dh) (+ bias[i]); s_i = -inf for a padded key
 *   (bias -inf) whatever K_h[i] holds;  m = max_i s_i
 *   keep_i = ga_keep(s_i, m, theta8[level_i]) (s_i - m >= theta, and every
 *   finite s_i at tau = 0),  p_i = exp(s_i - m)
 *   Z = sum_all p_i (seed) or sum_kept p_i (renorm)
 *   C[t][h*dh + j] = sum_kept (p_i / Z) V_h[i][j]
 * Dense (cfg->dense): Z = sum_all p_i, C = sum over p_i != 0 of (p_i / Z) V_h[i]
 *   (a zero weight, e.g. padding, excludes its V row); GPN skipped, levels[]
 *   not written; kept = keys that are not padded.
 * Special cases per (t, h): N == 0 or m == -inf (all padded) -> C = 0,
 *   kept 0; m NaN (a NaN score) or +inf -> that head's C = NaN, kept 0.
 * Shapes: Q, C [T][H*dh]; K, V [H][N][dh]; bias [N] or NULL; P [g][ldp];
 *   R [T][g]; W2 [L][g]; b2 [L]; kept [T][H] or NULL; levels [T][N] or NULL.
 * Sums in double.  Temporaries come from malloc.  Test-only (declared in
 * tests/util.h): the library and the benchmark do not use it.
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

ga_status ga_ref_attend(const ga_config *cfg, int N, int T, const float *Q,
                        const float *K, const float *V, const float *bias,
                        const float *P, int ldp, const float *R,
                        const float *W2, const float *b2, float *C, int *kept,
                        uint8_t *levels)
{
    ga_status st = ga_config_check(cfg);
    if (st != GA_OK)
        return st;
    if (N < 0 || T < 0)
        return ga_set_error(GA_EINVAL, "N = %d, T = %d: sizes must be >= 0", N, T);
    /* Same argument rules as ga_attend (src/attend.c). */
    if (T == 0)
        return GA_OK;
    if (!Q || !C)
        return ga_set_error(GA_EINVAL, "Q and C must not be NULL");
    if (N > 0 && (!K || !V))
        return ga_set_error(GA_EINVAL, "K and V must not be NULL when N > 0");
    if (!cfg->dense && N > 0) {
        if (!P || !R || !W2 || !b2)
            return ga_set_error(GA_EINVAL, "P, R, W2 and b2 must not be NULL "
                                           "unless cfg->dense");
        if (ldp < N)
            return ga_set_error(GA_EINVAL, "ldp = %d < N = %d", ldp, N);
    }

    const int H = cfg->H, dh = cfg->dh, g = cfg->g, L = cfg->L;
    const size_t ldq = (size_t)H * dh; /* row stride of Q and C */
    const float scale = 1.0f / sqrtf((float)dh);
    float theta8[GA_MAX_LEVELS];
    if (!cfg->dense)
        ga_theta_from_tau(cfg, theta8);

    size_t n = N > 0 ? (size_t)N : 1;
    float *s = malloc(n * sizeof *s);          /* scores of one head [N] */
    uint8_t *lev = malloc(n * sizeof *lev);    /* levels of one query [N] */
    if (!s || !lev) {
        free(s);
        free(lev);
        return ga_set_error(GA_ENOMEM, "ga_ref_attend: out of memory (N = %d)", N);
    }

    for (int t = 0; t < T; t++) {
        /* ---- GPN levels of query t, shared by all heads ---- */
        int gpn_nan = 0;
        if (!cfg->dense) {
            const float *r = R + (size_t)t * g;
            for (int i = 0; i < N; i++) {
                float z[GA_MAX_LEVELS];
                for (int l = 0; l < L; l++) {
                    double acc = b2[l];
                    for (int j = 0; j < g; j++) {
                        float u = P[(size_t)j * ldp + i] + r[j];
                        if (u < 0.0f)
                            u = 0.0f; /* relu; NaN propagates */
                        acc += (double)W2[(size_t)l * g + j] * u;
                    }
                    z[l] = (float)acc;
                    if (isnan(z[l]) && !(bias && bias[i] == -INFINITY))
                        gpn_nan = 1; /* padded keys excluded */
                }
                int best = 0;
                for (int l = 1; l < L; l++)
                    if (z[l] > z[best])
                        best = l;
                lev[i] = (uint8_t)best;
                if (levels)
                    levels[(size_t)t * N + i] = (uint8_t)best;
            }
        }

        for (int h = 0; h < H; h++) {
            const float *q = Q + (size_t)t * ldq + (size_t)h * dh;
            const float *Kh = K + (size_t)h * N * dh;
            const float *Vh = V + (size_t)h * N * dh;
            float *c = C + (size_t)t * ldq + (size_t)h * dh;
            int count = 0;

            /* scores and their max (NaN tracked explicitly) */
            float m = -INFINITY;
            int score_nan = 0;
            for (int i = 0; i < N; i++) {
                double dot = 0.0;
                for (int j = 0; j < dh; j++)
                    dot += (double)q[j] * Kh[(size_t)i * dh + j];
                double v = (double)scale * dot;
                if (bias)
                    v += bias[i];
                if (bias && bias[i] == -INFINITY)
                    v = -INFINITY; /* padded: excluded whatever K holds */
                s[i] = (float)v;
                if (isnan(s[i]))
                    score_nan = 1;
                else if (s[i] > m)
                    m = s[i];
            }

            if (gpn_nan || score_nan || m == INFINITY) {
                for (int j = 0; j < dh; j++)
                    c[j] = NAN;
            } else if (N == 0 || m == -INFINITY) {
                for (int j = 0; j < dh; j++)
                    c[j] = 0.0f;
            } else if (cfg->dense) {
                double Z = 0.0;
                for (int i = 0; i < N; i++) {
                    Z += (float)exp((double)(s[i] - m));
                    if (!(bias && bias[i] == -INFINITY))
                        count++; /* dense: every key that is not padded */
                }
                for (int j = 0; j < dh; j++) {
                    double acc = 0.0;
                    for (int i = 0; i < N; i++) {
                        float p = (float)exp((double)(s[i] - m));
                        if (p != 0.0f) /* a zero weight excludes the row */
                            acc += (p / Z) * Vh[(size_t)i * dh + j];
                    }
                    c[j] = (float)acc;
                }
            } else {
                double Z = 0.0;
                for (int i = 0; i < N; i++) {
                    float d = s[i] - m;
                    int keep = ga_keep(s[i], m, theta8[lev[i]]);
                    float p = (float)exp((double)d);
                    if (keep)
                        count++;
                    if (keep || cfg->mode == GA_NORM_SEED)
                        Z += p;
                }
                for (int j = 0; j < dh; j++) {
                    double acc = 0.0;
                    for (int i = 0; i < N; i++) {
                        float d = s[i] - m;
                        if (ga_keep(s[i], m, theta8[lev[i]])) /* kept rows only are read */
                            acc += (double)(float)exp((double)d) * Vh[(size_t)i * dh + j];
                    }
                    c[j] = (float)(acc / Z);
                }
            }
            if (kept)
                kept[(size_t)t * H + h] = count;
        }
    }
    free(s);
    free(lev);
    return GA_OK;
}
