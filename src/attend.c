/* attend.c — the fused decode step over a kernel table (docs/SPEC.md §2-§3): the
 * prepared step (ga_attend_plan_create / ga_attend_run / ga_attend_run_levels
 * / ga_attend_plan_destroy) and the one-shot ga_attend built on it.
 *
 * For T queries and H heads:
 *   phase 1 (sparse, learned levels only), one task per query t:
 *       levels[t] = gpn_levels(P, R[t])            uint8 [N], shared by all heads
 *     (caller-given levels [T][N] replace this phase: fixed or random baselines)
 *   phase 2, one task per (block of up to QB = 32 queries, head h):
 *     sparse, or a lone dense query:
 *       S, m      = scores(K_h, Q_block,h) + bias   S [rows][N]  (K_h read once per block)
 *       then per query t of the block:
 *         sparse:   count, idx, p, Z = threshold(s, m, levels[t], theta)
 *                   C[t][h] = sparse_context(V_h, idx, p, 1/Z)
 *         dense:    a, Z = softmax(s, m);  C[t][h] = dense_context(V_h, a)
 *     dense block of >= 2 queries (flash style, dense_block):
 *       C_block,h = flash_block(Q_block,h, K_h, V_h): online softmax over key
 *       chunks, K_h and V_h read once per block, no packing, no S matrix
 * Every (t, h) output is computed by exactly one task with a fixed operation
 * order, so results are bitwise identical for any number of threads.
 * Block rule: a sparse result does not depend on which queries share its
 * block (bitwise: its scores come from `scores`, whose rows are independent);
 * a dense result may differ within rounding, since a block of >= 2 queries
 * takes flash_block and a single query scores + dense_context.
 * Padded keys (bias -inf): see gpn_nan_unpadded() and dense_block().
 * A T = 1 step may instead split its keys over the pool, and small steps run
 * on the calling thread: src/attend_split.c (the hook is in plan_run).
 *
 * The plan (XNNPACK's create / run split): create validates the
 * configuration and the size products once, computes theta8 once and
 * allocates every buffer a run needs for up to max_N keys and max_T queries
 * (the per-worker workspaces, in the pool's scratch or in the plan when there
 * is no pool; the GPN NaN flags [max_T]; the levels [max_T][max_N] for runs
 * that do not return them).  A run only checks its sizes against the plan
 * and its pointers, then computes; it never allocates.
 *
 * Per-worker workspace: see workspace_bytes().
 */
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attend_split.h"
#include "internal.h"
#include "keys.h"

struct ga_attend_plan {
    const ga_kernels *kt;
    ga_pool *pool;        /* NULL: runs on the calling thread */
    ga_config cfg;        /* validated copy */
    int max_N, max_T;
    float theta8[GA_MAX_LEVELS];
    float scale;          /* 1 / sqrt(dh) */
    size_t ws_bytes;      /* per-worker workspace for (max_N, min(max_T, QB)) */
    void *owned;          /* serial workspace | gpn NaN flags [max_T] | levels [max_T][max_N] */
    void *serial_ws;      /* workspace when pool == NULL */
    int *gpn_nan;         /* [max_T], sparse only */
    uint8_t *lev;         /* [max_T][max_N], or NULL (sparse only, see plan_init) */
    void *split;          /* T = 1 key-split buffers (attend_split.c), or NULL */
    size_t split_bytes;
    void *inline_ws;      /* workspace of small runs on the calling thread, or NULL */
    size_t inline_bytes;
};

typedef struct job {
    const ga_kernels *kt;
    const ga_config *cfg;
    const float *theta8;
    float scale;
    int N, T, H, dh, g, L;
    int unpadded; /* keys whose bias is not -inf */
    const float *Q, *K, *V, *bias, *P, *R, *W2, *b2;
    int ldp;
    float *C;
    int *kept;
    const uint8_t *lev; /* [T][N] levels read by the threshold */
    uint8_t *lev_out;   /* [T][N] where phase 1 writes them (== lev), or NULL */
    int *gpn_nan;       /* [T] GPN NaN flags, NULL for caller-given levels */
    ga_pool *pool;
    size_t ws_bytes;    /* per-worker workspace size */
    void *serial_ws;    /* workspace when pool == NULL */
    const ga_attend_trace *tr; /* traced run: S, m, idx, p live here, Z and
                                  count are recorded (no workspace used) */
    const ga_keys *keys;       /* prepared run (docs/SPEC.md §7), or NULL */
    ga_prep_z zmode;
    struct prep_acc *acc;      /* prepared run: counters (atomic adds) */
} job;

/* Counters of a prepared run, summed over its rows with atomic adds. */
struct prep_acc {
    long long rows, keys, candidates, kept, fallback, bytes;
    int32_t zbound; /* bits of the largest z bound (non-negative float) */
};

/* Queries per block: a task computes the scores of up to QB queries of one
 * head at once (the sparse step in one `scores` call, the dense step in one
 * flash_block call, GA_FLASH_QB = QB), so each K row is read once per block.  Fixed (never derived from
 * the thread count) so results do not depend on it.  32, measured
 * (avx512, 1 thread, dense, T = 64, N 256..16384, H 4, thread CPU time):
 * 85-94 GFLOP/s at 32 vs 56-68 at 16 (the old block), 76-87 at 24, 85-94 at
 * 48 and 92-105 at 64; the sgemm's 12-row register tile wastes a third of
 * its rows at 16, and 32 is the block (a beam of 4 x 8 sentences)
 * while keeping the workspace S [32][N] of a worker at 4 MiB for N = 32768.
 * (Measured with the sgemm block; the flash block keeps 32 queries in the
 * lanes: 2 zmm, 4 ymm or 8 q registers per key.) */
enum { QB = 32 };
_Static_assert(QB == GA_FLASH_QB, "a dense block is one flash_block call");

/* Workspace of one worker for blocks of `rows` queries (rows <= QB):
 *   S [rows][N] | m [QB] | idx [N + GA_KEEP_PAD] | p [N + GA_KEEP_PAD]
 * (S: the block's scores, or a row of scratch for the dense block's lone
 * rows; idx, p: one row of threshold output), then, 64-byte aligned, the
 * prepared step's row buffers (prep_ws):
 *   dot, shat, ub [N] | cand [N + GA_KEEP_PAD] | levc [N + GA_KEEP_PAD] | qc [dh4]
 * then, 64-byte aligned (prep_bytes ends on a byte array), flash_block's
 * workspace fw [GA_FLASH_WS(dh)] (dense blocks of >= 2 queries only).
 * Monotonic in N and rows, so the plan's size for (max_N, min(max_T, QB))
 * serves every run. */
static size_t prep_bytes(int N, int dh)
{
    size_t n = (size_t)N, pad = n + GA_KEEP_PAD;
    return sizeof(float) * 3 * n + sizeof(int32_t) * pad + pad + ((size_t)dh + 3) / 4 * 4 + 256;
}

static size_t workspace_bytes(int N, int rows, int dh, int dense)
{
    const size_t fw = dense && rows > 1 ? sizeof(float) * GA_FLASH_WS(dh) + 64 : 0;
    size_t n = (size_t)N, pad = n + GA_KEEP_PAD;
    size_t b = sizeof(float) * (n * (size_t)rows + QB) + sizeof(int32_t) * pad +
               sizeof(float) * pad + 64 + prep_bytes(N, dh) + fw;
    return (b + 63) / 64 * 64; /* what follows it in the plan's block stays aligned */
}

/* The workspace above, carved for N keys and a block of `rows` queries. */
typedef struct wsv {
    float *S, *m, *p;
    int32_t *idx;
    char *pw; /* prepared step's row buffers */
    float *fw; /* flash_block's workspace, GA_FLASH_WS(dh) floats */
} wsv;

static wsv ws_carve(char *ws, int N, int rows, int dh)
{
    wsv w;
    w.S = (float *)ws;
    w.m = w.S + (size_t)rows * N;
    w.idx = (int32_t *)(w.m + QB);
    w.p = (float *)(w.idx + N + GA_KEEP_PAD);
    w.pw = (char *)(((uintptr_t)(w.p + N + GA_KEEP_PAD) + 63) & ~(uintptr_t)63);
    w.fw = (float *)(((uintptr_t)(w.pw + prep_bytes(N, dh)) + 63) & ~(uintptr_t)63);
    return w;
}

static void fill(float *c, int n, float v)
{
    for (int j = 0; j < n; j++)
        c[j] = v;
}

/* ---- padded keys and the GPN NaN flag (issue 9) ----
 * A padded key (bias -inf) never influences C, so a NaN in its GPN column
 * must not make the query NaN.  gpn_levels flags a NaN logit of ANY key;
 * only when that flag is set and some key is padded (rare), the flag is
 * recomputed over the unpadded keys alone, by re-running gpn_levels on each
 * run of consecutive unpadded keys (it rewrites the same levels for them:
 * every key's logits are computed independently). */
static int gpn_nan_unpadded(const job *jb, int t)
{
    const float *r = jb->R + (size_t)t * jb->g;
    uint8_t *lev = jb->lev_out + (size_t)t * jb->N;
    int nan = 0;
    for (int i = 0; i < jb->N && !nan;) {
        if (jb->bias[i] == -INFINITY) {
            i++;
            continue;
        }
        int i1 = i;
        while (i1 < jb->N && jb->bias[i1] != -INFINITY)
            i1++;
        nan = jb->kt->gpn_levels(jb->P + i, jb->ldp, r, jb->W2, jb->b2, i1 - i, jb->g,
                                 jb->L, lev + i);
        i = i1;
    }
    return nan;
}

/* 1 if c[0..n) are all finite (the check of the dense block's fallback). */
static int row_finite(const float *c, int n)
{
    /* exponent bits all ones <=> inf or NaN; independent lanes, so the
     * compiler vectorises it (a float sum of c[j] * 0 was one serial add
     * chain: 11 % of a 32-query block at N = 64) */
    uint32_t bad = 0;
    for (int j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, c + j, sizeof u);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

static void levels_task(void *arg, int t, int worker)
{
    (void)worker;
    job *jb = arg;
    int nan = jb->kt->gpn_levels(jb->P, jb->ldp, jb->R + (size_t)t * jb->g, jb->W2, jb->b2,
                                 jb->N, jb->g, jb->L, jb->lev_out + (size_t)t * jb->N);
    if (nan && jb->unpadded < jb->N)
        nan = gpn_nan_unpadded(jb, t);
    jb->gpn_nan[t] = nan;
}

/* Context of query t, head h, from its scores s [N] and row max m
 * (idx, p [N + GA_KEEP_PAD]: threshold outputs, or softmax weights p [N]). */
static void query_head(job *jb, int t, int h, const float *s, float m, int32_t *idx,
                       float *p)
{
    const ga_kernels *kt = jb->kt;
    int N = jb->N, dh = jb->dh;
    float *c = jb->C + ((size_t)t * jb->H + h) * dh;
    const float *Vh = jb->V + (size_t)h * N * dh;
    int count;
    float Z;

    if (!jb->cfg->dense && jb->gpn_nan && jb->gpn_nan[t]) { /* NaN GPN logits: whole query NaN */
        Z = NAN;
        count = 0;
    } else if (jb->cfg->dense) {
        Z = kt->softmax(s, N, m, p);
        count = jb->unpadded;
    } else {
        count = kt->threshold(s, N, m, jb->lev + (size_t)t * N, jb->theta8,
                              jb->cfg->mode, idx, p, &Z);
    }
    if (isnan(Z)) {
        fill(c, dh, NAN);
        count = 0;
    } else if (Z == 0.0f || count == 0) {
        fill(c, dh, 0.0f);
        count = 0;
    } else if (jb->cfg->dense) {
        kt->dense_context(Vh, N, dh, p, c);
    } else {
        kt->sparse_context(Vh, dh, idx, p, count, 1.0f / Z, c);
    }
    if (jb->kept)
        jb->kept[(size_t)t * jb->H + h] = count;
    if (jb->tr) {
        size_t ht = (size_t)h * jb->T + t;
        jb->tr->Z[ht] = Z;
        jb->tr->count[ht] = count;
    }
}

/* The T = 1 dense row (scores + softmax + dense_context) of query t, head h,
 * with s [N] as scratch: the block step's path for its rare rows. */
static void dense_alone(job *jb, int t, int h, float *s)
{
    float m;
    jb->kt->scores(jb->K + (size_t)h * jb->N * jb->dh, jb->N, jb->dh,
                   jb->Q + ((size_t)t * jb->H + h) * jb->dh, 1, jb->dh, jb->scale, jb->bias, s,
                   jb->N, &m);
    query_head(jb, t, h, s, m, NULL, s);
}

/* Dense step for a block of rows >= 2 queries of head h, flash style (the
 * table's flash_block: K_h and V_h read once per block, no packing, no score
 * matrix; docs/SPEC.md §2):
 *   C_block,h = softmax(scale Q_block,h K_h^T + bias) V_h   online softmax
 * (Q_block,h: rows of stride H*dh; C rows of stride H*dh; fw: the worker's
 * GA_FLASH_WS(dh) floats.)  A row that flash_block does not flag (a score not
 * finite: NaN, inf, an overflowing float dot; every key padded) or whose C
 * comes out non-finite (a NaN/inf V row of a zero-weight key, an overflowing
 * float sum) is recomputed alone by the T = 1 path (dense_alone, with
 * s [N] = S + r*lds as scratch), which carries the exact-recompute and
 * exclusion rules; such rows give the T = 1 bits. */
static void dense_block(job *jb, int t0, int rows, int h, float *S, int lds, float *fw)
{
    const int N = jb->N, dh = jb->dh, ldc = jb->H * dh;
    float *C0 = jb->C + (size_t)t0 * ldc + (size_t)h * dh;
    const uint32_t ok = jb->kt->flash_block(jb->Q + (size_t)t0 * ldc + (size_t)h * dh, ldc, rows,
                                            jb->K + (size_t)h * N * dh, jb->V + (size_t)h * N * dh,
                                            N, dh, jb->scale, jb->bias, C0, ldc, fw);
    for (int r = 0; r < rows; r++) {
        float *c = C0 + (size_t)r * ldc;
        if (!(ok >> r & 1) || !row_finite(c, dh)) {
            dense_alone(jb, t0 + r, h, S + (size_t)r * lds);
            continue;
        }
        if (jb->kept)
            jb->kept[(size_t)(t0 + r) * jb->H + h] = jb->unpadded;
    }
}

/* Task = (query block b, head h): scores for the block's queries against K_h
 * in one call (K_h read once per block), then per query threshold + sparse
 * context, or the dense block step. */
static void block_task(void *arg, int task, int worker)
{
    job *jb = arg;
    int b = task / jb->H, h = task % jb->H;
    int N = jb->N, dh = jb->dh;
    int t0 = b * QB, rows = jb->T - t0 < QB ? jb->T - t0 : QB;

    const ga_attend_trace *tr = jb->tr;
    float *S, *m, *p = NULL, *fw = NULL;
    int32_t *idx = NULL;
    if (tr) { /* traced (sparse): S [H][T][N], m [H][T] rows of this block */
        S = tr->S + ((size_t)h * jb->T + t0) * N;
        m = tr->m + (size_t)h * jb->T + t0;
    } else {
        /* the plan grew every worker's scratch to ws_bytes: no allocation here */
        const wsv w = ws_carve(jb->pool ? ga_pool_scratch(jb->pool, worker, jb->ws_bytes)
                                        : jb->serial_ws, N, rows, dh);
        S = w.S;
        m = w.m;
        idx = w.idx;
        p = w.p;
        fw = w.fw;
    }

    if (jb->cfg->dense && rows > 1 && fw) {
        dense_block(jb, t0, rows, h, S, N, fw);
        return;
    }
    jb->kt->scores(jb->K + (size_t)h * N * dh, N, dh,
                   jb->Q + ((size_t)t0 * jb->H + h) * dh, rows, jb->H * dh,
                   jb->scale, jb->bias, S, N, m);
    for (int r = 0; r < rows; r++) {
        if (tr) { /* idx, p [H][T][N + GA_KEEP_PAD] */
            size_t at = ((size_t)h * jb->T + t0 + r) * ((size_t)N + GA_KEEP_PAD);
            idx = tr->idx + at;
            p = tr->p + at;
        }
        query_head(jb, t0 + r, h, S + (size_t)r * N, m[r], idx, p);
    }
}

/* ---------------------------------------------- prepared step (§7) ----
 * Per (query t, head h) row over prepared keys (docs/SPEC.md §7):
 *   pass 1: qc = quantised q; dot = preview_dots; (shat, ub, m_lb) =
 *           preview_bounds; cand = preview_select(ub, levels, T8);
 *   pass 2: s_cand = scores_gather (the same bits as `scores`), m = their
 *           max; (idx, p, Z) = threshold over the candidates (idx mapped
 *           back to keys); C = sparse_context over the kept V rows.
 * Seed mode with GA_PREP_Z_EXACT, unsafe heads, queries outside the
 * bound's range and rows with at least half of their keys at a tau = 0 level
 * (all candidates) take the unprepared row (scores over all of K).  Dense plans
 * use the packed K: scores_packed + softmax + dense_context. */

static void acc_add(long long *x, long long v) { __atomic_fetch_add(x, v, __ATOMIC_RELAXED); }

/* max of non-negative floats held as their bits (same order as the ints) */
static void acc_max(int32_t *x, float v)
{
    int32_t bits;
    memcpy(&bits, &v, sizeof bits);
    int32_t cur = __atomic_load_n(x, __ATOMIC_RELAXED);
    while (bits > cur && !__atomic_compare_exchange_n(x, &cur, bits, 1, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
        ;
}

/* Quantises q (one head) into qc [dh4] with the table's quantize_rows and
 * writes the bound's constants qk = {w, alpha, beta} (docs/SPEC.md §7, with
 * Nq and |q^| both bounded by quantize_rows' norm).  Returns 0 when the row
 * must take the unprepared path (a q without a bound, or magnitudes beyond
 * GA_PREP_BIG). */
static int prep_query(const job *jb, const float *q, int h, int8_t *qc, float qk[3])
{
    const ga_keys *ks = jb->keys;
    const int dh = jb->dh;
    float sq, qn, qe;
    int32_t qsum;
    jb->kt->quantize_rows(q, 1, dh, dh, ks->dh4, 1, qc, &sq, &qsum, &qn, &qe);
    const double sigma = jb->scale, mu = (dh + 16) * 0x1p-24;
    /* qn >= max(|q|, |q^|) (Nq and the bound on |q^|), qe >= |q - q^| */
    if (!(sigma * qn * ks->maxknorm[h] <= GA_PREP_BIG)) /* also qn = inf: no bound */
        return 0;
    qk[0] = jb->scale * sq;
    qk[1] = ga_round_up_f(sigma * (qe + qn * mu) * (1.0 + 0x1p-20));
    qk[2] = ga_round_up_f(sigma * qn * (1.0 + 0x1p-20));
    return 1;
}

/* Preview scores of head h for the quantised query qc: dot [N] (scratch),
 * shat [N], ub [N]; returns m_lb (docs/SPEC.md §7). */
static float preview(const ga_kernels *kt, const ga_keys *ks, int h, const int8_t *qc,
                     const float qk[3], float *dot, float *shat, float *ub)
{
    kt->preview_dots(ga_keys_codes(ks, h), ga_keys_ksum(ks, h), ks->N, ks->dh4, qc, dot);
    return kt->preview_bounds(dot, ga_keys_meta(ks, h), ks->ldm, ks->N, qk, shat, ub);
}

/* C and kept of one sparse row from the threshold's (count, Z) and kept
 * (idx, p), as query_head: NaN Z -> NaN, Z == 0 or nothing kept -> 0.
 * Shared with the key split (attend_split.h). */
int ga_sparse_finish(const ga_kernels *kt, const float *Vh, int dh, const int32_t *idx,
                     const float *p, int count, float Z, float *c)
{
    if (isnan(Z)) {
        fill(c, dh, NAN);
        return 0;
    }
    if (Z == 0.0f || count == 0) {
        fill(c, dh, 0.0f);
        return 0;
    }
    kt->sparse_context(Vh, dh, idx, p, count, 1.0f / Z, c);
    return count;
}

static void prep_row(job *jb, int t, int h, float *S, int32_t *idx, float *p, char *pw)
{
    const ga_keys *ks = jb->keys;
    const ga_kernels *kt = jb->kt;
    const int N = jb->N, dh = jb->dh;
    const size_t pad = (size_t)N + GA_KEEP_PAD;
    const float *q = jb->Q + ((size_t)t * jb->H + h) * dh;
    float *c = jb->C + ((size_t)t * jb->H + h) * dh;
    const float *Kh = ks->K + (size_t)h * N * dh, *Vh = ks->V + (size_t)h * N * dh;
    float *dot = (float *)pw, *shat = dot + N, *ub = shat + N;
    int32_t *cand = (int32_t *)(ub + N);
    uint8_t *levc = (uint8_t *)(cand + pad);
    int8_t *qc = (int8_t *)(levc + pad);
    const double f4 = sizeof(float), row_bytes = f4 * dh;
    double bytes = 0.0;
    long long ncand = 0;
    int fallback = 0, count = 0;
    float Z, zb = 0.0f;

    if (jb->cfg->dense) { /* packed K: no horizontal reduction per key */
        float m = kt->scores_packed(ga_keys_kp(ks, h), N, dh, q, jb->scale, ks->bias, S);
        Z = kt->softmax(S, N, m, p);
        if (isnan(Z)) {
            fill(c, dh, NAN);
        } else if (Z == 0.0f) {
            fill(c, dh, 0.0f);
        } else {
            kt->dense_context(Vh, N, dh, p, c);
            count = ks->unpadded;
        }
        ncand = N;
        bytes = (double)ks->P * 16 * row_bytes + N * row_bytes;
        goto done;
    }
    const uint8_t *lev = jb->lev + (size_t)t * N;
    const ga_norm mode = jb->cfg->mode;
    if (jb->gpn_nan && jb->gpn_nan[t]) { /* NaN GPN logits: the whole query is NaN */
        fill(c, dh, NAN);
        goto done;
    }
    float qk[3];
    const int exact_z = mode == GA_NORM_SEED && jb->zmode == GA_PREP_Z_EXACT;
    /* Keys at a tau = 0 level are always candidates: when they are at least
     * half of the row, the preview cannot save enough and the unprepared row
     * is cheaper (measured: all-fine rows were 1.3-2.3x slower prepared). */
    int nfine = 0;
    if (!exact_z) {
        uint8_t fine[GA_MAX_LEVELS];
        for (int l = 0; l < GA_MAX_LEVELS; l++)
            fine[l] = jb->theta8[l] == -FLT_MAX;
        for (int i = 0; i < N; i++)
            nfine += fine[lev[i]];
    }
    if (exact_z || 2 * nfine >= N || ks->unsafe[h] || !prep_query(jb, q, h, qc, qk)) {
        /* the unprepared row: every K row is read */
        float m;
        kt->scores(Kh, N, dh, q, 1, dh, jb->scale, ks->bias, S, N, &m);
        int n = kt->threshold(S, N, m, lev, jb->theta8, mode, idx, p, &Z);
        count = ga_sparse_finish(kt, Vh, dh, idx, p, n, Z, c);
        fallback = !exact_z;
        ncand = N;
        bytes = N * row_bytes + N + (double)count * row_bytes;
        goto done;
    }
    const float mlb = preview(kt, ks, h, qc, qk, dot, shat, ub);
    bytes = (double)N * (ks->dh4 + 4 + 4 * f4) + N;
    if (mlb == -INFINITY) { /* every key padded: m = -inf, nothing kept */
        fill(c, dh, 0.0f);
        goto done;
    }
    float T8[GA_MAX_LEVELS];
    for (int l = 0; l < GA_MAX_LEVELS; l++) {
        const float th = jb->theta8[l];
        if (th == -FLT_MAX) {
            T8[l] = -FLT_MAX; /* tau = 0: every unpadded key */
            continue;
        }
        const double tt = (double)mlb + th - 0x1p-19 * (fabs((double)mlb) + fabs((double)th));
        float f = (float)tt;
        if ((double)f > tt)
            f = nextafterf(f, -INFINITY);
        T8[l] = f;
    }
    const int nc = kt->preview_select(ub, N, lev, T8, cand);
    const float m = kt->scores_gather(Kh, dh, cand, nc, q, jb->scale, ks->bias, S);
    for (int k = 0; k < nc; k++)
        levc[k] = lev[cand[k]];
    int n = kt->threshold(S, nc, m, levc, jb->theta8, mode, idx, p, &Z);
    for (int k = 0; k < n; k++)
        idx[k] = cand[idx[k]];
    ncand = nc;
    bytes += (double)nc * row_bytes;
    if (mode == GA_NORM_SEED && nc < N && !isnan(Z)) {
        /* GA_PREP_Z_BOUNDED: Z over the candidates (threshold's seed Z) plus
         * exp(shat - m) over the other unpadded keys; relative bound
         * (e^E* - 1) Z_nc / Z_b with E* their largest E_i = ub - shat. */
        float emax = 0.0f;
        for (int i = 0; i < N; i++)
            dot[i] = shat[i];
        for (int k = 0; k < nc; k++)
            dot[cand[k]] = -INFINITY;
        for (int i = 0; i < N; i++)
            if (dot[i] != -INFINITY && ub[i] - shat[i] > emax)
                emax = ub[i] - shat[i];
        const double znc = kt->softmax(dot, N, m, ub); /* sum exp(shat - m), others 0 */
        const double zsum = (double)Z + znc;
        zb = (float)(expm1((double)emax * (1.0 + 0x1p-20)) * znc / zsum);
        Z = (float)zsum;
    }
    count = ga_sparse_finish(kt, Vh, dh, idx, p, n, Z, c);
    bytes += (double)count * row_bytes;
done:
    if (jb->kept)
        jb->kept[(size_t)t * jb->H + h] = count;
    struct prep_acc *a = jb->acc;
    acc_add(&a->rows, 1);
    acc_add(&a->keys, N);
    acc_add(&a->candidates, ncand);
    acc_add(&a->kept, count);
    acc_add(&a->fallback, fallback);
    acc_add(&a->bytes, (long long)bytes);
    if (zb > 0.0f)
        acc_max(&a->zbound, zb);
}

/* Test hook (keys.h): pass 1 of the prepared step for one query and head,
 * exactly as prep_row runs it. */
int ga_prep_preview(const ga_kernels *kt, const ga_keys *keys, int h, const float *q,
                    float scale, float *shat, float *ub, float *mlb)
{
    job jb = {.kt = kt, .keys = keys, .dh = keys->dh, .H = keys->H, .scale = scale};
    int8_t qc[1024];
    float qk[3];
    float *dot = malloc(sizeof(float) * (keys->N > 0 ? keys->N : 1));
    if (!dot || keys->unsafe[h] || !prep_query(&jb, q, h, qc, qk)) {
        free(dot);
        return 0;
    }
    *mlb = preview(kt, keys, h, qc, qk, dot, shat, ub);
    free(dot);
    return 1;
}

/* Task = (query block b, head h) of a prepared run: the rows one by one
 * (the preview of head h stays in cache across the block).  Dense blocks
 * too (the packed-K step per row), not the GEMM block step: each row's bits
 * must not depend on the other rows of its block, which batched decoding
 * relies on (model_grad.decode_rows_independent: a beam is a block, a lone
 * hypothesis a block of 1). */
static void prep_block_task(void *arg, int task, int worker)
{
    job *jb = arg;
    int b = task / jb->H, h = task % jb->H;
    int N = jb->N;
    int t0 = b * QB, rows = jb->T - t0 < QB ? jb->T - t0 : QB;
    const wsv w = ws_carve(jb->pool ? ga_pool_scratch(jb->pool, worker, jb->ws_bytes)
                                    : jb->serial_ws, N, rows, jb->dh);
    for (int r = 0; r < rows; r++)
        prep_row(jb, t0 + r, h, w.S, w.idx, w.p, w.pw);
}

static void run(job *jb, void (*fn)(void *, int, int), int ntasks)
{
    if (jb->pool) {
        ga_pool_run(jb->pool, fn, jb, ntasks);
    } else {
        for (int i = 0; i < ntasks; i++)
            fn(jb, i, 0);
    }
}

/* ------------------------------------------------------- size products */

/* a * b for a, b >= 0, or -1 when the product exceeds INT_MAX (or an
 * operand is already -1). */
static long long mul_int(long long a, long long b)
{
    if (a < 0 || b < 0)
        return -1;
    if (a != 0 && b > INT_MAX / a)
        return -1;
    return a * b;
}

/* EINVAL + message unless the product of n factors (each >= 0) fits in an int. */
static ga_status check_prod(const char *fn, const char *what, int n, const long long *f)
{
    long long p = 1;
    for (int i = 0; i < n; i++)
        p = mul_int(p, f[i]);
    if (p >= 0)
        return GA_OK;
    char buf[96];
    int len = 0;
    for (int i = 0; i < n && len < (int)sizeof buf; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%lld", i ? " * " : "", f[i]);
    return ga_set_error(GA_EINVAL, "%s: %s = %s does not fit in an int (max %d)", fn, what,
                        buf, INT_MAX);
}

/* Every size product the step forms for N keys and T queries of cfg (sizes
 * >= 0, cfg valid) fits in an int: the row stride H*dh of Q and C, one
 * head's K/V N*dh, whole K/V H*N*dh, kept T*H, Q/C T*H*dh, the workspace
 * rows min(T,QB)*(N+GA_KEEP_PAD), and when sparse the levels T*N, R T*g and
 * W2 L*g.  (P's g*ldp depends on the run's ldp: check_ldp.)  Pure
 * arithmetic: nothing is read or allocated. */
static ga_status check_sizes(const char *fn, const ga_config *cfg, int N, int T)
{
    const long long H = cfg->H, dh = cfg->dh, n = N, t = T, g = cfg->g, L = cfg->L;
    const long long rows = T < QB ? T : QB;
    ga_status st;
#define PROD(what, ...)                                                                  \
    do {                                                                                 \
        const long long f_[] = {__VA_ARGS__};                                            \
        if ((st = check_prod(fn, what, (int)(sizeof f_ / sizeof f_[0]), f_)) != GA_OK)  \
            return st;                                                                   \
    } while (0)
    PROD("H * dh", H, dh);
    PROD("N * dh", n, dh);
    PROD("H * N * dh", H, n, dh);
    PROD("T * H", t, H);
    PROD("T * H * dh", t, H, dh);
    PROD("min(T, 32) * (N + GA_KEEP_PAD)", rows, n + GA_KEEP_PAD);
    if (!cfg->dense) {
        PROD("T * N", t, n);
        PROD("T * g", t, g);
        PROD("L * g", L, g);
    }
#undef PROD
    return GA_OK;
}

static ga_status check_ldp(const char *fn, int g, int ldp)
{
    const long long f[] = {g, ldp};
    return check_prod(fn, "g * ldp", 2, f);
}

/* --------------------------------------------------------------- plan */

/* Validates and prepares a plan.  need_lev: allocate levels [max_T][max_N]
 * for learned-level runs that do not return their levels (ga_attend passes 0
 * when its caller gives a levels array). */
static ga_attend_plan *plan_init(const char *fn, const ga_kernels *kt, ga_pool *pool,
                                 const ga_config *cfg, int max_N, int max_T, int need_lev,
                                 ga_status *st_out)
{
    ga_status st = GA_OK;
    ga_attend_plan *pl = NULL;
    if (!kt) {
        st = ga_set_error(GA_EINVAL, "%s: kernel table is NULL", fn);
        goto out;
    }
    if ((st = ga_config_check(cfg)) != GA_OK)
        goto out;
    if (max_N < 0 || max_T < 0) {
        st = ga_set_error(GA_EINVAL, "%s: max_N = %d, max_T = %d: sizes must be >= 0", fn,
                          max_N, max_T);
        goto out;
    }
    if ((st = check_sizes(fn, cfg, max_N, max_T)) != GA_OK)
        goto out;

    pl = calloc(1, sizeof *pl);
    if (!pl) {
        st = ga_set_error(GA_ENOMEM, "%s: cannot allocate the plan", fn);
        goto out;
    }
    pl->kt = kt;
    pl->pool = pool;
    pl->cfg = *cfg;
    pl->max_N = max_N;
    pl->max_T = max_T;
    pl->scale = 1.0f / sqrtf((float)cfg->dh);
    if (!cfg->dense)
        ga_theta_from_tau(cfg, pl->theta8);
    pl->ws_bytes = workspace_bytes(max_N, max_T < QB ? max_T : QB, cfg->dh, cfg->dense);

    size_t serial_bytes = pool ? 0 : pl->ws_bytes;
    size_t nan_bytes = cfg->dense ? 0 : sizeof(int) * (size_t)max_T;
    size_t lev_bytes = cfg->dense || !need_lev ? 0 : (size_t)max_T * (size_t)max_N;
    /* 64-byte aligned after those: the key-split buffers and, with a pool,
     * the workspace of small runs kept on the calling thread (sized for the
     * largest run the small-work rule can keep there). */
    const int threads = pool ? ga_pool_threads(pool) : 1;
    size_t split_at = (serial_bytes + nan_bytes + lev_bytes + 63) / 64 * 64;
    pl->split_bytes = (ga_split_bytes(cfg, max_N, max_T, threads) + 63) / 64 * 64;
    if (threads > 1) {
        long long lim = ga_step_min_work() / ((long long)cfg->H * cfg->dh) + 1;
        int n_in = lim < max_N ? (int)lim : max_N, r_in = max_T < QB ? max_T : QB;
        if (lim < r_in)
            r_in = (int)lim;
        pl->inline_bytes = max_T > 0 && max_N > 0 ? workspace_bytes(n_in, r_in, cfg->dh, cfg->dense) : 0;
    }
    size_t total = split_at + pl->split_bytes + pl->inline_bytes;
    if (total) {
        pl->owned = aligned_alloc(64, (total + 63) / 64 * 64);
        if (!pl->owned) {
            st = ga_set_error(GA_ENOMEM, "%s: cannot allocate %zu bytes", fn, total);
            goto out;
        }
    }
    char *cur = pl->owned;
    pl->serial_ws = serial_bytes ? cur : NULL;
    pl->gpn_nan = nan_bytes ? (int *)(cur + serial_bytes) : NULL;
    pl->lev = lev_bytes ? (uint8_t *)(cur + serial_bytes + nan_bytes) : NULL;
    pl->split = pl->split_bytes ? cur + split_at : NULL;
    pl->inline_ws = pl->inline_bytes ? cur + split_at + pl->split_bytes : NULL;

    if (pool)
        for (int w = 0; w < ga_pool_threads(pool); w++)
            if (!ga_pool_scratch(pool, w, pl->ws_bytes)) {
                st = ga_set_error(GA_ENOMEM, "%s: cannot allocate the workspace", fn);
                goto out;
            }
out:
    if (st != GA_OK && pl) {
        ga_attend_plan_destroy(pl);
        pl = NULL;
    }
    if (st_out)
        *st_out = st;
    return pl;
}

ga_attend_plan *ga_attend_plan_create(const ga_kernels *kt, ga_pool *pool,
                                      const ga_config *cfg, int max_N, int max_T,
                                      ga_status *st)
{
    return plan_init("ga_attend_plan_create", kt, pool, cfg, max_N, max_T, 1, st);
}

void ga_attend_plan_destroy(ga_attend_plan *plan)
{
    if (!plan)
        return;
    free(plan->owned);
    free(plan);
}

/* The common run: `given` != NULL selects caller-given levels (read-only),
 * otherwise the learned GPN path (P..b2, levels_out optional). */
static ga_status plan_run(const char *fn, ga_attend_plan *pl, int N, int T, const float *Q,
                          const float *K, const float *V, const float *bias, const float *P,
                          int ldp, const float *R, const float *W2, const float *b2,
                          const uint8_t *given, float *C, int *kept, uint8_t *levels_out,
                          const ga_attend_trace *tr, const ga_keys *keys, ga_prep_z zmode,
                          ga_prep_stats *stats)
{
    if (!pl)
        return ga_set_error(GA_EINVAL, "%s: plan is NULL", fn);
    const ga_config *cfg = &pl->cfg;
    if (keys) { /* prepared run: N, K, V, bias come from the keys */
        if (keys->H != cfg->H || keys->dh != cfg->dh)
            return ga_set_error(GA_EINVAL,
                                "%s: keys prepared for H = %d, dh = %d; the plan has H = %d, "
                                "dh = %d",
                                fn, keys->H, keys->dh, cfg->H, cfg->dh);
        if (zmode != GA_PREP_Z_EXACT && zmode != GA_PREP_Z_BOUNDED)
            return ga_set_error(GA_EINVAL, "%s: unknown zmode %d", fn, (int)zmode);
        N = keys->N;
        K = keys->K;
        V = keys->V;
        bias = keys->bias;
    }
    if (N < 0 || T < 0 || N > pl->max_N || T > pl->max_T)
        return ga_set_error(GA_EINVAL,
                            "%s: N = %d, T = %d: need 0 <= N <= max_N = %d and "
                            "0 <= T <= max_T = %d of the plan",
                            fn, N, T, pl->max_N, pl->max_T);
    if (T == 0)
        return GA_OK;
    if (!Q || !C)
        return ga_set_error(GA_EINVAL, "%s: Q and C must not be NULL", fn);
    if (N > 0 && (!K || !V))
        return ga_set_error(GA_EINVAL, "%s: K and V must not be NULL when N > 0", fn);
    if (!cfg->dense && N > 0) {
        if (given) {
            for (size_t i = 0, n = (size_t)T * N; i < n; i++)
                if (given[i] >= cfg->L)
                    return ga_set_error(GA_EINVAL,
                                        "%s: levels[%zu] = %d: must be < L = %d", fn, i,
                                        given[i], cfg->L);
        } else {
            if (!P || !R || !W2 || !b2)
                return ga_set_error(GA_EINVAL,
                                    "%s: P, R, W2 and b2 are required unless cfg->dense", fn);
            if (ldp < N)
                return ga_set_error(GA_EINVAL, "%s: ldp = %d < N = %d", fn, ldp, N);
            ga_status st = check_ldp(fn, cfg->g, ldp);
            if (st != GA_OK)
                return st;
            if (!levels_out && !pl->lev)
                return ga_set_error(GA_EINVAL, "%s: this plan has no level buffer: "
                                    "levels must not be NULL", fn);
        }
    }

    if (tr && (cfg->dense || !given))
        return ga_set_error(GA_EINVAL, "%s: traced runs are sparse with given levels only", fn);
    if (tr && (!tr->S || !tr->m || !tr->Z || !tr->count || !tr->idx || !tr->p))
        return ga_set_error(GA_EINVAL, "%s: every trace array must be non-NULL", fn);

    job jb = {
        .kt = pl->kt, .cfg = cfg, .theta8 = pl->theta8, .scale = pl->scale, .N = N, .T = T,
        .H = cfg->H, .dh = cfg->dh, .g = cfg->g, .L = cfg->L, .Q = Q, .K = K, .V = V,
        .bias = bias, .P = P, .R = R, .W2 = W2, .b2 = b2, .ldp = ldp, .C = C, .kept = kept,
        .pool = pl->pool, .ws_bytes = pl->ws_bytes, .serial_ws = pl->serial_ws, .tr = tr,
    };

    struct prep_acc acc = {0};
    jb.keys = keys;
    jb.zmode = zmode;
    jb.acc = &acc;
    if (stats)
        memset(stats, 0, sizeof *stats);

    if (N == 0) { /* nothing to attend to: zero context, nothing kept */
        memset(C, 0, sizeof(float) * (size_t)T * jb.H * jb.dh);
        if (kept)
            memset(kept, 0, sizeof(int) * (size_t)T * jb.H);
        if (tr) /* what scores + threshold give for no keys */
            for (size_t i = 0, n = (size_t)T * jb.H; i < n; i++) {
                tr->m[i] = -INFINITY;
                tr->Z[i] = 0.0f;
                tr->count[i] = 0;
            }
        return GA_OK;
    }

    /* keys whose bias is not -inf: the dense kept count, and whether the
     * GPN NaN flag must be recomputed over the unpadded keys */
    jb.unpadded = N;
    if (bias)
        for (int i = 0; i < N; i++)
            jb.unpadded -= bias[i] == -INFINITY;
    /* Small work stays on the calling thread; a T = 1 step may split its
     * keys over the pool (attend_split.c: scheduling only, except the dense
     * ranges, which depend on N and H alone). */
    const int threads = pl->pool ? ga_pool_threads(pl->pool) : 1;
    const int small = threads > 1 && ga_step_small(N, T, jb.H, jb.dh);
    if (small && pl->inline_ws && workspace_bytes(N, T < QB ? T : QB, jb.dh, pl->cfg.dense) <= pl->inline_bytes) {
        jb.pool = NULL;
        jb.serial_ws = pl->inline_ws;
    }
    if (T == 1 && !tr && !keys) {
        ga_split_step ss = {
            .kt = jb.kt, .cfg = cfg, .theta8 = jb.theta8, .scale = jb.scale, .N = N,
            .unpadded = jb.unpadded, .q = Q, .K = K, .V = V, .bias = bias, .P = P, .r = R,
            .W2 = W2, .b2 = b2, .ldp = ldp, .lev_given = given,
            .lev = levels_out ? levels_out : pl->lev, .c = C, .kept = kept, .pool = jb.pool,
            .serial_ws = jb.serial_ws, .ws_bytes = jb.ws_bytes,
        };
        if (ga_split_run(&ss, pl->split, pl->split_bytes, jb.pool ? threads : 1, small))
            return GA_OK;
    }
    if (!cfg->dense && given) {
        jb.lev = given;
    } else if (!cfg->dense) {
        jb.lev_out = levels_out ? levels_out : pl->lev;
        jb.lev = jb.lev_out;
        jb.gpn_nan = pl->gpn_nan;
        run(&jb, levels_task, T);
    }
    run(&jb, keys ? prep_block_task : block_task, (T + QB - 1) / QB * jb.H);
    if (keys && stats) {
        stats->rows = acc.rows;
        stats->keys = acc.keys;
        stats->candidates = acc.candidates;
        stats->kept = acc.kept;
        stats->fallback = acc.fallback;
        stats->bytes = (double)acc.bytes;
        float zf;
        memcpy(&zf, &acc.zbound, sizeof zf);
        stats->z_bound = zf;
    }
    return GA_OK;
}

ga_status ga_attend_run(ga_attend_plan *plan, int N, int T, const float *Q, const float *K,
                        const float *V, const float *bias, const float *P, int ldp,
                        const float *R, const float *W2, const float *b2, float *C, int *kept,
                        uint8_t *levels)
{
    return plan_run("ga_attend_run", plan, N, T, Q, K, V, bias, P, ldp, R, W2, b2, NULL, C,
                    kept, levels, NULL, NULL, GA_PREP_Z_EXACT, NULL);
}

ga_status ga_attend_run_levels(ga_attend_plan *plan, int N, int T, const float *Q,
                               const float *K, const float *V, const float *bias,
                               const uint8_t *levels, float *C, int *kept)
{
    if (plan && !plan->cfg.dense && N > 0 && T > 0 && !levels)
        return ga_set_error(GA_EINVAL, "ga_attend_run_levels: levels must not be NULL");
    /* the dense baseline reads no levels: pass a dummy non-NULL marker */
    static const uint8_t none;
    return plan_run("ga_attend_run_levels", plan, N, T, Q, K, V, bias, NULL, 0, NULL, NULL,
                    NULL, levels ? levels : &none, C, kept, NULL, NULL, NULL, GA_PREP_Z_EXACT, NULL);
}

ga_status ga_attend_run_traced(const ga_attend_plan *plan, int N, int T, const float *Q,
                               const float *K, const float *V, const float *bias,
                               const uint8_t *levels, float *C, int *kept,
                               const ga_attend_trace *trace)
{
    if (!trace)
        return ga_set_error(GA_EINVAL, "ga_attend_run_traced: trace is NULL");
    if (plan && !plan->cfg.dense && N > 0 && T > 0 && !levels)
        return ga_set_error(GA_EINVAL, "ga_attend_run_traced: levels must not be NULL");
    /* a traced run reads the plan only (no workspace, no flags, no level
     * buffer), hence the const plan: the cast does not lead to a write */
    return plan_run("ga_attend_run_traced", (ga_attend_plan *)plan, N, T, Q, K, V, bias, NULL,
                    0, NULL, NULL, NULL, levels, C, kept, NULL, trace, NULL, GA_PREP_Z_EXACT, NULL);
}

ga_status ga_attend_traced_theta(const ga_kernels *kt, int H, int dh, ga_norm mode,
                                 const float theta8[GA_MAX_LEVELS], int N, int T,
                                 const float *Q, const float *K, const float *V,
                                 const float *bias, const uint8_t *levels, float *C, int *kept,
                                 const ga_attend_trace *trace)
{
    if (!kt || !theta8 || !trace || H < 1 || dh < 1 ||
        (mode != GA_NORM_SEED && mode != GA_NORM_RENORM))
        return ga_set_error(GA_EINVAL, "ga_attend_traced_theta: bad kt, theta8, trace, H = %d, "
                            "dh = %d or mode", H, dh);
    if (N < 0 || T < 0)
        return ga_set_error(GA_EINVAL, "ga_attend_traced_theta: N = %d, T = %d", N, T);
    if (N > 0 && T > 0 && !levels)
        return ga_set_error(GA_EINVAL, "ga_attend_traced_theta: levels must not be NULL");
    /* the same composition as a traced plan run, from the unchecked parts */
    ga_attend_plan pl = {0};
    pl.kt = kt;
    pl.cfg.H = H;
    pl.cfg.dh = dh;
    pl.cfg.L = GA_MAX_LEVELS; /* levels are the caller's (< 8; theta8 covers all 8) */
    pl.cfg.g = 1;
    pl.cfg.mode = mode;
    pl.max_N = N;
    pl.max_T = T;
    memcpy(pl.theta8, theta8, sizeof pl.theta8);
    pl.scale = 1.0f / sqrtf((float)dh);
    ga_status st;
    if ((st = check_sizes("ga_attend_traced_theta", &pl.cfg, N, T)) != GA_OK)
        return st;
    return plan_run("ga_attend_traced_theta", &pl, N, T, Q, K, V, bias, NULL, 0, NULL, NULL,
                    NULL, levels, C, kept, NULL, trace, NULL, GA_PREP_Z_EXACT, NULL);
}

ga_status ga_attend_run_prepared(ga_attend_plan *plan, const ga_keys *keys, int T,
                                 const float *Q, const float *P, int ldp, const float *R,
                                 const float *W2, const float *b2, ga_prep_z zmode,
                                 float *C, int *kept, uint8_t *levels, ga_prep_stats *stats)
{
    if (!keys)
        return ga_set_error(GA_EINVAL, "ga_attend_run_prepared: keys is NULL");
    return plan_run("ga_attend_run_prepared", plan, keys->N, T, Q, NULL, NULL, NULL, P, ldp, R,
                    W2, b2, NULL, C, kept, levels, NULL, keys, zmode, stats);
}

ga_status ga_attend_run_prepared_levels(ga_attend_plan *plan, const ga_keys *keys, int T,
                                        const float *Q, const uint8_t *levels,
                                        ga_prep_z zmode, float *C, int *kept,
                                        ga_prep_stats *stats)
{
    if (!keys)
        return ga_set_error(GA_EINVAL, "ga_attend_run_prepared_levels: keys is NULL");
    if (plan && !plan->cfg.dense && keys->N > 0 && T > 0 && !levels)
        return ga_set_error(GA_EINVAL, "ga_attend_run_prepared_levels: levels must not be NULL");
    static const uint8_t none;
    return plan_run("ga_attend_run_prepared_levels", plan, keys->N, T, Q, NULL, NULL, NULL,
                    NULL, 0, NULL, NULL, NULL, levels ? levels : &none, C, kept, NULL, NULL,
                    keys, zmode, stats);
}

/* ------------------------------------------------------------ one shot */

ga_status ga_attend(const ga_kernels *kt, ga_pool *pool, const ga_config *cfg,
                    int N, int T, const float *Q, const float *K, const float *V,
                    const float *bias, const float *P, int ldp, const float *R,
                    const float *W2, const float *b2, float *C, int *kept,
                    uint8_t *levels)
{
    ga_status st;
    if (!kt)
        return ga_set_error(GA_EINVAL, "ga_attend: kernel table is NULL");
    if ((st = ga_config_check(cfg)) != GA_OK)
        return st;
    if (N < 0 || T < 0)
        return ga_set_error(GA_EINVAL, "ga_attend: N = %d, T = %d: sizes must be >= 0", N, T);
    if ((long long)T * cfg->H > 0x7fffffff)
        return ga_set_error(GA_EINVAL, "ga_attend: T * H = %lld is too large",
                            (long long)T * cfg->H);
    if ((st = check_sizes("ga_attend", cfg, N, T)) != GA_OK)
        return st;
    if (T == 0)
        return GA_OK;
    if (!Q || !C)
        return ga_set_error(GA_EINVAL, "ga_attend: Q and C must not be NULL");
    if (N > 0 && (!K || !V))
        return ga_set_error(GA_EINVAL, "ga_attend: K and V must not be NULL when N > 0");
    if (!cfg->dense && N > 0) {
        if (!P || !R || !W2 || !b2)
            return ga_set_error(GA_EINVAL,
                                "ga_attend: P, R, W2 and b2 are required unless cfg->dense");
        if (ldp < N)
            return ga_set_error(GA_EINVAL, "ga_attend: ldp = %d < N = %d", ldp, N);
        if ((st = check_ldp("ga_attend", cfg->g, ldp)) != GA_OK)
            return st;
    }
    if (N == 0) { /* nothing to attend to: zero context, nothing kept (no plan needed) */
        memset(C, 0, sizeof(float) * (size_t)T * cfg->H * cfg->dh);
        if (kept)
            memset(kept, 0, sizeof(int) * (size_t)T * cfg->H);
        return GA_OK;
    }

    /* a plan for exactly (N, T); the levels buffer only when the caller
     * does not take the levels */
    ga_attend_plan *pl = plan_init("ga_attend", kt, pool, cfg, N, T, levels == NULL, &st);
    if (!pl)
        return st;
    st = plan_run("ga_attend", pl, N, T, Q, K, V, bias, P, ldp, R, W2, b2, NULL, C, kept,
                  levels, NULL, NULL, GA_PREP_Z_EXACT, NULL);
    ga_attend_plan_destroy(pl);
    return st;
}
