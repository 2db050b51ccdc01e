/* params.c — the model object and its parameters (model.h): ONE contiguous
 * float buffer walked in a fixed order (walk) into named views (model_impl.h
 * `views`) and the tensor table (gm_tensor); initialisation; gm_create /
 * gm_free and the accessors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

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

void gm_views_of(const gm_config *c, float *base, views *v)
{
    walker w = {base, 0, NULL, 0};
    walk(c, &w, v);
}

/* =================================================== init + create */

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
    if (!kt) {
        gm_set_error(GA_ENOTSUP, "%s", ga_last_error());
        return NULL;
    }
    gm_model *m = calloc(1, sizeof *m);
    if (!m) {
        gm_set_error(GA_ENOMEM, "gm_create: out of memory");
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
        gm_set_error(GA_ENOMEM, "gm_create: out of memory (%zu parameters)", w.off);
        return NULL;
    }
    walker w2 = {m->params, 0, m->tab, 0};
    walk(cfg, &w2, &m->pv);
    gm_views_of(cfg, m->grads, &m->gv);
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
