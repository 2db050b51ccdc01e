/* test_scores.c — scores (S = scale Q K^T + bias, row max m) vs the scalar
 * reference; -inf padding, N == 0, NaN in Q / K / bias, large magnitudes. */
#include <string.h>

#include "util.h"

static const int DH_LIST[] = {1, 3, 64, 128};

typedef struct sc_case {
    int N, dh, T, ldq, lds, off;
    float scale;
    float *K, *Q, *bias; /* bias may be NULL */
    float *Sr, *mr;      /* reference */
    float *Smag;         /* sum |terms| of every score */
} sc_case;

/* Q [T][ldq] with its padding columns [dh, ldq) set to NaN (must not be
 * read); bias: 0 except about 10% -inf padding keys (and the last key). */
static void sc_make(tarena *a, trng *rng, sc_case *k, int N, int dh, int T, int off,
                    int with_bias, double amp)
{
    k->N = N;
    k->dh = dh;
    k->T = T;
    k->off = off;
    k->ldq = dh + (off ? 3 : 0);
    k->lds = N + (off ? 2 : 0);
    k->scale = 1.0f / sqrtf((float)dh);
    k->K = ar_f(a, "K", (size_t)N * dh, off);
    k->Q = ar_f(a, "Q", (size_t)T * k->ldq, off);
    fill_unif(rng, k->K, (size_t)N * dh, -amp, amp);
    for (int t = 0; t < T; t++) {
        fill_unif(rng, k->Q + (size_t)t * k->ldq, (size_t)dh, -amp, amp);
        for (int j = dh; j < k->ldq; j++)
            k->Q[(size_t)t * k->ldq + j] = NAN;
    }
    k->bias = NULL;
    if (with_bias) {
        k->bias = ar_f(a, "bias", (size_t)N, off);
        for (int i = 0; i < N; i++)
            k->bias[i] = (rng_unit(rng) < 0.1 || i == N - 1) ? -INFINITY : 0.0f;
    }
    k->Sr = ar_f(a, "S_ref", (size_t)T * k->lds + 1, 0);
    k->mr = ar_f(a, "m_ref", (size_t)T, 0);
    k->Smag = ar_f(a, "S_mag", (size_t)T * k->lds + 1, 0);
    ga_ref_scores(k->K, N, dh, k->Q, T, k->ldq, k->scale, k->bias, k->Sr, k->lds, k->mr);
    /* magnitude = the reference on |K|, |Q| without bias (bias is 0 or -inf:
     * adding 0 is exact, -inf is compared as a special value) */
    float *Qa = ar_f(a, "|Q|", (size_t)T * k->ldq, 0);
    for (size_t i = 0; i < (size_t)T * k->ldq; i++)
        Qa[i] = fabsf(k->Q[i]);
    float *mm = ar_f(a, "m_mag", (size_t)T, 0);
    ga_ref_scores(ar_abs(a, "|K|", k->K, (size_t)N * dh), N, dh, Qa, T, k->ldq, k->scale,
                  NULL, k->Smag, k->lds, mm);
}

/* m must be the exact max of the variant's own scores (NaN if any is NaN,
 * -inf if none / all padded): taking a max involves no rounding. */
static void check_m_exact(tcheck *c, const float *S, int lds, const float *m, int N, int T)
{
    for (int t = 0; t < T; t++) {
        float mx = -INFINITY;
        int nan = 0;
        for (int i = 0; i < N; i++) {
            float x = S[(size_t)t * lds + i];
            if (isnan(x))
                nan = 1;
            else if (x > mx)
                mx = x;
        }
        if (nan)
            tc_true(c, isnan(m[t]), "m[%d] = %.9g but S[%d] holds a NaN", t, (double)m[t], t);
        else
            tc_true(c, f2u(m[t]) == f2u(mx), "m[%d] = %.9g is not the max %.9g of S[%d]", t,
                    (double)m[t], (double)mx, t);
    }
}

/* Runs one variant on the case and checks S (tolerance), m (exact w.r.t. S)
 * and the untouched padding of S. */
static void sc_run_check(tcheck *c, tarena *a, const ga_kernels *kt, const sc_case *k)
{
    float *S = ar_f(a, "S", (size_t)k->T * k->lds + 1, k->off);
    float *m = ar_f(a, "m", (size_t)k->T, k->off);
    for (size_t i = 0; i < (size_t)k->T * k->lds + 1; i++)
        S[i] = GAP_SENTINEL;
    kt->scores(k->K, k->N, k->dh, k->Q, k->T, k->ldq, k->scale, k->bias, S, k->lds, m);
    /* dh products, then scale and bias: rtol_sum(dh + 1) of sum|terms| */
    tc_close2(c, "S", S, k->lds, k->Sr, k->lds, k->Smag, k->lds, k->T, k->N,
              rtol_sum(k->dh + 1), ATOL_TINY);
    check_m_exact(c, S, k->lds, m, k->N, k->T);
    tc_gap_untouched(c, "S", S, k->T, k->N, k->lds, GAP_SENTINEL);
    tc_true(c, f2u(S[(size_t)k->T * k->lds]) == f2u(GAP_SENTINEL),
            "S written past its last row");
}

Test(scores, vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "scores");
    tc_init(&c, "scores");
    trng rng;
    rng_init(&rng, 201);
    int ns[40], nn = n_sizes(ns, 1);
    for (int in = 0; in < nn; in++) {
        int N = ns[in];
        for (int id = 0; id < 4; id++)
            for (int T = 1; T <= 3; T += 2)
                for (int off = 0; off < 2; off++)
                    for (int wb = 0; wb < 2; wb++) {
                        int dh = DH_LIST[id];
                        if (N > 33 && (off == 0 || dh == 1 || wb != (T == 1)))
                            continue; /* large N: unaligned, bias with T = 1 only */
                        if (N > 1001 && (dh == 3 || (dh == 128 && T == 1)))
                            continue;
                        if (N > 4097 && (dh != 64 || T != 1))
                            continue; /* 65536: dh 64, one query, bias */
                        tarena a = {0};
                        sc_case k;
                        sc_make(&a, &rng, &k, N, dh, T, off, wb, 1.0);
                        for (int vi = 0; vi < v.n; vi++) {
                            c.isa = v.k[vi]->name;
                            tc_case(&c, "N=%d dh=%d T=%d ldq=%d lds=%d off=%d bias=%s", N, dh,
                                    T, k.ldq, k.lds, off, wb ? "padded" : "NULL");
                            sc_run_check(&c, &a, v.k[vi], &k);
                        }
                        ar_check(&a, &c);
                        ar_free(&a);
                    }
    }
    tc_finish(&c);
}

/* Scores of magnitude ~80 (and a few up to ~300): nothing special for the
 * scores themselves, but they feed the exp-overflow tests downstream. */
Test(scores, large_magnitude, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 5, 16, 17, 33, 100, 1001};
    tvariants v;
    tcheck c;
    variants_get(&v, "scores large_magnitude");
    tc_init(&c, "scores large");
    trng rng;
    rng_init(&rng, 202);
    for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
        for (int id = 0; id < 4; id++) {
            int N = NS[in], dh = DH_LIST[id];
            tarena a = {0};
            sc_case k;
            /* |s| ~ amp^2 sqrt(dh) / 3 for dh products of U(-amp, amp) pairs */
            double amp = sqrt(80.0 * 3.0 / sqrt((double)dh));
            sc_make(&a, &rng, &k, N, dh, 3, 1, 1, amp);
            for (int vi = 0; vi < v.n; vi++) {
                c.isa = v.k[vi]->name;
                tc_case(&c, "N=%d dh=%d amp=%.1f", N, dh, amp);
                sc_run_check(&c, &a, v.k[vi], &k);
            }
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

Test(scores, empty_and_all_padded, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    tcheck c;
    variants_get(&v, "scores empty_and_all_padded");
    tc_init(&c, "scores special");
    trng rng;
    rng_init(&rng, 203);
    for (int vi = 0; vi < v.n; vi++) {
        c.isa = v.k[vi]->name;
        for (int id = 0; id < 4; id++) {
            int dh = DH_LIST[id];
            /* N == 0: m = -inf for every query, S untouched */
            tarena a = {0};
            float *K = ar_f(&a, "K", 0, 1), *Q = ar_f(&a, "Q", (size_t)3 * dh, 1);
            fill_unif(&rng, Q, (size_t)3 * dh, -1, 1);
            float *S = ar_f(&a, "S", 8, 1), *m = ar_f(&a, "m", 3, 1);
            for (int i = 0; i < 8; i++)
                S[i] = GAP_SENTINEL;
            tc_case(&c, "N=0 dh=%d T=3", dh);
            v.k[vi]->scores(K, 0, dh, Q, 3, dh, 0.5f, NULL, S, 0, m);
            for (int t = 0; t < 3; t++)
                tc_true(&c, m[t] == -INFINITY, "m[%d] = %.9g, expected -inf", t, (double)m[t]);
            for (int i = 0; i < 8; i++)
                tc_true(&c, f2u(S[i]) == f2u(GAP_SENTINEL), "S[%d] written with N = 0", i);
            ar_check(&a, &c);
            ar_free(&a);

            /* every key padded: S = -inf, m = -inf */
            static const int NS[] = {1, 7, 16, 17, 33, 100};
            for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++) {
                int N = NS[in];
                tarena b = {0};
                sc_case k;
                sc_make(&b, &rng, &k, N, dh, 3, (int)(in & 1), 1, 1.0);
                for (int i = 0; i < N; i++)
                    k.bias[i] = -INFINITY;
                ga_ref_scores(k.K, N, dh, k.Q, 3, k.ldq, k.scale, k.bias, k.Sr, k.lds, k.mr);
                tc_case(&c, "all padded N=%d dh=%d", N, dh);
                sc_run_check(&c, &b, v.k[vi], &k);
                for (int t = 0; t < 3; t++)
                    tc_true(&c, k.mr[t] == -INFINITY, "reference m[%d] = %.9g, expected -inf",
                            t, (double)k.mr[t]);
                ar_check(&b, &c);
                ar_free(&b);
            }
        }
    }
    tc_finish(&c);
}

/* NaN: a NaN in Q[t] makes row t NaN (padded keys stay -inf) and m[t] NaN;
 * a NaN in K[i] (i not padded) or bias[i] makes column i NaN and every m NaN
 * (m is NaN if any score is NaN, wherever the NaN sits: first, middle,
 * last = SIMD tail).  A NaN in a padded key's K row changes nothing: its
 * score is -inf (issue 9; test_edges.c tests padding in depth). */
Test(scores, nan_inputs, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 7, 8, 9, 15, 16, 17, 31, 33, 100};
    static const char *const SITE[] = {"Q[1][j]", "K[0][j]", "K[N/2][j]", "K[N-1][j]",
                                       "bias[N-1]", "bias[N/3]"};
    tvariants v;
    tcheck c;
    variants_get(&v, "scores nan_inputs");
    tc_init(&c, "scores NaN");
    trng rng;
    rng_init(&rng, 204);
    for (int site = 0; site < 6; site++)
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
            for (int id = 0; id < 3; id++) {
                int N = NS[in], dh = DH_LIST[id], T = 3, off = (int)(in & 1);
                tarena a = {0};
                sc_case k;
                sc_make(&a, &rng, &k, N, dh, T, off, 1, 1.0);
                for (int i = 0; i < N; i++)
                    k.bias[i] = i % 5 == 3 ? -INFINITY : 0.0f; /* keep key N-1 unpadded */
                int j = dh / 2;
                int key = site == 1 ? 0 : site == 2 ? N / 2 : N - 1; /* K sites */
                int padded_site = site >= 1 && site <= 3 && k.bias[key] == -INFINITY;
                switch (site) {
                case 0: k.Q[(size_t)1 * k.ldq + j] = NAN; break;
                case 1: k.K[(size_t)0 * dh + j] = NAN; break;
                case 2: k.K[(size_t)(N / 2) * dh + j] = NAN; break;
                case 3: k.K[(size_t)(N - 1) * dh + j] = NAN; break;
                case 4: k.bias[N - 1] = NAN; break;
                case 5: k.bias[N / 3] = NAN; break;
                }
                ga_ref_scores(k.K, N, dh, k.Q, T, k.ldq, k.scale, k.bias, k.Sr, k.lds, k.mr);
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "NaN in %s, N=%d dh=%d", SITE[site], N, dh);
                    float *S = ar_f(&a, "S", (size_t)T * k.lds + 1, off);
                    float *m = ar_f(&a, "m", (size_t)T, off);
                    v.k[vi]->scores(k.K, N, dh, k.Q, T, k.ldq, k.scale, k.bias, S, k.lds, m);
                    /* NaN pattern exactly as the reference, values within tolerance */
                    tc_close2(&c, "S", S, k.lds, k.Sr, k.lds, k.Smag, k.lds, T, N,
                              rtol_sum(dh + 1), ATOL_TINY);
                    for (int t = 0; t < T; t++) {
                        int expect_nan = site == 0 ? t == 1 : !padded_site;
                        tc_true(&c, (isnan(m[t]) != 0) == expect_nan,
                                "m[%d] = %.9g: expected %s", t, (double)m[t],
                                expect_nan ? "NaN" : "a number");
                        tc_true(&c, (isnan(k.mr[t]) != 0) == expect_nan,
                                "reference m[%d] = %.9g: expected %s", t, (double)k.mr[t],
                                expect_nan ? "NaN" : "a number");
                    }
                    check_m_exact(&c, S, k.lds, m, N, T);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* The block rule (docs/SPEC.md §2: a sparse result does not depend on which
 * queries share its block) rests on this: every row of a T-query `scores`
 * call is bitwise the T = 1 call on that query, S and m, for every variant.
 * Sizes cross 16-key panels, pairs of queries and of panels, and the 16 KiB
 * key chunks of the T > 1 loop, so that a block-ordered variant (such as the
 * keys-across-lanes one tried in scores.c, which this test guarded) cannot
 * drift from the row bits; dh 48 / 80 / 272 / 3 are off the 16-multiples
 * such a path would take.  Values: ordinary,
 * keys that overflow a float dot (exact recompute), NaN and inf in one key,
 * padding, all-zero keys (+0 / -0 scores and ties at the max). */
Test(scores, rows_independent_of_T, .timeout = TEST_TIMEOUT)
{
    static const int DHS[] = {16, 32, 48, 64, 80, 128, 256, 272, 3};
    static const int NS[] = {1, 15, 16, 17, 31, 33, 47, 64, 65, 100, 257, 1000};
    static const int TS[] = {2, 3, 4, 5, 32};
    tvariants v;
    tcheck c;
    variants_get(&v, "scores rows vs T = 1");
    tc_init(&c, "scores rows vs T = 1");
    trng rng;
    rng_init(&rng, 207);
    for (size_t id = 0; id < sizeof DHS / sizeof DHS[0]; id++)
        for (size_t in = 0; in < sizeof NS / sizeof NS[0]; in++)
            for (int kind = 0; kind < 3; kind++) {
                const int dh = DHS[id], N = NS[in], T = TS[(id + in + kind) % 5];
                tarena a = {0};
                sc_case k;
                sc_make(&a, &rng, &k, N, dh, T, (int)(in & 1), kind > 0, 1.0);
                if (kind == 2) { /* adversarial keys */
                    for (int i = 0; i < N; i += 7) {
                        float *Ki = k.K + (size_t)i * dh;
                        const int what = (i / 7) % 4;
                        for (int d = 0; d < dh; d++)
                            Ki[d] = what == 0 ? 3e38f : what == 1 ? 0.0f : what == 2 ? -0.0f
                                                                                 : Ki[d];
                        if (what == 3)
                            Ki[dh / 2] = (i / 7) % 8 == 3 ? NAN : INFINITY;
                    }
                    for (int t = 0; t < T; t++) /* q . 0-keys = +-0: ties at the max */
                        for (int d = 0; d < dh; d++)
                            k.Q[(size_t)t * k.ldq + d] = -fabsf(k.Q[(size_t)t * k.ldq + d]);
                }
                float *S = ar_f(&a, "S", (size_t)T * k.lds, k.off);
                float *m = ar_f(&a, "m", (size_t)T, k.off);
                float *S1 = ar_f(&a, "S1", (size_t)k.lds, 0);
                float m1;
                for (int vi = 0; vi < v.n; vi++) {
                    c.isa = v.k[vi]->name;
                    tc_case(&c, "N=%d dh=%d T=%d kind=%d", N, dh, T, kind);
                    v.k[vi]->scores(k.K, N, dh, k.Q, T, k.ldq, k.scale, k.bias, S, k.lds, m);
                    for (int t = 0; t < T; t++) {
                        v.k[vi]->scores(k.K, N, dh, k.Q + (size_t)t * k.ldq, 1, k.ldq, k.scale,
                                        k.bias, S1, k.lds, &m1);
                        tc_bits(&c, "S row vs T = 1", S + (size_t)t * k.lds, S1,
                                sizeof(float) * (size_t)N);
                        tc_bits(&c, "m vs T = 1", m + t, &m1, sizeof m1);
                    }
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}
