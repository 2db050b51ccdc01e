/* decode.h — greedy and beam-search translation over the model's incremental
 * decode API (gm_encode_batch + gm_decode_step with per-hypothesis KV
 * caches); part of libgmodel (errors as model.h: a ga_status or NULL, the
 * message in gm_last_error()).
 *
 * A gs_decoder translates a batch of up to max_batch sentences at a time:
 * all live hypotheses of all its sentences advance together, one
 * gm_decode_step per token position (the projections, FFN and output layer
 * one SGEMM over all rows; self-attention per hypothesis over its cache;
 * cross-attention per sentence over its memory, the sentence's hypotheses
 * one block of queries).  Rows are kept in sentence order, each sentence's
 * live hypotheses contiguous; a sentence that finishes leaves the batch and
 * the rows are compacted.  Everything is allocated by gs_create (per
 * sentence, gm_encode builds the memory's prepared keys); the token loop
 * allocates nothing.  Use one decoder per thread.
 *
 * Beam search, per sentence: K hypotheses advance together; each step takes
 * the 2K best continuations of every live hypothesis (pad and bos are never
 * generated), ranks them by summed log-probability, moves those ending in
 * eos within the top K to a finished list scored with the GNMT length
 * penalty
 *     score / ((5 + len) / 6) ^ alpha          (len counts the eos),
 * and keeps the K best others alive.  A child takes its parent's KV cache
 * (the first child) or a copy of it (gm_cache_copy).  The search stops when
 * K hypotheses have finished, or at the length limit (live hypotheses are
 * then finished as they are).  Beam 1 is greedy search.
 * Length limit: min(max_len_a * source_len + max_len_b, model max_len)
 * generated tokens, eos included.
 *
 * Same output whatever the batch: a hypothesis' log-probabilities do not
 * depend on the other rows of the step (model.h), and each sentence's
 * search reads only its own rows, so a sentence translated in any batch
 * gives exactly the ids it gives alone (tests/test_batch.sh).
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

/* A decoder for batches of up to max_batch (>= 1) sentences of up to
 * max_src tokens each (0: the longest the model accepts, gs_max_src).
 * Memory: per sentence a gm_memory; per hypothesis (max_batch * beam) a KV
 * cache of the length limit of a max_src-token source, and a gm_step_ws
 * for max_batch * beam rows (which packs the decoder's weights: make the
 * decoder after the parameters are loaded).  NULL + message. */
gs_decoder *gs_create(const gm_model *m, const gs_options *o, int max_batch, int max_src);
void gs_free(gs_decoder *d);

/* Longest source (ids, without eos) the decoder accepts. */
int gs_max_src(const gs_decoder *d);
int gs_max_batch(const gs_decoder *d);

/* GA_OK if model m can translate src[0..S) (S <= max_len - 1, ids in the
 * vocabulary), else GA_EINVAL + message. */
ga_status gs_check(const gm_model *m, const int32_t *src, int S);

/* Translates sentences i < n (n <= max_batch): src[i][0..S[i]) (ids without
 * eos; the decoder appends eos before encoding).  Writes sentence i's output
 * ids (without bos/eos) to out[i] (capacity out_cap) and their count to
 * out_len[i].  stats may be NULL (added to).  steps_out (may be NULL):
 * decoder steps run (hypothesis-steps, all sentences).  Errors (a status +
 * message; outputs undefined): a source failing gs_check or longer than
 * gs_max_src (EINVAL, nothing translated), a model failure. */
ga_status gs_translate_batch(gs_decoder *d, int n, const int32_t *const *src, const int *S,
                             int32_t *const *out, int out_cap, int *out_len,
                             gm_step_stats *stats, long *steps_out);

/* Testing hook: fn(0) when gs_translate_batch enters its token loop (the
 * sources encoded, one row per sentence), fn(1) when the loop ends
 * normally; NULL: off.  Process-wide (set it while no decoding runs). */
void gs_debug_loop_hook(void (*fn)(int end));

/* One sentence: gs_translate_batch with n = 1. */
ga_status gs_translate(gs_decoder *d, const int32_t *src, int S, int32_t *out, int out_cap,
                       int *out_len, gm_step_stats *stats, long *steps_out);

#endif /* GM_DECODE_H */
