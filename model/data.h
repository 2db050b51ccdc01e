/* data.h — token files (data/tok/{split}.bin) and token-based batching.
 *
 * File format (tools/corpus/README.md, little-endian):
 *   char magic[4] = "GATK"; uint32 version = 2; uint32 n_pairs; uint32 vocab;
 *   uint32 crc32 (CRC-32 of header bytes 0..15 and of every byte after the
 *   20-byte header); then per pair: uint16 n_src, uint16 src[n_src],
 *   uint16 n_tgt, uint16 tgt[n_tgt].
 * Version 1 (written before the checksum) has the same layout without the
 * crc32 field (a 16-byte header) and is still read, unchecked.
 * Ids PAD (0), BOS (2) and EOS (3) may not appear inside a sentence.
 * Ids carry no bos/eos; this module adds them:
 *   source     x_1 .. x_n  EOS                      (n + 1 positions)
 *   target in  BOS y_1 .. y_m                       (m + 1 positions)
 *   target out y_1 .. y_m  EOS                      (m + 1 positions)
 * Padding uses GD_PAD (0) and is marked by the per-row lengths.
 *
 * Batching: pairs are ordered by length (the longer side first, then the
 * other side), with equal lengths in a random order, cut greedily into
 * batches whose padded size B * max(S, T) stays within `max_tokens`, and the
 * batches are shuffled.  All of it is a pure function of (seed, epoch), so
 * the iterator position is just (epoch, batch index): a checkpoint stores
 * those two numbers and resuming rebuilds the same order.
 */
#ifndef GM_DATA_H
#define GM_DATA_H

#include <stddef.h>
#include <stdint.h>

#define GD_PAD 0
#define GD_UNK 1
#define GD_BOS 2
#define GD_EOS 3

#define GD_VERSION 2 /* the version tools/corpus/spm.py writes */

typedef struct gd_pair {
    const uint16_t *src; /* n_src ids, no eos */
    const uint16_t *tgt; /* n_tgt ids, no bos/eos */
    int n_src, n_tgt;
    int index;           /* line number in the split (0-based) */
} gd_pair;

typedef struct gd_corpus {
    gd_pair *pairs;   /* kept pairs */
    int n;            /* kept pairs */
    int n_file;       /* pairs in the file */
    int n_dropped;    /* dropped by the length filter */
    int vocab;        /* vocab_size from the header */
    long n_src_tok, n_tgt_tok; /* kept tokens (without eos/bos) */
    uint16_t *ids;    /* storage */
} gd_corpus;

/* Reads a token file.  Pairs whose source or target (plus its eos/bos) is
 * longer than max_len positions are dropped; max_len <= 0 keeps everything.
 * If vocab > 0 the header's vocab_size must equal it.  Every id is checked
 * against the vocabulary.  Errors: missing file, bad magic, unknown version,
 * truncated record, id out of range (with the pair number). */
int gd_load(const char *path, int max_len, int vocab, gd_corpus *out);
/* Same on a file's contents in memory (`name` for messages); the fuzz
 * target's entry point. */
int gd_parse(const unsigned char *buf, size_t len, const char *name, int max_len,
             int vocab, gd_corpus *out);
void gd_free(gd_corpus *c);

typedef struct gd_batch {
    int B;            /* sentences */
    int S;            /* padded source positions (max n_src + 1) */
    int T;            /* padded target positions (max n_tgt + 1) */
    int32_t *src;     /* [B][S] */
    int32_t *tgt_in;  /* [B][T] */
    int32_t *tgt_out; /* [B][T] */
    int *src_len;     /* [B] positions incl. eos */
    int *tgt_len;     /* [B] positions incl. bos (== incl. eos) */
    int *index;       /* [B] line number of each pair in its split */
    long n_tgt_tokens;/* sum of tgt_len: the tokens the loss counts */
    long n_src_tokens;
    int cap_tokens;   /* allocated B*S and B*T capacity */
    int cap_B;
} gd_batch;

void gd_batch_free(gd_batch *b);
/* Fills b with the given pairs (reallocating as needed). */
int gd_batch_fill(gd_batch *b, const gd_corpus *c, const int *pair_idx, int n);

typedef struct gd_iter {
    const gd_corpus *c;
    int max_tokens;
    int shuffle;       /* 0: fixed length order, no shuffling (dev/test) */
    uint64_t seed;
    int epoch;         /* current epoch (0-based) */
    int pos;           /* next batch of this epoch */
    int *order;        /* [n] pair indices, batch by batch */
    int *bstart;       /* [nbatch + 1] */
    int nbatch;
} gd_iter;

/* max_tokens must admit the longest kept pair (a message says which limit to
 * raise otherwise). */
int gd_iter_init(gd_iter *it, const gd_corpus *c, int max_tokens, int shuffle,
                 uint64_t seed);
void gd_iter_free(gd_iter *it);
/* Positions the iterator at (epoch, pos) and rebuilds that epoch's order. */
int gd_iter_seek(gd_iter *it, int epoch, int pos);
/* Next batch; moves to the next epoch (reshuffled) at the end of one. */
int gd_iter_next(gd_iter *it, gd_batch *b);

#endif /* GM_DATA_H */
