/* flash_block_ref.c — scalar reference of the flash-style dense query block.
 *
 * Per row t < T (Q [T][ldq], K, V [N][dh], bias [N] or NULL -> C [T][ldc]):
 *   s_i = scale * sum_d Q[t][d] K[i][d] + bias[i]   (double; padded keys,
 *         bias -inf, excluded whatever their K and V rows hold)
 *   C[t][j] = sum_i exp(s_i - m) V[i][j] / sum_i exp(s_i - m),  m = max_i s_i
 * plain softmax in double (no chunks), rounded to float once.  Bit t of the
 * result: the row has an unpadded key and every unpadded score rounds to a
 * finite float; other rows are NaN.  ws: GA_FLASH_WS(dh) floats (holds dh
 * double accumulators).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "internal.h"

static double score(const float *q, const float *k, int dh, float scale, const float *bias, int i)
{
    double acc = 0.0;
    for (int d = 0; d < dh; d++)
        acc += (double)q[d] * k[d];
    return (double)scale * acc + (bias ? bias[i] : 0.0);
}

uint32_t ga_ref_flash_block(const float *Q, int ldq, int T, const float *K, const float *V,
                            int N, int dh, float scale, const float *bias, float *C, int ldc,
                            float *ws)
{
    double *acc = (double *)(((uintptr_t)ws + 7) & ~(uintptr_t)7);
    uint32_t ok = 0;
    for (int t = 0; t < T; t++) {
        const float *q = Q + (size_t)t * ldq;
        float *c = C + (size_t)t * ldc;
        double m = -INFINITY;
        int good = 0, bad = 0;
        for (int i = 0; i < N; i++) {
            if (bias && bias[i] == -INFINITY)
                continue;
            const double s = score(q, K + (size_t)i * dh, dh, scale, bias, i);
            good = 1;
            if (!isfinite((float)s))
                bad = 1;
            else if (s > m)
                m = s;
        }
        if (!good || bad) {
            for (int j = 0; j < dh; j++)
                c[j] = NAN;
            continue;
        }
        ok |= (uint32_t)1 << t;
        double z = 0.0;
        for (int j = 0; j < dh; j++)
            acc[j] = 0.0;
        for (int i = 0; i < N; i++) {
            if (bias && bias[i] == -INFINITY)
                continue;
            const double p = exp(score(q, K + (size_t)i * dh, dh, scale, bias, i) - m);
            z += p;
            if (p != 0.0) /* a zero weight excludes its V row */
                for (int j = 0; j < dh; j++)
                    acc[j] += p * V[(size_t)i * dh + j];
        }
        for (int j = 0; j < dh; j++)
            c[j] = (float)(acc[j] / z);
    }
    return ok;
}
