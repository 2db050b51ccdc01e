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

#include "cli_train.h"
#include "data.h"
#include "optim.h"
#include "par.h"
#include "train_step.h"

static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
    train_par_on_signal(sig); /* under mpirun: exits with its message */
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



/* Records a finished dev evaluation at step rs->st.step: the run state
 * (last/best dev loss; an evaluation that is not the best so far counts
 * towards patience when count_patience is 1: the loop's evaluations, not
 * the final one), the "dev" line, the log.tsv row and best.ckpt when the
 * loss is the best so far.  0, or -1 with gu_error() set. */
static int record_dev(run_state *rs, const gm_stats *ds, const gm_config *mc, int count_patience,
                      FILE *logf, const char *best_path, const char *cfg_text, gm_model *m,
                      const go_adamw *opt)
{
    double dt = (double)(ds->tokens > 0 ? ds->tokens : 1);
    double dnll = ds->nll_sum / dt;
    int better = dnll < rs->st.best_dev;
    rs->st.last_dev = dnll;
    rs->st.last_eval_step = rs->st.step;
    if (better) {
        rs->st.best_dev = dnll;
        rs->st.best_step = rs->st.step;
        rs->st.evals_since_best = 0;
    } else if (count_patience) {
        rs->st.evals_since_best++;
    }
    train_print_dev((long)rs->st.step, ds, mc, better);
    fprintf(logf, "%lld\t\t\t\t\t\t\t\t\t%.9g\n", (long long)rs->st.step, dnll);
    fflush(logf);
    fflush(stdout);
    memcpy(rs->st.rng, rs->rng.s, sizeof rs->st.rng);
    if (better && train_save_ckpt(best_path, cfg_text, &rs->st, m, opt, 0) != 0)
        return -1;
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
            if (!train_resume_key_ok(sets[i])) {
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
            train_trim_log(log_path, (long)rs.st.step);
        printf("resumed %s at step %lld (epoch %lld, batch %lld), best dev %.4f%s\n",
               resume_path, (long long)rs.st.step, (long long)rs.st.epoch,
               (long long)rs.st.batch_pos, rs.st.best_dev,
               rs.st.eval_pending ? "; the interrupted dev evaluation runs first" : "");
    } else {
        if (lead && init_path && train_init_weights(init_path, m, kt) != 0) {
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

    train_par_enable(par_active());
    train_par_set_msg(outdir, (long)rs.st.step);
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
        gm_part part = {par_rank(), nranks, train_par_reduce, NULL};
        if (gm_train_step_part(m, &opt, &gb, step_seed, pool, par_active() ? &part : NULL,
                               &sr) != 0) {
            errorf("step %lld: %s", (long long)rs.st.step + 1, gm_last_error());
            goto out;
        }
        const gm_stats st = sr.stats;
        double gnorm = sr.gnorm;
        train_par_add_update(sr.update_seconds);
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
            if (train_dev_eval(m, &dev_it, &dev_batch, pool, &ds, (long)rs.st.step, &g_signal) != 0) {
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
            rs.st.train_seconds = base_seconds + (gu_now() - t_start);
            if (record_dev(&rs, &ds, &mc, 1, logf, best_path, cfg_text, m, &opt) != 0) {
                errorf("%s", gu_error());
                goto out;
            }
        }
        if (rs.st.step % tc->ckpt_every == 0 || eval_due) {
            rs.st.train_seconds = base_seconds + (gu_now() - t_start);
            memcpy(rs.st.rng, rs.rng.s, sizeof rs.st.rng);
            if (lead) {
                fflush(logf);
                if (train_save_ckpt(last_path, cfg_text, &rs.st, m, &opt, 1) != 0) {
                    errorf("%s", gu_error());
                    goto out;
                }
                train_par_set_msg(outdir, (long)rs.st.step);
            }
            /* every rank: rank 0 has written it once this returns */
            if (train_par_check_same(gm_params(m), np, (long)rs.st.step) != 0) {
                errorf("%s", gu_error());
                goto out;
            }
            last_ckpt_step = rs.st.step;
            train_par_set_msg(outdir, last_ckpt_step);
        }
    }

    /* Final dev evaluation (unless just done or interrupted), then last.ckpt. */
    if (lead && !g_signal && last_eval_step != rs.st.step && rs.st.step > 0) {
        gm_stats ds;
        if (train_dev_eval(m, &dev_it, &dev_batch, pool, &ds, (long)rs.st.step, &g_signal) == 0) {
            rs.st.train_seconds = base_seconds + (gu_now() - t_start);
            if (record_dev(&rs, &ds, &mc, 0, logf, best_path, cfg_text, m, &opt) != 0) {
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
        if (train_save_ckpt(last_path, cfg_text, &rs.st, m, &opt, 1) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
    }
    if (train_par_check_same(gm_params(m), np, (long)rs.st.step) != 0) {
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
            train_par_report(np * sizeof(float));
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
