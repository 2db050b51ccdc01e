/* sparse_context_avx512.c — gathered (sparse) context, AVX-512.
 *
 *   c[j] = scale * sum_{k < count} p[k] * V[idx[k]][j];   count == 0 -> c = 0
 * V [*][dh] (rows idx[k] valid), idx [count], p [count] -> c [dh].
 *
 * ga512_wsum: columns in blocks of up to 128 (8 zmm accumulators, one pass
 * over the kept rows for dh <= 128), two accumulator sets over k (even / odd
 * kept rows) to hide the FMA latency; partial column vectors use masks.
 * Alignment: none required.  Bytes read past the end: 0.
 */
#include "avx512.h"

void ga_avx512_sparse_context(const float *V, int dh, const int32_t *idx,
                              const float *p, int count, float scale, float *c)
{
    if (count <= 0) {
        for (int j = 0; j < dh; j += 16)
            _mm512_mask_storeu_ps(c + j, ga512_mask(dh - j), _mm512_setzero_ps());
        return;
    }
    ga512_wsum(V, (size_t)dh, dh, idx, p, 1, count, scale, 0, c);
}
