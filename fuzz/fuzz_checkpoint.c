/* fuzz_checkpoint.c — libFuzzer target: checkpoint loading (gk_parse, the
 * code behind gk_load) and the config text a checkpoint carries.
 *
 * Input: one mode byte, then the file.  Random bytes rarely carry valid
 * CRCs, so mode bit 0 asks the harness to make them valid (payload CRC,
 * and the header CRC last) and bit 1 also sets the payload size to the
 * file's: that lets the fuzzer reach the section table and the content
 * checks, which is where a file written by another program would go.
 * After a successful load every float and the whole config text are read
 * (ASan catches any pointer past the file), and the config is parsed and
 * checked as `granattn translate` does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config_file.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    uint8_t mode = data[0];
    size--;
    unsigned char *file = malloc(size ? size : 1);
    if (!file)
        return 0;
    memcpy(file, data + 1, size);
    if ((mode & 1) && size >= 64) {
        if (mode & 2)
            put64(file + 16, size - 64);
        put32(file + 24, gu_crc32(0, file + 64, size - 64));
        put32(file + 60, gu_crc32(0, file, 60));
    }
    gk_checkpoint ck;
    if (gk_parse(file, size, "fuzz.ckpt", 0, &ck) != 0) {
        if (!gu_error()[0])
            abort();
        return 0; /* gk_parse freed file */
    }
    volatile float sink = 0;
    for (size_t i = 0; i < ck.n_params; i++) {
        sink += ck.params[i];
        if (ck.adam_m)
            sink += ck.adam_m[i] + ck.adam_v[i];
    }
    (void)sink;
    size_t n = strlen(ck.config_text);
    (void)n;
    gcf_file f;
    gcf_defaults(&f);
    if (gcf_parse(ck.config_text, "fuzz.ckpt config", &f) == 0 && gcf_check(&f) == 0) {
        gm_config mc;
        gcf_model_config(&f, &mc);
    }
    gk_free(&ck);
    return 0;
}
