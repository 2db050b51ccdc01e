/* avx2.h — private header of the AVX2 + FMA variant (kernels/avx2/).
 *
 * Inline helpers shared by the hand-written AVX2 kernels (threshold,
 * threshold_backward, gpn_levels, gpn_probs, gpn_backward: their algorithm
 * is specific to the ISA): tail masks, masked loads/stores that never touch
 * memory past the end, the level loads/stores, the horizontal sum and the
 * GPN logits of 16 keys.  The streaming kernels are generic
 * (kernels/simd/, against simd_avx2.h); simd.h declares every ga_avx2_<op>.
 * Every file of this directory is compiled with -mavx2 -mfma.
 */
#ifndef GA_AVX2_H
#define GA_AVX2_H

#include <immintrin.h>

#include "simd.h" /* GA_SIMD_ISA = 1: declares ga_avx2_<op> for every kernel */

/* The compress table of threshold and preview_select (pack_avx2.c):
 * ga_avx2_pack[mask] = the set lanes of mask first; call ga_avx2_pack_init()
 * once before reading it (thread-safe, idempotent). */
extern uint8_t ga_avx2_pack[256][8];
void ga_avx2_pack_init(void);

/* ---- helpers ---- */

/* Forces inlining where a constant argument (e.g. L) must specialise the body. */
#define GA_AVX2_INLINE static inline __attribute__((always_inline))

/* Lane mask with lanes [0, n) set (n <= 0: none, n >= 8: all). */
static inline __m256i ga_avx2_tail_mask(int n)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
}

/* Loads p[0..n) (n in [0, 8]) with zeros in lanes >= n; reads nothing past
 * p[n-1] (masked-off lanes never fault). */
static inline __m256 ga_avx2_load_tail(const float *p, int n)
{
    return _mm256_maskload_ps(p, ga_avx2_tail_mask(n));
}

/* Stores lanes [0, n) of v to p[0..n); writes nothing else. */
static inline void ga_avx2_store_tail(float *p, int n, __m256 v)
{
    _mm256_maskstore_ps(p, ga_avx2_tail_mask(n), v);
}

/* Loads 8 level bytes (n in [0, 8] valid, rest 0) widened to int32 lanes. */
static inline __m256i ga_avx2_load_levels(const uint8_t *lv, int n)
{
    if (n >= 8)
        return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)lv));
    uint8_t tmp[8] = {0};
    for (int k = 0; k < n; k++)
        tmp[k] = lv[k];
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)tmp));
}

/* Sum of the 8 lanes: ((0+4)+(2+6)) + ((1+5)+(3+7)). */
static inline float ga_avx2_hsum(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* ---- GPN helpers (gpn_levels, gpn_probs): lanes run across 8 keys ---- */

/* Logits of the 16 keys at P + i: z[l] holds keys 0-7, z[8 + l] keys 8-15
 * (lanes of keys >= n read P as 0; nothing past key n - 1 is read).
 * 16 keys = one 64-byte line of each P row per step: with 8 keys per step
 * and ldp a multiple of 1024, the g rows of a step fall into one L1 set and
 * evict each other before the second half of each line is used. */
GA_AVX2_INLINE void ga_avx2_gpn_logits16(const float *P, size_t ldp,
                                         const float *r, const float *W2,
                                         const float *b2, int g, const int L,
                                         int n, __m256 z[16])
{
    const __m256i mask0 = ga_avx2_tail_mask(n);
    const __m256i mask1 = ga_avx2_tail_mask(n - 8);
    const __m256 zero = _mm256_setzero_ps();
    for (int l = 0; l < L; l++) {
        z[l] = _mm256_set1_ps(b2[l]);
        z[8 + l] = z[l];
    }
    for (int j = 0; j < g; j++) {
        const float *row = P + (size_t)j * ldp;
        __m256 x0, x1;
        if (n == 16) {
            x0 = _mm256_loadu_ps(row);
            x1 = _mm256_loadu_ps(row + 8);
        } else {
            x0 = _mm256_maskload_ps(row, mask0);
            x1 = _mm256_maskload_ps(row + 8, mask1);
        }
        const __m256 rj = _mm256_set1_ps(r[j]);
        __m256 u0 = _mm256_max_ps(zero, _mm256_add_ps(x0, rj));
        __m256 u1 = _mm256_max_ps(zero, _mm256_add_ps(x1, rj));
        for (int l = 0; l < L; l++) {
            __m256 w = _mm256_set1_ps(W2[(size_t)l * g + j]);
            z[l] = _mm256_fmadd_ps(w, u0, z[l]);
            z[8 + l] = _mm256_fmadd_ps(w, u1, z[8 + l]);
        }
    }
}

/* Running strict-">" argmax over z[0..L): level per lane as int32. */
GA_AVX2_INLINE __m256i ga_avx2_argmax8(const __m256 z[8], const int L)
{
    __m256 best = z[0];
    __m256 lvl = _mm256_setzero_ps(); /* level numbers held as float */
    for (int l = 1; l < L; l++) {
        __m256 gt = _mm256_cmp_ps(z[l], best, _CMP_GT_OQ);
        best = _mm256_blendv_ps(best, z[l], gt);
        lvl = _mm256_blendv_ps(lvl, _mm256_set1_ps((float)l), gt);
    }
    return _mm256_cvtps_epi32(lvl);
}

/* Lanes-any-NaN over z[0..L), restricted to the first n lanes. */
GA_AVX2_INLINE int ga_avx2_any_nan8(const __m256 z[8], const int L, int n)
{
    __m256 un = _mm256_setzero_ps();
    for (int l = 0; l < L; l++)
        un = _mm256_or_ps(un, _mm256_cmp_ps(z[l], z[l], _CMP_UNORD_Q));
    un = _mm256_and_ps(un, _mm256_castsi256_ps(ga_avx2_tail_mask(n)));
    return _mm256_movemask_ps(un) != 0;
}

/* Writes the low byte of the first n int32 lanes of v to out[0..n). */
static inline void ga_avx2_store_levels(uint8_t *out, __m256i v, int n)
{
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    w = _mm_packus_epi16(w, w);
    if (n == 8) {
        _mm_storel_epi64((__m128i *)out, w);
    } else {
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, w);
        for (int k = 0; k < n; k++)
            out[k] = tmp[k];
    }
}

#endif
