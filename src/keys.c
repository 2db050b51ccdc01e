/* keys.c — building prepared keys (docs/SPEC.md §7): per head and key, the
 * int8 preview codes with their scale, the norms that bound the preview
 * error, and K packed with keys across lanes.
 *
 * Per key i of head h (k = K[h][i], dh floats):
 *   a = max_d |k_d|; s = a / 127 (float); c_d = rint(k_d * (127 / a)),
 *   clamped to [-127, 127] (a == 0 or s == 0: all codes 0);
 *   knorm >= max(|k|, |s c|), kerr >= |k - s c|: sums of squares in
 *   double (products of floats and 7-bit codes are exact in double), the
 *   square root times (1 + 2^-40) (covers the double roundings for
 *   dh <= 1024) rounded up to float.
 * Padded keys (bias -inf) get codes 0, norms 0 and bias -inf.  A head whose
 * unpadded keys include a non-finite K value, a bias that is NaN or +inf, or
 * magnitudes beyond GA_PREP_BIG is marked unsafe: the step takes the
 * unprepared path there.
 * Cost: one pass over K per head (plain C, double sums): measured in the
 * harness as prep_us (docs/SPEC.md §7).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"

float ga_round_up(double x)
{
    float f = (float)x;
    if ((double)f < x)
        f = nextafterf(f, INFINITY);
    return f;
}

/* One key: codes into the panel layout, ksum, meta (kscale, knorm, kerr). */
static void prep_key(const float *k, int dh, int8_t *code0, int32_t *ksum, float *ks,
                     float *kn, float *ke)
{
    float a = 0.0f;
    for (int d = 0; d < dh; d++)
        a = ga_absmax(a, k[d]);
    const float s = a / 127.0f;
    double kk = 0.0, hh = 0.0, ee = 0.0;
    int32_t sum = 0;
    if (s > 0.0f) {
        const float inv = 127.0f / a;
        for (int d = 0; d < dh; d++) {
            float c = ga_round_small(k[d] * inv);
            c = c > 127.0f ? 127.0f : c < -127.0f ? -127.0f : c;
            code0[(size_t)(d / 4) * 64 + d % 4] = (int8_t)c;
            sum += (int32_t)c;
            const double kd = k[d], hd = (double)s * c; /* exact */
            kk += kd * kd;
            hh += hd * hd;
            ee += (kd - hd) * (kd - hd);
        }
    } else { /* a tiny (or zero) key: preview 0, the error is the key itself */
        for (int d = 0; d < dh; d++) {
            code0[(size_t)(d / 4) * 64 + d % 4] = 0;
            kk += (double)k[d] * k[d];
        }
        ee = kk;
    }
    const double slack = 1.0 + 0x1p-40;
    *ksum = sum;
    *ks = s;
    *kn = ga_round_up(sqrt(kk > hh ? kk : hh) * slack);
    *ke = ga_round_up(sqrt(ee) * slack);
}

ga_keys *ga_keys_create(const ga_kernels *kt, int H, int N, int dh, const float *K,
                        const float *V, const float *bias, ga_status *st_out)
{
    ga_status st = GA_OK;
    ga_keys *k = NULL;
    if (!kt) {
        st = ga_set_error(GA_EINVAL, "ga_keys_create: kernel table is NULL");
        goto out;
    }
    if (H < 1 || dh < 1 || dh > 1024 || N < 0) {
        st = ga_set_error(GA_EINVAL,
                          "ga_keys_create: H = %d, N = %d, dh = %d: need H >= 1, N >= 0, "
                          "1 <= dh <= 1024",
                          H, N, dh);
        goto out;
    }
    if (N > 0 && (!K || !V)) {
        st = ga_set_error(GA_EINVAL, "ga_keys_create: K and V must not be NULL when N > 0");
        goto out;
    }
    const long long P = (N + 15) / 16, dh4 = (dh + 3) / 4 * 4;
    /* the largest arrays: H*N*dh (K itself), H*P*16*dh (packed K) */
    if ((long long)H * P * 16 * dh4 > 0x7fffffffLL || (long long)H * P * 16 * 4 > 0x7fffffffLL) {
        st = ga_set_error(GA_EINVAL,
                          "ga_keys_create: H * N * dh = %d * %d * %d does not fit in an int", H,
                          N, dh);
        goto out;
    }
    k = calloc(1, sizeof *k);
    if (!k) {
        st = ga_set_error(GA_ENOMEM, "ga_keys_create: out of memory");
        goto out;
    }
    k->H = H;
    k->N = N;
    k->dh = dh;
    k->dh4 = (int)dh4;
    k->P = (int)P;
    k->ldm = (int)P * 16;
    k->K = K;
    k->V = V;
    k->bias = bias;
    const size_t ncodes = (size_t)H * P * 16 * dh4, nk = (size_t)H * P * 16;
    const size_t b_codes = (ncodes + 63) / 64 * 64, b_ksum = (nk * 4 + 63) / 64 * 64;
    const size_t b_meta = (nk * 16 + 63) / 64 * 64, b_kp = nk * dh * 4;
    const size_t b_h = ((size_t)H * 5 + 63) / 64 * 64;
    k->bytes = b_codes + b_ksum + b_meta + b_kp + b_h;
    k->mem = aligned_alloc(64, k->bytes);
    if (!k->mem) {
        st = ga_set_error(GA_ENOMEM, "ga_keys_create: cannot allocate %zu bytes", k->bytes);
        goto out;
    }
    char *cur = k->mem;
    k->codes = (int8_t *)cur;
    cur += b_codes;
    k->ksum = (int32_t *)cur;
    cur += b_ksum;
    k->meta = (float *)cur;
    cur += b_meta;
    k->kp = (float *)cur;
    cur += b_kp;
    k->maxknorm = (float *)cur;
    k->unsafe = (uint8_t *)(k->maxknorm + H);
    memset(k->codes, 0, b_codes);
    memset(k->ksum, 0, b_ksum);
    memset(k->meta, 0, b_meta);

    int bias_unsafe = 0;
    k->unpadded = N;
    if (bias)
        for (int i = 0; i < N; i++) {
            if (bias[i] == -INFINITY)
                k->unpadded--;
            else if (!(fabsf(bias[i]) <= (float)GA_PREP_BIG)) /* NaN, +inf, huge */
                bias_unsafe = 1;
        }
    const int ldm = k->ldm;
    for (int h = 0; h < H; h++) {
        const float *Kh = K ? K + (size_t)h * N * dh : NULL;
        int8_t *codes = k->codes + (size_t)h * P * 16 * dh4;
        int32_t *ksum = k->ksum + (size_t)h * ldm;
        float *meta = k->meta + (size_t)h * 4 * ldm;
        float *kp = k->kp + (size_t)h * P * 16 * dh;
        float maxkn = 0.0f;
        int unsafe = bias_unsafe;
        for (int i = 0; i < N; i++) {
            const float *row = Kh + (size_t)i * dh;
            float *col = kp + (size_t)(i / 16) * dh * 16 + i % 16;
            for (int d = 0; d < dh; d++)
                col[(size_t)d * 16] = row[d];
            const float b = bias ? bias[i] : 0.0f;
            meta[3 * (size_t)ldm + i] = b;
            if (b == -INFINITY)
                continue; /* padded: codes and norms stay 0 */
            int8_t *code0 = codes + (size_t)(i / 16) * dh4 * 16 + (size_t)(i % 16) * 4;
            float a = 0.0f;
            int finite = 1;
            for (int d = 0; d < dh; d++) {
                finite &= row[d] - row[d] == 0.0f; /* not inf, not NaN */
                a = ga_absmax(a, row[d]);
            }
            if (!finite || a > (float)GA_PREP_BIG) {
                unsafe = 1; /* the step falls back for this head; leave codes 0 */
                continue;
            }
            prep_key(row, dh, code0, ksum + i, meta + i, meta + ldm + i, meta + 2 * ldm + i);
            maxkn = meta[ldm + i] > maxkn ? meta[ldm + i] : maxkn;
        }
        for (int i = N; i < P * 16; i++) /* lanes past N: zeros */
            for (int d = 0; d < dh; d++)
                kp[(size_t)(i / 16) * dh * 16 + (size_t)d * 16 + i % 16] = 0.0f;
        k->maxknorm[h] = maxkn;
        k->unsafe[h] = (uint8_t)unsafe;
    }
out:
    if (st != GA_OK && k) {
        ga_keys_destroy(k);
        k = NULL;
    }
    if (st_out)
        *st_out = st;
    return k;
}

void ga_keys_destroy(ga_keys *keys)
{
    if (!keys)
        return;
    free(keys->mem);
    free(keys);
}

int ga_keys_N(const ga_keys *keys) { return keys ? keys->N : 0; }

size_t ga_keys_bytes(const ga_keys *keys) { return keys ? keys->bytes + sizeof *keys : 0; }
