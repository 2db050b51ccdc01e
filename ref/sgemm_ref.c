/* sgemm_ref.c — reference SGEMM: the readable ground truth of the `sgemm`
 * entry of ga_kernels (see include/granattn.h for the contract).
 *
 *   C[i][j] = alpha * sum_{k<K} opA[i][k] * opB[k][j] + beta * C[i][j]
 *
 *   opA [M][K]: A[i][k] stored at A[i*lda + k] (transA == 0), or A^T with
 *               A stored [K][lda]: opA[i][k] = A[k*lda + i] (transA == 1).
 *   opB [K][N]: B[k*ldb + j] (transB == 0), or B stored [N][ldb]:
 *               opB[k][j] = B[j*ldb + k] (transB == 1).
 *   C   [M][ldc], row-major.
 *
 * Exact semantics (every variant follows them):
 *   - M == 0 or N == 0: nothing is read or written.
 *   - K == 0 or alpha == 0: A and B are not read; C = beta * C, where
 *     beta == 0 stores +0 and beta == 1 leaves C untouched.
 *   - beta == 0: C is written without being read, so NaN or Inf garbage in
 *     C never reaches the result.
 *   - The K-term dot product is accumulated in double and rounded once;
 *     then C = (float)(alpha * dot) + beta * C[i][j] in float.
 * Only the M x N elements of C are written (the gaps of ldc > N are not).
 * Cost: M*N*K multiply-adds with strided access; for tests only.
 */
#include "internal.h"

/* C = beta * C for the alpha == 0 / K == 0 cases. */
static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    if (beta == 1.0f)
        return;
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++)
            c[j] = beta == 0.0f ? 0.0f : beta * c[j];
    }
}

void ga_ref_sgemm(int transA, int transB, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double dot = 0.0;
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                dot += (double)a * (double)b;
            }
            float *c = C + (size_t)i * ldc + j;
            float ab = (float)((double)alpha * dot);
            /* beta == 0: C is not read (NaN garbage must not propagate). */
            *c = beta == 0.0f ? ab : ab + beta * *c;
        }
    }
}

/* The reference's packed form of op(B) is op(B) itself, row-major [K][N]. */
size_t ga_ref_sgemm_pack(int transB, int K, int N, const float *B, int ldb, float *Bp)
{
    size_t size = K > 0 && N > 0 ? (size_t)K * (size_t)N : 0;
    if (Bp)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < N; j++)
                Bp[(size_t)k * N + j] = transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
    return size;
}

void ga_ref_sgemm_packed(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *Bp, float beta, float *C, int ldc)
{
    ga_ref_sgemm(transA, 0, M, N, K, alpha, A, lda, Bp, N > 0 ? N : 1, beta, C, ldc);
}
