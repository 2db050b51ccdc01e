/* simd.h — the SIMD vocabulary, selected by GA_SIMD_ISA, plus the composite
 * operations written once against it.
 *
 * Every file of a per-ISA library is compiled with -DGA_SIMD_ISA=<n> (the
 * ga_isa value: 1 avx2, 2 avx512, 3 neon) and that ISA's compiler flags.
 * This header then
 *   - includes the ISA's vocabulary (simd_avx2.h, simd_avx512.h, simd_neon.h),
 *   - defines GA_FN(op) = ga_<isa>_<op> (one prefix per ISA) and declares
 *     GA_FN(op) for every GA_KERNEL_LIST entry (include/granattn_ops.h),
 *   - defines the composites below from the vocabulary.
 *
 * Vocabulary (same names and contracts in every simd_<isa>.h):
 *   gav_t, GAV_W              vector of GAV_W floats
 *   gav_mask_t, gav_mask(n)   lanes [0, n) (n <= 0: none, n >= GAV_W: all)
 *   gav_zero, gav_set1, gav_load, gav_store          (unaligned, full vector)
 *   gav_load_mask(p, m)       lanes in m from p, others 0; reads only lanes in m
 *   gav_store_mask(p, m, v)   writes only the lanes in m
 *   gav_select(m, v, fill)    lanes in m from v, others from fill
 *   gav_select_eq(a, b, x, y) lanes with a == b from x, others from y
 *   gav_add, gav_sub, gav_mul, gav_div, gav_max, gav_fma(a, b, c) = a*b + c
 *   gav_store_i8(p, v)        lanes (integers in [-128, 127]) as int8 to p[0..GAV_W)
 *   gav_exp                   SLEEF expf (1.0 ulp)
 *   gav_hsum, gav_hmax        horizontal sum / max of the lanes (fixed tree)
 *   gav_flags_t, gav_flags_none, gav_flags_nan(f, v), gav_flags_any(f)
 *   gav_prefetch(p), gav_prefetch_bytes(p, bytes)   one line / the lines of [p, p+bytes)
 *   gav_reduce_rows(a[GAV_W]) lane r = horizontal sum of a[r]
 * Composites (here, unless the ISA header defines GAV_HAVE_<NAME>):
 *   gav_load_tail, gav_store_tail       tail of n <= GAV_W lanes
 *   gav_dot_rows_ptr, gav_dot_rows      row dot: GAV_W rows . x -> one vector
 *   gav_dot, gav_sum, gav_axpy          one row: dot, sum, y += a x
 *   gav_dot_axpy                        one pass: x . y and acc += a y
 *   gav_transpose(r[GAV_W])             GAV_W x GAV_W block transpose (bits only)
 *   gav_wsum                            weighted row sum (gathered or strided)
 *   gav_all_finite, gav_select_eq       finiteness test, lane select
 * Tuning (per ISA): GAV_WSUM_NV vectors per gav_wsum column block, GAV_NACC
 * accumulators it may use, GAV_WSUM_PREFETCH rows of gathered prefetch,
 * GAV_DOT_SPLIT accumulators per row in gav_dot_rows_ptr, GAV_HAVE_DOT_ROWS_FULL
 * an ISA fast path gav_dot_rows_full_ for whole blocks, GAV_CTX_BWD_FUSED
 * one-pass context backward.
 * Every operation reads and writes only inside the ranges stated for it (0
 * bytes past any end) and needs no alignment; summation orders depend only
 * on the sizes, so results are bitwise reproducible.
 */
#ifndef GA_SIMD_H
#define GA_SIMD_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#if !defined(GA_SIMD_ISA)
#error "compile kernels/simd/ files with -DGA_SIMD_ISA=<ga_isa value>"
#elif GA_SIMD_ISA == 1
#include "simd_avx2.h"
#define GA_FN(op) ga_avx2_##op
#define GA_FILL_FN ga_fill_avx2
#define GA_SIMD_NAME "avx2"
#elif GA_SIMD_ISA == 2
#include "simd_avx512.h"
#if GAV_SPLIT_LOADS /* the loads:halves build of the streaming kernels */
#define GA_FN(op) ga_avx512h_##op
#define GA_FILL_FN ga_fill_avx512h
#else
#define GA_FN(op) ga_avx512_##op
#define GA_FILL_FN ga_fill_avx512
#endif
#define GA_SIMD_NAME "avx512"
#elif GA_SIMD_ISA == 3
#include "simd_neon.h"
#define GA_FN(op) ga_neon_##op
#define GA_FILL_FN ga_fill_neon
#define GA_SIMD_NAME "neon"
#else
#error "unknown GA_SIMD_ISA"
#endif

/* ga_<isa>_<op> for every attention kernel (generic in kernels/simd/<op>.c
 * or hand-written in kernels/<isa>/<op>_<isa>.c). */
#define GA_ISA_DECL(ret, name, params) ret GA_FN(name) params;
GA_KERNEL_LIST(GA_ISA_DECL)
#undef GA_ISA_DECL

/* Rows of about 16 KiB stay in L1 while a block of them is swept once per
 * column block (gav_wsum) or once per query (scores). */
enum { GAV_L1_BLOCK_BYTES = 16384 };

/* ------------------------------------------------------------ composites */

/* Prefetches the 64-byte lines at p, p + 64, ... below p + bytes (a gathered
 * row ahead of its use: the hardware prefetcher does not follow them). */
GAV_INLINE void gav_prefetch_bytes(const void *p, int bytes)
{
    for (int line = 0; line < bytes; line += 64)
        gav_prefetch((const char *)p + line);
}

/* p[0..n) (0 <= n <= GAV_W), zeros in lanes >= n; reads nothing past p[n-1]. */
GAV_INLINE gav_t gav_load_tail(const float *p, int n) { return gav_load_mask(p, gav_mask(n)); }
/* Lanes [0, n) of v to p[0..n); writes nothing else. */
GAV_INLINE void gav_store_tail(float *p, int n, gav_t v) { gav_store_mask(p, gav_mask(n), v); }

/* Row dot over gathered rows: lane r = rows[r] . x over n floats (n >= 0),
 * r < GAV_W.  GAV_DOT_SPLIT accumulators per row (chunk s of each group of
 * S chunks to accumulator s; whole chunks after the last group to 0, the
 * masked last one to S-1; then added 0 + 1 + ...); then gav_reduce_rows.
 * Rows are walked one after the other (memory in address order for
 * consecutive rows: a stride across the rows per chunk ran at half the
 * DRAM bandwidth on AMD Zen 4), x is reloaded per chunk (L1 hits). */
GAV_INLINE gav_t gav_dot_rows_ptr(const float *const rows[GAV_W], const float *x, int n)
{
    enum { S = GAV_DOT_SPLIT };
    gav_t out[GAV_W];
    for (int r = 0; r < GAV_W; r++) {
        const float *p = rows[r];
        gav_t a[S];
        for (int s = 0; s < S; s++)
            a[s] = gav_zero();
        int k = 0;
        for (; k + S * GAV_W <= n; k += S * GAV_W)
            for (int s = 0; s < S; s++)
                a[s] = gav_fma(gav_load(p + k + s * GAV_W), gav_load(x + k + s * GAV_W), a[s]);
        for (; k + GAV_W <= n; k += GAV_W)
            a[0] = gav_fma(gav_load(p + k), gav_load(x + k), a[0]);
        if (k < n) {
            gav_mask_t m = gav_mask(n - k);
            a[S - 1] = gav_fma(gav_load_mask(p + k, m), gav_load_mask(x + k, m), a[S - 1]);
        }
        for (int s = 1; s < S; s++)
            a[0] = gav_add(a[0], a[s]);
        out[r] = a[0];
    }
    return gav_reduce_rows(out);
}

#ifndef GAV_HAVE_TRANSPOSE
/* Transpose of the GAV_W x GAV_W block r (r[i] lane j -> r[j] lane i),
 * through memory (ISAs without an in-register version). */
GAV_INLINE void gav_transpose(gav_t r[GAV_W])
{
    float m[GAV_W][GAV_W], t[GAV_W][GAV_W];
    for (int i = 0; i < GAV_W; i++)
        gav_store(m[i], r[i]);
    for (int i = 0; i < GAV_W; i++)
        for (int j = 0; j < GAV_W; j++)
            t[j][i] = m[i][j];
    for (int i = 0; i < GAV_W; i++)
        r[i] = gav_load(t[i]);
}
#endif

/* Row dot over strided rows: lane r = A[r] . x, rows A + r * lda,
 * 1 <= nrows <= GAV_W; lanes >= nrows repeat row nrows-1 (never read past
 * it); the caller masks them.  A full block goes to the ISA's fast path
 * (gav_dot_rows_full_, x in registers) where it has one for this n. */
GAV_INLINE gav_t gav_dot_rows(const float *A, size_t lda, int nrows,
                              const float *x, int n)
{
#ifdef GAV_HAVE_DOT_ROWS_FULL
    gav_t v;
    if (nrows == GAV_W && gav_dot_rows_full_(A, lda, x, n, &v))
        return v;
#endif
    const float *rows[GAV_W];
    for (int r = 0; r < GAV_W; r++)
        rows[r] = A + (size_t)(r < nrows ? r : nrows - 1) * lda;
    return gav_dot_rows_ptr(rows, x, n);
}

/* a . b over n floats: two accumulators, masked last vector, gav_hsum. */
GAV_INLINE float gav_dot(const float *a, const float *b, int n)
{
    gav_t s0 = gav_zero(), s1 = gav_zero();
    int k = 0;
    for (; k + 2 * GAV_W <= n; k += 2 * GAV_W) {
        s0 = gav_fma(gav_load(a + k), gav_load(b + k), s0);
        s1 = gav_fma(gav_load(a + k + GAV_W), gav_load(b + k + GAV_W), s1);
    }
    for (; k < n; k += GAV_W) {
        gav_mask_t m = gav_mask(n - k);
        s0 = gav_fma(gav_load_mask(a + k, m), gav_load_mask(b + k, m), s0);
    }
    return gav_hsum(gav_add(s0, s1));
}

/* One pass over a row x [n] with y [n]: returns x . y (two accumulators,
 * masked last vector, gav_hsum; 0 when !want_dot) and, when acc != NULL,
 * does acc[k] += a * y[k] with the same loads of y (context backward). */
GAV_INLINE float gav_dot_axpy(const float *x, const float *y, int n, float a,
                              float *acc, int want_dot)
{
    const gav_t va = gav_set1(a);
    gav_t s0 = gav_zero(), s1 = gav_zero();
    int k = 0;
    for (; k + 2 * GAV_W <= n; k += 2 * GAV_W) {
        gav_t y0 = gav_load(y + k), y1 = gav_load(y + k + GAV_W);
        if (want_dot) {
            s0 = gav_fma(gav_load(x + k), y0, s0);
            s1 = gav_fma(gav_load(x + k + GAV_W), y1, s1);
        }
        if (acc) {
            gav_store(acc + k, gav_fma(va, y0, gav_load(acc + k)));
            gav_store(acc + k + GAV_W, gav_fma(va, y1, gav_load(acc + k + GAV_W)));
        }
    }
    for (; k < n; k += GAV_W) {
        gav_mask_t m = gav_mask(n - k);
        gav_t y0 = gav_load_mask(y + k, m);
        if (want_dot)
            s0 = gav_fma(gav_load_mask(x + k, m), y0, s0);
        if (acc)
            gav_store_mask(acc + k, m, gav_fma(va, y0, gav_load_mask(acc + k, m)));
    }
    return want_dot ? gav_hsum(gav_add(s0, s1)) : 0.0f;
}

/* 1 if x[0..n) are all finite (x - x is NaN exactly for inf and NaN): the
 * check behind the exact fallbacks of issue 9 (finite exact results stay
 * finite), one pass over an output row. */
GAV_INLINE int gav_all_finite(const float *x, int n)
{
    gav_flags_t f = gav_flags_none();
    int k = 0;
    for (; k + GAV_W <= n; k += GAV_W) {
        gav_t v = gav_load(x + k);
        f = gav_flags_nan(f, gav_sub(v, v));
    }
    if (k < n) {
        gav_t v = gav_load_tail(x + k, n - k);
        f = gav_flags_nan(f, gav_sub(v, v));
    }
    return !gav_flags_any(f);
}

/* Sum of x[0..n). */
GAV_INLINE float gav_sum(const float *x, int n)
{
    gav_t s = gav_zero();
    int k = 0;
    for (; k + GAV_W <= n; k += GAV_W)
        s = gav_add(s, gav_load(x + k));
    if (k < n)
        s = gav_add(s, gav_load_tail(x + k, n - k));
    return gav_hsum(s);
}

/* y[k] += a * x[k] for k < n (one rounding per element: FMA); two vectors
 * per iteration, then one, then a masked tail. */
GAV_INLINE void gav_axpy(float *y, const float *x, float a, int n)
{
    const gav_t va = gav_set1(a);
    int k = 0;
    for (; k + 2 * GAV_W <= n; k += 2 * GAV_W) {
        gav_store(y + k, gav_fma(va, gav_load(x + k), gav_load(y + k)));
        gav_store(y + k + GAV_W, gav_fma(va, gav_load(x + k + GAV_W), gav_load(y + k + GAV_W)));
    }
    for (; k + GAV_W <= n; k += GAV_W)
        gav_store(y + k, gav_fma(va, gav_load(x + k), gav_load(y + k)));
    if (k < n) {
        gav_mask_t m = gav_mask(n - k);
        gav_store_mask(y + k, m, gav_fma(va, gav_load_mask(x + k, m), gav_load_mask(y + k, m)));
    }
}

/* ---- weighted row sum ----
 *   out[j] = (accumulate ? out[j] : 0) + scale * sum_{k < count} w[k * ws] * V[row_k][j]
 * for j < ncols, row_k = idx ? idx[k] : k, V rows of stride ldv.
 * Columns go in blocks of up to GAV_WSUM_NV vectors held in registers; the
 * rows of a block are split over np accumulator sets (k mod np) so that
 * nv * np <= GAV_NACC independent FMA chains hide the FMA latency.  When
 * there is more than one column block, rows go in blocks of about 16 KiB
 * (swept once per column block while in L1: every row comes from memory
 * once); each row block's partial sum is added to out with one FMA.
 * Gathered rows (idx != NULL) are prefetched GAV_WSUM_PREFETCH rows ahead
 * (0: no prefetch): they are scattered, so the hardware prefetcher does not
 * see them coming.  count == 0 gives 0 (or out unchanged when accumulating). */

#define GAVW_MAXNV_ GAV_WSUM_NV
/* accumulator sets for nv vectors: GAV_NACC / nv, between 1 and 4 */
#define GAVW_NP_(nv) ((GAV_NACC / (nv)) < 1 ? 1 : (GAV_NACC / (nv)) > 4 ? 4 : (GAV_NACC / (nv)))

/* One block: columns col0 + [0, nc) (nc <= nv * GAV_W; full: nc == nv * GAV_W,
 * unmasked loads) over rows [k0, k1) (gathered: row_k = idx[k], else k).
 * nv, np, full and gathered are constants at every call site, so the
 * accumulators stay in registers and the row addressing is specialised. */
GAV_INLINE void gav_wsum_block_(const float *V, size_t ldv, const int32_t *idx,
                                const float *w, size_t ws, int k0, int k1, int kend,
                                int col0, int nc, const int nv, const int np,
                                const int full, const int gathered, float scale,
                                int accumulate, float *out)
{
    gav_mask_t km[GAVW_MAXNV_];
    gav_t acc[4][GAVW_MAXNV_];
    for (int v = 0; v < nv; v++) {
        km[v] = gav_mask(nc - GAV_W * v);
        for (int p = 0; p < np; p++)
            acc[p][v] = gav_zero();
    }
    int k = k0;
    for (; k + np <= k1; k += np) {
        for (int p = 0; p < np; p++) {
            const size_t row = gathered ? (size_t)idx[k + p] : (size_t)(k + p);
            const float *x = V + row * ldv + col0;
            if (GAV_WSUM_PREFETCH > 0 && gathered && p == 0) {
                const int kf = k + GAV_WSUM_PREFETCH < kend ? k + GAV_WSUM_PREFETCH : kend - 1;
                gav_prefetch_bytes(V + (size_t)idx[kf] * ldv + col0,
                                   (full ? nv * GAV_W : nc) * (int)sizeof(float));
            }
            const gav_t wv = gav_set1(w[(size_t)(k + p) * ws]);
            for (int v = 0; v < nv; v++)
                acc[p][v] = gav_fma(wv, full ? gav_load(x + GAV_W * v)
                                             : gav_load_mask(x + GAV_W * v, km[v]),
                                    acc[p][v]);
        }
    }
    for (; k < k1; k++) {
        const size_t row = gathered ? (size_t)idx[k] : (size_t)k;
        const float *x = V + row * ldv + col0;
        const gav_t wv = gav_set1(w[(size_t)k * ws]);
        for (int v = 0; v < nv; v++)
            acc[0][v] = gav_fma(wv, full ? gav_load(x + GAV_W * v)
                                         : gav_load_mask(x + GAV_W * v, km[v]),
                                acc[0][v]);
    }
    const gav_t vs = gav_set1(scale);
    for (int v = 0; v < nv; v++) {
        gav_t s = acc[0][v];
        for (int p = 1; p < np; p++)
            s = gav_add(s, acc[p][v]);
        float *o = out + col0 + GAV_W * v;
        if (full)
            gav_store(o, accumulate ? gav_fma(s, vs, gav_load(o)) : gav_mul(s, vs));
        else
            gav_store_mask(o, km[v], accumulate ? gav_fma(s, vs, gav_load_mask(o, km[v]))
                                                : gav_mul(s, vs));
    }
}

GAV_INLINE void gav_wsum_(const float *V, size_t ldv, int ncols, const int32_t *idx,
                          const float *w, size_t ws, int count, float scale,
                          int accumulate, float *out, const int gathered)
{
    enum { NV = GAV_WSUM_NV, NV2 = NV / 2 > 0 ? NV / 2 : 1, NV4 = NV / 4 > 0 ? NV / 4 : 1 };
    const int bw = NV * GAV_W; /* columns per block */
    int rows = count;
    if (ncols > bw) {
        rows = GAV_L1_BLOCK_BYTES / (int)(sizeof(float) * (size_t)ncols);
        if (rows < 4)
            rows = 4;
    }
    if (count <= 0) {
        if (!accumulate)
            for (int j = 0; j < ncols; j += GAV_W)
                gav_store_tail(out + j, ncols - j, gav_zero());
        return;
    }
    for (int k0 = 0; k0 < count; k0 += rows) {
        const int k1 = count - k0 < rows ? count : k0 + rows;
        const int acc = accumulate || k0 > 0;
        for (int c0 = 0; c0 < ncols; c0 += bw) {
            const int nc = ncols - c0 < bw ? ncols - c0 : bw;
            /* full: every vector of the block whole (plain loads; masked
             * loads of all lanes cost ~20 % of the DRAM bandwidth on Zen 4) */
            if (nc == bw)
                gav_wsum_block_(V, ldv, idx, w, ws, k0, k1, count, c0, nc, NV,
                                GAVW_NP_(NV), 1, gathered, scale, acc, out);
            else if (nc > NV2 * GAV_W)
                gav_wsum_block_(V, ldv, idx, w, ws, k0, k1, count, c0, nc, NV,
                                GAVW_NP_(NV), 0, gathered, scale, acc, out);
            else if (nc == NV2 * GAV_W && NV2 < NV)
                gav_wsum_block_(V, ldv, idx, w, ws, k0, k1, count, c0, nc, NV2,
                                GAVW_NP_(NV2), 1, gathered, scale, acc, out);
            else if (nc > NV4 * GAV_W)
                gav_wsum_block_(V, ldv, idx, w, ws, k0, k1, count, c0, nc, NV2,
                                GAVW_NP_(NV2), 0, gathered, scale, acc, out);
            else if (nc == NV4 * GAV_W && NV4 < NV2)
                gav_wsum_block_(V, ldv, idx, w, ws, k0, k1, count, c0, nc, NV4,
                                GAVW_NP_(NV4), 1, gathered, scale, acc, out);
            else if (nc > GAV_W)
                gav_wsum_block_(V, ldv, idx, w, ws, k0, k1, count, c0, nc, NV4,
                                GAVW_NP_(NV4), 0, gathered, scale, acc, out);
            else if (nc == GAV_W && 1 < NV4)
                gav_wsum_block_(V, ldv, idx, w, ws, k0, k1, count, c0, nc, 1,
                                GAVW_NP_(1), 1, gathered, scale, acc, out);
            else
                gav_wsum_block_(V, ldv, idx, w, ws, k0, k1, count, c0, nc, 1,
                                GAVW_NP_(1), 0, gathered, scale, acc, out);
        }
    }
}

/* The weighted row sum specified above (gathered rows when idx != NULL). */
GAV_INLINE void gav_wsum(const float *V, size_t ldv, int ncols, const int32_t *idx,
                         const float *w, size_t ws, int count, float scale,
                         int accumulate, float *out)
{
    if (idx)
        gav_wsum_(V, ldv, ncols, idx, w, ws, count, scale, accumulate, out, 1);
    else
        gav_wsum_(V, ldv, ncols, NULL, w, ws, count, scale, accumulate, out, 0);
}

#endif
