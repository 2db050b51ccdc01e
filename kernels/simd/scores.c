/* scores.c — attention scores with their row max, and the backward of the
 * scores for one query; written once against the SIMD vocabulary (simd.h),
 * compiled per ISA.
 *
 * scores:  S[t][i] = scale * (Q[t] . K[i]) + (bias ? bias[i] : 0)
 *          m[t]    = max_i S[t][i]; NaN if any S[t][i] is NaN; -inf if N == 0
 *                    (or every score is -inf).
 *   K [N][dh], Q [T][ldq] (ldq >= dh), bias [N] or NULL -> S [T][lds], m [T].
 *   Keys go GAV_W at a time: gav_dot_rows gives one vector of GAV_W dot
 *   products (independent accumulators sharing each load of q, folded by
 *   the ISA's reduction tree), so scale, bias, the store, the max and the
 *   NaN check are all vector-wide.  In the last block of fewer than GAV_W
 *   keys the lanes past N repeat key N-1: computed, never stored, replaced
 *   by -inf before the max.  For T > 1 keys are walked in chunks of about
 *   16 KiB that stay in L1 while every query is scored against them, so K
 *   is read from memory once for the whole block of queries.
 *   Padded keys (bias -inf) get exactly -inf whatever q . K[i] is (a select,
 *   so a NaN or +inf dot product never reaches them).  A key whose scaled
 *   dot product is not finite (unpadded: an intermediate float sum
 *   overflowed, or a NaN/inf input) is recomputed exactly by the reference
 *   (double, one rounding): a finite exact score stays finite.  Only that
 *   key: its neighbours in the vector keep their float scores, so every
 *   key's score depends on that key alone, and scores_gather (the same
 *   rule) gives the same bits for any subset of the keys.  The check is one
 *   subtract and compare per vector of scores.
 *   Tried for T > 1 and not kept (AVX-512, dh 64, T 32, 1 core of the
 *   Xeon VM): the same bits with keys across lanes (each 16-key panel
 *   transposed once per L1 chunk, the lane partials as vector FMA chains
 *   on a broadcast q, gav_reduce_rows' tree as vertical adds, 2 queries x
 *   2 panels per pass): 1.76 -> 1.65 ns per (query, key) at N 1024-4096,
 *   the sparse attend_block 1.05-1.08x.  Its dot products ran near the
 *   FMA bound (57 % of the time); the panel transposes (port-5 shuffles),
 *   the per-vector finishing and register spills took the rest; a second
 *   version (lane pairs of the tree in flight, zero-started chains) was
 *   no faster than the row path in thread CPU time.
 * scores_backward:
 *   dq[j]    += scale * sum_i ds[i] * K[i][j]     (accum; dq may be NULL)
 *   dK[i][j] += scale * ds[i] * q[j]              (accum; dK may be NULL)
 *   K [N][dh], q [dh], ds [N] -> dq [dh], dK [N][dh].
 *   dq: gav_wsum (weighted row sum), added with one FMA; dK: one gav_axpy
 *   per row with w = scale * ds[i].  A dq that comes out non-finite (a
 *   float overflow, or a key with ds = 0 and a NaN/inf K row: padding) is
 *   recomputed exactly from the saved dq by the reference, which excludes
 *   ds = 0 keys; dq goes in chunks of up to 512 columns for that.
 * Alignment: none required.  Bytes read or written past the end: 0.
 */
#include <math.h>
#include <string.h>

#include "simd.h"

/* 1 if every lane of v is finite. */
GAV_INLINE int lanes_finite(gav_t v)
{
    return !gav_flags_any(gav_flags_nan(gav_flags_none(), gav_sub(v, v)));
}

/* Exact scores of keys [i, i + n) into s[i..i+n) (the reference: double
 * dot product, padded keys -inf). */
static void exact_scores(const float *K, int dh, const float *q, float scale,
                         const float *bias, int i, int n, float *s)
{
    float m;
    ga_ref_scores(K + (size_t)i * dh, n, dh, q, 1, dh, scale, bias ? bias + i : NULL,
                  s + i, n, &m);
}

/* Keys i + r (r < n) whose scaled dot product chk is not finite (padded
 * keys have chk = 0): their exact score, key by key, into s[i + r]. */
static void exact_lanes(const float *K, int dh, const float *q, float scale,
                        const float *bias, int i, int n, gav_t chk, float *s)
{
    float c[GAV_W];
    gav_store(c, chk);
    for (int r = 0; r < n; r++)
        if (!(c[r] - c[r] == 0.0f)) /* inf or NaN */
            exact_scores(K, dh, q, scale, bias, i + r, 1, s);
}

/* Scores of query q against keys [i0, i1) into s[i0..i1); returns their
 * max, or NaN if any of them is NaN (-inf if the range is empty). */
static float score_range(const float *K, int dh, const float *q, float scale,
                         const float *bias, int i0, int i1, float *s)
{
    const size_t st = (size_t)dh;
    const gav_t vscale = gav_set1(scale);
    const gav_t ninf = gav_set1(-INFINITY);
    gav_t vmax = ninf;
    gav_flags_t nan = gav_flags_none();
    int i = i0;
    const gav_t zero = gav_zero();
    for (; i + GAV_W <= i1; i += GAV_W) {
        gav_t v = gav_mul(gav_dot_rows(K + (size_t)i * st, st, GAV_W, q, dh), vscale);
        gav_t chk = v; /* scaled dots of the unpadded keys */
        if (bias) {
            const gav_t b = gav_load(bias + i);
            chk = gav_select_eq(b, ninf, zero, v);
            v = gav_select_eq(b, ninf, ninf, gav_add(v, b));
        }
        gav_store(s + i, v);
        if (!lanes_finite(chk)) { /* rare: exact, key by key */
            exact_lanes(K, dh, q, scale, bias, i, GAV_W, chk, s);
            v = gav_load(s + i);
        }
        vmax = gav_max(vmax, v);
        nan = gav_flags_nan(nan, v);
    }
    if (i < i1) {
        const int n = i1 - i;
        const gav_mask_t k = gav_mask(n);
        gav_t v = gav_mul(gav_dot_rows(K + (size_t)i * st, st, n, q, dh), vscale);
        gav_t chk = v;
        if (bias) {
            const gav_t b = gav_load_mask(bias + i, k);
            chk = gav_select_eq(b, ninf, zero, v);
            v = gav_select_eq(b, ninf, ninf, gav_add(v, b));
        }
        gav_store_mask(s + i, k, v);
        if (!lanes_finite(gav_select(k, chk, zero))) {
            exact_lanes(K, dh, q, scale, bias, i, n, chk, s);
            v = gav_load_mask(s + i, k);
        }
        v = gav_select(k, v, ninf);
        vmax = gav_max(vmax, v);
        nan = gav_flags_nan(nan, v);
    }
    return gav_flags_any(nan) ? NAN : gav_hmax(vmax);
}

void GA_FN(scores)(const float *K, int N, int dh, const float *Q, int T, int ldq,
                   float scale, const float *bias, float *S, int lds, float *m)
{
    if (T == 1) {
        m[0] = score_range(K, dh, Q, scale, bias, 0, N, S);
        return;
    }
    /* Chunk of keys: about 16 KiB of K, a multiple of GAV_W keys. */
    int chunk = (int)(GAV_L1_BLOCK_BYTES / sizeof(float)) / (dh > 0 ? dh : 1);
    chunk -= chunk % GAV_W;
    if (chunk < GAV_W)
        chunk = GAV_W;
    for (int t = 0; t < T; t++)
        m[t] = -INFINITY;
    for (int i0 = 0; i0 < N; i0 += chunk) {
        const int i1 = N - i0 < chunk ? N : i0 + chunk;
        for (int t = 0; t < T; t++) {
            float cm = score_range(K, dh, Q + (size_t)t * ldq, scale, bias, i0, i1,
                                   S + (size_t)t * lds);
            if (!isnan(m[t]) && (isnan(cm) || cm > m[t])) /* NaN is sticky */
                m[t] = cm;
        }
    }
}

void GA_FN(scores_backward)(const float *K, int N, int dh, const float *q,
                            float scale, const float *ds, float *dq, float *dK)
{
    if (dq) {
        enum { CH = 512 }; /* columns per chunk: one chunk for dh <= 512 */
        for (int j0 = 0; j0 < dh; j0 += CH) {
            const int nc = dh - j0 < CH ? dh - j0 : CH;
            float save[CH];
            memcpy(save, dq + j0, sizeof(float) * (size_t)nc);
            gav_wsum(K + j0, (size_t)dh, nc, NULL, ds, 1, N, scale, 1, dq + j0);
            if (!gav_all_finite(dq + j0, nc)) { /* rare: exact, ds = 0 excluded */
                memcpy(dq + j0, save, sizeof(float) * (size_t)nc);
                ga_ref_scores_backward_dq(K, N, dh, j0, j0 + nc, scale, ds, dq);
            }
        }
    }
    if (dK)
        for (int i = 0; i < N; i++)
            gav_axpy(dK + (size_t)i * dh, q, scale * ds[i], dh);
}
