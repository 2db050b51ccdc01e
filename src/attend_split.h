/* attend_split.h — one query's keys split across the thread pool, and the
 * small-work rule (issue 14 item 4).  Internal: shared by src/attend.c (the
 * hook in the plan's run) and src/attend_split.c; the tests use the knobs.
 * The algorithm and its determinism argument are in attend_split.c. */
#ifndef GA_ATTEND_SPLIT_H
#define GA_ATTEND_SPLIT_H

#include "internal.h"

/* One T = 1 step as the plan's run hands it over.
 * Shapes: q [H*dh]; K, V [H][N][dh]; bias [N] or NULL; P [g][ldp]; r [g];
 * W2 [L][g]; b2 [L] -> c [H*dh], kept [H] or NULL, lev [N]. */
typedef struct ga_split_step {
    const ga_kernels *kt;
    const ga_config *cfg;
    const float *theta8;
    float scale;
    int N, unpadded; /* unpadded: keys whose bias is not -inf */
    const float *q, *K, *V, *bias;
    const float *P, *r, *W2, *b2; /* learned levels (sparse), else NULL */
    int ldp;
    const uint8_t *lev_given;     /* caller-given levels [N], or NULL */
    uint8_t *lev;                 /* learned levels are written here [N] */
    float *c;
    int *kept;
    ga_pool *pool;                /* NULL: every task on the calling thread */
    void *serial_ws;              /* worker 0's workspace when pool == NULL */
    size_t ws_bytes;              /* per-worker workspace (>= 8 (N + GA_KEEP_PAD)) */
} ga_split_step;

/* Key ranges of the dense T = 1 step of N keys and H heads: 1 (the unsplit
 * step) or more.  A function of (N, H) only, never of the thread count: the
 * dense result depends on it (flash-decoding merge), so every thread count
 * computes the same ranges. */
int ga_split_dense_ranges(int N, int H);

/* Bytes of the buffers a plan holds for the split steps (for up to max_N
 * keys, with a pool of `threads` threads); 0 when no split can happen. */
size_t ga_split_bytes(const ga_config *cfg, int max_N, int max_T, int threads);

/* Runs the T = 1 step split over keys when that is the plan's choice:
 *   dense, ga_split_dense_ranges(N, H) > 1: always (any pool, or none);
 *   sparse: with a pool of >= 2 threads (`threads`), when `small` is 0 and
 *   the heads do not balance the threads or N >= 4096 (scheduling only).
 * buf: the plan's ga_split_bytes() block of buf_bytes (64-byte aligned; a
 * block too small for this run, after a knob changed, runs unsplit).  Returns 1 when
 * it computed the step (c, kept, lev written), 0 when the caller runs the
 * unsplit step. */
int ga_split_run(const ga_split_step *st, void *buf, size_t buf_bytes, int threads, int small);

/* One sparse row's C from the threshold's (count, Z) and kept (idx, p):
 * NaN Z -> C NaN, Z == 0 or nothing kept -> C 0 (returns 0), else
 * C = sparse_context(Vh [N][dh], idx, p, count, 1/Z) (returns count).
 * Defined in attend.c; the unsplit, prepared and split steps all use it. */
int ga_sparse_finish(const ga_kernels *kt, const float *Vh, int dh, const int32_t *idx,
                     const float *p, int count, float Z, float *c);

/* Small-work rule: 1 when a step of T queries x H heads x N keys x dh is
 * below the measured size where a second thread starts to pay off, so the
 * plan runs it on the calling thread.  Only scheduling depends on it, never
 * a result. */
int ga_step_small(int N, int T, int H, int dh);
/* The rule's threshold, in T*H*N*dh multiply-adds (see attend_split.c). */
long long ga_step_min_work(void);

/* Test and measurement knobs (process-wide; the tests set them in their own
 * process, the bench reads the environment):
 *   ga_split_force_dense(k): dense key ranges of k keys (k > 0) whatever N
 *     and H (0: the rule of ga_split_dense_ranges);
 *   ga_split_force_sparse(k): sparse key ranges of k keys, split even on a
 *     1-thread or no pool (serially), and for small work (0: the rule);
 *   ga_step_set_min_work(w): the small-work threshold (< 0: the default).
 * Environment, read once: GRANATTN_STEP_MIN_WORK=w (as ga_step_set_min_work),
 * GRANATTN_STEP_SPLIT=0 (no sparse key split; dense ranges are never
 * switched off: they define the dense result). */
void ga_split_force_dense(int keys_per_range);
void ga_split_force_sparse(int keys_per_range);
void ga_step_set_min_work(long long w);

#endif
