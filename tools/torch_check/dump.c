/* dump.c — the C side of the PyTorch cross-check (tools/torch_check/check.py).
 *
 *   dump --config FILE [--set key=value]... [--ckpt FILE] [--seed N]
 *        [--perturb A] [--batch-seed N] --out FILE
 *
 * Builds the model of a config file (configs/tiny.ini syntax, with --set
 * overrides), takes its parameters from a checkpoint (--ckpt, the PARAMS
 * section; the checkpoint's own CONFIG text is used then, --set still
 * applies) or from gm_create(seed), optionally adds uniform noise in
 * [-A, A] to every parameter (--perturb: so that layer norms, biases and the
 * GPN are not at their symmetric initial values), builds a fixed small
 * padded batch, and runs
 *   - gm_forward_backward(train = 1) with dropout 0 and no Gumbel noise
 *     (gm_set_training), one thread: the loss, the statistics and every
 *     parameter gradient;
 *   - teacher-forced gm_decode_step over each sentence: the inference
 *     path's log-probabilities [Rt][vocab];
 *   - gpn = random: the baseline's levels (gm_random_levels) for the batch.
 * Output: one line of JSON (config, tensor table, statistics, array table),
 * then the raw little-endian arrays at the offsets the table gives
 * (relative to the first byte after that line).
 *
 * Built by tests/test_torch_check.sh against build/libgranattn.a and
 * build/model/libgmodel.a, with model/config_file.c, optim.c, util.c and
 * checkpoint.c compiled in (they belong to the CLI, not to libgmodel).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config_file.h"
#include "model.h"
#include "util.h"

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "dump: %s: %s\n", what, msg ? msg : "(no message)");
    exit(1);
}

typedef struct arr {
    const char *name;
    const char *dtype; /* "f32" | "i32" | "u8" */
    const void *data;
    size_t count, elsize;
} arr;

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *ckpt_path = NULL, *out_path = NULL;
    const char *sets[64];
    int nsets = 0;
    uint64_t seed = 1, batch_seed = 7;
    double perturb = 0.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            die(a, "missing value (usage: dump --config F [--set k=v]... [--ckpt F] "
                   "[--seed N] [--perturb A] [--batch-seed N] --out F)");
        const char *v = argv[++i];
        if (!strcmp(a, "--config"))
            cfg_path = v;
        else if (!strcmp(a, "--ckpt"))
            ckpt_path = v;
        else if (!strcmp(a, "--out"))
            out_path = v;
        else if (!strcmp(a, "--set") && nsets < 64)
            sets[nsets++] = v;
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--batch-seed"))
            batch_seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--perturb"))
            perturb = atof(v);
        else
            die(a, "unknown option");
    }
    if ((!cfg_path && !ckpt_path) || !out_path)
        die("usage", "dump --config F | --ckpt F, --out F required");

    /* config: the checkpoint's own text, else the file; then the overrides */
    gcf_file f;
    gcf_defaults(&f);
    gk_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    if (ckpt_path) {
        if (gk_load(ckpt_path, 0, &ck) != 0)
            die(ckpt_path, gu_error());
        if (gcf_parse(ck.config_text, ckpt_path, &f) != 0)
            die(ckpt_path, gu_error());
    } else if (gcf_load(cfg_path, &f) != 0) {
        die(cfg_path, gu_error());
    }
    for (int i = 0; i < nsets; i++)
        if (gcf_set(&f, sets[i]) != 0)
            die(sets[i], gu_error());
    if (gcf_check(&f) != 0)
        die("config", gu_error());
    gm_config cfg;
    if (gcf_model_config(&f, &cfg) != 0)
        die("config", gu_error());
    if (ckpt_path)
        seed = f.train.seed;

    gm_model *m = gm_create(&cfg, NULL, seed);
    if (!m)
        die("gm_create", gm_last_error());
    size_t np = gm_num_params(m);
    if (ckpt_path) {
        if (ck.n_params != np)
            die(ckpt_path, "parameter count does not match the config");
        memcpy(gm_params(m), ck.params, sizeof(float) * np);
    }
    if (perturb > 0.0) {
        uint64_t s = seed * 0x9E3779B97F4A7C15ull + 12345u;
        float *p = gm_params(m);
        for (size_t i = 0; i < np; i++)
            p[i] += (float)(perturb * (2.0 * (double)lcg(&s) / 2147483648.0 - 1.0));
    }
    /* deterministic: no dropout, no Gumbel; lambda / smoothing as configured */
    if (gm_set_training(m, cfg.lambda, 0.0f, cfg.label_smoothing, 0, cfg.gumbel_temp) != GA_OK)
        die("gm_set_training", gm_last_error());
    cfg = *gm_get_config(m);

    /* a fixed batch: B sentences of varied lengths, 0-padded at the end;
     * row 3 has no target (skipped by the model) */
    enum { B = 4, S = 9, T = 8 };
    static const int slen[B] = {7, 5, 9, 3}, tlen[B] = {6, 8, 4, 0};
    int32_t src[B * S], tin[B * T], tout[B * T];
    memset(src, 0, sizeof src);
    memset(tin, 0, sizeof tin);
    memset(tout, 0, sizeof tout);
    uint64_t bs = batch_seed;
    int V = cfg.vocab;
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < slen[b]; j++)
            src[b * S + j] = 4 + (int32_t)(lcg(&bs) % (uint64_t)(V - 4));
        int y[T + 1];
        for (int j = 0; j < tlen[b]; j++)
            y[j] = j + 1 == tlen[b] ? GM_EOS : 4 + (int32_t)(lcg(&bs) % (uint64_t)(V - 4));
        for (int j = 0; j < tlen[b]; j++) {
            tin[b * T + j] = j == 0 ? GM_BOS : y[j - 1];
            tout[b * T + j] = y[j];
        }
    }
    gm_batch batch = {B, S, T, src, tin, tout};

    gm_zero_grads(m);
    gm_stats st;
    gm_stats_zero(&st);
    if (gm_forward_backward(m, &batch, 1, 99, NULL, &st) != GA_OK)
        die("gm_forward_backward", gm_last_error());
    double objective = gm_stats_objective(m, &st);

    /* teacher-forced inference log-probabilities */
    int Rt = 0;
    for (int b = 0; b < B; b++)
        Rt += tlen[b];
    float *logp = malloc(sizeof(float) * (size_t)(Rt > 0 ? Rt : 1) * V);
    if (!logp)
        die("malloc", "out of memory");
    gm_step_stats ss;
    memset(&ss, 0, sizeof ss);
    gm_step_ws *ws = gm_step_ws_create(m, 1); /* after the parameters are set: it packs them */
    if (!ws)
        die("gm_step_ws_create", gm_last_error());
    int row = 0;
    for (int b = 0; b < B; b++) {
        if (tlen[b] == 0)
            continue;
        gm_memory *mem = gm_memory_create(m, slen[b]);
        gm_cache *cache = gm_cache_create(m, tlen[b]);
        if (!mem || !cache)
            die("gm_memory_create/gm_cache_create", gm_last_error());
        if (gm_encode(m, src + b * S, slen[b], mem) != GA_OK)
            die("gm_encode", gm_last_error());
        for (int t = 0; t < tlen[b]; t++, row++) {
            const gm_memory *mp = mem;
            int32_t tok = tin[b * T + t];
            if (gm_decode_step(m, ws, 1, &mp, &cache, &tok, logp + (size_t)row * V, &ss) != GA_OK)
                die("gm_decode_step", gm_last_error());
        }
        gm_cache_free(cache);
        gm_memory_free(mem);
    }
    gm_step_ws_free(ws);

    /* the random baseline's levels (gm_random_levels), in the order check.py
     * consumes them: decoder layer, sentence (T_b > 0), t, i */
    size_t nrl = 0;
    uint8_t *rlev = NULL;
    if (!cfg.dense && cfg.level_source == GM_LEVELS_RANDOM) {
        for (int b = 0; b < B; b++)
            nrl += (size_t)tlen[b] * slen[b];
        nrl *= (size_t)cfg.n_dec;
        rlev = malloc(nrl ? nrl : 1);
        if (!rlev)
            die("malloc", "out of memory");
        uint8_t *w = rlev;
        for (int l = 0; l < cfg.n_dec; l++)
            for (int b = 0; b < B; b++)
                for (int t = 0; t < tlen[b]; t++, w += slen[b])
                    gm_random_levels(cfg.level_probs, cfg.L, l, t, slen[b], w);
    }

    ga_config acfg;
    gm_config_attn(&cfg, &acfg);
    float theta8[GA_MAX_LEVELS];
    ga_theta_from_tau(&acfg, theta8);

    arr arrays[] = {
        {"params", "f32", gm_params(m), np, 4},
        {"grads", "f32", gm_grads(m), np, 4},
        {"src", "i32", src, (size_t)B * S, 4},
        {"tgt_in", "i32", tin, (size_t)B * T, 4},
        {"tgt_out", "i32", tout, (size_t)B * T, 4},
        {"logp", "f32", logp, (size_t)Rt * V, 4},
        {"theta8", "f32", theta8, GA_MAX_LEVELS, 4},
        {"rand_levels", "u8", rlev, nrl, 1},
    };
    int na = (int)(sizeof arrays / sizeof arrays[0]);

    FILE *o = fopen(out_path, "wb");
    if (!o)
        die(out_path, "cannot open for writing");
    fprintf(o, "{\"config\": {\"vocab\": %d, \"d\": %d, \"H\": %d, \"ff\": %d, \"n_enc\": %d, "
               "\"n_dec\": %d, \"act\": \"%s\", \"g\": %d, \"L\": %d, \"tau\": [",
            cfg.vocab, cfg.d, cfg.H, cfg.ff, cfg.n_enc, cfg.n_dec,
            cfg.act == GM_ACT_GELU ? "gelu" : "relu", cfg.g, cfg.L);
    for (int l = 0; l < cfg.L; l++)
        fprintf(o, "%s%.9g", l ? ", " : "", (double)cfg.tau[l]);
    fprintf(o, "], \"mode\": \"%s\", \"dense\": %d, \"lambda\": %.9g, \"dropout\": %.9g, "
               "\"label_smoothing\": %.9g, \"gumbel\": %d, \"max_len\": %d, "
               "\"level_source\": \"%s\", \"level_probs\": [",
            cfg.mode == GA_NORM_RENORM ? "renorm" : "seed", cfg.dense, (double)cfg.lambda,
            (double)cfg.dropout, (double)cfg.label_smoothing, cfg.gumbel, cfg.max_len,
            cfg.level_source == GM_LEVELS_RANDOM ? "random" : "gpn");
    for (int l = 0; l < cfg.L; l++)
        fprintf(o, "%s%.9g", l ? ", " : "", (double)cfg.level_probs[l]);
    fprintf(o, "]}, \"source\": \"%s\", \"seed\": %llu, \"perturb\": %.9g, "
               "\"batch\": {\"B\": %d, \"S\": %d, \"T\": %d}, "
               "\"stats\": {\"loss_sum\": %.17g, \"nll_sum\": %.17g, \"tokens\": %ld, "
               "\"correct\": %ld, \"density_sum\": %.17g, \"density_count\": %ld, "
               "\"pairs\": %.17g, \"exp_density_sum\": %.17g, \"exp_density_count\": %.17g, "
               "\"level_count\": [",
            ckpt_path ? "checkpoint" : "gm_create", (unsigned long long)seed, perturb, B, S, T,
            st.loss_sum, st.nll_sum, st.tokens, st.correct, st.density_sum, st.density_count,
            st.pairs, st.exp_density_sum, st.exp_density_count);
    for (int l = 0; l < cfg.L; l++)
        fprintf(o, "%s%.17g", l ? ", " : "", st.level_count[l]);
    fprintf(o, "]}, \"objective\": %.17g, \"decode_stats\": {\"density_sum\": %.17g, "
               "\"density_count\": %ld, \"level_count\": [",
            objective, ss.density_sum, ss.density_count);
    for (int l = 0; l < cfg.L; l++)
        fprintf(o, "%s%.17g", l ? ", " : "", ss.level_count[l]);
    fprintf(o, "]}, \"tensors\": [");
    for (int i = 0; i < gm_num_tensors(m); i++) {
        const gm_tensor_info *t = gm_tensor(m, i);
        fprintf(o, "%s{\"name\": \"%s\", \"offset\": %zu, \"rows\": %d, \"cols\": %d}",
                i ? ", " : "", t->name, t->offset, t->rows, t->cols);
    }
    fprintf(o, "], \"arrays\": {");
    size_t off = 0;
    for (int i = 0; i < na; i++) {
        fprintf(o, "%s\"%s\": {\"dtype\": \"%s\", \"offset\": %zu, \"count\": %zu}",
                i ? ", " : "", arrays[i].name, arrays[i].dtype, off, arrays[i].count);
        off += arrays[i].count * arrays[i].elsize;
    }
    fprintf(o, "}}\n");
    for (int i = 0; i < na; i++)
        if (arrays[i].count &&
            fwrite(arrays[i].data, arrays[i].elsize, arrays[i].count, o) != arrays[i].count)
            die(out_path, "write failed");
    if (fclose(o) != 0)
        die(out_path, "write failed");
    free(logp);
    free(rlev);
    if (ckpt_path)
        gk_free(&ck);
    gm_free(m);
    return 0;
}
