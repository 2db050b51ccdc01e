/* sgemm_blocked.h — the ISA-independent part of the blocked SGEMM (private to
 * kernels/gemm): the BLIS-style loop nest, the generic packing routine and the
 * C = beta * C path.  Each sgemm_<isa>.c supplies its register-blocked
 * micro-kernel (and, where it pays, faster packing routines) in a
 * ga_gemm_impl `impl` and expands GA_GEMM_ENTRIES(isa): its sgemm,
 * sgemm_pack and sgemm_packed entries.  Everything here is static inline,
 * so it is compiled with the including file's ISA flags.
 *
 * Computes (row-major, contract of ga_kernels.sgemm in granattn.h)
 *   C [M][ldc] = alpha * opA [M][K] * opB [K][N] + beta * C.
 *
 * Loop nest (blocking parameters in ga_gemm_impl, chosen per ISA):
 *
 *   for jc in [0, N) step NC                  columns of C and opB
 *     for pc in [0, K) step KC                the K dimension
 *       pack opB[pc:pc+kc][jc:jc+nc] -> Bp    KC x NC block, kept in L2
 *       for ic in [0, M) step MC              rows of C and opA
 *         pack opA[ic:ic+mc][pc:pc+kc] -> Ap  MC x KC block
 *         for ir in [0, mc) step MR           one A micro-panel (MR x kc),
 *           for jr in [0, nc) step NR         kept in L1 while every
 *             micro-kernel: C[MR][NR] tile    B micro-panel (kc x NR)
 *                 (+)= alpha * Ap_ir Bp_jr    streams from L2
 *
 * Packed layouts (what the micro-kernel sees, whatever the transposes):
 *   Ap: panel p (rows ic + p*MR ...) is MR x kc stored k-major,
 *       Ap[p*MR*kc + k*MR + i] = opA[ic + p*MR + i][pc + k]
 *   Bp: panel q (columns jc + q*NR ...) is kc x NR stored k-major,
 *       Bp[q*NR*kc + k*NR + j] = opB[pc + k][jc + q*NR + j]
 *   Rows/columns past the edge of the matrix are packed as zeros, so every
 *   micro-kernel call runs the full MR x NR register tile; the write-back
 *   stores only the mr x nr valid part (masked, or through a temporary tile).
 *
 * Small M (M <= m_direct, opB = B untransposed): with a single A
 * micro-panel (m_direct = MR in every variant) each element of B is used
 * exactly once, so packing it (a read, a write and a second read) costs
 * about as much as the product itself.  The full-width NR-column tiles then
 * read B in place (row stride ldb instead of NR); only the last, partial
 * column tile (if any) is packed, zero-padded, as usual.  Measured on the
 * AVX-512 variant: 12x256x256 11 us in place vs 20 us packed, 12x256x1024
 * 51 vs 93 us; with two or more A micro-panels B would be re-read with
 * stride ldb (cache-set conflicts when ldb is a power of two: 24x1024x1024
 * was 30 % slower in place), so larger M always packs.
 *
 * beta: the first K block (pc == 0) applies the caller's beta (beta == 0
 * stores without reading C); later K blocks accumulate (beta = 1).  alpha is
 * applied to each K block's product at write-back.
 *
 * Packing buffers: the calling thread's buffer (ga_gemm_buffer, src/pool.c),
 * always requested at the largest size a call can use, (MC + NC) * KC
 * floats: it is allocated by the thread's first call and reused by every
 * later one (no allocation per call; concurrent calls from several threads
 * use their own buffers).  If that allocation fails the call falls back to
 * the scalar reference (same contract, slower, different rounding: double
 * accumulation).
 *
 * Packed B (sgemm_pack / sgemm_packed, for weights used by many calls):
 * sgemm_pack packs every Bp block of op(B) once (ga_gemm_pack_all), and
 * sgemm_packed runs ga_gemm_blocked_packed, which packs only A, once per
 * (pc, ic) block, and streams each B micro-panel past every A micro-panel.
 * Each C tile gets the same micro-kernel calls as in ga_gemm_blocked, so C
 * is bitwise sgemm's.  Measured (AVX-512, 1 thread, B = W^T of the decoder):
 * 4x8000x256 0.40 ms packed vs 0.67 ms, 16x8000x256 0.66 vs 0.94 ms,
 * 128x768x256 0.26 vs 0.31 ms.
 *
 * Rows are independent: element C[i][j] is the same FMA chain over k
 * (k ascending inside each KC block, the blocks added in order) whatever M,
 * the row's position in its MR panel or MC block, and whether B is packed
 * or read in place: a row of C does not depend on which other rows the call
 * computes (what batched decoding relies on; tests/test_sgemm.c checks it).
 *
 * Memory safety: packing reads only elements of opA / opB inside the matrix
 * (masked or scalar loads at the edges, so a matrix may end right before an
 * unmapped page); in-place B reads cover full NR-column tiles only; the
 * write-back touches exactly the M x N elements of C (gaps of ldc > N are
 * never written).
 */
#ifndef GA_SGEMM_BLOCKED_H
#define GA_SGEMM_BLOCKED_H

#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

/* Micro-kernel: C[0:mr][0:nr] (row stride ldc) = alpha * Ap * Bp + beta * C,
 * with Ap one packed MR x kc A panel and Bp a kc x NR B panel whose row k
 * starts at Bp + k*ldbp: a packed panel (ldbp == NR, 64-byte aligned rows)
 * or, for full tiles only (nr == NR), B itself (ldbp == ldb, any
 * alignment).  1 <= mr <= MR, 1 <= nr <= NR, kc >= 1.  beta == 0: C is not
 * read. */
typedef void (*ga_gemm_ukernel)(int kc, const float *Ap, const float *Bp, int ldbp,
                                float *C, int ldc, float alpha, float beta,
                                int mr, int nr);

/* Packs rows r0 .. r0+rn-1 of a logical matrix X(r, k), k in k0 .. k0+kc-1,
 * into panels of w rows: X(r0 + p*w + i, k0 + k) -> dst[p*w*kc + k*w + i];
 * panel rows past rn are zero.
 *   kmajor == 0: X(r, k) = X[r*ld + k]   (each row r contiguous in k)
 *   kmajor == 1: X(r, k) = X[k*ld + r]   (each k contiguous in r)
 * opA uses r = i, kmajor = transA; opB uses r = j, kmajor = !transB. */
typedef void (*ga_gemm_pack)(const float *X, int ld, int kmajor, int r0, int rn,
                             int k0, int kc, float *dst);

typedef struct ga_gemm_impl {
    int MR, NR;             /* register tile */
    int MC, KC, NC;         /* cache blocks: MC % MR == 0, NC % NR == 0 */
    int m_direct;           /* M up to which an untransposed B is read in place */
    ga_gemm_ukernel kernel;
    ga_gemm_pack pack_a;    /* packs panels of MR rows of opA */
    ga_gemm_pack pack_b;    /* packs panels of NR columns of opB */
} ga_gemm_impl;

/* Generic packing (any panel width w): plain loops, used where an ISA has no
 * specialised routine.
 *   kmajor == 1: row k of X holds the rn values contiguously; it is read
 *     once (k outer, panels inner), w floats to each panel, so every cache
 *     line of X is read once whatever ld is (a panel-outer order would walk
 *     X with stride ld once per panel: cache-set conflicts when ld is a power
 *     of two).
 *   kmajor == 0: each of the rn rows is contiguous in k; it is read in order
 *     and scattered with stride w into its panel (a transpose). */
static inline void ga_gemm_pack_generic(int w, const float *X, int ld, int kmajor,
                                        int r0, int rn, int k0, int kc, float *dst)
{
    if (kmajor) {
        for (int k = 0; k < kc; k++) {
            const float *s = X + (size_t)(k0 + k) * ld + r0;
            for (int p0 = 0; p0 < rn; p0 += w) {
                const int n = rn - p0 < w ? rn - p0 : w;
                float *d = dst + (size_t)p0 * kc + (size_t)k * w; /* panel p0 / w, row k */
                for (int i = 0; i < n; i++)
                    d[i] = s[p0 + i];
                for (int i = n; i < w; i++)
                    d[i] = 0.0f;
            }
        }
        return;
    }
    for (int p0 = 0; p0 < rn; p0 += w) {
        const int n = rn - p0 < w ? rn - p0 : w;
        float *d = dst + (size_t)p0 * kc;   /* panel p0 / w: w * kc floats */
        for (int i = 0; i < n; i++) {
            const float *s = X + (size_t)(r0 + p0 + i) * ld + k0;
            for (int k = 0; k < kc; k++)
                d[(size_t)k * w + i] = s[k];
        }
        for (int k = 0; k < kc; k++)
            for (int i = n; i < w; i++)
                d[(size_t)k * w + i] = 0.0f;
    }
}

/* C = beta * C (K == 0 or alpha == 0): beta == 0 stores +0 without reading,
 * beta == 1 leaves C untouched. */
static inline void ga_gemm_scale_c(int M, int N, float beta, float *C, int ldc)
{
    if (beta == 1.0f)
        return;
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < N; j++)
                c[j] = 0.0f;
        } else {
            for (int j = 0; j < N; j++)
                c[j] = beta * c[j];
        }
    }
}

static inline int ga_gemm_min(int a, int b) { return a < b ? a : b; }
static inline size_t ga_gemm_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* Packed op(B) (the sgemm_pack / sgemm_packed entries): every Bp block of
 * the loop nest packed once, as pack_b writes it, block (jc, pc) at
 *     Bk + jc * K + pc * ncr        (ncr = nc rounded up to NR),
 * round_up(N, NR) * K floats in all; every block starts on a 64-byte
 * boundary when Bk does (jc is a multiple of NC, ncr of NR, both multiples
 * of 16 floats in the x86 variants; NEON's stores need no alignment).
 * Bk == NULL: only returns the size. */
static inline size_t ga_gemm_pack_all(const ga_gemm_impl *im, int transB, int K, int N,
                                      const float *B, int ldb, float *Bk)
{
    if (K <= 0 || N <= 0)
        return 0;
    if (Bk)
        for (int jc = 0; jc < N; jc += im->NC) {
            const int nc = ga_gemm_min(im->NC, N - jc);
            const size_t ncr = ga_gemm_round_up((size_t)nc, (size_t)im->NR);
            for (int pc = 0; pc < K; pc += im->KC)
                im->pack_b(B, ldb, !transB, jc, nc, pc, ga_gemm_min(im->KC, K - pc),
                           Bk + (size_t)jc * K + (size_t)pc * ncr);
        }
    return ga_gemm_round_up((size_t)N, (size_t)im->NR) * (size_t)K;
}

/* Element opB[k][j] of a packed op(B) (for the fallback below). */
static inline float ga_gemm_packed_at(const ga_gemm_impl *im, int K, int N, const float *Bk,
                                      int k, int j)
{
    const int jc = j / im->NC * im->NC, pc = k / im->KC * im->KC;
    const int kc = ga_gemm_min(im->KC, K - pc);
    const size_t ncr = ga_gemm_round_up((size_t)ga_gemm_min(im->NC, N - jc), (size_t)im->NR);
    const int q = (j - jc) / im->NR;
    return Bk[(size_t)jc * K + (size_t)pc * ncr + (size_t)q * im->NR * kc +
              (size_t)(k - pc) * im->NR + (size_t)((j - jc) % im->NR)];
}

/* The packing buffer of a call: Ap (up to MC x KC) then Bp (up to NC x KC),
 * Bp on a 64-byte boundary at *bp; asked for at the largest size a call can
 * use, so that the thread's buffer is allocated once.  NULL: no memory. */
static inline float *ga_gemm_buffers(const ga_gemm_impl *im, float **bp)
{
    const size_t a_max = ga_gemm_round_up((size_t)im->MC * (size_t)im->KC, 16);
    const size_t b_max = ga_gemm_round_up((size_t)im->NC * (size_t)im->KC, 16);
    float *Ap = ga_gemm_buffer((a_max + b_max) * sizeof(float));
    *bp = Ap ? Ap + a_max : NULL;
    return Ap;
}

/* The blocked driver (see the loop nest above). */
static inline void ga_gemm_blocked(const ga_gemm_impl *im, int transA, int transB,
                                   int M, int N, int K, float alpha, const float *A,
                                   int lda, const float *B, int ldb, float beta,
                                   float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0 || alpha == 0.0f) {
        ga_gemm_scale_c(M, N, beta, C, ldc);
        return;
    }
    const int MR = im->MR, NR = im->NR;
    /* B read in place (small M, see above): only a partial last column tile
     * is packed. */
    const int direct = !transB && M <= im->m_direct;
    float *Bp, *Ap = ga_gemm_buffers(im, &Bp);
    if (!Ap) {
        ga_ref_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    for (int jc = 0; jc < N; jc += im->NC) {
        const int nc = ga_gemm_min(im->NC, N - jc);
        /* columns [0, n_inplace) of the block are read from B directly */
        const int n_inplace = direct ? nc / NR * NR : 0;
        for (int pc = 0; pc < K; pc += im->KC) {
            const int kc = ga_gemm_min(im->KC, K - pc);
            const float beta_p = pc == 0 ? beta : 1.0f;
            if (nc > n_inplace)
                im->pack_b(B, ldb, !transB, jc + n_inplace, nc - n_inplace, pc, kc, Bp);
            for (int ic = 0; ic < M; ic += im->MC) {
                const int mc = ga_gemm_min(im->MC, M - ic);
                im->pack_a(A, lda, transA, ic, mc, pc, kc, Ap);
                for (int ir = 0; ir < mc; ir += MR) {
                    const int mr = ga_gemm_min(MR, mc - ir);
                    const float *a = Ap + (size_t)ir * kc;
                    float *c = C + (size_t)(ic + ir) * ldc + jc;
                    for (int jr = 0; jr < nc; jr += NR) {
                        const int nr = ga_gemm_min(NR, nc - jr);
                        if (jr < n_inplace)
                            im->kernel(kc, a, B + (size_t)pc * ldb + jc + jr, ldb, c + jr,
                                       ldc, alpha, beta_p, mr, nr);
                        else
                            im->kernel(kc, a, Bp + (size_t)(jr - n_inplace) * kc, NR, c + jr,
                                       ldc, alpha, beta_p, mr, nr);
                    }
                }
            }
        }
    }
}

/* The driver over a packed op(B) (ga_gemm_pack_all): nothing of B is packed
 * per call, so the loop nest can pack each A block once:
 *
 *   for pc in [0, K) step KC
 *     for ic in [0, M) step MC
 *       pack opA[ic:ic+mc][pc:pc+kc] -> Ap
 *       for jc in [0, N) step NC            B block (jc, pc), packed already
 *         for jr in [0, nc) step NR         one B micro-panel, in L1 while
 *           for ir in [0, mc) step MR       every A micro-panel (L2) passes
 *             micro-kernel
 *
 * Every C tile gets the same micro-kernel calls, K blocks in the same order,
 * as in ga_gemm_blocked: bitwise the same C. */
static inline void ga_gemm_blocked_packed(const ga_gemm_impl *im, int transA, int M, int N,
                                          int K, float alpha, const float *A, int lda,
                                          const float *Bk, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0 || alpha == 0.0f) {
        ga_gemm_scale_c(M, N, beta, C, ldc);
        return;
    }
    const int MR = im->MR, NR = im->NR;
    float *Bp, *Ap = ga_gemm_buffers(im, &Bp);
    if (!Ap) { /* no buffer: the reference's arithmetic on the packed elements */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double dot = 0.0;
                for (int k = 0; k < K; k++)
                    dot += (double)(transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                           (double)ga_gemm_packed_at(im, K, N, Bk, k, j);
                float *c = C + (size_t)i * ldc + j, ab = (float)((double)alpha * dot);
                *c = beta == 0.0f ? ab : ab + beta * *c;
            }
        return;
    }
    for (int pc = 0; pc < K; pc += im->KC) {
        const int kc = ga_gemm_min(im->KC, K - pc);
        const float beta_p = pc == 0 ? beta : 1.0f;
        for (int ic = 0; ic < M; ic += im->MC) {
            const int mc = ga_gemm_min(im->MC, M - ic);
            im->pack_a(A, lda, transA, ic, mc, pc, kc, Ap);
            for (int jc = 0; jc < N; jc += im->NC) {
                const int nc = ga_gemm_min(im->NC, N - jc);
                const float *Bb =
                    Bk + (size_t)jc * K + (size_t)pc * ga_gemm_round_up((size_t)nc, (size_t)NR);
                for (int jr = 0; jr < nc; jr += NR) {
                    const int nr = ga_gemm_min(NR, nc - jr);
                    for (int ir = 0; ir < mc; ir += MR)
                        im->kernel(kc, Ap + (size_t)ir * kc, Bb + (size_t)jr * kc, NR,
                                   C + (size_t)(ic + ir) * ldc + jc + jr, ldc, alpha, beta_p,
                                   ga_gemm_min(MR, mc - ir), nr);
                }
            }
        }
    }
}

/* The three table entries of a variant (sgemm, sgemm_pack, sgemm_packed)
 * over its ga_gemm_impl `impl`, and its ga_fill_gemm_<isa>. */
#define GA_GEMM_ENTRIES(isa)                                                                   \
    static void sgemm_##isa(int transA, int transB, int M, int N, int K, float alpha,          \
                            const float *A, int lda, const float *B, int ldb, float beta,      \
                            float *C, int ldc)                                                 \
    {                                                                                          \
        ga_gemm_blocked(&impl, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);  \
    }                                                                                          \
    static size_t sgemm_pack_##isa(int transB, int K, int N, const float *B, int ldb,          \
                                   float *Bp)                                                  \
    {                                                                                          \
        return ga_gemm_pack_all(&impl, transB, K, N, B, ldb, Bp);                              \
    }                                                                                          \
    static void sgemm_packed_##isa(int transA, int M, int N, int K, float alpha,               \
                                   const float *A, int lda, const float *Bp, float beta,       \
                                   float *C, int ldc)                                          \
    {                                                                                          \
        ga_gemm_blocked_packed(&impl, transA, M, N, K, alpha, A, lda, Bp, beta, C, ldc);       \
    }                                                                                          \
    void ga_fill_gemm_##isa(ga_kernels *t)                                                     \
    {                                                                                          \
        t->sgemm = sgemm_##isa;                                                                \
        t->sgemm_pack = sgemm_pack_##isa;                                                      \
        t->sgemm_packed = sgemm_packed_##isa;                                                  \
    }

#endif
