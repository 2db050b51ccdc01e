/* cli_train_util.c — the pieces of `granattn train` around its loop: which
 * config keys --resume may change, the dev evaluation, log.tsv trimming after
 * a resume, checkpoint writes, the "dev" line and --init's weight copy. */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_train.h"

static const char *resume_keys[] = {"max_steps", "max_epochs", "max_minutes",
                                    "log_every", "eval_every", "ckpt_every",
                                    "patience", "threads", "place",
                                    "dev_max_sents", NULL};

int train_resume_key_ok(const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    size_t n = eq ? (size_t)(eq - assignment) : strlen(assignment);
    const char *key = assignment;
    if (n > 6 && !strncmp(key, "train.", 6)) {
        key += 6;
        n -= 6;
    }
    while (n > 0 && key[n - 1] == ' ')
        n--;
    for (int i = 0; resume_keys[i]; i++)
        if (strlen(resume_keys[i]) == n && !strncmp(resume_keys[i], key, n))
            return 1;
    return 0;
}

/* A test hook (tests/test_kill.sh): GRANATTN_TEST_SIGNAL_IN_EVAL=STEP sends
 * this process SIGTERM after the first batch of the dev evaluation at STEP,
 * which makes "a signal during the dev evaluation" reproducible. */
static long test_signal_step(void)
{
    const char *s = getenv("GRANATTN_TEST_SIGNAL_IN_EVAL");
    return s && *s ? strtol(s, NULL, 10) : -1;
}

/* Dev loss over the whole dev corpus (forward only).  Fails with *stop
 * set when a signal cuts it short. */
int train_dev_eval(gm_model *m, gd_iter *dev, gd_batch *b, ga_pool *pool,
                   gm_stats *out, long step, const volatile sig_atomic_t *stop)
{
    gm_stats_zero(out);
    if (gd_iter_seek(dev, 0, 0) != 0)
        return -1;
    for (int k = 0; k < dev->nbatch; k++) {
        if (k == 1 && step == test_signal_step())
            raise(SIGTERM);
        if (*stop)
            return gu_fail("interrupted");
        if (gd_iter_next(dev, b) != 0)
            return -1;
        gm_batch gb = {b->B, b->S, b->T, b->src, b->tgt_in, b->tgt_out};
        if (gm_forward_backward(m, &gb, 0, 0, pool, out) != GA_OK)
            return gu_fail("dev forward: %s", gm_last_error());
    }
    return 0;
}

/* Keeps the rows of log.tsv with step <= max_step (after a resume). */
void train_trim_log(const char *path, long max_step)
{
    char *text = gu_read_file(path, NULL);
    if (!text)
        return;
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(text);
        return;
    }
    char *line = text;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break; /* a row cut short by a kill mid-write: never complete */
        *nl = '\0';
        char *end;
        long step = strtol(line, &end, 10);
        if (end == line || step <= max_step) /* header or kept row */
            fprintf(f, "%s\n", line);
        line = nl ? nl + 1 : NULL;
    }
    fclose(f);
    rename(tmp, path);
    free(text);
}

int train_save_ckpt(const char *path, const char *cfg_text, const gk_state *st,
                     gm_model *m, const go_adamw *opt, int with_moments)
{
    return gk_save(path, cfg_text, st, gm_params(m), with_moments ? opt->m : NULL,
                   with_moments ? opt->v : NULL, gm_num_params(m));
}

/* One "dev" line. */
void train_print_dev(long step, const gm_stats *ds, const gm_config *mc, int better)
{
    double dt = (double)(ds->tokens > 0 ? ds->tokens : 1);
    double dnll = ds->nll_sum / dt;
    char mix[64] = "-";
    if (!mc->dense && mc->level_source != GM_LEVELS_TOPK)
        level_mix(ds->level_count, mc->L, mix, sizeof mix);
    printf("dev  %6ld | loss %.4f | nll %.4f | ppl %.2f | acc %.3f | dens %.3f | "
           "levels %s%s\n",
           step, ds->loss_sum / dt, dnll, exp(dnll), (double)ds->correct / dt,
           ds->density_count ? ds->density_sum / (double)ds->density_count : 1.0, mix,
           better ? " | best" : "");
    fflush(stdout);
}

/* --init CKPT: copy CKPT's weights into m by tensor name.  Every tensor of
 * m must exist in CKPT's model with the same shape; the GPN tensors
 * ("decN.gpn.*") are copied only if CKPT's model chose its levels with its
 * GPN (a dense or baseline model never trained them, so m keeps its own
 * fresh GPN init).  Returns 0, or -1 with gu_error() set. */
int train_init_weights(const char *path, gm_model *m, const ga_kernels *kt)
{
    gk_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    gcf_file f;
    gm_config src;
    gm_model *sm = NULL;
    int rc = -1;
    if (gk_load(path, 0, &ck) != 0)
        return -1;
    gcf_defaults(&f);
    if (gcf_parse(ck.config_text, path, &f) != 0 || gcf_model_config(&f, &src) != 0)
        goto done;
    sm = gm_create(&src, kt, 1);
    if (!sm) {
        gu_fail("--init %s: cannot build its model: %s", path, gm_last_error());
        goto done;
    }
    if (gm_num_params(sm) != ck.n_params) {
        gu_fail("--init %s: %zu parameters, its config describes %zu", path, ck.n_params,
                gm_num_params(sm));
        goto done;
    }
    /* the GPN was trained only if it chose among several levels */
    int src_gpn = !src.dense && src.level_source == GM_LEVELS_GPN && src.L > 1;
    int copied = 0, kept = 0;
    for (int i = 0; i < gm_num_tensors(m); i++) {
        const gm_tensor_info *t = gm_tensor(m, i);
        if (strstr(t->name, ".gpn.") && !src_gpn) {
            kept++;
            continue;
        }
        int j = gm_find_tensor(sm, t->name);
        const gm_tensor_info *u = j >= 0 ? gm_tensor(sm, j) : NULL;
        if (!u || u->rows != t->rows || u->cols != t->cols) {
            gu_fail("--init %s: its model has no tensor %s of shape %dx%d (the "
                    "architecture must match: vocab, d, H, ff, layers, g, L)",
                    path, t->name, t->rows, t->cols);
            goto done;
        }
        memcpy(gm_params(m) + t->offset, ck.params + u->offset, t->size * sizeof(float));
        copied++;
    }
    printf("init: %d tensors from %s (step %lld)%s\n", copied, path,
           (long long)ck.state.step,
           kept ? "; GPN tensors freshly initialised (its model did not use a GPN)" : "");
    rc = 0;
done:
    gm_free(sm);
    gk_free(&ck);
    return rc;
}
