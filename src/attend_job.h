/* attend_job.h — internal to the fused step (src/attend.c, src/attend_prepared.c):
 * one run's job description, the per-worker workspace layout and the
 * prepared step's task (docs/SPEC.md §2, §7).  Not part of the public API. */
#ifndef GA_ATTEND_JOB_H
#define GA_ATTEND_JOB_H

#include <stdint.h>
#include <stddef.h>

#include "internal.h"
#include "keys.h"

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
static inline size_t prep_bytes(int N, int dh)
{
    size_t n = (size_t)N, pad = n + GA_KEEP_PAD;
    return sizeof(float) * 3 * n + sizeof(int32_t) * pad + pad + ((size_t)dh + 3) / 4 * 4 + 256;
}

static inline size_t workspace_bytes(int N, int rows, int dh, int dense)
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

static inline wsv ws_carve(char *ws, int N, int rows, int dh)
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

static inline void fill(float *c, int n, float v)
{
    for (int j = 0; j < n; j++)
        c[j] = v;
}

/* Task = (query block b, head h) of a prepared run (src/attend_prepared.c). */
void ga_prep_block_task(void *arg, int task, int worker);

#endif
