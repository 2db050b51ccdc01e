/* config.c — ga_config defaults, validation and tau -> theta conversion. */
#include <float.h>
#include <math.h>

#include "internal.h"

void ga_config_default(ga_config *cfg)
{
    *cfg = (ga_config){0};
    cfg->H = 4;
    cfg->dh = 64;
    cfg->g = 16;
    cfg->L = 3;
    cfg->tau[0] = 0.10f;
    cfg->tau[1] = 0.01f;
    cfg->tau[2] = 0.0f;
    cfg->mode = GA_NORM_SEED;
    cfg->dense = 0;
}

ga_status ga_config_check(const ga_config *cfg)
{
    if (!cfg)
        return ga_set_error(GA_EINVAL, "config is NULL");
    if (cfg->H < 1)
        return ga_set_error(GA_EINVAL, "H = %d: need at least one head", cfg->H);
    if (cfg->dh < 1)
        return ga_set_error(GA_EINVAL, "dh = %d: head width must be >= 1", cfg->dh);
    if (cfg->mode != GA_NORM_SEED && cfg->mode != GA_NORM_RENORM)
        return ga_set_error(GA_EINVAL, "mode = %d: must be GA_NORM_SEED or GA_NORM_RENORM",
                            (int)cfg->mode);
    if (cfg->dense)
        return GA_OK; /* the GPN fields are unused by the dense baseline */
    if (cfg->g < 1)
        return ga_set_error(GA_EINVAL, "g = %d: GPN width must be >= 1", cfg->g);
    if (cfg->L < 1 || cfg->L > GA_MAX_LEVELS)
        return ga_set_error(GA_EINVAL, "L = %d: levels must be in 1..%d", cfg->L,
                            GA_MAX_LEVELS);
    for (int l = 0; l < cfg->L; l++) {
        float t = cfg->tau[l];
        if (!(t >= 0.0f && t < 1.0f))
            return ga_set_error(GA_EINVAL, "tau[%d] = %g: must satisfy 0 <= tau < 1", l,
                                (double)t);
        if (l > 0 && t > cfg->tau[l - 1])
            return ga_set_error(GA_EINVAL,
                                "tau[%d] = %g > tau[%d] = %g: thresholds must be "
                                "non-increasing from coarse (0) to fine (L-1)",
                                l, (double)t, l - 1, (double)cfg->tau[l - 1]);
    }
    return GA_OK;
}

void ga_theta_from_tau(const ga_config *cfg, float theta8[GA_MAX_LEVELS])
{
    int L = cfg->L < 1 ? 1 : (cfg->L > GA_MAX_LEVELS ? GA_MAX_LEVELS : cfg->L);
    for (int l = 0; l < GA_MAX_LEVELS; l++) {
        float t = cfg->tau[l < L ? l : L - 1];
        theta8[l] = t > 0.0f ? logf(t) : -FLT_MAX;
    }
}
