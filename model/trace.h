/* trace.h — cross-attention trace of one sentence pair, for `granattn inspect`.
 *
 * The model's public API reports only aggregate decode statistics, so this
 * module recomputes one (source, target) pair teacher-forced through the
 * model's own layer functions (layers.h) and parameters (found by name with
 * gm_find_tensor), in inference mode (no dropout, no Gumbel: argmax levels),
 * and keeps, per decoder layer, every (target step, source token) level and
 * every head's final attention weight (p_i / Z if kept, 0 if dropped; the
 * softmax weights for a dense model).
 *
 * Self-check: the caller passes the target that greedy decoding with
 * gm_decode_step produced; gt_run reports at how many positions its own
 * argmax agrees with that target (all of them, unless a near-tie flips under
 * a different summation order).  A disagreement means this recomputation no
 * longer matches the model core (e.g. its layout changed) and is reported.
 *
 * To be replaced by a trace hook of the model core when it gets one.
 */
#ifndef GM_TRACE_H
#define GM_TRACE_H

#include <stdint.h>

#include "model.h"

typedef struct gt_trace {
    int S;            /* source positions (incl. eos) */
    int T;            /* target positions (bos + outputs: predicts outputs + eos) */
    int n_dec, H, L;
    uint8_t *levels;  /* [n_dec][T][S] */
    float *weights;   /* [n_dec][H][T][S] */
    int *kept;        /* [n_dec][H][T] */
    int agree;        /* positions t where argmax logp == tgt_out[t] */
} gt_trace;

/* src [S] (incl. eos), tgt_in [T] (bos y1 ..), tgt_out [T] (y1 .. eos). */
int gt_run(gm_model *m, const int32_t *src, int S, const int32_t *tgt_in,
           const int32_t *tgt_out, int T, gt_trace *tr);

/* Called once per decoder layer, right after its cross-attention, with
 * exactly what that cross-attention used and produced:
 *   Q [T][H*dh] the query projections (head h at column h*dh),
 *   K, V [H][S][dh] the layer's projections of the encoder output,
 *   levels [T][S] the levels used (GPN argmax, or the random baseline's;
 *          NULL for a dense model), no padding (bias 0),
 *   C [T][H*dh] the context (before the output projection);
 * tr->weights / tr->kept of this layer are already filled.  A nonzero
 * return stops gt_run_hook (which then returns -1; the hook sets the
 * message with gu_fail). */
typedef int (*gt_layer_hook)(void *ctx, int layer, int T, int S, const float *Q,
                             const float *K, const float *V, const uint8_t *levels,
                             const float *C, const gt_trace *tr);
/* gt_run with a per-layer hook (hook NULL: gt_run). */
int gt_run_hook(gm_model *m, const int32_t *src, int S, const int32_t *tgt_in,
                const int32_t *tgt_out, int T, gt_trace *tr, gt_layer_hook hook, void *ctx);
void gt_free(gt_trace *tr);

#endif /* GM_TRACE_H */
