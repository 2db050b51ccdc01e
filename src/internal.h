/* internal.h — declarations shared inside the library (not installed).
 *
 * ref/ defines ga_ref_<op> for every entry of ga_kernels (same signature and
 * semantics as the table entry documented in include/granattn.h).
 * kernels/<isa>/table_<isa>.c defines ga_fill_<isa>(), which overrides the
 * entries that ISA implements in a table pre-filled with the references
 * (BLIS style: the reference is always there, optimised variants override).
 */
#ifndef GA_INTERNAL_H
#define GA_INTERNAL_H

#include "granattn.h"

/* ---- scalar references (ref/) ---- */
void ga_ref_gpn_project_keys(const float *E, int N, int d, const float *U,
                             const float *b1, int g, float *P, int ldp);
void ga_ref_gpn_project_query(const float *x, int d, const float *W, int g, float *r);
int ga_ref_gpn_levels(const float *P, int ldp, const float *r, const float *W2,
                      const float *b2, int N, int g, int L, uint8_t *levels);
int ga_ref_gpn_probs(const float *P, int ldp, const float *r, const float *W2,
                     const float *b2, int N, int g, int L, float *pi, int ldpi,
                     uint8_t *levels);
void ga_ref_scores(const float *K, int N, int dh, const float *Q, int T, int ldq,
                   float scale, const float *bias, float *S, int lds, float *m);
int ga_ref_threshold(const float *s, int N, float m, const uint8_t *levels,
                     const float *theta8, ga_norm mode, int32_t *idx, float *p,
                     float *Z);
void ga_ref_sparse_context(const float *V, int dh, const int32_t *idx,
                           const float *p, int count, float scale, float *c);
float ga_ref_softmax(const float *s, int N, float m, float *a);
void ga_ref_dense_context(const float *V, int N, int dh, const float *a, float *c);
void ga_ref_scores_backward(const float *K, int N, int dh, const float *q,
                            float scale, const float *ds, float *dq, float *dK);
void ga_ref_threshold_backward(const float *s, int N, float m, float Z,
                               const uint8_t *levels, const float *theta8, int L,
                               ga_norm mode, const float *gv, float cdc,
                               float *ds, float *dpi, int ldpi, float reg);
void ga_ref_softmax_backward(const float *a, const float *da, int N, float *ds);
void ga_ref_sparse_context_backward(const float *V, int dh, const int32_t *idx,
                                    const float *p, int count, float scale,
                                    const float *dc, float *dV, float *gk);
void ga_ref_dense_context_backward(const float *V, int N, int dh, const float *a,
                                   const float *dc, float *dV, float *ga);
void ga_ref_gpn_backward(const float *P, int ldp, const float *r, const float *W2,
                         int N, int g, int L, const float *pi, const float *dpi,
                         int ldpi, float *dP, int lddp, float *dr, float *dW2,
                         float *db2);
void ga_ref_gpn_project_keys_backward(const float *E, int N, int d,
                                      const float *U, int g, const float *dP,
                                      int lddp, float *dU, float *db1, float *dE);
void ga_ref_gpn_project_query_backward(const float *x, int d, const float *W,
                                       int g, const float *dr, float *dW, float *dx);

void ga_ref_sgemm(int transA, int transB, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);

/* Naive reference of the whole fused step (ref/attend_step_ref.c): same
 * arguments and results as ga_attend, written as plain loops with double
 * accumulation and without the kernel table, for tests. */
ga_status ga_ref_attend(const ga_config *cfg, int N, int T, const float *Q,
                        const float *K, const float *V, const float *bias,
                        const float *P, int ldp, const float *R,
                        const float *W2, const float *b2, float *C, int *kept,
                        uint8_t *levels);

/* ---- per-ISA overrides (kernels/<isa>/table_<isa>.c) ---- */
void ga_fill_avx2(ga_kernels *t);
void ga_fill_avx512(ga_kernels *t);
void ga_fill_neon(ga_kernels *t);
/* SGEMM variants live in kernels/gemm/ (their own per-ISA libraries). */
void ga_fill_gemm_avx2(ga_kernels *t);
void ga_fill_gemm_avx512(ga_kernels *t);
void ga_fill_gemm_neon(ga_kernels *t);

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
