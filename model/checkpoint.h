/* checkpoint.h — training checkpoints: atomic write, verified load.
 *
 * File layout (host byte order, which must be little-endian; an endianness
 * marker in the header makes a foreign file an error, not garbage):
 *
 *   offset  size  field
 *        0     8  magic "GACKPT\0\0"
 *        8     4  format version (GK_VERSION)
 *       12     4  endianness marker 0x01020304
 *       16     8  payload bytes
 *       24     4  CRC-32 of the payload
 *       28     4  number of sections
 *       32     8  number of model parameters
 *       40     8  training step
 *       48    12  reserved (0)
 *       60     4  CRC-32 of bytes 0..59 (the header itself)
 *       64        payload: sections, each
 *                   char tag[8]; uint64 bytes; data[bytes]; zero pad to 8
 *
 * Sections: "CONFIG" (canonical config text, config_file.h), "STATE"
 * (gk_state, binary), "PARAMS" (float[n_params]), "ADAM_M", "ADAM_V"
 * (float[n_params] each, optional: absent in a weights-only file).
 *
 * Writing goes to "<path>.tmp.<pid>", is fsync'ed, renamed over <path> and
 * the directory is fsync'ed, so a crash leaves the old or the new file, never
 * a partial one.  Loading checks, in order: file size >= header, magic,
 * version, endianness, header CRC, total size (truncated / trailing bytes),
 * payload CRC, section table, and the parameter count against the model; each
 * failure has its own message.
 */
#ifndef GM_CHECKPOINT_H
#define GM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define GK_VERSION 1

/* Training state beyond the tensors (all that --resume needs). */
typedef struct gk_state {
    int64_t step;          /* updates applied */
    int64_t epoch;         /* data iterator: epoch */
    int64_t batch_pos;     /* data iterator: next batch in that epoch */
    uint64_t rng[4];       /* training RNG (step seeds) */
    int64_t adam_t;        /* optimiser updates */
    double best_dev;       /* best dev loss so far (inf if none) */
    int64_t best_step;     /* step of best_dev */
    int64_t evals_since_best;
    double train_seconds;  /* wall time spent training so far */
    int64_t tokens_seen;   /* target tokens trained on */
    int64_t threads;       /* thread count used (results depend on it) */
    double last_dev;       /* latest dev loss (inf if none) */
    int64_t reserved[6];
} gk_state;

typedef struct gk_checkpoint {
    char *config_text;     /* NUL-terminated */
    gk_state state;
    size_t n_params;
    float *params;         /* [n_params] */
    float *adam_m, *adam_v;/* [n_params] or NULL */
    void *blob_;           /* internal: the file contents */
} gk_checkpoint;

/* Writes atomically.  adam_m/adam_v may be NULL (weights-only file). */
int gk_save(const char *path, const char *config_text, const gk_state *st,
            const float *params, const float *adam_m, const float *adam_v,
            size_t n_params);

/* Loads and verifies.  expect_params > 0: the parameter count must match.
 * The arrays point into memory owned by ck (free with gk_free). */
int gk_load(const char *path, size_t expect_params, gk_checkpoint *ck);
void gk_free(gk_checkpoint *ck);

#endif /* GM_CHECKPOINT_H */
