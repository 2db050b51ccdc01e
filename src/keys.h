/* keys.h — the layout of prepared keys (docs/SPEC.md §7), shared by
 * src/keys.c (build) and src/attend.c (the prepared step).  Internal. */
#ifndef GA_KEYS_H
#define GA_KEYS_H

#include "internal.h"

/* Per head h (arrays are head-major, one head's part contiguous):
 *   codes [P][dh4/4][16][4] int8   preview codes (panel layout)
 *   ksum  [16P] int32              sum of a key's codes
 *   meta  [4][16P] float           kscale, knorm, kerr, bias (ldm = 16P)
 *   kp    [P][dh][16] float        K packed with keys across lanes
 * P = ceil(N/16); lanes >= N are zeros (bias 0, never read as keys). */
struct ga_keys {
    int H, N, dh, dh4, P, ldm;
    const float *K, *V, *bias;  /* referenced: the caller's [H][N][dh], [N] */
    int8_t *codes;
    int32_t *ksum;
    float *meta;
    float *kp;
    float *maxknorm;            /* [H] largest knorm of an unpadded key */
    uint8_t *unsafe;            /* [H] 1: the bound does not apply (fallback) */
    int unpadded;               /* keys whose bias is not -inf */
    size_t bytes;               /* used by this (H, N, dh) */
    size_t cap;                 /* allocated at mem (>= bytes; ga_keys_prepare reuses it) */
    void *mem;
};

/* Offsets of head h. */
static inline const int8_t *ga_keys_codes(const ga_keys *k, int h)
{
    return k->codes + (size_t)h * k->P * k->dh4 * 16;
}
static inline const int32_t *ga_keys_ksum(const ga_keys *k, int h)
{
    return k->ksum + (size_t)h * k->ldm;
}
static inline const float *ga_keys_meta(const ga_keys *k, int h)
{
    return k->meta + (size_t)h * 4 * k->ldm;
}
static inline const float *ga_keys_kp(const ga_keys *k, int h)
{
    return k->kp + (size_t)h * k->P * k->dh * 16;
}

/* Magnitudes beyond which the bound's float arithmetic is not trusted: the
 * step falls back to the unprepared path (docs/SPEC.md §7). */
#define GA_PREP_BIG 0x1p60

/* Test hook (src/attend.c): the prepared step's pass 1 for query q of head h
 * -> shat [N], ub [N], *mlb; returns 0 (nothing written) when the row would
 * take the unprepared path. */
int ga_prep_preview(const ga_kernels *kt, const ga_keys *keys, int h, const float *q,
                    float scale, float *shat, float *ub, float *mlb);


#endif
