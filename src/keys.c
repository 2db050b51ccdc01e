/* keys.c — building prepared keys (docs/SPEC.md §7): per head and key, the
 * int8 preview codes with their scale, the norms that bound the preview
 * error, and K packed with keys across lanes.
 *
 * Per head: the table's quantize_rows (codes in the panel layout, kscale,
 * ksum, knorm >= max(|k|, |s c|), kerr >= |k - s c|; the bound's derivation
 * is in ref/quantize_rows_ref.c), then the bias row of meta and K packed
 * with keys across lanes.  Padded keys (bias -inf) get norms 0 and bias
 * -inf (their codes do not matter: the preview gives them -inf).  A head
 * whose unpadded keys include a row without a bound (non-finite, or scaled
 * below 2^-120) or a bias that is NaN, +inf or beyond GA_PREP_BIG is marked
 * unsafe: the step takes the unprepared path there.
 * Cost: one quantize_rows pass and one transposing copy of K per head
 * (measured in the harness as prep_us).  H 4, dh 64, AVX-512, one core of a
 * shared box (median of 5 calls after the first): N 1024 0.9-1.2 ms, N 4096
 * 3.5-5.5 ms, about half of it page faults of the fresh allocation; with
 * the allocation's pages already mapped (malloc reusing them) 0.3 ms and
 * 1.6 ms, 3-5 dense decode steps of the same shape.  ga_keys_prepare builds
 * into the memory of keys made before (what a decoder does across
 * sentences): no page faults.  AMD EPYC (Zen 4) VM, AVX-512, H 4, dh 64,
 * hot: N 256 58 us reused vs 245 us fresh, N 16 384 5.6 ms vs 17 ms; the
 * quantisation is about 60 % of the rest (quantize_rows N 4096: 156 us a
 * head, ~38 ns a row), the transposing copy the other 40 %.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"

/* EINVAL + message unless (kt, H, N, dh, K, V) can be prepared (fn: the
 * caller's name for the message). */
static ga_status keys_check(const char *fn, const ga_kernels *kt, int H, int N, int dh,
                            const float *K, const float *V)
{
    if (!kt)
        return ga_set_error(GA_EINVAL, "%s: kernel table is NULL", fn);
    if (H < 1 || dh < 1 || dh > 1024 || N < 0)
        return ga_set_error(GA_EINVAL,
                            "%s: H = %d, N = %d, dh = %d: need H >= 1, N >= 0, "
                            "1 <= dh <= 1024",
                            fn, H, N, dh);
    if (N > 0 && (!K || !V))
        return ga_set_error(GA_EINVAL, "%s: K and V must not be NULL when N > 0", fn);
    const long long P = (N + 15) / 16, dh4 = (dh + 3) / 4 * 4;
    /* the largest arrays: H*N*dh (K itself), H*P*16*dh (packed K) */
    if ((long long)H * P * 16 * dh4 > 0x7fffffffLL || (long long)H * P * 16 * 4 > 0x7fffffffLL)
        return ga_set_error(GA_EINVAL, "%s: H * N * dh = %d * %d * %d does not fit in an int",
                            fn, H, N, dh);
    return GA_OK;
}

/* The owned block for (H, N, dh): codes | ksum | meta | kp | maxknorm, unsafe,
 * each part 64-byte aligned; sets k's sizes and, with mem, its pointers. */
static size_t keys_layout(ga_keys *k, int H, int N, int dh, char *mem)
{
    const size_t P = ((size_t)N + 15) / 16, dh4 = ((size_t)dh + 3) / 4 * 4;
    const size_t ncodes = (size_t)H * P * 16 * dh4, nk = (size_t)H * P * 16;
    const size_t b_codes = (ncodes + 63) / 64 * 64, b_ksum = (nk * 4 + 63) / 64 * 64;
    const size_t b_meta = (nk * 16 + 63) / 64 * 64, b_kp = nk * dh * 4;
    const size_t b_h = ((size_t)H * 5 + 63) / 64 * 64;
    k->H = H;
    k->N = N;
    k->dh = dh;
    k->dh4 = (int)dh4;
    k->P = (int)P;
    k->ldm = (int)P * 16;
    k->bytes = b_codes + b_ksum + b_meta + b_kp + b_h;
    if (mem) {
        k->codes = (int8_t *)mem;
        k->ksum = (int32_t *)(mem += b_codes);
        k->meta = (float *)(mem += b_ksum);
        k->kp = (float *)(mem += b_meta);
        k->maxknorm = (float *)(mem += b_kp);
        k->unsafe = (uint8_t *)(k->maxknorm + H);
    }
    return k->bytes;
}

/* Fills the laid-out keys from K, V [H][N][dh] and bias [N] (or NULL). */
static void keys_fill(ga_keys *k, const ga_kernels *kt, const float *K, const float *V,
                      const float *bias)
{
    const int H = k->H, N = k->N, dh = k->dh, dh4 = k->dh4, P = k->P, ldm = k->ldm;
    k->K = K;
    k->V = V;
    k->bias = bias;
    int bias_unsafe = 0;
    k->unpadded = N;
    if (bias)
        for (int i = 0; i < N; i++) {
            if (bias[i] == -INFINITY)
                k->unpadded--;
            else if (!(fabsf(bias[i]) <= (float)GA_PREP_BIG)) /* NaN, +inf, huge */
                bias_unsafe = 1;
        }
    for (int h = 0; h < H; h++) {
        const float *Kh = K ? K + (size_t)h * N * dh : NULL;
        int8_t *codes = k->codes + (size_t)h * P * 16 * dh4;
        int32_t *ksum = k->ksum + (size_t)h * ldm;
        float *meta = k->meta + (size_t)h * 4 * ldm;
        float *kp = k->kp + (size_t)h * P * 16 * dh;
        float maxkn = 0.0f;
        int unsafe = bias_unsafe;
        if (N > 0) /* codes, kscale, ksum, knorm, kerr of every key */
            kt->quantize_rows(Kh, N, dh, dh, dh4, 16, codes, meta, ksum, meta + ldm,
                              meta + 2 * (size_t)ldm);
        /* lanes N..16P-1 of the last panel: zeros (the memory may hold an
         * earlier source's keys) */
        for (int r = N; r < 16 * P; r++) {
            int8_t *c = codes + (size_t)(r / 16) * dh4 * 16 + (size_t)(r % 16) * 4;
            for (int d4 = 0; d4 < dh4; d4 += 4)
                memset(c + (size_t)d4 * 16, 0, 4);
            ksum[r] = 0;
            for (int j = 0; j < 4; j++)
                meta[(size_t)j * ldm + r] = 0.0f;
        }
        for (int i = 0; i < N; i++) {
            const float b = bias ? bias[i] : 0.0f;
            meta[3 * (size_t)ldm + i] = b;
            if (b == -INFINITY) { /* padded: never a candidate, whatever its row holds */
                meta[ldm + i] = meta[2 * (size_t)ldm + i] = 0.0f;
                continue;
            }
            const float kn = meta[ldm + i];
            if (kn == INFINITY) /* a non-finite (or subnormal-scaled) row: no bound */
                unsafe = 1;
            else
                maxkn = kn > maxkn ? kn : maxkn;
        }
        /* packed K: Kp[p][d][l] = K[16p + l][d], lanes past N 0.  Full
         * panels go in 4x4 blocks (4 rows x 4 channels: GCC turns each into
         * SSE2 unpacks, ~2x the element-wise copy). */
        for (int p = 0; p < P; p++) {
            float *panel = kp + (size_t)p * dh * 16;
            const int l1 = N - 16 * p < 16 ? N - 16 * p : 16;
            if (l1 == 16) {
                const float *rows = Kh + (size_t)16 * p * dh;
                int d = 0;
                for (; d + 4 <= dh; d += 4)
                    for (int l = 0; l < 16; l += 4) {
                        float t[4][4];
                        for (int i = 0; i < 4; i++)
                            for (int j = 0; j < 4; j++)
                                t[i][j] = rows[(size_t)(l + i) * dh + d + j];
                        for (int j = 0; j < 4; j++)
                            for (int i = 0; i < 4; i++)
                                panel[(size_t)(d + j) * 16 + l + i] = t[i][j];
                    }
                for (; d < dh; d++)
                    for (int l = 0; l < 16; l++)
                        panel[(size_t)d * 16 + l] = rows[(size_t)l * dh + d];
                continue;
            }
            for (int l = 0; l < l1; l++) {
                const float *row = Kh + (size_t)(16 * p + l) * dh;
                for (int d = 0; d < dh; d++)
                    panel[(size_t)d * 16 + l] = row[d];
            }
            for (int l = l1; l < 16; l++)
                for (int d = 0; d < dh; d++)
                    panel[(size_t)d * 16 + l] = 0.0f;
        }
        k->maxknorm[h] = maxkn;
        k->unsafe[h] = (uint8_t)unsafe;
    }
}

/* ga_keys_prepare, with fn naming the caller in messages. */
static ga_status keys_prepare(const char *fn, ga_keys *keys, const ga_kernels *kt, int H, int N,
                              int dh, const float *K, const float *V, const float *bias)
{
    if (!keys)
        return ga_set_error(GA_EINVAL, "%s: keys is NULL", fn);
    ga_status st = keys_check(fn, kt, H, N, dh, K, V);
    if (st != GA_OK)
        return st;
    ga_keys lay;
    const size_t need = keys_layout(&lay, H, N, dh, NULL);
    if (need > keys->cap) { /* grow; on failure the keys stay as they were */
        void *mem = aligned_alloc(64, need);
        if (!mem)
            return ga_set_error(GA_ENOMEM, "%s: cannot allocate %zu bytes", fn, need);
        free(keys->mem);
        keys->mem = mem;
        keys->cap = need;
    }
    keys_layout(keys, H, N, dh, keys->mem);
    keys_fill(keys, kt, K, V, bias);
    return GA_OK;
}

ga_status ga_keys_prepare(ga_keys *keys, const ga_kernels *kt, int H, int N, int dh,
                          const float *K, const float *V, const float *bias)
{
    return keys_prepare("ga_keys_prepare", keys, kt, H, N, dh, K, V, bias);
}

ga_keys *ga_keys_create(const ga_kernels *kt, int H, int N, int dh, const float *K,
                        const float *V, const float *bias, ga_status *st_out)
{
    ga_status st = keys_check("ga_keys_create", kt, H, N, dh, K, V);
    ga_keys *k = NULL;
    if (st == GA_OK) {
        k = calloc(1, sizeof *k);
        if (!k)
            st = ga_set_error(GA_ENOMEM, "ga_keys_create: out of memory");
    }
    if (st == GA_OK) {
        st = keys_prepare("ga_keys_create", k, kt, H, N, dh, K, V, bias);
        if (st != GA_OK) {
            ga_keys_destroy(k);
            k = NULL;
        }
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

size_t ga_keys_bytes(const ga_keys *keys) { return keys ? keys->cap + sizeof *keys : 0; }
