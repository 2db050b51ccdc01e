/* gpn_project_neon.c — GPN projections (docs/SPEC.md §3), AArch64 NEON.
 *
 *   keys:  P[j][i] = b1[j] + sum_k U[j][k] * E[i][k]
 *          E [N][d], U [g][d], b1 [g] -> P [g][ldp] (transposed), ldp >= N
 *   query: r[j] = sum_k W[j][k] * x[k]       x [d], W [g][d] -> r [g]
 *
 * One row of E (or x) is dotted with 4 rows of U at a time (ga_neon_dot4:
 * 8 accumulators sharing each load of E, pairwise-tree reduction); U stays
 * in cache across the keys.  Rows past g repeat the last row: computed,
 * never stored.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

/* out[j * ldo] = (b ? b[j] : 0) + U[j] . e  for j < g;  e [d], U [g][d]. */
static void project_rows(const float *e, int d, const float *U, const float *b,
                         int g, float *out, size_t ldo)
{
    for (int j = 0; j < g; j += 4) {
        int nj = g - j < 4 ? g - j : 4;
        const float *rows[4];
        for (int r = 0; r < 4; r++)
            rows[r] = U + (size_t)(j + (r < nj ? r : nj - 1)) * d;
        float32x4_t v = ga_neon_dot4(rows, e, d);
        if (b)
            v = vaddq_f32(v, nj == 4 ? vld1q_f32(b + j) : ga_neon_load_tail(b + j, nj, 0.0f));
        float tmp[4];
        vst1q_f32(tmp, v);
        for (int r = 0; r < nj; r++)
            out[(size_t)(j + r) * ldo] = tmp[r];
    }
}

void ga_neon_gpn_project_keys(const float *E, int N, int d, const float *U,
                              const float *b1, int g, float *P, int ldp)
{
    for (int i = 0; i < N; i++)
        project_rows(E + (size_t)i * d, d, U, b1, g, P + i, (size_t)ldp);
}

void ga_neon_gpn_project_query(const float *x, int d, const float *W, int g,
                               float *r)
{
    project_rows(x, d, W, NULL, g, r, 1);
}
