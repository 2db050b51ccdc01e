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
 *     code.  Writes: only `threshold` and `preview_select` may write past their
 *     logical outputs: up to index N + GA_KEEP_PAD - 1 of idx[] and p[]
 *     (threshold) or cand[] (preview_select), so those arrays need
 *     N + GA_KEEP_PAD elements.  Everything else writes exactly its
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

#include "granattn_ops.h"

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
/* The per-microarchitecture tuning a supported variant runs with, chosen
 * once at startup (static string): for avx512 "loads:whole" (512-bit loads)
 * or "loads:halves" (the streaming kernels load each 512-bit vector as two
 * 256-bit halves: picked on AMD CPUs, where it streams faster from memory);
 * GRANATTN_AVX512_LOADS=auto|whole|halves overrides (any other value makes
 * ga_kernels_for(GA_ISA_AVX512) and ga_kernels_default() fail with
 * GA_EINVAL).  Results are bitwise the same either way.  "" for the other
 * variants and for an unsupported one. */
const char *ga_isa_tuning(ga_isa isa);

/* Normalisation mode (docs/SPEC.md §2). */
typedef enum ga_norm {
    GA_NORM_SEED = 0,   /* Z = sum over all keys; kept weights sum to <= 1 */
    GA_NORM_RENORM = 1  /* Z = sum over kept keys; kept weights sum to 1 */
} ga_norm;

/* ---------------------------------------------------------- kernel table */
typedef struct ga_kernels {
    ga_isa isa;
    const char *name;

    /* One member per entry of GA_TABLE_LIST (granattn_ops.h, which
     * documents each entry), in that order:
     * gpn_project_keys ... gpn_project_query_backward, then sgemm,
     * sgemm_pack, sgemm_packed. */
#define GA_KERNEL_MEMBER(ret, name, params) ret(*name) params;
    GA_TABLE_LIST(GA_KERNEL_MEMBER)
#undef GA_KERNEL_MEMBER
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
 * Results are bitwise identical for every thread count.  A T = 1 step
 * splits its keys over the pool (docs/SPEC.md §2, src/attend_split.c):
 * sparse results are bitwise those of the unsplit step; a dense T = 1
 * result is merged from key ranges whose number depends on N and H only
 * (never on the pool), within the dense tolerance below.  Steps below a
 * measured size run on the calling thread (scheduling only).
 * Errors: GA_EINVAL for a NULL kt, an invalid cfg (ga_config_check), N or T
 *   < 0, a NULL pointer that is required (see above), ldp < N, or a size
 *   product that does not fit in an int: H*dh, N*dh, H*N*dh, T*H, T*H*dh,
 *   min(T,32)*(N+GA_KEEP_PAD) and, unless cfg->dense, T*N, T*g, L*g, g*ldp
 *   (all checked before anything is read or allocated); GA_ENOMEM when a
 *   buffer cannot be allocated.  Same results, bitwise, as
 *   ga_attend_plan_create(kt, pool, cfg, N, T) + ga_attend_run (it is built
 *   on them).
 *
 * Block rule: queries are processed in blocks of 32.  Sparse (seed,
 * renorm): a query's C, kept and levels are bitwise identical whichever
 * other queries share its block (T = 1 calls give the same bits).  Dense:
 * a block of >= 2 queries is one flash_block call per head (online softmax
 * over chunks of GA_FLASH_NC = 64 keys, K and V read once per block, no
 * score matrix), a lone query uses scores + dense_context, so a query's C
 * may differ in the last bits with the other queries of its block; each is
 * within the float rounding of the step, |C_tj - exact| <=
 * (2E + (2.02 N + 6 ceil(N / 64) + 27) * 2^-24) * sum_i a_i |V_ij| per
 * element, where E = 1.01 (dh + 4) 2^-24 scale max_i sum_j |q_j K_ij|
 * bounds the float error of a score (any summation order) and the
 * 6 ceil(N / 64) term the chunks' rescales (exp and two products each);
 * kept is identical.  A block row whose scores are not all finite or
 * padded, or whose block context is not finite, is computed as a lone
 * query (same bits as T = 1). */
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
 * itself.  (The dense baseline with T >= 2 calls the table's flash_block
 * with the worker's workspace; no run calls sgemm.)
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

/* ------------------------------------------------------- prepared keys */
/* Keys (and values) prepared once per source for many decode steps
 * (docs/SPEC.md §7): an int8 preview of K with per-key scales and norms that
 * bound |preview score - exact score|, and K packed with keys across SIMD
 * lanes.  Built from K, V [H][N][dh] and bias [N] (or NULL), which are
 * REFERENCED, not copied: they must stay valid and unchanged while the
 * prepared keys are used (the exact pass reads candidate K rows and kept V
 * rows from them).  kt is the table whose kernels the steps will use (any
 * table gives the same preview bits; the bound holds for every table).
 * Preconditions: none (everything is checked).  Errors (NULL, *st set,
 * message): GA_EINVAL for a NULL kt, H, dh < 1, dh > 1024, N < 0, K or V
 * NULL with N > 0, or a size that does not fit in an int; GA_ENOMEM.
 * Non-finite K rows or biases are accepted: the steps take the unprepared
 * path for the heads they affect (see ga_prep_stats.fallback). */
typedef struct ga_keys ga_keys;
ga_keys *ga_keys_create(const ga_kernels *kt, int H, int N, int dh, const float *K,
                        const float *V, const float *bias, ga_status *st);
/* Prepares existing keys again, for a new source (the same contract as
 * ga_keys_create: K, V, bias referenced, every size checked), in the memory
 * they already own when it is large enough: no allocation and no page
 * faults, which is what a decoder reusing one ga_keys per layer across
 * sentences pays (ga_keys_create allocates fresh memory every time).  Grows
 * the memory when needed.  Errors (GA_EINVAL: keys NULL or a bad argument as
 * in ga_keys_create; GA_ENOMEM): the keys are left as they were. */
ga_status ga_keys_prepare(ga_keys *keys, const ga_kernels *kt, int H, int N, int dh,
                          const float *K, const float *V, const float *bias);
void ga_keys_destroy(ga_keys *keys); /* NULL: no-op */
int ga_keys_N(const ga_keys *keys);
/* Bytes the prepared keys own (preview, scales, norms, packed K; the memory
 * allocated, which ga_keys_prepare may have grown past this N's need). */
size_t ga_keys_bytes(const ga_keys *keys);

/* How a seed-mode prepared step forms Z (docs/SPEC.md §7); renorm and dense
 * plans ignore it. */
typedef enum ga_prep_z {
    GA_PREP_Z_EXACT = 0,   /* Z over every key's exact score: reads all of K */
    GA_PREP_Z_BOUNDED = 1  /* non-candidates contribute exp(preview - m);
                              relative error of Z <= ga_prep_stats.z_bound */
} ga_prep_z;

/* What a prepared step did, summed over its (query, head) rows (optional). */
typedef struct ga_prep_stats {
    long long rows;        /* (query, head) rows */
    long long keys;        /* keys seen (rows * N) */
    long long candidates;  /* keys whose exact score was computed */
    long long kept;        /* keys kept (sum of kept[t][h]) */
    long long fallback;    /* rows that took the unprepared path (inputs outside
                              the bound's range, or at least half of the row's
                              keys at a tau = 0 level: all candidates anyway) */
    double bytes;          /* bytes touched: preview, candidate K rows, kept V rows
                              (and every K row of fallback / exact-Z rows) */
    double z_bound;        /* GA_PREP_Z_BOUNDED: the largest relative bound of Z
                              over the rows (0 otherwise) */
} ga_prep_stats;

/* The plan's step (ga_attend_run / ga_attend_run_levels) over prepared keys:
 * same arguments and outputs (Q [T][H*dh] -> C [T][H*dh], kept [T][H],
 * levels [T][N]) with K, V and bias taken from keys, whose H and dh must
 * match the plan's and N must be <= the plan's max_N.
 * Results (docs/SPEC.md §7): renorm, and seed with GA_PREP_Z_EXACT: bitwise
 * those of the unprepared run; seed with GA_PREP_Z_BOUNDED: same kept sets,
 * C scaled by Z/Z_b; dense plans: the packed-K dense step (within the
 * dense tolerance of the unprepared one).  stats may be NULL.
 * Errors (GA_EINVAL + message, nothing written): as the unprepared runs, plus
 * keys NULL or not matching the plan, an unknown zmode.  Never allocates. */
ga_status ga_attend_run_prepared(ga_attend_plan *plan, const ga_keys *keys, int T,
                                 const float *Q, const float *P, int ldp, const float *R,
                                 const float *W2, const float *b2, ga_prep_z zmode,
                                 float *C, int *kept, uint8_t *levels,
                                 ga_prep_stats *stats);
ga_status ga_attend_run_prepared_levels(ga_attend_plan *plan, const ga_keys *keys, int T,
                                        const float *Q, const uint8_t *levels,
                                        ga_prep_z zmode, float *C, int *kept,
                                        ga_prep_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* GRANATTN_H */
