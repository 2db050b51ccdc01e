/* attend_internal.h — the fused step for in-tree callers that hold theta8
 * rather than a ga_config (the model's training forward, model/layers.c).
 * Not installed. */
#ifndef GA_ATTEND_INTERNAL_H
#define GA_ATTEND_INTERNAL_H

#include "granattn.h"

/* ga_attend_run_traced without a plan: the same composition (attend.c's
 * block / query steps, single-threaded, no workspace, no allocation) with
 * theta8 [8] given (effective thresholds as ga_theta_from_tau writes them,
 * indexed by level; levels [T][N] must be < 8) and the scale 1/sqrt(dh).
 * Shapes: Q [T][H*dh]; K, V [H][N][dh]; bias [N] or NULL -> C [T][H*dh],
 * kept [T][H] or NULL, *trace (layout in granattn.h).
 * Errors (GA_EINVAL + message, nothing written): kt, theta8 or trace NULL;
 * H or dh < 1; an unknown mode; N or T < 0; a size product of ga_attend
 * that does not fit in an int; a required pointer NULL; a level >= 8. */
ga_status ga_attend_traced_theta(const ga_kernels *kt, int H, int dh, ga_norm mode,
                                 const float theta8[GA_MAX_LEVELS], int N, int T,
                                 const float *Q, const float *K, const float *V,
                                 const float *bias, const uint8_t *levels, float *C, int *kept,
                                 const ga_attend_trace *trace);

#endif
