/* util.c — see util.h. */
#include "util.h"

#include "model.h" /* gm_set_error, gm_last_error: the message buffer */
#include "granattn_trace.h" /* ga_crc32 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The message lives in the model's error buffer (model.h, error.c). */
const char *gu_error(void) { return gm_last_error(); }

int gu_fail(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    gm_set_error(GA_EINVAL, "%s", buf);
    return -1;
}

int gu_fail_prefix(const char *fmt, ...)
{
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    gm_set_error(GA_EINVAL, "%s: %s", prefix, gm_last_error());
    return -1;
}

/* ------------------------------------------------------------------ RNG */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void gu_rng_seed(gu_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t gu_mix(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ 0x6A09E667F3BCC909ull;
    uint64_t h = splitmix64(&x);
    x = h ^ b;
    return splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gu_rng_next(gu_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t gu_rng_below(gu_rng *r, uint64_t n)
{
    /* Rejection sampling on the top of the range: unbiased. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = gu_rng_next(r);
    } while (x >= limit);
    return x % n;
}

double gu_rng_double(gu_rng *r)
{
    return (double)(gu_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------- CRC32 */
/* The library's (include/granattn_trace.h): one implementation for token
 * files, checkpoints and trace files. */
uint32_t gu_crc32(uint32_t crc, const void *data, size_t n) { return ga_crc32(crc, data, n); }

/* ----------------------------------------------------------------- misc */
double gu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *gu_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        gu_fail("out of memory (allocating %zu bytes)", bytes);
    return p;
}

void *gu_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        gu_fail("out of memory (allocating %zu x %zu bytes)", n, size);
    return p;
}

char *gu_trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                     s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

char *gu_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        gu_fail("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        gu_fail("out of memory reading %s", path);
        return NULL;
    }
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                gu_fail("out of memory reading %s", path);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        gu_fail("read error on %s", path);
        return NULL;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

int gu_open_regular(const char *path, const char *what, uint64_t *size_out)
{
    /* O_NONBLOCK: opening a FIFO without a writer would otherwise wait for
     * one forever.  The flag is cleared again for the reads. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return gu_fail("cannot open %s %s: %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return gu_fail("cannot stat %s %s: %s", what, path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return gu_fail("%s %s: not a regular file (%s)", what, path,
                       S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a plain file");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size_out)
        *size_out = (uint64_t)st.st_size;
    return fd;
}

char *gu_read_regular(const char *path, const char *what, size_t max_bytes,
                      size_t *len_out)
{
    uint64_t size;
    int fd = gu_open_regular(path, what, &size);
    if (fd < 0)
        return NULL;
    if (max_bytes > 0 && size > max_bytes) {
        close(fd);
        gu_fail("%s %s: %llu bytes, more than the %zu this program accepts", what,
                path, (unsigned long long)size, max_bytes);
        return NULL;
    }
    if (size >= SIZE_MAX) {
        close(fd);
        gu_fail("%s %s: too large", what, path);
        return NULL;
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
        close(fd);
        gu_fail("out of memory reading %s %s (%llu bytes)", what, path,
                (unsigned long long)size);
        return NULL;
    }
    size_t len = 0;
    while (len < size) {
        ssize_t got = read(fd, buf + len, (size_t)size - len);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            gu_fail("read error on %s %s: %s", what, path, strerror(e));
            return NULL;
        }
        if (got == 0)
            break; /* shrank while reading: take what is there */
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

int gu_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int mkdir_one(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        return gu_fail("%s exists and is not a directory", path);
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return gu_fail("cannot create directory %s: %s", path, strerror(errno));
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return gu_fail("%s exists and is not a directory", path);
    return 0;
}

int gu_mkdir(const char *path)
{
    char buf[PATH_MAX];
    if (!*path)
        return gu_fail("empty directory name");
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return gu_fail("directory name too long: %s", path);
    /* every parent first: a/b/c makes a, a/b, a/b/c */
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/' || p[-1] == '/')
            continue;
        *p = '\0';
        int rc = mkdir_one(buf);
        *p = '/';
        if (rc != 0)
            return rc;
    }
    return mkdir_one(buf);
}

int gu_lock_dir(const char *dir, const char *what)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/.lock", dir) >= (int)sizeof p)
        return gu_fail("directory name too long: %s", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return gu_fail("cannot create the lock file %s: %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return gu_fail("%s: another %s is using this directory (it holds %s); "
                           "wait for it to finish or stop it first",
                           dir, what, p);
        return gu_fail("cannot lock %s: %s", p, strerror(e));
    }
    return fd;
}

int gu_remove_stale_tmp(const char *path)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return 0;
    char *slash = strrchr(dir, '/');
    const char *base = path;
    if (slash) {
        base = path + (slash - dir) + 1;
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    size_t nb = strlen(base);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, nb) != 0 || strncmp(n + nb, ".tmp.", 5) != 0)
            continue;
        const char *digits = n + nb + 5;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end || errno || pid <= 0 || pid > INT_MAX)
            continue;
        if (pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* that process may still be writing it */
        char full[PATH_MAX * 2];
        snprintf(full, sizeof full, "%s/%s", dir, n);
        if (unlink(full) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

static int root_has_tools(const char *dir)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/tools/corpus/spm.py", dir);
    return gu_file_exists(p);
}

/* Walks from dir upward; on success copies the root into out. */
static int search_up(const char *start, char *out, size_t outlen)
{
    char dir[PATH_MAX];
    if (!realpath(start, dir))
        return 0;
    for (;;) {
        if (root_has_tools(dir)) {
            snprintf(out, outlen, "%s", dir);
            return 1;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            return 0;
        *slash = '\0';
    }
}

const char *gu_project_root(void)
{
    static char root[PATH_MAX];
    if (root[0])
        return root;
    const char *env = getenv("GRANATTN_ROOT");
    if (env && *env) {
        if (root_has_tools(env)) {
            snprintf(root, sizeof root, "%s", env);
            return root;
        }
        gu_fail("GRANATTN_ROOT=%s has no tools/corpus/spm.py", env);
        return NULL;
    }
    if (search_up(".", root, sizeof root))
        return root;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        if (search_up(exe, root, sizeof root))
            return root;
    }
    root[0] = '\0';
    gu_fail("cannot find the project root (a directory with tools/corpus/spm.py) "
            "from the current directory or the executable; run from the "
            "repository or set GRANATTN_ROOT");
    return NULL;
}

int gu_shell_quote(const char *s, char *out, size_t outlen)
{
    size_t k = 0;
    if (outlen < 3)
        return gu_fail("path too long to quote");
    out[k++] = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            if (k + 4 >= outlen)
                return gu_fail("path too long to quote");
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            if (k + 1 >= outlen)
                return gu_fail("path too long to quote");
            out[k++] = *p;
        }
    }
    if (k + 2 > outlen)
        return gu_fail("path too long to quote");
    out[k++] = '\'';
    out[k] = '\0';
    return 0;
}

int gu_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F; /* > U+10FFFF */
        } else
            return 0;
        if (n - i < (size_t)len)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (int k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += (size_t)len;
    }
    return 1;
}
