/* test_tuning.c — the AVX-512 load tuning (src/dispatch.c, ga_isa_tuning):
 * the loads:whole and loads:halves builds of the streaming kernels
 * (kernels/simd/table_halves.c) give the same bits on every shape, tail,
 * misalignment and adversarial input below, so whichever one the CPU picks,
 * the rest of the suite (which runs the picked one against the reference)
 * covers both; GRANATTN_AVX512_LOADS picks and a bad value is an error.
 * Each Test runs in its own process (Criterion), so the environment set at
 * its start is what the once-only CPU probe reads. */
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The two AVX-512 tables, or skip (with the reason) where AVX-512 is not
 * supported: nothing to compare there. */
static int both_tables(const ga_kernels **w, const ga_kernels **h, const char *test)
{
    if (!ga_isa_supported(GA_ISA_AVX512)) {
        cr_log_info("%s: skipped (avx512: %s)", test, ga_isa_unsupported_reason(GA_ISA_AVX512));
        return 0;
    }
    *w = ga_kernels_avx512_loads(0);
    *h = ga_kernels_avx512_loads(1);
    cr_assert(*w && *h, "ga_kernels_avx512_loads: %s", ga_last_error());
    cr_assert(*w != *h);
    cr_assert((*w)->scores != (*h)->scores, "the halves table must hold other functions");
    return 1;
}

static const int DHS[] = {1, 3, 15, 16, 17, 31, 32, 33, 64, 65, 100, 128, 129, 200};

/* Inputs of one case: uniform values, plus (adv) huge, zero and NaN/inf
 * entries and -inf padding in the bias. */
static void fill_case(trng *rng, float *x, size_t n, int adv)
{
    fill_unif(rng, x, n, -1.0, 1.0);
    if (adv)
        for (size_t i = 0; i < n; i += 13)
            x[i] = (i / 13) % 5 == 0 ? 3e38f : (i / 13) % 5 == 1 ? 0.0f
                 : (i / 13) % 5 == 2 ? -1e30f : (i / 13) % 5 == 3 ? NAN : INFINITY;
}

Test(tuning, avx512_loads_bitwise, .timeout = TEST_TIMEOUT)
{
    const ga_kernels *w, *h;
    if (!both_tables(&w, &h, "tuning avx512_loads_bitwise"))
        return;
    int ns[40];
    const int nn = n_sizes(ns, 0);
    tcheck c;
    tc_init(&c, "tuning avx512 loads whole vs halves");
    trng rng;
    rng_init(&rng, 4242);
    long cases = 0;
    for (size_t id = 0; id < sizeof DHS / sizeof DHS[0]; id++)
        for (int in = 0; in < nn; in++)
            for (int adv = 0; adv < 2; adv++) {
                const int dh = DHS[id], N = ns[in], off = (int)((id + (size_t)in + adv) % 3);
                if ((size_t)N * dh > 300000)
                    continue;
                const int T = 1 + (in + adv) % 4;
                tarena a = {0};
                float *K = ar_f(&a, "K", (size_t)N * dh + 1, off);
                float *V = ar_f(&a, "V", (size_t)N * dh + 1, off);
                float *Q = ar_f(&a, "Q", (size_t)T * dh + 1, off);
                float *bias = ar_f(&a, "bias", (size_t)N + 1, off);
                float *p = ar_f(&a, "p", (size_t)N + 1, off);
                float *dc = ar_f(&a, "dc", (size_t)dh + 1, off);
                int32_t *idx = ar_i32(&a, "idx", (size_t)N + 1, off);
                fill_case(&rng, K, (size_t)N * dh, adv);
                fill_case(&rng, V, (size_t)N * dh, adv);
                fill_unif(&rng, Q, (size_t)T * dh, -1.0, 1.0);
                fill_unif(&rng, p, (size_t)N, 0.0, 1.0);
                fill_unif(&rng, dc, (size_t)dh, -1.0, 1.0);
                int count = 0;
                for (int i = 0; i < N; i++) {
                    bias[i] = adv && rng_unit(&rng) < 0.2 ? -INFINITY : 0.0f;
                    if (rng_unit(&rng) < 0.4)
                        idx[count++] = i;
                }
                if (adv)
                    for (int i = 0; i < N; i += 9)
                        p[i] = 0.0f; /* excluded terms */
                /* packed keys for scores_packed: [ceil(N/16)][dh][16], lanes past N readable */
                const int np = (N + 15) / 16;
                float *Kp = ar_f(&a, "Kp", (size_t)np * dh * 16 + 1, off);
                for (int b = 0; b < np; b++)
                    for (int d = 0; d < dh; d++)
                        for (int l = 0; l < 16; l++) {
                            const int i = b * 16 + l < N ? b * 16 + l : N - 1;
                            Kp[((size_t)b * dh + d) * 16 + l] = K[(size_t)i * dh + d];
                        }
                float *o[2][8];
                float mx[2][2];
                for (int t = 0; t < 2; t++) {
                    const ga_kernels *k = t ? h : w;
                    for (int j = 0; j < 8; j++)
                        o[t][j] = ar_f(&a, "out", (size_t)T * N + (size_t)N * dh + dh + 1, 0);
                    float m[4];
                    k->scores(K, N, dh, Q, T, dh, 0.125f, adv ? bias : NULL, o[t][0], N, m);
                    memcpy(o[t][0] + (size_t)T * N, m, sizeof(float) * (size_t)T);
                    memset(o[t][1], 0, sizeof(float) * ((size_t)N * dh + dh));
                    k->scores_backward(K, N, dh, Q, 0.125f, p, o[t][1], o[t][1] + dh);
                    k->dense_context(V, N, dh, p, o[t][2]);
                    memset(o[t][3], 0, sizeof(float) * (size_t)N * dh);
                    k->dense_context_backward(V, N, dh, p, dc, o[t][3], o[t][3] + (size_t)N * dh);
                    k->sparse_context(V, dh, idx, p, count, 0.5f, o[t][4]);
                    memset(o[t][5], 0, sizeof(float) * (size_t)N * dh);
                    k->sparse_context_backward(V, dh, idx, p, count, 0.5f, dc, o[t][5],
                                               o[t][5] + (size_t)N * dh);
                    mx[t][0] = k->scores_gather(K, dh, idx, count, Q, 0.125f,
                                                adv ? bias : NULL, o[t][6]);
                    mx[t][1] = N > 0 ? k->scores_packed(Kp, N, dh, Q, 0.125f,
                                                        adv ? bias : NULL, o[t][7])
                                     : 0.0f;
                }
                tc_case(&c, "N=%d dh=%d T=%d off=%d adv=%d", N, dh, T, off, adv);
                tc_bits(&c, "scores S, m", o[0][0], o[1][0], sizeof(float) * ((size_t)T * N + T));
                tc_bits(&c, "scores_backward dq, dK", o[0][1], o[1][1],
                        sizeof(float) * ((size_t)N * dh + dh));
                tc_bits(&c, "dense_context", o[0][2], o[1][2], sizeof(float) * (size_t)dh);
                tc_bits(&c, "dense_context_backward dV, ga", o[0][3], o[1][3],
                        sizeof(float) * ((size_t)N * dh + N));
                tc_bits(&c, "sparse_context", o[0][4], o[1][4], sizeof(float) * (size_t)dh);
                tc_bits(&c, "sparse_context_backward dV, gk", o[0][5], o[1][5],
                        sizeof(float) * ((size_t)N * dh + count));
                tc_bits(&c, "scores_gather s", o[0][6], o[1][6], sizeof(float) * (size_t)count);
                tc_bits(&c, "scores_gather max", &mx[0][0], &mx[1][0], sizeof(float));
                if (N > 0) {
                    tc_bits(&c, "scores_packed s", o[0][7], o[1][7], sizeof(float) * (size_t)N);
                    tc_bits(&c, "scores_packed max", &mx[0][1], &mx[1][1], sizeof(float));
                }
                ar_check(&a, &c);
                ar_free(&a);
                cases++;
            }
    cr_log_info("tuning avx512_loads_bitwise: %ld cases, 8 kernels, whole vs halves", cases);
    tc_finish(&c);
}

Test(tuning, names, .timeout = TEST_TIMEOUT)
{
    unsetenv("GRANATTN_AVX512_LOADS");
    for (int i = 0; i < GA_ISA_COUNT; i++) {
        const char *t = ga_isa_tuning((ga_isa)i);
        cr_assert_not_null(t);
        if (i == GA_ISA_AVX512 && ga_isa_supported(GA_ISA_AVX512))
            cr_expect(strcmp(t, "loads:whole") == 0 || strcmp(t, "loads:halves") == 0,
                      "avx512 tuning '%s'", t);
        else
            cr_expect_str_eq(t, "", "%s tuning '%s'", ga_isa_name((ga_isa)i), t);
    }
    cr_expect_str_eq(ga_isa_tuning((ga_isa)99), "");
    cr_log_info("tuning names: avx512 '%s'", ga_isa_tuning(GA_ISA_AVX512));
}

/* GRANATTN_AVX512_LOADS=<value> installs that table. */
static void env_picks(const char *value, int halves)
{
    setenv("GRANATTN_AVX512_LOADS", value, 1);
    const ga_kernels *w, *h;
    if (!both_tables(&w, &h, value))
        return;
    const ga_kernels *k = ga_kernels_for(GA_ISA_AVX512);
    cr_assert_not_null(k, "%s", ga_last_error());
    cr_expect_str_eq(ga_isa_tuning(GA_ISA_AVX512), halves ? "loads:halves" : "loads:whole");
    const ga_kernels *want = halves ? h : w;
    cr_expect(k->scores == want->scores && k->dense_context == want->dense_context &&
                  k->sparse_context == want->sparse_context &&
                  k->scores_packed == want->scores_packed,
              "GRANATTN_AVX512_LOADS=%s did not install its kernels", value);
    cr_expect(k->threshold == w->threshold, "entries outside the tuning stay the same");
}

Test(tuning, env_halves, .timeout = TEST_TIMEOUT) { env_picks("halves", 1); }
Test(tuning, env_whole, .timeout = TEST_TIMEOUT) { env_picks("whole", 0); }

Test(tuning, env_bad_value, .timeout = TEST_TIMEOUT)
{
    setenv("GRANATTN_AVX512_LOADS", "quarters", 1);
    if (!ga_isa_supported(GA_ISA_AVX512)) {
        cr_log_info("tuning env_bad_value: skipped (avx512: %s)",
                    ga_isa_unsupported_reason(GA_ISA_AVX512));
        return;
    }
    cr_expect_null(ga_kernels_for(GA_ISA_AVX512), "a bad GRANATTN_AVX512_LOADS must not fall back");
    cr_expect(strstr(ga_last_error(), "GRANATTN_AVX512_LOADS='quarters'") != NULL, "message: %s",
              ga_last_error());
    cr_expect_null(ga_kernels_default(), "ga_kernels_default must fail too");
    cr_expect(strstr(ga_last_error(), "quarters") != NULL, "message: %s", ga_last_error());
    cr_expect_not_null(ga_kernels_for(GA_ISA_AVX2), "other variants are not affected: %s",
                       ga_last_error());
}
