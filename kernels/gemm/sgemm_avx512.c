/* sgemm_avx512.c — blocked SGEMM, AVX-512F micro-kernel (zmm, 16 floats).
 *
 * Computes the `sgemm` entry of ga_kernels (granattn.h): row-major
 *   C [M][ldc] = alpha * opA [M][K] * opB [K][N] + beta * C,
 * any sizes >= 0, any transposes, leading dimensions and alignment.
 * Loop nest, packed layouts and buffers: sgemm_blocked.h.
 *
 * Micro-kernel: MR x NR = 12 x 32 register tile, 24 zmm accumulators
 * (12 rows x 2 zmm).  Per k: 2 aligned zmm loads of the B panel row, 12
 * broadcast loads of A (each feeding 2 FMAs) and 24 FMAs.  24 independent
 * accumulators hide the 4-cycle FMA latency on 2 FMA ports (>= 8 needed);
 * 24 + 2 B + 1 broadcast = 27 of the 32 zmm registers; loads (14 per k) stay
 * below the 2 per cycle that 12 cycles of FMAs allow.  In L1 the kernel runs
 * at ~98 % of the measured FMA peak.  The tile's edge (mr < 12 rows,
 * nr < 32 columns) is written with masked loads/stores, which never touch
 * memory outside the mask.
 *
 * Packing: the transposing cases (opA with transA == 0, opB with
 * transB == 1: rows contiguous in k) load 16 rows x 16 k with masked loads
 * and transpose them in registers (16x16, 64 shuffles); the others copy
 * contiguous runs of 12 / 32 floats with masked loads (zero-filling the
 * edge panel), reading each row of X once in full.
 *
 * Cache blocking (Sapphire-Rapids-class core here: 48 KiB L1d, 2 MiB L2;
 * chosen to fit a Skylake-X core too: 32 KiB L1d, 1 MiB L2):
 *   KC = 384: one A micro-panel is 12 x 384 x 4 B = 18 KiB, resident in L1
 *             while the B micro-panels (384 x 32 x 4 B = 48 KiB each) stream
 *             past it from L2;
 *   NC = 512: the packed B block is 384 x 512 x 4 B = 768 KiB, resident in
 *             L2 and reused by every A micro-panel of the M dimension;
 *   MC = 192: packed A block 192 x 384 x 4 B = 288 KiB (16 micro-panels),
 *             written by the packing and read back from L2.
 * KC 256..512 and NC 512..1024 measured the same within the noise of this
 * shared 2-core machine at the model's shapes.
 */
#include <immintrin.h>

#include "internal.h"
#include "sgemm_blocked.h"

enum { MR = 12, NR = 32, MC = 192, KC = 384, NC = 512 };

/* Mask of the first n lanes (0 <= n; n >= 16 gives all 16). */
static inline __mmask16 first_lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* One row of the tile: row[0:nr] = alpha * (x0 | x1) + beta * row, under the
 * column masks m0 (columns 0..15) and m1 (16..31; row + 16 is only formed
 * when m1 is not empty).  beta == 0: row is not read. */
static inline void store_row(float *row, __m512 x0, __m512 x1, float alpha, float beta,
                             __mmask16 m0, __mmask16 m1)
{
    const __m512 va = _mm512_set1_ps(alpha);
    __m512 r0 = _mm512_mul_ps(va, x0);
    __m512 r1 = _mm512_mul_ps(va, x1);
    if (beta != 0.0f) {
        const __m512 vb = _mm512_set1_ps(beta);
        r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), r0);
        if (m1)
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), r1);
    }
    _mm512_mask_storeu_ps(row, m0, r0);
    if (m1)
        _mm512_mask_storeu_ps(row + 16, m1, r1);
}

/* C[0:mr][0:nr] = alpha * Ap Bp + beta * C.  Ap: kc x 12 (k-major),
 * Bp: kc x 32, row k at Bp + k*ldbp (a packed panel, or B read in place).
 * Accumulators: cI_0 / cI_1 hold row I, columns 0..15 / 16..31 (named
 * variables rather than an array, so that every compiler keeps them in
 * registers). */
static void kernel_12x32(int kc, const float *Ap, const float *Bp, int ldbp, float *C,
                         int ldc, float alpha, float beta, int mr, int nr)
{
    __m512 c0_0 = _mm512_setzero_ps(), c0_1 = _mm512_setzero_ps(),
           c1_0 = _mm512_setzero_ps(), c1_1 = _mm512_setzero_ps(),
           c2_0 = _mm512_setzero_ps(), c2_1 = _mm512_setzero_ps(),
           c3_0 = _mm512_setzero_ps(), c3_1 = _mm512_setzero_ps(),
           c4_0 = _mm512_setzero_ps(), c4_1 = _mm512_setzero_ps(),
           c5_0 = _mm512_setzero_ps(), c5_1 = _mm512_setzero_ps(),
           c6_0 = _mm512_setzero_ps(), c6_1 = _mm512_setzero_ps(),
           c7_0 = _mm512_setzero_ps(), c7_1 = _mm512_setzero_ps(),
           c8_0 = _mm512_setzero_ps(), c8_1 = _mm512_setzero_ps(),
           c9_0 = _mm512_setzero_ps(), c9_1 = _mm512_setzero_ps(),
           c10_0 = _mm512_setzero_ps(), c10_1 = _mm512_setzero_ps(),
           c11_0 = _mm512_setzero_ps(), c11_1 = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(Bp + (size_t)k * ldbp);
        const __m512 b1 = _mm512_loadu_ps(Bp + (size_t)k * ldbp + 16);
        const float *a = Ap + (size_t)k * MR;
        __m512 ai;
        ai = _mm512_set1_ps(a[0]);
        c0_0 = _mm512_fmadd_ps(ai, b0, c0_0);
        c0_1 = _mm512_fmadd_ps(ai, b1, c0_1);
        ai = _mm512_set1_ps(a[1]);
        c1_0 = _mm512_fmadd_ps(ai, b0, c1_0);
        c1_1 = _mm512_fmadd_ps(ai, b1, c1_1);
        ai = _mm512_set1_ps(a[2]);
        c2_0 = _mm512_fmadd_ps(ai, b0, c2_0);
        c2_1 = _mm512_fmadd_ps(ai, b1, c2_1);
        ai = _mm512_set1_ps(a[3]);
        c3_0 = _mm512_fmadd_ps(ai, b0, c3_0);
        c3_1 = _mm512_fmadd_ps(ai, b1, c3_1);
        ai = _mm512_set1_ps(a[4]);
        c4_0 = _mm512_fmadd_ps(ai, b0, c4_0);
        c4_1 = _mm512_fmadd_ps(ai, b1, c4_1);
        ai = _mm512_set1_ps(a[5]);
        c5_0 = _mm512_fmadd_ps(ai, b0, c5_0);
        c5_1 = _mm512_fmadd_ps(ai, b1, c5_1);
        ai = _mm512_set1_ps(a[6]);
        c6_0 = _mm512_fmadd_ps(ai, b0, c6_0);
        c6_1 = _mm512_fmadd_ps(ai, b1, c6_1);
        ai = _mm512_set1_ps(a[7]);
        c7_0 = _mm512_fmadd_ps(ai, b0, c7_0);
        c7_1 = _mm512_fmadd_ps(ai, b1, c7_1);
        ai = _mm512_set1_ps(a[8]);
        c8_0 = _mm512_fmadd_ps(ai, b0, c8_0);
        c8_1 = _mm512_fmadd_ps(ai, b1, c8_1);
        ai = _mm512_set1_ps(a[9]);
        c9_0 = _mm512_fmadd_ps(ai, b0, c9_0);
        c9_1 = _mm512_fmadd_ps(ai, b1, c9_1);
        ai = _mm512_set1_ps(a[10]);
        c10_0 = _mm512_fmadd_ps(ai, b0, c10_0);
        c10_1 = _mm512_fmadd_ps(ai, b1, c10_1);
        ai = _mm512_set1_ps(a[11]);
        c11_0 = _mm512_fmadd_ps(ai, b0, c11_0);
        c11_1 = _mm512_fmadd_ps(ai, b1, c11_1);
    }

    const __mmask16 m0 = first_lanes(nr), m1 = first_lanes(nr > 16 ? nr - 16 : 0);
    store_row(C + (size_t)0 * ldc, c0_0, c0_1, alpha, beta, m0, m1);
    if (mr <= 1)
        return;
    store_row(C + (size_t)1 * ldc, c1_0, c1_1, alpha, beta, m0, m1);
    if (mr <= 2)
        return;
    store_row(C + (size_t)2 * ldc, c2_0, c2_1, alpha, beta, m0, m1);
    if (mr <= 3)
        return;
    store_row(C + (size_t)3 * ldc, c3_0, c3_1, alpha, beta, m0, m1);
    if (mr <= 4)
        return;
    store_row(C + (size_t)4 * ldc, c4_0, c4_1, alpha, beta, m0, m1);
    if (mr <= 5)
        return;
    store_row(C + (size_t)5 * ldc, c5_0, c5_1, alpha, beta, m0, m1);
    if (mr <= 6)
        return;
    store_row(C + (size_t)6 * ldc, c6_0, c6_1, alpha, beta, m0, m1);
    if (mr <= 7)
        return;
    store_row(C + (size_t)7 * ldc, c7_0, c7_1, alpha, beta, m0, m1);
    if (mr <= 8)
        return;
    store_row(C + (size_t)8 * ldc, c8_0, c8_1, alpha, beta, m0, m1);
    if (mr <= 9)
        return;
    store_row(C + (size_t)9 * ldc, c9_0, c9_1, alpha, beta, m0, m1);
    if (mr <= 10)
        return;
    store_row(C + (size_t)10 * ldc, c10_0, c10_1, alpha, beta, m0, m1);
    if (mr <= 11)
        return;
    store_row(C + (size_t)11 * ldc, c11_0, c11_1, alpha, beta, m0, m1);
}

/* In-register transpose of a 16 x 16 block: on return r[j][i] = old r[i][j].
 * Four stages of 16 shuffles: 32-bit then 64-bit interleaves inside each
 * 128-bit lane, then two rounds of 128-bit lane shuffles (0x88 picks lanes
 * 0 and 2 of each operand, 0xDD lanes 1 and 3). */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* u[4g + c], lane L: column 4L + c of rows 4g .. 4g+3 */
    for (int g = 0; g < 16; g += 4) {
        const __m512d t0 = _mm512_castps_pd(t[g]), t1 = _mm512_castps_pd(t[g + 1]);
        const __m512d t2 = _mm512_castps_pd(t[g + 2]), t3 = _mm512_castps_pd(t[g + 3]);
        u[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int c = 0; c < 4; c++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[c + 8] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
        r[c + 4] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
}

/* Transposing pack (kmajor == 0: each row of X is contiguous in k) of
 * n <= 16 rows: dst[k*w + i] = X[i*ld + k] for k < kc, i < n, and 0 for
 * n <= i < 16; only the first `keep` (<= 16) lanes of each output row are
 * stored (the panel width w may be 12, or 32 with two calls).  Rows are read
 * 16 k at a time with masked loads, so nothing past k = kc - 1 is read. */
static inline void pack_rows16(const float *X, int ld, int n, int kc, float *dst, int w,
                               int keep)
{
    const __mmask16 mkeep = first_lanes(keep);
    for (int k = 0; k < kc; k += 16) {
        const int kn = kc - k < 16 ? kc - k : 16;
        const __mmask16 mk = first_lanes(kn);
        __m512 r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < n ? _mm512_maskz_loadu_ps(mk, X + (size_t)i * ld + k)
                         : _mm512_setzero_ps();
        transpose16(r);
        for (int j = 0; j < kn; j++)
            _mm512_mask_storeu_ps(dst + (size_t)(k + j) * w, mkeep, r[j]);
    }
}

/* opA panels of 12 rows (see ga_gemm_pack in sgemm_blocked.h). */
static void pack_a(const float *X, int ld, int kmajor, int r0, int rn, int k0, int kc,
                   float *dst)
{
    if (kmajor) {
        /* Row k of X holds opA[r0 .. r0+rn)[k] contiguously: read it once,
         * 12 floats to each panel (k outer, so every cache line of X is read
         * once, whatever ld); masks zero-fill rows n..11 of the last panel. */
        const __mmask16 m12 = first_lanes(MR);
        for (int k = 0; k < kc; k++) {
            const float *s = X + (size_t)(k0 + k) * ld + r0;
            for (int p0 = 0; p0 < rn; p0 += MR) {
                const int n = rn - p0 < MR ? rn - p0 : MR;
                _mm512_mask_storeu_ps(dst + (size_t)p0 * kc + (size_t)k * MR, m12,
                                      _mm512_maskz_loadu_ps(first_lanes(n), s + p0));
            }
        }
        return;
    }
    for (int p0 = 0; p0 < rn; p0 += MR) {
        const int n = rn - p0 < MR ? rn - p0 : MR;
        pack_rows16(X + (size_t)(r0 + p0) * ld + k0, ld, n, kc, dst + (size_t)p0 * kc, MR, MR);
    }
}

/* opB panels of 32 columns (see ga_gemm_pack in sgemm_blocked.h). */
static void pack_b(const float *X, int ld, int kmajor, int r0, int rn, int k0, int kc,
                   float *dst)
{
    if (kmajor) {
        /* Row k of X holds opB[k][r0 .. r0+rn) contiguously: 32 floats to
         * each panel, zero-filled past the last column. */
        for (int k = 0; k < kc; k++) {
            const float *s = X + (size_t)(k0 + k) * ld + r0;
            for (int p0 = 0; p0 < rn; p0 += NR) {
                const int n = rn - p0 < NR ? rn - p0 : NR;
                float *d = dst + (size_t)p0 * kc + (size_t)k * NR;
                _mm512_store_ps(d, _mm512_maskz_loadu_ps(first_lanes(n), s + p0));
                _mm512_store_ps(d + 16, n > 16 ? _mm512_maskz_loadu_ps(first_lanes(n - 16),
                                                                       s + p0 + 16)
                                               : _mm512_setzero_ps());
            }
        }
        return;
    }
    for (int p0 = 0; p0 < rn; p0 += NR) {
        const int n = rn - p0 < NR ? rn - p0 : NR;
        float *d = dst + (size_t)p0 * kc;
        /* columns 0..15, then 16..31 (or zeros) */
        const float *s = X + (size_t)(r0 + p0) * ld + k0;
        pack_rows16(s, ld, n < 16 ? n : 16, kc, d, NR, 16);
        if (n > 16) {
            pack_rows16(s + (size_t)16 * ld, ld, n - 16, kc, d + 16, NR, 16);
        } else {
            for (int k = 0; k < kc; k++)
                _mm512_store_ps(d + (size_t)k * NR + 16, _mm512_setzero_ps());
        }
    }
}

static const ga_gemm_impl impl = {
    .MR = MR, .NR = NR, .MC = MC, .KC = KC, .NC = NC, .m_direct = MR,
    .kernel = kernel_12x32, .pack_a = pack_a, .pack_b = pack_b,
};

GA_GEMM_ENTRIES(avx512)
