/* cli_decode.c — what translate and eval share: their decoding options
 * (parsed once, cli_decode_opt) and the parallel decoder translate_all
 * (sentences sorted by length and cut into batches; each pool thread has
 * one gs_decoder and takes whole batches until none is left). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

typedef struct xlate_job {
    gs_decoder **dec;       /* [threads] */
    int nbatch, batch;      /* batches of `batch` sentences of order[] */
    const int *order;       /* [nvalid] valid sentences, longest first */
    int nvalid;
    int32_t *const *src;
    const int *src_len;
    int32_t **out;          /* [n][out_cap] */
    int *out_len;
    int out_cap;
    char **err;             /* [n]: message or NULL */
    double *ms;             /* [n] */
    gm_step_stats *stats;   /* [threads] */
    long *steps;            /* [threads] */
    atomic_int next;        /* next batch to take */
} xlate_job;

/* Worker `worker` takes whole batches until none is left. */
static void xlate_task(void *arg, int task, int worker)
{
    (void)task;
    xlate_job *j = arg;
    enum { MAXB = 4096 };
    const int32_t *src[MAXB];
    int S[MAXB];
    int32_t *out[MAXB];
    for (int k; (k = atomic_fetch_add(&j->next, 1)) < j->nbatch;) {
        const int *ids = j->order + (size_t)k * j->batch;
        int nb = j->nvalid - k * j->batch < j->batch ? j->nvalid - k * j->batch : j->batch;
        for (int b = 0; b < nb; b++) {
            src[b] = j->src[ids[b]];
            S[b] = j->src_len[ids[b]];
            out[b] = j->out[ids[b]];
        }
        long steps = 0;
        int lens[MAXB];
        double t0 = gu_now();
        int rc = gs_translate_batch(j->dec[worker], nb, src, S, out, j->out_cap, lens,
                                    &j->stats[worker], &steps);
        double ms = 1e3 * (gu_now() - t0) / nb;
        for (int b = 0; b < nb; b++) {
            j->out_len[ids[b]] = rc ? 0 : lens[b];
            j->ms[ids[b]] = ms;
            if (rc)
                j->err[ids[b]] = strdup(gu_error());
        }
        j->steps[worker] += steps;
    }
}

void xlate_result_free(xlate_result *r, int n)
{
    if (r->out)
        for (int i = 0; i < n; i++)
            free(r->out[i]);
    if (r->err)
        for (int i = 0; i < n; i++)
            free(r->err[i]);
    free(r->out);
    free(r->out_len);
    free(r->err);
    free(r->ms);
    memset(r, 0, sizeof *r);
}

/* qsort of sentence indices: longer source first, then input order. */
static const int *g_len;
static int by_length(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (g_len[x] != g_len[y])
        return g_len[x] > g_len[y] ? -1 : 1;
    return (x > y) - (x < y);
}

int translate_all(const gm_model *m, ga_pool *pool, const gs_options *so, int batch, int n,
                  int32_t *const *src, const int *src_len, xlate_result *r)
{
    memset(r, 0, sizeof *r);
    int T = ga_pool_threads(pool);
    int cap = gm_get_config(m)->max_len + 1;
    r->out = calloc((size_t)n + 1, sizeof *r->out);
    r->out_len = calloc((size_t)n + 1, sizeof *r->out_len);
    r->err = calloc((size_t)n + 1, sizeof *r->err);
    r->ms = calloc((size_t)n + 1, sizeof *r->ms);
    int *order = calloc((size_t)n + 1, sizeof *order);
    gs_decoder **dec = calloc((size_t)T, sizeof *dec);
    gm_step_stats *stats = calloc((size_t)T, sizeof *stats);
    long *steps = calloc((size_t)T, sizeof *steps);
    int rc = -1;
    if (!r->out || !r->out_len || !r->err || !r->ms || !order || !dec || !stats || !steps) {
        gu_fail("out of memory");
        goto done;
    }
    if (batch < 1 || batch > 4096) {
        gu_fail("batch of %d sentences out of range [1, 4096]", batch);
        goto done;
    }
    /* sentences the model cannot take get their error now; the others are
     * sorted by length, so that a batch holds similar lengths */
    int nvalid = 0, max_src = 1;
    for (int i = 0; i < n; i++) {
        if (!(r->out[i] = malloc((size_t)cap * sizeof(int32_t)))) {
            gu_fail("out of memory");
            goto done;
        }
        if (gs_check(m, src[i], src_len[i]) != 0) {
            if (!(r->err[i] = strdup(gu_error()))) {
                gu_fail("out of memory");
                goto done;
            }
            continue;
        }
        order[nvalid++] = i;
        max_src = src_len[i] > max_src ? src_len[i] : max_src;
    }
    g_len = src_len;
    qsort(order, (size_t)nvalid, sizeof *order, by_length);
    /* fewer sentences than batch * threads: smaller batches, so that every
     * thread gets one (the ids do not depend on the batch) */
    if (nvalid < batch * T)
        batch = nvalid / T > 0 ? (nvalid + T - 1) / T : 1;
    int nbatch = (nvalid + batch - 1) / batch;
    int workers = T < nbatch ? T : (nbatch > 0 ? nbatch : 1);
    for (int t = 0; t < workers; t++)
        if (!(dec[t] = gs_create(m, so, batch < nvalid ? batch : (nvalid > 0 ? nvalid : 1),
                                 max_src)))
            goto done;
    xlate_job j = {dec, nbatch, batch, order, nvalid, src, src_len, r->out, r->out_len, cap,
                   r->err, r->ms, stats, steps, 0};
    double t0 = gu_now();
    ga_pool_run(pool, xlate_task, &j, workers);
    r->seconds = gu_now() - t0;
    memset(&r->stats, 0, sizeof r->stats);
    for (int t = 0; t < T; t++) {
        r->stats.density_sum += stats[t].density_sum;
        r->stats.density_count += stats[t].density_count;
        for (int l = 0; l < GA_MAX_LEVELS; l++)
            r->stats.level_count[l] += stats[t].level_count[l];
        r->stats.prep_rows += stats[t].prep_rows;
        r->stats.prep_keys += stats[t].prep_keys;
        r->stats.prep_candidates += stats[t].prep_candidates;
        r->stats.prep_fallback += stats[t].prep_fallback;
        r->stats.prep_bytes += stats[t].prep_bytes;
        r->stats.xattn_cpu += stats[t].xattn_cpu;
        if (stats[t].prep_z_bound > r->stats.prep_z_bound)
            r->stats.prep_z_bound = stats[t].prep_z_bound;
        r->steps += steps[t];
    }
    for (int i = 0; i < n; i++) {
        if (r->err[i])
            r->nerr++;
        else
            r->out_tokens += r->out_len[i] + 1;
    }
    rc = 0;
done:
    if (dec)
        for (int t = 0; t < T; t++)
            gs_free(dec[t]);
    free(order);
    free(dec);
    free(stats);
    free(steps);
    return rc;
}

void cli_decode_opts_default(cli_decode_opts *o)
{
    gs_options_default(&o->so);
    o->threads = 0;
    o->batch = 0;
    o->place = "none";
    o->isa = NULL;
    o->max_len = 0;
}

int cli_batch(const cli_decode_opts *o)
{
    if (o->batch > 0)
        return (int)o->batch;
    return o->so.beam < CLI_BATCH_ROWS ? CLI_BATCH_ROWS / o->so.beam : 1;
}

int cli_decode_opt(int c, const char *arg, cli_decode_opts *o)
{
    long v;
    double x;
    switch (c) {
    case 'b':
        if (parse_int("--beam", arg, 1, 64, &v))
            return -1;
        o->so.beam = (int)v;
        return 1;
    case 'a':
        if (parse_float("--alpha", arg, 0, 10, &x))
            return -1;
        o->so.alpha = (float)x;
        return 1;
    case 'A':
        if (parse_float("--max-len-a", arg, 0, 100, &x))
            return -1;
        o->so.max_len_a = (float)x;
        return 1;
    case 'B':
        if (parse_int("--max-len-b", arg, 0, 100000, &v))
            return -1;
        o->so.max_len_b = (int)v;
        return 1;
    case 't':
        if (parse_int("--threads", arg, 0, 4096, &o->threads))
            return -1;
        return 1;
    case 'p': o->place = arg; return 1;
    case 'i': o->isa = arg; return 1;
    case 'x': o->so.prepared = 0; return 1;
    case 'z':
        if (strcmp(arg, "exact") == 0) {
            o->so.prep_z = GA_PREP_Z_EXACT;
        } else if (strcmp(arg, "bounded") == 0) {
            o->so.prep_z = GA_PREP_Z_BOUNDED;
        } else {
            errorf("--prep-z '%s': expected exact or bounded", arg);
            return -1;
        }
        return 1;
    case 'L':
        if (parse_int("--max-len", arg, 2, 65535, &o->max_len))
            return -1;
        return 1;
    case 'N':
        if (parse_int("--batch", arg, 1, 4096, &o->batch))
            return -1;
        return 1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void xlate_summary(const xlate_result *r, int n, const gs_options *so, int batch, int threads,
                   char *buf, size_t len)
{
    double sec = r->seconds > 0 ? r->seconds : 1e-9;
    /* median over the translated sentences of their batch's time per sentence */
    double med = 0;
    double *ms = malloc(sizeof(double) * ((size_t)n + 1));
    int k = 0;
    if (ms) {
        for (int i = 0; i < n; i++)
            if (!r->err[i])
                ms[k++] = r->ms[i];
        qsort(ms, (size_t)k, sizeof *ms, cmp_double);
        med = k ? (k % 2 ? ms[k / 2] : 0.5 * (ms[k / 2 - 1] + ms[k / 2])) : 0;
        free(ms);
    }
    char prep[256];
    if (!so->prepared)
        snprintf(prep, sizeof prep, "prepared keys off");
    else
        snprintf(prep, sizeof prep,
                 "prepared keys (Z %s): exact scores for %.1f%% of the keys, %lld fallback "
                 "row(s), max relative Z bound %.3g",
                 so->prep_z == GA_PREP_Z_BOUNDED ? "bounded" : "exact",
                 r->stats.prep_keys ? 100.0 * (double)r->stats.prep_candidates /
                                          (double)r->stats.prep_keys
                                    : 0.0,
                 r->stats.prep_fallback, r->stats.prep_z_bound);
    snprintf(buf, len,
             "%d sentences in %.2fs: %.2f sentences/s, %.1f tokens/s (beam %d, batch %d, %d "
             "thread(s)); median %.2f ms per sentence (its batch's time / its sentences); "
             "cross-attention %.3f CPU-s (%.2f us per hypothesis-step); %s",
             n, r->seconds, n / sec, (double)r->out_tokens / sec, so->beam, batch, threads,
             med, r->stats.xattn_cpu,
             r->steps ? 1e6 * r->stats.xattn_cpu / (double)r->steps : 0.0, prep);
}
