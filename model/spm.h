/* spm.h — SentencePiece in process: a C interface to Debian's
 * libsentencepiece (C++ sentencepiece::SentencePieceProcessor), wrapped by
 * spm_shim.cc, the only C++ file of the `granattn` executable; and the
 * file-level encode / decode of tools/corpus/spm.py built on it (spm.c).
 *
 * Built with -Dsentencepiece=enabled|auto when the library is found
 * (GM_HAVE_SENTENCEPIECE); otherwise gm_spm_load fails ("built without
 * libsentencepiece") and run_spm (cli_common.c) spawns tools/corpus/spm.py
 * as before.  Only the executable links the library, never libgranattn or
 * libgmodel.
 *
 * Same ids and text as spm.py (tools/corpus/spm.py encode|decode, Python
 * module sentencepiece over the same library): encode = Encode() of the
 * line's bytes, no bos/eos; decode = Decode() of the ids.  Errors: 0 / -1
 * (or NULL) with the message in gu_error() (util.h); no C++ exception ever
 * reaches the C side.  A gm_spm holds scratch buffers: one thread at a time
 * (the CLI segments text on its main thread); the cache is not
 * thread-safe either.
 */
#ifndef GM_SPM_H
#define GM_SPM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gm_spm gm_spm;

/* 1 when this build links libsentencepiece (text is segmented in process),
 * 0 when it spawns tools/corpus/spm.py. */
int gm_spm_in_process(void);

/* Loads a model file (spm.model); NULL + message. */
gm_spm *gm_spm_load(const char *path);
void gm_spm_free(gm_spm *sp);
/* Number of pieces (the vocabulary size). */
int gm_spm_vocab(const gm_spm *sp);

/* Encodes text[0..len) (UTF-8; the caller checks) into *ids, a malloc'd
 * array of *cap elements grown as needed (*ids NULL, *cap 0 at first; reused
 * across calls); *n := number of ids.  No bos/eos.  0 / -1 + message. */
int gm_spm_encode(gm_spm *sp, const char *text, size_t len, int32_t **ids, size_t *cap,
                  size_t *n);

/* Decodes ids[0..n) (each in [0, vocab); the caller drops pad/bos/eos) into
 * a malloc'd NUL-terminated string *text_out of *len_out bytes (the caller
 * frees; the text may hold NUL bytes only if an id decodes to one).
 * 0 / -1 + message. */
int gm_spm_decode(gm_spm *sp, const int32_t *ids, size_t n, char **text_out, size_t *len_out);

/* ---- spm.c: the line files of tools/corpus/spm.py, in process ---- */

/* The model of `path`, loaded on first use and kept for the process (one
 * cache entry per path).  NULL + message. */
gm_spm *gm_spm_cached(const char *path);

/* spm.py encode: lines of text (split on "\n" only; a last line without
 * "\n" counts; "\r" and other bytes are text) -> one line of space-separated
 * ids per line, no bos/eos.  A line that is not UTF-8 gives an empty line and
 * a message "NAME:K: not valid UTF-8; encoded as an empty line" on `warn`
 * (NULL: none), like spm.py; *n_bad counts them (n_bad may be NULL).  The
 * output is complete even then.  Returns 0; 1 + message naming the first
 * such line when there was one; -1 + message on an error of the library
 * (the lines before it are written). */
int gm_spm_encode_stream(gm_spm *sp, const char *data, size_t len, const char *name, FILE *out,
                         FILE *warn, int *n_bad);

/* spm.py decode: lines of space-separated ids -> one line of text each; ids
 * from the first eos (3) on are dropped, pad (0) and bos (2) too.  An id
 * outside [0, vocab) or a token that is not a decimal integer fails with
 * "NAME:K: ..." (the lines before it are written).  0 / -1 + message. */
int gm_spm_decode_stream(gm_spm *sp, const char *data, size_t len, const char *name, FILE *out);

/* File to file (what run_spm does in process): what = "encode" or "decode".
 * Encode with a non-UTF-8 line: the output is written, then -1 + message. */
int gm_spm_file(const char *model_path, const char *what, const char *in_path,
                const char *out_path);

#ifdef __cplusplus
}
#endif

#endif /* GM_SPM_H */
