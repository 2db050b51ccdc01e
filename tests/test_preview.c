/* test_preview.c — preview_dots (docs/SPEC.md §7) vs the reference and an
 * independent integer computation.
 *
 * dot[i] = sum_d qc[d] c_id is an exact integer (|dot| <= 127^2 * 1024 < 2^24,
 * exact in float), so every comparison is BITWISE: the reference against
 * this file's own int64 sum over a key-major copy of the codes (which also
 * checks the panel layout [P][dh4/4][16][4]), and every variant's table
 * entry plus every internal path of the hand-written kernels (src/internal.h:
 * AVX-512 VNNI / BW, AVX2 AVX-VNNI / madd, NEON sdot / smull — each run when
 * the CPU has what it needs, the rest logged as skipped) against the
 * reference.
 *
 * Cases: N = 0 ... 33 (tails of 4, 8, 16 lanes; 1-3 panels, odd panel
 * counts for the 2- and 4-panel loops), 1000, 4097; dh4 in {4, 8, 12, 60, 64,
 * 68, 128, 1024} (odd group counts for the two-group loops); random codes;
 * extreme codes (all +-127 with qc +-127: the largest |dot|, the largest
 * vpmaddubsw pair sums and the largest vpdpbusd offset sums; alternating
 * signs); unaligned codes / qc (byte offsets 0-3 from a 64-byte boundary)
 * and ksum / dot (0-3 elements: misaligned for every vector width, but
 * naturally aligned, as C requires of an int32_t or float pointer); exactly N
 * floats written (sentinels after dot[N-1] and the arena's canaries), N = 0
 * writes nothing; guard pages right after and right before every buffer.
 */
#include <stdio.h>
#include <string.h>

#include "util.h"

static const int DH4S[] = {4, 8, 12, 60, 64, 68, 128, 1024};
enum { NDH4 = (int)(sizeof DH4S / sizeof DH4S[0]) };

/* ---- the paths under test ---- */
typedef void (*pd_fn)(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                      const int8_t *qc, float *dot);
typedef struct pd_path {
    const char *name;
    pd_fn fn;
} pd_path;
typedef struct pd_paths {
    int n;
    pd_path p[GA_ISA_COUNT + 8];
} pd_paths;

static void add_path(pd_paths *ps, const char *name, pd_fn fn, int ok, const char *why,
                     char *skipped, size_t cap)
{
    if (ok) {
        ps->p[ps->n].name = name;
        ps->p[ps->n].fn = fn;
        ps->n++;
    } else {
        size_t len = strlen(skipped);
        snprintf(skipped + len, cap - len, "%s%s (%s)", len ? ", " : "", name, why);
    }
}

/* Every variant's table entry (variants_get: labels the coverage row), then
 * every internal path this CPU can run.  Logs the internal paths skipped. */
static void paths_get(pd_paths *ps, tvariants *v, const char *label)
{
    variants_get(v, label);
    ps->n = 0;
    for (int i = 0; i < v->n; i++) {
        ps->p[ps->n].name = v->k[i]->name;
        ps->p[ps->n].fn = v->k[i]->preview_dots;
        ps->n++;
    }
    char skipped[512] = "";
#if defined(__x86_64__)
    add_path(ps, "avx512_vnni", ga_avx512_preview_dots_vnni, ga_cpu_has(GA_CPU_AVX512_VNNI),
             "CPU lacks AVX512_VNNI", skipped, sizeof skipped);
    add_path(ps, "avx512_bw", ga_avx512_preview_dots_bw, ga_isa_supported(GA_ISA_AVX512),
             ga_isa_unsupported_reason(GA_ISA_AVX512), skipped, sizeof skipped);
    add_path(ps, "avx2_vnni", ga_avx2_preview_dots_vnni, ga_cpu_has(GA_CPU_AVX_VNNI),
             "CPU lacks AVX-VNNI", skipped, sizeof skipped);
    add_path(ps, "avx2_madd", ga_avx2_preview_dots_madd, ga_isa_supported(GA_ISA_AVX2),
             ga_isa_unsupported_reason(GA_ISA_AVX2), skipped, sizeof skipped);
#elif defined(__aarch64__)
    add_path(ps, "neon_sdot", ga_neon_preview_dots_sdot, ga_cpu_has(GA_CPU_NEON_DOTPROD),
             "CPU lacks the dot-product extension (HWCAP_ASIMDDP)", skipped, sizeof skipped);
    add_path(ps, "neon_smull", ga_neon_preview_dots_smull, ga_isa_supported(GA_ISA_NEON),
             ga_isa_unsupported_reason(GA_ISA_NEON), skipped, sizeof skipped);
#endif
    if (skipped[0])
        cr_log_info("%s: internal paths skipped: %s", label, skipped);
}

/* ---- inputs ---- */

/* Byte offset of element (key i, channel d) in the panel layout. */
static size_t code_at(int i, int d, int dh4)
{
    return (((size_t)(i / 16) * (size_t)(dh4 / 4) + (size_t)(d / 4)) * 16 + (size_t)(i % 16)) * 4 +
           (size_t)(d % 4);
}

enum {
    K_RANDOM = 0,   /* codes and qc uniform in [-127, 127] */
    K_POS,          /* codes +127, qc +127: dot = 127^2 dh4 (max; vpdpbusd sum 255*127*dh4) */
    K_NEG,          /* codes -127, qc -127: dot = 127^2 dh4 via negative operands */
    K_MIXED,        /* codes -127, qc +127: dot = -127^2 dh4 (min) */
    K_ALT_CH,       /* codes (-1)^d 127, qc (-1)^d 127: every product +127^2 */
    K_ALT_KEY,      /* codes (-1)^(i+d) 127, qc +-127 random signs */
    K_SPARSE,       /* mostly zero codes and qc, a few +-127 and +-1 */
    K_COUNT
};
static const char *const KIND[K_COUNT] = {"random", "all +127", "all -127 (qc -127)",
                                          "codes -127, qc +127", "alternating by channel",
                                          "alternating by key", "sparse"};

static int8_t code_value(trng *r, int kind, int i, int d)
{
    switch (kind) {
    case K_POS: return 127;
    case K_NEG:
    case K_MIXED: return -127;
    case K_ALT_CH: return (d & 1) ? -127 : 127;
    case K_ALT_KEY: return ((i + d) & 1) ? -127 : 127;
    case K_SPARSE: {
        int u = rng_int(r, 16);
        return (int8_t)(u == 0 ? 127 : u == 1 ? -127 : u == 2 ? 1 : u == 3 ? -1 : 0);
    }
    default: return (int8_t)(rng_int(r, 255) - 127);
    }
}

static int8_t q_value(trng *r, int kind, int d)
{
    switch (kind) {
    case K_POS:
    case K_MIXED: return 127;
    case K_NEG: return -127;
    case K_ALT_CH: return (d & 1) ? -127 : 127;
    case K_ALT_KEY: return rng_int(r, 2) ? 127 : -127;
    case K_SPARSE: {
        int u = rng_int(r, 8);
        return (int8_t)(u == 0 ? -127 : u == 1 ? 127 : u == 2 ? -1 : 0);
    }
    default: return (int8_t)(rng_int(r, 255) - 127);
    }
}

/* One case's inputs: kc [N][dh4] key-major (for the independent sum), the
 * panels (lanes past N zero), ksum (0 past N) and qc. */
typedef struct pd_in {
    int N, dh4, P;
    int8_t *kc, *codes, *qc;
    int32_t *ksum;
} pd_in;

static void make_inputs(tarena *a, trng *r, pd_in *in, int N, int dh4, int kind, int off)
{
    in->N = N;
    in->dh4 = dh4;
    in->P = (N + 15) / 16;
    size_t cbytes = (size_t)in->P * 16 * (size_t)dh4;
    in->kc = ar_alloc(a, "kc", (size_t)N * (size_t)dh4, 0);
    in->codes = ar_alloc(a, "codes", cbytes, (size_t)off);
    in->qc = ar_alloc(a, "qc", (size_t)dh4, (size_t)((off + 1) % 4));
    in->ksum = ar_i32(a, "ksum", 16 * (size_t)in->P, (off + 2) % 4);
    memset(in->codes, 0, cbytes);
    for (int i = 0; i < 16 * in->P; i++)
        in->ksum[i] = 0;
    for (int i = 0; i < N; i++)
        for (int d = 0; d < dh4; d++) {
            int8_t c = code_value(r, kind, i, d);
            in->kc[(size_t)i * dh4 + d] = c;
            in->codes[code_at(i, d, dh4)] = c;
            in->ksum[i] += c;
        }
    for (int d = 0; d < dh4; d++)
        in->qc[d] = q_value(r, kind, d);
}

/* The contract's value, independently: int64 sums over the key-major copy. */
static void expected_dots(const pd_in *in, float *out)
{
    for (int i = 0; i < in->N; i++) {
        int64_t s = 0;
        for (int d = 0; d < in->dh4; d++)
            s += (int64_t)in->qc[d] * in->kc[(size_t)i * in->dh4 + d];
        out[i] = (float)s; /* |s| < 2^24: exact */
    }
}

#define SENT 16 /* sentinel floats after dot[N - 1] */
static const float SENTINEL = -12345.5f;

/* Runs fn on in into a dot buffer of N + SENT floats (offset off floats) and
 * checks dot bitwise against ref and the sentinels after it. */
static void run_check(tcheck *c, tarena *a, const pd_path *p, const pd_in *in,
                      const float *ref, int off)
{
    const int N = in->N;
    float *dot = ar_f(a, "dot", (size_t)N + SENT, off);
    for (int i = 0; i < N + SENT; i++)
        dot[i] = SENTINEL;
    p->fn(in->codes, in->ksum, N, in->dh4, in->qc, dot);
    tc_bits(c, "dot", dot, ref, sizeof(float) * (size_t)N);
    for (int i = N; i < N + SENT; i++)
        if (f2u(dot[i]) != f2u(SENTINEL)) {
            tc_fail(c, "wrote dot[%d] past N = %d", i, N);
            break;
        }
}

/* The reference against the independent sum, then every path against the
 * reference. */
static void check_case(tcheck *c, tarena *a, const pd_paths *ps, const pd_in *in, int off,
                       const char *kind)
{
    const int N = in->N;
    float *want = ar_alloc(a, "expected", sizeof(float) * (size_t)N, 0);
    float *ref = ar_alloc(a, "ref", sizeof(float) * (size_t)N, 0);
    expected_dots(in, want);
    c->isa = "scalar";
    tc_case(c, "N=%d dh4=%d %s off=%d (reference vs int64 sum)", N, in->dh4, kind, off);
    ga_ref_preview_dots(in->codes, in->ksum, N, in->dh4, in->qc, ref);
    tc_bits(c, "reference dot vs the int64 sum", ref, want, sizeof(float) * (size_t)N);
    for (int k = 0; k < ps->n; k++) {
        c->isa = ps->p[k].name;
        tc_case(c, "N=%d dh4=%d %s off=%d", N, in->dh4, kind, off);
        run_check(c, a, &ps->p[k], in, want, off);
    }
    c->isa = "";
}

Test(preview, preview_dots_vs_ref, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    pd_paths ps;
    tcheck c;
    paths_get(&ps, &v, "preview_dots vs_ref");
    tc_init(&c, "preview_dots vs_ref");
    trng rng;
    rng_init(&rng, 1001);
    int ns[40], nn = 0;
    for (int N = 0; N <= 33; N++)
        ns[nn++] = N;
    ns[nn++] = 1000;
    ns[nn++] = 4097;
    for (int in_ = 0; in_ < nn; in_++)
        for (int id = 0; id < NDH4; id++) {
            const int N = ns[in_], dh4 = DH4S[id];
            const int off = (in_ + id) % 4; /* offsets 0-3 across the cases */
            tarena a = {0};
            pd_in in;
            make_inputs(&a, &rng, &in, N, dh4, K_RANDOM, off);
            check_case(&c, &a, &ps, &in, off, KIND[K_RANDOM]);
            ar_check(&a, &c);
            ar_free(&a);
        }
    tc_finish(&c);
}

Test(preview, preview_dots_extremes, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {1, 15, 16, 17, 33, 64, 65, 100};
    static const int DH[] = {4, 8, 12, 64, 68, 1024};
    tvariants v;
    pd_paths ps;
    tcheck c;
    paths_get(&ps, &v, "preview_dots extremes");
    tc_init(&c, "preview_dots extremes");
    trng rng;
    rng_init(&rng, 1002);
    for (size_t in_ = 0; in_ < sizeof NS / sizeof NS[0]; in_++)
        for (size_t id = 0; id < sizeof DH / sizeof DH[0]; id++)
            for (int kind = 1; kind < K_COUNT; kind++) {
                const int N = NS[in_], dh4 = DH[id];
                const int off = (int)(in_ + id + (size_t)kind) % 4;
                tarena a = {0};
                pd_in in;
                make_inputs(&a, &rng, &in, N, dh4, kind, off);
                check_case(&c, &a, &ps, &in, off, KIND[kind]);
                if (kind == K_POS || kind == K_NEG || kind == K_MIXED || kind == K_ALT_CH) {
                    /* the bound of the contract is reached: |dot| = 127^2 dh4 */
                    float want = (float)(127 * 127 * dh4) * (kind == K_MIXED ? -1.0f : 1.0f);
                    float ref0;
                    ga_ref_preview_dots(in.codes, in.ksum, 1, dh4, in.qc, &ref0);
                    tc_true(&c, ref0 == want, "N=%d dh4=%d %s: dot[0] = %.1f, want %.1f", N,
                            dh4, KIND[kind], (double)ref0, (double)want);
                }
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

/* N = 0 writes nothing: the sentinels of dot stay, for every dh4 (the guard
 * page test also runs N = 0 with every input a 0-byte buffer at a guard). */
Test(preview, preview_dots_empty, .timeout = TEST_TIMEOUT)
{
    tvariants v;
    pd_paths ps;
    tcheck c;
    paths_get(&ps, &v, "preview_dots empty");
    tc_init(&c, "preview_dots empty");
    for (int id = 0; id < NDH4; id++) {
        tarena a = {0};
        int8_t *codes = ar_alloc(&a, "codes", 0, 1);
        int32_t *ksum = ar_i32(&a, "ksum", 0, 2);
        int8_t *qc = ar_alloc(&a, "qc", (size_t)DH4S[id], 3);
        memset(qc, 5, (size_t)DH4S[id]);
        float *dot = ar_f(&a, "dot", SENT, 1);
        for (int i = 0; i < SENT; i++)
            dot[i] = SENTINEL;
        for (int k = 0; k < ps.n; k++) {
            c.isa = ps.p[k].name;
            tc_case(&c, "N=0 dh4=%d", DH4S[id]);
            ps.p[k].fn(codes, ksum, 0, DH4S[id], qc, dot);
            for (int i = 0; i < SENT; i++)
                if (f2u(dot[i]) != f2u(SENTINEL)) {
                    tc_fail(&c, "N = 0 wrote dot[%d]", i);
                    break;
                }
        }
        c.isa = "";
        ar_check(&a, &c);
        ar_free(&a);
    }
    tc_finish(&c);
}

/* Guard pages: each buffer ends exactly at (GUARD_AFTER) or starts exactly
 * after (GUARD_BEFORE) a PROT_NONE page: codes of exactly ceil(N/16) whole
 * panels, ksum of 16 ceil(N/16), qc of dh4, dot of exactly N floats.  A read
 * or write outside them crashes the test (Criterion reports it). */
Test(preview, preview_dots_guard_pages, .timeout = TEST_TIMEOUT)
{
    static const int NS[] = {0, 1, 7, 15, 16, 17, 31, 33, 48, 65};
    static const int DH[] = {4, 12, 64, 68};
    tvariants v;
    pd_paths ps;
    tcheck c;
    paths_get(&ps, &v, "preview_dots guard_pages");
    tc_init(&c, "preview_dots guard_pages");
    trng rng;
    rng_init(&rng, 1003);
    for (int side = 0; side < 2; side++)
        for (size_t in_ = 0; in_ < sizeof NS / sizeof NS[0]; in_++)
            for (size_t id = 0; id < sizeof DH / sizeof DH[0]; id++) {
                const int N = NS[in_], dh4 = DH[id], P = (N + 15) / 16;
                tarena a = {0};
                pd_in in;
                make_inputs(&a, &rng, &in, N, dh4, K_RANDOM, 0);
                float *want = ar_alloc(&a, "expected", sizeof(float) * (size_t)N, 0);
                expected_dots(&in, want);
                tguard g[4];
                size_t cb = (size_t)P * 16 * (size_t)dh4;
                int8_t *codes = guard_alloc(&g[0], cb, side);
                int32_t *ksum = guard_alloc(&g[1], sizeof(int32_t) * 16 * (size_t)P, side);
                int8_t *qc = guard_alloc(&g[2], (size_t)dh4, side);
                float *dot = guard_alloc(&g[3], sizeof(float) * (size_t)N, side);
                memcpy(codes, in.codes, cb);
                memcpy(ksum, in.ksum, sizeof(int32_t) * 16 * (size_t)P);
                memcpy(qc, in.qc, (size_t)dh4);
                for (int k = 0; k < ps.n; k++) {
                    c.isa = ps.p[k].name;
                    tc_case(&c, "N=%d dh4=%d guard %s", N, dh4, side ? "before" : "after");
                    memset(dot, 0xFF, sizeof(float) * (size_t)N);
                    ps.p[k].fn(codes, ksum, N, dh4, qc, dot);
                    tc_bits(&c, "dot", dot, want, sizeof(float) * (size_t)N);
                }
                c.isa = "";
                for (int j = 0; j < 4; j++)
                    guard_free(&g[j]);
                ar_check(&a, &c);
                ar_free(&a);
            }
    tc_finish(&c);
}

#if defined(__x86_64__)
/* 1 if the first "flags" line of /proc/cpuinfo lists `flag`, 0 if not, -1
 * when the file cannot be read. */
static int cpuinfo_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return -1;
    static char line[8192];
    int found = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0) {
            found = 0;
            size_t n = strlen(flag);
            for (char *w = strtok(strchr(line, ':') + 1, " \t\n"); w; w = strtok(NULL, " \t\n"))
                if (strlen(w) == n && strcmp(w, flag) == 0)
                    found = 1;
            break;
        }
    fclose(f);
    return found;
}

/* ga_cpu_has agrees with the kernel's view of the CPU (/proc/cpuinfo), so
 * the paths the other tests skip are skipped for the right reason. */
Test(preview, preview_dots_cpu_features, .timeout = TEST_TIMEOUT)
{
    tcheck c; /* no variants_get: no kernel runs, so no coverage row */
    tc_init(&c, "preview_dots cpu_features");
    int f512 = cpuinfo_flag("avx512_vnni"), f256 = cpuinfo_flag("avx_vnni");
    if (f512 < 0 || f256 < 0) {
        cr_log_info("/proc/cpuinfo has no flags line: not compared");
    } else {
        tc_true(&c, ga_cpu_has(GA_CPU_AVX512_VNNI) == (f512 && ga_isa_supported(GA_ISA_AVX512)),
                "ga_cpu_has(AVX512_VNNI) = %d, cpuinfo avx512_vnni = %d, avx512 variant %d",
                ga_cpu_has(GA_CPU_AVX512_VNNI), f512, ga_isa_supported(GA_ISA_AVX512));
        tc_true(&c, ga_cpu_has(GA_CPU_AVX_VNNI) == (f256 && ga_isa_supported(GA_ISA_AVX2)),
                "ga_cpu_has(AVX_VNNI) = %d, cpuinfo avx_vnni = %d, avx2 variant %d",
                ga_cpu_has(GA_CPU_AVX_VNNI), f256, ga_isa_supported(GA_ISA_AVX2));
    }
    tc_true(&c, ga_cpu_has(GA_CPU_NEON_DOTPROD) == 0, "NEON dotprod reported on x86-64");
    tc_true(&c, ga_cpu_has((ga_cpu_feature)GA_CPU_FEATURE_COUNT) == 0,
            "an out-of-range feature is reported");
    tc_finish(&c);
}
#endif
