/* avx512.h — private header of the AVX-512 variant (kernels/avx512/).
 *
 * Declares ga_avx512_<op> for every entry of ga_kernels (semantics: the
 * table entry in include/granattn.h) and a few small inline helpers shared
 * by several kernels:
 *   ga512_mask      tail mask of n lanes
 *   ga512_reduce16  16 vectors -> one vector of their 16 horizontal sums
 *   ga512_dot16     dot products of 16 rows with one vector (lanes = rows)
 *   ga512_wsum      weighted sum of (gathered) rows, column block by block
 *   ga512_gpn_logits, ga512_argmax   the GPN logits / level of 16 keys
 * All helpers read only inside the stated ranges (masked tails) and need no
 * alignment.  Summation orders depend only on the sizes, never on pointer
 * alignment, so results are bitwise reproducible.
 */
#ifndef GA_AVX512_H
#define GA_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "internal.h"

#define GA512_INLINE static inline __attribute__((always_inline))

/* ---- kernels (one file each) ---- */
void ga_avx512_gpn_project_keys(const float *E, int N, int d, const float *U,
                                const float *b1, int g, float *P, int ldp);
void ga_avx512_gpn_project_query(const float *x, int d, const float *W, int g,
                                 float *r);
int ga_avx512_gpn_levels(const float *P, int ldp, const float *r, const float *W2,
                         const float *b2, int N, int g, int L, uint8_t *levels);
int ga_avx512_gpn_probs(const float *P, int ldp, const float *r, const float *W2,
                        const float *b2, int N, int g, int L, float *pi, int ldpi,
                        uint8_t *levels);
void ga_avx512_scores(const float *K, int N, int dh, const float *Q, int T,
                      int ldq, float scale, const float *bias, float *S, int lds,
                      float *m);
int ga_avx512_threshold(const float *s, int N, float m, const uint8_t *levels,
                        const float *theta8, ga_norm mode, int32_t *idx, float *p,
                        float *Z);
void ga_avx512_sparse_context(const float *V, int dh, const int32_t *idx,
                              const float *p, int count, float scale, float *c);
float ga_avx512_softmax(const float *s, int N, float m, float *a);
void ga_avx512_dense_context(const float *V, int N, int dh, const float *a,
                             float *c);
void ga_avx512_scores_backward(const float *K, int N, int dh, const float *q,
                               float scale, const float *ds, float *dq, float *dK);
void ga_avx512_threshold_backward(const float *s, int N, float m, float Z,
                                  const uint8_t *levels, const float *theta8,
                                  int L, ga_norm mode, const float *gv, float cdc,
                                  float *ds, float *dpi, int ldpi, float reg);
void ga_avx512_softmax_backward(const float *a, const float *da, int N, float *ds);
void ga_avx512_sparse_context_backward(const float *V, int dh, const int32_t *idx,
                                       const float *p, int count, float scale,
                                       const float *dc, float *dV, float *gk);
void ga_avx512_dense_context_backward(const float *V, int N, int dh,
                                      const float *a, const float *dc, float *dV,
                                      float *ga);
void ga_avx512_gpn_backward(const float *P, int ldp, const float *r,
                            const float *W2, int N, int g, int L, const float *pi,
                            const float *dpi, int ldpi, float *dP, int lddp,
                            float *dr, float *dW2, float *db2);
void ga_avx512_gpn_project_keys_backward(const float *E, int N, int d,
                                         const float *U, int g, const float *dP,
                                         int lddp, float *dU, float *db1,
                                         float *dE);
void ga_avx512_gpn_project_query_backward(const float *x, int d, const float *W,
                                          int g, const float *dr, float *dW,
                                          float *dx);

/* ---- helpers ---- */

/* Mask of the first n lanes (n <= 0 -> none, n >= 16 -> all). */
GA512_INLINE __mmask16 ga512_mask(int n)
{
    if (n <= 0)
        return 0;
    if (n >= 16)
        return 0xFFFF;
    return (__mmask16)((1u << n) - 1u);
}

/* Adds a and b within each pair of lanes selected by the unpack: returns, per
 * 128-bit chunk, [a0+a2, b0+b2, a1+a3, b1+b3]. */
GA512_INLINE __m512 ga512_fold_pair(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}

/* Same one level up, on 64-bit pairs: per chunk [a01, b01, c01, d01]. */
GA512_INLINE __m512 ga512_fold_quad(__m512 ab, __m512 cd)
{
    __m512d x = _mm512_castps_pd(ab), y = _mm512_castps_pd(cd);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
}

/* Adds 128-bit chunks pairwise: [x0+x1, x2+x3, y0+y1, y2+y3]. */
GA512_INLINE __m512 ga512_fold_chunks(__m512 x, __m512 y)
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88),  /* x0 x2 y0 y2 */
                         _mm512_shuffle_f32x4(x, y, 0xDD)); /* x1 x3 y1 y3 */
}

/* Returns the vector whose lane r is the horizontal sum of v[r], r < 16.
 * A transpose-and-add tree: 15 adds and 30 shuffles for 16 sums. */
GA512_INLINE __m512 ga512_reduce16(const __m512 v[16])
{
    __m512 p[8], q[4];
    for (int r = 0; r < 8; r++)
        p[r] = ga512_fold_pair(v[2 * r], v[2 * r + 1]);
    for (int r = 0; r < 4; r++)
        q[r] = ga512_fold_quad(p[2 * r], p[2 * r + 1]);
    /* q[r]: chunk c holds the partial sums of rows 4r..4r+3 over chunk c */
    __m512 lo = ga512_fold_chunks(q[0], q[1]);
    __m512 hi = ga512_fold_chunks(q[2], q[3]);
    return ga512_fold_chunks(lo, hi);
}

/* Lane r (r < 16) = sum_{c < n} A[r][c] * x[c], rows A[r] = A + r * lda.
 * Only rows r < nrows (1 <= nrows <= 16) are read; lanes r >= nrows repeat
 * row nrows-1 and are for the caller to mask.  x [n], n >= 0.
 * One accumulator per row, chunks of 16 columns in order (the last one
 * masked), then ga512_reduce16: the same order for every row and block.
 * Full blocks address the rows as 4 base pointers + 3 strides, so that no
 * row pointer has to be kept on the stack. */
GA512_INLINE __m512 ga512_dot16(const float *A, size_t lda, int nrows,
                                const float *x, int n)
{
    __m512 acc[16];
    for (int r = 0; r < 16; r++)
        acc[r] = _mm512_setzero_ps();
    if (nrows == 16) {
        /* full chunks: unmasked loads fold into the FMAs; then a masked tail */
        const float *b[4] = {A, A + 4 * lda, A + 8 * lda, A + 12 * lda};
        const size_t s1 = lda, s2 = 2 * lda, s3 = 3 * lda;
        int c = 0;
        for (; c + 16 <= n; c += 16) {
            __m512 xv = _mm512_loadu_ps(x + c);
            for (int g = 0; g < 4; g++) {
                const float *p = b[g] + c;
                __m512 *a = acc + 4 * g;
                a[0] = _mm512_fmadd_ps(_mm512_loadu_ps(p), xv, a[0]);
                a[1] = _mm512_fmadd_ps(_mm512_loadu_ps(p + s1), xv, a[1]);
                a[2] = _mm512_fmadd_ps(_mm512_loadu_ps(p + s2), xv, a[2]);
                a[3] = _mm512_fmadd_ps(_mm512_loadu_ps(p + s3), xv, a[3]);
            }
        }
        if (c < n) {
            __mmask16 k = ga512_mask(n - c);
            __m512 xv = _mm512_maskz_loadu_ps(k, x + c);
            for (int g = 0; g < 4; g++) {
                const float *p = b[g] + c;
                __m512 *a = acc + 4 * g;
                a[0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, p), xv, a[0]);
                a[1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, p + s1), xv, a[1]);
                a[2] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, p + s2), xv, a[2]);
                a[3] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, p + s3), xv, a[3]);
            }
        }
    } else {
        const float *row[16];
        for (int r = 0; r < 16; r++)
            row[r] = A + (size_t)(r < nrows ? r : nrows - 1) * lda;
        for (int c = 0; c < n; c += 16) {
            __mmask16 k = ga512_mask(n - c);
            __m512 xv = _mm512_maskz_loadu_ps(k, x + c);
            for (int r = 0; r < 16; r++)
                acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, row[r] + c), xv,
                                         acc[r]);
        }
    }
    return ga512_reduce16(acc);
}

/* One column block: out[v] lane j = sum_{k < count} w[k * wstride] *
 * V[row_k][col0 + 16 v + j] for v < nv, with row_k = idx ? idx[k] : k.
 * Columns col0 + [0, ncols) are read (ncols <= 16 nv); lanes beyond are 0.
 * nv is 4 or 8, a constant at every call site, so the accumulators stay in
 * registers; two accumulator sets (even / odd k) hide the FMA latency. */
GA512_INLINE void ga512_wsum_block(const float *V, size_t ldv, const int32_t *idx,
                                   const float *w, size_t wstride, int count,
                                   int col0, int ncols, const int nv, __m512 *out)
{
    __mmask16 km[8];
    __m512 a0[8], a1[8];
    for (int v = 0; v < nv; v++) {
        km[v] = ga512_mask(ncols - 16 * v);
        a0[v] = _mm512_setzero_ps();
        a1[v] = _mm512_setzero_ps();
    }
    int k = 0;
    for (; k + 2 <= count; k += 2) {
        size_t i0 = idx ? (size_t)idx[k] : (size_t)k;
        size_t i1 = idx ? (size_t)idx[k + 1] : (size_t)k + 1;
        const float *r0 = V + i0 * ldv + col0, *r1 = V + i1 * ldv + col0;
        __m512 w0 = _mm512_set1_ps(w[(size_t)k * wstride]);
        __m512 w1 = _mm512_set1_ps(w[(size_t)(k + 1) * wstride]);
        for (int v = 0; v < nv; v++) {
            a0[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(km[v], r0 + 16 * v), w0,
                                    a0[v]);
            a1[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(km[v], r1 + 16 * v), w1,
                                    a1[v]);
        }
    }
    if (k < count) {
        size_t i0 = idx ? (size_t)idx[k] : (size_t)k;
        const float *r0 = V + i0 * ldv + col0;
        __m512 w0 = _mm512_set1_ps(w[(size_t)k * wstride]);
        for (int v = 0; v < nv; v++)
            a0[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(km[v], r0 + 16 * v), w0,
                                    a0[v]);
    }
    for (int v = 0; v < nv; v++)
        out[v] = _mm512_add_ps(a0[v], a1[v]);
}

/* out[j] = scale * sum_{k < count} w[k * wstride] * V[row_k][j] for j < ncols
 * (accumulate != 0: out[j] += that), row_k = idx ? idx[k] : k, V rows of
 * stride ldv.  Columns go in blocks of at most 128 (one pass over the rows
 * per block; a single pass for ncols <= 128). */
GA512_INLINE void ga512_wsum(const float *V, size_t ldv, int ncols,
                             const int32_t *idx, const float *w, size_t wstride,
                             int count, float scale, int accumulate, float *out)
{
    __m512 vs = _mm512_set1_ps(scale);
    for (int c0 = 0; c0 < ncols; ) {
        int rem = ncols - c0, nc, nv;
        __m512 acc[8];
        if (rem > 64) {
            nc = rem < 128 ? rem : 128;
            nv = 8;
            ga512_wsum_block(V, ldv, idx, w, wstride, count, c0, nc, 8, acc);
        } else {
            nc = rem;
            nv = 4;
            ga512_wsum_block(V, ldv, idx, w, wstride, count, c0, nc, 4, acc);
        }
        for (int v = 0; v < nv; v++) {
            __mmask16 k = ga512_mask(nc - 16 * v);
            __m512 r = _mm512_mul_ps(acc[v], vs);
            if (accumulate)
                r = _mm512_add_ps(_mm512_maskz_loadu_ps(k, out + c0 + 16 * v), r);
            _mm512_mask_storeu_ps(out + c0 + 16 * v, k, r);
        }
        c0 += nc;
    }
}

/* GPN logits of the 16 keys i0..i0+15 (lanes in k; other lanes give junk):
 *   u_j = relu(P[j][i] + r[j])  (float add; max(0, x) keeps NaN and -0 like
 *                                the reference's "if (u < 0) u = 0")
 *   z_l = b2[l] + sum_j W2[l][j] u_j   for l < L
 * Float FMA, j in order (the order depends only on g, so results are
 * reproducible).  The reference sums in double, so a level can differ from
 * it only where two logits lie within a few float roundings of each other
 * (docs/SPEC.md §5's boundary band; the tests keep their inputs out of it and test
 * exact ties separately).  An earlier version summed in double to match the
 * reference bitwise; it was 1.7x slower than the AVX2 kernel.
 * L is a constant at every call site. */
GA512_INLINE void ga512_gpn_logits(const float *P, size_t ldp, const float *r,
                                   const float *W2, const float *b2, int i0,
                                   __mmask16 k, int g, const int L, __m512 z[8])
{
    for (int l = 0; l < L; l++)
        z[l] = _mm512_set1_ps(b2[l]);
    for (int j = 0; j < g; j++) {
        __m512 x = _mm512_add_ps(_mm512_maskz_loadu_ps(k, P + (size_t)j * ldp + i0),
                                 _mm512_set1_ps(r[j]));
        __m512 u = _mm512_max_ps(_mm512_setzero_ps(), x); /* x if x is NaN */
        for (int l = 0; l < L; l++)
            z[l] = _mm512_fmadd_ps(_mm512_set1_ps(W2[(size_t)l * g + j]), u, z[l]);
    }
}

/* Running strict '>' argmax from level 0 (a NaN logit never wins, a NaN z_0
 * keeps level 0).  Returns the levels as epi32 lanes and the best logit. */
GA512_INLINE __m512i ga512_argmax(const __m512 z[8], const int L, __m512 *best)
{
    __m512 b = z[0];
    __m512i lvl = _mm512_setzero_si512();
    for (int l = 1; l < L; l++) {
        __mmask16 gt = _mm512_cmp_ps_mask(z[l], b, _CMP_GT_OQ);
        b = _mm512_mask_mov_ps(b, gt, z[l]);
        lvl = _mm512_mask_mov_epi32(lvl, gt, _mm512_set1_epi32(l));
    }
    *best = b;
    return lvl;
}

#endif
