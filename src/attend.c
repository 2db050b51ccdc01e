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
 * Per-worker workspace: see workspace_bytes() (src/attend_job.h).  Runs over
 * prepared keys (docs/SPEC.md §7) take src/attend_prepared.c's task.
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
#include "attend_job.h"

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
    run(&jb, keys ? ga_prep_block_task : block_task, (T + QB - 1) / QB * jb.H);
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
