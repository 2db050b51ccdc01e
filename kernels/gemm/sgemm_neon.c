/* sgemm_neon.c — blocked SGEMM, AArch64 Advanced SIMD micro-kernel (q
 * registers, 4 floats).
 *
 * Computes the `sgemm` entry of ga_kernels (granattn.h): row-major
 *   C [M][ldc] = alpha * opA [M][K] * opB [K][N] + beta * C,
 * any sizes >= 0, any transposes, leading dimensions and alignment.
 * Loop nest, packed layouts and buffers: sgemm_blocked.h.
 *
 * Micro-kernel: MR x NR = 8 x 12 register tile, 24 q accumulators
 * (8 rows x 3 q).  Per k: 3 q loads of the B panel row, 2 q loads of the 8 A
 * values and 24 FMLA-by-element (vfmaq_laneq_f32: row i multiplies by lane
 * i % 4 of a0/a1, so A needs no broadcast instructions).  24 + 3 + 2 = 29 of
 * the 32 vector registers; 24 independent accumulators cover the FMA latency
 * (4 cycles) on up to 4 pipes (>= 16 needed).  Full-width rows (nr == 12)
 * are written with q loads/stores; narrower edge rows go through a temporary
 * row and scalar copies, so no access crosses the matrix edge.
 *
 * Packing: the generic routines of sgemm_blocked.h.
 *
 * Cache blocking (typical Arm cores: 32-64 KiB L1d, 512 KiB-1 MiB L2):
 *   KC = 256: one A micro-panel is 8 x 256 x 4 B = 8 KiB in L1 while the
 *             B micro-panels (256 x 12 x 4 B = 12 KiB) stream past it;
 *   NC = 384: the packed B block is 256 x 384 x 4 B = 384 KiB, in L2;
 *   MC = 128: packed A block 128 x 256 x 4 B = 128 KiB (16 micro-panels).
 */
#include <arm_neon.h>

#include "internal.h"
#include "sgemm_blocked.h"

enum { MR = 8, NR = 12, MC = 128, KC = 256, NC = 384 };

/* One row of the tile: row[0:nr] = alpha * (x0 | x1 | x2) + beta * row.
 * nr == 12: three q loads/stores; nr < 12: through a temporary row, element
 * by element.  beta == 0: row is not read. */
static inline void store_row(float *row, float32x4_t x0, float32x4_t x1, float32x4_t x2,
                             float alpha, float beta, int nr)
{
    float32x4_t r0 = vmulq_n_f32(x0, alpha);
    float32x4_t r1 = vmulq_n_f32(x1, alpha);
    float32x4_t r2 = vmulq_n_f32(x2, alpha);
    if (nr == NR) {
        if (beta != 0.0f) {
            r0 = vfmaq_n_f32(r0, vld1q_f32(row), beta);
            r1 = vfmaq_n_f32(r1, vld1q_f32(row + 4), beta);
            r2 = vfmaq_n_f32(r2, vld1q_f32(row + 8), beta);
        }
        vst1q_f32(row, r0);
        vst1q_f32(row + 4, r1);
        vst1q_f32(row + 8, r2);
        return;
    }
    float t[NR];
    vst1q_f32(t, r0);
    vst1q_f32(t + 4, r1);
    vst1q_f32(t + 8, r2);
    for (int j = 0; j < nr; j++)
        row[j] = beta == 0.0f ? t[j] : t[j] + beta * row[j];
}

/* C[0:mr][0:nr] = alpha * Ap Bp + beta * C.  Ap: kc x 8 (k-major),
 * Bp: kc x 12, row k at Bp + k*ldbp (a packed panel, or B read in place).
 * Accumulators: cI_J holds row I, columns 4J..4J+3 (named variables rather
 * than an array, so that every compiler keeps them in registers). */
static void kernel_8x12(int kc, const float *Ap, const float *Bp, int ldbp, float *C,
                        int ldc, float alpha, float beta, int mr, int nr)
{
    float32x4_t c0_0 = vdupq_n_f32(0.0f), c0_1 = vdupq_n_f32(0.0f), c0_2 = vdupq_n_f32(0.0f),
                c1_0 = vdupq_n_f32(0.0f), c1_1 = vdupq_n_f32(0.0f), c1_2 = vdupq_n_f32(0.0f),
                c2_0 = vdupq_n_f32(0.0f), c2_1 = vdupq_n_f32(0.0f), c2_2 = vdupq_n_f32(0.0f),
                c3_0 = vdupq_n_f32(0.0f), c3_1 = vdupq_n_f32(0.0f), c3_2 = vdupq_n_f32(0.0f),
                c4_0 = vdupq_n_f32(0.0f), c4_1 = vdupq_n_f32(0.0f), c4_2 = vdupq_n_f32(0.0f),
                c5_0 = vdupq_n_f32(0.0f), c5_1 = vdupq_n_f32(0.0f), c5_2 = vdupq_n_f32(0.0f),
                c6_0 = vdupq_n_f32(0.0f), c6_1 = vdupq_n_f32(0.0f), c6_2 = vdupq_n_f32(0.0f),
                c7_0 = vdupq_n_f32(0.0f), c7_1 = vdupq_n_f32(0.0f), c7_2 = vdupq_n_f32(0.0f);
    for (int k = 0; k < kc; k++) {
        const float *b = Bp + (size_t)k * ldbp;
        const float *a = Ap + (size_t)k * MR;
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        /* rows 0..3: lanes 0..3 of a0 */
        c0_0 = vfmaq_laneq_f32(c0_0, b0, a0, 0);
        c0_1 = vfmaq_laneq_f32(c0_1, b1, a0, 0);
        c0_2 = vfmaq_laneq_f32(c0_2, b2, a0, 0);
        c1_0 = vfmaq_laneq_f32(c1_0, b0, a0, 1);
        c1_1 = vfmaq_laneq_f32(c1_1, b1, a0, 1);
        c1_2 = vfmaq_laneq_f32(c1_2, b2, a0, 1);
        c2_0 = vfmaq_laneq_f32(c2_0, b0, a0, 2);
        c2_1 = vfmaq_laneq_f32(c2_1, b1, a0, 2);
        c2_2 = vfmaq_laneq_f32(c2_2, b2, a0, 2);
        c3_0 = vfmaq_laneq_f32(c3_0, b0, a0, 3);
        c3_1 = vfmaq_laneq_f32(c3_1, b1, a0, 3);
        c3_2 = vfmaq_laneq_f32(c3_2, b2, a0, 3);
        /* rows 4..7: lanes 0..3 of a1 */
        c4_0 = vfmaq_laneq_f32(c4_0, b0, a1, 0);
        c4_1 = vfmaq_laneq_f32(c4_1, b1, a1, 0);
        c4_2 = vfmaq_laneq_f32(c4_2, b2, a1, 0);
        c5_0 = vfmaq_laneq_f32(c5_0, b0, a1, 1);
        c5_1 = vfmaq_laneq_f32(c5_1, b1, a1, 1);
        c5_2 = vfmaq_laneq_f32(c5_2, b2, a1, 1);
        c6_0 = vfmaq_laneq_f32(c6_0, b0, a1, 2);
        c6_1 = vfmaq_laneq_f32(c6_1, b1, a1, 2);
        c6_2 = vfmaq_laneq_f32(c6_2, b2, a1, 2);
        c7_0 = vfmaq_laneq_f32(c7_0, b0, a1, 3);
        c7_1 = vfmaq_laneq_f32(c7_1, b1, a1, 3);
        c7_2 = vfmaq_laneq_f32(c7_2, b2, a1, 3);
    }

    store_row(C + (size_t)0 * ldc, c0_0, c0_1, c0_2, alpha, beta, nr);
    if (mr <= 1)
        return;
    store_row(C + (size_t)1 * ldc, c1_0, c1_1, c1_2, alpha, beta, nr);
    if (mr <= 2)
        return;
    store_row(C + (size_t)2 * ldc, c2_0, c2_1, c2_2, alpha, beta, nr);
    if (mr <= 3)
        return;
    store_row(C + (size_t)3 * ldc, c3_0, c3_1, c3_2, alpha, beta, nr);
    if (mr <= 4)
        return;
    store_row(C + (size_t)4 * ldc, c4_0, c4_1, c4_2, alpha, beta, nr);
    if (mr <= 5)
        return;
    store_row(C + (size_t)5 * ldc, c5_0, c5_1, c5_2, alpha, beta, nr);
    if (mr <= 6)
        return;
    store_row(C + (size_t)6 * ldc, c6_0, c6_1, c6_2, alpha, beta, nr);
    if (mr <= 7)
        return;
    store_row(C + (size_t)7 * ldc, c7_0, c7_1, c7_2, alpha, beta, nr);
}

static void pack_a(const float *X, int ld, int kmajor, int r0, int rn, int k0, int kc,
                   float *dst)
{
    ga_gemm_pack_generic(MR, X, ld, kmajor, r0, rn, k0, kc, dst);
}

static void pack_b(const float *X, int ld, int kmajor, int r0, int rn, int k0, int kc,
                   float *dst)
{
    ga_gemm_pack_generic(NR, X, ld, kmajor, r0, rn, k0, kc, dst);
}

static const ga_gemm_impl impl = {
    .MR = MR, .NR = NR, .MC = MC, .KC = KC, .NC = NC, .m_direct = MR,
    .kernel = kernel_8x12, .pack_a = pack_a, .pack_b = pack_b,
};

GA_GEMM_ENTRIES(neon)
