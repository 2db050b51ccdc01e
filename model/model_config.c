/* model_config.c — gm_config (model.h): the default configuration (the
 * cross-attention part taken from the kernel library's ga_config_default),
 * its validation, and the kernel library's view of the cross-attention
 * (gm_config_attn). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

void gm_config_default(gm_config *c)
{
    /* The cross-attention's shape and thresholds: the kernel library's defaults. */
    ga_config a;
    ga_config_default(&a);
    memset(c, 0, sizeof *c);
    c->H = a.H;
    c->d = a.H * a.dh;
    c->g = a.g;
    c->L = a.L;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        c->tau[l] = a.tau[l];
    c->mode = a.mode;
    c->dense = a.dense;
    /* The rest of the model. */
    c->vocab = 8000;
    c->ff = 1024;
    c->n_enc = 3;
    c->n_dec = 3;
    c->act = GM_ACT_RELU;
    c->lambda = 0.01f;
    c->dropout = 0.1f;
    c->label_smoothing = 0.1f;
    c->gumbel = 0;
    c->gumbel_temp = 1.0f;
    c->max_len = 256;
    c->level_source = GM_LEVELS_GPN;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        c->level_probs[l] = 0.0f;
    c->topk_k = 0;
    c->topk_frac = 0.0f;
}

int gm_uses_gpn(const gm_config *c)
{
    return !c->dense && c->level_source == GM_LEVELS_GPN;
}

void gm_config_attn(const gm_config *c, ga_config *a)
{
    ga_config_default(a);
    a->H = c->H;
    a->dh = c->H > 0 ? c->d / c->H : 0;
    a->g = c->g;
    a->L = c->L;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        a->tau[l] = l < c->L ? c->tau[l] : 0.0f;
    a->mode = c->mode;
    a->dense = c->dense;
}

ga_status gm_config_check(const gm_config *c)
{
    if (!c)
        return gm_set_error(GA_EINVAL, "gm_config_check: NULL config");
    if (c->vocab < 4)
        return gm_set_error(GA_EINVAL, "gm config: vocab %d < 4", c->vocab);
    if (c->d < 2 || c->H < 1 || c->d % c->H != 0)
        return gm_set_error(GA_EINVAL, "gm config: d %d must be >= 2 and a multiple of H %d",
                            c->d, c->H);
    if (c->ff < 1)
        return gm_set_error(GA_EINVAL, "gm config: ff %d < 1", c->ff);
    if (c->n_enc < 0 || c->n_enc > GM_MAX_LAYERS || c->n_dec < 0 || c->n_dec > GM_MAX_LAYERS)
        return gm_set_error(GA_EINVAL, "gm config: layers (%d, %d) outside [0, %d]",
                            c->n_enc, c->n_dec, GM_MAX_LAYERS);
    if (c->act != GM_ACT_RELU && c->act != GM_ACT_GELU)
        return gm_set_error(GA_EINVAL, "gm config: unknown activation %d", (int)c->act);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return gm_set_error(GA_EINVAL, "gm config: dropout %g outside [0, 1)", c->dropout);
    if (!(c->label_smoothing >= 0.0f && c->label_smoothing < 1.0f))
        return gm_set_error(GA_EINVAL, "gm config: label_smoothing %g outside [0, 1)",
                            c->label_smoothing);
    if (!(c->lambda >= 0.0f) || !isfinite(c->lambda))
        return gm_set_error(GA_EINVAL, "gm config: lambda %g must be finite and >= 0", c->lambda);
    if (!(c->gumbel_temp >= 0.0f) || !isfinite(c->gumbel_temp))
        return gm_set_error(GA_EINVAL, "gm config: gumbel_temp %g must be finite and >= 0",
                            c->gumbel_temp);
    if (c->max_len < 1 || c->max_len > 65535)
        return gm_set_error(GA_EINVAL, "gm config: max_len %d outside [1, 65535]", c->max_len);
    if (c->level_source != GM_LEVELS_GPN && c->level_source != GM_LEVELS_RANDOM &&
        c->level_source != GM_LEVELS_TOPK)
        return gm_set_error(GA_EINVAL, "gm config: unknown level_source %d", (int)c->level_source);
    if (c->level_source == GM_LEVELS_TOPK) {
        if (c->dense)
            return gm_set_error(GA_EINVAL, "gm config: level_source = topk contradicts dense");
        if (c->topk_k < 0 || !(c->topk_frac >= 0.0f && c->topk_frac <= 1.0f))
            return gm_set_error(GA_EINVAL,
                                "gm config: topk_k %d must be >= 0 and topk_frac %g in [0, 1]",
                                c->topk_k, c->topk_frac);
        if ((c->topk_k > 0) == (c->topk_frac > 0.0f))
            return gm_set_error(GA_EINVAL,
                                "gm config: top-k needs exactly one of topk_k > 0 (keys per row) "
                                "or topk_frac > 0 (fraction of the row's keys); got %d and %g",
                                c->topk_k, c->topk_frac);
    } else if (c->topk_k != 0 || c->topk_frac != 0.0f) {
        return gm_set_error(GA_EINVAL,
                            "gm config: topk_k / topk_frac set but level_source is not topk");
    }
    if (c->level_source == GM_LEVELS_RANDOM) {
        if (c->dense)
            return gm_set_error(GA_EINVAL, "gm config: level_source = random contradicts dense");
        double sum = 0.0;
        for (int l = 0; l < c->L && l < GA_MAX_LEVELS; l++) {
            if (!(c->level_probs[l] >= 0.0f) || !isfinite(c->level_probs[l]))
                return gm_set_error(GA_EINVAL,
                                    "gm config: level_probs[%d] = %g must be finite and >= 0", l,
                                    c->level_probs[l]);
            sum += c->level_probs[l];
        }
        if (fabs(sum - 1.0) > 1e-4)
            return gm_set_error(GA_EINVAL,
                                "gm config: level_probs over the L = %d levels sum to %.9g, not 1",
                                c->L, sum);
    }
    ga_config a;
    gm_config_attn(c, &a);
    ga_status st = ga_config_check(&a);
    return st == GA_OK ? GA_OK : gm_set_error(st, "%s", ga_last_error());
}
