/* decode.c — see decode.h. */
#include "decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    int parent;  /* the parent's index among its sentence's live hypotheses */
    int32_t tok;
} cand;

typedef struct finished {
    float norm;  /* score / length penalty */
    int len;     /* tokens without eos */
    int32_t *ids;
} finished;

/* Sizes: B = max_batch sentences, K = beam, R = B * K rows (hypotheses),
 * T = max_tgt (the length limit of a max_src source). */
struct gs_decoder {
    const gm_model *m;
    gs_options o;
    int V, K, B, R, max_src, T;
    gm_step_ws *ws;
    gm_memory **mem;         /* [B] one per sentence of the batch */
    gm_cache **caches;       /* [R] storage */
    gm_cache **spare;        /* [R] free caches */
    /* rows: live hypotheses of the live sentences, in sentence order */
    const gm_memory **rmem;  /* [R] the row's sentence's memory */
    gm_cache **cur, **nxt;   /* [R] caches of the rows now / next */
    int32_t *tok;            /* [R] token fed next */
    float *score, *score2;   /* [R] */
    int32_t *hist, *hist2;   /* [R][T] tokens so far */
    int *parent;             /* [R] parent row of each next row */
    int *first_child;        /* [R] first next row of each row, or -1 */
    float *logp;             /* [R][V] */
    /* per sentence */
    int *r0, *nrow;          /* [B] its rows [r0, r0 + nrow); nrow 0: done */
    int *limit, *nfin;       /* [B] */
    finished *fin;           /* [B][K] */
    int32_t *fin_ids;        /* [B][K][T] */
    cand *cands, *cands2;    /* [K * 2K] one sentence's candidates, sort buffer */
    cand *top;               /* [2K] one hypothesis' selection */
    int32_t *src_eos;        /* [B][max_src + 1] the sources with eos */
    const int32_t **src_ptr; /* [B] into src_eos */
    int *src_n;              /* [B] their lengths */
};

void gs_free(gs_decoder *d)
{
    if (!d)
        return;
    if (d->mem)
        for (int b = 0; b < d->B; b++)
            gm_memory_free(d->mem[b]);
    if (d->caches)
        for (int r = 0; r < d->R; r++)
            gm_cache_free(d->caches[r]);
    gm_step_ws_free(d->ws);
    free(d->mem);
    free(d->caches);
    free(d->spare);
    free(d->rmem);
    free(d->cur);
    free(d->nxt);
    free(d->tok);
    free(d->score);
    free(d->score2);
    free(d->hist);
    free(d->hist2);
    free(d->parent);
    free(d->first_child);
    free(d->logp);
    free(d->r0);
    free(d->nrow);
    free(d->limit);
    free(d->nfin);
    free(d->fin);
    free(d->fin_ids);
    free(d->cands);
    free(d->cands2);
    free(d->top);
    free(d->src_eos);
    free(d->src_ptr);
    free(d->src_n);
    free(d);
}

/* Generated tokens (eos included) allowed for a source of S tokens. */
static int length_limit(const gs_options *o, int S, int max_len)
{
    int limit = (int)floorf(o->max_len_a * (float)S) + o->max_len_b;
    if (limit > max_len)
        limit = max_len;
    return limit < 1 ? 1 : limit;
}

gs_decoder *gs_create(const gm_model *m, const gs_options *o, int max_batch, int max_src)
{
    const gm_config *cfg = gm_get_config(m);
    if (o->beam < 1 || o->beam > 64) {
        gm_set_error(GA_EINVAL, "beam size %d out of range [1, 64]", o->beam);
        return NULL;
    }
    if (max_batch < 1 || max_batch > 4096) {
        gm_set_error(GA_EINVAL, "batch of %d sentences out of range [1, 4096]", max_batch);
        return NULL;
    }
    if (max_src <= 0 || max_src > cfg->max_len - 1)
        max_src = cfg->max_len - 1;
    gs_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        gm_set_error(GA_ENOMEM, "gs_create: out of memory");
        return NULL;
    }
    d->m = m;
    d->o = *o;
    d->V = cfg->vocab;
    d->K = o->beam;
    d->B = max_batch;
    d->R = max_batch * o->beam;
    d->max_src = max_src;
    d->T = length_limit(o, max_src, cfg->max_len);
    const size_t K = (size_t)d->K, B = (size_t)d->B, R = (size_t)d->R, T = (size_t)d->T;
    d->ws = gm_step_ws_create(m, d->R);
    d->mem = calloc(B, sizeof *d->mem);
    d->caches = calloc(R, sizeof *d->caches);
    d->spare = calloc(R, sizeof *d->spare);
    d->rmem = calloc(R, sizeof *d->rmem);
    d->cur = calloc(R, sizeof *d->cur);
    d->nxt = calloc(R, sizeof *d->nxt);
    d->tok = calloc(R, sizeof *d->tok);
    d->score = calloc(R, sizeof *d->score);
    d->score2 = calloc(R, sizeof *d->score2);
    d->hist = calloc(R * T, sizeof *d->hist);
    d->hist2 = calloc(R * T, sizeof *d->hist2);
    d->parent = calloc(R, sizeof *d->parent);
    d->first_child = calloc(R, sizeof *d->first_child);
    d->logp = malloc(R * (size_t)d->V * sizeof *d->logp);
    d->r0 = calloc(B, sizeof *d->r0);
    d->nrow = calloc(B, sizeof *d->nrow);
    d->limit = calloc(B, sizeof *d->limit);
    d->nfin = calloc(B, sizeof *d->nfin);
    d->fin = calloc(B * K, sizeof *d->fin);
    d->fin_ids = calloc(B * K * T, sizeof *d->fin_ids);
    d->cands = calloc(K * 2 * K, sizeof *d->cands);
    d->cands2 = calloc(K * 2 * K, sizeof *d->cands2);
    d->top = calloc(2 * K, sizeof *d->top);
    d->src_eos = calloc(B * ((size_t)max_src + 1), sizeof *d->src_eos);
    d->src_ptr = calloc(B, sizeof *d->src_ptr);
    d->src_n = calloc(B, sizeof *d->src_n);
    if (!d->ws) {
        gs_free(d);
        return NULL;
    }
    if (!d->mem || !d->caches || !d->spare || !d->rmem || !d->cur || !d->nxt || !d->tok ||
        !d->score || !d->score2 || !d->hist || !d->hist2 || !d->parent || !d->first_child ||
        !d->logp || !d->r0 || !d->nrow || !d->limit || !d->nfin || !d->fin || !d->fin_ids ||
        !d->cands || !d->cands2 || !d->top || !d->src_eos || !d->src_ptr || !d->src_n) {
        gm_set_error(GA_ENOMEM, "gs_create: out of memory (batch %d, beam %d)", max_batch,
                     o->beam);
        gs_free(d);
        return NULL;
    }
    for (size_t b = 0; b < B; b++) {
        d->mem[b] = gm_memory_create(m, max_src + 1);
        if (!d->mem[b] || gm_memory_set_prepared(d->mem[b], o->prepared, o->prep_z) != GA_OK) {
            gm_set_error(GA_ENOMEM, "gm_memory_create: %s", gm_last_error());
            gs_free(d);
            return NULL;
        }
    }
    for (size_t r = 0; r < R; r++) {
        d->caches[r] = gm_cache_create(m, d->T);
        if (!d->caches[r]) {
            gm_set_error(GA_ENOMEM, "gm_cache_create: %s", gm_last_error());
            gs_free(d);
            return NULL;
        }
    }
    for (size_t i = 0; i < B * K; i++)
        d->fin[i].ids = d->fin_ids + i * T;
    return d;
}

int gs_max_src(const gs_decoder *d) { return d->max_src; }
int gs_max_batch(const gs_decoder *d) { return d->B; }

ga_status gs_check(const gm_model *m, const int32_t *src, int S)
{
    const gm_config *cfg = gm_get_config(m);
    if (S < 0 || S > cfg->max_len - 1)
        return gm_set_error(GA_EINVAL, "source has %d tokens; this model accepts at most %d "
                       "(max_len %d incl. eos)",
                       S, cfg->max_len - 1, cfg->max_len);
    for (int i = 0; i < S; i++)
        if (src[i] < 0 || src[i] >= cfg->vocab)
            return gm_set_error(GA_EINVAL, "source token %d at position %d is outside the vocabulary "
                           "[0, %d)",
                           src[i], i, cfg->vocab);
    return GA_OK;
}

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
    for (int v0 = 0; v0 < V; v0 += 16) {
        const int v1 = V - v0 < 16 ? V : v0 + 16;
        if (n == k) {
            /* once k are kept, skip a run of 16 with none above the k-th
             * (what the test below would do one by one; vectorised) */
            const float kth = top[k - 1].score;
            int above = 0;
            for (int v = v0; v < v1; v++)
                above |= row[v] > kth;
            if (!above)
                continue;
        }
        for (int v = v0; v < v1; v++) {
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
    }
    for (int i = 0; i < n; i++)
        top[i].score += base;
    return n;
}

/* Candidate order: score desc, then parent, then token (a total order: a
 * sentence's (parent, token) pairs are distinct, scores never NaN). */
static int before(const cand *x, const cand *y)
{
    if (x->score != y->score)
        return x->score > y->score;
    if (x->parent != y->parent)
        return x->parent < y->parent;
    return x->tok < y->tok;
}

/* Sorts c[0..n) into that order with tmp [n]: bottom-up merge sort (qsort
 * may allocate; the token loop must not). */
static void sort_cands(cand *c, cand *tmp, int n)
{
    for (int w = 1; w < n; w *= 2) {
        for (int i = 0; i < n; i += 2 * w) {
            int a = i, ae = i + w < n ? i + w : n, b = ae, be = i + 2 * w < n ? i + 2 * w : n;
            int k = i;
            while (a < ae && b < be)
                tmp[k++] = before(&c[b], &c[a]) ? c[b++] : c[a++];
            while (a < ae)
                tmp[k++] = c[a++];
            while (b < be)
                tmp[k++] = c[b++];
        }
        memcpy(c, tmp, (size_t)n * sizeof *c);
    }
}

/* One search step of sentence b at position t (its nrow[b] hypotheses hold
 * t tokens; logp has their rows): finished hypotheses go to fin[b], the
 * survivors are written as next rows nn0, nn0 + 1, ... (hist2, score2, tok,
 * parent = a row index).  Returns their count, 0 when the sentence is done
 * (the survivors, if any, are dropped). */
static int search_step(gs_decoder *d, int b, int t, int nn0)
{
    const int K = d->K, V = d->V, T = d->T, r0 = d->r0[b], n = d->nrow[b];
    finished *fin = d->fin + (size_t)b * K;
    int nc = 0;
    for (int h = 0; h < n; h++) {
        int got = top_k(d->logp + (size_t)(r0 + h) * V, V, 2 * K, d->score[r0 + h], h, d->top);
        memcpy(d->cands + nc, d->top, (size_t)got * sizeof(cand));
        nc += got;
    }
    sort_cands(d->cands, d->cands2, nc);
    const int last = t + 1 == d->limit[b];
    int nn = 0;
    for (int r = 0; r < nc && nn < K; r++) {
        const cand *c = &d->cands[r];
        const int32_t *ph = d->hist + (size_t)(r0 + c->parent) * T;
        if (c->tok == GM_EOS || last) {
            if (c->tok == GM_EOS && r >= K)
                continue; /* eos outside the top K is not a finisher */
            int len = c->tok == GM_EOS ? t : t + 1;
            float norm = c->score / length_penalty(d->o.alpha, t + 1);
            /* keep the K best finished */
            int slot = -1;
            if (d->nfin[b] < K) {
                slot = d->nfin[b]++;
            } else {
                int worst = 0;
                for (int i = 1; i < K; i++)
                    if (fin[i].norm < fin[worst].norm)
                        worst = i;
                if (norm > fin[worst].norm)
                    slot = worst;
            }
            if (slot >= 0) {
                fin[slot].norm = norm;
                fin[slot].len = len;
                memcpy(fin[slot].ids, ph, (size_t)t * sizeof(int32_t));
                if (c->tok != GM_EOS)
                    fin[slot].ids[t] = c->tok;
            }
            continue;
        }
        const int j = nn0 + nn;
        int32_t *nh = d->hist2 + (size_t)j * T;
        memcpy(nh, ph, (size_t)t * sizeof(int32_t));
        nh[t] = c->tok;
        d->score2[j] = c->score;
        d->tok[j] = c->tok; /* fed at the next step */
        d->parent[j] = r0 + c->parent;
        nn++;
    }
    return last || d->nfin[b] >= K ? 0 : nn;
}

/* Sentence b's best finished hypothesis -> out (capacity cap). */
static ga_status write_best(const gs_decoder *d, int b, int32_t *out, int cap, int *out_len)
{
    const finished *fin = d->fin + (size_t)b * d->K;
    int best = 0;
    for (int i = 1; i < d->nfin[b]; i++)
        if (fin[i].norm > fin[best].norm)
            best = i;
    int len = d->nfin[b] ? fin[best].len : 0; /* nfin 0 cannot happen: the last step finishes */
    if (len > cap)
        return gm_set_error(GA_EINVAL,
                            "translation of %d tokens does not fit the output buffer (%d)", len,
                            cap);
    memcpy(out, fin[best].ids, (size_t)len * sizeof(int32_t));
    *out_len = len;
    return GA_OK;
}

static void (*g_loop_hook)(int end);

void gs_debug_loop_hook(void (*fn)(int end)) { g_loop_hook = fn; }

ga_status gs_translate_batch(gs_decoder *d, int n, const int32_t *const *src, const int *S,
                             int32_t *const *out, int out_cap, int *out_len,
                             gm_step_stats *stats, long *steps_out)
{
    const gm_config *cfg = gm_get_config(d->m);
    if (n < 0 || n > d->B)
        return gm_set_error(GA_EINVAL, "batch of %d sentences for a decoder of %d", n, d->B);
    for (int b = 0; b < n; b++) {
        ga_status st = gs_check(d->m, src[b], S[b]);
        if (st != GA_OK)
            return n > 1 ? gm_set_error(st, "sentence %d of the batch: %s", b, gm_last_error())
                         : st;
        if (S[b] > d->max_src)
            return gm_set_error(GA_EINVAL,
                                "source has %d tokens; this decoder was made for at most %d",
                                S[b], d->max_src);
    }
    /* encode; one row (bos, empty cache) per sentence */
    for (int r = 0; r < d->R; r++)
        d->spare[r] = d->caches[r];
    int nspare = d->R, rows = 0, maxlimit = 0;
    for (int b = 0; b < n; b++) {
        int32_t *se = d->src_eos + (size_t)b * (d->max_src + 1);
        memcpy(se, src[b], (size_t)S[b] * sizeof(int32_t));
        se[S[b]] = GM_EOS;
        d->src_ptr[b] = se;
        d->src_n[b] = S[b] + 1;
    }
    ga_status st = gm_encode_batch(d->m, n, d->src_ptr, d->src_n, d->mem);
    if (st != GA_OK)
        return gm_set_error(st, "encode: %s", gm_last_error());
    for (int b = 0; b < n; b++) {
        d->limit[b] = length_limit(&d->o, S[b], cfg->max_len);
        maxlimit = d->limit[b] > maxlimit ? d->limit[b] : maxlimit;
        d->nfin[b] = 0;
        d->r0[b] = rows;
        d->nrow[b] = 1;
        d->cur[rows] = d->spare[--nspare];
        gm_cache_reset(d->cur[rows]);
        d->rmem[rows] = d->mem[b];
        d->tok[rows] = GM_BOS;
        d->score[rows] = 0;
        rows++;
    }
    long steps = 0;
    if (g_loop_hook)
        g_loop_hook(0);
    for (int t = 0; t < maxlimit && rows > 0; t++) {
        /* every live hypothesis holds t tokens; this step predicts token t+1 */
        st = gm_decode_step(d->m, d->ws, rows, d->rmem, d->cur, d->tok, d->logp, stats);
        if (st != GA_OK)
            return gm_set_error(st, "decode step: %s", gm_last_error());
        steps += rows;
        /* search per sentence; next rows compacted in sentence order */
        int nn = 0;
        for (int r = 0; r < rows; r++)
            d->first_child[r] = -1;
        for (int b = 0; b < n; b++) {
            if (!d->nrow[b])
                continue;
            int k = search_step(d, b, t, nn);
            if (!k && write_best(d, b, out[b], out_cap, &out_len[b]) != GA_OK)
                return GA_EINVAL;
            for (int j = nn; j < nn + k; j++) {
                if (d->first_child[d->parent[j]] < 0)
                    d->first_child[d->parent[j]] = j;
                d->rmem[j] = d->mem[b];
            }
            d->r0[b] = nn;
            d->nrow[b] = k;
            nn += k;
        }
        /* Caches: rows without a next row free theirs; each row's first child
         * takes its cache, later children get copies.  At most R in use. */
        for (int r = 0; r < rows; r++)
            if (d->first_child[r] < 0)
                d->spare[nspare++] = d->cur[r];
        for (int j = 0; j < nn; j++) {
            int p = d->parent[j];
            if (d->first_child[p] == j) {
                d->nxt[j] = d->cur[p];
            } else {
                gm_cache *c = d->spare[--nspare];
                if ((st = gm_cache_copy(c, d->cur[p])) != GA_OK)
                    return gm_set_error(st, "cache copy: %s", gm_last_error());
                d->nxt[j] = c;
            }
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
        rows = nn;
    }
    if (g_loop_hook)
        g_loop_hook(1);
    if (steps_out)
        *steps_out = steps;
    return GA_OK;
}

ga_status gs_translate(gs_decoder *d, const int32_t *src, int S, int32_t *out, int out_cap,
                       int *out_len, gm_step_stats *stats, long *steps_out)
{
    const int32_t *const srcv[1] = {src};
    int32_t *const outv[1] = {out};
    return gs_translate_batch(d, 1, srcv, &S, outv, out_cap, out_len, stats, steps_out);
}
