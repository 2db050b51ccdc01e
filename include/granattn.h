/* granattn.h — public API of the granattn kernel library.
 *
 * Dynamic attention sparsification with learned granularity: a small
 * Granularity Prediction Network (GPN) picks a level per (query, key) pair and
 * each level keeps the attention weights within a relative threshold of the
 * row maximum.  The math is ../shared/SPEC.md; this header is its C contract.
 *
 * Two layers:
 *   1. the kernel table (ga_kernels): one function pointer per kernel of
 *      SPEC §5, forward and backward.  These are UNCHECKED fast paths: the
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
 *     -inf padding scores are never kept.  Keep rule: keep_i =
 *     (s_i - m >= theta) for theta > -FLT_MAX; keep_i = (s_i > -inf) for
 *     theta == -FLT_MAX, even when the float s_i - m overflows to -inf (e.g.
 *     s_i = -3e38, m = 3e38: kept, with weight exp(-inf) = 0).
 *   - Row max m: NaN if any score is NaN; -inf when N == 0 or every score is
 *     -inf (all padded).
 *   - Padded keys.  A key with bias -inf is excluded, whatever its K row, V
 *     row or GPN column hold (NaN, +-inf, values whose q.k overflows):
 *     `scores` gives it exactly -inf (never NaN), it is never kept, its
 *     weight is exactly 0, and it influences no output of any kernel or of
 *     ga_attend; its gradients are exactly 0.  The kernels that see only
 *     weights apply the same rule to every term of weight exactly 0:
 *     dense_context (a[i] == 0), sparse_context (p[k] == 0),
 *     scores_backward's dq (ds[i] == 0), softmax_backward (a[i] == 0: ds[i]
 *     = 0 and da[i] is not used), gpn_backward (dpi[.][i] == 0 at every
 *     level: key i is skipped, dP[.][i] = 0).
 *   - Overflow.  A result whose exact value is finite is finite: `scores`,
 *     sparse_context, dense_context and scores_backward's dq detect a
 *     non-finite float result (an overflowing partial sum, or a zero-weight
 *     term with a non-finite row) and recompute it exactly (double
 *     accumulation, as the scalar reference), so the fast path is unchanged.
 *     A non-finite exact result (a NaN/inf input that is not excluded, or a
 *     value beyond FLT_MAX) stays NaN/inf.
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

/* Normalisation mode (SPEC §2). */
typedef enum ga_norm {
    GA_NORM_SEED = 0,   /* Z = sum over all keys; kept weights sum to <= 1 */
    GA_NORM_RENORM = 1  /* Z = sum over kept keys; kept weights sum to 1 */
} ga_norm;

/* ---------------------------------------------------------- kernel table */
typedef struct ga_kernels {
    ga_isa isa;
    const char *name;

    /* ---- GPN (SPEC §3) ---- */
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
     * with S[t][i] = -inf exactly when bias[i] == -inf (K[i] is then not
     * used); S is finite whenever the exact value is (q.k may overflow float
     * before the scale: such scores are recomputed exactly).
     * m[t] = max_i S[t][i] (NaN if any S[t][i] is NaN; -inf if N == 0).
     * K [N][dh], Q [T][ldq] (ldq >= dh), bias [N] or NULL (0 or -inf for
     * padding) -> S [T][lds] (lds >= N), m [T]. */
    void (*scores)(const float *K, int N, int dh, const float *Q, int T, int ldq,
                   float scale, const float *bias, float *S, int lds, float *m);

    /* ---- threshold + compress (SPEC §2) ---- */
    /* keep_i = (s[i] - m >= theta8[levels[i]]), and keep_i = (s[i] > -inf)
     * where theta8 is -FLT_MAX (tau = 0: every finite score, even when
     * s[i] - m overflows); for kept keys in increasing i
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
     * A term with p[k] == 0 is excluded (its V row does not influence c);
     * c is finite whenever the exact value is (p V may overflow float before
     * the scale 1/Z: such a c is recomputed exactly).
     * V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh]. */
    void (*sparse_context)(const float *V, int dh, const int32_t *idx,
                           const float *p, int count, float scale, float *c);
    /* a[i] = exp(s[i] - m) / Z with Z = sum_i exp(s[i] - m); returns Z.
     * m == -inf or N == 0 -> a = 0, returns 0; m NaN/+inf -> a = NaN, returns NaN.
     * s [N] -> a [N]. */
    float (*softmax)(const float *s, int N, float m, float *a);
    /* c[j] = sum_i a[i] * V[i][j].   V [N][dh], a [N] -> c [dh].
     * A row with a[i] == 0 (padding) is excluded; c is finite whenever the
     * exact value is (recomputed exactly if a float partial sum overflows). */
    void (*dense_context)(const float *V, int N, int dh, const float *a, float *c);

    /* ---- backward (SPEC §4); "accum" outputs are added to, others overwritten ---- */
    /* dq[j] += scale * sum_i ds[i] K[i][j];  dK[i][j] += scale * ds[i] q[j].
     * A key with ds[i] == 0 (padding) is excluded from dq (its K row is not
     * used); the sum is finite whenever its exact value is.
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
     *   dpi[l][i] += (G_i + reg) * [keep rule of level l]   for l < L.
     * Dropped keys: renorm gives exactly ds = 0; seed gives ds = -(p_i/Z) cdc
     * (the gradient through Z, which every key is part of).  In both modes
     * gv of a dropped key is selected away, not multiplied by keep_i, so a
     * NaN/inf gv of a dropped key does not leak into ds.  A padded key
     * (s = -inf, p = 0) gets ds = 0 and leaves dpi unchanged.
     * Special cases, checked in this order: m == -inf or Z == 0 -> ds = 0;
     * m NaN, m == +inf or Z NaN -> ds = NaN; dpi is unchanged in both.
     * -> ds [N] (overwritten), dpi [L][ldpi] (accum). */
    void (*threshold_backward)(const float *s, int N, float m, float Z,
                               const uint8_t *levels, const float *theta8, int L,
                               ga_norm mode, const float *gv, float cdc,
                               float *ds, float *dpi, int ldpi, float reg);
    /* ds[i] = a[i] * (da[i] - sum_j a[j] da[j]).   a, da [N] -> ds [N].
     * A key with a[i] == 0 (padding) is excluded: ds[i] = 0 and da[i] (even
     * NaN/inf) is not part of the sum. */
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
     * A key whose dpi is 0 at every level (padding: the threshold backward
     * never adds to it) is excluded: dz = 0, dP[.][i] = 0, and its pi and P
     * column (even NaN/inf) reach no output.
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

/* Defaults of SPEC §1: H 4, dh 64, g 16, L 3, tau (0.10, 0.01, 0), seed. */
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
/* One decode step for T queries over all H heads (SPEC §2-§3):
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
 * Defined behaviour: N == 0 or all keys padded -> C = 0, kept = 0.  Padded
 * keys (bias -inf) are excluded: their K rows, V rows and GPN columns (P)
 * do not influence C, kept or the NaN rules, whatever they hold.  NaN in a
 * query's scores (q, K or bias of a key that is not padded) or in the GPN
 * logits of a key that is not padded -> that query's C is NaN (every head
 * for GPN NaN, the affected head for score NaN).  NaN in a V row reaches C
 * only when that row is kept with a nonzero weight (dropped rows are never
 * read; dense: a zero weight excludes its row).  C is finite whenever its
 * exact value is (no float overflow of intermediate sums).
 * pool NULL: runs on the calling thread with temporary buffers.
 * Results are bitwise identical for every thread count.
 * Block rule: queries are processed in blocks of 16.  Sparse (seed,
 * renorm): a query's C, kept and levels are bitwise identical whichever
 * other queries share its block (T = 1 calls give the same bits).  Dense:
 * a block of >= 2 queries computes C = A V as one SGEMM, a lone query uses
 * dense_context, so a query's C may differ in the last bits with the other
 * queries of its block (each within the float rounding of sum_i a_i V_i,
 * i.e. |error| <= (N + 1) * 2^-24 * sum_i a_i |V_ij| per element); kept
 * is identical. */
ga_status ga_attend(const ga_kernels *kt, ga_pool *pool, const ga_config *cfg,
                    int N, int T, const float *Q, const float *K, const float *V,
                    const float *bias, const float *P, int ldp, const float *R,
                    const float *W2, const float *b2, float *C, int *kept,
                    uint8_t *levels);

#ifdef __cplusplus
}
#endif
#endif /* GRANATTN_H */
