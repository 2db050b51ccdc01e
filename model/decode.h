/* decode.h — greedy and beam-search translation over the model's incremental
 * decode API (gm_encode + gm_decode_step with per-hypothesis KV caches).
 *
 * A gs_decoder holds the buffers for one sentence at a time (one encoded
 * memory, 2 * beam caches, log-probabilities); use one per thread.
 *
 * Beam search: K hypotheses advance together (one gm_decode_step call for
 * all of them); each step takes the 2K best continuations of every live
 * hypothesis (pad and bos are never generated), ranks them by summed
 * log-probability, moves those ending in eos within the top K to a finished
 * list scored with the GNMT length penalty
 *     score / ((5 + len) / 6) ^ alpha          (len counts the eos),
 * and keeps the K best others alive.  A child takes its parent's KV cache
 * (the first child) or a copy of it (gm_cache_copy).  The search stops when
 * K hypotheses have finished, or at the length limit (live hypotheses are
 * then finished as they are).  Beam 1 is greedy search.
 * Length limit: min(max_len_a * source_len + max_len_b, model max_len)
 * generated tokens, eos included.
 */
#ifndef GM_DECODE_H
#define GM_DECODE_H

#include <stdint.h>

#include "model.h"

typedef struct gs_options {
    int beam;          /* 1 = greedy */
    float alpha;       /* length-penalty exponent (0: none) */
    float max_len_a;   /* output limit = a * src_len + b */
    int max_len_b;
    int prepared;      /* cross-attention over prepared keys (1, default; see
                          gm_memory_set_prepared) */
    ga_prep_z prep_z;  /* seed mode's Z with prepared keys (GA_PREP_Z_EXACT) */
} gs_options;

void gs_options_default(gs_options *o);

typedef struct gs_decoder gs_decoder;

gs_decoder *gs_create(const gm_model *m, const gs_options *o);
void gs_free(gs_decoder *d);

/* Translates src[0..S) (ids without eos; the decoder appends eos before
 * encoding).  Writes the output ids (without bos/eos) to out (capacity
 * out_cap) and their count to *out_len.  stats may be NULL (added to).
 * steps_out (may be NULL): decoder steps run (hypothesis-steps).  Errors: S
 * too long for the model (message says the limit), model failure. */
int gs_translate(gs_decoder *d, const int32_t *src, int S, int32_t *out,
                 int out_cap, int *out_len, gm_step_stats *stats, long *steps_out);

/* Longest source (ids, without eos) the decoder accepts. */
int gs_max_src(const gs_decoder *d);

#endif /* GM_DECODE_H */
