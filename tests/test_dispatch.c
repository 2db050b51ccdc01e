/* test_dispatch.c — ISA names, ga_kernels_for / _default / _ref, GRANATTN_ISA,
 * and "no silent fallback": every supported SIMD variant overrides every
 * entry of the reference table (the kernels of docs/SPEC.md §5 and the sgemm
 * entries). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* An ISA this machine cannot run (neon on x86-64, avx2 on AArch64), or -1. */
static int some_unsupported_isa(void)
{
    for (int i = GA_ISA_COUNT - 1; i >= 0; i--)
        if (!ga_isa_supported((ga_isa)i))
            return i;
    return -1;
}

/* Sets a sentinel message so that a later check can tell that the call under
 * test wrote a fresh one. */
static void set_sentinel_error(void)
{
    ga_isa dummy;
    cr_assert(ga_isa_from_name("sentinel-xyzzy", &dummy) == GA_EINVAL);
    cr_assert(strstr(ga_last_error(), "sentinel-xyzzy") != NULL);
}

static int fresh_error(void)
{
    const char *e = ga_last_error();
    return e && e[0] != '\0' && strstr(e, "sentinel-xyzzy") == NULL;
}

Test(dispatch, reference_table_is_complete, .timeout = TEST_TIMEOUT)
{
    const ga_kernels *r = ga_kernels_ref();
    cr_assert_not_null(r);
    cr_expect_eq(r->isa, GA_ISA_SCALAR);
    cr_expect_str_eq(r->name, "scalar");
    cr_expect(ga_kernels_for(GA_ISA_SCALAR) == r, "ga_kernels_for(scalar) is the reference table");
    /* each entry is the ga_ref_<op> function of ref/ */
#define CHECK_REF(ret, f, params) cr_expect(r->f == ga_ref_##f, "reference table entry " #f " is not ga_ref_" #f);
    GA_TABLE_LIST(CHECK_REF)
#undef CHECK_REF
    int n = 0;
#define COUNT(ret, f, params) n++;
    GA_TABLE_LIST(COUNT)
#undef COUNT
    cr_expect_eq(n, GA_TABLE_COUNT, "the table lists %d kernels", n);
    cr_expect_eq(sizeof(ga_kernels),
                 offsetof(ga_kernels, gpn_project_keys) + GA_TABLE_COUNT * sizeof(void (*)(void)),
                 "ga_kernels has entries that GA_TABLE_LIST (granattn_ops.h) does not test");
}

Test(dispatch, isa_names_roundtrip, .timeout = TEST_TIMEOUT)
{
    for (int i = 0; i < GA_ISA_COUNT; i++) {
        ga_isa out = GA_ISA_COUNT;
        const char *name = ga_isa_name((ga_isa)i);
        cr_assert(name && name[0], "ga_isa_name(%d) is empty", i);
        cr_expect_eq(ga_isa_from_name(name, &out), GA_OK, "from_name(%s)", name);
        cr_expect_eq(out, (ga_isa)i, "from_name(%s) roundtrip", name);
    }
    cr_expect_str_eq(ga_isa_name(GA_ISA_SCALAR), "scalar");
    cr_expect_str_eq(ga_isa_name(GA_ISA_AVX2), "avx2");
    cr_expect_str_eq(ga_isa_name(GA_ISA_AVX512), "avx512");
    cr_expect_str_eq(ga_isa_name(GA_ISA_NEON), "neon");
}

Test(dispatch, isa_from_name_rejects_garbage, .timeout = TEST_TIMEOUT)
{
    static const char *const bad[] = {"", "bogus", "AVX2", "avx", "avx-512", "scalar ",
                                      " neon", "sse4.2", "avx512f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ga_isa out = GA_ISA_AVX2;
        set_sentinel_error();
        cr_expect_eq(ga_isa_from_name(bad[i], &out), GA_EINVAL, "ga_isa_from_name(\"%s\")",
                     bad[i]);
        cr_expect(fresh_error(), "no message for ga_isa_from_name(\"%s\")", bad[i]);
    }
    ga_isa out;
    set_sentinel_error();
    cr_expect_eq(ga_isa_from_name(NULL, &out), GA_EINVAL, "ga_isa_from_name(NULL)");
    cr_expect(fresh_error(), "no message for ga_isa_from_name(NULL)");
    cr_expect_eq(ga_isa_from_name("scalar", NULL), GA_EINVAL, "ga_isa_from_name(.., NULL)");
}

Test(dispatch, kernels_for_each_isa, .timeout = TEST_TIMEOUT)
{
    int unsupported = 0;
    for (int i = 0; i < GA_ISA_COUNT; i++) {
        ga_isa isa = (ga_isa)i;
        set_sentinel_error();
        const ga_kernels *k = ga_kernels_for(isa);
        if (ga_isa_supported(isa)) {
            cr_expect(ga_isa_compiled(isa), "%s supported but not compiled", ga_isa_name(isa));
            cr_expect_not_null(k, "ga_kernels_for(%s) is NULL although supported: %s",
                               ga_isa_name(isa), ga_last_error());
            if (k) {
                cr_expect_eq(k->isa, isa, "table of %s has isa %d", ga_isa_name(isa), k->isa);
                cr_expect_str_eq(k->name, ga_isa_name(isa));
            }
            cr_expect_str_eq(ga_isa_unsupported_reason(isa), "");
        } else {
            unsupported++;
            cr_expect_null(k, "ga_kernels_for(%s) must be NULL: unsupported", ga_isa_name(isa));
            cr_expect(fresh_error(), "ga_kernels_for(%s): NULL without a message",
                      ga_isa_name(isa));
            const char *why = ga_isa_unsupported_reason(isa);
            cr_expect(why && why[0], "no reason given for unsupported %s", ga_isa_name(isa));
        }
    }
    cr_expect(ga_isa_supported(GA_ISA_SCALAR) && ga_isa_compiled(GA_ISA_SCALAR));
    /* x86-64 and AArch64 builds cannot both hold avx2 and neon */
    cr_expect(unsupported >= 1, "every ISA supported: impossible on one architecture");

    /* out-of-range values */
    set_sentinel_error();
    cr_expect_null(ga_kernels_for(GA_ISA_COUNT));
    cr_expect(fresh_error(), "ga_kernels_for(GA_ISA_COUNT): no message");
    set_sentinel_error();
    cr_expect_null(ga_kernels_for((ga_isa)-1));
    cr_expect(fresh_error(), "ga_kernels_for(-1): no message");
    cr_expect(!ga_isa_supported(GA_ISA_COUNT) && !ga_isa_compiled(GA_ISA_COUNT));
    cr_expect(ga_isa_unsupported_reason(GA_ISA_COUNT)[0] != '\0');
    cr_expect_str_eq(ga_isa_name(GA_ISA_COUNT), "invalid");

    ga_isa best = ga_isa_best();
    cr_expect(ga_isa_supported(best), "ga_isa_best() = %s is not supported", ga_isa_name(best));
    /* the best is the widest supported */
    if (ga_isa_supported(GA_ISA_AVX512))
        cr_expect_eq(best, GA_ISA_AVX512);
    else if (ga_isa_supported(GA_ISA_AVX2))
        cr_expect_eq(best, GA_ISA_AVX2);
    else if (ga_isa_supported(GA_ISA_NEON))
        cr_expect_eq(best, GA_ISA_NEON);
    else
        cr_expect_eq(best, GA_ISA_SCALAR);
}

Test(dispatch, env_unset_gives_best, .timeout = TEST_TIMEOUT)
{
    unsetenv("GRANATTN_ISA");
    const ga_kernels *k = ga_kernels_default();
    cr_assert_not_null(k, "%s", ga_last_error());
    cr_expect_eq(k->isa, ga_isa_best());
    setenv("GRANATTN_ISA", "", 1); /* empty counts as unset */
    k = ga_kernels_default();
    cr_assert_not_null(k, "GRANATTN_ISA='': %s", ga_last_error());
    cr_expect_eq(k->isa, ga_isa_best());
}

Test(dispatch, env_scalar, .timeout = TEST_TIMEOUT)
{
    setenv("GRANATTN_ISA", "scalar", 1);
    const ga_kernels *k = ga_kernels_default();
    cr_assert_not_null(k, "GRANATTN_ISA=scalar: %s", ga_last_error());
    cr_expect_eq(k->isa, GA_ISA_SCALAR);
    cr_expect(k == ga_kernels_ref(), "GRANATTN_ISA=scalar must give the reference table");
}

Test(dispatch, env_each_supported, .timeout = TEST_TIMEOUT)
{
    char ran[128] = "";
    for (int i = 0; i < GA_ISA_COUNT; i++) {
        if (!ga_isa_supported((ga_isa)i))
            continue;
        setenv("GRANATTN_ISA", ga_isa_name((ga_isa)i), 1);
        const ga_kernels *k = ga_kernels_default();
        cr_expect_not_null(k, "GRANATTN_ISA=%s: %s", ga_isa_name((ga_isa)i), ga_last_error());
        if (k)
            cr_expect(k == ga_kernels_for((ga_isa)i), "GRANATTN_ISA=%s gave table %s",
                      ga_isa_name((ga_isa)i), k->name);
        strcat(ran, " ");
        strcat(ran, ga_isa_name((ga_isa)i));
    }
    cr_log_info("dispatch env_each_supported: GRANATTN_ISA tried with%s", ran);
}

Test(dispatch, env_bogus, .timeout = TEST_TIMEOUT)
{
    static const char *const bad[] = {"bogus", "AVX512", "avx2 ", "sse"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("GRANATTN_ISA", bad[i], 1);
        set_sentinel_error();
        const ga_kernels *k = ga_kernels_default();
        cr_expect_null(k, "GRANATTN_ISA='%s' must give NULL", bad[i]);
        cr_expect(fresh_error(), "GRANATTN_ISA='%s': NULL without a message", bad[i]);
    }
}

Test(dispatch, env_unsupported_isa, .timeout = TEST_TIMEOUT)
{
    int isa = some_unsupported_isa();
    cr_assert(isa >= 0, "no unsupported ISA on this machine (cannot happen)");
    setenv("GRANATTN_ISA", ga_isa_name((ga_isa)isa), 1);
    set_sentinel_error();
    const ga_kernels *k = ga_kernels_default();
    cr_expect_null(k, "GRANATTN_ISA=%s (unsupported here) must give NULL, not a fallback",
                   ga_isa_name((ga_isa)isa));
    cr_expect(fresh_error(), "GRANATTN_ISA=%s: NULL without a message", ga_isa_name((ga_isa)isa));
    cr_log_info("dispatch env_unsupported_isa: GRANATTN_ISA=%s -> NULL, \"%s\"",
                ga_isa_name((ga_isa)isa), ga_last_error());
}

/* Every supported SIMD variant must override all 18 entries: a variant that
 * silently leaves the scalar reference in its table would pass every
 * numerical test while being slow. */
Test(dispatch, no_silent_fallback, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    variants_get(&v, "dispatch no_silent_fallback");
    const ga_kernels *r = ga_kernels_ref();
    for (int vi = 1; vi < v.n; vi++) {
        const ga_kernels *k = v.k[vi];
        char missing[512] = "";
        int n = 0;
#define CHECK_OVERRIDE(ret, f, params)                                         \
    cr_expect(k->f != NULL, "%s: entry " #f " is NULL", k->name);           \
    if (k->f == r->f) {                                                        \
        n++;                                                                   \
        strcat(missing, " " #f);                                               \
    }
        GA_TABLE_LIST(CHECK_OVERRIDE)
#undef CHECK_OVERRIDE
        cr_expect(n == 0, "%s: %d of %d table entries still point at the scalar reference:%s",
                  k->name, n, GA_TABLE_COUNT, missing);
    }
}
