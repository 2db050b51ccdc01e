/* inference.c — incremental decoding (model.h): gm_memory (one encoded
 * source: the encoder output and, per decoder layer, the cross-attention
 * K/V [H][S][dh] and GPN key projections P [g][S]), gm_cache (one
 * hypothesis' self-attention K/V), gm_decode_step (n hypotheses advance by
 * one token; cross-attention through the fused kernel path ga_attend, or
 * the random-level baseline). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

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
        gm_set_error(GA_EINVAL, "gm_memory_create: max_src %d outside [1, max_len %d]", max_src,
                     c->max_len);
        return NULL;
    }
    gm_memory *mem = calloc(1, sizeof *mem);
    if (!mem) {
        gm_set_error(GA_ENOMEM, "gm_memory_create: out of memory");
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
        gm_set_error(GA_ENOMEM, "gm_memory_create: out of memory");
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
        return gm_set_error(GA_EINVAL, "gm_encode: bad arguments (S %d, max_src %d)", S,
                            mem->max_src);
    for (int i = 0; i < S; i++)
        if (src[i] < 0 || src[i] >= c->vocab)
            return gm_set_error(GA_EINVAL, "gm_encode: id %d out of range", src[i]);

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
    size_t words = gm_plan(m, &ch, 0, NULL, &a);
    float *ws = malloc(sizeof(float) * words);
    float *kv = malloc(sizeof(float) * (size_t)S * 2 * d);
    if (!pos || !ws || !kv) {
        free(pos);
        free(ws);
        free(kv);
        return gm_set_error(GA_ENOMEM, "gm_encode: out of memory");
    }
    for (int i = 0; i < S; i++)
        pos[i] = i;
    gm_plan(m, &ch, 0, ws, &a);
    gm_encoder_forward(m, &ch, &a, 0, 0);
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
        if (gm_uses_gpn(c))
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
        gm_set_error(GA_EINVAL, "gm_cache_create: max_tgt %d outside [1, max_len %d]", max_tgt,
                     c->max_len);
        return NULL;
    }
    gm_cache *k = calloc(1, sizeof *k);
    if (!k) {
        gm_set_error(GA_ENOMEM, "gm_cache_create: out of memory");
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
        gm_set_error(GA_ENOMEM, "gm_cache_create: out of memory");
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
        return gm_set_error(GA_EINVAL, "gm_cache_copy: incompatible caches");
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
        return gm_set_error(GA_EINVAL, "gm_decode_step: bad arguments");
    if (n == 0)
        return GA_OK;
    int maxS = 0, maxT = 0;
    for (int h = 0; h < n; h++) {
        if (!mem[h] || !cache[h] || mem[h]->d != d || cache[h]->d != d || mem[h]->S < 1)
            return gm_set_error(GA_EINVAL, "gm_decode_step: hypothesis %d: bad memory/cache", h);
        if (cache[h]->len >= cache[h]->max_tgt)
            return gm_set_error(GA_EINVAL, "gm_decode_step: hypothesis %d: cache full (%d)", h,
                                cache[h]->max_tgt);
        if (tok[h] < 0 || tok[h] >= c->vocab)
            return gm_set_error(GA_EINVAL, "gm_decode_step: token %d out of range", tok[h]);
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
        return gm_set_error(GA_ENOMEM, "gm_decode_step: out of memory");
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
                if (st != GA_OK)
                    gm_set_error(st, "%s", ga_last_error());
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
