/* cli_spm.c — `granattn spm encode|decode`: text <-> token ids with the
 * SentencePiece of this build (spm.h: in process through libsentencepiece,
 * or tools/corpus/spm.py), the same step translate and inspect take;
 * for tests (tests/test_spm.sh compares it with spm.py) and checks. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "spm.h"

static void usage_spm(FILE *f)
{
    fprintf(f,
"usage: granattn spm encode|decode [--spm-model PATH] [FILE]\n"
"\n"
"Text -> token ids (encode) or token ids -> text (decode), one output line\n"
"per input line, on stdout: the segmentation translate and inspect use,\n"
"with the same output as tools/corpus/spm.py encode|decode.\n"
"This build: text <-> ids %s.\n"
"\n"
"encode: lines are split on \"\\n\" only (\"\\r\" is text); each gives one line\n"
"        of space-separated ids, no bos/eos.  A line that is not UTF-8 gives\n"
"        an empty line and a message; the exit status is then 1.\n"
"decode: each line of ids gives one line of text; ids from the first eos (3)\n"
"        on are dropped, and pad (0) and bos (2).  A token that is not an\n"
"        integer, or an id outside the vocabulary: error, exit status 1.\n"
"\n"
"options:\n"
"  FILE               input file (default: stdin, also for -)\n"
"  --spm-model PATH   SentencePiece model (default: data/spm/spm.model of\n"
"                     the project root)\n"
"  -h, --help         this text\n"
"\n"
"Environment: GRANATTN_SPM=python spawns tools/corpus/spm.py (Python) even\n"
"in a build with libsentencepiece (here and in translate and inspect).\n",
            spm_backend());
}

int cmd_spm(int argc, char **argv)
{
    static const struct option lo[] = {{"spm-model", required_argument, 0, 'm'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *model = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'h': usage_spm(stdout); return 0;
        default: usage_spm(stderr); return 2;
        }
    }
    if (optind >= argc) {
        errorf("expected encode or decode (try --help)");
        return 2;
    }
    const char *what = argv[optind++];
    int enc = !strcmp(what, "encode");
    if (!enc && strcmp(what, "decode")) {
        errorf("unknown operation '%s' (encode or decode)", what);
        return 2;
    }
    const char *file = optind < argc ? argv[optind++] : NULL;
    if (optind < argc) {
        errorf("unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (file && !strcmp(file, "-"))
        file = NULL;
    char mpath[PATH_MAX + 64];
    if (!model) {
        if (spm_model_path(mpath, sizeof mpath) != 0) {
            errorf("%s", gu_error());
            return 1;
        }
        model = mpath;
    }
    if (!gu_file_exists(model)) {
        errorf("%s: no such file (run tools/prepare-data.sh, or pass --spm-model)", model);
        return 1;
    }

    if (!spm_in_process()) {
        const char *root = gu_project_root();
        if (!root) {
            errorf("%s", gu_error());
            return 1;
        }
        char script[PATH_MAX + 64];
        snprintf(script, sizeof script, "%s/tools/corpus/spm.py", root);
        char *av[] = {(char *)python_path(), script, "--model", (char *)model, (char *)what,
                      (char *)file, NULL};
        fflush(stdout);
        int rc = run_process(av, NULL, NULL);
        if (rc < 0) {
            errorf("%s", gu_error());
            return 1;
        }
        return rc ? 1 : 0;
    }

    gm_spm *sp = gm_spm_cached(model);
    if (!sp) {
        errorf("%s", gu_error());
        return 1;
    }
    const char *name = file ? file : "<stdin>";
    size_t len;
    char *data = gu_read_file(file ? file : "/dev/stdin", &len);
    if (!data) {
        errorf("%s", gu_error());
        return 1;
    }
    int rc;
    if (enc)
        rc = gm_spm_encode_stream(sp, data, len, name, stdout, stderr, NULL);
    else
        rc = gm_spm_decode_stream(sp, data, len, name, stdout);
    free(data);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        errorf("writing the output: %s", strerror(errno ? errno : EIO));
        return 1;
    }
    if (rc < 0)
        errorf("%s", gu_error());
    return rc != 0; /* rc 1: non-UTF-8 lines, each reported on stderr */
    return 0;
}
