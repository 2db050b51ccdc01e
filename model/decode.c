/* decode.c — see decode.h. */
#include "decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void gs_options_default(gs_options *o)
{
    o->beam = 1;
    o->alpha = 0.6f;
    o->max_len_a = 1.5f;
    o->max_len_b = 10;
    o->prepared = 1;
    o->prep_z = GA_PREP_Z_EXACT;
}

typedef struct cand {
    float score; /* summed log-probability */
    int parent;
    int32_t tok;
} cand;

typedef struct finished {
    float norm;  /* score / length penalty */
    int len;     /* tokens without eos */
    int32_t *ids;
} finished;

struct gs_decoder {
    const gm_model *m;
    gs_options o;
    int V, max_len, K;
    gm_memory *mem;
    const gm_memory **mems;  /* [K], all == mem */
    gm_cache **caches;       /* [2K] storage */
    gm_cache **cur, **nxt;   /* [K] live hypotheses now / next */
    gm_cache **spare;        /* [2K] free caches */
    float *logp;             /* [K][V] */
    int32_t *tok;            /* [K] token fed next */
    int32_t *hist, *hist2;   /* [K][max_len] */
    float *score, *score2;   /* [K] */
    cand *cands;             /* [K * 2K] */
    cand *top;               /* [2K] per-hypothesis selection */
    int *first_child;        /* [K] */
    int *parent;             /* [K] parent of each new hypothesis */
    finished *fin;           /* [K] */
    int32_t *fin_ids;        /* [K][max_len] */
    int32_t *src_eos;        /* [max_len] */
};

void gs_free(gs_decoder *d)
{
    if (!d)
        return;
    gm_memory_free(d->mem);
    if (d->caches)
        for (int i = 0; i < 2 * d->K; i++)
            gm_cache_free(d->caches[i]);
    free(d->mems);
    free(d->caches);
    free(d->cur);
    free(d->nxt);
    free(d->spare);
    free(d->logp);
    free(d->tok);
    free(d->hist);
    free(d->hist2);
    free(d->score);
    free(d->score2);
    free(d->cands);
    free(d->top);
    free(d->first_child);
    free(d->parent);
    free(d->fin);
    free(d->fin_ids);
    free(d->src_eos);
    free(d);
}

gs_decoder *gs_create(const gm_model *m, const gs_options *o)
{
    if (o->beam < 1 || o->beam > 64) {
        gu_fail("beam size %d out of range [1, 64]", o->beam);
        return NULL;
    }
    gs_decoder *d = gu_calloc(1, sizeof *d);
    if (!d)
        return NULL;
    const gm_config *cfg = gm_get_config(m);
    d->m = m;
    d->o = *o;
    d->V = cfg->vocab;
    d->max_len = cfg->max_len;
    int K = d->K = o->beam, ml = d->max_len;
    d->mem = gm_memory_create(m, ml);
    d->mems = gu_calloc((size_t)K, sizeof *d->mems);
    d->caches = gu_calloc(2 * (size_t)K, sizeof *d->caches);
    d->cur = gu_calloc((size_t)K, sizeof *d->cur);
    d->nxt = gu_calloc((size_t)K, sizeof *d->nxt);
    d->spare = gu_calloc(2 * (size_t)K, sizeof *d->spare);
    d->logp = gu_malloc((size_t)K * (size_t)d->V * sizeof(float));
    d->tok = gu_calloc((size_t)K, sizeof(int32_t));
    d->hist = gu_calloc((size_t)K * (size_t)ml, sizeof(int32_t));
    d->hist2 = gu_calloc((size_t)K * (size_t)ml, sizeof(int32_t));
    d->score = gu_calloc((size_t)K, sizeof(float));
    d->score2 = gu_calloc((size_t)K, sizeof(float));
    d->cands = gu_calloc((size_t)K * 2 * (size_t)K, sizeof(cand));
    d->top = gu_calloc(2 * (size_t)K, sizeof(cand));
    d->first_child = gu_calloc((size_t)K, sizeof(int));
    d->parent = gu_calloc((size_t)K, sizeof(int));
    d->fin = gu_calloc((size_t)K, sizeof(finished));
    d->fin_ids = gu_calloc((size_t)K * (size_t)ml, sizeof(int32_t));
    d->src_eos = gu_calloc((size_t)ml, sizeof(int32_t));
    if (!d->mem || gm_memory_set_prepared(d->mem, o->prepared, o->prep_z) != GA_OK) {
        gu_fail("gm_memory_create: %s", gm_last_error());
        gs_free(d);
        return NULL;
    }
    if (!d->mems || !d->caches || !d->cur || !d->nxt || !d->spare || !d->logp ||
        !d->tok || !d->hist || !d->hist2 || !d->score || !d->score2 || !d->cands ||
        !d->top || !d->first_child || !d->parent || !d->fin || !d->fin_ids || !d->src_eos) {
        gs_free(d);
        return NULL;
    }
    for (int i = 0; i < 2 * K; i++) {
        d->caches[i] = gm_cache_create(m, ml);
        if (!d->caches[i]) {
            gu_fail("gm_cache_create: %s", gm_last_error());
            gs_free(d);
            return NULL;
        }
    }
    for (int i = 0; i < K; i++) {
        d->mems[i] = d->mem;
        d->fin[i].ids = d->fin_ids + (size_t)i * ml;
    }
    return d;
}

int gs_max_src(const gs_decoder *d) { return d->max_len - 1; }

static float length_penalty(float alpha, int len)
{
    if (alpha == 0.0f)
        return 1.0f;
    return powf((5.0f + (float)len) / 6.0f, alpha);
}

/* Keeps the k best tokens of one hypothesis' row (log-probability desc, then
 * token asc), skipping pad, bos and non-finite entries; scores become
 * base + log-probability. */
static int top_k(const float *row, int V, int k, float base, int parent, cand *top)
{
    int n = 0;
    for (int v = 0; v < V; v++) {
        float s = row[v];
        if (v == GM_PAD || v == GM_BOS || !(s > -INFINITY) || s == INFINITY)
            continue; /* never generated; NaN also skipped */
        if (n == k && s <= top[n - 1].score)
            continue;
        int pos = n < k ? n++ : k - 1;
        while (pos > 0 && top[pos - 1].score < s) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos].score = s;
        top[pos].parent = parent;
        top[pos].tok = v;
    }
    for (int i = 0; i < n; i++)
        top[i].score += base;
    return n;
}

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent)
        return x->parent < y->parent ? -1 : 1;
    return (x->tok > y->tok) - (x->tok < y->tok);
}

int gs_translate(gs_decoder *d, const int32_t *src, int S, int32_t *out,
                 int out_cap, int *out_len, gm_step_stats *stats, long *steps_out)
{
    const int K = d->K, V = d->V, ml = d->max_len;
    if (S < 0 || S > gs_max_src(d))
        return gu_fail("source has %d tokens; this model accepts at most %d "
                       "(max_len %d incl. eos)",
                       S, gs_max_src(d), ml);
    for (int i = 0; i < S; i++) {
        if (src[i] < 0 || src[i] >= V)
            return gu_fail("source token %d at position %d is outside the vocabulary "
                           "[0, %d)",
                           src[i], i, V);
        d->src_eos[i] = src[i];
    }
    d->src_eos[S] = GM_EOS;
    if (gm_encode(d->m, d->src_eos, S + 1, d->mem) != GA_OK)
        return gu_fail("encode: %s", gm_last_error());

    int limit = (int)floorf(d->o.max_len_a * (float)S) + d->o.max_len_b;
    if (limit > ml)
        limit = ml;
    if (limit < 1)
        limit = 1;

    /* Start: one live hypothesis fed with bos. */
    int nspare = 0;
    for (int i = 0; i < 2 * K; i++)
        d->spare[nspare++] = d->caches[i];
    int n = 1;
    d->cur[0] = d->spare[--nspare];
    gm_cache_reset(d->cur[0]);
    d->tok[0] = GM_BOS;
    d->score[0] = 0;
    int nfin = 0;
    long steps = 0;

    for (int t = 0; t < limit && n > 0; t++) {
        /* hypotheses hold t tokens; this step predicts token t+1 */
        if (gm_decode_step(d->m, n, d->mems, d->cur, d->tok, d->logp, stats) != GA_OK)
            return gu_fail("decode step: %s", gm_last_error());
        steps += n;
        int nc = 0;
        for (int h = 0; h < n; h++) {
            int got = top_k(d->logp + (size_t)h * V, V, 2 * K, d->score[h], h, d->top);
            memcpy(d->cands + nc, d->top, (size_t)got * sizeof(cand));
            nc += got;
        }
        qsort(d->cands, (size_t)nc, sizeof(cand), cmp_cand);
        int last = (t + 1 == limit);
        int nn = 0;
        for (int r = 0; r < nc && nn < K; r++) {
            const cand *c = &d->cands[r];
            const int32_t *ph = d->hist + (size_t)c->parent * ml;
            if (c->tok == GM_EOS || last) {
                if (c->tok == GM_EOS && r >= K)
                    continue; /* eos outside the top K is not a finisher */
                int len = c->tok == GM_EOS ? t : t + 1;
                float norm = c->score / length_penalty(d->o.alpha, t + 1);
                /* keep the K best finished */
                int slot = -1;
                if (nfin < K) {
                    slot = nfin++;
                } else {
                    int worst = 0;
                    for (int i = 1; i < K; i++)
                        if (d->fin[i].norm < d->fin[worst].norm)
                            worst = i;
                    if (norm > d->fin[worst].norm)
                        slot = worst;
                }
                if (slot >= 0) {
                    d->fin[slot].norm = norm;
                    d->fin[slot].len = len;
                    memcpy(d->fin[slot].ids, ph, (size_t)t * sizeof(int32_t));
                    if (c->tok != GM_EOS)
                        d->fin[slot].ids[t] = c->tok;
                }
                continue;
            }
            int32_t *nh = d->hist2 + (size_t)nn * ml;
            memcpy(nh, ph, (size_t)t * sizeof(int32_t));
            nh[t] = c->tok;
            d->score2[nn] = c->score;
            d->tok[nn] = c->tok; /* fed at the next step */
            d->parent[nn] = c->parent;
            nn++;
        }
        if (last || nfin >= K || nn == 0)
            break;
        /* Caches: each parent's first child takes the parent's cache, later
         * children get copies.  Copies first (they read the parents). */
        for (int h = 0; h < n; h++)
            d->first_child[h] = -1;
        for (int j = 0; j < nn; j++)
            if (d->first_child[d->parent[j]] < 0)
                d->first_child[d->parent[j]] = j;
        for (int j = 0; j < nn; j++) {
            int p = d->parent[j];
            if (d->first_child[p] != j) {
                gm_cache *c = d->spare[--nspare];
                if (gm_cache_copy(c, d->cur[p]) != GA_OK)
                    return gu_fail("cache copy: %s", gm_last_error());
                d->nxt[j] = c;
            }
        }
        for (int h = 0; h < n; h++) {
            if (d->first_child[h] >= 0)
                d->nxt[d->first_child[h]] = d->cur[h];
            else
                d->spare[nspare++] = d->cur[h];
        }
        gm_cache **tc = d->cur;
        d->cur = d->nxt;
        d->nxt = tc;
        int32_t *th = d->hist;
        d->hist = d->hist2;
        d->hist2 = th;
        float *ts = d->score;
        d->score = d->score2;
        d->score2 = ts;
        n = nn;
    }
    if (steps_out)
        *steps_out = steps;
    if (nfin == 0) { /* cannot happen: the last step always finishes */
        *out_len = 0;
        return 0;
    }
    int best = 0;
    for (int i = 1; i < nfin; i++)
        if (d->fin[i].norm > d->fin[best].norm)
            best = i;
    int len = d->fin[best].len;
    if (len > out_cap)
        return gu_fail("translation of %d tokens does not fit the output buffer (%d)",
                       len, out_cap);
    memcpy(out, d->fin[best].ids, (size_t)len * sizeof(int32_t));
    *out_len = len;
    return 0;
}
