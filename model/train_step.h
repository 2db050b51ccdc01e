/* train_step.h — ONE training step of the model, the step `granattn train`
 * (cli_train.c) takes and granattn-model-step (bench/model_step.c) times:
 *
 *   gm_zero_grads;  gm_forward_backward(train = 1, step_seed, pool);
 *   gnorm = go_clip(pool, grads, clip);  lr = go_lr(opt options, t + 1);
 *   if gnorm is finite: go_step(lr)  (AdamW; t += 1)
 *   else: no update (the caller counts and reports skipped steps).
 *
 * Errors: -1 and the message in gm_last_error() (model.h) when the forward /
 * backward fails (the parameters and optimiser are then unchanged).
 */
#ifndef GM_TRAIN_STEP_H
#define GM_TRAIN_STEP_H

#include <stdint.h>

#include "model.h"
#include "optim.h"

typedef struct gm_step_result {
    gm_stats stats;  /* of this batch (loss, tokens, density, levels, ...) */
    double gnorm;    /* global gradient norm before clipping (NaN/inf: not finite) */
    float lr;        /* learning rate of the update (go_lr of step t + 1) */
    int updated;     /* 1: AdamW step applied; 0: skipped (non-finite gradient) */
    double update_seconds; /* wall time of clipping + AdamW (every rank repeats it) */
} gm_step_result;

/* One step over batch b with dropout / Gumbel seed step_seed on pool (may
 * be NULL).  opt: AdamW state over gm_params(m) (go_init with the model's
 * gm_num_params; go_no_decay on the tensors without weight decay). */
int gm_train_step(gm_model *m, go_adamw *opt, const gm_batch *b, uint64_t step_seed,
                  ga_pool *pool, gm_step_result *out);

/* Data parallelism: this process runs part `part` of nparts of every batch
 * (gm_forward_backward_part) and reduce sums, over all parts, the gradients
 * g[0..n) (in place; the same result on every part) and the statistics st,
 * and ORs *failed (a part whose forward/backward failed).  It returns 0, or
 * -1 when the reduction itself failed (it has reported why; gm_last_error
 * is not set).  Every part then clips and updates identically. */
typedef struct gm_part {
    int part, nparts;
    int (*reduce)(void *ctx, float *g, size_t n, gm_stats *st, int *failed);
    void *ctx;
} gm_part;

/* gm_train_step on part->part of the batch (part may be NULL: the whole
 * batch, = gm_train_step).  Errors: -1, and gm_last_error() unless the
 * reduction failed. */
int gm_train_step_part(gm_model *m, go_adamw *opt, const gm_batch *b, uint64_t step_seed,
                       ga_pool *pool, const gm_part *part, gm_step_result *out);

#endif /* GM_TRAIN_STEP_H */
