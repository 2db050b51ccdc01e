/* train_step.c — gm_train_step (train_step.h): zero grads, forward +
 * backward on the pool, global-norm clipping, AdamW (skipped on a
 * non-finite gradient); gm_train_step_part: the same on one part of the
 * batch, with the gradients and statistics summed over the parts. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "train_step.h"

int gm_train_step(gm_model *m, go_adamw *opt, const gm_batch *b, uint64_t step_seed,
                  ga_pool *pool, gm_step_result *out)
{
    return gm_train_step_part(m, opt, b, step_seed, pool, NULL, out);
}

int gm_train_step_part(gm_model *m, go_adamw *opt, const gm_batch *b, uint64_t step_seed,
                       ga_pool *pool, const gm_part *part, gm_step_result *out)
{
    memset(out, 0, sizeof *out);
    gm_stats_zero(&out->stats);
    gm_zero_grads(m);
    int p = part ? part->part : 0, np = part ? part->nparts : 1;
    int failed = gm_forward_backward_part(m, b, 1, step_seed, pool, p, np, &out->stats) != GA_OK;
    if (part && part->reduce) {
        /* every part takes part in the reduction, a failed one too (the
         * others would wait for it forever) */
        int any_failed = failed;
        if (part->reduce(part->ctx, gm_grads(m), gm_num_params(m), &out->stats,
                         &any_failed) != 0)
            return -1;
        if (any_failed && !failed) {
            gm_set_error(GA_EINVAL, "another rank's forward/backward failed");
            return -1;
        }
    }
    if (failed)
        return -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out->gnorm = go_clip(pool, gm_grads(m), gm_num_params(m), opt->o.clip);
    out->lr = go_lr(&opt->o, opt->t + 1);
    out->updated = isfinite(out->gnorm) != 0;
    if (out->updated)
        go_step(opt, pool, gm_params(m), gm_grads(m), out->lr);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->update_seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return 0;
}
