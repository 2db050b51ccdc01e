/* dispatch.c — runtime CPU detection and the per-ISA kernel tables.
 *
 * The CPU is probed once (pthread_once): CPUID for the instruction sets and
 * XGETBV for the OS saving the wide register state (ymm for AVX2; zmm and
 * opmask for AVX-512).  Each table starts as a copy of the scalar references
 * and the ISA's ga_fill_<isa>() overrides what it implements.
 * GRANATTN_ISA=scalar|avx2|avx512|neon forces the default variant.
 * ga_cpu_has() reports the extensions below the ISA level that a variant may
 * pick at run time (AVX512_VNNI, AVX-VNNI, AArch64 dotprod), probed with the
 * ISAs.
 * Tuning (ga_isa_tuning): the AVX-512 table's streaming kernels use 512-bit
 * loads ("loads:whole") or pairs of 256-bit loads ("loads:halves",
 * kernels/simd/table_halves.c).  Halves on AMD CPUs (measured on a Zen 4
 * VM, one thread: DRAM read 23-26 GB/s with 512-bit loads, 26-29 GB/s with
 * 256-bit loads or halves; the one-query step from DRAM 1.2-1.6x faster:
 * results/epyc-2c/streaming/), whole
 * elsewhere (the Intel Xeon the kernels were tuned on, where the extra
 * shuffle per load would compete with the FMAs).  GRANATTN_AVX512_LOADS=
 * auto|whole|halves overrides; both give the same bits.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#endif

static const char *const isa_names[GA_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int supported[GA_ISA_COUNT];
static const char *reason[GA_ISA_COUNT];
static ga_kernels tables[GA_ISA_COUNT];
static int features[GA_CPU_FEATURE_COUNT]; /* ga_cpu_has() */
static int cpu_amd;                        /* CPUID vendor AuthenticAMD */
static int avx512_halves;                  /* tables[GA_ISA_AVX512] is loads:halves */
static char tuning_error[160];             /* a bad GRANATTN_AVX512_LOADS, or "" */
static ga_kernels avx512_loads[2];         /* the AVX-512 table, [0] whole, [1] halves */

/* The scalar table: ga_ref_<name> for every GA_TABLE_LIST entry. */
static void fill_ref(ga_kernels *t)
{
#define GA_REF_ENTRY(ret, name, params) t->name = ga_ref_##name;
    GA_TABLE_LIST(GA_REF_ENTRY)
#undef GA_REF_ENTRY
}

#if defined(__x86_64__)
static unsigned long long xgetbv0(void)
{
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void detect_x86(void)
{
    unsigned int a, b, c, d;
    int avx = 0, fma = 0, osxsave = 0, avx2 = 0, f = 0, dq = 0, bw = 0, vl = 0;
    int vnni512 = 0, avxvnni = 0;
    unsigned long long xcr0 = 0;
    if (__get_cpuid(0, &a, &b, &c, &d))
        cpu_amd = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u; /* "AuthenticAMD" */
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        fma = (c >> 12) & 1;
        osxsave = (c >> 27) & 1;
        avx = (c >> 28) & 1;
    }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        avx2 = (b >> 5) & 1;
        f = (b >> 16) & 1;
        dq = (b >> 17) & 1;
        bw = (b >> 30) & 1;
        vl = (b >> 31) & 1;
        vnni512 = (c >> 11) & 1; /* AVX512_VNNI */
        if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
            avxvnni = (a >> 4) & 1; /* AVX-VNNI (VEX-encoded vpdpbusd) */
    }
    if (osxsave)
        xcr0 = xgetbv0();
    int os_ymm = (xcr0 & 0x6) == 0x6;     /* SSE + AVX state */
    int os_zmm = (xcr0 & 0xe6) == 0xe6;   /* + opmask, ZMM_Hi256, Hi16_ZMM */

    if (!(avx && avx2 && fma))
        reason[GA_ISA_AVX2] = "CPU lacks AVX2 or FMA";
    else if (!os_ymm)
        reason[GA_ISA_AVX2] = "OS does not save ymm state (XCR0)";
    else
        supported[GA_ISA_AVX2] = 1;

    if (!(f && dq && bw && vl))
        reason[GA_ISA_AVX512] = "CPU lacks AVX-512 F/DQ/BW/VL";
    else if (!os_zmm)
        reason[GA_ISA_AVX512] = "OS does not save zmm/opmask state (XCR0)";
    else if (!supported[GA_ISA_AVX2])
        reason[GA_ISA_AVX512] = "AVX-512 variant also needs AVX2 + FMA";
    else
        supported[GA_ISA_AVX512] = 1;

    features[GA_CPU_AVX512_VNNI] = supported[GA_ISA_AVX512] && vnni512;
    features[GA_CPU_AVX_VNNI] = supported[GA_ISA_AVX2] && avxvnni;
}
#endif

static void init(void)
{
    for (int i = 0; i < GA_ISA_COUNT; i++) {
        fill_ref(&tables[i]);
        tables[i].isa = (ga_isa)i;
        tables[i].name = isa_names[i];
        reason[i] = "not compiled for this architecture";
    }
    supported[GA_ISA_SCALAR] = 1;
    reason[GA_ISA_SCALAR] = "";
#if defined(__x86_64__)
    detect_x86();
#endif
#if defined(GA_HAVE_AVX2)
    ga_fill_avx2(&tables[GA_ISA_AVX2]);
    ga_fill_gemm_avx2(&tables[GA_ISA_AVX2]);
#endif
#if defined(GA_HAVE_AVX512)
    ga_fill_avx512(&tables[GA_ISA_AVX512]);
    ga_fill_gemm_avx512(&tables[GA_ISA_AVX512]);
    avx512_loads[0] = tables[GA_ISA_AVX512];
    avx512_loads[1] = tables[GA_ISA_AVX512];
    ga_fill_avx512h(&avx512_loads[1]);
    avx512_halves = cpu_amd;
    const char *loads = getenv("GRANATTN_AVX512_LOADS");
    if (loads && *loads && strcmp(loads, "auto") != 0) {
        if (strcmp(loads, "whole") == 0)
            avx512_halves = 0;
        else if (strcmp(loads, "halves") == 0)
            avx512_halves = 1;
        else
            snprintf(tuning_error, sizeof tuning_error,
                     "GRANATTN_AVX512_LOADS='%.40s' is not one of auto, whole, halves", loads);
    }
    tables[GA_ISA_AVX512] = avx512_loads[avx512_halves];
#endif
#if defined(__aarch64__)
    features[GA_CPU_NEON_DOTPROD] = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
#if defined(GA_HAVE_NEON)
    supported[GA_ISA_NEON] = 1; /* Advanced SIMD is baseline on AArch64 */
    ga_fill_neon(&tables[GA_ISA_NEON]);
    ga_fill_gemm_neon(&tables[GA_ISA_NEON]);
#endif
    for (int i = 0; i < GA_ISA_COUNT; i++)
        if (supported[i])
            reason[i] = "";
}

int ga_cpu_has(ga_cpu_feature f)
{
    if ((unsigned)f >= GA_CPU_FEATURE_COUNT)
        return 0;
    pthread_once(&once, init);
    return features[f];
}

const char *ga_isa_name(ga_isa isa)
{
    return (unsigned)isa < GA_ISA_COUNT ? isa_names[isa] : "invalid";
}

ga_status ga_isa_from_name(const char *name, ga_isa *out)
{
    if (!name || !out)
        return ga_set_error(GA_EINVAL, "ga_isa_from_name: NULL argument");
    for (int i = 0; i < GA_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (ga_isa)i;
            return GA_OK;
        }
    return ga_set_error(GA_EINVAL, "unknown ISA '%s' (expected scalar, avx2, avx512 or neon)",
                        name);
}

int ga_isa_compiled(ga_isa isa)
{
    switch (isa) {
    case GA_ISA_SCALAR: return 1;
#if defined(GA_HAVE_AVX2)
    case GA_ISA_AVX2: return 1;
#endif
#if defined(GA_HAVE_AVX512)
    case GA_ISA_AVX512: return 1;
#endif
#if defined(GA_HAVE_NEON)
    case GA_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

int ga_isa_supported(ga_isa isa)
{
    if ((unsigned)isa >= GA_ISA_COUNT || !ga_isa_compiled(isa))
        return 0;
    pthread_once(&once, init);
    return supported[isa];
}

const char *ga_isa_unsupported_reason(ga_isa isa)
{
    if ((unsigned)isa >= GA_ISA_COUNT)
        return "invalid ISA value";
    pthread_once(&once, init);
    if (!ga_isa_compiled(isa))
        return "not compiled for this architecture";
    return reason[isa];
}

ga_isa ga_isa_best(void)
{
    static const ga_isa order[] = {GA_ISA_AVX512, GA_ISA_AVX2, GA_ISA_NEON};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (ga_isa_supported(order[i]))
            return order[i];
    return GA_ISA_SCALAR;
}

const ga_kernels *ga_kernels_for(ga_isa isa)
{
    if ((unsigned)isa >= GA_ISA_COUNT) {
        ga_set_error(GA_EINVAL, "invalid ISA value %d", (int)isa);
        return NULL;
    }
    if (!ga_isa_supported(isa)) {
        ga_set_error(GA_ENOTSUP, "ISA '%s' is not available: %s", isa_names[isa],
                     ga_isa_unsupported_reason(isa));
        return NULL;
    }
    if (isa == GA_ISA_AVX512 && tuning_error[0]) {
        ga_set_error(GA_EINVAL, "%s", tuning_error);
        return NULL;
    }
    return &tables[isa];
}

const char *ga_isa_tuning(ga_isa isa)
{
    if (isa != GA_ISA_AVX512 || !ga_isa_supported(isa))
        return "";
    return avx512_halves ? "loads:halves" : "loads:whole";
}

const ga_kernels *ga_kernels_avx512_loads(int halves)
{
    if (!ga_isa_supported(GA_ISA_AVX512)) {
        ga_set_error(GA_ENOTSUP, "ISA 'avx512' is not available: %s",
                     ga_isa_unsupported_reason(GA_ISA_AVX512));
        return NULL;
    }
    return &avx512_loads[halves ? 1 : 0];
}

const ga_kernels *ga_kernels_ref(void)
{
    pthread_once(&once, init);
    return &tables[GA_ISA_SCALAR];
}

const ga_kernels *ga_kernels_default(void)
{
    pthread_once(&once, init);
    if (tuning_error[0]) {
        ga_set_error(GA_EINVAL, "%s", tuning_error);
        return NULL;
    }
    const char *env = getenv("GRANATTN_ISA");
    if (env && *env) {
        ga_isa isa;
        if (ga_isa_from_name(env, &isa) != GA_OK) {
            ga_set_error(GA_EINVAL, "GRANATTN_ISA='%s' is not one of scalar, avx2, avx512, neon",
                         env);
            return NULL;
        }
        const ga_kernels *k = ga_kernels_for(isa);
        if (!k)
            ga_set_error(GA_ENOTSUP, "GRANATTN_ISA=%s requested, but this machine cannot run it: %s",
                         env, ga_isa_unsupported_reason(isa));
        return k;
    }
    return ga_kernels_for(ga_isa_best());
}
