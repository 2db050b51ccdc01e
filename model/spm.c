/* spm.c — tools/corpus/spm.py encode|decode in process (spm.h): the line
 * handling of spm.py around the SentencePiece calls of spm_shim.cc, and the
 * model cache.  Without libsentencepiece (GM_HAVE_SENTENCEPIECE unset) the
 * gm_spm_* entry points of spm_shim.cc are stubs here that fail, and run_spm
 * spawns spm.py instead. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spm.h"
#include "util.h"

#ifndef GM_HAVE_SENTENCEPIECE
int gm_spm_in_process(void) { return 0; }

gm_spm *gm_spm_load(const char *path)
{
    gu_fail("%s: this granattn was built without libsentencepiece (meson "
            "-Dsentencepiece=disabled or libsentencepiece-dev missing)",
            path);
    return NULL;
}

void gm_spm_free(gm_spm *sp) { (void)sp; }

int gm_spm_vocab(const gm_spm *sp)
{
    (void)sp;
    return 0;
}

int gm_spm_encode(gm_spm *sp, const char *text, size_t len, int32_t **ids, size_t *cap,
                  size_t *n)
{
    (void)sp, (void)text, (void)len, (void)ids, (void)cap;
    *n = 0;
    gu_fail("built without libsentencepiece");
    return -1;
}

int gm_spm_decode(gm_spm *sp, const int32_t *ids, size_t n, char **text_out, size_t *len_out)
{
    (void)sp, (void)ids, (void)n;
    *text_out = NULL;
    if (len_out)
        *len_out = 0;
    gu_fail("built without libsentencepiece");
    return -1;
}
#endif

/* ---------------------------------------------------------------- cache */
/* One entry per model path; the models live until the process ends (a
 * run loads one, data/spm/spm.model). */
typedef struct spm_entry {
    struct spm_entry *next;
    gm_spm *sp;
    char path[];
} spm_entry;

static spm_entry *g_cache;

gm_spm *gm_spm_cached(const char *path)
{
    for (spm_entry *e = g_cache; e; e = e->next)
        if (!strcmp(e->path, path))
            return e->sp;
    gm_spm *sp = gm_spm_load(path);
    if (!sp)
        return NULL;
    size_t pl = strlen(path) + 1;
    spm_entry *e = gu_malloc(sizeof *e + pl);
    if (!e) {
        gm_spm_free(sp);
        return NULL;
    }
    memcpy(e->path, path, pl);
    e->sp = sp;
    e->next = g_cache;
    g_cache = e;
    return sp;
}

/* -------------------------------------------------------------- encode */
int gm_spm_encode_stream(gm_spm *sp, const char *data, size_t len, const char *name, FILE *out,
                         FILE *warn, int *n_bad)
{
    int32_t *ids = NULL;
    size_t cap = 0, n;
    int bad = 0, first_bad = 0, rc = 0;
    long k = 0;
    const char *p = data, *end = data + len;
    /* lines split on "\n" only; a last piece without "\n" is a line, an
     * empty last piece (the file ends with "\n", or is empty) is not */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        k++;
        if (!gu_utf8_valid(p, ll)) {
            if (warn)
                fprintf(warn, "granattn spm: %s:%ld: not valid UTF-8; encoded as an empty line\n",
                        name, k);
            if (!bad++)
                first_bad = (int)(k > INT_MAX ? INT_MAX : k);
            n = 0;
        } else if (gm_spm_encode(sp, p, ll, &ids, &cap, &n) != 0) {
            rc = gu_fail_prefix("%s:%ld", name, k);
            break;
        }
        for (size_t i = 0; i < n; i++)
            fprintf(out, i ? " %d" : "%d", (int)ids[i]);
        fputc('\n', out);
        p = nl ? nl + 1 : end;
    }
    free(ids);
    if (n_bad)
        *n_bad = bad;
    if (rc == 0 && bad) {
        gu_fail("%s:%d: not valid UTF-8; encoded as an empty line%s", name, first_bad,
                bad > 1 ? " (and more lines)" : "");
        rc = 1;
    }
    return rc;
}

/* -------------------------------------------------------------- decode */
/* The whitespace of Python's str.split() within ASCII (line ends aside). */
static int py_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

/* Python's int() of an ASCII token, as far as id files go: [+-]digits.
 * Values beyond int are clamped (they are outside the vocabulary anyway).
 * 0 / -1 (not an integer). */
static int parse_id(const char *s, size_t n, long *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return -1;
    long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v < INT_MAX)
            v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

int gm_spm_decode_stream(gm_spm *sp, const char *data, size_t len, const char *name, FILE *out)
{
    enum { PAD = 0, BOS = 2, EOS = 3 };
    int vocab = gm_spm_vocab(sp);
    int32_t *ids = NULL;
    size_t cap = 0;
    int rc = 0;
    long k = 0;
    const char *p = data, *end = data + len;
    /* Python's text mode: "\n", "\r\n" and "\r" end a line */
    while (p < end) {
        const char *e = p;
        while (e < end && *e != '\n' && *e != '\r')
            e++;
        const char *next = e < end ? e + 1 : end;
        if (e < end && *e == '\r' && next < end && *next == '\n')
            next++;
        k++;
        size_t n = 0;
        int bad_tok = 0, out_of_range = 0, seen_eos = 0;
        for (const char *t = p; t < e;) {
            while (t < e && py_space((unsigned char)*t))
                t++;
            if (t == e)
                break;
            const char *te = t;
            while (te < e && !py_space((unsigned char)*te))
                te++;
            long v;
            if (parse_id(t, (size_t)(te - t), &v) != 0) {
                bad_tok = 1;
                break;
            }
            if (v < 0 || v >= vocab)
                out_of_range = 1;
            if (v == EOS)
                seen_eos = 1;
            if (!seen_eos && v != PAD && v != BOS && !out_of_range) {
                if (n == cap) {
                    size_t c = cap ? 2 * cap : 64;
                    int32_t *g = realloc(ids, c * sizeof *g);
                    if (!g) {
                        rc = gu_fail("out of memory");
                        goto done;
                    }
                    ids = g;
                    cap = c;
                }
                ids[n++] = (int32_t)v;
            }
            t = te;
        }
        if (bad_tok) {
            rc = gu_fail("%s:%ld: not a line of token ids", name, k);
            goto done;
        }
        if (out_of_range) {
            rc = gu_fail("%s:%ld: token id outside the vocabulary [0, %d)", name, k, vocab);
            goto done;
        }
        char *text;
        size_t tl;
        if (gm_spm_decode(sp, ids, n, &text, &tl) != 0) {
            rc = gu_fail_prefix("%s:%ld", name, k);
            goto done;
        }
        fwrite(text, 1, tl, out);
        fputc('\n', out);
        free(text);
        p = next;
    }
done:
    free(ids);
    return rc;
}

/* ---------------------------------------------------------------- files */
int gm_spm_file(const char *model_path, const char *what, const char *in_path,
                const char *out_path)
{
    int enc = !strcmp(what, "encode");
    if (!enc && strcmp(what, "decode"))
        return gu_fail("spm: unknown operation '%s' (encode or decode)", what);
    gm_spm *sp = gm_spm_cached(model_path);
    if (!sp)
        return -1;
    size_t len;
    char *data = gu_read_file(in_path, &len);
    if (!data)
        return -1;
    FILE *out = fopen(out_path, "w");
    if (!out) {
        free(data);
        return gu_fail("cannot write %s: %s", out_path, strerror(errno));
    }
    int rc = enc ? gm_spm_encode_stream(sp, data, len, in_path, out, NULL, NULL)
                 : gm_spm_decode_stream(sp, data, len, in_path, out);
    if (rc > 0)
        rc = -1; /* a non-UTF-8 line: the output is complete, but it is an error */
    free(data);
    int werr = ferror(out);
    if (fclose(out) != 0 || werr) {
        if (rc == 0)
            rc = gu_fail("writing %s: %s", out_path, strerror(errno ? errno : EIO));
    }
    return rc;
}
