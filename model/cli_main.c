/* cli_main.c — the `granattn` executable: dispatches to the subcommands.
 *
 *   granattn train     --config configs/default.ini --out runs/default
 *   granattn train     --out runs/default --resume
 *   granattn translate --model runs/default/best.ckpt [--beam 4] < en.txt
 *   granattn eval      --model runs/default/best.ckpt --split test [--beam 4]
 *   granattn inspect   --model runs/default/best.ckpt --sentence "In the beginning ..."
 *   granattn calibrate --model runs/dense/best.ckpt --density 0.3
 *
 * Every subcommand takes --help.  Errors print one line "granattn CMD: error:
 * ..." and exit with status 1 (2 for bad usage); nothing aborts.
 * Text goes through SentencePiece in process (libsentencepiece, spm.h) or,
 * in a build without it, tools/corpus/spm.py (/usr/bin/python3);
 * scores through tools/eval_bleu.py (sacreBLEU); maps through
 * tools/inspect_map.py (matplotlib).
 *
 * A subcommand NAME lives in cli_NAME.c (int cmd_NAME(argc, argv), declared
 * in cli_common.h) and has a row in `commands` below; cli_common.c and
 * cli_decode.c hold what they share.
 */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"

/* The subcommands, in the order of the usage text. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"train", cmd_train},     {"translate", cmd_translate}, {"eval", cmd_eval},
    {"inspect", cmd_inspect}, {"calibrate", cmd_calibrate}, {"spm", cmd_spm},
    {NULL, NULL},
};

static void usage_main(FILE *f)
{
    fprintf(f,
"usage: granattn COMMAND [options]    (granattn COMMAND --help for details)\n"
"\n"
"English->Spanish translation with learned-granularity sparse cross-attention.\n"
"\n"
"commands:\n"
"  train      train a model from a config (configs/*.ini); resumable\n"
"  translate  translate sentences (text or token ids), greedy or beam search\n"
"  eval       translate a split and score it (sacreBLEU BLEU + chrF, density,\n"
"             level mix, decode speed) into a JSON\n"
"  inspect    dump one sentence's per-layer levels and attention weights and\n"
"             render the granularity map (PNG)\n"
"  calibrate  threshold / level mix of the fixed and random baselines that\n"
"             match a target density\n"
"  spm        text <-> token ids (SentencePiece) as translate does it; the same\n"
"             output as tools/corpus/spm.py encode|decode (for tests)\n"
"\n"
"  --version  print the version\n"
"  -h, --help this text\n"
"\n"
"Environment: GRANATTN_ISA (kernel variant), GRANATTN_AVX512_LOADS (auto,\n"
"whole or halves: the AVX-512 load tuning), GRANATTN_ROOT (project root, for\n"
"tools/ and data/), GRANATTN_PYTHON (default /usr/bin/python3), GRANATTN_SPM\n"
"(python: spawn tools/corpus/spm.py instead of libsentencepiece).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("granattn %s\n", GA_VERSION_STRING);
        return 0;
    }
    for (int i = 0; commands[i].name; i++)
        if (!strcmp(cmd, commands[i].name)) {
            static char name[64];
            snprintf(name, sizeof name, "granattn %s", cmd);
            cli_set_command(name);
            argv[1] = name; /* getopt messages name the subcommand */
            return commands[i].run(argc - 1, argv + 1);
        }
    errorf("unknown command '%s' (commands: train, translate, eval, inspect, calibrate, spm; "
           "try --help)",
           cmd);
    return 2;
}
