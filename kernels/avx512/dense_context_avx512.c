/* dense_context_avx512.c — dense context (the dense baseline), AVX-512.
 *
 *   c[j] = sum_i a[i] * V[i][j]      V [N][dh], a [N] -> c [dh]  (N == 0 -> c = 0)
 *
 * ga512_wsum over rows 0..N-1: columns in blocks of up to 128 (one streaming
 * pass over V for dh <= 128), two accumulator sets over i (even / odd rows).
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx512.h"

void ga_avx512_dense_context(const float *V, int N, int dh, const float *a,
                             float *c)
{
    ga512_wsum(V, (size_t)dh, dh, NULL, a, 1, N, 1.0f, 0, c);
}
