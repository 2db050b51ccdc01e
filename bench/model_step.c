/* model_step.c — granattn-model-step: times ONE TRAINING STEP of the C model
 * (zero grads, forward + backward over a batch on the thread pool, global-norm
 * clipping, AdamW update), the same step `granattn train` takes, for the
 * side-by-side comparison with PyTorch (tools/torch_step.py,
 * tools/step-speed.sh).
 *
 *   granattn-model-step --config FILE [--set k=v]... [--data DIR] [--threads T]
 *                       [--steps K] [--warmup W] [--batches-out FILE] --json OUT
 *
 * The model, optimiser, batch order and step seeds are built exactly as
 * cmd_train (model/cli_train.c) builds them: gcf_load / gcf_set / gcf_check /
 * gcf_model_config, gm_create(seed), go_init + go_no_decay on the tensors
 * without weight decay, the shuffled token-batch iterator of model/data.c
 * (batch_tokens, gu_mix(seed, 1)), step seeds from gu_rng seeded with
 * gu_mix(seed, 2).  The first W + K training batches are taken (fetched and
 * copied before timing, so batching is not timed); W warm-up steps are run
 * (workspaces grow on demand), then K timed steps.
 *
 * The timed step is gm_train_step (model/train_step.c), the function
 * cmd_train calls per step:
 *   gm_zero_grads; gm_forward_backward(train = 1, step_seed, pool);
 *   go_clip(pool, clip); go_lr(t + 1); go_step(pool)   (skipped if non-finite).
 * Logging, evaluation and checkpointing are not part of the step.
 *
 * --batches-out FILE writes what tools/torch_step.py needs to run the
 * identical steps: one line of JSON (model config, optimiser settings, the
 * learning rate of every step, the tensor table with shapes and weight-decay
 * flags, the batch table, the array table), then raw little-endian arrays:
 * params (f32, the INITIAL parameters), theta8 (f32, the keep thresholds
 * ga_theta_from_tau), and per batch src [B][S], tgt_in [B][T], tgt_out [B][T]
 * (i32, 0-padded at the end; a sentence is its ids up to the first 0).
 * Offsets are relative to the first byte after the JSON line (the layout of
 * tools/torch_check/dump.c).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_file.h"
#include "data.h"
#include "model.h"
#include "optim.h"
#include "train_step.h"
#include "util.h"

static void usage(FILE *o)
{
    fprintf(o,
            "usage: granattn-model-step --config FILE [--set KEY=VALUE]... [--data DIR]\n"
            "                           [--threads T] [--place P] [--isa ISA]\n"
            "                           [--steps K] [--warmup W] [--batches-out FILE]\n"
            "                           --json OUT\n"
            "\n"
            "Times one training step (zero grads, forward + backward on the thread pool,\n"
            "gradient clipping, AdamW) of the model of a config, exactly as\n"
            "`granattn train` steps, over the first W + K training batches.\n"
            "\n"
            "  --config FILE       model/training config (configs/default.ini syntax)\n"
            "  --set KEY=VALUE     override a config key (repeatable), e.g. --set dropout=0\n"
            "  --data DIR          token directory (default: the config's data_dir)\n"
            "  --threads T         thread-pool workers (default: the config's threads;\n"
            "                      0 = all cores)\n"
            "  --place P           none | compact | scatter (default: the config's place)\n"
            "  --isa ISA           kernel variant (default: the best this CPU supports)\n"
            "  --steps K           timed steps (default 5, >= 1)\n"
            "  --warmup W          untimed warm-up steps before them (default 1, >= 0)\n"
            "  --batches-out FILE  write the initial parameters and the W + K batches\n"
            "                      for tools/torch_step.py\n"
            "  --json OUT          write the results (per-step seconds, tokens, loss)\n"
            "  --help              this text\n");
}

static int parse_long(const char *what, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "granattn-model-step: %s '%s': expected an integer in [%ld, %ld]\n",
                what, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Closes the previous JSON array and opens the next: "],\n  \"name\": [v0, v1, ...". */
static void json_doubles(FILE *o, const char *name, const double *v, int n, const char *fmt)
{
    fprintf(o, "],\n  \"%s\": [", name);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", " : "", o);
        fprintf(o, fmt, v[i]);
    }
}

static void json_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(o, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", o);
        else if (ch < 0x20)
            fprintf(o, "\\u%04x", ch);
        else
            fputc(ch, o);
    }
    fputc('"', o);
}

typedef struct saved_batch {
    int B, S, T;
    int32_t *src, *tin, *tout;
    long src_tokens, tgt_tokens;
} saved_batch;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void write_config_json(FILE *o, const gm_config *c)
{
    fprintf(o, "{\"vocab\": %d, \"d\": %d, \"H\": %d, \"ff\": %d, \"n_enc\": %d, "
               "\"n_dec\": %d, \"act\": \"%s\", \"g\": %d, \"L\": %d, \"tau\": [",
            c->vocab, c->d, c->H, c->ff, c->n_enc, c->n_dec,
            c->act == GM_ACT_GELU ? "gelu" : "relu", c->g, c->L);
    for (int l = 0; l < c->L; l++)
        fprintf(o, "%s%.9g", l ? ", " : "", (double)c->tau[l]);
    fprintf(o, "], \"mode\": \"%s\", \"dense\": %d, \"lambda\": %.9g, \"dropout\": %.9g, "
               "\"label_smoothing\": %.9g, \"gumbel\": %d, \"gumbel_temp\": %.9g, "
               "\"max_len\": %d, \"level_source\": \"%s\"}",
            c->mode == GA_NORM_RENORM ? "renorm" : "seed", c->dense, (double)c->lambda,
            (double)c->dropout, (double)c->label_smoothing, c->gumbel,
            (double)c->gumbel_temp, c->max_len,
            c->level_source == GM_LEVELS_RANDOM ? "random" : "gpn");
}

static int write_batches(const char *path, gm_model *m, const gm_config *mc,
                         const go_options *oo, const float *params0,
                         const saved_batch *sb, int nb)
{
    ga_config acfg;
    gm_config_attn(mc, &acfg);
    float theta8[GA_MAX_LEVELS];
    ga_theta_from_tau(&acfg, theta8);
    size_t np = gm_num_params(m);

    FILE *o = fopen(path, "wb");
    if (!o) {
        fprintf(stderr, "granattn-model-step: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(o, "{\"format\": \"granattn-model-step-batches/1\", \"config\": ");
    write_config_json(o, mc);
    fprintf(o, ", \"optim\": {\"lr\": %.9g, \"beta1\": %.9g, \"beta2\": %.9g, \"eps\": %.9g, "
               "\"weight_decay\": %.9g, \"clip\": %.9g}, \"lr\": [",
            (double)oo->lr, (double)oo->beta1, (double)oo->beta2, (double)oo->eps,
            (double)oo->weight_decay, (double)oo->clip);
    for (int i = 0; i < nb; i++)
        fprintf(o, "%s%.9g", i ? ", " : "", (double)go_lr(oo, i + 1));
    fprintf(o, "], \"tensors\": [");
    for (int i = 0; i < gm_num_tensors(m); i++) {
        const gm_tensor_info *t = gm_tensor(m, i);
        fprintf(o, "%s{\"name\": \"%s\", \"offset\": %zu, \"rows\": %d, \"cols\": %d, "
                   "\"decay\": %d}",
                i ? ", " : "", t->name, t->offset, t->rows, t->cols, t->decay);
    }
    size_t off = 0;
    fprintf(o, "], \"arrays\": {\"params\": {\"dtype\": \"f32\", \"offset\": 0, \"count\": %zu}, ",
            np);
    off += np * 4;
    fprintf(o, "\"theta8\": {\"dtype\": \"f32\", \"offset\": %zu, \"count\": %d}}, \"batches\": [",
            off, GA_MAX_LEVELS);
    off += GA_MAX_LEVELS * 4;
    for (int i = 0; i < nb; i++) {
        size_t ns = (size_t)sb[i].B * sb[i].S, nt = (size_t)sb[i].B * sb[i].T;
        fprintf(o, "%s{\"B\": %d, \"S\": %d, \"T\": %d, \"src\": %zu, \"tgt_in\": %zu, "
                   "\"tgt_out\": %zu, \"src_tokens\": %ld, \"tgt_tokens\": %ld}",
                i ? ", " : "", sb[i].B, sb[i].S, sb[i].T, off, off + 4 * ns,
                off + 4 * (ns + nt), sb[i].src_tokens, sb[i].tgt_tokens);
        off += 4 * (ns + 2 * nt);
    }
    fprintf(o, "]}\n");
    int bad = fwrite(params0, 4, np, o) != np ||
              fwrite(theta8, 4, GA_MAX_LEVELS, o) != GA_MAX_LEVELS;
    for (int i = 0; i < nb && !bad; i++) {
        size_t ns = (size_t)sb[i].B * sb[i].S, nt = (size_t)sb[i].B * sb[i].T;
        bad = fwrite(sb[i].src, 4, ns, o) != ns || fwrite(sb[i].tin, 4, nt, o) != nt ||
              fwrite(sb[i].tout, 4, nt, o) != nt;
    }
    if (fclose(o) != 0 || bad) {
        fprintf(stderr, "granattn-model-step: write to %s failed\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"config", required_argument, 0, 'c'},  {"set", required_argument, 0, 's'},
        {"data", required_argument, 0, 'd'},    {"threads", required_argument, 0, 't'},
        {"place", required_argument, 0, 'p'},   {"isa", required_argument, 0, 'i'},
        {"steps", required_argument, 0, 'k'},   {"warmup", required_argument, 0, 'w'},
        {"batches-out", required_argument, 0, 'b'}, {"json", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *config = NULL, *data = NULL, *place_s = NULL, *isa = NULL;
    const char *batches_out = NULL, *json_out = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0;
    long threads_opt = -1, steps = 5, warmup = 1;
    int c;
    if (!sets)
        return 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 'd': data = optarg; break;
        case 't':
            if (parse_long("--threads", optarg, 0, 4096, &threads_opt))
                return 2;
            break;
        case 'p': place_s = optarg; break;
        case 'i': isa = optarg; break;
        case 'k':
            if (parse_long("--steps", optarg, 1, 1000000, &steps))
                return 2;
            break;
        case 'w':
            if (parse_long("--warmup", optarg, 0, 1000000, &warmup))
                return 2;
            break;
        case 'b': batches_out = optarg; break;
        case 'j': json_out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "granattn-model-step: unexpected argument '%s' (try --help)\n",
                argv[optind]);
        return 2;
    }
    if (!config || !json_out) {
        fprintf(stderr, "granattn-model-step: --config FILE and --json OUT are required "
                        "(try --help)\n");
        return 2;
    }

    /* config, as cmd_train */
    gcf_file cfg;
    gm_config mc;
    gcf_defaults(&cfg);
    if (gcf_load(config, &cfg) != 0) {
        fprintf(stderr, "granattn-model-step: %s\n", gu_error());
        return 1;
    }
    for (int i = 0; i < nsets; i++)
        if (gcf_set(&cfg, sets[i]) != 0) {
            fprintf(stderr, "granattn-model-step: --set %s: %s\n", sets[i], gu_error());
            return 1;
        }
    if (data) {
        if (strlen(data) >= sizeof cfg.train.data_dir) {
            fprintf(stderr, "granattn-model-step: --data: path too long\n");
            return 2;
        }
        snprintf(cfg.train.data_dir, sizeof cfg.train.data_dir, "%s", data);
    }
    if (threads_opt >= 0)
        cfg.train.threads = (int)threads_opt;
    if (place_s) {
        if (strlen(place_s) >= sizeof cfg.train.place) {
            fprintf(stderr, "granattn-model-step: --place: value too long\n");
            return 2;
        }
        snprintf(cfg.train.place, sizeof cfg.train.place, "%s", place_s);
    }
    if (gcf_check(&cfg) != 0 || gcf_model_config(&cfg, &mc) != 0) {
        fprintf(stderr, "granattn-model-step: %s\n", gu_error());
        return 1;
    }
    const gcf_train *tc = &cfg.train;

    /* kernels + pool (cmd_train's pick_kernels / make_pool; no list: placement) */
    const ga_kernels *kt;
    if (isa) {
        ga_isa id;
        if (ga_isa_from_name(isa, &id) != GA_OK || !(kt = ga_kernels_for(id))) {
            fprintf(stderr, "granattn-model-step: --isa %s: %s\n", isa, ga_last_error());
            return 1;
        }
    } else if (!(kt = ga_kernels_default())) {
        fprintf(stderr, "granattn-model-step: %s\n", ga_last_error());
        return 1;
    }
    int threads = tc->threads;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    ga_place place;
    if (ga_place_from_name(tc->place, &place) != GA_OK || place == GA_PLACE_LIST) {
        fprintf(stderr, "granattn-model-step: place '%s': expected none, compact or scatter\n",
                tc->place);
        return 1;
    }
    ga_pool *pool = ga_pool_create(threads, place, NULL, 0);
    if (!pool) {
        fprintf(stderr, "granattn-model-step: thread pool (%d threads): %s\n", threads,
                ga_last_error());
        return 1;
    }

    /* data: the training iterator of cmd_train */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", tc->data_dir, tc->train_split);
    gd_corpus corpus;
    gd_iter it;
    gd_batch batch;
    memset(&corpus, 0, sizeof corpus);
    memset(&it, 0, sizeof it);
    memset(&batch, 0, sizeof batch);
    if (gd_load(path, mc.max_len, mc.vocab, &corpus) != 0 ||
        gd_iter_init(&it, &corpus, tc->batch_tokens, 1, gu_mix(tc->seed, 1)) != 0) {
        fprintf(stderr, "granattn-model-step: %s\n", gu_error());
        return 1;
    }
    int nb = (int)(warmup + steps);
    saved_batch *sb = calloc((size_t)nb, sizeof *sb);
    if (!sb)
        return 1;
    for (int i = 0; i < nb; i++) {
        if (gd_iter_next(&it, &batch) != 0) {
            fprintf(stderr, "granattn-model-step: %s\n", gu_error());
            return 1;
        }
        size_t ns = (size_t)batch.B * batch.S, nt = (size_t)batch.B * batch.T;
        sb[i].B = batch.B;
        sb[i].S = batch.S;
        sb[i].T = batch.T;
        sb[i].src = malloc(4 * (ns ? ns : 1));
        sb[i].tin = malloc(4 * (nt ? nt : 1));
        sb[i].tout = malloc(4 * (nt ? nt : 1));
        if (!sb[i].src || !sb[i].tin || !sb[i].tout)
            return 1;
        memcpy(sb[i].src, batch.src, 4 * ns);
        memcpy(sb[i].tin, batch.tgt_in, 4 * nt);
        memcpy(sb[i].tout, batch.tgt_out, 4 * nt);
        sb[i].src_tokens = batch.n_src_tokens;
        sb[i].tgt_tokens = batch.n_tgt_tokens;
    }

    /* model + optimiser, as cmd_train */
    gm_model *m = gm_create(&mc, kt, tc->seed);
    if (!m) {
        fprintf(stderr, "granattn-model-step: cannot build the model: %s\n", gm_last_error());
        return 1;
    }
    size_t np = gm_num_params(m);
    go_adamw opt;
    memset(&opt, 0, sizeof opt);
    if (go_init(&opt, &tc->opt, np) != 0) {
        fprintf(stderr, "granattn-model-step: %s\n", gu_error());
        return 1;
    }
    for (int i = 0; i < gm_num_tensors(m); i++) {
        const gm_tensor_info *ti = gm_tensor(m, i);
        if (!ti->decay)
            go_no_decay(&opt, ti->offset, ti->size);
    }
    if (batches_out &&
        write_batches(batches_out, m, &mc, &tc->opt, gm_params(m), sb, nb) != 0)
        return 1;
    gu_rng rng;
    gu_rng_seed(&rng, gu_mix(tc->seed, 2));

    /* the steps */
    double *sec = calloc((size_t)nb, sizeof *sec);
    double *loss = calloc((size_t)nb, sizeof *loss), *obj = calloc((size_t)nb, sizeof *obj);
    double *gnorm = calloc((size_t)nb, sizeof *gnorm), *dens = calloc((size_t)nb, sizeof *dens);
    long *tok = calloc((size_t)nb, sizeof *tok);
    if (!sec || !loss || !obj || !gnorm || !dens || !tok)
        return 1;
    for (int i = 0; i < nb; i++) {
        gm_batch gb = {sb[i].B, sb[i].S, sb[i].T, sb[i].src, sb[i].tin, sb[i].tout};
        uint64_t step_seed = gu_rng_next(&rng);
        gm_step_result sr;
        double t0 = gu_now();
        if (gm_train_step(m, &opt, &gb, step_seed, pool, &sr) != 0) {
            fprintf(stderr, "granattn-model-step: step %d: %s\n", i + 1, gm_last_error());
            return 1;
        }
        sec[i] = gu_now() - t0;
        const gm_stats st = sr.stats;
        double gn = sr.gnorm;
        tok[i] = st.tokens;
        loss[i] = st.loss_sum / (double)(st.tokens > 0 ? st.tokens : 1);
        obj[i] = gm_stats_objective(m, &st);
        gnorm[i] = gn;
        dens[i] = st.density_count ? st.density_sum / (double)st.density_count : 1.0;
        fprintf(stderr, "%s step %d/%d: %.1f ms, %ld tgt tokens, loss %.6f\n",
                i < warmup ? "warmup" : "timed ", i + 1, nb, 1e3 * sec[i], tok[i], loss[i]);
    }

    /* summary over the timed steps */
    double *srt = malloc(sizeof(double) * (size_t)steps);
    double tsum = 0, ttok = 0, tsrc = 0;
    if (!srt)
        return 1;
    for (long i = 0; i < steps; i++) {
        srt[i] = sec[warmup + i];
        tsum += sec[warmup + i];
        ttok += (double)tok[warmup + i];
        tsrc += (double)sb[warmup + i].src_tokens;
    }
    qsort(srt, (size_t)steps, sizeof *srt, cmp_double);
    double median = steps % 2 ? srt[steps / 2] : 0.5 * (srt[steps / 2 - 1] + srt[steps / 2]);

    FILE *o = fopen(json_out, "w");
    if (!o) {
        fprintf(stderr, "granattn-model-step: cannot write %s: %s\n", json_out, strerror(errno));
        return 1;
    }
    fprintf(o, "{\n  \"impl\": \"c\",\n  \"config_file\": ");
    json_str(o, config);
    fprintf(o, ",\n  \"sets\": [");
    for (int i = 0; i < nsets; i++) {
        fprintf(o, "%s", i ? ", " : "");
        json_str(o, sets[i]);
    }
    fprintf(o, "],\n  \"cross_attention\": \"%s\",\n  \"threads\": %d,\n  \"pool\": ",
            mc.dense ? "dense" : gcf_gpn_name(cfg.gpn), ga_pool_threads(pool));
    json_str(o, ga_pool_describe(pool));
    fprintf(o, ",\n  \"kernels\": \"%s\",\n  \"params\": %zu,\n  \"batch_tokens\": %d,\n"
               "  \"warmup\": %ld,\n  \"steps\": %ld,\n  \"model\": ",
            kt->name, np, tc->batch_tokens, warmup, steps);
    write_config_json(o, &mc);
    fprintf(o, ",\n  \"step_seconds\": [");
    for (int i = 0; i < nb; i++)
        fprintf(o, "%s%.6f", i ? ", " : "", sec[i]);
    fprintf(o, "],\n  \"tgt_tokens\": [");
    for (int i = 0; i < nb; i++)
        fprintf(o, "%s%ld", i ? ", " : "", tok[i]);
    fprintf(o, "],\n  \"src_tokens\": [");
    for (int i = 0; i < nb; i++)
        fprintf(o, "%s%ld", i ? ", " : "", sb[i].src_tokens);
    fprintf(o, "],\n  \"batch_shapes\": [");
    for (int i = 0; i < nb; i++)
        fprintf(o, "%s[%d, %d, %d]", i ? ", " : "", sb[i].B, sb[i].S, sb[i].T);
    json_doubles(o, "loss", loss, nb, "%.9g");
    json_doubles(o, "objective", obj, nb, "%.9g");
    json_doubles(o, "gnorm", gnorm, nb, "%.9g");
    json_doubles(o, "density", dens, nb, "%.6f");
    fprintf(o, "],\n  \"median_step_seconds\": %.6f,\n  \"mean_step_seconds\": %.6f,\n"
               "  \"tgt_tokens_per_second\": %.1f,\n  \"src_tgt_tokens_per_second\": %.1f,\n"
               "  \"config_text\": ",
            median, tsum / (double)steps, ttok / tsum, (ttok + tsrc) / tsum);
    char *ctext = gcf_to_string(&cfg);
    json_str(o, ctext ? ctext : "");
    free(ctext);
    fprintf(o, "\n}\n");
    if (fclose(o) != 0) {
        fprintf(stderr, "granattn-model-step: write to %s failed\n", json_out);
        return 1;
    }
    printf("C: %ld timed steps, median %.1f ms/step, %.0f tgt tok/s (threads %d, %s)\n",
           steps, 1e3 * median, ttok / tsum, ga_pool_threads(pool),
           mc.dense ? "dense" : "sparse");

    for (int i = 0; i < nb; i++) {
        free(sb[i].src);
        free(sb[i].tin);
        free(sb[i].tout);
    }
    free(sb);
    free(sec);
    free(loss);
    free(obj);
    free(gnorm);
    free(dens);
    free(tok);
    free(srt);
    free(sets);
    go_free(&opt);
    gm_free(m);
    gd_batch_free(&batch);
    gd_iter_free(&it);
    gd_free(&corpus);
    ga_pool_destroy(pool);
    return 0;
}
