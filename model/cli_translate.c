/* cli_translate.c — `granattn translate`: English text (through run_spm:
 * SentencePiece in process, or tools/corpus/spm.py) or token-id lines in,
 * translations out, greedy or beam search on all cores (translate_all,
 * cli_decode.c). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

static void usage_translate(FILE *f)
{
    fprintf(f,
"usage: granattn translate --model CKPT [options] [< input] [> output]\n"
"\n"
"Translates English sentences, one per line, into Spanish.  Raw text is\n"
"segmented with SentencePiece (the spm.model next to CKPT if there is one,\n"
"else data/spm/spm.model; see the end); --ids reads\n"
"lines of token ids instead.  Output: one translation per line, in order.\n"
"A line that cannot be translated (over-long, bad id) is reported on stderr,\n"
"printed as an empty line, and makes the exit status 1.\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint (best.ckpt or last.ckpt of a run)\n"
"  --input FILE       input file (default: stdin)\n"
"  --output FILE      output file (default: stdout)\n"
"  --ids              input lines are token ids (space separated)\n"
"  --output-ids       print token ids instead of text\n"
"  --timing           print a summary line on stderr (sentences/s, what the\n"
"                     prepared cross-attention did)\n"
CLI_DECODE_HELP
"  -h, --help         this text\n");
    fprintf(f, "\nSubwords: text <-> ids %s.\n"
               "GRANATTN_SPM=python: tools/corpus/spm.py (Python) in any build.\n",
            spm_backend());
}

int cmd_translate(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"input", required_argument, 0, 'I'},
        {"output", required_argument, 0, 'O'}, {"ids", no_argument, 0, 'd'},
        {"output-ids", no_argument, 0, 'D'},  {"timing", no_argument, 0, 'T'},
        CLI_DECODE_LONGOPTS,
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = NULL, *input = NULL, *output = NULL;
    int in_ids = 0, out_ids = 0, timing = 0;
    cli_decode_opts dopt;
    cli_decode_opts_default(&dopt);
    int c, k;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'I': input = optarg; break;
        case 'O': output = optarg; break;
        case 'd': in_ids = 1; break;
        case 'D': out_ids = 1; break;
        case 'T': timing = 1; break;
        case 'h': usage_translate(stdout); return 0;
        default:
            if ((k = cli_decode_opt(c, optarg, &dopt)) < 0)
                return 2;
            if (k == 0) {
                usage_translate(stderr);
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
    spm_prefer_checkpoint_dir(model);
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    ga_pool *pool = NULL;
    idlines lines;
    memset(&lines, 0, sizeof lines);
    xlate_result r;
    memset(&r, 0, sizeof r);
    char *text = NULL;
    size_t text_len = 0;
    int n_in_lines = 0;
    char *bad_utf8 = NULL; /* [line]: 1 if that input line is not UTF-8 */
    char in_path[PATH_MAX], ids_path[PATH_MAX], outids_path[PATH_MAX],
        outtxt_path[PATH_MAX];

    /* Read the input first: errors there are cheaper than loading a model. */
    if (input && strcmp(input, "-")) {
        text = gu_read_file(input, &text_len);
        if (!text) {
            errorf("%s", gu_error());
            goto out;
        }
    } else {
        text = gu_read_file("/dev/stdin", &text_len);
        if (!text) {
            errorf("reading stdin: %s", gu_error());
            goto out;
        }
        input = "<stdin>";
    }
    /* A NUL byte would end the text early (fewer output lines than input
     * lines, exit 0): refuse the input, naming the line. */
    {
        const char *nul = memchr(text, '\0', text_len);
        if (nul) {
            int line = 1;
            for (const char *c = text; c < nul; c++)
                line += *c == '\n';
            errorf("%s:%d: NUL byte in the input (a binary file?)", input, line);
            goto out;
        }
    }
    /* Raw text: a line that is not UTF-8 is reported and translated as an
     * empty line (the --help promise for lines that cannot be translated);
     * the other lines are unaffected. */
    if (!in_ids) {
        for (const char *c = text; *c;) {
            const char *nl = strchr(c, '\n');
            size_t ll = nl ? (size_t)(nl - c) : strlen(c);
            char *nb = realloc(bad_utf8, (size_t)n_in_lines + 1);
            if (!nb) {
                errorf("out of memory");
                goto out;
            }
            bad_utf8 = nb;
            bad_utf8[n_in_lines] = !gu_utf8_valid(c, ll);
            if (bad_utf8[n_in_lines])
                memset((char *)c, ' ', ll); /* blank it for run_spm */
            n_in_lines++;
            c = nl ? nl + 1 : c + ll;
        }
    }
    const ga_kernels *kt = pick_kernels(dopt.isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model_max_len(model, kt, (int)dopt.max_len, &L) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    gk_free(&L.ck);
    if (!in_ids) {
        FILE *f;
        if (tmpfile_path("in.txt", in_path, sizeof in_path) ||
            tmpfile_path("in.ids", ids_path, sizeof ids_path)) {
            errorf("%s", gu_error());
            goto out;
        }
        if (!(f = fopen(in_path, "w"))) {
            errorf("cannot write %s: %s", in_path, strerror(errno));
            goto out;
        }
        fputs(text, f);
        size_t tl = strlen(text);
        if (tl && text[tl - 1] != '\n')
            fputc('\n', f);
        fclose(f);
        if (run_spm("encode", in_path, ids_path) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        free(text);
        text = gu_read_file(ids_path, NULL);
        if (!text) {
            errorf("%s", gu_error());
            goto out;
        }
    }
    if (idlines_parse(text, in_ids ? input : "spm.py encode output", L.mc.vocab,
                      &lines) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    for (int i = 0; i < lines.n; i++)
        for (int k = 0; k < lines.len[i]; k++)
            if (lines.ids[i][k] == GM_UNK) {
                warnf("line %d: contains the unknown-token id %d", i + 1, GM_UNK);
                break;
            }
    pool = make_pool((int)dopt.threads, dopt.place);
    if (!pool) {
        errorf("%s", gu_error());
        goto out;
    }
    if (translate_all(L.m, pool, &dopt.so, cli_batch(&dopt), lines.n, lines.ids, lines.len, &r) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    for (int i = 0; i < lines.n && i < n_in_lines; i++)
        if (bad_utf8[i]) {
            r.out_len[i] = 0;
            if (!r.err[i]) {
                r.err[i] = strdup("not valid UTF-8 text; translated as an empty line");
                r.nerr++;
            }
        }
    for (int i = 0; i < lines.n; i++)
        if (r.err[i])
            errorf("%s: line %d: %s", input, i + 1, r.err[i]);
    if (timing) {
        char sum[512];
        xlate_summary(&r, lines.n, &dopt.so, cli_batch(&dopt), ga_pool_threads(pool), sum, sizeof sum);
        fprintf(stderr, "granattn translate: %s\n", sum);
    }

    FILE *out = stdout;
    if (output && strcmp(output, "-")) {
        out = fopen(output, "w");
        if (!out) {
            errorf("cannot write %s: %s", output, strerror(errno));
            goto out;
        }
    }
    if (out_ids) {
        for (int i = 0; i < lines.n; i++) {
            for (int k = 0; k < r.out_len[i]; k++)
                fprintf(out, "%s%d", k ? " " : "", r.out[i][k]);
            fputc('\n', out);
        }
    } else {
        if (tmpfile_path("out.ids", outids_path, sizeof outids_path) ||
            tmpfile_path("out.txt", outtxt_path, sizeof outtxt_path) ||
            write_idlines(outids_path, lines.n, r.out, r.out_len) ||
            run_spm("decode", outids_path, outtxt_path)) {
            errorf("%s", gu_error());
            if (out != stdout)
                fclose(out);
            goto out;
        }
        char *o = gu_read_file(outtxt_path, NULL);
        if (!o) {
            errorf("%s", gu_error());
            if (out != stdout)
                fclose(out);
            goto out;
        }
        fputs(o, out);
        free(o);
    }
    if (out != stdout && fclose(out) != 0) {
        errorf("writing %s: %s", output, strerror(errno));
        goto out;
    }
    fflush(stdout);
    rc = r.nerr ? 1 : 0;
out:
    xlate_result_free(&r, lines.n);
    idlines_free(&lines);
    free(text);
    free(bad_utf8);
    loaded_free(&L);
    if (pool)
        ga_pool_destroy(pool);
    return rc;
}
