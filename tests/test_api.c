/* test_api.c — the checked API around the kernels: configuration defaults,
 * validation and tau -> theta, status names, the thread-local last error,
 * and the thread pool (create / run / scratch / names). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

Test(api, config_default, .timeout = TEST_TIMEOUT)
{
    ga_config c;
    memset(&c, 0x5a, sizeof c);
    ga_config_default(&c);
    cr_expect_eq(c.H, 4);
    cr_expect_eq(c.dh, 64);
    cr_expect_eq(c.g, 16);
    cr_expect_eq(c.L, 3);
    cr_expect(c.tau[0] == 0.10f && c.tau[1] == 0.01f && c.tau[2] == 0.0f,
              "default tau (%g, %g, %g), expected (0.1, 0.01, 0)", (double)c.tau[0],
              (double)c.tau[1], (double)c.tau[2]);
    cr_expect_eq(c.mode, GA_NORM_SEED);
    cr_expect_eq(c.dense, 0);
    cr_expect_eq(ga_config_check(&c), GA_OK, "%s", ga_last_error());
}

Test(api, config_check_rejects, .timeout = TEST_TIMEOUT)
{
    static const char *const NAME[] = {"NULL",     "H = 0",        "dh = 0",   "g = 0",
                                       "L = 0",    "L = 9",        "tau = 1",  "tau = -0.1",
                                       "tau NaN",  "tau increasing", "mode = 2", "tau = 1.5"};
    for (int b = 0; b < 12; b++) {
        ga_config c;
        ga_config_default(&c);
        switch (b) {
        case 1: c.H = 0; break;
        case 2: c.dh = 0; break;
        case 3: c.g = 0; break;
        case 4: c.L = 0; break;
        case 5: c.L = 9; break;
        case 6: c.tau[0] = 1.0f; break;
        case 7: c.tau[2] = -0.1f; break;
        case 8: c.tau[1] = NAN; break;
        case 9: c.tau[2] = 0.05f; break; /* 0.1, 0.01, 0.05 */
        case 10: c.mode = (ga_norm)2; break;
        case 11: c.L = 1; c.tau[0] = 1.5f; break;
        }
        ga_isa dummy;
        ga_isa_from_name("sentinel-xyzzy", &dummy);
        ga_status st = ga_config_check(b == 0 ? NULL : &c);
        cr_expect_eq(st, GA_EINVAL, "ga_config_check(%s) = %s", NAME[b], ga_status_name(st));
        const char *e = ga_last_error();
        cr_expect(e[0] && !strstr(e, "sentinel-xyzzy"), "ga_config_check(%s): no message",
                  NAME[b]);
    }
    /* valid corner cases: L = 8, equal taus, all tau = 0, L = 1 */
    ga_config c;
    ga_config_default(&c);
    c.L = 8;
    for (int l = 0; l < 8; l++)
        c.tau[l] = 0.5f / (float)(1 << l);
    c.tau[7] = 0.0f;
    cr_expect_eq(ga_config_check(&c), GA_OK, "L = 8: %s", ga_last_error());
    c.tau[3] = c.tau[2];
    cr_expect_eq(ga_config_check(&c), GA_OK, "equal taus: %s", ga_last_error());
    for (int l = 0; l < 8; l++)
        c.tau[l] = 0.0f;
    cr_expect_eq(ga_config_check(&c), GA_OK, "all tau = 0: %s", ga_last_error());
    c.L = 1;
    c.tau[0] = 0.999f;
    cr_expect_eq(ga_config_check(&c), GA_OK, "L = 1: %s", ga_last_error());
}

Test(api, theta_from_tau, .timeout = TEST_TIMEOUT)
{
    ga_config c;
    ga_config_default(&c);
    float th[GA_MAX_LEVELS];
    ga_theta_from_tau(&c, th);
    /* ln tau in float: within 1 ulp of the exact logarithm of the float tau */
    cr_expect(fabs(th[0] - log((double)0.10f)) <= FLT_EPSILON * 2.31 &&
                  fabs(th[1] - log((double)0.01f)) <= FLT_EPSILON * 4.61,
              "theta (%.9g, %.9g)", (double)th[0], (double)th[1]);
    cr_expect(fabs(th[0] - (-2.302585)) < 1e-5 && fabs(th[1] - (-4.605170)) < 1e-5,
              "SPEC table: theta (-2.3026, -4.6052)");
    /* tau = 0 -> -FLT_MAX (finite), and levels L..7 repeat level L-1 */
    for (int l = 2; l < GA_MAX_LEVELS; l++)
        cr_expect(th[l] == -FLT_MAX, "theta8[%d] = %.9g, expected -FLT_MAX", l, (double)th[l]);
    c.L = 2;
    c.tau[0] = 0.5f;
    c.tau[1] = 0.25f;
    ga_theta_from_tau(&c, th);
    for (int l = 1; l < GA_MAX_LEVELS; l++)
        cr_expect(th[l] == th[1] && fabs(th[l] - log(0.25)) <= FLT_EPSILON * 1.39,
                  "L = 2: theta8[%d] = %.9g, expected ln 0.25 repeated", l, (double)th[l]);
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        cr_expect(isfinite(th[l]), "theta8[%d] not finite", l);
}

Test(api, status_names, .timeout = TEST_TIMEOUT)
{
    const ga_status all[] = {GA_OK, GA_EINVAL, GA_ENOTSUP, GA_ENOMEM, GA_ESYS};
    for (int i = 0; i < 5; i++) {
        const char *n = ga_status_name(all[i]);
        cr_expect(n && n[0], "status %d has no name", (int)all[i]);
        for (int j = 0; j < i; j++)
            cr_expect(strcmp(n, ga_status_name(all[j])) != 0, "statuses %d and %d share a name",
                      i, j);
    }
    cr_expect(ga_status_name((ga_status)99)[0] != '\0');
    cr_expect_str_eq(GA_VERSION_STRING, "0.1.0");
}

static void *set_error_in_thread(void *arg)
{
    (void)arg;
    ga_isa dummy;
    ga_isa_from_name("other-thread-name", &dummy);
    return strstr(ga_last_error(), "other-thread-name") ? (void *)1 : NULL;
}

Test(api, last_error_is_thread_local, .timeout = TEST_TIMEOUT)
{
    ga_isa dummy;
    ga_isa_from_name("main-thread-name", &dummy);
    pthread_t th;
    void *ret = NULL;
    cr_assert_eq(pthread_create(&th, NULL, set_error_in_thread, NULL), 0);
    pthread_join(th, &ret);
    cr_expect(ret != NULL, "the other thread did not see its own message");
    cr_expect(strstr(ga_last_error(), "main-thread-name") != NULL,
              "the message of another thread leaked into this one: \"%s\"", ga_last_error());
}

/* ------------------------------------------------------------ thread pool */
typedef struct {
    int ntasks, threads;
    int *hits;
    int bad_worker;
    pthread_mutex_t mu;
} pool_arg;

static void pool_task(void *arg, int task, int worker)
{
    pool_arg *a = arg;
    pthread_mutex_lock(&a->mu);
    if (task >= 0 && task < a->ntasks)
        a->hits[task]++;
    if (worker < 0 || worker >= a->threads)
        a->bad_worker = 1;
    pthread_mutex_unlock(&a->mu);
}

Test(pool, create_run_destroy, .timeout = TEST_TIMEOUT)
{
    static const int NT[] = {0, 1, 2, 3, 7, 64, 1000};
    for (int threads = 1; threads <= 3; threads++) {
        ga_pool *p = ga_pool_create(threads, GA_PLACE_NONE, NULL, 0);
        cr_assert_not_null(p, "ga_pool_create(%d): %s", threads, ga_last_error());
        cr_expect_eq(ga_pool_threads(p), threads, "ga_pool_threads = %d for a pool of %d",
                     ga_pool_threads(p), threads);
        const char *desc = ga_pool_describe(p);
        cr_expect(desc && desc[0], "ga_pool_describe is empty");
        for (size_t k = 0; k < sizeof NT / sizeof NT[0]; k++)
            for (int rep = 0; rep < 3; rep++) {
                pool_arg a = {.ntasks = NT[k], .threads = threads};
                a.hits = calloc((size_t)NT[k] + 1, sizeof(int));
                pthread_mutex_init(&a.mu, NULL);
                ga_pool_run(p, pool_task, &a, NT[k]);
                int bad = 0;
                for (int t = 0; t < NT[k]; t++)
                    bad += a.hits[t] != 1;
                cr_expect(bad == 0, "pool of %d, %d tasks: %d tasks not run exactly once",
                          threads, NT[k], bad);
                cr_expect(!a.bad_worker, "pool of %d: worker index out of range", threads);
                pthread_mutex_destroy(&a.mu);
                free(a.hits);
            }
        ga_pool_destroy(p);
    }
}

Test(pool, invalid_arguments, .timeout = TEST_TIMEOUT)
{
    ga_isa dummy;
    ga_isa_from_name("sentinel-xyzzy", &dummy);
    ga_pool *p = ga_pool_create(0, GA_PLACE_NONE, NULL, 0);
    cr_expect_null(p, "ga_pool_create(0 threads) must fail");
    cr_expect(!strstr(ga_last_error(), "sentinel-xyzzy") && ga_last_error()[0],
              "ga_pool_create(0): no message");
    if (p)
        ga_pool_destroy(p);
    ga_isa_from_name("sentinel-xyzzy", &dummy);
    p = ga_pool_create(-3, GA_PLACE_NONE, NULL, 0);
    cr_expect_null(p, "ga_pool_create(-3 threads) must fail");
    if (p)
        ga_pool_destroy(p);
    ga_isa_from_name("sentinel-xyzzy", &dummy);
    p = ga_pool_create(2, GA_PLACE_LIST, NULL, 0);
    cr_expect_null(p, "ga_pool_create(GA_PLACE_LIST without PUs) must fail");
    cr_expect(!strstr(ga_last_error(), "sentinel-xyzzy") && ga_last_error()[0],
              "ga_pool_create(LIST, NULL): no message");
    if (p)
        ga_pool_destroy(p);
}

Test(pool, scratch, .timeout = TEST_TIMEOUT)
{
    ga_pool *p = ga_pool_create(2, GA_PLACE_NONE, NULL, 0);
    cr_assert_not_null(p, "%s", ga_last_error());
    for (int w = 0; w < ga_pool_threads(p); w++) {
        unsigned char *s1 = ga_pool_scratch(p, w, 1000);
        cr_assert_not_null(s1, "scratch of worker %d", w);
        cr_expect(((uintptr_t)s1 & 63) == 0, "scratch not 64-byte aligned");
        memset(s1, 0xab, 1000);
        unsigned char *s2 = ga_pool_scratch(p, w, 1000);
        cr_expect(s2 == s1 && s2[999] == 0xab, "scratch not kept between calls");
        unsigned char *s3 = ga_pool_scratch(p, w, 1 << 20);
        cr_assert_not_null(s3);
        cr_expect(((uintptr_t)s3 & 63) == 0, "grown scratch not 64-byte aligned");
        memset(s3, 1, 1 << 20);
    }
    if (ga_pool_threads(p) == 2) {
        unsigned char *a = ga_pool_scratch(p, 0, 4096), *b = ga_pool_scratch(p, 1, 4096);
        cr_expect(a + 4096 <= b || b + 4096 <= a, "workers 0 and 1 share scratch memory");
    }
    ga_pool_destroy(p);
}

Test(pool, place_names, .timeout = TEST_TIMEOUT)
{
    const ga_place all[] = {GA_PLACE_NONE, GA_PLACE_COMPACT, GA_PLACE_SCATTER, GA_PLACE_LIST};
    for (int i = 0; i < 4; i++) {
        const char *n = ga_place_name(all[i]);
        cr_expect(n && n[0], "placement %d has no name", i);
        ga_place out = (ga_place)-1;
        cr_expect_eq(ga_place_from_name(n, &out), GA_OK, "ga_place_from_name(%s)", n);
        cr_expect_eq(out, all[i], "placement name '%s' does not roundtrip", n);
    }
    ga_place out;
    cr_expect_eq(ga_place_from_name("bogus", &out), GA_EINVAL, "ga_place_from_name(bogus)");
    cr_expect(ga_last_error()[0], "no message for ga_place_from_name(bogus)");
}

/* compact / scatter / an explicit list on this machine: creating works and
 * runs tasks (binding itself is the pool's business; qemu supports it). */
Test(pool, placements_run, .timeout = TEST_TIMEOUT)
{
    int pus[2] = {0, 0};
    const ga_place all[] = {GA_PLACE_COMPACT, GA_PLACE_SCATTER, GA_PLACE_LIST};
    for (int i = 0; i < 3; i++) {
        ga_pool *p = ga_pool_create(2, all[i], pus, 1);
        cr_expect_not_null(p, "ga_pool_create(2, %s): %s", ga_place_name(all[i]),
                           ga_last_error());
        if (!p)
            continue;
        pool_arg a = {.ntasks = 10, .threads = ga_pool_threads(p)};
        int hits[10] = {0};
        a.hits = hits;
        pthread_mutex_init(&a.mu, NULL);
        ga_pool_run(p, pool_task, &a, 10);
        int bad = 0;
        for (int t = 0; t < 10; t++)
            bad += hits[t] != 1;
        cr_expect(bad == 0, "%s: %d tasks not run exactly once", ga_place_name(all[i]), bad);
        pthread_mutex_destroy(&a.mu);
        ga_pool_destroy(p);
    }
}
