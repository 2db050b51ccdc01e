/* train_step.c — gm_train_step (train_step.h): zero grads, forward +
 * backward on the pool, global-norm clipping, AdamW (skipped on a
 * non-finite gradient). */
#include <math.h>
#include <string.h>

#include "train_step.h"

int gm_train_step(gm_model *m, go_adamw *opt, const gm_batch *b, uint64_t step_seed,
                  ga_pool *pool, gm_step_result *out)
{
    memset(out, 0, sizeof *out);
    gm_stats_zero(&out->stats);
    gm_zero_grads(m);
    if (gm_forward_backward(m, b, 1, step_seed, pool, &out->stats) != GA_OK)
        return -1;
    out->gnorm = go_clip(pool, gm_grads(m), gm_num_params(m), opt->o.clip);
    out->lr = go_lr(&opt->o, opt->t + 1);
    out->updated = isfinite(out->gnorm) != 0;
    if (out->updated)
        go_step(opt, pool, gm_params(m), gm_grads(m), out->lr);
    return 0;
}
