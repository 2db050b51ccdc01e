/* forward.c — the training forward of a chunk of packed sentences
 * (gm_forward_backward, batch.c; also gm_encode, inference.c): the
 * activation plan (every layer's saved activations carved out of one
 * workspace), then embedding -> encoder layers -> memory, and embedding ->
 * decoder layers (self-attention, GPN cross-attention, FFN) -> final LN.
 * Row-wise layers run on all rows of the chunk at once (large GEMMs, no
 * padding); attention runs per sentence.
 * Shapes: Rs / Rt = packed source / target rows, d = model width. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

static size_t al16(size_t n) { return (n + 15) & ~(size_t)15; }

static float *take(float *base, size_t *off, size_t n)
{
    float *p = base ? base + *off : NULL;
    *off += al16(n);
    return p;
}

gm_xattn_cfg gm_xattn_cfg_of(const gm_model *m, int layer, int train, uint64_t seed,
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
    if (c->level_source == GM_LEVELS_TOPK) {
        x.topk_k = c->topk_k;
        x.topk_frac = c->topk_frac;
    }
    return x;
}

/* Carves the activations of chunk ch out of `base` (NULL: only measures).
 * The per-sentence offset arrays must already be in a (they live outside
 * the workspace).  Returns the words needed. */
size_t gm_plan(const gm_model *m, const chunk *ch, int train, float *base, acts *a)
{
    const gm_config *c = &m->cfg;
    size_t d = (size_t)c->d, ff = (size_t)c->ff, H = (size_t)c->H;
    size_t Rs = (size_t)ch->Rs, Rt = (size_t)ch->Rt;
    size_t maxR = Rs > Rt ? Rs : Rt;
    size_t maxL = (size_t)(ch->maxS > ch->maxT ? ch->maxS : ch->maxT);
    size_t off = 0;

    /* per-sentence offsets (relative to each layer's region) */
    size_t att_s = 0, att_t = 0, xs = 0, xscr = 0;
    gm_xattn_cfg xc = gm_xattn_cfg_of(m, 0, 0, 0, 0, NULL);
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

/* --------------------------------------------------------- forward */

/* Encoder layer l of the chunk (pre-LN):
 *   xm = x + drop(SelfAttn(LN1(x)));  xout = xm + drop(FFN(LN2(xm)))
 * e->x [Rs][d] -> xout [Rs][d]; saves ln1, qkv [Rs][3d], att (per sentence
 * [H][S_b][S_b]), ao, xm, ln2, ffh / ffa [Rs][ff] in e. */
static void encoder_layer_forward(const gm_model *m, const chunk *ch, acts *a, int l,
                                  float p, uint64_t seed, float *xout)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const enc_view *w = &m->pv.enc[l];
    enc_act *e = &a->enc[l];
    int d = c->d, ff = c->ff, H = c->H, Rs = ch->Rs;
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

void gm_encoder_forward(const gm_model *m, const chunk *ch, acts *a, int train,
                        uint64_t seed)
{
    const gm_config *c = &m->cfg;
    const views *v = &m->pv;
    int d = c->d, Rs = ch->Rs;
    float p = train ? c->dropout : 0.0f;
    float *x0 = c->n_enc > 0 ? a->enc[0].x : a->enc_out;

    gm_embed_forward(x0, ch->src, ch->src_pos, Rs, d, v->emb, sqrtf((float)d), m->pe);
    gm_dropout(x0, Rs, d, p, seed, SITE_EMB_SRC, ch->src_g0);
    for (int l = 0; l < c->n_enc; l++)
        encoder_layer_forward(m, ch, a, l, p, seed,
                              l + 1 < c->n_enc ? a->enc[l + 1].x : a->enc_out);
    gm_layernorm_forward(a->mem, a->mem_m, a->mem_r, a->enc_out, v->encf_w, v->encf_b, Rs, d);
}

/* Decoder layer l of the chunk (pre-LN):
 *   x1 = x + drop(CausalSelfAttn(LN1(x)))
 *   h = LN2(x1);  x2 = x1 + drop(GpnCrossAttn(h, memory))
 *   xout = x2 + drop(FFN(LN3(x2)))
 * e->x [Rt][d], a->mem [Rs][d] -> xout [Rt][d]; saves ln1, qkv, att, ao,
 * x1, h, q [Rt][d], kv [Rs][2d], co, xs (the cross-attention's levels /
 * probabilities, gm_xattn_saved), x2, ln3, ffh / ffa in e. */
static void decoder_layer_forward(const gm_model *m, const chunk *ch, acts *a, int l,
                                  int train, float p, uint64_t seed, float *xout,
                                  gm_stats *st)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const dec_view *w = &m->pv.dec[l];
    dec_act *e = &a->dec[l];
    int d = c->d, ff = c->ff, H = c->H, Rt = ch->Rt, Rs = ch->Rs;
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
        gm_xattn_cfg xc = gm_xattn_cfg_of(m, l, train, seed, ch->tgt_g0 + ch->to[k], forced);
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

void gm_decoder_forward(const gm_model *m, const chunk *ch, acts *a, int train,
                        uint64_t seed, gm_stats *st)
{
    const gm_config *c = &m->cfg;
    const views *v = &m->pv;
    int d = c->d, Rt = ch->Rt;
    float p = train ? c->dropout : 0.0f;
    float *x0 = c->n_dec > 0 ? a->dec[0].x : a->dec_out;

    gm_embed_forward(x0, ch->tin, ch->tgt_pos, Rt, d, v->emb, sqrtf((float)d), m->pe);
    gm_dropout(x0, Rt, d, p, seed, SITE_EMB_TGT, ch->tgt_g0);
    for (int l = 0; l < c->n_dec; l++)
        decoder_layer_forward(m, ch, a, l, train, p, seed,
                              l + 1 < c->n_dec ? a->dec[l + 1].x : a->dec_out, st);
    gm_layernorm_forward(a->lnf, a->lnf_m, a->lnf_r, a->dec_out, v->decf_w, v->decf_b, Rt, d);
}
