/* util.h — small helpers shared by the granattn command-line tool:
 * error messages, a seeded RNG with savable state, CRC32, timing, paths.
 *
 * Error convention of the CLI-side modules (data, optim, checkpoint,
 * config_file, decode): a function that can fail returns 0 on success and -1
 * on failure, after leaving a one-line message in gu_error() (thread-local).
 * That message is the model's (model.h: gu_error() == gm_last_error(), and
 * gu_fail sets it like gm_set_error), so after a failing gm_* or gu_* call
 * the caller reads the same place.  The caller adds context and prints it;
 * nothing here aborts.
 */
#ifndef GM_UTIL_H
#define GM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define GU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GU_PRINTF(a, b)
#endif

/* Last error message of this thread ("" if none). */
const char *gu_error(void);
/* Sets the message (printf-style) and returns -1. */
int gu_fail(const char *fmt, ...) GU_PRINTF(1, 2);
/* Prefixes the current message with "<prefix>: " and returns -1. */
int gu_fail_prefix(const char *fmt, ...) GU_PRINTF(1, 2);

/* ---- RNG: xoshiro256** seeded through splitmix64.  The 32-byte state is
 * plain data so that a checkpoint can store and restore it exactly. */
typedef struct gu_rng {
    uint64_t s[4];
} gu_rng;

void gu_rng_seed(gu_rng *r, uint64_t seed);
/* A seed mixed from several values (e.g. (seed, epoch)): distinct inputs give
 * unrelated streams. */
uint64_t gu_mix(uint64_t a, uint64_t b);
uint64_t gu_rng_next(gu_rng *r);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
uint64_t gu_rng_below(gu_rng *r, uint64_t n);
/* Uniform double in [0, 1). */
double gu_rng_double(gu_rng *r);

/* ---- CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320), incremental:
 * crc = gu_crc32(0, a, na); crc = gu_crc32(crc, b, nb); ... */
uint32_t gu_crc32(uint32_t crc, const void *data, size_t n);

/* ---- time */
double gu_now(void); /* monotonic seconds */

/* ---- memory: malloc that reports failure through gu_fail (returns NULL). */
void *gu_malloc(size_t bytes);
void *gu_calloc(size_t n, size_t size);

/* ---- strings / files */
/* Trims leading and trailing whitespace in place, returns s. */
char *gu_trim(char *s);
/* Reads a whole file into a NUL-terminated buffer (caller frees).  Any kind
 * of file (a pipe such as /dev/stdin too); see gu_read_regular for input
 * that must be a regular file. */
char *gu_read_file(const char *path, size_t *len_out);
/* Same for a regular file only, at most max_bytes long (0: no limit): a FIFO,
 * a device or a directory is an error at once ("<what> PATH: not a regular
 * file ...") instead of blocking or reading without end.  `what` names the
 * role in messages ("config file", "token file"); the opening never blocks. */
char *gu_read_regular(const char *path, const char *what, size_t max_bytes,
                      size_t *len_out);
/* Opens a regular file for reading without blocking on a FIFO; -1 + message
 * if it cannot be opened or is not a regular file.  *size_out: its size. */
int gu_open_regular(const char *path, const char *what, uint64_t *size_out);
int gu_file_exists(const char *path);
/* mkdir -p (existing directories are fine; every missing parent is made). */
int gu_mkdir(const char *path);
/* Takes an exclusive advisory lock on DIR/.lock (created) for the life of
 * the process (the kernel drops it when the process ends, however it ends).
 * Returns the descriptor (>= 0), or -1 + message naming the directory when
 * another process holds it. */
int gu_lock_dir(const char *dir, const char *what);
/* Removes "<path>.tmp.<pid>" files left by processes that no longer exist
 * (a SIGKILL during an atomic write); returns how many were removed. */
int gu_remove_stale_tmp(const char *path);

/* The project root: the directory holding tools/corpus/spm.py.  Looked up in
 * $GRANATTN_ROOT, then the current directory and its parents, then the
 * executable's directory and its parents.  Returns a static string, or NULL
 * with a message. */
const char *gu_project_root(void);

/* 1 if s[0..n) is valid UTF-8 (what Python's strict decoder accepts: no
 * overlong forms, surrogates or code points above U+10FFFF), else 0. */
int gu_utf8_valid(const char *s, size_t n);

/* Quotes s for /bin/sh into out (single quotes); returns -1 if too long. */
int gu_shell_quote(const char *s, char *out, size_t outlen);

#endif /* GM_UTIL_H */
