/* common_neon.c — helper shared by the NEON GPN kernels (declared in neon.h).
 *
 *   ga_neon_gpn_logits4: GPN logits z[l] of 4 keys (lanes across keys)
 * Tails use zero-padded copies (ga_neon_load_tail), so nothing is read past
 * the end of any input, and the summation order depends only on the sizes.
 * Alignment: none.  Bytes read past the end: 0.
 */
#include "neon.h"

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
