/* test_threshold.c — threshold + compress vs the scalar reference.  The scores
 * are inputs here, so every keep decision, the kept count and the index list
 * must match EXACTLY, always; p within EXP_RTOL, Z within rtol_sum(N) +
 * EXP_RTOL.  Special cases, padding, ties, magnitude ~80, tau = 0 levels and
 * the boundary band (scores at m + theta and within 4 ulp of it). */
#include <string.h>

#include "util.h"

static const int L_LIST[] = {1, 2, 3, 8};

/* The contract's decision, computed here independently: d = s - m in float,
 * keep = d >= theta8[level]. */
static int expected_keep(float s, float m, float theta)
{
    volatile float d = s - m; /* volatile: exactly one float subtraction */
    return d >= theta;
}

static float row_max(const float *s, int N)
{
    float m = -INFINITY;
    for (int i = 0; i < N; i++) {
        if (isnan(s[i]))
            return NAN;
        if (s[i] > m)
            m = s[i];
    }
    return m;
}

/* Runs the reference and one variant on (s, m, levels, theta8, mode) and
 * checks: count, idx exactly (and against the independent decision), p and
 * Z within tolerance; idx/p hold N + GA_KEEP_PAD elements inside canaries,
 * so a write at index N + GA_KEEP_PAD or beyond is caught by ar_check. */
static void th_run_check(tcheck *c, tarena *a, const ga_kernels *kt, const float *s, int N,
                         float m, const uint8_t *lev, const float *theta8, ga_norm mode,
                         int off)
{
    size_t cap = (size_t)N + GA_KEEP_PAD;
    int32_t *ir = ar_i32(a, "idx_ref", cap, 0);
    float *pr = ar_f(a, "p_ref", cap, 0);
    float Zr = -1.0f;
    int nr = ga_ref_threshold(s, N, m, lev, theta8, mode, ir, pr, &Zr);

    int32_t *idx = ar_i32(a, "idx", cap, off);
    float *p = ar_f(a, "p", cap, off);
    float Z = -1.0f;
    int n = kt->threshold(s, N, m, lev, theta8, mode, idx, p, &Z);

    /* the independent decision (only meaningful for a finite m) */
    if (N > 0 && isfinite(m)) {
        int ne = 0;
        for (int i = 0; i < N; i++)
            ne += expected_keep(s[i], m, theta8[lev[i]]);
        tc_eq_long(c, "reference kept count vs the contract's decision", nr, ne);
    }
    if (!tc_eq_long(c, "kept count", n, nr))
        return;
    tc_eq_i32(c, "idx", idx, ir, n);
    tc_close(c, "p", p, pr, NULL, n, EXP_RTOL, ATOL_TINY);
    /* Z: N exps (EXP_RTOL each) summed in float (rtol_sum(N)), all terms >= 0
     * so sum|terms| = Z itself */
    tc_close(c, "Z", &Z, &Zr, NULL, 1, rtol_sum(N) + EXP_RTOL, ATOL_TINY);
}

Test(threshold, vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "threshold");
    tc_init(&c, "threshold");
    trng rng;
    rng_init(&rng, 301);
    int ns[40], nn = n_sizes(ns, 1);
    for (int in = 0; in < nn; in++) {
        int N = ns[in];
        for (int il = 0; il < 4; il++)
            for (int mode = 0; mode < 2; mode++)
                for (int off = 0; off < 2; off++)
                    for (int pad = 0; pad < 2; pad++) {
                        int L = L_LIST[il];
                        if (N > 33 && (off == 0 || L == 1 || L == 2 || pad != mode))
                            continue;
                        if (N > 4097 && L != 3)
                            continue;
                        float theta8[GA_MAX_LEVELS];
                        test_theta(L, theta8, NULL);
                        tarena a = {0};
                        float *s = ar_f(&a, "s", (size_t)N, off);
                        uint8_t *lev = ar_u8(&a, "levels", (size_t)N, off);
                        double shift = rng_range(&rng, -5, 5);
                        fill_unif(&rng, s, (size_t)N, shift - 12, shift);
                        if (pad)
                            for (int i = 0; i < N; i++)
                                if (rng_unit(&rng) < 0.1)
                                    s[i] = -INFINITY;
                        fill_levels(&rng, lev, (size_t)N, L);
                        float m = row_max(s, N);
                        for (int vi = 0; vi < v.n; vi++) {
                            c.isa = v.k[vi]->name;
                            tc_case(&c, "N=%d L=%d mode=%s off=%d padding=%d", N, L,
                                    mode ? "renorm" : "seed", off, pad);
                            th_run_check(&c, &a, v.k[vi], s, N, m, lev, theta8, (ga_norm)mode,
                                         off);
                        }
                        ar_check(&a, &c);
                        ar_free(&a);
                    }
    }
    tc_finish(&c);
}

/* N == 0, all padded, m NaN, m == +inf: returns 0 with Z = 0 / NaN. */
Test(threshold, special_cases, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {0, 1, 7, 8, 15, 16, 17, 33, 100};
    tvariants v;
    tcheck c;
    variants_get(&v, "threshold special_cases");
    tc_init(&c, "threshold special");
    trng rng;
    rng_init(&rng, 302);
    float theta8[GA_MAX_LEVELS];
    test_theta(3, theta8, NULL);
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int kind = 0; kind < 4; kind++)
            for (int mode = 0; mode < 2; mode++) {
                static const char *const KIND[] = {"all padded (m = -inf)", "a NaN score (m NaN)",
                                                   "a +inf score (m = +inf)",
                                                   "N = 0 with m = 0"};
                int N = NS[in];
                if ((kind == 1 || kind == 2) && N == 0)
                    continue;
                tarena a = {0};
                float *s = ar_f(&a, "s", (size_t)N, 1);
                uint8_t *lev = ar_u8(&a, "levels", (size_t)N, 1);
                fill_unif(&rng, s, (size_t)N, -3, 3);
                fill_levels(&rng, lev, (size_t)N, 3);
                float m = 0.0f;
                float Zexp = 0.0f;
                switch (kind) {
                case 0:
                    for (int i = 0; i < N; i++)
                        s[i] = -INFINITY;
                    m = -INFINITY;
                    break;
                case 1:
                    s[N / 2] = NAN;
                    m = NAN;
                    Zexp = NAN;
                    break;
                case 2:
                    s[N - 1] = INFINITY;
                    m = INFINITY;
                    Zexp = NAN;
                    break;
                case 3:
                    N = 0;
                    m = 0.0f;
                    break;
                }
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "%s N=%d mode=%s", KIND[kind], N, mode ? "renorm" : "seed");
                    int32_t *idx = ar_i32(&a, "idx", (size_t)N + GA_KEEP_PAD, 1);
                    float *p = ar_f(&a, "p", (size_t)N + GA_KEEP_PAD, 1);
                    float Z = 12345.0f;
                    int n = v.k[vi]->threshold(s, N, m, lev, theta8, (ga_norm)mode, idx, p, &Z);
                    tc_eq_long(&c, "count", n, 0);
                    if (isnan(Zexp))
                        tc_true(&c, isnan(Z), "Z = %.9g, expected NaN", (double)Z);
                    else
                        tc_true(&c, Z == 0.0f, "Z = %.9g, expected 0", (double)Z);
                    th_run_check(&c, &a, v.k[vi], s, N, m, lev, theta8, (ga_norm)mode, 0);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* -inf padding anywhere (first, tails, middle) is never kept and adds 0 to
 * Z; scores of magnitude ~80 (exp(80) overflows float: only the max shift
 * keeps it finite), on both sides of 0; many exact ties. */
Test(threshold, adversarial, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1001};
    static const char *const KIND[] = {"scores in [60, 80]", "scores in [-80, -60]",
                                       "scores in [-100, 88] with padding",
                                       "all scores equal", "half equal to m, half padding",
                                       "every other key padded"};
    tvariants v;
    tcheck c;
    variants_get(&v, "threshold adversarial");
    tc_init(&c, "threshold adversarial");
    trng rng;
    rng_init(&rng, 303);
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int kind = 0; kind < 6; kind++)
            for (int il = 0; il < 4; il++)
                for (int mode = 0; mode < 2; mode++) {
                    int N = NS[in], L = L_LIST[il];
                    float theta8[GA_MAX_LEVELS];
                    test_theta(L, theta8, NULL);
                    tarena a = {0};
                    float *s = ar_f(&a, "s", (size_t)N, 1);
                    uint8_t *lev = ar_u8(&a, "levels", (size_t)N, 1);
                    fill_levels(&rng, lev, (size_t)N, L);
                    switch (kind) {
                    case 0: fill_unif(&rng, s, (size_t)N, 60, 80); break;
                    case 1: fill_unif(&rng, s, (size_t)N, -80, -60); break;
                    case 2:
                        fill_unif(&rng, s, (size_t)N, -100, 88);
                        for (int i = 0; i < N; i += 3)
                            s[i] = -INFINITY;
                        s[N - 1] = -INFINITY;
                        if (N > 1)
                            s[N / 2] = 87.5f; /* at least one finite */
                        break;
                    case 3:
                        for (int i = 0; i < N; i++)
                            s[i] = 3.25f;
                        break;
                    case 4:
                        for (int i = 0; i < N; i++)
                            s[i] = (i & 1) ? -INFINITY : 79.5f;
                        break;
                    case 5:
                        fill_unif(&rng, s, (size_t)N, -5, 5);
                        for (int i = 1; i < N; i += 2)
                            s[i] = -INFINITY;
                        break;
                    }
                    float m = row_max(s, N);
                    for (int vi = 0; vi < v.n; vi++) {
                        c.isa = v.k[vi]->name;
                        tc_case(&c, "%s N=%d L=%d mode=%s", KIND[kind], N, L,
                                mode ? "renorm" : "seed");
                        th_run_check(&c, &a, v.k[vi], s, N, m, lev, theta8, (ga_norm)mode, 1);
                        /* independent checks: no padded key kept, Z finite and >= 1
                         * (the max key has p = 1) */
                        int32_t *idx = ar_i32(&a, "idx2", (size_t)N + GA_KEEP_PAD, 0);
                        float *p = ar_f(&a, "p2", (size_t)N + GA_KEEP_PAD, 0);
                        float Z;
                        int n = v.k[vi]->threshold(s, N, m, lev, theta8, (ga_norm)mode, idx, p,
                                                   &Z);
                        int padded_kept = 0;
                        for (int k = 0; k < n; k++)
                            padded_kept += idx[k] < 0 || idx[k] >= N || s[idx[k]] == -INFINITY;
                        tc_true(&c, padded_kept == 0, "%d padded (or out-of-range) keys kept",
                                padded_kept);
                        if (m != -INFINITY)
                            tc_true(&c, isfinite(Z) && Z >= 1.0f,
                                    "Z = %.9g: expected finite >= 1", (double)Z);
                        else
                            tc_true(&c, n == 0 && Z == 0.0f, "all padded: count %d, Z = %.9g",
                                    n, (double)Z);
                        if (kind == 3)
                            tc_eq_long(&c, "all-equal scores: kept", n, N);
                    }
                    ar_check(&a, &c);
                    ar_free(&a);
                }
    tc_finish(&c);
}

/* tau = 0 levels have the effective threshold -FLT_MAX: every finite key is
 * kept, however small its weight (p may underflow to 0), and -inf padding
 * never is. */
Test(threshold, tau_zero_keeps_every_finite_key, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 5, 8, 16, 17, 33, 100, 1001};
    tvariants v;
    tcheck c;
    variants_get(&v, "threshold tau_zero");
    tc_init(&c, "threshold tau=0");
    trng rng;
    rng_init(&rng, 304);
    ga_config cfg;
    ga_config_default(&cfg);
    cfg.L = 1;
    cfg.tau[0] = 0.0f;
    cr_assert(ga_config_check(&cfg) == GA_OK);
    float theta8[GA_MAX_LEVELS];
    ga_theta_from_tau(&cfg, theta8);
    cr_assert(theta8[0] == -FLT_MAX, "ga_theta_from_tau(tau = 0) = %.9g, expected -FLT_MAX",
              (double)theta8[0]);
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int mode = 0; mode < 2; mode++) {
            int N = NS[in];
            tarena a = {0};
            float *s = ar_f(&a, "s", (size_t)N, 1);
            uint8_t *lev = ar_u8(&a, "levels", (size_t)N, 1);
            memset(lev, 0, (size_t)N);
            fill_unif(&rng, s, (size_t)N, -200, 0);
            for (int i = 0; i < N; i++) {
                switch (i % 7) {
                case 1: s[i] = -1e30f; break;
                case 3: s[i] = -3e38f; break;
                case 5: s[i] = -INFINITY; break;
                default: break;
                }
            }
            s[0] = 0.0f; /* m = 0: s - m cannot overflow for finite s */
            float m = row_max(s, N);
            int finite = 0;
            for (int i = 0; i < N; i++)
                finite += s[i] != -INFINITY;
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d mode=%s", N, mode ? "renorm" : "seed");
                int32_t *idx = ar_i32(&a, "idx", (size_t)N + GA_KEEP_PAD, 1);
                float *p = ar_f(&a, "p", (size_t)N + GA_KEEP_PAD, 1);
                float Z;
                int n = v.k[vi]->threshold(s, N, m, lev, theta8, (ga_norm)mode, idx, p, &Z);
                tc_eq_long(&c, "kept = finite keys", n, finite);
                th_run_check(&c, &a, v.k[vi], s, N, m, lev, theta8, (ga_norm)mode, 0);
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

/* The boundary band: scores placed exactly at m + theta and within 4 ulp of
 * it.  Part 1 uses values where m + theta and s - m are exact, so the
 * documented ">=" is tested directly: the exact value is kept, one ulp below
 * is dropped.  Part 2 uses ln(tau) thresholds and an m for which s - m
 * rounds; the decision must be the contract's (float subtraction, >=) and
 * match the reference exactly. */
Test(threshold, boundary_band, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 3, 8, 15, 16, 17, 31, 33, 100, 1001};
    /* part 1: exactly representable m + theta (theta8 need not come from tau) */
    static const float THETA_EXACT[GA_MAX_LEVELS] = {-0.5f, -1.25f, -2.5f, -3.0f,
                                                     -4.75f, -6.0f, -7.5f, -FLT_MAX};
    tvariants v;
    tcheck c;
    variants_get(&v, "threshold boundary_band");
    tc_init(&c, "threshold boundary");
    trng rng;
    rng_init(&rng, 305);
    float theta_tau[GA_MAX_LEVELS];
    test_theta(8, theta_tau, NULL);
    for (int part = 0; part < 2; part++)
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
            for (int mode = 0; mode < 2; mode++) {
                int N = NS[in];
                const float *theta8 = part == 0 ? THETA_EXACT : theta_tau;
                /* part 1: |theta| < |m|, so m + theta and s - m are exact (the
                 * difference of two floats of the same sign smaller than both) */
                float m = part == 0 ? -16.0f : 2.7182817f;
                tarena a = {0};
                float *s = ar_f(&a, "s", (size_t)N, 1);
                uint8_t *lev = ar_u8(&a, "levels", (size_t)N, 1);
                int *kstep = (int *)ar_alloc(&a, "steps", sizeof(int) * (size_t)N, 0);
                fill_levels(&rng, lev, (size_t)N, 7); /* levels 0..6: finite thresholds */
                for (int i = 0; i < N; i++) {
                    float edge = m + theta8[lev[i]]; /* exact in part 1 */
                    kstep[i] = rng_int(&rng, 9) - 4; /* -4 .. +4 ulp */
                    s[i] = ulp_step(edge, kstep[i]);
                }
                s[N / 2] = m; /* the max key */
                kstep[N / 2] = 99;
                int expect = 0;
                for (int i = 0; i < N; i++) {
                    int e = expected_keep(s[i], m, theta8[lev[i]]);
                    if (part == 0 && kstep[i] != 99) {
                        /* exact arithmetic: keep iff at or above the edge */
                        cr_assert(e == (kstep[i] >= 0), "test setup: exactness assumption");
                    }
                    expect += e;
                }
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "%s N=%d mode=%s", part == 0 ? "exact edges" : "ln(tau) edges",
                            N, mode ? "renorm" : "seed");
                    int32_t *idx = ar_i32(&a, "idx", (size_t)N + GA_KEEP_PAD, 1);
                    float *p = ar_f(&a, "p", (size_t)N + GA_KEEP_PAD, 1);
                    float Z;
                    int n = v.k[vi]->threshold(s, N, m, lev, theta8, (ga_norm)mode, idx, p, &Z);
                    tc_eq_long(&c, "kept count vs the contract (d = s - m >= theta)", n, expect);
                    int k = 0, bad = -1;
                    for (int i = 0; i < N && bad < 0; i++)
                        if (expected_keep(s[i], m, theta8[lev[i]])) {
                            if (k >= n || idx[k] != i)
                                bad = i;
                            k++;
                        }
                    tc_true(&c, bad < 0, "key %d (s = m + theta %+d ulp) decided wrongly", bad,
                            bad >= 0 ? kstep[bad] : 0);
                    th_run_check(&c, &a, v.k[vi], s, N, m, lev, theta8, (ga_norm)mode, 0);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}
