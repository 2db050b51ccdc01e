/* test_flash.c — flash_block (the dense query block, online softmax over key
 * chunks) of every variant vs the scalar reference ga_ref_flash_block.
 *
 * Sizes: N = 0 … 33, 100, 1001, 4097 (n_sizes) and the chunk edges 63, 64,
 * 65, 127, 128, 129 (GA_FLASH_NC = 64); T cycles through 1, 2, 5, 16, 17,
 * 31, 32 and dh through 1, 3, 17, 64 (SIMD and register-tile tails);
 * ldq, ldc > dh with their gaps checked untouched; unaligned pointers (arena
 * offsets).  Kinds: plain; bias with -inf padding whose K and V rows hold
 * NaN/inf (must not matter: exactly excluded); scores that rise along the
 * keys over a range of ~160 (a new max in every chunk: every rescale runs);
 * a NaN query row and an inf query row (only those rows unflagged, NaN);
 * every key padded (mask 0); padded keys with NaN/inf V rows too (a flagged
 * row's C is then right or not finite: the contract lets the caller, which
 * checks C, recompute it).
 *
 * Tolerance of a flagged row t, element j (docs/SPEC.md §2, dense block
 * rule):  |C - ref| <= rtol * sum_i a_i |V_ij| + ATOL_TINY with
 *   rtol = 2E + 2 EXP_RTOL + 2 rtol_sum(N) + 4U + 6 R U,
 *   E = 1.01 (dh + 4) U scale max_i sum_d |q_d K_id| (a score's float error
 *   in any order, the pre-scaled q and the bias add included), the exp of
 *   p and the two float sums of N terms (C, l), 1/l and its products, and
 *   per rescale (R <= ceil(N / GA_FLASH_NC)) the exp of alpha (1 ulp <= 2U)
 *   and the two products alpha C, alpha l (U each), in numerator and
 *   denominator.  A misplaced or missing key moves C by ~a_i |V_i|, far
 *   above this for the sizes here.
 */
#include <string.h>

#include "util.h"

static const int DHS[] = {1, 3, 17, 64};
static const int TS[] = {1, 2, 5, 16, 17, 31, 32};
enum { NK = 6 };

/* sum_i a_i |V_ij| for row t (double softmax weights), and E / scale. */
static void magnitude(const float *q, const float *K, const float *V, const float *bias, int N,
                      int dh, float scale, double *mag, double *emax)
{
    double m = -INFINITY, z = 0.0, e = 0.0;
    for (int i = 0; i < N; i++) {
        if (bias && bias[i] == -INFINITY)
            continue;
        double s = 0.0, sa = 0.0;
        for (int d = 0; d < dh; d++) {
            s += (double)q[d] * K[(size_t)i * dh + d];
            sa += fabs((double)q[d] * K[(size_t)i * dh + d]);
        }
        s = s * scale + (bias ? bias[i] : 0.0);
        m = s > m ? s : m;
        e = sa > e ? sa : e;
    }
    for (int j = 0; j < dh; j++)
        mag[j] = 0.0;
    for (int i = 0; i < N; i++) {
        if (bias && bias[i] == -INFINITY)
            continue;
        double s = 0.0;
        for (int d = 0; d < dh; d++)
            s += (double)q[d] * K[(size_t)i * dh + d];
        const double p = exp(s * scale + (bias ? bias[i] : 0.0) - m);
        z += p;
        for (int j = 0; j < dh; j++)
            mag[j] += p * fabs((double)V[(size_t)i * dh + j]);
    }
    for (int j = 0; j < dh; j++)
        mag[j] /= z;
    *emax = e * scale;
}

Test(flash, block_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "flash_block");
    tc_init(&c, "flash_block");
    trng rng;
    rng_init(&rng, 1401);
    int ns[48], nn = n_sizes(ns, 0);
    static const int EXTRA[] = {63, 64, 65, 127, 128, 129};
    for (int e = 0; e < 6; e++)
        ns[nn++] = EXTRA[e];
    const float poison = u2f(0xFFFFFFFFu);
    long cases = 0;
    for (int in = 0; in < nn; in++)
        for (int kind = 0; kind < NK; kind++, cases++) {
            const int N = ns[in], dh = DHS[cases % 4], T = TS[cases % 7];
            const int ldq = dh + (int)(cases % 3), ldc = dh + 1 + (int)(cases % 2);
            const float scale = 1.0f / sqrtf((float)dh);
            tarena a = {0};
            float *Q = ar_f(&a, "Q", (size_t)T * ldq, 1);
            float *K = ar_f(&a, "K", (size_t)N * dh + 1, 2);
            float *V = ar_f(&a, "V", (size_t)N * dh + 1, 3);
            float *bias = kind == 1 || kind == 4 || kind == 5
                              ? ar_f(&a, "bias", (size_t)N + 1, 1) : NULL;
            fill_unif(&rng, Q, (size_t)T * ldq, -1, 1);
            fill_unif(&rng, K, (size_t)N * dh, -1, 1);
            fill_unif(&rng, V, (size_t)N * dh, -2, 2);
            if (bias)
                for (int i = 0; i < N; i++) {
                    const int pad = kind == 4 || rng_unit(&rng) < 0.3;
                    bias[i] = pad ? -INFINITY : (float)rng_range(&rng, -2, 2);
                    if (pad && i % 3 == 0) /* a padded key's K row must not matter */
                        for (int d = 0; d < dh; d++)
                            K[(size_t)i * dh + d] = d % 2 ? NAN : INFINITY;
                    if (pad && i % 3 == 0 && kind == 5) /* nor its V row, but see below */
                        for (int d = 0; d < dh; d++)
                            V[(size_t)i * dh + d] = i % 2 ? NAN : -INFINITY;
                }
            if (kind == 2) /* scores rising along the keys: a new max per chunk */
                for (int i = 0; i < N; i++) {
                    const float r = N > 1 ? 160.0f * i / (N - 1) - 80.0f : 0.0f;
                    for (int d = 0; d < dh; d++)
                        K[(size_t)i * dh + d] = d == 0 ? r / scale : K[(size_t)i * dh + d] * 0.1f;
                }
            if (kind == 2)
                for (int t = 0; t < T; t++)
                    Q[(size_t)t * ldq] = 1.0f + 0.001f * t;
            if (kind == 3) { /* one NaN and one inf query row */
                Q[(size_t)(T / 2) * ldq] = NAN;
                if (T > 1)
                    Q[(size_t)(T - 1) * ldq + dh - 1] = INFINITY;
            }
            float *Cr = ar_f(&a, "C ref", (size_t)T * ldc, 1);
            float *wsr = ar_f(&a, "ws ref", GA_FLASH_WS(dh), 0);
            const uint32_t okr =
                ga_ref_flash_block(Q, ldq, T, K, V, N, dh, scale, bias, Cr, ldc, wsr);
            double *mag = ar_d(&a, "mag", (size_t)T * dh);
            double *rt = ar_d(&a, "rtol", (size_t)T);
            const long R = (N + GA_FLASH_NC - 1) / GA_FLASH_NC;
            for (int t = 0; t < T; t++) {
                double em = 0.0;
                if (okr >> t & 1)
                    magnitude(Q + (size_t)t * ldq, K, V, bias, N, dh, scale,
                              mag + (size_t)t * dh, &em);
                rt[t] = 2 * 1.01 * (dh + 4) * U_F32 * em + 2 * EXP_RTOL + 2 * rtol_sum(N) +
                        4 * U_F32 + 6.0 * R * U_F32;
            }
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d T=%d dh=%d ldq=%d ldc=%d kind=%d", N, T, dh, ldq, ldc, kind);
                float *C = ar_f(&a, "C", (size_t)T * ldc, 1);
                float *ws = ar_f(&a, "ws", GA_FLASH_WS(dh), 1);
                const uint32_t ok =
                    v.k[vi]->flash_block(Q, ldq, T, K, V, N, dh, scale, bias, C, ldc, ws);
                if (!tc_eq_long(&c, "row mask", (long)ok, (long)okr))
                    continue;
                if (kind == 0 || kind == 2)
                    tc_eq_long(&c, "every row flagged", (long)ok,
                               N > 0 ? (long)(T == 32 ? 0xFFFFFFFFu : (1u << T) - 1) : 0);
                for (int t = 0; t < T; t++) {
                    const float *ct = C + (size_t)t * ldc;
                    if (!(ok >> t & 1)) {
                        int nan = 1;
                        for (int j = 0; j < dh; j++)
                            nan &= isnan(ct[j]);
                        tc_true(&c, nan, "row %d: unflagged row not NaN", t);
                        continue;
                    }
                    /* kind 5: SIMD variants form 0 * NaN for a padded key's V
                     * row; such a C is not finite and the caller recomputes
                     * the row (contract); a finite C must be right. */
                    int fin = 1;
                    for (int j = 0; j < dh; j++)
                        fin &= isfinite(ct[j]);
                    if (kind == 5 && !fin)
                        continue;
                    for (int j = 0; j < dh; j++) {
                        const double bound =
                            rt[t] * mag[(size_t)t * dh + j] + ATOL_TINY;
                        const double err = fabs((double)ct[j] - Cr[(size_t)t * ldc + j]);
                        if (!tc_true(&c, err <= bound,
                                     "C[%d][%d] = %.9g, ref %.9g: error %.3g > bound %.3g", t,
                                     j, ct[j], Cr[(size_t)t * ldc + j], err, bound))
                            break;
                    }
                }
                tc_gap_untouched(&c, "C gaps", C, T, dh, ldc, poison);
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_true(&c, cases > 0, "no case ran");
    tc_finish(&c);
}
