/* granattn.h — public API of the granattn kernel library.
 *
 * Dynamic attention sparsification with learned granularity: a small
 * Granularity Prediction Network (GPN) picks a level per (query, key) pair and
 * each level keeps the attention weights within a relative threshold of the
 * row maximum.  The math is docs/SPEC.md; this header is its C contract.
 *
 * Two layers:
 *   1. the kernel table (ga_kernels): one function pointer per kernel of
 *      docs/SPEC.md §5, forward and backward.  These are UNCHECKED fast paths: the
 *      caller guarantees the preconditions written next to each entry.
 *      ga_kernels_for(isa) returns the table of one variant; the scalar
 *      reference ("scalar") is always available.
 *   2. checked entry points (ga_attend, ga_config_check, ...): validate their
 *      arguments, return a ga_status and leave a message in ga_last_error().
 *      They never abort.
 *
 * Conventions shared by every kernel
 *   - fp32, row-major.  Sizes are int; a size of 0 is valid everywhere.
 *   - Per-head K and V are [N][dh] (one head's rows contiguous: the caller
 *     passes K + h*N*dh for head h of a [H][N][dh] tensor).
 *   - The GPN key projection is stored transposed, P[g][ldp] with ldp >= N.
 *   - Pointers need no particular alignment.
 *   - Reads: no kernel reads an input element outside the ranges stated for
 *     it (0 bytes past the end); SIMD tails are handled with masks or scalar
 *     code.  Writes: only `threshold` may write past its logical output: it
 *     may write idx[] and p[] up to index N + GA_KEEP_PAD - 1, so both arrays
 *     need N + GA_KEEP_PAD elements.  Everything else writes exactly its
 *     stated outputs.
 *   - Thresholds are passed as an 8-entry table of *effective* log-domain
 *     thresholds theta8[level] (see ga_theta_from_tau): finite, with
 *     -FLT_MAX standing for "keep every finite score" (tau = 0), so that
 *     -inf padding scores are never kept.
 *   - Row max m: NaN if any score is NaN; -inf when N == 0 or every score is
 *     -inf (all padded).
 *   - Determinism: every kernel gives bitwise-identical outputs for the same
 *     inputs on repeated calls (no data races, no thread-count dependence).
 *   - relu(NaN) = NaN everywhere (so NaN GPN inputs reach the logits).
 */
#ifndef GRANATTN_H
#define GRANATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GA_VERSION_STRING "0.1.0"
#define GA_MAX_LEVELS 8   /* L <= 8 */
#define GA_KEEP_PAD 16    /* extra elements `threshold` may write past N */

/* ---------------------------------------------------------------- status */
typedef enum ga_status {
    GA_OK = 0,
    GA_EINVAL = 1,      /* invalid argument (size, L, tau order, NULL pointer) */
    GA_ENOTSUP = 2,     /* ISA variant not compiled in or not supported by this CPU/OS */
    GA_ENOMEM = 3,      /* allocation failed */
    GA_ESYS = 4         /* OS / hwloc call failed */
} ga_status;

/* Message describing the last error on this thread ("" if none). */
const char *ga_last_error(void);
const char *ga_status_name(ga_status s);

/* ------------------------------------------------------------------ ISAs */
typedef enum ga_isa {
    GA_ISA_SCALAR = 0,
    GA_ISA_AVX2 = 1,    /* AVX2 + FMA, OS saves ymm */
    GA_ISA_AVX512 = 2,  /* AVX-512 F/BW/VL/DQ, OS saves zmm + opmask */
    GA_ISA_NEON = 3,    /* AArch64 Advanced SIMD (baseline on aarch64) */
    GA_ISA_COUNT = 4
} ga_isa;

const char *ga_isa_name(ga_isa isa);                       /* "scalar", "avx2", ... */
ga_status ga_isa_from_name(const char *name, ga_isa *out); /* EINVAL on unknown name */
int ga_isa_compiled(ga_isa isa);  /* variant built into this library */
int ga_isa_supported(ga_isa isa); /* compiled AND this CPU/OS can run it */
/* Why an ISA is unsupported (static string), or "" when supported. */
const char *ga_isa_unsupported_reason(ga_isa isa);
/* Best supported ISA, ignoring GRANATTN_ISA. */
ga_isa ga_isa_best(void);

/* Normalisation mode (docs/SPEC.md §2). */
typedef enum ga_norm {
    GA_NORM_SEED = 0,   /* Z = sum over all keys; kept weights sum to <= 1 */
    GA_NORM_RENORM = 1  /* Z = sum over kept keys; kept weights sum to 1 */
} ga_norm;

/* ---------------------------------------------------------- kernel table */
typedef struct ga_kernels {
    ga_isa isa;
    const char *name;

    /* ---- GPN (docs/SPEC.md §3) ---- */
    /* P[j][i] = b1[j] + sum_k U[j][k] * E[i][k]
     * E [N][d], U [g][d], b1 [g] -> P [g][ldp], ldp >= N. */
    void (*gpn_project_keys)(const float *E, int N, int d, const float *U,
                             const float *b1, int g, float *P, int ldp);
    /* r[j] = sum_k W[j][k] * x[k];   x [d], W [g][d] -> r [g]. */
    void (*gpn_project_query)(const float *x, int d, const float *W, int g,
                              float *r);
    /* Per key i: u = relu(P[:,i] + r) (g values), z = W2 u + b2 (L logits),
     * levels[i] = argmax z, ties to the lower level.  The argmax is a running
     * strict ">" from level 0 upward, so a NaN logit never wins and a NaN z_0
     * keeps level 0.  Returns nonzero iff any logit of any key is NaN.
     * P [g][ldp], r [g], W2 [L][g], b2 [L] -> levels [N]; 1 <= L <= 8. */
    int (*gpn_levels)(const float *P, int ldp, const float *r, const float *W2,
                      const float *b2, int N, int g, int L, uint8_t *levels);
    /* As gpn_levels, plus pi[l][i] = softmax_l(z) (training).
     * A key with a NaN logit gets pi = NaN at every level.
     * -> pi [L][ldpi] (ldpi >= N), levels [N].  Returns the NaN flag. */
    int (*gpn_probs)(const float *P, int ldp, const float *r, const float *W2,
                     const float *b2, int N, int g, int L, float *pi, int ldpi,
                     uint8_t *levels);

    /* ---- scores ---- */
    /* For t < T, i < N: S[t][i] = scale * (Q[t] . K[i]) + (bias ? bias[i] : 0)
     * m[t] = max_i S[t][i] (NaN if any S[t][i] is NaN; -inf if N == 0).
     * K [N][dh], Q [T][ldq] (ldq >= dh), bias [N] or NULL (0 or -inf for
     * padding) -> S [T][lds] (lds >= N), m [T]. */
    void (*scores)(const float *K, int N, int dh, const float *Q, int T, int ldq,
                   float scale, const float *bias, float *S, int lds, float *m);

    /* ---- threshold + compress (docs/SPEC.md §2) ---- */
    /* keep_i = (s[i] - m >= theta8[levels[i]]); for kept keys in increasing i
     * order: idx[k] = i, p[k] = exp(s[i] - m).  Returns the kept count and
     * writes *Z: seed mode Z = sum_all exp(s[i]-m); renorm Z = sum_kept p.
     * Special cases (checked once per call, not per element):
     *   N == 0 or m == -inf  -> returns 0, *Z = 0;
     *   m NaN or m == +inf   -> returns 0, *Z = NaN.
     * No data-dependent branch per element in SIMD variants.
     * s [N], levels [N] (each < 8), theta8 [8] (effective, finite)
     * -> idx [N+GA_KEEP_PAD], p [N+GA_KEEP_PAD], *Z. */
    int (*threshold)(const float *s, int N, float m, const uint8_t *levels,
                     const float *theta8, ga_norm mode, int32_t *idx, float *p,
                     float *Z);

    /* ---- contexts ---- */
    /* c[j] = scale * sum_{k<count} p[k] * V[idx[k]][j]; count == 0 -> c = 0.
     * V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh]. */
    void (*sparse_context)(const float *V, int dh, const int32_t *idx,
                           const float *p, int count, float scale, float *c);
    /* a[i] = exp(s[i] - m) / Z with Z = sum_i exp(s[i] - m); returns Z.
     * m == -inf or N == 0 -> a = 0, returns 0; m NaN/+inf -> a = NaN, returns NaN.
     * s [N] -> a [N]. */
    float (*softmax)(const float *s, int N, float m, float *a);
    /* c[j] = sum_i a[i] * V[i][j].   V [N][dh], a [N] -> c [dh]. */
    void (*dense_context)(const float *V, int N, int dh, const float *a, float *c);

    /* ---- backward (docs/SPEC.md §4); "accum" outputs are added to, others overwritten ---- */
    /* dq[j] += scale * sum_i ds[i] K[i][j];  dK[i][j] += scale * ds[i] q[j].
     * Either output may be NULL (not computed).  K [N][dh], q [dh], ds [N]. */
    void (*scores_backward)(const float *K, int N, int dh, const float *q,
                            float scale, const float *ds, float *dq, float *dK);
    /* Attention-weight backward through the threshold, both modes.
     * Inputs: forward s [N], m, Z (the mode's Z), levels [N], theta8, L, mode;
     * gv [N] = V[i] . dc for every key; cdc = c . dc.
     * With p_i = exp(s_i - m), keep_i as in `threshold`:
     *   seed:   ds[i] = (p_i/Z) * (keep_i * gv[i] - cdc)
     *   renorm: ds[i] = keep_i * (p_i/Z) * (gv[i] - cdc)
     * If dpi != NULL, the straight-through GPN gradient plus the regulariser:
     *   G_i = (p_i/Z) * gv[i] (seed)  or  (p_i/Z) * (gv[i] - cdc) (renorm)
     *   dpi[l][i] += (G_i + reg) * [s_i - m >= theta8[l]]   for l < L.
     * Dropped keys get exactly ds = 0 (selected, not multiplied by keep_i,
     * so a NaN/inf gv of a dropped key does not leak into ds).
     * Special cases, checked in this order: m == -inf or Z == 0 -> ds = 0;
     * m NaN, m == +inf or Z NaN -> ds = NaN; dpi is unchanged in both.
     * -> ds [N] (overwritten), dpi [L][ldpi] (accum). */
    void (*threshold_backward)(const float *s, int N, float m, float Z,
                               const uint8_t *levels, const float *theta8, int L,
                               ga_norm mode, const float *gv, float cdc,
                               float *ds, float *dpi, int ldpi, float reg);
    /* ds[i] = a[i] * (da[i] - sum_j a[j] da[j]).   a, da [N] -> ds [N]. */
    void (*softmax_backward)(const float *a, const float *da, int N, float *ds);
    /* Backward of sparse_context with weights w_k = scale * p[k]:
     * dV[idx[k]][j] += w_k * dc[j] (accum; dV may be NULL);
     * gk[k] = V[idx[k]] . dc (overwritten; gk may be NULL).
     * idx must not repeat (threshold never repeats an index). */
    void (*sparse_context_backward)(const float *V, int dh, const int32_t *idx,
                                    const float *p, int count, float scale,
                                    const float *dc, float *dV, float *gk);
    /* Backward of dense_context: dV[i][j] += a[i] * dc[j] (accum; may be NULL);
     * ga[i] = V[i] . dc (overwritten; may be NULL). */
    void (*dense_context_backward)(const float *V, int N, int dh, const float *a,
                                   const float *dc, float *dV, float *ga);
    /* GPN head backward, given the forward probabilities pi [L][ldpi] and
     * dpi [L][ldpi] = dLoss/dpi:
     *   dz_l = pi_l * (dpi_l - sum_k pi_k dpi_k);  u = relu(P[:,i] + r)
     *   dW2[l][j] += sum_i dz_l u_j;   db2[l] += sum_i dz_l   (accum)
     *   du_j = [P[j][i] + r[j] > 0] * sum_l W2[l][j] dz_l
     *   dP[j][i] = du_j (overwritten);  dr[j] += sum_i du_j   (accum)
     * -> dP [g][lddp] (lddp >= N), dr [g], dW2 [L][g], db2 [L]. */
    void (*gpn_backward)(const float *P, int ldp, const float *r, const float *W2,
                         int N, int g, int L, const float *pi, const float *dpi,
                         int ldpi, float *dP, int lddp, float *dr, float *dW2,
                         float *db2);
    /* Backward of gpn_project_keys: with dP [g][lddp]:
     *   dU[j][k] += sum_i dP[j][i] E[i][k];  db1[j] += sum_i dP[j][i];
     *   dE[i][k] += sum_j dP[j][i] U[j][k]        (all accum; each may be NULL). */
    void (*gpn_project_keys_backward)(const float *E, int N, int d,
                                      const float *U, int g, const float *dP,
                                      int lddp, float *dU, float *db1, float *dE);
    /* Backward of gpn_project_query: dW[j][k] += dr[j] x[k];
     * dx[k] += sum_j W[j][k] dr[j]   (accum; each may be NULL). */
    void (*gpn_project_query_backward)(const float *x, int d, const float *W,
                                       int g, const float *dr, float *dW, float *dx);

    /* ---- dense linear algebra (used by the model) ---- */
    /* Row-major SGEMM: C = alpha * op(A) op(B) + beta * C, with op(A) [M][K]
     * and op(B) [K][N]; op(X) = X (trans = 0) or X^T (trans = 1).
     * A is [M][lda] (trans 0) or [K][lda] (trans 1); B is [K][ldb] or [N][ldb];
     * C [M][ldc].  beta == 0 overwrites C without reading it (NaN in C is not
     * propagated); alpha == 0 or K == 0 only scales C.  Single-threaded;
     * callers split the work (e.g. over M) across a pool. */
    void (*sgemm)(int transA, int transB, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);
} ga_kernels;

/* Table of one variant, or NULL (message in ga_last_error()) when the ISA is
 * not compiled in or the CPU/OS cannot run it.  The table is immutable. */
const ga_kernels *ga_kernels_for(ga_isa isa);
/* The variant in use: GRANATTN_ISA if set (NULL + message when it names an
 * unknown or unsupported ISA), else the best supported one. */
const ga_kernels *ga_kernels_default(void);
/* The scalar reference table (always available). */
const ga_kernels *ga_kernels_ref(void);

/* --------------------------------------------------------- configuration */
typedef struct ga_config {
    int H;            /* heads, >= 1 */
    int dh;           /* head width, >= 1 */
    int g;            /* GPN hidden width, >= 1 */
    int L;            /* levels, 1..8 */
    float tau[GA_MAX_LEVELS]; /* relative keep thresholds, 0 <= tau < 1,
                                 non-increasing from level 0 (coarse) to L-1 */
    ga_norm mode;
    int dense;        /* 1: dense baseline (softmax over all keys, no GPN) */
} ga_config;

/* Defaults of docs/SPEC.md §1: H 4, dh 64, g 16, L 3, tau (0.10, 0.01, 0), seed. */
void ga_config_default(ga_config *cfg);
/* Validates a configuration (EINVAL + message on the first violation). */
ga_status ga_config_check(const ga_config *cfg);
/* theta8[l] = ln tau[l] for l < L (tau == 0 -> -FLT_MAX), then entries
 * L..7 repeat theta8[L-1].  Requires a valid config. */
void ga_theta_from_tau(const ga_config *cfg, float theta8[GA_MAX_LEVELS]);

/* ----------------------------------------------------------- thread pool */
typedef enum ga_place {
    GA_PLACE_NONE = 0,    /* no binding */
    GA_PLACE_COMPACT = 1, /* fill cores in hwloc's logical order (SMT siblings first) */
    GA_PLACE_SCATTER = 2, /* spread over packages/NUMA nodes/cores, round robin */
    GA_PLACE_LIST = 3     /* explicit list of hwloc logical PU indices */
} ga_place;

typedef struct ga_pool ga_pool;
const char *ga_place_name(ga_place p);
ga_status ga_place_from_name(const char *name, ga_place *out);
/* threads >= 1.  For GA_PLACE_LIST, pus[0..npus) are hwloc logical PU
 * indices (thread t is bound to pus[t % npus]); otherwise pus is ignored.
 * The calling thread acts as worker 0.  Returns NULL + message on error. */
ga_pool *ga_pool_create(int threads, ga_place place, const int *pus, int npus);
void ga_pool_destroy(ga_pool *pool); /* NULL: no-op */
int ga_pool_threads(const ga_pool *pool);
/* Runs fn(arg, task, worker) for task in [0, ntasks) on the pool's workers
 * and returns when all are done.  Tasks are split in contiguous blocks. */
void ga_pool_run(ga_pool *pool, void (*fn)(void *arg, int task, int worker),
                 void *arg, int ntasks);
/* Per-worker scratch of at least `bytes` bytes, 64-byte aligned, kept
 * between calls (NULL on allocation failure).  Inside ga_pool_run a task uses
 * only its own worker's scratch; outside a run, the caller may grow any
 * worker's scratch (not concurrently with a run). */
void *ga_pool_scratch(ga_pool *pool, int worker, size_t bytes);
/* Text describing where each worker is bound (for result files). */
const char *ga_pool_describe(const ga_pool *pool);

/* ------------------------------------------------------- fused decode step */
/* One decode step for T queries over all H heads (docs/SPEC.md §2-§3):
 *   per query t: levels = gpn_levels(P, R[t]) (shared by the heads);
 *   per head h:  s = scores(K_h, q_th) (+ bias), (idx, p, Z) = threshold(...),
 *                C[t][h*dh..] = sparse_context(V_h, idx, p, 1/Z).
 * cfg->dense: softmax + dense_context instead, GPN skipped.
 * Inputs: Q [T][H*dh]; K, V [H][N][dh]; bias [N] or NULL; P [g][ldp];
 *   R [T][g] (r_t = W x_t from gpn_project_query); W2 [L][g]; b2 [L].
 *   (P, R, W2, b2 may be NULL when cfg->dense; K, V, P, R, W2, b2 may be
 *   NULL when N == 0; T == 0 returns GA_OK without touching anything.)
 * Outputs: C [T][H*dh]; kept [T][H] or NULL (kept keys per query and head;
 *   dense: the keys whose bias is not -inf); levels [T][N] or NULL (written
 *   by the sparse step only; the dense baseline leaves it untouched).
 * A head whose output is NaN or zero (see below) reports kept = 0.
 * Defined behaviour: N == 0 or all keys padded -> C = 0, kept = 0.  NaN in a
 * query's scores (q, K, bias) or in its GPN logits -> that query's C is NaN
 * (every head for GPN NaN, the affected head for score NaN).  NaN in a V row
 * reaches C only when that row is kept (dropped rows are never read).
 * pool NULL: runs on the calling thread with temporary buffers.
 * Results are bitwise identical for every thread count.
 * Errors: GA_EINVAL for a NULL kt, an invalid cfg (ga_config_check), N or T
 *   < 0, a NULL pointer that is required (see above), ldp < N, or a size
 *   product that does not fit in an int: H*dh, N*dh, H*N*dh, T*H, T*H*dh,
 *   min(T,16)*(N+GA_KEEP_PAD) and, unless cfg->dense, T*N, T*g, L*g, g*ldp
 *   (all checked before anything is read or allocated); GA_ENOMEM when a
 *   buffer cannot be allocated.  Same results, bitwise, as
 *   ga_attend_plan_create(kt, pool, cfg, N, T) + ga_attend_run (it is built
 *   on them). */
ga_status ga_attend(const ga_kernels *kt, ga_pool *pool, const ga_config *cfg,
                    int N, int T, const float *Q, const float *K, const float *V,
                    const float *bias, const float *P, int ldp, const float *R,
                    const float *W2, const float *b2, float *C, int *kept,
                    uint8_t *levels);

/* ------------------------------------------------ prepared fused step */
/* A prepared ga_attend (create once, run per step, destroy): create
 * validates the configuration and every size product for up to max_N keys
 * and max_T queries, computes theta8 once, and allocates everything a run
 * needs (per-worker workspaces in the pool's scratch, or in the plan when
 * pool is NULL; the GPN NaN flags; a levels buffer [max_T][max_N]).  A run
 * checks only its sizes against the plan and its pointers (and, for given
 * levels, their values), then computes; it allocates and frees nothing
 * itself.  One exception below the plan: the dense baseline with T >= 2
 * calls the table's sgemm, whose blocked SIMD variants allocate packing
 * buffers per call (sparse runs and dense runs of one query call no sgemm).
 *
 * Levels come from one of two sources, through the same threshold ->
 * Z -> context composition:
 *   ga_attend_run:        learned: levels = gpn_levels(P, R[t]) per query (as
 *                         ga_attend; bitwise the same results);
 *   ga_attend_run_levels: given by the caller, levels [T][N], e.g. one fixed
 *                         level everywhere or a random draw per (query, key).
 * The result of a run with given levels is bitwise the result of
 * ga_attend_run whose GPN chose the same levels (no GPN NaN flag: given
 * levels never make a query NaN by themselves).
 *
 * Thread safety: a plan holds mutable workspace; one run at a time per plan
 * (use one plan per thread).  Runs of several plans sharing a pool are
 * serialised by the pool.  The pool (if any) must outlive the plan; the
 * pool's scratch grown by create is kept by the pool (other users may grow
 * it further, never shrink it). */
typedef struct ga_attend_plan ga_attend_plan;

/* Preconditions: none (everything is checked).  max_N, max_T >= 0.
 * The plan copies *cfg (cfg may be freed after create).
 * Returns the plan, or NULL with *st (if st != NULL) set and a message in
 * ga_last_error():
 *   GA_EINVAL: kt NULL, cfg invalid (ga_config_check), max_N or max_T < 0,
 *              a size product of ga_attend for (max_N, max_T) that does not
 *              fit in an int (checked before any allocation);
 *   GA_ENOMEM: the plan or a workspace cannot be allocated.
 * *st = GA_OK on success. */
ga_attend_plan *ga_attend_plan_create(const ga_kernels *kt, ga_pool *pool,
                                      const ga_config *cfg, int max_N, int max_T,
                                      ga_status *st);
/* NULL: no-op.  Not concurrently with a run of the plan. */
void ga_attend_plan_destroy(ga_attend_plan *plan);

/* ga_attend with the plan's kt, pool and cfg, for N <= max_N keys and
 * T <= max_T queries.  Arguments, outputs and defined behaviour as
 * ga_attend: Q [T][H*dh]; K, V [H][N][dh]; bias [N] or NULL; P [g][ldp];
 * R [T][g]; W2 [L][g]; b2 [L] (P..b2 may be NULL when cfg->dense or N == 0)
 * -> C [T][H*dh], kept [T][H] or NULL, levels [T][N] or NULL (sparse only).
 * Errors (GA_EINVAL + message, nothing written): plan NULL; N or T < 0 or
 * above the plan's max_N / max_T; a required pointer NULL; ldp < N or g*ldp
 * not fitting in an int.  Never GA_ENOMEM. */
ga_status ga_attend_run(ga_attend_plan *plan, int N, int T, const float *Q, const float *K,
                        const float *V, const float *bias, const float *P, int ldp,
                        const float *R, const float *W2, const float *b2, float *C, int *kept,
                        uint8_t *levels);
/* Same step with caller-given levels [T][N] (level of key i for query t,
 * shared by the heads; each must be < cfg->L; the GPN is not evaluated).
 * cfg->dense: levels are not read and may be NULL.  Shapes and outputs:
 * Q [T][H*dh]; K, V [H][N][dh]; bias [N] or NULL -> C [T][H*dh],
 * kept [T][H] or NULL.  Errors (GA_EINVAL + message, nothing written): plan
 * NULL; N or T < 0 or above the plan's sizes; Q, C (T > 0), K, V (N > 0) or
 * levels (sparse, N > 0, T > 0) NULL; a level >= L.  Never GA_ENOMEM. */
ga_status ga_attend_run_levels(ga_attend_plan *plan, int N, int T, const float *Q,
                               const float *K, const float *V, const float *bias,
                               const uint8_t *levels, float *C, int *kept);

/* What a traced run records for a training backward (caller-allocated;
 * row (h, t) of an [H][T] array is element h*T + t):
 *   S     [H][T][N]               scores (bias included), lds = N
 *   m     [H][T]                  row max of S
 *   Z     [H][T]                  the threshold's Z of the mode (NaN, 0 as
 *                                 `threshold` returns them)
 *   count [H][T]                  kept keys (= kept[t][h])
 *   idx   [H][T][N + GA_KEEP_PAD] kept indices, then padding (threshold)
 *   p     [H][T][N + GA_KEEP_PAD] exp(s[idx] - m) of the kept keys */
typedef struct ga_attend_trace {
    float *S, *m, *Z;
    int32_t *count, *idx;
    float *p;
} ga_attend_trace;

/* ga_attend_run_levels (sparse plans only: caller-given levels [T][N],
 * each < L) that also fills *trace.  C and kept are bitwise those of
 * ga_attend_run_levels with the same arguments.  Reads the plan and writes
 * nothing of it, so one plan may serve concurrent traced runs (from
 * different threads; with a pool, the pool serialises them).  Shapes: Q
 * [T][H*dh]; K, V [H][N][dh]; bias [N] or NULL; levels [T][N] -> C [T][H*dh],
 * kept [T][H] or NULL, trace (above).  N == 0: C = 0, kept = count = 0,
 * m = -inf, Z = 0.  Errors (GA_EINVAL + message, nothing written): as
 * ga_attend_run_levels, plus trace or one of its arrays NULL, or a dense
 * plan.  Never allocates. */
ga_status ga_attend_run_traced(const ga_attend_plan *plan, int N, int T, const float *Q,
                               const float *K, const float *V, const float *bias,
                               const uint8_t *levels, float *C, int *kept,
                               const ga_attend_trace *trace);

/* ga_attend_run_traced without a plan, for callers that hold effective
 * thresholds rather than a ga_config (the model's training forward): the same
 * composition (single-threaded, no workspace, no allocation) with theta8 [8]
 * given (as ga_theta_from_tau writes them, indexed by level; levels [T][N]
 * must be < 8) and the scale 1/sqrt(dh).
 * Shapes: Q [T][H*dh]; K, V [H][N][dh]; bias [N] or NULL -> C [T][H*dh],
 * kept [T][H] or NULL, *trace (layout above).
 * Errors (GA_EINVAL + message, nothing written): kt, theta8 or trace NULL;
 * H or dh < 1; an unknown mode; N or T < 0; a size product of ga_attend
 * that does not fit in an int; a required pointer NULL; a level >= 8. */
ga_status ga_attend_traced_theta(const ga_kernels *kt, int H, int dh, ga_norm mode,
                                 const float theta8[GA_MAX_LEVELS], int N, int T,
                                 const float *Q, const float *K, const float *V,
                                 const float *bias, const uint8_t *levels, float *C, int *kept,
                                 const ga_attend_trace *trace);

#ifdef __cplusplus
}
#endif
#endif /* GRANATTN_H */
