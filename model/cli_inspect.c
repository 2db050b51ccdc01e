/* cli_inspect.c — `granattn inspect`: translates one sentence greedily,
 * traces it teacher-forced (trace.c) and writes every decoder layer's
 * levels and attention weights as OUT/inspect.json, then renders the
 * granularity maps with tools/inspect_map.py. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "trace.h"

static void usage_inspect(FILE *f)
{
    fprintf(f,
"usage: granattn inspect --model CKPT (--sentence TEXT | --ids \"ID ...\") [options]\n"
"\n"
"Translates one sentence greedily and dumps, for every decoder layer and\n"
"output step, the granularity level of each source token and the\n"
"cross-attention weights (per head), as OUT/inspect.json; then renders\n"
"OUT/map-layerN.png with tools/inspect_map.py (source x target grid coloured\n"
"by level, weights as overlay).\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint\n"
"  --sentence TEXT    English sentence (segmented with tools/corpus/spm.py)\n"
"  --ids \"ID ...\"     the source as token ids\n"
"  --out DIR          output directory (default: inspect-out)\n"
"  --no-png           only write the JSON\n"
"  --isa NAME         kernel variant (default: best supported)\n"
"  -h, --help         this text\n");
}

static int write_inspect_json(const char *path, const gm_config *mc,
                              const gcf_file *cfg, const gt_trace *tr,
                              const int32_t *src, const int32_t *tgt_out)
{
    int S = tr->S, T = tr->T;
    FILE *f = fopen(path, "w");
    if (!f)
        return gu_fail("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "{\n  \"src_ids\": [");
    for (int i = 0; i < S; i++)
        fprintf(f, "%s%d", i ? ", " : "", src[i]);
    fprintf(f, "],\n  \"tgt_ids\": [");
    for (int t = 0; t < T; t++)
        fprintf(f, "%s%d", t ? ", " : "", tgt_out[t]);
    fprintf(f, "],\n  \"dense\": %s,\n  \"gpn\": \"%s\",\n  \"norm\": \"%s\",\n",
            mc->dense ? "true" : "false", gcf_gpn_name(cfg->gpn),
            mc->mode == GA_NORM_RENORM ? "renorm" : "seed");
    fprintf(f, "  \"L\": %d,\n  \"H\": %d,\n  \"tau\": [", mc->L, mc->H);
    for (int l = 0; l < mc->L; l++)
        fprintf(f, "%s%g", l ? ", " : "", mc->tau[l]);
    fprintf(f, "],\n  \"layers\": [\n");
    for (int ly = 0; ly < tr->n_dec; ly++) {
        long kept = 0;
        for (int i = 0; i < tr->H * T; i++)
            kept += tr->kept[(size_t)ly * tr->H * T + i];
        fprintf(f, "    {\"layer\": %d, \"density\": %.6f,\n     \"levels\": [", ly,
                (double)kept / ((double)tr->H * T * S));
        for (int t = 0; t < T; t++) {
            const uint8_t *lv = tr->levels + ((size_t)ly * T + t) * S;
            fprintf(f, "%s[", t ? ", " : "");
            for (int i = 0; i < S; i++)
                fprintf(f, "%s%d", i ? "," : "", lv[i]);
            fputc(']', f);
        }
        fprintf(f, "],\n     \"weights\": [");
        for (int h = 0; h < tr->H; h++) {
            fprintf(f, "%s[", h ? ",\n       " : "");
            for (int t = 0; t < T; t++) {
                const float *w = tr->weights + (((size_t)ly * tr->H + h) * T + t) * S;
                fprintf(f, "%s[", t ? ", " : "");
                for (int i = 0; i < S; i++)
                    fprintf(f, "%s%.5g", i ? "," : "", w[i]);
                fputc(']', f);
            }
            fputc(']', f);
        }
        fprintf(f, "]}%s\n", ly + 1 < tr->n_dec ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0)
        return gu_fail("writing %s: %s", path, strerror(errno));
    return 0;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"sentence", required_argument, 0, 's'},
        {"ids", required_argument, 0, 'd'},   {"out", required_argument, 0, 'o'},
        {"no-png", no_argument, 0, 'N'},      {"isa", required_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = NULL, *sentence = NULL, *ids = NULL, *outdir = "inspect-out",
               *isa = NULL;
    int png = 1, c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's': sentence = optarg; break;
        case 'd': ids = optarg; break;
        case 'o': outdir = optarg; break;
        case 'N': png = 0; break;
        case 'i': isa = optarg; break;
        case 'h': usage_inspect(stdout); return 0;
        default: usage_inspect(stderr); return 2;
        }
    }
    if (optind < argc) {
        errorf("unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (!model || (!sentence == !ids)) {
        errorf("--model and exactly one of --sentence / --ids are required (try "
               "--help)");
        return 2;
    }
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    idlines lines;
    memset(&lines, 0, sizeof lines);
    char *text = NULL;
    gs_decoder *dec = NULL;
    gt_trace tr;
    memset(&tr, 0, sizeof tr);
    int32_t *src = NULL, *tin = NULL, *tout = NULL;
    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model(model, kt, &L) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    gk_free(&L.ck);
    if (ids) {
        text = strdup(ids);
    } else {
        char in_path[PATH_MAX], ids_path[PATH_MAX];
        if (strchr(sentence, '\n')) {
            errorf("--sentence: one line only");
            goto out;
        }
        if (tmpfile_path("in.txt", in_path, sizeof in_path) ||
            tmpfile_path("in.ids", ids_path, sizeof ids_path)) {
            errorf("%s", gu_error());
            goto out;
        }
        FILE *f = fopen(in_path, "w");
        if (!f) {
            errorf("cannot write %s: %s", in_path, strerror(errno));
            goto out;
        }
        fprintf(f, "%s\n", sentence);
        fclose(f);
        if (run_spm("encode", in_path, ids_path) != 0 ||
            !(text = gu_read_file(ids_path, NULL))) {
            errorf("%s", gu_error());
            goto out;
        }
    }
    if (!text || idlines_parse(text, ids ? "--ids" : "spm.py encode output", L.mc.vocab,
                               &lines) != 0) {
        errorf("%s", text ? gu_error() : "out of memory");
        goto out;
    }
    if (lines.n != 1 || lines.len[0] == 0) {
        errorf("expected one non-empty sentence, got %d line(s)", lines.n);
        goto out;
    }
    const gm_config *mc = &L.mc;
    int S = lines.len[0];
    gs_options so;
    gs_options_default(&so);
    so.beam = 1;
    dec = gs_create(L.m, &so);
    int cap = mc->max_len + 1, T = 0;
    src = malloc(sizeof(int32_t) * (size_t)(S + 1));
    tin = malloc(sizeof(int32_t) * (size_t)cap);
    tout = malloc(sizeof(int32_t) * (size_t)cap);
    if (!dec || !src || !tin || !tout) {
        errorf("%s", dec ? "out of memory" : gu_error());
        goto out;
    }
    if (gs_translate(dec, lines.ids[0], S, tout, cap, &T, NULL, NULL) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    /* decoder positions: bos y1 .. yT -> y1 .. yT eos (capped at max_len) */
    if (T + 1 > mc->max_len)
        T = mc->max_len - 1;
    memcpy(src, lines.ids[0], sizeof(int32_t) * (size_t)S);
    src[S] = GM_EOS;
    tin[0] = GM_BOS;
    memcpy(tin + 1, tout, sizeof(int32_t) * (size_t)T);
    tout[T] = GM_EOS;
    if (gt_run(L.m, src, S + 1, tin, tout, T + 1, &tr) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    /* The last position predicts eos only if decoding stopped on its own
     * (not at the length limit), so one mismatch there is expected. */
    if (tr.agree < T)
        warnf("the traced recomputation agrees with greedy decoding at %d of %d "
              "positions (near-ties, or model/trace.c is out of date)",
              tr.agree, T + 1);
    if (gu_mkdir(outdir) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    char json[PATH_MAX + 32];
    snprintf(json, sizeof json, "%s/inspect.json", outdir);
    if (write_inspect_json(json, mc, &L.cfg, &tr, src, tout) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    printf("wrote %s (%d source tokens + eos, %d output tokens + eos, %d decoder "
           "layers; trace agrees with greedy decoding at %d/%d steps)\n",
           json, S, T, mc->n_dec, tr.agree, T + 1);
    fflush(stdout);
    if (png) {
        const char *root = gu_project_root();
        if (!root) {
            errorf("%s", gu_error());
            goto out;
        }
        char script[PATH_MAX + 64], spm_model[PATH_MAX + 64];
        snprintf(script, sizeof script, "%s/tools/inspect_map.py", root);
        snprintf(spm_model, sizeof spm_model, "%s/data/spm/spm.model", root);
        char *av[] = {(char *)python_path(), script, json, "--out", (char *)outdir,
                      "--spm", spm_model, NULL};
        int prc = run_process(av, NULL, NULL);
        if (prc != 0) {
            errorf("tools/inspect_map.py failed%s%s", prc < 0 ? ": " : "",
                   prc < 0 ? gu_error() : "");
            goto out;
        }
    }
    rc = 0;
out:
    gt_free(&tr);
    gs_free(dec);
    free(src);
    free(tin);
    free(tout);
    idlines_free(&lines);
    free(text);
    loaded_free(&L);
    return rc;
}
