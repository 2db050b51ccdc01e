/* backward.c — the training backward of a chunk (gm_forward_backward,
 * batch.c): loss -> final decoder LN -> decoder layers in reverse (FFN,
 * cross-attention with the straight-through GPN gradient and the density
 * regulariser, self-attention) -> target embedding; memory gradient ->
 * encoder layers in reverse -> source embedding.  Every layer recomputes its
 * dropout mask from (seed, site, global row).  Gradients are ADDED to the
 * views g.  Shapes: Rs / Rt = packed source / target rows, d = model width. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

/* Decoder layer l, backward (forward: decoder_layer_forward, forward.c).
 * a->dres_t [Rt][d]: in, d(xout); out, d(x) (the residual stream carries
 * the gradient through the layer).  a->dmem [Rs][d] += the memory's
 * gradient through this layer's cross-attention K/V (and GPN keys).
 * Parameter gradients are added to gw; reg: see gm_xattn_backward. */
static void decoder_layer_backward(const gm_model *m, const chunk *ch, acts *a, int l,
                                   uint64_t seed, float reg, const dec_view *gw)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const dec_view *w = &m->pv.dec[l];
    dec_act *e = &a->dec[l];
    int d = c->d, ff = c->ff, H = c->H, Rt = ch->Rt, Rs = ch->Rs;
    float p = c->dropout;
    size_t nt = (size_t)Rt * d;
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
    float *dq = a->tmp, *dkv = a->dqkv; /* [Rt][d], [Rs][2d] */
    for (int k = 0; k < ch->n; k++) {
        int T = ch->T[k], N = ch->S[k];
        gm_xattn_cfg xc = gm_xattn_cfg_of(m, l, 1, seed, ch->tgt_g0 + ch->to[k], NULL);
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

/* Encoder layer l, backward (forward: encoder_layer_forward, forward.c).
 * a->dres_s [Rs][d]: in, d(xout); out, d(x).  Parameter gradients are
 * added to gw. */
static void encoder_layer_backward(const gm_model *m, const chunk *ch, acts *a, int l,
                                   uint64_t seed, const enc_view *gw)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const enc_view *w = &m->pv.enc[l];
    enc_act *e = &a->enc[l];
    int d = c->d, ff = c->ff, H = c->H, Rs = ch->Rs;
    float p = c->dropout;
    size_t ns = (size_t)Rs * d;
    /* FFN: xout = xm + drop(ffa w2^T + b2) */
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
    /* self-attention: xm = x + drop(ao wo^T + bo) */
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

/* grad_scale: dLoss/dCE_sum (1 / tokens); reg: see gm_xattn_backward. */
void gm_model_backward(const gm_model *m, const chunk *ch, acts *a, uint64_t seed,
                       float grad_scale, float reg, const views *g, gm_stats *st)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const views *v = &m->pv;
    int d = c->d, Rt = ch->Rt, Rs = ch->Rs;
    float p = c->dropout;
    size_t nt = (size_t)Rt * d, ns = (size_t)Rs * d;

    /* loss (tied output projection) -> dlnf (in dln) -> dres_t */
    memset(a->dln, 0, sizeof(float) * nt);
    gm_output_ce(kt, a->lnf, ch->tout, Rt, d, v->emb, c->vocab, c->label_smoothing,
                 grad_scale, a->dln, g->emb, a->logits, st);
    memset(a->dres_t, 0, sizeof(float) * nt);
    gm_layernorm_backward(a->dres_t, g->decf_w, g->decf_b, a->dln, a->dec_out, v->decf_w,
                          a->lnf_m, a->lnf_r, Rt, d);
    /* decoder layers in reverse, then the target embedding */
    memset(a->dmem, 0, sizeof(float) * ns);
    for (int l = c->n_dec - 1; l >= 0; l--)
        decoder_layer_backward(m, ch, a, l, seed, reg, &g->dec[l]);
    gm_dropout(a->dres_t, Rt, d, p, seed, SITE_EMB_TGT, ch->tgt_g0);
    gm_embed_backward(g->emb, a->dres_t, ch->tin, Rt, d, sqrtf((float)d));

    /* memory -> final encoder LN -> encoder layers in reverse -> source embedding */
    memset(a->dres_s, 0, sizeof(float) * ns);
    gm_layernorm_backward(a->dres_s, g->encf_w, g->encf_b, a->dmem, a->enc_out, v->encf_w,
                          a->mem_m, a->mem_r, Rs, d);
    for (int l = c->n_enc - 1; l >= 0; l--)
        encoder_layer_backward(m, ch, a, l, seed, &g->enc[l]);
    gm_dropout(a->dres_s, Rs, d, p, seed, SITE_EMB_SRC, ch->src_g0);
    gm_embed_backward(g->emb, a->dres_s, ch->src, Rs, d, sqrtf((float)d));
}
