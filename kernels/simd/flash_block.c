/* flash_block.c — dense attention of a block of up to 32 queries over one
 * head, flash style (online softmax over key chunks), written once against
 * the SIMD vocabulary (simd.h) and compiled per ISA as ga_<isa>_flash_block.
 * Contract: include/granattn_ops.h; error bound: docs/SPEC.md §2.
 *
 * Layout: the 32 queries run across the lanes (QV = 32 / GAV_W vectors), so
 * nothing of K or V is packed or transposed and every reduction is per lane:
 *   Qt [dh][32]  = scale * Q^T           packed once per call (lanes >= T: 0)
 *   per chunk of NC keys i0 .. i0+nc:
 *     St [nc][32] = K_chunk Qt + bias    KB keys x QV vectors in registers,
 *                                        K[i][d] broadcast against Qt[d][:]
 *     mc = max_i St, m' = max(m, mc), alpha = exp(m - m'), l = alpha l
 *     Pt = exp(St - m') in place, l += sum_i Pt[i]
 *     Ct [dh][32] = alpha Ct + V_chunk^T Pt   JB columns x QV vectors in
 *                                        registers, V[i][j] broadcast
 *   C[t][j] = Ct[j][t] * (1 / l[t])      (l >= 1: the max key adds exp(0))
 * A padded key (bias -inf) gets St = -inf by a branch on the key (its dot is
 * never read) and P = exp(-inf) = 0.  While every key so far is padded, m'
 * is -inf and exp uses 0 in its place (exp(-inf - 0) = 0, no NaN).
 * Unpadded scores are checked by chk += s * 0 (NaN iff s is inf or NaN).
 * exp: gav_exp (SLEEF expf u10, <= 1 ulp).  Summation orders depend only
 * on N and dh: results are bitwise reproducible.
 * Bytes read past the end: 0 (no vector loads of K or V; ws is private).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "simd.h"

/* QV vectors hold the 32 queries; KB keys (St) and JB columns (Ct) per
 * register tile: KB * QV + QV + 1 registers (AVX-512 8 x 2 + 3 of 32 zmm,
 * AVX2 2 x 4 + 5 of 16 ymm, NEON 2 x 8 + 9 of 32 q); then tiles of KB/2
 * (JB/2) and 1.  A tile of 1 is latency-bound (QV chains), so the sizes
 * divide the usual dh and NC (64, 128): with 6, dh 64's last 4 columns took
 * a quarter of the time.  NC keys per chunk:
 * the St tile NC x 128 B and the K, V chunks NC x dh x 4 B stay in L1/L2. */
enum {
    QB = GA_FLASH_QB,
    QV = QB / GAV_W,
    KB = GAV_W == 16 ? 8 : 2,
    JB = GAV_W == 16 ? 8 : 2,
#ifdef GA_FLASH_NC_OVERRIDE /* measurement builds only */
    NC = GA_FLASH_NC_OVERRIDE,
#else
    NC = GA_FLASH_NC,
#endif
};
_Static_assert(QB % GAV_W == 0, "32 queries fill whole vectors");
_Static_assert(NC >= 1 && NC <= 256, "GA_FLASH_WS holds a tile of at most 256 keys");

/* St rows [i0, i0+n) of chunk-local rows r0..: scores of keys key0+r, r < n
 * (n == KB or 1 via the two instantiations below), plus bias, padded keys
 * -inf; updates the lane max mx and the check chk. */
#define FLASH_SCORE_TILE(NB)                                                   \
    do {                                                                       \
        gav_t acc[NB][QV];                                                     \
        for (int b = 0; b < NB; b++)                                           \
            for (int v = 0; v < QV; v++)                                       \
                acc[b][v] = gav_zero();                                        \
        const float *kr = K + (size_t)key * dh;                                \
        /* the tile's V rows for the PV pass, the next chunk's K rows */       \
        for (int o = 0; o < NB * dh; o += 16) {                                \
            gav_prefetch(V + (size_t)key * dh + o);                            \
            if (key + NC + NB <= N)                                            \
                gav_prefetch(kr + (size_t)NC * dh + o);                        \
        }                                                                      \
        for (int d = 0; d < dh; d++) {                                         \
            gav_t q[QV];                                                       \
            for (int v = 0; v < QV; v++)                                       \
                q[v] = gav_load(Qt + (size_t)d * QB + v * GAV_W);              \
            for (int b = 0; b < NB; b++) {                                     \
                const gav_t kb = gav_set1(kr[(size_t)b * dh + d]);             \
                for (int v = 0; v < QV; v++)                                   \
                    acc[b][v] = gav_fma(kb, q[v], acc[b][v]);                  \
            }                                                                  \
        }                                                                      \
        for (int b = 0; b < NB; b++) {                                         \
            float *st = St + (size_t)(r + b) * QB;                             \
            const float bi = bias ? bias[key + b] : 0.0f;                      \
            if (bi == -INFINITY) {                                             \
                for (int v = 0; v < QV; v++)                                   \
                    gav_store(st + v * GAV_W, ninf);                           \
                continue;                                                      \
            }                                                                  \
            const gav_t vb = gav_set1(bi);                                     \
            for (int v = 0; v < QV; v++) {                                     \
                const gav_t s = gav_add(acc[b][v], vb);                        \
                chk[v] = gav_fma(s, zero, chk[v]);                             \
                mx[v] = gav_max(mx[v], s);                                     \
                gav_store(st + v * GAV_W, s);                                  \
            }                                                                  \
        }                                                                      \
    } while (0)

/* Ct columns [j, j+NB): Ct = alpha Ct + sum_r V[key0+r][j..] Pt[r]. */
#define FLASH_CONTEXT_TILE(NB)                                                 \
    do {                                                                       \
        gav_t acc[NB][QV];                                                     \
        for (int b = 0; b < NB; b++)                                           \
            for (int v = 0; v < QV; v++)                                       \
                acc[b][v] = gav_zero();                                        \
        const float *vr = V + (size_t)key0 * dh + j;                           \
        for (int r = 0; r < nc; r++, vr += dh) {                               \
            gav_t p[QV];                                                       \
            for (int v = 0; v < QV; v++)                                       \
                p[v] = gav_load(St + (size_t)r * QB + v * GAV_W);              \
            for (int b = 0; b < NB; b++) {                                     \
                const gav_t vb = gav_set1(vr[b]);                              \
                for (int v = 0; v < QV; v++)                                   \
                    acc[b][v] = gav_fma(vb, p[v], acc[b][v]);                  \
            }                                                                  \
        }                                                                      \
        for (int b = 0; b < NB; b++)                                           \
            for (int v = 0; v < QV; v++) {                                     \
                float *ct = Ct + (size_t)(j + b) * QB + v * GAV_W;             \
                gav_store(ct, gav_fma(gav_load(ct), alpha[v], acc[b][v]));     \
            }                                                                  \
    } while (0)

/* Qt [dh][QB] = scale * Q^T of the block's T rows (Q [T][ldq]); lanes
 * t >= T are 0.  Whole GAV_W x GAV_W blocks by gav_transpose, the last
 * dh % GAV_W columns one by one (the same single product per element). */
static void pack_qt(const float *Q, int ldq, int T, int dh, float scale, float *Qt)
{
    const gav_t vs = gav_set1(scale);
    int d0 = 0;
    for (; d0 + GAV_W <= dh; d0 += GAV_W)
        for (int v = 0; v < QV; v++) {
            gav_t r[GAV_W];
            for (int i = 0; i < GAV_W; i++) {
                const int t = v * GAV_W + i;
                r[i] = t < T ? gav_mul(gav_load(Q + (size_t)t * ldq + d0), vs) : gav_zero();
            }
            gav_transpose(r);
            for (int k = 0; k < GAV_W; k++)
                gav_store(Qt + (size_t)(d0 + k) * QB + v * GAV_W, r[k]);
        }
    for (int d = d0; d < dh; d++)
        for (int t = 0; t < QB; t++)
            Qt[(size_t)d * QB + t] = t < T ? scale * Q[(size_t)t * ldq + d] : 0.0f;
}

/* C[t][d] = Ct[d][t] * (1 / l[t]) for t < T (C [T][ldc]), by the same
 * blocks as pack_qt; never writes past C's T rows of dh. */
static void unpack_c(const float *Ct, const float *l, int T, int dh, float *C, int ldc)
{
    float rl[QB];
    for (int t = 0; t < QB; t++)
        rl[t] = 1.0f / l[t];
    int d0 = 0;
    for (; d0 + GAV_W <= dh; d0 += GAV_W)
        for (int v = 0; v < QV && v * GAV_W < T; v++) {
            const gav_t vr = gav_load(rl + v * GAV_W);
            gav_t r[GAV_W];
            for (int k = 0; k < GAV_W; k++)
                r[k] = gav_mul(gav_load(Ct + (size_t)(d0 + k) * QB + v * GAV_W), vr);
            gav_transpose(r);
            for (int i = 0; i < GAV_W && v * GAV_W + i < T; i++)
                gav_store(C + (size_t)(v * GAV_W + i) * ldc + d0, r[i]);
        }
    for (int t = 0; t < T; t++)
        for (int d = d0; d < dh; d++)
            C[(size_t)t * ldc + d] = Ct[(size_t)d * QB + t] * rl[t];
}

uint32_t GA_FN(flash_block)(const float *Q, int ldq, int T, const float *K, const float *V,
                            int N, int dh, float scale, const float *bias, float *C, int ldc,
                            float *ws)
{
    /* ws: Qt [dh][32] | Ct [dh][32] | St [NC][32] | stats [4][32] */
    float *Qt = ws, *Ct = Qt + (size_t)dh * QB, *St = Ct + (size_t)dh * QB;
    float *stat = St + (size_t)NC * QB;
    pack_qt(Q, ldq, T, dh, scale, Qt);
    memset(Ct, 0, sizeof(float) * (size_t)dh * QB);

    const gav_t ninf = gav_set1(-INFINITY), zero = gav_zero();
    gav_t m[QV], l[QV], chk[QV];
    for (int v = 0; v < QV; v++) {
        m[v] = ninf;
        l[v] = zero;
        chk[v] = zero;
    }
    for (int key0 = 0; key0 < N; key0 += NC) {
        const int nc = N - key0 < NC ? N - key0 : NC;
        /* St = K_chunk Qt + bias; chunk max */
        gav_t mx[QV];
        for (int v = 0; v < QV; v++)
            mx[v] = ninf;
        int r = 0;
        for (; r + KB <= nc; r += KB) {
            const int key = key0 + r;
            FLASH_SCORE_TILE(KB);
        }
        for (; r + KB / 2 <= nc; r += KB / 2) {
            const int key = key0 + r;
            FLASH_SCORE_TILE(KB / 2);
        }
        for (; r < nc; r++) {
            const int key = key0 + r;
            FLASH_SCORE_TILE(1);
        }
        /* running max, rescale factor alpha = exp(m - m'), m' = -inf -> 0 */
        gav_t ms[QV], alpha[QV];
        for (int v = 0; v < QV; v++) {
            const gav_t mn = gav_max(m[v], mx[v]);
            ms[v] = gav_select_eq(mn, ninf, zero, mn);
            alpha[v] = gav_exp(gav_sub(m[v], ms[v]));
            l[v] = gav_mul(l[v], alpha[v]);
            m[v] = mn;
        }
        /* Pt = exp(St - m') in place, l += sum Pt */
        for (r = 0; r < nc; r++)
            for (int v = 0; v < QV; v++) {
                float *st = St + (size_t)r * QB + v * GAV_W;
                const gav_t p = gav_exp(gav_sub(gav_load(st), ms[v]));
                l[v] = gav_add(l[v], p);
                gav_store(st, p);
            }
        /* Ct = alpha Ct + V_chunk^T Pt */
        int j = 0;
        for (; j + JB <= dh; j += JB)
            FLASH_CONTEXT_TILE(JB);
        for (; j + JB / 2 <= dh; j += JB / 2)
            FLASH_CONTEXT_TILE(JB / 2);
        for (; j < dh; j++)
            FLASH_CONTEXT_TILE(1);
    }

    float *ms = stat, *ls = stat + QB, *cs = stat + 2 * QB;
    for (int v = 0; v < QV; v++) {
        gav_store(ms + v * GAV_W, m[v]);
        gav_store(ls + v * GAV_W, l[v]);
        gav_store(cs + v * GAV_W, chk[v]);
    }
    uint32_t ok = 0;
    for (int t = 0; t < T; t++)
        if (cs[t] == 0.0f && ms[t] != -INFINITY)
            ok |= (uint32_t)1 << t;
    unpack_c(Ct, ls, T, dh, C, ldc);
    for (int t = 0; t < T; t++)
        if (!(ok >> t & 1))
            for (int d = 0; d < dh; d++)
                C[(size_t)t * ldc + d] = NAN;
    return ok;
}
