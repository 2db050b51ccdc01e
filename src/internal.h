/* internal.h — declarations shared inside the library (not installed).
 *
 * ref/ defines ga_ref_<op> for every entry of ga_kernels (same signature and
 * semantics as the entry documented in include/granattn_ops.h).
 * kernels/simd/table.c, compiled once per ISA, defines ga_fill_<isa>(), which
 * installs that ISA's ga_<isa>_<op> for every GA_KERNEL_LIST entry into a
 * table pre-filled with the references (BLIS style: the reference is always
 * there, optimised variants override).
 */
#ifndef GA_INTERNAL_H
#define GA_INTERNAL_H

#include "granattn.h"

/* ---- scalar references (ref/<name>_ref.c): ga_ref_<name> for every entry
 * of GA_TABLE_LIST (include/granattn_ops.h), same signature and semantics. */
#define GA_REF_DECL(ret, name, params) ret ga_ref_##name params;
GA_TABLE_LIST(GA_REF_DECL)
#undef GA_REF_DECL

/* Pieces of the references that the SIMD variants reuse as exact fallbacks
 * (issue 9: a finite exact result stays finite, zero weights are excluded):
 *   ga_ref_scores_backward_dq: dq[j] += scale * sum_{ds[i] != 0} ds[i] K[i][j]
 *     for columns j in [j0, j1) only (double sum, one rounding per output);
 *   ga_ref_softmax_backward_dot: sum_{a[j] != 0} a[j] da[j] in double. */
void ga_ref_scores_backward_dq(const float *K, int N, int dh, int j0, int j1,
                               float scale, const float *ds, float *dq);
double ga_ref_softmax_backward_dot(const float *a, const float *da, int N);
/*   ga_ref_scores_packed_range: scores_packed's reference for keys
 *     [i0, i1) into s[i0..i1) (double, one rounding). */
void ga_ref_scores_packed_range(const float *Kp, int dh, const float *q, float scale,
                                const float *bias, int i0, int i1, float *s);

/* x rounded up to a float (ref/quantize_rows_ref.c and the per-ISA
 * quantize_rows): the conversion, then one step up by the representation
 * (no libm call) when it rounded down. */
static inline float ga_round_up_f(double x)
{
    float f = (float)x;
    if ((double)f < x) { /* f < +inf: step to the next float up, nextafterf(f, inf) */
        if (f == 0.0f)
            return 0x1p-149f; /* +-0 -> the smallest denormal */
        union { float f; uint32_t u; } b = {f};
        b.u += f > 0.0f ? 1u : (uint32_t)-1; /* magnitude +1 ulp (FLT_MAX -> inf) or -1 ulp */
        f = b.f;
    }
    return f;
}

/* ---- per-ISA tables (kernels/simd/table.c, compiled once per ISA) ---- */
void ga_fill_avx2(ga_kernels *t);
void ga_fill_avx512(ga_kernels *t);
void ga_fill_avx512h(ga_kernels *t); /* loads:halves entries (table_halves.c) */
void ga_fill_neon(ga_kernels *t);
/* SGEMM variants live in kernels/gemm/ (their own per-ISA libraries). */
void ga_fill_gemm_avx2(ga_kernels *t);
void ga_fill_gemm_avx512(ga_kernels *t);
void ga_fill_gemm_neon(ga_kernels *t);

/* ---- the blocked SGEMM's packing buffer (src/pool.c) ----
 * This thread's buffer of at least `bytes` bytes, 64-byte aligned, or NULL
 * (out of memory).  One per thread, grown when a call needs more and kept
 * (freed when the thread exits): after a thread's first call of a given
 * size, sgemm allocates nothing.  Contents are not preserved when it grows.
 * Only kernels/gemm uses it (never two users live on one thread). */
void *ga_gemm_buffer(size_t bytes);

/* ---- CPU features below the ISA level (src/dispatch.c) ----
 * Probed once, with the ISA detection (pthread_once).  Each is reported only
 * when the variant that uses it is supported too (so the OS saves the
 * registers it needs):
 *   GA_CPU_AVX512_VNNI   x86-64: CPUID.(7,0):ECX[11] (vpdpbusd zmm) and the
 *                        AVX-512 variant supported (XCR0 zmm/opmask state);
 *   GA_CPU_AVX_VNNI      x86-64: CPUID.(7,1):EAX[4] (VEX vpdpbusd ymm) and
 *                        the AVX2 variant supported;
 *   GA_CPU_NEON_DOTPROD  AArch64: HWCAP_ASIMDDP (sdot/udot) in AT_HWCAP.
 * Anything else, or the feature absent: 0. */
typedef enum ga_cpu_feature {
    GA_CPU_AVX512_VNNI = 0,
    GA_CPU_AVX_VNNI = 1,
    GA_CPU_NEON_DOTPROD = 2,
    GA_CPU_FEATURE_COUNT = 3
} ga_cpu_feature;
int ga_cpu_has(ga_cpu_feature f);

/* The AVX-512 table with the given load tuning (0 whole, 1 halves),
 * whichever one the CPU or GRANATTN_AVX512_LOADS chose for
 * ga_kernels_for(GA_ISA_AVX512); NULL (GA_ENOTSUP) when AVX-512 is not
 * supported.  For tests/test_tuning.c and benchmarks comparing the two. */
const ga_kernels *ga_kernels_avx512_loads(int halves);

/* ---- internal paths of kernels whose variant picks an instruction set
 * extension at run time (each path is a complete kernel with the table
 * entry's signature and contract; the tests run every path the CPU has).
 * preview_dots (include/granattn_ops.h, docs/SPEC.md §7):
 *   x86-64  ga_avx512_preview_dots_vnni  vpdpbusd zmm (needs GA_CPU_AVX512_VNNI)
 *           ga_avx512_preview_dots_bw    vpmaddubsw + vpmaddwd (AVX-512BW)
 *           ga_avx2_preview_dots_vnni    VEX vpdpbusd ymm (needs GA_CPU_AVX_VNNI)
 *           ga_avx2_preview_dots_madd    vpmaddubsw + vpmaddwd (AVX2)
 *   AArch64 ga_neon_preview_dots_sdot    sdot (needs GA_CPU_NEON_DOTPROD)
 *           ga_neon_preview_dots_smull   smull/smlal + sadalp (baseline)
 * ga_<isa>_preview_dots calls the first path the CPU has. */
#define GA_PREVIEW_DOTS_PARAMS                                                 \
    (const int8_t *codes, const int32_t *ksum, int N, int dh4,                 \
     const int8_t *qc, float *dot)
#if defined(__x86_64__)
void ga_avx512_preview_dots_vnni GA_PREVIEW_DOTS_PARAMS;
void ga_avx512_preview_dots_bw GA_PREVIEW_DOTS_PARAMS;
void ga_avx2_preview_dots_vnni GA_PREVIEW_DOTS_PARAMS;
void ga_avx2_preview_dots_madd GA_PREVIEW_DOTS_PARAMS;
#endif
#if defined(__aarch64__)
void ga_neon_preview_dots_sdot GA_PREVIEW_DOTS_PARAMS;
void ga_neon_preview_dots_smull GA_PREVIEW_DOTS_PARAMS;
#endif

/* ---- row special cases and the keep rule, shared by every variant ----
 *
 * The special-case prologue of the row kernels (threshold, softmax,
 * threshold_backward), in one place.  A row is
 *   GA_ROW_EMPTY  N == 0 or m == -inf (every key padded): nothing is kept,
 *                 weights and gradients are 0 (threshold_backward also for
 *                 Z == 0);
 *   GA_ROW_NAN    m NaN or +inf (a NaN or +inf score; threshold_backward
 *                 also for Z NaN): NaN results;
 *   GA_ROW_OK     otherwise: m finite, the kernel's fast path runs.
 * Checked once per call, never per element. */
typedef enum ga_row { GA_ROW_OK = 0, GA_ROW_EMPTY = 1, GA_ROW_NAN = 2 } ga_row;

static inline ga_row ga_row_case(int N, float m)
{
    if (N <= 0 || m == -__builtin_inff())
        return GA_ROW_EMPTY;
    if (m != m || m == __builtin_inff())
        return GA_ROW_NAN;
    return GA_ROW_OK;
}

/* threshold_backward's order: m == -inf or Z == 0 first, then NaN. */
static inline ga_row ga_row_case_z(int N, float m, float Z)
{
    if (N <= 0 || m == -__builtin_inff() || Z == 0.0f)
        return GA_ROW_EMPTY;
    if (m != m || m == __builtin_inff() || Z != Z)
        return GA_ROW_NAN;
    return GA_ROW_OK;
}

static inline void ga_fill_f32(float *x, int n, float v)
{
    for (int i = 0; i < n; i++)
        x[i] = v;
}

/* Keep rule (SPEC §2), with d = s - m in float:
 *   keep = d >= theta               for a finite theta > -FLT_MAX;
 *   keep = s > -inf                 for theta == -FLT_MAX (tau = 0: every
 *                                   finite score, even when d overflows);
 * a padded key (s = -inf) is never kept.  ga_keep() is the readable form.
 * SIMD form: keep = (d >= theta') & (s > -inf) with theta' = theta8 where
 * -FLT_MAX is replaced by -inf (ga_theta_open()).  When m <= 2^100 no finite
 * s can make d overflow (|s| <= FLT_MAX, and FLT_MAX + 2^100 rounds to
 * FLT_MAX), so there keep = d >= theta8 exactly: ga_theta_wide(m) says when
 * a kernel needs the general form (rows with |scores| > 2^100 only). */
static inline int ga_keep(float s, float m, float theta)
{
    if (theta == -__FLT_MAX__)
        return s > -__builtin_inff();
    float d = s - m;
    return d >= theta;
}

static inline int ga_theta_wide(float m)
{
    return m > 0x1p100f;
}

static inline void ga_theta_open(const float *theta8, float out[GA_MAX_LEVELS])
{
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        out[l] = theta8[l] == -__FLT_MAX__ ? -__builtin_inff() : theta8[l];
}

/* ---- errors (src/error.c) ---- */
/* Records a printf-style message for ga_last_error() and returns `st`. */
ga_status ga_set_error(ga_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ga_clear_error(void);

#endif
