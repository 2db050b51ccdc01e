/* config_file.h — `key = value` configuration files for the granattn tool.
 *
 *   # comment (also ';'), blank lines ignored
 *   [model]
 *   d = 256
 *   tau = 0.10, 0.01, 0
 *   [train]
 *   lr = 7e-4
 *
 * Two sections, [model] (maps onto gm_config plus the GPN baselines) and
 * [train] (optimiser, schedule, batching, logging, data).  Every key belongs to
 * one section; a key before any section header is looked up in both.  An
 * unknown key, a key in the wrong section, a duplicate key, a malformed line
 * or a bad value is an error naming the file and line.  Missing keys keep
 * their defaults (gm_config_default, go_options_default, gcf_defaults).
 *
 * `include = other.ini` (a path relative to the including file) reads that
 * file at this point; keys after it override its values (a key may appear
 * once per file).  Only config files may include (not a checkpoint's config
 * text); config files must be regular files of at most 1 MiB without NUL
 * bytes (a leading UTF-8 byte-order mark is skipped).  String values may not
 * contain '#', ';' or control characters (they would not read back), and a
 * float's range is checked on the stored float against float bounds for the
 * same reason (0.99 is stored as 0.99000001).  Experiment variants are a
 * few lines on top of a base.
 *
 * The same syntax is accepted on the command line as overrides:
 * `--set lr=1e-3` or `--set model.lambda=0.05`.
 *
 * gcf_write() prints every key in canonical form (floats with 9 significant
 * digits, so writing and re-reading gives the same values bit for bit); the
 * checkpoint stores that text as its config.
 */
#ifndef GM_CONFIG_FILE_H
#define GM_CONFIG_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "optim.h"

/* How the cross-attention levels are chosen (experiment baselines). */
typedef enum gcf_gpn {
    GCF_GPN_LEARNED = 0, /* the GPN (default) */
    GCF_GPN_FIXED = 1,   /* every pair at one level: fixed_tau, or tau[fixed_level] */
    GCF_GPN_RANDOM = 2,  /* level drawn per pair with random_probs */
    GCF_GPN_TOPK = 3     /* no levels: the topk_k / topk_frac largest weights per (query, head) */
} gcf_gpn;

const char *gcf_gpn_name(gcf_gpn g);

typedef struct gcf_train {
    uint64_t seed;          /* parameters, data order, dropout */
    int batch_tokens;       /* padded tokens per batch: B * max(S, T) */
    go_options opt;         /* lr, min_lr, warmup, schedule, betas, eps, wd, clip */
    long max_steps;         /* stop after this many updates (0: no limit) */
    int max_epochs;         /* stop after this many epochs (0: no limit) */
    double max_minutes;     /* stop after this much training wall time (0: none) */
    int log_every;          /* progress line every N steps */
    int eval_every;         /* dev loss (and best checkpoint) every N steps */
    int ckpt_every;         /* last.ckpt every N steps (also at every eval) */
    int patience;           /* stop after N evals without dev improvement (0: never) */
    int threads;            /* ga_pool workers (0: all cores) */
    char place[32];         /* none | compact | scatter | list:0,1,... */
    char data_dir[256];     /* data/tok */
    char train_split[32];   /* train */
    char dev_split[32];     /* dev */
    int dev_max_sents;      /* dev loss on the first N dev pairs (0: all) */
} gcf_train;

typedef struct gcf_file {
    gm_config model;
    gcf_gpn gpn;
    int fixed_level;        /* gpn = fixed: level whose tau applies */
    float fixed_tau;        /* gpn = fixed: explicit tau (< 0: use tau[fixed_level]) */
    float random_probs[GA_MAX_LEVELS]; /* gpn = random: level probabilities */
    int topk_k;             /* gpn = topk: keys kept per row (0: use topk_frac) */
    float topk_frac;        /* gpn = topk: fraction of the row's keys kept (0: use topk_k) */
    int n_tau, n_random_probs; /* how many values the lists hold */
    gcf_train train;
} gcf_file;

void gcf_defaults(gcf_file *f);

/* Parses a file on top of the current values of *f.  -1 + message
 * ("configs/x.ini:12: unknown key 'foo' in [model]"). */
int gcf_load(const char *path, gcf_file *f);
/* Parses text (name is used in messages): a checkpoint's config, so
 * `include` is an error here (it could name any file on the machine). */
int gcf_parse(const char *text, const char *name, gcf_file *f);
/* Same for len bytes that may hold a NUL (an error naming the line). */
int gcf_parse_buf(const char *text, size_t len, const char *name, gcf_file *f);

/* Largest config file accepted (bytes). */
#define GCF_MAX_BYTES (1u << 20)
/* Applies one override "key=value" or "section.key=value". */
int gcf_set(gcf_file *f, const char *assignment);
/* Consistency checks across keys (also runs gm_config_check). */
int gcf_check(const gcf_file *f);
/* Writes the canonical text of every key. */
void gcf_write(FILE *out, const gcf_file *f);
/* Same into a malloc'ed string. */
char *gcf_to_string(const gcf_file *f);

/* The gm_config the model is built with (the baselines map onto it: gpn =
 * fixed becomes L = 1 with the chosen tau, so every pair gets that level;
 * gpn = topk becomes level_source GM_LEVELS_TOPK with topk_k / topk_frac). */
int gcf_model_config(const gcf_file *f, gm_config *out);

/* Prints the list of keys with their meaning (for --help). */
void gcf_print_keys(FILE *out);

#endif /* GM_CONFIG_FILE_H */
