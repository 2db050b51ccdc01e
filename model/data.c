/* data.c — see data.h. */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint16_t rd_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

int gd_load(const char *path, int max_len, int vocab, gd_corpus *out)
{
    memset(out, 0, sizeof *out);
    size_t len;
    char *buf = gu_read_regular(path, "token file", 0, &len);
    if (!buf) {
        if (errno == ENOENT)
            return gu_fail("%s: no such file (run tools/prepare-data.sh to build "
                           "data/tok)", path);
        return -1;
    }
    int rc = gd_parse((const unsigned char *)buf, len, path, max_len, vocab, out);
    free(buf);
    return rc;
}

static const char *special_name(uint16_t id)
{
    return id == GD_PAD ? "PAD" : id == GD_BOS ? "BOS" : id == GD_EOS ? "EOS" : "?";
}

int gd_parse(const unsigned char *buf, size_t len, const char *path, int max_len,
             int vocab, gd_corpus *out)
{
    memset(out, 0, sizeof *out);
    int rc = -1;
    if (len < 16) {
        gu_fail("%s: truncated header (%zu bytes, need 16)", path, len);
        goto done;
    }
    if (memcmp(buf, "GATK", 4) != 0) {
        gu_fail("%s: not a token file (magic is not \"GATK\")", path);
        goto done;
    }
    uint32_t version = rd_u32(buf + 4), n_pairs = rd_u32(buf + 8);
    uint32_t file_vocab = rd_u32(buf + 12);
    if (version != 1 && version != GD_VERSION) {
        gu_fail("%s: token file version %u, this program reads versions 1 and %d "
                "(re-run tools/prepare-data.sh --force to rebuild data/tok)",
                path, version, GD_VERSION);
        goto done;
    }
    size_t hdr = version == 1 ? 16 : 20;
    if (len < hdr) {
        gu_fail("%s: truncated header (%zu bytes, need %zu)", path, len, hdr);
        goto done;
    }
    if (version >= 2) {
        /* CRC-32 of the first 16 header bytes and everything after the 20 */
        uint32_t crc = gu_crc32(gu_crc32(0, buf, 16), buf + 20, len - 20);
        if (crc != rd_u32(buf + 16)) {
            gu_fail("%s: corrupt token file (checksum mismatch: the file was "
                    "changed or cut short; re-run tools/prepare-data.sh --force)",
                    path);
            goto done;
        }
    }
    if (file_vocab < 4 || file_vocab > 65536) {
        gu_fail("%s: implausible vocab_size %u in header", path, file_vocab);
        goto done;
    }
    if (vocab > 0 && (int)file_vocab != vocab) {
        gu_fail("%s: vocab_size %u, but the model has %d", path, file_vocab, vocab);
        goto done;
    }
    if (n_pairs > (len - hdr) / 4 || n_pairs > INT_MAX) {
        gu_fail("%s: truncated (header says %u pairs, the file has only %zu bytes)",
                path, n_pairs, len);
        goto done;
    }
    /* ids take at most (len-hdr)/2 entries. */
    out->ids = gu_malloc((len - hdr) / 2 * sizeof(uint16_t) + 2);
    out->pairs = gu_malloc((size_t)n_pairs * sizeof(gd_pair) + 1);
    if (!out->ids || !out->pairs)
        goto done;
    out->vocab = (int)file_vocab;
    out->n_file = (int)n_pairs;
    size_t off = hdr, nid = 0;
    /* Two passes would make the pointers stable; instead ids are appended in
     * place and pair pointers are fixed after the loop (no realloc). */
    for (uint32_t i = 0; i < n_pairs; i++) {
        int n[2] = {0, 0};
        size_t start[2] = {0, 0};
        for (int side = 0; side < 2; side++) {
            if (off + 2 > len) {
                gu_fail("%s: truncated at pair %u of %u (%s length missing)", path,
                        i, n_pairs, side ? "target" : "source");
                goto done;
            }
            n[side] = rd_u16(buf + off);
            off += 2;
            if (off + 2 * (size_t)n[side] > len) {
                gu_fail("%s: truncated at pair %u of %u (%s ids cut short)", path, i,
                        n_pairs, side ? "target" : "source");
                goto done;
            }
            start[side] = nid;
            for (int k = 0; k < n[side]; k++) {
                uint16_t id = rd_u16(buf + off + 2 * (size_t)k);
                if (id >= file_vocab) {
                    gu_fail("%s: pair %u: %s id %u out of range (vocab %u)", path, i,
                            side ? "target" : "source", id, file_vocab);
                    goto done;
                }
                /* the trainer adds bos/eos and pads itself: one of these
                 * inside a sentence would cut it short or fail a step much
                 * later, far from this file */
                if (id == GD_PAD || id == GD_BOS || id == GD_EOS) {
                    gu_fail("%s: pair %u: %s token %d is id %u (%s), which may not "
                            "appear inside a sentence (ids carry no pad/bos/eos)",
                            path, i, side ? "target" : "source", k + 1, id,
                            special_name(id));
                    goto done;
                }
                out->ids[nid + (size_t)k] = id;
            }
            off += 2 * (size_t)n[side];
            nid += (size_t)n[side];
        }
        if (max_len > 0 && (n[0] + 1 > max_len || n[1] + 1 > max_len)) {
            out->n_dropped++;
            nid = start[0]; /* discard its ids */
            continue;
        }
        gd_pair *p = &out->pairs[out->n++];
        /* Store offsets for now; converted to pointers below. */
        p->src = (const uint16_t *)(uintptr_t)start[0];
        p->tgt = (const uint16_t *)(uintptr_t)start[1];
        p->n_src = n[0];
        p->n_tgt = n[1];
        p->index = (int)i;
        out->n_src_tok += n[0];
        out->n_tgt_tok += n[1];
    }
    if (off != len) {
        gu_fail("%s: %zu trailing bytes after the last pair (corrupt file?)", path,
                len - off);
        goto done;
    }
    for (int i = 0; i < out->n; i++) {
        out->pairs[i].src = out->ids + (uintptr_t)out->pairs[i].src;
        out->pairs[i].tgt = out->ids + (uintptr_t)out->pairs[i].tgt;
    }
    rc = 0;
done:
    if (rc != 0)
        gd_free(out);
    return rc;
}

void gd_free(gd_corpus *c)
{
    free(c->pairs);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------- batches */
void gd_batch_free(gd_batch *b)
{
    free(b->src);
    free(b->tgt_in);
    free(b->tgt_out);
    free(b->src_len);
    free(b->tgt_len);
    free(b->index);
    memset(b, 0, sizeof *b);
}

static int grow(void **p, size_t bytes)
{
    void *np = realloc(*p, bytes ? bytes : 1);
    if (!np)
        return gu_fail("out of memory (batch of %zu bytes)", bytes);
    *p = np;
    return 0;
}

int gd_batch_fill(gd_batch *b, const gd_corpus *c, const int *pair_idx, int n)
{
    int S = 0, T = 0;
    for (int k = 0; k < n; k++) {
        const gd_pair *p = &c->pairs[pair_idx[k]];
        if (p->n_src + 1 > S)
            S = p->n_src + 1;
        if (p->n_tgt + 1 > T)
            T = p->n_tgt + 1;
    }
    int need = n * (S > T ? S : T);
    if (need > b->cap_tokens) {
        if (grow((void **)&b->src, (size_t)need * sizeof(int32_t)) ||
            grow((void **)&b->tgt_in, (size_t)need * sizeof(int32_t)) ||
            grow((void **)&b->tgt_out, (size_t)need * sizeof(int32_t)))
            return -1;
        b->cap_tokens = need;
    }
    if (n > b->cap_B) {
        if (grow((void **)&b->src_len, (size_t)n * sizeof(int)) ||
            grow((void **)&b->tgt_len, (size_t)n * sizeof(int)) ||
            grow((void **)&b->index, (size_t)n * sizeof(int)))
            return -1;
        b->cap_B = n;
    }
    b->B = n;
    b->S = S;
    b->T = T;
    b->n_src_tokens = b->n_tgt_tokens = 0;
    for (int k = 0; k < n; k++) {
        const gd_pair *p = &c->pairs[pair_idx[k]];
        int32_t *s = b->src + (size_t)k * S;
        int32_t *ti = b->tgt_in + (size_t)k * T;
        int32_t *to = b->tgt_out + (size_t)k * T;
        for (int j = 0; j < S; j++)
            s[j] = j < p->n_src ? p->src[j] : j == p->n_src ? GD_EOS : GD_PAD;
        for (int j = 0; j < T; j++) {
            ti[j] = j == 0 ? GD_BOS : j <= p->n_tgt ? p->tgt[j - 1] : GD_PAD;
            to[j] = j < p->n_tgt ? p->tgt[j] : j == p->n_tgt ? GD_EOS : GD_PAD;
        }
        b->src_len[k] = p->n_src + 1;
        b->tgt_len[k] = p->n_tgt + 1;
        b->index[k] = p->index;
        b->n_src_tokens += p->n_src + 1;
        b->n_tgt_tokens += p->n_tgt + 1;
    }
    return 0;
}

/* ------------------------------------------------------------ iterator */
static const gd_corpus *sort_corpus; /* qsort has no context argument */
static const int *sort_rank;

static int pair_key_long(const gd_pair *p)
{
    return p->n_src > p->n_tgt ? p->n_src : p->n_tgt;
}

static int cmp_len(const void *a, const void *b)
{
    int ia = *(const int *)a, ib = *(const int *)b;
    const gd_pair *pa = &sort_corpus->pairs[ia], *pb = &sort_corpus->pairs[ib];
    int ka = pair_key_long(pa), kb = pair_key_long(pb);
    if (ka != kb)
        return ka < kb ? -1 : 1;
    int sa = pa->n_src + pa->n_tgt, sb = pb->n_src + pb->n_tgt;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    /* ties: the random rank drawn for this epoch (or the index) */
    int ra = sort_rank[ia], rb = sort_rank[ib];
    return (ra > rb) - (ra < rb);
}

int gd_iter_init(gd_iter *it, const gd_corpus *c, int max_tokens, int shuffle,
                 uint64_t seed)
{
    memset(it, 0, sizeof *it);
    if (c->n == 0)
        return gu_fail("no sentence pairs left to batch (empty split, or all "
                       "longer than max_len)");
    int longest = 0;
    for (int i = 0; i < c->n; i++) {
        int k = pair_key_long(&c->pairs[i]) + 1;
        if (k > longest)
            longest = k;
    }
    if (max_tokens < longest)
        return gu_fail("batch_tokens = %d is smaller than the longest pair (%d "
                       "positions); raise batch_tokens or lower max_len",
                       max_tokens, longest);
    it->c = c;
    it->max_tokens = max_tokens;
    it->shuffle = shuffle;
    it->seed = seed;
    it->order = gu_malloc((size_t)c->n * sizeof(int));
    it->bstart = gu_malloc(((size_t)c->n + 1) * sizeof(int));
    if (!it->order || !it->bstart) {
        gd_iter_free(it);
        return -1;
    }
    if (gd_iter_seek(it, 0, 0) != 0) {
        gd_iter_free(it);
        return -1;
    }
    return 0;
}

void gd_iter_free(gd_iter *it)
{
    free(it->order);
    free(it->bstart);
    memset(it, 0, sizeof *it);
}

static void shuffle_ints(int *a, int n, gu_rng *r)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)gu_rng_below(r, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static int build_epoch(gd_iter *it)
{
    const gd_corpus *c = it->c;
    int n = c->n;
    int *rank = gu_malloc((size_t)n * sizeof(int));
    if (!rank)
        return -1;
    gu_rng r;
    gu_rng_seed(&r, gu_mix(it->seed, (uint64_t)it->epoch));
    for (int i = 0; i < n; i++) {
        it->order[i] = i;
        rank[i] = i;
    }
    if (it->shuffle)
        shuffle_ints(rank, n, &r); /* random tie order among equal lengths */
    sort_corpus = c;
    sort_rank = rank;
    qsort(it->order, (size_t)n, sizeof(int), cmp_len);
    free(rank);

    /* Greedy cut: grow the batch while B * max(S, T) fits. */
    int nb = 0, start = 0, maxlen = 0;
    it->bstart[0] = 0;
    for (int k = 0; k < n; k++) {
        int len = pair_key_long(&c->pairs[it->order[k]]) + 1;
        int m = len > maxlen ? len : maxlen;
        if (k > start && (long)(k - start + 1) * m > it->max_tokens) {
            it->bstart[++nb] = k;
            start = k;
            m = len;
        }
        maxlen = m;
    }
    it->bstart[++nb] = n;
    it->nbatch = nb;

    if (it->shuffle) {
        /* Shuffle the batch order: permute (start, end) pairs. */
        int *perm = gu_malloc((size_t)nb * sizeof(int));
        int *tmp = gu_malloc((size_t)n * sizeof(int));
        int *nbst = gu_malloc(((size_t)nb + 1) * sizeof(int));
        if (!perm || !tmp || !nbst) {
            free(perm);
            free(tmp);
            free(nbst);
            return -1;
        }
        for (int b = 0; b < nb; b++)
            perm[b] = b;
        shuffle_ints(perm, nb, &r);
        int w = 0;
        for (int b = 0; b < nb; b++) {
            nbst[b] = w;
            for (int k = it->bstart[perm[b]]; k < it->bstart[perm[b] + 1]; k++)
                tmp[w++] = it->order[k];
        }
        nbst[nb] = n;
        memcpy(it->order, tmp, (size_t)n * sizeof(int));
        memcpy(it->bstart, nbst, ((size_t)nb + 1) * sizeof(int));
        free(perm);
        free(tmp);
        free(nbst);
    }
    return 0;
}

int gd_iter_seek(gd_iter *it, int epoch, int pos)
{
    if (epoch < 0 || pos < 0)
        return gu_fail("bad data position (epoch %d, batch %d)", epoch, pos);
    it->epoch = epoch;
    if (build_epoch(it) != 0)
        return -1;
    if (pos > it->nbatch)
        return gu_fail("data position batch %d is past the end of epoch %d (%d "
                       "batches): was the checkpoint made with other data or "
                       "batch settings?",
                       pos, epoch, it->nbatch);
    it->pos = pos;
    return 0;
}

int gd_iter_next(gd_iter *it, gd_batch *b)
{
    if (it->pos >= it->nbatch) {
        if (gd_iter_seek(it, it->epoch + 1, 0) != 0)
            return -1;
    }
    int s = it->bstart[it->pos], e = it->bstart[it->pos + 1];
    it->pos++;
    return gd_batch_fill(b, it->c, it->order + s, e - s);
}
