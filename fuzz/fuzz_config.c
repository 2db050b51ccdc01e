/* fuzz_config.c — libFuzzer target: the config parser and --set overrides.
 *
 * Input: one mode byte, then text.
 *   mode even: the text is a config file's contents (gcf_parse_buf: NUL
 *              bytes, BOM, any line; include is refused in memory);
 *   mode odd:  the text is a list of `--set` assignments separated by NUL
 *              bytes (so values may hold newlines, tabs, '#', ';').
 * Property checked beyond "no crash / sanitizer report": whatever was
 * accepted must survive the trip through the canonical text that
 * checkpoints store: gcf_to_string -> gcf_parse -> gcf_to_string gives the
 * same text, and gcf_check gives the same verdict.  A failure aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    uint8_t mode = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    gcf_file f;
    gcf_defaults(&f);
    int ok = 0;
    if (!(mode & 1)) {
        ok = gcf_parse_buf(text, len, "fuzz.ini", &f) == 0;
    } else {
        char *buf = malloc(len + 1);
        if (!buf)
            return 0;
        memcpy(buf, text, len);
        buf[len] = '\0';
        ok = 1;
        for (size_t i = 0; i <= len && ok;) {
            size_t n = strlen(buf + i);
            ok = gcf_set(&f, buf + i) == 0;
            i += n + 1;
        }
        free(buf);
    }
    if (!ok) {
        if (!gu_error()[0]) {
            fprintf(stderr, "fuzz_config: failure without a message\n");
            abort();
        }
        return 0;
    }
    int check1 = gcf_check(&f);
    char *t1 = gcf_to_string(&f);
    if (!t1)
        abort();
    gcf_file g;
    gcf_defaults(&g);
    if (gcf_parse(t1, "canonical", &g) != 0) {
        fprintf(stderr, "fuzz_config: accepted values do not read back: %s\n---\n%s",
                gu_error(), t1);
        abort();
    }
    char *t2 = gcf_to_string(&g);
    if (!t2 || strcmp(t1, t2) != 0) {
        fprintf(stderr, "fuzz_config: canonical text changes on a round trip\n---\n%s"
                        "---\n%s",
                t1, t2 ? t2 : "(null)");
        abort();
    }
    if ((gcf_check(&g) == 0) != (check1 == 0)) {
        fprintf(stderr, "fuzz_config: gcf_check verdict changes on a round trip\n");
        abort();
    }
    if (check1 == 0) {
        gm_config mc;
        if (gcf_model_config(&f, &mc) != 0)
            abort(); /* gcf_check already built it */
    }
    free(t1);
    free(t2);
    return 0;
}
