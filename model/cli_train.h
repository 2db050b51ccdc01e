/* cli_train.h — internal to `granattn train` (cli_train.c: options, set-up
 * and the training loop; cli_train_util.c: the pieces around the loop;
 * train_par.c: what changes under mpirun).  Errors: 0 / -1 with gu_error()
 * set, as everywhere in the CLI (cli_common.h). */
#ifndef GM_CLI_TRAIN_H
#define GM_CLI_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "cli_common.h"
#include "data.h"
#include "optim.h"

/* What a checkpoint's state holds beyond the weights, plus the step RNG. */
typedef struct run_state {
    gk_state st;
    gu_rng rng;
} run_state;

/* ------------------------------------------------------ cli_train_util.c */
/* 1 if the --set assignment names a key --resume may change (run length,
 * logging, threads, placement, dev_max_sents; "train." prefix optional). */
int train_resume_key_ok(const char *assignment);
/* Dev loss over the whole dev corpus (forward only) into *out; fails when
 * *stop becomes non-zero (a signal) before it is done. */
int train_dev_eval(gm_model *m, gd_iter *dev, gd_batch *b, ga_pool *pool, gm_stats *out,
                   long step, const volatile sig_atomic_t *stop);
/* Keeps the rows of log.tsv with step <= max_step (after a resume). */
void train_trim_log(const char *path, long max_step);
/* Atomic checkpoint write; with_moments: also the AdamW moments (last.ckpt). */
int train_save_ckpt(const char *path, const char *cfg_text, const gk_state *st, gm_model *m,
                    const go_adamw *opt, int with_moments);
/* One "dev" line on stdout. */
void train_print_dev(long step, const gm_stats *ds, const gm_config *mc, int better);
/* --init CKPT: CKPT's weights into m by tensor name (see the definition). */
int train_init_weights(const char *path, gm_model *m, const ga_kernels *kt);

/* ------------------------------------------------------------ train_par.c */
/* The message a rank prints when mpirun's signal ends it, naming the last
 * checkpoint (ckpt_step > 0) of the run directory outdir. */
void train_par_set_msg(const char *outdir, long ckpt_step);
/* Whether a signal ends the process at once (several ranks). */
void train_par_enable(int on);
/* In the signal handler: when enabled, prints the message and _exit(128 + sig)
 * (async-signal-safe); otherwise returns 0. */
int train_par_on_signal(int sig);
/* gm_part's reduction hook (train_step.h): statistics and failure flag, then
 * the gradient g [n], summed over the ranks. */
int train_par_reduce(void *ctx, float *g, size_t n, gm_stats *st, int *failed);
/* 0 if every rank holds the same parameters p [n] (checked at checkpoints). */
int train_par_check_same(const float *p, size_t n, long step);
/* Adds a step's clipping + AdamW seconds to the MPI timing line. */
void train_par_add_update(double seconds);
/* The per-step MPI timing line (after the run; nothing without reductions). */
void train_par_report(size_t grad_bytes);

#endif
