/* preview_dots_avx512.c — preview dot products (docs/SPEC.md §7), AVX-512.
 *
 *   dot[i] = sum_{d < dh4} qc[d] * c_id   (exact integer, stored as float)
 *
 * Layout: codes are int8 panels [ceil(N/16)][dh4/4][16][4]: one group of 4
 * channels of one panel is 64 bytes, key l's 4 codes at bytes 4l..4l+3, i.e.
 * exactly one zmm whose int32 lane l is key l.  Keys across lanes: per panel
 * one zmm of 16 int32 accumulators; per group the 4 query bytes are
 * broadcast as one int32 and multiplied with the panel's 64 code bytes.
 *
 * Two paths, chosen at run time (ga_cpu_has(GA_CPU_AVX512_VNNI), probed once):
 *   _vnni  vpdpbusd (AVX512_VNNI, unsigned x signed bytes): the unsigned
 *          operand is qc + 128 (= qc ^ 0x80, in [1, 255]), so the sum is
 *          dot + 128 * ksum[i]; the kernel subtracts 128 * ksum[i] (exact:
 *          |sum| <= 255 * 127 * 1024 < 2^31, no saturation in vpdpbusd).
 *   _bw    AVX-512BW without VNNI (Skylake-X): |qc| as the unsigned operand
 *          and the codes negated (mask subtract) where qc < 0; vpmaddubsw
 *          (pair sums |q0 c0| + |q1 c1| <= 2 * 127 * 127 < 32767: never
 *          saturates), vpmaddwd with ones, vpaddd.  ksum is not read.
 * Four panels in flight (independent accumulators, one broadcast shared by
 * the four); the remaining panels one at a time with two accumulators
 * (even / odd groups).  Integer sums: bitwise equal to the reference.
 *
 * Constraints: codes values in [-127, 127] (the _bw negation and the bound
 * above), qc in [-127, 127], dh4 a multiple of 4 in [4, 1024].
 * Bytes read: codes 16 * ceil(N/16) * dh4 (the last panel whole, as the
 * contract allows), ksum 4 * 16 * ceil(N/16) (_vnni only), qc dh4.
 * Bytes written: exactly 4 * N (masked store in the last panel).
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

#include "avx512.h"

#define GA_PD_VNNI __attribute__((target("avx512vnni")))

/* The query's groups of 4 bytes as int32 (read once per call, dh4 <= 1024). */
static inline void load_groups(const int8_t *qc, int G, uint32_t *q4)
{
    for (int g = 0; g < G; g++)
        memcpy(&q4[g], qc + 4 * g, 4);
}

/* Stores the 16 dots of panel p (keys 16p .. 16p+15; only those < N). */
static inline __attribute__((always_inline)) void
store_panel(float *dot, int N, int p, __m512i acc)
{
    const int i0 = 16 * p;
    _mm512_mask_storeu_ps(dot + i0, ga_avx512_mask(N - i0), _mm512_cvtepi32_ps(acc));
}

/* ------------------------------------------------------------------ VNNI */

GA_PD_VNNI void ga_avx512_preview_dots_vnni(const int8_t *codes, const int32_t *ksum,
                                            int N, int dh4, const int8_t *qc, float *dot)
{
    if (N <= 0)
        return;
    const int G = dh4 / 4, P = (N + 15) / 16;
    const size_t ps = (size_t)G * 64; /* bytes per panel */
    uint32_t uq[256];                 /* (qc + 128) of each group, as int32 */
    load_groups(qc, G, uq);
    for (int g = 0; g < G; g++)
        uq[g] ^= 0x80808080u;

    int p = 0;
    for (; p + 4 <= P; p += 4) {
        const int8_t *c = codes + (size_t)p * ps;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (int g = 0; g < G; g++) {
            const __m512i u = _mm512_set1_epi32((int)uq[g]);
            const int8_t *cg = c + (size_t)g * 64;
            a0 = _mm512_dpbusd_epi32(a0, u, _mm512_loadu_si512(cg));
            a1 = _mm512_dpbusd_epi32(a1, u, _mm512_loadu_si512(cg + ps));
            a2 = _mm512_dpbusd_epi32(a2, u, _mm512_loadu_si512(cg + 2 * ps));
            a3 = _mm512_dpbusd_epi32(a3, u, _mm512_loadu_si512(cg + 3 * ps));
        }
        const int32_t *ks = ksum + (size_t)16 * p;
        a0 = _mm512_sub_epi32(a0, _mm512_slli_epi32(_mm512_loadu_si512(ks), 7));
        a1 = _mm512_sub_epi32(a1, _mm512_slli_epi32(_mm512_loadu_si512(ks + 16), 7));
        a2 = _mm512_sub_epi32(a2, _mm512_slli_epi32(_mm512_loadu_si512(ks + 32), 7));
        a3 = _mm512_sub_epi32(a3, _mm512_slli_epi32(_mm512_loadu_si512(ks + 48), 7));
        store_panel(dot, N, p, a0);
        store_panel(dot, N, p + 1, a1);
        store_panel(dot, N, p + 2, a2);
        store_panel(dot, N, p + 3, a3);
    }
    for (; p < P; p++) {
        const int8_t *c = codes + (size_t)p * ps;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0;
        int g = 0;
        for (; g + 2 <= G; g += 2) {
            a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32((int)uq[g]),
                                     _mm512_loadu_si512(c + (size_t)g * 64));
            a1 = _mm512_dpbusd_epi32(a1, _mm512_set1_epi32((int)uq[g + 1]),
                                     _mm512_loadu_si512(c + (size_t)g * 64 + 64));
        }
        if (g < G)
            a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32((int)uq[g]),
                                     _mm512_loadu_si512(c + (size_t)g * 64));
        a0 = _mm512_add_epi32(a0, a1);
        a0 = _mm512_sub_epi32(a0, _mm512_slli_epi32(_mm512_loadu_si512(ksum + (size_t)16 * p), 7));
        store_panel(dot, N, p, a0);
    }
}

/* ------------------------------------------------------------ AVX-512BW */

/* One group of one panel: acc += madd(maddubs(|q|, codes negated where q < 0), 1). */
static inline __attribute__((always_inline)) __m512i
bw_step(__m512i acc, __m512i absq, __mmask64 neg, const int8_t *cg, __m512i ones)
{
    __m512i c = _mm512_loadu_si512(cg);
    c = _mm512_mask_sub_epi8(c, neg, _mm512_setzero_si512(), c);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(absq, c), ones));
}

void ga_avx512_preview_dots_bw(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                               const int8_t *qc, float *dot)
{
    (void)ksum;
    if (N <= 0)
        return;
    const int G = dh4 / 4, P = (N + 15) / 16;
    const size_t ps = (size_t)G * 64;
    uint32_t aq[256];  /* |qc| of each group, as int32 */
    uint64_t ng[256];  /* byte mask of the 64-byte group: bit set where qc < 0 */
    load_groups(qc, G, aq);
    for (int g = 0; g < G; g++) {
        uint32_t a = 0, nm = 0;
        for (int k = 0; k < 4; k++) {
            int q = qc[4 * g + k];
            a |= (uint32_t)(q < 0 ? -q : q) << (8 * k);
            nm |= (uint32_t)(q < 0) << k;
        }
        aq[g] = a;
        uint64_t m = 0;
        for (int l = 0; l < 16; l++)
            m |= (uint64_t)nm << (4 * l);
        ng[g] = m;
    }
    const __m512i ones = _mm512_set1_epi16(1);

    int p = 0;
    for (; p + 4 <= P; p += 4) {
        const int8_t *c = codes + (size_t)p * ps;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (int g = 0; g < G; g++) {
            const __m512i absq = _mm512_set1_epi32((int)aq[g]);
            const __mmask64 neg = _cvtu64_mask64(ng[g]);
            const int8_t *cg = c + (size_t)g * 64;
            a0 = bw_step(a0, absq, neg, cg, ones);
            a1 = bw_step(a1, absq, neg, cg + ps, ones);
            a2 = bw_step(a2, absq, neg, cg + 2 * ps, ones);
            a3 = bw_step(a3, absq, neg, cg + 3 * ps, ones);
        }
        store_panel(dot, N, p, a0);
        store_panel(dot, N, p + 1, a1);
        store_panel(dot, N, p + 2, a2);
        store_panel(dot, N, p + 3, a3);
    }
    for (; p < P; p++) {
        const int8_t *c = codes + (size_t)p * ps;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0;
        int g = 0;
        for (; g + 2 <= G; g += 2) {
            a0 = bw_step(a0, _mm512_set1_epi32((int)aq[g]), _cvtu64_mask64(ng[g]),
                         c + (size_t)g * 64, ones);
            a1 = bw_step(a1, _mm512_set1_epi32((int)aq[g + 1]), _cvtu64_mask64(ng[g + 1]),
                         c + (size_t)g * 64 + 64, ones);
        }
        if (g < G)
            a0 = bw_step(a0, _mm512_set1_epi32((int)aq[g]), _cvtu64_mask64(ng[g]),
                         c + (size_t)g * 64, ones);
        store_panel(dot, N, p, _mm512_add_epi32(a0, a1));
    }
}

/* ------------------------------------------------------------ the entry */

void ga_avx512_preview_dots(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                            const int8_t *qc, float *dot)
{
    if (ga_cpu_has(GA_CPU_AVX512_VNNI))
        ga_avx512_preview_dots_vnni(codes, ksum, N, dh4, qc, dot);
    else
        ga_avx512_preview_dots_bw(codes, ksum, N, dh4, qc, dot);
}
