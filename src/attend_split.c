/* attend_split.c — one query's keys split across the thread pool
 * (flash-decoding style), and the small-work rule (issue 14 item 4).
 *
 * The plan's step runs tasks per (block of 16 queries, head): with T = 1 and
 * H heads that is H tasks, which leave threads idle when H < threads or H is
 * not a multiple of them, and the GPN levels of the query (one task) run on
 * one thread.  For a T = 1 step (ga_attend_run, ga_attend_run_levels; not
 * traced, not prepared) this file splits the keys instead.
 *
 * Sparse (seed, renorm): bitwise the unsplit step, whatever the split.
 *   run A, one task per key range j = [i0, i1) (R ranges, R = the pool's
 *   threads, ranges a multiple of 16 keys):
 *       lev[i0:i1]          = gpn_levels(P[:, i0:i1], r)       (learned levels)
 *       S[h][i0:i1], mx[h][j] = scores(K_h[i0:i1], q_h)       for every head h
 *   run B, one task per head h:
 *       m = max_j mx[h][j]                     (NaN if any is NaN; -inf: all padded)
 *       count, idx, p, Z = threshold(S[h], m, lev);  c_h = sparse_context(V_h, ...)
 *   Each key's score and level depend on that key alone (`scores`, the
 *   `gpn_levels` contract), the max of a set does not depend on the order
 *   (up to the sign of a zero max, which changes no d = s - m, keep decision
 *   or exp), and threshold and sparse_context see the whole row as in the
 *   unsplit step.  So C, kept and levels are bitwise those of the unsplit
 *   step, and the split may follow the thread count.  The global max is what
 *   the keep rule needs (p_i = exp(s_i - m) >= theta(level_i) with the row's
 *   m), hence the two runs.  Run B is one task per head: its share of the
 *   work (threshold + kept V rows, ~10 % at 70-20-10) is not split further.
 *
 * Dense: flash-decoding with an exact merge.
 *   one task per (head h, key range j), R = ga_split_dense_ranges(N, H):
 *       s, m_j = scores(K_h[range], q_h);  a, Z_j = softmax(s, m_j)
 *       c_j    = dense_context(V_h[range], a)        (normalised within the range)
 *   merge per head, in double:
 *       M = max_j m_j;  w_j = Z_j e^(m_j - M);  Z = sum_j w_j
 *       c_h = sum_j (w_j / Z) c_j                    (one rounding to float)
 *   This is sum_i exp(s_i - M) v_i / Z with each range's float sums, so the
 *   result depends on R, within the dense tolerance (docs/SPEC.md §2: the
 *   float rounding of sum_i a_i v_i).  R depends on (N, H) only, never on the
 *   thread count: a pool of any size, or none, computes the same ranges, so
 *   the results are bitwise identical for every thread count.  R = 1 is the
 *   unsplit step (the caller runs it).
 *   Defined behaviour as the unsplit step: M NaN or +inf -> c = NaN, kept 0;
 *   M = -inf (all padded) -> c = 0, kept 0; a range whose keys are all
 *   padded has w_j = 0 and is never read (its V rows included); a range whose
 *   weight w_j / Z is 0 in float (its keys' weights all underflow) is skipped,
 *   so a NaN V row there stays out as it does unsplit; c is finite when its
 *   exact value is (each c_j is, and the merge is a convex combination in
 *   double).  kept = the unpadded keys.
 *
 * Small work (ga_step_small): below a measured size (T*H*N*dh multiply-adds,
 * GA_STEP_MIN_WORK) the plan runs the step on the calling thread; waking the
 * pool costs more than the second thread saves there.  Only the schedule
 * depends on it.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attend_split.h"

/* Dense: a range gets at least this many keys, and the step at least
 * DENSE_TASKS (head, range) tasks, so 2, 4 or 8 threads get equal shares
 * (3: 3/3/2).  At 1 024 keys (dh 64) a range is ~3 us of work, so the merge
 * (dh multiply-adds per range) and the extra kernel calls cost < 1 %. */
enum { DENSE_MIN_KEYS = 1024, DENSE_TASKS = 8 };
/* Sparse: ranges of at least this many keys, at most MAX_RANGES of them.
 * When the heads already balance the threads (H a multiple of them) the
 * split pays only from SPARSE_BALANCED_MIN_N keys (the parallel GPN levels
 * against one more pool run): measured on 2 threads, fastest step, H 4 and
 * 8: 10-17 % slower at N 1 024, 7 % faster (H 4) at N 4 096
 * (results/xeon-2c/two-threads/).  Scheduling only: sparse results are the
 * same bits either way. */
enum { SPARSE_MIN_KEYS = 256, MAX_RANGES = 64, SPARSE_BALANCED_MIN_N = 4096 };

/* Small-work threshold in T*H*N*dh multiply-adds (see ga_step_min_work).
 * Measured on the 2-core Xeon (results/xeon-2c/two-threads/, hot cache,
 * avx512, 1 vs 2 threads): head-balanced steps pay from ~32 Ki (idle box,
 * median 1.07-1.20x) and not at 16 Ki (H 4, N 64: median 0.85-0.97x); the
 * two-range sparse split of one head (H 1) only from 128 Ki (median 0.78x at
 * 32 Ki, 0.94x at 64 Ki).  128 Ki: no measured shape slower on 2 threads.
 * No other microarchitecture was available to measure: one value,
 * GRANATTN_STEP_MIN_WORK to override. */
#define GA_STEP_MIN_WORK_DEFAULT 131072LL

static int g_force_dense, g_force_sparse;
static long long g_min_work = -1;
static long long g_env_min_work = -1;
static int g_env_no_split;
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;

static void read_env(void)
{
    const char *s = getenv("GRANATTN_STEP_MIN_WORK");
    if (s && *s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (*end == '\0' && v >= 0)
            g_env_min_work = v;
    }
    s = getenv("GRANATTN_STEP_SPLIT");
    g_env_no_split = s && strcmp(s, "0") == 0;
}

void ga_split_force_dense(int k) { g_force_dense = k > 0 ? k : 0; }
void ga_split_force_sparse(int k) { g_force_sparse = k > 0 ? k : 0; }
void ga_step_set_min_work(long long w) { g_min_work = w; }

long long ga_step_min_work(void)
{
    pthread_once(&g_env_once, read_env);
    if (g_min_work >= 0)
        return g_min_work;
    return g_env_min_work >= 0 ? g_env_min_work : GA_STEP_MIN_WORK_DEFAULT;
}

int ga_step_small(int N, int T, int H, int dh)
{
    return (long long)T * H * N * dh < ga_step_min_work();
}

int ga_split_dense_ranges(int N, int H)
{
    if (g_force_dense)
        return N > 0 ? (N + g_force_dense - 1) / g_force_dense : 1;
    int r = (DENSE_TASKS + H - 1) / H;
    int cap = N / DENSE_MIN_KEYS;
    if (r > cap)
        r = cap;
    return r > 1 ? r : 1;
}

/* Sparse ranges for N keys on `threads` threads (1: no split). */
static int sparse_ranges(int N, int threads)
{
    if (g_force_sparse)
        return N > 0 ? (N + g_force_sparse - 1) / g_force_sparse : 1;
    int r = threads < MAX_RANGES ? threads : MAX_RANGES;
    int cap = N / SPARSE_MIN_KEYS;
    if (r > cap)
        r = cap;
    return r > 1 ? r : 1;
}

/* Keys [i0, i1) of range j of R over N keys: forced ranges of k keys, else
 * near-equal ranges whose inner bounds are multiples of 16 keys. */
static void range_of(int N, int R, int forced, int j, int *i0, int *i1)
{
    if (forced) {
        *i0 = j * forced;
        *i1 = *i0 + forced < N ? *i0 + forced : N;
        return;
    }
    long long a = (long long)N * j / R, b = (long long)N * (j + 1) / R;
    *i0 = j == 0 ? 0 : (int)(a & ~15LL);
    *i1 = j == R - 1 ? N : (int)(b & ~15LL);
}

/* ------------------------------------------------------------ buffers */

/* The plan's block:
 *   dense:  w [H][R] double | mz [H][R][2] | part [H][R][dh]   (merge weights; m_j, Z_j; c_j)
 *   sparse: S [H][max_N] | mx [H][R] | nanr [R] (scores; range maxima; GPN NaN flags) */
static int max_dense_ranges(int max_N, int H)
{
    return ga_split_dense_ranges(max_N, H);
}

size_t ga_split_bytes(const ga_config *cfg, int max_N, int max_T, int threads)
{
    if (max_T < 1 || max_N < 1)
        return 0;
    const size_t H = (size_t)cfg->H, dh = (size_t)cfg->dh;
    if (cfg->dense) {
        int R = max_dense_ranges(max_N, cfg->H);
        return R > 1 ? (sizeof(double) + sizeof(float) * (dh + 2)) * H * (size_t)R + 64 : 0;
    }
    if (threads < 2 && !g_force_sparse)
        return 0;
    int R = sparse_ranges(max_N, threads);
    if (R < 2)
        return 0;
    return sizeof(float) * (H * (size_t)max_N + H * (size_t)R + (size_t)R) + 64;
}

/* ---------------------------------------------------------------- tasks */

typedef struct sjob {
    const ga_split_step *st;
    int R, forced;
    double *w;        /* dense: w_j / Z per (head, range) */
    float *part, *mz; /* dense */
    float *S, *mx;    /* sparse */
    int *nanr;
    const uint8_t *lev; /* levels the threshold reads */
} sjob;

static void *ws_of(const ga_split_step *st, int worker)
{
    /* the plan grew every worker's scratch to ws_bytes: no allocation here */
    return st->pool ? ga_pool_scratch(st->pool, worker, st->ws_bytes) : st->serial_ws;
}

static void fill(float *c, int n, float v)
{
    for (int j = 0; j < n; j++)
        c[j] = v;
}

/* Dense task (head h, range j): s, m_j = scores; a, Z_j = softmax;
 * c_j = dense_context over the range (skipped when m_j is not finite). */
static void dense_task(void *arg, int task, int worker)
{
    sjob *sj = arg;
    const ga_split_step *st = sj->st;
    const ga_kernels *kt = st->kt;
    const int N = st->N, dh = st->cfg->dh, R = sj->R;
    const int h = task / R, j = task % R;
    int i0, i1;
    range_of(N, R, sj->forced, j, &i0, &i1);
    const int n = i1 - i0;
    float *s = ws_of(st, worker);
    float *mz = sj->mz + 2 * (size_t)task;
    float m;
    kt->scores(st->K + ((size_t)h * N + i0) * dh, n, dh, st->q + (size_t)h * dh, 1, dh,
               st->scale, st->bias ? st->bias + i0 : NULL, s, n, &m);
    mz[0] = m;
    mz[1] = 0.0f;
    if (!isfinite(m)) /* all padded (-inf) or NaN / +inf: the merge decides */
        return;
    mz[1] = kt->softmax(s, n, m, s);
    kt->dense_context(st->V + ((size_t)h * N + i0) * dh, n, dh, s,
                      sj->part + (size_t)task * dh);
}

/* Merge of head h's ranges into c_h and kept[h] (see the file comment). */
static void dense_merge(const sjob *sj, int h)
{
    const ga_split_step *st = sj->st;
    const int dh = st->cfg->dh, R = sj->R;
    const float *mz = sj->mz + 2 * (size_t)h * R;
    const float *part = sj->part + (size_t)h * R * dh;
    float *c = st->c + (size_t)h * dh;
    float M = -INFINITY;
    int nan = 0;
    for (int j = 0; j < R; j++) {
        float m = mz[2 * j];
        if (isnan(m))
            nan = 1;
        else if (m > M)
            M = m;
    }
    int count = st->unpadded;
    ga_row rc = nan ? GA_ROW_NAN : ga_row_case(st->N, M);
    if (rc != GA_ROW_OK) {
        fill(c, dh, rc == GA_ROW_NAN ? NAN : 0.0f);
        count = 0;
    } else {
        double *w = sj->w + (size_t)h * R, Z = 0.0;
        for (int j = 0; j < R; j++) {
            double m = mz[2 * j];
            w[j] = m == -INFINITY ? 0.0 : (double)mz[2 * j + 1] * exp(m - (double)M);
            Z += w[j];
        }
        for (int j = 0; j < R; j++) {
            w[j] /= Z;
            if ((float)w[j] == 0.0f) /* no weight in float: the range stays out */
                w[j] = 0.0;
        }
        for (int d = 0; d < dh; d++) {
            double acc = 0.0;
            for (int j = 0; j < R; j++)
                if (w[j] != 0.0)
                    acc += w[j] * part[(size_t)j * dh + d];
            c[d] = (float)acc;
        }
    }
    if (st->kept)
        st->kept[h] = count;
}

/* The GPN NaN flag of keys [i0, i1) over their unpadded keys only (a
 * padded key's GPN column never matters): gpn_levels on each run of
 * consecutive unpadded keys, which rewrites the same levels for them. */
static int gpn_nan_unpadded(const ga_split_step *st, int i0, int i1)
{
    const ga_config *cfg = st->cfg;
    int nan = 0;
    for (int i = i0; i < i1 && !nan;) {
        if (st->bias[i] == -INFINITY) {
            i++;
            continue;
        }
        int e = i;
        while (e < i1 && st->bias[e] != -INFINITY)
            e++;
        nan = st->kt->gpn_levels(st->P + i, st->ldp, st->r, st->W2, st->b2, e - i, cfg->g,
                                 cfg->L, st->lev + i);
        i = e;
    }
    return nan;
}

/* Sparse run A, task = range j: its levels (learned), then its scores and
 * maximum for every head. */
static void sparse_scores_task(void *arg, int j, int worker)
{
    (void)worker;
    sjob *sj = arg;
    const ga_split_step *st = sj->st;
    const ga_kernels *kt = st->kt;
    const int N = st->N, H = st->cfg->H, dh = st->cfg->dh, R = sj->R;
    int i0, i1;
    range_of(N, R, sj->forced, j, &i0, &i1);
    const int n = i1 - i0;
    if (!st->lev_given) {
        const ga_config *cfg = st->cfg;
        int nan = kt->gpn_levels(st->P + i0, st->ldp, st->r, st->W2, st->b2, n, cfg->g, cfg->L,
                                 st->lev + i0);
        if (nan && st->unpadded < N)
            nan = gpn_nan_unpadded(st, i0, i1);
        sj->nanr[j] = nan;
    }
    for (int h = 0; h < H; h++)
        kt->scores(st->K + ((size_t)h * N + i0) * dh, n, dh, st->q + (size_t)h * dh, 1, dh,
                   st->scale, st->bias ? st->bias + i0 : NULL, sj->S + (size_t)h * N + i0, n,
                   sj->mx + (size_t)h * R + j);
}

/* Sparse run B, task = head h: the row max over the ranges, then threshold
 * and sparse_context over the whole row, as the unsplit step's query_head. */
static void sparse_head_task(void *arg, int h, int worker)
{
    sjob *sj = arg;
    const ga_split_step *st = sj->st;
    const ga_kernels *kt = st->kt;
    const int N = st->N, dh = st->cfg->dh, R = sj->R;
    float *c = st->c + (size_t)h * dh;
    int32_t *idx = ws_of(st, worker);
    float *p = (float *)(idx + N + GA_KEEP_PAD);
    float m = -INFINITY;
    for (int j = 0; j < R; j++) {
        float mj = sj->mx[(size_t)h * R + j];
        if (isnan(mj) || isnan(m))
            m = NAN;
        else if (mj > m)
            m = mj;
    }
    int gpn_nan = 0;
    if (!st->lev_given)
        for (int j = 0; j < R; j++)
            gpn_nan |= sj->nanr[j];
    int count;
    float Z;
    if (gpn_nan) { /* NaN GPN logits: the whole query is NaN */
        Z = NAN;
        count = 0;
    } else {
        count = kt->threshold(sj->S + (size_t)h * N, N, m, sj->lev, st->theta8, st->cfg->mode,
                              idx, p, &Z);
    }
    count = ga_sparse_finish(kt, st->V + (size_t)h * N * dh, dh, idx, p, count, Z, c);
    if (st->kept)
        st->kept[h] = count;
}

static void run(const ga_split_step *st, void (*fn)(void *, int, int), sjob *sj, int ntasks)
{
    if (st->pool) {
        ga_pool_run(st->pool, fn, sj, ntasks);
    } else {
        for (int i = 0; i < ntasks; i++)
            fn(sj, i, 0);
    }
}

int ga_split_run(const ga_split_step *st, void *buf, size_t buf_bytes, int threads, int small)
{
    const ga_config *cfg = st->cfg;
    const int N = st->N, H = cfg->H;
    if (N < 1 || !buf)
        return 0;
    sjob sj = {.st = st};
    if (cfg->dense) {
        sj.R = ga_split_dense_ranges(N, H);
        if (sj.R < 2)
            return 0;
        sj.forced = g_force_dense;
        if (buf_bytes < (sizeof(double) + sizeof(float) * (cfg->dh + 2)) * H * (size_t)sj.R)
            return 0; /* a knob changed after the plan was made */
        sj.w = buf;
        sj.mz = (float *)(sj.w + (size_t)H * sj.R);
        sj.part = sj.mz + 2 * (size_t)H * sj.R;
        run(st, dense_task, &sj, H * sj.R);
        for (int h = 0; h < H; h++)
            dense_merge(&sj, h);
        return 1;
    }
    pthread_once(&g_env_once, read_env);
    if (!g_force_sparse &&
        (threads < 2 || small || g_env_no_split || (H % threads == 0 && N < SPARSE_BALANCED_MIN_N)))
        return 0;
    sj.R = sparse_ranges(N, threads);
    if (sj.R < 2)
        return 0;
    sj.forced = g_force_sparse;
    if (buf_bytes < sizeof(float) * ((size_t)H * N + (size_t)H * sj.R + sj.R))
        return 0;
    sj.S = buf;
    sj.mx = sj.S + (size_t)H * N;
    sj.nanr = (int *)(sj.mx + (size_t)H * sj.R);
    sj.lev = st->lev_given ? st->lev_given : st->lev;
    run(st, sparse_scores_task, &sj, sj.R);
    run(st, sparse_head_task, &sj, H);
    return 1;
}
