/* cli_decode.c — what translate and eval share: their decoding options
 * (parsed once, cli_decode_opt) and the parallel decoder translate_all
 * (sentences interleaved over the pool's threads, one gs_decoder each). */
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

typedef struct xlate_job {
    const gm_model *m;
    gs_decoder **dec;       /* [threads] */
    int nthreads;
    int n;                  /* sentences */
    int32_t *const *src;
    const int *src_len;
    int32_t **out;          /* [n][out_cap] */
    int *out_len;
    int out_cap;
    char **err;             /* [n]: message or NULL */
    gm_step_stats *stats;   /* [threads] */
    long *steps;            /* [threads] */
    long *out_tokens;       /* [threads] */
} xlate_job;

static void xlate_task(void *arg, int task, int worker)
{
    xlate_job *j = arg;
    for (int i = task; i < j->n; i += j->nthreads) {
        long steps = 0;
        if (gs_translate(j->dec[worker], j->src[i], j->src_len[i], j->out[i],
                         j->out_cap, &j->out_len[i], &j->stats[worker], &steps) != 0) {
            j->err[i] = strdup(gu_error());
            j->out_len[i] = 0;
        }
        j->steps[worker] += steps;
        j->out_tokens[worker] += j->out_len[i] + 1;
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
    memset(r, 0, sizeof *r);
}

int translate_all(const gm_model *m, ga_pool *pool, const gs_options *so,
                         int n, int32_t *const *src, const int *src_len,
                         xlate_result *r)
{
    memset(r, 0, sizeof *r);
    int T = ga_pool_threads(pool);
    int cap = gm_get_config(m)->max_len + 1;
    r->out = calloc((size_t)n + 1, sizeof *r->out);
    r->out_len = calloc((size_t)n + 1, sizeof *r->out_len);
    r->err = calloc((size_t)n + 1, sizeof *r->err);
    gs_decoder **dec = calloc((size_t)T, sizeof *dec);
    gm_step_stats *stats = calloc((size_t)T, sizeof *stats);
    long *steps = calloc((size_t)T, sizeof *steps);
    long *otok = calloc((size_t)T, sizeof *otok);
    int rc = -1;
    if (!r->out || !r->out_len || !r->err || !dec || !stats || !steps || !otok) {
        gu_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (!(r->out[i] = malloc((size_t)cap * sizeof(int32_t)))) {
            gu_fail("out of memory");
            goto done;
        }
    for (int t = 0; t < T; t++)
        if (!(dec[t] = gs_create(m, so)))
            goto done;
    xlate_job j = {m, dec, T, n, src, src_len, r->out, r->out_len, cap, r->err,
                   stats, steps, otok};
    double t0 = gu_now();
    ga_pool_run(pool, xlate_task, &j, T < n ? T : (n > 0 ? n : 1));
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
        r->out_tokens += otok[t];
    }
    for (int i = 0; i < n; i++)
        if (r->err[i])
            r->nerr++;
    rc = 0;
done:
    if (dec)
        for (int t = 0; t < T; t++)
            gs_free(dec[t]);
    free(dec);
    free(stats);
    free(steps);
    free(otok);
    return rc;
}

void cli_decode_opts_default(cli_decode_opts *o)
{
    gs_options_default(&o->so);
    o->threads = 0;
    o->place = "none";
    o->isa = NULL;
    o->max_len = 0;
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
    }
    return 0;
}

void xlate_summary(const xlate_result *r, int n, const gs_options *so, int threads, char *buf,
                   size_t len)
{
    double sec = r->seconds > 0 ? r->seconds : 1e-9;
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
             "%d sentences in %.2fs: %.2f sentences/s, %.1f tokens/s (beam %d, %d thread(s)); "
             "cross-attention %.3f CPU-s (%.2f us per hypothesis-step); %s",
             n, r->seconds, n / sec, (double)r->out_tokens / sec, so->beam, threads,
             r->stats.xattn_cpu, r->steps ? 1e6 * r->stats.xattn_cpu / (double)r->steps : 0.0,
             prep);
}
