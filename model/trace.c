/* trace.c — see trace.h. */
#include "trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "util.h"

void gt_free(gt_trace *tr)
{
    free(tr->levels);
    free(tr->weights);
    free(tr->kept);
    memset(tr, 0, sizeof *tr);
}

typedef struct finder {
    gm_model *m;
    int missing;
    char name[64];
} finder;

/* Parameter tensor by name ("dec0.cross.wq"), checked against its size. */
static const float *P(finder *f, const char *pre, int l, const char *name,
                      size_t size)
{
    char full[64];
    if (l >= 0)
        snprintf(full, sizeof full, "%s%d.%s", pre, l, name);
    else
        snprintf(full, sizeof full, "%s%s", pre, name);
    int i = gm_find_tensor(f->m, full);
    if (i < 0 || gm_tensor(f->m, i)->size != size) {
        if (!f->missing)
            snprintf(f->name, sizeof f->name, "%s", full);
        f->missing = 1;
        return NULL;
    }
    return gm_params(f->m) + gm_tensor(f->m, i)->offset;
}

static void add(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

int gt_run(gm_model *m, const int32_t *src, int S, const int32_t *tgt_in,
           const int32_t *tgt_out, int T, gt_trace *tr)
{
    return gt_run_hook(m, src, S, tgt_in, tgt_out, T, tr, NULL, NULL);
}

int gt_run_hook(gm_model *m, const int32_t *src, int S, const int32_t *tgt_in,
                const int32_t *tgt_out, int T, gt_trace *tr, gt_layer_hook hook, void *ctx)
{
    memset(tr, 0, sizeof *tr);
    const gm_config *c = gm_get_config(m);
    const ga_kernels *kt = gm_get_kernels(m);
    const int d = c->d, H = c->H, ff = c->ff, V = c->vocab, g = c->g, L = c->L;
    const size_t D = (size_t)d;
    if (S < 1 || T < 1 || S > c->max_len || T > c->max_len)
        return gu_fail("trace: lengths S=%d T=%d outside [1, max_len=%d]", S, T,
                       c->max_len);
    int R = S > T ? S : T;
    size_t Rd = (size_t)R * D;
    finder f = {m, 0, ""};

    gm_xattn_cfg xc;
    memset(&xc, 0, sizeof xc);
    xc.d = d;
    xc.H = H;
    xc.g = g;
    xc.L = L;
    xc.mode = c->mode;
    xc.dense = c->dense;
    /* random-level baseline: the model's levels (xc.layer set per layer) */
    xc.level_probs = c->level_source == GM_LEVELS_RANDOM ? c->level_probs : NULL;
    if (c->level_source == GM_LEVELS_TOPK) { /* top-k baseline: no levels (all 0) */
        xc.topk_k = c->topk_k;
        xc.topk_frac = c->topk_frac;
    }
    ga_config ac;
    gm_config_attn(c, &ac);
    ga_theta_from_tau(&ac, xc.theta8);
    size_t sv_words = gm_xattn_saved_words(&xc, T, S);

    float *pe = malloc(sizeof(float) * (size_t)c->max_len * D);
    float *x = malloc(sizeof(float) * Rd), *mem = malloc(sizeof(float) * Rd);
    float *ln = malloc(sizeof(float) * Rd), *tmp = malloc(sizeof(float) * Rd);
    float *ao = malloc(sizeof(float) * Rd), *q = malloc(sizeof(float) * Rd);
    float *qkv = malloc(sizeof(float) * 3 * Rd), *kv = malloc(sizeof(float) * 2 * Rd);
    float *ffh = malloc(sizeof(float) * (size_t)R * ff);
    float *mu = malloc(sizeof(float) * (size_t)R), *rs = malloc(sizeof(float) * (size_t)R);
    float *att = malloc(sizeof(float) * (size_t)H * R * R);
    float *scr = malloc(sizeof(float) * 2 * (size_t)R * R);
    float *svb = malloc(sizeof(float) * sv_words);
    float *logp = malloc(sizeof(float) * ((size_t)T + 1) * V); /* + the softmax's row */
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)R);
    tr->levels = calloc((size_t)c->n_dec * T * S, 1);
    tr->weights = calloc((size_t)c->n_dec * H * T * S, sizeof(float));
    tr->kept = calloc((size_t)c->n_dec * H * T, sizeof(int));
    int rc = -1;
    if (!pe || !x || !mem || !ln || !tmp || !ao || !q || !qkv || !kv || !ffh || !mu ||
        !rs || !att || !scr || !svb || !logp || !pos || !tr->levels || !tr->weights ||
        !tr->kept) {
        gu_fail("trace: out of memory");
        goto done;
    }
    tr->S = S;
    tr->T = T;
    tr->n_dec = c->n_dec;
    tr->H = H;
    tr->L = L;
    gm_posenc_table(pe, c->max_len, d);
    for (int i = 0; i < R; i++)
        pos[i] = i;
    const float *emb = P(&f, "emb", -1, "", (size_t)V * D);
    if (!emb)
        goto layout;

    /* encoder */
    gm_embed_forward(x, src, pos, S, d, emb, sqrtf((float)d), pe);
    for (int l = 0; l < c->n_enc; l++) {
        const float *ln1w = P(&f, "enc", l, "ln1.w", D), *ln1b = P(&f, "enc", l, "ln1.b", D);
        const float *wqkv = P(&f, "enc", l, "attn.wqkv", 3 * D * D);
        const float *bqkv = P(&f, "enc", l, "attn.bqkv", 3 * D);
        const float *wo = P(&f, "enc", l, "attn.wo", D * D), *bo = P(&f, "enc", l, "attn.bo", D);
        const float *ln2w = P(&f, "enc", l, "ln2.w", D), *ln2b = P(&f, "enc", l, "ln2.b", D);
        const float *w1 = P(&f, "enc", l, "ffn.w1", (size_t)ff * D);
        const float *b1 = P(&f, "enc", l, "ffn.b1", (size_t)ff);
        const float *w2 = P(&f, "enc", l, "ffn.w2", D * ff), *b2 = P(&f, "enc", l, "ffn.b2", D);
        if (f.missing)
            goto layout;
        gm_layernorm_forward(ln, mu, rs, x, ln1w, ln1b, S, d);
        gm_linear_forward(kt, qkv, ln, wqkv, bqkv, S, d, 3 * d);
        gm_mha_forward(kt, ao, att, scr, qkv, S, d, H, 0);
        gm_linear_forward(kt, tmp, ao, wo, bo, S, d, d);
        add(x, tmp, (size_t)S * D);
        gm_layernorm_forward(ln, mu, rs, x, ln2w, ln2b, S, d);
        gm_linear_forward(kt, ffh, ln, w1, b1, S, d, ff);
        gm_act_forward(ffh, ffh, (size_t)S * ff, c->act);
        gm_linear_forward(kt, tmp, ffh, w2, b2, S, ff, d);
        add(x, tmp, (size_t)S * D);
    }
    {
        const float *w = P(&f, "enc.lnf.w", -1, "", D), *b = P(&f, "enc.lnf.b", -1, "", D);
        if (f.missing)
            goto layout;
        gm_layernorm_forward(mem, mu, rs, x, w, b, S, d);
    }

    /* decoder */
    gm_embed_forward(x, tgt_in, pos, T, d, emb, sqrtf((float)d), pe);
    for (int l = 0; l < c->n_dec; l++) {
        const float *ln1w = P(&f, "dec", l, "ln1.w", D), *ln1b = P(&f, "dec", l, "ln1.b", D);
        const float *wqkv = P(&f, "dec", l, "self.wqkv", 3 * D * D);
        const float *bqkv = P(&f, "dec", l, "self.bqkv", 3 * D);
        const float *wo = P(&f, "dec", l, "self.wo", D * D), *bo = P(&f, "dec", l, "self.bo", D);
        const float *ln2w = P(&f, "dec", l, "ln2.w", D), *ln2b = P(&f, "dec", l, "ln2.b", D);
        const float *wq = P(&f, "dec", l, "cross.wq", D * D), *bq = P(&f, "dec", l, "cross.bq", D);
        const float *wkv = P(&f, "dec", l, "cross.wkv", 2 * D * D);
        const float *bkv = P(&f, "dec", l, "cross.bkv", 2 * D);
        const float *xwo = P(&f, "dec", l, "cross.wo", D * D);
        const float *xbo = P(&f, "dec", l, "cross.bo", D);
        gm_gpn_params gp = {P(&f, "dec", l, "gpn.U", (size_t)g * D),
                            P(&f, "dec", l, "gpn.b1", (size_t)g),
                            P(&f, "dec", l, "gpn.W", (size_t)g * D),
                            P(&f, "dec", l, "gpn.W2", (size_t)L * g),
                            P(&f, "dec", l, "gpn.b2", (size_t)L)};
        const float *ln3w = P(&f, "dec", l, "ln3.w", D), *ln3b = P(&f, "dec", l, "ln3.b", D);
        const float *w1 = P(&f, "dec", l, "ffn.w1", (size_t)ff * D);
        const float *b1 = P(&f, "dec", l, "ffn.b1", (size_t)ff);
        const float *w2 = P(&f, "dec", l, "ffn.w2", D * ff), *b2 = P(&f, "dec", l, "ffn.b2", D);
        if (f.missing)
            goto layout;
        gm_layernorm_forward(ln, mu, rs, x, ln1w, ln1b, T, d);
        gm_linear_forward(kt, qkv, ln, wqkv, bqkv, T, d, 3 * d);
        gm_mha_forward(kt, ao, att, scr, qkv, T, d, H, 1);
        gm_linear_forward(kt, tmp, ao, wo, bo, T, d, d);
        add(x, tmp, (size_t)T * D);
        /* cross-attention: ln = h (GPN query input), q, kv of the memory */
        gm_layernorm_forward(ln, mu, rs, x, ln2w, ln2b, T, d);
        gm_linear_forward(kt, q, ln, wq, bq, T, d, d);
        gm_linear_forward(kt, kv, mem, wkv, bkv, S, d, 2 * d);
        gm_xattn_saved sv;
        gm_xattn_saved_carve(&sv, &xc, T, S, svb);
        xc.layer = l;
        gm_xattn_forward(kt, &xc, T, S, ao, q, kv, ln, mem, &gp, &sv, NULL);
        size_t np = (size_t)S + GA_KEEP_PAD;
        for (int t = 0; t < T; t++) {
            uint8_t *lv = tr->levels + ((size_t)l * T + t) * S;
            if (!c->dense)
                memcpy(lv, sv.lev + (size_t)t * S, (size_t)S);
            for (int h = 0; h < H; h++) {
                size_t ht = (size_t)h * T + t;
                float *w = tr->weights + (((size_t)l * H + h) * T + t) * S;
                tr->kept[((size_t)l * H + h) * T + t] = sv.count[ht];
                if (c->dense) {
                    memcpy(w, sv.p + ht * np, sizeof(float) * (size_t)S);
                } else {
                    float Z = sv.Z[ht];
                    for (int k = 0; k < sv.count[ht]; k++)
                        w[sv.idx[ht * np + k]] = Z > 0 ? sv.p[ht * np + k] / Z : 0.0f;
                }
            }
        }
        if (hook && hook(ctx, l, T, S, q, sv.kh, sv.vh, c->dense ? NULL : sv.lev, ao, tr) != 0)
            goto done;
        gm_linear_forward(kt, tmp, ao, xwo, xbo, T, d, d);
        add(x, tmp, (size_t)T * D);
        gm_layernorm_forward(ln, mu, rs, x, ln3w, ln3b, T, d);
        gm_linear_forward(kt, ffh, ln, w1, b1, T, d, ff);
        gm_act_forward(ffh, ffh, (size_t)T * ff, c->act);
        gm_linear_forward(kt, tmp, ffh, w2, b2, T, ff, d);
        add(x, tmp, (size_t)T * D);
    }
    {
        const float *w = P(&f, "dec.lnf.w", -1, "", D), *b = P(&f, "dec.lnf.b", -1, "", D);
        if (f.missing)
            goto layout;
        gm_layernorm_forward(ln, mu, rs, x, w, b, T, d);
        gm_output_logp(kt, ln, T, d, emb, NULL, V, logp, logp + (size_t)T * V);
    }
    for (int t = 0; t < T; t++) {
        const float *row = logp + (size_t)t * V;
        int best = GM_EOS;
        for (int v = 0; v < V; v++)
            if (v != GM_PAD && v != GM_BOS && row[v] > row[best])
                best = v;
        tr->agree += best == tgt_out[t];
    }
    rc = 0;
    goto done;
layout:
    gu_fail("trace: the model has no parameter tensor '%s' of the expected size "
            "(model layout changed; update model/trace.c)",
            f.name);
done:
    free(pe);
    free(x);
    free(mem);
    free(ln);
    free(tmp);
    free(ao);
    free(q);
    free(qkv);
    free(kv);
    free(ffh);
    free(mu);
    free(rs);
    free(att);
    free(scr);
    free(svb);
    free(logp);
    free(pos);
    if (rc != 0)
        gt_free(tr);
    return rc;
}
