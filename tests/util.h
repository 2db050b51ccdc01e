/* util.h — shared helpers of the granattn Criterion suite.
 *
 *   - a small deterministic PRNG (splitmix64) and fills;
 *   - the list of variants to run (every ISA ga_isa_supported() reports),
 *     logged once per test with the reason for every skipped one;
 *   - a check context that reports failures with the variant, the case and
 *     the worst element, and caps the number of messages per test;
 *   - an arena of test buffers: 64-byte aligned plus a deliberate misalignment,
 *     poisoned (0xFF bytes: NaN floats, -1 ints, 255 levels) and surrounded by
 *     canary bytes that are checked after every case (exact-write check);
 *   - guard-page allocation (PROT_NONE page right after or right before);
 *   - the tolerance model (see the comment above rtol_sum()).
 * Nothing here is ISA specific: the suite builds and runs on x86-64 and
 * AArch64 alike.
 */
#ifndef GA_TEST_UTIL_H
#define GA_TEST_UTIL_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Every test gets a generous hang guard; the whole suite runs in well under
 * two minutes natively (GA_TEST_QUICK=1 shrinks the largest sizes for qemu). */
#define TEST_TIMEOUT 300.0

/* The kernel lists come from include/granattn_ops.h (GA_KERNEL_LIST: the 17
 * attention kernels of docs/SPEC.md §5; GA_TABLE_LIST: those plus sgemm,
 * sgemm_pack and sgemm_packed, tested in test_sgemm.c), entries X(ret, name,
 * (params)).  Their lengths: */
#define GA_T_COUNT_ONE(ret, name, params) +1
enum {
    GA_KERNEL_COUNT = 0 GA_KERNEL_LIST(GA_T_COUNT_ONE),
    GA_TABLE_COUNT = 0 GA_TABLE_LIST(GA_T_COUNT_ONE)
};
#undef GA_T_COUNT_ONE

/* Naive reference of the whole fused step (tests/ref_attend.c): same
 * arguments and results as ga_attend, written as plain loops with double
 * accumulation and without the kernel table. */
ga_status ga_ref_attend(const ga_config *cfg, int N, int T, const float *Q,
                        const float *K, const float *V, const float *bias,
                        const float *P, int ldp, const float *R,
                        const float *W2, const float *b2, float *C, int *kept,
                        uint8_t *levels);

/* ------------------------------------------------------------- tolerances
 *
 * U is the unit roundoff of binary32 (2^-24): one correctly rounded float
 * operation has relative error <= U.
 *
 * Sums of products.  A float sum of n terms (products formed with or without
 * FMA, in ANY order: sequential, lane-parallel, tree) satisfies
 *     |computed - exact| <= gamma_{n+1} * sum_i |terms_i|,
 *     gamma_k = k U / (1 - k U)                       (Higham, ASNA §3.1, §3.3).
 * The references accumulate in double and round once, so they are within
 * ~U of the exact value (their double error n 2^-53 sum|terms| is < U sum for
 * every n we use).  Hence rtol_sum(n) = (n + 3) U * 1.01 relative to
 * sum|terms| (one extra U for the reference's rounding, one for a final
 * scale/bias operation, 1.01 for gamma's denominator) is a rigorous bound
 * that no correct implementation can exceed, whatever its summation order.
 * It is still tight: for the sizes where tails are tested (n <= 33..256) it
 * is <= 1.6e-5 of sum|terms|, while a missing, duplicated or misplaced term
 * (a tail bug, a wrong row or stride) moves the result by about one term,
 * i.e. sum|terms| / n >= 4e-3 of it.  The "magnitude" sum|terms| of each
 * output is computed by the test, usually by running the reference on the
 * absolute values of the inputs (for a sum of products that is exactly
 * sum |a_i b_i|).
 *
 * exp.  The SIMD kernels use SLEEF's expf u10 (max error 1.0 ulp); the
 * references compute (float)exp((double)x) (<= 0.5 ulp).  EXP_RTOL = 4
 * FLT_EPSILON >= 4 ulp relative allows for that 1.5 ulp plus a hand-written
 * exp of up to ~3 ulp; a wrong range reduction or polynomial is off by far
 * more than 4 ulp on the inputs we use, which span [-104, 0].
 *
 * ATOL_TINY = 4 FLT_MIN: results below the normal range may be flushed to
 * zero by a kernel (we assume neither FTZ nor its absence); anything that
 * small contributes nothing to a normalised attention weight (>= 1e-38 below
 * Z >= 1).
 */
#define U_F32 ((double)FLT_EPSILON / 2.0)
#define EXP_RTOL (4.0 * (double)FLT_EPSILON)
#define ATOL_TINY (4.0 * (double)FLT_MIN)
static inline double rtol_sum(long n) { return (double)(n + 3) * U_F32 * 1.01; }

/* Finite-difference comparisons (backward kernels, double forward, central
 * differences with h = FD_H): FD error ~ h^2 |f'''| / 6 + eps_d |f| / h,
 * i.e. below 1e-9 of the gradient scale for our O(1) data; the kernels' float
 * error is <= rtol_sum(n) < 3e-6 for the FD sizes (n <= 40).  FD_RTOL = 1e-4
 * of (|g_i| + max_j |g_j|) therefore never fails a correct kernel, while a
 * formula bug (wrong sign, missing factor or term, wrong index) changes a
 * component by a sizeable fraction of the gradient scale. */
#define FD_H 1e-6
#define FD_RTOL 1e-4

/* ------------------------------------------------------------------ PRNG */
typedef struct trng {
    uint64_t s;
} trng;

void rng_init(trng *r, uint64_t seed);
uint64_t rng_u64(trng *r);
double rng_unit(trng *r);                      /* [0, 1) */
double rng_range(trng *r, double lo, double hi); /* [lo, hi) */
int rng_int(trng *r, int n);                   /* [0, n) */
void fill_unif(trng *r, float *x, size_t n, double lo, double hi);
/* levels[i] uniform in [0, L) */
void fill_levels(trng *r, uint8_t *lev, size_t n, int L);

/* ------------------------------------------------------------ test sizes */
/* GA_TEST_QUICK=1 (qemu): shrinks the largest sizes. */
int t_quick(void);
/* N = 0, 1, ..., 33 (covers the tails of 4, 8 and 16 lanes, two full 16-wide
 * blocks + 1), then 100, 1001, 4097 and, when `hot`, 65536 (quick mode:
 * 100, 1001, and 4097 only when `hot`).  Returns the count (<= 40). */
int n_sizes(int *out, int hot);

/* ---------------------------------------------------------------- variants */
typedef struct tvariants {
    int n;
    const ga_kernels *k[GA_ISA_COUNT];
} tvariants;
/* Every supported variant (scalar first).  Logs one line:
 * "<test>: ran scalar avx2 avx512; skipped neon (not compiled for this architecture)". */
void variants_get(tvariants *v, const char *test);
/* Coverage table (coverage.c): variants_get records the kernel its label
 * names; variants_cover records `kernel` too (a test that runs several). */
void cov_record(const char *label, const tvariants *v);
void variants_cover(const tvariants *v, const char *kernel);

/* ----------------------------------------------------------------- checks */
typedef struct tcheck {
    const char *test;  /* test name for messages */
    const char *isa;   /* current variant ("" outside the variant loop) */
    char ctx[200];     /* current case, e.g. "N=17 dh=3 off=1" */
    long checks;       /* comparisons made */
    long fails;        /* failed comparisons */
} tcheck;

void tc_init(tcheck *c, const char *test);
void tc_case(tcheck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tc_fail(tcheck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Final summary: reports the number of suppressed messages (only the first
 * TC_MAX_MSGS failures of a test are printed in full). */
void tc_finish(tcheck *c);
#define TC_MAX_MSGS 6

/* got vs ref, rows x cols with leading dimensions (elements).  An element
 * passes if both are NaN, both the same infinity, or
 *     |got - ref| <= atol + rtol * (mag ? |mag| : |ref|).
 * On failure reports the worst element (largest err / bound) and the number
 * of bad ones.  Returns 1 when all pass. */
int tc_close2(tcheck *c, const char *what, const float *got, size_t ldg,
              const float *ref, size_t ldr, const float *mag, size_t ldm,
              int rows, int cols, double rtol, double atol);
static inline int tc_close(tcheck *c, const char *what, const float *got,
                           const float *ref, const float *mag, int n,
                           double rtol, double atol)
{
    return tc_close2(c, what, got, 0, ref, 0, mag, 0, 1, n, rtol, atol);
}
/* As tc_close against a double reference with a per-element bound
 * atol + rtol * (|ref_i| + scale). */
int tc_close_d(tcheck *c, const char *what, const float *got, const double *ref,
               int n, double rtol, double scale);
int tc_eq_i32(tcheck *c, const char *what, const int32_t *got,
              const int32_t *ref, int n);
int tc_eq_u8(tcheck *c, const char *what, const uint8_t *got,
             const uint8_t *ref, int n);
int tc_eq_long(tcheck *c, const char *what, long got, long ref);
/* bitwise equality of two buffers (determinism) */
int tc_bits(tcheck *c, const char *what, const void *a, const void *b,
            size_t bytes);
/* 1 if cond, else a failure with the message */
int tc_true(tcheck *c, int cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Elements [cols, ld) of each of `rows` rows still hold `sentinel` bitwise. */
int tc_gap_untouched(tcheck *c, const char *what, const float *buf, int rows,
                     int cols, int ld, float sentinel);

/* ------------------------------------------------------------------ arena */
/* Buffers for one case.  Each is 64-byte aligned + misalign bytes, filled
 * with 0xFF bytes (NaN floats, -1 ints) and framed by 64 canary bytes on
 * each side.  ar_check() reports any canary byte that changed (a write past
 * either end); ar_free() releases everything. */
typedef struct tarena {
    struct tblock *head;
} tarena;

void *ar_alloc(tarena *a, const char *name, size_t bytes, size_t misalign);
float *ar_f(tarena *a, const char *name, size_t n, int off_floats);
int32_t *ar_i32(tarena *a, const char *name, size_t n, int off_elems);
uint8_t *ar_u8(tarena *a, const char *name, size_t n, int off_elems);
double *ar_d(tarena *a, const char *name, size_t n);
/* Copies of x (n floats, same misalignment) */
float *ar_copy(tarena *a, const char *name, const float *x, size_t n, int off);
float *ar_abs(tarena *a, const char *name, const float *x, size_t n);
int ar_check(tarena *a, tcheck *c);
void ar_free(tarena *a);

/* ------------------------------------------------------------- guard pages */
/* GUARD_AFTER: the buffer ends exactly where a PROT_NONE page begins;
 * GUARD_BEFORE: it starts exactly where a PROT_NONE page ends.  A 0-byte
 * buffer points at (after) or just past (before) the guard page, so any
 * access faults. */
enum { GUARD_AFTER = 0, GUARD_BEFORE = 1 };
typedef struct tguard {
    void *map;
    size_t len;
} tguard;
void *guard_alloc(tguard *g, size_t bytes, int side);
void guard_free(tguard *g);

/* ------------------------------------------------------- GPN logit model */
/* Double-precision GPN logits of every key, as the kernels define them:
 * u_j = relu(P[j][i] + r[j]) with the float addition (identical in every
 * variant), z_l = b2[l] + sum_j W2[l][j] u_j.  z[i*L + l] in double and
 * err[i*L + l] = rtol_sum(g + 1) * (|b2| + sum_j |W2 u|), a bound on
 * |float logit - z| for any variant (and for the reference's rounded logit).
 * Returns nonzero if any logit is NaN. */
int gpn_logits_d(const float *P, int ldp, const float *r, const float *W2,
                 const float *b2, int N, int g, int L, double *z, double *err);
/* Level decision of key i: the reference argmax (first maximum) of z, and
 * whether it is robust, i.e. every other logit is further than the sum of
 * the two error bounds from the winner (so that no correct float
 * implementation can decide otherwise).  `cand` (may be NULL) gets a bit
 * mask of the levels that a correct implementation may choose (the winner
 * plus every level within the band). */
int gpn_level_d(const double *z, const double *err, int L, int *robust,
                unsigned *cand);

/* Sentinel for the padding gaps of strided outputs (must stay untouched). */
#define GAP_SENTINEL (-7777.25f)

/* ------------------------------------------------------------------- misc */
/* theta8 for a level count L (1..8) from a fixed non-increasing tau list
 * that ends with tau = 0 when L > 1 (the finest level keeps every finite
 * key); also returns the config used. */
void test_theta(int L, float theta8[GA_MAX_LEVELS], ga_config *cfg_out);
/* float bits */
uint32_t f2u(float x);
float u2f(uint32_t u);
/* x moved by k ulps (k may be negative) */
float ulp_step(float x, int k);

#endif
