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
 * payload CRC, section table (every section inside the payload, padding
 * included, no duplicates, nothing after the last), the parameter count
 * against the file size and the model, and then the contents themselves,
 * which the checksums do not vouch for (a file written by another program
 * has valid checksums too): every weight and Adam moment finite (second
 * moments >= 0), the training state plausible (counters >= 0, adam_t <=
 * step, best_step <= step, times and dev losses not NaN, the header's step
 * equal to the state's).  Each failure has its own message naming the file.
 *
 * Writing refuses non-finite weights (so a diverged run cannot overwrite a
 * good last.ckpt with NaN), and removes "<path>.tmp.<pid>" files left by a
 * writer that no longer exists (SIGKILL mid-write).
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
    int64_t eval_pending;  /* 1: the dev evaluation due at `step` was cut short
                              (SIGINT/SIGTERM); --resume runs it first.  Was
                              reserved (0) in older files: same layout. */
    int64_t last_eval_step;/* step of the latest completed dev evaluation (0:
                              none, or a file older than this field) */
    int64_t ranks;         /* MPI ranks the batch was split across (0: a file
                              older than this field, = 1).  Was reserved (0). */
    int64_t reserved[3];
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
/* Same checks on a file's contents already in memory: `file` (size bytes,
 * from malloc) becomes ck's on success AND on failure (freed then); `name`
 * is used in messages.  The fuzz target's entry point. */
int gk_parse(unsigned char *file, size_t size, const char *name,
             size_t expect_params, gk_checkpoint *ck);
void gk_free(gk_checkpoint *ck);

#endif /* GM_CHECKPOINT_H */
