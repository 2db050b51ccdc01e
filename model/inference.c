/* inference.c — incremental decoding (model.h): gm_memory (one encoded
 * source: the encoder output and, per decoder layer, the cross-attention
 * K/V [H][S][dh], GPN key projections P [g][S] and the prepared keys of
 * docs/SPEC.md §7 (ga_keys, built once per source by gm_encode); plus the
 * prepared cross-attention step, a ga_attend_plan for up to max_src keys and
 * GM_XBLOCK queries, made once with the memory), gm_cache (one hypothesis'
 * self-attention K/V), gm_step_ws (the step's scratch for up to max_rows
 * hypotheses, made once), gm_decode_step (n hypotheses advance by one token).
 *
 * Cross-attention of a step: consecutive hypotheses that share a memory
 * (the beam of one sentence) form one block of up to GM_XBLOCK queries over
 * that memory's prepared keys: ga_attend_run_prepared (GPN levels) or
 * ga_attend_run_prepared_levels (the random baseline's levels), seed mode's
 * Z as the memory's zmode says (GA_PREP_Z_EXACT by default: bitwise the
 * unprepared results).  With prepared keys off (gm_memory_set_prepared) each
 * hypothesis runs alone through ga_attend_run / ga_attend_run_levels over
 * K, V.  No validation or allocation of the attention step per token, and
 * no allocation in a step at all (scratch in the gm_step_ws). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_impl.h"

/* Thread CPU time in seconds (the stats' cross-attention time: robust to
 * other processes on the machine). */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Most queries (hypotheses sharing a memory) per prepared cross-attention
 * call: the library's query block (docs/SPEC.md §2). */
#define GM_XBLOCK 16

struct gm_memory {
    int max_src, S, n_dec, d, H, g;
    float *mem;     /* [max_src][d] */
    float *kh, *vh; /* per layer [H][S][dh] (stride max_src*d per layer) */
    float *P;       /* per layer [g][S] (stride g*max_src) */
    /* Cross-attention step prepared for (kt, acfg) of the creating model,
     * max_N = max_src keys, max_T = 1 query.  Its workspace is mutable:
     * one gm_decode_step at a time per memory (model.h). */
    ga_attend_plan *xplan;
    const ga_kernels *kt; /* the table and config the plan was made for */
    ga_config acfg;
    /* prepared keys (docs/SPEC.md §7): on (default) -> keys[l] of the
     * current source for every decoder layer l (NULL before gm_encode);
     * they reference kh, vh of the layer; keys[n_dec + l]: a stale one
     * whose memory the next source's keys reuse (ga_keys_prepare) */
    int prepared;
    ga_prep_z zmode;
    ga_keys **keys;       /* [2 n_dec]: current, then spares */
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
    mem->keys = calloc(2 * (size_t)nl, sizeof *mem->keys);
    mem->prepared = 1;
    mem->zmode = GA_PREP_Z_EXACT;
    if (!mem->mem || !mem->kh || !mem->vh || !mem->P || !mem->keys) {
        gm_memory_free(mem);
        gm_set_error(GA_ENOMEM, "gm_memory_create: out of memory");
        return NULL;
    }
    mem->kt = m->kt;
    mem->acfg = m->acfg;
    ga_status st;
    mem->xplan = ga_attend_plan_create(m->kt, NULL, &m->acfg, max_src, GM_XBLOCK, &st);
    if (!mem->xplan) {
        gm_set_error(st, "gm_memory_create: %s", ga_last_error());
        gm_memory_free(mem);
        return NULL;
    }
    return mem;
}

/* Destroys the prepared keys of every layer (and the spares). */
static void keys_drop(gm_memory *mem)
{
    if (!mem->keys)
        return;
    for (int l = 0; l < 2 * mem->n_dec; l++) {
        ga_keys_destroy(mem->keys[l]);
        mem->keys[l] = NULL;
    }
}

/* The current keys become spares (kh, vh are about to be rewritten): not
 * used again, but their memory is, by the next keys_build. */
static void keys_stale(gm_memory *mem)
{
    for (int l = 0; l < mem->n_dec; l++)
        if (mem->keys[l]) {
            ga_keys_destroy(mem->keys[mem->n_dec + l]);
            mem->keys[mem->n_dec + l] = mem->keys[l];
            mem->keys[l] = NULL;
        }
}

/* Prepared keys of every decoder layer for the current source (K, V of
 * layer l: kh, vh [H][S][dh] at l * max_src * d; no padding). */
static ga_status keys_build(gm_memory *mem)
{
    keys_stale(mem);
    int d = mem->d, H = mem->H;
    for (int l = 0; l < mem->n_dec; l++) {
        ga_status st = GA_OK;
        size_t off = (size_t)l * mem->max_src * d;
        ga_keys **spare = &mem->keys[mem->n_dec + l];
        if (*spare) { /* the spare's memory (no allocation when it is large enough) */
            st = ga_keys_prepare(*spare, mem->kt, H, mem->S, d / H, mem->kh + off,
                                 mem->vh + off, NULL);
            if (st == GA_OK) {
                mem->keys[l] = *spare;
                *spare = NULL;
            }
        } else {
            mem->keys[l] = ga_keys_create(mem->kt, H, mem->S, d / H, mem->kh + off,
                                          mem->vh + off, NULL, &st);
        }
        if (!mem->keys[l]) {
            gm_set_error(st, "prepared keys of decoder layer %d: %s", l, ga_last_error());
            keys_drop(mem);
            return st;
        }
    }
    return GA_OK;
}

ga_status gm_memory_set_prepared(gm_memory *mem, int on, ga_prep_z zmode)
{
    if (!mem || (zmode != GA_PREP_Z_EXACT && zmode != GA_PREP_Z_BOUNDED))
        return gm_set_error(GA_EINVAL, "gm_memory_set_prepared: %s",
                            mem ? "unknown zmode" : "memory is NULL");
    mem->prepared = on != 0;
    mem->zmode = zmode;
    if (!mem->prepared) {
        keys_drop(mem);
        return GA_OK;
    }
    return mem->S > 0 && !mem->keys[0] && mem->n_dec > 0 ? keys_build(mem) : GA_OK;
}

void gm_memory_free(gm_memory *mem)
{
    if (!mem)
        return;
    keys_drop(mem);
    free(mem->keys);
    free(mem->mem);
    free(mem->kh);
    free(mem->vh);
    free(mem->P);
    ga_attend_plan_destroy(mem->xplan);
    free(mem);
}

int gm_memory_len(const gm_memory *mem) { return mem->S; }

ga_status gm_encode_batch(const gm_model *m, int n, const int32_t *const *src, const int *S,
                          gm_memory *const *mem)
{
    const gm_config *c = &m->cfg;
    int d = c->d, H = c->H, dh = d / H;
    if (n < 0 || (n > 0 && (!src || !S || !mem)))
        return gm_set_error(GA_EINVAL, "gm_encode: bad arguments");
    for (int b = 0; b < n; b++) {
        if (!src[b] || !mem[b] || S[b] < 1 || S[b] > mem[b]->max_src || mem[b]->d != d ||
            mem[b]->n_dec != c->n_dec)
            return gm_set_error(GA_EINVAL, "gm_encode: bad arguments (S %d, max_src %d)", S[b],
                                mem[b] ? mem[b]->max_src : 0);
        for (int i = 0; i < S[b]; i++)
            if (src[b][i] < 0 || src[b][i] >= c->vocab)
                return gm_set_error(GA_EINVAL, "gm_encode: id %d out of range", src[b][i]);
    }
    if (n == 0)
        return GA_OK;
    /* one chunk of the n sentences, rows packed: sentence b is rows
     * [so[b], so[b + 1]) of the encoder's activations */
    size_t nn = (size_t)n + 1;
    int *iv = malloc(sizeof(int) * 4 * nn); /* S, T, so, to */
    size_t *offs = malloc(sizeof(size_t) * 3 * nn);
    int Rs = 0, maxS = 0;
    for (int b = 0; b < n; b++) {
        Rs += S[b];
        maxS = S[b] > maxS ? S[b] : maxS;
    }
    int32_t *tok = malloc(sizeof(int32_t) * 2 * (size_t)Rs); /* ids, then positions */
    if (!iv || !offs || !tok) {
        free(iv);
        free(offs);
        free(tok);
        return gm_set_error(GA_ENOMEM, "gm_encode: out of memory");
    }
    int *Sv = iv, *Tv = iv + nn, *so = iv + 2 * nn, *to = iv + 3 * nn;
    so[0] = to[0] = 0;
    for (int b = 0; b < n; b++) {
        Sv[b] = S[b];
        Tv[b] = 0;
        so[b + 1] = so[b] + S[b];
        to[b + 1] = 0;
        for (int i = 0; i < S[b]; i++) {
            tok[so[b] + i] = src[b][i];
            tok[Rs + so[b] + i] = i;
        }
    }
    chunk ch;
    memset(&ch, 0, sizeof ch);
    ch.n = n;
    ch.S = Sv;
    ch.T = Tv;
    ch.so = so;
    ch.to = to;
    ch.Rs = Rs;
    ch.maxS = maxS;
    ch.src = tok;
    ch.src_pos = tok + Rs;
    acts a;
    memset(&a, 0, sizeof a);
    a.att_s_off = offs;
    a.att_t_off = offs + nn;
    a.xs_off = offs + 2 * nn;
    size_t words = gm_plan(m, &ch, 0, NULL, &a);
    float *ws = malloc(sizeof(float) * words);
    float *kv = malloc(sizeof(float) * (size_t)Rs * 2 * d);
    if (!ws || !kv) {
        free(iv);
        free(offs);
        free(tok);
        free(ws);
        free(kv);
        return gm_set_error(GA_ENOMEM, "gm_encode: out of memory");
    }
    gm_plan(m, &ch, 0, ws, &a);
    gm_encoder_forward(m, &ch, &a, 0, 0);
    for (int b = 0; b < n; b++) {
        keys_stale(mem[b]); /* they reference kh, vh, rewritten below */
        memcpy(mem[b]->mem, a.mem + (size_t)so[b] * d, sizeof(float) * (size_t)S[b] * d);
        mem[b]->S = S[b];
    }
    for (int l = 0; l < c->n_dec; l++) {
        const dec_view *w = &m->pv.dec[l];
        /* kv [Rs][2d] = memory rows [K | V] (rows independent of the others) */
        gm_linear_forward(m->kt, kv, a.mem, w->wkv, w->bkv, Rs, d, 2 * d);
        for (int b = 0; b < n; b++) {
            gm_memory *me = mem[b];
            const float *kvb = kv + (size_t)so[b] * 2 * d;
            float *kh = me->kh + (size_t)l * me->max_src * d;
            float *vh = me->vh + (size_t)l * me->max_src * d;
            for (int h = 0; h < H; h++)
                for (int i = 0; i < S[b]; i++) {
                    memcpy(kh + ((size_t)h * S[b] + i) * dh, kvb + (size_t)i * 2 * d + h * dh,
                           sizeof(float) * (size_t)dh);
                    memcpy(vh + ((size_t)h * S[b] + i) * dh,
                           kvb + (size_t)i * 2 * d + d + h * dh, sizeof(float) * (size_t)dh);
                }
            if (gm_uses_gpn(c))
                m->kt->gpn_project_keys(me->mem, S[b], d, w->U, w->gb1, c->g,
                                        me->P + (size_t)l * c->g * me->max_src, S[b]);
        }
    }
    free(iv);
    free(offs);
    free(tok);
    free(ws);
    free(kv);
    ga_status st = GA_OK;
    for (int b = 0; b < n; b++)
        if (mem[b]->prepared && st == GA_OK && (st = keys_build(mem[b])) != GA_OK)
            for (int k = b; k < n; k++)
                mem[k]->S = 0; /* unusable until the next successful encode */
    return st;
}

ga_status gm_encode(const gm_model *m, const int32_t *src, int S, gm_memory *mem)
{
    const int32_t *const srcv[1] = {src};
    gm_memory *const memv[1] = {mem};
    return gm_encode_batch(m, 1, srcv, &S, memv);
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

/* The decoder's weights packed for the table's sgemm_packed (op(B) = W^T of
 * each linear layer W [out][in], and E^T of the output layer). */
typedef struct packed_dec {
    const float *wqkv, *wo, *wq, *xwo, *w1, *w2;
} packed_dec;

/* gm_decode_step's workspace: the packed weights (wbuf), and its scratch
 * for up to max_rows hypotheses (positions and source lengths are bounded
 * by the model's max_len, checked per step):
 *   x, ln, ao, tmp, co [max_rows][d], qkv [max_rows][3d], ffh [max_rows][ff],
 *   mu, rs [max_rows], s, att [max_len], R [max_rows][g], prob [vocab],
 *   kept [GM_XBLOCK][H] (int), lev [GM_XBLOCK][max_len] (bytes), pos
 *   [max_rows] (int32).  The cross-attention's own workspace is in each
 *   memory's plan. */
struct gm_step_ws {
    const gm_model *m;
    int max_rows;
    float *wbuf;
    packed_dec pd[GM_MAX_LAYERS];
    const float *emb; /* E^T [d][vocab] packed */
    float *x, *ln, *ao, *tmp, *co, *qkv, *ffh, *mu, *rs, *s, *att, *R, *prob;
    int *kept;
    uint8_t *lev;
    int32_t *pos;
    int32_t *tidx; /* top-k baseline: kept indices of one row [max_len] */
    float *tscr;   /* top-k baseline: selection scratch [max_len] */
};

/* Packs op(B) = W^T of W [N][K] at *at (64-byte aligned; *at advances), or
 * only counts the floats when base is NULL. */
static const float *pack_w(const ga_kernels *kt, const float *W, int K, int N, float *base,
                           size_t *at)
{
    size_t n = (kt->sgemm_pack(1, K, N, W, K, NULL) + 15) / 16 * 16;
    float *p = base ? base + *at : NULL;
    if (p)
        kt->sgemm_pack(1, K, N, W, K, p);
    *at += n;
    return p;
}

/* All packed weights into base (NULL: counts); returns the floats. */
static size_t pack_decoder(const gm_model *m, gm_step_ws *w, float *base)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    int d = c->d, ff = c->ff;
    size_t at = 0;
    for (int l = 0; l < c->n_dec; l++) {
        const dec_view *v = &m->pv.dec[l];
        packed_dec *p = &w->pd[l];
        p->wqkv = pack_w(kt, v->wqkv, d, 3 * d, base, &at);
        p->wo = pack_w(kt, v->wo, d, d, base, &at);
        p->wq = pack_w(kt, v->wq, d, d, base, &at);
        p->xwo = pack_w(kt, v->xwo, d, d, base, &at);
        p->w1 = pack_w(kt, v->w1, d, ff, base, &at);
        p->w2 = pack_w(kt, v->w2, ff, d, base, &at);
    }
    w->emb = pack_w(kt, m->pv.emb, d, c->vocab, base, &at);
    return at;
}

/* out [R][OUT] = inp [R][IN] W^T + b with W packed (pack_w): bitwise
 * gm_linear_forward. */
static void linear_packed(const ga_kernels *kt, float *out, const float *inp, const float *Wp,
                          const float *b, int R, int IN, int OUT)
{
    kt->sgemm_packed(0, R, OUT, IN, 1.0f, inp, IN, Wp, 0.0f, out, OUT);
    if (b)
        for (int r = 0; r < R; r++) {
            float *o = out + (size_t)r * OUT;
            for (int j = 0; j < OUT; j++)
                o[j] += b[j];
        }
}

gm_step_ws *gm_step_ws_create(const gm_model *m, int max_rows)
{
    const gm_config *c = &m->cfg;
    if (max_rows < 1 || max_rows > (1 << 20)) {
        gm_set_error(GA_EINVAL, "gm_step_ws_create: max_rows %d outside [1, 2^20]", max_rows);
        return NULL;
    }
    size_t nd = (size_t)max_rows * c->d, n = (size_t)max_rows, ml = (size_t)c->max_len;
    size_t words = 8 * nd + n * c->ff + 2 * n + 2 * ml + n * c->g + (size_t)c->vocab +
                   (size_t)GM_XBLOCK * c->H + (GM_XBLOCK * ml + 3) / 4 + n + 2 * ml;
    gm_step_ws *w = calloc(1, sizeof *w);
    float *b = malloc(sizeof(float) * words);
    if (w) /* pack_w rounds every matrix to 16 floats: a multiple of 64 bytes */
        w->wbuf = aligned_alloc(64, sizeof(float) * (pack_decoder(m, w, NULL) + 16));
    if (!w || !b || !w->wbuf) {
        if (w)
            free(w->wbuf);
        free(w);
        free(b);
        gm_set_error(GA_ENOMEM, "gm_step_ws_create: out of memory (%d rows)", max_rows);
        return NULL;
    }
    pack_decoder(m, w, w->wbuf);
    w->m = m;
    w->max_rows = max_rows;
    w->x = b;
    w->ln = w->x + nd;
    w->ao = w->ln + nd;
    w->tmp = w->ao + nd;
    w->co = w->tmp + nd;
    w->qkv = w->co + nd;
    w->ffh = w->qkv + 3 * nd;
    w->mu = w->ffh + n * c->ff;
    w->rs = w->mu + n;
    w->s = w->rs + n;
    w->att = w->s + ml;
    w->R = w->att + ml;
    w->prob = w->R + n * c->g;
    w->kept = (int *)(w->prob + c->vocab);
    w->lev = (uint8_t *)(w->kept + (size_t)GM_XBLOCK * c->H);
    w->pos = (int32_t *)((float *)w->lev + (GM_XBLOCK * ml + 3) / 4);
    w->tidx = w->pos + n;
    w->tscr = (float *)(w->tidx + ml);
    return w;
}

void gm_step_ws_free(gm_step_ws *w)
{
    if (!w)
        return;
    free(w->x);
    free(w->wbuf);
    free(w);
}

int gm_step_ws_rows(const gm_step_ws *w) { return w->max_rows; }

ga_status gm_decode_step(const gm_model *m, gm_step_ws *ws, int n,
                         const gm_memory *const *mem, gm_cache *const *cache,
                         const int32_t *tok, float *logp, gm_step_stats *stats)
{
    const gm_config *c = &m->cfg;
    const ga_kernels *kt = m->kt;
    const views *v = &m->pv;
    int d = c->d, H = c->H, dh = d / H, ff = c->ff, g = c->g;
    if (n < 0 || (n > 0 && (!ws || !mem || !cache || !tok || !logp)))
        return gm_set_error(GA_EINVAL, "gm_decode_step: bad arguments");
    if (n == 0)
        return GA_OK;
    if (ws->m != m || n > ws->max_rows)
        return gm_set_error(GA_EINVAL,
                            "gm_decode_step: %d hypotheses for a workspace of %d rows%s", n,
                            ws->max_rows, ws->m != m ? " made for another model" : "");
    for (int h = 0; h < n; h++) {
        if (!mem[h] || !cache[h] || mem[h]->d != d || cache[h]->d != d || mem[h]->S < 1)
            return gm_set_error(GA_EINVAL, "gm_decode_step: hypothesis %d: bad memory/cache", h);
        if (mem[h]->kt != kt || memcmp(&mem[h]->acfg, &m->acfg, sizeof m->acfg) != 0)
            return gm_set_error(GA_EINVAL,
                                "gm_decode_step: hypothesis %d: memory made for another kernel "
                                "table or attention configuration",
                                h);
        if (cache[h]->len >= cache[h]->max_tgt || cache[h]->len >= c->max_len)
            return gm_set_error(GA_EINVAL, "gm_decode_step: hypothesis %d: cache full (%d)", h,
                                cache[h]->len);
        if (mem[h]->S > c->max_len)
            return gm_set_error(GA_EINVAL,
                                "gm_decode_step: hypothesis %d: source of %d tokens > max_len %d",
                                h, mem[h]->S, c->max_len);
        if (tok[h] < 0 || tok[h] >= c->vocab)
            return gm_set_error(GA_EINVAL, "gm_decode_step: token %d out of range", tok[h]);
    }

    size_t nd = (size_t)n * d;
    float *x = ws->x, *ln = ws->ln, *ao = ws->ao, *tmp = ws->tmp, *co = ws->co;
    float *qkv = ws->qkv, *ffh = ws->ffh, *mu = ws->mu, *rs = ws->rs;
    float *s = ws->s, *att = ws->att, *R = ws->R;
    int *kept = ws->kept;  /* [GM_XBLOCK][H] */
    uint8_t *lev = ws->lev; /* [GM_XBLOCK][S] */
    int32_t *pos = ws->pos; /* [n] */
    float scale = 1.0f / sqrtf((float)dh);
    ga_status st = GA_OK;

    for (int h = 0; h < n; h++)
        pos[h] = cache[h]->len;
    gm_embed_forward(x, tok, pos, n, d, v->emb, sqrtf((float)d), m->pe);
    for (int l = 0; l < c->n_dec && st == GA_OK; l++) {
        const dec_view *w = &v->dec[l];
        const packed_dec *pw = &ws->pd[l];
        /* causal self-attention over the cache */
        gm_layernorm_forward(ln, mu, rs, x, w->ln1_w, w->ln1_b, n, d);
        linear_packed(kt, qkv, ln, pw->wqkv, w->bqkv, n, d, 3 * d);
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
        linear_packed(kt, tmp, ao, pw->wo, w->bo, n, d, d);
        add_rows(x, tmp, nd);
        /* cross-attention: the fused inference step, one block per run of
         * hypotheses sharing a prepared memory (else one per hypothesis) */
        gm_layernorm_forward(ln, mu, rs, x, w->ln2_w, w->ln2_b, n, d);
        linear_packed(kt, qkv, ln, pw->wq, w->bq, n, d, d); /* q [n][d] */
        double cpu0 = stats ? thread_cpu() : 0.0;
        for (int h0 = 0, nb; h0 < n && st == GA_OK; h0 += nb) {
            const gm_memory *me = mem[h0];
            const ga_keys *pk = me->prepared ? me->keys[l] : NULL;
            nb = 1;
            while (pk && h0 + nb < n && nb < GM_XBLOCK && mem[h0 + nb] == me)
                nb++;
            int S = me->S;
            const float *kh = me->kh + (size_t)l * me->max_src * d;
            const float *vh = me->vh + (size_t)l * me->max_src * d;
            const float *q = qkv + (size_t)h0 * d; /* [nb][d] */
            float *cb = co + (size_t)h0 * d;       /* [nb][d] */
            const int rnd = c->level_source == GM_LEVELS_RANDOM;
            const int topk = c->level_source == GM_LEVELS_TOPK;
            ga_prep_stats ps;
            memset(&ps, 0, sizeof ps);
            if (topk) {
                /* top-k baseline (topk.c), per hypothesis and head: scores
                 * over K, the k largest, the sparse context of their V rows
                 * (no prepared keys: the selection needs every exact score) */
                for (int b = 0; b < nb; b++)
                    for (int hd = 0; hd < H; hd++) {
                        const float *qh = q + (size_t)b * d + hd * dh;
                        float *o = cb + (size_t)b * d + hd * dh;
                        float mx, Z;
                        kt->scores(kh + (size_t)hd * S * dh, S, dh, qh, 1, dh, scale, NULL, s, S,
                                   &mx);
                        int cnt = gm_topk_row(s, S, c->topk_k, c->topk_frac, c->mode, &mx, &Z,
                                              ws->tidx, att, ws->tscr);
                        kept[b * H + hd] = cnt;
                        if (Z != Z)
                            for (int j = 0; j < dh; j++)
                                o[j] = NAN;
                        else
                            kt->sparse_context(vh + (size_t)hd * S * dh, dh, ws->tidx, att, cnt,
                                               Z > 0.0f ? 1.0f / Z : 0.0f, o);
                    }
                pk = NULL; /* no prepared-key statistics */
            } else if (rnd) {
                /* random baseline: levels from (layer, target position, key) */
                for (int b = 0; b < nb; b++)
                    gm_random_levels(c->level_probs, c->L, l, cache[h0 + b]->len, S,
                                     lev + (size_t)b * S);
                st = pk ? ga_attend_run_prepared_levels(me->xplan, pk, nb, q, lev, me->zmode, cb,
                                                        kept, stats ? &ps : NULL)
                        : ga_attend_run_levels(me->xplan, S, 1, q, kh, vh, NULL, lev, cb, kept);
            } else {
                const float *P = c->dense ? NULL : me->P + (size_t)l * g * me->max_src;
                float *r = R + (size_t)h0 * g; /* [nb][g] */
                if (!c->dense)
                    for (int b = 0; b < nb; b++)
                        kt->gpn_project_query(ln + (size_t)(h0 + b) * d, d, w->W, g,
                                              r + (size_t)b * g);
                const float *W2 = c->dense ? NULL : w->W2, *b2 = c->dense ? NULL : w->gb2;
                st = pk ? ga_attend_run_prepared(me->xplan, pk, nb, q, P, S, c->dense ? NULL : r,
                                                 W2, b2, me->zmode, cb, kept,
                                                 c->dense ? NULL : lev, stats ? &ps : NULL)
                        : ga_attend_run(me->xplan, S, 1, q, kh, vh, NULL, P, S,
                                        c->dense ? NULL : r, W2, b2, cb, kept,
                                        c->dense ? NULL : lev);
            }
            if (st != GA_OK)
                gm_set_error(st, "%s", ga_last_error());
            if (stats && st == GA_OK) {
                for (int b = 0; b < nb; b++) {
                    for (int hd = 0; hd < H; hd++)
                        stats->density_sum += (double)kept[b * H + hd] / S;
                    stats->density_count += H;
                    if (!c->dense && c->level_source != GM_LEVELS_TOPK)
                        for (int i = 0; i < S; i++)
                            stats->level_count[lev[(size_t)b * S + i]] += 1.0;
                }
                if (pk) {
                    stats->prep_rows += ps.rows;
                    stats->prep_keys += ps.keys;
                    stats->prep_candidates += ps.candidates;
                    stats->prep_fallback += ps.fallback;
                    stats->prep_bytes += ps.bytes;
                    if (ps.z_bound > stats->prep_z_bound)
                        stats->prep_z_bound = ps.z_bound;
                }
            }
        }
        if (stats)
            stats->xattn_cpu += thread_cpu() - cpu0;
        linear_packed(kt, tmp, co, pw->xwo, w->xbo, n, d, d);
        add_rows(x, tmp, nd);
        /* FFN */
        gm_layernorm_forward(ln, mu, rs, x, w->ln3_w, w->ln3_b, n, d);
        linear_packed(kt, ffh, ln, pw->w1, w->b1, n, d, ff);
        gm_act_forward(ffh, ffh, (size_t)n * ff, c->act);
        linear_packed(kt, tmp, ffh, pw->w2, w->b2, n, ff, d);
        add_rows(x, tmp, nd);
    }
    if (st == GA_OK) {
        gm_layernorm_forward(ln, mu, rs, x, v->decf_w, v->decf_b, n, d);
        gm_output_logp(kt, ln, n, d, v->emb, ws->emb, c->vocab, logp, ws->prob);
        for (int h = 0; h < n; h++)
            cache[h]->len++;
    }
    return st;
}
