/* preview_dots_avx2.c — preview dot products (docs/SPEC.md §7), AVX2.
 *
 *   dot[i] = sum_{d < dh4} qc[d] * c_id   (exact integer, stored as float)
 *
 * Layout: codes are int8 panels [ceil(N/16)][dh4/4][16][4]: one group of 4
 * channels of one panel is 64 bytes, key l's 4 codes at bytes 4l..4l+3.
 * Keys across lanes: the 16 keys of a panel are two ymm of 8 int32
 * accumulators (keys 0-7 from the group's first 32 bytes, 8-15 from the
 * second); per group the 4 query bytes are broadcast as one int32.
 *
 * Two paths, chosen at run time (ga_cpu_has(GA_CPU_AVX_VNNI), probed once):
 *   _madd  AVX2: vpsignb puts the query's signs on the codes (negated where
 *          q < 0, zeroed where q == 0), vpmaddubsw multiplies by |q| as the
 *          unsigned operand (pair sums <= 2 * 127 * 127 < 32767: never
 *          saturates), vpmaddwd with ones widens to int32, vpaddd
 *          accumulates.  ksum is not read.
 *   _vnni  AVX-VNNI (VEX vpdpbusd ymm, Alder Lake / Sapphire Rapids and
 *          later): unsigned operand qc + 128 (= qc ^ 0x80), then
 *          - 128 * ksum[i] at the end (exact; no saturation).
 * Two panels in flight (four accumulators); a last odd panel alone with two
 * accumulators (even / odd groups).  Integer sums: bitwise equal to the
 * reference.
 *
 * Constraints: codes and qc in [-127, 127], dh4 a multiple of 4 in
 * [4, 1024].  Bytes read: codes 16 * ceil(N/16) * dh4 (the last panel whole,
 * as the contract allows), ksum 4 * 16 * ceil(N/16) (_vnni only), qc dh4.
 * Bytes written: exactly 4 * N (the last panel's dots go through a stack
 * buffer and only the first N - 16p are copied).
 * Alignment: none required (unaligned loads/stores only).
 *
 * measured (this Xeon: Sapphire Rapids class, AVX512_VNNI + AVX-VNNI; one
 * core of a shared 2-core box, taskset -c 0, release build, dh4 = 64, codes
 * 64-byte aligned, hot caches; thread CPU time, median of 15 interleaved
 * rounds, two runs; GB/s = 1e9 bytes/s of what a call touches: codes
 * 16 ceil(N/16) dh4 + ksum 64 ceil(N/16) + qc dh4 + dot 4N):
 *                  N = 256      N = 1024     N = 4096
 *   avx512_vnni    130-152      117-132      125-129
 *   avx512_bw       69-72        73-84        84-87
 *   avx2_vnni       90-93        75-95        94-96
 *   avx2_madd       54-57        52-59        56-60
 *   scalar ref     1.0-1.1      0.9-1.2      1.1-1.2
 * (the reference is a plain byte loop: the ratios, ~50x-140x, mostly say
 * how slow that loop is).  Codes whose base is NOT 64-byte aligned split
 * every 64-byte load across two cache lines: avx512_vnni drops to 94 / 62 /
 * 63 GB/s with codes at a 16-byte offset.  Four vs eight vs two panels in
 * flight (avx512_vnni): eight no clear gain, two slower at N = 256.
 */
#include <string.h>

#include "avx2.h"

#define GA_PD_AVXVNNI __attribute__((target("avxvnni")))

static inline void load_groups(const int8_t *qc, int G, uint32_t *q4)
{
    for (int g = 0; g < G; g++)
        memcpy(&q4[g], qc + 4 * g, 4);
}

/* Stores the 16 dots of panel p (keys 16p .. 16p+15; only those < N). */
static inline __attribute__((always_inline)) void
store_panel(float *dot, int N, int p, __m256i lo, __m256i hi)
{
    const int i0 = 16 * p;
    const __m256 flo = _mm256_cvtepi32_ps(lo), fhi = _mm256_cvtepi32_ps(hi);
    if (N - i0 >= 16) {
        _mm256_storeu_ps(dot + i0, flo);
        _mm256_storeu_ps(dot + i0 + 8, fhi);
    } else {
        float tmp[16];
        _mm256_storeu_ps(tmp, flo);
        _mm256_storeu_ps(tmp + 8, fhi);
        memcpy(dot + i0, tmp, sizeof(float) * (size_t)(N - i0));
    }
}

/* ------------------------------------------------------------ AVX2 madd */

static inline __attribute__((always_inline)) __m256i
madd_step(__m256i acc, __m256i absq, __m256i q, const int8_t *cg, __m256i ones)
{
    __m256i c = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)cg), q);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(absq, c), ones));
}

void ga_avx2_preview_dots_madd(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                               const int8_t *qc, float *dot)
{
    (void)ksum;
    if (N <= 0)
        return;
    const int G = dh4 / 4, P = (N + 15) / 16;
    const size_t ps = (size_t)G * 64; /* bytes per panel */
    uint32_t q4[256];
    load_groups(qc, G, q4);
    const __m256i ones = _mm256_set1_epi16(1);

    int p = 0;
    for (; p + 2 <= P; p += 2) {
        const int8_t *c = codes + (size_t)p * ps;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
        for (int g = 0; g < G; g++) {
            const __m256i q = _mm256_set1_epi32((int)q4[g]);
            const __m256i absq = _mm256_abs_epi8(q);
            const int8_t *cg = c + (size_t)g * 64;
            a0 = madd_step(a0, absq, q, cg, ones);
            a1 = madd_step(a1, absq, q, cg + 32, ones);
            b0 = madd_step(b0, absq, q, cg + ps, ones);
            b1 = madd_step(b1, absq, q, cg + ps + 32, ones);
        }
        store_panel(dot, N, p, a0, a1);
        store_panel(dot, N, p + 1, b0, b1);
    }
    if (p < P) {
        const int8_t *c = codes + (size_t)p * ps;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
        int g = 0;
        for (; g + 2 <= G; g += 2) {
            const __m256i q = _mm256_set1_epi32((int)q4[g]);
            const __m256i r = _mm256_set1_epi32((int)q4[g + 1]);
            const __m256i absq = _mm256_abs_epi8(q), absr = _mm256_abs_epi8(r);
            const int8_t *cg = c + (size_t)g * 64;
            a0 = madd_step(a0, absq, q, cg, ones);
            a1 = madd_step(a1, absq, q, cg + 32, ones);
            b0 = madd_step(b0, absr, r, cg + 64, ones);
            b1 = madd_step(b1, absr, r, cg + 96, ones);
        }
        if (g < G) {
            const __m256i q = _mm256_set1_epi32((int)q4[g]);
            const __m256i absq = _mm256_abs_epi8(q);
            const int8_t *cg = c + (size_t)g * 64;
            a0 = madd_step(a0, absq, q, cg, ones);
            a1 = madd_step(a1, absq, q, cg + 32, ones);
        }
        store_panel(dot, N, p, _mm256_add_epi32(a0, b0), _mm256_add_epi32(a1, b1));
    }
}

/* ------------------------------------------------------------ AVX-VNNI */

GA_PD_AVXVNNI void ga_avx2_preview_dots_vnni(const int8_t *codes, const int32_t *ksum,
                                             int N, int dh4, const int8_t *qc, float *dot)
{
    if (N <= 0)
        return;
    const int G = dh4 / 4, P = (N + 15) / 16;
    const size_t ps = (size_t)G * 64;
    uint32_t uq[256]; /* (qc + 128) of each group */
    load_groups(qc, G, uq);
    for (int g = 0; g < G; g++)
        uq[g] ^= 0x80808080u;

    int p = 0;
    for (; p + 2 <= P; p += 2) {
        const int8_t *c = codes + (size_t)p * ps;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
        for (int g = 0; g < G; g++) {
            const __m256i u = _mm256_set1_epi32((int)uq[g]);
            const int8_t *cg = c + (size_t)g * 64;
            a0 = _mm256_dpbusd_avx_epi32(a0, u, _mm256_loadu_si256((const __m256i *)cg));
            a1 = _mm256_dpbusd_avx_epi32(a1, u, _mm256_loadu_si256((const __m256i *)(cg + 32)));
            b0 = _mm256_dpbusd_avx_epi32(b0, u, _mm256_loadu_si256((const __m256i *)(cg + ps)));
            b1 = _mm256_dpbusd_avx_epi32(b1, u,
                                         _mm256_loadu_si256((const __m256i *)(cg + ps + 32)));
        }
        const int32_t *ks = ksum + (size_t)16 * p;
        a0 = _mm256_sub_epi32(a0, _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)ks), 7));
        a1 = _mm256_sub_epi32(a1,
                              _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(ks + 8)), 7));
        b0 = _mm256_sub_epi32(b0,
                              _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(ks + 16)), 7));
        b1 = _mm256_sub_epi32(b1,
                              _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(ks + 24)), 7));
        store_panel(dot, N, p, a0, a1);
        store_panel(dot, N, p + 1, b0, b1);
    }
    if (p < P) {
        const int8_t *c = codes + (size_t)p * ps;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
        int g = 0;
        for (; g + 2 <= G; g += 2) {
            const __m256i u = _mm256_set1_epi32((int)uq[g]);
            const __m256i v = _mm256_set1_epi32((int)uq[g + 1]);
            const int8_t *cg = c + (size_t)g * 64;
            a0 = _mm256_dpbusd_avx_epi32(a0, u, _mm256_loadu_si256((const __m256i *)cg));
            a1 = _mm256_dpbusd_avx_epi32(a1, u, _mm256_loadu_si256((const __m256i *)(cg + 32)));
            b0 = _mm256_dpbusd_avx_epi32(b0, v, _mm256_loadu_si256((const __m256i *)(cg + 64)));
            b1 = _mm256_dpbusd_avx_epi32(b1, v, _mm256_loadu_si256((const __m256i *)(cg + 96)));
        }
        if (g < G) {
            const __m256i u = _mm256_set1_epi32((int)uq[g]);
            const int8_t *cg = c + (size_t)g * 64;
            a0 = _mm256_dpbusd_avx_epi32(a0, u, _mm256_loadu_si256((const __m256i *)cg));
            a1 = _mm256_dpbusd_avx_epi32(a1, u, _mm256_loadu_si256((const __m256i *)(cg + 32)));
        }
        const int32_t *ks = ksum + (size_t)16 * p;
        a0 = _mm256_sub_epi32(_mm256_add_epi32(a0, b0),
                              _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)ks), 7));
        a1 = _mm256_sub_epi32(_mm256_add_epi32(a1, b1),
                              _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(ks + 8)), 7));
        store_panel(dot, N, p, a0, a1);
    }
}

/* ------------------------------------------------------------ the entry */

void ga_avx2_preview_dots(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                          const int8_t *qc, float *dot)
{
    if (ga_cpu_has(GA_CPU_AVX_VNNI))
        ga_avx2_preview_dots_vnni(codes, ksum, N, dh4, qc, dot);
    else
        ga_avx2_preview_dots_madd(codes, ksum, N, dh4, qc, dot);
}
