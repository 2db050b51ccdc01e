/* sparse_context_backward_avx2.c — backward of sparse_context, AVX2 + FMA.
 *
 * With w_k = scale * p[k]:
 *   dV[idx[k]][j] += w_k * dc[j]     (accum; dV may be NULL)
 *   gk[k] = V[idx[k]] . dc           (overwritten; gk may be NULL)
 * V, dV [*][dh] (rows idx[k] valid), idx, p [count], dc [dh] -> gk [count].
 * idx must not repeat.
 *
 * One pass per gathered row: each vector of the row feeds the dot product
 * (2 accumulators) and the dV update; masked last vector.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx2.h"

void ga_avx2_sparse_context_backward(const float *V, int dh, const int32_t *idx,
                                     const float *p, int count, float scale,
                                     const float *dc, float *dV, float *gk)
{
    for (int k = 0; k < count; k++) {
        const size_t off = (size_t)idx[k] * dh;
        const __m256 w = _mm256_set1_ps(scale * p[k]);
        __m256 g0 = _mm256_setzero_ps(), g1 = g0;
        int j = 0;
        for (; j + 16 <= dh; j += 16) {
            __m256 c0 = _mm256_loadu_ps(dc + j), c1 = _mm256_loadu_ps(dc + j + 8);
            if (gk) {
                g0 = _mm256_fmadd_ps(_mm256_loadu_ps(V + off + j), c0, g0);
                g1 = _mm256_fmadd_ps(_mm256_loadu_ps(V + off + j + 8), c1, g1);
            }
            if (dV) {
                float *o = dV + off + j;
                _mm256_storeu_ps(o, _mm256_fmadd_ps(w, c0, _mm256_loadu_ps(o)));
                _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(w, c1, _mm256_loadu_ps(o + 8)));
            }
        }
        for (; j < dh; j += 8) {
            __m256i mask = ga_avx2_tail_mask(dh - j);
            __m256 cv = _mm256_maskload_ps(dc + j, mask);
            if (gk)
                g0 = _mm256_fmadd_ps(_mm256_maskload_ps(V + off + j, mask), cv, g0);
            if (dV) {
                float *o = dV + off + j;
                _mm256_maskstore_ps(o, mask,
                                    _mm256_fmadd_ps(w, cv, _mm256_maskload_ps(o, mask)));
            }
        }
        if (gk)
            gk[k] = ga_avx2_hsum(_mm256_add_ps(g0, g1));
    }
}
