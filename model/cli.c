/* cli.c — the `granattn` executable: train, translate, eval, inspect.
 *
 *   granattn train     --config configs/default.ini --out runs/default
 *   granattn train     --out runs/default --resume
 *   granattn translate --model runs/default/best.ckpt [--beam 4] < en.txt
 *   granattn eval      --model runs/default/best.ckpt --split test [--beam 4]
 *   granattn inspect   --model runs/default/best.ckpt --sentence "In the beginning ..."
 *
 * Every subcommand takes --help.  Errors print one line "granattn CMD: error:
 * ..." and exit with status 1 (2 for bad usage); nothing aborts.
 * Text goes through tools/corpus/spm.py (SentencePiece, /usr/bin/python3);
 * scores through tools/eval_bleu.py (sacreBLEU); maps through
 * tools/inspect_map.py (matplotlib).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config_file.h"
#include "data.h"
#include "decode.h"
#include "granattn.h"
#include "model.h"
#include "optim.h"
#include "trace.h"
#include "util.h"

#define PYTHON_DEFAULT "/usr/bin/python3"

static const char *g_cmd = "granattn";

static void errorf(const char *fmt, ...) GU_PRINTF(1, 2);
static void errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void warnf(const char *fmt, ...) GU_PRINTF(1, 2);
static void warnf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: warning: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------ parsing */
static int parse_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        errorf("%s '%s': expected an integer in [%ld, %ld]", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_float(const char *opt, const char *s, double lo, double hi,
                       double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo && v <= hi)) {
        errorf("%s '%s': expected a number in [%g, %g]", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static const char *python_path(void)
{
    const char *p = getenv("GRANATTN_PYTHON");
    return p && *p ? p : PYTHON_DEFAULT;
}

/* Runs argv (argv[0] is a path) with stdin/stdout redirected to files (NULL:
 * inherit).  Returns the exit status, or -1 with a message. */
static int run_process(char *const argv[], const char *in_path, const char *out_path)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return gu_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        if (in_path) {
            int fd = open(in_path, O_RDONLY);
            if (fd < 0 || dup2(fd, 0) < 0)
                _exit(126);
            close(fd);
        }
        if (out_path) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, 1) < 0)
                _exit(126);
            close(fd);
        }
        execv(argv[0], argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", g_cmd, argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return gu_fail("waitpid: %s", strerror(errno));
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return gu_fail("%s killed by signal %d", argv[0], WTERMSIG(st));
}

/* A temporary directory removed at exit (files inside are ours). */
static char g_tmpdir[PATH_MAX];

static void cleanup_tmpdir(void)
{
    if (!g_tmpdir[0])
        return;
    static const char *names[] = {"in.txt", "in.ids", "out.ids", "out.txt",
                                  "extra.json", NULL};
    char p[PATH_MAX + 32];
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", g_tmpdir, names[i]);
        unlink(p);
    }
    rmdir(g_tmpdir);
    g_tmpdir[0] = '\0';
}

static const char *tmpdir(void)
{
    if (g_tmpdir[0])
        return g_tmpdir;
    const char *base = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/granattn.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        gu_fail("cannot create a temporary directory: %s", strerror(errno));
        g_tmpdir[0] = '\0';
        return NULL;
    }
    atexit(cleanup_tmpdir);
    return g_tmpdir;
}

static int tmpfile_path(const char *name, char *out, size_t outlen)
{
    const char *d = tmpdir();
    if (!d)
        return -1;
    snprintf(out, outlen, "%s/%s", d, name);
    return 0;
}

/* spm.py encode|decode in_path > out_path */
static int run_spm(const char *what, const char *in_path, const char *out_path)
{
    const char *root = gu_project_root();
    if (!root)
        return -1;
    char script[PATH_MAX + 64], model[PATH_MAX + 64];
    snprintf(script, sizeof script, "%s/tools/corpus/spm.py", root);
    snprintf(model, sizeof model, "%s/data/spm/spm.model", root);
    if (!gu_file_exists(model))
        return gu_fail("%s: no such file (run tools/prepare-data.sh)", model);
    char *argv[] = {(char *)python_path(), script, "--model", model, (char *)what,
                    (char *)in_path, NULL};
    int rc = run_process(argv, NULL, out_path);
    if (rc < 0)
        return -1;
    if (rc != 0)
        return gu_fail("tools/corpus/spm.py %s failed (exit status %d)", what, rc);
    return 0;
}

/* ----------------------------------------------------- id-line files */
typedef struct idlines {
    int n;
    int32_t **ids;
    int *len;
} idlines;

static void idlines_free(idlines *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
    free(l->len);
    memset(l, 0, sizeof *l);
}

/* Parses lines of space-separated ids.  Strips a leading bos and anything
 * from the first eos.  Every id must be in [0, vocab). */
static int idlines_parse(char *text, const char *name, int vocab, idlines *out)
{
    memset(out, 0, sizeof *out);
    int cap = 0;
    char *line = text;
    int lineno = 0;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            int32_t **ni = realloc(out->ids, (size_t)cap * sizeof *ni);
            if (!ni)
                return gu_fail("out of memory");
            out->ids = ni;
            int *nlen = realloc(out->len, (size_t)cap * sizeof *nlen);
            if (!nlen)
                return gu_fail("out of memory");
            out->len = nlen;
        }
        size_t ll = strlen(line);
        int32_t *ids = malloc((ll / 2 + 2) * sizeof(int32_t));
        if (!ids)
            return gu_fail("out of memory");
        int n = 0, stop = 0;
        char *p = line;
        while (!stop) {
            while (*p == ' ' || *p == '\t' || *p == '\r')
                p++;
            if (!*p)
                break;
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || (*end && *end != ' ' && *end != '\t' && *end != '\r')) {
                char tok[32];
                int k = 0;
                while (p[k] && p[k] != ' ' && p[k] != '\t' && k < 31) {
                    tok[k] = p[k];
                    k++;
                }
                tok[k] = '\0';
                free(ids);
                out->n++; /* so idlines_free sees a consistent count */
                out->ids[out->n - 1] = NULL;
                return gu_fail("%s:%d: '%s' is not a token id", name, lineno, tok);
            }
            if (errno || v < 0 || v >= vocab) {
                free(ids);
                out->n++;
                out->ids[out->n - 1] = NULL;
                return gu_fail("%s:%d: token id %ld is outside the vocabulary [0, %d)",
                               name, lineno, v, vocab);
            }
            p = end;
            if (v == GM_EOS) {
                stop = 1;
            } else if (v == GM_BOS && n == 0) {
                /* leading bos: ignore */
            } else {
                ids[n++] = (int32_t)v;
            }
        }
        out->ids[out->n] = ids;
        out->len[out->n] = n;
        out->n++;
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

static int write_idlines(const char *path, int n, int32_t *const *ids, const int *len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return gu_fail("cannot write %s: %s", path, strerror(errno));
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < len[i]; k++)
            fprintf(f, "%s%d", k ? " " : "", ids[i][k]);
        fputc('\n', f);
    }
    if (fclose(f) != 0)
        return gu_fail("writing %s: %s", path, strerror(errno));
    return 0;
}

/* ------------------------------------------------------- pool / isa */
static int parse_place(const char *s, ga_place *place, int *pus, int *npus)
{
    *npus = 0;
    if (!strncmp(s, "list:", 5)) {
        *place = GA_PLACE_LIST;
        const char *p = s + 5;
        while (*p) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v > 100000 || *npus == 256)
                return gu_fail("--place '%s': expected list:PU,PU,... (hwloc logical "
                               "indices)",
                               s);
            pus[(*npus)++] = (int)v;
            p = *end == ',' ? end + 1 : end;
            if (*end && *end != ',')
                return gu_fail("--place '%s': expected list:PU,PU,...", s);
        }
        if (*npus == 0)
            return gu_fail("--place '%s': empty PU list", s);
        return 0;
    }
    if (ga_place_from_name(s, place) != GA_OK)
        return gu_fail("--place '%s': expected none, compact, scatter or list:0,1,...",
                       s);
    return 0;
}

static ga_pool *make_pool(int threads, const char *place_s)
{
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    ga_place place;
    int pus[256], npus = 0;
    if (parse_place(place_s, &place, pus, &npus) != 0)
        return NULL;
    ga_pool *pool = ga_pool_create(threads, place, pus, npus);
    if (!pool)
        gu_fail("thread pool (%d threads, place %s): %s", threads, place_s,
                ga_last_error());
    return pool;
}

static const ga_kernels *pick_kernels(const char *isa_name)
{
    if (!isa_name) {
        const ga_kernels *kt = ga_kernels_default();
        if (!kt)
            gu_fail("%s", ga_last_error());
        return kt;
    }
    ga_isa isa;
    if (ga_isa_from_name(isa_name, &isa) != GA_OK) {
        gu_fail("--isa '%s': %s", isa_name, ga_last_error());
        return NULL;
    }
    const ga_kernels *kt = ga_kernels_for(isa);
    if (!kt)
        gu_fail("--isa %s: %s", isa_name, ga_last_error());
    return kt;
}

/* ------------------------------------------------- model + checkpoint */
typedef struct loaded {
    gcf_file cfg;
    gm_config mc;
    gm_model *m;
    gk_checkpoint ck;
} loaded;

static void loaded_free(loaded *l)
{
    gm_free(l->m);
    gk_free(&l->ck);
    memset(l, 0, sizeof *l);
}

/* Loads a checkpoint and builds the model with its parameters. */
static int load_model(const char *path, const ga_kernels *kt, loaded *out)
{
    memset(out, 0, sizeof *out);
    if (gk_load(path, 0, &out->ck) != 0)
        return -1;
    gcf_defaults(&out->cfg);
    if (gcf_parse(out->ck.config_text, "checkpoint config", &out->cfg) != 0 ||
        gcf_check(&out->cfg) != 0 || gcf_model_config(&out->cfg, &out->mc) != 0) {
        gu_fail_prefix("%s", path);
        gk_free(&out->ck);
        return -1;
    }
    out->m = gm_create(&out->mc, kt, out->cfg.train.seed);
    if (!out->m) {
        gu_fail("%s: cannot build the model: %s", path, ga_last_error());
        gk_free(&out->ck);
        return -1;
    }
    if (gm_num_params(out->m) != out->ck.n_params) {
        gu_fail("%s: checkpoint has %zu parameters but its config builds a model "
                "with %zu (written by another model version?)",
                path, out->ck.n_params, gm_num_params(out->m));
        loaded_free(out);
        return -1;
    }
    memcpy(gm_params(out->m), out->ck.params, out->ck.n_params * sizeof(float));
    return 0;
}

/* Level mix text "33/41/26" (percent per level). */
static void level_mix(const double *count, int L, char *buf, size_t len)
{
    double tot = 0;
    for (int l = 0; l < L; l++)
        tot += count[l];
    size_t k = 0;
    buf[0] = '\0';
    for (int l = 0; l < L && k < len; l++)
        k += (size_t)snprintf(buf + k, len - k, "%s%.0f", l ? "/" : "",
                              tot > 0 ? 100.0 * count[l] / tot : 0.0);
}

static void fmt_duration(double s, char *buf, size_t len)
{
    long t = (long)s;
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

/* ================================================================ train */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
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
"status 130/143; a second signal exits at once (last.ckpt stays intact).\n");
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

/* Dev loss over the whole dev corpus (forward only). */
static int dev_eval(gm_model *m, gd_iter *dev, gd_batch *b, ga_pool *pool,
                    gm_stats *out)
{
    gm_stats_zero(out);
    if (gd_iter_seek(dev, 0, 0) != 0)
        return -1;
    for (int k = 0; k < dev->nbatch; k++) {
        if (g_signal)
            return gu_fail("interrupted");
        if (gd_iter_next(dev, b) != 0)
            return -1;
        gm_batch gb = {b->B, b->S, b->T, b->src, b->tgt_in, b->tgt_out};
        if (gm_forward_backward(m, &gb, 0, 0, pool, out) != GA_OK)
            return gu_fail("dev forward: %s", ga_last_error());
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
        if (nl)
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
    if (!mc->dense)
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
        gu_fail("--init %s: cannot build its model: %s", path, ga_last_error());
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

static int cmd_train(int argc, char **argv)
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
    char *cfg_text = NULL;
    FILE *logf = NULL;
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
        if (gk_load(resume_path, 0, &ck) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        if (!ck.adam_m) {
            errorf("%s holds weights only (no optimiser state); resume from a "
                   "last.ckpt",
                   resume_path);
            goto out;
        }
        if (gcf_parse(ck.config_text, resume_path, &cfg) != 0) {
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
        errorf("%s", gu_error());
        goto out;
    }
    const gcf_train *tc = &cfg.train;
    if (gu_mkdir(outdir) != 0) {
        errorf("%s", gu_error());
        goto out;
    }

    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    pool = make_pool(tc->threads, tc->place);
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
    if (gd_load(path, mc.max_len, mc.vocab, &dev_c) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    if (dev_c.n_dropped)
        warnf("%s: dropped %d of %d pairs longer than max_len = %d", path,
              dev_c.n_dropped, dev_c.n_file, mc.max_len);
    if (tc->dev_max_sents > 0 && dev_c.n > tc->dev_max_sents)
        dev_c.n = tc->dev_max_sents;
    if (gd_iter_init(&it, &train_c, tc->batch_tokens, 1, gu_mix(tc->seed, 1)) != 0 ||
        gd_iter_init(&dev_it, &dev_c, tc->batch_tokens, 0, 0) != 0) {
        errorf("%s", gu_error());
        goto out;
    }

    /* model + optimiser */
    m = gm_create(&mc, kt, tc->seed);
    if (!m) {
        errorf("cannot build the model: %s", ga_last_error());
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
        if (ck.n_params != np) {
            errorf("%s has %zu parameters, the model of its config %zu", resume_path,
                   ck.n_params, np);
            goto out;
        }
        memcpy(gm_params(m), ck.params, np * sizeof(float));
        memcpy(opt.m, ck.adam_m, np * sizeof(float));
        memcpy(opt.v, ck.adam_v, np * sizeof(float));
        rs.st = ck.state;
        opt.t = (long)rs.st.adam_t;
        memcpy(rs.rng.s, rs.st.rng, sizeof rs.rng.s);
        if (gd_iter_seek(&it, (int)rs.st.epoch, (int)rs.st.batch_pos) != 0) {
            errorf("%s: %s", resume_path, gu_error());
            goto out;
        }
        if (rs.st.threads != nthreads)
            warnf("checkpoint was trained with %lld threads, now %d: losses will "
                  "differ from an uninterrupted run by float rounding",
                  (long long)rs.st.threads, nthreads);
        gk_free(&ck);
        trim_log(log_path, (long)rs.st.step);
        printf("resumed %s at step %lld (epoch %lld, batch %lld), best dev %.4f\n",
               resume_path, (long long)rs.st.step, (long long)rs.st.epoch,
               (long long)rs.st.batch_pos, rs.st.best_dev);
    } else {
        if (init_path && init_weights(init_path, m, kt) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        gu_rng_seed(&rs.rng, gu_mix(tc->seed, 2));
        rs.st.best_dev = INFINITY;
        rs.st.last_dev = INFINITY;
        rs.st.best_step = -1;
    }
    rs.st.threads = nthreads;

    {
        FILE *cf = fopen(cfg_path, "w");
        if (!cf) {
            errorf("cannot write %s: %s", cfg_path, strerror(errno));
            goto out;
        }
        fputs(cfg_text, cf);
        fclose(cf);
    }
    int new_log = !gu_file_exists(log_path) || !resume;
    logf = fopen(log_path, new_log ? "w" : "a");
    if (!logf) {
        errorf("cannot write %s: %s", log_path, strerror(errno));
        goto out;
    }
    if (new_log)
        fprintf(logf, "step\tepoch\tloss\tnll\ttokens\tlr\tgnorm\tdensity\t"
                      "exp_density\tdev_nll\n");

    printf("model: d %d, H %d, ff %d, layers %d+%d, vocab %d, %zu parameters; "
           "cross-attention %s",
           mc.d, mc.H, mc.ff, mc.n_enc, mc.n_dec, mc.vocab, np,
           mc.dense ? "dense" : gcf_gpn_name(cfg.gpn));
    if (!mc.dense) {
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
    fflush(stdout);

    install_signals();
    double t_start = gu_now();
    double base_seconds = rs.st.train_seconds;
    double win_t0 = t_start;
    gm_stats win;
    gm_stats_zero(&win);
    double win_gnorm = 0;
    int win_steps = 0, bad_streak = 0;
    long last_ckpt_step = rs.st.step, last_eval_step = -1;
    const char *stop_reason = NULL;

    for (;;) {
        rs.st.train_seconds = base_seconds + (gu_now() - t_start);
        if (g_signal) {
            stop_reason = "signal";
            break;
        }
        if (tc->max_steps > 0 && rs.st.step >= tc->max_steps) {
            stop_reason = "max_steps";
            break;
        }
        if (tc->max_minutes > 0 && rs.st.train_seconds >= 60.0 * tc->max_minutes) {
            stop_reason = "max_minutes";
            break;
        }
        if (tc->max_epochs > 0 &&
            (it.epoch >= tc->max_epochs ||
             (it.epoch + 1 == tc->max_epochs && it.pos >= it.nbatch))) {
            stop_reason = "max_epochs";
            break;
        }
        if (tc->patience > 0 && rs.st.evals_since_best >= tc->patience) {
            stop_reason = "patience";
            break;
        }
        if (gd_iter_next(&it, &batch) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        gm_batch gb = {batch.B, batch.S, batch.T, batch.src, batch.tgt_in,
                       batch.tgt_out};
        gm_stats st;
        gm_stats_zero(&st);
        gm_zero_grads(m);
        uint64_t step_seed = gu_rng_next(&rs.rng);
        if (gm_forward_backward(m, &gb, 1, step_seed, pool, &st) != GA_OK) {
            errorf("step %lld: %s", (long long)rs.st.step + 1, ga_last_error());
            goto out;
        }
        double gnorm = go_clip(pool, gm_grads(m), np, tc->opt.clip);
        float lr = go_lr(&tc->opt, opt.t + 1);
        if (!isfinite(gnorm)) {
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
            go_step(&opt, pool, gm_params(m), gm_grads(m), lr);
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
            if (!mc.dense)
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

        if (rs.st.step % tc->eval_every == 0) {
            gm_stats ds;
            if (dev_eval(m, &dev_it, &dev_batch, pool, &ds) != 0) {
                if (g_signal)
                    continue; /* the loop top handles the signal */
                errorf("%s", gu_error());
                goto out;
            }
            last_eval_step = rs.st.step;
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
        if (rs.st.step % tc->ckpt_every == 0 || rs.st.step % tc->eval_every == 0) {
            rs.st.train_seconds = base_seconds + (gu_now() - t_start);
            memcpy(rs.st.rng, rs.rng.s, sizeof rs.st.rng);
            fflush(logf);
            if (save_ckpt(last_path, cfg_text, &rs.st, m, &opt, 1) != 0) {
                errorf("%s", gu_error());
                goto out;
            }
            last_ckpt_step = rs.st.step;
        }
    }

    /* Final dev evaluation (unless just done or interrupted), then last.ckpt. */
    if (!g_signal && last_eval_step != rs.st.step && rs.st.step > 0) {
        gm_stats ds;
        if (dev_eval(m, &dev_it, &dev_batch, pool, &ds) == 0) {
            double dt = (double)(ds.tokens > 0 ? ds.tokens : 1);
            double dnll = ds.nll_sum / dt;
            int better = dnll < rs.st.best_dev;
            rs.st.last_dev = dnll;
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
        }
    }
    rs.st.train_seconds = base_seconds + (gu_now() - t_start);
    memcpy(rs.st.rng, rs.rng.s, sizeof rs.st.rng);
    fflush(logf);
    if (save_ckpt(last_path, cfg_text, &rs.st, m, &opt, 1) != 0) {
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
            rc = 0;
        }
    }
out:
    if (logf)
        fclose(logf);
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

/* ======================================================= parallel decode */
typedef struct xlate_job {
    const gm_model *m;
    gs_decoder **dec;       /* [threads] */
    int nthreads;
    int n;                  /* sentences */
    int32_t *const *src;
    const int *src_len;
    int32_t **out;          /* [n][out_cap] */
    int *out_len;
    int out_cap;
    char **err;             /* [n]: message or NULL */
    gm_step_stats *stats;   /* [threads] */
    long *steps;            /* [threads] */
    long *out_tokens;       /* [threads] */
} xlate_job;

static void xlate_task(void *arg, int task, int worker)
{
    xlate_job *j = arg;
    for (int i = task; i < j->n; i += j->nthreads) {
        long steps = 0;
        if (gs_translate(j->dec[worker], j->src[i], j->src_len[i], j->out[i],
                         j->out_cap, &j->out_len[i], &j->stats[worker], &steps) != 0) {
            j->err[i] = strdup(gu_error());
            j->out_len[i] = 0;
        }
        j->steps[worker] += steps;
        j->out_tokens[worker] += j->out_len[i] + 1;
    }
}

typedef struct xlate_result {
    int32_t **out;
    int *out_len;
    char **err;
    gm_step_stats stats;
    long steps, out_tokens;
    double seconds;
    int nerr;
} xlate_result;

static void xlate_result_free(xlate_result *r, int n)
{
    if (r->out)
        for (int i = 0; i < n; i++)
            free(r->out[i]);
    if (r->err)
        for (int i = 0; i < n; i++)
            free(r->err[i]);
    free(r->out);
    free(r->out_len);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static int translate_all(const gm_model *m, ga_pool *pool, const gs_options *so,
                         int n, int32_t *const *src, const int *src_len,
                         xlate_result *r)
{
    memset(r, 0, sizeof *r);
    int T = ga_pool_threads(pool);
    int cap = gm_get_config(m)->max_len + 1;
    r->out = calloc((size_t)n + 1, sizeof *r->out);
    r->out_len = calloc((size_t)n + 1, sizeof *r->out_len);
    r->err = calloc((size_t)n + 1, sizeof *r->err);
    gs_decoder **dec = calloc((size_t)T, sizeof *dec);
    gm_step_stats *stats = calloc((size_t)T, sizeof *stats);
    long *steps = calloc((size_t)T, sizeof *steps);
    long *otok = calloc((size_t)T, sizeof *otok);
    int rc = -1;
    if (!r->out || !r->out_len || !r->err || !dec || !stats || !steps || !otok) {
        gu_fail("out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (!(r->out[i] = malloc((size_t)cap * sizeof(int32_t)))) {
            gu_fail("out of memory");
            goto done;
        }
    for (int t = 0; t < T; t++)
        if (!(dec[t] = gs_create(m, so)))
            goto done;
    xlate_job j = {m, dec, T, n, src, src_len, r->out, r->out_len, cap, r->err,
                   stats, steps, otok};
    double t0 = gu_now();
    ga_pool_run(pool, xlate_task, &j, T < n ? T : (n > 0 ? n : 1));
    r->seconds = gu_now() - t0;
    memset(&r->stats, 0, sizeof r->stats);
    for (int t = 0; t < T; t++) {
        r->stats.density_sum += stats[t].density_sum;
        r->stats.density_count += stats[t].density_count;
        for (int l = 0; l < GA_MAX_LEVELS; l++)
            r->stats.level_count[l] += stats[t].level_count[l];
        r->steps += steps[t];
        r->out_tokens += otok[t];
    }
    for (int i = 0; i < n; i++)
        if (r->err[i])
            r->nerr++;
    rc = 0;
done:
    if (dec)
        for (int t = 0; t < T; t++)
            gs_free(dec[t]);
    free(dec);
    free(stats);
    free(steps);
    free(otok);
    return rc;
}

static int parse_decode_opt(int c, const char *arg, gs_options *so)
{
    long v;
    double x;
    switch (c) {
    case 'b':
        if (parse_int("--beam", arg, 1, 64, &v))
            return -1;
        so->beam = (int)v;
        return 0;
    case 'a':
        if (parse_float("--alpha", arg, 0, 10, &x))
            return -1;
        so->alpha = (float)x;
        return 0;
    case 'A':
        if (parse_float("--max-len-a", arg, 0, 100, &x))
            return -1;
        so->max_len_a = (float)x;
        return 0;
    case 'B':
        if (parse_int("--max-len-b", arg, 0, 100000, &v))
            return -1;
        so->max_len_b = (int)v;
        return 0;
    }
    return -1;
}

#define DECODE_HELP                                                                 \
    "  --beam K           beam size (default 1 = greedy)\n"                         \
    "  --alpha A          length penalty ((5+len)/6)^A for beam search (default 0.6)\n" \
    "  --max-len-a A, --max-len-b B\n"                                              \
    "                     output limit A * source_len + B tokens (default 1.5, 10),\n" \
    "                     capped by the model's max_len\n"                          \
    "  --threads N        sentences decoded in parallel (default: all cores)\n"    \
    "  --place P          thread placement: none | compact | scatter | list:0,1,...\n" \
    "  --isa NAME         kernel variant (default: best supported)\n"

/* ============================================================ translate */
static void usage_translate(FILE *f)
{
    fprintf(f,
"usage: granattn translate --model CKPT [options] [< input] [> output]\n"
"\n"
"Translates English sentences, one per line, into Spanish.  Raw text is\n"
"segmented with tools/corpus/spm.py (SentencePiece); --ids reads lines of\n"
"token ids instead.  Output: one translation per line, in order.\n"
"A line that cannot be translated (over-long, bad id) is reported on stderr,\n"
"printed as an empty line, and makes the exit status 1.\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint (best.ckpt or last.ckpt of a run)\n"
"  --input FILE       input file (default: stdin)\n"
"  --output FILE      output file (default: stdout)\n"
"  --ids              input lines are token ids (space separated)\n"
"  --output-ids       print token ids instead of text\n"
DECODE_HELP
"  -h, --help         this text\n");
}

static int cmd_translate(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"input", required_argument, 0, 'I'},
        {"output", required_argument, 0, 'O'}, {"ids", no_argument, 0, 'd'},
        {"output-ids", no_argument, 0, 'D'},  {"beam", required_argument, 0, 'b'},
        {"alpha", required_argument, 0, 'a'}, {"max-len-a", required_argument, 0, 'A'},
        {"max-len-b", required_argument, 0, 'B'},
        {"threads", required_argument, 0, 't'}, {"place", required_argument, 0, 'p'},
        {"isa", required_argument, 0, 'i'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *input = NULL, *output = NULL, *isa = NULL,
               *place = "none";
    int in_ids = 0, out_ids = 0;
    long threads = 0;
    gs_options so;
    gs_options_default(&so);
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'I': input = optarg; break;
        case 'O': output = optarg; break;
        case 'd': in_ids = 1; break;
        case 'D': out_ids = 1; break;
        case 'b': case 'a': case 'A': case 'B':
            if (parse_decode_opt(c, optarg, &so))
                return 2;
            break;
        case 't':
            if (parse_int("--threads", optarg, 0, 4096, &threads))
                return 2;
            break;
        case 'p': place = optarg; break;
        case 'i': isa = optarg; break;
        case 'h': usage_translate(stdout); return 0;
        default: usage_translate(stderr); return 2;
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
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    ga_pool *pool = NULL;
    idlines lines;
    memset(&lines, 0, sizeof lines);
    xlate_result r;
    memset(&r, 0, sizeof r);
    char *text = NULL;
    char in_path[PATH_MAX], ids_path[PATH_MAX], outids_path[PATH_MAX],
        outtxt_path[PATH_MAX];

    /* Read the input first: errors there are cheaper than loading a model. */
    if (input && strcmp(input, "-")) {
        text = gu_read_file(input, NULL);
        if (!text) {
            errorf("%s", gu_error());
            goto out;
        }
    } else {
        text = gu_read_file("/dev/stdin", NULL);
        if (!text) {
            errorf("reading stdin: %s", gu_error());
            goto out;
        }
        input = "<stdin>";
    }
    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model(model, kt, &L) != 0) {
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
    pool = make_pool((int)threads, place);
    if (!pool) {
        errorf("%s", gu_error());
        goto out;
    }
    if (translate_all(L.m, pool, &so, lines.n, lines.ids, lines.len, &r) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    for (int i = 0; i < lines.n; i++)
        if (r.err[i])
            errorf("line %d: %s", i + 1, r.err[i]);

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
    loaded_free(&L);
    if (pool)
        ga_pool_destroy(pool);
    return rc;
}

/* Writes s as a JSON string literal. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* ================================================================= eval */
static void usage_eval(FILE *f)
{
    fprintf(f,
"usage: granattn eval --model CKPT [--split test] [options]\n"
"\n"
"Translates a split (sources from DATA_DIR/SPLIT.bin), scores it against\n"
"data/corpus/SPLIT.es with sacreBLEU (BLEU and chrF, via tools/eval_bleu.py,\n"
"which installs sacrebleu into .venv-eval on first use), and reports the mean\n"
"cross-attention density, the level mix and the decode speed.  Writes a JSON.\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint\n"
"  --split NAME       test (default) | dev | train\n"
"  --limit N          first N sentences only (quick checks)\n"
"  --json FILE        result file (default: <ckpt dir>/eval-SPLIT-beamK.json)\n"
"  --hyp FILE         also keep the translations (text) here\n"
"                     (default: <ckpt dir>/hyp-SPLIT-beamK.txt)\n"
"  --data-dir DIR     token files (default: the checkpoint's data_dir)\n"
"  --corpus-dir DIR   reference text (default: <project>/data/corpus)\n"
DECODE_HELP
"  -h, --help         this text\n");
}

static int cmd_eval(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"split", required_argument, 0, 'S'},
        {"limit", required_argument, 0, 'n'}, {"json", required_argument, 0, 'j'},
        {"hyp", required_argument, 0, 'H'},   {"data-dir", required_argument, 0, 'D'},
        {"corpus-dir", required_argument, 0, 'C'},
        {"beam", required_argument, 0, 'b'},  {"alpha", required_argument, 0, 'a'},
        {"max-len-a", required_argument, 0, 'A'},
        {"max-len-b", required_argument, 0, 'B'},
        {"threads", required_argument, 0, 't'}, {"place", required_argument, 0, 'p'},
        {"isa", required_argument, 0, 'i'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *split = "test", *json = NULL, *hyp = NULL,
               *data_dir = NULL, *corpus_dir = NULL, *isa = NULL, *place = "none";
    long limit = 0, threads = 0;
    gs_options so;
    gs_options_default(&so);
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'S': split = optarg; break;
        case 'n':
            if (parse_int("--limit", optarg, 1, 100000000, &limit))
                return 2;
            break;
        case 'j': json = optarg; break;
        case 'H': hyp = optarg; break;
        case 'D': data_dir = optarg; break;
        case 'C': corpus_dir = optarg; break;
        case 'b': case 'a': case 'A': case 'B':
            if (parse_decode_opt(c, optarg, &so))
                return 2;
            break;
        case 't':
            if (parse_int("--threads", optarg, 0, 4096, &threads))
                return 2;
            break;
        case 'p': place = optarg; break;
        case 'i': isa = optarg; break;
        case 'h': usage_eval(stdout); return 0;
        default: usage_eval(stderr); return 2;
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
    if (strchr(split, '/') || !*split) {
        errorf("--split '%s': expected a split name such as test or dev", split);
        return 2;
    }
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    ga_pool *pool = NULL;
    gd_corpus corp;
    memset(&corp, 0, sizeof corp);
    xlate_result r;
    memset(&r, 0, sizeof r);
    int32_t **src = NULL;
    int *src_len = NULL;
    int n = 0;
    const char *root = gu_project_root();
    if (!root) {
        errorf("%s", gu_error());
        return 1;
    }
    char ref_path[PATH_MAX + 64], bin_path[PATH_MAX + 64], json_buf[PATH_MAX + 64],
        hyp_buf[PATH_MAX + 64], ids_path[PATH_MAX], extra_path[PATH_MAX];
    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model(model, kt, &L) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    long ck_step = (long)L.ck.state.step;
    gk_free(&L.ck);
    if (corpus_dir)
        snprintf(ref_path, sizeof ref_path, "%s/%s.es", corpus_dir, split);
    else
        snprintf(ref_path, sizeof ref_path, "%s/data/corpus/%s.es", root, split);
    snprintf(bin_path, sizeof bin_path, "%s/%s.bin",
             data_dir ? data_dir : L.cfg.train.data_dir, split);
    if (!gu_file_exists(ref_path)) {
        errorf("%s: no such reference file (run tools/prepare-data.sh)", ref_path);
        goto out;
    }
    if (gd_load(bin_path, 0, L.mc.vocab, &corp) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    n = corp.n;
    if (limit > 0 && n > limit)
        n = (int)limit;
    src = calloc((size_t)n + 1, sizeof *src);
    src_len = calloc((size_t)n + 1, sizeof *src_len);
    if (!src || !src_len) {
        errorf("out of memory");
        goto out;
    }
    int truncated = 0, max_src = L.mc.max_len - 1;
    for (int i = 0; i < n; i++) {
        const gd_pair *p = &corp.pairs[i];
        int len = p->n_src;
        if (len > max_src) {
            len = max_src;
            truncated++;
        }
        src[i] = malloc(((size_t)len + 1) * sizeof(int32_t));
        if (!src[i]) {
            errorf("out of memory");
            goto out;
        }
        for (int k = 0; k < len; k++)
            src[i][k] = p->src[k];
        src_len[i] = len;
    }
    if (truncated)
        warnf("%d source sentence(s) longer than the model's max_len were truncated "
              "to %d tokens",
              truncated, max_src);
    pool = make_pool((int)threads, place);
    if (!pool) {
        errorf("%s", gu_error());
        goto out;
    }
    fprintf(stderr, "translating %d %s sentences (beam %d, %d threads) ...\n", n,
            split, so.beam, ga_pool_threads(pool));
    if (translate_all(L.m, pool, &so, n, src, src_len, &r) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    if (r.nerr) {
        for (int i = 0; i < n; i++)
            if (r.err[i]) {
                errorf("sentence %d: %s", i + 1, r.err[i]);
                break;
            }
        errorf("%d sentence(s) failed to translate", r.nerr);
        goto out;
    }

    /* Default output paths: next to the checkpoint. */
    char ckdir[PATH_MAX];
    snprintf(ckdir, sizeof ckdir, "%s", model);
    char *slash = strrchr(ckdir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(ckdir, sizeof ckdir, ".");
    if (!json) {
        snprintf(json_buf, sizeof json_buf, "%s/eval-%s-beam%d.json", ckdir, split,
                 so.beam);
        json = json_buf;
    }
    if (!hyp) {
        snprintf(hyp_buf, sizeof hyp_buf, "%s/hyp-%s-beam%d.txt", ckdir, split,
                 so.beam);
        hyp = hyp_buf;
    }
    if (tmpfile_path("out.ids", ids_path, sizeof ids_path) ||
        tmpfile_path("extra.json", extra_path, sizeof extra_path) ||
        write_idlines(ids_path, n, r.out, r.out_len)) {
        errorf("%s", gu_error());
        goto out;
    }
    {
        FILE *f = fopen(extra_path, "w");
        if (!f) {
            errorf("cannot write %s: %s", extra_path, strerror(errno));
            goto out;
        }
        const gm_config *mc = &L.mc;
        double dens = r.stats.density_count
                          ? r.stats.density_sum / (double)r.stats.density_count
                          : 1.0;
        double tot = 0;
        for (int l = 0; l < mc->L; l++)
            tot += r.stats.level_count[l];
        fprintf(f, "{\n  \"model\": ");
        json_string(f, model);
        fprintf(f, ",\n  \"step\": %ld,\n  \"split\": ", ck_step);
        json_string(f, split);
        fprintf(f, ",\n");
        fprintf(f, "  \"sentences\": %d,\n  \"beam\": %d,\n  \"alpha\": %g,\n", n,
                so.beam, so.alpha);
        fprintf(f, "  \"attention\": \"%s\",\n  \"gpn\": \"%s\",\n  \"norm\": \"%s\",\n"
                   "  \"lambda\": %g,\n",
                mc->dense ? "dense" : "sparse", gcf_gpn_name(L.cfg.gpn),
                mc->mode == GA_NORM_RENORM ? "renorm" : "seed", mc->lambda);
        fprintf(f, "  \"density\": %.6f,\n  \"levels\": [", dens);
        for (int l = 0; !mc->dense && l < mc->L; l++)
            fprintf(f, "%s{\"level\": %d, \"tau\": %g, \"fraction\": %.6f}",
                    l ? ", " : "", l, mc->tau[l],
                    tot > 0 ? r.stats.level_count[l] / tot : 0.0);
        fprintf(f, "],\n  \"decode_seconds\": %.3f,\n  \"threads\": %d,\n",
                r.seconds, ga_pool_threads(pool));
        fprintf(f, "  \"sentences_per_second\": %.3f,\n  \"tokens_per_second\": %.1f,\n",
                n / (r.seconds > 0 ? r.seconds : 1e-9),
                (double)r.out_tokens / (r.seconds > 0 ? r.seconds : 1e-9));
        fprintf(f, "  \"output_tokens\": %ld,\n  \"decoder_steps\": %ld,\n"
                   "  \"kernels\": \"%s\"\n}\n",
                r.out_tokens, r.steps, kt->name);
        fclose(f);
    }
    {
        char script[PATH_MAX + 64], limit_s[32];
        snprintf(script, sizeof script, "%s/tools/eval_bleu.py", root);
        snprintf(limit_s, sizeof limit_s, "%d", n);
        char *av[] = {(char *)python_path(), script, "--hyp-ids", ids_path,
                      "--ref", ref_path, "--limit", limit_s, "--extra", extra_path,
                      "--json", (char *)json, "--hyp-out", (char *)hyp, NULL};
        int prc = run_process(av, NULL, NULL);
        if (prc != 0) {
            errorf("tools/eval_bleu.py failed%s%s", prc < 0 ? ": " : "",
                   prc < 0 ? gu_error() : "");
            goto out;
        }
    }
    rc = 0;
out:
    xlate_result_free(&r, n);
    if (src)
        for (int i = 0; i < n; i++)
            free(src[i]);
    free(src);
    free(src_len);
    gd_free(&corp);
    loaded_free(&L);
    if (pool)
        ga_pool_destroy(pool);
    return rc;
}

/* ============================================================== inspect */
static void usage_inspect(FILE *f)
{
    fprintf(f,
"usage: granattn inspect --model CKPT (--sentence TEXT | --ids \"ID ...\") [options]\n"
"\n"
"Translates one sentence greedily and dumps, for every decoder layer and\n"
"output step, the granularity level of each source token and the\n"
"cross-attention weights (per head), as OUT/inspect.json; then renders\n"
"OUT/map-layerN.png with tools/inspect_map.py (source x target grid coloured\n"
"by level, weights as overlay).\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint\n"
"  --sentence TEXT    English sentence (segmented with tools/corpus/spm.py)\n"
"  --ids \"ID ...\"     the source as token ids\n"
"  --out DIR          output directory (default: inspect-out)\n"
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

static int cmd_inspect(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"sentence", required_argument, 0, 's'},
        {"ids", required_argument, 0, 'd'},   {"out", required_argument, 0, 'o'},
        {"no-png", no_argument, 0, 'N'},      {"isa", required_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = NULL, *sentence = NULL, *ids = NULL, *outdir = "inspect-out",
               *isa = NULL;
    int png = 1, c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's': sentence = optarg; break;
        case 'd': ids = optarg; break;
        case 'o': outdir = optarg; break;
        case 'N': png = 0; break;
        case 'i': isa = optarg; break;
        case 'h': usage_inspect(stdout); return 0;
        default: usage_inspect(stderr); return 2;
        }
    }
    if (optind < argc) {
        errorf("unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (!model || (!sentence == !ids)) {
        errorf("--model and exactly one of --sentence / --ids are required (try "
               "--help)");
        return 2;
    }
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    idlines lines;
    memset(&lines, 0, sizeof lines);
    char *text = NULL;
    gs_decoder *dec = NULL;
    gt_trace tr;
    memset(&tr, 0, sizeof tr);
    int32_t *src = NULL, *tin = NULL, *tout = NULL;
    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model(model, kt, &L) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    gk_free(&L.ck);
    if (ids) {
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
    if (!text || idlines_parse(text, ids ? "--ids" : "spm.py encode output", L.mc.vocab,
                               &lines) != 0) {
        errorf("%s", text ? gu_error() : "out of memory");
        goto out;
    }
    if (lines.n != 1 || lines.len[0] == 0) {
        errorf("expected one non-empty sentence, got %d line(s)", lines.n);
        goto out;
    }
    const gm_config *mc = &L.mc;
    int S = lines.len[0];
    gs_options so;
    gs_options_default(&so);
    so.beam = 1;
    dec = gs_create(L.m, &so);
    int cap = mc->max_len + 1, T = 0;
    src = malloc(sizeof(int32_t) * (size_t)(S + 1));
    tin = malloc(sizeof(int32_t) * (size_t)cap);
    tout = malloc(sizeof(int32_t) * (size_t)cap);
    if (!dec || !src || !tin || !tout) {
        errorf("%s", dec ? "out of memory" : gu_error());
        goto out;
    }
    if (gs_translate(dec, lines.ids[0], S, tout, cap, &T, NULL, NULL) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    /* decoder positions: bos y1 .. yT -> y1 .. yT eos (capped at max_len) */
    if (T + 1 > mc->max_len)
        T = mc->max_len - 1;
    memcpy(src, lines.ids[0], sizeof(int32_t) * (size_t)S);
    src[S] = GM_EOS;
    tin[0] = GM_BOS;
    memcpy(tin + 1, tout, sizeof(int32_t) * (size_t)T);
    tout[T] = GM_EOS;
    if (gt_run(L.m, src, S + 1, tin, tout, T + 1, &tr) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    /* The last position predicts eos only if decoding stopped on its own
     * (not at the length limit), so one mismatch there is expected. */
    if (tr.agree < T)
        warnf("the traced recomputation agrees with greedy decoding at %d of %d "
              "positions (near-ties, or model/trace.c is out of date)",
              tr.agree, T + 1);
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
    fflush(stdout);
    if (png) {
        const char *root = gu_project_root();
        if (!root) {
            errorf("%s", gu_error());
            goto out;
        }
        char script[PATH_MAX + 64], spm_model[PATH_MAX + 64];
        snprintf(script, sizeof script, "%s/tools/inspect_map.py", root);
        snprintf(spm_model, sizeof spm_model, "%s/data/spm/spm.model", root);
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
    idlines_free(&lines);
    free(text);
    loaded_free(&L);
    return rc;
}

/* ============================================================ calibrate */
static void usage_calibrate(FILE *f)
{
    fprintf(f,
"usage: granattn calibrate --model CKPT --density RHO [options]\n"
"\n"
"Picks the threshold tau of the \"fixed uniform level\" baseline so that its\n"
"density matches RHO: runs the model teacher-forced over dev pairs, collects\n"
"every cross-attention row's ratios a_i / max_j a_j (the quantity a level's\n"
"tau is compared with) and inverts the mean row density (kept / N).  Use a\n"
"dense model (configs/dense.ini): a sparse model's dropped weights are not\n"
"observed.  Also prints the density each configured level would give alone,\n"
"and, with --mix, the expected density of the \"random level per pair\"\n"
"baseline with those level probabilities (sum_l mix_l * density_l).\n"
"\n"
"options:\n"
"  --model CKPT       checkpoint (ideally of a dense model)\n"
"  --density RHO      target density in (0, 1], e.g. the learned model's eval density\n"
"  --mix P0,P1,...    level probabilities for the random baseline (optional)\n"
"  --split NAME       dev (default)\n"
"  --limit N          pairs used (default 300)\n"
"  --data-dir DIR     token files (default: the checkpoint's data_dir)\n"
"  --isa NAME         kernel variant (default: best supported)\n"
"  -h, --help         this text\n");
}

typedef struct ratio {
    float r;     /* a_i / a_max */
    float w;     /* 1 / (rows * N_row) */
} ratio;

static int cmp_ratio_desc(const void *a, const void *b)
{
    float x = ((const ratio *)a)->r, y = ((const ratio *)b)->r;
    return (x < y) - (x > y);
}

static int cmd_calibrate(int argc, char **argv)
{
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"density", required_argument, 0, 'r'},
        {"mix", required_argument, 0, 'x'},   {"split", required_argument, 0, 'S'},
        {"limit", required_argument, 0, 'n'}, {"data-dir", required_argument, 0, 'D'},
        {"isa", required_argument, 0, 'i'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *split = "dev", *data_dir = NULL, *isa = NULL,
               *mix_s = NULL;
    double rho = -1;
    long limit = 300;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'r':
            if (parse_float("--density", optarg, 1e-6, 1, &rho))
                return 2;
            break;
        case 'x': mix_s = optarg; break;
        case 'S': split = optarg; break;
        case 'n':
            if (parse_int("--limit", optarg, 1, 100000000, &limit))
                return 2;
            break;
        case 'D': data_dir = optarg; break;
        case 'i': isa = optarg; break;
        case 'h': usage_calibrate(stdout); return 0;
        default: usage_calibrate(stderr); return 2;
        }
    }
    if (optind < argc) {
        errorf("unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (!model || rho < 0) {
        errorf("--model and --density are required (try --help)");
        return 2;
    }
    int rc = 1;
    loaded L;
    memset(&L, 0, sizeof L);
    gd_corpus corp;
    memset(&corp, 0, sizeof corp);
    ratio *rat = NULL;
    size_t nrat = 0, cap = 0;
    long rows = 0;
    int32_t *tin = NULL, *tout = NULL, *src = NULL;
    double mix[GA_MAX_LEVELS] = {0};
    int nmix = 0;
    if (mix_s) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", mix_s);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (nmix == GA_MAX_LEVELS ||
                parse_float("--mix", gu_trim(t), 0, 1, &mix[nmix]))
                return 2;
            nmix++;
        }
    }
    const ga_kernels *kt = pick_kernels(isa);
    if (!kt) {
        errorf("%s", gu_error());
        goto out;
    }
    if (load_model(model, kt, &L) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    gk_free(&L.ck);
    const gm_config *mc = &L.mc;
    if (!mc->dense)
        warnf("%s is not a dense model: dropped weights are unobserved, so the "
              "densities below are lower bounds of the dense model's",
              model);
    if (nmix && nmix != mc->L) {
        errorf("--mix has %d values but the model has L = %d levels", nmix, mc->L);
        goto out;
    }
    char bin_path[PATH_MAX + 64];
    snprintf(bin_path, sizeof bin_path, "%s/%s.bin",
             data_dir ? data_dir : L.cfg.train.data_dir, split);
    if (gd_load(bin_path, mc->max_len, mc->vocab, &corp) != 0) {
        errorf("%s", gu_error());
        goto out;
    }
    int n = corp.n < limit ? corp.n : (int)limit;
    tin = malloc(sizeof(int32_t) * (size_t)mc->max_len);
    tout = malloc(sizeof(int32_t) * (size_t)mc->max_len);
    src = malloc(sizeof(int32_t) * (size_t)mc->max_len);
    if (!tin || !tout || !src) {
        errorf("out of memory");
        goto out;
    }
    fprintf(stderr, "tracing %d %s pairs ...\n", n, split);
    /* First pass: the ratios of every (layer, head, query) row. */
    for (int k = 0; k < n; k++) {
        const gd_pair *p = &corp.pairs[k];
        int S = p->n_src + 1, T = p->n_tgt + 1;
        for (int i = 0; i < p->n_src; i++)
            src[i] = p->src[i];
        src[S - 1] = GM_EOS;
        tin[0] = GM_BOS;
        for (int t = 0; t < p->n_tgt; t++) {
            tin[t + 1] = p->tgt[t];
            tout[t] = p->tgt[t];
        }
        tout[T - 1] = GM_EOS;
        gt_trace tr;
        if (gt_run(L.m, src, S, tin, tout, T, &tr) != 0) {
            errorf("%s", gu_error());
            goto out;
        }
        size_t need = nrat + (size_t)tr.n_dec * tr.H * T * S;
        if (need > cap) {
            cap = need * 2;
            ratio *nr = realloc(rat, cap * sizeof *nr);
            if (!nr) {
                gt_free(&tr);
                errorf("out of memory");
                goto out;
            }
            rat = nr;
        }
        for (size_t row = 0; row < (size_t)tr.n_dec * tr.H * T; row++) {
            const float *w = tr.weights + row * S;
            float mx = 0;
            for (int i = 0; i < S; i++)
                mx = w[i] > mx ? w[i] : mx;
            if (!(mx > 0))
                continue;
            for (int i = 0; i < S; i++) {
                rat[nrat].r = w[i] / mx;
                rat[nrat].w = 1.0f / (float)S; /* divided by rows below */
                nrat++;
            }
            rows++;
        }
        gt_free(&tr);
    }
    if (rows == 0) {
        errorf("no attention rows traced");
        goto out;
    }
    qsort(rat, nrat, sizeof *rat, cmp_ratio_desc);
    /* density(tau) = (1/rows) * sum_{r_i >= tau} 1/N_row: walk down the sorted
     * ratios until the cumulative density reaches rho. */
    double cum = 0, tau = 0;
    for (size_t i = 0; i < nrat; i++) {
        cum += rat[i].w / (double)rows;
        if (cum >= rho - 1e-12) {
            tau = rat[i].r;
            break;
        }
    }
    printf("%ld attention rows (%d pairs x %d layers x %d heads), %zu keys\n", rows,
           n, mc->n_dec, mc->H, nrat);
    printf("fixed level matching density %.4f: fixed_tau = %.6g   (granattn train "
           "--config configs/exp/fixed-match.ini --set fixed_tau=%.6g)\n",
           rho, tau, tau);
    double dl[GA_MAX_LEVELS];
    for (int l = 0; l < mc->L; l++) {
        double dens = 0;
        for (size_t i = 0; i < nrat && rat[i].r >= mc->tau[l]; i++)
            dens += rat[i].w;
        dl[l] = dens / (double)rows;
        printf("level %d (tau %g) alone: density %.4f\n", l, mc->tau[l], dl[l]);
    }
    if (nmix) {
        double e = 0, s = 0;
        for (int l = 0; l < mc->L; l++) {
            e += mix[l] * dl[l];
            s += mix[l];
        }
        printf("random levels with probabilities %s: expected density %.4f%s\n", mix_s,
               s > 0 ? e / s : 0.0, fabs(s - 1) > 1e-3 ? " (mix renormalised)" : "");
    }
    rc = 0;
out:
    free(rat);
    free(tin);
    free(tout);
    free(src);
    gd_free(&corp);
    loaded_free(&L);
    return rc;
}

/* ================================================================ main */
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
"\n"
"  --version  print the version\n"
"  -h, --help this text\n"
"\n"
"Environment: GRANATTN_ISA (kernel variant), GRANATTN_ROOT (project root, for\n"
"tools/ and data/), GRANATTN_PYTHON (default /usr/bin/python3).\n");
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
    static char name[64];
    snprintf(name, sizeof name, "granattn %s", cmd);
    g_cmd = name;
    argv[1] = name; /* getopt messages name the subcommand */
    if (!strcmp(cmd, "train"))
        return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "translate"))
        return cmd_translate(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect"))
        return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "calibrate"))
        return cmd_calibrate(argc - 1, argv + 1);
    g_cmd = "granattn";
    errorf("unknown command '%s' (commands: train, translate, eval, inspect, calibrate; try "
           "--help)",
           cmd);
    return 2;
}
