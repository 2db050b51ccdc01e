/* fuzz_api.c — libFuzzer target: the public C API's checked entry points
 * (granattn.h layer 2): ga_isa_from_name, ga_place_from_name,
 * ga_kernels_for, ga_config_check, ga_theta_from_tau and ga_attend.
 *
 * Input layout (missing bytes read as 0):
 *   [0..15]  a name tried as ISA and as placement (NUL-terminated there)
 *   [16]     isa value (may be out of range)    [17] H   [18] dh   [19] g
 *   [20]     L   [21] mode   [22] flags (dense, pointer NULLs, kernels)
 *   [23] N   [24] T   [25] ldp - N
 *   [26..57] tau[8] as raw floats (NaN, inf, negative ... included)
 *   rest     floats that fill the tensors (cycled)
 * Sizes are small signed values (-2..13 and so on) so that invalid ones are
 * common and valid calls stay fast; buffers are allocated exactly as the
 * header documents for the requested shape, so an out-of-bounds access by
 * the library is an ASan report.  A checked entry point must return a
 * status (and a message when it is not GA_OK), never crash.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "granattn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t byte_at(const uint8_t *d, size_t n, size_t i) { return i < n ? d[i] : 0; }

static float *tensor(size_t count, const uint8_t *src, size_t nsrc)
{
    float *x = malloc((count ? count : 1) * sizeof(float));
    if (!x)
        abort();
    for (size_t i = 0; i < count; i++) {
        if (nsrc >= 4) {
            size_t o = (i * 4) % (nsrc - nsrc % 4);
            memcpy(&x[i], src + o, 4);
        } else {
            x[i] = (float)((int)(i % 7) - 3) * 0.25f;
        }
    }
    return x;
}

static size_t nn(int v) { return v > 0 ? (size_t)v : 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[17];
    for (int i = 0; i < 16; i++)
        name[i] = (char)byte_at(data, size, (size_t)i);
    name[16] = '\0';
    ga_isa isa_out;
    if (ga_isa_from_name(name, &isa_out) == GA_OK && ga_isa_name(isa_out)[0] == 'i')
        abort();
    ga_place pl;
    (void)ga_place_from_name(name, &pl);
    (void)ga_isa_from_name(NULL, &isa_out);
    (void)ga_place_from_name(NULL, &pl);

    int isa_v = (int8_t)byte_at(data, size, 16);
    const ga_kernels *kt = ga_kernels_for((ga_isa)isa_v);
    if (!kt && !ga_last_error()[0])
        abort();
    (void)ga_isa_unsupported_reason((ga_isa)isa_v);
    (void)ga_isa_name((ga_isa)isa_v);

    ga_config cfg;
    ga_config_default(&cfg);
    if (ga_config_check(&cfg) != GA_OK)
        abort();
    (void)ga_config_check(NULL);
    cfg.H = (int)(byte_at(data, size, 17) % 8) - 1;      /* -1..6 */
    cfg.dh = (int)(byte_at(data, size, 18) % 20) - 2;    /* -2..17 */
    cfg.g = (int)(byte_at(data, size, 19) % 12) - 2;     /* -2..9 */
    cfg.L = (int)(byte_at(data, size, 20) % 12) - 1;     /* -1..10 */
    cfg.mode = (ga_norm)((int)(byte_at(data, size, 21) % 4) - 1);
    uint8_t flags = byte_at(data, size, 22);
    cfg.dense = flags & 1;
    for (int l = 0; l < GA_MAX_LEVELS; l++) {
        if (size >= 26 + 4 * (size_t)(l + 1))
            memcpy(&cfg.tau[l], data + 26 + 4 * l, 4);
        else
            cfg.tau[l] = 0.0f;
    }
    int N = (int)(byte_at(data, size, 23) % 20) - 2;     /* -2..17 */
    int T = (int)(byte_at(data, size, 24) % 8) - 1;      /* -1..6 */
    int ldp = N + (int)(byte_at(data, size, 25) % 5) - 1;
    ga_status st = ga_config_check(&cfg);
    if (st != GA_OK && !ga_last_error()[0])
        abort();
    if (st == GA_OK) {
        float theta[GA_MAX_LEVELS];
        ga_theta_from_tau(&cfg, theta);
        for (int l = 0; l < GA_MAX_LEVELS; l++)
            if (!isfinite(theta[l]))
                abort();
    }
    if (!kt)
        kt = (flags & 2) ? ga_kernels_ref() : ga_kernels_default();
    if (!kt)
        return 0;

    const uint8_t *fsrc = size > 58 ? data + 58 : NULL;
    size_t nsrc = size > 58 ? size - 58 : 0;
    size_t H = nn(cfg.H), dh = nn(cfg.dh), g = nn(cfg.g), L = nn(cfg.L);
    size_t n = nn(N), t = nn(T), lp = nn(ldp);
    if (L > GA_MAX_LEVELS)
        L = GA_MAX_LEVELS;
    float *Q = tensor(t * H * dh, fsrc, nsrc);
    float *K = tensor(H * n * dh, fsrc, nsrc);
    float *V = tensor(H * n * dh, fsrc, nsrc);
    float *bias = tensor(n, fsrc, nsrc);
    float *P = tensor(g * (lp > n ? lp : n), fsrc, nsrc);
    float *R = tensor(t * g, fsrc, nsrc);
    float *W2 = tensor(L * g, fsrc, nsrc);
    float *b2 = tensor(L, fsrc, nsrc);
    float *C = tensor(t * H * dh, NULL, 0);
    int *kept = malloc((t * H ? t * H : 1) * sizeof(int));
    uint8_t *levels = malloc(t * n ? t * n : 1);
    if (!kept || !levels)
        abort();
    st = ga_attend(kt, NULL, &cfg, N, T, (flags & 4) ? NULL : Q, (flags & 8) ? NULL : K,
                   (flags & 8) ? NULL : V, (flags & 16) ? NULL : bias,
                   (flags & 32) ? NULL : P, ldp, (flags & 64) ? NULL : R,
                   (flags & 128) ? NULL : W2, b2, (flags & 4) ? NULL : C,
                   (flags & 16) ? NULL : kept, (flags & 32) ? NULL : levels);
    if (st != GA_OK && !ga_last_error()[0])
        abort();
    if (st == GA_OK && T > 0 && (flags & 16) == 0)
        for (size_t i = 0; i < t * H; i++)
            if (kept[i] < 0 || (size_t)kept[i] > n)
                abort();
    (void)ga_attend(NULL, NULL, &cfg, N, T, Q, K, V, bias, P, ldp, R, W2, b2, C, kept,
                    levels);
    (void)ga_attend(kt, NULL, NULL, N, T, Q, K, V, bias, P, ldp, R, W2, b2, C, kept,
                    levels);
    free(Q);
    free(K);
    free(V);
    free(bias);
    free(P);
    free(R);
    free(W2);
    free(b2);
    free(C);
    free(kept);
    free(levels);
    return 0;
}
