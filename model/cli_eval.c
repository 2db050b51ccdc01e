/* cli_eval.c — `granattn eval`: translates a split (DATA_DIR/SPLIT.bin,
 * translate_all of cli_decode.c), scores it with tools/eval_bleu.py
 * (sacreBLEU BLEU + chrF) and writes a JSON with density, level mix and
 * decode speed. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "data.h"

static void usage_eval(FILE *f)
{
    fprintf(f,
"usage: granattn eval --model CKPT [--split test] [options]\n"
"\n"
"Translates a split (sources from DATA_DIR/SPLIT.bin), scores it against\n"
"data/corpus/SPLIT.es with sacreBLEU (BLEU and chrF, via tools/eval_bleu.py,\n"
"which installs sacrebleu into .venv-eval on first use), and reports the mean\n"
"cross-attention density, the level mix and the decode speed.  Writes a JSON.\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint\n"
"  --split NAME       test (default) | dev | train\n"
"  --limit N          first N sentences only (quick checks)\n"
"  --json FILE        result file (default: <ckpt dir>/eval-SPLIT-beamK.json)\n"
"  --hyp FILE         also keep the translations (text) here\n"
"                     (default: <ckpt dir>/hyp-SPLIT-beamK.txt)\n"
"  --data-dir DIR     token files (default: the checkpoint's data_dir)\n"
"  --corpus-dir DIR   reference text (default: <project>/data/corpus)\n"
"  --spm FILE|none    SentencePiece model that turns the output ids into text\n"
"                     (default: data/spm/spm.model); none: score the id\n"
"                     sequences themselves against references written as id\n"
"                     lines (toy data in tests, no SentencePiece model needed)\n"
CLI_DECODE_HELP
"  -h, --help         this text\n");
}

int cmd_eval(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"split", required_argument, 0, 'S'},
        {"limit", required_argument, 0, 'n'}, {"json", required_argument, 0, 'j'},
        {"hyp", required_argument, 0, 'H'},   {"data-dir", required_argument, 0, 'D'},
        {"corpus-dir", required_argument, 0, 'C'}, {"spm", required_argument, 0, 'P'},
        CLI_DECODE_LONGOPTS,
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = NULL, *split = "test", *json = NULL, *hyp = NULL,
               *data_dir = NULL, *corpus_dir = NULL, *spm_model = NULL;
    long limit = 0;
    cli_decode_opts dopt;
    cli_decode_opts_default(&dopt);
    const gs_options *so = &dopt.so;
    int c, k;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'S': split = optarg; break;
        case 'n':
            if (parse_int("--limit", optarg, 1, 100000000, &limit))
                return 2;
            break;
        case 'j': json = optarg; break;
        case 'H': hyp = optarg; break;
        case 'D': data_dir = optarg; break;
        case 'C': corpus_dir = optarg; break;
        case 'P': spm_model = optarg; break;
        case 'h': usage_eval(stdout); return 0;
        default:
            if ((k = cli_decode_opt(c, optarg, &dopt)) < 0)
                return 2;
            if (k == 0) {
                usage_eval(stderr);
                return 2;
            }
        }
    }
    if (optind < argc) {
        errorf("unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (!model) {
        errorf("--model CKPT is required (try --help)");
        return 2;
    }
    if (strchr(split, '/') || !*split) {
        errorf("--split '%s': expected a split name such as test or dev", split);
        return 2;
    }
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    ga_pool *pool = NULL;
    gd_corpus corp;
    memset(&corp, 0, sizeof corp);
    xlate_result r;
    memset(&r, 0, sizeof r);
    int32_t **src = NULL;
    int *src_len = NULL;
    int n = 0;
    const char *root = gu_project_root();
    if (!root) {
        errorf("%s", gu_error());
        return 1;
    }
    char ref_path[PATH_MAX + 64], bin_path[PATH_MAX + 64], json_buf[PATH_MAX + 64],
        hyp_buf[PATH_MAX + 64], ids_path[PATH_MAX], extra_path[PATH_MAX];
    const ga_kernels *kt = pick_kernels(dopt.isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model_max_len(model, kt, (int)dopt.max_len, &L) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    long ck_step = (long)L.ck.state.step;
    gk_free(&L.ck);
    if (corpus_dir)
        snprintf(ref_path, sizeof ref_path, "%s/%s.es", corpus_dir, split);
    else
        snprintf(ref_path, sizeof ref_path, "%s/data/corpus/%s.es", root, split);
    char dd_buf[PATH_MAX];
    snprintf(bin_path, sizeof bin_path, "%s/%s.bin",
             data_dir ? data_dir
                      : checkpoint_data_dir(L.cfg.train.data_dir, dd_buf, sizeof dd_buf),
             split);
    if (!gu_file_exists(ref_path)) {
        errorf("%s: no such reference file (run tools/prepare-data.sh)", ref_path);
        goto out;
    }
    if (gd_load(bin_path, 0, L.mc.vocab, &corp) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    /* Output paths (default: next to the checkpoint) and their directories
     * now, not after translating everything. */
    char ckdir[PATH_MAX];
    snprintf(ckdir, sizeof ckdir, "%s", model);
    char *slash = strrchr(ckdir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(ckdir, sizeof ckdir, ".");
    if (!json) {
        snprintf(json_buf, sizeof json_buf, "%s/eval-%s-beam%d.json", ckdir, split,
                 so->beam);
        json = json_buf;
    }
    if (!hyp) {
        snprintf(hyp_buf, sizeof hyp_buf, "%s/hyp-%s-beam%d.txt", ckdir, split,
                 so->beam);
        hyp = hyp_buf;
    }
    if (make_parent_dir("--json", json) != 0 || make_parent_dir("--hyp", hyp) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    n = corp.n;
    if (limit > 0 && n > limit)
        n = (int)limit;
    src = calloc((size_t)n + 1, sizeof *src);
    src_len = calloc((size_t)n + 1, sizeof *src_len);
    if (!src || !src_len) {
        errorf("out of memory");
        goto out;
    }
    int truncated = 0, max_src = L.mc.max_len - 1;
    for (int i = 0; i < n; i++) {
        const gd_pair *p = &corp.pairs[i];
        int len = p->n_src;
        if (len > max_src) {
            len = max_src;
            truncated++;
        }
        src[i] = malloc(((size_t)len + 1) * sizeof(int32_t));
        if (!src[i]) {
            errorf("out of memory");
            goto out;
        }
        for (int k = 0; k < len; k++)
            src[i][k] = p->src[k];
        src_len[i] = len;
    }
    if (truncated)
        warnf("%d source sentence(s) longer than the model's max_len were truncated "
              "to %d tokens",
              truncated, max_src);
    pool = make_pool((int)dopt.threads, dopt.place);
    if (!pool) {
        errorf("%s", gu_error());
        goto out;
    }
    fprintf(stderr, "translating %d %s sentences (beam %d, batch %d, %d threads) ...\n", n,
            split, so->beam, cli_batch(&dopt), ga_pool_threads(pool));
    if (translate_all(L.m, pool, so, cli_batch(&dopt), n, src, src_len, &r) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    if (r.nerr) {
        for (int i = 0; i < n; i++)
            if (r.err[i]) {
                errorf("sentence %d: %s", i + 1, r.err[i]);
                break;
            }
        errorf("%d sentence(s) failed to translate", r.nerr);
        goto out;
    }
    {
        char sum[512];
        xlate_summary(&r, n, so, cli_batch(&dopt), ga_pool_threads(pool), sum, sizeof sum);
        fprintf(stderr, "granattn eval: %s\n", sum);
    }

    if (tmpfile_path("out.ids", ids_path, sizeof ids_path) ||
        tmpfile_path("extra.json", extra_path, sizeof extra_path) ||
        write_idlines(ids_path, n, r.out, r.out_len)) {
        errorf("%s", gu_error());
        goto out;
    }
    {
        FILE *f = fopen(extra_path, "w");
        if (!f) {
            errorf("cannot write %s: %s", extra_path, strerror(errno));
            goto out;
        }
        const gm_config *mc = &L.mc;
        double dens = r.stats.density_count
                          ? r.stats.density_sum / (double)r.stats.density_count
                          : 1.0;
        double tot = 0;
        for (int l = 0; l < mc->L; l++)
            tot += r.stats.level_count[l];
        fprintf(f, "{\n  \"model\": ");
        json_string(f, model);
        fprintf(f, ",\n  \"step\": %ld,\n  \"split\": ", ck_step);
        json_string(f, split);
        fprintf(f, ",\n");
        fprintf(f, "  \"sentences\": %d,\n  \"beam\": %d,\n  \"alpha\": %g,\n", n,
                so->beam, so->alpha);
        fprintf(f, "  \"attention\": \"%s\",\n  \"gpn\": \"%s\",\n  \"norm\": \"%s\",\n"
                   "  \"lambda\": %g,\n",
                mc->dense ? "dense" : "sparse", gcf_gpn_name(L.cfg.gpn),
                mc->mode == GA_NORM_RENORM ? "renorm" : "seed", mc->lambda);
        fprintf(f, "  \"topk_k\": %d,\n  \"topk_frac\": %.9g,\n", mc->topk_k,
                (double)mc->topk_frac);
        fprintf(f, "  \"density\": %.6f,\n  \"levels\": [", dens);
        for (int l = 0; !mc->dense && mc->level_source != GM_LEVELS_TOPK && l < mc->L; l++)
            fprintf(f, "%s{\"level\": %d, \"tau\": %g, \"fraction\": %.6f}",
                    l ? ", " : "", l, mc->tau[l],
                    tot > 0 ? r.stats.level_count[l] / tot : 0.0);
        fprintf(f, "],\n  \"decode_seconds\": %.3f,\n  \"threads\": %d,\n  \"batch\": %d,\n",
                r.seconds, ga_pool_threads(pool), cli_batch(&dopt));
        fprintf(f, "  \"sentences_per_second\": %.3f,\n  \"tokens_per_second\": %.1f,\n",
                n / (r.seconds > 0 ? r.seconds : 1e-9),
                (double)r.out_tokens / (r.seconds > 0 ? r.seconds : 1e-9));
        fprintf(f, "  \"prepared\": %s,\n  \"prep_z\": \"%s\",\n"
                   "  \"prep_candidate_fraction\": %.6f,\n  \"prep_fallback_rows\": %lld,\n"
                   "  \"prep_z_bound\": %.6g,\n  \"xattn_cpu_seconds\": %.4f,\n",
                so->prepared ? "true" : "false",
                so->prep_z == GA_PREP_Z_BOUNDED ? "bounded" : "exact",
                r.stats.prep_keys ? (double)r.stats.prep_candidates / (double)r.stats.prep_keys
                                  : 0.0,
                r.stats.prep_fallback, r.stats.prep_z_bound, r.stats.xattn_cpu);
        fprintf(f, "  \"output_tokens\": %ld,\n  \"decoder_steps\": %ld,\n"
                   "  \"kernels\": \"%s\"\n}\n",
                r.out_tokens, r.steps, kt->name);
        fclose(f);
    }
    {
        char script[PATH_MAX + 64], limit_s[32];
        snprintf(script, sizeof script, "%s/tools/eval_bleu.py", root);
        snprintf(limit_s, sizeof limit_s, "%d", n);
        char *av[] = {(char *)python_path(), script, "--hyp-ids", ids_path,
                      "--ref", ref_path, "--limit", limit_s, "--extra", extra_path,
                      "--json", (char *)json, "--hyp-out", (char *)hyp,
                      spm_model ? "--spm" : NULL, (char *)spm_model, NULL};
        int prc = run_process(av, NULL, NULL);
        if (prc != 0) {
            errorf("tools/eval_bleu.py failed%s%s", prc < 0 ? ": " : "",
                   prc < 0 ? gu_error() : "");
            goto out;
        }
    }
    rc = 0;
out:
    xlate_result_free(&r, n);
    if (src)
        for (int i = 0; i < n; i++)
            free(src[i]);
    free(src);
    free(src_len);
    gd_free(&corp);
    loaded_free(&L);
    if (pool)
        ga_pool_destroy(pool);
    return rc;
}
