/* layers.h — the model's layers as forward / backward function pairs
 * (llm.c style: plain arrays, shapes in the comments, no hidden state).
 *
 * Conventions
 *   - fp32, row-major; R = rows (tokens), C = channels.
 *   - Linear weights are [out][in]:  y = x W^T + b.
 *   - Backward functions ACCUMULATE (+=) into parameter gradients and into
 *     gradients of inputs unless the comment says "overwritten".
 *   - Every matrix product goes through kt->sgemm; the cross-attention
 *     through the SPEC kernels of the table.
 *   - Randomness (dropout, Gumbel) is counter based: a pure function of
 *     (seed, stream, index), so any row can be recomputed in the backward and
 *     results do not depend on how rows are split over threads.
 */
#ifndef GM_LAYERS_H
#define GM_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "granattn.h"
#include "model.h"

/* ------------------------------------------------------------------ RNG */
uint64_t gm_mix64(uint64_t x);
/* Uniform in [0, 1) (24 random bits) from (seed, stream, index). */
float gm_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* Sequential generator for initialisation. */
typedef struct gm_rng { uint64_t s; } gm_rng;
void gm_rng_seed(gm_rng *r, uint64_t seed);
double gm_rng_unit(gm_rng *r);    /* [0, 1) */
double gm_rng_normal(gm_rng *r);  /* N(0, 1), Box-Muller */

/* ------------------------------------------------------------ embedding */
/* pe [max_len][d]: pe[p][2k] = sin(p / 10000^(2k/d)), pe[p][2k+1] = cos(...). */
void gm_posenc_table(float *pe, int max_len, int d);
/* out[r] = scale * E[tok[r]] + pe[pos[r]].
 * tok, pos [R]; E [V][d]; pe [max_len][d] -> out [R][d]. */
void gm_embed_forward(float *out, const int32_t *tok, const int32_t *pos, int R,
                      int d, const float *E, float scale, const float *pe);
/* dE[tok[r]] += scale * dout[r].   dout [R][d] -> dE [V][d] (accum). */
void gm_embed_backward(float *dE, const float *dout, const int32_t *tok, int R,
                       int d, float scale);

/* ------------------------------------------------------------ layernorm */
/* out = (inp - mean) * rstd * w + b per row, rstd = 1/sqrt(var + 1e-5).
 * inp [R][C], w, b [C] -> out [R][C], mean, rstd [R] (saved for backward). */
void gm_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int R, int C);
/* dinp [R][C] (accum), dw, db [C] (accum). */
void gm_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int R, int C);

/* --------------------------------------------------------------- linear */
/* out = inp W^T + b.  inp [R][IN], W [OUT][IN], b [OUT] or NULL -> out [R][OUT]. */
void gm_linear_forward(const ga_kernels *kt, float *out, const float *inp,
                       const float *W, const float *b, int R, int IN, int OUT);
/* dinp += dout W;  dW += dout^T inp;  db += colsum(dout).
 * dinp [R][IN], dW [OUT][IN], db [OUT]; each may be NULL (not computed). */
void gm_linear_backward(const ga_kernels *kt, float *dinp, float *dW, float *db,
                        const float *dout, const float *inp, const float *W,
                        int R, int IN, int OUT);

/* ----------------------------------------------------------- activation */
/* ReLU, or GELU (tanh approximation).  inp [n] -> out [n] (may alias). */
void gm_act_forward(float *out, const float *inp, size_t n, gm_act act);
/* dinp = act'(inp) * dout (overwritten; may alias dout, but a distinct
 * dinp lets the compiler vectorise).  [n] */
void gm_act_backward(float *dinp, const float *dout, const float *inp, size_t n,
                     gm_act act);

/* -------------------------------------------------------------- dropout */
/* x[r][c] = keep ? x[r][c] / (1 - p') : 0, keep drawn with probability
 * 1 - p' (p' = p rounded to a multiple of 2^-16), a pure function of
 * (seed, stream, (row0 + r) * C + c).  The forward and the backward are the
 * same call (on the activation, then on its gradient).  p == 0: no-op.
 * x [R][C] in place; rows are consecutive global rows. */
void gm_dropout(float *x, int R, int C, float p, uint64_t seed, uint64_t stream,
                long row0);

/* ------------------------------------------------- multi-head self-attention */
/* One sequence of T tokens, H heads of dh = d / H, softmax(q k^T / sqrt(dh)) v.
 * scratch: [2][T][T] floats (forward and backward).
 * qkv [T][3d]: columns [0,d) q, [d,2d) k, [2d,3d) v, head h at h*dh of each.
 * causal: query t sees keys 0..t.
 * -> out [T][d] (head h at columns h*dh), att [H][T][T] (probabilities, saved;
 *    causal rows are 0 past t). */
void gm_mha_forward(const ga_kernels *kt, float *out, float *att, float *scratch,
                    const float *qkv, int T, int d, int H, int causal);
/* dqkv [T][3d] (overwritten), scratch [2][T][T]. */
void gm_mha_backward(const ga_kernels *kt, float *dqkv, float *scratch,
                     const float *dout, const float *qkv, const float *att,
                     int T, int d, int H, int causal);

/* ------------------------------------- GPN cross-attention (docs/SPEC.md §2-§4) */
typedef struct gm_xattn_cfg {
    int d, H, g, L;
    ga_norm mode;
    int dense;                    /* softmax attention, GPN unused */
    float theta8[GA_MAX_LEVELS];  /* ga_theta_from_tau */
    int gumbel;                   /* levels = argmax(log pi + temp * G) */
    float gumbel_temp;
    uint64_t seed, stream;        /* Gumbel noise G(t, i, l) = f(seed, stream, ((row0+t)*65536 + i)*8 + l) */
    long row0;
    /* Test hook: when non-NULL, levels [T][N] are taken from here instead
     * of the GPN's argmax (the GPN probabilities are still computed). */
    const uint8_t *forced_levels;
    /* Random baseline: when non-NULL, levels = gm_random_levels(
     * level_probs, L, layer, t, ...) for query t (= target position t) and
     * the GPN is bypassed: not evaluated, no GPN gradient, no regulariser
     * (sv->P, sv->R, sv->pi unused); stats' expected density uses
     * pi_l = level_probs[l].  forced_levels still wins (test hook). */
    const float *level_probs;     /* [L] or NULL */
    int layer;                    /* decoder layer (random levels) */
    /* Top-k baseline (GM_LEVELS_TOPK) when topk_k > 0 or topk_frac > 0:
     * each (query, head) row keeps its k largest scores (gm_topk_row), no
     * levels, the GPN is bypassed as for the random baseline (sv->P, R, pi,
     * lev unused; no GPN gradient, no regulariser).  Wins over
     * level_probs; ignored when dense. */
    int topk_k;
    float topk_frac;
} gm_xattn_cfg;

typedef struct gm_gpn_params {
    const float *U, *b1;  /* [g][d], [g]: P = U e + b1 (keys) */
    const float *W;       /* [g][d]:      r = W x     (query) */
    const float *W2, *b2; /* [L][g], [L] */
} gm_gpn_params;
typedef struct gm_gpn_grads {
    float *U, *b1, *W, *W2, *b2;
} gm_gpn_grads;

/* What the forward saves for the backward (caller-allocated; sizes from
 * gm_xattn_saved_size).  T queries, N keys of one sentence. */
typedef struct gm_xattn_saved {
    float *kh, *vh;   /* [H][N][dh] head-major K, V */
    float *S;         /* [H][T][N] scores */
    float *m, *Z;     /* [H][T] row max, the mode's Z (dense: softmax Z) */
    int32_t *count;   /* [H][T] kept keys */
    int32_t *idx;     /* [H][T][N + GA_KEEP_PAD] kept indices */
    float *p;         /* [H][T][N + GA_KEEP_PAD] kept exp(s - m); dense: a [N] */
    float *P;         /* [g][N] GPN key projection */
    float *R;         /* [T][g] GPN query projection */
    float *pi;        /* [T][L][N] GPN probabilities */
    uint8_t *lev;     /* [T][N] levels used */
} gm_xattn_saved;

/* floats (4-byte words) needed by gm_xattn_saved for (T, N), and the layout
 * helper that carves the struct out of a buffer of that many words. */
size_t gm_xattn_saved_words(const gm_xattn_cfg *c, int T, int N);
void gm_xattn_saved_carve(gm_xattn_saved *sv, const gm_xattn_cfg *c, int T, int N,
                          float *buf);
/* Scratch floats needed by gm_xattn_backward. */
size_t gm_xattn_scratch_words(const gm_xattn_cfg *c, int T, int N);

/* Per-layer statistics added by the forward (gm_stats fields). */
/* Forward.  q [T][d] (queries after Wq), kv [N][2d] (keys | values after Wkv),
 * x [T][d] (GPN query input: the layer-normed decoder state), mem [N][d]
 * (GPN key input: the encoder output) -> out [T][d] (head h at h*dh), sv.
 * Sparse: scores, threshold and sparse context are the library's fused step
 * (ga_attend_traced_theta, include/granattn.h) with the levels chosen here,
 * so a (t, h) row whose scores hold a NaN gets a NaN context (as in
 * ga_attend and the decoder).  Dense: scores, softmax, dense context per row.
 * stats (may be NULL): density, level mix, expected density added. */
void gm_xattn_forward(const ga_kernels *kt, const gm_xattn_cfg *c, int T, int N,
                      float *out, const float *q, const float *kv, const float *x,
                      const float *mem, const gm_gpn_params *gp,
                      gm_xattn_saved *sv, gm_stats *stats);
/* Backward.  dout [T][d]; out = the forward's output.
 * reg: dLoss/d(expected density of one (pair, head)), i.e. lambda / count
 *      times the loss scale (0 disables the regulariser).
 * -> dq [T][d] (overwritten), dkv [N][2d] (overwritten), dx [T][d] (accum),
 *    dmem [N][d] (accum), gg (accum); scratch [gm_xattn_scratch_words]. */
void gm_xattn_backward(const ga_kernels *kt, const gm_xattn_cfg *c, int T, int N,
                       float *dq, float *dkv, float *dx, float *dmem,
                       const float *dout, const float *out, const float *q,
                       const float *x, const float *mem, const gm_gpn_params *gp,
                       gm_gpn_grads *gg, const gm_xattn_saved *sv, float reg,
                       float *scratch);

/* ------------------------------------------- top-k baseline (topk.c) */
/* k of a row with n unpadded keys: topk_k if > 0, else round(topk_frac * n)
 * (half away from zero); at least 1, at most n; 0 when n <= 0. */
int gm_topk_count(int n, int topk_k, float topk_frac);
/* One (query, head) row: s [N] scores (-inf = padded) -> the kept indices
 * idx [count] (increasing), their p = exp(s - m) [count], m, and Z of the
 * mode (seed: over every unpadded key; renorm: over the kept ones); returns
 * count.  Ties at the k-th value: lower index kept.  N = 0 / all padded:
 * 0 with Z = 0; a NaN score or m = +inf: 0 with Z = NaN.  scratch [N].
 * Context: sparse_context(V, dh, idx, p, count, 1/Z) (topk.c has the math). */
int gm_topk_row(const float *s, int N, int topk_k, float topk_frac, ga_norm mode,
                float *m, float *Z, int32_t *idx, float *p, float *scratch);
/* Its backward: g [N] = V_i . dc (every key), cdc = c . dc -> ds [N]
 * (overwritten).  m, Z, idx, p, count: what gm_topk_row returned.
 * m NaN / +inf or Z NaN -> ds = NaN; m = -inf or Z = 0 -> ds = 0. */
void gm_topk_row_backward(const float *s, int N, float m, float Z, ga_norm mode,
                          const int32_t *idx, const float *p, int count, const float *g,
                          float cdc, float *ds);

/* ---------------------------------- tied output projection + smoothed CE */
/* For rows r < R with target y[r] (y == GM_PAD: row ignored):
 *   logits = x[r] E^T,  lp = log_softmax(logits),
 *   loss_r = -(1 - eps) lp[y] - (eps / V) sum_v lp[v].
 * Processes GM_CE_BLOCK rows at a time in `logits` scratch [GM_CE_BLOCK + 1][V].
 * stats (may be NULL): loss_sum, nll_sum, tokens, correct added.
 * If dx != NULL: with dloss_r = grad_scale,
 *   dx [R][d] += dlogits E  and  dE [V][d] += dlogits^T x  (dE may be NULL).
 * Returns the loss sum (double). */
#define GM_CE_BLOCK 256
double gm_output_ce(const ga_kernels *kt, const float *x, const int32_t *y, int R,
                    int d, const float *E, int V, float eps, float grad_scale,
                    float *dx, float *dE, float *logits, gm_stats *stats);
/* log_softmax(x E^T) for R rows -> logp [R][V] (inference); the log of the
 * normaliser as gm_output_ce forms it (Z from the table's softmax, float),
 * tmp [V] scratch.  Ep: E^T packed by the table's sgemm_pack (same result),
 * or NULL (E used). */
void gm_output_logp(const ga_kernels *kt, const float *x, int R, int d, const float *E,
                    const float *Ep, int V, float *logp, float *tmp);

#endif /* GM_LAYERS_H */
