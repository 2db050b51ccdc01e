/* common_neon.c — helpers shared by several NEON kernels (declared in neon.h).
 *
 *   ga_neon_wsum_rows:   out (+)= alpha * sum_r w_r X[row_r]  (row-weighted sum)
 *   ga_neon_axpy:        y += a * x
 *   ga_neon_gpn_logits4: GPN logits z[l] of 4 keys (lanes across keys)
 * Tails use zero-padded copies (ga_neon_load_tail), so nothing is read past
 * the end of any input, and the summation order depends only on the sizes.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

static inline const float *row_ptr(const float *X, size_t ldx, const int32_t *idx, int r)
{
    return X + (idx ? (size_t)idx[r] : (size_t)r) * ldx;
}

/* out[0..4) (+)= alpha * acc. */
static inline void finish4(float *out, float32x4_t acc, float alpha, int accum)
{
    if (accum)
        vst1q_f32(out, vfmaq_n_f32(vld1q_f32(out), acc, alpha));
    else
        vst1q_f32(out, vmulq_n_f32(acc, alpha));
}

/* Columns [k, k+16): 4 vectors x 2 row parities = 8 accumulators. */
static void wsum_block16(const float *X, size_t ldx, const int32_t *idx, int nrows,
                         const float *w, size_t ldw, int k, float alpha, int accum,
                         float *out)
{
    float32x4_t a[4], b[4];
    for (int q = 0; q < 4; q++) {
        a[q] = vdupq_n_f32(0.0f);
        b[q] = vdupq_n_f32(0.0f);
    }
    int r = 0;
    for (; r + 2 <= nrows; r += 2) {
        const float *x0 = row_ptr(X, ldx, idx, r) + k;
        const float *x1 = row_ptr(X, ldx, idx, r + 1) + k;
        float w0 = w[(size_t)r * ldw], w1 = w[(size_t)(r + 1) * ldw];
        for (int q = 0; q < 4; q++) {
            a[q] = vfmaq_n_f32(a[q], vld1q_f32(x0 + 4 * q), w0);
            b[q] = vfmaq_n_f32(b[q], vld1q_f32(x1 + 4 * q), w1);
        }
    }
    if (r < nrows) {
        const float *x0 = row_ptr(X, ldx, idx, r) + k;
        float w0 = w[(size_t)r * ldw];
        for (int q = 0; q < 4; q++)
            a[q] = vfmaq_n_f32(a[q], vld1q_f32(x0 + 4 * q), w0);
    }
    for (int q = 0; q < 4; q++)
        finish4(out + k + 4 * q, vaddq_f32(a[q], b[q]), alpha, accum);
}

/* Columns [k, k+nc), nc <= 4 (zero-padded loads when nc < 4). */
static void wsum_block4(const float *X, size_t ldx, const int32_t *idx, int nrows,
                        const float *w, size_t ldw, int k, int nc, float alpha,
                        int accum, float *out)
{
    float32x4_t a = vdupq_n_f32(0.0f), b = vdupq_n_f32(0.0f);
    int r = 0;
    for (; r + 2 <= nrows; r += 2) {
        const float *x0 = row_ptr(X, ldx, idx, r) + k;
        const float *x1 = row_ptr(X, ldx, idx, r + 1) + k;
        float32x4_t v0 = nc == 4 ? vld1q_f32(x0) : ga_neon_load_tail(x0, nc, 0.0f);
        float32x4_t v1 = nc == 4 ? vld1q_f32(x1) : ga_neon_load_tail(x1, nc, 0.0f);
        a = vfmaq_n_f32(a, v0, w[(size_t)r * ldw]);
        b = vfmaq_n_f32(b, v1, w[(size_t)(r + 1) * ldw]);
    }
    if (r < nrows) {
        const float *x0 = row_ptr(X, ldx, idx, r) + k;
        float32x4_t v0 = nc == 4 ? vld1q_f32(x0) : ga_neon_load_tail(x0, nc, 0.0f);
        a = vfmaq_n_f32(a, v0, w[(size_t)r * ldw]);
    }
    float32x4_t acc = vaddq_f32(a, b);
    if (nc == 4) {
        finish4(out + k, acc, alpha, accum);
        return;
    }
    float32x4_t o = accum ? vfmaq_n_f32(ga_neon_load_tail(out + k, nc, 0.0f), acc, alpha)
                          : vmulq_n_f32(acc, alpha);
    ga_neon_store_tail(out + k, nc, o);
}

void ga_neon_wsum_rows(const float *X, size_t ldx, const int32_t *idx, int nrows,
                       const float *w, size_t ldw, int n, float alpha, int accum,
                       float *out)
{
    int k = 0;
    for (; k + 16 <= n; k += 16)
        wsum_block16(X, ldx, idx, nrows, w, ldw, k, alpha, accum, out);
    for (; k < n; k += 4) {
        int nc = n - k < 4 ? n - k : 4;
        wsum_block4(X, ldx, idx, nrows, w, ldw, k, nc, alpha, accum, out);
    }
}

void ga_neon_axpy(float *y, const float *x, float a, int n)
{
    int k = 0;
    for (; k + 4 <= n; k += 4)
        vst1q_f32(y + k, vfmaq_n_f32(vld1q_f32(y + k), vld1q_f32(x + k), a));
    if (k < n) {
        float32x4_t v = vfmaq_n_f32(ga_neon_load_tail(y + k, n - k, 0.0f),
                                    ga_neon_load_tail(x + k, n - k, 0.0f), a);
        ga_neon_store_tail(y + k, n - k, v);
    }
}

void ga_neon_gpn_logits4(const float *P, int ldp, const float *r,
                         const float *W2, const float *b2, int g, int L, int i,
                         int n, float32x4_t z[GA_MAX_LEVELS])
{
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (int l = 0; l < L; l++)
        z[l] = vdupq_n_f32(b2[l]);
    /* 8 hidden units at a time: u of the block first, then one register
     * accumulator per level over the block (sequential order in j). */
    for (int j0 = 0; j0 < g; j0 += 8) {
        int nj = g - j0 < 8 ? g - j0 : 8;
        float32x4_t u[8];
        for (int jj = 0; jj < nj; jj++) {
            const float *pj = P + (size_t)(j0 + jj) * ldp + i;
            float32x4_t v = n == 4 ? vld1q_f32(pj) : ga_neon_load_tail(pj, n, 0.0f);
            v = vaddq_f32(v, vdupq_n_f32(r[j0 + jj]));
            u[jj] = vbslq_f32(vcltq_f32(v, zero), zero, v); /* relu; NaN stays NaN */
        }
        for (int l = 0; l < L; l++) {
            const float *w = W2 + (size_t)l * g + j0;
            float32x4_t acc = z[l];
            for (int jj = 0; jj < nj; jj++)
                acc = vfmaq_n_f32(acc, u[jj], w[jj]);
            z[l] = acc;
        }
    }
}
