/* sgemm_avx2.c — blocked SGEMM, AVX2 + FMA micro-kernel (ymm, 8 floats).
 *
 * Computes the `sgemm` entry of ga_kernels (granattn.h): row-major
 *   C [M][ldc] = alpha * opA [M][K] * opB [K][N] + beta * C,
 * any sizes >= 0, any transposes, leading dimensions and alignment.
 * Loop nest, packed layouts and buffers: sgemm_blocked.h.
 *
 * Micro-kernel: MR x NR = 6 x 16 register tile, 12 ymm accumulators
 * (6 rows x 2 ymm).  Per k: 2 aligned ymm loads of the B panel row, 6
 * broadcasts of A and 12 FMAs.  12 accumulators hide the FMA latency
 * (4 cycles x 2 ports = 8 needed); 12 + 2 B + 1 broadcast = 15 of the 16
 * ymm registers.  Edge tiles (nr < 16) use vmaskmovps loads/stores, which
 * do not touch (or fault on) masked-off elements; rows past mr are skipped.
 *
 * Packing: the generic routines of sgemm_blocked.h (at half the FMA rate
 * of AVX-512, packing is a smaller share of the time).
 *
 * Cache blocking (48 KiB L1d, 2 MiB L2 here; AVX2-only cores have 32 KiB L1d
 * and 256 KiB (Haswell) to 1 MiB (Zen 4) of L2):
 *   KC = 256: one A micro-panel is 6 x 256 x 4 B = 6 KiB in L1 while the
 *             B micro-panels (256 x 16 x 4 B = 16 KiB each) stream past it;
 *   NC = 512: the packed B block is 256 x 512 x 4 B = 512 KiB, in L2 here
 *             and on Zen (in L3 on a 256 KiB-L2 core: B micro-panels then
 *             stream from L3, which the 6-cycle k-step still tolerates);
 *   MC = 96:  packed A block 96 x 256 x 4 B = 96 KiB (16 micro-panels).
 */
#include <immintrin.h>

#include "internal.h"
#include "sgemm_blocked.h"

enum { MR = 6, NR = 16, MC = 96, KC = 256, NC = 512 };

/* Lane mask: lane l is all ones iff l < n. */
static inline __m256i lane_mask(int n)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota);
}

/* One row of the tile: row[0:nr] = alpha * (x0 | x1) + beta * row.
 * nr == 16: plain unaligned loads/stores; nr < 16: vmaskmovps under the lane
 * masks of columns 0..7 and (when nr > 8) 8..15.  beta == 0: row is not
 * read. */
static inline void store_row(float *row, __m256 x0, __m256 x1, float alpha, float beta,
                             int nr)
{
    const __m256 va = _mm256_set1_ps(alpha);
    const __m256 vb = _mm256_set1_ps(beta);
    __m256 r0 = _mm256_mul_ps(va, x0);
    __m256 r1 = _mm256_mul_ps(va, x1);
    if (nr == NR) {
        if (beta != 0.0f) {
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), r0);
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), r1);
        }
        _mm256_storeu_ps(row, r0);
        _mm256_storeu_ps(row + 8, r1);
        return;
    }
    const __m256i m0 = lane_mask(nr);
    if (beta != 0.0f)
        r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row, m0), r0);
    _mm256_maskstore_ps(row, m0, r0);
    if (nr > 8) {
        const __m256i m1 = lane_mask(nr - 8);
        if (beta != 0.0f)
            r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row + 8, m1), r1);
        _mm256_maskstore_ps(row + 8, m1, r1);
    }
}

/* C[0:mr][0:nr] = alpha * Ap Bp + beta * C.  Ap: kc x 6 (k-major),
 * Bp: kc x 16, row k at Bp + k*ldbp (a packed panel, or B read in place).
 * Accumulators: cI_0 / cI_1 hold row I, columns 0..7 / 8..15 (named
 * variables rather than an array, so that every compiler keeps them in
 * registers). */
static void kernel_6x16(int kc, const float *Ap, const float *Bp, int ldbp, float *C,
                        int ldc, float alpha, float beta, int mr, int nr)
{
    __m256 c0_0 = _mm256_setzero_ps(), c0_1 = _mm256_setzero_ps(),
           c1_0 = _mm256_setzero_ps(), c1_1 = _mm256_setzero_ps(),
           c2_0 = _mm256_setzero_ps(), c2_1 = _mm256_setzero_ps(),
           c3_0 = _mm256_setzero_ps(), c3_1 = _mm256_setzero_ps(),
           c4_0 = _mm256_setzero_ps(), c4_1 = _mm256_setzero_ps(),
           c5_0 = _mm256_setzero_ps(), c5_1 = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(Bp + (size_t)k * ldbp);
        const __m256 b1 = _mm256_loadu_ps(Bp + (size_t)k * ldbp + 8);
        const float *a = Ap + (size_t)k * MR;
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0);
        c0_0 = _mm256_fmadd_ps(ai, b0, c0_0);
        c0_1 = _mm256_fmadd_ps(ai, b1, c0_1);
        ai = _mm256_broadcast_ss(a + 1);
        c1_0 = _mm256_fmadd_ps(ai, b0, c1_0);
        c1_1 = _mm256_fmadd_ps(ai, b1, c1_1);
        ai = _mm256_broadcast_ss(a + 2);
        c2_0 = _mm256_fmadd_ps(ai, b0, c2_0);
        c2_1 = _mm256_fmadd_ps(ai, b1, c2_1);
        ai = _mm256_broadcast_ss(a + 3);
        c3_0 = _mm256_fmadd_ps(ai, b0, c3_0);
        c3_1 = _mm256_fmadd_ps(ai, b1, c3_1);
        ai = _mm256_broadcast_ss(a + 4);
        c4_0 = _mm256_fmadd_ps(ai, b0, c4_0);
        c4_1 = _mm256_fmadd_ps(ai, b1, c4_1);
        ai = _mm256_broadcast_ss(a + 5);
        c5_0 = _mm256_fmadd_ps(ai, b0, c5_0);
        c5_1 = _mm256_fmadd_ps(ai, b1, c5_1);
    }

    store_row(C + (size_t)0 * ldc, c0_0, c0_1, alpha, beta, nr);
    if (mr <= 1)
        return;
    store_row(C + (size_t)1 * ldc, c1_0, c1_1, alpha, beta, nr);
    if (mr <= 2)
        return;
    store_row(C + (size_t)2 * ldc, c2_0, c2_1, alpha, beta, nr);
    if (mr <= 3)
        return;
    store_row(C + (size_t)3 * ldc, c3_0, c3_1, alpha, beta, nr);
    if (mr <= 4)
        return;
    store_row(C + (size_t)4 * ldc, c4_0, c4_1, alpha, beta, nr);
    if (mr <= 5)
        return;
    store_row(C + (size_t)5 * ldc, c5_0, c5_1, alpha, beta, nr);
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
    .kernel = kernel_6x16, .pack_a = pack_a, .pack_b = pack_b,
};

GA_GEMM_ENTRIES(avx2)
