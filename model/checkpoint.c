/* checkpoint.c — see checkpoint.h. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
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
    FILE *f = fopen(path, "rb");
    if (!f)
        return gu_fail("cannot open checkpoint %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return gu_fail("%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char h[HEADER_BYTES];
    if (size < HEADER_BYTES) {
        fclose(f);
        return gu_fail("%s: truncated checkpoint (%llu bytes; the header alone is "
                       "%d)",
                       path, (unsigned long long)size, HEADER_BYTES);
    }
    if (fread(h, 1, HEADER_BYTES, f) != HEADER_BYTES) {
        fclose(f);
        return gu_fail("%s: read error", path);
    }
    if (memcmp(h, MAGIC, 8) != 0) {
        fclose(f);
        return gu_fail("%s: not a granattn checkpoint (bad magic)", path);
    }
    uint32_t version = get32(h + 8);
    if (get32(h + 12) != ENDIAN_MARK) {
        fclose(f);
        return gu_fail("%s: checkpoint written on a machine of the other byte "
                       "order (or corrupt header)",
                       path);
    }
    if (get32(h + 60) != gu_crc32(0, h, 60)) {
        fclose(f);
        return gu_fail("%s: corrupt checkpoint header (checksum mismatch)", path);
    }
    if (version != GK_VERSION) {
        fclose(f);
        return gu_fail("%s: checkpoint format version %u; this build reads version "
                       "%d",
                       path, version, GK_VERSION);
    }
    uint64_t payload = get64(h + 16);
    if (payload > size - HEADER_BYTES) {
        fclose(f);
        return gu_fail("%s: truncated checkpoint (%llu bytes, expected %llu: the "
                       "write was cut short?)",
                       path, (unsigned long long)size,
                       (unsigned long long)(payload + HEADER_BYTES));
    }
    if (payload < size - HEADER_BYTES) {
        fclose(f);
        return gu_fail("%s: %llu unexpected bytes after the checkpoint payload", path,
                       (unsigned long long)(size - HEADER_BYTES - payload));
    }
    unsigned char *blob = malloc(payload ? payload : 1);
    if (!blob) {
        fclose(f);
        return gu_fail("%s: out of memory (%llu bytes)", path,
                       (unsigned long long)payload);
    }
    size_t got = fread(blob, 1, payload, f);
    fclose(f);
    if (got != payload) {
        free(blob);
        return gu_fail("%s: read error (got %zu of %llu payload bytes)", path, got,
                       (unsigned long long)payload);
    }
    if (gu_crc32(0, blob, payload) != get32(h + 24)) {
        free(blob);
        return gu_fail("%s: corrupt checkpoint (payload checksum mismatch)", path);
    }
    ck->blob_ = blob;
    uint32_t ns = get32(h + 28);
    uint64_t n_params = get64(h + 32);
    ck->n_params = (size_t)n_params;
    int have_state = 0;
    uint64_t off = 0;
    for (uint32_t i = 0; i < ns; i++) {
        if (payload - off < 16) {
            gk_free(ck);
            return gu_fail("%s: section table runs past the payload", path);
        }
        char tag[9];
        memcpy(tag, blob + off, 8);
        tag[8] = '\0';
        uint64_t bytes = get64(blob + off + 8);
        if (bytes > payload - off - 16) {
            gk_free(ck);
            return gu_fail("%s: section %s runs past the payload", path, tag);
        }
        unsigned char *data = blob + off + 16;
        if (!strcmp(tag, "CONFIG")) {
            if (bytes == 0 || data[bytes - 1] != '\0') {
                gk_free(ck);
                return gu_fail("%s: CONFIG section is not a string", path);
            }
            ck->config_text = (char *)data;
        } else if (!strcmp(tag, "STATE")) {
            if (bytes != sizeof(gk_state)) {
                gk_free(ck);
                return gu_fail("%s: STATE section has %llu bytes, expected %zu", path,
                               (unsigned long long)bytes, sizeof(gk_state));
            }
            memcpy(&ck->state, data, sizeof ck->state);
            have_state = 1;
        } else if (!strcmp(tag, "PARAMS") || !strcmp(tag, "ADAM_M") ||
                   !strcmp(tag, "ADAM_V")) {
            if (bytes != n_params * sizeof(float)) {
                gk_free(ck);
                return gu_fail("%s: %s section has %llu bytes, expected %llu", path,
                               tag, (unsigned long long)bytes,
                               (unsigned long long)(n_params * sizeof(float)));
            }
            float *fp = (float *)data;
            if (tag[0] == 'P')
                ck->params = fp;
            else if (tag[5] == 'M')
                ck->adam_m = fp;
            else
                ck->adam_v = fp;
        } /* unknown sections are skipped (forward compatible) */
        off += 16 + padded(bytes);
    }
    if (!ck->config_text || !have_state || !ck->params) {
        gk_free(ck);
        return gu_fail("%s: checkpoint lacks its %s section", path,
                       !ck->config_text ? "CONFIG" : !have_state ? "STATE" : "PARAMS");
    }
    if ((ck->adam_m == NULL) != (ck->adam_v == NULL)) {
        gk_free(ck);
        return gu_fail("%s: checkpoint has only one of ADAM_M / ADAM_V", path);
    }
    if (expect_params > 0 && n_params != expect_params) {
        size_t np = ck->n_params;
        gk_free(ck);
        return gu_fail("%s: checkpoint has %zu parameters, the model has %zu", path,
                       np, expect_params);
    }
    return 0;
}
