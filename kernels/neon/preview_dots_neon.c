/* preview_dots_neon.c — preview dot products (docs/SPEC.md §7), AArch64 NEON.
 *
 *   dot[i] = sum_{d < dh4} qc[d] * c_id   (exact integer, stored as float)
 *
 * Layout: codes are int8 panels [ceil(N/16)][dh4/4][16][4]: one group of 4
 * channels of one panel is 64 bytes = four q registers, register j holding
 * keys 4j..4j+3 (key l's 4 codes at bytes 4l..4l+3).  Keys across lanes:
 * the 16 keys of a panel are 4 int32x4; per group the 4 query bytes are
 * broadcast as one int32 (vdupq_n_s32).
 *
 * Two paths, chosen at run time (ga_cpu_has(GA_CPU_NEON_DOTPROD): AT_HWCAP
 * & HWCAP_ASIMDDP, probed once):
 *   _sdot   the dot-product extension (Armv8.2+, optional; Armv8.4+):
 *           vdotq_s32, signed x signed, int32 lane l += sum of the 4 byte
 *           products of key l — exactly the layout, no offset, ksum unused.
 *           Compiled with __attribute__((target("arch=armv8.2-a+dotprod")))
 *           (Debian's aarch64 gcc 12 rejects a bare "+dotprod": arm_neon.h
 *           declares vdotq_s32 under that arch pragma, and the inline fails
 *           with "target specific option mismatch"); the rest of the library
 *           stays baseline Armv8-A.
 *           Two panels in flight (8 accumulators).
 *   _smull  baseline Advanced SIMD: for two groups at once, vmull_s8 +
 *           vmlal_s8 (int16 lanes: q0 c0 + q1 c1 <= 2 * 127 * 127 < 32767,
 *           no overflow) then vpadalq_s16 into 8 int32x4 accumulators (two
 *           keys each: [k c01, k c23, k+1 c01, k+1 c23]); a final vpaddq_s32
 *           folds them to one lane per key.  ksum unused.
 * Integer sums: bitwise equal to the reference.
 *
 * Constraints: codes and qc in [-127, 127], dh4 a multiple of 4 in
 * [4, 1024].  Bytes read: codes 16 * ceil(N/16) * dh4 (the last panel whole,
 * as the contract allows), qc dh4; ksum never.
 * Bytes written: exactly 4 * N (the last panel's dots go through a stack
 * buffer and only the first N - 16p are copied).
 * Alignment: none required (vld1q/vst1q are unaligned).
 *
 * measured: not timed (the NEON build runs only under qemu-aarch64 here,
 * whose timings mean nothing, docs/NOTES.md); correctness of both paths is
 * tested under qemu -cpu max.
 */
#include <string.h>

#include "neon.h"

static inline void load_groups(const int8_t *qc, int G, int32_t *q4)
{
    for (int g = 0; g < G; g++)
        memcpy(&q4[g], qc + 4 * g, 4);
}

/* Stores the 16 dots of panel p (keys 16p .. 16p+15; only those < N). */
static inline void store_panel(float *dot, int N, int p, int32x4_t a0, int32x4_t a1,
                               int32x4_t a2, int32x4_t a3)
{
    const int i0 = 16 * p;
    float *d = dot + i0, tmp[16];
    if (N - i0 < 16)
        d = tmp;
    vst1q_f32(d, vcvtq_f32_s32(a0));
    vst1q_f32(d + 4, vcvtq_f32_s32(a1));
    vst1q_f32(d + 8, vcvtq_f32_s32(a2));
    vst1q_f32(d + 12, vcvtq_f32_s32(a3));
    if (d == tmp)
        memcpy(dot + i0, tmp, sizeof(float) * (size_t)(N - i0));
}

/* ------------------------------------------------------------------ sdot */

__attribute__((target("arch=armv8.2-a+dotprod"))) void
ga_neon_preview_dots_sdot(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                          const int8_t *qc, float *dot)
{
    (void)ksum;
    if (N <= 0)
        return;
    const int G = dh4 / 4, P = (N + 15) / 16;
    const size_t ps = (size_t)G * 64; /* bytes per panel */
    int32_t q4[256];
    load_groups(qc, G, q4);

    int p = 0;
    for (; p + 2 <= P; p += 2) {
        const int8_t *c = codes + (size_t)p * ps;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        int32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int g = 0; g < G; g++) {
            const int8x16_t q = vreinterpretq_s8_s32(vdupq_n_s32(q4[g]));
            const int8_t *cg = c + (size_t)g * 64, *dg = cg + ps;
            a0 = vdotq_s32(a0, vld1q_s8(cg), q);
            a1 = vdotq_s32(a1, vld1q_s8(cg + 16), q);
            a2 = vdotq_s32(a2, vld1q_s8(cg + 32), q);
            a3 = vdotq_s32(a3, vld1q_s8(cg + 48), q);
            b0 = vdotq_s32(b0, vld1q_s8(dg), q);
            b1 = vdotq_s32(b1, vld1q_s8(dg + 16), q);
            b2 = vdotq_s32(b2, vld1q_s8(dg + 32), q);
            b3 = vdotq_s32(b3, vld1q_s8(dg + 48), q);
        }
        store_panel(dot, N, p, a0, a1, a2, a3);
        store_panel(dot, N, p + 1, b0, b1, b2, b3);
    }
    if (p < P) {
        const int8_t *c = codes + (size_t)p * ps;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (int g = 0; g < G; g++) {
            const int8x16_t q = vreinterpretq_s8_s32(vdupq_n_s32(q4[g]));
            const int8_t *cg = c + (size_t)g * 64;
            a0 = vdotq_s32(a0, vld1q_s8(cg), q);
            a1 = vdotq_s32(a1, vld1q_s8(cg + 16), q);
            a2 = vdotq_s32(a2, vld1q_s8(cg + 32), q);
            a3 = vdotq_s32(a3, vld1q_s8(cg + 48), q);
        }
        store_panel(dot, N, p, a0, a1, a2, a3);
    }
}

/* ----------------------------------------------------------------- smull */

void ga_neon_preview_dots_smull(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                                const int8_t *qc, float *dot)
{
    (void)ksum;
    if (N <= 0)
        return;
    const int G = dh4 / 4, P = (N + 15) / 16;
    const size_t ps = (size_t)G * 64;
    int32_t q4[256];
    load_groups(qc, G, q4);

    for (int p = 0; p < P; p++) {
        const int8_t *c = codes + (size_t)p * ps;
        int32x4_t acc[8];
        for (int k = 0; k < 8; k++)
            acc[k] = vdupq_n_s32(0);
        int g = 0;
        for (; g + 2 <= G; g += 2) {
            const int8x16_t q = vreinterpretq_s8_s32(vdupq_n_s32(q4[g]));
            const int8x16_t r = vreinterpretq_s8_s32(vdupq_n_s32(q4[g + 1]));
            const int8x8_t ql = vget_low_s8(q), rl = vget_low_s8(r);
            const int8_t *cg = c + (size_t)g * 64;
            for (int j = 0; j < 4; j++) {
                const int8x16_t x = vld1q_s8(cg + 16 * j), y = vld1q_s8(cg + 64 + 16 * j);
                int16x8_t lo = vmlal_s8(vmull_s8(vget_low_s8(x), ql), vget_low_s8(y), rl);
                int16x8_t hi = vmlal_high_s8(vmull_high_s8(x, q), y, r);
                acc[2 * j] = vpadalq_s16(acc[2 * j], lo);
                acc[2 * j + 1] = vpadalq_s16(acc[2 * j + 1], hi);
            }
        }
        if (g < G) {
            const int8x16_t q = vreinterpretq_s8_s32(vdupq_n_s32(q4[g]));
            const int8_t *cg = c + (size_t)g * 64;
            for (int j = 0; j < 4; j++) {
                const int8x16_t x = vld1q_s8(cg + 16 * j);
                acc[2 * j] = vpadalq_s16(acc[2 * j], vmull_s8(vget_low_s8(x), vget_low_s8(q)));
                acc[2 * j + 1] = vpadalq_s16(acc[2 * j + 1], vmull_high_s8(x, q));
            }
        }
        store_panel(dot, N, p, vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3]),
                    vpaddq_s32(acc[4], acc[5]), vpaddq_s32(acc[6], acc[7]));
    }
}

/* ------------------------------------------------------------ the entry */

void ga_neon_preview_dots(const int8_t *codes, const int32_t *ksum, int N, int dh4,
                          const int8_t *qc, float *dot)
{
    if (ga_cpu_has(GA_CPU_NEON_DOTPROD))
        ga_neon_preview_dots_sdot(codes, ksum, N, dh4, qc, dot);
    else
        ga_neon_preview_dots_smull(codes, ksum, N, dh4, qc, dot);
}
