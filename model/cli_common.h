/* cli_common.h — what the subcommands of the `granattn` executable share:
 * messages, option-value parsing, helper processes (tools/ scripts), id-line
 * files, thread pool / kernel choice, checkpoint loading, and the decoding
 * options and parallel decoder of translate and eval.
 *
 * One file per subcommand (cli_train.c, cli_translate.c, cli_eval.c,
 * cli_inspect.c, cli_calibrate.c), each defining `int cmd_NAME(argc, argv)`
 * (argv[0] = "granattn NAME"; returns the exit status: 0, 1 = error, 2 = bad
 * usage); cli_main.c dispatches on the command table.  To add a subcommand:
 * write cli_NAME.c with cmd_NAME, declare it below, add a row to the table
 * in cli_main.c and the file to model/meson.build.
 *
 * Errors: helpers return 0 / -1 (or NULL) and leave the message in
 * gm_last_error() (model.h; gu_error() of util.h is the same); the subcommand
 * prints it with errorf ("granattn CMD: error: ...").
 */
#ifndef GM_CLI_COMMON_H
#define GM_CLI_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "checkpoint.h"
#include "config_file.h"
#include "decode.h"
#include "granattn.h"
#include "model.h"
#include "util.h"

/* ------------------------------------------------------------ subcommands */
int cmd_train(int argc, char **argv);      /* cli_train.c */
int cmd_translate(int argc, char **argv);  /* cli_translate.c */
int cmd_eval(int argc, char **argv);       /* cli_eval.c */
int cmd_inspect(int argc, char **argv);    /* cli_inspect.c */
int cmd_calibrate(int argc, char **argv);  /* cli_calibrate.c */
int cmd_spm(int argc, char **argv);        /* cli_spm.c */

/* --------------------------------------------------------------- messages */
/* The command name of messages ("granattn train"; default "granattn"). */
void cli_set_command(const char *name);
/* "granattn CMD: error: ..." / "granattn CMD: warning: ..." on stderr. */
void errorf(const char *fmt, ...) GU_PRINTF(1, 2);
void warnf(const char *fmt, ...) GU_PRINTF(1, 2);

/* ------------------------------------------------------- option values */
/* Integer / number in [lo, hi]; prints the error and returns -1 otherwise. */
int parse_int(const char *opt, const char *s, long lo, long hi, long *out);
int parse_float(const char *opt, const char *s, double lo, double hi, double *out);

/* ------------------------------------------------------ helper processes */
/* $GRANATTN_PYTHON, default /usr/bin/python3. */
const char *python_path(void);
/* Runs argv (argv[0] is a path) with stdin/stdout redirected to files (NULL:
 * inherit).  Returns the exit status, or -1 with a message. */
int run_process(char *const argv[], const char *in_path, const char *out_path);
/* out := "<temporary directory>/name"; the directory (created on first use)
 * and the files named in cli_common.c are removed at exit. */
int tmpfile_path(const char *name, char *out, size_t outlen);
/* tools/corpus/spm.py encode|decode in_path > out_path (same output as
 * spm.py; one line per line), with spm_model_path()'s model: in process
 * through libsentencepiece (spm.h) when the build has it, else spawning
 * spm.py.  GRANATTN_SPM=python spawns spm.py in any build. */
int run_spm(const char *what, const char *in_path, const char *out_path);
/* 1 when run_spm works in process. */
int spm_in_process(void);
/* Which one, in words, for --help texts. */
const char *spm_backend(void);
/* The SentencePiece model run_spm uses: the spm.model next to the checkpoint
 * given to spm_prefer_checkpoint_dir when there is one (models/ ships one
 * with default.ckpt), else <root>/data/spm/spm.model; -1 + message without a
 * project root. */
int spm_model_path(char *out, size_t outlen);
void spm_prefer_checkpoint_dir(const char *ckpt);

/* ------------------------------------------------------- id-line files */
typedef struct idlines {
    int n;
    int32_t **ids;  /* [n][len[i]] */
    int *len;       /* [n] */
} idlines;

void idlines_free(idlines *l);
/* Parses lines of space-separated ids (text is modified).  Strips a leading
 * bos and anything from the first eos.  Every id must be in [0, vocab). */
int idlines_parse(char *text, const char *name, int vocab, idlines *out);
/* One line of space-separated ids per sentence. */
int write_idlines(const char *path, int n, int32_t *const *ids, const int *len);

/* --------------------------------------------------------- pool / isa */
/* threads <= 0: all cores; place_s: none | compact | scatter | list:0,1,... */
ga_pool *make_pool(int threads, const char *place_s);
/* isa_name NULL: the best supported kernel table. */
const ga_kernels *pick_kernels(const char *isa_name);

/* ------------------------------------------------- model + checkpoint */
typedef struct loaded {
    gcf_file cfg;
    gm_config mc;
    gm_model *m;
    gk_checkpoint ck;
} loaded;

void loaded_free(loaded *l);
/* Loads a checkpoint and builds the model with its parameters. */
int load_model(const char *path, const ga_kernels *kt, loaded *out);
/* The same with the model's max_len raised to max_len (when larger) at
 * inference time: positional encodings are sinusoidal, so the table just
 * extends (longer inputs than the model was trained on; 0: as trained).
 * out->mc holds the raised value. */
int load_model_max_len(const char *path, const ga_kernels *kt, int max_len, loaded *out);

/* -------------------------------------------------------------- output */
/* Level mix text "33/41/26" (percent per level). */
void level_mix(const double *count, int L, char *buf, size_t len);
/* "1h02m" / "3m07s". */
void fmt_duration(double s, char *buf, size_t len);
/* Writes s as a JSON string literal. */
void json_string(FILE *f, const char *s);

/* ------------------------------------- decoding (translate and eval) */
/* The options translate and eval share, parsed once by cli_decode_opt. */
typedef struct cli_decode_opts {
    gs_options so;      /* --beam, --alpha, --max-len-a, --max-len-b */
    long threads;       /* --threads (0: all cores) */
    long batch;         /* --batch (sentences decoded together; 0: cli_batch's default) */
    const char *place;  /* --place (default "none") */
    const char *isa;    /* --isa (default NULL: best supported) */
    long max_len;       /* --max-len (0: the model's) */
} cli_decode_opts;

void cli_decode_opts_default(cli_decode_opts *o);
/* Sentences per batch: --batch, or CLI_BATCH_ROWS / beam (at least 1). */
int cli_batch(const cli_decode_opts *o);

/* Hypotheses per decoder step that the default batch aims at: batch =
 * CLI_BATCH_ROWS / beam sentences (at least 1), where the step's matrix
 * products run near the SGEMM's speed (measured: README.md, "Decoding
 * speed"). */
#define CLI_BATCH_ROWS 64

/* Their getopt_long entries (short codes b a A B t p i x z L N) ... */
#define CLI_DECODE_LONGOPTS                                                      \
    {"beam", required_argument, 0, 'b'}, {"alpha", required_argument, 0, 'a'},   \
        {"max-len-a", required_argument, 0, 'A'},                                 \
        {"max-len-b", required_argument, 0, 'B'},                                 \
        {"threads", required_argument, 0, 't'}, {"place", required_argument, 0, 'p'}, \
        {"isa", required_argument, 0, 'i'}, {"no-prepared", no_argument, 0, 'x'},    \
        {"prep-z", required_argument, 0, 'z'}, {"max-len", required_argument, 0, 'L'}, \
        {"batch", required_argument, 0, 'N'}

/* ... and their --help lines. */
#define CLI_DECODE_HELP                                                             \
    "  --beam K           beam size (default 1 = greedy)\n"                         \
    "  --alpha A          length penalty ((5+len)/6)^A for beam search (default 0.6)\n" \
    "  --max-len-a A, --max-len-b B\n"                                              \
    "                     output limit A * source_len + B tokens (default 1.5, 10),\n" \
    "                     capped by the model's max_len\n"                          \
    "  --batch N          sentences decoded together (default 64 / beam: 16 at\n" \
    "                     beam 4, 64 greedy): sorted by source length, cut into\n" \
    "                     batches of N whose hypotheses advance together (one\n"  \
    "                     matrix product per layer for all); output in input\n"   \
    "                     order, the same ids for any N\n"                        \
    "  --threads N        threads, each decoding whole batches (default: all\n"  \
    "                     cores; fewer sentences than N batches: smaller ones)\n" \
    "  --place P          thread placement: none | compact | scatter | list:0,1,...\n" \
    "  --isa NAME         kernel variant (default: best supported)\n"             \
    "  --no-prepared      cross-attention over K, V directly, one hypothesis per\n" \
    "                     call (default: prepared keys, docs/SPEC.md §7, built\n" \
    "                     once per source, a beam as one block of queries)\n"     \
    "  --prep-z exact|bounded\n"                                                  \
    "                     seed mode's Z with prepared keys: exact (default; same\n" \
    "                     output as --no-prepared) or bounded (preview scores of\n" \
    "                     the non-candidates: reads less of K, Z within a bound)\n" \
    "  --max-len N        raise the model's max_len (positions) to N: sinusoidal\n" \
    "                     positions extend to inputs longer than it was trained on\n"

/* getopt code c with argument arg: 1 = a decode option (stored in o),
 * 0 = not one, -1 = bad value (message printed; exit status 2). */
int cli_decode_opt(int c, const char *arg, cli_decode_opts *o);

/* The result of translating n sentences. */
typedef struct xlate_result {
    int32_t **out;          /* [n][max_len + 1] output ids (no eos) */
    int *out_len;           /* [n] */
    char **err;             /* [n]: message or NULL */
    gm_step_stats stats;    /* cross-attention density / levels, all sentences */
    long steps, out_tokens; /* decoder steps; output tokens incl. eos */
    double seconds;         /* wall time of the decoding */
    double *ms;             /* [n] its batch's wall time / its sentences (ms) */
    int nerr;               /* sentences with an error */
} xlate_result;

/* Translates src[0..n): sorted by length (longest first), cut into batches
 * of `batch` sentences (fewer when there are fewer than batch * threads
 * sentences, so that each thread gets some); one gs_decoder per pool
 * thread, each thread taking whole batches until none is left.  A sentence
 * that fails gets err[i] and an empty output (a failing batch: all its
 * sentences); returns -1 only if the decoders cannot be set up. */
int translate_all(const gm_model *m, ga_pool *pool, const gs_options *so, int batch, int n,
                  int32_t *const *src, const int *src_len, xlate_result *r);
void xlate_result_free(xlate_result *r, int n);
/* One line: decode time, sentences/s, output tokens/s, median ms per
 * sentence, and what the prepared cross-attention did (candidate share of
 * the keys, fallback rows, Z bound) or "prepared keys off". */
void xlate_summary(const xlate_result *r, int n, const gs_options *so, int batch, int threads,
                   char *buf, size_t len);

/* A checkpoint's data_dir as a path: a relative one (the default
 * "data/tok") is relative to the project root, not to the working directory
 * (eval and calibrate run from anywhere).  Returns buf or dir. */
const char *checkpoint_data_dir(const char *dir, char *buf, size_t len);
/* mkdir -p of the directory part of an output file path (what: the option
 * named in messages); -1 + message. */
int make_parent_dir(const char *what, const char *file);

#endif /* GM_CLI_COMMON_H */
