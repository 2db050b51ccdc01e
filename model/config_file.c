/* config_file.c — see config_file.h. */
#include "config_file.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

const char *gcf_gpn_name(gcf_gpn g)
{
    switch (g) {
    case GCF_GPN_LEARNED: return "learned";
    case GCF_GPN_FIXED: return "fixed";
    case GCF_GPN_RANDOM: return "random";
    case GCF_GPN_TOPK: return "topk";
    }
    return "?";
}

void gcf_defaults(gcf_file *f)
{
    memset(f, 0, sizeof *f);
    gm_config_default(&f->model);
    f->gpn = GCF_GPN_LEARNED;
    f->fixed_level = 0;
    f->fixed_tau = -1.0f;
    f->n_tau = f->model.L;
    for (int l = 0; l < f->model.L; l++)
        f->random_probs[l] = 1.0f / (float)f->model.L;
    f->n_random_probs = f->model.L;

    gcf_train *t = &f->train;
    t->seed = 1;
    t->batch_tokens = 4096;
    go_options_default(&t->opt);
    t->max_steps = 0;
    t->max_epochs = 0;
    t->max_minutes = 0;
    t->log_every = 50;
    t->eval_every = 500;
    t->ckpt_every = 500;
    t->patience = 0;
    t->threads = 0;
    snprintf(t->place, sizeof t->place, "none");
    snprintf(t->data_dir, sizeof t->data_dir, "data/tok");
    snprintf(t->train_split, sizeof t->train_split, "train");
    snprintf(t->dev_split, sizeof t->dev_split, "dev");
    t->dev_max_sents = 0;
}

/* ----------------------------------------------------------- key table */
typedef enum kind {
    K_INT, K_LONG, K_U64, K_FLOAT, K_DOUBLE, K_BOOL, K_STR, K_FLIST,
    K_NORM, K_ACT, K_GPN, K_SCHED
} kind;

enum { SEC_MODEL = 1, SEC_TRAIN = 2 };

typedef struct keydef {
    const char *name;
    int section;
    kind k;
    size_t off;       /* offset in gcf_file */
    size_t size;      /* K_STR: buffer size; K_FLIST: offset of the count */
    double lo, hi;    /* numeric range (inclusive) */
    const char *help;
} keydef;

#define M(field) offsetof(gcf_file, model.field)
#define T(field) offsetof(gcf_file, train.field)
#define O(field) offsetof(gcf_file, train.opt.field)
#define F(field) offsetof(gcf_file, field)

static const keydef keys[] = {
    /* [model] */
    {"vocab", SEC_MODEL, K_INT, M(vocab), 0, 4, 65536, "vocabulary size (must match data/spm: 8000)"},
    {"d", SEC_MODEL, K_INT, M(d), 0, 2, 8192, "model width"},
    {"H", SEC_MODEL, K_INT, M(H), 0, 1, 256, "attention heads (d % H == 0)"},
    {"ff", SEC_MODEL, K_INT, M(ff), 0, 1, 65536, "FFN hidden width"},
    {"n_enc", SEC_MODEL, K_INT, M(n_enc), 0, 0, 16, "encoder layers"},
    {"n_dec", SEC_MODEL, K_INT, M(n_dec), 0, 1, 16, "decoder layers"},
    {"act", SEC_MODEL, K_ACT, M(act), 0, 0, 0, "FFN activation: relu | gelu"},
    {"g", SEC_MODEL, K_INT, M(g), 0, 1, 4096, "GPN hidden width"},
    {"L", SEC_MODEL, K_INT, M(L), 0, 1, GA_MAX_LEVELS, "granularity levels (1..8)"},
    {"tau", SEC_MODEL, K_FLIST, M(tau), F(n_tau), 0, 0.999999, "keep thresholds per level, coarse first: L values, non-increasing, in [0,1)"},
    {"norm", SEC_MODEL, K_NORM, M(mode), 0, 0, 0, "normalisation: seed | renorm"},
    {"dense", SEC_MODEL, K_BOOL, M(dense), 0, 0, 1, "dense cross-attention baseline (no GPN)"},
    {"lambda", SEC_MODEL, K_FLOAT, M(lambda), 0, 0, 1e6, "expected-density regulariser weight (0: off)"},
    {"dropout", SEC_MODEL, K_FLOAT, M(dropout), 0, 0, 0.95, "dropout rate"},
    {"label_smoothing", SEC_MODEL, K_FLOAT, M(label_smoothing), 0, 0, 0.99, "label smoothing"},
    {"gumbel", SEC_MODEL, K_BOOL, M(gumbel), 0, 0, 1, "training levels from argmax(z + temp * Gumbel)"},
    {"gumbel_temp", SEC_MODEL, K_FLOAT, M(gumbel_temp), 0, 0, 1e6, "Gumbel noise scale"},
    {"max_len", SEC_MODEL, K_INT, M(max_len), 0, 2, 65535, "longest sequence in positions (incl. bos/eos); longer training pairs are dropped"},
    {"gpn", SEC_MODEL, K_GPN, F(gpn), 0, 0, 0, "level choice: learned | fixed | random | topk (baselines)"},
    {"fixed_level", SEC_MODEL, K_INT, F(fixed_level), 0, 0, GA_MAX_LEVELS - 1, "gpn = fixed: the level every pair gets"},
    {"fixed_tau", SEC_MODEL, K_FLOAT, F(fixed_tau), 0, -1, 0.999999, "gpn = fixed: explicit tau (-1: tau[fixed_level])"},
    {"random_probs", SEC_MODEL, K_FLIST, F(random_probs), F(n_random_probs), 0, 1, "gpn = random: probability of each level (L values, sum 1)"},
    {"topk_k", SEC_MODEL, K_INT, F(topk_k), 0, 0, 65535, "gpn = topk: keys kept per (query, head) row (0: use topk_frac)"},
    {"topk_frac", SEC_MODEL, K_FLOAT, F(topk_frac), 0, 0, 1, "gpn = topk: fraction of the row's source keys kept, round(frac * N) >= 1 (0: use topk_k)"},
    /* [train] */
    {"seed", SEC_TRAIN, K_U64, T(seed), 0, 0, 0, "seed for parameters, data order, dropout"},
    {"batch_tokens", SEC_TRAIN, K_INT, T(batch_tokens), 0, 1, 1 << 24, "padded tokens per batch, B * max(S, T)"},
    {"lr", SEC_TRAIN, K_FLOAT, O(lr), 0, 0, 10, "peak learning rate"},
    {"min_lr", SEC_TRAIN, K_FLOAT, O(min_lr), 0, 0, 10, "learning-rate floor / cosine end point"},
    {"warmup", SEC_TRAIN, K_INT, O(warmup), 0, 0, 100000000, "linear warm-up steps"},
    {"schedule", SEC_TRAIN, K_SCHED, O(sched), 0, 0, 0, "invsqrt | cosine | constant (after warm-up)"},
    {"total_steps", SEC_TRAIN, K_LONG, O(total_steps), 0, 1, 1e12, "cosine horizon in steps"},
    {"beta1", SEC_TRAIN, K_FLOAT, O(beta1), 0, 0, 0.999999, "AdamW beta1"},
    {"beta2", SEC_TRAIN, K_FLOAT, O(beta2), 0, 0, 0.999999, "AdamW beta2"},
    {"eps", SEC_TRAIN, K_FLOAT, O(eps), 0, 1e-30, 1, "AdamW epsilon (> 0: 0 / 0 on a parameter without gradient)"},
    {"weight_decay", SEC_TRAIN, K_FLOAT, O(weight_decay), 0, 0, 10, "decoupled weight decay (weight matrices only)"},
    {"clip", SEC_TRAIN, K_FLOAT, O(clip), 0, 0, 1e9, "global gradient-norm clip (0: off)"},
    {"max_steps", SEC_TRAIN, K_LONG, T(max_steps), 0, 0, 1e12, "stop after N updates (0: no limit)"},
    {"max_epochs", SEC_TRAIN, K_INT, T(max_epochs), 0, 0, 1000000, "stop after N epochs (0: no limit)"},
    {"max_minutes", SEC_TRAIN, K_DOUBLE, T(max_minutes), 0, 0, 1e9, "stop after N minutes of training (0: no limit)"},
    {"log_every", SEC_TRAIN, K_INT, T(log_every), 0, 1, 1000000000, "progress line every N steps"},
    {"eval_every", SEC_TRAIN, K_INT, T(eval_every), 0, 1, 1000000000, "dev loss + best checkpoint every N steps"},
    {"ckpt_every", SEC_TRAIN, K_INT, T(ckpt_every), 0, 1, 1000000000, "last.ckpt every N steps"},
    {"patience", SEC_TRAIN, K_INT, T(patience), 0, 0, 1000000, "stop after N evals without dev improvement (0: never)"},
    {"threads", SEC_TRAIN, K_INT, T(threads), 0, 0, 4096, "worker threads (0: all cores); --threads overrides"},
    {"place", SEC_TRAIN, K_STR, T(place), sizeof(((gcf_train *)0)->place), 0, 0, "thread placement: none | compact | scatter | list:0,1,..."},
    {"data_dir", SEC_TRAIN, K_STR, T(data_dir), sizeof(((gcf_train *)0)->data_dir), 0, 0, "directory of {split}.bin token files"},
    {"train_split", SEC_TRAIN, K_STR, T(train_split), sizeof(((gcf_train *)0)->train_split), 0, 0, "training split name"},
    {"dev_split", SEC_TRAIN, K_STR, T(dev_split), sizeof(((gcf_train *)0)->dev_split), 0, 0, "dev split name"},
    {"dev_max_sents", SEC_TRAIN, K_INT, T(dev_max_sents), 0, 0, 100000000, "dev loss on the first N pairs (0: all)"},
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

static const char *section_name(int s) { return s == SEC_MODEL ? "model" : "train"; }

static const keydef *find_key(const char *name)
{
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static int parse_double(const char *v, double *out)
{
    if (!*v)
        return -1;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *gu_trim(end) != '\0' || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

static int in_range(const keydef *k, double x)
{
    return x >= k->lo && x <= k->hi;
}

/* For a value stored as float: the range of the float itself, against
 * float bounds, so that the written value (%.9g of the float) reads back:
 * 0.99 is stored as 0.99000001, which a double comparison with the bound
 * 0.99 would reject on the way back. */
static int in_range_f(const keydef *k, double x)
{
    float fx = (float)x;
    return isfinite(fx) && fx >= (float)k->lo && fx <= (float)k->hi;
}

/* place: none | compact | scatter | list:PU,PU,... (what the pool accepts),
 * checked here so that a bad value is reported with its file and line. */
static int check_place(const char *v)
{
    if (!strncmp(v, "list:", 5)) {
        const char *p = v + 5;
        int n = 0;
        while (*p) {
            char *end;
            errno = 0;
            long pu = strtol(p, &end, 10);
            if (end == p || errno || pu < 0 || pu > 100000 || ++n > 256 ||
                (*end && *end != ','))
                return gu_fail("place = '%s': expected list:PU,PU,... (at most 256 "
                               "hwloc logical indices)",
                               v);
            p = *end ? end + 1 : end;
            if (*end && !*p)
                return gu_fail("place = '%s': trailing comma", v);
        }
        if (n == 0)
            return gu_fail("place = '%s': empty PU list", v);
        return 0;
    }
    ga_place pl;
    if (ga_place_from_name(v, &pl) != GA_OK)
        return gu_fail("place = '%s': expected none, compact, scatter or list:0,1,...",
                       v);
    return 0;
}

/* Sets one key from its value text; message without location on error. */
static int set_value(gcf_file *f, const keydef *k, char *v)
{
    char *base = (char *)f;
    void *p = base + k->off;
    double x;
    switch (k->k) {
    case K_INT:
    case K_LONG: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || errno || *end != '\0')
            return gu_fail("%s = '%s': expected an integer", k->name, v);
        if (!in_range(k, (double)n))
            return gu_fail("%s = %lld out of range [%.0f, %.0f]", k->name, n, k->lo,
                           k->hi);
        if (k->k == K_INT)
            *(int *)p = (int)n;
        else
            *(long *)p = (long)n;
        return 0;
    }
    case K_U64: {
        char *end;
        errno = 0;
        if (!*v || *v == '-')
            return gu_fail("%s = '%s': expected a non-negative integer", k->name, v);
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || *end != '\0')
            return gu_fail("%s = '%s': expected a non-negative integer", k->name, v);
        *(uint64_t *)p = (uint64_t)n;
        return 0;
    }
    case K_FLOAT:
    case K_DOUBLE:
        if (parse_double(v, &x))
            return gu_fail("%s = '%s': expected a number", k->name, v);
        /* floats: the range of the value stored (see in_range_f) */
        if (k->k == K_FLOAT ? !in_range_f(k, x) : !in_range(k, x))
            return gu_fail("%s = %s out of range [%g, %g]", k->name, v, k->lo, k->hi);
        if (k->k == K_FLOAT)
            *(float *)p = (float)x;
        else
            *(double *)p = x;
        return 0;
    case K_BOOL:
        if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
            !strcasecmp(v, "on"))
            *(int *)p = 1;
        else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") ||
                 !strcasecmp(v, "no") || !strcasecmp(v, "off"))
            *(int *)p = 0;
        else
            return gu_fail("%s = '%s': expected true or false", k->name, v);
        return 0;
    case K_STR:
        if (strlen(v) >= k->size)
            return gu_fail("%s: value longer than %zu characters", k->name,
                           k->size - 1);
        /* The value must read back from the written config (checkpoints store
         * it): '#' and ';' start comments there, control characters (tab,
         * newline, ...) end or split the line. */
        for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
            if (*c == '#' || *c == ';')
                return gu_fail("%s = '%s': the value may not contain '%c' (config "
                               "files read it as the start of a comment)",
                               k->name, v, *c);
            if (*c < 0x20 || *c == 0x7f)
                return gu_fail("%s: the value may not contain control characters "
                               "(byte 0x%02x at position %d)",
                               k->name, *c, (int)((const char *)c - v));
        }
        if (!strcmp(k->name, "place") && check_place(v) != 0)
            return -1;
        memcpy(p, v, strlen(v) + 1);
        return 0;
    case K_FLIST: {
        float vals[GA_MAX_LEVELS];
        int n = 0;
        /* the whole value, however long (no fixed buffer to cut it) */
        char *buf = gu_malloc(strlen(v) + 1);
        if (!buf)
            return -1;
        memcpy(buf, v, strlen(v) + 1);
        int bad = 0;
        for (char *tok = buf, *next; tok && !bad; tok = next) {
            char *comma = strchr(tok, ',');
            next = comma ? comma + 1 : NULL;
            if (comma)
                *comma = '\0';
            tok = gu_trim(tok);
            if (n == GA_MAX_LEVELS)
                bad = gu_fail("%s: more than %d values", k->name, GA_MAX_LEVELS);
            else if (!*tok)
                bad = gu_fail("%s: empty value in the list '%s'", k->name, v);
            else if (parse_double(tok, &x))
                bad = gu_fail("%s: '%s' is not a number", k->name, tok);
            else if (!in_range_f(k, x))
                bad = gu_fail("%s: %s out of range [%g, %g]", k->name, tok, k->lo,
                              k->hi);
            else
                vals[n++] = (float)x;
        }
        free(buf);
        if (bad)
            return -1;
        if (n == 0)
            return gu_fail("%s: expected a comma-separated list of numbers", k->name);
        memcpy(p, vals, (size_t)n * sizeof(float));
        *(int *)(base + k->size) = n;
        return 0;
    }
    case K_NORM:
        if (!strcasecmp(v, "seed"))
            *(ga_norm *)p = GA_NORM_SEED;
        else if (!strcasecmp(v, "renorm"))
            *(ga_norm *)p = GA_NORM_RENORM;
        else
            return gu_fail("%s = '%s': expected seed or renorm", k->name, v);
        return 0;
    case K_ACT:
        if (!strcasecmp(v, "relu"))
            *(gm_act *)p = GM_ACT_RELU;
        else if (!strcasecmp(v, "gelu"))
            *(gm_act *)p = GM_ACT_GELU;
        else
            return gu_fail("%s = '%s': expected relu or gelu", k->name, v);
        return 0;
    case K_GPN:
        if (!strcasecmp(v, "learned"))
            *(gcf_gpn *)p = GCF_GPN_LEARNED;
        else if (!strcasecmp(v, "fixed"))
            *(gcf_gpn *)p = GCF_GPN_FIXED;
        else if (!strcasecmp(v, "random"))
            *(gcf_gpn *)p = GCF_GPN_RANDOM;
        else if (!strcasecmp(v, "topk"))
            *(gcf_gpn *)p = GCF_GPN_TOPK;
        else
            return gu_fail("%s = '%s': expected learned, fixed, random or topk", k->name, v);
        return 0;
    case K_SCHED:
        if (go_sched_from_name(v, (go_sched *)p))
            return gu_fail("%s = '%s': expected invsqrt, cosine or constant", k->name,
                           v);
        return 0;
    }
    return gu_fail("%s: internal error (unknown kind)", k->name);
}

static int load_depth(const char *path, gcf_file *f, int depth);

/* Parses text; `dir` resolves relative includes (NULL: the current
 * directory); depth counts nested includes. */
static int parse_text(const char *text, const char *name, const char *dir,
                      gcf_file *f, int depth, int allow_include)
{
    /* a UTF-8 byte-order mark (some editors write one) is not content */
    if (!strncmp(text, "\xEF\xBB\xBF", 3))
        text += 3;
    size_t len = strlen(text);
    char *buf = gu_malloc(len + 1);
    if (!buf)
        return -1;
    memcpy(buf, text, len + 1);
    unsigned char seen[NKEYS];
    memset(seen, 0, sizeof seen);
    int section = 0, lineno = 0, rc = 0;
    /* Split by hand: strtok would skip empty lines and break line numbers. */
    char *line = buf;
    while (line && rc == 0) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        /* strip comments: '#' or ';' anywhere (values never contain them) */
        for (char *c = line; *c; c++)
            if (*c == '#' || *c == ';') {
                *c = '\0';
                break;
            }
        char *s = gu_trim(line);
        if (*s == '\0') {
            /* blank */
        } else if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || *gu_trim(close + 1) != '\0') {
                rc = gu_fail("%s:%d: malformed section header '%s'", name, lineno, s);
                break;
            }
            *close = '\0';
            char *sec = gu_trim(s + 1);
            if (!strcmp(sec, "model"))
                section = SEC_MODEL;
            else if (!strcmp(sec, "train"))
                section = SEC_TRAIN;
            else
                rc = gu_fail("%s:%d: unknown section [%s] (expected [model] or "
                             "[train])",
                             name, lineno, sec);
        } else {
            char *eq = strchr(s, '=');
            if (!eq) {
                rc = gu_fail("%s:%d: expected 'key = value', got '%s'", name, lineno,
                             s);
                break;
            }
            *eq = '\0';
            char *key = gu_trim(s), *val = gu_trim(eq + 1);
            const keydef *k = find_key(key);
            if (!strcmp(key, "include")) {
                if (!allow_include) {
                    rc = gu_fail("%s:%d: include is not allowed here (a checkpoint's "
                                 "config is self-contained)",
                                 name, lineno);
                } else if (!*val) {
                    rc = gu_fail("%s:%d: include needs a file name", name, lineno);
                } else if (depth >= 8) {
                    rc = gu_fail("%s:%d: includes nested more than 8 deep (a "
                                 "cycle?)",
                                 name, lineno);
                } else {
                    char path[4096];
                    int n = val[0] == '/' || !dir
                                ? snprintf(path, sizeof path, "%s", val)
                                : snprintf(path, sizeof path, "%s/%s", dir, val);
                    if (n < 0 || n >= (int)sizeof path)
                        rc = gu_fail("%s:%d: include path too long", name, lineno);
                    else if (load_depth(path, f, depth + 1) != 0)
                        rc = gu_fail_prefix("%s:%d: in included file", name, lineno);
                }
            } else if (!*key) {
                rc = gu_fail("%s:%d: missing key before '='", name, lineno);
            } else if (!k) {
                rc = gu_fail("%s:%d: unknown key '%s'%s%s%s (see granattn train "
                             "--help-config)",
                             name, lineno, key, section ? " in [" : "",
                             section ? section_name(section) : "", section ? "]" : "");
            } else if (section && k->section != section) {
                rc = gu_fail("%s:%d: key '%s' belongs in [%s], not [%s]", name,
                             lineno, key, section_name(k->section),
                             section_name(section));
            } else if (seen[k - keys]) {
                rc = gu_fail("%s:%d: duplicate key '%s'", name, lineno, key);
            } else if (!*val) {
                rc = gu_fail("%s:%d: key '%s' has no value", name, lineno, key);
            } else {
                seen[k - keys] = 1;
                if (set_value(f, k, val) != 0)
                    rc = gu_fail_prefix("%s:%d", name, lineno);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    return rc;
}

int gcf_parse(const char *text, const char *name, gcf_file *f)
{
    return parse_text(text, name, NULL, f, 0, 0);
}

int gcf_parse_buf(const char *text, size_t len, const char *name, gcf_file *f)
{
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        return gu_fail("%s:%d: NUL byte in the text (a binary file?)", name, line);
    }
    char *copy = gu_malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    int rc = parse_text(copy, name, NULL, f, 0, 0);
    free(copy);
    return rc;
}

static int load_depth(const char *path, gcf_file *f, int depth)
{
    if (strlen(path) >= 4096)
        return gu_fail("config file path too long: %.80s...", path);
    size_t len;
    char *text = gu_read_regular(path, "config file", GCF_MAX_BYTES, &len);
    if (!text)
        return -1;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        free(text);
        return gu_fail("%s:%d: NUL byte in the file (a binary file?)", path, line);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path); /* path is < 4096: see the include */
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int rc = parse_text(text, path, dir, f, depth, 1);
    free(text);
    return rc;
}

int gcf_load(const char *path, gcf_file *f)
{
    return load_depth(path, f, 0);
}

int gcf_set(gcf_file *f, const char *assignment)
{
    char buf[600];
    if (strlen(assignment) >= sizeof buf)
        return gu_fail("--set: assignment too long");
    snprintf(buf, sizeof buf, "%s", assignment);
    char *eq = strchr(buf, '=');
    if (!eq)
        return gu_fail("--set '%s': expected key=value", assignment);
    *eq = '\0';
    char *key = gu_trim(buf), *val = gu_trim(eq + 1);
    int section = 0;
    char *dot = strchr(key, '.');
    if (dot) {
        *dot = '\0';
        if (!strcmp(key, "model"))
            section = SEC_MODEL;
        else if (!strcmp(key, "train"))
            section = SEC_TRAIN;
        else
            return gu_fail("--set '%s': unknown section '%s'", assignment, key);
        key = dot + 1;
    }
    const keydef *k = find_key(key);
    if (!k)
        return gu_fail("--set '%s': unknown key '%s' (see granattn train "
                       "--help-config)",
                       assignment, key);
    if (section && k->section != section)
        return gu_fail("--set '%s': key '%s' belongs in [%s]", assignment, key,
                       section_name(k->section));
    if (!*val)
        return gu_fail("--set '%s': empty value", assignment);
    if (set_value(f, k, val) != 0)
        return gu_fail_prefix("--set");
    return 0;
}

int gcf_check(const gcf_file *f)
{
    const gm_config *m = &f->model;
    if (f->n_tau != m->L)
        return gu_fail("config: tau has %d value(s) but L = %d (give one tau per "
                       "level)",
                       f->n_tau, m->L);
    if (m->d % m->H != 0)
        return gu_fail("config: d = %d is not a multiple of H = %d", m->d, m->H);
    if (f->gpn == GCF_GPN_FIXED && f->fixed_level >= m->L && f->fixed_tau < 0)
        return gu_fail("config: fixed_level = %d but there are only L = %d levels",
                       f->fixed_level, m->L);
    if (f->gpn == GCF_GPN_RANDOM) {
        if (f->n_random_probs != m->L)
            return gu_fail("config: random_probs has %d value(s) but L = %d",
                           f->n_random_probs, m->L);
        double s = 0;
        for (int l = 0; l < m->L; l++)
            s += f->random_probs[l];
        if (fabs(s - 1.0) > 1e-3)
            return gu_fail("config: random_probs sum to %g, not 1", s);
    }
    if (f->gpn == GCF_GPN_TOPK && (f->topk_k > 0) == (f->topk_frac > 0.0f))
        return gu_fail("config: gpn = topk needs exactly one of topk_k > 0 (keys per row) or "
                       "topk_frac > 0 (fraction of the row's keys); got topk_k = %d, "
                       "topk_frac = %g",
                       f->topk_k, f->topk_frac);
    if (f->gpn != GCF_GPN_LEARNED && m->dense)
        return gu_fail("config: gpn = %s contradicts dense = true", gcf_gpn_name(f->gpn));
    const gcf_train *t = &f->train;
    if (t->opt.min_lr > t->opt.lr)
        return gu_fail("config: min_lr = %g is larger than lr = %g", t->opt.min_lr,
                       t->opt.lr);
    if (t->opt.sched == GO_SCHED_COSINE && t->opt.total_steps <= t->opt.warmup)
        return gu_fail("config: schedule = cosine needs total_steps (%ld) > warmup "
                       "(%d)",
                       t->opt.total_steps, t->opt.warmup);
    gm_config mc;
    if (gcf_model_config(f, &mc) != 0)
        return -1;
    if (gm_config_check(&mc) != GA_OK)
        return gu_fail("config: %s", gm_last_error());
    return 0;
}

int gcf_model_config(const gcf_file *f, gm_config *out)
{
    *out = f->model;
    if (f->gpn == GCF_GPN_FIXED) {
        /* One level only: the GPN's argmax over a single logit is always 0,
         * so every pair is kept with this tau (the GPN gets no gradient). */
        float tau = f->fixed_tau >= 0 ? f->fixed_tau : f->model.tau[f->fixed_level];
        out->L = 1;
        for (int l = 0; l < GA_MAX_LEVELS; l++)
            out->tau[l] = l == 0 ? tau : 0.0f;
        out->lambda = 0.0f;
    } else if (f->gpn == GCF_GPN_RANDOM) {
        /* Level per (layer, query, key) pair drawn from random_probs by the
         * model core; the GPN is bypassed.  gcf_check accepts sums within
         * 1e-3 of 1 (values copied from an eval JSON are rounded); the model
         * wants 1e-4, so the probabilities are normalised here. */
        out->level_source = GM_LEVELS_RANDOM;
        double sum = 0.0;
        for (int l = 0; l < f->model.L; l++)
            sum += f->random_probs[l];
        for (int l = 0; l < GA_MAX_LEVELS; l++)
            out->level_probs[l] =
                l < f->model.L && sum > 0.0 ? (float)(f->random_probs[l] / sum) : 0.0f;
        out->lambda = 0.0f;
    } else if (f->gpn == GCF_GPN_TOPK) {
        /* no levels: each (query, head) row keeps its k largest weights
         * (model/topk.c); the GPN is bypassed, lambda unused */
        out->level_source = GM_LEVELS_TOPK;
        out->topk_k = f->topk_k;
        out->topk_frac = f->topk_frac;
        out->lambda = 0.0f;
    }
    return 0;
}

/* ------------------------------------------------------------ writing */
static void write_value(FILE *out, const gcf_file *f, const keydef *k)
{
    const char *base = (const char *)f;
    const void *p = base + k->off;
    switch (k->k) {
    case K_INT: fprintf(out, "%d", *(const int *)p); break;
    case K_LONG: fprintf(out, "%ld", *(const long *)p); break;
    case K_U64: fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case K_FLOAT: fprintf(out, "%.9g", (double)*(const float *)p); break;
    case K_DOUBLE: fprintf(out, "%.17g", *(const double *)p); break;
    case K_BOOL: fprintf(out, "%s", *(const int *)p ? "true" : "false"); break;
    case K_STR: fprintf(out, "%s", (const char *)p); break;
    case K_FLIST: {
        int n = *(const int *)(base + k->size);
        for (int i = 0; i < n; i++)
            fprintf(out, "%s%.9g", i ? ", " : "", (double)((const float *)p)[i]);
        break;
    }
    case K_NORM:
        fprintf(out, "%s", *(const ga_norm *)p == GA_NORM_RENORM ? "renorm" : "seed");
        break;
    case K_ACT:
        fprintf(out, "%s", *(const gm_act *)p == GM_ACT_GELU ? "gelu" : "relu");
        break;
    case K_GPN: fprintf(out, "%s", gcf_gpn_name(*(const gcf_gpn *)p)); break;
    case K_SCHED: fprintf(out, "%s", go_sched_name(*(const go_sched *)p)); break;
    }
}

void gcf_write(FILE *out, const gcf_file *f)
{
    for (int sec = SEC_MODEL; sec <= SEC_TRAIN; sec++) {
        fprintf(out, "%s[%s]\n", sec == SEC_MODEL ? "" : "\n", section_name(sec));
        for (int i = 0; i < NKEYS; i++) {
            if (keys[i].section != sec)
                continue;
            fprintf(out, "%s = ", keys[i].name);
            write_value(out, f, &keys[i]);
            fputc('\n', out);
        }
    }
}

char *gcf_to_string(const gcf_file *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) {
        gu_fail("out of memory (config text)");
        return NULL;
    }
    gcf_write(m, f);
    fclose(m);
    return buf;
}

void gcf_print_keys(FILE *out)
{
    gcf_file d;
    gcf_defaults(&d);
    for (int sec = SEC_MODEL; sec <= SEC_TRAIN; sec++) {
        fprintf(out, "[%s]\n", section_name(sec));
        for (int i = 0; i < NKEYS; i++) {
            if (keys[i].section != sec)
                continue;
            fprintf(out, "  %-16s %s (default: ", keys[i].name, keys[i].help);
            write_value(out, &d, &keys[i]);
            fprintf(out, ")\n");
        }
    }
}
