/* cli_train.c — `granattn train`: trains the translation model from a
 * config (or resumes a run / starts from another run's weights), with
 * periodic dev evaluation, best/last checkpoints and log.tsv; SIGINT/SIGTERM
 * finish the current step and write last.ckpt.
 *
 * Under mpirun (an MPI build, par.h) every rank runs this with the same
 * arguments: each step's batch is split across the ranks
 * (gm_train_step_part), the gradients and statistics are summed with
 * MPI_Allreduce and every rank applies the same update.  Rank 0 alone reads
 * the checkpoint it resumes from (and --init's), broadcasts it, decides when
 * to stop, logs, evaluates and writes files; the other ranks write nothing.
 * A signal under mpirun (mpirun sends SIGTERM to every rank when one dies
 * or the job is cancelled) ends the rank at once with a message naming the
 * last checkpoint, which the atomic writes keep intact. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cli_common.h"
#include "data.h"
#include "optim.h"
#include "par.h"
#include "train_step.h"

static volatile sig_atomic_t g_signal;

/* Under mpirun with several ranks: the message a signal prints (two buffers,
 * g_par_msg_cur the complete one, so the handler never reads one half
 * written). */
static volatile sig_atomic_t g_par_on, g_par_msg_cur;
static char g_par_msg[2][PATH_MAX + 400];

static void set_par_msg(const char *outdir, long ckpt_step)
{
    int next = !g_par_msg_cur;
    if (ckpt_step > 0)
        snprintf(g_par_msg[next], sizeof g_par_msg[next],
                 "granattn train: rank %d: stopped by a signal from mpirun (a rank "
                 "died, or the job was cancelled); the last checkpoint is %s/last.ckpt "
                 "at step %ld (rank 0's machine); continue with: mpirun -np R granattn "
                 "train --out %s --resume\n",
                 par_rank(), outdir, ckpt_step, outdir);
    else
        snprintf(g_par_msg[next], sizeof g_par_msg[next],
                 "granattn train: rank %d: stopped by a signal from mpirun (a rank "
                 "died, or the job was cancelled) before the first checkpoint\n",
                 par_rank());
    g_par_msg_cur = next;
}

static void on_signal(int sig)
{
    if (g_par_on) {
        /* the other ranks cannot finish the step with this one (a dead rank
         * never will): stop now; checkpoints are atomic */
        const char *msg = g_par_msg[g_par_msg_cur];
        ssize_t r = write(STDERR_FILENO, msg, strlen(msg));
        (void)r;
        _exit(128 + sig);
    }
    if (g_signal) { /* second signal: give up at once */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_signal = sig;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void usage_train(FILE *f)
{
    fprintf(f,
"usage: granattn train --config FILE --out DIR [options]\n"
"       granattn train --out DIR --resume [CKPT] [options]\n"
"\n"
"Trains the translation model on data/tok/{train,dev}.bin.  DIR receives\n"
"config.ini, last.ckpt (every ckpt_every steps, at every eval, at the end and\n"
"on SIGINT/SIGTERM), best.ckpt (weights with the best dev loss) and log.tsv\n"
"(one row per step: step, loss, nll, tokens, lr, gnorm, density, ...).\n"
"\n"
"options:\n"
"  --config FILE      configuration (see --help-config); not with --resume\n"
"  --set KEY=VALUE    override a config key (repeatable), e.g. --set lambda=0.05\n"
"                     or --set train.max_steps=2000; with --resume only the\n"
"                     run-length/logging keys may change\n"
"  --out DIR          run directory (created)\n"
"  --resume [CKPT]    continue from CKPT (default DIR/last.ckpt): same data\n"
"                     order, RNG and optimiser state, so the loss curve is the\n"
"                     one an uninterrupted run gives (same thread count)\n"
"  --init CKPT        start from CKPT's weights instead of a random init (a new\n"
"                     run: step 0, fresh optimiser, this run's --config), e.g.\n"
"                     to fine-tune a dense model with a GPN.  The architecture\n"
"                     (vocab, d, H, ff, layers, g, L) must match; the GPN\n"
"                     tensors are copied only if CKPT's model used its GPN\n"
"                     (otherwise they keep this run's fresh init)\n"
"  --threads N        worker threads (default: config threads, 0 = all cores)\n"
"  --place P          none | compact | scatter | list:0,1,... (hwloc)\n"
"  --isa NAME         kernel variant: scalar | avx2 | avx512 | neon (default: best)\n"
"  --quiet            no progress lines (dev lines and errors still printed)\n"
"  --help-config      list every config key with its default\n"
"  -h, --help         this text\n"
"\n"
"SIGINT/SIGTERM: finishes the current step, writes last.ckpt and exits with\n"
"status 130/143; a second signal exits at once (last.ckpt stays intact).\n"
"\n"
"Several processes (an MPI build): mpirun -np R granattn train ... splits\n"
"every batch across the R ranks (the same global batch for any R), sums the\n"
"gradients with MPI_Allreduce and updates identically on every rank; rank 0\n"
"alone logs, evaluates and writes DIR (only rank 0 needs the checkpoint to\n"
"--resume from; every rank needs the training data).  --resume works with\n"
"any R.  threads = 0 then means the cores divided by the ranks on a machine.\n"
"A rank that dies ends the job (mpirun stops the others, which exit at once\n"
"naming the last checkpoint).\n");
}

typedef struct run_state {
    gk_state st;
    gu_rng rng;
} run_state;

static const char *resume_keys[] = {"max_steps", "max_epochs", "max_minutes",
                                    "log_every", "eval_every", "ckpt_every",
                                    "patience", "threads", "place",
                                    "dev_max_sents", NULL};

static int resume_key_ok(const char *assignment)
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

/* Dev loss over the whole dev corpus (forward only).  Fails with g_signal
 * set when a signal cuts it short. */
static int dev_eval(gm_model *m, gd_iter *dev, gd_batch *b, ga_pool *pool,
                    gm_stats *out, long step)
{
    gm_stats_zero(out);
    if (gd_iter_seek(dev, 0, 0) != 0)
        return -1;
    for (int k = 0; k < dev->nbatch; k++) {
        if (k == 1 && step == test_signal_step())
            raise(SIGTERM);
        if (g_signal)
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
static void trim_log(const char *path, long max_step)
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

static int save_ckpt(const char *path, const char *cfg_text, const gk_state *st,
                     gm_model *m, const go_adamw *opt, int with_moments)
{
    return gk_save(path, cfg_text, st, gm_params(m), with_moments ? opt->m : NULL,
                   with_moments ? opt->v : NULL, gm_num_params(m));
}

/* One "dev" line. */
static void print_dev(long step, const gm_stats *ds, const gm_config *mc, int better)
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
static int init_weights(const char *path, gm_model *m, const ga_kernels *kt)
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

/* gm_part's reduction over the MPI ranks (par.h): the statistics and the
 * failure flag in one small MPI_Allreduce, then, unless a rank failed, the
 * gradients in one fused MPI_Allreduce of the whole buffer. */
static double g_par_wait_s, g_par_grad_s; /* time in the two reductions */
static double g_par_update_s;             /* clipping + AdamW */
static long g_par_steps;

static int par_reduce(void *ctx, float *g, size_t n, gm_stats *st, int *failed)
{
    (void)ctx;
    double t0 = gu_now();
    double v[12 + GA_MAX_LEVELS];
    int k = 0;
    v[k++] = st->loss_sum;
    v[k++] = st->nll_sum;
    v[k++] = (double)st->tokens;
    v[k++] = (double)st->correct;
    v[k++] = st->density_sum;
    v[k++] = (double)st->density_count;
    v[k++] = st->pairs;
    v[k++] = st->exp_density_sum;
    v[k++] = st->exp_density_count;
    v[k++] = *failed ? 1.0 : 0.0;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        v[k++] = st->level_count[l];
    if (par_sum_f64(v, k) != 0) {
        gm_set_error(GA_EINVAL, "the reduction across MPI ranks failed");
        return -1;
    }
    k = 0;
    st->loss_sum = v[k++];
    st->nll_sum = v[k++];
    st->tokens = (long)v[k++];
    st->correct = (long)v[k++];
    st->density_sum = v[k++];
    st->density_count = (long)v[k++];
    st->pairs = v[k++];
    st->exp_density_sum = v[k++];
    st->exp_density_count = v[k++];
    *failed = v[k++] > 0.0;
    for (int l = 0; l < GA_MAX_LEVELS; l++)
        st->level_count[l] = v[k++];
    if (*failed)
        return 0;
    double t1 = gu_now();
    if (par_sum_f32(g, n) != 0) {
        gm_set_error(GA_EINVAL, "the reduction across MPI ranks failed");
        return -1;
    }
    g_par_wait_s += t1 - t0;
    g_par_grad_s += gu_now() - t1;
    g_par_steps++;
    return 0;
}

/* Under mpirun: are the parameters bit-identical on every rank?  (They are
 * by construction, every rank applying the same update to the same summed
 * gradient; checked at every checkpoint.)  0: yes; -1: no or MPI failed. */
static int par_check_same(const float *p, size_t n, long step)
{
    if (!par_active())
        return 0;
    uint64_t h = 1469598103934665603ull, h0;
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n * sizeof(float); i++)
        h = (h ^ b[i]) * 1099511628211ull;
    h0 = h;
    if (par_bcast(&h0, sizeof h0, 0) != 0)
        return -1;
    double diff = h0 != h ? 1.0 : 0.0;
    if (par_sum_f64(&diff, 1) != 0)
        return -1;
    if (diff > 0.0)
        return gu_fail("step %ld: the parameters differ between ranks (%g of %d ranks "
                       "differ from rank 0)",
                       step, diff, par_size());
    return 0;
}

/* Stop codes rank 0 decides and every rank follows (par_active). */
static const char *stop_names[] = {NULL, "signal", "max_steps", "max_minutes",
                                   "max_epochs", "patience"};

int cmd_train(int argc, char **argv)
{
    static const struct option lo[] = {
        {"config", required_argument, 0, 'c'}, {"set", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},    {"resume", optional_argument, 0, 'r'},
        {"threads", required_argument, 0, 't'}, {"place", required_argument, 0, 'p'},
        {"isa", required_argument, 0, 'i'},    {"quiet", no_argument, 0, 'q'},
        {"help-config", no_argument, 0, 'K'},  {"help", no_argument, 0, 'h'},
        {"init", required_argument, 0, 'I'},   {0, 0, 0, 0}};
    const char *config = NULL, *outdir = NULL, *resume_path = NULL, *isa = NULL;
    const char *init_path = NULL;
    const char *place_opt = NULL;
    int resume = 0, quiet = 0;
    long threads_opt = -1;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0;
    int c, rc = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': sets[nsets++] = optarg; break;
        case 'o': outdir = optarg; break;
        case 'r':
            resume = 1;
            if (optarg)
                resume_path = optarg;
            else if (optind < argc && argv[optind][0] != '-')
                resume_path = argv[optind++];
            break;
        case 't':
            if (parse_int("--threads", optarg, 0, 4096, &threads_opt)) {
                free(sets);
                return 2;
            }
            break;
        case 'p': place_opt = optarg; break;
        case 'i': isa = optarg; break;
        case 'I': init_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'K': gcf_print_keys(stdout); free(sets); return 0;
        case 'h': usage_train(stdout); free(sets); return 0;
        default: usage_train(stderr); free(sets); return 2;
        }
    }
    if (optind < argc) {
        errorf("unexpected argument '%s' (try --help)", argv[optind]);
        free(sets);
        return 2;
    }
    if (!outdir) {
        errorf("--out DIR is required (try --help)");
        free(sets);
        return 2;
    }
    if (!resume && !config) {
        errorf("--config FILE is required unless --resume (try --help)");
        free(sets);
        return 2;
    }
    if (resume && config) {
        errorf("--resume takes the config from the checkpoint; drop --config (use "
               "--set for run-length keys)");
        free(sets);
        return 2;
    }
    if (resume && init_path) {
        errorf("--init starts a new run and --resume continues one; use one of them");
        free(sets);
        return 2;
    }
    /* under mpirun (an MPI build): one rank of R; otherwise rank 0 of 1 */
    if (par_init(NULL, NULL) != 0) {
        free(sets);
        return 1;
    }
    const int lead = par_rank() == 0, nranks = par_size();
    if (!lead) {
        /* the progress and dev lines are rank 0's; errors stay on stderr */
        if (!freopen("/dev/null", "w", stdout))
            quiet = 1;
    }

    /* Everything allocated below is released at `out`. */
    gcf_file cfg;
    gm_config mc;
    gm_model *m = NULL;
    ga_pool *pool = NULL;
    go_adamw opt;
    memset(&opt, 0, sizeof opt);
    gd_corpus train_c, dev_c;
    memset(&train_c, 0, sizeof train_c);
    memset(&dev_c, 0, sizeof dev_c);
    gd_iter it, dev_it;
    memset(&it, 0, sizeof it);
    memset(&dev_it, 0, sizeof dev_it);
    gd_batch batch, dev_batch;
    memset(&batch, 0, sizeof batch);
    memset(&dev_batch, 0, sizeof dev_batch);
    gk_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    char *cfg_text = NULL, *par_cfg_text = NULL;
    FILE *logf = NULL;
    int lock_fd = -1;
    run_state rs;
    memset(&rs, 0, sizeof rs);

    char last_path[PATH_MAX], best_path[PATH_MAX], log_path[PATH_MAX],
        cfg_path[PATH_MAX];
    snprintf(last_path, sizeof last_path, "%s/last.ckpt", outdir);
    snprintf(best_path, sizeof best_path, "%s/best.ckpt", outdir);
    snprintf(log_path, sizeof log_path, "%s/log.tsv", outdir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.ini", outdir);

    gcf_defaults(&cfg);
    if (resume) {
        if (!resume_path)
            resume_path = last_path;
        /* rank 0 reads the checkpoint (an error there ends the job: `out`
         * aborts every rank) and sends its config text to the others */
        if (lead && gk_load(resume_path, 0, &ck) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        if (lead && !ck.adam_m) {
            errorf("%s holds weights only (no optimiser state); resume from a "
                   "last.ckpt",
                   resume_path);
            goto out;
        }
        const char *ck_text = ck.config_text;
        if (par_active()) {
            uint64_t len = lead ? strlen(ck.config_text) + 1 : 0;
            if (par_bcast(&len, sizeof len, 0) != 0)
                goto out;
            if (!lead && !(par_cfg_text = calloc(len + 1, 1))) {
                errorf("out of memory");
                goto out;
            }
            if (par_bcast(lead ? ck.config_text : par_cfg_text, len, 0) != 0)
                goto out;
            if (!lead)
                ck_text = par_cfg_text;
        }
        if (gcf_parse(ck_text, resume_path, &cfg) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        for (int i = 0; i < nsets; i++) {
            if (!resume_key_ok(sets[i])) {
                errorf("--set %s: only run-length and logging keys (max_steps, "
                       "max_epochs, max_minutes, log_every, eval_every, "
                       "ckpt_every, patience, threads, place, dev_max_sents) may "
                       "change on --resume",
                       sets[i]);
                goto out;
            }
        }
    } else if (gcf_load(config, &cfg) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    for (int i = 0; i < nsets; i++)
        if (gcf_set(&cfg, sets[i]) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
    if (threads_opt >= 0)
        cfg.train.threads = (int)threads_opt;
    if (place_opt) {
        if (strlen(place_opt) >= sizeof cfg.train.place) {
            errorf("--place: value too long");
            goto out;
        }
        snprintf(cfg.train.place, sizeof cfg.train.place, "%s", place_opt);
    }
    if (gcf_check(&cfg) != 0 || gcf_model_config(&cfg, &mc) != 0) {
        /* a cross-key problem: name where the config came from */
        errorf("%s%s: %s", resume ? resume_path : config, nsets ? " with the --set overrides" : "",
               gu_error());
        goto out;
    }
    const gcf_train *tc = &cfg.train;
    if (lead) { /* the other ranks write nothing */
        if (gu_mkdir(outdir) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        /* one run per directory: a second `train` (--resume or not) on it
         * would interleave log rows and overwrite the other's checkpoints */
        lock_fd = gu_lock_dir(outdir, "granattn train");
        if (lock_fd < 0) {
            errorf("%s", gu_error());
            goto out;
        }
        /* temporaries of checkpoint writes cut short by a SIGKILL */
        gu_remove_stale_tmp(last_path);
        gu_remove_stale_tmp(best_path);
    }

    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    int want_threads = tc->threads;
    if (want_threads == 0 && par_local_size() > 1) {
        /* all cores: shared by the ranks on this machine */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        want_threads = ncpu > par_local_size() ? (int)(ncpu / par_local_size()) : 1;
    }
    pool = make_pool(want_threads, tc->place);
    if (!pool) {
        errorf("%s", gu_error());
        goto out;
    }
    int nthreads = ga_pool_threads(pool);

    /* data */
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.bin", tc->data_dir, tc->train_split);
    if (gd_load(path, mc.max_len, mc.vocab, &train_c) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    if (train_c.n_dropped)
        warnf("%s: dropped %d of %d pairs longer than max_len = %d positions "
              "(incl. bos/eos)",
              path, train_c.n_dropped, train_c.n_file, mc.max_len);
    snprintf(path, sizeof path, "%s/%s.bin", tc->data_dir, tc->dev_split);
    if (lead && gd_load(path, mc.max_len, mc.vocab, &dev_c) != 0) { /* rank 0 evaluates */
        errorf("%s", gu_error());
        goto out;
    }
    if (dev_c.n_dropped)
        warnf("%s: dropped %d of %d pairs longer than max_len = %d", path,
              dev_c.n_dropped, dev_c.n_file, mc.max_len);
    if (tc->dev_max_sents > 0 && dev_c.n > tc->dev_max_sents)
        dev_c.n = tc->dev_max_sents;
    if (gd_iter_init(&it, &train_c, tc->batch_tokens, 1, gu_mix(tc->seed, 1)) != 0 ||
        (lead && gd_iter_init(&dev_it, &dev_c, tc->batch_tokens, 0, 0) != 0)) {
        errorf("%s", gu_error());
        goto out;
    }

    /* model + optimiser */
    m = gm_create(&mc, kt, tc->seed);
    if (!m) {
        errorf("cannot build the model: %s", gm_last_error());
        goto out;
    }
    size_t np = gm_num_params(m);
    if (go_init(&opt, &tc->opt, np) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    for (int i = 0; i < gm_num_tensors(m); i++) {
        const gm_tensor_info *ti = gm_tensor(m, i);
        if (!ti->decay)
            go_no_decay(&opt, ti->offset, ti->size);
    }
    cfg_text = gcf_to_string(&cfg);
    if (!cfg_text) {
        errorf("%s", gu_error());
        goto out;
    }

    if (resume) {
        if (lead) {
            if (ck.n_params != np) {
                errorf("%s has %zu parameters, the model of its config %zu", resume_path,
                       ck.n_params, np);
                goto out;
            }
            memcpy(gm_params(m), ck.params, np * sizeof(float));
            memcpy(opt.m, ck.adam_m, np * sizeof(float));
            memcpy(opt.v, ck.adam_v, np * sizeof(float));
            rs.st = ck.state;
        }
        /* rank 0's checkpoint to every rank */
        if (par_bcast(gm_params(m), np * sizeof(float), 0) != 0 ||
            par_bcast(opt.m, np * sizeof(float), 0) != 0 ||
            par_bcast(opt.v, np * sizeof(float), 0) != 0 ||
            par_bcast(&rs.st, sizeof rs.st, 0) != 0)
            goto out;
        opt.t = (long)rs.st.adam_t;
        memcpy(rs.rng.s, rs.st.rng, sizeof rs.rng.s);
        if (gd_iter_seek(&it, (int)rs.st.epoch, (int)rs.st.batch_pos) != 0) {
            errorf("%s: %s", resume_path, gu_error());
            goto out;
        }
        long ck_ranks = rs.st.ranks > 0 ? (long)rs.st.ranks : 1; /* 0: older file */
        if (lead && (rs.st.threads != nthreads || ck_ranks != nranks))
            warnf("checkpoint was trained with %ld rank(s) x %lld threads, now %d x %d: "
                  "losses may differ from an uninterrupted run by float rounding",
                  ck_ranks, (long long)rs.st.threads, nranks, nthreads);
        gk_free(&ck);
        if (lead)
            trim_log(log_path, (long)rs.st.step);
        printf("resumed %s at step %lld (epoch %lld, batch %lld), best dev %.4f%s\n",
               resume_path, (long long)rs.st.step, (long long)rs.st.epoch,
               (long long)rs.st.batch_pos, rs.st.best_dev,
               rs.st.eval_pending ? "; the interrupted dev evaluation runs first" : "");
    } else {
        if (lead && init_path && init_weights(init_path, m, kt) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        /* the same start on every rank (--init's file is rank 0's) */
        if (par_bcast(gm_params(m), np * sizeof(float), 0) != 0)
            goto out;
        gu_rng_seed(&rs.rng, gu_mix(tc->seed, 2));
        rs.st.best_dev = INFINITY;
        rs.st.last_dev = INFINITY;
        rs.st.best_step = -1;
    }
    rs.st.threads = nthreads;
    rs.st.ranks = nranks;

    if (lead) {
        FILE *cf = fopen(cfg_path, "w");
        if (!cf) {
            errorf("cannot write %s: %s", cfg_path, strerror(errno));
            goto out;
        }
        fputs(cfg_text, cf);
        fclose(cf);
    }
    int new_log = !gu_file_exists(log_path) || !resume;
    logf = lead ? fopen(log_path, new_log ? "w" : "a") : NULL;
    if (lead && !logf) {
        errorf("cannot write %s: %s", log_path, strerror(errno));
        goto out;
    }
    if (logf && new_log)
        fprintf(logf, "step\tepoch\tloss\tnll\ttokens\tlr\tgnorm\tdensity\t"
                      "exp_density\tdev_nll\n");

    printf("model: d %d, H %d, ff %d, layers %d+%d, vocab %d, %zu parameters; "
           "cross-attention %s",
           mc.d, mc.H, mc.ff, mc.n_enc, mc.n_dec, mc.vocab, np,
           mc.dense ? "dense" : gcf_gpn_name(cfg.gpn));
    if (mc.level_source == GM_LEVELS_TOPK) {
        if (mc.topk_k > 0)
            printf(" (k %d keys per row", mc.topk_k);
        else
            printf(" (k = %g of each row's keys", mc.topk_frac);
        printf(", %s)", mc.mode == GA_NORM_RENORM ? "renorm" : "seed");
    } else if (!mc.dense) {
        printf(" (L %d, tau", mc.L);
        for (int l = 0; l < mc.L; l++)
            printf("%s%g", l ? "/" : " ", mc.tau[l]);
        printf(", %s, lambda %g)", mc.mode == GA_NORM_RENORM ? "renorm" : "seed",
               mc.lambda);
    }
    printf("\ndata: %d train pairs in %d batches of <= %d tokens, %d dev pairs; "
           "kernels %s, %s\n",
           train_c.n, it.nbatch, tc->batch_tokens, dev_c.n, kt->name,
           ga_pool_describe(pool));
    if (nranks > 1)
        printf("mpi: %d ranks (each batch split across them; %d on this machine), "
               "%zu gradient bytes summed per step\n",
               nranks, par_local_size(), np * sizeof(float));
    fflush(stdout);

    g_par_on = par_active();
    set_par_msg(outdir, (long)rs.st.step);
    install_signals();
    double t_start = gu_now();
    double base_seconds = rs.st.train_seconds;
    double win_t0 = t_start;
    gm_stats win;
    gm_stats_zero(&win);
    double win_gnorm = 0;
    int win_steps = 0, bad_streak = 0;
    /* the evaluation at the checkpoint's step may be done already (a
     * finished run resumed with the same max_steps): not again */
    long last_ckpt_step = rs.st.step, last_eval_step = resume ? (long)rs.st.last_eval_step : -1;
    const char *stop_reason = NULL;
    /* a dev evaluation cut short by SIGINT/SIGTERM (eval_pending in the
     * checkpoint) is run first, on the weights of that very step */
    int pending_eval = resume && rs.st.eval_pending && rs.st.step > 0;

    for (;;) {
        int eval_due;
        if (pending_eval) {
            pending_eval = 0;
            eval_due = 1;
            goto evaluate; /* skips only this iteration's training step */
        }
        rs.st.train_seconds = base_seconds + (gu_now() - t_start);
        int stop = 0; /* index in stop_names */
        if (g_signal)
            stop = 1;
        else if (tc->max_steps > 0 && rs.st.step >= tc->max_steps)
            stop = 2;
        else if (tc->max_minutes > 0 && rs.st.train_seconds >= 60.0 * tc->max_minutes)
            stop = 3;
        else if (tc->max_epochs > 0 &&
                 (it.epoch >= tc->max_epochs ||
                  (it.epoch + 1 == tc->max_epochs && it.pos >= it.nbatch)))
            stop = 4;
        else if (tc->patience > 0 && rs.st.evals_since_best >= tc->patience)
            stop = 5;
        if (par_active()) {
            /* rank 0 decides (its clock, its dev losses); all follow */
            double v = lead ? stop : 0;
            if (par_sum_f64(&v, 1) != 0)
                goto out;
            stop = (int)v;
        }
        if (stop) {
            stop_reason = stop_names[stop];
            break;
        }
        if (gd_iter_next(&it, &batch) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        gm_batch gb = {batch.B, batch.S, batch.T, batch.src, batch.tgt_in,
                       batch.tgt_out};
        uint64_t step_seed = gu_rng_next(&rs.rng);
        gm_step_result sr;
        gm_part part = {par_rank(), nranks, par_reduce, NULL};
        if (gm_train_step_part(m, &opt, &gb, step_seed, pool, par_active() ? &part : NULL,
                               &sr) != 0) {
            errorf("step %lld: %s", (long long)rs.st.step + 1, gm_last_error());
            goto out;
        }
        const gm_stats st = sr.stats;
        double gnorm = sr.gnorm;
        g_par_update_s += sr.update_seconds;
        float lr = sr.lr;
        if (!sr.updated) {
            warnf("step %lld: non-finite gradient (loss %g); update skipped",
                  (long long)rs.st.step + 1, st.loss_sum / (double)st.tokens);
            if (++bad_streak >= 10) {
                errorf("10 consecutive non-finite gradients: training diverged "
                       "(lower lr or raise warmup); last.ckpt is from step %ld",
                       last_ckpt_step);
                goto out;
            }
        } else {
            bad_streak = 0;
        }
        rs.st.step++;
        rs.st.adam_t = opt.t;
        rs.st.epoch = it.epoch;
        rs.st.batch_pos = it.pos;
        rs.st.tokens_seen += st.tokens;
        gm_stats_add(&win, &st);
        win_gnorm += gnorm;
        win_steps++;

        double tok = (double)(st.tokens > 0 ? st.tokens : 1);
        if (logf)
            fprintf(logf, "%lld\t%.4f\t%.9g\t%.9g\t%ld\t%.6g\t%.6g\t%.6g\t%.6g\t\n",
                (long long)rs.st.step, it.epoch + (double)it.pos / it.nbatch,
                st.loss_sum / tok, st.nll_sum / tok, st.tokens, lr, gnorm,
                st.density_count ? st.density_sum / (double)st.density_count : 1.0,
                st.exp_density_count ? st.exp_density_sum / st.exp_density_count
                                     : 1.0);

        if (!quiet && (rs.st.step % tc->log_every == 0)) {
            double now = gu_now();
            double wt = (double)(win.tokens > 0 ? win.tokens : 1);
            char mix[64] = "-", dur[32];
            if (!mc.dense && mc.level_source != GM_LEVELS_TOPK)
                level_mix(win.level_count, mc.L, mix, sizeof mix);
            fmt_duration(base_seconds + now - t_start, dur, sizeof dur);
            printf("step %6lld | ep %5.2f | loss %.4f | nll %.4f | lr %.2e | gnorm "
                   "%5.2f | %6.0f tok/s | dens %.3f | levels %s | %s\n",
                   (long long)rs.st.step, it.epoch + (double)it.pos / it.nbatch,
                   win.loss_sum / wt, win.nll_sum / wt, lr, win_gnorm / win_steps,
                   (double)win.tokens / (now - win_t0),
                   win.density_count ? win.density_sum / (double)win.density_count
                                     : 1.0,
                   mix, dur);
            fflush(stdout);
            gm_stats_zero(&win);
            win_gnorm = 0;
            win_steps = 0;
            win_t0 = now;
        }

        eval_due = rs.st.step % tc->eval_every == 0;
    evaluate:
        if (eval_due && lead) {
            gm_stats ds;
            if (dev_eval(m, &dev_it, &dev_batch, pool, &ds, (long)rs.st.step) != 0) {
                if (g_signal) {
                    /* last.ckpt (written on the way out) says so: --resume
                     * runs this evaluation before the next step */
                    rs.st.eval_pending = 1;
                    continue; /* the loop top handles the signal */
                }
                errorf("%s", gu_error());
                goto out;
            }
            rs.st.eval_pending = 0;
            last_eval_step = rs.st.step;
            rs.st.last_eval_step = rs.st.step;
            double dt = (double)(ds.tokens > 0 ? ds.tokens : 1);
            double dnll = ds.nll_sum / dt;
            rs.st.last_dev = dnll;
            int better = dnll < rs.st.best_dev;
            if (better) {
                rs.st.best_dev = dnll;
                rs.st.best_step = rs.st.step;
                rs.st.evals_since_best = 0;
            } else {
                rs.st.evals_since_best++;
            }
            print_dev((long)rs.st.step, &ds, &mc, better);
            fprintf(logf, "%lld\t\t\t\t\t\t\t\t\t%.9g\n", (long long)rs.st.step, dnll);
            fflush(logf);
            fflush(stdout);
            rs.st.train_seconds = base_seconds + (gu_now() - t_start);
            memcpy(rs.st.rng, rs.rng.s, sizeof rs.st.rng);
            if (better && save_ckpt(best_path, cfg_text, &rs.st, m, &opt, 0) != 0) {
                errorf("%s", gu_error());
                goto out;
            }
        }
        if (rs.st.step % tc->ckpt_every == 0 || eval_due) {
            rs.st.train_seconds = base_seconds + (gu_now() - t_start);
            memcpy(rs.st.rng, rs.rng.s, sizeof rs.st.rng);
            if (lead) {
                fflush(logf);
                if (save_ckpt(last_path, cfg_text, &rs.st, m, &opt, 1) != 0) {
                    errorf("%s", gu_error());
                    goto out;
                }
                set_par_msg(outdir, (long)rs.st.step);
            }
            /* every rank: rank 0 has written it once this returns */
            if (par_check_same(gm_params(m), np, (long)rs.st.step) != 0) {
                errorf("%s", gu_error());
                goto out;
            }
            last_ckpt_step = rs.st.step;
            set_par_msg(outdir, last_ckpt_step);
        }
    }

    /* Final dev evaluation (unless just done or interrupted), then last.ckpt. */
    if (lead && !g_signal && last_eval_step != rs.st.step && rs.st.step > 0) {
        gm_stats ds;
        if (dev_eval(m, &dev_it, &dev_batch, pool, &ds, (long)rs.st.step) == 0) {
            double dt = (double)(ds.tokens > 0 ? ds.tokens : 1);
            double dnll = ds.nll_sum / dt;
            int better = dnll < rs.st.best_dev;
            rs.st.last_dev = dnll;
            rs.st.last_eval_step = rs.st.step;
            if (better) {
                rs.st.best_dev = dnll;
                rs.st.best_step = rs.st.step;
                rs.st.evals_since_best = 0;
            }
            print_dev((long)rs.st.step, &ds, &mc, better);
            fprintf(logf, "%lld\t\t\t\t\t\t\t\t\t%.9g\n", (long long)rs.st.step, dnll);
            memcpy(rs.st.rng, rs.rng.s, sizeof rs.st.rng);
            if (better && save_ckpt(best_path, cfg_text, &rs.st, m, &opt, 0) != 0) {
                errorf("%s", gu_error());
                goto out;
            }
        } else if (!g_signal) {
            errorf("%s", gu_error());
            goto out;
        } else {
            rs.st.eval_pending = 1; /* --resume runs it first */
        }
    }
    rs.st.train_seconds = base_seconds + (gu_now() - t_start);
    memcpy(rs.st.rng, rs.rng.s, sizeof rs.st.rng);
    if (lead) {
        fflush(logf);
        if (save_ckpt(last_path, cfg_text, &rs.st, m, &opt, 1) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
    }
    if (par_check_same(gm_params(m), np, (long)rs.st.step) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    {
        char dur[32];
        fmt_duration(rs.st.train_seconds, dur, sizeof dur);
        if (g_signal) {
            printf("interrupted by %s at step %lld: wrote %s (resume with: granattn "
                   "train --out %s --resume)\n",
                   g_signal == SIGINT ? "SIGINT" : "SIGTERM", (long long)rs.st.step,
                   last_path, outdir);
            rc = 128 + g_signal;
        } else {
            printf("done (%s) at step %lld after %s; best dev nll %.4f at step %lld; "
                   "wrote %s and %s\n",
                   stop_reason, (long long)rs.st.step, dur, rs.st.best_dev,
                   (long long)rs.st.best_step, last_path, best_path);
            if (g_par_steps > 0) /* the first reduction also waits for the slowest rank */
                printf("mpi: rank 0 per step: %.3f ms in the statistics allreduce (waiting "
                       "for the slowest rank), %.3f ms in the gradient allreduce of %zu "
                       "bytes, %.3f ms clipping + AdamW; %ld steps\n",
                       1e3 * g_par_wait_s / g_par_steps, 1e3 * g_par_grad_s / g_par_steps,
                       np * sizeof(float), 1e3 * g_par_update_s / g_par_steps, g_par_steps);
            rc = 0;
        }
    }
out:
    if (rc == 1 && par_active()) {
        /* the other ranks wait in a collective for this one: end the job */
        fflush(stdout);
        fflush(stderr);
        par_abort(1);
    }
    par_finalize();
    free(par_cfg_text);
    if (logf)
        fclose(logf);
    if (lock_fd >= 0)
        close(lock_fd);
    free(cfg_text);
    free(sets);
    gk_free(&ck);
    gd_batch_free(&batch);
    gd_batch_free(&dev_batch);
    gd_iter_free(&it);
    gd_iter_free(&dev_it);
    gd_free(&train_c);
    gd_free(&dev_c);
    go_free(&opt);
    gm_free(m);
    if (pool)
        ga_pool_destroy(pool);
    return rc;
}
