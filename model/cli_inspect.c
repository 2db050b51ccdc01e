/* cli_inspect.c — `granattn inspect`: translates one sentence greedily,
 * traces it teacher-forced (trace.c) and writes every decoder layer's
 * levels and attention weights as OUT/inspect.json, then renders the
 * granularity maps with tools/inspect_map.py.
 *
 * --dump-trace DIR: also writes, per sentence k and decoder layer l,
 * DIR/NAME-s<k>-l<l>.gatrace (include/granattn_trace.h): exactly the q
 * [T][H*dh], K, V [H][S][dh], bias [S] (0: no padding) and levels [T][S]
 * that layer's cross-attention used in the teacher-forced recomputation
 * (S source tokens incl. eos, T = bos + target tokens).  --input FILE
 * [--ref FILE] runs over many sentences (the reference teacher-forced, or
 * the greedy translation without --ref); --verify reads each file back and
 * recomputes the layer's context with ga_attend_run_levels. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_common.h"
#include "granattn_trace.h"
#include "trace.h"

static void usage_inspect(FILE *f)
{
    fprintf(f,
"usage: granattn inspect --model CKPT (--sentence TEXT | --ids \"ID ...\") [options]\n"
"       granattn inspect --model CKPT --input FILE [--ref FILE] --dump-trace DIR [options]\n"
"\n"
"Translates one sentence greedily and dumps, for every decoder layer and\n"
"output step, the granularity level of each source token and the\n"
"cross-attention weights (per head), as OUT/inspect.json; then renders\n"
"OUT/map-layerN.png with tools/inspect_map.py (source x target grid coloured\n"
"by level, weights as overlay).\n"
"\n"
"With --dump-trace DIR it also writes, for every sentence k and decoder\n"
"layer l, DIR/NAME-s<k>-l<l>.gatrace (format: include/granattn_trace.h):\n"
"the q, K, V, bias and GPN levels that layer's cross-attention uses in the\n"
"teacher-forced recomputation, for the kernel harness.  --input runs over a\n"
"file of sentences (no JSON / PNG then), one progress line per sentence.\n"
"A dense model's traces hold level L-1 everywhere (it has no GPN); a top-k\n"
"model (gpn = topk) has no levels: its JSON shows level 0 everywhere and\n"
"--dump-trace is refused.\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint\n"
"  --sentence TEXT    English sentence (segmented with SentencePiece, as in\n"
"                     translate: in process, or tools/corpus/spm.py)\n"
"  --ids \"ID ...\"     the source as token ids\n"
"  --input FILE       English sentences, one per line (needs --dump-trace)\n"
"  --ref FILE         their references (Spanish, line by line): traced\n"
"                     teacher-forced on the reference instead of the greedy\n"
"                     translation\n"
"  --id-files         --input / --ref hold token ids, not text\n"
"  --max-sents N      only the first N sentences of --input\n"
"  --dump-trace DIR   write the .gatrace files into DIR (created)\n"
"  --name NAME        file name prefix of the traces (default: the --input\n"
"                     file's base name without extension, else \"sent\")\n"
"  --verify           read every trace back and recompute the layer's context\n"
"                     from it with ga_attend_run_levels: must equal the model's\n"
"                     (bitwise, sparse models) and sum_i w_i v_i of its weights\n"
"  --max-len N        raise the model's max_len (positions) to N at inference\n"
"                     time: sinusoidal positions extend to longer inputs than\n"
"                     the model was trained on (default: as trained)\n"
"  --out DIR          output directory of the JSON (default: inspect-out)\n"
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

/* ---------------------------------------------------------- trace dump */
typedef struct dump_ctx {
    const char *dir, *name;
    int sent;                 /* sentence index k */
    const gm_config *mc;
    const ga_kernels *kt;
    int verify;
    uint8_t *dense_lev;       /* dense models: levels all L-1 ([T][S]) */
    double bytes;             /* written so far */
    long files;
    double max_rel;           /* verify: worst |C - sum w v| / (sum |w v| + tiny) */
    long verified;
} dump_ctx;

/* --verify of one layer: the file read back equals what was written; the
 * layer's context recomputed from it with ga_attend_run_levels equals the
 * model's (bitwise for sparse models, with the same kept counts) and
 * sum_i w_i v_i of the model's own weights (float rounding). */
static int verify_layer(dump_ctx *cx, const char *path, const ga_trace_data *w, const float *C,
                        const gt_trace *tr, int layer)
{
    ga_trace_data r;
    if (ga_trace_read(path, &r) != GA_OK)
        return gu_fail("--verify: %s", ga_last_error());
    int H = w->H, N = w->N, dh = w->dh, T = w->T, hd = H * dh;
    int rc = -1;
    float *C2 = NULL;
    int *kept = NULL;
    ga_attend_plan *plan = NULL;
    if (memcmp(r.Q, w->Q, sizeof(float) * (size_t)T * hd) ||
        memcmp(r.K, w->K, sizeof(float) * (size_t)H * N * dh) ||
        memcmp(r.V, w->V, sizeof(float) * (size_t)H * N * dh) ||
        memcmp(r.levels, w->levels, (size_t)T * N)) {
        gu_fail("--verify: %s reads back different from what was written", path);
        goto out;
    }
    ga_config ac;
    gm_config_attn(cx->mc, &ac);
    ac.dense = 0;
    ga_status st;
    plan = ga_attend_plan_create(cx->kt, NULL, &ac, N, T, &st);
    C2 = malloc(sizeof(float) * ((size_t)T * hd + 1));
    kept = malloc(sizeof(int) * ((size_t)T * H + 1));
    if (!plan || !C2 || !kept) {
        gu_fail("--verify: %s", plan ? "out of memory" : ga_last_error());
        goto out;
    }
    if (ga_attend_run_levels(plan, N, T, r.Q, r.K, r.V, r.bias, r.levels, C2, kept) != GA_OK) {
        gu_fail("--verify: ga_attend_run_levels: %s", ga_last_error());
        goto out;
    }
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const float *c2 = C2 + (size_t)t * hd + h * dh, *c = C + (size_t)t * hd + h * dh;
            int k_model = tr->kept[((size_t)layer * H + h) * T + t];
            if (!cx->mc->dense &&
                (memcmp(c2, c, sizeof(float) * (size_t)dh) != 0 || kept[t * H + h] != k_model)) {
                gu_fail("--verify: %s: step %d head %d: the context recomputed from the trace "
                        "differs from the model's (kept %d vs %d)",
                        path, t, h, kept[t * H + h], k_model);
                goto out;
            }
            /* sum_i w_i v_i of the model's weights (dense models: the check) */
            const float *wt = tr->weights + (((size_t)layer * H + h) * T + t) * N;
            const float *V = r.V + (size_t)h * N * dh;
            for (int j = 0; j < dh; j++) {
                double sum = 0, mag = 0;
                for (int i = 0; i < N; i++) {
                    sum += (double)wt[i] * V[(size_t)i * dh + j];
                    mag += fabs((double)wt[i] * V[(size_t)i * dh + j]);
                }
                double ref = cx->mc->dense ? c[j] : c2[j];
                double rel = fabs(ref - sum) / (mag + 1e-30);
                if (rel > cx->max_rel)
                    cx->max_rel = rel;
            }
        }
    /* float rounding of a sum of N terms (N ~ 4k: ~1e-4 worst case) */
    if (cx->max_rel > 1e-3) {
        gu_fail("--verify: %s: context differs from sum_i w_i v_i by %.3g (relative)", path,
                cx->max_rel);
        goto out;
    }
    cx->verified++;
    rc = 0;
out:
    ga_attend_plan_destroy(plan);
    free(C2);
    free(kept);
    ga_trace_free(&r);
    return rc;
}

static int dump_layer(void *ctx, int layer, int T, int S, const float *Q, const float *K,
                      const float *V, const uint8_t *levels, const float *C, const gt_trace *tr)
{
    dump_ctx *cx = ctx;
    const gm_config *mc = cx->mc;
    ga_trace_data w;
    memset(&w, 0, sizeof w);
    w.H = mc->H;
    w.N = S;
    w.dh = mc->d / mc->H;
    w.T = T;
    w.L = mc->L;
    w.mode = mc->mode;
    w.layer = layer;
    for (int l = 0; l < mc->L; l++)
        w.tau[l] = mc->tau[l];
    w.Q = (float *)Q;
    w.K = (float *)K;
    w.V = (float *)V;
    w.bias = NULL; /* sentences are unpadded: every bias is 0 */
    if (!levels) { /* dense model: no GPN; the finest level everywhere */
        free(cx->dense_lev);
        cx->dense_lev = malloc((size_t)T * S);
        if (!cx->dense_lev)
            return gu_fail("out of memory");
        memset(cx->dense_lev, mc->L - 1, (size_t)T * S);
        levels = cx->dense_lev;
    }
    w.levels = (uint8_t *)levels;
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s-s%d-l%d.gatrace", cx->dir, cx->name, cx->sent, layer);
    if (ga_trace_write(path, &w) != GA_OK)
        return gu_fail("%s", ga_last_error());
    struct stat sb;
    if (stat(path, &sb) == 0)
        cx->bytes += (double)sb.st_size;
    cx->files++;
    if (cx->verify && verify_layer(cx, path, &w, C, tr, layer) != 0)
        return -1;
    return 0;
}

/* Token ids of a file: text through run_spm encode (SentencePiece), or id lines. */
static int read_lines_ids(const char *path, int id_files, int vocab, const char *tag,
                          char **text, idlines *out)
{
    if (!gu_file_exists(path))
        return gu_fail("%s: cannot open %s", tag, path);
    if (id_files) {
        *text = gu_read_file(path, NULL);
    } else {
        char ids_path[PATH_MAX];
        char name[64];
        snprintf(name, sizeof name, "%s.ids", tag + 2); /* "--input" -> "input.ids" */
        if (tmpfile_path(name, ids_path, sizeof ids_path) != 0 ||
            run_spm("encode", path, ids_path) != 0)
            return -1;
        *text = gu_read_file(ids_path, NULL);
    }
    if (!*text)
        return -1;
    return idlines_parse(*text, tag, vocab, out);
}

/* "dir/test-256.en" -> "test-256" */
static void base_name(const char *path, char *out, size_t n)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},  {"sentence", required_argument, 0, 's'},
        {"ids", required_argument, 0, 'd'},    {"out", required_argument, 0, 'o'},
        {"no-png", no_argument, 0, 'N'},       {"isa", required_argument, 0, 'i'},
        {"input", required_argument, 0, 'I'},  {"ref", required_argument, 0, 'r'},
        {"id-files", no_argument, 0, 'F'},     {"max-sents", required_argument, 0, 'n'},
        {"dump-trace", required_argument, 0, 'D'}, {"name", required_argument, 0, 'a'},
        {"verify", no_argument, 0, 'v'},       {"max-len", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *model = NULL, *sentence = NULL, *ids = NULL, *outdir = "inspect-out",
               *isa = NULL, *input = NULL, *ref = NULL, *dump = NULL, *name = NULL;
    int png = 1, id_files = 0, verify = 0, c;
    long max_sents = LONG_MAX, max_len = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's': sentence = optarg; break;
        case 'd': ids = optarg; break;
        case 'o': outdir = optarg; break;
        case 'N': png = 0; break;
        case 'i': isa = optarg; break;
        case 'I': input = optarg; break;
        case 'r': ref = optarg; break;
        case 'F': id_files = 1; break;
        case 'n':
            if (parse_int("--max-sents", optarg, 1, INT_MAX, &max_sents) != 0)
                return 2;
            break;
        case 'D': dump = optarg; break;
        case 'a': name = optarg; break;
        case 'v': verify = 1; break;
        case 'l':
            if (parse_int("--max-len", optarg, 2, 65535, &max_len) != 0)
                return 2;
            break;
        case 'h': usage_inspect(stdout); return 0;
        default: usage_inspect(stderr); return 2;
        }
    }
    if (optind < argc) {
        errorf("unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (!model || (!!sentence + !!ids + !!input) != 1) {
        errorf("--model and exactly one of --sentence / --ids / --input are required (try "
               "--help)");
        return 2;
    }
    spm_prefer_checkpoint_dir(model);
    if (input && !dump) {
        errorf("--input needs --dump-trace DIR (the JSON / PNG are for one sentence)");
        return 2;
    }
    if ((ref || id_files || max_sents != LONG_MAX) && !input) {
        errorf("--ref, --id-files and --max-sents go with --input");
        return 2;
    }
    if (verify && !dump) {
        errorf("--verify checks the files of --dump-trace");
        return 2;
    }
    char name_buf[256];
    if (!name) {
        if (input)
            base_name(input, name_buf, sizeof name_buf);
        else
            snprintf(name_buf, sizeof name_buf, "sent");
        name = name_buf;
    }
    if (!*name || strchr(name, '/')) {
        errorf("--name '%s': a non-empty file name prefix without '/'", name);
        return 2;
    }
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    idlines lines, refs;
    memset(&lines, 0, sizeof lines);
    memset(&refs, 0, sizeof refs);
    char *text = NULL, *ref_text = NULL;
    gs_decoder *dec = NULL;
    gt_trace tr;
    memset(&tr, 0, sizeof tr);
    int32_t *src = NULL, *tin = NULL, *tout = NULL;
    dump_ctx cx;
    memset(&cx, 0, sizeof cx);
    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model_max_len(model, kt, (int)max_len, &L) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    gk_free(&L.ck);
    if (dump && L.mc.level_source == GM_LEVELS_TOPK) {
        errorf("--dump-trace: %s is a top-k model: it has no levels, so a trace of it could "
               "not be replayed by the kernel harness (the JSON / PNG work)",
               model);
        goto out;
    }
    if (input) {
        if (read_lines_ids(input, id_files, L.mc.vocab, "--input", &text, &lines) != 0 ||
            (ref && read_lines_ids(ref, id_files, L.mc.vocab, "--ref", &ref_text, &refs) != 0)) {
            errorf("%s", gu_error());
            goto out;
        }
        if (ref && refs.n != lines.n) {
            errorf("--input has %d lines but --ref has %d", lines.n, refs.n);
            goto out;
        }
    } else if (ids) {
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
    if (!input && (!text || idlines_parse(text, ids ? "--ids" : "spm.py encode output",
                                          L.mc.vocab, &lines) != 0)) {
        errorf("%s", text ? gu_error() : "out of memory");
        goto out;
    }
    if (!input && (lines.n != 1 || lines.len[0] == 0)) {
        errorf("expected one non-empty sentence, got %d line(s)", lines.n);
        goto out;
    }
    if (lines.n == 0) {
        errorf("%s: no sentences", input);
        goto out;
    }
    const gm_config *mc = &L.mc;
    int n = lines.n < max_sents ? lines.n : (int)max_sents;
    int cap = mc->max_len + 1;
    src = malloc(sizeof(int32_t) * (size_t)cap);
    tin = malloc(sizeof(int32_t) * (size_t)cap);
    tout = malloc(sizeof(int32_t) * (size_t)cap);
    if (!src || !tin || !tout) {
        errorf("out of memory");
        goto out;
    }
    if (!ref) {
        gs_options so;
        gs_options_default(&so);
        so.beam = 1;
        if (!(dec = gs_create(L.m, &so, 1, 0))) {
            errorf("%s", gu_error());
            goto out;
        }
    }
    if (dump && gu_mkdir(dump) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    cx.dir = dump;
    cx.name = name;
    cx.mc = mc;
    cx.kt = kt;
    cx.verify = verify;
    double t0 = gu_now();
    long agree_sum = 0, pos_sum = 0;
    for (int k = 0; k < n; k++) {
        int S = lines.len[k], T = 0;
        if (S < 1 || S + 1 > mc->max_len) {
            errorf("%s%d: source has %d tokens; this model takes 1 ... %d (max_len %d incl. "
                   "eos; raise it with --max-len)",
                   input ? "line " : "sentence ", k + 1, S, mc->max_len - 1, mc->max_len);
            goto out;
        }
        if (ref) {
            T = refs.len[k];
            if (T + 1 > mc->max_len) {
                errorf("--ref line %d: %d tokens; with bos this model takes at most %d "
                       "(raise max_len with --max-len)",
                       k + 1, T, mc->max_len - 1);
                goto out;
            }
            memcpy(tout, refs.ids[k], sizeof(int32_t) * (size_t)T);
        } else {
            if (gs_translate(dec, lines.ids[k], S, tout, cap, &T, NULL, NULL) != 0) {
                errorf("%s", gu_error());
                goto out;
            }
            /* decoder positions: bos y1 .. yT -> y1 .. yT eos (capped at max_len) */
            if (T + 1 > mc->max_len)
                T = mc->max_len - 1;
        }
        memcpy(src, lines.ids[k], sizeof(int32_t) * (size_t)S);
        src[S] = GM_EOS;
        tin[0] = GM_BOS;
        memmove(tin + 1, tout, sizeof(int32_t) * (size_t)T);
        tout[T] = GM_EOS;
        cx.sent = k;
        gt_free(&tr);
        if (gt_run_hook(L.m, src, S + 1, tin, tout, T + 1, &tr, dump ? dump_layer : NULL,
                        &cx) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        agree_sum += tr.agree;
        pos_sum += T + 1;
        /* The last position predicts eos only if decoding stopped on its own
         * (not at the length limit), so one mismatch there is expected. */
        if (!ref && tr.agree < T)
            warnf("%s%d: the traced recomputation agrees with greedy decoding at %d of %d "
                  "positions (near-ties, or model/trace.c is out of date)",
                  input ? "line " : "sentence ", k + 1, tr.agree, T + 1);
        if (input)
            fprintf(stderr, "inspect: %d/%d: %d source + eos, %d target + bos; %ld trace "
                            "files, %.1f MB, %.0fs\n",
                    k + 1, n, S, T, cx.files, cx.bytes / 1e6, gu_now() - t0);
    }
    if (input) {
        printf("wrote %ld trace files (%.1f MB) for %d sentence(s) of %s to %s; %s %s: "
               "argmax agrees at %ld/%ld positions",
               cx.files, cx.bytes / 1e6, n, input, dump, ref ? "teacher-forced on" : "greedy",
               ref ? ref : "translations", agree_sum, pos_sum);
        if (verify)
            printf("; verified %ld layer(s) (context from the trace = the model's%s; "
                   "max rel. diff to sum w v %.2g)",
                   cx.verified, mc->dense ? " within rounding" : ", bitwise", cx.max_rel);
        printf("\n");
        rc = 0;
        goto out;
    }
    int S = lines.len[0], T = tr.T - 1;
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
    if (dump) {
        printf("wrote %ld trace files (%.1f MB) to %s", cx.files, cx.bytes / 1e6, dump);
        if (verify)
            printf("; verified %ld layer(s) (context from the trace = the model's%s; max rel. "
                   "diff to sum w v %.2g)",
                   cx.verified, mc->dense ? " within rounding" : ", bitwise", cx.max_rel);
        printf("\n");
    }
    fflush(stdout);
    if (png) {
        const char *root = gu_project_root();
        if (!root) {
            errorf("%s", gu_error());
            goto out;
        }
        char script[PATH_MAX + 64], spm_model[PATH_MAX + 64];
        snprintf(script, sizeof script, "%s/tools/inspect_map.py", root);
        if (spm_model_path(spm_model, sizeof spm_model) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
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
    free(cx.dense_lev);
    idlines_free(&lines);
    idlines_free(&refs);
    free(text);
    free(ref_text);
    loaded_free(&L);
    return rc;
}
