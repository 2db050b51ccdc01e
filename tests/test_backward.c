/* test_backward.c — the backward kernels.
 *
 * Part A: every backward kernel x every variant vs the scalar reference over
 *         the size grid (accumulating outputs start from random values, NULL
 *         outputs are skipped, padding gaps stay untouched).
 * Part B: every backward kernel vs central finite differences of a
 *         DOUBLE-precision forward of its op written here (loss = upstream
 *         gradient . output), h = FD_H, tolerance FD_RTOL (util.h).  For
 *         threshold_backward the keep decisions are frozen at their forward
 *         values and the straight-through GPN gradient is the derivative
 *         w.r.t. soft keep multipliers k_i = sum_l pi_li kappa_il (plus the
 *         regulariser reg * sum_i k_i); dpi and reg are also checked against
 *         the closed formula.
 */
#include <string.h>

#include "util.h"

static const int DH_LIST[] = {1, 3, 64, 128};
static const int G_LIST[] = {1, 5, 16};
static const int L_LIST[] = {1, 2, 3, 8};

static double *to_d(tarena *a, const char *name, const float *x, size_t n)
{
    double *y = ar_d(a, name, n + 1);
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

static float row_max(const float *s, int N)
{
    float m = -INFINITY;
    for (int i = 0; i < N; i++)
        if (s[i] > m)
            m = s[i];
    return m;
}

/* ======================================================= part A: vs ref */

Test(backward, scores_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "scores_backward");
    tc_init(&c, "scores_backward");
    trng rng;
    rng_init(&rng, 501);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 4; id++)
            for (int off = 0; off < 2; off++)
                for (int which = 0; which < 3; which++) { /* both, dq only, dK only */
                    int N = ns[in], dh = DH_LIST[id];
                    if (N > 33 && (off == 0 || dh < 64 || which))
                        continue;
                    tarena a = {0};
                    float scale = 1.0f / sqrtf((float)dh);
                    float *K = ar_f(&a, "K", (size_t)N * dh, off);
                    float *q = ar_f(&a, "q", (size_t)dh, off);
                    float *ds = ar_f(&a, "ds", (size_t)N, off);
                    float *dq0 = ar_f(&a, "dq0", (size_t)dh, 0);
                    float *dK0 = ar_f(&a, "dK0", (size_t)N * dh, 0);
                    fill_unif(&rng, K, (size_t)N * dh, -1, 1);
                    fill_unif(&rng, q, (size_t)dh, -1, 1);
                    fill_unif(&rng, ds, (size_t)N, -1, 1);
                    fill_unif(&rng, dq0, (size_t)dh, -1, 1);
                    fill_unif(&rng, dK0, (size_t)N * dh, -1, 1);
                    float *dqr = ar_copy(&a, "dq_ref", dq0, (size_t)dh, 0);
                    float *dKr = ar_copy(&a, "dK_ref", dK0, (size_t)N * dh, 0);
                    float *dqm = ar_abs(&a, "dq_mag", dq0, (size_t)dh);
                    float *dKm = ar_abs(&a, "dK_mag", dK0, (size_t)N * dh);
                    ga_ref_scores_backward(K, N, dh, q, scale, ds, dqr, dKr);
                    ga_ref_scores_backward(ar_abs(&a, "|K|", K, (size_t)N * dh), N, dh,
                                           ar_abs(&a, "|q|", q, (size_t)dh), scale,
                                           ar_abs(&a, "|ds|", ds, (size_t)N), dqm, dKm);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d dh=%d off=%d outputs=%s", N, dh, off,
                                which == 0 ? "dq+dK" : which == 1 ? "dq" : "dK");
                        float *dq = ar_copy(&a, "dq", dq0, (size_t)dh, off);
                        float *dK = ar_copy(&a, "dK", dK0, (size_t)N * dh, off);
                        v.k[vi]->scores_backward(K, N, dh, q, scale, ds, which == 2 ? NULL : dq,
                                                 which == 1 ? NULL : dK);
                        /* dq: N products, scale, accumulate: rtol_sum(N + 2);
                         * dK: scale * ds * q + dK0: rtol_sum(3) */
                        if (which != 2)
                            tc_close(&c, "dq", dq, dqr, dqm, dh, rtol_sum(N + 2), ATOL_TINY);
                        if (which != 1)
                            tc_close(&c, "dK", dK, dKr, dKm, N * dh, rtol_sum(3), ATOL_TINY);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    tc_finish(&c);
}

/* Inputs of threshold_backward as the forward produces them. */
typedef struct tb_case {
    int N, L, off;
    ga_norm mode;
    float theta8[GA_MAX_LEVELS];
    float *s, *gv;
    uint8_t *lev;
    float m, Z, cdc;
} tb_case;

static void tb_make(tarena *a, trng *rng, tb_case *k, int N, int L, ga_norm mode, int off,
                    double lo)
{
    k->N = N;
    k->L = L;
    k->mode = mode;
    k->off = off;
    test_theta(L, k->theta8, NULL);
    k->s = ar_f(a, "s", (size_t)N, off);
    k->gv = ar_f(a, "gv", (size_t)N, off);
    k->lev = ar_u8(a, "levels", (size_t)N, off);
    fill_unif(rng, k->s, (size_t)N, lo, 0);
    for (int i = 0; i < N; i++)
        if (rng_unit(rng) < 0.1 && i != 0)
            k->s[i] = -INFINITY; /* padding */
    fill_unif(rng, k->gv, (size_t)N, -1, 1);
    fill_levels(rng, k->lev, (size_t)N, L);
    k->m = row_max(k->s, N);
    /* Z of the mode and cdc = c . dc = sum_kept (p_i / Z) gv_i, in double */
    double Zall = 0, Zk = 0, num = 0;
    for (int i = 0; i < N; i++) {
        float d = k->s[i] - k->m;
        double p = exp((double)d);
        int keep = d >= k->theta8[k->lev[i]];
        Zall += p;
        if (keep) {
            Zk += p;
            num += p * k->gv[i];
        }
    }
    double Z = mode == GA_NORM_SEED ? Zall : Zk;
    k->Z = (float)Z;
    k->cdc = Z > 0 ? (float)(num / Z) : 0.0f;
}

Test(backward, threshold_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "threshold_backward");
    tc_init(&c, "threshold_backward");
    trng rng;
    rng_init(&rng, 502);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++)
        for (int il = 0; il < 4; il++)
            for (int mode = 0; mode < 2; mode++)
                for (int off = 0; off < 2; off++)
                    for (int wdpi = 0; wdpi < 2; wdpi++) {
                        int N = ns[in], L = L_LIST[il];
                        if (N > 33 && (off == 0 || !wdpi || (L != 3 && L != 8)))
                            continue;
                        int ldpi = N + (off ? 3 : 0);
                        float reg = (in & 1) ? 0.0f : 0.0125f;
                        tarena a = {0};
                        tb_case k;
                        tb_make(&a, &rng, &k, N, L, (ga_norm)mode, off, -8);
                        float *dpi0 = ar_f(&a, "dpi0", (size_t)L * ldpi + 1, 0);
                        fill_unif(&rng, dpi0, (size_t)L * ldpi + 1, -1, 1);
                        for (int l = 0; l < L; l++)
                            for (int i = N; i < ldpi; i++)
                                dpi0[(size_t)l * ldpi + i] = GAP_SENTINEL;
                        float *dsr = ar_f(&a, "ds_ref", (size_t)N, 0);
                        float *dpir = ar_copy(&a, "dpi_ref", dpi0, (size_t)L * ldpi, 0);
                        ga_ref_threshold_backward(k.s, N, k.m, k.Z, k.lev, k.theta8, L, k.mode,
                                                  k.gv, k.cdc, dsr, dpir, ldpi, reg);
                        /* magnitudes: ds_i ~ a_i (|gv_i| + |cdc|); dpi adds a_i (|gv_i|
                         * + |cdc|) + |reg| to |dpi0|.  Error sources: p_i (EXP_RTOL),
                         * the division by Z or a multiply by 1/Z (<= 2U), the
                         * subtraction, the product, the add into dpi and the
                         * reference's rounding (4U): rtol 2 EXP_RTOL + rtol_sum(4)
                         * (the exp budget is doubled in case a kernel folds ln Z
                         * into the exponent). */
                        float *dsm = ar_f(&a, "ds_mag", (size_t)N, 0);
                        float *dpim = ar_f(&a, "dpi_mag", (size_t)L * ldpi, 0);
                        for (int i = 0; i < N; i++) {
                            double ai = exp((double)(k.s[i] - k.m)) / k.Z;
                            dsm[i] = (float)(ai * (fabs(k.gv[i]) + fabs(k.cdc)));
                            for (int l = 0; l < L; l++)
                                dpim[(size_t)l * ldpi + i] =
                                    (float)(fabs(dpi0[(size_t)l * ldpi + i]) + dsm[i] +
                                            fabs(reg));
                        }
                        double rtol = 2 * EXP_RTOL + rtol_sum(4);
                        for (int vi = 0; vi < v.n; vi++) {
                            c.isa = v.k[vi]->name;
                            tc_case(&c, "N=%d L=%d mode=%s off=%d dpi=%s reg=%g", N, L,
                                    mode ? "renorm" : "seed", off, wdpi ? "yes" : "NULL",
                                    (double)reg);
                            float *ds = ar_f(&a, "ds", (size_t)N, off);
                            float *dpi = ar_copy(&a, "dpi", dpi0, (size_t)L * ldpi, off);
                            v.k[vi]->threshold_backward(k.s, N, k.m, k.Z, k.lev, k.theta8, L,
                                                        k.mode, k.gv, k.cdc, ds,
                                                        wdpi ? dpi : NULL, ldpi, reg);
                            tc_close(&c, "ds", ds, dsr, dsm, N, rtol, ATOL_TINY);
                            if (wdpi) {
                                tc_close2(&c, "dpi", dpi, ldpi, dpir, ldpi, dpim, ldpi, L, N,
                                          rtol, ATOL_TINY);
                                tc_gap_untouched(&c, "dpi", dpi, L, N, ldpi, GAP_SENTINEL);
                            }
                        }
                        ar_check(&a, &c);
                        ar_free(&a);
                    }
    tc_finish(&c);
}

/* m == -inf or Z == 0 -> ds = 0, dpi unchanged; m NaN, m == +inf (as in
 * threshold) or Z NaN -> ds = NaN.  (dpi in the NaN cases is not specified by
 * granattn.h: not checked.) */
Test(backward, threshold_special_cases, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {0, 1, 7, 8, 16, 17, 33, 100};
    static const char *const KIND[] = {"m = -inf", "Z = 0", "m NaN", "Z NaN", "m = +inf"};
    tvariants v;
    tcheck c;
    variants_get(&v, "threshold_backward special");
    tc_init(&c, "threshold_backward special");
    trng rng;
    rng_init(&rng, 503);
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int kind = 0; kind < 5; kind++)
            for (int mode = 0; mode < 2; mode++) {
                int N = NS[in], L = 3;
                tarena a = {0};
                tb_case k;
                tb_make(&a, &rng, &k, N, L, (ga_norm)mode, 1, -8);
                switch (kind) {
                case 0:
                    for (int i = 0; i < N; i++)
                        k.s[i] = -INFINITY;
                    k.m = -INFINITY;
                    break;
                case 1: k.Z = 0.0f; break;
                case 2: k.m = NAN; break;
                case 3: k.Z = NAN; break;
                case 4: k.m = INFINITY; break;
                }
                float *dpi0 = ar_f(&a, "dpi0", (size_t)L * N, 0);
                fill_unif(&rng, dpi0, (size_t)L * N, -1, 1);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "%s N=%d mode=%s", KIND[kind], N, mode ? "renorm" : "seed");
                    float *ds = ar_f(&a, "ds", (size_t)N, 1);
                    float *dpi = ar_copy(&a, "dpi", dpi0, (size_t)L * N, 1);
                    v.k[vi]->threshold_backward(k.s, N, k.m, k.Z, k.lev, k.theta8, L, k.mode,
                                                k.gv, k.cdc, ds, dpi, N, 0.01f);
                    int bad = 0;
                    for (int i = 0; i < N; i++)
                        bad += kind < 2 ? ds[i] != 0.0f : !isnan(ds[i]);
                    tc_true(&c, bad == 0, "%d of %d ds entries are not %s", bad, N,
                            kind < 2 ? "0" : "NaN");
                    if (kind < 2)
                        tc_bits(&c, "dpi unchanged", dpi, dpi0, sizeof(float) * L * N);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

Test(backward, softmax_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "softmax_backward");
    tc_init(&c, "softmax_backward");
    trng rng;
    rng_init(&rng, 504);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++)
        for (int off = 0; off < 2; off++) {
            int N = ns[in];
            if (N > 33 && off == 0)
                continue;
            tarena a = {0};
            float *s = ar_f(&a, "s", (size_t)N, 0);
            float *w = ar_f(&a, "a", (size_t)N, off);
            float *da = ar_f(&a, "da", (size_t)N, off);
            fill_unif(&rng, s, (size_t)N, -6, 0);
            fill_unif(&rng, da, (size_t)N, -1, 1);
            ga_ref_softmax(s, N, row_max(s, N), w);
            float *dsr = ar_f(&a, "ds_ref", (size_t)N, 0);
            ga_ref_softmax_backward(w, da, N, dsr);
            /* ds_i = a_i (da_i - sum_j a_j da_j): N products, the subtraction
             * and the product: rtol_sum(N + 2) of a_i (|da_i| + sum|a da|) */
            double dot = 0;
            for (int i = 0; i < N; i++)
                dot += fabs((double)w[i] * da[i]);
            float *dsm = ar_f(&a, "ds_mag", (size_t)N, 0);
            for (int i = 0; i < N; i++)
                dsm[i] = (float)(fabs((double)w[i]) * (fabs((double)da[i]) + dot));
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d off=%d", N, off);
                float *ds = ar_f(&a, "ds", (size_t)N, off);
                v.k[vi]->softmax_backward(w, da, N, ds);
                tc_close(&c, "ds", ds, dsr, dsm, N, rtol_sum(N + 2), ATOL_TINY);
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

static void pick_rows(trng *rng, int32_t *idx, int count, int nrows)
{
    int k = 0;
    for (int i = 0; i < nrows && k < count; i++)
        if (rng_unit(rng) * (nrows - i) < (count - k))
            idx[k++] = i;
}

Test(backward, sparse_context_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "sparse_context_backward");
    tc_init(&c, "sparse_context_backward");
    trng rng;
    rng_init(&rng, 505);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 4; id++)
            for (int off = 0; off < 2; off++)
                for (int which = 0; which < 3; which++) { /* both, dV only, gk only */
                    int count = ns[in], dh = DH_LIST[id];
                    if (count > 33 && (off == 0 || dh < 64 || which))
                        continue;
                    int nrows = count + count / 2 + 2;
                    tarena a = {0};
                    float *V = ar_f(&a, "V", (size_t)nrows * dh, off);
                    int32_t *idx = ar_i32(&a, "idx", (size_t)count, off);
                    float *p = ar_f(&a, "p", (size_t)count, off);
                    float *dc = ar_f(&a, "dc", (size_t)dh, off);
                    float *dV0 = ar_f(&a, "dV0", (size_t)nrows * dh, 0);
                    pick_rows(&rng, idx, count, nrows);
                    for (size_t i = 0; i < (size_t)nrows * dh; i++)
                        V[i] = NAN; /* only rows idx[k] may be read */
                    for (int k = 0; k < count; k++)
                        fill_unif(&rng, V + (size_t)idx[k] * dh, (size_t)dh, -1, 1);
                    fill_unif(&rng, p, (size_t)count, 0, 1);
                    fill_unif(&rng, dc, (size_t)dh, -1, 1);
                    fill_unif(&rng, dV0, (size_t)nrows * dh, -1, 1);
                    float scale = 0.37f;
                    float *dVr = ar_copy(&a, "dV_ref", dV0, (size_t)nrows * dh, 0);
                    float *gkr = ar_f(&a, "gk_ref", (size_t)count, 0);
                    float *dVm = ar_abs(&a, "dV_mag", dV0, (size_t)nrows * dh);
                    float *gkm = ar_f(&a, "gk_mag", (size_t)count, 0);
                    ga_ref_sparse_context_backward(V, dh, idx, p, count, scale, dc, dVr, gkr);
                    ga_ref_sparse_context_backward(ar_abs(&a, "|V|", V, (size_t)nrows * dh),
                                                   dh, idx, p, count, scale,
                                                   ar_abs(&a, "|dc|", dc, (size_t)dh), dVm,
                                                   gkm);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "count=%d dh=%d off=%d outputs=%s", count, dh, off,
                                which == 0 ? "dV+gk" : which == 1 ? "dV" : "gk");
                        float *dV = ar_copy(&a, "dV", dV0, (size_t)nrows * dh, off);
                        float *gk = ar_f(&a, "gk", (size_t)count, off);
                        v.k[vi]->sparse_context_backward(V, dh, idx, p, count, scale, dc,
                                                         which == 2 ? NULL : dV,
                                                         which == 1 ? NULL : gk);
                        /* dV: scale * p * dc + dV0: rtol_sum(3); gk: dh products */
                        if (which != 2) {
                            /* rows not gathered must be bitwise unchanged */
                            tc_close(&c, "dV", dV, dVr, dVm, nrows * dh, rtol_sum(3), ATOL_TINY);
                            int k = 0, touched = -1;
                            for (int r = 0; r < nrows; r++) {
                                if (k < count && idx[k] == r) {
                                    k++;
                                    continue;
                                }
                                if (memcmp(dV + (size_t)r * dh, dV0 + (size_t)r * dh,
                                           sizeof(float) * dh) != 0 && touched < 0)
                                    touched = r;
                            }
                            tc_true(&c, touched < 0, "dV row %d (not gathered) was modified",
                                    touched);
                        }
                        if (which != 1)
                            tc_close(&c, "gk", gk, gkr, gkm, count, rtol_sum(dh), ATOL_TINY);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    tc_finish(&c);
}

Test(backward, dense_context_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "dense_context_backward");
    tc_init(&c, "dense_context_backward");
    trng rng;
    rng_init(&rng, 506);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 4; id++)
            for (int off = 0; off < 2; off++)
                for (int which = 0; which < 3; which++) {
                    int N = ns[in], dh = DH_LIST[id];
                    if (N > 33 && (off == 0 || dh < 64 || which))
                        continue;
                    tarena a = {0};
                    float *V = ar_f(&a, "V", (size_t)N * dh, off);
                    float *w = ar_f(&a, "a", (size_t)N, off);
                    float *dc = ar_f(&a, "dc", (size_t)dh, off);
                    float *dV0 = ar_f(&a, "dV0", (size_t)N * dh, 0);
                    fill_unif(&rng, V, (size_t)N * dh, -1, 1);
                    fill_unif(&rng, w, (size_t)N, -1, 1);
                    fill_unif(&rng, dc, (size_t)dh, -1, 1);
                    fill_unif(&rng, dV0, (size_t)N * dh, -1, 1);
                    float *dVr = ar_copy(&a, "dV_ref", dV0, (size_t)N * dh, 0);
                    float *gar = ar_f(&a, "ga_ref", (size_t)N, 0);
                    float *dVm = ar_abs(&a, "dV_mag", dV0, (size_t)N * dh);
                    float *gam = ar_f(&a, "ga_mag", (size_t)N, 0);
                    ga_ref_dense_context_backward(V, N, dh, w, dc, dVr, gar);
                    ga_ref_dense_context_backward(ar_abs(&a, "|V|", V, (size_t)N * dh), N, dh,
                                                  ar_abs(&a, "|a|", w, (size_t)N),
                                                  ar_abs(&a, "|dc|", dc, (size_t)dh), dVm, gam);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d dh=%d off=%d outputs=%s", N, dh, off,
                                which == 0 ? "dV+ga" : which == 1 ? "dV" : "ga");
                        float *dV = ar_copy(&a, "dV", dV0, (size_t)N * dh, off);
                        float *ga = ar_f(&a, "ga", (size_t)N, off);
                        v.k[vi]->dense_context_backward(V, N, dh, w, dc, which == 2 ? NULL : dV,
                                                        which == 1 ? NULL : ga);
                        /* dV: a * dc + dV0 (one product, one add): rtol_sum(2);
                         * ga: dh products: rtol_sum(dh) */
                        if (which != 2)
                            tc_close(&c, "dV", dV, dVr, dVm, N * dh, rtol_sum(2), ATOL_TINY);
                        if (which != 1)
                            tc_close(&c, "ga", ga, gar, gam, N, rtol_sum(dh), ATOL_TINY);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    tc_finish(&c);
}

/* Inputs of gpn_backward: P [g][ldp] (gap NaN), r, W2, pi and dpi [L][ldpi]
 * (gap NaN), pi from the reference forward. */
typedef struct gb_case {
    int N, g, L, ldp, ldpi, off;
    float *P, *r, *W2, *b2, *pi, *dpi;
} gb_case;

static void gb_make(tarena *a, trng *rng, gb_case *k, int N, int g, int L, int off, int kink_free)
{
    k->N = N;
    k->g = g;
    k->L = L;
    k->off = off;
    k->ldp = N + (off ? 2 : 0);
    k->ldpi = N + (off ? 1 : 0);
    k->P = ar_f(a, "P", (size_t)g * k->ldp, off);
    k->r = ar_f(a, "r", (size_t)g, off);
    k->W2 = ar_f(a, "W2", (size_t)L * g, off);
    k->b2 = ar_f(a, "b2", (size_t)L, off);
    k->pi = ar_f(a, "pi", (size_t)L * k->ldpi, off);
    k->dpi = ar_f(a, "dpi", (size_t)L * k->ldpi, off);
    fill_unif(rng, k->r, (size_t)g, -0.5, 0.5);
    for (int j = 0; j < g; j++)
        for (int i = 0; i < k->ldp; i++) {
            float *x = &k->P[(size_t)j * k->ldp + i];
            if (i >= N)
                *x = NAN;
            else if (kink_free) /* |P + r| >= 0.05: FD steps never cross the relu kink */
                *x = (float)(-(double)k->r[j] +
                             (rng_unit(rng) < 0.5 ? -1 : 1) * rng_range(rng, 0.05, 1.0));
            else
                *x = (float)rng_range(rng, -1, 1);
        }
    fill_unif(rng, k->W2, (size_t)L * g, -1, 1);
    fill_unif(rng, k->b2, (size_t)L, -0.5, 0.5);
    for (size_t i = 0; i < (size_t)L * k->ldpi; i++)
        k->pi[i] = k->dpi[i] = NAN;
    uint8_t *lev = ar_u8(a, "levels", (size_t)N, 0);
    ga_ref_gpn_probs(k->P, k->ldp, k->r, k->W2, k->b2, N, g, L, k->pi, k->ldpi, lev);
    for (int l = 0; l < L; l++)
        fill_unif(rng, k->dpi + (size_t)l * k->ldpi, (size_t)N, -1, 1);
}

Test(backward, gpn_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn_backward");
    tc_init(&c, "gpn_backward");
    trng rng;
    rng_init(&rng, 507);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++)
        for (int ig = 0; ig < 3; ig++)
            for (int il = 0; il < 4; il++)
                for (int off = 0; off < 2; off++) {
                    int N = ns[in], g = G_LIST[ig], L = L_LIST[il];
                    if (N > 33 && (off == 0 || g != 16 || (L != 3 && L != 8)))
                        continue;
                    if (N > 1001 && L != 3)
                        continue;
                    tarena a = {0};
                    gb_case k;
                    gb_make(&a, &rng, &k, N, g, L, off, 0);
                    int lddp = N + (off ? 3 : 0);
                    float *dr0 = ar_f(&a, "dr0", (size_t)g, 0);
                    float *dW20 = ar_f(&a, "dW20", (size_t)L * g, 0);
                    float *db20 = ar_f(&a, "db20", (size_t)L, 0);
                    fill_unif(&rng, dr0, (size_t)g, -1, 1);
                    fill_unif(&rng, dW20, (size_t)L * g, -1, 1);
                    fill_unif(&rng, db20, (size_t)L, -1, 1);
                    float *dPr = ar_f(&a, "dP_ref", (size_t)g * lddp, 0);
                    float *drr = ar_copy(&a, "dr_ref", dr0, (size_t)g, 0);
                    float *dW2r = ar_copy(&a, "dW2_ref", dW20, (size_t)L * g, 0);
                    float *db2r = ar_copy(&a, "db2_ref", db20, (size_t)L, 0);
                    ga_ref_gpn_backward(k.P, k.ldp, k.r, k.W2, N, g, L, k.pi, k.dpi, k.ldpi, dPr,
                                        lddp, drr, dW2r, db2r);
                    /* magnitudes (double): dzm_l = pi_l (|dpi_l| + sum_k pi_k |dpi_k|),
                     * dum_j = mask_j sum_l |W2_lj| dzm_l.  dz has L products, a
                     * subtraction and a product ((L + 3) U); du adds L more products:
                     * dP within rtol_sum(2L + 2) of dum; dr, dW2, db2 add the N-term
                     * sum over keys: rtol_sum(N + 2L + 4). */
                    float *dPm = ar_f(&a, "dP_mag", (size_t)g * lddp, 0);
                    double *drm = ar_d(&a, "dr_mag", (size_t)g);
                    double *dW2m = ar_d(&a, "dW2_mag", (size_t)L * g);
                    double *db2m = ar_d(&a, "db2_mag", (size_t)L);
                    for (int j = 0; j < g; j++)
                        drm[j] = fabs(dr0[j]);
                    for (int l = 0; l < L; l++) {
                        db2m[l] = fabs(db20[l]);
                        for (int j = 0; j < g; j++)
                            dW2m[l * g + j] = fabs(dW20[l * g + j]);
                    }
                    for (int i = 0; i < N; i++) {
                        double dot = 0, dzm[GA_MAX_LEVELS];
                        for (int l = 0; l < L; l++)
                            dot += fabs((double)k.pi[(size_t)l * k.ldpi + i] *
                                        k.dpi[(size_t)l * k.ldpi + i]);
                        for (int l = 0; l < L; l++) {
                            dzm[l] = k.pi[(size_t)l * k.ldpi + i] *
                                     (fabs((double)k.dpi[(size_t)l * k.ldpi + i]) + dot);
                            db2m[l] += dzm[l];
                        }
                        for (int j = 0; j < g; j++) {
                            float pre = k.P[(size_t)j * k.ldp + i] + k.r[j];
                            double u = pre > 0 ? pre : 0;
                            double dum = 0;
                            for (int l = 0; l < L; l++) {
                                if (pre > 0)
                                    dum += fabs((double)k.W2[l * g + j]) * dzm[l];
                                dW2m[l * g + j] += dzm[l] * u;
                            }
                            dPm[(size_t)j * lddp + i] = (float)dum;
                            drm[j] += dum;
                        }
                    }
                    float *drmf = ar_f(&a, "dr_magf", (size_t)g, 0);
                    float *dW2mf = ar_f(&a, "dW2_magf", (size_t)L * g, 0);
                    float *db2mf = ar_f(&a, "db2_magf", (size_t)L, 0);
                    for (int j = 0; j < g; j++)
                        drmf[j] = (float)drm[j];
                    for (int l = 0; l < L * g; l++)
                        dW2mf[l] = (float)dW2m[l];
                    for (int l = 0; l < L; l++)
                        db2mf[l] = (float)db2m[l];
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d g=%d L=%d off=%d", N, g, L, off);
                        float *dP = ar_f(&a, "dP", (size_t)g * lddp, off);
                        for (size_t i = 0; i < (size_t)g * lddp; i++)
                            dP[i] = GAP_SENTINEL;
                        float *dr = ar_copy(&a, "dr", dr0, (size_t)g, off);
                        float *dW2 = ar_copy(&a, "dW2", dW20, (size_t)L * g, off);
                        float *db2 = ar_copy(&a, "db2", db20, (size_t)L, off);
                        v.k[vi]->gpn_backward(k.P, k.ldp, k.r, k.W2, N, g, L, k.pi, k.dpi,
                                              k.ldpi, dP, lddp, dr, dW2, db2);
                        tc_close2(&c, "dP", dP, lddp, dPr, lddp, dPm, lddp, g, N,
                                  rtol_sum(2 * L + 2), ATOL_TINY);
                        tc_gap_untouched(&c, "dP", dP, g, N, lddp, GAP_SENTINEL);
                        tc_close(&c, "dr", dr, drr, drmf, g, rtol_sum(N + 2 * L + 4), ATOL_TINY);
                        tc_close(&c, "dW2", dW2, dW2r, dW2mf, L * g, rtol_sum(N + 2 * L + 4),
                                 ATOL_TINY);
                        tc_close(&c, "db2", db2, db2r, db2mf, L, rtol_sum(N + 2 * L + 4),
                                 ATOL_TINY);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    tc_finish(&c);
}

Test(backward, gpn_project_keys_vs_ref, .timeout = TEST_TIMEOUT)
{
    static const int D_LIST[] = {1, 3, 64};
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn_project_keys_backward");
    tc_init(&c, "gpn_project_keys_backward");
    trng rng;
    rng_init(&rng, 508);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++)
        for (int id = 0; id < 3; id++)
            for (int ig = 0; ig < 3; ig++)
                for (int which = 0; which < 4; which++) { /* all, dU, db1, dE */
                    int N = ns[in], d = D_LIST[id], g = G_LIST[ig], off = (N + which) & 1;
                    if (N > 33 && (d == 1 || g == 1 || which))
                        continue;
                    if (N > 1001 && d == 3)
                        continue;
                    int lddp = N + (off ? 2 : 0);
                    tarena a = {0};
                    float *E = ar_f(&a, "E", (size_t)N * d, off);
                    float *U = ar_f(&a, "U", (size_t)g * d, off);
                    float *dP = ar_f(&a, "dP", (size_t)g * lddp, off);
                    float *dU0 = ar_f(&a, "dU0", (size_t)g * d, 0);
                    float *db10 = ar_f(&a, "db10", (size_t)g, 0);
                    float *dE0 = ar_f(&a, "dE0", (size_t)N * d, 0);
                    fill_unif(&rng, E, (size_t)N * d, -1, 1);
                    fill_unif(&rng, U, (size_t)g * d, -1, 1);
                    for (int j = 0; j < g; j++)
                        for (int i = 0; i < lddp; i++)
                            dP[(size_t)j * lddp + i] = i < N ? (float)rng_range(&rng, -1, 1) : NAN;
                    fill_unif(&rng, dU0, (size_t)g * d, -1, 1);
                    fill_unif(&rng, db10, (size_t)g, -1, 1);
                    fill_unif(&rng, dE0, (size_t)N * d, -1, 1);
                    float *dUr = ar_copy(&a, "dU_ref", dU0, (size_t)g * d, 0);
                    float *db1r = ar_copy(&a, "db1_ref", db10, (size_t)g, 0);
                    float *dEr = ar_copy(&a, "dE_ref", dE0, (size_t)N * d, 0);
                    ga_ref_gpn_project_keys_backward(E, N, d, U, g, dP, lddp, dUr, db1r, dEr);
                    float *dUm = ar_abs(&a, "dU_mag", dU0, (size_t)g * d);
                    float *db1m = ar_abs(&a, "db1_mag", db10, (size_t)g);
                    float *dEm = ar_abs(&a, "dE_mag", dE0, (size_t)N * d);
                    float *dPa = ar_f(&a, "|dP|", (size_t)g * lddp, 0);
                    for (size_t i = 0; i < (size_t)g * lddp; i++)
                        dPa[i] = fabsf(dP[i]);
                    ga_ref_gpn_project_keys_backward(ar_abs(&a, "|E|", E, (size_t)N * d), N, d,
                                                     ar_abs(&a, "|U|", U, (size_t)g * d), g, dPa,
                                                     lddp, dUm, db1m, dEm);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d d=%d g=%d lddp=%d outputs=%s", N, d, g, lddp,
                                which == 0 ? "all" : which == 1 ? "dU" : which == 2 ? "db1" : "dE");
                        float *dU = ar_copy(&a, "dU", dU0, (size_t)g * d, off);
                        float *db1 = ar_copy(&a, "db1", db10, (size_t)g, off);
                        float *dE = ar_copy(&a, "dE", dE0, (size_t)N * d, off);
                        v.k[vi]->gpn_project_keys_backward(
                            E, N, d, U, g, dP, lddp, (which == 0 || which == 1) ? dU : NULL,
                            (which == 0 || which == 2) ? db1 : NULL,
                            (which == 0 || which == 3) ? dE : NULL);
                        /* dU, db1: sums over N keys (+ the accumulator):
                         * rtol_sum(N + 1); dE: sums over g units: rtol_sum(g + 1) */
                        if (which == 0 || which == 1)
                            tc_close(&c, "dU", dU, dUr, dUm, g * d, rtol_sum(N + 1), ATOL_TINY);
                        if (which == 0 || which == 2)
                            tc_close(&c, "db1", db1, db1r, db1m, g, rtol_sum(N + 1), ATOL_TINY);
                        if (which == 0 || which == 3)
                            tc_close(&c, "dE", dE, dEr, dEm, N * d, rtol_sum(g + 1), ATOL_TINY);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    tc_finish(&c);
}

Test(backward, gpn_project_query_vs_ref, .timeout = TEST_TIMEOUT)
{
    static const int D_LIST[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 256, 1001};
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn_project_query_backward");
    tc_init(&c, "gpn_project_query_backward");
    trng rng;
    rng_init(&rng, 509);
    for (size_t id = 0; id < sizeof D_LIST / sizeof D_LIST[0]; id++)
        for (int ig = 0; ig < 3; ig++)
            for (int which = 0; which < 3; which++) { /* both, dW, dx */
                int d = D_LIST[id], g = G_LIST[ig], off = (int)((id + which) & 1);
                tarena a = {0};
                float *x = ar_f(&a, "x", (size_t)d, off);
                float *W = ar_f(&a, "W", (size_t)g * d, off);
                float *dr = ar_f(&a, "dr", (size_t)g, off);
                float *dW0 = ar_f(&a, "dW0", (size_t)g * d, 0);
                float *dx0 = ar_f(&a, "dx0", (size_t)d, 0);
                fill_unif(&rng, x, (size_t)d, -1, 1);
                fill_unif(&rng, W, (size_t)g * d, -1, 1);
                fill_unif(&rng, dr, (size_t)g, -1, 1);
                fill_unif(&rng, dW0, (size_t)g * d, -1, 1);
                fill_unif(&rng, dx0, (size_t)d, -1, 1);
                float *dWr = ar_copy(&a, "dW_ref", dW0, (size_t)g * d, 0);
                float *dxr = ar_copy(&a, "dx_ref", dx0, (size_t)d, 0);
                ga_ref_gpn_project_query_backward(x, d, W, g, dr, dWr, dxr);
                float *dWm = ar_abs(&a, "dW_mag", dW0, (size_t)g * d);
                float *dxm = ar_abs(&a, "dx_mag", dx0, (size_t)d);
                ga_ref_gpn_project_query_backward(ar_abs(&a, "|x|", x, (size_t)d), d,
                                                  ar_abs(&a, "|W|", W, (size_t)g * d), g,
                                                  ar_abs(&a, "|dr|", dr, (size_t)g), dWm, dxm);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "d=%d g=%d off=%d outputs=%s", d, g, off,
                            which == 0 ? "dW+dx" : which == 1 ? "dW" : "dx");
                    float *dW = ar_copy(&a, "dW", dW0, (size_t)g * d, off);
                    float *dx = ar_copy(&a, "dx", dx0, (size_t)d, off);
                    v.k[vi]->gpn_project_query_backward(x, d, W, g, dr, which == 2 ? NULL : dW,
                                                        which == 1 ? NULL : dx);
                    /* dW: dr x + dW0: rtol_sum(2); dx: g products + dx0 */
                    if (which != 2)
                        tc_close(&c, "dW", dW, dWr, dWm, g * d, rtol_sum(2), ATOL_TINY);
                    if (which != 1)
                        tc_close(&c, "dx", dx, dxr, dxm, d, rtol_sum(g + 1), ATOL_TINY);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* ================================================ part B: finite differences */

typedef double (*loss_fn)(const void *ctx);

/* Central differences of f w.r.t. x[0..n) (x is modified and restored).
 * Entries that are infinite (padding) have no derivative: reported as 0. */
static void fd_grad(loss_fn f, const void *ctx, double *x, int n, double *g)
{
    for (int i = 0; i < n; i++) {
        double x0 = x[i];
        if (!isfinite(x0)) {
            g[i] = 0.0;
            continue;
        }
        double h = FD_H * fmax(1.0, fabs(x0));
        double xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double fp = f(ctx);
        x[i] = xm;
        double fm = f(ctx);
        x[i] = x0;
        g[i] = (fp - fm) / (xp - xm);
    }
}

static double max_abs(const double *x, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* FD comparison: |got - fd| <= FD_RTOL (|fd_i| + max |fd|) (see util.h) */
static void fd_check(tcheck *c, const char *what, const float *got, const double *fd, int n)
{
    tc_close_d(c, what, got, fd, n, FD_RTOL, max_abs(fd, n));
}

/* ---- scores: loss = sum_i ds_i * scale * (q . K_i) ---- */
typedef struct {
    int N, dh;
    double scale, *q, *K, *ds;
} fd_scores_ctx;

static double fd_scores_loss(const void *p)
{
    const fd_scores_ctx *x = p;
    double loss = 0;
    for (int i = 0; i < x->N; i++) {
        double dot = 0;
        for (int j = 0; j < x->dh; j++)
            dot += x->q[j] * x->K[(size_t)i * x->dh + j];
        loss += x->ds[i] * x->scale * dot;
    }
    return loss;
}

Test(backward_fd, scores, .timeout = TEST_TIMEOUT)
{
    static const int SZ[][2] = {{1, 1}, {5, 3}, {17, 8}, {33, 5}, {9, 64}};
    tvariants v;
    tcheck c;
    variants_get(&v, "scores_backward fd");
    tc_init(&c, "scores_backward FD");
    trng rng;
    rng_init(&rng, 551);
    for (size_t z = 0; z < sizeof SZ / sizeof SZ[0]; z++) {
        int N = SZ[z][0], dh = SZ[z][1];
        tarena a = {0};
        float *K = ar_f(&a, "K", (size_t)N * dh, 1), *q = ar_f(&a, "q", (size_t)dh, 1);
        float *ds = ar_f(&a, "ds", (size_t)N, 1);
        fill_unif(&rng, K, (size_t)N * dh, -1, 1);
        fill_unif(&rng, q, (size_t)dh, -1, 1);
        fill_unif(&rng, ds, (size_t)N, -1, 1);
        float scale = 1.0f / sqrtf((float)dh);
        fd_scores_ctx x = {N, dh, scale, to_d(&a, "qd", q, (size_t)dh),
                           to_d(&a, "Kd", K, (size_t)N * dh), to_d(&a, "dsd", ds, (size_t)N)};
        double *gq = ar_d(&a, "gq", (size_t)dh), *gK = ar_d(&a, "gK", (size_t)N * dh);
        fd_grad(fd_scores_loss, &x, x.q, dh, gq);
        fd_grad(fd_scores_loss, &x, x.K, N * dh, gK);
        for (int vi = 0; vi < v.n; vi++) {
            c.isa = v.k[vi]->name;
            tc_case(&c, "N=%d dh=%d", N, dh);
            float *dq = ar_f(&a, "dq", (size_t)dh, 1), *dK = ar_f(&a, "dK", (size_t)N * dh, 1);
            memset(dq, 0, sizeof(float) * dh);
            memset(dK, 0, sizeof(float) * N * dh);
            v.k[vi]->scores_backward(K, N, dh, q, scale, ds, dq, dK);
            fd_check(&c, "dq", dq, gq, dh);
            fd_check(&c, "dK", dK, gK, N * dh);
        }
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* ---- threshold: loss(s, pi) = sum_i k_i w_i(s) gv_i + reg sum_i k_i with
 * k_i = sum_l pi_li kappa_il (kappa frozen at the forward decisions) and
 * w_i = p_i / sum_all p (seed) or p_i / sum_j k_j p_j (renorm).  At pi =
 * one-hot(levels) this is c(s) . dc plus the regulariser. ---- */
typedef struct {
    int N, L;
    ga_norm mode;
    double reg;
    double *s, *pi, *gv;
    const uint8_t *kappa; /* [L][N] */
} fd_thr_ctx;

static double fd_thr_loss(const void *p)
{
    const fd_thr_ctx *x = p;
    double m = -INFINITY;
    for (int i = 0; i < x->N; i++)
        m = fmax(m, x->s[i]);
    double Zall = 0, Zk = 0, num = 0, ksum = 0;
    for (int i = 0; i < x->N; i++) {
        double e = exp(x->s[i] - m), k = 0;
        for (int l = 0; l < x->L; l++)
            k += x->pi[(size_t)l * x->N + i] * x->kappa[(size_t)l * x->N + i];
        Zall += e;
        Zk += k * e;
        num += k * e * x->gv[i];
        ksum += k;
    }
    double Z = x->mode == GA_NORM_SEED ? Zall : Zk;
    return num / Z + x->reg * ksum;
}

Test(backward_fd, threshold, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 6, 17, 40};
    tvariants v;
    tcheck c;
    variants_get(&v, "threshold_backward fd");
    tc_init(&c, "threshold_backward FD");
    trng rng;
    rng_init(&rng, 552);
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int il = 0; il < 4; il++)
            for (int mode = 0; mode < 2; mode++)
                for (int ir = 0; ir < 2; ir++) {
                    int N = NS[in], L = L_LIST[il];
                    float reg = ir ? 0.05f : 0.0f;
                    tarena a = {0};
                    tb_case k;
                    tb_make(&a, &rng, &k, N, L, (ga_norm)mode, 1, -6);
                    if (k.Z == 0.0f) { /* renorm with nothing kept: keep the max */
                        ar_free(&a);
                        continue;
                    }
                    uint8_t *kappa = ar_u8(&a, "kappa", (size_t)L * N, 0);
                    double *pid = ar_d(&a, "pi", (size_t)L * N);
                    for (int l = 0; l < L; l++)
                        for (int i = 0; i < N; i++) {
                            kappa[(size_t)l * N + i] = (k.s[i] - k.m) >= k.theta8[l];
                            pid[(size_t)l * N + i] = k.lev[i] == l;
                        }
                    fd_thr_ctx x = {N, L, (ga_norm)mode, reg, to_d(&a, "sd", k.s, (size_t)N), pid,
                                    to_d(&a, "gvd", k.gv, (size_t)N), kappa};
                    double *gs = ar_d(&a, "gs", (size_t)N), *gpi = ar_d(&a, "gpi", (size_t)L * N);
                    fd_grad(fd_thr_loss, &x, x.s, N, gs);
                    fd_grad(fd_thr_loss, &x, x.pi, L * N, gpi);
                    /* the closed formula: dpi[l][i] += (G_i + reg) kappa_il, with
                     * G_i = a_i gv_i (seed) or a_i (gv_i - cdc) (renorm) */
                    float *dpi0 = ar_f(&a, "dpi0", (size_t)L * N, 0);
                    fill_unif(&rng, dpi0, (size_t)L * N, -1, 1);
                    float *dpie = ar_f(&a, "dpi_expected", (size_t)L * N, 0);
                    float *dpim = ar_f(&a, "dpi_mag", (size_t)L * N, 0);
                    for (int i = 0; i < N; i++) {
                        double ai = exp((double)(k.s[i] - k.m)) / k.Z;
                        double G = mode == GA_NORM_SEED ? ai * k.gv[i]
                                                        : ai * ((double)k.gv[i] - k.cdc);
                        for (int l = 0; l < L; l++) {
                            size_t e = (size_t)l * N + i;
                            dpie[e] = (float)(dpi0[e] + (kappa[e] ? G + reg : 0.0));
                            dpim[e] = (float)(fabs(dpi0[e]) +
                                              ai * (fabs(k.gv[i]) + fabs(k.cdc)) + fabs(reg));
                        }
                    }
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d L=%d mode=%s reg=%g", N, L, mode ? "renorm" : "seed",
                                (double)reg);
                        float *ds = ar_f(&a, "ds", (size_t)N, 1);
                        float *dpi = ar_f(&a, "dpi", (size_t)L * N, 1);
                        memset(dpi, 0, sizeof(float) * L * N);
                        v.k[vi]->threshold_backward(k.s, N, k.m, k.Z, k.lev, k.theta8, L, k.mode,
                                                    k.gv, k.cdc, ds, dpi, N, reg);
                        fd_check(&c, "ds vs FD", ds, gs, N);
                        fd_check(&c, "dpi vs FD (straight-through + reg)", dpi, gpi, L * N);
                        float *dpi2 = ar_copy(&a, "dpi2", dpi0, (size_t)L * N, 1);
                        v.k[vi]->threshold_backward(k.s, N, k.m, k.Z, k.lev, k.theta8, L, k.mode,
                                                    k.gv, k.cdc, ds, dpi2, N, reg);
                        /* tolerance as in threshold_vs_ref */
                        tc_close(&c, "dpi vs formula (G + reg) kappa, accumulated", dpi2, dpie,
                                 dpim, L * N, 2 * EXP_RTOL + rtol_sum(4), ATOL_TINY);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    tc_finish(&c);
}

/* ---- softmax: loss = sum_i da_i softmax(x)_i ---- */
typedef struct {
    int N;
    double *x, *da;
} fd_sm_ctx;

static double fd_sm_loss(const void *p)
{
    const fd_sm_ctx *x = p;
    double m = -INFINITY, Z = 0, num = 0;
    for (int i = 0; i < x->N; i++)
        m = fmax(m, x->x[i]);
    for (int i = 0; i < x->N; i++) {
        double e = exp(x->x[i] - m);
        Z += e;
        num += e * x->da[i];
    }
    return num / Z;
}

Test(backward_fd, softmax, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 5, 17, 40};
    tvariants v;
    tcheck c;
    variants_get(&v, "softmax_backward fd");
    tc_init(&c, "softmax_backward FD");
    trng rng;
    rng_init(&rng, 553);
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++) {
        int N = NS[in];
        tarena a = {0};
        float *s = ar_f(&a, "s", (size_t)N, 0), *da = ar_f(&a, "da", (size_t)N, 1);
        fill_unif(&rng, s, (size_t)N, -4, 1);
        fill_unif(&rng, da, (size_t)N, -1, 1);
        fd_sm_ctx x = {N, to_d(&a, "xd", s, (size_t)N), to_d(&a, "dad", da, (size_t)N)};
        /* the forward weights, from the double softmax, rounded once */
        float *w = ar_f(&a, "a", (size_t)N, 1);
        double m = -INFINITY, Z = 0;
        for (int i = 0; i < N; i++)
            m = fmax(m, x.x[i]);
        for (int i = 0; i < N; i++)
            Z += exp(x.x[i] - m);
        for (int i = 0; i < N; i++)
            w[i] = (float)(exp(x.x[i] - m) / Z);
        double *gx = ar_d(&a, "gx", (size_t)N);
        fd_grad(fd_sm_loss, &x, x.x, N, gx);
        for (int vi = 0; vi < v.n; vi++) {
            c.isa = v.k[vi]->name;
            tc_case(&c, "N=%d", N);
            float *ds = ar_f(&a, "ds", (size_t)N, 1);
            v.k[vi]->softmax_backward(w, da, N, ds);
            fd_check(&c, "ds", ds, gx, N);
        }
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* ---- sparse context: loss = dc . (scale sum_k p_k V[idx_k]) ---- */
typedef struct {
    int dh, count;
    const int32_t *idx;
    double scale, *V, *p, *dc;
} fd_sc_ctx;

static double fd_sc_loss(const void *p)
{
    const fd_sc_ctx *x = p;
    double loss = 0;
    for (int k = 0; k < x->count; k++)
        for (int j = 0; j < x->dh; j++)
            loss += x->dc[j] * x->scale * x->p[k] * x->V[(size_t)x->idx[k] * x->dh + j];
    return loss;
}

Test(backward_fd, sparse_context, .timeout = TEST_TIMEOUT)
{
    static const int SZ[][2] = {{1, 1}, {3, 5}, {9, 8}, {17, 3}, {4, 64}};
    tvariants v;
    tcheck c;
    variants_get(&v, "sparse_context_backward fd");
    tc_init(&c, "sparse_context_backward FD");
    trng rng;
    rng_init(&rng, 554);
    for (size_t z = 0; z < sizeof SZ / sizeof SZ[0]; z++) {
        int count = SZ[z][0], dh = SZ[z][1], nrows = count + count / 2 + 2;
        tarena a = {0};
        float *V = ar_f(&a, "V", (size_t)nrows * dh, 1), *p = ar_f(&a, "p", (size_t)count, 1);
        float *dc = ar_f(&a, "dc", (size_t)dh, 1);
        int32_t *idx = ar_i32(&a, "idx", (size_t)count, 1);
        pick_rows(&rng, idx, count, nrows);
        fill_unif(&rng, V, (size_t)nrows * dh, -1, 1);
        fill_unif(&rng, p, (size_t)count, 0, 1);
        fill_unif(&rng, dc, (size_t)dh, -1, 1);
        float scale = 0.61f;
        fd_sc_ctx x = {dh, count, idx, scale, to_d(&a, "Vd", V, (size_t)nrows * dh),
                       to_d(&a, "pd", p, (size_t)count), to_d(&a, "dcd", dc, (size_t)dh)};
        double *gV = ar_d(&a, "gV", (size_t)nrows * dh), *gp = ar_d(&a, "gp", (size_t)count);
        fd_grad(fd_sc_loss, &x, x.V, nrows * dh, gV);
        fd_grad(fd_sc_loss, &x, x.p, count, gp);
        for (int k = 0; k < count; k++)
            gp[k] /= scale; /* gk = V[idx_k] . dc = (d loss / d p_k) / scale */
        for (int vi = 0; vi < v.n; vi++) {
            c.isa = v.k[vi]->name;
            tc_case(&c, "count=%d dh=%d", count, dh);
            float *dV = ar_f(&a, "dV", (size_t)nrows * dh, 1), *gk = ar_f(&a, "gk", (size_t)count, 1);
            memset(dV, 0, sizeof(float) * nrows * dh);
            v.k[vi]->sparse_context_backward(V, dh, idx, p, count, scale, dc, dV, gk);
            fd_check(&c, "dV (all rows)", dV, gV, nrows * dh);
            fd_check(&c, "gk", gk, gp, count);
        }
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* ---- dense context: loss = dc . sum_i a_i V_i ---- */
typedef struct {
    int N, dh;
    double *V, *a, *dc;
} fd_dc_ctx;

static double fd_dc_loss(const void *p)
{
    const fd_dc_ctx *x = p;
    double loss = 0;
    for (int i = 0; i < x->N; i++)
        for (int j = 0; j < x->dh; j++)
            loss += x->dc[j] * x->a[i] * x->V[(size_t)i * x->dh + j];
    return loss;
}

Test(backward_fd, dense_context, .timeout = TEST_TIMEOUT)
{
    static const int SZ[][2] = {{1, 1}, {5, 3}, {17, 8}, {33, 2}, {3, 64}};
    tvariants v;
    tcheck c;
    variants_get(&v, "dense_context_backward fd");
    tc_init(&c, "dense_context_backward FD");
    trng rng;
    rng_init(&rng, 555);
    for (size_t z = 0; z < sizeof SZ / sizeof SZ[0]; z++) {
        int N = SZ[z][0], dh = SZ[z][1];
        tarena a = {0};
        float *V = ar_f(&a, "V", (size_t)N * dh, 1), *w = ar_f(&a, "a", (size_t)N, 1);
        float *dc = ar_f(&a, "dc", (size_t)dh, 1);
        fill_unif(&rng, V, (size_t)N * dh, -1, 1);
        fill_unif(&rng, w, (size_t)N, 0, 1);
        fill_unif(&rng, dc, (size_t)dh, -1, 1);
        fd_dc_ctx x = {N, dh, to_d(&a, "Vd", V, (size_t)N * dh), to_d(&a, "ad", w, (size_t)N),
                       to_d(&a, "dcd", dc, (size_t)dh)};
        double *gV = ar_d(&a, "gV", (size_t)N * dh), *ga_ = ar_d(&a, "ga", (size_t)N);
        fd_grad(fd_dc_loss, &x, x.V, N * dh, gV);
        fd_grad(fd_dc_loss, &x, x.a, N, ga_);
        for (int vi = 0; vi < v.n; vi++) {
            c.isa = v.k[vi]->name;
            tc_case(&c, "N=%d dh=%d", N, dh);
            float *dV = ar_f(&a, "dV", (size_t)N * dh, 1), *gav = ar_f(&a, "ga_out", (size_t)N, 1);
            memset(dV, 0, sizeof(float) * N * dh);
            v.k[vi]->dense_context_backward(V, N, dh, w, dc, dV, gav);
            fd_check(&c, "dV", dV, gV, N * dh);
            fd_check(&c, "ga", gav, ga_, N);
        }
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* ---- GPN head: loss = sum_{l,i} dpi_li softmax_l(W2 relu(P_i + r) + b2) ---- */
typedef struct {
    int N, g, L;
    double *P, *r, *W2, *b2, *dpi; /* P [g][N], dpi [L][N] */
} fd_gpn_ctx;

static double fd_gpn_loss(const void *p)
{
    const fd_gpn_ctx *x = p;
    double loss = 0;
    for (int i = 0; i < x->N; i++) {
        double z[GA_MAX_LEVELS], zmax = -INFINITY, Z = 0;
        for (int l = 0; l < x->L; l++) {
            z[l] = x->b2[l];
            for (int j = 0; j < x->g; j++)
                z[l] += x->W2[l * x->g + j] * fmax(0.0, x->P[(size_t)j * x->N + i] + x->r[j]);
            zmax = fmax(zmax, z[l]);
        }
        for (int l = 0; l < x->L; l++)
            Z += exp(z[l] - zmax);
        for (int l = 0; l < x->L; l++)
            loss += x->dpi[(size_t)l * x->N + i] * exp(z[l] - zmax) / Z;
    }
    return loss;
}

Test(backward_fd, gpn, .timeout = TEST_TIMEOUT)
{
    static const int SZ[][3] = {{1, 1, 2}, {5, 5, 3}, {17, 5, 8}, {9, 16, 3}, {3, 3, 1}};
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn_backward fd");
    tc_init(&c, "gpn_backward FD");
    trng rng;
    rng_init(&rng, 556);
    for (size_t z = 0; z < sizeof SZ / sizeof SZ[0]; z++) {
        int N = SZ[z][0], g = SZ[z][1], L = SZ[z][2];
        tarena a = {0};
        gb_case k;
        gb_make(&a, &rng, &k, N, g, L, 0, 1); /* off 0: ldp = ldpi = N */
        fd_gpn_ctx x = {N, g, L, to_d(&a, "Pd", k.P, (size_t)g * N), to_d(&a, "rd", k.r, (size_t)g),
                        to_d(&a, "W2d", k.W2, (size_t)L * g), to_d(&a, "b2d", k.b2, (size_t)L),
                        to_d(&a, "dpid", k.dpi, (size_t)L * N)};
        /* the kernel gets pi from the double forward, rounded once */
        for (int i = 0; i < N; i++) {
            double zz[GA_MAX_LEVELS], zmax = -INFINITY, Z = 0;
            for (int l = 0; l < L; l++) {
                zz[l] = x.b2[l];
                for (int j = 0; j < g; j++)
                    zz[l] += x.W2[l * g + j] * fmax(0.0, x.P[(size_t)j * N + i] + x.r[j]);
                zmax = fmax(zmax, zz[l]);
            }
            for (int l = 0; l < L; l++)
                Z += exp(zz[l] - zmax);
            for (int l = 0; l < L; l++)
                k.pi[(size_t)l * N + i] = (float)(exp(zz[l] - zmax) / Z);
        }
        double *gP = ar_d(&a, "gP", (size_t)g * N), *gr = ar_d(&a, "gr", (size_t)g);
        double *gW2 = ar_d(&a, "gW2", (size_t)L * g), *gb2 = ar_d(&a, "gb2", (size_t)L);
        fd_grad(fd_gpn_loss, &x, x.P, g * N, gP);
        fd_grad(fd_gpn_loss, &x, x.r, g, gr);
        fd_grad(fd_gpn_loss, &x, x.W2, L * g, gW2);
        fd_grad(fd_gpn_loss, &x, x.b2, L, gb2);
        for (int vi = 0; vi < v.n; vi++) {
            c.isa = v.k[vi]->name;
            tc_case(&c, "N=%d g=%d L=%d", N, g, L);
            float *dP = ar_f(&a, "dP", (size_t)g * N, 1), *dr = ar_f(&a, "dr", (size_t)g, 1);
            float *dW2 = ar_f(&a, "dW2", (size_t)L * g, 1), *db2 = ar_f(&a, "db2", (size_t)L, 1);
            memset(dr, 0, sizeof(float) * g);
            memset(dW2, 0, sizeof(float) * L * g);
            memset(db2, 0, sizeof(float) * L);
            v.k[vi]->gpn_backward(k.P, N, k.r, k.W2, N, g, L, k.pi, k.dpi, N, dP, N, dr, dW2,
                                  db2);
            fd_check(&c, "dP", dP, gP, g * N);
            fd_check(&c, "dr", dr, gr, g);
            fd_check(&c, "dW2", dW2, gW2, L * g);
            fd_check(&c, "db2", db2, gb2, L);
        }
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* ---- GPN key projection: loss = sum_{j,i} dP_ji (b1_j + U_j . E_i) ---- */
typedef struct {
    int N, d, g;
    double *E, *U, *b1, *dP;
} fd_pk_ctx;

static double fd_pk_loss(const void *p)
{
    const fd_pk_ctx *x = p;
    double loss = 0;
    for (int j = 0; j < x->g; j++)
        for (int i = 0; i < x->N; i++) {
            double acc = x->b1[j];
            for (int k = 0; k < x->d; k++)
                acc += x->U[(size_t)j * x->d + k] * x->E[(size_t)i * x->d + k];
            loss += x->dP[(size_t)j * x->N + i] * acc;
        }
    return loss;
}

Test(backward_fd, gpn_project_keys, .timeout = TEST_TIMEOUT)
{
    static const int SZ[][3] = {{1, 1, 1}, {5, 3, 5}, {17, 8, 3}, {4, 33, 16}};
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn_project_keys_backward fd");
    tc_init(&c, "gpn_project_keys_backward FD");
    trng rng;
    rng_init(&rng, 557);
    for (size_t z = 0; z < sizeof SZ / sizeof SZ[0]; z++) {
        int N = SZ[z][0], d = SZ[z][1], g = SZ[z][2];
        tarena a = {0};
        float *E = ar_f(&a, "E", (size_t)N * d, 1), *U = ar_f(&a, "U", (size_t)g * d, 1);
        float *b1 = ar_f(&a, "b1", (size_t)g, 1), *dP = ar_f(&a, "dP", (size_t)g * N, 1);
        fill_unif(&rng, E, (size_t)N * d, -1, 1);
        fill_unif(&rng, U, (size_t)g * d, -1, 1);
        fill_unif(&rng, b1, (size_t)g, -1, 1);
        fill_unif(&rng, dP, (size_t)g * N, -1, 1);
        fd_pk_ctx x = {N, d, g, to_d(&a, "Ed", E, (size_t)N * d), to_d(&a, "Ud", U, (size_t)g * d),
                       to_d(&a, "b1d", b1, (size_t)g), to_d(&a, "dPd", dP, (size_t)g * N)};
        double *gE = ar_d(&a, "gE", (size_t)N * d), *gU = ar_d(&a, "gU", (size_t)g * d);
        double *gb1 = ar_d(&a, "gb1", (size_t)g);
        fd_grad(fd_pk_loss, &x, x.E, N * d, gE);
        fd_grad(fd_pk_loss, &x, x.U, g * d, gU);
        fd_grad(fd_pk_loss, &x, x.b1, g, gb1);
        for (int vi = 0; vi < v.n; vi++) {
            c.isa = v.k[vi]->name;
            tc_case(&c, "N=%d d=%d g=%d", N, d, g);
            float *dU = ar_f(&a, "dU", (size_t)g * d, 1), *db1 = ar_f(&a, "db1", (size_t)g, 1);
            float *dE = ar_f(&a, "dE", (size_t)N * d, 1);
            memset(dU, 0, sizeof(float) * g * d);
            memset(db1, 0, sizeof(float) * g);
            memset(dE, 0, sizeof(float) * N * d);
            v.k[vi]->gpn_project_keys_backward(E, N, d, U, g, dP, N, dU, db1, dE);
            fd_check(&c, "dU", dU, gU, g * d);
            fd_check(&c, "db1", db1, gb1, g);
            fd_check(&c, "dE", dE, gE, N * d);
        }
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* ---- GPN query projection: loss = dr . (W x) ---- */
typedef struct {
    int d, g;
    double *x, *W, *dr;
} fd_pq_ctx;

static double fd_pq_loss(const void *p)
{
    const fd_pq_ctx *x = p;
    double loss = 0;
    for (int j = 0; j < x->g; j++) {
        double acc = 0;
        for (int k = 0; k < x->d; k++)
            acc += x->W[(size_t)j * x->d + k] * x->x[k];
        loss += x->dr[j] * acc;
    }
    return loss;
}

Test(backward_fd, gpn_project_query, .timeout = TEST_TIMEOUT)
{
    static const int SZ[][2] = {{1, 1}, {3, 5}, {17, 16}, {64, 5}};
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn_project_query_backward fd");
    tc_init(&c, "gpn_project_query_backward FD");
    trng rng;
    rng_init(&rng, 558);
    for (size_t z = 0; z < sizeof SZ / sizeof SZ[0]; z++) {
        int d = SZ[z][0], g = SZ[z][1];
        tarena a = {0};
        float *xx = ar_f(&a, "x", (size_t)d, 1), *W = ar_f(&a, "W", (size_t)g * d, 1);
        float *dr = ar_f(&a, "dr", (size_t)g, 1);
        fill_unif(&rng, xx, (size_t)d, -1, 1);
        fill_unif(&rng, W, (size_t)g * d, -1, 1);
        fill_unif(&rng, dr, (size_t)g, -1, 1);
        fd_pq_ctx x = {d, g, to_d(&a, "xd", xx, (size_t)d), to_d(&a, "Wd", W, (size_t)g * d),
                       to_d(&a, "drd", dr, (size_t)g)};
        double *gx = ar_d(&a, "gx", (size_t)d), *gW = ar_d(&a, "gW", (size_t)g * d);
        fd_grad(fd_pq_loss, &x, x.x, d, gx);
        fd_grad(fd_pq_loss, &x, x.W, g * d, gW);
        for (int vi = 0; vi < v.n; vi++) {
            c.isa = v.k[vi]->name;
            tc_case(&c, "d=%d g=%d", d, g);
            float *dW = ar_f(&a, "dW", (size_t)g * d, 1), *dx = ar_f(&a, "dx", (size_t)d, 1);
            memset(dW, 0, sizeof(float) * g * d);
            memset(dx, 0, sizeof(float) * d);
            v.k[vi]->gpn_project_query_backward(xx, d, W, g, dr, dW, dx);
            fd_check(&c, "dW", dW, gW, g * d);
            fd_check(&c, "dx", dx, gx, d);
        }
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}
