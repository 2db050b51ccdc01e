/* model.h — the granattn translation model (libgmodel): a pre-LayerNorm
 * Transformer encoder-decoder whose cross-attention is the sparsified
 * attention with learned granularity of docs/SPEC.md.
 *
 * Architecture (all sizes from gm_config):
 *   shared subword embedding E [vocab][d] (also the output projection, tied),
 *   x = E[tok] * sqrt(d) + sinusoidal position, dropout;
 *   encoder layer:  x += drop(SelfAttn(LN(x)));  x += drop(FFN(LN(x)))
 *   memory = LN_enc(x)                                        [S][d]
 *   decoder layer:  x += drop(CausalSelfAttn(LN(x)))
 *                   h  = LN(x);  x += drop(GpnCrossAttn(h, memory))
 *                   x += drop(FFN(LN(x)))
 *   logits = LN_dec(x) E^T;  loss = label-smoothed cross-entropy.
 *   GpnCrossAttn: Q = h Wq^T, [K|V] = memory Wkv^T, H heads; the GPN (docs/SPEC.md §3)
 *   gets e_i = memory row i and x_t = h row t; one level per (t, i) pair shared
 *   by the heads; scores/threshold/context through the library's fused step
 *   (the same composition in training, ga_attend_traced_theta, and in
 *   decoding, ga_attend_run / ga_attend_run_levels) (docs/SPEC.md §2);
 *   training backward: straight-through GPN gradient + the expected-density
 *   regulariser R = lambda * mean_{layers, pairs, heads} sum_l pi_l kappa_l
 *   (docs/SPEC.md §4).  cfg.dense = 1: plain softmax cross-attention, GPN unused.
 *   cfg.level_source = GM_LEVELS_RANDOM: random level per pair, GPN unused;
 *   GM_LEVELS_TOPK: the k largest weights of each (query, head) row, GPN
 *   unused (see gm_level_source).
 *
 * Parameters: ONE contiguous float buffer (gm_params) with a gradient buffer of
 * the same layout (gm_grads); gm_tensor() lists the named views (name,
 * offset, shape, whether weight decay applies) for AdamW and checkpoints.
 * Linear weights are stored [out][in] (y = x W^T + b), like PyTorch/llm.c.
 *
 * Training:
 *   gm_zero_grads(m);
 *   gm_forward_backward(m, &batch, 1, step_seed, pool, &stats);  // grads +=
 *   ... AdamW on gm_params / gm_grads ...
 * (gm_train_step of train_step.h is this step with clipping and AdamW, the
 * one `granattn train` and bench/model_step.c take.)
 * The gradient is that of  loss = CE_sum / tokens + R  for that batch (tokens
 * = non-pad target tokens of the batch).  train = 0: no dropout, no Gumbel,
 * no backward (dev loss).  Sentences of the batch are split over the pool's
 * workers (contiguous blocks balanced by length); worker 0 accumulates into
 * gm_grads, the others into private buffers that are added in worker order.
 * Results are bitwise reproducible for a given (seed, thread count); with a
 * different thread count they differ by float rounding only (dropout masks
 * and Gumbel noise do not depend on the thread count).  Memory: each worker
 * keeps a workspace of the activations of its sentences (about 140 KB per
 * target+source token pair at the default config, grown on demand and
 * kept), and workers 1.. a gradient buffer of gm_num_params floats.
 * Label smoothing spreads eps uniformly over the whole vocabulary; dropout
 * is applied to the embeddings and to every residual branch (not to the
 * attention probabilities).
 *
 * Padding: batch rows are padded with id 0 at the END; a sentence is its
 * tokens up to the first 0.  Internally sentences are packed (no padded
 * positions exist inside the model, so no padding mask is ever needed).
 *
 * Inference (greedy / beam search):
 *   gm_memory: one encoded source sentence (encoder output and, per decoder
 *              layer, the cross-attention K/V [H][S][dh], GPN P [g][S] and
 *              the prepared keys of docs/SPEC.md §7, computed once) and the
 *              prepared cross-attention step (ga_attend_plan for max_src
 *              keys, up to 16 queries; made once by gm_memory_create,
 *              reused for every sentence and token);
 *   gm_cache:  one hypothesis' decoder self-attention K/V cache;
 *   gm_step_ws: gm_decode_step's scratch for up to max_rows hypotheses and
 *              the decoder's weights packed once (sgemm_pack), made once (a
 *              step allocates nothing: the table's sgemm keeps one packing
 *              buffer per thread after its first call);
 *   gm_decode_step: n hypotheses advance by one token each (each with its own
 *              memory and cache, possibly at different positions); returns
 *              log-probabilities [n][vocab].  Cross-attention runs the fused
 *              inference path through the memory's plan over its prepared
 *              keys, consecutive hypotheses sharing a memory as one block
 *              of queries (argmax GPN levels: ga_attend_run_prepared; the
 *              random baseline: gm_random_levels, then
 *              ga_attend_run_prepared_levels; with prepared keys off,
 *              ga_attend_run / ga_attend_run_levels per hypothesis; see
 *              gm_memory_set_prepared), without per-token validation of the
 *              attention configuration or allocation of its workspace.
 *              Each hypothesis' log-probabilities are bitwise independent
 *              of the other hypotheses of the step (every row goes through
 *              the same arithmetic whatever n: the sgemm's rows are
 *              independent, the attention runs per hypothesis or, over
 *              prepared keys, per query of a block): batched search gives
 *              the one-sentence-at-a-time results (decode.h).
 *   Beam search reorders hypotheses with gm_cache_copy.
 * Memory/caches are owned by the caller; a memory may be shared by many
 * caches; different (memory, cache) sets may be used concurrently from
 * different threads with the same model (the model is read-only there).  A
 * memory holds the cross-attention workspace and a gm_step_ws the step's
 * scratch: neither may be used by two gm_decode_step calls at the same
 * time.
 *
 * Errors (the one convention of everything under model/): a function that
 * can fail returns a ga_status (GA_OK = 0), NULL (constructors) or -1 (the
 * CLI-side modules, util.h), and leaves a one-line message in
 * gm_last_error() (thread-local; gu_error() of util.h is the same buffer).
 * Failures of the kernel library inside the model are copied in with the
 * library's message.  Nothing aborts.
 */
#ifndef GMODEL_H
#define GMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "granattn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GM_PAD 0
#define GM_UNK 1
#define GM_BOS 2
#define GM_EOS 3

typedef enum gm_act { GM_ACT_RELU = 0, GM_ACT_GELU = 1 } gm_act;

/* Where the cross-attention levels come from.  GM_LEVELS_RANDOM is the
 * "random level per pair" baseline: pair (decoder layer, target position t,
 * source position i) gets level l with probability level_probs[l], drawn
 * from a counter-based RNG of (a fixed constant, layer, t, i) only — the
 * same levels in training and in inference, for every sentence, seed and
 * thread count (gm_random_levels).  The GPN is not evaluated (its
 * parameters get exactly zero gradient) and lambda is ignored (no
 * regulariser); density and level statistics are still reported, with the
 * expected density taken under level_probs. */
/* GM_LEVELS_TOPK is the per-query top-k baseline: no levels at all; each
 * (decoder layer, target position, head) row keeps the k keys of largest
 * attention weight, k = topk_k, or round(topk_frac * N) (at least 1) of the
 * row's N source keys, ties at the k-th value to the lower index, then
 * normalised as `mode` says (seed: Z over all keys; renorm: over the kept
 * ones) — in training (forward and backward: the gradient flows through
 * the kept weights exactly as for the level masks) and in decoding.  The
 * GPN is not evaluated (zero gradient), lambda is ignored; the density is
 * reported as for the other modes (kept / N per row).  model/topk.c. */
typedef enum { GM_LEVELS_GPN = 0, GM_LEVELS_RANDOM = 1, GM_LEVELS_TOPK = 2 } gm_level_source;

typedef struct gm_config {
    int vocab;            /* 8000 */
    int d;                /* model width, 256 (= H * dh of ga_config_default) */
    int H;                /* heads, 4 (d % H == 0) (ga_config_default) */
    int ff;               /* FFN hidden width, 1024 */
    int n_enc, n_dec;     /* layers, 3 and 3 */
    gm_act act;           /* FFN activation, RELU */
    int g;                /* GPN hidden width, 16 (ga_config_default) */
    int L;                /* granularity levels, 3 (ga_config_default) */
    float tau[GA_MAX_LEVELS]; /* (0.10, 0.01, 0) (ga_config_default): non-increasing, tau[l] < 1 */
    ga_norm mode;         /* GA_NORM_SEED (ga_config_default) */
    int dense;            /* 1: dense cross-attention baseline (no GPN); 0 (ga_config_default) */
    float lambda;         /* expected-density regulariser weight, 0.01 */
    float dropout;        /* 0.1 (embeddings and every residual branch) */
    float label_smoothing;/* 0.1 */
    int gumbel;           /* 1: training levels = argmax(z + temp * Gumbel) */
    float gumbel_temp;    /* 1.0 */
    int max_len;          /* longest sequence (positions), 256 */
    gm_level_source level_source; /* GM_LEVELS_GPN */
    float level_probs[GA_MAX_LEVELS]; /* RANDOM: P(level l), l < L: >= 0, sum 1 (+-1e-4); all 0 */
    int topk_k;           /* TOPK: keys kept per row (> 0), or 0 and topk_frac; 0 */
    float topk_frac;      /* TOPK: fraction of the row's keys, in (0, 1] (topk_k = 0); 0 */
} gm_config;

/* ---------------------------------------------------------------- errors */
/* The message of the last failure of this thread ("" if none). */
const char *gm_last_error(void);
/* Sets the message (printf-style) and returns st. */
ga_status gm_set_error(ga_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------- config */
/* The defaults noted above; the cross-attention fields (d = H * dh, H, g, L,
 * tau, mode, dense) are the kernel library's ga_config_default. */
void gm_config_default(gm_config *cfg);
ga_status gm_config_check(const gm_config *cfg);
/* The kernel library's view of the cross-attention (H, dh, g, L, tau, mode, dense). */
void gm_config_attn(const gm_config *cfg, ga_config *out);

/* ----------------------------------------------------------------- model */
typedef struct gm_model gm_model;

/* kt: kernel table used for everything (NULL: ga_kernels_default()).
 * Parameters initialised from `seed` (deterministic). NULL + message on error. */
gm_model *gm_create(const gm_config *cfg, const ga_kernels *kt, uint64_t seed);
void gm_free(gm_model *m);
const gm_config *gm_get_config(const gm_model *m);
const ga_kernels *gm_get_kernels(const gm_model *m);

size_t gm_num_params(const gm_model *m);
float *gm_params(gm_model *m);    /* [gm_num_params] */
float *gm_grads(gm_model *m);     /* [gm_num_params], same layout */
void gm_zero_grads(gm_model *m);
/* Re-initialise the parameters from a seed (what gm_create does). */
void gm_init_params(gm_model *m, uint64_t seed);

/* Named views of the parameter buffer, in buffer order, no gaps. */
typedef struct gm_tensor_info {
    char name[64];        /* e.g. "dec1.cross.wq", "emb" */
    size_t offset;        /* in floats from gm_params() */
    size_t size;          /* floats */
    int rows, cols;       /* 2-D shape (rows = 1 for vectors) */
    int decay;            /* 1: weight matrix (weight decay applies); 0: bias, LN, embedding */
} gm_tensor_info;
int gm_num_tensors(const gm_model *m);
const gm_tensor_info *gm_tensor(const gm_model *m, int i);
/* Index of a tensor by name, or -1. */
int gm_find_tensor(const gm_model *m, const char *name);

/* -------------------------------------------------------------- training */
typedef struct gm_batch {
    int B, S, T;
    const int32_t *src;     /* [B][S] source ids, 0-padded at the end */
    const int32_t *tgt_in;  /* [B][T] decoder input: bos y1 y2 ... (0-padded) */
    const int32_t *tgt_out; /* [B][T] targets: y1 y2 ... eos (0 = ignored) */
} gm_batch;
/* A sentence's target length is the number of leading non-pad tgt_out ids;
 * tgt_in is read for the same positions.  Lengths must be <= max_len. */

typedef struct gm_stats {
    double loss_sum;        /* label-smoothed CE, summed over target tokens */
    double nll_sum;         /* plain -log p(y), summed (perplexity = exp(nll/tokens)) */
    long tokens;            /* target tokens counted */
    long correct;           /* argmax == target */
    double density_sum;     /* sum over cross-attention rows (layer, t, head) of kept/N */
    long density_count;     /* rows */
    double level_count[GA_MAX_LEVELS]; /* (layer, t, i) pairs at each level */
    double pairs;           /* (layer, t, i) pairs */
    double exp_density_sum; /* sum over (layer, t, i, head) of sum_l pi_l kappa_l */
    double exp_density_count; /* its count: R = lambda * sum / count */
} gm_stats;
void gm_stats_zero(gm_stats *s);
void gm_stats_add(gm_stats *dst, const gm_stats *src);

/* The training objective of stats: loss_sum / tokens + lambda *
 * exp_density_sum / exp_density_count (the regulariser term only when the
 * GPN chooses the levels — sparse, not the random baseline — and lambda > 0). */
double gm_stats_objective(const gm_model *m, const gm_stats *s);

/* Changes the training-only settings of a live model (schedules: lambda
 * warm-up, Gumbel temperature annealing, ...).  Validated as in
 * gm_config_check; the model is unchanged on error. */
ga_status gm_set_training(gm_model *m, float lambda, float dropout,
                          float label_smoothing, int gumbel, float gumbel_temp);

/* Forward (+ backward when train) over a batch; see the top comment.
 * step_seed: dropout masks and Gumbel noise (counter-based, reproducible).
 * pool may be NULL (single thread).  Gradients are ADDED to gm_grads.
 * stats (may be NULL) are ADDED to. */
ga_status gm_forward_backward(gm_model *m, const gm_batch *batch, int train,
                              uint64_t step_seed, ga_pool *pool, gm_stats *stats);
/* The same for part `part` (0-based) of nparts (data parallelism, one part
 * per process): only that part's sentences run, the gradients added are
 * their share of the whole batch's gradient (summing every part's gives it)
 * and stats are theirs.  A part may be empty (fewer sentences than parts).
 * gm_forward_backward is part 0 of 1. */
ga_status gm_forward_backward_part(gm_model *m, const gm_batch *batch, int train,
                                   uint64_t step_seed, ga_pool *pool, int part, int nparts,
                                   gm_stats *stats);

/* ------------------------------------------------------------- inference */
typedef struct gm_memory gm_memory;  /* one encoded source sentence */
typedef struct gm_cache gm_cache;    /* one hypothesis' self-attention cache */

/* A memory for sources of up to max_src tokens, for model m (its kernel
 * table and attention configuration: gm_decode_step rejects a memory of a
 * model whose table or attention configuration differ).  NULL + message on
 * error (max_src outside [1, max_len], out of memory). */
gm_memory *gm_memory_create(const gm_model *m, int max_src);
void gm_memory_free(gm_memory *mem);
/* Encodes src[0..S) (no padding; S <= max_src and <= max_len). */
ga_status gm_encode(const gm_model *m, const int32_t *src, int S, gm_memory *mem);
/* Encodes n sentences together (src[b][0..S[b]) into mem[b], distinct
 * memories): one encoder pass over all their rows (each matrix product one
 * SGEMM), each memory bitwise what gm_encode gives it alone.  On an error
 * after the encoder pass (building prepared keys) the failing memory and
 * those after it are left unusable. */
ga_status gm_encode_batch(const gm_model *m, int n, const int32_t *const *src, const int *S,
                          gm_memory *const *mem);
int gm_memory_len(const gm_memory *mem);
/* Cross-attention over prepared keys (docs/SPEC.md §7), on by default with
 * GA_PREP_Z_EXACT: gm_encode builds, per decoder layer, ga_keys of the
 * source's K, V (once per source), and gm_decode_step runs the hypotheses
 * that share this memory (consecutive in its mem[] argument: a beam) as
 * one block of queries with ga_attend_run_prepared(_levels).  Results are
 * bitwise those without (sparse modes with GA_PREP_Z_EXACT; the dense
 * baseline within float rounding); GA_PREP_Z_BOUNDED (seed mode) forms Z
 * from the preview scores of the non-candidates (same kept sets, C scaled
 * by Z/Z_b).  on = 0: K, V through ga_attend_run(_levels), one hypothesis
 * per call (the reference for comparisons).  Applies from the next step
 * (keys built now if the memory holds a source).  EINVAL for an unknown
 * zmode; a failure to build keys is returned (ENOMEM). */
ga_status gm_memory_set_prepared(gm_memory *mem, int on, ga_prep_z zmode);

gm_cache *gm_cache_create(const gm_model *m, int max_tgt);
void gm_cache_free(gm_cache *c);
void gm_cache_reset(gm_cache *c);               /* back to position 0 */
int gm_cache_len(const gm_cache *c);            /* tokens consumed so far */
/* dst := src (same model; dst->max_tgt >= gm_cache_len(src)). */
ga_status gm_cache_copy(gm_cache *dst, const gm_cache *src);

typedef struct gm_step_stats {
    double density_sum;   /* sum over (hypothesis, layer, head) of kept/N */
    long density_count;
    double level_count[GA_MAX_LEVELS]; /* (hypothesis, layer, key) pairs per level */
    /* prepared keys (ga_prep_stats of the steps, summed; 0 when off) */
    long long prep_rows, prep_keys, prep_candidates, prep_fallback;
    double prep_bytes;    /* bytes touched by the prepared steps */
    double prep_z_bound;  /* largest relative bound of Z (GA_PREP_Z_BOUNDED) */
    double xattn_cpu;     /* thread CPU seconds spent in the cross-attention
                             calls (query projections for the GPN included) */
} gm_step_stats;

/* The workspace of gm_decode_step for up to max_rows hypotheses per step,
 * for model m only: its scratch (about (8 d + ff + g + 3) * 4 bytes per row)
 * and a copy of the decoder's weights packed for the table's sgemm_packed
 * (about 4 (n_dec (6 d^2 + 2 d ff) + vocab d) bytes, 19 MB at the default
 * config), taken at creation: make the workspace after the parameters are
 * set, and a new one after they change.  NULL + message on error. */
typedef struct gm_step_ws gm_step_ws;
gm_step_ws *gm_step_ws_create(const gm_model *m, int max_rows);
void gm_step_ws_free(gm_step_ws *ws);
int gm_step_ws_rows(const gm_step_ws *ws);

/* For h < n: feeds token tok[h] at position gm_cache_len(cache[h]) given
 * memory mem[h], appends to cache[h], writes log-probabilities of the next
 * token to logp[h][0..vocab).  ws: a workspace of model m with
 * gm_step_ws_rows(ws) >= n.  stats may be NULL (added to otherwise).
 * Single-threaded (call it from several threads for parallel decoding, with
 * different memories and workspaces).  EINVAL when a memory was made by
 * gm_memory_create for another kernel table or attention configuration, or
 * n exceeds the workspace. */
ga_status gm_decode_step(const gm_model *m, gm_step_ws *ws, int n,
                         const gm_memory *const *mem, gm_cache *const *cache,
                         const int32_t *tok, float *logp, gm_step_stats *stats);

/* The random baseline's levels (GM_LEVELS_RANDOM): lev[i] for keys i < N of
 * query position t (0-based target position) in decoder layer `layer`,
 * drawn with probs[0..L) (a level of probability 0 is never drawn).  A pure
 * function of (probs, L, layer, t, i): what gm_forward_backward and
 * gm_decode_step use.  0 <= t, i < 65536.  -> lev [N]. */
void gm_random_levels(const float *probs, int L, int layer, int t, int N, uint8_t *lev);

/* --------------------------------------------------------- testing hooks */
/* Forces the training forward's levels (GPN probabilities are still
 * computed and used by the backward; the random baseline's draws are
 * replaced likewise): levels[l][...] for decoder layer l,
 * then the batch's sentences with T_b > 0 in batch order, each [T_b][S_b]
 * (T_b target, S_b source tokens).  The array must stay valid while used;
 * NULL switches the hook off.  For the finite-difference tests. */
void gm_debug_force_levels(gm_model *m, const uint8_t *levels);

#ifdef __cplusplus
}
#endif
#endif /* GMODEL_H */
