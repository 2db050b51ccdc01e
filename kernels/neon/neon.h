/* neon.h — private header of the AArch64 Advanced SIMD variant (kernels/neon/).
 *
 * Declares ga_neon_<op> for every entry of ga_kernels (same signatures and
 * semantics as the table entries in include/granattn.h), the helpers shared
 * by several kernels (common_neon.c), and inline helpers: tail loads and
 * stores that never touch memory past the end, the 4-row dot product and the
 * per-key threshold lookup.  Advanced SIMD is baseline on AArch64: no extra compiler flags.
 */
#ifndef GA_NEON_H
#define GA_NEON_H

#include <arm_neon.h>
#include <string.h>

#include "internal.h"

/* ---- kernels (one file each, <op>_neon.c) ---- */
void ga_neon_gpn_project_keys(const float *E, int N, int d, const float *U,
                              const float *b1, int g, float *P, int ldp);
void ga_neon_gpn_project_query(const float *x, int d, const float *W, int g,
                               float *r);
int ga_neon_gpn_levels(const float *P, int ldp, const float *r, const float *W2,
                       const float *b2, int N, int g, int L, uint8_t *levels);
int ga_neon_gpn_probs(const float *P, int ldp, const float *r, const float *W2,
                      const float *b2, int N, int g, int L, float *pi, int ldpi,
                      uint8_t *levels);
void ga_neon_scores(const float *K, int N, int dh, const float *Q, int T, int ldq,
                    float scale, const float *bias, float *S, int lds, float *m);
int ga_neon_threshold(const float *s, int N, float m, const uint8_t *levels,
                      const float *theta8, ga_norm mode, int32_t *idx, float *p,
                      float *Z);
void ga_neon_sparse_context(const float *V, int dh, const int32_t *idx,
                            const float *p, int count, float scale, float *c);
float ga_neon_softmax(const float *s, int N, float m, float *a);
void ga_neon_dense_context(const float *V, int N, int dh, const float *a, float *c);
void ga_neon_scores_backward(const float *K, int N, int dh, const float *q,
                             float scale, const float *ds, float *dq, float *dK);
void ga_neon_threshold_backward(const float *s, int N, float m, float Z,
                                const uint8_t *levels, const float *theta8, int L,
                                ga_norm mode, const float *gv, float cdc,
                                float *ds, float *dpi, int ldpi, float reg);
void ga_neon_softmax_backward(const float *a, const float *da, int N, float *ds);
void ga_neon_sparse_context_backward(const float *V, int dh, const int32_t *idx,
                                     const float *p, int count, float scale,
                                     const float *dc, float *dV, float *gk);
void ga_neon_dense_context_backward(const float *V, int N, int dh, const float *a,
                                    const float *dc, float *dV, float *ga);
void ga_neon_gpn_backward(const float *P, int ldp, const float *r, const float *W2,
                          int N, int g, int L, const float *pi, const float *dpi,
                          int ldpi, float *dP, int lddp, float *dr, float *dW2,
                          float *db2);
void ga_neon_gpn_project_keys_backward(const float *E, int N, int d,
                                       const float *U, int g, const float *dP,
                                       int lddp, float *dU, float *db1, float *dE);
void ga_neon_gpn_project_query_backward(const float *x, int d, const float *W,
                                        int g, const float *dr, float *dW,
                                        float *dx);

/* ---- shared helpers (common_neon.c) ---- */

/* Weighted sum of rows: for k < n,
 *   acc[k] = sum_{r < nrows} w[r * ldw] * X[row_r * ldx + k],
 *   row_r  = idx ? idx[r] : r,
 *   out[k] = (accum ? out[k] : 0) + alpha * acc[k]   (one rounding: FMA).
 * With accum == 0 and alpha == 1 the result is acc exactly.  nrows == 0
 * gives acc = 0. */
void ga_neon_wsum_rows(const float *X, size_t ldx, const int32_t *idx, int nrows,
                       const float *w, size_t ldw, int n, float alpha, int accum,
                       float *out);

/* y[k] += a * x[k] for k < n (one rounding per element: FMA). */
void ga_neon_axpy(float *y, const float *x, float a, int n);

/* GPN logits of keys i .. i+n-1 (1 <= n <= 4) in the lanes of z[0..L):
 *   z[l] = b2[l] + sum_j W2[l][j] * u_j,  u_j = relu(P[j][i..] + r[j])
 * (relu keeps NaN).  Lanes >= n are computed from zero P values; callers
 * ignore them.  Reads only P[j][i .. i+n-1]. */
void ga_neon_gpn_logits4(const float *P, int ldp, const float *r,
                         const float *W2, const float *b2, int g, int L, int i,
                         int n, float32x4_t z[GA_MAX_LEVELS]);

/* ---- inline helpers ---- */

/* Loads p[0..n) (0 <= n <= 4) with `fill` in lanes >= n; reads nothing past
 * p[n-1]. */
static inline float32x4_t ga_neon_load_tail(const float *p, int n, float fill)
{
    float tmp[4] = {fill, fill, fill, fill};
    for (int k = 0; k < n; k++)
        tmp[k] = p[k];
    return vld1q_f32(tmp);
}

/* Stores lanes [0, n) of v to p[0..n) (0 <= n <= 4); writes nothing else. */
static inline void ga_neon_store_tail(float *p, int n, float32x4_t v)
{
    float tmp[4];
    vst1q_f32(tmp, v);
    for (int k = 0; k < n; k++)
        p[k] = tmp[k];
}

/* All-ones in lanes [0, n), zero elsewhere. */
static inline uint32x4_t ga_neon_lane_mask(int n)
{
    const uint32_t lane[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(lane), vdupq_n_u32((uint32_t)n));
}

/* Lane r = rows[r] . x over n floats (n >= 0).  Two accumulators per row
 * (8 independent FMA chains), then a pairwise tree over the 4 rows.  The
 * summation order depends only on n, never on the pointers' alignment.
 * Inline: it is the inner loop of scores and of the backward dot products. */
static inline float32x4_t ga_neon_dot4(const float *const rows[4], const float *x, int n)
{
    float32x4_t a[4], b[4];
    for (int r = 0; r < 4; r++) {
        a[r] = vdupq_n_f32(0.0f);
        b[r] = vdupq_n_f32(0.0f);
    }
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        float32x4_t x0 = vld1q_f32(x + k), x1 = vld1q_f32(x + k + 4);
        for (int r = 0; r < 4; r++) {
            a[r] = vfmaq_f32(a[r], vld1q_f32(rows[r] + k), x0);
            b[r] = vfmaq_f32(b[r], vld1q_f32(rows[r] + k + 4), x1);
        }
    }
    if (k + 4 <= n) {
        float32x4_t x0 = vld1q_f32(x + k);
        for (int r = 0; r < 4; r++)
            a[r] = vfmaq_f32(a[r], vld1q_f32(rows[r] + k), x0);
        k += 4;
    }
    if (k < n) {
        float32x4_t x0 = ga_neon_load_tail(x + k, n - k, 0.0f);
        for (int r = 0; r < 4; r++)
            b[r] = vfmaq_f32(b[r], ga_neon_load_tail(rows[r] + k, n - k, 0.0f), x0);
    }
    for (int r = 0; r < 4; r++)
        a[r] = vaddq_f32(a[r], b[r]);
    /* pairwise tree: [a0 01, a0 23, a1 01, a1 23], then the 4 row sums */
    float32x4_t s01 = vpaddq_f32(a[0], a[1]);
    float32x4_t s23 = vpaddq_f32(a[2], a[3]);
    return vpaddq_f32(s01, s23);
}

/* The 8-entry threshold table as 32 bytes for vqtbl2q_u8. */
static inline uint8x16x2_t ga_neon_theta_table(const float *theta8)
{
    uint8x16x2_t t;
    t.val[0] = vreinterpretq_u8_f32(vld1q_f32(theta8));
    t.val[1] = vreinterpretq_u8_f32(vld1q_f32(theta8 + 4));
    return t;
}

/* theta8[lv[k]] in lane k for the 4 levels lv[0..4) (each < 8), by a byte
 * table lookup: lane k takes bytes 4*lv[k] + {0,1,2,3} of the table. */
static inline float32x4_t ga_neon_theta4(uint8x16x2_t table, const uint8_t lv[4])
{
    static const uint8_t spread[16] = {0, 0, 0, 0, 1, 1, 1, 1,
                                       2, 2, 2, 2, 3, 3, 3, 3};
    static const uint8_t byte_in_lane[16] = {0, 1, 2, 3, 0, 1, 2, 3,
                                             0, 1, 2, 3, 0, 1, 2, 3};
    uint32_t four;
    memcpy(&four, lv, 4);
    uint8x16_t lvb = vreinterpretq_u8_u32(vdupq_n_u32(four));
    uint8x16_t sel = vqtbl1q_u8(lvb, vld1q_u8(spread));   /* lv[k] x4 per lane */
    sel = vaddq_u8(vshlq_n_u8(sel, 2), vld1q_u8(byte_in_lane));
    return vreinterpretq_f32_u8(vqtbl2q_u8(table, sel));
}

/* The 4 level bytes at lv[0..n) (0 <= n <= 4), zero-padded (level 0). */
static inline void ga_neon_levels_tail(const uint8_t *lv, int n, uint8_t out[4])
{
    out[0] = out[1] = out[2] = out[3] = 0;
    for (int k = 0; k < n; k++)
        out[k] = lv[k];
}

#endif
