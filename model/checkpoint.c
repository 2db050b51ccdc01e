/* checkpoint.c — see checkpoint.h. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define HEADER_BYTES 64
#define ENDIAN_MARK 0x01020304u
static const char MAGIC[8] = {'G', 'A', 'C', 'K', 'P', 'T', 0, 0};

typedef struct section {
    char tag[8];
    const void *data;
    uint64_t bytes;
} section;

static uint64_t padded(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int write_all(int fd, const void *buf, size_t n, const char *path)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return gu_fail("writing %s: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int gk_save(const char *path, const char *config_text, const gk_state *st,
            const float *params, const float *adam_m, const float *adam_v,
            size_t n_params)
{
    for (size_t i = 0; i < n_params; i++)
        if (!isfinite(params[i]))
            return gu_fail("refusing to write %s: weight %zu is %s (the run "
                           "diverged; the previous file is kept)",
                           path, i, isnan(params[i]) ? "NaN" : "infinite");
    /* A test hook (tests/test_kill.sh): GRANATTN_TEST_KILL_IN_SAVE=STEP makes
     * the write of the checkpoint for that step die by SIGKILL half-way. */
    long kill_step = -1;
    const char *ks = getenv("GRANATTN_TEST_KILL_IN_SAVE");
    if (ks && *ks)
        kill_step = strtol(ks, NULL, 10);
    section sec[5];
    int ns = 0;
#define ADD(t, d, b)                                           \
    do {                                                       \
        memset(sec[ns].tag, 0, 8);                             \
        memcpy(sec[ns].tag, t, strlen(t));                     \
        sec[ns].data = (d);                                    \
        sec[ns].bytes = (b);                                   \
        ns++;                                                  \
    } while (0)
    ADD("CONFIG", config_text, strlen(config_text) + 1);
    ADD("STATE", st, sizeof *st);
    ADD("PARAMS", params, n_params * sizeof(float));
    if (adam_m && adam_v) {
        ADD("ADAM_M", adam_m, n_params * sizeof(float));
        ADD("ADAM_V", adam_v, n_params * sizeof(float));
    }
#undef ADD

    static const unsigned char zeros[8];
    uint64_t payload = 0;
    uint32_t crc = 0;
    for (int i = 0; i < ns; i++) {
        unsigned char hdr[16];
        memcpy(hdr, sec[i].tag, 8);
        put64(hdr + 8, sec[i].bytes);
        crc = gu_crc32(crc, hdr, 16);
        crc = gu_crc32(crc, sec[i].data, sec[i].bytes);
        crc = gu_crc32(crc, zeros, padded(sec[i].bytes) - sec[i].bytes);
        payload += 16 + padded(sec[i].bytes);
    }
    unsigned char h[HEADER_BYTES];
    memset(h, 0, sizeof h);
    memcpy(h, MAGIC, 8);
    put32(h + 8, GK_VERSION);
    put32(h + 12, ENDIAN_MARK);
    put64(h + 16, payload);
    put32(h + 24, crc);
    put32(h + 28, (uint32_t)ns);
    put64(h + 32, n_params);
    put64(h + 40, (uint64_t)st->step);
    put32(h + 60, gu_crc32(0, h, 60));

    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return gu_fail("checkpoint path too long: %s", path);
    gu_remove_stale_tmp(path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return gu_fail("cannot create %s: %s", tmp, strerror(errno));
    int rc = write_all(fd, h, sizeof h, tmp);
    for (int i = 0; i < ns && rc == 0; i++) {
        unsigned char hdr[16];
        memcpy(hdr, sec[i].tag, 8);
        put64(hdr + 8, sec[i].bytes);
        rc = write_all(fd, hdr, 16, tmp);
        if (rc == 0)
            rc = write_all(fd, sec[i].data, sec[i].bytes, tmp);
        if (rc == 0)
            rc = write_all(fd, zeros, padded(sec[i].bytes) - sec[i].bytes, tmp);
        if (rc == 0 && i == 1 && kill_step >= 0 && st->step == kill_step)
            raise(SIGKILL);
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = gu_fail("fsync %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = gu_fail("close %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = gu_fail("rename %s -> %s: %s", tmp, path, strerror(errno));
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    /* Make the rename itself durable. */
    char dirbuf[PATH_MAX];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

void gk_free(gk_checkpoint *ck)
{
    free(ck->blob_);
    memset(ck, 0, sizeof *ck);
}

int gk_load(const char *path, size_t expect_params, gk_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    uint64_t size;
    int fd = gu_open_regular(path, "checkpoint", &size);
    if (fd < 0)
        return -1;
    if (size < HEADER_BYTES) {
        close(fd);
        return gu_fail("%s: truncated checkpoint (%llu bytes; the header alone is "
                       "%d)",
                       path, (unsigned long long)size, HEADER_BYTES);
    }
    if (size >= SIZE_MAX) {
        close(fd);
        return gu_fail("%s: checkpoint too large", path);
    }
    unsigned char *file = malloc((size_t)size);
    if (!file) {
        close(fd);
        return gu_fail("%s: out of memory (%llu bytes)", path, (unsigned long long)size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, file + got, (size_t)size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size) {
        free(file);
        return gu_fail("%s: read error (got %zu of %llu bytes)", path, got,
                       (unsigned long long)size);
    }
    return gk_parse(file, (size_t)size, path, expect_params, ck);
}

/* -1 + message: the first non-finite (or, nonneg, negative) value. */
static int check_floats(const float *x, size_t n, int nonneg, const char *path,
                        const char *tag)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (!isfinite(v))
            return gu_fail("%s: %s value %zu is %s (a corrupt or diverged "
                           "checkpoint; the checksums only show it was written "
                           "like this)",
                           path, tag, i, isnan(v) ? "NaN" : "infinite");
        if (nonneg && v < 0)
            return gu_fail("%s: %s value %zu is negative (%g): second moments "
                           "are >= 0",
                           path, tag, i, (double)v);
    }
    return 0;
}

static int check_state(const gk_state *s, uint64_t header_step, const char *path)
{
    if (s->step < 0)
        return gu_fail("%s: implausible training state: step %lld < 0", path,
                       (long long)s->step);
    if ((uint64_t)s->step != header_step)
        return gu_fail("%s: implausible training state: step %lld, but the header "
                       "says %llu",
                       path, (long long)s->step, (unsigned long long)header_step);
    if (s->epoch < 0 || s->epoch > INT_MAX || s->batch_pos < 0 || s->batch_pos > INT_MAX)
        return gu_fail("%s: implausible training state: data position epoch %lld, "
                       "batch %lld",
                       path, (long long)s->epoch, (long long)s->batch_pos);
    if (s->adam_t < 0 || s->adam_t > s->step)
        return gu_fail("%s: implausible training state: optimiser step %lld (not in "
                       "[0, step = %lld])",
                       path, (long long)s->adam_t, (long long)s->step);
    if (!(s->best_dev >= 0))
        return gu_fail("%s: implausible training state: best dev loss %g", path,
                       s->best_dev);
    if (!(s->last_dev >= 0))
        return gu_fail("%s: implausible training state: last dev loss %g", path,
                       s->last_dev);
    if (s->best_step < -1 || s->best_step > s->step)
        return gu_fail("%s: implausible training state: best step %lld (step %lld)",
                       path, (long long)s->best_step, (long long)s->step);
    if (s->evals_since_best < 0)
        return gu_fail("%s: implausible training state: %lld evaluations since "
                       "the best",
                       path, (long long)s->evals_since_best);
    if (!(s->train_seconds >= 0) || !isfinite(s->train_seconds))
        return gu_fail("%s: implausible training state: training time %g s", path,
                       s->train_seconds);
    if (s->tokens_seen < 0)
        return gu_fail("%s: implausible training state: %lld tokens seen", path,
                       (long long)s->tokens_seen);
    if (s->threads < 0 || s->threads > 1 << 20)
        return gu_fail("%s: implausible training state: %lld threads", path,
                       (long long)s->threads);
    if (s->eval_pending != 0 && s->eval_pending != 1)
        return gu_fail("%s: implausible training state: eval_pending = %lld", path,
                       (long long)s->eval_pending);
    if (s->last_eval_step < -1 || s->last_eval_step > s->step)
        return gu_fail("%s: implausible training state: last evaluation at step %lld "
                       "(step %lld)",
                       path, (long long)s->last_eval_step, (long long)s->step);
    if ((s->rng[0] | s->rng[1] | s->rng[2] | s->rng[3]) == 0)
        return gu_fail("%s: implausible training state: the RNG state is all zero",
                       path);
    return 0;
}

int gk_parse(unsigned char *file, size_t size, const char *path, size_t expect_params,
             gk_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    ck->blob_ = file;
#define FAIL(...) (gk_free(ck), gu_fail(__VA_ARGS__))
    if (size < HEADER_BYTES)
        return FAIL("%s: truncated checkpoint (%zu bytes; the header alone is %d)",
                    path, size, HEADER_BYTES);
    const unsigned char *h = file;
    if (memcmp(h, MAGIC, 8) != 0)
        return FAIL("%s: not a granattn checkpoint (bad magic)", path);
    uint32_t version = get32(h + 8);
    if (get32(h + 12) != ENDIAN_MARK)
        return FAIL("%s: checkpoint written on a machine of the other byte order (or "
                    "corrupt header)",
                    path);
    if (get32(h + 60) != gu_crc32(0, h, 60))
        return FAIL("%s: corrupt checkpoint header (checksum mismatch)", path);
    if (version != GK_VERSION)
        return FAIL("%s: checkpoint format version %u; this build reads version %d",
                    path, version, GK_VERSION);
    uint64_t payload = get64(h + 16);
    if (payload > size - HEADER_BYTES)
        return FAIL("%s: truncated checkpoint (%zu bytes, expected %llu: the write "
                    "was cut short?)",
                    path, size, (unsigned long long)payload + HEADER_BYTES);
    if (payload < size - HEADER_BYTES)
        return FAIL("%s: %llu unexpected bytes after the checkpoint payload", path,
                    (unsigned long long)(size - HEADER_BYTES - payload));
    const unsigned char *blob = file + HEADER_BYTES;
    if (gu_crc32(0, blob, payload) != get32(h + 24))
        return FAIL("%s: corrupt checkpoint (payload checksum mismatch)", path);
    uint32_t ns = get32(h + 28);
    uint64_t n_params = get64(h + 32);
    /* every float array is inside the payload: no count * size overflow */
    if (n_params > payload / sizeof(float))
        return FAIL("%s: header claims %llu parameters, more than the %llu-byte "
                    "payload can hold",
                    path, (unsigned long long)n_params, (unsigned long long)payload);
    ck->n_params = (size_t)n_params;
    int have_state = 0;
    uint64_t off = 0;
    for (uint32_t i = 0; i < ns; i++) {
        /* invariant: off <= payload */
        if (payload - off < 16)
            return FAIL("%s: section table runs past the payload (section %u of %u)",
                        path, i + 1, ns);
        char tag[9];
        memcpy(tag, blob + off, 8);
        tag[8] = '\0';
        for (int k = 0; k < 8 && tag[k]; k++)
            if (tag[k] < 0x20 || tag[k] > 0x7e)
                tag[k] = '?';
        uint64_t bytes = get64(blob + off + 8);
        if (bytes > payload - off - 16 || padded(bytes) > payload - off - 16)
            return FAIL("%s: section %s (%llu bytes) runs past the payload", path, tag,
                        (unsigned long long)bytes);
        const unsigned char *data = blob + off + 16;
        if (!strcmp(tag, "CONFIG")) {
            if (ck->config_text)
                return FAIL("%s: two CONFIG sections", path);
            if (bytes == 0 || data[bytes - 1] != '\0' || memchr(data, '\0', bytes - 1))
                return FAIL("%s: CONFIG section is not a string", path);
            ck->config_text = (char *)data;
        } else if (!strcmp(tag, "STATE")) {
            if (have_state)
                return FAIL("%s: two STATE sections", path);
            if (bytes != sizeof(gk_state))
                return FAIL("%s: STATE section has %llu bytes, expected %zu", path,
                            (unsigned long long)bytes, sizeof(gk_state));
            memcpy(&ck->state, data, sizeof ck->state);
            have_state = 1;
        } else if (!strcmp(tag, "PARAMS") || !strcmp(tag, "ADAM_M") ||
                   !strcmp(tag, "ADAM_V")) {
            if (bytes != n_params * sizeof(float))
                return FAIL("%s: %s section has %llu bytes, expected %llu", path, tag,
                            (unsigned long long)bytes,
                            (unsigned long long)(n_params * sizeof(float)));
            float **slot = tag[0] == 'P' ? &ck->params : tag[5] == 'M' ? &ck->adam_m
                                                                        : &ck->adam_v;
            if (*slot)
                return FAIL("%s: two %s sections", path, tag);
            *slot = (float *)data; /* 8-byte aligned: sections start at 8k */
        } /* unknown sections are skipped (forward compatible) */
        off += 16 + padded(bytes);
    }
    if (off != payload)
        return FAIL("%s: %llu bytes after the last of its %u sections", path,
                    (unsigned long long)(payload - off), ns);
    if (!ck->config_text || !have_state || !ck->params) {
        const char *miss = !ck->config_text ? "CONFIG" : !have_state ? "STATE" : "PARAMS";
        return FAIL("%s: checkpoint lacks its %s section", path, miss);
    }
    if ((ck->adam_m == NULL) != (ck->adam_v == NULL))
        return FAIL("%s: checkpoint has only one of ADAM_M / ADAM_V", path);
    if (expect_params > 0 && n_params != expect_params)
        return FAIL("%s: checkpoint has %llu parameters, the model has %zu", path,
                    (unsigned long long)n_params, expect_params);
    if (check_state(&ck->state, get64(h + 40), path) != 0 ||
        check_floats(ck->params, ck->n_params, 0, path, "PARAMS") != 0 ||
        (ck->adam_m && check_floats(ck->adam_m, ck->n_params, 0, path, "ADAM_M") != 0) ||
        (ck->adam_v && check_floats(ck->adam_v, ck->n_params, 1, path, "ADAM_V") != 0)) {
        gk_free(ck);
        return -1;
    }
#undef FAIL
    return 0;
}
