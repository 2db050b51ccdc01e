/* attend.c — the fused decode step ga_attend (SPEC §2-§3) over a kernel table.
 *
 * For T queries and H heads:
 *   phase 1 (sparse only), one task per query t:
 *       levels[t] = gpn_levels(P, R[t])            uint8 [N], shared by all heads
 *   phase 2, one task per (block of up to QB queries, head h):
 *       S, m      = scores(K_h, Q_block,h) + bias   S [rows][N]  (K_h read once per block)
 *     then per query t of the block:
 *       sparse:     count, idx, p, Z = threshold(s, m, levels[t], theta)
 *                   C[t][h] = sparse_context(V_h, idx, p, 1/Z)
 *       dense:      a, Z = softmax(s, m);  C[t][h] = dense_context(V_h, a)
 *     (dense with a block of >= 2 queries: the rows' softmax weights A, then
 *      C_block = A V_h as one sgemm, so V_h is also read once per block)
 * Every (t, h) output is computed by exactly one task with a fixed operation
 * order, so results are bitwise identical for any number of threads.
 * Block rule: a sparse result does not depend on which queries share its
 * block (bitwise); a dense result may differ within rounding, since a block
 * of >= 2 queries takes the SGEMM path and a single query dense_context.
 * Padded keys (bias -inf): see gpn_nan_unpadded() and dense_block().
 *
 * Per-worker workspace: see workspace_bytes().
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct job {
    const ga_kernels *kt;
    const ga_config *cfg;
    float theta8[GA_MAX_LEVELS];
    float scale;
    int N, T, H, dh, g, L;
    int unpadded; /* keys whose bias is not -inf */
    const float *Q, *K, *V, *bias, *P, *R, *W2, *b2;
    int ldp;
    float *C;
    int *kept;
    uint8_t *lev;     /* [T][N] */
    int *gpn_nan;     /* [T] */
    ga_pool *pool;
    size_t ws_bytes;  /* per-worker workspace size */
    void *serial_ws;  /* workspace when pool == NULL */
} job;

/* Queries per block: a task computes the scores of up to QB queries of one
 * head in one `scores` call, so each K row is read once per block.  Fixed
 * (never derived from the thread count) so results do not depend on it. */
enum { QB = 16 };

/* Workspace of one worker for blocks of `rows` queries (rows <= QB):
 *   S [rows][N] | m [QB] | Zs [QB] | idx [N + GA_KEEP_PAD] | p [rows][N + GA_KEEP_PAD]
 * (p holds one row for the sparse step; the dense step keeps the softmax
 * weights of every row of the block there for one SGEMM). */
static size_t workspace_bytes(int N, int rows)
{
    size_t n = (size_t)N, pad = n + GA_KEEP_PAD;
    return sizeof(float) * (n * (size_t)rows + 2 * QB) + sizeof(int32_t) * pad +
           sizeof(float) * pad * (size_t)rows + 64;
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
    uint8_t *lev = jb->lev + (size_t)t * jb->N;
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
    float acc = 0.0f;
    for (int j = 0; j < n; j++)
        acc += c[j] * 0.0f; /* NaN iff some c[j] is inf or NaN */
    return acc == 0.0f;
}

static void levels_task(void *arg, int t, int worker)
{
    (void)worker;
    job *jb = arg;
    int nan = jb->kt->gpn_levels(jb->P, jb->ldp, jb->R + (size_t)t * jb->g, jb->W2, jb->b2,
                                 jb->N, jb->g, jb->L, jb->lev + (size_t)t * jb->N);
    if (nan && jb->unpadded < jb->N)
        nan = gpn_nan_unpadded(jb, t);
    jb->gpn_nan[t] = nan;
}

/* Context of query t, head h, from its scores s [N] and row max m. */
static void query_head(job *jb, int t, int h, const float *s, float m, int32_t *idx,
                       float *p)
{
    const ga_kernels *kt = jb->kt;
    int N = jb->N, dh = jb->dh;
    float *c = jb->C + ((size_t)t * jb->H + h) * dh;
    const float *Vh = jb->V + (size_t)h * N * dh;
    int count;
    float Z;

    if (!jb->cfg->dense && jb->gpn_nan[t]) { /* NaN GPN logits: whole query NaN */
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
}

/* Dense step for a block of rows >= 2 queries of head h: softmax of every
 * row, then C_block = A V_h as one SGEMM, so V_h is read once per block
 * instead of once per query.  A [rows][lda], V_h [N][dh] -> C rows of stride H*dh. */
static void dense_block(job *jb, int t0, int rows, int h, const float *S, const float *m,
                        float *Zs, float *A, int lda)
{
    const ga_kernels *kt = jb->kt;
    int N = jb->N, dh = jb->dh;
    int ldc = jb->H * dh;
    float *C0 = jb->C + (size_t)t0 * ldc + (size_t)h * dh;
    for (int r = 0; r < rows; r++)
        Zs[r] = kt->softmax(S + (size_t)r * N, N, m[r], A + (size_t)r * lda);
    kt->sgemm(0, 0, rows, dh, N, 1.0f, A, lda, jb->V + (size_t)h * N * dh, dh, 0.0f, C0, ldc);
    for (int r = 0; r < rows; r++) {
        float *c = C0 + (size_t)r * ldc;
        int count = jb->unpadded;
        if (isnan(Zs[r])) {
            fill(c, dh, NAN);
            count = 0;
        } else if (Zs[r] == 0.0f) {
            fill(c, dh, 0.0f);
            count = 0;
        } else if (!row_finite(c, dh)) {
            /* Rare (issue 9): a non-finite V row of a zero-weight (padded)
             * key, or an overflow in the float sum: dense_context excludes
             * zero weights and keeps every finite exact result finite. */
            kt->dense_context(jb->V + (size_t)h * N * dh, N, dh, A + (size_t)r * lda, c);
        }
        if (jb->kept)
            jb->kept[(size_t)(t0 + r) * jb->H + h] = count;
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

    char *ws = jb->pool ? ga_pool_scratch(jb->pool, worker, jb->ws_bytes)
                        : jb->serial_ws;
    float *S = (float *)ws;
    float *m = S + (size_t)rows * N;
    float *Zs = m + QB;
    int32_t *idx = (int32_t *)(Zs + QB);
    float *p = (float *)(idx + N + GA_KEEP_PAD);

    jb->kt->scores(jb->K + (size_t)h * N * dh, N, dh,
                   jb->Q + ((size_t)t0 * jb->H + h) * dh, rows, jb->H * dh,
                   jb->scale, jb->bias, S, N, m);
    if (jb->cfg->dense && rows > 1) {
        dense_block(jb, t0, rows, h, S, m, Zs, p, N + GA_KEEP_PAD);
        return;
    }
    for (int r = 0; r < rows; r++)
        query_head(jb, t0 + r, h, S + (size_t)r * N, m[r], idx, p);
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
    }

    job jb = {
        .kt = kt, .cfg = cfg, .N = N, .T = T, .H = cfg->H, .dh = cfg->dh,
        .g = cfg->g, .L = cfg->L, .Q = Q, .K = K, .V = V, .bias = bias, .P = P,
        .R = R, .W2 = W2, .b2 = b2, .ldp = ldp, .C = C, .kept = kept, .pool = pool,
    };
    jb.scale = 1.0f / sqrtf((float)cfg->dh);

    if (N == 0) { /* nothing to attend to: zero context, nothing kept */
        memset(C, 0, sizeof(float) * (size_t)T * jb.H * jb.dh);
        if (kept)
            memset(kept, 0, sizeof(int) * (size_t)T * jb.H);
        return GA_OK;
    }

    void *owned = NULL;
    size_t lev_bytes = 0, nan_bytes = 0;
    jb.unpadded = N;
    if (bias)
        for (int i = 0; i < N; i++)
            jb.unpadded -= bias[i] == -INFINITY;
    if (!cfg->dense) {
        ga_theta_from_tau(cfg, jb.theta8);
        lev_bytes = levels ? 0 : (size_t)T * N;
        nan_bytes = sizeof(int) * (size_t)T;
    }
    jb.ws_bytes = workspace_bytes(N, T < QB ? T : QB);
    size_t serial_bytes = pool ? 0 : jb.ws_bytes;
    size_t total = serial_bytes + nan_bytes + lev_bytes;
    if (total) {
        owned = aligned_alloc(64, (total + 63) / 64 * 64);
        if (!owned)
            return ga_set_error(GA_ENOMEM, "ga_attend: cannot allocate %zu bytes", total);
    }
    /* owned = serial workspace | gpn NaN flags [T] | levels [T][N] */
    char *cur = owned;
    jb.serial_ws = serial_bytes ? cur : NULL;
    jb.gpn_nan = nan_bytes ? (int *)(cur + serial_bytes) : NULL;
    jb.lev = levels ? levels : (lev_bytes ? (uint8_t *)(cur + serial_bytes + nan_bytes) : NULL);

    if (pool)
        for (int w = 0; w < ga_pool_threads(pool); w++)
            if (!ga_pool_scratch(pool, w, jb.ws_bytes)) {
                free(owned);
                return ga_set_error(GA_ENOMEM, "ga_attend: cannot allocate workspace");
            }

    if (!cfg->dense)
        run(&jb, levels_task, T);
    run(&jb, block_task, (T + QB - 1) / QB * jb.H);
    free(owned);
    return GA_OK;
}
