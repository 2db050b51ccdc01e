/* model_impl.h — private to libgmodel (the files of the translation model,
 * model.h): the parameter views, the model object, the packed-batch
 * activation layout, and the functions the model's files share.  Nothing
 * outside libgmodel includes it.
 *
 * Files of libgmodel, by role:
 *   model_config.c  gm_config: defaults, checks, the kernel library's view
 *   params.c        parameter layout (views, tensor table), init, gm_create
 *   forward.c       training forward: activation plan, encoder / decoder
 *                   layers (encoder_layer_forward, decoder_layer_forward)
 *   backward.c      training backward: loss, decoder / encoder layers in
 *                   reverse (decoder_layer_backward, encoder_layer_backward)
 *   batch.c         gm_forward_backward: packing, chunks over the pool, stats
 *   inference.c     gm_memory / gm_cache / gm_encode(_batch) / gm_step_ws /
 *                   gm_decode_step
 *   decode.c        greedy / beam search over batches of sentences (decode.h)
 *   layers.c        the layers (forward / backward pairs), layers.h
 *   topk.c          the per-query top-k baseline (gpn = topk): one row and its backward
 *   error.c         gm_set_error / gm_last_error (the model's message)
 * Shapes: Rs / Rt = packed source / target rows of a chunk, d = model width.
 */
#ifndef GM_MODEL_IMPL_H
#define GM_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "layers.h"
#include "model.h"

#define GM_MAX_LAYERS 16

/* ================================================= parameter views */
/* Pointers into one parameter-sized buffer (the parameters or a gradient
 * buffer of the same layout); see gm_views_of. */
typedef struct enc_view {
    float *ln1_w, *ln1_b;     /* [d] */
    float *wqkv, *bqkv;       /* [3d][d], [3d] */
    float *wo, *bo;           /* [d][d], [d] */
    float *ln2_w, *ln2_b;     /* [d] */
    float *w1, *b1;           /* [ff][d], [ff] */
    float *w2, *b2;           /* [d][ff], [d] */
} enc_view;

typedef struct dec_view {
    float *ln1_w, *ln1_b;
    float *wqkv, *bqkv;       /* self-attention */
    float *wo, *bo;
    float *ln2_w, *ln2_b;
    float *wq, *bq;           /* cross-attention: [d][d], [d] */
    float *wkv, *bkv;         /* [2d][d], [2d] */
    float *xwo, *xbo;         /* [d][d], [d] */
    float *U, *gb1, *W, *W2, *gb2; /* GPN: [g][d], [g], [g][d], [L][g], [L] */
    float *ln3_w, *ln3_b;
    float *w1, *b1, *w2, *b2; /* FFN */
} dec_view;

typedef struct views {
    float *emb;               /* [V][d] */
    enc_view enc[GM_MAX_LAYERS];
    float *encf_w, *encf_b;   /* [d] */
    dec_view dec[GM_MAX_LAYERS];
    float *decf_w, *decf_b;   /* [d] */
} views;

/* ============================================================ model */
/* One task of gm_forward_backward (worker w of the pool runs chunk w). */
typedef struct gm_worker {
    float *grads;      /* task 0: the model's gradients; others: own buffer */
    int own;
    float *ws;         /* workspace */
    size_t ws_words;
    gm_stats stats;
    ga_status st;
} gm_worker;

struct gm_model {
    gm_config cfg;
    const ga_kernels *kt;
    ga_config acfg;
    float theta8[GA_MAX_LEVELS];
    size_t nparams;
    float *params, *grads;
    views pv, gv;
    gm_tensor_info *tab;
    int ntab;
    float *pe;         /* [max_len][d] */
    gm_worker *workers;
    int nworkers;
    const uint8_t *forced_levels; /* test hook */
};

/* 1: the GPN chooses the cross-attention levels (sparse, not the random
 * baseline), so it is evaluated, trained and regularised.  (model_config.c) */
int gm_uses_gpn(const gm_config *c);

/* Views of the parameter layout of c over base [gm_num_params].  (params.c) */
void gm_views_of(const gm_config *c, float *base, views *v);

/* ======================================================= batch plan */
/* One task's sentences: batch rows [b0, b0 + n) of the packed batch. */
typedef struct chunk {
    int n;
    const int *S, *T;          /* [n] lengths */
    const int *so, *to;        /* [n + 1] packed row offsets (local) */
    int Rs, Rt, maxS, maxT;
    const int32_t *src, *src_pos;  /* [Rs] */
    const int32_t *tin, *tout, *tgt_pos; /* [Rt] */
    long src_g0, tgt_g0;       /* global row of the first row (dropout) */
    const uint8_t *forced;     /* test hook: forced levels of this chunk's first pair, or NULL */
    size_t forced_stride;      /* levels per decoder layer in the whole batch */
} chunk;

typedef struct enc_act {
    float *x;                  /* [Rs][d] layer input */
    float *ln1, *ln1_m, *ln1_r;/* [Rs][d], [Rs], [Rs] */
    float *qkv;                /* [Rs][3d] */
    float *att;                /* sum_b [H][S_b][S_b] */
    float *ao;                 /* [Rs][d] attention output (before wo) */
    float *xm;                 /* [Rs][d] after the attention residual */
    float *ln2, *ln2_m, *ln2_r;
    float *ffh, *ffa;          /* [Rs][ff] pre / post activation */
} enc_act;

typedef struct dec_act {
    float *x;                  /* [Rt][d] layer input */
    float *ln1, *ln1_m, *ln1_r;
    float *qkv;                /* [Rt][3d] */
    float *att;                /* sum_b [H][T_b][T_b] */
    float *ao;                 /* [Rt][d] */
    float *x1;                 /* [Rt][d] after self-attention residual */
    float *h, *h_m, *h_r;      /* [Rt][d] LN2 output: cross query input and GPN x_t */
    float *q;                  /* [Rt][d] */
    float *kv;                 /* [Rs][2d] */
    float *co;                 /* [Rt][d] cross context (before wo) */
    float *xs;                 /* sum_b gm_xattn_saved_words(T_b, S_b) */
    float *x2;                 /* [Rt][d] after cross residual */
    float *ln3, *ln3_m, *ln3_r;
    float *ffh, *ffa;          /* [Rt][ff] */
} dec_act;

typedef struct acts {
    enc_act enc[GM_MAX_LAYERS];
    float *enc_out;            /* [Rs][d] input of the final encoder LN */
    float *mem, *mem_m, *mem_r;/* [Rs][d] encoder output (memory) */
    dec_act dec[GM_MAX_LAYERS];
    float *dec_out;            /* [Rt][d] input of the final decoder LN */
    float *lnf, *lnf_m, *lnf_r;/* [Rt][d] */
    size_t *att_s_off, *att_t_off, *xs_off; /* [n + 1] per-sentence offsets (words) */
    /* scratch */
    float *tmp;                /* [maxR][d] */
    float *mha_scr;            /* [2][maxL][maxL] */
    float *x_scr;              /* xattn backward scratch */
    float *logits;             /* [GM_CE_BLOCK + 1][V] */
    /* gradients (training) */
    float *dres_s, *dres_t;    /* [Rs][d], [Rt][d] residual-stream gradients */
    float *dmem;               /* [Rs][d] */
    float *dln;                /* [maxR][d] */
    float *dao;                /* [maxR][d] */
    float *dff;                /* [maxR][ff] */
    float *dqkv;               /* [maxR][3d] (also dkv [Rs][2d]) */
} acts;

/* Dropout streams: one per site; rows are global batch rows. */
enum { SITE_EMB_SRC = 1, SITE_EMB_TGT = 2, SITE_ENC = 100, SITE_DEC = 1000 };

static inline void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* The cross-attention settings of decoder layer `layer` for one sentence
 * whose first target row is the global batch row row0.  (forward.c) */
gm_xattn_cfg gm_xattn_cfg_of(const gm_model *m, int layer, int train, uint64_t seed,
                             long row0, const uint8_t *forced);

/* Carves the activations of chunk ch out of `base` (NULL: only measures).
 * The per-sentence offset arrays must already be in a (they live outside
 * the workspace).  Returns the words needed.  (forward.c) */
size_t gm_plan(const gm_model *m, const chunk *ch, int train, float *base, acts *a);

/* Embedding + encoder layers + final LN: src -> a->mem [Rs][d].  (forward.c) */
void gm_encoder_forward(const gm_model *m, const chunk *ch, acts *a, int train,
                        uint64_t seed);
/* Embedding + decoder layers + final LN: tin, a->mem -> a->lnf [Rt][d]
 * (cross-attention statistics added to st).  (forward.c) */
void gm_decoder_forward(const gm_model *m, const chunk *ch, acts *a, int train,
                        uint64_t seed, gm_stats *st);
/* Loss + backward of the whole model into the gradient views g.
 * grad_scale: dLoss/dCE_sum (1 / tokens); reg: see gm_xattn_backward.
 * (backward.c) */
void gm_model_backward(const gm_model *m, const chunk *ch, acts *a, uint64_t seed,
                       float grad_scale, float reg, const views *g, gm_stats *st);

#endif /* GM_MODEL_IMPL_H */
