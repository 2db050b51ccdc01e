/* cli_common.c — the helpers the `granattn` subcommands share (see
 * cli_common.h): messages, option values, helper processes and the
 * temporary directory, id-line files, pool / kernel choice, checkpoint
 * loading, small output formatters. */
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

#include "cli_common.h"
#include "spm.h"

#define PYTHON_DEFAULT "/usr/bin/python3"

static const char *g_cmd = "granattn";

void cli_set_command(const char *name) { g_cmd = name; }

void errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void warnf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: warning: ", g_cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------ parsing */
int parse_int(const char *opt, const char *s, long lo, long hi, long *out)
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

int parse_float(const char *opt, const char *s, double lo, double hi,
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

const char *python_path(void)
{
    const char *p = getenv("GRANATTN_PYTHON");
    return p && *p ? p : PYTHON_DEFAULT;
}

/* Runs argv (argv[0] is a path) with stdin/stdout redirected to files (NULL:
 * inherit).  Returns the exit status, or -1 with a message. */
int run_process(char *const argv[], const char *in_path, const char *out_path)
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

int tmpfile_path(const char *name, char *out, size_t outlen)
{
    const char *d = tmpdir();
    if (!d)
        return -1;
    snprintf(out, outlen, "%s/%s", d, name);
    return 0;
}

/* Text <-> ids: in process (libsentencepiece, spm.c) unless this build lacks
 * it or GRANATTN_SPM=python asks for tools/corpus/spm.py. */
int spm_in_process(void)
{
    const char *e = getenv("GRANATTN_SPM");
    return gm_spm_in_process() && !(e && !strcmp(e, "python"));
}

const char *spm_backend(void)
{
    if (spm_in_process())
        return "in process (libsentencepiece)";
    return gm_spm_in_process() ? "by tools/corpus/spm.py (GRANATTN_SPM=python)"
                               : "by tools/corpus/spm.py (built without libsentencepiece)";
}

/* spm.model next to the checkpoint in use (spm_prefer_checkpoint_dir), or "" */
static char spm_near[PATH_MAX + 16];

void spm_prefer_checkpoint_dir(const char *ckpt)
{
    spm_near[0] = '\0';
    const char *slash = strrchr(ckpt, '/');
    int dl = slash ? (int)(slash - ckpt) : 1;
    if (dl >= PATH_MAX)
        return;
    snprintf(spm_near, sizeof spm_near, "%.*s/spm.model", dl, slash ? ckpt : ".");
    if (!gu_file_exists(spm_near))
        spm_near[0] = '\0';
}

int spm_model_path(char *out, size_t outlen)
{
    if (spm_near[0]) {
        snprintf(out, outlen, "%s", spm_near);
        return 0;
    }
    const char *root = gu_project_root();
    if (!root)
        return -1;
    snprintf(out, outlen, "%s/data/spm/spm.model", root);
    return 0;
}

/* spm.py encode|decode in_path > out_path, or the same in process */
int run_spm(const char *what, const char *in_path, const char *out_path)
{
    const char *root = gu_project_root();
    if (!root)
        return -1;
    char script[PATH_MAX + 64], model[PATH_MAX + 64];
    snprintf(script, sizeof script, "%s/tools/corpus/spm.py", root);
    if (spm_model_path(model, sizeof model) != 0)
        return -1;
    if (!gu_file_exists(model))
        return gu_fail("%s: no such file (run tools/prepare-data.sh, or put the model's "
                       "spm.model next to its checkpoint)", model);
    if (spm_in_process())
        return gm_spm_file(model, what, in_path, out_path);
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
void idlines_free(idlines *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
    free(l->len);
    memset(l, 0, sizeof *l);
}

/* Parses lines of space-separated ids.  Strips a leading bos and anything
 * from the first eos.  Every id must be in [0, vocab). */
int idlines_parse(char *text, const char *name, int vocab, idlines *out)
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

int write_idlines(const char *path, int n, int32_t *const *ids, const int *len)
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

ga_pool *make_pool(int threads, const char *place_s)
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

const ga_kernels *pick_kernels(const char *isa_name)
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
void loaded_free(loaded *l)
{
    gm_free(l->m);
    gk_free(&l->ck);
    memset(l, 0, sizeof *l);
}

/* Loads a checkpoint and builds the model with its parameters. */
int load_model(const char *path, const ga_kernels *kt, loaded *out)
{
    return load_model_max_len(path, kt, 0, out);
}

int load_model_max_len(const char *path, const ga_kernels *kt, int max_len, loaded *out)
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
    /* Positions are sinusoidal (no parameters): a longer table changes no
     * weight and leaves positions < the trained max_len bitwise as they were. */
    if (max_len > out->mc.max_len)
        out->mc.max_len = max_len;
    out->m = gm_create(&out->mc, kt, out->cfg.train.seed);
    if (!out->m) {
        gu_fail("%s: cannot build the model: %s", path, gm_last_error());
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

void level_mix(const double *count, int L, char *buf, size_t len)
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

void fmt_duration(double s, char *buf, size_t len)
{
    long t = (long)s;
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

void json_string(FILE *f, const char *s)
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

const char *checkpoint_data_dir(const char *dir, char *buf, size_t len)
{
    if (dir[0] == '/')
        return dir;
    const char *root = gu_project_root();
    if (!root)
        return dir;
    if (snprintf(buf, len, "%s/%s", root, dir) >= (int)len)
        return dir;
    return buf;
}

int make_parent_dir(const char *what, const char *file)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", file) >= (int)sizeof dir)
        return gu_fail("%s %s: path too long", what, file);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    if (gu_mkdir(dir) != 0)
        return gu_fail_prefix("%s %s", what, file);
    return 0;
}
