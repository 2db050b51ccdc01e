/* test_prepared.c — prepared keys and the prepared step (docs/SPEC.md §7),
 * every variant the CPU supports.
 *
 *   exact_bitwise   renorm, and seed with GA_PREP_Z_EXACT: C and kept of
 *                   ga_attend_run_prepared_levels are bitwise those of
 *                   ga_attend_run_levels (same plan), for N = 0 … 1000,
 *                   T = 1, 3, 33 (crossing the 32-query block), with and
 *                   without -inf padding, level mixes random / all fine /
 *                   all coarse, and "ties": scores placed exactly at
 *                   m + theta and one ulp either side (zero K rows, the
 *                   score is the bias), with and without a 2-thread pool
 *   learned         ga_attend_run_prepared (GPN levels) == ga_attend_run
 *                   bitwise (C, kept, levels)
 *   seed_bounded    GA_PREP_Z_BOUNDED: kept identical; C = C_exact * Z/Z_b
 *                   with |Z_b/Z - 1| <= the reported z_bound (+ float
 *                   rounding of the sums, 1e-5 relative)
 *   dense_packed    dense plans: the packed-K step against the unprepared
 *                   dense step within the error bound derived below
 *   bound_property  LB_i <= s_i <= UB_i for every unpadded key, where s_i
 *                   is the float score of the table's `scores` and of the
 *                   reference: > 1 M (query, key) pairs per variant over
 *                   Gaussian-like keys, an outlier channel (x1000), a huge
 *                   dynamic range (keys and queries scaled by 2^±30 and
 *                   2^±15), exactly tied keys (exact_bitwise checks that
 *                   no kept key is ever rejected)
 *   fallback        NaN in q, a non-finite K row, a NaN bias: the rows take
 *                   the unprepared path (counted in stats.fallback) and the
 *                   results equal the unprepared ones bitwise
 *   errors          EINVAL + message for bad keys / plans / zmode
 * Shapes: Q [T][H*dh]; K, V [H][N][dh]; bias [N]; levels [T][N];
 * C [T][H*dh]; kept [T][H].
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"

enum { H = 2, DH = 64 };

typedef struct pdata {
    int N, T;
    float *Q, *K, *V, *bias;
    uint8_t *lev;
} pdata;

/* family 0 random, 1 ties at the threshold; lev: 0 random, 1 all fine, 2 all coarse */
static void make(tarena *a, trng *r, pdata *d, int N, int T, int padded, int family,
                 int levmode, const float *theta8)
{
    d->N = N;
    d->T = T;
    size_t nq = (size_t)T * H * DH, nk = (size_t)H * N * DH;
    d->Q = ar_f(a, "Q", nq + 1, 1);
    d->K = ar_f(a, "K", nk + 1, 1);
    d->V = ar_f(a, "V", nk + 1, 1);
    fill_unif(r, d->Q, nq, -9, 9); /* scores of std ~3 */
    fill_unif(r, d->K, nk, -1, 1);
    fill_unif(r, d->V, nk, -1, 1);
    d->bias = NULL;
    if (padded || family == 1) {
        d->bias = ar_f(a, "bias", (size_t)N + 1, 0);
        for (int i = 0; i < N; i++)
            d->bias[i] = padded && i % 5 == 3 ? -INFINITY : 0.0f;
    }
    if (family == 1) {
        /* zero K rows: score = bias exactly.  Key 0 sets m = 0 (bias 0),
         * the others sit at theta of a level and one ulp around it. */
        for (int h = 0; h < H; h++)
            for (int i = 0; i < N; i++)
                memset(d->K + ((size_t)h * N + i) * DH, 0, sizeof(float) * DH);
        for (int i = 1; i < N; i++) {
            if (d->bias[i] == -INFINITY)
                continue;
            float th = theta8[i % 2];
            d->bias[i] = i % 3 == 0 ? th : i % 3 == 1 ? nextafterf(th, 0) : nextafterf(th, -INFINITY);
        }
        if (N > 0)
            d->bias[0] = 0.0f;
    }
    d->lev = ar_u8(a, "lev", (size_t)T * N + 1, 0);
    if (levmode == 0)
        fill_levels(r, d->lev, (size_t)T * N, 3);
    else
        memset(d->lev, levmode == 1 ? 2 : 0, (size_t)T * N);
    if (family == 1) /* ties: levels 0 and 1 where the bias was placed */
        for (int t = 0; t < T; t++)
            for (int i = 0; i < N; i++)
                d->lev[(size_t)t * N + i] = (uint8_t)(i % 2);
}

static ga_config cfg_of(int mode)
{
    ga_config cfg;
    float th[GA_MAX_LEVELS];
    test_theta(3, th, &cfg);
    cfg.H = H;
    cfg.dh = DH;
    cfg.g = 4;
    cfg.mode = mode == 1 ? GA_NORM_RENORM : GA_NORM_SEED;
    cfg.dense = mode == 2;
    return cfg;
}

Test(prepared, exact_bitwise, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {0, 1, 5, 16, 17, 33, 100, 1000};
    static const int TS[] = {1, 3, 33};
    tvariants v;
    tcheck c;
    variants_get(&v, "prepared exact_bitwise preview_dots preview_bounds preview_select "
                     "scores_gather");
    tc_init(&c, "prepared exact_bitwise");
    ga_pool *pool = ga_pool_create(2, GA_PLACE_NONE, NULL, 0);
    cr_assert(pool, "%s", ga_last_error());
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        for (int mode = 0; mode < 2; mode++)
            for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
                for (size_t it = 0; it < sizeof TS / sizeof TS[0]; it++)
                    for (int padded = 0; padded < 2; padded++)
                        for (int fam = 0; fam < 2; fam++)
                            for (int levmode = 0; levmode < (fam ? 1 : 3); levmode++) {
                                int N = NS[in], T = TS[it];
                                int usepool = (in + it + padded) % 3 == 0;
                                tc_case(&c, "mode %s N=%d T=%d padded=%d %s lev=%d pool=%d",
                                        mode ? "renorm" : "seed", N, T, padded,
                                        fam ? "ties" : "random", levmode, usepool);
                                ga_config cfg = cfg_of(mode);
                                float th[GA_MAX_LEVELS];
                                ga_theta_from_tau(&cfg, th);
                                tarena a = {0};
                                trng r;
                                rng_init(&r, 1000 + N * 7 + T);
                                pdata d;
                                make(&a, &r, &d, N, T, padded, fam, levmode, th);
                                ga_status st;
                                ga_attend_plan *pl = ga_attend_plan_create(
                                    kt, usepool ? pool : NULL, &cfg, N, T, &st);
                                cr_assert(pl, "%s", ga_last_error());
                                ga_keys *keys = ga_keys_create(kt, H, N, DH, d.K, d.V, d.bias, &st);
                                cr_assert(keys, "%s", ga_last_error());
                                size_t nc = (size_t)T * H * DH;
                                float *C0 = ar_f(&a, "C0", nc + 1, 0), *C1 = ar_f(&a, "C1", nc + 1, 0);
                                int *k0 = calloc((size_t)T * H, sizeof(int));
                                int *k1 = calloc((size_t)T * H, sizeof(int));
                                st = ga_attend_run_levels(pl, N, T, d.Q, d.K, d.V, d.bias, d.lev, C0, k0);
                                tc_true(&c, st == GA_OK, "run_levels: %s", ga_last_error());
                                ga_prep_stats ps;
                                st = ga_attend_run_prepared_levels(pl, keys, T, d.Q, d.lev,
                                                                   GA_PREP_Z_EXACT, C1, k1, &ps);
                                tc_true(&c, st == GA_OK, "prepared: %s", ga_last_error());
                                tc_bits(&c, "C", C1, C0, sizeof(float) * nc);
                                tc_bits(&c, "kept", k1, k0, sizeof(int) * T * H);
                                long kept = 0;
                                for (int j = 0; j < T * H; j++)
                                    kept += k0[j];
                                tc_eq_long(&c, "stats.kept", (long)ps.kept, kept);
                                tc_eq_long(&c, "stats.rows", (long)ps.rows, N ? (long)T * H : 0);
                                tc_true(&c, ps.candidates >= ps.kept && ps.candidates <= ps.keys,
                                        "candidates %lld kept %lld keys %lld", ps.candidates,
                                        ps.kept, ps.keys);
                                if (mode == 1 && N > 0) {
                                    /* renorm: unprepared rows are exactly those with at
                                     * least half of the keys at the fine level (tau 0) */
                                    long rows_fine = 0;
                                    for (int t = 0; t < T; t++) {
                                        int nf = 0;
                                        for (int i = 0; i < N; i++)
                                            nf += d.lev[(size_t)t * N + i] == 2;
                                        rows_fine += 2 * nf >= N ? H : 0;
                                    }
                                    tc_eq_long(&c, "stats.fallback", (long)ps.fallback, rows_fine);
                                }
                                free(k0);
                                free(k1);
                                ga_keys_destroy(keys);
                                ga_attend_plan_destroy(pl);
                                ar_free(&a);
                            }
    }
    ga_pool_destroy(pool);
    tc_finish(&c);
}

Test(prepared, learned, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "prepared learned");
    tc_init(&c, "prepared learned");
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        for (int mode = 0; mode < 2; mode++) {
            const int N = 300, T = 5;
            tc_case(&c, "mode %d N=%d T=%d", mode, N, T);
            ga_config cfg = cfg_of(mode);
            tarena a = {0};
            trng r;
            rng_init(&r, 77);
            pdata d;
            make(&a, &r, &d, N, T, 1, 0, 0, NULL);
            int g = cfg.g, L = cfg.L;
            float *P = ar_f(&a, "P", (size_t)g * N, 0), *R = ar_f(&a, "R", (size_t)T * g, 0);
            float *W2 = ar_f(&a, "W2", (size_t)L * g, 0), *b2 = ar_f(&a, "b2", L, 0);
            fill_unif(&r, P, (size_t)g * N, -1, 1);
            fill_unif(&r, R, (size_t)T * g, -1, 1);
            fill_unif(&r, W2, (size_t)L * g, -1, 1);
            fill_unif(&r, b2, L, -0.5, 0.5);
            ga_status st;
            ga_attend_plan *pl = ga_attend_plan_create(kt, NULL, &cfg, N, T, &st);
            ga_keys *keys = ga_keys_create(kt, H, N, DH, d.K, d.V, d.bias, &st);
            cr_assert(pl && keys, "%s", ga_last_error());
            size_t nc = (size_t)T * H * DH;
            float *C0 = ar_f(&a, "C0", nc, 0), *C1 = ar_f(&a, "C1", nc, 0);
            int k0[T * H], k1[T * H];
            uint8_t *l0 = ar_u8(&a, "l0", (size_t)T * N, 0), *l1 = ar_u8(&a, "l1", (size_t)T * N, 0);
            st = ga_attend_run(pl, N, T, d.Q, d.K, d.V, d.bias, P, N, R, W2, b2, C0, k0, l0);
            tc_true(&c, st == GA_OK, "run: %s", ga_last_error());
            st = ga_attend_run_prepared(pl, keys, T, d.Q, P, N, R, W2, b2, GA_PREP_Z_EXACT, C1,
                                        k1, l1, NULL);
            tc_true(&c, st == GA_OK, "prepared: %s", ga_last_error());
            tc_bits(&c, "C", C1, C0, sizeof(float) * nc);
            tc_bits(&c, "kept", k1, k0, sizeof k0);
            tc_bits(&c, "levels", l1, l0, (size_t)T * N);
            ga_keys_destroy(keys);
            ga_attend_plan_destroy(pl);
            ar_free(&a);
        }
    }
    tc_finish(&c);
}

Test(prepared, seed_bounded, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "prepared seed_bounded");
    tc_init(&c, "prepared seed_bounded");
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        for (int N = 1; N <= 2000; N = N * 3 + 1) {
            const int T = 4;
            tc_case(&c, "N=%d", N);
            ga_config cfg = cfg_of(0);
            tarena a = {0};
            trng r;
            rng_init(&r, 5 + N);
            pdata d;
            make(&a, &r, &d, N, T, 1, 0, 0, NULL);
            /* mostly coarse levels: many non-candidates */
            for (int j = 0; j < T * N; j++)
                d.lev[j] = j % 7 == 0 ? 1 : 0;
            ga_status st;
            ga_attend_plan *pl = ga_attend_plan_create(kt, NULL, &cfg, N, T, &st);
            ga_keys *keys = ga_keys_create(kt, H, N, DH, d.K, d.V, d.bias, &st);
            cr_assert(pl && keys, "%s", ga_last_error());
            size_t nc = (size_t)T * H * DH;
            float *C0 = ar_f(&a, "C0", nc, 0), *C1 = ar_f(&a, "C1", nc, 0);
            int k0[T * H], k1[T * H];
            ga_prep_stats ps;
            ga_attend_run_prepared_levels(pl, keys, T, d.Q, d.lev, GA_PREP_Z_EXACT, C0, k0, NULL);
            st = ga_attend_run_prepared_levels(pl, keys, T, d.Q, d.lev, GA_PREP_Z_BOUNDED, C1,
                                               k1, &ps);
            tc_true(&c, st == GA_OK, "bounded: %s", ga_last_error());
            tc_bits(&c, "kept", k1, k0, sizeof k0);
            tc_true(&c, ps.z_bound >= 0.0 && ps.z_bound < 0.5, "z_bound %g", ps.z_bound);
            /* per row: C1 = C0 * Z / Z_b; the ratio of the largest element */
            for (int row = 0; row < T * H; row++) {
                const float *c0 = C0 + (size_t)row * DH, *c1 = C1 + (size_t)row * DH;
                int jm = 0;
                for (int j = 1; j < DH; j++)
                    if (fabsf(c0[j]) > fabsf(c0[jm]))
                        jm = j;
                if (c0[jm] == 0.0f)
                    continue;
                double ratio = (double)c1[jm] / c0[jm]; /* = Z / Z_b */
                tc_true(&c, fabs(1.0 / ratio - 1.0) <= ps.z_bound + 1e-5,
                        "row %d: Z_b/Z - 1 = %g > bound %g", row, 1.0 / ratio - 1.0,
                        ps.z_bound);
            }
            ga_keys_destroy(keys);
            ga_attend_plan_destroy(pl);
            ar_free(&a);
        }
    }
    tc_finish(&c);
}

Test(prepared, dense_packed, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 15, 16, 17, 130, 1000};
    tvariants v;
    tcheck c;
    variants_get(&v, "prepared dense_packed scores_packed");
    tc_init(&c, "prepared dense_packed");
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
            for (int padded = 0; padded < 2; padded++) {
                const int N = NS[in], T = 1;
                tc_case(&c, "N=%d padded=%d", N, padded);
                ga_config cfg = cfg_of(2);
                tarena a = {0};
                trng r;
                rng_init(&r, 9 + N);
                pdata d;
                make(&a, &r, &d, N, T, padded, 0, 0, NULL);
                ga_status st;
                ga_attend_plan *pl = ga_attend_plan_create(kt, NULL, &cfg, N, T, &st);
                ga_keys *keys = ga_keys_create(kt, H, N, DH, d.K, d.V, d.bias, &st);
                cr_assert(pl && keys, "%s", ga_last_error());
                size_t nc = (size_t)T * H * DH;
                float *C0 = ar_f(&a, "C0", nc, 0), *C1 = ar_f(&a, "C1", nc, 0);
                int k0[H], k1[H];
                ga_attend_run_levels(pl, N, T, d.Q, d.K, d.V, d.bias, NULL, C0, k0);
                st = ga_attend_run_prepared_levels(pl, keys, T, d.Q, NULL, GA_PREP_Z_EXACT, C1,
                                                   k1, NULL);
                tc_true(&c, st == GA_OK, "prepared dense: %s", ga_last_error());
                tc_bits(&c, "kept", k1, k0, sizeof k0);
                /* Both paths compute each score within gs = (dh + 2) u sigma
                 * sum_d |q_d k_d| of the exact one (any summation order), so
                 * the scores differ by <= 2 gs; a weight's relative error is
                 * then <= e^(4 gs) - 1 (numerator and Z) plus the exp and
                 * the normalisation (EXP_RTOL, (N + 3) u), and
                 * |c - c'| <= that * max |v| (weights sum to 1) plus the
                 * two contexts' own sums ((N + 3) u each). */
                for (int h = 0; h < H; h++) {
                    const float *q = d.Q + (size_t)h * DH;
                    double gs = 0.0, vmax = 0.0;
                    for (int i = 0; i < N; i++) {
                        double s = 0.0;
                        for (int j = 0; j < DH; j++) {
                            s += fabs((double)q[j] * d.K[((size_t)h * N + i) * DH + j]);
                            vmax = fmax(vmax, fabs(d.V[((size_t)h * N + i) * DH + j]));
                        }
                        gs = fmax(gs, s);
                    }
                    gs *= (DH + 2) * U_F32 / sqrt((double)DH);
                    double tol = (expm1(4 * gs) + 2 * EXP_RTOL + 3 * rtol_sum(N)) * vmax * 1.01;
                    for (int j = 0; j < DH; j++) {
                        double e = fabs((double)C1[h * DH + j] - C0[h * DH + j]);
                        if (!(e <= tol)) {
                            tc_fail(&c, "head %d c[%d]: %g vs %g (|diff| %g > tol %g)", h, j,
                                    C1[h * DH + j], C0[h * DH + j], e, tol);
                            break;
                        }
                    }
                }
                ga_keys_destroy(keys);
                ga_attend_plan_destroy(pl);
                ar_free(&a);
            }
    }
    tc_finish(&c);
}

/* family: 0 uniform, 1 outlier channel, 2 huge dynamic range, 3 exact ties */
static void bound_keys(trng *r, float *K, int N, int dh, int family)
{
    fill_unif(r, K, (size_t)N * dh, -1, 1);
    for (int i = 0; i < N; i++) {
        float *k = K + (size_t)i * dh;
        if (family == 1)
            k[i % 4] *= 1000.0f;
        if (family == 2) {
            float sc = ldexpf(1.0f, rng_int(r, 61) - 30);
            for (int d = 0; d < dh; d++)
                k[d] *= sc;
        }
        if (family == 3) /* small integers, many identical keys: exact ties */
            for (int d = 0; d < dh; d++)
                k[d] = (float)((i % 5) - 2 + (d % 3));
    }
}

Test(prepared, bound_property, .timeout = TEST_TIMEOUT)
{
    const int N = t_quick() ? 1024 : 4096, NQ = 64;
    tvariants v;
    tcheck c;
    variants_get(&v, "prepared bound_property preview_dots preview_bounds");
    tc_init(&c, "prepared bound_property");
    const ga_kernels *ref = ga_kernels_ref();
    const float scale = 1.0f / sqrtf((float)DH);
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        long pairs = 0, viol = 0;
        for (int family = 0; family < 4; family++) {
            tc_case(&c, "family %d", family);
            tarena a = {0};
            trng r;
            rng_init(&r, 31 + family);
            float *K = ar_f(&a, "K", (size_t)N * DH, 0), *V = ar_f(&a, "V", (size_t)N * DH, 0);
            float *bias = ar_f(&a, "bias", N, 0), *q = ar_f(&a, "q", DH, 0);
            bound_keys(&r, K, N, DH, family);
            fill_unif(&r, V, (size_t)N * DH, -1, 1);
            for (int i = 0; i < N; i++)
                bias[i] = i % 97 == 5 ? -INFINITY : (float)rng_range(&r, -2, 2);
            ga_status st;
            ga_keys *keys = ga_keys_create(kt, 1, N, DH, K, V, bias, &st);
            cr_assert(keys, "%s", ga_last_error());
            float *shat = ar_f(&a, "shat", N, 0), *ub = ar_f(&a, "ub", N, 0);
            float *s = ar_f(&a, "s", N, 0), *sr = ar_f(&a, "sr", N, 0);
            for (int t = 0; t < NQ; t++) {
                fill_unif(&r, q, DH, -3, 3);
                if (family == 1)
                    q[t % DH] *= 500.0f;
                if (family == 2) {
                    float sc = ldexpf(1.0f, rng_int(&r, 31) - 15);
                    for (int d = 0; d < DH; d++)
                        q[d] *= sc;
                }
                if (family == 3)
                    for (int d = 0; d < DH; d++)
                        q[d] = (float)((d + t) % 4 - 1);
                float mlb, m, mr;
                if (!ga_prep_preview(kt, keys, 0, q, scale, shat, ub, &mlb)) {
                    tc_fail(&c, "query %d took the fallback", t);
                    continue;
                }
                kt->scores(K, N, DH, q, 1, DH, scale, bias, s, N, &m);
                ref->scores(K, N, DH, q, 1, DH, scale, bias, sr, N, &mr);
                tc_true(&c, mlb <= m, "query %d: m_lb %.9g > m %.9g", t, mlb, m);
                for (int i = 0; i < N; i++) {
                    if (bias[i] == -INFINITY) {
                        if (!(shat[i] == -INFINITY && ub[i] == -INFINITY) && viol++ < 4)
                            tc_fail(&c, "padded key %d: shat %g ub %g", i, shat[i], ub[i]);
                        continue;
                    }
                    double e = (double)ub[i] - shat[i], lb = (double)shat[i] - e;
                    pairs += 2;
                    if (!(lb <= s[i] && s[i] <= ub[i] && lb <= sr[i] && sr[i] <= ub[i]) &&
                        viol++ < 4)
                        tc_fail(&c, "query %d key %d: [%.9g, %.9g] misses s %.9g / ref %.9g",
                                t, i, lb, (double)ub[i], s[i], sr[i]);
                }
            }
            ga_keys_destroy(keys);
            ar_free(&a);
        }
        tc_true(&c, viol == 0, "%ld of %ld (key, score) pairs outside their bounds", viol,
                pairs);
        tc_true(&c, pairs >= (t_quick() ? 400000L : 1000000L), "only %ld pairs checked", pairs);
    }
    tc_finish(&c);
}

Test(prepared, fallback, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "prepared fallback");
    tc_init(&c, "prepared fallback");
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        for (int what = 0; what < 4; what++) {
            const int N = 50, T = 3;
            tc_case(&c, "%s", (const char *[]){"NaN in q", "inf in a K row", "NaN bias",
                                               "huge q"}[what]);
            ga_config cfg = cfg_of(1);
            tarena a = {0};
            trng r;
            rng_init(&r, 3);
            pdata d;
            make(&a, &r, &d, N, T, 1, 0, 0, NULL);
            for (int j = 0; j < T * N; j++) /* no fine level: only the inputs make fallbacks */
                d.lev[j] %= 2;
            long expect = 0;
            if (what == 0) {
                d.Q[DH + 3] = NAN; /* query 0, head 1 */
                expect = 1;
            } else if (what == 1) {
                d.K[(size_t)(N + 7) * DH + 2] = INFINITY; /* head 1, key 7 */
                expect = T;
            } else if (what == 2) {
                d.bias[8] = NAN;
                expect = (long)T * H;
            } else {
                for (int j = 0; j < DH; j++)
                    d.Q[2 * H * DH + j] *= 1e25f; /* query 2, head 0 */
                expect = 1;
            }
            ga_status st;
            ga_attend_plan *pl = ga_attend_plan_create(kt, NULL, &cfg, N, T, &st);
            ga_keys *keys = ga_keys_create(kt, H, N, DH, d.K, d.V, d.bias, &st);
            cr_assert(pl && keys, "%s", ga_last_error());
            size_t nc = (size_t)T * H * DH;
            float *C0 = ar_f(&a, "C0", nc, 0), *C1 = ar_f(&a, "C1", nc, 0);
            int k0[T * H], k1[T * H];
            ga_prep_stats ps;
            ga_attend_run_levels(pl, N, T, d.Q, d.K, d.V, d.bias, d.lev, C0, k0);
            st = ga_attend_run_prepared_levels(pl, keys, T, d.Q, d.lev, GA_PREP_Z_EXACT, C1, k1,
                                               &ps);
            tc_true(&c, st == GA_OK, "%s", ga_last_error());
            tc_bits(&c, "C", C1, C0, sizeof(float) * nc);
            tc_bits(&c, "kept", k1, k0, sizeof k0);
            tc_eq_long(&c, "fallback rows", (long)ps.fallback, expect);
            ga_keys_destroy(keys);
            ga_attend_plan_destroy(pl);
            ar_free(&a);
        }
    }
    tc_finish(&c);
}

Test(prepared, errors)
{
    const ga_kernels *kt = ga_kernels_ref();
    float K[4 * DH] = {0}, V[4 * DH] = {0}, Q[H * DH] = {0}, C[H * DH];
    ga_status st;
    cr_expect_null(ga_keys_create(NULL, 1, 4, DH, K, V, NULL, &st));
    cr_expect_eq(st, GA_EINVAL);
    cr_expect_null(ga_keys_create(kt, 1, 4, 2000, K, V, NULL, &st));
    cr_expect_eq(st, GA_EINVAL);
    cr_expect(strstr(ga_last_error(), "dh") != NULL, "%s", ga_last_error());
    cr_expect_null(ga_keys_create(kt, 1, 4, DH, NULL, V, NULL, &st));
    cr_expect_eq(st, GA_EINVAL);
    cr_expect_null(ga_keys_create(kt, 0, 4, DH, K, V, NULL, &st));
    cr_expect_null(ga_keys_create(kt, 1, -1, DH, K, V, NULL, &st));
    ga_keys *k1 = ga_keys_create(kt, 1, 4, DH, K, V, NULL, &st);
    cr_assert(k1, "%s", ga_last_error());
    cr_expect_eq(ga_keys_N(k1), 4);
    cr_expect_gt(ga_keys_bytes(k1), (size_t)4 * DH);
    ga_config cfg = cfg_of(1);
    ga_attend_plan *pl = ga_attend_plan_create(kt, NULL, &cfg, 4, 1, &st); /* H = 2 */
    cr_assert(pl);
    uint8_t lev[8] = {0};
    cr_expect_eq(ga_attend_run_prepared_levels(pl, k1, 1, Q, lev, GA_PREP_Z_EXACT, C, NULL,
                                               NULL),
                 GA_EINVAL); /* H mismatch */
    cr_expect(strstr(ga_last_error(), "H = 1") != NULL, "%s", ga_last_error());
    cr_expect_eq(ga_attend_run_prepared_levels(pl, NULL, 1, Q, lev, GA_PREP_Z_EXACT, C, NULL,
                                               NULL),
                 GA_EINVAL);
    float K2[2 * 8 * DH] = {0}, V2[2 * 8 * DH] = {0};
    ga_keys *k2 = ga_keys_create(kt, H, 8, DH, K2, V2, NULL, &st); /* N 8 > max_N 4 */
    cr_assert(k2);
    cr_expect_eq(ga_attend_run_prepared_levels(pl, k2, 1, Q, lev, GA_PREP_Z_EXACT, C, NULL,
                                               NULL),
                 GA_EINVAL);
    ga_keys *k3 = ga_keys_create(kt, H, 4, DH, K2, V2, NULL, &st);
    cr_expect_eq(ga_attend_run_prepared_levels(pl, k3, 1, Q, lev, (ga_prep_z)7, C, NULL, NULL),
                 GA_EINVAL);
    cr_expect_eq(ga_attend_run_prepared_levels(pl, k3, 1, Q, NULL, GA_PREP_Z_EXACT, C, NULL,
                                               NULL),
                 GA_EINVAL);
    lev[2] = 5; /* >= L */
    cr_expect_eq(ga_attend_run_prepared_levels(pl, k3, 1, Q, lev, GA_PREP_Z_EXACT, C, NULL,
                                               NULL),
                 GA_EINVAL);
    ga_keys_destroy(k1);
    ga_keys_destroy(k2);
    ga_keys_destroy(k3);
    ga_keys_destroy(NULL);
    ga_attend_plan_destroy(pl);
}

/* ga_keys_create's packed K: Kp[p][d][l] == K[16p + l][d] bitwise for every
 * head, 0 in the lanes past N; dh not a multiple of 4 and partial panels
 * included (the full panels are copied in 4x4 blocks). */
Test(prepared, packed_layout, .timeout = TEST_TIMEOUT)
{
    static const int DHS[] = {1, 3, 4, 5, 64, 67};
    static const int NS[] = {1, 15, 16, 17, 48, 70};
    tcheck c;
    tc_init(&c, "prepared packed_layout");
    c.isa = "scalar";
    for (size_t id = 0; id < sizeof DHS / sizeof DHS[0]; id++)
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++) {
            const int dh = DHS[id], N = NS[in], Hh = 2, P = (N + 15) / 16;
            tc_case(&c, "dh=%d N=%d", dh, N);
            tarena a = {0};
            trng r;
            rng_init(&r, 5 + dh * 100 + N);
            float *K = ar_f(&a, "K", (size_t)Hh * N * dh, 0);
            fill_unif(&r, K, (size_t)Hh * N * dh, -2, 2);
            ga_status st;
            ga_keys *k = ga_keys_create(ga_kernels_ref(), Hh, N, dh, K, K, NULL, &st);
            cr_assert(k, "%s", ga_last_error());
            int bad = 0;
            for (int h = 0; h < Hh; h++) {
                const float *kp = ga_keys_kp(k, h);
                for (int p = 0; p < P; p++)
                    for (int d = 0; d < dh; d++)
                        for (int l = 0; l < 16; l++) {
                            const int i = 16 * p + l;
                            const float want = i < N ? K[((size_t)h * N + i) * dh + d] : 0.0f;
                            const float got = kp[((size_t)p * dh + d) * 16 + l];
                            bad += memcmp(&got, &want, sizeof got) != 0;
                        }
            }
            tc_true(&c, bad == 0, "%d packed elements differ", bad);
            ga_keys_destroy(k);
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* ga_keys_prepare into keys that held another source: every field the
 * same bits as ga_keys_create of the new source, through shrinking N (the
 * last panel's lanes past N held the earlier keys), growing N (the memory
 * grows), another H and dh, N = 0, padded keys and a non-finite row (an
 * unsafe head); bad arguments leave the keys as they were. */
static int keys_same(tcheck *c, const ga_keys *a, const ga_keys *b)
{
    int bad = !tc_true(c,
                       a->H == b->H && a->N == b->N && a->dh == b->dh && a->dh4 == b->dh4 &&
                           a->P == b->P && a->ldm == b->ldm && a->unpadded == b->unpadded &&
                           a->K == b->K && a->V == b->V && a->bias == b->bias,
                       "sizes or references differ");
    if (bad)
        return 0;
    const size_t P = (size_t)a->P, H = (size_t)a->H;
    bad |= !tc_bits(c, "codes", a->codes, b->codes, H * P * 16 * a->dh4);
    bad |= !tc_bits(c, "ksum", a->ksum, b->ksum, H * a->ldm * sizeof(int32_t));
    bad |= !tc_bits(c, "meta", a->meta, b->meta, H * 4 * a->ldm * sizeof(float));
    bad |= !tc_bits(c, "kp", a->kp, b->kp, H * P * 16 * a->dh * sizeof(float));
    bad |= !tc_bits(c, "maxknorm", a->maxknorm, b->maxknorm, H * sizeof(float));
    bad |= !tc_bits(c, "unsafe", a->unsafe, b->unsafe, H);
    return !bad;
}

Test(prepared, reprepare, .timeout = TEST_TIMEOUT)
{
    /* H, N, dh, padded keys, a NaN key row */
    static const int SH[][5] = {{2, 70, 64, 0, 0}, {2, 17, 64, 0, 0}, {2, 5, 64, 1, 0},
                                {3, 129, 64, 0, 0}, {1, 33, 67, 1, 1}, {2, 0, 64, 0, 0},
                                {2, 48, 5, 0, 0},   {4, 300, 64, 1, 0}};
    enum { NS = sizeof SH / sizeof SH[0] };
    tvariants v;
    tcheck c;
    variants_get(&v, "prepared reprepare quantize_rows");
    tc_init(&c, "prepared reprepare");
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        tarena a = {0};
        trng r;
        rng_init(&r, 77 + vi);
        float *K[NS], *V[NS], *bias[NS];
        for (int s = 0; s < NS; s++) {
            const size_t n = (size_t)SH[s][0] * SH[s][1] * SH[s][2] + 1;
            K[s] = ar_f(&a, "K", n, 0);
            V[s] = ar_f(&a, "V", n, 0);
            fill_unif(&r, K[s], n, -3, 3);
            fill_unif(&r, V[s], n, -1, 1);
            bias[s] = NULL;
            if (SH[s][3]) {
                bias[s] = ar_f(&a, "bias", (size_t)SH[s][1] + 1, 0);
                for (int i = 0; i < SH[s][1]; i++)
                    bias[s][i] = i % 3 == 1 ? -INFINITY : 0.0f;
            }
            if (SH[s][4] && SH[s][1] > 2)
                K[s][2 * SH[s][2] + 1] = NAN; /* key 2 of head 0: no bound */
        }
        ga_status st;
        ga_keys *k = ga_keys_create(kt, SH[0][0], SH[0][1], SH[0][2], K[0], V[0], bias[0], &st);
        cr_assert(k, "%s", ga_last_error());
        for (int s = 1; s < NS; s++) {
            const int Hs = SH[s][0], Ns = SH[s][1], dhs = SH[s][2];
            tc_case(&c, "H=%d N=%d dh=%d after H=%d N=%d dh=%d", Hs, Ns, dhs, SH[s - 1][0],
                    SH[s - 1][1], SH[s - 1][2]);
            st = ga_keys_prepare(k, kt, Hs, Ns, dhs, K[s], V[s], bias[s]);
            tc_true(&c, st == GA_OK, "ga_keys_prepare: %s", ga_last_error());
            ga_keys *fresh = ga_keys_create(kt, Hs, Ns, dhs, K[s], V[s], bias[s], &st);
            cr_assert(fresh, "%s", ga_last_error());
            keys_same(&c, k, fresh);
            /* lanes past N are zeros whatever the keys held before (the
             * fresh keys go through the same code: checked directly) */
            int nz = 0;
            for (int h = 0; h < Hs; h++)
                for (int r = Ns; r < k->ldm; r++) {
                    const int8_t *cd = k->codes + (size_t)h * k->P * 16 * k->dh4 +
                                       (size_t)(r / 16) * k->dh4 * 16 + (size_t)(r % 16) * 4;
                    for (int g = 0; g < k->dh4 / 4; g++)
                        for (int b = 0; b < 4; b++)
                            nz += cd[(size_t)g * 64 + b] != 0;
                    nz += k->ksum[(size_t)h * k->ldm + r] != 0;
                    for (int j = 0; j < 4; j++)
                        nz += k->meta[((size_t)h * 4 + j) * k->ldm + r] != 0.0f;
                    for (int d = 0; d < dhs; d++)
                        nz += k->kp[(size_t)h * k->P * 16 * dhs + ((size_t)(r / 16) * dhs + d) * 16 +
                                    r % 16] != 0.0f;
                }
            tc_true(&c, nz == 0, "%d non-zero values in the lanes past N", nz);
            tc_true(&c, ga_keys_bytes(k) >= ga_keys_bytes(fresh), "bytes %zu < %zu",
                    ga_keys_bytes(k), ga_keys_bytes(fresh));
            if (SH[s][4])
                tc_true(&c, k->unsafe[0] == 1, "the NaN row's head is not unsafe");
            ga_keys_destroy(fresh);
        }
        /* bad arguments: an error, the keys unchanged */
        tc_case(&c, "errors");
        const int N0 = k->N;
        tc_true(&c, ga_keys_prepare(NULL, kt, 1, 4, 4, K[0], V[0], NULL) == GA_EINVAL,
                "NULL keys accepted");
        tc_true(&c, ga_keys_prepare(k, NULL, 1, 4, 4, K[0], V[0], NULL) == GA_EINVAL,
                "NULL table accepted");
        tc_true(&c, ga_keys_prepare(k, kt, 1, 4, 2000, K[0], V[0], NULL) == GA_EINVAL,
                "dh 2000 accepted");
        tc_true(&c, strstr(ga_last_error(), "ga_keys_prepare") != NULL, "message: %s",
                ga_last_error());
        tc_true(&c, ga_keys_prepare(k, kt, 1, 4, 4, NULL, V[0], NULL) == GA_EINVAL,
                "K NULL accepted");
        tc_true(&c, ga_keys_prepare(k, kt, 0x10000, 0x10000, 64, K[0], V[0], NULL) == GA_EINVAL,
                "an int-overflowing size accepted");
        tc_true(&c, k->N == N0, "a failed prepare changed N: %d -> %d", N0, k->N);
        ga_keys_destroy(k);
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* ga_round_up_f (src/internal.h): the smallest float >= x, i.e. the
 * conversion or nextafterf(conversion, +inf) when it rounded down; checked
 * around 0, the denormals, 1, FLT_MAX (-> inf) and on both signs. */
Test(prepared, round_up_f, .timeout = TEST_TIMEOUT)
{
    static const double XS[] = {0x1p-149, 0x1p-140, 0x1p-126, 1.0, 3.0, 0x1p100,
                                FLT_MAX, 0x1.fffffefffffffp127};
    static const double EPS[] = {0.0, 0x1p-60, 0x1p-30, -0x1p-60, -0x1p-30};
    tcheck c;
    tc_init(&c, "prepared round_up_f");
    c.isa = "scalar";
    for (size_t i = 0; i < sizeof XS / sizeof XS[0]; i++)
        for (size_t j = 0; j < sizeof EPS / sizeof EPS[0]; j++)
            for (int sg = -1; sg <= 1; sg += 2) {
                const double x = sg * XS[i] * (1.0 + EPS[j]);
                float want = (float)x;
                if ((double)want < x)
                    want = nextafterf(want, INFINITY);
                const float got = ga_round_up_f(x);
                tc_case(&c, "x=%a", x);
                tc_bits(&c, "round_up_f", &got, &want, sizeof got);
                tc_true(&c, (double)got >= x, "x %a: %a below", x, (double)got);
            }
    const double zs[] = {0.0, -0.0, 1e-300, -1e-300};
    for (int z = 0; z < 4; z++) {
        const float want = zs[z] > 0 ? 0x1p-149f : (float)zs[z], got = ga_round_up_f(zs[z]);
        tc_case(&c, "x=%a", zs[z]);
        tc_true(&c, got == want && (double)got >= zs[z], "x %a: %a, want %a", zs[z],
                (double)got, (double)want);
    }
    tc_finish(&c);
}

/* quantize_rows: codes, scale and csum exactly the reference's; norm and
 * err upper bounds of the exact Euclidean norms (computed here in double
 * from x, the codes and the scale: |x|, |s c|, |x - s c|, each within a few
 * double roundings, 1e-12 relative) and within 1e-5 relative of the
 * reference's (they differ only in the float summation order of dh terms:
 * (dh + 8) 2^-24 relative); special rows as the contract says. */
Test(prepared, quantize_rows, .timeout = TEST_TIMEOUT)
{
    static const int DHS[] = {1, 3, 4, 15, 16, 17, 63, 64, 65, 128, 1024};
    tvariants v;
    tcheck c;
    variants_get(&v, "prepared quantize_rows");
    tc_init(&c, "prepared quantize_rows");
    const ga_kernels *ref = ga_kernels_ref();
    for (int vi = 0; vi < v.n; vi++) {
        const ga_kernels *kt = v.k[vi];
        c.isa = kt->name;
        for (size_t id = 0; id < sizeof DHS / sizeof DHS[0]; id++)
            for (int lanes = 1; lanes <= 16; lanes += 15)
                for (int n = 1; n <= 40; n += 13) {
                    const int dh = DHS[id], ldx = dh + 1;
                    /* n 14: wider slots than the row (channels past dh + 3 get 0) */
                    const int dh4 = (dh + 3) / 4 * 4 + (n == 14 && dh < 1016 ? 8 : 0);
                    const int slots = (n + lanes - 1) / lanes * lanes;
                    tc_case(&c, "dh=%d lanes=%d n=%d", dh, lanes, n);
                    tarena a = {0};
                    trng r;
                    rng_init(&r, 17 + dh + n);
                    float *X = ar_f(&a, "X", (size_t)n * ldx, 1);
                    fill_unif(&r, X, (size_t)n * ldx, -3, 3);
                    for (int row = 0; row < n; row++) {
                        float *x = X + (size_t)row * ldx;
                        switch (row % 8) {
                        case 1: /* ties: a = 127, y = x = k + 0.5 */
                            for (int d = 0; d < dh; d++)
                                x[d] = (float)(d % 40 - 20) + 0.5f;
                            x[0] = 127.0f;
                            break;
                        case 2: memset(x, 0, sizeof(float) * dh); break;
                        case 3: x[dh / 2] = NAN; break;
                        case 4: x[dh - 1] = -INFINITY; break;
                        case 5: /* tiny: no bound */
                            for (int d = 0; d < dh; d++)
                                x[d] = ldexpf(x[d], -125);
                            break;
                        case 6: /* wide range inside a row */
                            for (int d = 0; d < dh; d++)
                                x[d] = ldexpf(x[d], (d * 7) % 60 - 30);
                            break;
                        case 7: /* outlier channel */
                            x[0] *= 1e4f;
                            break;
                        }
                    }
                    int8_t *c0 = (int8_t *)ar_u8(&a, "c0", (size_t)slots * dh4, 0);
                    int8_t *c1 = (int8_t *)ar_u8(&a, "c1", (size_t)slots * dh4, 0);
                    float *s0 = ar_f(&a, "s0", n, 0), *s1 = ar_f(&a, "s1", n, 1);
                    float *n0 = ar_f(&a, "n0", n, 0), *n1 = ar_f(&a, "n1", n, 2);
                    float *e0 = ar_f(&a, "e0", n, 0), *e1 = ar_f(&a, "e1", n, 3);
                    int32_t *k0 = ar_i32(&a, "k0", n, 0), *k1 = ar_i32(&a, "k1", n, 1);
                    ref->quantize_rows(X, n, ldx, dh, dh4, lanes, c0, s0, k0, n0, e0);
                    kt->quantize_rows(X, n, ldx, dh, dh4, lanes, c1, s1, k1, n1, e1);
                    tc_bits(&c, "codes", c1, c0, (size_t)slots * dh4);
                    tc_bits(&c, "scale", s1, s0, sizeof(float) * n);
                    tc_bits(&c, "csum", k1, k0, sizeof(int32_t) * n);
                    for (int row = 0; row < n; row++) {
                        const float *x = X + (size_t)row * ldx;
                        const int8_t *cr = c1 + (size_t)(row / lanes) * dh4 * lanes +
                                           (size_t)(row % lanes) * 4;
                        double xx = 0, hh = 0, ee = 0;
                        int fin = 1;
                        for (int d = 0; d < dh; d++) {
                            fin &= isfinite(x[d]) != 0;
                            double cd = cr[(size_t)(d / 4) * 4 * lanes + d % 4];
                            double hd = (double)s1[row] * cd;
                            xx += (double)x[d] * x[d];
                            hh += hd * hd;
                            ee += (x[d] - hd) * (x[d] - hd);
                        }
                        if (row % 8 == 3 || row % 8 == 4 || row % 8 == 5) {
                            tc_true(&c, n1[row] == INFINITY && e1[row] == INFINITY &&
                                            s1[row] == 0.0f && k1[row] == 0,
                                    "row %d (special %d): norm %g err %g", row, row % 8,
                                    n1[row], e1[row]);
                            continue;
                        }
                        tc_true(&c, fin, "row %d not finite", row);
                        double nb = sqrt(fmax(xx, hh)) * (1 - 1e-12), eb = sqrt(ee) * (1 - 1e-12);
                        tc_true(&c, n1[row] >= nb && e1[row] >= eb,
                                "row %d: norm %.9g < %.9g or err %.9g < %.9g", row, n1[row], nb,
                                e1[row], eb);
                        tc_true(&c, fabs(n1[row] - n0[row]) <= 1e-5 * n0[row] &&
                                        fabs(e1[row] - e0[row]) <= 1e-5 * e0[row] + 1e-30,
                                "row %d: norm %g / ref %g, err %g / ref %g", row, n1[row],
                                n0[row], e1[row], e0[row]);
                        if (row % 8 == 1 && dh > 21) /* ties to even: 0.5 -> 0, 1.5 -> 2 */
                            tc_true(&c, cr[(size_t)(20 / 4) * 4 * lanes + 20 % 4] == 0 &&
                                            cr[(size_t)(21 / 4) * 4 * lanes + 21 % 4] == 2,
                                    "row %d: ties not to even (%d, %d)", row,
                                    cr[(size_t)(20 / 4) * 4 * lanes + 20 % 4],
                                    cr[(size_t)(21 / 4) * 4 * lanes + 21 % 4]);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    }
    tc_finish(&c);
}
