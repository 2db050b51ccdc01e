/* optim.h — AdamW (decoupled weight decay), learning-rate schedules and
 * global-norm gradient clipping over one contiguous parameter buffer.
 *
 * Everything is deterministic: reductions run over fixed chunks whose double
 * partial sums are added in chunk order, so the result does not depend on
 * the thread count of the pool (or on having one).
 */
#ifndef GM_OPTIM_H
#define GM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "granattn.h"

typedef enum go_sched {
    GO_SCHED_INVSQRT = 0, /* linear warm-up, then lr * sqrt(warmup / step) */
    GO_SCHED_COSINE = 1,  /* linear warm-up, then cosine to min_lr at total_steps */
    GO_SCHED_CONSTANT = 2 /* linear warm-up, then constant */
} go_sched;

const char *go_sched_name(go_sched s);
int go_sched_from_name(const char *name, go_sched *out); /* -1 on unknown */

typedef struct go_options {
    float lr;           /* peak learning rate */
    float min_lr;       /* floor (cosine end point; also a floor for invsqrt) */
    int warmup;         /* warm-up steps (0: none) */
    long total_steps;   /* cosine horizon (steps); ignored by the others */
    go_sched sched;
    float beta1, beta2, eps;
    float weight_decay; /* decoupled: p -= lr * wd * p, on decayed params only */
    float clip;         /* global-norm clip; <= 0 disables */
} go_options;

void go_options_default(go_options *o);

/* Learning rate for 1-based step `step` (the update about to be applied). */
float go_lr(const go_options *o, long step);

typedef struct go_adamw {
    go_options o;
    size_t n;
    float *m, *v;     /* first and second moments, [n] */
    uint8_t *decay;   /* [n]: 1 = apply weight decay (default all 1) */
    long t;           /* updates applied so far */
} go_adamw;

int go_init(go_adamw *a, const go_options *o, size_t n);
void go_free(go_adamw *a);
/* Excludes params [offset, offset + count) from weight decay (biases, layer
 * norm gains, ...). */
int go_no_decay(go_adamw *a, size_t offset, size_t count);

/* Global L2 norm of g[0..n) (double accumulation, fixed chunk order).
 * Returns NaN or inf if any element is not finite. */
double go_global_norm(ga_pool *pool, const float *g, size_t n);
/* Scales g so its global norm is at most max_norm (when max_norm > 0 and the
 * norm is finite and larger).  Returns the norm before clipping. */
double go_clip(ga_pool *pool, float *g, size_t n, float max_norm);

/* One AdamW update with learning rate lr (from go_lr(&a->o, a->t + 1)):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * decay * p)
 * with the usual bias corrections.  Increments a->t. */
void go_step(go_adamw *a, ga_pool *pool, float *params, const float *grads,
             float lr);

#endif /* GM_OPTIM_H */
