/* fuzz_tokens.c — libFuzzer target: token files (gd_parse, the code behind
 * gd_load) and the batching that consumes them.
 *
 * Input: mode byte, batch byte, then the file.  Mode bit 0 makes a version-2
 * file's CRC valid (so the fuzzer gets past the checksum); bits 1-2 pick
 * max_len (none, 8, 64, 1024).  The batch byte sets batch_tokens.  After a
 * successful load the iterator runs over an epoch and a bit, and every batch
 * is checked: ids in [0, vocab), BOS/EOS/PAD exactly where they belong.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_batch(const gd_batch *b, int vocab)
{
    for (int i = 0; i < b->B; i++) {
        int sl = b->src_len[i], tl = b->tgt_len[i];
        if (sl < 1 || sl > b->S || tl < 1 || tl > b->T)
            abort();
        for (int j = 0; j < b->S; j++) {
            int32_t v = b->src[(size_t)i * b->S + j];
            if (v < 0 || v >= vocab || (j < sl - 1 && v <= GD_EOS && v != GD_UNK) ||
                (j == sl - 1 && v != GD_EOS) || (j >= sl && v != GD_PAD))
                abort();
        }
        for (int j = 0; j < b->T; j++) {
            int32_t vi = b->tgt_in[(size_t)i * b->T + j];
            int32_t vo = b->tgt_out[(size_t)i * b->T + j];
            if (vi < 0 || vi >= vocab || vo < 0 || vo >= vocab)
                abort();
            if (j == 0 && vi != GD_BOS)
                abort();
            if (j >= tl && (vi != GD_PAD || vo != GD_PAD))
                abort();
            if (j == tl - 1 && vo != GD_EOS)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1u << 20))
        return 0;
    uint8_t mode = data[0], bt = data[1];
    size -= 2;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 2, size);
    if ((mode & 1) && size >= 20) {
        uint32_t crc = gu_crc32(gu_crc32(0, buf, 16), buf + 20, size - 20);
        memcpy(buf + 16, &crc, 4);
    }
    static const int max_lens[4] = {0, 8, 64, 1024};
    int max_len = max_lens[(mode >> 1) & 3];
    gd_corpus c;
    if (gd_parse(buf, size, "fuzz.bin", max_len, 0, &c) != 0) {
        free(buf);
        if (!gu_error()[0])
            abort();
        return 0;
    }
    free(buf);
    gd_iter it;
    gd_batch b;
    memset(&b, 0, sizeof b);
    int batch_tokens = 16 + 16 * (int)bt;
    if (gd_iter_init(&it, &c, batch_tokens, (mode >> 3) & 1, mode) == 0) {
        int nb = it.nbatch + 2;
        for (int k = 0; k < nb && k < 64; k++) {
            if (gd_iter_next(&it, &b) != 0)
                abort();
            if (b.B * (b.S > b.T ? b.S : b.T) > batch_tokens)
                abort();
            check_batch(&b, c.vocab);
        }
        gd_iter_free(&it);
    }
    gd_batch_free(&b);
    gd_free(&c);
    return 0;
}
