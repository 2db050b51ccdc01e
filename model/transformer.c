/* transformer.c — the full translation model (model.h): parameter layout,
 * initialisation, the packed batch forward/backward split over a thread
 * pool, and the incremental encoder/decoder used for greedy/beam search.
 *
 * Batch processing (gm_forward_backward)
 *   1. Sentences are trimmed to their real lengths (S_b source, T_b target
 *      tokens) and packed: every row-wise layer (embedding, layernorm,
 *      linear, FFN, CE) runs on all rows of a worker's sentences at once
 *      (large GEMMs, no padding); attention runs per sentence.
 *   2. Sentences are split into W contiguous chunks of about equal cost
 *      (W = min(threads, sentences)); chunk w runs as task w on the pool.
 *   3. Task 0 accumulates its gradients into gm_grads, task w > 0 into a
 *      private buffer; the buffers are then added in order w = 1 .. W-1
 *      (element ranges split over the pool), so the result is a fixed
 *      function of (batch, seed, W).
 *   Dropout masks and Gumbel noise are indexed by the GLOBAL row of a token
 *   in the batch, so they do not depend on W.
 *
 * Workspace per task (floats, grown on demand): the activations of every
 * layer (enc_act / dec_act below), then scratch, then (training) the
 * gradient buffers.  Shapes: Rs / Rt = packed source / target rows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* ga_set_error */
#include "layers.h"
#include "model.h"

#define GM_MAX_LAYERS 16

/* ================================================= parameter views */

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

/* Walks the parameter layout in buffer order: assigns views into `base`
 * (when non-NULL) and records the tensor table (when non-NULL). */
typedef struct walker {
    float *base;
    size_t off;
    gm_tensor_info *tab;
    int n;
} walker;

static float *tensor(walker *w, const char *name, int rows, int cols, int decay)
{
    float *p = w->base ? w->base + w->off : NULL;
    if (w->tab) {
        gm_tensor_info *t = &w->tab[w->n];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->offset = w->off;
        t->size = (size_t)rows * cols;
        t->rows = rows;
        t->cols = cols;
        t->decay = decay;
    }
    w->n++;
    w->off += (size_t)rows * cols;
    return p;
}

static float *tensor_l(walker *w, const char *pre, int l, const char *name, int rows,
                       int cols, int decay)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s%d.%s", pre, l, name);
    return tensor(w, buf, rows, cols, decay);
}

static void walk(const gm_config *c, walker *w, views *v)
{
    int d = c->d, ff = c->ff, g = c->g, L = c->L;
    views dummy;
    if (!v)
        v = &dummy;
    v->emb = tensor(w, "emb", c->vocab, d, 0);
    for (int l = 0; l < c->n_enc; l++) {
        enc_view *e = &v->enc[l];
        e->ln1_w = tensor_l(w, "enc", l, "ln1.w", 1, d, 0);
        e->ln1_b = tensor_l(w, "enc", l, "ln1.b", 1, d, 0);
        e->wqkv = tensor_l(w, "enc", l, "attn.wqkv", 3 * d, d, 1);
        e->bqkv = tensor_l(w, "enc", l, "attn.bqkv", 1, 3 * d, 0);
        e->wo = tensor_l(w, "enc", l, "attn.wo", d, d, 1);
        e->bo = tensor_l(w, "enc", l, "attn.bo", 1, d, 0);
        e->ln2_w = tensor_l(w, "enc", l, "ln2.w", 1, d, 0);
        e->ln2_b = tensor_l(w, "enc", l, "ln2.b", 1, d, 0);
        e->w1 = tensor_l(w, "enc", l, "ffn.w1", ff, d, 1);
        e->b1 = tensor_l(w, "enc", l, "ffn.b1", 1, ff, 0);
        e->w2 = tensor_l(w, "enc", l, "ffn.w2", d, ff, 1);
        e->b2 = tensor_l(w, "enc", l, "ffn.b2", 1, d, 0);
    }
    v->encf_w = tensor(w, "enc.lnf.w", 1, d, 0);
    v->encf_b = tensor(w, "enc.lnf.b", 1, d, 0);
    for (int l = 0; l < c->n_dec; l++) {
        dec_view *e = &v->dec[l];
        e->ln1_w = tensor_l(w, "dec", l, "ln1.w", 1, d, 0);
        e->ln1_b = tensor_l(w, "dec", l, "ln1.b", 1, d, 0);
        e->wqkv = tensor_l(w, "dec", l, "self.wqkv", 3 * d, d, 1);
        e->bqkv = tensor_l(w, "dec", l, "self.bqkv", 1, 3 * d, 0);
        e->wo = tensor_l(w, "dec", l, "self.wo", d, d, 1);
        e->bo = tensor_l(w, "dec", l, "self.bo", 1, d, 0);
        e->ln2_w = tensor_l(w, "dec", l, "ln2.w", 1, d, 0);
        e->ln2_b = tensor_l(w, "dec", l, "ln2.b", 1, d, 0);
        e->wq = tensor_l(w, "dec", l, "cross.wq", d, d, 1);
        e->bq = tensor_l(w, "dec", l, "cross.bq", 1, d, 0);
        e->wkv = tensor_l(w, "dec", l, "cross.wkv", 2 * d, d, 1);
        e->bkv = tensor_l(w, "dec", l, "cross.bkv", 1, 2 * d, 0);
        e->xwo = tensor_l(w, "dec", l, "cross.wo", d, d, 1);
        e->xbo = tensor_l(w, "dec", l, "cross.bo", 1, d, 0);
        e->U = tensor_l(w, "dec", l, "gpn.U", g, d, 1);
        e->gb1 = tensor_l(w, "dec", l, "gpn.b1", 1, g, 0);
        e->W = tensor_l(w, "dec", l, "gpn.W", g, d, 1);
        e->W2 = tensor_l(w, "dec", l, "gpn.W2", L, g, 1);
        e->gb2 = tensor_l(w, "dec", l, "gpn.b2", 1, L, 0);
        e->ln3_w = tensor_l(w, "dec", l, "ln3.w", 1, d, 0);
        e->ln3_b = tensor_l(w, "dec", l, "ln3.b", 1, d, 0);
        e->w1 = tensor_l(w, "dec", l, "ffn.w1", ff, d, 1);
        e->b1 = tensor_l(w, "dec", l, "ffn.b1", 1, ff, 0);
        e->w2 = tensor_l(w, "dec", l, "ffn.w2", d, ff, 1);
        e->b2 = tensor_l(w, "dec", l, "ffn.b2", 1, d, 0);
    }
    v->decf_w = tensor(w, "dec.lnf.w", 1, d, 0);
    v->decf_b = tensor(w, "dec.lnf.b", 1, d, 0);
}

static void views_of(const gm_config *c, float *base, views *v)
{
    walker w = {base, 0, NULL, 0};
    walk(c, &w, v);
}

/* ============================================================ model */

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

void gm_config_default(gm_config *c)
{
    memset(c, 0, sizeof *c);
    c->vocab = 8000;
    c->d = 256;
    c->H = 4;
    c->ff = 1024;
    c->n_enc = 3;
    c->n_dec = 3;
    c->act = GM_ACT_RELU;
    c->g = 16;
    c->L = 3;
    c->tau[0] = 0.10f;
    c->tau[1] = 0.01f;
    c->tau[2] = 0.0f;
    c->mode = GA_NORM_SEED;
    c->dense = 0;
    c->lambda = 0.01f;
    c->dropout = 0.1f;
    c->label_smoothing = 0.1f;
    c->gumbel = 0;
    c->gumbel_temp = 1.0f;
    c->max_len = 256;
    c->level_source = GM_LEVELS_GPN;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        c->level_probs[l] = 0.0f;
}

/* 1: the GPN chooses the cross-attention levels (sparse, not the random
 * baseline), so it is evaluated, trained and regularised. */
static int uses_gpn(const gm_config *c)
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
        return ga_set_error(GA_EINVAL, "gm_config_check: NULL config");
    if (c->vocab < 4)
        return ga_set_error(GA_EINVAL, "gm config: vocab %d < 4", c->vocab);
    if (c->d < 2 || c->H < 1 || c->d % c->H != 0)
        return ga_set_error(GA_EINVAL, "gm config: d %d must be >= 2 and a multiple of H %d",
                            c->d, c->H);
    if (c->ff < 1)
        return ga_set_error(GA_EINVAL, "gm config: ff %d < 1", c->ff);
    if (c->n_enc < 0 || c->n_enc > GM_MAX_LAYERS || c->n_dec < 0 || c->n_dec > GM_MAX_LAYERS)
        return ga_set_error(GA_EINVAL, "gm config: layers (%d, %d) outside [0, %d]",
                            c->n_enc, c->n_dec, GM_MAX_LAYERS);
    if (c->act != GM_ACT_RELU && c->act != GM_ACT_GELU)
        return ga_set_error(GA_EINVAL, "gm config: unknown activation %d", (int)c->act);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return ga_set_error(GA_EINVAL, "gm config: dropout %g outside [0, 1)", c->dropout);
    if (!(c->label_smoothing >= 0.0f && c->label_smoothing < 1.0f))
        return ga_set_error(GA_EINVAL, "gm config: label_smoothing %g outside [0, 1)",
                            c->label_smoothing);
    if (!(c->lambda >= 0.0f) || !isfinite(c->lambda))
        return ga_set_error(GA_EINVAL, "gm config: lambda %g must be finite and >= 0", c->lambda);
    if (!(c->gumbel_temp >= 0.0f) || !isfinite(c->gumbel_temp))
        return ga_set_error(GA_EINVAL, "gm config: gumbel_temp %g must be finite and >= 0",
                            c->gumbel_temp);
    if (c->max_len < 1 || c->max_len > 65535)
        return ga_set_error(GA_EINVAL, "gm config: max_len %d outside [1, 65535]", c->max_len);
    if (c->level_source != GM_LEVELS_GPN && c->level_source != GM_LEVELS_RANDOM)
        return ga_set_error(GA_EINVAL, "gm config: unknown level_source %d", (int)c->level_source);
    if (c->level_source == GM_LEVELS_RANDOM) {
        if (c->dense)
            return ga_set_error(GA_EINVAL, "gm config: level_source = random contradicts dense");
        double sum = 0.0;
        for (int l = 0; l < c->L && l < GA_MAX_LEVELS; l++) {
            if (!(c->level_probs[l] >= 0.0f) || !isfinite(c->level_probs[l]))
                return ga_set_error(GA_EINVAL,
                                    "gm config: level_probs[%d] = %g must be finite and >= 0", l,
                                    c->level_probs[l]);
            sum += c->level_probs[l];
        }
        if (fabs(sum - 1.0) > 1e-4)
            return ga_set_error(GA_EINVAL,
                                "gm config: level_probs over the L = %d levels sum to %.9g, not 1",
                                c->L, sum);
    }
    ga_config a;
    gm_config_attn(c, &a);
    return ga_config_check(&a);
}

static void init_uniform(gm_rng *r, float *x, size_t n, double a)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((2.0 * gm_rng_unit(r) - 1.0) * a);
}

static void fill(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

/* Xavier-uniform for a [rows][cols] matrix made of `parts` stacked
 * [rows/parts][cols] blocks (q|k|v), each initialised as its own matrix. */
static void init_xavier(gm_rng *r, float *w, int rows, int cols, int parts)
{
    int pr = rows / parts;
    init_uniform(r, w, (size_t)rows * cols, sqrt(6.0 / (pr + cols)));
}

void gm_init_params(gm_model *m, uint64_t seed)
{
    const gm_config *c = &m->cfg;
    int d = c->d, ff = c->ff, g = c->g, L = c->L;
    views *v = &m->pv;
    gm_rng r;
    gm_rng_seed(&r, seed);
    /* embedding: N(0, 1/d), so that sqrt(d) * E has unit variance */
    for (size_t i = 0; i < (size_t)c->vocab * d; i++)
        v->emb[i] = (float)(gm_rng_normal(&r) / sqrt((double)d));
    for (int l = 0; l < c->n_enc; l++) {
        enc_view *e = &v->enc[l];
        fill(e->ln1_w, (size_t)d, 1.0f);
        fill(e->ln1_b, (size_t)d, 0.0f);
        init_xavier(&r, e->wqkv, 3 * d, d, 3);
        fill(e->bqkv, (size_t)3 * d, 0.0f);
        init_xavier(&r, e->wo, d, d, 1);
        fill(e->bo, (size_t)d, 0.0f);
        fill(e->ln2_w, (size_t)d, 1.0f);
        fill(e->ln2_b, (size_t)d, 0.0f);
        init_xavier(&r, e->w1, ff, d, 1);
        fill(e->b1, (size_t)ff, 0.0f);
        init_xavier(&r, e->w2, d, ff, 1);
        fill(e->b2, (size_t)d, 0.0f);
    }
    fill(v->encf_w, (size_t)d, 1.0f);
    fill(v->encf_b, (size_t)d, 0.0f);
    for (int l = 0; l < c->n_dec; l++) {
        dec_view *e = &v->dec[l];
        fill(e->ln1_w, (size_t)d, 1.0f);
        fill(e->ln1_b, (size_t)d, 0.0f);
        init_xavier(&r, e->wqkv, 3 * d, d, 3);
        fill(e->bqkv, (size_t)3 * d, 0.0f);
        init_xavier(&r, e->wo, d, d, 1);
        fill(e->bo, (size_t)d, 0.0f);
        fill(e->ln2_w, (size_t)d, 1.0f);
        fill(e->ln2_b, (size_t)d, 0.0f);
        init_xavier(&r, e->wq, d, d, 1);
        fill(e->bq, (size_t)d, 0.0f);
        init_xavier(&r, e->wkv, 2 * d, d, 2);
        fill(e->bkv, (size_t)2 * d, 0.0f);
        init_xavier(&r, e->xwo, d, d, 1);
        fill(e->xbo, (size_t)d, 0.0f);
        init_xavier(&r, e->U, g, d, 1);
        fill(e->gb1, (size_t)g, 0.0f);
        init_xavier(&r, e->W, g, d, 1);
        init_xavier(&r, e->W2, L, g, 1);
        /* start near the dense end: the finest level gets a head start of 1
         * logit; the regulariser then moves pairs to coarser levels */
        fill(e->gb2, (size_t)L, 0.0f);
        e->gb2[L - 1] = L > 1 ? 1.0f : 0.0f;
        fill(e->ln3_w, (size_t)d, 1.0f);
        fill(e->ln3_b, (size_t)d, 0.0f);
        init_xavier(&r, e->w1, ff, d, 1);
        fill(e->b1, (size_t)ff, 0.0f);
        init_xavier(&r, e->w2, d, ff, 1);
        fill(e->b2, (size_t)d, 0.0f);
    }
    fill(v->decf_w, (size_t)d, 1.0f);
    fill(v->decf_b, (size_t)d, 0.0f);
}

gm_model *gm_create(const gm_config *cfg, const ga_kernels *kt, uint64_t seed)
{
    if (gm_config_check(cfg) != GA_OK)
        return NULL;
    if (!kt)
        kt = ga_kernels_default();
    if (!kt)
        return NULL;
    gm_model *m = calloc(1, sizeof *m);
    if (!m) {
        ga_set_error(GA_ENOMEM, "gm_create: out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    m->kt = kt;
    gm_config_attn(cfg, &m->acfg);
    ga_theta_from_tau(&m->acfg, m->theta8);

    walker w = {NULL, 0, NULL, 0};
    walk(cfg, &w, NULL);
    m->nparams = w.off;
    m->ntab = w.n;
    m->tab = calloc((size_t)w.n, sizeof *m->tab);
    m->params = malloc(sizeof(float) * m->nparams);
    m->grads = calloc(m->nparams, sizeof(float));
    m->pe = malloc(sizeof(float) * (size_t)cfg->max_len * cfg->d);
    if (!m->tab || !m->params || !m->grads || !m->pe) {
        gm_free(m);
        ga_set_error(GA_ENOMEM, "gm_create: out of memory (%zu parameters)", w.off);
        return NULL;
    }
    walker w2 = {m->params, 0, m->tab, 0};
    walk(cfg, &w2, &m->pv);
    views_of(cfg, m->grads, &m->gv);
    gm_posenc_table(m->pe, cfg->max_len, cfg->d);
    gm_init_params(m, seed);
    return m;
}

void gm_free(gm_model *m)
{
    if (!m)
        return;
    for (int w = 0; w < m->nworkers; w++) {
        if (m->workers[w].own)
            free(m->workers[w].grads);
        free(m->workers[w].ws);
    }
    free(m->workers);
    free(m->tab);
    free(m->params);
    free(m->grads);
    free(m->pe);
    free(m);
}

const gm_config *gm_get_config(const gm_model *m) { return &m->cfg; }
const ga_kernels *gm_get_kernels(const gm_model *m) { return m->kt; }
size_t gm_num_params(const gm_model *m) { return m->nparams; }
float *gm_params(gm_model *m) { return m->params; }
float *gm_grads(gm_model *m) { return m->grads; }
void gm_zero_grads(gm_model *m) { memset(m->grads, 0, sizeof(float) * m->nparams); }
int gm_num_tensors(const gm_model *m) { return m->ntab; }

const gm_tensor_info *gm_tensor(const gm_model *m, int i)
{
    return i >= 0 && i < m->ntab ? &m->tab[i] : NULL;
}

int gm_find_tensor(const gm_model *m, const char *name)
{
    for (int i = 0; i < m->ntab; i++)
        if (strcmp(m->tab[i].name, name) == 0)
            return i;
    return -1;
}

void gm_debug_force_levels(gm_model *m, const uint8_t *levels) { m->forced_levels = levels; }

double gm_stats_objective(const gm_model *m, const gm_stats *s)
{
    double v = s->tokens > 0 ? s->loss_sum / (double)s->tokens : 0.0;
    if (uses_gpn(&m->cfg) && m->cfg.lambda > 0.0f && s->exp_density_count > 0.0)
        v += m->cfg.lambda * s->exp_density_sum / s->exp_density_count;
    return v;
}

ga_status gm_set_training(gm_model *m, float lambda, float dropout, float label_smoothing,
                          int gumbel, float gumbel_temp)
{
    gm_config c = m->cfg;
    c.lambda = lambda;
    c.dropout = dropout;
    c.label_smoothing = label_smoothing;
    c.gumbel = gumbel;
    c.gumbel_temp = gumbel_temp;
    ga_status st = gm_config_check(&c);
    if (st == GA_OK)
        m->cfg = c;
    return st;
}

void gm_stats_zero(gm_stats *s) { memset(s, 0, sizeof *s); }

void gm_stats_add(gm_stats *a, const gm_stats *b)
{
    a->loss_sum += b->loss_sum;
    a->nll_sum += b->nll_sum;
    a->tokens += b->tokens;
    a->correct += b->correct;
    a->density_sum += b->density_sum;
    a->density_count += b->density_count;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        a->level_count[l] += b->level_count[l];
    a->pairs += b->pairs;
    a->exp_density_sum += b->exp_density_sum;
    a->exp_density_count += b->exp_density_count;
}

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

static size_t al16(size_t n) { return (n + 15) & ~(size_t)15; }

static float *take(float *base, size_t *off, size_t n)
{
    float *p = base ? base + *off : NULL;
    *off += al16(n);
    return p;
}

static gm_xattn_cfg xattn_cfg(const gm_model *m, int layer, int train, uint64_t seed,
                              long row0, const uint8_t *forced)
{
    const gm_config *c = &m->cfg;
    gm_xattn_cfg x;
    memset(&x, 0, sizeof x);
    x.d = c->d;
    x.H = c->H;
    x.g = c->g;
    x.L = c->L;
    x.mode = c->mode;
    x.dense = c->dense;
    memcpy(x.theta8, m->theta8, sizeof x.theta8);
    x.gumbel = train && c->gumbel;
    x.gumbel_temp = c->gumbel_temp;
    x.seed = seed;
    x.stream = 5000u + (uint64_t)layer;
    x.row0 = row0;
    x.forced_levels = forced;
    x.level_probs = c->level_source == GM_LEVELS_RANDOM ? c->level_probs : NULL;
    x.layer = layer;
    return x;
}

/* Carves the activations of chunk ch out of `base` (NULL: only measures).
 * The per-sentence offset arrays must already be in a (they live outside
 * the workspace).  Returns the words needed. */
static size_t plan(const gm_model *m, const chunk *ch, int train, float *base, acts *a)
{
    const gm_config *c = &m->cfg;
    size_t d = (size_t)c->d, ff = (size_t)c->ff, H = (size_t)c->H;
    size_t Rs = (size_t)ch->Rs, Rt = (size_t)ch->Rt;
    size_t maxR = Rs > Rt ? Rs : Rt;
    size_t maxL = (size_t)(ch->maxS > ch->maxT ? ch->maxS : ch->maxT);
    size_t off = 0;

    /* per-sentence offsets (relative to each layer's region) */
    size_t att_s = 0, att_t = 0, xs = 0, xscr = 0;
    gm_xattn_cfg xc = xattn_cfg(m, 0, 0, 0, 0, NULL);
    for (int k = 0; k < ch->n; k++) {
        a->att_s_off[k] = att_s;
        a->att_t_off[k] = att_t;
        a->xs_off[k] = xs;
        att_s += H * ch->S[k] * ch->S[k];
        att_t += H * ch->T[k] * ch->T[k];
        xs += gm_xattn_saved_words(&xc, ch->T[k], ch->S[k]);
        size_t sw = gm_xattn_scratch_words(&xc, ch->T[k], ch->S[k]);
        xscr = sw > xscr ? sw : xscr;
    }
    a->att_s_off[ch->n] = att_s;
    a->att_t_off[ch->n] = att_t;
    a->xs_off[ch->n] = xs;

    for (int l = 0; l < c->n_enc; l++) {
        enc_act *e = &a->enc[l];
        e->x = take(base, &off, Rs * d);
        e->ln1 = take(base, &off, Rs * d);
        e->ln1_m = take(base, &off, Rs);
        e->ln1_r = take(base, &off, Rs);
        e->qkv = take(base, &off, Rs * 3 * d);
        e->att = take(base, &off, att_s);
        e->ao = take(base, &off, Rs * d);
        e->xm = take(base, &off, Rs * d);
        e->ln2 = take(base, &off, Rs * d);
        e->ln2_m = take(base, &off, Rs);
        e->ln2_r = take(base, &off, Rs);
        e->ffh = take(base, &off, Rs * ff);
        e->ffa = take(base, &off, Rs * ff);
    }
    a->enc_out = take(base, &off, Rs * d);
    a->mem = take(base, &off, Rs * d);
    a->mem_m = take(base, &off, Rs);
    a->mem_r = take(base, &off, Rs);
    for (int l = 0; l < c->n_dec; l++) {
        dec_act *e = &a->dec[l];
        e->x = take(base, &off, Rt * d);
        e->ln1 = take(base, &off, Rt * d);
        e->ln1_m = take(base, &off, Rt);
        e->ln1_r = take(base, &off, Rt);
        e->qkv = take(base, &off, Rt * 3 * d);
        e->att = take(base, &off, att_t);
        e->ao = take(base, &off, Rt * d);
        e->x1 = take(base, &off, Rt * d);
        e->h = take(base, &off, Rt * d);
        e->h_m = take(base, &off, Rt);
        e->h_r = take(base, &off, Rt);
        e->q = take(base, &off, Rt * d);
        e->kv = take(base, &off, Rs * 2 * d);
        e->co = take(base, &off, Rt * d);
        e->xs = take(base, &off, xs);
        e->x2 = take(base, &off, Rt * d);
        e->ln3 = take(base, &off, Rt * d);
        e->ln3_m = take(base, &off, Rt);
        e->ln3_r = take(base, &off, Rt);
        e->ffh = take(base, &off, Rt * ff);
        e->ffa = take(base, &off, Rt * ff);
    }
    a->dec_out = take(base, &off, Rt * d);
    a->lnf = take(base, &off, Rt * d);
    a->lnf_m = take(base, &off, Rt);
    a->lnf_r = take(base, &off, Rt);
    a->tmp = take(base, &off, maxR * d);
    a->mha_scr = take(base, &off, 2 * maxL * maxL);
    a->logits = take(base, &off, Rt > 0 ? (size_t)(GM_CE_BLOCK + 1) * c->vocab : 0);
    if (train) {
        a->x_scr = take(base, &off, xscr);
        a->dres_s = take(base, &off, Rs * d);
        a->dres_t = take(base, &off, Rt * d);
        a->dmem = take(base, &off, Rs * d);
        a->dln = take(base, &off, maxR * d);
        a->dao = take(base, &off, maxR * d);
        a->dff = take(base, &off, maxR * ff);
        a->dqkv = take(base, &off, maxR * 3 * d);
    }
    return off;
}

/* Dropout streams: one per site; rows are global batch rows. */
enum { SITE_EMB_SRC = 1, SITE_EMB_TGT = 2, SITE_ENC = 100, SITE_DEC = 1000 };

static void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* --------------------------------------------------------- forward */

static void encoder_forward(const gm_model *m, const chunk *ch, acts *a, int train,
                            uint64_t seed)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const views *v = &m->pv;
    int d = c->d, ff = c->ff, H = c->H, Rs = ch->Rs;
    float p = train ? c->dropout : 0.0f;
    float *x0 = c->n_enc > 0 ? a->enc[0].x : a->enc_out;

    gm_embed_forward(x0, ch->src, ch->src_pos, Rs, d, v->emb, sqrtf((float)d), m->pe);
    gm_dropout(x0, Rs, d, p, seed, SITE_EMB_SRC, ch->src_g0);
    for (int l = 0; l < c->n_enc; l++) {
        const enc_view *w = &v->enc[l];
        enc_act *e = &a->enc[l];
        float *xout = l + 1 < c->n_enc ? a->enc[l + 1].x : a->enc_out;
        /* self-attention sub-layer */
        gm_layernorm_forward(e->ln1, e->ln1_m, e->ln1_r, e->x, w->ln1_w, w->ln1_b, Rs, d);
        gm_linear_forward(kt, e->qkv, e->ln1, w->wqkv, w->bqkv, Rs, d, 3 * d);
        for (int k = 0; k < ch->n; k++)
            gm_mha_forward(kt, e->ao + (size_t)ch->so[k] * d, e->att + a->att_s_off[k],
                           a->mha_scr, e->qkv + (size_t)ch->so[k] * 3 * d, ch->S[k], d, H, 0);
        gm_linear_forward(kt, a->tmp, e->ao, w->wo, w->bo, Rs, d, d);
        gm_dropout(a->tmp, Rs, d, p, seed, SITE_ENC + 4u * l, ch->src_g0);
        memcpy(e->xm, e->x, sizeof(float) * (size_t)Rs * d);
        add_rows(e->xm, a->tmp, (size_t)Rs * d);
        /* FFN sub-layer */
        gm_layernorm_forward(e->ln2, e->ln2_m, e->ln2_r, e->xm, w->ln2_w, w->ln2_b, Rs, d);
        gm_linear_forward(kt, e->ffh, e->ln2, w->w1, w->b1, Rs, d, ff);
        gm_act_forward(e->ffa, e->ffh, (size_t)Rs * ff, c->act);
        gm_linear_forward(kt, a->tmp, e->ffa, w->w2, w->b2, Rs, ff, d);
        gm_dropout(a->tmp, Rs, d, p, seed, SITE_ENC + 4u * l + 1, ch->src_g0);
        memcpy(xout, e->xm, sizeof(float) * (size_t)Rs * d);
        add_rows(xout, a->tmp, (size_t)Rs * d);
    }
    gm_layernorm_forward(a->mem, a->mem_m, a->mem_r, a->enc_out, v->encf_w, v->encf_b, Rs, d);
}

/* Forward of the decoder and the loss (+ backward of the loss into dres_t
 * when train: dlnf written into a->dln). */
static void decoder_forward(const gm_model *m, const chunk *ch, acts *a, int train,
                            uint64_t seed, gm_stats *st)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const views *v = &m->pv;
    int d = c->d, ff = c->ff, H = c->H, Rt = ch->Rt, Rs = ch->Rs;
    float p = train ? c->dropout : 0.0f;
    float *x0 = c->n_dec > 0 ? a->dec[0].x : a->dec_out;

    gm_embed_forward(x0, ch->tin, ch->tgt_pos, Rt, d, v->emb, sqrtf((float)d), m->pe);
    gm_dropout(x0, Rt, d, p, seed, SITE_EMB_TGT, ch->tgt_g0);
    for (int l = 0; l < c->n_dec; l++) {
        const dec_view *w = &v->dec[l];
        dec_act *e = &a->dec[l];
        float *xout = l + 1 < c->n_dec ? a->dec[l + 1].x : a->dec_out;
        /* causal self-attention */
        gm_layernorm_forward(e->ln1, e->ln1_m, e->ln1_r, e->x, w->ln1_w, w->ln1_b, Rt, d);
        gm_linear_forward(kt, e->qkv, e->ln1, w->wqkv, w->bqkv, Rt, d, 3 * d);
        for (int k = 0; k < ch->n; k++)
            gm_mha_forward(kt, e->ao + (size_t)ch->to[k] * d, e->att + a->att_t_off[k],
                           a->mha_scr, e->qkv + (size_t)ch->to[k] * 3 * d, ch->T[k], d, H, 1);
        gm_linear_forward(kt, a->tmp, e->ao, w->wo, w->bo, Rt, d, d);
        gm_dropout(a->tmp, Rt, d, p, seed, SITE_DEC + 4u * l, ch->tgt_g0);
        memcpy(e->x1, e->x, sizeof(float) * (size_t)Rt * d);
        add_rows(e->x1, a->tmp, (size_t)Rt * d);
        /* GPN cross-attention */
        gm_layernorm_forward(e->h, e->h_m, e->h_r, e->x1, w->ln2_w, w->ln2_b, Rt, d);
        gm_linear_forward(kt, e->q, e->h, w->wq, w->bq, Rt, d, d);
        gm_linear_forward(kt, e->kv, a->mem, w->wkv, w->bkv, Rs, d, 2 * d);
        gm_gpn_params gp = {w->U, w->gb1, w->W, w->W2, w->gb2};
        for (int k = 0; k < ch->n; k++) {
            int T = ch->T[k], N = ch->S[k];
            const uint8_t *forced = NULL;
            if (ch->forced) {
                size_t before = 0;
                for (int j = 0; j < k; j++)
                    before += (size_t)ch->T[j] * ch->S[j];
                forced = ch->forced + (size_t)l * ch->forced_stride + before;
            }
            gm_xattn_cfg xc = xattn_cfg(m, l, train, seed, ch->tgt_g0 + ch->to[k], forced);
            gm_xattn_saved sv;
            gm_xattn_saved_carve(&sv, &xc, T, N, e->xs + a->xs_off[k]);
            gm_xattn_forward(kt, &xc, T, N, e->co + (size_t)ch->to[k] * d,
                             e->q + (size_t)ch->to[k] * d, e->kv + (size_t)ch->so[k] * 2 * d,
                             e->h + (size_t)ch->to[k] * d, a->mem + (size_t)ch->so[k] * d, &gp,
                             &sv, st);
        }
        gm_linear_forward(kt, a->tmp, e->co, w->xwo, w->xbo, Rt, d, d);
        gm_dropout(a->tmp, Rt, d, p, seed, SITE_DEC + 4u * l + 1, ch->tgt_g0);
        memcpy(e->x2, e->x1, sizeof(float) * (size_t)Rt * d);
        add_rows(e->x2, a->tmp, (size_t)Rt * d);
        /* FFN */
        gm_layernorm_forward(e->ln3, e->ln3_m, e->ln3_r, e->x2, w->ln3_w, w->ln3_b, Rt, d);
        gm_linear_forward(kt, e->ffh, e->ln3, w->w1, w->b1, Rt, d, ff);
        gm_act_forward(e->ffa, e->ffh, (size_t)Rt * ff, c->act);
        gm_linear_forward(kt, a->tmp, e->ffa, w->w2, w->b2, Rt, ff, d);
        gm_dropout(a->tmp, Rt, d, p, seed, SITE_DEC + 4u * l + 2, ch->tgt_g0);
        memcpy(xout, e->x2, sizeof(float) * (size_t)Rt * d);
        add_rows(xout, a->tmp, (size_t)Rt * d);
    }
    gm_layernorm_forward(a->lnf, a->lnf_m, a->lnf_r, a->dec_out, v->decf_w, v->decf_b, Rt, d);
}

/* -------------------------------------------------------- backward */

/* grad_scale: dLoss/dCE_sum (1 / tokens); reg: see gm_xattn_backward. */
static void model_backward(const gm_model *m, const chunk *ch, acts *a, uint64_t seed,
                           float grad_scale, float reg, const views *g, gm_stats *st)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const views *v = &m->pv;
    int d = c->d, ff = c->ff, H = c->H, Rt = ch->Rt, Rs = ch->Rs;
    float p = c->dropout;
    size_t nt = (size_t)Rt * d, ns = (size_t)Rs * d;

    /* loss -> dlnf (in dln) -> dres_t */
    memset(a->dln, 0, sizeof(float) * nt);
    gm_output_ce(kt, a->lnf, ch->tout, Rt, d, v->emb, c->vocab, c->label_smoothing,
                 grad_scale, a->dln, g->emb, a->logits, st);
    memset(a->dres_t, 0, sizeof(float) * nt);
    gm_layernorm_backward(a->dres_t, g->decf_w, g->decf_b, a->dln, a->dec_out, v->decf_w,
                          a->lnf_m, a->lnf_r, Rt, d);
    memset(a->dmem, 0, sizeof(float) * ns);

    for (int l = c->n_dec - 1; l >= 0; l--) {
        const dec_view *w = &v->dec[l];
        const dec_view *gw = &g->dec[l];
        dec_act *e = &a->dec[l];
        /* FFN: xout = x2 + drop(ffa w2^T + b2) */
        memcpy(a->tmp, a->dres_t, sizeof(float) * nt);
        gm_dropout(a->tmp, Rt, d, p, seed, SITE_DEC + 4u * l + 2, ch->tgt_g0);
        memset(a->dff, 0, sizeof(float) * (size_t)Rt * ff);
        gm_linear_backward(kt, a->dff, gw->w2, gw->b2, a->tmp, e->ffa, w->w2, Rt, ff, d);
        /* e->ffa is dead once dw2 is done: it receives d(ffh) */
        gm_act_backward(e->ffa, a->dff, e->ffh, (size_t)Rt * ff, c->act);
        memset(a->dln, 0, sizeof(float) * nt);
        gm_linear_backward(kt, a->dln, gw->w1, gw->b1, e->ffa, e->ln3, w->w1, Rt, d, ff);
        gm_layernorm_backward(a->dres_t, gw->ln3_w, gw->ln3_b, a->dln, e->x2, w->ln3_w,
                              e->ln3_m, e->ln3_r, Rt, d);
        /* cross-attention: x2 = x1 + drop(co xwo^T + xbo) */
        memcpy(a->tmp, a->dres_t, sizeof(float) * nt);
        gm_dropout(a->tmp, Rt, d, p, seed, SITE_DEC + 4u * l + 1, ch->tgt_g0);
        memset(a->dao, 0, sizeof(float) * nt);
        gm_linear_backward(kt, a->dao, gw->xwo, gw->xbo, a->tmp, e->co, w->xwo, Rt, d, d);
        memset(a->dln, 0, sizeof(float) * nt);
        gm_gpn_params gp = {w->U, w->gb1, w->W, w->W2, w->gb2};
        gm_gpn_grads gg = {gw->U, gw->gb1, gw->W, gw->W2, gw->gb2};
        float *dq = a->tmp, *dkv = a->dqkv;
        for (int k = 0; k < ch->n; k++) {
            int T = ch->T[k], N = ch->S[k];
            gm_xattn_cfg xc = xattn_cfg(m, l, 1, seed, ch->tgt_g0 + ch->to[k], NULL);
            gm_xattn_saved sv;
            gm_xattn_saved_carve(&sv, &xc, T, N, e->xs + a->xs_off[k]);
            size_t ro = (size_t)ch->to[k] * d, so = (size_t)ch->so[k];
            gm_xattn_backward(kt, &xc, T, N, dq + ro, dkv + so * 2 * d, a->dln + ro,
                              a->dmem + so * d, a->dao + ro, e->co + ro, e->q + ro, e->h + ro,
                              a->mem + so * d, &gp, &gg, &sv, reg, a->x_scr);
        }
        gm_linear_backward(kt, a->dln, gw->wq, gw->bq, dq, e->h, w->wq, Rt, d, d);
        gm_linear_backward(kt, a->dmem, gw->wkv, gw->bkv, dkv, a->mem, w->wkv, Rs, d, 2 * d);
        gm_layernorm_backward(a->dres_t, gw->ln2_w, gw->ln2_b, a->dln, e->x1, w->ln2_w,
                              e->h_m, e->h_r, Rt, d);
        /* self-attention: x1 = x + drop(ao wo^T + bo) */
        memcpy(a->tmp, a->dres_t, sizeof(float) * nt);
        gm_dropout(a->tmp, Rt, d, p, seed, SITE_DEC + 4u * l, ch->tgt_g0);
        memset(a->dao, 0, sizeof(float) * nt);
        gm_linear_backward(kt, a->dao, gw->wo, gw->bo, a->tmp, e->ao, w->wo, Rt, d, d);
        for (int k = 0; k < ch->n; k++)
            gm_mha_backward(kt, a->dqkv + (size_t)ch->to[k] * 3 * d, a->mha_scr,
                            a->dao + (size_t)ch->to[k] * d, e->qkv + (size_t)ch->to[k] * 3 * d,
                            e->att + a->att_t_off[k], ch->T[k], d, H, 1);
        memset(a->dln, 0, sizeof(float) * nt);
        gm_linear_backward(kt, a->dln, gw->wqkv, gw->bqkv, a->dqkv, e->ln1, w->wqkv, Rt, d,
                           3 * d);
        gm_layernorm_backward(a->dres_t, gw->ln1_w, gw->ln1_b, a->dln, e->x, w->ln1_w,
                              e->ln1_m, e->ln1_r, Rt, d);
    }
    gm_dropout(a->dres_t, Rt, d, p, seed, SITE_EMB_TGT, ch->tgt_g0);
    gm_embed_backward(g->emb, a->dres_t, ch->tin, Rt, d, sqrtf((float)d));

    /* encoder */
    memset(a->dres_s, 0, sizeof(float) * ns);
    gm_layernorm_backward(a->dres_s, g->encf_w, g->encf_b, a->dmem, a->enc_out, v->encf_w,
                          a->mem_m, a->mem_r, Rs, d);
    for (int l = c->n_enc - 1; l >= 0; l--) {
        const enc_view *w = &v->enc[l];
        const enc_view *gw = &g->enc[l];
        enc_act *e = &a->enc[l];
        memcpy(a->tmp, a->dres_s, sizeof(float) * ns);
        gm_dropout(a->tmp, Rs, d, p, seed, SITE_ENC + 4u * l + 1, ch->src_g0);
        memset(a->dff, 0, sizeof(float) * (size_t)Rs * ff);
        gm_linear_backward(kt, a->dff, gw->w2, gw->b2, a->tmp, e->ffa, w->w2, Rs, ff, d);
        /* e->ffa is dead once dw2 is done: it receives d(ffh) */
        gm_act_backward(e->ffa, a->dff, e->ffh, (size_t)Rs * ff, c->act);
        memset(a->dln, 0, sizeof(float) * ns);
        gm_linear_backward(kt, a->dln, gw->w1, gw->b1, e->ffa, e->ln2, w->w1, Rs, d, ff);
        gm_layernorm_backward(a->dres_s, gw->ln2_w, gw->ln2_b, a->dln, e->xm, w->ln2_w,
                              e->ln2_m, e->ln2_r, Rs, d);
        memcpy(a->tmp, a->dres_s, sizeof(float) * ns);
        gm_dropout(a->tmp, Rs, d, p, seed, SITE_ENC + 4u * l, ch->src_g0);
        memset(a->dao, 0, sizeof(float) * ns);
        gm_linear_backward(kt, a->dao, gw->wo, gw->bo, a->tmp, e->ao, w->wo, Rs, d, d);
        for (int k = 0; k < ch->n; k++)
            gm_mha_backward(kt, a->dqkv + (size_t)ch->so[k] * 3 * d, a->mha_scr,
                            a->dao + (size_t)ch->so[k] * d, e->qkv + (size_t)ch->so[k] * 3 * d,
                            e->att + a->att_s_off[k], ch->S[k], d, H, 0);
        memset(a->dln, 0, sizeof(float) * ns);
        gm_linear_backward(kt, a->dln, gw->wqkv, gw->bqkv, a->dqkv, e->ln1, w->wqkv, Rs, d,
                           3 * d);
        gm_layernorm_backward(a->dres_s, gw->ln1_w, gw->ln1_b, a->dln, e->x, w->ln1_w,
                              e->ln1_m, e->ln1_r, Rs, d);
    }
    gm_dropout(a->dres_s, Rs, d, p, seed, SITE_EMB_SRC, ch->src_g0);
    gm_embed_backward(g->emb, a->dres_s, ch->src, Rs, d, sqrtf((float)d));
}

/* ====================================================== batch driver */

typedef struct job {
    gm_model *m;
    int train;
    uint64_t seed;
    float grad_scale, reg;
    int W;
    chunk *ch;           /* [W] */
    /* reduction */
    int nred;
} job;

static ga_status ensure_ws(gm_worker *wk, size_t words)
{
    if (wk->ws_words >= words)
        return GA_OK;
    free(wk->ws);
    /* grow by 25% beyond the need, to avoid reallocating every batch */
    size_t n = words + words / 4;
    wk->ws = malloc(sizeof(float) * n);
    wk->ws_words = wk->ws ? n : 0;
    return wk->ws ? GA_OK : GA_ENOMEM;
}

static void chunk_task(void *arg, int task, int worker)
{
    (void)worker;
    job *jb = arg;
    gm_model *m = jb->m;
    gm_worker *wk = &m->workers[task];
    const chunk *ch = &jb->ch[task];
    size_t nk = (size_t)ch->n + 1;
    size_t offs[3 * 64];
    size_t *offbuf = nk <= 64 ? offs : malloc(sizeof(size_t) * 3 * nk);
    wk->st = GA_OK;
    gm_stats_zero(&wk->stats);
    if (!offbuf) {
        wk->st = GA_ENOMEM;
        return;
    }
    acts a;
    memset(&a, 0, sizeof a);
    a.att_s_off = offbuf;
    a.att_t_off = offbuf + nk;
    a.xs_off = offbuf + 2 * nk;
    size_t words = plan(m, ch, jb->train, NULL, &a);
    if (ensure_ws(wk, words) != GA_OK) {
        wk->st = GA_ENOMEM;
        goto out;
    }
    plan(m, ch, jb->train, wk->ws, &a);
    if (jb->train && wk->own)
        memset(wk->grads, 0, sizeof(float) * m->nparams);

    encoder_forward(m, ch, &a, jb->train, jb->seed);
    decoder_forward(m, ch, &a, jb->train, jb->seed, &wk->stats);
    if (jb->train) {
        views g;
        views_of(&m->cfg, wk->grads, &g);
        model_backward(m, ch, &a, jb->seed, jb->grad_scale, jb->reg, &g, &wk->stats);
    } else {
        gm_output_ce(m->kt, a.lnf, ch->tout, ch->Rt, m->cfg.d, m->pv.emb, m->cfg.vocab,
                     m->cfg.label_smoothing, 0.0f, NULL, NULL, a.logits, &wk->stats);
    }
out:
    if (offbuf != offs)
        free(offbuf);
}

static void reduce_task(void *arg, int task, int worker)
{
    (void)worker;
    job *jb = arg;
    gm_model *m = jb->m;
    size_t n = m->nparams, per = (n + (size_t)jb->nred - 1) / (size_t)jb->nred;
    size_t lo = (size_t)task * per, hi = lo + per < n ? lo + per : n;
    for (int w = 1; w < jb->W; w++) {
        const float *src = m->workers[w].grads;
        for (size_t i = lo; i < hi; i++)
            m->grads[i] += src[i];
    }
}

static ga_status ensure_workers(gm_model *m, int W, int train)
{
    if (W > m->nworkers) {
        gm_worker *nw = realloc(m->workers, sizeof *nw * (size_t)W);
        if (!nw)
            return ga_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
        memset(nw + m->nworkers, 0, sizeof *nw * (size_t)(W - m->nworkers));
        m->workers = nw;
        m->nworkers = W;
    }
    m->workers[0].grads = m->grads;
    m->workers[0].own = 0;
    if (train)
        for (int w = 1; w < W; w++)
            if (!m->workers[w].grads) {
                m->workers[w].grads = malloc(sizeof(float) * m->nparams);
                if (!m->workers[w].grads)
                    return ga_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
                m->workers[w].own = 1;
            }
    return GA_OK;
}

ga_status gm_forward_backward(gm_model *m, const gm_batch *b, int train, uint64_t step_seed,
                              ga_pool *pool, gm_stats *stats)
{
    const gm_config *c = &m->cfg;
    if (!b || b->B < 0 || b->S < 0 || b->T < 0 || (b->B > 0 && (!b->src || !b->tgt_in || !b->tgt_out)))
        return ga_set_error(GA_EINVAL, "gm_forward_backward: invalid batch");

    /* lengths and validation */
    int B = b->B;
    int *len = malloc(sizeof(int) * (size_t)(4 * B + 2));
    if (!len)
        return ga_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
    int *Sl = len, *Tl = len + B, *so = len + 2 * B, *to = len + 3 * B + 1;
    int nb = 0; /* sentences kept (T_b > 0), compacted to the front */
    long Rs = 0, Rt = 0;
    double pairs = 0.0;
    ga_status st = GA_OK;
    int *keep_idx = malloc(sizeof(int) * (size_t)(B > 0 ? B : 1));
    if (!keep_idx) {
        free(len);
        return ga_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
    }
    for (int i = 0; i < B && st == GA_OK; i++) {
        const int32_t *s = b->src + (size_t)i * b->S, *ti = b->tgt_in + (size_t)i * b->T,
                      *to_ = b->tgt_out + (size_t)i * b->T;
        int S = 0, T = 0;
        while (S < b->S && s[S] != GM_PAD)
            S++;
        while (T < b->T && to_[T] != GM_PAD)
            T++;
        if (T == 0)
            continue;
        if (S == 0)
            st = ga_set_error(GA_EINVAL, "gm_forward_backward: sentence %d has an empty source", i);
        else if (S > c->max_len || T > c->max_len)
            st = ga_set_error(GA_EINVAL, "gm_forward_backward: sentence %d longer than max_len %d",
                              i, c->max_len);
        for (int k = 0; k < S && st == GA_OK; k++)
            if (s[k] < 0 || s[k] >= c->vocab)
                st = ga_set_error(GA_EINVAL, "gm_forward_backward: src id %d out of range", s[k]);
        for (int k = 0; k < T && st == GA_OK; k++)
            if (ti[k] < 0 || ti[k] >= c->vocab || to_[k] < 0 || to_[k] >= c->vocab)
                st = ga_set_error(GA_EINVAL, "gm_forward_backward: tgt id out of range (row %d)", i);
        keep_idx[nb] = i;
        Sl[nb] = S;
        Tl[nb] = T;
        nb++;
        Rs += S;
        Rt += T;
        pairs += (double)S * T;
    }
    if (st != GA_OK || nb == 0) {
        free(len);
        free(keep_idx);
        return st;
    }

    /* packed token arrays and global row offsets */
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(2 * Rs + 3 * Rt));
    if (!tok) {
        free(len);
        free(keep_idx);
        return ga_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
    }
    int32_t *src = tok, *src_pos = tok + Rs, *tin = tok + 2 * Rs, *tout = tin + Rt,
            *tpos = tout + Rt;
    so[0] = 0;
    to[0] = 0;
    for (int k = 0; k < nb; k++) {
        int i = keep_idx[k];
        so[k + 1] = so[k] + Sl[k];
        to[k + 1] = to[k] + Tl[k];
        for (int j = 0; j < Sl[k]; j++) {
            src[so[k] + j] = b->src[(size_t)i * b->S + j];
            src_pos[so[k] + j] = j;
        }
        for (int j = 0; j < Tl[k]; j++) {
            tin[to[k] + j] = b->tgt_in[(size_t)i * b->T + j];
            tout[to[k] + j] = b->tgt_out[(size_t)i * b->T + j];
            tpos[to[k] + j] = j;
        }
    }

    /* chunks: W contiguous groups of about equal cost (rows) */
    int threads = pool ? ga_pool_threads(pool) : 1;
    int W = threads < nb ? threads : nb;
    chunk *ch = calloc((size_t)W, sizeof *ch);
    int *local = malloc(sizeof(int) * (size_t)(2 * (nb + W)));
    job jb;
    memset(&jb, 0, sizeof jb);
    if (!ch || !local) {
        st = ga_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
        goto done;
    }
    st = ensure_workers(m, W, train);
    if (st != GA_OK)
        goto done;
    {
        double total = (double)(Rs + Rt);
        int k = 0, lo_off = 0;
        for (int w = 0; w < W; w++) {
            int k0 = k;
            double target = total * (w + 1) / W;
            /* leave at least one sentence for each later chunk */
            while (k < nb - (W - 1 - w) &&
                   (k == k0 || (double)(so[k] + to[k]) + 0.5 * (Sl[k] + Tl[k]) < target))
                k++;
            if (w == W - 1)
                k = nb;
            chunk *q = &ch[w];
            q->n = k - k0;
            q->S = Sl + k0;
            q->T = Tl + k0;
            int *qso = local + lo_off, *qto = local + lo_off + q->n + 1;
            lo_off += 2 * (q->n + 1);
            for (int j = 0; j <= q->n; j++) {
                qso[j] = so[k0 + j] - so[k0];
                qto[j] = to[k0 + j] - to[k0];
            }
            q->so = qso;
            q->to = qto;
            q->Rs = qso[q->n];
            q->Rt = qto[q->n];
            q->maxS = q->maxT = 0;
            for (int j = 0; j < q->n; j++) {
                q->maxS = q->S[j] > q->maxS ? q->S[j] : q->maxS;
                q->maxT = q->T[j] > q->maxT ? q->T[j] : q->maxT;
            }
            q->src = src + so[k0];
            q->src_pos = src_pos + so[k0];
            q->tin = tin + to[k0];
            q->tout = tout + to[k0];
            q->tgt_pos = tpos + to[k0];
            q->src_g0 = so[k0];
            q->tgt_g0 = to[k0];
            if (m->forced_levels) {
                size_t before = 0;
                for (int j = 0; j < k0; j++)
                    before += (size_t)Sl[j] * Tl[j];
                q->forced = m->forced_levels + before;
                q->forced_stride = (size_t)pairs;
            }
        }
    }

    jb.m = m;
    jb.train = train;
    jb.seed = step_seed;
    jb.grad_scale = 1.0f / (float)Rt;
    jb.reg = (train && uses_gpn(c) && c->lambda > 0.0f && c->n_dec > 0)
                 ? (float)(c->lambda / ((double)c->n_dec * c->H * pairs))
                 : 0.0f;
    jb.W = W;
    jb.ch = ch;
    if (pool && W > 1)
        ga_pool_run(pool, chunk_task, &jb, W);
    else
        chunk_task(&jb, 0, 0);
    for (int w = 0; w < W; w++)
        if (m->workers[w].st != GA_OK && st == GA_OK)
            st = ga_set_error(m->workers[w].st, "gm_forward_backward: out of memory (workspace)");
    if (st == GA_OK && train && W > 1) {
        jb.nred = threads;
        ga_pool_run(pool, reduce_task, &jb, threads);
    }
    if (st == GA_OK && stats)
        for (int w = 0; w < W; w++)
            gm_stats_add(stats, &m->workers[w].stats);
done:
    free(ch);
    free(local);
    free(tok);
    free(len);
    free(keep_idx);
    return st;
}

/* ======================================================== inference */

struct gm_memory {
    int max_src, S, n_dec, d, H, g;
    float *mem;     /* [max_src][d] */
    float *kh, *vh; /* per layer [H][S][dh] (stride max_src*d per layer) */
    float *P;       /* per layer [g][S] (stride g*max_src) */
};

struct gm_cache {
    int max_tgt, len, n_dec, d, H;
    float *K, *V;   /* per layer [H][max_tgt][dh] (stride max_tgt*d per layer) */
};

gm_memory *gm_memory_create(const gm_model *m, int max_src)
{
    const gm_config *c = &m->cfg;
    if (max_src < 1 || max_src > c->max_len) {
        ga_set_error(GA_EINVAL, "gm_memory_create: max_src %d outside [1, max_len %d]", max_src,
                     c->max_len);
        return NULL;
    }
    gm_memory *mem = calloc(1, sizeof *mem);
    if (!mem) {
        ga_set_error(GA_ENOMEM, "gm_memory_create: out of memory");
        return NULL;
    }
    mem->max_src = max_src;
    mem->n_dec = c->n_dec;
    mem->d = c->d;
    mem->H = c->H;
    mem->g = c->g;
    size_t per = (size_t)max_src * c->d;
    int nl = c->n_dec > 0 ? c->n_dec : 1;
    mem->mem = malloc(sizeof(float) * per);
    mem->kh = malloc(sizeof(float) * per * nl);
    mem->vh = malloc(sizeof(float) * per * nl);
    mem->P = malloc(sizeof(float) * (size_t)c->g * max_src * nl);
    if (!mem->mem || !mem->kh || !mem->vh || !mem->P) {
        gm_memory_free(mem);
        ga_set_error(GA_ENOMEM, "gm_memory_create: out of memory");
        return NULL;
    }
    return mem;
}

void gm_memory_free(gm_memory *mem)
{
    if (!mem)
        return;
    free(mem->mem);
    free(mem->kh);
    free(mem->vh);
    free(mem->P);
    free(mem);
}

int gm_memory_len(const gm_memory *mem) { return mem->S; }

ga_status gm_encode(const gm_model *m, const int32_t *src, int S, gm_memory *mem)
{
    const gm_config *c = &m->cfg;
    int d = c->d, H = c->H, dh = d / H;
    if (!src || S < 1 || S > mem->max_src || mem->d != d || mem->n_dec != c->n_dec)
        return ga_set_error(GA_EINVAL, "gm_encode: bad arguments (S %d, max_src %d)", S,
                            mem->max_src);
    for (int i = 0; i < S; i++)
        if (src[i] < 0 || src[i] >= c->vocab)
            return ga_set_error(GA_EINVAL, "gm_encode: id %d out of range", src[i]);

    int Sv[1] = {S}, Tv[1] = {0}, so[2] = {0, S}, to[2] = {0, 0};
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)S);
    chunk ch;
    memset(&ch, 0, sizeof ch);
    ch.n = 1;
    ch.S = Sv;
    ch.T = Tv;
    ch.so = so;
    ch.to = to;
    ch.Rs = S;
    ch.maxS = S;
    ch.src = src;
    ch.src_pos = pos;
    size_t offs[6];
    acts a;
    memset(&a, 0, sizeof a);
    a.att_s_off = offs;
    a.att_t_off = offs + 2;
    a.xs_off = offs + 4;
    size_t words = plan(m, &ch, 0, NULL, &a);
    float *ws = malloc(sizeof(float) * words);
    float *kv = malloc(sizeof(float) * (size_t)S * 2 * d);
    if (!pos || !ws || !kv) {
        free(pos);
        free(ws);
        free(kv);
        return ga_set_error(GA_ENOMEM, "gm_encode: out of memory");
    }
    for (int i = 0; i < S; i++)
        pos[i] = i;
    plan(m, &ch, 0, ws, &a);
    encoder_forward(m, &ch, &a, 0, 0);
    memcpy(mem->mem, a.mem, sizeof(float) * (size_t)S * d);
    mem->S = S;
    for (int l = 0; l < c->n_dec; l++) {
        const dec_view *w = &m->pv.dec[l];
        float *kh = mem->kh + (size_t)l * mem->max_src * d;
        float *vh = mem->vh + (size_t)l * mem->max_src * d;
        gm_linear_forward(m->kt, kv, mem->mem, w->wkv, w->bkv, S, d, 2 * d);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < S; i++) {
                memcpy(kh + ((size_t)h * S + i) * dh, kv + (size_t)i * 2 * d + h * dh,
                       sizeof(float) * (size_t)dh);
                memcpy(vh + ((size_t)h * S + i) * dh, kv + (size_t)i * 2 * d + d + h * dh,
                       sizeof(float) * (size_t)dh);
            }
        if (uses_gpn(c))
            m->kt->gpn_project_keys(mem->mem, S, d, w->U, w->gb1, c->g,
                                    mem->P + (size_t)l * c->g * mem->max_src, S);
    }
    free(pos);
    free(ws);
    free(kv);
    return GA_OK;
}

gm_cache *gm_cache_create(const gm_model *m, int max_tgt)
{
    const gm_config *c = &m->cfg;
    if (max_tgt < 1 || max_tgt > c->max_len) {
        ga_set_error(GA_EINVAL, "gm_cache_create: max_tgt %d outside [1, max_len %d]", max_tgt,
                     c->max_len);
        return NULL;
    }
    gm_cache *k = calloc(1, sizeof *k);
    if (!k) {
        ga_set_error(GA_ENOMEM, "gm_cache_create: out of memory");
        return NULL;
    }
    k->max_tgt = max_tgt;
    k->n_dec = c->n_dec;
    k->d = c->d;
    k->H = c->H;
    size_t n = (size_t)max_tgt * c->d * (c->n_dec > 0 ? c->n_dec : 1);
    k->K = malloc(sizeof(float) * n);
    k->V = malloc(sizeof(float) * n);
    if (!k->K || !k->V) {
        gm_cache_free(k);
        ga_set_error(GA_ENOMEM, "gm_cache_create: out of memory");
        return NULL;
    }
    return k;
}

void gm_cache_free(gm_cache *k)
{
    if (!k)
        return;
    free(k->K);
    free(k->V);
    free(k);
}

void gm_cache_reset(gm_cache *k) { k->len = 0; }
int gm_cache_len(const gm_cache *k) { return k->len; }

ga_status gm_cache_copy(gm_cache *dst, const gm_cache *src)
{
    if (dst == src)
        return GA_OK;
    if (dst->d != src->d || dst->H != src->H || dst->n_dec != src->n_dec ||
        dst->max_tgt < src->len)
        return ga_set_error(GA_EINVAL, "gm_cache_copy: incompatible caches");
    int dh = src->d / src->H;
    for (int l = 0; l < src->n_dec; l++)
        for (int h = 0; h < src->H; h++) {
            size_t so = ((size_t)l * src->H + h) * src->max_tgt * dh;
            size_t dof = ((size_t)l * dst->H + h) * dst->max_tgt * dh;
            memcpy(dst->K + dof, src->K + so, sizeof(float) * (size_t)src->len * dh);
            memcpy(dst->V + dof, src->V + so, sizeof(float) * (size_t)src->len * dh);
        }
    dst->len = src->len;
    return GA_OK;
}

/* The random baseline's cross-attention for one query at target position t
 * of decoder layer `layer`: levels from gm_random_levels, then per head what
 * ga_attend does for one query (scores, threshold, sparse_context, with its
 * NaN / zero-Z conventions).
 * q [H*dh]; kh, vh [H][S][dh] -> out [H*dh], kept [H], lev [S];
 * scratch s [S], idx, p [S + GA_KEEP_PAD]. */
static void xattn_random_step(const gm_model *m, int layer, int t, int S, const float *q,
                              const float *kh, const float *vh, float *out, int *kept,
                              uint8_t *lev, float *s, int32_t *idx, float *p)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    int H = c->H, dh = c->d / H;
    float scale = 1.0f / sqrtf((float)dh);
    gm_random_levels(c->level_probs, c->L, layer, t, S, lev);
    for (int hd = 0; hd < H; hd++) {
        const float *Kh = kh + (size_t)hd * S * dh, *Vh = vh + (size_t)hd * S * dh;
        float *o = out + (size_t)hd * dh;
        float mx, Z;
        kt->scores(Kh, S, dh, q + (size_t)hd * dh, 1, dh, scale, NULL, s, S, &mx);
        int cnt = kt->threshold(s, S, mx, lev, m->theta8, c->mode, idx, p, &Z);
        if (isnan(Z) || Z == 0.0f || cnt == 0) {
            for (int j = 0; j < dh; j++)
                o[j] = isnan(Z) ? NAN : 0.0f;
            cnt = 0;
        } else {
            kt->sparse_context(Vh, dh, idx, p, cnt, 1.0f / Z, o);
        }
        kept[hd] = cnt;
    }
}

ga_status gm_decode_step(const gm_model *m, int n, const gm_memory *const *mem,
                         gm_cache *const *cache, const int32_t *tok, float *logp,
                         gm_step_stats *stats)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const views *v = &m->pv;
    int d = c->d, H = c->H, dh = d / H, ff = c->ff, g = c->g;
    if (n < 0 || (n > 0 && (!mem || !cache || !tok || !logp)))
        return ga_set_error(GA_EINVAL, "gm_decode_step: bad arguments");
    if (n == 0)
        return GA_OK;
    int maxS = 0, maxT = 0;
    for (int h = 0; h < n; h++) {
        if (!mem[h] || !cache[h] || mem[h]->d != d || cache[h]->d != d || mem[h]->S < 1)
            return ga_set_error(GA_EINVAL, "gm_decode_step: hypothesis %d: bad memory/cache", h);
        if (cache[h]->len >= cache[h]->max_tgt)
            return ga_set_error(GA_EINVAL, "gm_decode_step: hypothesis %d: cache full (%d)", h,
                                cache[h]->max_tgt);
        if (tok[h] < 0 || tok[h] >= c->vocab)
            return ga_set_error(GA_EINVAL, "gm_decode_step: token %d out of range", tok[h]);
        maxS = mem[h]->S > maxS ? mem[h]->S : maxS;
        maxT = cache[h]->len + 1 > maxT ? cache[h]->len + 1 : maxT;
    }

    /* scratch: x, ln, qkv [n][3d], ao [n][d], tmp [n][d], ffh [n][ff],
     * mean/rstd [n], s/a [maxT], R [n][g], random baseline: xs [maxS],
     * xp, xidx [maxS + GA_KEEP_PAD]; kept [H], levels [maxS] */
    size_t nd = (size_t)n * d;
    size_t words = 5 * nd + 3 * nd + (size_t)n * ff + 2 * (size_t)n + 2 * (size_t)maxT +
                   (size_t)n * g + (size_t)maxS + 2 * ((size_t)maxS + GA_KEEP_PAD) +
                   (size_t)H + (size_t)maxS;
    float *buf = malloc(sizeof(float) * words);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)n);
    if (!buf || !pos) {
        free(buf);
        free(pos);
        return ga_set_error(GA_ENOMEM, "gm_decode_step: out of memory");
    }
    float *x = buf, *ln = x + nd, *ao = ln + nd, *tmp = ao + nd, *co = tmp + nd;
    float *qkv = co + nd, *ffh = qkv + 3 * nd, *mu = ffh + (size_t)n * ff, *rs = mu + n;
    float *s = rs + n, *att = s + maxT, *R = att + maxT;
    float *xs = R + (size_t)n * g, *xp = xs + maxS;
    int32_t *xidx = (int32_t *)(xp + maxS + GA_KEEP_PAD);
    int *kept = (int *)(xidx + maxS + GA_KEEP_PAD);
    uint8_t *lev = (uint8_t *)(kept + H);
    float scale = 1.0f / sqrtf((float)dh);
    ga_status st = GA_OK;

    for (int h = 0; h < n; h++)
        pos[h] = cache[h]->len;
    gm_embed_forward(x, tok, pos, n, d, v->emb, sqrtf((float)d), m->pe);
    for (int l = 0; l < c->n_dec && st == GA_OK; l++) {
        const dec_view *w = &v->dec[l];
        /* causal self-attention over the cache */
        gm_layernorm_forward(ln, mu, rs, x, w->ln1_w, w->ln1_b, n, d);
        gm_linear_forward(kt, qkv, ln, w->wqkv, w->bqkv, n, d, 3 * d);
        for (int h = 0; h < n; h++) {
            gm_cache *k = cache[h];
            int t = k->len, N = t + 1;
            for (int hd = 0; hd < H; hd++) {
                size_t base = ((size_t)l * H + hd) * k->max_tgt * dh;
                float *Kh = k->K + base, *Vh = k->V + base;
                const float *row = qkv + (size_t)h * 3 * d;
                memcpy(Kh + (size_t)t * dh, row + d + hd * dh, sizeof(float) * (size_t)dh);
                memcpy(Vh + (size_t)t * dh, row + 2 * d + hd * dh, sizeof(float) * (size_t)dh);
                float mx;
                kt->scores(Kh, N, dh, row + hd * dh, 1, dh, scale, NULL, s, N, &mx);
                kt->softmax(s, N, mx, att);
                kt->dense_context(Vh, N, dh, att, ao + (size_t)h * d + hd * dh);
            }
        }
        gm_linear_forward(kt, tmp, ao, w->wo, w->bo, n, d, d);
        add_rows(x, tmp, nd);
        /* cross-attention: the fused inference step */
        gm_layernorm_forward(ln, mu, rs, x, w->ln2_w, w->ln2_b, n, d);
        gm_linear_forward(kt, qkv, ln, w->wq, w->bq, n, d, d); /* q [n][d] */
        for (int h = 0; h < n && st == GA_OK; h++) {
            const gm_memory *me = mem[h];
            int S = me->S;
            const float *kh = me->kh + (size_t)l * me->max_src * d;
            const float *vh = me->vh + (size_t)l * me->max_src * d;
            if (c->level_source == GM_LEVELS_RANDOM) {
                xattn_random_step(m, l, cache[h]->len, S, qkv + (size_t)h * d, kh, vh,
                                  co + (size_t)h * d, kept, lev, xs, xidx, xp);
            } else {
                const float *P = c->dense ? NULL : me->P + (size_t)l * g * me->max_src;
                float *r = R + (size_t)h * g;
                if (!c->dense)
                    kt->gpn_project_query(ln + (size_t)h * d, d, w->W, g, r);
                st = ga_attend(kt, NULL, &m->acfg, S, 1, qkv + (size_t)h * d, kh, vh, NULL, P,
                               S, c->dense ? NULL : r, c->dense ? NULL : w->W2,
                               c->dense ? NULL : w->gb2, co + (size_t)h * d, kept,
                               c->dense ? NULL : lev);
            }
            if (stats && st == GA_OK) {
                for (int hd = 0; hd < H; hd++)
                    stats->density_sum += (double)kept[hd] / S;
                stats->density_count += H;
                if (!c->dense)
                    for (int i = 0; i < S; i++)
                        stats->level_count[lev[i]] += 1.0;
            }
        }
        gm_linear_forward(kt, tmp, co, w->xwo, w->xbo, n, d, d);
        add_rows(x, tmp, nd);
        /* FFN */
        gm_layernorm_forward(ln, mu, rs, x, w->ln3_w, w->ln3_b, n, d);
        gm_linear_forward(kt, ffh, ln, w->w1, w->b1, n, d, ff);
        gm_act_forward(ffh, ffh, (size_t)n * ff, c->act);
        gm_linear_forward(kt, tmp, ffh, w->w2, w->b2, n, ff, d);
        add_rows(x, tmp, nd);
    }
    if (st == GA_OK) {
        gm_layernorm_forward(ln, mu, rs, x, v->decf_w, v->decf_b, n, d);
        gm_output_logp(kt, ln, n, d, v->emb, c->vocab, logp);
        for (int h = 0; h < n; h++)
            cache[h]->len++;
    }
    free(buf);
    free(pos);
    return st;
}
