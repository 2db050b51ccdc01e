/* test_gpn.c — GPN forward kernels vs the scalar reference:
 * gpn_project_keys, gpn_project_query, gpn_levels, gpn_probs; exact level
 * decisions away from the float band, exact and near ties, NaN behaviour. */
#include <string.h>

#include "util.h"

static const int G_LIST[] = {1, 5, 16};
static const int L_LIST[] = {1, 2, 3, 8};

/* ------------------------------------------------------ gpn_project_keys */
Test(gpn, project_keys_vs_ref, .timeout = TEST_TIMEOUT)
{
    static const int D_LIST[] = {1, 3, 64, 256};
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn project_keys");
    tc_init(&c, "gpn_project_keys");
    trng rng;
    rng_init(&rng, 101);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++) {
        int N = ns[in];
        for (int id = 0; id < 4; id++) {
            for (int ig = 0; ig < 3; ig++) {
                for (int off = 0; off < 2; off++) {
                    int d = D_LIST[id], g = G_LIST[ig];
                    if (N > 33 && (off == 0 || d == 1 || g == 1 || (N > 1001 && d > 64)))
                        continue; /* large N: the widths that matter, unaligned */
                    int ldp = N + (off ? 3 : 0);
                    tarena a = {0};
                    float *E = ar_f(&a, "E", (size_t)N * d, off);
                    float *U = ar_f(&a, "U", (size_t)g * d, off);
                    float *b1 = ar_f(&a, "b1", (size_t)g, off);
                    fill_unif(&rng, E, (size_t)N * d, -1, 1);
                    fill_unif(&rng, U, (size_t)g * d, -1, 1);
                    fill_unif(&rng, b1, (size_t)g, -1, 1);
                    float *Pr = ar_f(&a, "P_ref", (size_t)g * ldp, 0);
                    float *Pm = ar_f(&a, "P_mag", (size_t)g * ldp, 0);
                    ga_ref_gpn_project_keys(E, N, d, U, b1, g, Pr, ldp);
                    /* magnitude: sum_k |U E| + |b1| = the reference on |inputs| */
                    ga_ref_gpn_project_keys(ar_abs(&a, "|E|", E, (size_t)N * d), N, d,
                                            ar_abs(&a, "|U|", U, (size_t)g * d),
                                            ar_abs(&a, "|b1|", b1, (size_t)g), g, Pm, ldp);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d d=%d g=%d ldp=%d off=%d", N, d, g, ldp, off);
                        float *P = ar_f(&a, "P", (size_t)g * ldp, off);
                        for (size_t i = 0; i < (size_t)g * ldp; i++)
                            P[i] = GAP_SENTINEL;
                        v.k[vi]->gpn_project_keys(E, N, d, U, b1, g, P, ldp);
                        /* d products + b1: rtol_sum(d + 1) of sum|terms| */
                        tc_close2(&c, "P", P, ldp, Pr, ldp, Pm, ldp, g, N, rtol_sum(d + 1),
                                  ATOL_TINY);
                        tc_gap_untouched(&c, "P", P, g, N, ldp, GAP_SENTINEL);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
            }
        }
    }
    tc_finish(&c);
}

/* ----------------------------------------------------- gpn_project_query */
Test(gpn, project_query_vs_ref, .timeout = TEST_TIMEOUT)
{
    static const int D_LIST[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 256, 1001};
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn project_query");
    tc_init(&c, "gpn_project_query");
    trng rng;
    rng_init(&rng, 102);
    for (size_t id = 0; id < sizeof D_LIST / sizeof D_LIST[0]; id++) {
        for (int ig = 0; ig < 3; ig++) {
            for (int off = 0; off < 2; off++) {
                int d = D_LIST[id], g = G_LIST[ig];
                tarena a = {0};
                float *x = ar_f(&a, "x", (size_t)d, off);
                float *W = ar_f(&a, "W", (size_t)g * d, off);
                fill_unif(&rng, x, (size_t)d, -1, 1);
                fill_unif(&rng, W, (size_t)g * d, -1, 1);
                float *rr = ar_f(&a, "r_ref", (size_t)g, 0);
                float *rm = ar_f(&a, "r_mag", (size_t)g, 0);
                ga_ref_gpn_project_query(x, d, W, g, rr);
                ga_ref_gpn_project_query(ar_abs(&a, "|x|", x, (size_t)d), d,
                                         ar_abs(&a, "|W|", W, (size_t)g * d), g, rm);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "d=%d g=%d off=%d", d, g, off);
                    float *r = ar_f(&a, "r", (size_t)g, off);
                    v.k[vi]->gpn_project_query(x, d, W, g, r);
                    /* d products: rtol_sum(d) of sum_k |W x| */
                    tc_close(&c, "r", r, rr, rm, g, rtol_sum(d), ATOL_TINY);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
        }
    }
    tc_finish(&c);
}

/* ------------------------------------------------------------ gpn inputs */
typedef struct gpn_case {
    int N, g, L, ldp, off;
    float *P, *r, *W2, *b2;
    double *z, *err;
} gpn_case;

/* P [g][ldp] with the padding columns [N, ldp) set to NaN: a kernel that
 * reads them would produce NaN logits (flag, levels) and fail. */
static void gpn_make(tarena *a, trng *rng, gpn_case *k, int N, int g, int L, int off)
{
    k->N = N;
    k->g = g;
    k->L = L;
    k->off = off;
    k->ldp = N + 5;
    k->P = ar_f(a, "P", (size_t)g * k->ldp, off);
    k->r = ar_f(a, "r", (size_t)g, off);
    k->W2 = ar_f(a, "W2", (size_t)L * g, off);
    k->b2 = ar_f(a, "b2", (size_t)L, off);
    for (int j = 0; j < g; j++) {
        fill_unif(rng, k->P + (size_t)j * k->ldp, (size_t)N, -1, 1);
        for (int i = N; i < k->ldp; i++)
            k->P[(size_t)j * k->ldp + i] = NAN;
    }
    fill_unif(rng, k->r, (size_t)g, -0.5, 0.5);
    fill_unif(rng, k->W2, (size_t)L * g, -1, 1);
    fill_unif(rng, k->b2, (size_t)L, -0.3, 0.3);
    k->z = ar_d(a, "z", (size_t)N * L + 1);
    k->err = ar_d(a, "err", (size_t)N * L + 1);
}

static int gpn_model(gpn_case *k)
{
    return gpn_logits_d(k->P, k->ldp, k->r, k->W2, k->b2, k->N, k->g, k->L, k->z, k->err);
}

/* Levels: exact where the decision is robust (all keys with random data, bar
 * a few near ties), else one of the candidate levels.  Returns the number of
 * near-tie keys. */
static long check_levels(tcheck *c, const gpn_case *k, const uint8_t *lev,
                         const uint8_t *lev_ref)
{
    long near = 0;
    int bad = 0, first = -1;
    for (int i = 0; i < k->N; i++) {
        int robust;
        unsigned cand;
        const double *z = k->z + (size_t)i * k->L, *e = k->err + (size_t)i * k->L;
        int best = gpn_level_d(z, e, k->L, &robust, &cand);
        if (robust) {
            if (lev[i] != best || lev_ref[i] != best) {
                bad++;
                if (first < 0)
                    first = i;
            }
        } else {
            near++;
            if (lev[i] >= k->L || !((cand >> lev[i]) & 1u)) {
                bad++;
                if (first < 0)
                    first = i;
            }
        }
    }
    c->checks++;
    if (bad) {
        const double *z = k->z + (size_t)first * k->L;
        tc_fail(c, "levels: %d of %d keys wrong; first key %d: got %d, ref %d, double "
                   "argmax %d (z0 %.9g, z1 %.9g, z_last %.9g)",
                bad, k->N, first, lev[first], lev_ref[first],
                gpn_level_d(z, k->err + (size_t)first * k->L, k->L, NULL, NULL), z[0],
                k->L > 1 ? z[1] : 0.0, z[k->L - 1]);
    }
    return near;
}

/* ------------------------------------------------------------ gpn_levels */
Test(gpn, levels_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn levels");
    tc_init(&c, "gpn_levels");
    trng rng;
    rng_init(&rng, 103);
    int ns[40], nn = n_sizes(ns, 1);
    long near = 0, keys = 0;
    for (int in = 0; in < nn; in++) {
        int N = ns[in];
        for (int ig = 0; ig < 3; ig++)
            for (int il = 0; il < 4; il++)
                for (int off = 0; off < 2; off++) {
                    int g = G_LIST[ig], L = L_LIST[il];
                    if (N > 33 && (off == 0 || g != 16 || (L != 3 && L != 8)))
                        continue;
                    if (N > 4097 && L != 3)
                        continue;
                    tarena a = {0};
                    gpn_case k;
                    gpn_make(&a, &rng, &k, N, g, L, off);
                    gpn_model(&k);
                    uint8_t *lr = ar_u8(&a, "levels_ref", (size_t)N, 0);
                    int fr = ga_ref_gpn_levels(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, lr);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d g=%d L=%d off=%d", N, g, L, off);
                        uint8_t *lev = ar_u8(&a, "levels", (size_t)N, off);
                        int f = v.k[vi]->gpn_levels(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, lev);
                        tc_true(&c, f == 0 && fr == 0, "NaN flag %d (ref %d) without any NaN", f,
                                fr);
                        long nt = check_levels(&c, &k, lev, lr);
                        if (vi == 0) {
                            near += nt;
                            keys += N;
                        }
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    }
    /* the band check must leave the test meaningful */
    cr_expect(near * 100 <= keys, "gpn_levels: %ld of %ld keys are near ties", near, keys);
    cr_log_info("gpn levels: %ld of %ld keys lay within the float band of a tie "
                "(checked as near ties)",
                near, keys);
    tc_finish(&c);
}

/* Exact ties: levels l1 < l2 with identical W2 rows and b2 entries compute
 * the same logit with the same operations, so the float values are bitwise
 * equal in any variant and the lower level must win.  Both dominate the
 * other levels by a wide margin. */
Test(gpn, levels_exact_ties, .timeout = TEST_TIMEOUT)
{
    static const int PAIRS[][3] = {{2, 0, 1}, {3, 0, 2}, {3, 1, 2}, {8, 0, 7}, {8, 2, 5},
                                   {8, 6, 7}, {8, 0, 1}};
    static const int NS[] = {1, 3, 8, 15, 16, 17, 31, 33, 100};
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn levels_exact_ties");
    tc_init(&c, "gpn_levels ties");
    trng rng;
    rng_init(&rng, 104);
    for (size_t ip = 0; ip < sizeof PAIRS / sizeof PAIRS[0]; ip++)
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
            for (int ig = 0; ig < 3; ig++) {
                int L = PAIRS[ip][0], l1 = PAIRS[ip][1], l2 = PAIRS[ip][2];
                int N = NS[in], g = G_LIST[ig], off = (int)(in & 1);
                tarena a = {0};
                gpn_case k;
                gpn_make(&a, &rng, &k, N, g, L, off);
                fill_unif(&rng, k.W2, (size_t)L * g, -0.1, 0.1);
                for (int l = 0; l < L; l++)
                    k.b2[l] = -5.0f;
                memcpy(k.W2 + (size_t)l2 * g, k.W2 + (size_t)l1 * g, sizeof(float) * g);
                k.b2[l1] = k.b2[l2] = 5.0f;
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d g=%d L=%d tie %d=%d", N, g, L, l1, l2);
                    uint8_t *lev = ar_u8(&a, "levels", (size_t)N, off);
                    float *pi = ar_f(&a, "pi", (size_t)L * N, off);
                    uint8_t *lev2 = ar_u8(&a, "levels2", (size_t)N, off);
                    v.k[vi]->gpn_levels(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, lev);
                    v.k[vi]->gpn_probs(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, pi, N, lev2);
                    int bad = 0, bad2 = 0;
                    for (int i = 0; i < N; i++) {
                        bad += lev[i] != l1;
                        bad2 += lev2[i] != l1;
                    }
                    tc_true(&c, bad == 0, "gpn_levels: %d keys did not resolve the tie to the "
                            "lower level %d", bad, l1);
                    tc_true(&c, bad2 == 0, "gpn_probs: %d keys did not resolve the tie to the "
                            "lower level %d", bad2, l1);
                }
                /* all levels equal: level 0 everywhere */
                for (int l = 0; l < L; l++) {
                    memcpy(k.W2 + (size_t)l * g, k.W2, sizeof(float) * g);
                    k.b2[l] = 0.25f;
                }
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d g=%d L=%d all logits equal", N, g, L);
                    uint8_t *lev = ar_u8(&a, "levels", (size_t)N, off);
                    v.k[vi]->gpn_levels(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, lev);
                    int bad = 0;
                    for (int i = 0; i < N; i++)
                        bad += lev[i] != 0;
                    tc_true(&c, bad == 0, "%d keys not at level 0", bad);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* Near ties: b2[l2] is 1..4 ulp above b2[l1] with identical W2 rows.  The
 * logits differ by at most a few ulp, i.e. within the float band: a correct
 * variant may pick either l1 or l2, but nothing else. */
Test(gpn, levels_near_ties, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn levels_near_ties");
    tc_init(&c, "gpn_levels near ties");
    trng rng;
    rng_init(&rng, 105);
    long upper = 0, total = 0;
    for (int k4 = 1; k4 <= 4; k4++)
        for (int il = 1; il < 4; il++) {
            int L = L_LIST[il], N = 37, g = 16;
            int l1 = il == 1 ? 0 : 1, l2 = L - 1;
            tarena a = {0};
            gpn_case k;
            gpn_make(&a, &rng, &k, N, g, L, 1);
            fill_unif(&rng, k.W2, (size_t)L * g, -0.1, 0.1);
            for (int l = 0; l < L; l++)
                k.b2[l] = -5.0f;
            memcpy(k.W2 + (size_t)l2 * g, k.W2 + (size_t)l1 * g, sizeof(float) * g);
            k.b2[l1] = 1.5f;
            k.b2[l2] = ulp_step(1.5f, k4);
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d L=%d b2[%d] = b2[%d] + %d ulp", N, L, l2, l1, k4);
                uint8_t *lev = ar_u8(&a, "levels", (size_t)N, 1);
                v.k[vi]->gpn_levels(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, lev);
                int bad = 0;
                for (int i = 0; i < N; i++) {
                    bad += lev[i] != l1 && lev[i] != l2;
                    upper += lev[i] == l2;
                    total++;
                }
                tc_true(&c, bad == 0, "%d keys chose a level other than %d or %d", bad, l1, l2);
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    cr_log_info("gpn levels_near_ties: %ld of %ld near-tie keys resolved to the upper level",
                upper, total);
    tc_finish(&c);
}

/* NaN behaviour (granattn.h): the argmax is a running strict '>' from level
 * 0, so a NaN logit never wins and a NaN z_0 keeps level 0; the return value
 * is nonzero iff any logit of any key is NaN.  NaN inputs reach the logits
 * through u = relu(P + r): like the reference, we expect relu to propagate a
 * NaN (see the report: granattn.h does not say it explicitly). */
enum nan_site { NAN_P, NAN_R, NAN_W2_ROW1, NAN_B2_0, NAN_B2_LAST, NAN_SITES };
static const char *const NAN_SITE_NAME[] = {"P[j][i] of 3 keys", "r[j]", "W2[1][j]",
                                            "b2[0]", "b2[L-1]"};

static void put_nan(gpn_case *k, int site)
{
    int N = k->N, g = k->g, L = k->L;
    switch (site) {
    case NAN_P:
        k->P[(size_t)(g - 1) * k->ldp + 0] = NAN;
        k->P[(size_t)(g / 2) * k->ldp + N / 2] = NAN;
        k->P[(size_t)0 * k->ldp + N - 1] = NAN;
        break;
    case NAN_R: k->r[g / 2] = NAN; break;
    case NAN_W2_ROW1: k->W2[(size_t)1 * g + g / 3] = NAN; break;
    case NAN_B2_0: k->b2[0] = NAN; break;
    case NAN_B2_LAST: k->b2[L - 1] = NAN; break;
    }
}

static void gpn_nan_test(int probs)
{
    static const int NS[] = {1, 2, 7, 8, 15, 16, 17, 33, 100};
    tvariants v;
    tcheck c;
    variants_get(&v, probs ? "gpn probs_nan" : "gpn levels_nan");
    tc_init(&c, probs ? "gpn_probs NaN" : "gpn_levels NaN");
    trng rng;
    rng_init(&rng, probs ? 106 : 107);
    for (int site = 0; site < NAN_SITES; site++)
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
            for (int L = 2; L <= 8; L += 6) { /* L = 2 and 8 (W2 row 1 needs L >= 2) */
                int N = NS[in], g = in & 1 ? 5 : 16, off = (int)(in & 1);
                tarena a = {0};
                gpn_case k;
                gpn_make(&a, &rng, &k, N, g, L, off);
                put_nan(&k, site);
                int fm = gpn_model(&k);
                uint8_t *lr = ar_u8(&a, "levels_ref", (size_t)N, 0);
                float *pir = ar_f(&a, "pi_ref", (size_t)L * N, 0);
                int fr = ga_ref_gpn_probs(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, pir, N, lr);
                cr_assert(fm && fr, "test setup: NaN did not reach the logits");
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "NaN in %s, N=%d g=%d L=%d", NAN_SITE_NAME[site], N, g, L);
                    uint8_t *lev = ar_u8(&a, "levels", (size_t)N, off);
                    int f;
                    float *pi = NULL;
                    if (probs) {
                        pi = ar_f(&a, "pi", (size_t)L * N, off);
                        f = v.k[vi]->gpn_probs(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, pi, N,
                                               lev);
                    } else {
                        f = v.k[vi]->gpn_levels(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, lev);
                    }
                    tc_true(&c, f != 0, "NaN flag not set");
                    check_levels(&c, &k, lev, lr);
                    if (probs) {
                        /* a key with a NaN logit has NaN probabilities (softmax of
                         * a vector holding NaN); other keys are finite */
                        int bad = 0, first = -1;
                        for (int i = 0; i < N; i++) {
                            int key_nan = 0;
                            for (int l = 0; l < L; l++)
                                key_nan |= isnan(k.z[(size_t)i * L + l]) != 0;
                            for (int l = 0; l < L; l++)
                                if ((isnan(pi[(size_t)l * N + i]) != 0) != key_nan) {
                                    bad++;
                                    if (first < 0)
                                        first = i;
                                }
                        }
                        tc_true(&c, bad == 0, "pi: %d entries with the wrong NaN-ness (first key "
                                "%d)", bad, first);
                    }
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

Test(gpn, levels_nan, .timeout = TEST_TIMEOUT) { gpn_nan_test(0); }
Test(gpn, probs_nan, .timeout = TEST_TIMEOUT) { gpn_nan_test(1); }

/* ------------------------------------------------------------- gpn_probs */
Test(gpn, probs_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "gpn probs");
    tc_init(&c, "gpn_probs");
    trng rng;
    rng_init(&rng, 108);
    int ns[40], nn = n_sizes(ns, 0);
    for (int in = 0; in < nn; in++) {
        int N = ns[in];
        for (int ig = 0; ig < 3; ig++)
            for (int il = 0; il < 4; il++)
                for (int off = 0; off < 2; off++) {
                    int g = G_LIST[ig], L = L_LIST[il];
                    if (N > 33 && (off == 0 || g != 16 || (L != 3 && L != 8)))
                        continue;
                    int ldpi = N + (off ? 2 : 0);
                    tarena a = {0};
                    gpn_case k;
                    gpn_make(&a, &rng, &k, N, g, L, off);
                    gpn_model(&k);
                    uint8_t *lr = ar_u8(&a, "levels_ref", (size_t)N, 0);
                    float *pir = ar_f(&a, "pi_ref", (size_t)L * ldpi, 0);
                    int fr = ga_ref_gpn_probs(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, pir, ldpi,
                                              lr);
                    /* Bound per element: the logits are within err_l (absolute) of
                     * the double values; softmax turns absolute logit errors
                     * E = max_l err_l into a relative error <= 2E of each pi (d log pi_l
                     * = dz_l - sum_k pi_k dz_k), plus exp (EXP_RTOL), the sum of L
                     * terms (rtol_sum(L)) and the division (U). */
                    float *bound = ar_f(&a, "bound", (size_t)L * ldpi, 0);
                    for (int i = 0; i < N; i++) {
                        double E = 0;
                        for (int l = 0; l < L; l++)
                            E = fmax(E, k.err[(size_t)i * L + l]);
                        for (int l = 0; l < L; l++)
                            bound[(size_t)l * ldpi + i] =
                                (float)(pir[(size_t)l * ldpi + i] *
                                        (2 * E + EXP_RTOL + rtol_sum(L) + U_F32));
                    }
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "N=%d g=%d L=%d ldpi=%d off=%d", N, g, L, ldpi, off);
                        uint8_t *lev = ar_u8(&a, "levels", (size_t)N, off);
                        float *pi = ar_f(&a, "pi", (size_t)L * ldpi, off);
                        for (size_t i = 0; i < (size_t)L * ldpi; i++)
                            pi[i] = GAP_SENTINEL;
                        int f = v.k[vi]->gpn_probs(k.P, k.ldp, k.r, k.W2, k.b2, N, g, L, pi,
                                                   ldpi, lev);
                        tc_true(&c, f == 0 && fr == 0, "NaN flag %d (ref %d) without any NaN", f,
                                fr);
                        check_levels(&c, &k, lev, lr);
                        tc_close2(&c, "pi", pi, ldpi, pir, ldpi, bound, ldpi, L, N, 1.0,
                                  ATOL_TINY);
                        tc_gap_untouched(&c, "pi", pi, L, N, ldpi, GAP_SENTINEL);
                        if (L == 1) {
                            int bad = 0;
                            for (int i = 0; i < N; i++)
                                bad += fabsf(pi[i] - 1.0f) > 4 * FLT_EPSILON || lev[i] != 0;
                            tc_true(&c, bad == 0, "L = 1: %d keys with pi != 1 or level != 0",
                                    bad);
                        }
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    }
    tc_finish(&c);
}
