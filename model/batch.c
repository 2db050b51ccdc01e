/* batch.c — gm_forward_backward (model.h): one batch forward (+ backward)
 * split over a thread pool, and the training statistics (gm_stats).
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
 *   4. Data parallel (gm_forward_backward_part, `mpirun ... granattn train`):
 *      the sentences are first split into nparts contiguous groups by the
 *      same cost rule; part p runs steps 2-3 on its group only, with the
 *      whole batch's normalisers (1 / target tokens, GPN pairs) and global
 *      rows, so the sum of the parts' gradients is the whole batch's
 *      gradient (up to float summation order).  nparts = 2 with 1 thread
 *      each gives the same chunks as nparts = 1 with 2 threads.
 *
 * Workspace per task (floats, grown on demand): the activations of every
 * layer (enc_act / dec_act, model_impl.h; laid out by gm_plan, forward.c),
 * then scratch, then (training) the gradient buffers.  Shapes: Rs / Rt =
 * packed source / target rows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"

double gm_stats_objective(const gm_model *m, const gm_stats *s)
{
    double v = s->tokens > 0 ? s->loss_sum / (double)s->tokens : 0.0;
    if (gm_uses_gpn(&m->cfg) && m->cfg.lambda > 0.0f && s->exp_density_count > 0.0)
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
    size_t words = gm_plan(m, ch, jb->train, NULL, &a);
    if (ensure_ws(wk, words) != GA_OK) {
        wk->st = GA_ENOMEM;
        goto out;
    }
    gm_plan(m, ch, jb->train, wk->ws, &a);
    if (jb->train && wk->own)
        memset(wk->grads, 0, sizeof(float) * m->nparams);

    gm_encoder_forward(m, ch, &a, jb->train, jb->seed);
    gm_decoder_forward(m, ch, &a, jb->train, jb->seed, &wk->stats);
    if (jb->train) {
        views g;
        gm_views_of(&m->cfg, wk->grads, &g);
        gm_model_backward(m, ch, &a, jb->seed, jb->grad_scale, jb->reg, &g, &wk->stats);
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
            return gm_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
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
                    return gm_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
                m->workers[w].own = 1;
            }
    return GA_OK;
}

/* Splits sentences [k0, k1) into W contiguous groups of about equal cost
 * (source + target rows): group w is [bound[w], bound[w + 1]).  At least one
 * sentence per group (W <= k1 - k0).  A fixed function of the lengths, so the
 * rank split and the thread split below use the same rule. */
static void split_by_cost(const int *so, const int *to, const int *Sl, const int *Tl,
                          int k0, int k1, int W, int *bound)
{
    double total = (double)((so[k1] - so[k0]) + (to[k1] - to[k0]));
    int k = k0;
    bound[0] = k0;
    for (int w = 0; w < W; w++) {
        int kb = k;
        double target = total * (w + 1) / W;
        /* leave at least one sentence for each later group */
        while (k < k1 - (W - 1 - w) &&
               (k == kb || (double)((so[k] - so[k0]) + (to[k] - to[k0])) +
                                   0.5 * (Sl[k] + Tl[k]) < target))
            k++;
        if (w == W - 1)
            k = k1;
        bound[w + 1] = k;
    }
}

ga_status gm_forward_backward(gm_model *m, const gm_batch *b, int train, uint64_t step_seed,
                              ga_pool *pool, gm_stats *stats)
{
    return gm_forward_backward_part(m, b, train, step_seed, pool, 0, 1, stats);
}

ga_status gm_forward_backward_part(gm_model *m, const gm_batch *b, int train,
                                   uint64_t step_seed, ga_pool *pool, int part, int nparts,
                                   gm_stats *stats)
{
    const gm_config *c = &m->cfg;
    if (!b || b->B < 0 || b->S < 0 || b->T < 0 || (b->B > 0 && (!b->src || !b->tgt_in || !b->tgt_out)))
        return gm_set_error(GA_EINVAL, "gm_forward_backward: invalid batch");
    if (nparts < 1 || part < 0 || part >= nparts)
        return gm_set_error(GA_EINVAL, "gm_forward_backward: part %d of %d", part, nparts);

    /* lengths and validation */
    int B = b->B;
    int *len = malloc(sizeof(int) * (size_t)(4 * B + 2));
    if (!len)
        return gm_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
    int *Sl = len, *Tl = len + B, *so = len + 2 * B, *to = len + 3 * B + 1;
    int nb = 0; /* sentences kept (T_b > 0), compacted to the front */
    long Rs = 0, Rt = 0;
    double pairs = 0.0;
    ga_status st = GA_OK;
    int *keep_idx = malloc(sizeof(int) * (size_t)(B > 0 ? B : 1));
    if (!keep_idx) {
        free(len);
        return gm_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
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
            st = gm_set_error(GA_EINVAL, "gm_forward_backward: sentence %d has an empty source", i);
        else if (S > c->max_len || T > c->max_len)
            st = gm_set_error(GA_EINVAL, "gm_forward_backward: sentence %d longer than max_len %d",
                              i, c->max_len);
        for (int k = 0; k < S && st == GA_OK; k++)
            if (s[k] < 0 || s[k] >= c->vocab)
                st = gm_set_error(GA_EINVAL, "gm_forward_backward: src id %d out of range", s[k]);
        for (int k = 0; k < T && st == GA_OK; k++)
            if (ti[k] < 0 || ti[k] >= c->vocab || to_[k] < 0 || to_[k] >= c->vocab)
                st = gm_set_error(GA_EINVAL, "gm_forward_backward: tgt id out of range (row %d)", i);
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
        return gm_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
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

    /* this part's sentences [p0, p1): part `part` of nparts contiguous groups
     * of about equal cost (empty when there are fewer sentences than parts);
     * then W contiguous chunks of it, one per task */
    int threads = pool ? ga_pool_threads(pool) : 1;
    int nps = nparts < nb ? nparts : nb, p0 = 0, p1 = nb;
    int *bound = malloc(sizeof(int) * (size_t)((nps > threads ? nps : threads) + 1));
    if (!bound) {
        free(len);
        free(tok);
        free(keep_idx);
        return gm_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
    }
    if (nparts > 1) {
        split_by_cost(so, to, Sl, Tl, 0, nb, nps, bound);
        p0 = part < nps ? bound[part] : nb;
        p1 = part < nps ? bound[part + 1] : nb;
    }
    int W = threads < p1 - p0 ? threads : p1 - p0;
    if (W == 0) { /* nothing here: zero statistics, gradients unchanged */
        free(bound);
        free(len);
        free(tok);
        free(keep_idx);
        return GA_OK;
    }
    chunk *ch = calloc((size_t)W, sizeof *ch);
    int *local = malloc(sizeof(int) * (size_t)(2 * (nb + W)));
    job jb;
    memset(&jb, 0, sizeof jb);
    if (!ch || !local) {
        st = gm_set_error(GA_ENOMEM, "gm_forward_backward: out of memory");
        goto done;
    }
    st = ensure_workers(m, W, train);
    if (st != GA_OK)
        goto done;
    split_by_cost(so, to, Sl, Tl, p0, p1, W, bound);
    {
        int lo_off = 0;
        for (int w = 0; w < W; w++) {
            int k0 = bound[w], k = bound[w + 1];
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
    jb.reg = (train && gm_uses_gpn(c) && c->lambda > 0.0f && c->n_dec > 0)
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
            st = gm_set_error(m->workers[w].st, "gm_forward_backward: out of memory (workspace)");
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
    free(bound);
    free(tok);
    free(len);
    free(keep_idx);
    return st;
}
